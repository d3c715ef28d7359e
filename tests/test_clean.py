"""kmerx.clean against a slow pure-Python reference of every option, on real reads and random ones."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import make_batch, parse_fasta, parse_fastq, rows, shared

from kmerx import _core
from kmerx.clean import RC_SUFFIX, CleanConfig, clean

IUPAC = b"RYKMSWBDHVN"
COMP = dict(zip(b"ACGTURYKMBVDHSWN", b"TGCAAYRMKVBHDSWN"))
M64 = (1 << 64) - 1


# ---- the reference ------------------------------------------------------------------------------
def ref_byte(b: int, cfg: CleanConfig) -> int:
    lower = 97 <= b <= 122
    u = b - 32 if lower else b

    def cased(x):
        return x + 32 if (lower and not cfg.uppercase) else x

    if u in b"ACGT":
        return cased(u)
    if u == ord("U"):
        return cased(ord("T") if cfg.u_to_t else u)
    if u in IUPAC:
        return cased(ord("N") if cfg.iupac == "N" else u)
    if cfg.invalid == "N":
        return cased(ord("N"))
    if cfg.invalid == "error":
        raise ValueError("invalid")
    return u if (lower and cfg.uppercase) else b


def ref_trim(qual: bytes, c5, c3, base) -> tuple[int, int]:
    """BWA/cutadapt trimming written from its definition: at each end, the cut is where the running
    sum of (cutoff - q) from that end is largest, scanning until the sum goes negative."""
    start, stop = 0, len(qual)
    if c5 is not None:
        s = best = 0
        for i, ch in enumerate(qual):
            s += c5 - (ch - base)
            if s < 0:
                break
            if s > best:
                best, start = s, i + 1
    if c3 is not None:
        s = best = 0
        for i in range(len(qual) - 1, -1, -1):
            s += c3 - (qual[i] - base)
            if s < 0:
                break
            if s > best:
                best, stop = s, i
    return (0, 0) if start >= stop else (start, stop)


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def ref_random_rc(seed: int, read_index: int) -> bool:
    return bool(splitmix64(splitmix64(seed) ^ (read_index & M64)) >> 63)


def revcomp(s: bytes) -> bytes:
    return bytes(COMP.get(b - 32, b - 32) + 32 if 97 <= b <= 122 and b - 32 in COMP else COMP.get(b, b)
                 for b in reversed(s))


def ref_clean(recs, cfg: CleanConfig) -> list[tuple]:
    out = []
    for name, seq, qual, ri in recs:
        s = bytes(ref_byte(b, cfg) for b in seq)
        lo, hi = 0, len(s)
        if qual is not None and (cfg.quality_cutoff is not None or cfg.quality_cutoff_5p is not None):
            lo, hi = ref_trim(qual, cfg.quality_cutoff_5p, cfg.quality_cutoff, cfg.phred_offset)
        runs = [m.span() for m in re.finditer(rb"[Nn]{%d,}" % cfg.n_run_length, s[lo:hi])]
        if cfg.n_runs == "drop" and runs:
            continue
        if cfg.n_runs == "split" and runs:
            cuts = [lo] + [x + lo for r in runs for x in r] + [hi]
            segs = [(a, b, True) for a, b in zip(cuts[::2], cuts[1::2]) if b > a]
        else:
            segs = [(lo, hi, False)]
        for a, b, split in segs:
            piece = s[a:b]
            if (not piece and cfg.drop_empty) or len(piece) < cfg.min_length:
                continue
            if cfg.max_n_fraction is not None and piece:
                if sum(ch in b"Nn" for ch in piece) > cfg.max_n_fraction * len(piece):
                    continue
            nm = f"{name}:{a + 1}-{b}" if split else name
            out.append((nm, piece, None if qual is None else qual[a:b], ri))
    if cfg.rc == "append":
        out += [(nm + RC_SUFFIX, revcomp(sq), None if q is None else q[::-1], ri) for nm, sq, q, ri in out]
    elif cfg.rc == "random":
        out = [(nm + RC_SUFFIX, revcomp(sq), None if q is None else q[::-1], ri) if ref_random_rc(cfg.seed, ri)
               else (nm, sq, q, ri) for nm, sq, q, ri in out]
    return out


def check(recs, cfg: CleanConfig):
    recs = [r if len(r) == 4 else (*r, i) for i, r in enumerate(recs)]
    got = rows(clean(make_batch(recs), cfg))
    assert got == ref_clean(recs, cfg)
    return got


# ---- real reads -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def srr():
    return parse_fastq(shared("unit/SRR059298_first2k.fastq"))


@pytest.fixture(scope="module")
def mt():
    (name, seq, _), = parse_fasta(shared("unit/MT-human.fa"))
    # Lowercase and IUPAC bytes sprinkled in so the FASTA options have work to do.
    s = bytearray(seq)
    s[100:200] = s[100:200].lower()
    s[300:305] = b"NNNNN"
    s[400] = ord("R")
    s[401] = ord("u")
    return [(name, bytes(s), None), ("chunk", bytes(s[50:500]), None)]


OPTIONS = [
    {},
    {"uppercase": False},
    {"iupac": "keep"},
    {"invalid": "keep"},
    {"u_to_t": False},
    {"quality_cutoff": 20},
    {"quality_cutoff": 30, "quality_cutoff_5p": 10},
    {"quality_cutoff_5p": 25},
    {"quality_cutoff": 20, "drop_empty": False},
    {"min_length": 70},
    {"quality_cutoff": 20, "min_length": 40},
    {"max_n_fraction": 0.0},
    {"max_n_fraction": 0.02},
    {"n_runs": "split"},
    {"n_runs": "split", "n_run_length": 2},
    {"n_runs": "drop"},
    {"n_runs": "drop", "n_run_length": 3},
    {"drop_empty": False},
    {"rc": "append"},
    {"rc": "random", "seed": 7},
    {"quality_cutoff": 20, "n_runs": "split", "min_length": 10, "rc": "append"},
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_options_on_real_fastq(srr, opts):
    check(srr, CleanConfig(**opts))


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_options_on_real_fasta(mt, opts):
    got = check(mt, CleanConfig(**opts))
    assert all(q is None for _, _, q, _ in got)


def test_phred64_trimming():
    recs = parse_fastq(shared("unit/sample_101s_phred64.fastq.gz"))
    check(recs, CleanConfig(quality_cutoff=20, quality_cutoff_5p=15, phred_offset=64))


def test_default_changes_only_what_it_should(srr):
    out = clean(make_batch(srr))
    assert out.num_rows == len(srr)
    assert out.column("seq").to_pylist() == [s.upper() for _, s, _ in srr]
    assert out.schema.names == ["name", "seq", "qual", "read_index"]


def test_split_names_and_quality_alignment(srr):
    cfg = CleanConfig(n_runs="split")
    out = rows(clean(make_batch(srr), cfg))
    by_name = {n: (s, q) for n, s, q in srr}
    pieces = [r for r in out if ":" in r[0]]
    assert pieces, "SRR059298_first2k has reads with N"
    for name, seq, qual, ri in pieces:
        parent, span = name.rsplit(":", 1)
        a, b = map(int, span.split("-"))
        ps, pq = by_name[parent]
        assert seq == ps[a - 1 : b] and qual == pq[a - 1 : b] and b"N" not in seq
        assert srr[ri][0] == parent


# ---- cutadapt ----------------------------------------------------------------------------------------
needs_cutadapt = pytest.mark.skipif(importlib.util.find_spec("cutadapt") is None, reason="cutadapt not installed")


@needs_cutadapt
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60).map(lambda b: bytes(33 + x % 45 for x in b)),
       st.one_of(st.none(), st.integers(0, 45)), st.one_of(st.none(), st.integers(0, 45)))
@example(b"", 20, 20)
@example(b"!!!!!", 20, None)
def test_trim_matches_cutadapt_function(qual, c5, c3):
    from cutadapt.qualtrim import quality_trim_index

    want = quality_trim_index(qual.decode(), 0 if c5 is None else c5, 0 if c3 is None else c3, 33)
    # cutoff 0 never trims in cutadapt (qualities >= 0); None is "off" here: the same result.
    got = _core.quality_trim_index(np.frombuffer(qual, np.uint8), -1 if c5 is None else c5,
                                   -1 if c3 is None else c3, 33)
    assert tuple(got) == tuple(want) == ref_trim(qual, c5, c3, 33)


@needs_cutadapt
@pytest.mark.parametrize("q", ["20", "10,25"])
def test_trim_matches_cutadapt_cli(srr, tmp_path, q):
    src = shared("unit/SRR059298_first2k.fastq")
    dst = tmp_path / "out.fastq"
    subprocess.run([sys.executable, "-m", "cutadapt", "-q", q, "-o", str(dst), str(src)],
                   check=True, capture_output=True)
    want = [(n, s, ql) for n, s, ql in parse_fastq(dst)]
    cuts = [int(x) for x in q.split(",")]
    c5, c3 = (None, cuts[0]) if len(cuts) == 1 else cuts
    got = clean(make_batch(srr), quality_cutoff=c3, quality_cutoff_5p=c5, drop_empty=False)
    d = got.to_pydict()
    assert list(zip(d["name"], d["seq"], d["qual"])) == want


# ---- random reads, combined options --------------------------------------------------------------
ALPHABET = b"ACGTacgtACGTNNnnRYKMSWBDHVUu-.*0 "
read_st = st.tuples(
    st.lists(st.sampled_from(list(ALPHABET)), max_size=40).map(bytes),
    st.integers(0, 2**31),
).map(lambda t: (t[0], bytes(33 + (t[1] >> (i % 31)) % 42 for i in range(len(t[0])))))
config_st = st.builds(
    CleanConfig,
    uppercase=st.booleans(),
    iupac=st.sampled_from(["N", "keep"]),
    invalid=st.sampled_from(["N", "keep"]),
    u_to_t=st.booleans(),
    quality_cutoff=st.one_of(st.none(), st.integers(0, 40)),
    quality_cutoff_5p=st.one_of(st.none(), st.integers(0, 40)),
    min_length=st.integers(0, 10),
    max_n_fraction=st.one_of(st.none(), st.floats(0, 1)),
    n_runs=st.sampled_from(["keep", "split", "drop"]),
    n_run_length=st.integers(1, 4),
    drop_empty=st.booleans(),
    rc=st.sampled_from([None, "append", "random"]),
    seed=st.integers(0, 2**64 - 1),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(read_st, max_size=12), config_st, st.booleans())
@example([], CleanConfig(), True)
@example([(b"NNNN", b"IIII")], CleanConfig(n_runs="split"), True)
@example([(b"", b"")], CleanConfig(drop_empty=False), True)
@example([(b"ACGT", b"!!!!")], CleanConfig(quality_cutoff=20, drop_empty=False), True)
@example([(b"NNNN", b"IIII")], CleanConfig(max_n_fraction=0.5), False)
def test_property_against_reference(reads, cfg, fastq):
    recs = [(f"r{i}", s, q if fastq else None, 1000 + 3 * i) for i, (s, q) in enumerate(reads)]
    check(recs, cfg)


# ---- edge cases and invariants ----------------------------------------------------------------------
def test_empty_batch():
    out = clean(make_batch([]), rc="append", n_runs="split")
    assert out.num_rows == 0 and out.schema.names == ["name", "seq", "qual", "read_index"]


def test_all_n_read_and_trim_everything():
    recs = [("a", b"NNNNNN", b"IIIIII"), ("b", b"ACGT", b"####"), ("c", b"", b"")]
    assert rows(clean(make_batch(recs), n_runs="split")) == [("b", b"ACGT", b"####", 1)]
    assert rows(clean(make_batch(recs), quality_cutoff=20)) == [("a", b"NNNNNN", b"IIIIII", 0)]
    kept = rows(clean(make_batch(recs), quality_cutoff=20, drop_empty=False))
    assert kept == [("a", b"NNNNNN", b"IIIIII", 0), ("b", b"", b"", 1), ("c", b"", b"", 2)]
    assert rows(clean(make_batch(recs), max_n_fraction=0.5, drop_empty=False)) == [
        ("b", b"ACGT", b"####", 1), ("c", b"", b"", 2)]


def test_random_rc_independent_of_batch_boundaries(srr):
    whole = clean(make_batch(srr), rc="random", seed=42)
    parts = [clean(make_batch(srr[a:b], start_index=a), rc="random", seed=42) for a, b in [(0, 700), (700, 2000)]]
    assert rows(whole) == rows(parts[0]) + rows(parts[1])
    flipped = sum(n.endswith(RC_SUFFIX) for n in whole.column("name").to_pylist())
    assert 850 < flipped < 1150
    assert rows(clean(make_batch(srr), rc="random", seed=43)) != rows(whole)


def test_rc_append_is_involution(srr):
    out = clean(make_batch(srr[:50]), rc="append")
    again = clean(out.slice(50), rc="append")
    assert again.column("seq").to_pylist()[50:] == out.column("seq").to_pylist()[:50]


def test_invalid_error_names_read():
    with pytest.raises(ValueError, match="read 1"):
        clean(make_batch([("a", b"ACGT", None), ("b", b"AC-T", None)]), invalid="error")
    assert rows(clean(make_batch([("a", b"ACNRT", None)]), invalid="error")) == [("a", b"ACNNT", None, 0)]


def test_qual_length_mismatch_raises():
    with pytest.raises(ValueError, match="qual length"):
        clean(make_batch([("a", b"ACGT", b"II")]))


def test_fasta_quality_cutoff_is_noop():
    recs = [("a", b"acgtn", None)]
    assert rows(clean(make_batch(recs), quality_cutoff=30)) == [("a", b"ACGTN", None, 0)]


def test_extra_columns_follow_their_reads():
    b = make_batch([("a", b"AC", b"II"), ("b", b"", b""), ("c", b"GNT", b"III")])
    b = b.append_column("sample", pa.array(["x", "y", "z"]))
    out = clean(b, n_runs="split")
    assert out.column("sample").to_pylist() == ["x", "z", "z"]


# ---- config -------------------------------------------------------------------------------------------
def test_config_json_round_trip():
    cfg = CleanConfig(quality_cutoff=20, rc="random", seed=2**63, max_n_fraction=0.1, n_runs="split")
    assert CleanConfig.from_json(cfg.to_json()) == cfg
    assert CleanConfig.from_dict(cfg.to_dict()).digest() == cfg.digest() != CleanConfig().digest()
    with pytest.raises(ValueError, match="unknown option"):
        CleanConfig.from_dict({"quality": 20})
    with pytest.raises(ValueError, match="unknown option"):
        clean(make_batch([]), qualty_cutoff=20)


@pytest.mark.parametrize("bad", [
    {"n_runs": "splt"}, {"rc": "both"}, {"iupac": "X"}, {"phred_offset": 40}, {"quality_cutoff": -1},
    {"min_length": -1}, {"n_run_length": 0}, {"max_n_fraction": 1.5}, {"seed": -1}, {"invalid": "drop"},
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        CleanConfig(**bad)


def test_config_rejects_bad_types():
    with pytest.raises(TypeError, match="uppercase"):
        CleanConfig(uppercase="yes")
    with pytest.raises(TypeError, match="min_length"):
        CleanConfig(min_length=1.5)
    with pytest.raises(TypeError, match="config"):
        clean(make_batch([]), {"rc": "append"})
    assert dataclasses.is_dataclass(CleanConfig)
