"""kmerx.stats against a pure-Python reference and, when installed, seqkit."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import make_batch, parse_fasta, parse_fastq, shared

from kmerx.stats import SeqStats, batch_stats, guess_quality_encoding, quality_offset, stats_of


def ref_stats(recs) -> dict:
    seqs = [s.upper() for _, s, _ in recs]
    quals = b"".join(q for _, _, q in recs if q is not None)
    bases = sum(map(len, seqs))
    counts = {ch: sum(s.count(ch.encode()) for s in seqs) for ch in "ACGTN"}
    return {
        "records": len(seqs), "bases": bases,
        "min_len": min(map(len, seqs), default=0), "max_len": max(map(len, seqs), default=0),
        "a": counts["A"], "c": counts["C"], "g": counts["G"], "t": counts["T"], "n_count": counts["N"],
        "other": bases - sum(counts.values()),
        "gc": 100.0 * (counts["G"] + counts["C"]) / bases if bases else 0.0,
        "min_qual": min(quals) if quals else None, "max_qual": max(quals) if quals else None,
    }


def check(stats: SeqStats, recs):
    want = ref_stats(recs)
    got = stats.to_dict()
    assert {k: got[k] for k in want} == pytest.approx(want)


def batches(recs, size):
    return [make_batch(recs[i : i + size], start_index=i) for i in range(0, len(recs), size)]


@pytest.mark.parametrize("size", [1, 333, 5000])
def test_fastq_merged_over_batches(size):
    recs = parse_fastq(shared("unit/SRR059298_first2k.fastq"))
    st_ = stats_of(batches(recs, size), file="SRR059298_first2k.fastq")
    check(st_, recs)
    assert st_.format == "FASTQ" and st_.file == "SRR059298_first2k.fastq"
    assert st_.quality_encoding == "Phred+33 (Sanger/Illumina 1.8+)"
    assert st_.min_qual == ord("!")


def test_fasta():
    recs = parse_fasta(shared("unit/MT-human.fa")) + parse_fasta(shared("unit/lambda_virus.fa"))
    st_ = stats_of(batches(recs, 1))
    check(st_, recs)
    assert st_.format == "FASTA" and st_.quality_encoding == "none" and st_.q_percent(20) is None


def test_phred64_file():
    recs = parse_fastq(shared("unit/sample_101s_phred64.fastq.gz"))
    st_ = stats_of(batches(recs, 100))
    check(st_, recs)
    assert st_.quality_encoding.startswith("Phred+64")
    assert quality_offset(st_.quality_encoding) == 64


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=30), st.booleans()), max_size=10), st.integers(1, 4))
@example([], 1)
@example([(b"", True)], 1)
def test_property_against_reference(reads, size):
    recs = [(f"r{i}", s, bytes(33 + b % 60 for b in s) if q else b"") for i, (s, q) in enumerate(reads)]
    check(stats_of(batches(recs, size)), recs)


def test_empty_and_merge_identity():
    empty = stats_of([], file="x")
    assert empty.records == 0 and empty.avg_len == 0.0 and empty.gc == 0.0 and empty.file == "x"
    one = batch_stats(make_batch([("a", b"ACGGN", b"IIIII")]))
    assert empty.merge(one).records == 1 and one.merge(empty) == one
    assert (one + one).bases == 10 and (one + one).min_len == 5


def test_guess_quality_encoding():
    assert guess_quality_encoding(None, None) == "none"
    assert guess_quality_encoding(33, 74).startswith("Phred+33")
    assert guess_quality_encoding(35, 66).startswith("Phred+33")
    assert guess_quality_encoding(59, 104) == "Solexa+64"
    assert guess_quality_encoding(64, 104).startswith("Phred+64")
    assert guess_quality_encoding(66, 104).startswith("Phred+64")
    assert guess_quality_encoding(66, 74).startswith("Phred+33")  # all-high Phred+33, not Phred+64
    assert guess_quality_encoding(20, 40) == "unknown"
    assert guess_quality_encoding(40, 127) == "unknown"
    with pytest.raises(ValueError, match="min_byte"):
        guess_quality_encoding(70, 60)


@pytest.mark.skipif(shutil.which("seqkit") is None, reason="seqkit not installed (apt-get install seqkit)")
@pytest.mark.parametrize("rel", ["unit/SRR059298_first2k.fastq", "unit/MT-human.fa", "unit/lambda_virus.fa",
                                 "unit/ERR1163317_MiSeq_1k.fq.gz"])
def test_matches_seqkit(rel):
    path = shared(rel)
    out = subprocess.run(["seqkit", "stats", "-a", "-T", str(path)], check=True, capture_output=True, text=True)
    header, values = (line.split("\t") for line in out.stdout.strip().splitlines())
    sk = dict(zip(header, values))
    recs = parse_fasta(path) if sk["format"] == "FASTA" else parse_fastq(path)
    ours = stats_of(batches(recs, 400)).to_dict()
    assert (ours["records"], ours["bases"], ours["min_len"], ours["max_len"]) == (
        int(sk["num_seqs"]), int(sk["sum_len"]), int(sk["min_len"]), int(sk["max_len"]))
    assert f"{ours['gc']:.2f}" == sk["GC(%)"]
    assert f"{ours['avg_len']:.1f}" == sk["avg_len"]
    if sk["format"] == "FASTQ":  # seqkit assumes Phred+33, as these files are
        assert f"{ours['q20']:.2f}" == sk["Q20(%)"] and f"{ours['q30']:.2f}" == sk["Q30(%)"]


@pytest.mark.skipif(__import__("importlib").util.find_spec("kmerx.io") is None, reason="kmerx.io not merged yet")
def test_file_stats_matches_stats_of():
    from kmerx.stats import file_stats

    path = shared("unit/SRR059298_first2k.fastq")
    got = file_stats(path)
    want = stats_of(batches(parse_fastq(path), 500), file=str(path))
    assert got == want
