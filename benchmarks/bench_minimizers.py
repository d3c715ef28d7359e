"""minimap2-compatible (w=10, k=15) minimizers: kmerx (1 and 2 threads) vs pykmertools' MinimiserGenerator.

Both sides get the same sequences (N bases included; each tool applies its own N rule), prepared outside
the timed call: (data, offsets) buffers for kmerx, Python str for pykmertools. pykmertools yields one
(kmer, start, end) tuple per minimiser from an iterator; its side collects them all into a list, so
both sides produce every minimiser. Its window is given in bases (w + k - 1), which gives the same
number of k-mers per window. kmerx's threads split the work by reads, so the one-record chrX input
runs on one thread either way.
"""

from __future__ import annotations

import pytest
from conftest import compare, with_threads

from kmerx import kmers

K, W = 15, 10


def bench(benchmark, named, rounds):
    pk = pytest.importorskip("pykmertools")
    name, seqs = named
    data, offsets = kmers.seq_arrays(seqs)
    texts = [s.decode() for s in seqs]  # prepared, not timed
    sketch = lambda: kmers.minimizers_numpy(data, offsets, K, W)  # noqa: E731
    got = compare(
        benchmark,
        f"minimizers: minimap2 w={W} k={K} (pykmertools: MinimiserGenerator, window {W + K - 1} bases), {name}",
        {
            "kmerx (1 thread)": with_threads(1, sketch),
            "kmerx (2 threads)": with_threads(2, sketch),
            "pykmertools": lambda: [m for s in texts for m in pk.MinimiserGenerator(s, W + K - 1, K)],
        },
        rounds,
        data.size,
        "bp",
        keep=lambda out: len(out) if isinstance(out, list) else out[0].size,
    )
    # Different hash functions pick different k-mers, but the density is the same: about 2 / (w + 1).
    density = {impl: n / data.size for impl, n in got.items()}
    assert all(0.1 < d < 0.3 for d in density.values()), density


def test_minimizers_chrx(benchmark, chrx_seqs, rounds):
    bench(benchmark, chrx_seqs, rounds)


def test_minimizers_reads(benchmark, read_seqs, rounds):
    bench(benchmark, read_seqs, rounds)
