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
from conftest import compare, shared, with_threads

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


def bench(benchmark, pieces, rounds):
    bnp = pytest.importorskip("bionumpy")
    name, seqs = pieces
    data, offsets = kmers.seq_arrays(seqs)
    encoded = bnp.as_encoded_array([s.decode() for s in seqs], bnp.DNAEncoding)  # prepared, not timed
    codes = lambda: kmers.kmer_codes_numpy(data, offsets, K)[0]  # noqa: E731
    got = compare(
        benchmark,
        f"k-mer codes: canonical k={K} (bionumpy: forward, it has no canonical), {name}",
        {
            "kmerx (1 thread)": with_threads(1, codes),
            "kmerx (2 threads)": with_threads(2, codes),
            "bionumpy": lambda: bnp.get_kmers(encoded, K).raw().ravel(),
        },
        rounds, data.size, "bp", keep=np.size,
    )
    assert set(got.values()) == {int(np.sum(np.diff(offsets) - K + 1))}


def test_kmer_codes_chrx(benchmark, chrx_pieces, rounds):
    bench(benchmark, chrx_pieces, rounds)


def test_kmer_codes_reads(benchmark, reads_pieces, rounds):
    bench(benchmark, reads_pieces, rounds)
