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
from kmerx._checks import check_int
from kmerx.kmers.codes import seq_arrays

__all__ = ["MINIMIZER_HASHES", "minimizers", "minimizers_numpy"]

MINIMIZER_HASHES = ("minimap2", "nthash")
MAX_K = 28
MAX_K_NTHASH = 255  # the span column is uint8
MAX_W = 255


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
    the k-mer covers (k, or more with ``hpc``). ``k`` in 1..28, ``w`` in 1..255.

    ``hash="nthash"``: btllib indexlr's minimizers instead (:func:`kmerx.kmers.nthash_minimizers`,
    docs/nthash.md), in the same columns: ``hash`` is the canonical ntHash, ``end`` the k-mer's last
    base, ``strand`` 1 where the forward ntHash is greater than the reverse one (indexlr's ``-``),
    ``span`` k; ``k`` in 1..255, ``w >= 1``, no ``hpc``."""
    if hash not in MINIMIZER_HASHES:
        raise ValueError(f"hash must be one of {MINIMIZER_HASHES}, got {hash!r}")
    if hash == "nthash":
        return _nthash_minimizers(data, offsets, k, w, hpc, positions)
    k = check_int("k", k, 1, MAX_K)
    w = check_int("w", w, 1, MAX_W)
    out = _core.minimizers(data, offsets, k, w, bool(hpc), bool(positions))
    return out if positions else out[:2]


def _nthash_minimizers(data, offsets, k, w, hpc, positions):
    """btllib indexlr's minimizers (kmerx.kmers.nthash_minimizers) in the minimap2 columns: hash is
    the canonical ntHash h0, end = start + k - 1, strand = 1 where the forward ntHash is greater than
    the reverse one (indexlr's "-"), span = k."""
    k = check_int("k", k, 1, MAX_K_NTHASH)
    w = check_int("w", w, 1, 2**31 - 1)
    if hpc:
        raise ValueError("hpc must be False with hash='nthash', got True")
    h, out_offsets, start = _core.nthash_minimizers(data, offsets, k, w)
    if not positions:
        return h, out_offsets
    # Strands: both stranded hashes of every k-mer, then those at the minimizers' starts (k-mers of
    # a read are in start order, reads in order, so (read, start) keys are sorted).
    fwd, kmer_offsets, kmer_start = _core.nthash(data, offsets, k, 1, "forward", True)
    rev = _core.nthash(data, offsets, k, 1, "reverse", False)[0]
    nreads = out_offsets.size - 1
    key = lambda oo, st: np.repeat(np.arange(nreads, dtype=np.int64), np.diff(oo)) << 32 | st  # noqa: E731
    at = np.searchsorted(key(kmer_offsets, kmer_start), key(out_offsets, start))
    strand = (fwd[at] > rev[at]).astype(np.int8)
    end = (start + (k - 1)).astype(np.int32)
    return h, out_offsets, end, strand, np.full(h.size, k, np.uint8)


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
