"""minimap2-compatible minimizers (re-exported by :mod:`kmerx.kmers`).

The same (w, k)-minimizers as libminimap2 2.24 ``mm_sketch()``: every window of ``w`` consecutive
k-mers contributes its k-mer(s) of smallest ``hash64(canonical 2-bit code)``; palindromic k-mers are
skipped, non-ACGT bases restart the window, ``hpc=True`` compresses homopolymer runs. Rules, ties and
output order: docs/minimizers.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from kmerx import _core
from kmerx._arrow import list_array
from kmerx.kmers.codes import seq_arrays

__all__ = ["MINIMIZER_HASHES", "minimizers", "minimizers_numpy"]

MINIMIZER_HASHES = ("minimap2",)
MAX_K = 28
MAX_W = 255


def _check_int(name: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {v}")
    return int(v)


def minimizers_numpy(
    data: np.ndarray,
    offsets: np.ndarray,
    k: int,
    w: int,
    *,
    hpc: bool = False,
    positions: bool = True,
    hash: str = "minimap2",
):
    """Minimizers of the reads ``data[offsets[i]:offsets[i+1]]`` in one native call (GIL released,
    threaded over reads).

    Returns ``(hash, out_offsets, end, strand, span)``, or ``(hash, out_offsets)`` when
    ``positions=False``: ``hash`` is ``uint64`` (minimap2's hash64 of the smaller strand's 2-bit code,
    below ``4**k``), read i's minimizers are ``[out_offsets[i]:out_offsets[i+1]]`` in minimap2's
    order; ``end`` (``int32``) is the 0-based position of the k-mer's last base, ``strand`` (``int8``)
    is 1 when the reverse-complement k-mer is the smaller, ``span`` (``uint8``) is the number of bases
    the k-mer covers (k, or more with ``hpc``). ``k`` in 1..28, ``w`` in 1..255."""
    if hash not in MINIMIZER_HASHES:
        raise ValueError(f"hash must be one of {MINIMIZER_HASHES}, got {hash!r}")
    k = _check_int("k", k, 1, MAX_K)
    w = _check_int("w", w, 1, MAX_W)
    out = _core.minimizers(data, offsets, k, w, bool(hpc), bool(positions))
    return out if positions else out[:2]


def minimizers(
    seqs: Any,
    k: int,
    w: int,
    *,
    hpc: bool = False,
    positions: bool = True,
    hash: str = "minimap2",
) -> pa.RecordBatch:
    """Minimizers per read as a ``pa.RecordBatch`` with one row per input read (so it lines up with a
    ReadBatch) and the list columns ``hash: large_list<uint64>``, and with ``positions=True`` also
    ``end: large_list<int32>``, ``strand: large_list<int8>``, ``span: large_list<uint8>`` (see
    :func:`minimizers_numpy`). ``seqs``: see :func:`seq_arrays`."""
    data, offsets = seq_arrays(seqs)
    out = minimizers_numpy(data, offsets, k, w, hpc=hpc, positions=positions, hash=hash)
    names = ("hash", "end", "strand", "span")
    values = (out[0],) + tuple(out[2:])
    return pa.RecordBatch.from_arrays(
        [list_array(v, out[1]) for v in values], names=list(names[: len(values)])
    )
