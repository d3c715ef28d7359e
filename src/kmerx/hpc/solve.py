"""One solver run: check the arguments and the input (on every rank, before any collective, so a bad
argument fails every rank the same way), read this rank's rows, solve, write the result shards, then
``model.npz`` and ``manifest.json`` last. A finished result with the same input, solver and parameters
is left as it is (re-running is a no-op); an interrupted one is redone."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from kmerx.hpc import results
from kmerx.hpc.exact import allsum, world
from kmerx.hpc.parts import Embeddings, span


@dataclasses.dataclass
class Outcome:
    """What a solver returns: per-row result columns (this rank's rows), arrays for model.npz and
    JSON-able facts for the manifest."""

    columns: dict[str, np.ndarray]
    model: dict[str, np.ndarray]
    info: dict[str, Any]


def _sizes(comm: Any, labels: np.ndarray, k: int) -> list[int]:
    return allsum(comm, np.bincount(labels, minlength=k).astype(np.int64)).tolist()


def _kmeans(x: np.ndarray, comm: Any, p: dict[str, Any], emb: Embeddings) -> Outcome:
    from kmerx.hpc.kmeans import kmeans

    r = kmeans(x, comm, p["k"], seed=p["seed"], max_iter=p["max_iter"], tol=p["tol"], init=p["init"])
    return Outcome({"cluster": r.labels, "distance": np.sqrt(r.sq_distances).astype(np.float32)},
                   {"centers": r.centers},
                   {"inertia": r.inertia, "iterations": r.iterations, "converged": r.converged,
                    "cluster_sizes": _sizes(comm, r.labels, p["k"]), "seeding_seconds": r.seconds["seeding"],
                    "lloyd_seconds": r.seconds["lloyd"]})


def _pca(x: np.ndarray, comm: Any, p: dict[str, Any], emb: Embeddings) -> Outcome:
    from kmerx.hpc.pca import pca

    r = pca(x, comm, p["components"])
    return Outcome({"projection": r.projections.astype(np.float32)},
                   {"components": r.components, "explained_variance": r.explained_variance,
                    "explained_variance_ratio": r.explained_variance_ratio, "mean": r.mean},
                   {"explained_variance_ratio": r.explained_variance_ratio.tolist()})


def _read_indexes(comm: Any, read_index: np.ndarray) -> np.ndarray:
    """read_index of every global row (8 bytes a row), to name neighbours on other ranks."""
    counts = np.array(comm.allgather(len(read_index)), dtype=np.int64)
    out = np.empty(int(counts.sum()), np.int64)
    comm.Allgatherv(np.ascontiguousarray(read_index, dtype=np.int64), [out, counts])
    return out


def _knn(x: np.ndarray, comm: Any, p: dict[str, Any], emb: Embeddings, read_index: np.ndarray) -> Outcome:
    from kmerx.hpc.spectral import knn

    g = knn(x, comm, p["neighbors"])
    return Outcome({"neighbors": _read_indexes(comm, read_index)[g.neighbors],
                    "distances": g.distances.astype(np.float32)}, {}, {})


def _spectral(x: np.ndarray, comm: Any, p: dict[str, Any], emb: Embeddings) -> Outcome:
    from kmerx.hpc.spectral import spectral

    r = spectral(x, comm, p["clusters"], neighbors=p["neighbors"], components=p["components"], seed=p["seed"])
    return Outcome({"cluster": r.labels, "spectral": r.embedding.astype(np.float32)},
                   {"eigenvalues": r.eigenvalues},
                   {"eigenvalues": r.eigenvalues.tolist(), "eigensolver_converged": r.converged, "cluster_sizes": _sizes(comm, r.labels, p["clusters"])})


# solver -> (function, default parameters); a parameter without a default (None) is required.
SOLVERS: dict[str, tuple[Callable[..., Outcome], dict[str, Any]]] = {
    "kmeans": (_kmeans, {"k": None, "seed": 0, "max_iter": 300, "tol": 1e-4, "init": "k-means++"}),
    "pca": (_pca, {"components": 10}),
    "knn-graph": (_knn, {"neighbors": 15}),
    "spectral": (_spectral, {"clusters": None, "neighbors": 15, "components": None, "seed": 0}),
}


def parameters(solver: str, given: dict[str, Any]) -> dict[str, Any]:
    """The solver's full parameters: defaults overridden by ``given`` (None values ignored)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    defaults = SOLVERS[solver][1]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f"{solver} takes no parameter {unknown[0]!r} (it takes {', '.join(defaults)})")
    p = {**defaults, **{k: v for k, v in given.items() if v is not None}}
    for name in ("k", "clusters"):
        if name in p and p[name] is None:
            raise ValueError(f"{solver} needs {name} (the number of clusters)")
    return p


def solve(solver: str, input: str | os.PathLike, output: str | os.PathLike, params: dict[str, Any] | None = None,
          *, comm: Any = None, fmt: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run ``solver`` on the embeddings under ``input`` over the ranks of ``comm`` (default COMM_WORLD)
    and write the result under ``output``; returns the result manifest (on every rank)."""
    comm = world() if comm is None else comm
    p = parameters(solver, dict(params or {}))
    emb = Embeddings(input)
    fmt = fmt or emb.format
    if fmt not in ("parquet", "hdf5"):
        raise ValueError(f"format must be parquet or hdf5, got {fmt!r}")
    out = os.fspath(output)
    if os.path.abspath(out) == os.path.abspath(emb.folder):
        raise ValueError(f"output must be another folder than the input ({out})")
    identity = {"solver": solver, "params": p, "format": fmt,
                "input": {"path": os.path.abspath(emb.folder), "run_digest": emb.manifest.get("run_digest")}}
    done = results.read_manifest(out)
    if done is not None:
        if all(done.get(key) == value for key, value in identity.items()):
            return {**done, "already_complete": True}
        if not overwrite:
            raise ValueError(f"{out} holds a result of another run ({done.get('solver')} on "
                             f"{done.get('input', {}).get('path')}): pass overwrite (--overwrite) or another output")
    comm.Barrier()  # every rank has seen the old manifest before rank 0 removes it
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank == 0:
        os.makedirs(out, exist_ok=True)
        if done is not None:  # the manifest first, so the folder never looks complete with the old files
            os.remove(os.path.join(out, results.NAME))
            for name in [s["path"] for s in done.get("shards", [])] + ([done["model"]] if done.get("model") else []):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(out, os.path.basename(name)))
    comm.Barrier()

    t0 = time.perf_counter()
    start, stop = span(emb.rows, size, rank)
    try:
        block, failed = emb.read(start, stop), None
    except (OSError, ValueError) as e:
        block, failed = None, f"rank {rank}: {e}"
    failures = [f for f in comm.allgather(failed) if f]
    if failures:  # raised on every rank, so none is left waiting in a collective
        raise ValueError("reading the input failed: " + "; ".join(failures))
    t1 = time.perf_counter()
    fn = SOLVERS[solver][0]
    extra = (block.read_index,) if solver == "knn-graph" else ()
    outcome = fn(block.vectors, comm, p, emb, *extra)
    t2 = time.perf_counter()
    shards = results.write_shards(out, emb, block, outcome.columns, comm, fmt)
    t3 = time.perf_counter()
    reads = comm.allgather((block.bytes_read, block.seconds))
    solve_s, write_s = comm.allreduce(t2 - t1, op=_max()), comm.allreduce(t3 - t2, op=_max())
    m = None
    if rank == 0:
        rates = [b / s / 1e6 for b, s in reads if s > 0 and b > 0]
        if outcome.model:
            results.write_model(out, outcome.model)
        m = {**identity, "ranks": size, "rows": emb.rows, "dim": emb.dim,
             "columns": ["read_index", *outcome.columns], "model": results.MODEL if outcome.model else None,
             "result": outcome.info, "shards": shards,
             "timings": {"read_seconds": max(s for _, s in reads), "read_bytes": sum(b for b, _ in reads),
                         "read_mb_per_s_per_rank": min(rates) if rates else None,
                         "solve_seconds": solve_s, "write_seconds": write_s, "total_seconds": t3 - t0}}
        results.write_manifest(out, m)
        for stale in glob.glob(os.path.join(out, ".*.tmp-*")):  # left by killed runs
            os.remove(stale)
    return comm.bcast(m, root=0)


def _max() -> Any:
    from mpi4py import MPI

    return MPI.MAX
