"""Canonical k=31 codes into a numpy array: kmerx (1 and 2 threads) vs bionumpy's get_kmers.

Both sides get the same ACGT-only input (sequences split at non-ACGT bases, pieces shorter than k
dropped), prepared outside the timed call: (data, offsets) buffers for kmerx, a DNAEncoding encoded
array for bionumpy. bionumpy 1.0 has no canonical k-mers, so its side computes forward codes.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import acgt_pieces, compare, with_threads

from kmerx import kmers

K = 31


def bench(benchmark, named, rounds):
    bnp = pytest.importorskip("bionumpy")
    name, seqs = named
    seqs = acgt_pieces(seqs, K)
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


def test_kmer_codes_chrx(benchmark, chrx_seqs, rounds):
    bench(benchmark, chrx_seqs, rounds)


def test_kmer_codes_reads(benchmark, read_seqs, rounds):
    bench(benchmark, read_seqs, rounds)
