"""The command line, run as a user runs it: a subprocess, its stdout, stderr and exit code."""

from __future__ import annotations

import gzip
import os
import pathlib
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MT = ROOT / "data" / "MT-human.fa"
ORACLE = ROOT / ".." / "shared" / "data" / "oracle" / "jellyfish"


def kmerx(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="error")
    return subprocess.run([sys.executable, "-m", "kmerx", *args], input=stdin, capture_output=True, env=env, timeout=120)


def test_stats_table():
    r = kmerx("stats", "-T", str(MT))
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.decode().splitlines()
    cols = dict(zip(header.split("\t"), row.split("\t")))
    assert cols["num_seqs"] == "1"
    assert cols["sum_len"] == "16569"
    assert cols["min_len"] == cols["max_len"] == "16569"
    assert cols["format"] == "FASTA"
    assert r.stderr == b""  # no progress bar when stderr is not a terminal


def test_stats_several_files_and_stdin(tmp_path):
    fq = tmp_path / "r.fq.gz"
    fq.write_bytes(gzip.compress(b"@a\nACGTN\n+\nIIIII\n@b\nGG\n+\n!!\n"))
    r = kmerx("stats", "-T", str(MT), str(fq), "-", stdin=MT.read_bytes())
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.decode().splitlines()[1:]]
    assert [row[2] for row in rows] == ["1", "2", "1"]
    assert rows[1][3] == "7" and rows[1][7] == "1"  # bases, N count
    assert rows[1][1] == "FASTQ" and "33" in rows[1][9]


@pytest.mark.parametrize("k,strand", [(21, "canonical"), (5, "forward")])
def test_kmers_count_equals_jellyfish(k, strand):
    oracle = ORACLE / f"MT-human.k{k}.{strand}.tsv.gz"
    if not oracle.exists():
        pytest.skip(f"{oracle} missing (../shared/data not beside the project)")
    args = ["kmers", str(MT), "-k", str(k), "--count"] + (["--canonical"] if strand == "canonical" else [])
    r = kmerx(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout == gzip.decompress(oracle.read_bytes())


def test_kmers_rows_and_parquet(tmp_path):
    r = kmerx("kmers", str(MT), "-k", "4", "--stride", "4")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    name, pos, kmer = lines[0].split("\t")
    assert name == "MT_human" and pos == "0" and kmer == "GATC"
    assert lines[1].split("\t")[1] == "4"
    out = tmp_path / "k.parquet"
    r = kmerx("kmers", str(MT), "-k", "21", "--canonical", "--format", "parquet", "-o", str(out))
    assert r.returncode == 0, r.stderr
    table = pq.read_table(out)
    assert table.column_names == ["read_name", "position", "kmer"]
    assert table.num_rows == 16569 - 21 + 1
    assert not list(tmp_path.glob(".*tmp*"))  # no temp file left behind


@pytest.mark.parametrize(
    "args,needle",
    [
        (["stats", "/nonexistent.fa"], "/nonexistent.fa"),
        (["kmers", str(MT), "-k", "80"], "-k must be in 1..64, got 80"),
        (["kmers", str(MT), "-k", "5", "--format", "parquet"], "needs -o"),
    ],
)
def test_errors_are_one_line(args, needle):
    r = kmerx(*args)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


def test_malformed_input_names_file_and_record(tmp_path):
    bad = tmp_path / "bad.fq"
    bad.write_bytes(b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII\n")
    r = kmerx("stats", str(bad))
    assert r.returncode == 1
    err = r.stderr.decode()
    assert str(bad) in err and "record 2" in err and "Traceback" not in err


@pytest.mark.parametrize("sub", [[], ["stats"], ["kmers"]])
def test_help_everywhere(sub):
    r = kmerx(*sub, "--help")
    assert r.returncode == 0 and b"usage: kmerx" in r.stdout


def test_pipe_closed_early_is_not_an_error():
    p = subprocess.run(f"{sys.executable} -m kmerx kmers {MT} -k 5 | head -1", shell=True, capture_output=True)
    assert p.stdout.count(b"\n") == 1
    assert b"Traceback" not in p.stderr and b"Error" not in p.stderr


# ---- kmerx count / histo -------------------------------------------------------------------------
@pytest.mark.parametrize("k,strand", [(21, "canonical"), (5, "forward")])
def test_count_parquet_equals_jellyfish(tmp_path, k, strand):
    oracle = ORACLE / f"MT-human.k{k}.{strand}.tsv.gz"
    if not oracle.exists():
        pytest.skip(f"{oracle} missing (../shared/data not beside the project)")
    out = tmp_path / "c.parquet"
    args = ["count", str(MT), "-k", str(k), "-o", str(out), "--max-memory", "1M", "--threads", "2"]
    r = kmerx(*args + (["--forward"] if strand == "forward" else []))
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""  # no progress bar when stderr is not a terminal
    t = pq.read_table(out)
    assert t.column_names == ["kmer", "count", "code"]
    got = "".join(f"{s}\t{c}\n" for s, c in zip(t.column("kmer").to_pylist(), t.column("count").to_pylist()))
    assert got == gzip.decompress(oracle.read_bytes()).decode()
    assert [p.name for p in tmp_path.iterdir()] == ["c.parquet"]  # written atomically, no leftovers


def test_count_top_filters_and_histo(tmp_path):
    out = tmp_path / "c.parquet"
    r = kmerx("count", str(MT), str(MT), "-k", "5", "-o", str(out), "--top", "3", "--min-count", "2")
    assert r.returncode == 0, r.stderr
    counts = pq.read_table(out).column("count").to_pylist()
    assert len(counts) == 3 and counts == sorted(counts, reverse=True)
    full = tmp_path / "full.parquet"
    assert kmerx("count", str(MT), "-k", "5", "-o", str(full)).returncode == 0
    by_file = kmerx("histo", str(MT), "-k", "5")
    by_parquet = kmerx("histo", str(full))
    assert by_file.returncode == 0 and by_file.stdout == by_parquet.stdout
    lines = [tuple(map(int, line.split("\t"))) for line in by_file.stdout.decode().splitlines()]
    table = pq.read_table(full).column("count").to_pylist()
    assert sum(n for _, n in lines) == len(table) and sum(c * n for c, n in lines) == sum(table)
    histo = tmp_path / "h.tsv"
    assert kmerx("histo", str(full), "-o", str(histo)).returncode == 0
    assert histo.read_bytes() == by_parquet.stdout


@pytest.mark.parametrize("args,msg", [
    (["count", "-k", "99", "-o", "x.parquet"], "-k must be in 1..64, got 99"),
    (["count", "-k", "5", "-o", "x.parquet", "--max-memory", "10K"], "max_memory must be >= "),
    (["count", "-k", "5", "-o", "x.parquet", "--min-count", "5", "--max-count", "2"], "min_count must be <= max_count"),
    (["histo"], "-k is required"),
])
def test_count_bad_arguments(tmp_path, args, msg):
    r = kmerx(*args[:1], str(MT), *args[1:])
    assert r.returncode == 1
    assert r.stderr.decode().startswith("kmerx: error: ") and msg in r.stderr.decode()
    assert r.stderr.count(b"\n") == 1


def test_count_bad_file(tmp_path):
    bad = tmp_path / "bad.fq"
    bad.write_bytes(b"@r1\nACGT\n+\nII\n")
    r = kmerx("count", str(bad), "-k", "3", "-o", str(tmp_path / "o.parquet"))
    assert r.returncode == 1 and r.stderr.startswith(b"kmerx: error: ") and r.stderr.count(b"\n") == 1
    assert not (tmp_path / "o.parquet").exists()


def test_tokenize_parquet_equals_the_api(tmp_path):
    import json

    from kmerx.tokenizers import Tokenizer

    fq = tmp_path / "r.fq"
    fq.write_bytes(b"@a\nACGTACGTNACG\n+\nIIIIIIIIIIII\n@b\nAC\n+\nII\n@c\nacgtacgtacgt\n+\nIIIIIIIIIIII\n")
    saved = tmp_path / "lsh.json"
    Tokenizer.from_config({"scheme": "lsh", "k": 5, "m": 10, "num_hashes": 2}).save(saved)
    for spec in ("dnabert-4", str(saved)):
        out = tmp_path / "ids.parquet"
        r = kmerx("tokenize", str(fq), "-t", spec, "-o", str(out), "--positions", "--max-length", "8")
        assert r.returncode == 0, r.stderr
        table = pq.read_table(out)
        tok = Tokenizer.from_config(spec)
        want = tok.encode_batch(["ACGTACGTNACG", "AC", "acgtacgtacgt"], return_tensors="arrow",
                                return_positions=True, max_length=8, truncation="right")
        assert table.column("read_index").to_pylist() == [0, 1, 2]
        assert table.column("name").to_pylist() == ["a", "b", "c"]
        assert table.column("input_ids").to_pylist() == want.input_ids.to_pylist()
        assert table.column("positions").to_pylist() == want.positions.to_pylist()
        assert Tokenizer._from_doc(json.loads(table.schema.metadata[b"kmerx.tokenizer"]), "meta") == tok


def test_tokenize_errors(tmp_path):
    r = kmerx("tokenize", str(MT), "-t", "no-such-preset", "-o", str(tmp_path / "x.parquet"))
    assert r.returncode == 1 and b"preset" in r.stderr and b"Traceback" not in r.stderr
    cfg = tmp_path / "svd.json"
    cfg.write_text('{"scheme": "lsh", "k": 21, "hyperplanes": "svd"}')
    r = kmerx("tokenize", str(MT), "-t", str(cfg), "-o", str(tmp_path / "x.parquet"))
    assert r.returncode == 1 and b"learned state" in r.stderr
    assert not (tmp_path / "x.parquet").exists()
