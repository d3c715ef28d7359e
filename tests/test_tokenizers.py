"""Tokenizers: every scheme against a slow numpy reference (hypothesis, pinned edge cases, every SIMD
path, real reads), the batch layout (special tokens, truncation, padding, masks, positions), decoding,
save/load and config files, and argument errors. Parity with the models' own tokenizers is in
test_tokenizer_parity.py."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view
from reference import SIMD, parse_fastq, same_on_every_simd_path, shared, simd_level

import kmerx
from kmerx.count import count
from kmerx.kmers import nthash_numpy, seq_arrays
from kmerx.tokenizers import PRESETS, Tokenizer, TokenizerConfig, lsh
from kmerx.vocab import Vocab

SRR = "unit/SRR059298_first2k.fastq"
NSPEC = 5  # DEFAULT_SPECIALS: [PAD] [UNK] [CLS] [SEP] [MASK]
PAD, UNK, CLS, SEP, MASK = range(5)
COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Reads: mostly ACGT, with N, IUPAC codes and lowercase so windows go invalid or fold.
BASES = list("ACGTACGTACGTACGTacgtNRYn")
reads_st = st.lists(st.text(alphabet=st.sampled_from(BASES), max_size=150), max_size=6)


def tok(**kw) -> Tokenizer:
    return Tokenizer(TokenizerConfig(**kw))


def seqs_bytes(seqs) -> list[bytes]:
    return [s.encode() if isinstance(s, str) else bytes(s) for s in seqs]


def rand_reads(seed: int, n: int, lo: int, hi: int, alphabet: str = "ACGTACGTACGTNacgR") -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    return [letters[rng.integers(0, len(letters), rng.integers(lo, hi + 1))].tobytes().decode() for _ in range(n)]


# ---- slow references: one window at a time, from the documented rules ------------------------------
def digits(seq: bytes, order: str = "ACGT", fold: bool = True) -> np.ndarray:
    """Base digits in `order`, -1 for anything else (lowercase too, unless fold)."""
    table = np.full(256, -1, dtype=np.int64)
    for i, c in enumerate(order):
        table[ord(c)] = i
        if fold:
            table[ord(c.lower())] = i
    return table[np.frombuffer(seq, dtype=np.uint8)]


def windows(seq: bytes, k: int, stride: int, order: str = "ACGT", fold: bool = True):
    """(digits [n, k] of the windows starting at 0, stride, ..., all-ACGT flag [n])."""
    d = digits(seq, order, fold)
    if len(d) < k:
        return np.zeros((0, k), dtype=np.int64), np.zeros(0, dtype=bool)
    w = sliding_window_view(d, k)[::stride]
    return w, (w >= 0).all(axis=1)


def batch_windows(seqs, k: int, stride: int, order: str = "ACGT", fold: bool = True):
    """windows() of every read, concatenated: (digits, ok, per-read window offsets)."""
    parts = [windows(x, k, stride, order, fold) for x in seqs]
    off = np.concatenate([[0], np.cumsum([len(p[1]) for p in parts])]).astype(np.int64)
    w = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, k), dtype=np.int64)
    ok = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=bool)
    return w, ok, off


def split(values: np.ndarray, off: np.ndarray) -> list[np.ndarray]:
    return [values[off[r] : off[r + 1]] for r in range(len(off) - 1)]


def revcomp_digits(w: np.ndarray, order: str = "ACGT") -> np.ndarray:
    comp = np.array([order.index(COMP[c]) for c in order])
    return comp[np.where(w < 0, 0, w)][:, ::-1]


def int_codes(w: np.ndarray) -> np.ndarray:
    """Codes of digit rows, first base most significant: int64 up to k = 31, Python ints beyond."""
    w = np.where(w < 0, 0, w)
    out = np.zeros(len(w), dtype=np.int64 if w.shape[1] <= 31 else object)
    for col in w.astype(out.dtype).T:
        out = out * 4 + col
    return out


def strand_codes(w: np.ndarray, strand: str, order: str = "ACGT") -> list[int]:
    fw, rc = int_codes(w), int_codes(revcomp_digits(w, order))
    return {"forward": fw, "reverse": rc, "canonical": np.minimum(fw, rc)}[strand].tolist()


def ref_direct(seq, k, stride=1, strand="canonical", order="ACGT", fold=True):
    return ref_direct_batch([seq], k, stride, strand, order, fold)[0]


def ref_direct_batch(seqs, k, stride=1, strand="canonical", order="ACGT", fold=True):
    """id = specials + code of the window (ACGT order: the 2-bit code), [UNK] for non-ACGT windows."""
    w, ok, off = batch_windows(seqs, k, stride, order, fold)
    codes = np.array(strand_codes(w, strand, order), dtype=np.int64)
    return split(np.where(ok, NSPEC + codes, UNK), off)


def ref_hashed_batch(seqs, k, stride=1, strand="canonical", h=1, buckets=1 << 20, weight_buckets=0):
    """Per read: (ids [n, h], slots [n]) from kmerx.kmers.nthash_numpy (itself checked against the
    btllib oracle in test_nthash.py): id_j = specials + hash_j mod B, slot = specials + hash_h mod W."""
    data, offsets = seq_arrays(seqs)
    nh = h + (1 if weight_buckets else 0)
    vals, voff, pos = nthash_numpy(data, offsets, k, num_hashes=nh, strand=strand, positions=True)
    vals = vals.reshape(len(vals), nh)
    lengths = np.diff(offsets)
    nwin = np.where(lengths >= k, (lengths - k) // stride + 1, 0)
    woff = np.concatenate([[0], np.cumsum(nwin)])
    ids = np.full((woff[-1], h), UNK, dtype=np.int64)
    slots = np.full(woff[-1], UNK, dtype=np.int64)
    read = np.repeat(np.arange(len(lengths)), np.diff(voff))
    on_grid = pos % stride == 0
    at = woff[read[on_grid]] + pos[on_grid] // stride
    ids[at] = NSPEC + (vals[on_grid, :h] % np.uint64(buckets)).astype(np.int64)
    if weight_buckets:
        slots[at] = NSPEC + (vals[on_grid, h] % np.uint64(weight_buckets)).astype(np.int64)
    return [(ids[woff[r] : woff[r + 1]], slots[woff[r] : woff[r + 1]]) for r in range(len(lengths))]


def ref_vocab(seq, vocab: Vocab, k, stride=1, strand="canonical"):
    w, ok = windows(seq, k, stride)
    codes = strand_codes(w, strand)
    arr = (np.array(codes, dtype=np.uint64) if k <= 32
           else np.array([[c >> 64, c & (2**64 - 1)] for c in codes], dtype=np.uint64).reshape(-1, 2))
    ids = vocab.lookup(arr).astype(np.int64)
    return np.where(ok, ids, vocab.unk_id).tolist()


def projection_ids(w: np.ndarray, weights: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """[n, h] ids: bit i = [sum_p weights[j, i, p, base_p] > threshold], id = sum bit_i 2^i."""
    h, m, k, _ = weights.shape
    wt = weights.astype(np.int64)
    sums = np.zeros((h, m, len(w)), dtype=np.int64)
    for p in range(k):
        sums += wt[:, :, p, :][:, :, np.where(w[:, p] < 0, 0, w[:, p])]
    bits = (sums > thresholds.astype(np.int64)[:, :, None]).astype(np.int64)
    return (bits << np.arange(m, dtype=np.int64)[None, :, None]).sum(axis=1).T


def ref_projection(seqs, k, weights, thresholds, stride=1, canonical=True) -> list[np.ndarray]:
    # The reverse strand is the reverse complement's forward sum: complement negates a base's value and
    # quantize() keeps weights[.., comp(b)] = -weights[.., b] exactly (lsh.hpp).
    w, ok, off = batch_windows(seqs, k, stride)
    ids = projection_ids(w, weights, thresholds)
    if canonical:
        ids = np.minimum(ids, projection_ids(revcomp_digits(w), weights, thresholds))
    return split(np.where(ok[:, None], NSPEC + ids, UNK), off)


def ref_bits(seqs, k, positions, stride=1, canonical=True) -> list[np.ndarray]:
    """id_j = the 2-bit codes (A0 C1 G2 T3) of the sampled bases, first most significant."""
    w, ok, off = batch_windows(seqs, k, stride)
    s = positions.shape[1]
    place = 4 ** np.arange(s - 1, -1, -1, dtype=np.int64)

    def ids(x):
        return np.stack([(np.where(x < 0, 0, x)[:, pj] * place).sum(axis=1) for pj in positions], axis=1)

    out = ids(w) if len(w) else np.zeros((0, len(positions)), dtype=np.int64)
    if canonical and len(w):
        out = np.minimum(out, ids(revcomp_digits(w)))
    return split(np.where(ok[:, None], NSPEC + out, UNK), off)


def raw_ids(t: Tokenizer, seqs, **kw) -> list[np.ndarray]:
    """Per read: its raw token ids ([n] or [n, h]), no special tokens, no truncation."""
    enc = t.encode_batch(seqs, add_special_tokens=False, truncation=None, return_tensors="arrow", **kw)
    ids = enc["input_ids"]
    values = ids.values
    if pa.types.is_fixed_size_list(values.type):
        flat = values.flatten().to_numpy().reshape(-1, values.type.list_size)
    else:
        flat = values.to_numpy()
    off = np.asarray(ids.offsets)
    return [flat[off[r] : off[r + 1]].astype(np.int64) for r in range(len(off) - 1)]


def on_every_path(t: Tokenizer, seqs, **kw) -> list[np.ndarray]:
    return same_on_every_simd_path(lambda: raw_ids(t, seqs, **kw))


def assert_reads_equal(got: list[np.ndarray], want: list, seqs) -> None:
    assert len(got) == len(want)
    for r, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, np.asarray(w, dtype=np.int64).reshape(g.shape), err_msg=f"read {r}: {seqs[r]!r}")


@pytest.fixture(scope="module")
def srr_reads() -> pa.Table:
    path = shared(SRR)
    table = pa.Table.from_batches(list(kmerx.io.read(path)))
    assert table.column("seq").to_pylist() == [s for _, s, _ in parse_fastq(path)]
    return table


@pytest.fixture(scope="module")
def srr_seqs(srr_reads) -> list[bytes]:
    return srr_reads.column("seq").to_pylist()


# ---- direct ---------------------------------------------------------------------------------------
@SETTINGS
@given(reads=reads_st, k=st.integers(1, 15), stride=st.integers(1, 5),
       strand=st.sampled_from(["canonical", "forward", "reverse"]), order=st.sampled_from(["ACGT", "ATCG"]),
       fold=st.booleans())
@example(reads=["ACGT"], k=1, stride=1, strand="canonical", order="ACGT", fold=True)
@example(reads=["", "NNNNNNNN", "ACG"], k=4, stride=1, strand="forward", order="ACGT", fold=True)
@example(reads=["ACGTTGCAacgtRYACGTACGTTT"], k=3, stride=4, strand="reverse", order="ACGT", fold=False)
@example(reads=["GATTACA" * 5], k=15, stride=2, strand="canonical", order="ATCG", fold=True)
def test_direct_matches_reference(reads, k, stride, strand, order, fold):
    t = tok(scheme="direct", k=k, stride=stride, strand=strand, base_order=order, fold_case=fold)
    seqs = seqs_bytes(reads)
    want = ref_direct_batch(seqs, k, stride, strand, order, fold)
    assert_reads_equal(on_every_path(t, reads), want, seqs)


def test_direct_pinned_ids():
    # AAA = code 0, ACG = 0b000110 = 6, CGT = 0b011011 = 27; canonical ACG/CGT: both are each other's rc.
    t = tok(scheme="direct", k=3, strand="forward")
    assert t.encode("ACGT", add_special_tokens=False) == [NSPEC + 6, NSPEC + 27]
    assert tok(scheme="direct", k=3).encode("ACGT", add_special_tokens=False) == [NSPEC + 6, NSPEC + 6]
    assert t.encode("AAANA", add_special_tokens=False) == [NSPEC, UNK, UNK]
    assert t.vocab_size == NSPEC + 64


# ---- hashed -----------------------------------------------------------------------------------------
@SETTINGS
@given(reads=reads_st, k=st.integers(1, 40), stride=st.integers(1, 4),
       strand=st.sampled_from(["canonical", "forward", "reverse"]), h=st.integers(1, 4),
       buckets=st.sampled_from([1, 2, 7, 1000, 1 << 10, 1 << 20, 2**32 - 1 - 256]),
       weight_buckets=st.sampled_from([0, 1, 3, 64]))
@example(reads=["ACGT"], k=1, stride=1, strand="canonical", h=1, buckets=1 << 20, weight_buckets=0)
@example(reads=["", "NNNNNNNNNNNN", "ACG"], k=5, stride=1, strand="canonical", h=2, buckets=1000, weight_buckets=3)
@example(reads=["ACGTACGTTTGACCAacgtNACGTACGTACGGTACC"], k=5, stride=3, strand="forward", h=3,
         buckets=1 << 10, weight_buckets=64)
def test_hashed_matches_reference(reads, k, stride, strand, h, buckets, weight_buckets):
    t = tok(scheme="hashed", k=k, stride=stride, strand=strand, num_hashes=h, buckets=buckets,
            weight_buckets=weight_buckets)
    seqs = seqs_bytes(reads)
    ref = ref_hashed_batch(seqs, k, stride, strand, h, buckets, weight_buckets)
    assert_reads_equal(on_every_path(t, reads), [r[0] for r in ref], seqs)
    if weight_buckets:
        enc = same_on_every_simd_path(lambda: t.encode_batch(reads, add_special_tokens=False, return_tensors="arrow"))
        slots = enc["weight_slots"]
        off = np.asarray(slots.offsets)
        got = [slots.values.to_numpy()[off[r] : off[r + 1]] for r in range(len(seqs))]
        assert_reads_equal(got, [r[1] for r in ref], seqs)


def test_hashed_from_scratch_pinned():
    # Independent of kmerx.kmers: the from-scratch ntHash of test_nthash (no rolling), mod B.
    from test_nthash import ref_nthash

    seq, k, buckets = "ACATGCATGCANTTGCAGGT", 5, 1000
    values, pos = ref_nthash(seq, k, 3, "canonical")
    want = np.full((len(seq) - k + 1, 3), UNK)
    for p, v in zip(pos, values):
        want[p] = [NSPEC + x % buckets for x in v]
    t = tok(scheme="hashed", k=k, buckets=buckets, num_hashes=3)
    np.testing.assert_array_equal(on_every_path(t, [seq])[0], want)


# ---- vocab --------------------------------------------------------------------------------------------
@SETTINGS
@given(reads=reads_st, k=st.sampled_from([1, 2, 3, 5, 11, 31, 32, 33, 40, 64]), stride=st.integers(1, 3),
       strand=st.sampled_from(["canonical", "forward"]), keep=st.integers(0, 100))
@example(reads=["ACGT"], k=1, stride=1, strand="canonical", keep=50)
@example(reads=["", "NNNNNNNN", "AC"], k=3, stride=1, strand="forward", keep=100)
def test_vocab_matches_reference(reads, k, stride, strand, keep):
    # The vocabulary: a seeded subset (keep %) of the batch's k-mers, so some windows are unknown.
    seqs = seqs_bytes(reads)
    codes = set()
    for s in seqs:
        w, ok = windows(s, k, 1)
        codes.update(c for c, good in zip(strand_codes(w, strand), ok) if good)
    codes = sorted(codes)
    rng = np.random.default_rng(keep)
    chosen = [c for c in codes if rng.integers(0, 100) < keep]
    arr = (np.array(chosen, dtype=np.uint64) if k <= 32
           else np.array([[c >> 64, c & (2**64 - 1)] for c in chosen], dtype=np.uint64).reshape(-1, 2))
    vocab = Vocab.from_counts(arr, np.arange(1, len(chosen) + 1), k=k)
    t = Tokenizer(TokenizerConfig(scheme="vocab", k=k, stride=stride, strand=strand), vocab=vocab)
    want = [ref_vocab(s, vocab, k, stride, strand) for s in seqs]
    assert_reads_equal(on_every_path(t, reads), want, seqs)
    assert t.vocab_size == len(vocab)


@pytest.mark.parametrize("k, canonical", [(5, True), (4, False), (33, True)])
def test_vocab_fit_equals_count(srr_reads, k, canonical):
    cfg = TokenizerConfig(scheme="vocab", k=k, strand="canonical" if canonical else "forward",
                          vocab_min_count=2, vocab_max_size=NSPEC + 300)
    t = Tokenizer(cfg).fit(srr_reads)
    counts = count(srr_reads, k, canonical=canonical)
    want = Vocab.from_counts(counts.codes, counts.counts, k=k, min_count=2, max_size=NSPEC + 300)
    assert t.vocab == want
    # fit over an iterable of batches gives the same vocabulary
    assert Tokenizer(cfg).fit(srr_reads.to_batches(max_chunksize=300)).vocab == want
    seqs = srr_reads.column("seq").to_pylist()[:300]
    want_ids = [ref_vocab(s, want, k, 1, cfg.strand) for s in seqs]
    assert_reads_equal(on_every_path(t, seqs), want_ids, seqs)


# ---- lsh: random projection ------------------------------------------------------------------------
@SETTINGS
@given(reads=reads_st, k=st.sampled_from([1, 2, 5, 7, 21, 31, 33, 64]), m=st.sampled_from([1, 8, 16, 24, 31]),
       h=st.integers(1, 3), stride=st.integers(1, 3), canonical=st.booleans(), seed=st.integers(0, 2**20))
@example(reads=["ACGT"], k=1, m=1, h=1, stride=1, canonical=True, seed=0)
@example(reads=["", "NNNNNNNNNNNNNNNNNNNNNNNNN", "ACGTACG"], k=21, m=24, h=2, stride=1, canonical=True, seed=1)
@example(reads=["ACGTTGCAacgtRYACGTACGTTTGGCCAATTGGCATGCATGCAACGTTTTTTGCATGACC" * 2], k=64, m=31, h=1,
         stride=1, canonical=True, seed=2)
@example(reads=["ACGTTGCAacgtRYACGTACGTTTGGCCAATTGGCATGCATGCAACGTTTTTTGCATGACC"], k=5, m=16, h=3, stride=7,
         canonical=False, seed=3)
def test_lsh_projection_matches_reference(reads, k, m, h, stride, canonical, seed):
    t = tok(scheme="lsh", lsh="projection", k=k, m=m, num_hashes=h, stride=stride,
            strand="canonical" if canonical else "forward", seed=seed)
    weights, thresholds = lsh.quantize(**t.hyperplanes)
    seqs = seqs_bytes(reads)
    want = ref_projection(seqs, k, weights, thresholds, stride, canonical)
    assert_reads_equal(on_every_path(t, reads), want, seqs)
    assert t.vocab_size == NSPEC + 2**m


def test_lsh_projection_svd_fit(srr_reads):
    cfg = TokenizerConfig(scheme="lsh", k=21, m=16, num_hashes=2, hyperplanes="svd", seed=5, fit_samples=5000)
    a, b = Tokenizer(cfg).fit(srr_reads), Tokenizer(cfg).fit(srr_reads)
    for n in "abc":
        np.testing.assert_array_equal(a.hyperplanes[n], b.hyperplanes[n])
    assert a.hyperplanes["a"].shape == (2, 16, 21) and a.hyperplanes["c"].shape == (2, 16)
    assert a == b
    other = Tokenizer(cfg.replace(seed=6)).fit(srr_reads)
    assert not np.array_equal(a.hyperplanes["a"], other.hyperplanes["a"])
    seqs = srr_reads.column("seq").to_pylist()[:400]
    weights, thresholds = lsh.quantize(**a.hyperplanes)
    want = ref_projection(seqs, 21, weights, thresholds)
    got = on_every_path(a, seqs)
    assert_reads_equal(got, want, seqs)
    # Each fitted bit splits the data (median thresholds): neither always 0 nor always 1 on real k-mers.
    ids = np.concatenate([g for g in got if len(g)])[:, 0]
    ids = ids[ids >= NSPEC] - NSPEC
    bits = (ids[:, None] >> np.arange(16)) & 1
    assert (bits.mean(axis=0) > 0.02).all() and (bits.mean(axis=0) < 0.98).all()


def test_lsh_projection_svd_needs_fit():
    t = tok(scheme="lsh", k=11, hyperplanes="svd")
    with pytest.raises(ValueError, match="hyperplanes"):
        t.encode_batch(["ACGTACGTACGTACGT"])


def test_lsh_collision_curve_decreases(srr_seqs):
    t = tok(scheme="lsh", k=21, m=16, num_hashes=2, seed=3)
    kmers = np.array([list(s[i : i + 21]) for s in srr_seqs[:200] for i in (0, 30)
                      if b"N" not in s[i : i + 21]], dtype=np.uint8)
    curve = lsh.collision_curve(t, kmers, [0, 1, 2, 4, 8, 16])
    assert curve[0] == 1.0
    assert (np.diff(curve) <= 0).all(), curve


# ---- lsh: bit sampling ---------------------------------------------------------------------------------
@SETTINGS
@given(reads=reads_st, k=st.sampled_from([1, 3, 5, 16, 21, 31, 32, 33, 64]), s=st.integers(1, 16),
       h=st.integers(1, 3), stride=st.integers(1, 3), canonical=st.booleans(), seed=st.integers(0, 2**20))
@example(reads=["ACGT"], k=1, s=1, h=1, stride=1, canonical=True, seed=0)
@example(reads=["", "NNNNNNNNNNNNNNNNNNNNNNN", "ACGT"], k=5, s=5, h=2, stride=1, canonical=False, seed=0)
@example(reads=["ACGTTGCAacgtRYACGTACGTTTGGCCAATTGGCATGCATGCAACGTTTTTTGCATGACCA" * 2], k=64, s=16, h=2,
         stride=2, canonical=True, seed=9)
def test_lsh_bits_matches_reference(reads, k, s, h, stride, canonical, seed):
    s = min(s, k)
    t = tok(scheme="lsh", lsh="bits", k=k, sampled=s, num_hashes=h, stride=stride,
            strand="canonical" if canonical else "forward", seed=seed)
    positions = lsh.bit_positions(k, s, h, seed)
    assert positions.shape == (h, s) and (np.diff(positions, axis=1) > 0).all() and positions.max() < k
    seqs = seqs_bytes(reads)
    want = ref_bits(seqs, k, positions, stride, canonical)
    assert_reads_equal(on_every_path(t, reads), want, seqs)
    assert t.vocab_size == NSPEC + 4**s


# ---- long reads: windows cross the native block size (4096) -----------------------------------------
@pytest.mark.parametrize("stride", [1, 3])
def test_long_reads_every_scheme(stride):
    seqs = rand_reads(11, 3, 9000, 13000)
    bseqs = seqs_bytes(seqs)
    k = 21
    t = tok(scheme="direct", k=13, stride=stride)
    assert_reads_equal(on_every_path(t, seqs), ref_direct_batch(bseqs, 13, stride), bseqs)
    t = tok(scheme="hashed", k=k, stride=stride, num_hashes=2, buckets=12345)
    ref = ref_hashed_batch(bseqs, k, stride, "canonical", 2, 12345)
    assert_reads_equal(on_every_path(t, seqs), [r[0] for r in ref], bseqs)
    t = tok(scheme="lsh", k=k, m=24, stride=stride)
    w, thr = lsh.quantize(**t.hyperplanes)
    assert_reads_equal(on_every_path(t, seqs), ref_projection(bseqs, k, w, thr, stride), bseqs)
    t = tok(scheme="lsh", lsh="bits", k=k, sampled=12, stride=stride)
    pos = lsh.bit_positions(k, 12, 1, 0)
    assert_reads_equal(on_every_path(t, seqs), ref_bits(bseqs, k, pos, stride), bseqs)


# ---- real reads: every scheme ----------------------------------------------------------------------------
def test_real_reads_every_scheme(srr_reads, srr_seqs):
    seqs = srr_seqs
    assert any(b"N" in s for s in seqs)
    t = tok(scheme="direct", k=11)
    assert_reads_equal(on_every_path(t, srr_reads), ref_direct_batch(seqs, 11), seqs)
    t = tok(scheme="direct", k=6, strand="forward", stride=2)
    assert_reads_equal(on_every_path(t, srr_reads), ref_direct_batch(seqs, 6, 2, "forward"), seqs)
    t = tok(scheme="hashed", k=31, buckets=1 << 24, num_hashes=2, weight_buckets=1000)
    ref = ref_hashed_batch(seqs, 31, 1, "canonical", 2, 1 << 24, 1000)
    assert_reads_equal(on_every_path(t, srr_reads), [r[0] for r in ref], seqs)
    t = tok(scheme="hashed", k=21, buckets=1000003, strand="forward")
    ref = ref_hashed_batch(seqs, 21, 1, "forward", 1, 1000003)
    assert_reads_equal(on_every_path(t, srr_reads), [r[0] for r in ref], seqs)
    t = tok(scheme="lsh", k=31, m=24)
    w, thr = lsh.quantize(**t.hyperplanes)
    assert_reads_equal(on_every_path(t, srr_reads), ref_projection(seqs, 31, w, thr), seqs)
    t = tok(scheme="lsh", lsh="bits", k=31, sampled=12, num_hashes=2)
    pos = lsh.bit_positions(31, 12, 2, 0)
    assert_reads_equal(on_every_path(t, srr_reads), ref_bits(seqs, 31, pos), seqs)


@pytest.mark.parametrize("kw", [dict(scheme="direct", k=5), dict(scheme="hashed", k=5), dict(scheme="lsh", k=5),
                                dict(scheme="lsh", lsh="bits", k=5, sampled=3), dict(scheme="vocab", k=5)],
                         ids=["direct", "hashed", "lsh", "lsh-bits", "vocab"])
def test_fold_case_false_is_honoured_or_refused(kw):
    # TokenizerConfig documents fold_case=False as "lowercase bases are unknown"; a scheme that cannot
    # honour it must refuse it (ValueError naming fold_case) rather than fold silently.
    try:
        t = tok(fold_case=False, **kw)
        if kw["scheme"] == "vocab":
            t.fit(["ACGTACGTAAAAACCCCC"])
    except ValueError as e:
        assert "fold_case" in str(e)
        return
    assert t.encode("acgtacgt", add_special_tokens=False) == [UNK] * 4
    assert t.encode("ACGTAcgt", add_special_tokens=False)[0] != UNK


# ---- layout: special tokens, truncation, padding, masks, positions --------------------------------------
def ref_layout(raw, rawpos, prefix, suffix, max_length, truncation, padding, multiple, side, pad_id, h):
    """Python model of the documented layout: prefix + kept tokens + suffix, then padding; a special or
    padding token repeats its id in all h slots. Returns the unpadded rows and (width, padded rows)."""
    rows = []
    for toks, pos in zip(raw, rawpos):
        keep = len(toks)
        if truncation and max_length is not None:
            keep = min(keep, max_length - len(prefix) - len(suffix))
        sl = slice(len(toks) - keep, len(toks)) if truncation == "left" else slice(0, keep)
        ids = ([[x] * h for x in prefix] + [np.atleast_1d(x).tolist() for x in toks[sl]]
               + [[x] * h for x in suffix])
        special = [1] * len(prefix) + [0] * keep + [1] * len(suffix)
        positions = [-1] * len(prefix) + list(pos[sl]) + [-1] * len(suffix)
        rows.append((ids, special, positions, [1] * len(ids)))
    if padding is None or (padding == "max_length" and max_length is None):
        return rows, None
    width = max_length if padding == "max_length" else max((len(r[0]) for r in rows), default=0)
    width = -(-width // multiple) * multiple
    out = []
    for row in rows:
        n = max(width - len(row[0]), 0)
        pad = ([[pad_id] * h] * n, [1] * n, [-1] * n, [0] * n)
        out.append(tuple(p + r if side == "left" else r + p for p, r in zip(pad, row)))
    return rows, (width, out)


@settings(max_examples=60, deadline=None)
@given(reads=st.lists(st.text(alphabet=st.sampled_from(list("ACGTN")), max_size=40), max_size=5),
       scheme=st.sampled_from(["direct", "hashed3"]), add=st.booleans(),
       max_length=st.one_of(st.none(), st.integers(3, 30)),
       truncation=st.sampled_from([None, "right", "left", True, False]),
       padding=st.sampled_from(["longest", "max_length", None, True]), multiple=st.sampled_from([None, 1, 4, 8]),
       side=st.sampled_from(["right", "left"]), two_prefix=st.booleans())
@example(reads=[], scheme="direct", add=True, max_length=None, truncation="right", padding="longest",
         multiple=None, side="right", two_prefix=False)
@example(reads=["", "", ""], scheme="direct", add=True, max_length=None, truncation="right", padding="longest",
         multiple=None, side="right", two_prefix=False)
@example(reads=["", ""], scheme="hashed3", add=False, max_length=None, truncation=None, padding="longest",
         multiple=8, side="left", two_prefix=False)
@example(reads=["ACGTACGTACGTACGTACGT", "ACG"], scheme="direct", add=True, max_length=6, truncation="left",
         padding="max_length", multiple=4, side="left", two_prefix=True)
def test_layout_matches_reference(reads, scheme, add, max_length, truncation, padding, multiple, side, two_prefix):
    prefix = ("[CLS]", "[MASK]") if two_prefix else ("[CLS]",)
    if scheme == "direct":
        t = tok(scheme="direct", k=3, prefix=prefix)
    else:
        t = tok(scheme="hashed", k=3, num_hashes=3, buckets=50, weight_buckets=7, prefix=prefix)
    h = 1 if scheme == "direct" else 3
    pre = [CLS, MASK] if two_prefix else [CLS]
    pre, suf = (pre, [SEP]) if add else ([], [])
    if max_length is not None and max_length < len(pre) + len(suf):
        max_length = len(pre) + len(suf)
    raw = raw_ids(t, reads)
    rawpos = [np.asarray(p) for p in t.encode_batch(reads, add_special_tokens=False, truncation=None,
                                                   return_tensors="arrow", return_positions=True)["positions"].to_pylist()]
    trunc = {True: "right", False: None}.get(truncation, truncation)
    pad = {True: "longest"}.get(padding, padding)
    kw = dict(add_special_tokens=add, max_length=max_length, truncation=truncation, padding=padding,
              pad_to_multiple_of=multiple, padding_side=side, return_positions=True)
    rows, padded = ref_layout(raw, rawpos, pre, suf, max_length, trunc, pad, multiple or 1, side, PAD, h)
    # arrow: unpadded lists
    enc = t.encode_batch(reads, return_tensors="arrow", **kw)
    got_ids = enc["input_ids"].to_pylist()
    assert [[np.atleast_1d(x).tolist() for x in r] for r in got_ids] == [r[0] for r in rows]
    assert enc["special_tokens_mask"].to_pylist() == [r[1] for r in rows]
    assert enc["positions"].to_pylist() == [r[2] for r in rows]
    assert enc["attention_mask"].to_pylist() == [r[3] for r in rows]
    assert enc.lengths.tolist() == [len(r[0]) for r in rows]
    # numpy: padded
    if pad is None:
        with pytest.raises(ValueError, match="padding"):
            t.encode_batch(reads, **kw)
        return
    if pad == "max_length" and max_length is None:
        with pytest.raises(ValueError, match="max_length"):
            t.encode_batch(reads, **kw)
        return
    width, want = padded
    if any(len(r[0]) > width for r in rows):
        with pytest.raises(ValueError, match="max_length|truncation"):
            t.encode_batch(reads, **kw)
        return
    enc = t.encode_batch(reads, **kw)
    ids = enc["input_ids"]
    assert ids.dtype == np.uint32 and ids.shape == ((len(reads), width) if h == 1 else (len(reads), width, h))
    np.testing.assert_array_equal(ids.reshape(len(reads), width, h),
                                  np.array([r[0] for r in want], dtype=np.int64).reshape(len(reads), width, h))
    if h > 1:  # weight slots: the special / padding / [UNK] id on those, a slot in [5, 5 + 7) on k-mers
        slots, first = enc.weight_slots, ids[..., 0]
        own = enc.special_tokens_mask.astype(bool) | (first == UNK)
        np.testing.assert_array_equal(slots[own], first[own])
        assert ((slots[~own] >= NSPEC) & (slots[~own] < NSPEC + 7)).all()
    np.testing.assert_array_equal(enc.special_tokens_mask, np.array([r[1] for r in want]).reshape(len(reads), width))
    np.testing.assert_array_equal(enc.positions, np.array([r[2] for r in want]).reshape(len(reads), width))
    np.testing.assert_array_equal(enc.attention_mask, np.array([r[3] for r in want]).reshape(len(reads), width))
    assert enc.lengths.tolist() == [len(r[0]) for r in rows]
    for name in ("special_tokens_mask", "attention_mask"):
        assert enc[name].dtype == np.uint8
    assert enc.positions.dtype == np.int32


def test_layout_truncation_long_read_with_stride():
    # Left truncation of a long read starts the windows mid-read: positions and ids must follow.
    seq = rand_reads(3, 1, 10000, 10000)[0]
    t = tok(scheme="direct", k=7, stride=3, max_length=100)
    raw = ref_direct(seq.encode(), 7, 3).tolist()
    for side, kept in (("right", raw[:98]), ("left", raw[-98:])):
        enc = t.encode_batch([seq], truncation=side, return_positions=True)
        assert enc.input_ids[0].tolist() == [CLS, *kept, SEP]
        first = 0 if side == "right" else (len(raw) - 98)
        assert enc.positions[0, 1:-1].tolist() == [3 * (first + i) for i in range(98)]


@pytest.mark.parametrize("make", [
    lambda: tok(scheme="hashed", k=21, stride=2, num_hashes=2, weight_buckets=10),
    lambda: tok(scheme="lsh", k=33, m=24, stride=3),
    lambda: tok(scheme="lsh", lsh="bits", k=40, sampled=16),
    lambda: Tokenizer.from_preset("nucleotide-transformer"),
    lambda: Tokenizer.from_preset("caduceus"),
], ids=["hashed", "lsh", "lsh-bits", "nt-pieces", "chars"])
def test_truncation_keeps_the_raw_tokens(make):
    # Right / left truncation keeps the first / last raw tokens, ids and positions alike, also when the
    # kept tokens start deep inside a long read.
    t = make()
    seqs = rand_reads(5, 4, 5000, 9000, "ACGTACGTACGTNNNNNRYacgt")
    full = t.encode_batch(seqs, add_special_tokens=False, truncation=None, return_tensors="arrow",
                          return_positions=True)
    for side in ("right", "left"):
        enc = t.encode_batch(seqs, add_special_tokens=False, truncation=side, max_length=777,
                             return_tensors="arrow", return_positions=True)
        for name in ("input_ids", "positions", "weight_slots"):
            if name in full:
                for r, (a, b) in enumerate(zip(full[name].to_pylist(), enc[name].to_pylist())):
                    assert b == (a[:777] if side == "right" else a[-777:]), (side, name, r)


def test_layout_defaults_and_overrides():
    # forward 2-mers of ACGTA: AC 1, CG 6, GT 11, TA 12 (+ 5 specials)
    t = tok(scheme="direct", k=2, strand="forward", max_length=5, padding="max_length", padding_side="left",
            truncation="left")
    enc = t.encode_batch(["ACGTA", "A"])
    assert enc.input_ids.tolist() == [[CLS, 11, 16, 17, SEP], [PAD, PAD, PAD, CLS, SEP]]
    enc = t.encode_batch(["ACGTA"], truncation="right", padding_side="right", max_length=4)
    assert enc.input_ids.tolist() == [[CLS, 6, 11, SEP]]
    enc = t.encode_batch(["ACGTA"], truncation=None, padding="longest")
    assert enc.input_ids.tolist() == [[CLS, 6, 11, 16, 17, SEP]]
    enc = t.encode_batch(["ACGTA"], truncation=False, padding=True, pad_to_multiple_of=4, padding_side="right")
    assert enc.input_ids.tolist() == [[CLS, 6, 11, 16, 17, SEP, PAD, PAD]]
    # encode(): one read as a plain list
    assert t.encode("ACGTA") == [CLS, 11, 16, 17, SEP]
    # str, bytes, a ReadBatch and Arrow arrays are all accepted
    for seqs in ("ACGTA", b"ACGTA", pa.array(["ACGTA"]), pa.array([b"ACGTA"], pa.large_binary()),
                 pa.chunked_array([pa.array(["ACGTA"])]), pa.RecordBatch.from_pydict({"seq": [b"ACGTA"]})):
        assert t.encode_batch(seqs).input_ids.tolist() == [[CLS, 11, 16, 17, SEP]]


def test_multi_hash_shapes_and_padding():
    t = tok(scheme="hashed", k=4, num_hashes=4, buckets=97, weight_buckets=9)
    enc = t.encode_batch(["ACGTACGT", "ACG", ""], padding="max_length", max_length=12, return_positions=True)
    assert enc.input_ids.shape == (3, 12, 4)
    assert enc.weight_slots.shape == enc.attention_mask.shape == enc.positions.shape == (3, 12)
    assert (enc.input_ids[1, 2:] == PAD).all() and (enc.weight_slots[1, 2:] == PAD).all()
    assert (enc.input_ids[1, 0] == CLS).all() and enc.weight_slots[1, 0] == CLS
    body = enc.input_ids[0, 1:6]
    assert ((body >= NSPEC) & (body < NSPEC + 97)).all()
    assert ((enc.weight_slots[0, 1:6] >= NSPEC) & (enc.weight_slots[0, 1:6] < NSPEC + 9)).all()
    arrow = t.encode_batch(["ACGTACGT", "ACG", ""], return_tensors="arrow")
    assert arrow.input_ids.type == pa.large_list(pa.list_(pa.uint32(), 4))
    assert [len(x) for x in arrow.input_ids.to_pylist()] == [7, 2, 2]
    np.testing.assert_array_equal(np.array(arrow.input_ids.to_pylist()[0]), enc.input_ids[0, :7])
    assert arrow.weight_slots.to_pylist()[0] == enc.weight_slots[0, :7].tolist()
    # encode() gives the first hash function's ids
    assert t.encode("ACGTACGT") == enc.input_ids[0, :7, 0].tolist()
    assert "weight_slots" not in tok(scheme="hashed", k=4, num_hashes=4).encode_batch(["ACGT"])


def test_empty_batches():
    t = tok(scheme="direct", k=3)
    enc = t.encode_batch([])
    assert enc.input_ids.shape == (0, 0) and enc.lengths.shape == (0,)
    enc = t.encode_batch([], return_tensors="arrow")
    assert len(enc.input_ids) == 0
    enc = t.encode_batch(["", "", "AC"], return_positions=True)
    assert enc.input_ids.tolist() == [[CLS, SEP]] * 3
    assert enc.positions.tolist() == [[-1, -1]] * 3
    enc = t.encode_batch(["", ""], add_special_tokens=False)
    assert enc.input_ids.shape == (2, 0)
    enc = t.encode_batch(["", ""], add_special_tokens=False, pad_to_multiple_of=4)
    assert enc.input_ids.shape == (2, 0)


def test_numpy_and_arrow_agree_on_real_reads(srr_reads):
    for t in (Tokenizer.from_preset("dnabert-6"), Tokenizer.from_preset("nucleotide-transformer"),
              tok(scheme="hashed", k=21, num_hashes=2, weight_buckets=64), Tokenizer.from_preset("hyenadna")):
        a = t.encode_batch(srr_reads, return_tensors="arrow", return_positions=True)
        n = t.encode_batch(srr_reads, return_positions=True)
        mask = n.attention_mask.astype(bool)
        np.testing.assert_array_equal(mask.sum(axis=1), a.lengths)
        for name in ("input_ids", "special_tokens_mask", "positions", "weight_slots"):
            if name in n:
                flat = a[name].values
                if pa.types.is_fixed_size_list(flat.type):
                    flat = flat.flatten()
                np.testing.assert_array_equal(n[name][mask].reshape(-1), flat.to_numpy(), err_msg=name)


# ---- decode --------------------------------------------------------------------------------------------
def test_decode_direct_round_trip():
    t = tok(scheme="direct", k=4, strand="forward")
    enc = t.encode_batch(["ACGTTGCA", "GGNCC"])
    assert t.decode(t.encode("ACGTTGCA")) == "[CLS] ACGT CGTT GTTG TTGC TGCA [SEP]"
    assert t.batch_decode(enc.input_ids) == ["[CLS] ACGT CGTT GTTG TTGC TGCA [SEP]", "[CLS] [UNK] [UNK] [SEP]"]
    assert t.batch_decode(enc.input_ids, skip_special_tokens=True) == ["ACGT CGTT GTTG TTGC TGCA", ""]
    arrow = t.encode_batch(["ACGTTGCA", "GGNCC"], return_tensors="arrow").input_ids
    assert t.batch_decode(arrow) == t.batch_decode(enc.input_ids)
    assert t.convert_ids_to_tokens([5, 5 + 255, CLS]) == ["AAAA", "TTTT", "[CLS]"]
    assert t.token_to_id("[SEP]") == SEP
    # canonical ids decode to the canonical k-mer (lexicographically smaller strand in ACGT order)
    c = tok(scheme="direct", k=3)
    assert c.convert_ids_to_tokens(c.encode("TTT", add_special_tokens=False)) == ["AAA"]


@SETTINGS
@given(read=st.text(alphabet=st.sampled_from(list("ACGT")), max_size=60), k=st.integers(1, 8),
       order=st.sampled_from(["ACGT", "ATCG", "TGCA"]))
@example(read="", k=1, order="ACGT")
def test_decode_direct_forward_inverts(read, k, order):
    t = tok(scheme="direct", k=k, strand="forward", base_order=order)
    ids = t.encode_batch([read], add_special_tokens=False, return_tensors="arrow").input_ids[0].values
    assert t.convert_ids_to_tokens(ids) == [read[i : i + k] for i in range(len(read) - k + 1)]


def test_encode_read_without_tokens():
    # A read shorter than k has no tokens: encode() gives [] (or just the special tokens).
    t = tok(scheme="direct", k=5)
    assert t.encode("ACG") == [CLS, SEP]
    assert t.encode("ACG", add_special_tokens=False) == []
    assert t.encode("", add_special_tokens=False) == []


def test_decode_vocab_and_presets(srr_reads):
    t = Tokenizer(TokenizerConfig(scheme="vocab", k=33, vocab_max_size=NSPEC + 50)).fit(srr_reads)
    ids = list(range(NSPEC, len(t.vocab)))
    assert t.convert_ids_to_tokens(ids) == [t.vocab.kmer_of(i) for i in ids]
    nt = Tokenizer.from_preset("nucleotide-transformer")
    assert nt.decode(nt.encode("ACGTACGTNAC")) == "<cls> ACGTAC G T N A C"
    assert nt.vocab_size == 4107 and nt.token_to_id("<eos>") == 4105 and nt.token_to_id("N") == 4104
    hy = Tokenizer.from_preset("hyenadna")
    assert hy.decode(hy.encode("ACGTN"), skip_special_tokens=True) == "ACGTN"
    assert hy.batch_decode(hy.encode_batch(["ACGTN", "A"]).input_ids) == ["ACGTN[SEP]", "A[SEP]"]
    db = Tokenizer.from_preset("dnabert-3")
    assert db.decode(db.encode("ACGTA")) == "[CLS] ACG CGT GTA [SEP]"


@pytest.mark.parametrize("kw", [dict(scheme="hashed", k=5), dict(scheme="lsh", k=5, m=8),
                                dict(scheme="lsh", lsh="bits", k=5, sampled=3)])
def test_decode_hashed_and_lsh_refuse(kw):
    t = tok(**kw)
    ids = t.encode("ACGTACGT")
    with pytest.raises(ValueError, match="bucket"):
        t.decode(ids)
    with pytest.raises(ValueError, match="bucket"):
        t.convert_ids_to_tokens(ids)
    assert t.convert_ids_to_tokens([CLS, SEP]) == ["[CLS]", "[SEP]"]  # specials still decode


# ---- save / load / from_config ----------------------------------------------------------------------------
SAVED = ["direct", "hashed", "vocab", "vocab-k40", "lsh-svd", "lsh-random", "lsh-bits", *PRESETS]


@pytest.fixture(scope="module")
def fitted(srr_reads) -> dict[str, Tokenizer]:
    return {
        "vocab": Tokenizer(TokenizerConfig(scheme="vocab", k=7, vocab_max_size=NSPEC + 500)).fit(srr_reads),
        "vocab-k40": Tokenizer(TokenizerConfig(scheme="vocab", k=40, strand="forward")).fit(srr_reads),
        "lsh-svd": Tokenizer(TokenizerConfig(scheme="lsh", k=15, m=12, num_hashes=2, hyperplanes="svd",
                                             fit_samples=3000)).fit(srr_reads),
    }


def make_saved(name: str, fitted) -> Tokenizer:
    if name in fitted:
        return fitted[name]
    if name in PRESETS:
        return Tokenizer.from_preset(name)
    return {"direct": lambda: tok(scheme="direct", k=9, stride=2, strand="reverse", max_length=40, padding_side="left"),
            "hashed": lambda: tok(scheme="hashed", k=25, num_hashes=3, weight_buckets=100, buckets=1 << 16),
            "lsh-random": lambda: tok(scheme="lsh", k=31, m=20, num_hashes=2, seed=7),
            "lsh-bits": lambda: tok(scheme="lsh", lsh="bits", k=21, sampled=10, num_hashes=3, seed=4)}[name]()


@pytest.mark.parametrize("name", SAVED)
def test_save_load_round_trip(name, tmp_path, srr_reads, fitted):
    t = make_saved(name, fitted)
    seqs = srr_reads.slice(0, 200)
    before = t.encode_batch(seqs, return_positions=True)  # lazily built state (hyperplanes) exists now
    path = tmp_path / "tok.json"
    t.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "kmerx.tokenizer" and doc["version"] == 1 and doc["config"] == t.config.to_dict()
    for loaded in (Tokenizer.load(path), Tokenizer.load(str(path)), Tokenizer.from_config(path)):
        assert loaded.config == t.config and loaded.vocab_size == t.vocab_size
        assert loaded.vocab == t.vocab
        after = loaded.encode_batch(seqs, return_positions=True)
        assert before.keys() == after.keys()
        for key in before:
            np.testing.assert_array_equal(before[key], after[key], err_msg=f"{t}: {key}")
    assert Tokenizer.load(path) == t  # equal as loaded, before it encodes anything


def test_equality():
    assert tok(scheme="direct", k=5) == tok(scheme="direct", k=5)
    assert tok(scheme="direct", k=5) != tok(scheme="direct", k=6)
    assert tok(scheme="direct", k=5) != "not a tokenizer"
    a, b = tok(scheme="lsh", k=5), tok(scheme="lsh", k=5)
    a.encode("ACGTACGT")  # builds a's random hyperplanes, not b's: still the same tokenizer
    assert a == b


def test_from_config_sources(tmp_path):
    cfg = TokenizerConfig(scheme="hashed", k=17, buckets=4099, num_hashes=2, prefix=("[CLS]",), suffix=())
    want = Tokenizer(cfg)
    assert Tokenizer.from_config(cfg) == want
    assert Tokenizer.from_config(cfg.to_dict()) == want
    assert Tokenizer.from_config({"scheme": "hashed", "k": 17, "buckets": 4099, "num_hashes": 2,
                                  "suffix": []}) == want
    (tmp_path / "c.json").write_text(cfg.to_json())
    assert Tokenizer.from_config(tmp_path / "c.json") == want
    assert Tokenizer.from_config(str(tmp_path / "c.json")) == want
    (tmp_path / "c.toml").write_text('scheme = "hashed"\nk = 17\nbuckets = 4099\nnum_hashes = 2\n'
                                     'prefix = ["[CLS]"]\nsuffix = []\n')
    assert Tokenizer.from_config(tmp_path / "c.toml") == want
    for name in PRESETS:
        assert Tokenizer.from_config(name) == Tokenizer.from_preset(name)
        assert Tokenizer.from_config(name).config == PRESETS[name]
    assert Tokenizer.from_preset("dnabert-6", max_length=128).config.max_length == 128
    assert TokenizerConfig.from_json(cfg.to_json()) == cfg
    assert cfg.digest() == TokenizerConfig.from_dict(cfg.to_dict()).digest()


def test_saved_file_errors_name_the_file(tmp_path):
    good = tmp_path / "good.json"
    tok(scheme="direct", k=3).save(good)
    doc = json.loads(good.read_text())
    cases = {"format.json": {**doc, "format": "kmerx.vocab"}, "version.json": {**doc, "version": 99},
             "noversion.json": {k: v for k, v in doc.items() if k != "version"}}
    for name, bad in cases.items():
        path = tmp_path / name
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=name):
            Tokenizer.load(path)
    with pytest.raises(ValueError, match="version"):
        Tokenizer.load(tmp_path / "version.json")
    with pytest.raises(ValueError, match="version"):
        Tokenizer.from_config(tmp_path / "version.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ValueError, match="junk.json"):
        Tokenizer.load(tmp_path / "junk.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json"):
        Tokenizer.load(tmp_path / "list.json")
    # a bad embedded vocabulary names the file too
    t = Tokenizer(TokenizerConfig(scheme="vocab", k=3)).fit(["ACGTACGTAC"])
    t.save(tmp_path / "v.json")
    doc = json.loads((tmp_path / "v.json").read_text())
    doc["state"]["vocab"]["version"] = 7
    (tmp_path / "v.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="v.json"):
        Tokenizer.load(tmp_path / "v.json")
    with pytest.raises(ValueError, match="missing.json"):
        Tokenizer.from_config(tmp_path / "missing.json")


# ---- bad arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, name", [
    (dict(scheme="bpe"), "scheme"),
    (dict(scheme="direct", k=16), "k"), (dict(scheme="direct", k=0), "k"), (dict(scheme="pieces", k=16, alphabet="ACGT"), "k"),
    (dict(scheme="lsh", k=65), "k"), (dict(scheme="vocab", k=65), "k"), (dict(scheme="hashed", k=0), "k"),
    (dict(strand="both"), "strand"), (dict(stride=0), "stride"),
    (dict(buckets=0), "buckets"), (dict(buckets=2**32), "buckets"),
    (dict(scheme="lsh", m=0), "m"), (dict(scheme="lsh", m=32), "m"),
    (dict(scheme="lsh", lsh="bits", k=5, sampled=6), "sampled"), (dict(scheme="lsh", lsh="bits", sampled=17), "sampled"),
    (dict(scheme="lsh", lsh="minhash"), "lsh"), (dict(hyperplanes="pca"), "hyperplanes"),
    (dict(num_hashes=0), "num_hashes"), (dict(num_hashes=64), "num_hashes"),
    (dict(weight_buckets=-1), "weight_buckets"), (dict(scheme="direct", k=3, weight_buckets=8), "weight_buckets"),
    (dict(truncation="middle"), "truncation"), (dict(padding="shortest"), "padding"),
    (dict(padding_side="top"), "padding_side"), (dict(pad_to_multiple_of=0), "pad_to_multiple_of"),
    (dict(max_length=1), "max_length"), (dict(base_order="ACGG"), "base_order"),
    (dict(unk_token="<unk>"), "unk_token"), (dict(pad_token="<pad>"), "pad_token"),
    (dict(prefix=("<cls>",)), "<cls>"), (dict(specials=("[UNK]", "[UNK]")), "distinct"),
    (dict(scheme="chars"), "alphabet"), (dict(alphabet="AAC"), "alphabet"),
    (dict(seed=-1), "seed"), (dict(fit_samples=1), "fit_samples"), (dict(vocab_max_size=2), "vocab_max_size"),
])
def test_config_errors_name_the_argument(kw, name):
    with pytest.raises(ValueError, match=name):
        TokenizerConfig(**kw)


@pytest.mark.parametrize("kw, name", [(dict(k=3.0), "k"), (dict(k=True), "k"), (dict(buckets="big"), "buckets"),
                                      (dict(m=2.5), "m"), (dict(max_length=10.0), "max_length")])
def test_config_type_errors_name_the_argument(kw, name):
    with pytest.raises(TypeError, match=name):
        TokenizerConfig(**kw)


def test_tokenizer_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="colour"):
        TokenizerConfig.from_dict({"scheme": "direct", "colour": "red"})
    with pytest.raises(ValueError, match="colour"):
        Tokenizer.from_config({"colour": "red"})
    with pytest.raises(ValueError, match="colour"):
        TokenizerConfig().replace(colour="red")
    (tmp_path / "c.toml").write_text('scheme = "direct"\nk = 3\ncolour = "red"\n')
    with pytest.raises(ValueError, match="colour"):
        Tokenizer.from_config(tmp_path / "c.toml")
    with pytest.raises(TypeError, match="config"):
        Tokenizer.from_config(42)
    with pytest.raises(TypeError, match="config"):
        Tokenizer({"scheme": "direct"})
    with pytest.raises(ValueError, match="config|preset"):
        Tokenizer.from_config("dnabert-7")
    with pytest.raises(ValueError, match="preset"):
        Tokenizer.from_preset("dnabert-7")
    for scheme in ("vocab", "lsh"):
        with pytest.raises(ValueError, match="strand"):
            tok(scheme=scheme, k=5, strand="reverse")
    with pytest.raises(TypeError, match="vocab"):
        Tokenizer(TokenizerConfig(scheme="vocab", k=3), vocab="ACG")
    v = Vocab.from_counts(np.array([1, 2], dtype=np.uint64), [3, 4], k=4)
    with pytest.raises(ValueError, match="vocab"):
        Tokenizer(TokenizerConfig(scheme="vocab", k=3), vocab=v)
    with pytest.raises(ValueError, match="vocab"):
        tok(scheme="vocab", k=3).encode_batch(["ACGT"])
    with pytest.raises(ValueError, match="k-mers"):
        tok(scheme="lsh", k=11, hyperplanes="svd").fit(["ACGTACG", "NNNNNNNNNNNNNNN"])
    t = tok(scheme="direct", k=3)
    with pytest.raises(ValueError, match="max_length"):
        t.encode_batch(["ACGT"], padding="max_length")
    with pytest.raises(ValueError, match="padding"):
        t.encode_batch(["ACGT"], padding=None)
    with pytest.raises(ValueError, match="padding"):
        t.encode_batch(["ACGT"], padding="maximal")
    with pytest.raises(ValueError, match="truncation"):
        t.encode_batch(["ACGT"], truncation="middle")
    with pytest.raises(ValueError, match="padding_side"):
        t.encode_batch(["ACGT"], padding_side="up")
    with pytest.raises(ValueError, match="max_length"):
        t.encode_batch(["ACGT"], max_length=1)
    with pytest.raises(ValueError, match="return_tensors"):
        t.encode_batch(["ACGT"], return_tensors="pt")
    with pytest.raises(TypeError, match="seqs"):
        t.encode_batch(12345)
    # a read longer than the padded width without truncation: the error says how to fix it
    with pytest.raises(ValueError, match="max_length|truncation"):
        t.encode_batch(["ACGTACGTACGT"], padding="max_length", max_length=5, truncation=None)
    with pytest.raises(ValueError, match="ids"):
        t.convert_ids_to_tokens([t.vocab_size])
    with pytest.raises(ValueError, match="ids"):
        t.convert_ids_to_tokens([-1])
    with pytest.raises(ValueError, match="token"):
        t.token_to_id("ACG")


def test_encode_batch_pad_to_multiple_of_zero():
    # The config refuses pad_to_multiple_of=0; the per-call override must too, not read it as None.
    t = tok(scheme="direct", k=3)
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        t.encode_batch(["ACGT"], pad_to_multiple_of=0)


def test_simd_paths_exist():
    # The AVX2 kernels are only compared when this CPU has them; say so rather than pass silently.
    if len(SIMD) == 1:
        pytest.skip("this CPU has no AVX2: only the scalar path ran")
    with simd_level("avx2"):
        assert kmerx.simd_level() == "avx2"


def test_needs_fit_until_the_state_is_learned():
    reads = ["ACGTACGTTGCAACGTAGGCTAGCTAGGATCCATG" * 4]
    for cfg in ({"scheme": "vocab", "k": 5}, {"scheme": "lsh", "k": 7, "m": 4, "hyperplanes": "svd"}):
        tok = Tokenizer.from_config(cfg)
        assert tok.needs_fit
        with pytest.raises(ValueError, match="fit"):
            tok.encode_batch(reads)
        assert not tok.fit(reads).needs_fit
        tok.encode_batch(reads)
    assert not Tokenizer.from_config({"scheme": "lsh", "k": 7, "m": 4}).needs_fit


def test_native_hashed_scheme_rejects_bad_k_first():
    from kmerx import _core

    for k in (0, -5):
        with pytest.raises(ValueError, match="k must be >= 1"):
            _core.hashed_scheme(k, 1, "canonical", 1, 16, 0, 5, 1)
