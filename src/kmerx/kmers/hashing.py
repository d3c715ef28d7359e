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
from kmerx._checks import check_int
from kmerx.kmers.codes import DEVICES, STRANDS, run_cuda, seq_arrays

__all__ = ["MAX_NUM_HASHES", "nthash", "nthash_minimizers", "nthash_numpy"]

MAX_NUM_HASHES = 64


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
    k = check_int("k", k, 1)
    num_hashes = check_int("num_hashes", num_hashes, 1, MAX_NUM_HASHES)
    if strand not in STRANDS:
        raise ValueError(f"strand must be one of {STRANDS}, got {strand!r}")
    if device == "cuda":
        out = run_cuda(
            data, offsets, k, 1, num_hashes, bool(positions),
            lambda cuda, d, o, ix, v, p: cuda.nthash_fill(d, o, k, num_hashes, strand, ix, v, p),
            lambda cuda: cuda.nthash_host(data, offsets, k, num_hashes, strand, bool(positions)),
        )
    elif device == "cpu":
        out = _core.nthash(data, offsets, k, num_hashes, strand, bool(positions))
    else:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return out if positions else out[:2]


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
    k = check_int("k", k, 1)
    w = check_int("w", w, 1)
    data, offsets = seq_arrays(seqs)
    hashes, out_offsets, pos = _core.nthash_minimizers(data, offsets, k, w)
    h = list_array(hashes, out_offsets)
    return (h, list_array(pos, out_offsets)) if positions else h
