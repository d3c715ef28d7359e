"""ntHash 2: btllib oracle dumps (every row), a slow from-scratch reference, invariants, SIMD paths,
argument errors, and indexlr-style minimizers against a slow reference."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import SIMD, raw_bytes, ref_records, same_on_every_simd_path, shared, simd_level

import kmerx
from kmerx import kmers

M64 = (1 << 64) - 1
SEED = {"A": 0x3C8BFBB395C60474, "C": 0x3193C18562A02B4C, "G": 0x20323ED082572324, "T": 0x295549F54BE24456}
COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}
MULTISEED = 0x90B45D39FB6DA1FA



# ---- slow reference: every k-mer hashed from scratch, no rolling ---------------------------------
def srol(x: int, d: int) -> int:
    lo, hi = x & ((1 << 33) - 1), x >> 33
    a, b = d % 33, d % 31
    lo = ((lo << a) | (lo >> (33 - a))) & ((1 << 33) - 1)
    hi = ((hi << b) | (hi >> (31 - b))) & ((1 << 31) - 1)
    return (hi << 33) | lo


def ref_kmer(w: str) -> tuple[int, int]:
    k, f, r = len(w), 0, 0
    for i, ch in enumerate(w):
        f ^= srol(SEED[ch], k - 1 - i)
        r ^= srol(SEED[COMP[ch]], i)
    return f, r


def ref_extend(base: int, k: int, m: int) -> list[int]:
    out = [base]
    for j in range(1, m):
        t = (base * (j ^ (k * MULTISEED))) & M64
        out.append(t ^ (t >> 27))
    return out


def ref_nthash(seq: str, k: int, m: int = 1, strand: str = "canonical") -> tuple[list, list]:
    up = seq.upper()
    values, pos = [], []
    for p in range(len(up) - k + 1):
        w = up[p : p + k]
        if any(ch not in "ACGT" for ch in w):
            continue
        f, r = ref_kmer(w)
        base = {"forward": f, "reverse": r, "canonical": (f + r) & M64}[strand]
        values.append(base if m == 1 else ref_extend(base, k, m))
        pos.append(p)
    return values, pos


def ref_minimizers(seq: str, k: int, w: int) -> tuple[list, list]:
    if len(seq) < k or w > len(seq) - k + 1:
        return [], []
    h, p = ref_nthash(seq, k)
    out_h, out_p, last = [], [], -1
    for i in range(w - 1, len(h)):
        win = range(i - w + 1, i + 1)
        best = min(h[j] for j in win)
        j = max(j for j in win if h[j] == best)  # rightmost on ties
        if p[j] > last and h[j] != M64:
            last = p[j]
            out_h.append(h[j])
            out_p.append(p[j])
    return out_h, out_p


# ---- oracle: btllib 1.4.10 dumps, every row ------------------------------------------------------
def oracle_rows(name: str) -> list[list[str]]:
    text = raw_bytes(shared(f"oracle/nthash/{name}")).decode()
    return [ln.split("\t") for ln in text.split("\n")[1:] if ln]


ORACLES = [
    ("lambda_virus.k21.h3.tsv.gz", "unit/lambda_virus.fa", 21, 3),
    ("MT-human.k21.h1.tsv.gz", "unit/MT-human.fa", 21, 1),
    ("MT-human.k31.h1.tsv.gz", "unit/MT-human.fa", 31, 1),
    ("SRR059298_first2k.k21.h1.tsv.gz", "unit/SRR059298_first2k.fastq", 21, 1),
]


def check_oracle(rows, seqs, k, m):
    def flat(strand, num_hashes):
        values, positions = kmers.nthash(seqs, k, num_hashes=num_hashes, strand=strand, positions=True)
        v = values.flatten()
        v = v.flatten() if num_hashes > 1 else v
        return (
            np.asarray(v).reshape(-1, num_hashes),
            np.asarray(values.offsets),
            np.asarray(positions.flatten()),
        )

    want = np.array([[int(x) for x in r[3:]] for r in rows], dtype=np.uint64).reshape(len(rows), 2 + m)
    hashes, off, pos = flat("canonical", m)
    assert off[-1] == len(rows)
    np.testing.assert_array_equal(np.repeat(np.arange(len(seqs)), np.diff(off)), [int(r[0]) for r in rows])
    np.testing.assert_array_equal(pos, [int(r[2]) for r in rows])
    np.testing.assert_array_equal(hashes, want[:, 2:])
    np.testing.assert_array_equal(flat("forward", 1)[0][:, 0], want[:, 0])
    np.testing.assert_array_equal(flat("reverse", 1)[0][:, 0], want[:, 1])


def test_upstream_check_vector(simd):
    rows = [
        ln.split("\t")
        for ln in raw_bytes(shared("oracle/nthash/ACATGCATGCA.k5.h3.tsv")).decode().split("\n")[1:]
        if ln
    ]
    rows = [["0", "x", *r] for r in rows]
    check_oracle(rows, ["ACATGCATGCA"], 5, 3)
    assert kmers.nthash("ACATGCATGCA", 5).to_pylist()[0][1] == 0x38CC00F940AEBDAE


@pytest.mark.parametrize("oracle,inp,k,m", ORACLES)
def test_btllib_oracle(simd, oracle, inp, k, m):
    rows = oracle_rows(oracle)
    recs = ref_records(raw_bytes(shared(inp)))
    seqs = [s for _, s, _ in recs]
    names = {int(r[0]): r[1] for r in rows}
    for i, name in names.items():
        assert recs[i][0].split()[0] == name
    check_oracle(rows, seqs, k, m)


# ---- properties against the slow reference -------------------------------------------------------
def check_against_ref(seqs, k, m, strand):
    values, positions = kmers.nthash(seqs, k, num_hashes=m, strand=strand, positions=True)
    assert isinstance(values, pa.LargeListArray)
    assert values.type.value_type == (pa.uint64() if m == 1 else pa.list_(pa.uint64(), m))
    assert positions.type.value_type == pa.int32()
    got_v, got_p = values.to_pylist(), positions.to_pylist()
    assert len(got_v) == len(seqs)
    for i, s in enumerate(seqs):
        want_v, want_p = ref_nthash(s, k, m, strand)
        assert got_v[i] == want_v, (i, s, k, m, strand)
        assert got_p[i] == want_p


@pytest.mark.parametrize("level", SIMD)
@settings(max_examples=150, deadline=None)
@given(
    seqs=st.lists(st.text(alphabet="ACGTacgtNnRX", max_size=150), max_size=5),
    k=st.one_of(st.integers(1, 40), st.integers(60, 130)),
    m=st.sampled_from([1, 1, 2, 3, 7]),
    strand=st.sampled_from(kmers.STRANDS),
)
@example(seqs=["ACGT"], k=1, m=1, strand="canonical")
@example(seqs=[], k=5, m=1, strand="canonical")
@example(seqs=[""], k=5, m=2, strand="forward")
@example(seqs=["NNNNNNNNNN"], k=3, m=1, strand="canonical")
@example(seqs=["ACG"], k=4, m=1, strand="canonical")  # shorter than k
@example(seqs=["ACGTACGTAC"], k=9, m=1, strand="canonical")  # one base longer than k
@example(seqs=["NACGTACGTN", "ACGTNACGTA"], k=4, m=1, strand="reverse")  # N at the window edges
@example(seqs=["acgtTGCAacgg"], k=5, m=3, strand="canonical")  # lowercase
@example(seqs=["ACGT" * 30], k=100, m=2, strand="canonical")  # k > 64
def test_matches_reference(level, seqs, k, m, strand):
    with simd_level(level):
        check_against_ref(seqs, k, m, strand)


@pytest.mark.parametrize("k", [1, 5, 21, 31, 33, 64, 100])
@pytest.mark.parametrize("strand", kmers.STRANDS)
def test_long_runs_match_reference(simd, k, strand):
    # Runs past the AVX2 threshold (64 k-mers) with 0..3 k-mers left after the 4 quarters, N-separated.
    rng = random.Random(k)
    parts = ["".join(rng.choice("ACGTacgt") for _ in range(n)) for n in (900, k + 63, k + 64, k + 66, 301, k)]
    check_against_ref(["N".join(parts), "".join(rng.choice("ACGT") for _ in range(700))], k, 1, strand)


def test_invariants():
    rng = random.Random(5)
    s = "".join(rng.choice("ACGT") for _ in range(500))
    rc = s[::-1].translate(str.maketrans("ACGT", "TGCA"))
    for k in (1, 7, 31, 90):
        fwd = np.asarray(kmers.nthash(s, k, strand="forward").flatten())
        rev = np.asarray(kmers.nthash(s, k, strand="reverse").flatten())
        can = np.asarray(kmers.nthash(s, k).flatten())
        np.testing.assert_array_equal(can, fwd + rev)
        # the reverse hash of s is the forward hash of its reverse complement, read backwards
        np.testing.assert_array_equal(rev, np.asarray(kmers.nthash(rc, k, strand="forward").flatten())[::-1])
        np.testing.assert_array_equal(can, np.asarray(kmers.nthash(rc, k).flatten())[::-1])
        # hash 0 of a multi-hash call is the single hash
        multi = np.asarray(kmers.nthash(s, k, num_hashes=4).flatten().flatten()).reshape(-1, 4)
        np.testing.assert_array_equal(multi[:, 0], can)


def assert_simd_paths_agree(data, offsets, k, **kw):
    """Every SIMD path this CPU can run gives the scalar path's values, offsets and positions."""
    same_on_every_simd_path(lambda: kmers.nthash_numpy(data, offsets, k, **kw))


@pytest.mark.parametrize("threads", [1, 2])
def test_simd_paths_identical(threads):
    rng = np.random.default_rng(3)
    data = np.frombuffer(b"ACGTacgtN", np.uint8)[rng.choice(9, 300_000, p=[0.12] * 8 + [0.04])]
    data = np.concatenate([data, np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 100_000)]])
    offsets = np.unique(np.concatenate([[0, data.size], rng.integers(0, data.size, 300)])).astype(np.int64)
    kmerx.set_num_threads(threads)
    try:
        for k, m, strand in (
            (1, 1, "canonical"),
            (15, 1, "forward"),
            (31, 1, "canonical"),
            (31, 3, "reverse"),
            (77, 2, "canonical"),
        ):
            assert_simd_paths_agree(data, offsets, k, num_hashes=m, strand=strand, positions=True)
    finally:
        kmerx.set_num_threads(0)


def test_numpy_api_shapes():
    data = np.frombuffer(b"ACGTNACGTACGT", np.uint8)
    offsets = np.array([0, 4, 13], np.int64)
    v, o = kmers.nthash_numpy(data, offsets, 3)
    assert v.dtype == np.uint64 and v.shape == (2 + 6,)
    np.testing.assert_array_equal(o, [0, 2, 8])
    v, o, p = kmers.nthash_numpy(data, offsets, 3, num_hashes=5, positions=True)
    assert v.shape == (8, 5) and p.dtype == np.int32
    np.testing.assert_array_equal(p, [0, 1, 1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"k": 0}, ValueError, "k must be >= 1, got 0"),
        ({"k": 2.0}, TypeError, "k must be an int"),
        ({"k": 5, "num_hashes": 0}, ValueError, "num_hashes must be in 1..64, got 0"),
        ({"k": 5, "num_hashes": 65}, ValueError, "num_hashes must be in 1..64, got 65"),
        ({"k": 5, "strand": "both"}, ValueError, "strand must be one of .* got 'both'"),
        ({"k": 5, "device": "tpu"}, ValueError, "device must be one of .* got 'tpu'"),
    ],
)
def test_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        kmers.nthash(["ACGTACGT"], **kw)


def test_native_errors_name_the_argument():
    data, offsets = np.frombuffer(b"ACGT", np.uint8), np.array([0, 4], np.int64)
    with pytest.raises(ValueError, match="k must be >= 1, got -3"):
        kmerx._core.nthash(data, offsets, -3, 1, "canonical", False)
    with pytest.raises(ValueError, match="num_hashes must be in 1..64, got 99"):
        kmerx._core.nthash(data, offsets, 3, 99, "canonical", False)
    with pytest.raises(ValueError, match="strand must be"):
        kmerx._core.nthash(data, offsets, 3, 1, "up", False)
    with pytest.raises(ValueError, match="offsets"):
        kmerx._core.nthash(data, np.array([0, 9], np.int64), 3, 1, "canonical", False)
    with pytest.raises(ValueError, match="w must be >= 1, got 0"):
        kmerx._core.nthash_minimizers(data, offsets, 3, 0)


# ---- minimizers ----------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    seqs=st.lists(st.text(alphabet="ACGTacgtN", max_size=150), max_size=4),
    k=st.integers(1, 40),
    w=st.integers(1, 30),
)
@example(seqs=[], k=5, w=3)
@example(seqs=["NNNNNNNN"], k=3, w=2)
@example(seqs=["ACGTA"], k=5, w=1)
@example(seqs=["ACGTA"], k=5, w=2)  # shorter than k + w - 1
@example(seqs=["AAAAAAAAAAAAAAAAAAAA"], k=3, w=4)  # all ties: the rightmost wins
@example(seqs=["ACGTTGCANNNNNNACGTTGCAAC"], k=4, w=3)  # windows run across the N gap
def test_minimizers_match_reference(seqs, k, w):
    hashes, positions = kmers.nthash_minimizers(seqs, k, w)
    assert hashes.type.value_type == pa.uint64() and positions.type.value_type == pa.int32()
    got_h, got_p = hashes.to_pylist(), positions.to_pylist()
    for i, s in enumerate(seqs):
        want_h, want_p = ref_minimizers(s.upper(), k, w)
        assert (got_h[i], got_p[i]) == (want_h, want_p), (s, k, w)


def test_minimizers_are_nthash_values():
    s = "".join(random.Random(2).choice("ACGT") for _ in range(3000))
    h, p = kmers.nthash_minimizers(s, 21, 10)
    values, positions = kmers.nthash(s, 21, positions=True)
    by_pos = dict(zip(positions.to_pylist()[0], values.to_pylist()[0]))
    assert all(by_pos[q] == v for q, v in zip(p.to_pylist()[0], h.to_pylist()[0]))
    assert kmers.nthash_minimizers(s, 21, 10, positions=False).to_pylist() == h.to_pylist()


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"k": 0, "w": 3}, ValueError, "k must be >= 1, got 0"),
        ({"k": 3, "w": 0}, ValueError, "w must be >= 1, got 0"),
        ({"k": 3, "w": "5"}, TypeError, "w must be an int"),
    ],
)
def test_minimizer_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        kmers.nthash_minimizers(["ACGTACGT"], **kw)


@pytest.mark.parametrize("threads", [1, 2])
def test_long_read_split_across_threads(simd, threads):
    # A read over 2 Mi bases is cut into pieces of 2^20 k-mer starts; k-mers at the cuts must come out
    # once, in order, with read-relative positions.
    rng = np.random.default_rng(7)
    k = 25
    data = np.frombuffer(b"ACGTacgtN", np.uint8)[rng.choice(9, 5_000_000, p=[0.124] * 8 + [0.008])].copy()
    data[(1 << 20) - 3] = ord("N")  # an N just before a cut
    offsets = np.array([0, 1000, data.size], np.int64)
    kmerx.set_num_threads(threads)
    try:
        values, out_offsets, pos = kmers.nthash_numpy(data, offsets, k, positions=True)
    finally:
        kmerx.set_num_threads(0)
    valid = np.isin(data, np.frombuffer(b"ACGTacgt", np.uint8))
    for r in range(2):
        seg = valid[offsets[r] : offsets[r + 1]]
        runs = np.convolve(seg.astype(np.int64), np.ones(k, np.int64), mode="valid")
        want = np.flatnonzero(runs == k)
        np.testing.assert_array_equal(pos[out_offsets[r] : out_offsets[r + 1]], want)
    read = data[1000:].tobytes().decode()
    got = dict(zip(pos[out_offsets[1] :].tolist(), values[out_offsets[1] :].tolist()))
    cut = 1 << 20
    probes = [p for c in (cut, 2 * cut, 3 * cut, 4 * cut) for p in range(c - k - 2, c + 3)]
    probes += rng.integers(0, len(read) - k, 100).tolist()
    for p in probes:
        w = read[p : p + k].upper()
        if set(w) <= set("ACGT"):
            f, r_ = ref_kmer(w)
            assert got[p] == (f + r_) & M64, p


@pytest.mark.parametrize("first", [0, 31, 32, 33, 34])
def test_simd_long_run_identical(first):
    # One long run (many 8-base blocks per lane) after a read of 0..3 k-mers that shifts its output alignment.
    rng = np.random.default_rng(first)
    data = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 300_000)]
    offsets = np.array([0, first, data.size], np.int64)
    for k, m, strand in ((31, 1, "canonical"), (32, 1, "forward"), (7, 2, "reverse"), (90, 1, "canonical")):
        assert_simd_paths_agree(data, offsets, k, num_hashes=m, strand=strand, positions=True)
