"""A distributed k-nearest-neighbour graph and spectral clustering on it.

kNN: exact, by a ring. Each rank keeps its rows as queries and passes blocks of rows around the ring of
ranks (Sendrecv), keeping the best candidates per query; after a full turn the candidates' distances are
recomputed row-wise, so distances (and the order of neighbours) do not depend on the number of ranks.

Spectral (Ng, Jordan and Weiss, with Zelnik-Manor and Perona's self-tuning scale): affinities
w_ij = exp(-d_ij^2 / (s_i s_j)) on the kNN edges, s_i the distance to the i-th row's 7th neighbour,
symmetrised by sending each edge to the owner of its other end (alltoall). The top eigenvectors of
D^-1/2 W D^-1/2 come from LOBPCG (scipy's) run in step on every rank, each matrix-block product computed
by the ranks on their own rows and joined with Allgatherv; the rows of the row-normalised
eigenvectors are then clustered by the distributed k-means.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from kmerx.hpc.exact import sq_dist_pairs
from kmerx.hpc.kmeans import kmeans

_CHUNK = 2048
SCALE_NEIGHBOR = 7


@dataclasses.dataclass
class Knn:
    """This rank's rows: global row numbers of their neighbours [rows, k] (nearest first, lowest row on
    ties) and the Euclidean distances."""

    neighbors: np.ndarray
    distances: np.ndarray


def _counts(comm: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.array(comm.allgather(n), dtype=np.int64)
    return counts, np.concatenate([[0], np.cumsum(counts)[:-1]])


def knn(x: np.ndarray, comm: Any, neighbors: int) -> Knn:
    X = np.ascontiguousarray(x, dtype=np.float64)
    counts, starts = _counts(comm, len(X))
    total, size, rank = int(counts.sum()), comm.Get_size(), comm.Get_rank()
    if total < 2:
        raise ValueError(f"a kNN graph needs at least 2 rows; the input has {total}")
    if not isinstance(neighbors, (int, np.integer)) or not 1 <= neighbors < total:
        raise ValueError(f"neighbors must be in 1..{total - 1} (rows - 1), got {neighbors!r}")
    keep = min(2 * neighbors, total - 1)  # spare candidates, so rounding in the block distances can't lose one
    best_d = np.full((len(X), keep), np.inf)
    best_i = np.full((len(X), keep), -1, np.int64)
    xx = (X * X).sum(axis=1)
    block, owner = X, rank
    for step in range(size):
        bb = (block * block).sum(axis=1)
        ids = starts[owner] + np.arange(len(block))
        for i in range(0, len(X), _CHUNK):
            q = slice(i, i + _CHUNK)
            d = xx[q, None] - 2.0 * (X[q] @ block.T) + bb
            if owner == rank:
                np.fill_diagonal(d[:, i:], np.inf)
            cand_d = np.concatenate([best_d[q], d], axis=1)
            cand_i = np.concatenate([best_i[q], np.broadcast_to(ids, d.shape)], axis=1)
            top = np.argpartition(cand_d, keep - 1, axis=1)[:, :keep] if cand_d.shape[1] > keep else \
                np.broadcast_to(np.arange(cand_d.shape[1]), cand_d.shape)
            best_d[q] = np.take_along_axis(cand_d, top, axis=1)
            best_i[q] = np.take_along_axis(cand_i, top, axis=1)
        if step + 1 < size:
            src, dst = (rank - 1) % size, (rank + 1) % size
            nxt = (owner - 1) % size
            incoming = np.empty((counts[nxt], X.shape[1]))
            comm.Sendrecv(np.ascontiguousarray(block), dest=dst, recvbuf=incoming, source=src)
            block, owner = incoming, nxt
    return _exact_top(X, best_i, neighbors, comm, starts, counts)


def _exact_top(X: np.ndarray, cand: np.ndarray, k: int, comm: Any, starts: np.ndarray,
               counts: np.ndarray) -> Knn:
    """Recompute the candidates' distances row-wise (fetching the candidate rows from their ranks) and
    keep the k nearest, ordered by (distance, row)."""
    wanted = np.unique(cand)
    owners = np.searchsorted(starts, wanted, side="right") - 1
    asks = comm.alltoall([wanted[owners == r] for r in range(comm.Get_size())])
    rank = comm.Get_rank()
    replies = comm.alltoall([X[a - starts[rank]] for a in asks])
    rows = np.empty((len(wanted), X.shape[1]))
    for r in range(comm.Get_size()):
        rows[owners == r] = replies[r]
    d2 = sq_dist_pairs(X, rows, np.searchsorted(wanted, cand))
    order = np.lexsort((cand, d2), axis=1)[:, :k] if len(X) else np.zeros((0, k), np.int64)
    return Knn(np.take_along_axis(cand, order, axis=1), np.sqrt(np.take_along_axis(d2, order, axis=1)))


@dataclasses.dataclass
class Spectral:
    """The spectral embedding of this rank's rows [rows, c], the eigenvalues of D^-1/2 W D^-1/2
    (largest first), and the k-means labels of the row-normalised embedding."""

    embedding: np.ndarray
    eigenvalues: np.ndarray
    labels: np.ndarray
    graph: Knn
    converged: bool


def spectral(x: np.ndarray, comm: Any, clusters: int, *, neighbors: int = 15, components: int | None = None,
             seed: int = 0, tol: float = 1e-8, max_iter: int = 500) -> Spectral:
    from scipy import sparse
    from scipy.sparse.linalg import LinearOperator, lobpcg

    c = clusters if components is None else components
    if not isinstance(clusters, (int, np.integer)) or clusters < 1:
        raise ValueError(f"clusters must be a positive integer, got {clusters!r}")
    graph = knn(x, comm, neighbors)
    counts, starts = _counts(comm, len(graph.neighbors))
    total, rank, size = int(counts.sum()), comm.Get_rank(), comm.Get_size()
    if not isinstance(c, (int, np.integer)) or not 1 <= c < total:
        raise ValueError(f"components must be in 1..{total - 1}, got {c!r}")
    n = len(graph.neighbors)
    scale = _allgatherv(comm, graph.distances[:, min(SCALE_NEIGHBOR, neighbors) - 1], counts)
    scale = np.maximum(scale, np.finfo(float).tiny)
    rows = np.repeat(starts[rank] + np.arange(n), neighbors)
    cols = graph.neighbors.reshape(-1)
    w = np.exp(-graph.distances.reshape(-1) ** 2 / (scale[rows] * scale[cols]))
    # The reverse of every edge goes to the rank owning its other end. w_ij == w_ji bit for bit (row-wise
    # distances), so the union of both directions keeps either copy of a pair.
    dest = np.searchsorted(starts, cols, side="right") - 1
    got = comm.alltoall([np.stack([cols[dest == r], rows[dest == r], w[dest == r]]) for r in range(size)])
    e_rows = np.concatenate([rows] + [g[0].astype(np.int64) for g in got]) - starts[rank]
    e_cols = np.concatenate([cols] + [g[1].astype(np.int64) for g in got])
    e_w = np.concatenate([w] + [g[2] for g in got])
    _, first = np.unique(e_rows * total + e_cols, return_index=True)
    W = sparse.csr_matrix((e_w[first], (e_rows[first], e_cols[first])), shape=(n, total))
    degree = _allgatherv(comm, np.asarray(W.sum(axis=1)).ravel(), counts)
    inv = 1.0 / np.sqrt(np.maximum(degree, np.finfo(float).tiny))
    M = sparse.diags(inv[starts[rank]:starts[rank] + n]) @ W @ sparse.diags(inv)
    M = M.tocsr()
    M.sort_indices()

    def matmat(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v).reshape(total, -1)
        local = np.asarray(M @ v)
        return np.stack([_allgatherv(comm, local[:, j], counts) for j in range(v.shape[1])], axis=1)

    # LOBPCG, a block method: well-separated clusters make disconnected graphs, whose top eigenvalue 1 is
    # repeated once per component, and a single-vector Krylov method (ARPACK) misses repeats.
    x0 = np.random.default_rng(seed).uniform(-1.0, 1.0, (total, c))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values, vectors = lobpcg(LinearOperator((total, total), matvec=matmat, matmat=matmat, dtype=np.float64),
                                 x0, largest=True, tol=tol, maxiter=max_iter)
    converged = not any("not reach" in str(w.message) or "did not converge" in str(w.message) for w in caught)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    vectors *= np.where(vectors[np.abs(vectors).argmax(axis=0), np.arange(c)] < 0, -1.0, 1.0)
    mine = vectors[starts[rank]:starts[rank] + n]
    norms = np.linalg.norm(mine, axis=1, keepdims=True)
    unit = mine / np.maximum(norms, np.finfo(float).tiny)
    labels = kmeans(unit, comm, clusters, seed=seed).labels
    return Spectral(mine, values, labels, graph, converged)


def _allgatherv(comm: Any, local: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.empty(int(counts.sum()))
    comm.Allgatherv(np.ascontiguousarray(local, dtype=np.float64), [out, counts])
    return out
