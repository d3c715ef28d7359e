"""ntHash 2 rolling hashes and ntHash minimizers (re-exported by :mod:`kmerx.kmers`).

Bit-exact with btllib 1.4.10 / ntHash 2.3: forward, reverse, canonical (= forward + reverse mod 2^64)
and the extra hashes. Hash 0 is the chosen strand's value; extra hashes 1..num_hashes-1 extend that
same value with ntHash's multiplier rule, so ``strand="canonical"`` reproduces btllib
``NtHash::hashes()`` and the stranded variants stay strand-specific. K-mers holding a non-ACGT base
are skipped (lowercase counts as uppercase). Any k >= 1. See docs/nthash.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmerx import _core
from kmerx._arrow import list_array
from kmerx.kmers.codes import DEVICES, STRANDS, _cuda_module, seq_arrays

__all__ = ["MAX_NUM_HASHES", "nthash", "nthash_minimizers", "nthash_numpy"]

MAX_NUM_HASHES = 64


def _check_int(name: str, v: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < lo or (hi is not None and v > hi):
        raise ValueError(
            f"{name} must be in {lo}..{hi}, got {v}" if hi else f"{name} must be >= {lo}, got {v}"
        )
    return int(v)


def nthash_numpy(
    data: np.ndarray,
    offsets: np.ndarray,
    k: int,
    *,
    num_hashes: int = 1,
    strand: str = "canonical",
    positions: bool = False,
    device: str = "cpu",
):
    """ntHash 2 of the reads ``data[offsets[i]:offsets[i+1]]`` in one native call.

    Returns ``(values, out_offsets)`` or ``(values, out_offsets, positions)``: values is ``uint64[n]``
    (num_hashes=1) or ``uint64[n, num_hashes]``; read i's k-mers are ``values[out_offsets[i]:
    out_offsets[i+1]]``; positions (``int32``) are the k-mer starts within the read. With
    ``device="cuda"`` data/offsets may be cupy arrays (outputs are then cupy arrays)."""
    k = _check_int("k", k, 1)
    num_hashes = _check_int("num_hashes", num_hashes, 1, MAX_NUM_HASHES)
    if strand not in STRANDS:
        raise ValueError(f"strand must be one of {STRANDS}, got {strand!r}")
    if device == "cuda":
        out = _nthash_cuda(data, offsets, k, num_hashes, strand, bool(positions))
    elif device == "cpu":
        out = _core.nthash(data, offsets, k, num_hashes, strand, bool(positions))
    else:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return out if positions else out[:2]


def _nthash_cuda(data, offsets, k: int, num_hashes: int, strand: str, positions: bool):
    cuda = _cuda_module()
    if not hasattr(data, "__cuda_array_interface__"):  # host arrays: a round trip through the GPU
        return cuda.nthash_host(data, offsets, k, num_hashes, strand, positions)
    import cupy as cp

    data = cp.ascontiguousarray(data, dtype=cp.uint8)
    offsets = cp.ascontiguousarray(offsets, dtype=cp.int64)
    if offsets.ndim != 1 or offsets.size < 1:
        raise ValueError(f"offsets must be a 1-D array with at least one entry, got shape {offsets.shape}")
    bases = cuda.covered_bases(offsets)
    if bases < 0:
        raise ValueError(f"seqs: offsets must be non-decreasing, offsets[-1] - offsets[0] = {bases}")
    index = cp.empty(bases + 1, dtype=cp.int64)
    out_offsets = cp.empty(offsets.size, dtype=cp.int64)
    total = cuda.nthash_index(data, offsets, k, index, out_offsets)
    values = cp.empty((total,) if num_hashes == 1 else (total, num_hashes), dtype=cp.uint64)
    pos = cp.empty(total, dtype=cp.int32) if positions else None
    cuda.nthash_fill(data, offsets, k, num_hashes, strand, index, values, pos)
    return values, out_offsets, pos


def nthash(
    seqs: Any,
    k: int,
    *,
    num_hashes: int = 1,
    strand: str = "canonical",
    positions: bool = False,
    device: str = "cpu",
):
    """ntHash 2 per read as a ``pa.LargeListArray``: ``large_list<uint64>`` (num_hashes=1) or
    ``large_list<fixed_size_list<uint64, num_hashes>>``; with ``positions=True``, ``(hashes,
    positions)`` where positions is ``large_list<int32>``. ``seqs``: see :func:`seq_arrays`."""
    data, offsets = seq_arrays(seqs)
    out = nthash_numpy(
        data, offsets, k, num_hashes=num_hashes, strand=strand, positions=positions, device=device
    )
    hashes = list_array(out[0], out[1])
    return (hashes, list_array(out[2], out[1])) if positions else hashes


def nthash_minimizers(seqs: Any, k: int, w: int, *, positions: bool = True):
    """ntHash minimizers per read, as btllib's indexlr picks them (docs/nthash.md): the canonical
    hash (h0) of each window's rightmost-smallest k-mer among w consecutive ACGT k-mers, each
    reported once. Returns ``large_list<uint64>`` hashes, and with ``positions=True`` also the k-mer
    starts as ``large_list<int32>``: ``(hashes, positions)``."""
    k = _check_int("k", k, 1)
    w = _check_int("w", w, 1)
    data, offsets = seq_arrays(seqs)
    hashes, out_offsets, pos = _core.nthash_minimizers(data, offsets, k, w)
    h = list_array(hashes, out_offsets)
    return (h, list_array(pos, out_offsets)) if positions else h
