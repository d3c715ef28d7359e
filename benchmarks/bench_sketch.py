"""sourmash-compatible FracMinHash, k=31 scaled=1000: kmerx (1 and 2 threads) vs sourmash's
``MinHash.add_sequence(seq, force=True)``.

Both sides get the same raw sequences (N and all): kmerx as one (data, offsets) batch prepared outside
the timed call, sourmash as str objects decoded outside it. Both must produce the same hashes.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import compare, with_threads

from kmerx import kmers
from kmerx._arrow import binary_array

K = 31
SCALED = 1000


def bench(benchmark, named, rounds):
    sourmash = pytest.importorskip("sourmash")
    name, seqs = named
    data, offsets = kmers.seq_arrays(seqs)
    batch = binary_array(data, offsets)  # prepared, not timed
    texts = [s.decode() for s in seqs]

    def ours():
        return kmers.FracMinHash(K, SCALED).add(batch).hashes

    def theirs():
        mh = sourmash.MinHash(0, K, scaled=SCALED)
        for t in texts:
            mh.add_sequence(t, force=True)
        return np.array(sorted(mh.hashes), dtype=np.uint64)

    got = compare(
        benchmark,
        f"FracMinHash k={K} scaled={SCALED} (sourmash-compatible hashes), {name}",
        {
            "kmerx (1 thread)": with_threads(1, ours),
            "kmerx (2 threads)": with_threads(2, ours),
            "sourmash": theirs,
        },
        rounds, data.size, "bp", keep=lambda h: h.tobytes(),
    )
    assert len(set(got.values())) == 1


def test_sketch_chrx(benchmark, chrx_seqs, rounds):
    bench(benchmark, chrx_seqs, rounds)


def test_sketch_reads(benchmark, read_seqs, rounds):
    bench(benchmark, read_seqs, rounds)
