"""The CUDA k-mer kernel against the CPU op, bit for bit; one test body parametrized over devices."""

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
    "k,strand,stride",
    [
        (1, "canonical", 1),
        (5, "forward", 1),
        (21, "reverse", 3),
        (31, "canonical", 1),
        (32, "canonical", 7),
        (33, "forward", 1),
        (64, "canonical", 2),
        (47, "reverse", 47),
    ],
)
def test_device_matches_cpu(device, k, strand, stride):
    data, offsets = random_reads(k)
    want = kmers.kmer_codes_numpy(data, offsets, k, strand=strand, stride=stride, positions=True)
    got = kmers.kmer_codes_numpy(
        data, offsets, k, strand=strand, stride=stride, positions=True, device=device
    )
    for a, b in zip(want, got):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_CUDA and HAS_CUPY), reason="no CUDA device or cupy not installed")
def test_cupy_arrays_in_and_out():
    import cupy as cp

    data, offsets = random_reads(1)
    want = kmers.kmer_codes_numpy(data, offsets, 31, positions=True)
    got = kmers.kmer_codes_numpy(cp.asarray(data), cp.asarray(offsets), 31, positions=True, device="cuda")
    assert all(isinstance(a, cp.ndarray) for a in got)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, cp.asnumpy(b))


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
def test_cuda_unavailable_is_a_clear_error():
    with pytest.raises(RuntimeError, match="kmerx was built without CUDA|no CUDA device"):
        kmers.kmer_codes(["ACGTACGT"], 3, device="cuda")


def test_device_count_never_raises():
    try:
        from kmerx import _cuda
    except ImportError:
        pytest.skip("kmerx was built without CUDA")
    assert _cuda.device_count() >= 0
    assert kmerx.cuda_available() == (_cuda.device_count() > 0)
