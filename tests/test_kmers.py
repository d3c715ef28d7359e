"""K-mer codes and 2-bit encoding: oracle dumps (jellyfish), a slow reference, invariants, SIMD paths."""

from __future__ import annotations

import gzip
import pathlib
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import SIMD, same_on_every_simd_path, simd_level

import kmerx
from kmerx import kmers

DATA = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
COMP = {"A": "T", "C": "G", "G": "C", "T": "A"}



# ---- slow reference ----------------------------------------------------------------------------
def ref_kmers(seq: str, k: int, strand: str = "canonical", stride: int = 1) -> tuple[list, list]:
    """(codes, positions) with Python ints; codes > 64 bits become (hi, lo)."""
    up = seq.upper()
    codes, pos = [], []
    for p in range(0, len(up) - k + 1, stride):
        w = up[p : p + k]
        if any(ch not in "ACGT" for ch in w):
            continue
        fwd = int(w.translate(str.maketrans("ACGT", "0123")), 4)
        rc = int("".join(COMP[ch] for ch in reversed(w)).translate(str.maketrans("ACGT", "0123")), 4)
        code = {"forward": fwd, "reverse": rc, "canonical": min(fwd, rc)}[strand]
        codes.append(code if k <= 32 else (code >> 64, code & (2**64 - 1)))
        pos.append(p)
    return codes, pos


def check_against_ref(seqs, k, strand, stride):
    codes, positions = kmers.kmer_codes(seqs, k, strand=strand, stride=stride, positions=True)
    assert isinstance(codes, pa.LargeListArray)
    if k > 32:
        assert codes.type.value_type == pa.list_(pa.uint64(), 2)
    else:
        assert codes.type.value_type == pa.uint64()
    assert positions.type.value_type == pa.int32()
    got_codes = codes.to_pylist()
    got_pos = positions.to_pylist()
    assert len(got_codes) == len(seqs)
    for i, s in enumerate(seqs):
        want_codes, want_pos = ref_kmers(s, k, strand, stride)
        got = [tuple(c) for c in got_codes[i]] if k > 32 else got_codes[i]
        assert got == want_codes, (i, s, k, strand, stride)
        assert got_pos[i] == want_pos


seq_strategy = st.lists(st.text(alphabet="ACGTacgtNnRX", max_size=120), max_size=5)


@pytest.mark.parametrize("level", SIMD)
@settings(max_examples=150, deadline=None)
@given(
    seqs=seq_strategy,
    k=st.integers(1, 64),
    strand=st.sampled_from(kmers.STRANDS),
    stride=st.one_of(st.just(1), st.integers(1, 70)),
)
@example(seqs=["ACGT"], k=1, strand="canonical", stride=1)
@example(seqs=[], k=5, strand="canonical", stride=1)
@example(seqs=[""], k=5, strand="forward", stride=1)
@example(seqs=["NNNNNNNNNN"], k=3, strand="canonical", stride=1)
@example(seqs=["ACGTACGTAC"], k=9, strand="canonical", stride=1)  # one base longer than k
@example(seqs=["ACGT" * 20 + "N" + "GATTACA" * 10], k=32, strand="canonical", stride=1)
@example(seqs=["ACGT" * 20 + "N" + "GATTACA" * 10], k=33, strand="reverse", stride=1)
@example(seqs=["TTGCA" * 30], k=64, strand="canonical", stride=3)
def test_matches_reference(level, seqs, k, strand, stride):
    with simd_level(level):
        check_against_ref(seqs, k, strand, stride)


@pytest.mark.parametrize("k", [4, 5, 6, 11, 14, 21, 31, 32, 33, 47, 64])
@pytest.mark.parametrize("strand", kmers.STRANDS)
def test_long_runs_match_reference(simd, k, strand):
    # Runs longer than the AVX2 block, N-separated runs around the vector thresholds, lowercase.
    rng = random.Random(k)
    parts = ["".join(rng.choice("ACGTacgt") for _ in range(n)) for n in (5000, k + 6, k + 7, k + 3, 2100, k)]
    seqs = ["N".join(parts), "".join(rng.choice("ACGT") for _ in range(3000))]
    check_against_ref(seqs, k, strand, 1)


def assert_simd_paths_agree(data, offsets, k, **kw):
    """Every SIMD path this CPU can run gives the scalar path's codes, offsets and positions."""
    same_on_every_simd_path(lambda: kmers.kmer_codes_numpy(data, offsets, k, **kw))


@pytest.mark.parametrize("first", [0, 31, 32, 33, 34])
def test_simd_streaming_path_identical(first):
    # One run long enough for non-temporal stores, after a read of 0..3 k-mers that shifts its alignment.
    rng = np.random.default_rng(first)
    data = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 200_000)]
    offsets = np.array([0, first, data.size], np.int64)
    for k, strand in ((31, "canonical"), (32, "canonical"), (7, "forward"), (20, "reverse")):
        assert_simd_paths_agree(data, offsets, k, strand=strand, positions=True)


def test_simd_paths_identical():
    rng = np.random.default_rng(3)
    data = np.frombuffer(b"ACGTN", np.uint8)[rng.choice(5, 200_000, p=[0.24, 0.24, 0.24, 0.24, 0.04])]
    offsets = np.unique(np.concatenate([[0, data.size], rng.integers(0, data.size, 300)])).astype(np.int64)
    for k in (4, 15, 31, 32, 40):
        assert_simd_paths_agree(data, offsets, k, positions=True)


@pytest.mark.parametrize("threads", [1, 2])
def test_simd_mixed_short_and_long_reads(threads):
    # Short reads go through the batch-stream kernel, reads >= 64 kb run by run (non-temporal stores
    # past 64k k-mers): groups of short reads between long ones, Ns near every kind of boundary.
    rng = np.random.default_rng(17)
    lengths = [0, 3, 4, 30, 31, 32, 33, 72, 150, 70_000, 5, 72, 200_000, 0, 65_535, 65_536, 31, 100]
    lengths += list(rng.integers(0, 300, 200))
    p_n = [0.245] * 4 + [0.02]
    pieces = [np.frombuffer(b"ACGTN", np.uint8)[rng.choice(5, n, p=p_n)] for n in lengths]
    pieces[12][:150_000] = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 150_000)]  # a long N-free run
    data = np.concatenate(pieces)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    kmerx.set_num_threads(threads)
    try:
        for k, strand in ((4, "canonical"), (21, "forward"), (31, "canonical"), (32, "reverse")):
            assert_simd_paths_agree(data, offsets, k, strand=strand, positions=True)
    finally:
        kmerx.set_num_threads(0)


# ---- oracle: jellyfish dumps ---------------------------------------------------------------------
def read_fastx(path: pathlib.Path) -> list[str]:
    """Sequences of a well-formed FASTA or 4-line FASTQ file (test-local parser)."""
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("@"):
        return [lines[i + 1] for i in range(0, len(lines), 4)]
    seqs: list[str] = []
    for line in lines:
        if line.startswith(">"):
            seqs.append("")
        elif line:
            seqs[-1] += line.strip()
    return seqs


ORACLE = [
    (name, k, strand)
    for name in ("lambda_virus.fa", "MT-human.fa", "SRR059298_first2k.fastq")
    for k in (5, 21, 31)
    for strand in ("canonical", "forward")
]


@pytest.mark.parametrize("name,k,strand", ORACLE)
def test_jellyfish_oracle(simd, name, k, strand):
    src = DATA / "unit" / name
    dump = DATA / "oracle" / "jellyfish" / f"{name.rsplit('.', 1)[0]}.k{k}.{strand}.tsv.gz"
    if not src.exists() or not dump.exists():
        pytest.skip(f"{src} or {dump} missing (../shared/data is not beside the project)")
    codes = kmers.kmer_codes(read_fastx(src), k, strand=strand)
    uniq, counts = kmers.count_kmers(codes)
    got = "".join(f"{s}\t{c}\n" for s, c in zip(kmers.decode_kmers(uniq, k), counts))
    assert got == gzip.decompress(dump.read_bytes()).decode()


# ---- encode / decode / revcomp / canonical -------------------------------------------------------
kmer_lists = st.integers(1, 64).flatmap(
    lambda k: st.lists(st.text(alphabet="ACGT", min_size=k, max_size=k), min_size=1, max_size=20)
)


@settings(max_examples=100, deadline=None)
@given(kmer_lists)
@example(["A"])
@example(["T" * 32, "G" * 32])
@example(["ACGT" * 8 + "A"])
@example(["T" * 64, "A" * 64])
def test_encode_decode_roundtrip_and_canonical(xs):
    k = len(xs[0])
    codes = kmers.encode_kmers(xs)
    assert codes.shape == ((len(xs),) if k <= 32 else (len(xs), 2))
    assert kmers.decode_kmers(codes, k) == xs
    rc_strings = ["".join(COMP[c] for c in reversed(x)) for x in xs]
    rc = kmers.reverse_complement(codes, k)
    assert kmers.decode_kmers(rc, k) == rc_strings
    np.testing.assert_array_equal(kmers.canonical(codes, k), kmers.canonical(rc, k))
    want = [min(x, y) for x, y in zip(xs, rc_strings)]  # ACGT order == ASCII order
    assert kmers.decode_kmers(kmers.canonical(codes, k), k) == want
    # numpy canonical/revcomp agree with the native strands
    native = kmers.kmer_codes(xs, k, strand="canonical").flatten()
    native = native.flatten().to_numpy().reshape(-1, 2) if k > 32 else native.to_numpy()
    np.testing.assert_array_equal(native, kmers.canonical(codes, k))


def test_encode_known_values():
    assert kmers.encode_kmers(["ACGT"]).tolist() == [0b00011011]
    hi_lo = kmers.encode_kmers(["C" + "A" * 31 + "G"])  # k = 33: C sits at bit 64
    assert hi_lo.tolist() == [[1, 2]]
    assert kmers.encode_kmers(["acgt"]).tolist() == [27]


def test_encode_rejects_bad_kmers():
    with pytest.raises(ValueError, match=r"kmers\[1\] = 'ANA'"):
        kmers.encode_kmers(["AAA", "ANA"])
    with pytest.raises(ValueError, match="same length"):
        kmers.encode_kmers(["AAA", "AA"])


@pytest.mark.parametrize("seq", ["", "A", "ACG", "ACGT", "acgtTGCAg", "GATTACA" * 37])
def test_pack_unpack(seq):
    packed = kmers.pack_2bit(seq)
    assert packed.dtype == np.uint8 and packed.size == (len(seq) + 3) // 4
    assert kmers.unpack_2bit(packed, len(seq)) == seq.upper().encode()


def test_pack_layout_and_errors():
    assert kmers.pack_2bit("ACGTT").tolist() == [0b00011011, 0b11000000]
    with pytest.raises(ValueError, match="at position 2"):
        kmers.pack_2bit("ACNT")
    with pytest.raises(ValueError, match="n must be in 0..4"):
        kmers.unpack_2bit(np.zeros(1, np.uint8), 5)


def test_count_kmers_sorted():
    codes = kmers.kmer_codes(["ACGTACGTAC", "TTTT"], 3, strand="forward")
    uniq, counts = kmers.count_kmers(codes)
    assert kmers.decode_kmers(uniq, 3) == ["ACG", "CGT", "GTA", "TAC", "TTT"]
    assert counts.tolist() == [2, 2, 2, 2, 2]
    big = kmers.kmer_codes(["C" + "A" * 40, "A" * 41], 40, strand="forward")
    uniq, counts = kmers.count_kmers(big)
    assert kmers.decode_kmers(uniq, 40) == ["A" * 40, "C" + "A" * 39]
    assert counts.tolist() == [3, 1]


# ---- inputs and arguments ------------------------------------------------------------------------
def test_input_forms():
    want = kmers.kmer_codes(["ACGTA", "GGC"], 2).to_pylist()
    batch = pa.RecordBatch.from_pydict(
        {
            "name": ["a", "b"],
            "seq": pa.array([b"ACGTA", b"GGC"], pa.large_binary()),
            "qual": pa.array([None, None], pa.large_binary()),
            "read_index": [0, 1],
        }
    )
    assert kmers.kmer_codes(batch, 2).to_pylist() == want
    assert kmers.kmer_codes(pa.array(["ACGTA", "GGC"]), 2).to_pylist() == want
    assert kmers.kmer_codes([b"ACGTA", b"GGC"], 2).to_pylist() == want
    assert kmers.kmer_codes("ACGTA", 2).to_pylist() == want[:1]
    data, offsets = kmers.seq_arrays(["ACGTA", "GGC"])
    values, out_offsets = kmers.kmer_codes_numpy(data, offsets, 2)
    assert values.dtype == np.uint64 and out_offsets.tolist() == [0, 4, 6]


def test_stride_nonoverlapping():
    codes, pos = kmers.kmer_codes("ACGTACGTNACGTACG", 4, strand="forward", stride=4, positions=True)
    assert pos.to_pylist() == [[0, 4, 12]]
    assert kmers.decode_kmers(codes.flatten().to_numpy(), 4) == ["ACGT", "ACGT", "TACG"]


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"k": 80}, ValueError, "k must be in 1..64, got 80"),
        ({"k": 0}, ValueError, "k must be in 1..64, got 0"),
        ({"k": 2.5}, TypeError, "k must be an int"),
        ({"k": 5, "strand": "both"}, ValueError, "strand must be one of .* got 'both'"),
        ({"k": 5, "stride": 0}, ValueError, "stride must be >= 1, got 0"),
        ({"k": 5, "device": "tpu"}, ValueError, "device must be one of .* got 'tpu'"),
    ],
)
def test_argument_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        kmers.kmer_codes(["ACGTACGT"], **kwargs)


def test_native_validates_offsets():
    with pytest.raises(ValueError, match="beyond the data length"):
        kmerx._core.kmer_codes(np.zeros(3, np.uint8), np.array([0, 5], np.int64), 3, "canonical", 1, False)
    with pytest.raises(ValueError, match="k must be in 1..64, got 65"):
        kmerx._core.kmer_codes(np.zeros(3, np.uint8), np.array([0, 3], np.int64), 65, "canonical", 1, False)
    with pytest.raises(ValueError, match="strand must be"):
        kmerx._core.kmer_codes(np.zeros(3, np.uint8), np.array([0, 3], np.int64), 3, "up", 1, False)


def test_multithreaded_equals_single():
    rng = np.random.default_rng(5)
    data = np.frombuffer(b"ACGTN", np.uint8)[rng.choice(5, 400_000, p=[0.245] * 4 + [0.02])]
    offsets = np.concatenate([np.arange(0, data.size, 150), [data.size]]).astype(np.int64)
    old = kmerx.num_threads()
    try:
        kmerx.set_num_threads(1)
        one = kmers.kmer_codes_numpy(data, offsets, 31, positions=True)
        kmerx.set_num_threads(2)
        two = kmers.kmer_codes_numpy(data, offsets, 31, positions=True)
    finally:
        kmerx.set_num_threads(old)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


# ---- counting across batches and Arrow decoding (used by `kmerx kmers --count`) ------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=50), max_size=6), st.booleans())
def test_counter_over_batches_equals_one_count(chunks, wide):
    from kmerx.kmers import KmerCounter, count_kmers

    as_codes = (lambda c: np.array([[v % 3, v] for v in c], dtype=np.uint64).reshape(-1, 2)) if wide else (
        lambda c: np.array(c, dtype=np.uint64))
    counter = KmerCounter()
    for c in chunks:
        counter.add(as_codes(c))
    got_u, got_c = counter.result()
    allc = as_codes([v for c in chunks for v in c])
    want_u, want_c = np.unique(allc, axis=0 if wide else None, return_counts=True)
    if not wide and len(allc) == 0:
        want_u = want_u.astype(np.uint64)
    assert np.array_equal(got_u.reshape(want_u.shape), want_u) and np.array_equal(got_c, want_c)
    u, c = count_kmers(allc)
    assert np.array_equal(u.reshape(want_u.shape), want_u) and np.array_equal(c, want_c)


@pytest.mark.parametrize("k", [1, 5, 32, 33, 64])
def test_decode_arrow_matches_decode(k):
    from kmerx.kmers import decode_kmers, decode_kmers_arrow, kmer_codes

    seq = "ACGTTGCANACGGTACCATGACGTTTGCAAGGCCTTAACGGTACGATCGATCGGCTAGCTAGCTAACGTAGCATCGA"
    codes = kmer_codes([seq, "", seq[::-1]], k, strand="canonical")
    assert decode_kmers_arrow(codes, k).to_pylist() == decode_kmers(codes.flatten() if k <= 32 else codes, k)
