"""Distributed k-means: greedy k-means++ seeding and Lloyd iterations, each rank holding its rows and
ranks combining with Allreduce. No rank ever holds more than its own rows plus the k centres.

Deterministic for a seed, and the same for any number of ranks: every rank draws the same random
numbers; sums are exact (:mod:`kmerx.hpc.exact`); the seeding's D^2 weights are integers; and a row
whose two nearest centres are closer than BLAS rounding could tell apart is re-decided with a row-wise
distance. So 1, 2 or 3 ranks give the same centres bit for bit and the same assignments.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from kmerx import _core
from kmerx.hpc.exact import allmax, allsum, snap, sq_dist, sq_dist_pairs

_CHUNK = 4096


@dataclasses.dataclass
class KMeans:
    """centers [k, dim]; labels and squared distances of this rank's rows; inertia summed over ranks."""

    centers: np.ndarray
    labels: np.ndarray
    sq_distances: np.ndarray
    inertia: float
    iterations: int
    converged: bool
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # seeding, lloyd (this rank's clock)


class _Rows:
    """This rank's rows in the global order: global row g lives on the rank whose [start, stop) holds it."""

    def __init__(self, x: np.ndarray, comm: Any) -> None:
        self.comm = comm
        self.counts = np.array(comm.allgather(len(x)), dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.total = int(self.counts.sum())
        self.rank = comm.Get_rank()
        self.start = int(self.starts[self.rank])
        self.x = snap(x, comm, self.total)

    def row(self, g: int) -> np.ndarray:
        """Global row ``g``, sent to every rank by the rank that holds it."""
        owner = next(r for r in range(len(self.counts)) if self.starts[r] <= g < self.starts[r] + self.counts[r])
        mine = self.x[g - self.start] if owner == self.rank else None
        return self.comm.bcast(mine, root=owner)

    def pick(self, weights: np.ndarray, u: int) -> int:
        """The global row where the running sum of integer ``weights`` (in global row order) passes ``u``."""
        totals = np.array(self.comm.allgather(int(weights.sum())), dtype=np.int64)
        before = np.concatenate([[0], np.cumsum(totals)[:-1]])
        owner = int(np.searchsorted(before + totals, u, side="right"))
        g = -1
        if owner == self.rank:
            g = self.start + int(np.searchsorted(np.cumsum(weights), u - before[owner], side="right"))
        return int(self.comm.bcast(g, root=owner))


def kmeans(x: np.ndarray, comm: Any, k: int, *, seed: int = 0, max_iter: int = 300, tol: float = 1e-4,
           init: str = "k-means++") -> KMeans:
    """k-means of the rows of all ranks (``x`` is this rank's rows, in global row order by rank)."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if init not in ("k-means++", "random"):
        raise ValueError(f"init must be 'k-means++' or 'random', got {init!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    rows = _Rows(np.asarray(x), comm)
    if rows.total < k:
        raise ValueError(f"k={k} clusters need at least {k} rows; the input has {rows.total}")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    centers = _seed(rows, k, rng) if init == "k-means++" else np.stack(
        [rows.row(int(g)) for g in np.sort(rng.choice(rows.total, k, replace=False))])
    X = rows.x
    t1 = time.perf_counter()
    xx = np.einsum("ij,ij->i", X, X)  # row norms for the matrix-product distances, once
    mean = allsum(comm, X.sum(axis=0)) / rows.total
    spread = allsum(comm, sq_dist(X, mean).sum()) / (rows.total * X.shape[1])
    tol_abs = float(np.float32(tol * spread))  # rounded: the last bits of a float sum vary with the ranks
    labels = np.full(len(X), -1, np.int32)
    converged, iterations = False, 0
    while iterations < max_iter:
        iterations += 1
        new, d2, sums, counts = lloyd_pass(X, xx, centers)
        changed = allsum(comm, np.int64((new != labels).sum()))
        labels = new
        if changed == 0:
            converged = True
            break
        sums, counts = allsum(comm, sums), allsum(comm, counts)
        updated = sums / np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            updated[empty] = _farthest(rows, _to_centers(X, centers, labels), len(empty))
        shift = float(((updated - centers) ** 2).sum())
        centers = updated
        if shift <= tol_abs:
            converged = True
            labels, d2, _, _ = lloyd_pass(X, xx, centers)
            break
    d2 = _to_centers(X, centers, labels)  # exact: the float32 product's distances lose digits to cancellation
    inertia = float(allsum(comm, d2.sum()))
    seconds = {"seeding": t1 - t0, "lloyd": time.perf_counter() - t1}
    return KMeans(centers, labels, d2, inertia, iterations, converged, seconds)


def _seed(rows: _Rows, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ (2 + ln k candidates per centre, the one lowering the potential most wins),
    with D^2 weights as integers so the draw is the same row for any split of the rows."""
    X = rows.x
    centers = [rows.row(int(rng.integers(rows.total)))]
    d2 = sq_dist(X, centers[0])
    top = allmax(rows.comm, float(d2.max()) if len(d2) else 0.0)
    scale = 2.0 ** (61 - math.ceil(math.log2(rows.total * top))) if top > 0 else 0.0
    weights = np.floor(d2 * scale).astype(np.int64)
    trials = 2 + int(math.log(k))
    for _ in range(1, k):
        total = allsum(rows.comm, np.int64(weights.sum()))
        if total == 0:  # every row sits on a centre: any row will do
            picks = [int(g) for g in rng.integers(rows.total, size=trials)]
        else:
            picks = [rows.pick(weights, int(u)) for u in rng.integers(total, size=trials)]
        candidates = np.stack([rows.row(g) for g in picks])
        d = np.minimum(d2[:, None], sq_dist(X, candidates))  # one pass over the rows for every candidate
        w = np.floor(d * scale).astype(np.int64)
        best = int(np.argmin(allsum(rows.comm, w.sum(axis=0))))  # the lowest potential; the first on ties
        centers.append(candidates[best])
        d2, weights = np.ascontiguousarray(d[:, best]), np.ascontiguousarray(w[:, best])
    return np.stack(centers)


def lloyd_pass(X: np.ndarray, xx: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, ...]:
    """One pass over this rank's rows (on the grid; ``xx`` their squared norms): the nearest centre of
    each row (lowest index on exact ties), its squared distance, and the per-cluster sums and counts of
    that assignment.

    Distances come from a matrix product; a row whose best two are closer than that product's worst-case
    rounding is re-decided with row-wise distances, so the choice never depends on the other rows in
    ``X``. Sums are of grid values, exact in any order."""
    k, dim = centers.shape
    labels = np.empty(len(X), np.int32)
    dist = np.empty(len(X))
    cc = np.einsum("ij,ij->i", centers, centers)
    slack = 2.0 * (dim + 4) * np.finfo(np.float64).eps
    for i in range(0, len(X), _CHUNK):
        x, n = X[i:i + _CHUNK], min(_CHUNK, len(X) - i)
        d = x @ centers.T
        d *= -2.0
        d += xx[i:i + n, None]
        d += cc
        best = d.argmin(axis=1)
        lowest = d[np.arange(n), best]
        if k > 1:
            gap = np.partition(d, 1, axis=1)[:, 1] - lowest
            near = np.flatnonzero(gap <= slack * (xx[i:i + n] + cc.max()))
            if len(near):
                exact = sq_dist(x[near], centers)
                best[near] = exact.argmin(axis=1)
                lowest[near] = exact[np.arange(len(near)), best[near]]
        labels[i:i + n] = best
        dist[i:i + n] = np.maximum(lowest, 0.0)
    sums, counts = _core.sums_by_label(X, labels, k)
    return labels, dist, sums, counts


def _to_centers(X: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Row-wise exact squared distance of each row to its centre."""
    return sq_dist_pairs(X, centers, labels[:, None])[:, 0]


def _farthest(rows: _Rows, d: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows farthest from their centre (``d``: exact distances; lowest row first on ties): the
    new centres of empty clusters, as scikit-learn does."""
    local = np.argsort(-d, kind="stable")[:n]
    found = rows.comm.allgather([(float(d[j]), rows.start + int(j)) for j in local])
    chosen = sorted((c for part in found for c in part), key=lambda t: (-t[0], t[1]))[:n]
    return np.stack([rows.row(g) for _, g in chosen])
