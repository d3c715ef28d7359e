"""Tokenizers: the DNABERT-6 preset against transformers' BertTokenizer, and the throughput of the hashed
and LSH schemes (k=31) in k-mers per second.

DNABERT-6. kmerx gets the reads' ``seq`` column (an Arrow array, as kmerx.read yields it) and returns
padded numpy arrays or Arrow lists. The peer is the path DNABERT users write: each read turned into its
space-joined overlapping 6-mers, then ``BertTokenizer(vocab.txt, do_lower_case=False)(texts,
truncation=True, max_length=512)`` (in transformers 5 this is the Rust ``tokenizers`` backend, which
encodes a batch on all cores); building the strings is part of the peer's time, turning the Arrow column
into Python strings is not. vocab.txt is built from DNABERT's rules: ``[PAD] [UNK] [CLS] [SEP] [MASK]``,
then ``itertools.product("ATCG", repeat=6)``. Both sides' ids are checked equal. The full run times 3
rounds (not 7): one transformers round on the 100k reads takes ~20 s here. A second comparison calls
each side once per read, which shows the fixed Python cost of one encode call.

Hashed / LSH. ``encode_batch(..., return_tensors="arrow", add_special_tokens=False)`` (no padding) at 1
and 2 threads, and the padded numpy output; units are k-mer windows, sum(max(len - k + 1, 0)) (windows
with an N count too: they become [UNK]). Peers for context: ``kmerx.kmers.nthash_numpy`` alone (the raw
ntHash 2 stream that the hashed scheme reduces mod B), and, for hashed and bit sampling, the same ids
composed in numpy from kmerx's hash/code arrays; those ids are checked equal to the tokenizer's (on the
windows without N; numpy has no [UNK]). Throughput per core = k-mers/s / threads, in extra_info.
"""

from __future__ import annotations

import itertools
import statistics

import numpy as np
import pyarrow as pa
import pytest
from conftest import compare, quick_seqs, shared, with_threads

import kmerx
from kmerx import kmers
from kmerx.tokenizers import Tokenizer, lsh

K = 31
DNABERT_K = 6


def _column(paths: list[str]) -> pa.Array:
    """The seq column of FASTQ files as one large_binary array (read outside any timing)."""
    chunks = [b.column("seq") for p in paths for b in kmerx.read(shared(p))]
    return pa.concat_arrays(chunks)


def _quick_column(n: int) -> pa.Array:
    return pa.array(quick_seqs()[:n], pa.large_binary())


# ---- DNABERT-6 vs transformers ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def bert_tokenizer(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("dnabert") / "vocab.txt"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words += ["".join(p) for p in itertools.product("ATCG", repeat=DNABERT_K)]
    path.write_text("\n".join(words) + "\n")
    return transformers.BertTokenizer(str(path), do_lower_case=False)


@pytest.fixture(scope="session")
def srr_column(full) -> tuple[str, pa.Array]:
    if full:
        return "SRR059298 100k reads (72 bp)", _column(["reads/SRR059298_subset_100k.fastq.gz"])
    return "quick random", _quick_column(200)


def _bert_texts(reads: list[str]) -> list[str]:
    k = DNABERT_K
    return [" ".join(s[i : i + k] for i in range(len(s) - k + 1)) for s in reads]


def _digest_encoding(enc) -> tuple[int, int]:
    """(tokens, sum of ids) of a kmerx Encoding, padding excluded."""
    ids = enc["input_ids"]
    if isinstance(ids, pa.Array):
        flat = ids.values.to_numpy()
    else:
        flat = ids[enc["attention_mask"].astype(bool)]
    return int(flat.size), int(flat.sum(dtype=np.int64))


def _digest_lists(batch) -> tuple[int, int]:
    flat = np.fromiter(itertools.chain.from_iterable(batch["input_ids"]), dtype=np.int64)
    return int(flat.size), int(flat.sum())


def test_dnabert6_vs_transformers(benchmark, srr_column, bert_tokenizer, full, rounds):
    name, column = srr_column
    reads = [s.decode() for s in column.to_pylist()]  # the peer's input: Python strings
    tok = Tokenizer.from_preset(f"dnabert-{DNABERT_K}")
    peer = lambda: bert_tokenizer(_bert_texts(reads), truncation=True, max_length=512)  # noqa: E731
    got = compare(
        benchmark,
        f"Tokenizer DNABERT-6: kmerx preset vs transformers BertTokenizer on space-joined 6-mers, {name}",
        {
            "kmerx (numpy, padded)": lambda: tok.encode_batch(column),
            "kmerx (numpy, padded, 1 thread)": with_threads(1, lambda: tok.encode_batch(column)),
            "kmerx (arrow)": lambda: tok.encode_batch(column, return_tensors="arrow"),
            "transformers 5 BertTokenizer (+ joining 6-mers)": peer,
        },
        min(rounds, 3), len(column), "reads",
        keep=lambda out: _digest_encoding(out) if "lengths" in out else _digest_lists(out),
    )
    assert len(set(got.values())) == 1, got
    # Id for id on a slice (the digests above cover the rest).
    head = reads[:1000]
    want = bert_tokenizer(_bert_texts(head), truncation=True, max_length=512)["input_ids"]
    assert tok.encode_batch(column[: len(head)], return_tensors="arrow")["input_ids"].to_pylist() == want


def test_dnabert6_one_read_per_call(benchmark, srr_column, bert_tokenizer, full, rounds):
    name, column = srr_column
    reads = [s.decode() for s in column.to_pylist()[: 2000 if full else 50]]
    tok = Tokenizer.from_preset(f"dnabert-{DNABERT_K}")
    got = compare(
        benchmark,
        f"Tokenizer DNABERT-6, one read per call (fixed cost per call), {name}",
        {
            "kmerx Tokenizer.encode(read)": lambda: [tok.encode(r) for r in reads],
            "transformers 5 BertTokenizer(6-mers of read)": lambda: [
                bert_tokenizer(t, truncation=True, max_length=512)["input_ids"] for t in _bert_texts(reads)
            ],
        },
        rounds, len(reads), "reads", keep=lambda out: sum(map(sum, out)),
    )
    assert len(set(got.values())) == 1, got


# ---- hashed and LSH throughput ---------------------------------------------------------------------

SCHEMES = {
    "hashed": dict(scheme="hashed", k=K, buckets=2**24),
    "lsh-projection": dict(scheme="lsh", lsh="projection", k=K, m=24),
    "lsh-bits": dict(scheme="lsh", lsh="bits", k=K, sampled=12),
}
TITLES = {
    "hashed": f"hashed k={K} B=2^24",
    "lsh-projection": f"LSH random projection k={K} m=24",
    "lsh-bits": f"LSH bit sampling k={K} s=12",
}


@pytest.fixture(scope="session")
def art_column(full) -> tuple[str, pa.Array]:
    if full:
        paths = [f"reads/art_MG1655_HS25_2x150_10x_R{i}.fq.gz" for i in (1, 2)]
        return "ART MG1655 2x150 10x, R1+R2", _column(paths)
    return "quick random", _quick_column(500)


def _numpy_hashed(data, offsets, cfg, offset):
    hashes = kmers.nthash_numpy(data, offsets, cfg["k"])[0]
    return (hashes & np.uint64(cfg["buckets"] - 1)).astype(np.uint32) + np.uint32(offset)


def _numpy_bits(data, offsets, cfg, offset):
    k, s = cfg["k"], cfg["sampled"]
    fw = kmers.kmer_codes_numpy(data, offsets, k, strand="forward")[0]
    rc = kmers.kmer_codes_numpy(data, offsets, k, strand="reverse")[0]
    x = np.zeros(fw.size, np.uint64)
    y = np.zeros(fw.size, np.uint64)
    for p in lsh.bit_positions(k, s, 1, 0)[0]:
        shift = np.uint64(2 * (k - 1 - int(p)))
        x = (x << np.uint64(2)) | ((fw >> shift) & np.uint64(3))
        y = (y << np.uint64(2)) | ((rc >> shift) & np.uint64(3))
    return np.minimum(x, y).astype(np.uint32) + np.uint32(offset)


def _digest_known(ids: np.ndarray, unk: int) -> tuple[int, int]:
    """(count, sum) of the ids that are not [UNK] (numpy peers skip windows with N)."""
    ids = ids[ids != unk]
    return int(ids.size), int(ids.sum(dtype=np.int64))


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_tokenize_throughput(benchmark, art_column, rounds, scheme):
    name, column = art_column
    cfg = SCHEMES[scheme]
    tok = Tokenizer.from_config(cfg)
    unk = tok.token_to_id("[UNK]")
    data, offsets = kmers.seq_arrays(column)
    windows = int(np.maximum(np.diff(offsets) - K + 1, 0).sum())
    tok.encode_batch(column[:1], return_tensors="arrow")  # builds the native scheme (tables) once

    arrow = lambda: tok.encode_batch(column, return_tensors="arrow", add_special_tokens=False)  # noqa: E731
    padded = lambda: tok.encode_batch(column, add_special_tokens=False)  # noqa: E731
    raw = lambda: kmers.nthash_numpy(data, offsets, K)[0]  # noqa: E731
    impls = {
        "kmerx (arrow, 1 thread)": with_threads(1, arrow),
        "kmerx (arrow, 2 threads)": with_threads(2, arrow),
        "kmerx (numpy padded, 1 thread)": with_threads(1, padded),
        "kmerx (numpy padded, 2 threads)": with_threads(2, padded),
        "ntHash 2 alone (kmerx.kmers.nthash_numpy, 1 thread)": with_threads(1, raw),
    }
    numpy_peer = {"hashed": _numpy_hashed, "lsh-bits": _numpy_bits}.get(scheme)
    if numpy_peer:
        impls["numpy on kmerx hashes/codes (1 thread)"] = with_threads(
            1, lambda: numpy_peer(data, offsets, cfg, len(tok.config.specials)))

    def keep(out):
        if isinstance(out, dict):
            ids = out["input_ids"]
            flat = ids.values.to_numpy() if isinstance(ids, pa.Array) else ids[out["attention_mask"].astype(bool)]
            return _digest_known(flat, unk)
        if out.dtype == np.uint32:  # numpy-composed ids
            return _digest_known(out, unk)
        return ("raw hashes", int(out.size))

    got = compare(
        benchmark,
        f"Tokenizer {TITLES[scheme]} (no special tokens), {name}",
        impls, rounds, windows, "k-mers", keep=keep,
    )
    times = benchmark.extra_info["times"]
    benchmark.extra_info["mkmers_per_s_per_core"] = {
        impl: windows / statistics.median(t) / (2 if "2 threads" in impl else 1) / 1e6 for impl, t in times.items()
    }
    ids = {v for impl, v in got.items() if not impl.startswith("ntHash")}
    assert len(ids) == 1, got
    assert got["ntHash 2 alone (kmerx.kmers.nthash_numpy, 1 thread)"][1] == next(iter(ids))[0]
