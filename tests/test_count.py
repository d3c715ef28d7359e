"""Exact k-mer counting (kmerx.count): jellyfish/KMC dumps, jellyfish histo of chrX, and a slow reference."""

from __future__ import annotations

import collections
import gzip
import pathlib
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import shared

import kmerx
from kmerx import count as kc
from kmerx.kmers import encode_kmers

DATA = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
UNIT = ["MT-human.fa", "SRR059298_first2k.fastq", "lambda_virus.fa"]
ORACLE = [(n, k, s) for n in UNIT for k in (5, 21, 31) for s in ("canonical", "forward")]
KMC = [("MT-human.fa", 21), ("MT-human.fa", 31)]
_COMP = str.maketrans("ACGT", "TGCA")


def dump_of(result: kc.KmerCounts) -> str:
    return "".join(f"{s}\t{c}\n" for s, c in zip(result.kmers(), result.counts.tolist(), strict=True))


def oracle(tool: str, name: str, k: int, strand: str) -> tuple[pathlib.Path, str]:
    src = DATA / "unit" / name
    dump = DATA / "oracle" / tool / f"{name.rsplit('.', 1)[0]}.k{k}.{strand}.tsv.gz"
    if not src.exists() or not dump.exists():
        pytest.skip(f"{src} or {dump} missing (../shared/data is not beside the project)")
    return src, gzip.decompress(dump.read_bytes()).decode()


# ---- exactness against jellyfish and KMC dumps --------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name,k,strand", ORACLE)
def test_jellyfish_dumps(name, k, strand, threads):
    src, want = oracle("jellyfish", name, k, strand)
    got = kc.count(src, k, canonical=strand == "canonical", threads=threads)
    assert dump_of(got) == want


@pytest.mark.parametrize("name,k,strand", ORACLE)
def test_jellyfish_dumps_spilling(name, k, strand, tmp_path):
    """A 1 MiB budget and 4 bins: bins go to disk and are read back one at a time."""
    src, want = oracle("jellyfish", name, k, strand)
    with kc._threads(2):
        c = kc.Counter(k, canonical=strand == "canonical", max_memory=1 << 20, bins=4, tmp_dir=tmp_path)
        for batch in kmerx.io.read(src, batch_bytes=1 << 16):
            c.add(batch)
        spilled = c.spilled_bytes
        got = c.finish()
    assert dump_of(got) == want
    if name.endswith(".fastq") and k > 5:  # ~200k k-mers: more than half the budget
        assert spilled > 0
    assert list(tmp_path.iterdir()) == []  # spill files and their directory are removed


@pytest.mark.parametrize("name,k", KMC)
def test_kmc_dumps(name, k):
    src, want = oracle("kmc", name, k, "canonical")
    assert dump_of(kc.count([src], k, max_memory=1 << 20, bins=3)) == want


# ---- jellyfish histo of human chrX (70 Mb) --------------------------------------------------------
CHRX = DATA / "genomes" / "human_GRCh37_chrX_first70Mb.fa.gz"


@pytest.fixture(scope="session")
def jellyfish_chrx_histo(tmp_path_factory) -> dict[int, int]:
    if shutil.which("jellyfish") is None:
        pytest.skip("jellyfish is not installed (apt-get install jellyfish)")
    if not CHRX.exists():
        pytest.skip(f"{CHRX} missing (../shared/data is not beside the project)")
    d = tmp_path_factory.mktemp("jellyfish")
    fa = d / "chrX.fa"
    with gzip.open(CHRX) as src, open(fa, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    db = d / "chrX.jf"
    subprocess.run(["jellyfish", "count", "-m", "31", "-s", "100M", "-C", "-t", "2", "-o", str(db), str(fa)], check=True)
    out = subprocess.run(["jellyfish", "histo", str(db)], check=True, capture_output=True, text=True).stdout
    return {int(a): int(b) for a, b in (line.split() for line in out.splitlines())}


def test_chrx_histogram_equals_jellyfish(jellyfish_chrx_histo):
    values, n = kc.count(CHRX, 31, threads=2).histogram()
    got = dict(zip(values.tolist(), n.tolist(), strict=True))
    # jellyfish histo lumps counts above --high (10000) into high + 1.
    high = 10000
    lumped = {v: c for v, c in got.items() if v <= high}
    over = sum(c for v, c in got.items() if v > high)
    if over:
        lumped[high + 1] = over
    want = {v: c for v, c in jellyfish_chrx_histo.items() if c}
    assert lumped == want


# ---- slow reference --------------------------------------------------------------------------------
def ref_counts(seqs: list[str], k: int, canonical: bool) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for s in seqs:
        s = s.upper()
        for i in range(len(s) - k + 1):
            w = s[i : i + k]
            if set(w) <= set("ACGT"):
                out[min(w, w.translate(_COMP)[::-1]) if canonical else w] += 1
    return out


seqs_st = st.lists(st.text(alphabet="ACGTNacgtn", max_size=120), max_size=8)


@settings(max_examples=80, deadline=None)
@given(seqs_st, st.sampled_from([1, 2, 3, 7, 31, 32, 33, 40, 63, 64]), st.booleans(), st.integers(0, 64),
       st.sampled_from([1 << 20, 3 << 20, kc.DEFAULT_MAX_MEMORY]), st.integers(1, 3), st.integers(1, 2))
@example([], 1, True, 0, 1 << 20, 1, 1)
@example(["NNNNNNNN"], 3, True, 0, 1 << 20, 1, 1)
@example(["acgtacgtNNacgt", "ACGT"], 2, False, 5, 1 << 20, 1, 2)
@example(["A" * 64], 64, True, 0, 1 << 20, 1, 1)
@example(["A" * 65 + "C"], 64, False, 1, 1 << 20, 2, 2)
@example(["ACGTT" * 20], 32, True, 16, 1 << 20, 1, 2)
@example(["ACGTT" * 20], 33, True, 16, 1 << 20, 1, 2)
def test_matches_reference(seqs, k, canonical, bins, max_memory, min_count, threads):
    want = ref_counts(seqs, k, canonical)
    want = {s: c for s, c in want.items() if c >= min_count}
    max_memory = max(max_memory, kmerx._core.min_count_memory(bins, threads))  # the smallest budget that works
    with kc._threads(threads):
        c = kc.Counter(k, canonical=canonical, min_count=min_count, bins=bins, max_memory=max_memory)
        for i in range(0, len(seqs), 3):  # several batches
            c.add(seqs[i : i + 3])
        got = c.finish()
    assert got.kmers() == sorted(want)
    assert got.counts.tolist() == [want[s] for s in sorted(want)]
    assert got.codes.shape == ((len(want),) if k <= 32 else (len(want), 2))
    if want:
        assert np.array_equal(got.codes, encode_kmers(sorted(want)))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="ACGT", min_size=5, max_size=60), min_size=1, max_size=6), st.integers(1, 4))
def test_filters_top_and_histogram(seqs, max_count):
    k = 3
    want = ref_counts(seqs, k, True)
    got = kc.count([seqs], k, max_count=max_count)
    assert dict(zip(got.kmers(), got.counts.tolist(), strict=True)) == {
        s: c for s, c in want.items() if c <= max_count}
    full = kc.count([seqs], k)
    hist = collections.Counter(want.values())
    values, n = full.histogram()
    assert dict(zip(values.tolist(), n.tolist(), strict=True)) == dict(hist)
    # top: by count descending, ties in k-mer order
    order = sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))
    for t in (0, 1, 3, len(order) + 2):
        top = full.top(t)
        assert list(zip(top.kmers(), top.counts.tolist(), strict=True)) == order[:t]


def test_sources_forms_agree(tmp_path):
    path = shared("unit/MT-human.fa")
    by_path = kc.count(path, 21)
    batches = list(kmerx.io.read(path))
    by_batch = kc.count(batches[0], 21) if len(batches) == 1 else kc.count(batches, 21)
    by_list = kc.count([str(path)], 21)
    by_arrow = kc.count([pa.concat_tables([pa.table(b) for b in batches]).column("seq")], 21)
    for other in (by_batch, by_list, by_arrow):
        assert np.array_equal(other.codes, by_path.codes) and np.array_equal(other.counts, by_path.counts)


@pytest.mark.parametrize("k", [21, 40])
def test_parquet_round_trip(tmp_path, k):
    got = kc.count([["ACGTTGCAACGGTACCATGACGTTTGCAAGGCCTTAACGGTACGATCGA" * 3]], k, canonical=k == 21)
    got.to_parquet(tmp_path / "c.parquet", rows_per_group=7)
    back = kc.KmerCounts.from_parquet(tmp_path / "c.parquet")
    assert (back.k, back.canonical) == (k, k == 21)
    assert np.array_equal(back.codes, got.codes) and np.array_equal(back.counts, got.counts)
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "c.parquet").column("kmer").to_pylist() == got.kmers()


def test_kmers_count_kmers_is_the_native_counter():
    from kmerx.kmers import KmerCounter, count_kmers, kmer_codes

    codes = kmer_codes(["ACGTACGTAC", "TTTT"], 3, strand="forward")
    u, c = count_kmers(codes)
    want = kc.count([["ACGTACGTAC", "TTTT"]], 3, canonical=False)
    assert np.array_equal(u, want.codes) and np.array_equal(c, want.counts)
    counter = KmerCounter()
    assert [len(x) for x in counter.result()] == [0, 0]


# ---- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,match", [
    ({"k": 0}, "k must be in 1..64, got 0"),
    ({"k": 65}, "k must be in 1..64, got 65"),
    ({"k": 5, "max_memory": 1000}, "max_memory must be >= .* got 1000"),
    ({"k": 5, "max_memory": 0}, "max_memory must be in 1..[0-9]+, got 0"),
    ({"k": 5, "min_count": 5, "max_count": 2}, "min_count must be <= max_count, got min_count=5 max_count=2"),
    ({"k": 5, "min_count": 0}, "min_count must be in 1..[0-9]+, got 0"),
    ({"k": 5, "bins": 70000}, "bins must be in 0..65536, got 70000"),
    ({"k": 5, "tmp_dir": "/nonexistent/dir"}, "tmp_dir must be an existing directory, got '/nonexistent/dir'"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        kc.Counter(**kw)


def test_bad_types_and_threads():
    with pytest.raises(TypeError, match="k must be an int, got str"):
        kc.Counter("5")
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        kc.count([["ACGT"]], 2, threads=0)
    with pytest.raises(TypeError, match="sources must be"):
        kc.count(42, 2)
    c = kc.Counter(3)
    c.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        c.add(["ACGT"])
    with pytest.raises(ValueError, match=r"codes must have shape \(n, 2\)"):
        kc.Counter(40).add_codes(np.zeros(3, np.uint64))


def test_bad_file_is_a_format_error(tmp_path):
    bad = tmp_path / "bad.fq"
    bad.write_bytes(b"@r1\nACGT\n+\nII\n")
    with pytest.raises(kmerx.FastxFormatError):
        kc.count(bad, 3)


# ---- Counter.finish(output): the Parquet file written while counting ------------------------------
def _same_file(a, b) -> None:
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.schema.equals(tb.schema, check_metadata=True) and ta.equals(tb)
    assert pq.ParquetFile(a).metadata.num_row_groups == pq.ParquetFile(b).metadata.num_row_groups
    assert pathlib.Path(a).read_bytes() == pathlib.Path(b).read_bytes()


def _streamed_and_whole(tmp_path, sources, k, kmers=True, **kw):
    streamed = kc.count(sources, k, output=tmp_path / "s.parquet", kmers=kmers, **kw)
    whole = kc.count(sources, k, **kw)
    whole.to_parquet(tmp_path / "w.parquet", kmers=kmers)
    assert np.array_equal(streamed.codes, whole.codes) and np.array_equal(streamed.counts, whole.counts)
    _same_file(tmp_path / "s.parquet", tmp_path / "w.parquet")
    return whole


@pytest.mark.parametrize("kmers", [True, False])
def test_finish_output_large(tmp_path, kmers):
    """2.5 M distinct k-mers: row groups of 1 M rows straddle the groups of bins."""
    rng = np.random.default_rng(5)
    seq = "".join(rng.choice(list("ACGT"), 2_500_000))
    got = _streamed_and_whole(tmp_path, [[seq, seq[:100_000]]], 31, kmers=kmers, threads=2)
    assert len(got) > 2 << 20


@settings(max_examples=30, deadline=None)
@given(seqs=st.lists(st.text("ACGTN", max_size=60), max_size=8), k=st.sampled_from([1, 3, 21, 33, 64]),
       min_count=st.integers(1, 3), max_count=st.sampled_from([None, 1, 2, 5]), kmers=st.booleans(),
       spill=st.booleans(), bins=st.sampled_from([0, 4, 64]))
@example(seqs=[], k=5, min_count=1, max_count=None, kmers=True, spill=False, bins=0)
@example(seqs=["AC"], k=5, min_count=1, max_count=None, kmers=False, spill=True, bins=4)
def test_finish_output_matches_to_parquet(tmp_path_factory, seqs, k, min_count, max_count, kmers, spill, bins):
    if max_count is not None and max_count < min_count:
        max_count = min_count
    tmp = tmp_path_factory.mktemp("stream")
    kw = dict(k=k, min_count=min_count, max_count=max_count, bins=bins,
              max_memory=kmerx._core.min_count_memory(bins or 1024, 2) if spill else kc.DEFAULT_MAX_MEMORY)
    with kc._threads(2), pytest.MonkeyPatch.context() as mp:
        mp.setattr(kc, "_ROWS_PER_GROUP", 7)
        results = []
        for out in (tmp / "s.parquet", None):
            c = kc.Counter(kw["k"], min_count=min_count, max_count=max_count, bins=bins, max_memory=kw["max_memory"],
                           tmp_dir=tmp)
            c.add(seqs)
            results.append(c.finish(out, kmers=kmers))
    streamed, whole = results
    whole.to_parquet(tmp / "w.parquet", kmers=kmers, rows_per_group=7)
    assert np.array_equal(streamed.codes, whole.codes) and np.array_equal(streamed.counts, whole.counts)
    _same_file(tmp / "s.parquet", tmp / "w.parquet")
    assert sorted(p.name for p in tmp.iterdir()) == ["s.parquet", "w.parquet"]  # no spill or temporary files


def test_finish_output_spilled_file(tmp_path):
    rng = np.random.default_rng(7)
    seqs = ["".join(rng.choice(list("ACGT"), 30_000)) for _ in range(10)]
    with kc._threads(2):
        c = kc.Counter(21, max_memory=1 << 20, bins=4, tmp_dir=tmp_path)
        for s in seqs:
            c.add([s])
        assert c.spilled_bytes > 0
        got = c.finish(tmp_path / "s.parquet")
    got.to_parquet(tmp_path / "w.parquet")
    _same_file(tmp_path / "s.parquet", tmp_path / "w.parquet")


def test_stream_writer_restarts_on_big_counts(tmp_path, monkeypatch):
    """Counts above 2^32 - 1 (known only at the end) turn the count column to uint64: the rows already
    written as uint32 are written again."""
    monkeypatch.setattr(kc, "_ROWS_PER_GROUP", 2)
    codes = np.arange(5, dtype=np.uint64)
    small = kc.KmerCounts(codes, np.array([1, 2, 3, 4, 0xFFFFFFFF], np.uint32), 5, True)
    big = kc.KmerCounts(codes, np.array([1, 2, 3, 4, 1 << 33], np.uint64), 5, True)
    w = kc._StreamWriter(str(tmp_path / "s.parquet"), small, True)
    w.ready(4)
    w.close(big)
    big.to_parquet(tmp_path / "w.parquet", rows_per_group=2)
    _same_file(tmp_path / "s.parquet", tmp_path / "w.parquet")


def test_finish_output_error_leaves_nothing(tmp_path):
    c = kc.Counter(5)
    c.add(["ACGTACGT"])
    with pytest.raises(OSError):
        c.finish(tmp_path / "missing-dir" / "s.parquet")
    assert list(tmp_path.iterdir()) == []
