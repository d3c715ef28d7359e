"""Presets, id for id, against the models' own tokenizers: DNABERT (transformers.BertTokenizer) and the
Nucleotide Transformer (transformers.EsmTokenizer), with vocabulary files built in fixtures from the
published rules, not from kmerx; HyenaDNA and Caduceus against a small Python model of their
CharacterTokenizer (no transformers class for them ships offline). Inputs: every read of
../shared/data/unit/SRR059298_first2k.fastq (114 reads hold N) and seeded random reads with N, IUPAC
codes, lowercase, reads shorter than k and reads past 512 tokens."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from reference import parse_fastq, shared

from kmerx.tokenizers import Tokenizer

SRR = "unit/SRR059298_first2k.fastq"


def random_reads(seed: int) -> list[str]:
    """Seeded reads: plain ACGT, N runs, IUPAC runs (RY, W...), lowercase runs, tiny reads, long reads."""
    rng = np.random.default_rng(seed)
    pieces = ["A", "C", "G", "T"] * 6 + ["N", "NN", "NNNNNN", "R", "Y", "RY", "WSKM", "acgt", "a", "n", "ryb"]
    out = ["", "A", "AC", "ACGTA", "NNNNNNN", "acgtacgtac", "RYRYRYRY", "ACGTACNNACGTAC"]
    for n in rng.choice([3, 8, 40, 150, 700, 1200], size=300):
        out.append("".join(pieces[i] for i in rng.integers(0, len(pieces), n)))
    return out


@pytest.fixture(scope="module")
def reads() -> list[str]:
    srr = [s.decode() for _, s, _ in parse_fastq(shared(SRR))]
    assert len(srr) == 2000 and sum("N" in s for s in srr) == 114
    return srr + random_reads(0)


def kmerx_ids(tok: Tokenizer, reads: list[str]) -> list[list[int]]:
    """One encode_batch call for the whole set."""
    return tok.encode_batch(reads, return_tensors="arrow")["input_ids"].to_pylist()


# ---- DNABERT ----------------------------------------------------------------------------------------
def dnabert_vocab(k: int) -> list[str]:
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["".join(p) for p in itertools.product("ATCG", repeat=k)]


@pytest.fixture(scope="module", params=[3, 4, 5, 6])
def dnabert(request, tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    k = request.param
    path = tmp_path_factory.mktemp(f"dnabert{k}") / "vocab.txt"
    path.write_text("\n".join(dnabert_vocab(k)) + "\n")
    return k, transformers.BertTokenizer(str(path), do_lower_case=False)


def kmer_sentence(read: str, k: int) -> str:
    return " ".join(read[i : i + k] for i in range(len(read) - k + 1))


def test_dnabert_ids_equal_bert_tokenizer(dnabert, reads):
    k, bert = dnabert
    tok = Tokenizer.from_preset(f"dnabert-{k}")
    want = bert([kmer_sentence(r, k) for r in reads], truncation=True, max_length=512)["input_ids"]
    got = kmerx_ids(tok, reads)
    assert any(len(w) == 512 for w in want)  # the long reads were truncated
    bad = [i for i in range(len(reads)) if got[i] != want[i]]
    assert not bad, f"{len(bad)} reads differ; first: {reads[bad[0]]!r}\nkmerx {got[bad[0]]}\nbert  {want[bad[0]]}"
    assert tok.vocab_size == len(bert) == 4**k + 5


def test_dnabert_padded_and_decoded(dnabert, reads):
    k, bert = dnabert
    tok = Tokenizer.from_preset(f"dnabert-{k}")
    sub = reads[1990:2040]
    want = bert([kmer_sentence(r, k) for r in sub], truncation=True, max_length=512, padding="longest")
    enc = tok.encode_batch(sub)
    np.testing.assert_array_equal(enc.input_ids, np.array(want["input_ids"]))
    np.testing.assert_array_equal(enc.attention_mask, np.array(want["attention_mask"]))
    for row in want["input_ids"][:10]:
        assert tok.convert_ids_to_tokens(row) == bert.convert_ids_to_tokens(row)


# ---- Nucleotide Transformer ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def esm(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    vocab = (["<unk>", "<pad>", "<mask>", "<cls>"] + ["".join(p) for p in itertools.product("ATCG", repeat=6)]
             + list("ATCG") + ["N", "<eos>", "<bos>"])
    assert len(vocab) == 4107
    path = tmp_path_factory.mktemp("nt") / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    # eos_token=None: EsmTokenizer then builds <cls> + tokens without appending <eos>, as the NT preset
    # does (build_inputs_with_special_tokens skips eos when its id is None).
    return transformers.EsmTokenizer(str(path), eos_token=None)


def test_nucleotide_transformer_ids_equal_esm_tokenizer(esm, reads):
    tok = Tokenizer.from_preset("nucleotide-transformer")
    want = esm(reads)["input_ids"]
    got = kmerx_ids(tok, reads)
    bad = [i for i in range(len(reads)) if got[i] != want[i]]
    assert not bad, f"{len(bad)} reads differ; first: {reads[bad[0]]!r}\nkmerx {got[bad[0]]}\nesm   {want[bad[0]]}"
    assert tok.vocab_size == len(esm) == 4107
    for row in want[2000:2020]:
        assert tok.convert_ids_to_tokens(row) == esm.convert_ids_to_tokens(row)


# ---- HyenaDNA / Caduceus: a Python model of their CharacterTokenizer ------------------------------------
CHAR_VOCAB = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6,
              "A": 7, "C": 8, "G": 9, "T": 10, "N": 11}


def character_tokenizer(reads: list[str], *, upper: bool) -> list[list[int]]:
    """One id per character ([UNK] outside A C G T N; Caduceus uppercases first), then [SEP]; padded on
    the left with [PAD] to the longest."""
    rows = [[CHAR_VOCAB.get(c, CHAR_VOCAB["[UNK]"]) for c in (r.upper() if upper else r)] + [CHAR_VOCAB["[SEP]"]]
            for r in reads]
    width = max(map(len, rows))
    return [[CHAR_VOCAB["[PAD]"]] * (width - len(r)) + r for r in rows]


@pytest.mark.parametrize("name, upper", [("hyenadna", False), ("caduceus", True)])
def test_character_presets(name, upper, reads):
    tok = Tokenizer.from_preset(name)
    sub = reads[:200] + random_reads(1)[:100] + ["acgtnACGTN-*xyz"]
    want = np.array(character_tokenizer(sub, upper=upper))
    enc = tok.encode_batch(sub)
    np.testing.assert_array_equal(enc.input_ids, want)
    np.testing.assert_array_equal(enc.attention_mask, want != CHAR_VOCAB["[PAD]"])
    assert tok.vocab_size == len(CHAR_VOCAB)
    assert {t: tok.token_to_id(t) for t in CHAR_VOCAB} == CHAR_VOCAB
    # lowercase: HyenaDNA keeps case (so [UNK]), Caduceus uppercases
    assert tok.encode("acgtn") == ([7, 8, 9, 10, 11, 1] if upper else [6] * 5 + [1])
