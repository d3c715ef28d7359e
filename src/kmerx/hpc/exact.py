"""Arithmetic whose result does not depend on how rows are split over ranks.

Floating-point sums change with their order, so a k-means or a mean computed on 2 ranks would differ
in the last bits from 1 rank, and k-means' assignments could then diverge. Instead the data are snapped
once to a power-of-two grid fine enough to be invisible (below float32 resolution of the largest
value) and coarse enough that every partial sum of grid values over all rows is an integer multiple of
the grid below 2**53: float64 adds them exactly, in any order, so a sum over ranks with
``Allreduce(SUM)`` is the same bits for any number of ranks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kmerx import _core


def world() -> Any:
    """mpi4py's COMM_WORLD, with a clear error when mpi4py is not installed."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError("kmerx.hpc needs mpi4py and an MPI: pip install 'kmerx[mpi]' (mpi4py + mpich)") from e
    return MPI.COMM_WORLD


def allsum(comm: Any, value: Any) -> Any:
    """Sum of a numpy array (or scalar) over ranks."""
    from mpi4py import MPI

    arr = np.asarray(value)
    out = np.empty_like(arr)
    comm.Allreduce(np.ascontiguousarray(arr), out, op=MPI.SUM)
    return out if out.shape else out.item()


def allmax(comm: Any, value: float) -> float:
    from mpi4py import MPI

    return comm.allreduce(float(value), op=MPI.MAX)


def grid_exponent(max_abs: float, total_rows: int) -> int:
    """The largest e such that total_rows * max_abs * 2**e < 2**52: sums of up to total_rows values
    of magnitude max_abs on a 2**-e grid are exact in float64."""
    if max_abs <= 0 or not math.isfinite(max_abs):
        return 0
    return 52 - math.ceil(math.log2(max(total_rows, 1) * max_abs)) - 1


def snap(x: np.ndarray, comm: Any, total_rows: int) -> np.ndarray:
    """``x`` as float64 on the shared grid (the same on every rank: built from the global max |x|)."""
    if not np.isfinite(x).all():
        raise ValueError("the embeddings hold NaN or infinite values")
    local = float(np.abs(x).max()) if x.size else 0.0
    e = grid_exponent(allmax(comm, local), total_rows)
    out = x.astype(np.float64)
    out *= 2.0 ** e  # exact: a power of two
    np.rint(out, out=out)
    out *= 2.0 ** -e
    return out


def sq_dist(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared distance of each row of ``x`` to the vector ``c`` ([n]), or to each row of ``c`` ([n, m]),
    computed row by row in a fixed order by the native core (both cores, GIL released), so a row's value
    never depends on which other rows are in ``x`` (BLAS distances may: their blocking follows the
    matrix shape)."""
    out = _core.sq_dist(np.ascontiguousarray(x, dtype=np.float64), np.atleast_2d(np.asarray(c, dtype=np.float64)))
    return out[:, 0] if np.ndim(c) == 1 else out


def sq_dist_pairs(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``[n, k]``: the squared distance of row ``x[i]`` to each row ``y[index[i, j]]``, in the same fixed
    order as :func:`sq_dist` (and symmetric: d(a, b) == d(b, a) bit for bit)."""
    return _core.sq_dist_pairs(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64),
                               np.ascontiguousarray(index, dtype=np.int64))
