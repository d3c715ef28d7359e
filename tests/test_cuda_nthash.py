"""The CUDA ntHash kernel against the CPU op, bit for bit; one test body parametrized over devices."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import kmerx
from kmerx import kmers

HAS_CUDA = kmerx.cuda_available()
HAS_CUPY = importlib.util.find_spec("cupy") is not None
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")]),
]


def random_reads(seed: int, n: int = 300):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 400, n)
    lengths[0] = 20_000  # one long record
    data = np.frombuffer(b"ACGTacgtN", np.uint8)[
        rng.choice(9, int(lengths.sum()), p=[0.2] * 4 + [0.04] * 4 + [0.04])
    ]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return data, offsets


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "k,num_hashes,strand",
    [
        (1, 1, "canonical"),
        (5, 3, "forward"),
        (21, 1, "reverse"),
        (31, 1, "canonical"),
        (31, 4, "canonical"),
        (64, 2, "forward"),
        (100, 1, "canonical"),
    ],
)
def test_device_matches_cpu(device, k, num_hashes, strand):
    data, offsets = random_reads(k)
    want = kmers.nthash_numpy(data, offsets, k, num_hashes=num_hashes, strand=strand, positions=True)
    got = kmers.nthash_numpy(
        data, offsets, k, num_hashes=num_hashes, strand=strand, positions=True, device=device
    )
    for a, b in zip(want, got):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_CUDA and HAS_CUPY), reason="no CUDA device or cupy not installed")
def test_cupy_arrays_in_and_out():
    import cupy as cp

    data, offsets = random_reads(1)
    want = kmers.nthash_numpy(data, offsets, 31, num_hashes=2, positions=True)
    got = kmers.nthash_numpy(
        cp.asarray(data), cp.asarray(offsets), 31, num_hashes=2, positions=True, device="cuda"
    )
    assert all(isinstance(a, cp.ndarray) for a in got)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, cp.asnumpy(b))


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
def test_cuda_unavailable_is_a_clear_error():
    with pytest.raises(RuntimeError, match="kmerx was built without CUDA|no CUDA device"):
        kmers.nthash(["ACGTACGT"], 3, device="cuda")
