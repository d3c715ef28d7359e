"""The CUDA kernels against the CPU ops, bit for bit: one test body per op, parametrized over devices."""

from __future__ import annotations

import importlib.util
from functools import partial

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
needs_cupy = pytest.mark.skipif(not (HAS_CUDA and HAS_CUPY), reason="no CUDA device or cupy not installed")

# (op, k, keyword arguments): k-mer codes (k <= 64, strands, strides) and ntHash (any k, extra hashes).
CASES = [
    (kmers.kmer_codes_numpy, 1, dict(strand="canonical", stride=1)),
    (kmers.kmer_codes_numpy, 5, dict(strand="forward", stride=1)),
    (kmers.kmer_codes_numpy, 21, dict(strand="reverse", stride=3)),
    (kmers.kmer_codes_numpy, 31, dict(strand="canonical", stride=1)),
    (kmers.kmer_codes_numpy, 32, dict(strand="canonical", stride=7)),
    (kmers.kmer_codes_numpy, 33, dict(strand="forward", stride=1)),
    (kmers.kmer_codes_numpy, 64, dict(strand="canonical", stride=2)),
    (kmers.kmer_codes_numpy, 47, dict(strand="reverse", stride=47)),
    (kmers.nthash_numpy, 1, dict(num_hashes=1, strand="canonical")),
    (kmers.nthash_numpy, 5, dict(num_hashes=3, strand="forward")),
    (kmers.nthash_numpy, 21, dict(num_hashes=1, strand="reverse")),
    (kmers.nthash_numpy, 31, dict(num_hashes=1, strand="canonical")),
    (kmers.nthash_numpy, 31, dict(num_hashes=4, strand="canonical")),
    (kmers.nthash_numpy, 64, dict(num_hashes=2, strand="forward")),
    (kmers.nthash_numpy, 100, dict(num_hashes=1, strand="canonical")),
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


def case_id(case) -> str:
    op, k, kw = case
    return f"{op.__name__}-k{k}-" + "-".join(str(v) for v in kw.values())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_device_matches_cpu(device, case):
    op, k, kw = case
    data, offsets = random_reads(k)
    want = op(data, offsets, k, positions=True, **kw)
    got = op(data, offsets, k, positions=True, device=device, **kw)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    "op", [kmers.kmer_codes_numpy, partial(kmers.nthash_numpy, num_hashes=2)], ids=["codes", "nthash"]
)
@pytest.mark.gpu
@needs_cupy
def test_cupy_arrays_in_and_out(op):
    import cupy as cp

    data, offsets = random_reads(1)
    want = op(data, offsets, 31, positions=True)
    got = op(cp.asarray(data), cp.asarray(offsets), 31, positions=True, device="cuda")
    assert all(isinstance(a, cp.ndarray) for a in got)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, cp.asnumpy(b))


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")
@pytest.mark.parametrize("op", [kmers.kmer_codes, kmers.nthash])
def test_cuda_unavailable_is_a_clear_error(op):
    with pytest.raises(RuntimeError, match="kmerx was built without CUDA|no CUDA device"):
        op(["ACGTACGT"], 3, device="cuda")


def test_device_count_never_raises():
    try:
        from kmerx import _cuda
    except ImportError:
        pytest.skip("kmerx was built without CUDA")
    assert _cuda.device_count() >= 0
    assert kmerx.cuda_available() == (_cuda.device_count() > 0)
