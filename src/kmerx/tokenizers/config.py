"""TokenizerConfig and the model presets.

A tokenizer's id space is laid out as: ``specials`` (ids 0..), the scheme's ids (k-mer codes, vocabulary
k-mers, hash buckets or LSH buckets), the ``alphabet`` (one token per character, for the pieces and chars
schemes), then ``trailing_specials``.
"""

from __future__ import annotations

import dataclasses

from kmerx._checks import check_int
from kmerx.config import StageConfig
from kmerx.vocab import DEFAULT_SPECIALS

__all__ = ["PRESETS", "SCHEMES", "TokenizerConfig", "preset"]

SCHEMES = ("direct", "vocab", "hashed", "lsh", "pieces", "chars")
_STRANDS = ("canonical", "forward", "reverse")


@dataclasses.dataclass(frozen=True)
class TokenizerConfig(StageConfig):
    """How reads become token ids (docs/tokenizers.md).

    scheme      direct: id = 2-bit code of each k-mer window (k <= 15); vocab: ids of a count-based
                :class:`kmerx.Vocab` ([UNK] for the rest); hashed: ntHash mod ``buckets``; lsh:
                locality-sensitive buckets (``lsh`` = "projection", LSHvec's complex random projection with
                ``m`` hyperplanes, or "bits", bit sampling of ``sampled`` positions); pieces: non-overlapping
                k-mers of ACGT runs, other characters one token each (Nucleotide Transformer); chars: one
                token per character (HyenaDNA, Caduceus).
    k, stride, strand   k-mer windows (strand canonical: the smaller of the two strands' ids).
    num_hashes  ids per token (hashed, lsh): independent hash functions, for hash embeddings.
    weight_buckets      hashed with num_hashes > 1: each token also gets a slot in a table of this many
                importance weights (0: none).
    hyperplanes "random" (seeded Gaussian) or "svd" (fitted on k-mers of the data: ``Tokenizer.fit``).
    base_order  digit order of k-mer codes ("ACGT" 2-bit codes; "ATCG" as DNABERT and NT number k-mers).
    fold_case   lowercase bases count as uppercase; False makes them unknown, as the models' tokenizers do.
    prefix, suffix      special tokens put around each read when special tokens are added.
    max_length, truncation ("right" | "left" | None), padding ("longest" | "max_length" | None),
    pad_to_multiple_of, padding_side: encode_batch's defaults, each overridable per call.
    """

    scheme: str = "hashed"
    k: int = 31
    stride: int = 1
    strand: str = "canonical"
    buckets: int = 1 << 20
    num_hashes: int = 1
    weight_buckets: int = 0
    lsh: str = "projection"
    m: int = 20
    sampled: int = 12
    hyperplanes: str = "random"
    seed: int = 0
    fit_samples: int = 200_000
    vocab_min_count: int = 1
    vocab_max_size: int | None = None
    base_order: str = "ACGT"
    fold_case: bool = True
    specials: tuple = DEFAULT_SPECIALS
    alphabet: str = ""
    trailing_specials: tuple = ()
    unk_token: str = "[UNK]"
    pad_token: str = "[PAD]"
    prefix: tuple = ("[CLS]",)
    suffix: tuple = ("[SEP]",)
    max_length: int | None = None
    truncation: str | None = "right"
    padding: str | None = "longest"
    pad_to_multiple_of: int | None = None
    padding_side: str = "right"
    preset: str | None = None

    def __post_init__(self) -> None:
        _one_of("scheme", self.scheme, SCHEMES)
        _one_of("strand", self.strand, _STRANDS)
        _one_of("lsh", self.lsh, ("projection", "bits"))
        _one_of("hyperplanes", self.hyperplanes, ("random", "svd"))
        _one_of("truncation", self.truncation, ("right", "left", None))
        _one_of("padding", self.padding, ("longest", "max_length", None))
        _one_of("padding_side", self.padding_side, ("right", "left"))
        k_max = {"direct": 15, "pieces": 15, "vocab": 64, "lsh": 64}.get(self.scheme)
        check_int("k", self.k, 1, k_max)
        check_int("stride", self.stride, 1)
        check_int("buckets", self.buckets, 1, 2**32 - 1 - 256)
        check_int("num_hashes", self.num_hashes, 1, 63)
        check_int("weight_buckets", self.weight_buckets, 0, 2**32 - 1 - 256)
        check_int("m", self.m, 1, 31)
        check_int("sampled", self.sampled, 1, 16)
        if self.scheme == "lsh" and self.lsh == "bits" and self.sampled > self.k:
            raise ValueError(f"sampled must be <= k ({self.k}) for bit sampling, got {self.sampled}")
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("fit_samples", self.fit_samples, 2)
        check_int("vocab_min_count", self.vocab_min_count, 0)
        if self.vocab_max_size is not None:
            check_int("vocab_max_size", self.vocab_max_size, len(self.specials))
        if self.max_length is not None:
            check_int("max_length", self.max_length, len(self.prefix) + len(self.suffix))
        if self.pad_to_multiple_of is not None:
            check_int("pad_to_multiple_of", self.pad_to_multiple_of, 1)
        if sorted(self.base_order) != list("ACGT"):
            raise ValueError(f"base_order must be a permutation of 'ACGT', got {self.base_order!r}")
        if not self.fold_case and self.scheme in ("vocab", "hashed", "lsh"):
            raise ValueError(f"fold_case=False applies to the direct, pieces and chars schemes; the {self.scheme} "
                             "scheme reads lowercase bases as uppercase (clean reads first to mask them)")
        if self.weight_buckets and self.scheme != "hashed":
            raise ValueError(f"weight_buckets applies to the hashed scheme, not {self.scheme!r}")
        names = [*self.specials, *self.trailing_specials]
        if len(set(names)) != len(names):
            raise ValueError(f"special tokens must be distinct, got {names}")
        for field in ("unk_token", "pad_token"):
            if getattr(self, field) not in names:
                raise ValueError(f"{field} {getattr(self, field)!r} is not among the special tokens {names}")
        for token in (*self.prefix, *self.suffix):
            if token not in names:
                raise ValueError(f"prefix/suffix token {token!r} is not among the special tokens {names}")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError(f"alphabet must hold distinct characters, got {self.alphabet!r}")
        if self.scheme in ("pieces", "chars") and not self.alphabet:
            raise ValueError(f"the {self.scheme} scheme needs an alphabet (its one-character tokens)")


def _one_of(name: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


# ---- presets ---------------------------------------------------------------------------------------
def _dnabert(k: int) -> TokenizerConfig:
    # DNABERT (Ji et al. 2021): overlapping k-mers, vocab [PAD] [UNK] [CLS] [SEP] [MASK] then
    # itertools.product("ATCG", repeat=k); BertTokenizer with do_lower_case=False; 512 tokens.
    return TokenizerConfig(scheme="direct", k=k, strand="forward", base_order="ATCG", fold_case=False,
                           max_length=512, preset=f"dnabert-{k}")


# Nucleotide Transformer: <unk> <pad> <mask> <cls>, the 4096 6-mers in product("ATCG") order, A T C G,
# N, <eos> <bos> (4107 ids); pieces cut at every non-ACGT character; <cls> first.
_NT = TokenizerConfig(scheme="pieces", k=6, strand="forward", base_order="ATCG", fold_case=False,
                      specials=("<unk>", "<pad>", "<mask>", "<cls>"), alphabet="ATCGN",
                      trailing_specials=("<eos>", "<bos>"), unk_token="<unk>", pad_token="<pad>",
                      prefix=("<cls>",), suffix=(), preset="nucleotide-transformer")

# HyenaDNA's CharacterTokenizer: [CLS] [SEP] [BOS] [MASK] [PAD] [RESERVED] [UNK], then A C G T N;
# [SEP] appended; case kept (lowercase is [UNK]); padding on the left. Caduceus: the same ids, but it
# uppercases the sequence first.
_HYENA = TokenizerConfig(scheme="chars", k=1, strand="forward", fold_case=False,
                         specials=("[CLS]", "[SEP]", "[BOS]", "[MASK]", "[PAD]", "[RESERVED]", "[UNK]"),
                         alphabet="ACGTN", prefix=(), suffix=("[SEP]",), padding_side="left", preset="hyenadna")

PRESETS: dict[str, TokenizerConfig] = {
    **{f"dnabert-{k}": _dnabert(k) for k in (3, 4, 5, 6)},
    "nucleotide-transformer": _NT,
    "hyenadna": _HYENA,
    "caduceus": _HYENA.replace(fold_case=True, preset="caduceus"),
}


def preset(name: str, **overrides: object) -> TokenizerConfig:
    """The config of a named preset (see PRESETS), with fields overridden."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]

