"""Canonical k=31 codes into a numpy array: kmerx (1 and 2 threads) vs bionumpy's get_kmers.

Both sides get the same ACGT-only input (sequences split at non-ACGT bases, pieces shorter than k
dropped), prepared outside the timed call: (data, offsets) buffers for kmerx, a DNAEncoding encoded
array for bionumpy. bionumpy 1.0 has no canonical k-mers, so its side computes forward codes.
"""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from conftest import run, shared

import kmerx
from kmerx import kmers

K = 31
CHRX_BASES = 20_000_000


def acgt_pieces(seqs: list[bytes]) -> list[bytes]:
    return [p for s in seqs for p in re.split(rb"[^ACGT]+", s.upper()) if len(p) >= K]


def chrx() -> list[bytes]:
    text = gzip.decompress(shared("genomes/human_GRCh37_chrX_first70Mb.fa.gz").read_bytes())
    body = text.split(b"\n", 1)[1].split(b">", 1)[0].replace(b"\n", b"")
    return [body[:CHRX_BASES]]


def reads() -> list[bytes]:
    lines = gzip.decompress(shared("reads/SRR059298_subset_100k.fastq.gz").read_bytes()).split(b"\n")
    return lines[1::4]


def quick_seqs() -> list[bytes]:
    rng = np.random.default_rng(11)
    return [
        bytes(np.frombuffer(b"ACGTN", np.uint8)[rng.choice(5, 300, p=[0.245] * 4 + [0.02])])
        for _ in range(500)
    ]


# One fixture per input (not a parametrized one), so the report's variant label is just the thread count.
@pytest.fixture(scope="session")
def chrx_pieces(full):
    return ("chrX first 20 Mb", acgt_pieces(chrx())) if full else ("quick random", acgt_pieces(quick_seqs()))


@pytest.fixture(scope="session")
def reads_pieces(full):
    return (
        ("SRR059298 100k reads", acgt_pieces(reads()))
        if full
        else ("quick random", acgt_pieces(quick_seqs()))
    )


def group(name: str) -> str:
    return f"k-mer codes: canonical k={K} (bionumpy: forward, it has no canonical), {name}"


def bench_kmerx(benchmark, pieces, rounds, threads):
    name, seqs = pieces
    data, offsets = kmers.seq_arrays(seqs)
    benchmark.group = group(name)
    kmerx.set_num_threads(threads)
    try:
        codes, _ = run(
            benchmark, lambda: kmers.kmer_codes_numpy(data, offsets, K), rounds, "kmerx", data.size, "bp"
        )
    finally:
        kmerx.set_num_threads(0)
    assert codes.size == int(np.sum(np.diff(offsets) - K + 1))


def bench_bionumpy(benchmark, pieces, rounds):
    bnp = pytest.importorskip("bionumpy")
    name, seqs = pieces
    encoded = bnp.as_encoded_array([s.decode() for s in seqs], bnp.DNAEncoding)  # prepared, not timed
    benchmark.group = group(name)
    total = sum(len(s) for s in seqs)
    codes = run(benchmark, lambda: bnp.get_kmers(encoded, K).raw().ravel(), rounds, "bionumpy", total, "bp")
    assert codes.size == sum(len(s) - K + 1 for s in seqs)


THREADS = pytest.mark.parametrize("threads", [1, 2], ids=["1 thread", "2 threads"])


@THREADS
def test_kmerx_chrx(benchmark, chrx_pieces, rounds, threads):
    bench_kmerx(benchmark, chrx_pieces, rounds, threads)


@THREADS
def test_kmerx_reads(benchmark, reads_pieces, rounds, threads):
    bench_kmerx(benchmark, reads_pieces, rounds, threads)


def test_bionumpy_chrx(benchmark, chrx_pieces, rounds):
    bench_bionumpy(benchmark, chrx_pieces, rounds)


def test_bionumpy_reads(benchmark, reads_pieces, rounds):
    bench_bionumpy(benchmark, reads_pieces, rounds)
