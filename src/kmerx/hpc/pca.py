"""Distributed PCA: the mean (exact, :mod:`kmerx.hpc.exact`) and the dim x dim scatter matrix are
summed over ranks with Allreduce, every rank solves the small eigenproblem, then projects its own rows.
Embedding widths are small (tens to a few thousand), so the covariance route is exact where a
randomized SVD would only approximate, and it reads the data once."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from kmerx.hpc.exact import allsum, snap


@dataclasses.dataclass
class PCA:
    """components [c, dim] (rows, unit length, sign fixed so each one's largest loading is positive),
    explained variance (and its ratio) per component, the mean, and this rank's projections [rows, c]."""

    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray
    projections: np.ndarray


def pca(x: np.ndarray, comm: Any, components: int) -> PCA:
    x = np.asarray(x)
    dim = x.shape[1]
    if not isinstance(components, (int, np.integer)) or not 1 <= components <= dim:
        raise ValueError(f"components must be in 1..{dim} (the embedding width), got {components!r}")
    total = int(allsum(comm, np.int64(len(x))))
    if total < 2:
        raise ValueError(f"PCA needs at least 2 rows; the input has {total}")
    X = snap(x, comm, total)
    mean = allsum(comm, X.sum(axis=0)) / total
    X -= mean
    scatter = allsum(comm, X.T @ X)
    values, vectors = np.linalg.eigh(scatter)
    order = np.argsort(values)[::-1][:components]
    values, vectors = np.maximum(values[order], 0.0), vectors[:, order].T
    vectors *= np.where(vectors[np.arange(components), np.abs(vectors).argmax(axis=1)] < 0, -1.0, 1.0)[:, None]
    trace = float(np.trace(scatter))
    return PCA(vectors, values / (total - 1), values / trace if trace > 0 else np.zeros_like(values), mean,
               X @ vectors.T)
