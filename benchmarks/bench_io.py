"""Reader throughput: kmerx.io.read vs dnaio (iterating records, summing sequence lengths)."""

from __future__ import annotations

import gzip
import shutil

import pytest
from conftest import compare, shared, tiny_fastq

import kmerx.io as kio

dnaio = pytest.importorskip("dnaio")


def _kmerx(path) -> int:
    return sum(len(b.column("seq").buffers()[2] or b"") for b in kio.read(path))


def _dnaio(path) -> int:
    n = 0
    with dnaio.open(path) as r:
        for rec in r:
            n += len(rec.sequence)
    return n


@pytest.fixture(scope="session")
def art_plain(tmp_path_factory, full):
    if not full:
        return tiny_fastq(tmp_path_factory)
    src = shared("reads/art_MG1655_HS25_2x150_10x_R1.fq.gz")
    dst = tmp_path_factory.mktemp("bench_io") / "art_R1.fq"
    with gzip.open(src, "rb") as f, open(dst, "wb") as g:
        shutil.copyfileobj(f, g, 1 << 20)
    return dst


def _input(kind, full, tmp_path_factory, art_plain):
    if kind == "plain":
        return "FASTQ art_MG1655 R1 (154,655 x 150 bp)", art_plain
    if not full:
        return f"FASTQ.gz {kind}", tiny_fastq(tmp_path_factory, compressed=True)
    if kind == "art":
        return "FASTQ.gz art_MG1655 R1 (154,655 x 150 bp)", shared("reads/art_MG1655_HS25_2x150_10x_R1.fq.gz")
    return "FASTQ.gz SRR059298 (100,000 x 72 bp)", shared("reads/SRR059298_subset_100k.fastq.gz")


@pytest.mark.parametrize("kind", ["plain", "art", "srr"])
def test_reader(benchmark, rounds, full, tmp_path_factory, art_plain, kind):
    label, path = _input(kind, full, tmp_path_factory, art_plain)
    if not full and kind == "plain":
        label = "FASTQ tiny"
    bases = _dnaio(path)
    got = compare(benchmark, f"reader: {label}", {"kmerx": lambda: _kmerx(path), "dnaio": lambda: _dnaio(path)},
                  rounds, bases, "bp")
    assert got == {"kmerx": bases, "dnaio": bases}
