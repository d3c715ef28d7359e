"""minimap2-compatible minimizers: the libminimap2 2.24 oracle, a slow reference model, SIMD paths."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import SHARED, raw_bytes, ref_records, same_on_every_simd_path

import kmerx
from kmerx import kmers

ORACLE = SHARED / "oracle" / "minimap2"
ORACLE_FILES = sorted(p.name for p in ORACLE.glob("*.tsv.gz")) if ORACLE.exists() else []


def flat(out) -> list[list[tuple[int, int, int, int]]]:
    """Per read [(hash, end, strand, span)] from minimizers_numpy output."""
    h, oo, e, s, sp = (x.tolist() for x in out)
    rows = list(zip(h, e, s, sp))
    return [rows[oo[i] : oo[i + 1]] for i in range(len(oo) - 1)]


def run_all_simd(seqs, k, w, **kw):
    """minimizers_numpy on every SIMD path; asserts they agree and returns the scalar result."""
    data, offsets = kmers.seq_arrays(seqs)
    return same_on_every_simd_path(lambda: kmers.minimizers_numpy(data, offsets, k, w, **kw))


# ---- slow reference: a pure-Python model of mm_sketch() written from its documented rules
# (docs/minimizers.md): one base at a time, one window slot per non-palindromic base or N, a full
# rescan when the minimum leaves the window.
EMPTY = (1 << 64) - 1
NT4 = {**{c: i for i, c in enumerate("ACGT")}, **{c: i for i, c in enumerate("acgt")}, "U": 3, "u": 3}


def hash64(key: int, mask: int) -> int:
    key = (~key + (key << 21)) & mask
    key ^= key >> 24
    key = (key * 265) & mask
    key ^= key >> 14
    key = (key * 21) & mask
    key ^= key >> 28
    return (key + (key << 31)) & mask


def sketch(seq: str | bytes, k: int, w: int, hpc: bool = False):
    """[(hash, end, strand, span)] in minimap2's output order."""
    if isinstance(seq, bytes):
        seq = seq.decode("latin-1")
    codes = [NT4.get(ch, 4) if ord(ch) > 3 else ord(ch) for ch in seq]
    mask = (1 << 2 * k) - 1
    fwd = rev = 0
    nvalid = span = 0  # non-palindromic valid bases since the last N (minimap2's l)
    runs: list[int] = []
    window = [(EMPTY, None)] * w  # (key, (hash, end, strand, span)) per slot
    pos = min_pos = 0
    mn = (EMPTY, None)
    out = []

    def others(lo, hi):  # copies of mn's key in window[lo:hi], except mn itself
        for j in range(lo, hi):
            if window[j][0] == mn[0] and window[j][1] != mn[1]:
                out.append(window[j][1])

    i, n = 0, len(codes)
    while i < n:
        c = codes[i]
        cur = (EMPTY, None)
        if c < 4:
            if hpc:
                run = 1
                while i + run < n and codes[i + run] == c:
                    run += 1
                i += run - 1
                runs.append(run)
                span += run
                if len(runs) > k:
                    span -= runs.pop(0)
            else:
                span = min(nvalid + 1, k)
            fwd = ((fwd << 2) | c) & mask
            rev = (rev >> 2) | ((3 ^ c) << (2 * (k - 1)))
            if fwd == rev:  # palindrome: no slot
                i += 1
                continue
            z = int(rev < fwd)
            nvalid += 1
            if nvalid >= k and span < 256:
                h = hash64(rev if z else fwd, mask)
                cur = ((h << 8) | span, (h, i, z, span))
        else:
            nvalid = span = 0  # non-palindromic valid bases since the last N (minimap2's l)
            runs = []
        window[pos] = cur
        if nvalid == w + k - 1 and mn[0] != EMPTY:  # first full window: copies of its minimum
            others(pos + 1, w)
            others(0, pos)
        if cur[0] <= mn[0]:
            if nvalid >= w + k and mn[0] != EMPTY:
                out.append(mn[1])
            mn, min_pos = cur, pos
        elif pos == min_pos:  # the minimum left: rescan oldest to newest, newest of equals wins
            if nvalid >= w + k - 1 and mn[0] != EMPTY:
                out.append(mn[1])
            mn = (EMPTY, None)
            for j in list(range(pos + 1, w)) + list(range(pos + 1)):
                if window[j][0] <= mn[0]:
                    mn, min_pos = window[j], j
            if nvalid >= w + k - 1 and mn[0] != EMPTY:
                others(pos + 1, w)
                others(0, pos + 1)
        pos = (pos + 1) % w
        i += 1
    if mn[0] != EMPTY:
        out.append(mn[1])
    return out


# ---- the oracle: every row of libminimap2's mm_sketch output ------------------------------------
@pytest.mark.skipif(
    not ORACLE_FILES, reason=f"oracle {ORACLE} is missing (../shared/data is not beside the project)"
)
@pytest.mark.parametrize("name", ORACLE_FILES)
def test_oracle_minimap2(name):
    m = re.fullmatch(r"(.+)\.w(\d+)\.k(\d+)(\.hpc)?\.tsv\.gz", name)
    stem, w, k, hpc = m.group(1), int(m.group(2)), int(m.group(3)), bool(m.group(4))
    (src,) = [p for p in (SHARED / "unit").iterdir() if p.name.split(".")[0] == stem]
    records = ref_records(raw_bytes(src))
    lines = gzip.decompress((ORACLE / name).read_bytes()).decode().splitlines()
    assert lines[0].split("\t") == ["rec_idx", "rec_name", "end_pos", "strand", "hash", "span"]
    want = [[] for _ in records]
    for line in lines[1:]:
        idx, rec_name, end, strand, h, span = line.split("\t")
        assert rec_name == records[int(idx)][0].split()[0]
        want[int(idx)].append((int(h), int(end), int(strand), int(span)))
    got = flat(run_all_simd([r[1] for r in records], k, w, hpc=hpc))
    assert got == want


# ---- the reference model -----------------------------------------------------------------------
def test_reference_model_hash():
    # hash64 is a bijection on [0, 4^k): spot-check for k = 5 over every code.
    mask = (1 << 10) - 1
    assert sorted(hash64(x, mask) for x in range(1 << 10)) == list(range(1 << 10))


bases = st.sampled_from(["A", "C", "G", "T", "a", "c", "g", "t", "N", "U", "R", "-"])
runs = st.tuples(bases, st.integers(1, 12)).map(lambda t: t[0] * t[1])  # homopolymer runs
seq = st.lists(st.one_of(bases, runs), max_size=60).map("".join)
repeat = st.tuples(st.text(alphabet="ACGT", min_size=1, max_size=6), st.integers(1, 30)).map(
    lambda t: t[0] * t[1]
)


@settings(max_examples=300, deadline=None)
@given(
    seqs=st.lists(st.one_of(seq, repeat), max_size=4),
    k=st.one_of(st.integers(1, 28), st.sampled_from([1, 2, 15, 28])),
    w=st.one_of(st.integers(1, 12), st.sampled_from([1, 64, 65, 255])),
    hpc=st.booleans(),
)
@example(seqs=["ACGTACGTTGCA"], k=1, w=1, hpc=False)
@example(seqs=[], k=15, w=10, hpc=False)
@example(seqs=[""], k=15, w=10, hpc=False)
@example(seqs=["NNNNNNNNNNNN"], k=3, w=2, hpc=True)
@example(seqs=["ACGTACGTAC"], k=9, w=3, hpc=False)  # one base longer than k
@example(seqs=["ACGTA"], k=9, w=3, hpc=False)  # shorter than k
@example(seqs=["ACGTACGTACGTACGTACGTACGTACGTACGTACGT"], k=4, w=5, hpc=False)  # palindromes, ties
@example(seqs=["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"], k=5, w=3, hpc=False)  # one k-mer repeated
@example(seqs=["ACGT" * 20 + "N" + "ACGT" * 20], k=28, w=10, hpc=False)
@example(seqs=["\x00\x01\x02\x03" * 8], k=5, w=4, hpc=False)  # minimap2 reads bytes 0..3 as bases
def test_matches_reference(seqs, k, w, hpc):
    got = flat(run_all_simd(seqs, k, w, hpc=hpc))
    assert got == [sketch(s, k, w, hpc) for s in seqs]


@pytest.mark.parametrize("k,w", [(15, 10), (21, 11), (5, 64), (12, 100), (28, 3)])
def test_long_random_reads_match_reference(k, w):
    # Long valid runs take the block path; N runs, lowercase and tandem repeats break it up.
    rng = np.random.default_rng(k * 1000 + w)
    parts = []
    for _ in range(40):
        kind = rng.integers(4)
        if kind == 0:
            parts.append("".join(rng.choice(list("ACGT"), rng.integers(1, 700))))
        elif kind == 1:
            parts.append("N" * int(rng.integers(1, 4)))
        elif kind == 2:
            parts.append("".join(rng.choice(list("ACGT"), rng.integers(1, 5))) * int(rng.integers(2, 60)))
        else:
            parts.append("".join(rng.choice(list("acgt"), rng.integers(1, 300))))
    seqs = ["".join(parts), "".join(reversed(parts))]
    for hpc in (False, True):
        assert flat(run_all_simd(seqs, k, w, hpc=hpc)) == [sketch(s, k, w, hpc) for s in seqs]


def test_threads_agree():
    rng = np.random.default_rng(5)
    seqs = [
        "".join(rng.choice(list("ACGTN"), int(n), p=[0.24] * 4 + [0.04])) for n in rng.integers(0, 3000, 300)
    ]
    data, offsets = kmers.seq_arrays(seqs)
    one = kmers.minimizers_numpy(data, offsets, 15, 10)
    try:
        kmerx.set_num_threads(3)
        three = kmers.minimizers_numpy(data, offsets, 15, 10)
    finally:
        kmerx.set_num_threads(0)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)


# ---- API ---------------------------------------------------------------------------------------
def test_arrow_output_and_types():
    seqs = ["ACGTTGCATGCAAGGTACCAGGATTTACG", "", "NNNN", "GGGATTACAGATTACAGATTACCA"]
    batch = kmers.minimizers(seqs, 5, 3)
    assert isinstance(batch, pa.RecordBatch)
    assert batch.num_rows == len(seqs)
    assert batch.schema == pa.schema(
        [
            ("hash", pa.large_list(pa.uint64())),
            ("end", pa.large_list(pa.int32())),
            ("strand", pa.large_list(pa.int8())),
            ("span", pa.large_list(pa.uint8())),
        ]
    )
    d = batch.to_pydict()
    for i, s in enumerate(seqs):
        assert list(zip(d["hash"][i], d["end"][i], d["strand"][i], d["span"][i])) == sketch(s, 5, 3)
    only = kmers.minimizers(seqs, 5, 3, positions=False)
    assert only.schema.names == ["hash"]
    assert only.column("hash").equals(batch.column("hash"))
    h, oo = kmers.minimizers_numpy(*kmers.seq_arrays(seqs), 5, 3, positions=False)
    assert h.dtype == np.uint64 and oo.dtype == np.int64 and oo[0] == 0 and oo[-1] == h.size


def test_read_batch_input():
    names = pa.array(["a", "b"])
    seq = pa.array([b"ACGTTGCATGCAAGG", b"TTTGCAGGCA"], pa.large_binary())
    batch = pa.RecordBatch.from_arrays(
        [names, seq, pa.nulls(2, pa.large_binary()), pa.array([0, 1], pa.int64())],
        names=["name", "seq", "qual", "read_index"],
    )
    assert kmers.minimizers(batch, 4, 2).equals(kmers.minimizers([b"ACGTTGCATGCAAGG", b"TTTGCAGGCA"], 4, 2))


def test_lowercase_equals_uppercase():
    s = "ACGTTGCATGCAAGGTACCAGGATTTACGNNACGGATCCA"
    assert kmers.minimizers(s.lower(), 7, 4).equals(kmers.minimizers(s, 7, 4))


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(k=0, w=10), "k must be in 1..28, got 0"),
        (dict(k=29, w=10), "k must be in 1..28, got 29"),
        (dict(k=15, w=0), "w must be in 1..255, got 0"),
        (dict(k=15, w=256), "w must be in 1..255, got 256"),
        (dict(k=15, w=10, hash="xx"), "hash must be one of \\('minimap2', 'nthash'\\), got 'xx'"),
        (dict(k=256, w=10, hash="nthash"), "k must be in 1..255, got 256"),
        (dict(k=15, w=0, hash="nthash"), "w must be in 1..2147483647, got 0"),
        (dict(k=15, w=10, hash="nthash", hpc=True), "hpc must be False with hash='nthash'"),
    ],
)
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        kmers.minimizers("ACGT", **kw)
    with pytest.raises(ValueError, match=match):
        kmers.minimizers_numpy(*kmers.seq_arrays(["ACGT"]), **kw)


def test_bad_types_and_buffers():
    with pytest.raises(TypeError, match="k must be an int"):
        kmers.minimizers("ACGT", 1.5, 3)
    with pytest.raises(TypeError, match="w must be an int"):
        kmers.minimizers("ACGT", 3, True)
    data = np.frombuffer(b"ACGTACGT", np.uint8)
    with pytest.raises(ValueError, match="offsets end at 9"):
        kmers.minimizers_numpy(data, np.array([0, 9], np.int64), 3, 2)
    with pytest.raises(ValueError, match="non-decreasing"):
        kmers.minimizers_numpy(data, np.array([0, 5, 2], np.int64), 3, 2)


def test_offsets_not_starting_at_zero():
    data = np.frombuffer(b"NNACGTTGCAGGATTACAGGATTACCAGT", np.uint8)
    offsets = np.array([2, 12, 29], np.int64)
    h, oo, e, s, sp = kmers.minimizers_numpy(data, offsets, 5, 3)
    assert oo[0] == 0
    assert flat((h, oo, e, s, sp)) == [sketch(bytes(data[2:12]), 5, 3), sketch(bytes(data[12:29]), 5, 3)]


@pytest.mark.parametrize("k,w", [(15, 10), (5, 10), (7, 3), (9, 40), (13, 1), (11, 239), (16, 10)])
def test_repeats_in_long_runs_match_reference(k, w):
    # Valid runs of hundreds of bases take the AVX2 block path; tandem repeats with short periods put
    # several copies of one k-mer in a window (ties, and copies reported when the minimum leaves).
    rng = np.random.default_rng(k * 7 + w)
    parts = []
    for _ in range(30):
        period = int(rng.integers(1, 2 * w + 3))
        unit = "".join(rng.choice(list("ACGT"), period))
        parts.append(unit * int(rng.integers(1, 600 // period + 2)))
        parts.append("".join(rng.choice(list("ACGT"), rng.integers(0, 400))))
    seqs = ["".join(parts)]
    assert flat(run_all_simd(seqs, k, w)) == [sketch(s, k, w) for s in seqs]


# ---- hash="nthash": btllib indexlr's minimizers in the minimap2 columns --------------------------
def nthash_sketch(seq: str | bytes, k: int, w: int):
    """[(hash, end, strand, span)] by indexlr's rules (docs/nthash.md) from kmerx.kmers.nthash values."""
    can, pos = (a.to_pylist()[0] for a in kmers.nthash([seq], k, positions=True))
    fwd = kmers.nthash([seq], k, strand="forward").to_pylist()[0]
    rev = kmers.nthash([seq], k, strand="reverse").to_pylist()[0]
    out, last = [], -1
    if len(seq) < k + w - 1:
        return out
    for j in range(len(can) - w + 1):
        best = min(range(j, j + w), key=lambda i: (can[i], -i))  # rightmost of the smallest
        if pos[best] > last and can[best] != 2**64 - 1:
            out.append((can[best], pos[best] + k - 1, int(fwd[best] > rev[best]), k))
            last = pos[best]
    return out


@settings(max_examples=150, deadline=None)
@given(
    seqs=st.lists(st.text(alphabet="ACGTNacgt", max_size=120), max_size=4),
    k=st.integers(1, 12),
    w=st.integers(1, 12),
)
@example(seqs=[""], k=1, w=1)
@example(seqs=["N" * 30], k=3, w=2)
@example(seqs=["ACGTA"], k=5, w=1)
@example(seqs=["AAAAAAAAAAAAAAAAAAAAAAAAAAA", "ACGTNNACGTACGT"], k=4, w=3)
def test_nthash_matches_reference(seqs, k, w):
    got = flat(kmers.minimizers_numpy(*kmers.seq_arrays(seqs), k, w, hash="nthash"))
    assert got == [nthash_sketch(s, k, w) for s in seqs]


def test_nthash_equals_nthash_minimizers():
    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list("ACGTN"), n, p=[0.24] * 4 + [0.04])) for n in rng.integers(0, 500, 50)]
    batch = kmers.minimizers(seqs, 21, 10, hash="nthash")
    h, p = kmers.nthash_minimizers(seqs, 21, 10)
    assert batch.column("hash").equals(h)
    assert batch.column("end").to_pylist() == [[x + 20 for x in r] for r in p.to_pylist()]
    assert batch.column("span").to_pylist() == [[21] * len(r) for r in p.to_pylist()]
    only = kmers.minimizers(seqs, 21, 10, hash="nthash", positions=False)
    assert only.schema.names == ["hash"] and only.column("hash").equals(h)
