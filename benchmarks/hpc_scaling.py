"""Strong scaling of the MPI k-means (``python -m kmerx.hpc kmeans``) and the ranks' read rate.

Writes N x dim float32 embeddings (a Gaussian mixture, seeded) as Parquet shards with a manifest, then
runs the same k-means (same seed, a fixed number of Lloyd iterations) under ``mpirun -n R`` for each R,
``--repeat`` times, and prints the median solve time, the speed-up and efficiency against 1 rank, and
each run's per-rank read rate beside the disk's sequential read rate of the same files (``dd``; the
files are in the page cache after the first read unless ``--drop-caches`` works here).

    PYTHONPATH=src python benchmarks/hpc_scaling.py                    # 1 M x 128, k = 16, ranks 1 and 2
    PYTHONPATH=src python benchmarks/hpc_scaling.py --rows 200000 --ranks 1 2 3 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kmerx.hpc.handoff import mpirun
from kmerx.hpc.parts import write_embeddings


def make_input(folder: Path, rows: int, dim: int, centers: int, seed: int = 0) -> None:
    if (folder / "manifest.json").exists():
        return
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1, (centers, dim)).astype(np.float32)
    x = means[rng.integers(centers, size=rows)]
    x += rng.normal(0, 0.5, x.shape).astype(np.float32)
    write_embeddings(folder, x, shard_rows=125_000)


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def dd_rate(folder: Path, drop: bool) -> float:
    """MB/s of reading every shard sequentially with dd (1 MiB blocks)."""
    files = sorted(folder.glob("part-*.parquet"))
    if drop:
        drop_caches()
    t0 = time.perf_counter()
    for f in files:
        subprocess.run(["dd", f"if={f}", "of=/dev/null", "bs=1M"], check=True, capture_output=True)
    return sum(f.stat().st_size for f in files) / (time.perf_counter() - t0) / 1e6


PEER = """
import sys, time, numpy as np, pyarrow as pa, pyarrow.parquet as pq
pa.set_memory_pool(pa.jemalloc_memory_pool())
pa.array(np.zeros(1)).to_numpy()
files = sys.argv[1:]
t0 = time.perf_counter()
parts = [pq.read_table(f, columns=["read_index", "embedding"]) for f in files]
x = np.concatenate([t.column("embedding").combine_chunks().flatten().to_numpy().reshape(len(t), -1) for t in parts])
print(sum(pq.ParquetFile(f).metadata.row_group(g).total_byte_size for f in files
          for g in range(pq.ParquetFile(f).metadata.num_row_groups)) / (time.perf_counter() - t0) / 1e6)
"""


def pyarrow_rate(folder: Path) -> float:
    """MB/s of the peer: pyarrow.parquet.read_table of every shard into one numpy array, one fresh process
    (the same bytes counted as the ranks count: the row groups' sizes)."""
    files = [str(f) for f in sorted(folder.glob("part-*.parquet"))]
    return float(subprocess.run([sys.executable, "-c", PEER, *files], check=True, capture_output=True,
                                text=True).stdout)


SKLEARN = """
import sys, time, numpy as np
from sklearn.cluster import KMeans
from kmerx.hpc.parts import Embeddings
e = Embeddings(sys.argv[1])
x = e.read(0, e.rows).vectors
init = x[np.random.default_rng(0).choice(len(x), int(sys.argv[2]), replace=False)]
t0 = time.perf_counter()
KMeans(int(sys.argv[2]), init=init, n_init=1, max_iter=int(sys.argv[3]), tol=0, algorithm="lloyd").fit(x)
print(time.perf_counter() - t0)
"""


def sklearn_seconds(folder: Path, k: int, iters: int) -> float | None:
    """The peer's Lloyd iterations: scikit-learn KMeans on the same rows (float32, one process, OpenMP on
    every core), the same number of iterations from given centres (its seeding excluded); None without it."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return None
    return float(subprocess.run([sys.executable, "-c", SKLEARN, str(folder), str(k), str(iters)], check=True,
                                capture_output=True, text=True).stdout)


def run(folder: Path, ranks: int, k: int, iters: int, drop: bool, threads: int | None) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"kmeans{ranks}-", dir=folder.parent))
    if drop:
        drop_caches()
    t0 = time.perf_counter()
    subprocess.run([mpirun(), "-n", str(ranks), sys.executable, "-m", "kmerx.hpc", "kmeans", "--input", str(folder),
                    "--output", str(out), "--k", str(k), "--max-iter", str(iters), "--tol", "0", "--seed", "0"],
                   check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)} if threads
                   else None)
    wall = time.perf_counter() - t0
    m = json.loads((out / "manifest.json").read_text())
    shutil.rmtree(out)
    return {**m["timings"], "wall_seconds": wall, "iterations": m["result"]["iterations"],
            "lloyd_seconds": m["result"]["lloyd_seconds"],
            "inertia": m["result"]["inertia"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--iters", type=int, default=20, help="Lloyd iterations (tol 0: every run does all)")
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "kmerx-hpc-scaling")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads per rank (default 1: one core per rank, the usual strong-scaling setup; "
                         "0: kmerx's default, the node's cores split among its ranks)")
    ap.add_argument("--drop-caches", action="store_true", help="drop the page cache before each run (root)")
    args = ap.parse_args()
    folder = args.work / f"emb-{args.rows}x{args.dim}"
    make_input(folder, args.rows, args.dim, args.k)
    drop = args.drop_caches and drop_caches()
    size = sum(f.stat().st_size for f in folder.glob("part-*.parquet")) / 1e6
    print(f"input: {args.rows:,} x {args.dim} float32, {size:.0f} MB Parquet; k-means k={args.k}, "
          f"{args.iters} iterations; {args.threads or 'cores / ranks'} BLAS thread(s) per rank; "
          f"page cache {'dropped before each run' if drop else 'warm'}")
    print(f"disk: dd reads the shards at {statistics.median(dd_rate(folder, drop) for _ in range(3)):.0f} MB/s; "
          f"pyarrow read_table + to_numpy (1 process) at {statistics.median(pyarrow_rate(folder) for _ in range(3)):.0f} MB/s")
    base = None
    for r in args.ranks:
        runs = [run(folder, r, args.k, args.iters, drop, args.threads) for _ in range(args.repeat)]
        solve = statistics.median(x["solve_seconds"] for x in runs)
        total = statistics.median(x["total_seconds"] for x in runs)
        read = statistics.median(x["read_mb_per_s_per_rank"] for x in runs)
        base = base or (solve * r, total * r)
        lloyd = statistics.median(x["lloyd_seconds"] for x in runs)
        print(f"ranks {r}: Lloyd iterations {lloyd:.2f} s; solve {solve:.2f} s (speed-up {base[0] / solve:.2f}x, efficiency "
              f"{base[0] / (solve * r):.0%}); read+solve+write {total:.2f} s (efficiency {base[1] / (total * r):.0%}); "
              f"read {read:.0f} MB/s per rank; inertia {runs[0]['inertia']:.6g}")
    peer = [sklearn_seconds(folder, args.k, args.iters) for _ in range(args.repeat)]
    if peer[0] is not None:
        print(f"scikit-learn KMeans (lloyd, float32, 1 process, all cores), {args.iters} iterations: "
              f"{statistics.median(peer):.2f} s")


if __name__ == "__main__":
    main()
