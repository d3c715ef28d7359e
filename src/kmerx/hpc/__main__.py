"""``mpirun -n N python -m kmerx.hpc SOLVER --input OUT --output RESULT [options]``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback

from kmerx.hpc.solve import SOLVERS, solve


def build_parser(cls: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = cls(
        prog="python -m kmerx.hpc",
        description="Run an MPI solver on the embedding shards of a kmerx pipeline output (launch with mpirun).")
    sub = parser.add_subparsers(dest="solver", required=True, metavar="SOLVER")
    helps = {"kmeans": "k-means++ seeding and Lloyd iterations: a cluster per read",
             "pca": "principal components: projections per read, components and explained variance",
             "knn-graph": "exact k-nearest-neighbour graph: neighbours' read_index and distances per read",
             "spectral": "spectral embedding of the kNN graph, clustered by k-means"}
    for name in SOLVERS:
        s = sub.add_parser(name, help=helps[name], description=helps[name])
        s.add_argument("--input", required=True, metavar="OUT", help="a pipeline output (folder with manifest.json)")
        s.add_argument("--output", required=True, metavar="RESULT", help="result folder (shards + manifest.json)")
        s.add_argument("--format", choices=("parquet", "hdf5"), help="result format (default: the input's)")
        s.add_argument("--overwrite", action="store_true", help="replace a result of another run in RESULT")
        if name == "kmeans":
            s.add_argument("--k", type=int, required=True, help="number of clusters")
            s.add_argument("--max-iter", type=int, help="Lloyd iterations at most (default 300)")
            s.add_argument("--tol", type=float, help="stop when the centres move less than tol x the data's "
                                                     "variance (default 1e-4)")
            s.add_argument("--init", choices=("k-means++", "random"), help="seeding (default k-means++)")
        if name == "pca":
            s.add_argument("--components", type=int, help="components to keep (default 10)")
        if name in ("knn-graph", "spectral"):
            s.add_argument("--neighbors", type=int, help="neighbours per read (default 15)")
        if name == "spectral":
            s.add_argument("--clusters", type=int, required=True, help="number of clusters")
            s.add_argument("--components", type=int, help="eigenvectors to embed in (default: clusters)")
        if name in ("kmeans", "spectral"):
            s.add_argument("--seed", type=int, help="random seed (default 0)")
    return parser


def _tune() -> None:
    """Process settings for a solver rank:
    - threads (BLAS and kmerx's own) = OMP_NUM_THREADS when set, else the node's cores split among the
      ranks on it (MPICH, Open MPI and Slurm say how many), so ranks don't fight for cores;
    - Arrow's jemalloc pool, which reuses pages where the default mimalloc maps fresh ones for every
      shard read (page faults cost hundreds of MB/s of read rate on VMs)."""
    import pyarrow as pa

    import kmerx

    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        threads = int(given)  # BLAS read it at start-up
    else:
        from threadpoolctl import threadpool_limits

        local = next((int(os.environ[v]) for v in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE",
                                                   "SLURM_NTASKS_PER_NODE") if os.environ.get(v, "").isdigit()), 1)
        threads = max(1, len(os.sched_getaffinity(0)) // max(local, 1))
        threadpool_limits(threads)
    kmerx.set_num_threads(threads)
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default
            pa.set_memory_pool(pa.jemalloc_memory_pool())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _tune()
    options = {k: v for k, v in vars(args).items() if k not in ("solver", "input", "output", "format", "overwrite")}
    from kmerx.hpc.exact import world

    try:
        comm = world()
    except ImportError as e:
        print(f"kmerx.hpc: error: {e}", file=sys.stderr)
        return 1
    rank, size = comm.Get_rank(), comm.Get_size()
    try:
        m = solve(args.solver, args.input, args.output, options, comm=comm, fmt=args.format,
                  overwrite=args.overwrite)
    except (ValueError, TypeError, FileNotFoundError) as e:
        # The arguments and the input are checked on every rank before any collective: all ranks fail alike.
        if rank == 0:
            print(f"kmerx.hpc: error: {e}", file=sys.stderr)
        return 1
    except BaseException:
        # One rank failing inside a collective would leave the others waiting: stop them all.
        print(f"kmerx.hpc: rank {rank} of {size} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        if size > 1:
            comm.Abort(1)
        return 1
    if rank == 0:
        t = m["timings"]
        state = "already complete" if m.get("already_complete") else f"{m['ranks']} ranks, {t['total_seconds']:.2f} s"
        print(f"{args.output}: {args.solver} on {m['rows']:,} rows, {len(m['shards'])} shards ({state})")
        print(json.dumps(m["result"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
