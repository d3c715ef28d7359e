"""The embedding pipeline, timed side by side: ``kmerx.pipeline.run`` on Ray and in-process, and a plain
Ray Data pipeline written the obvious way (the peer). ``bench_pipeline.py`` times these through pytest;
run this file directly for one-off timings or under a profiler:

    python benchmarks/pipeline_speed.py --repeat 3             # ART MG1655 pairs x1 and x3: ray (1 actor) + local
    python benchmarks/pipeline_speed.py --sides ray1 baseline --reads 20000   # first 20k reads of R1
    py-spy record --subprocesses -o ray.svg -- python benchmarks/pipeline_speed.py --sides ray1 --rounds 2

Ray is started once (``ray.init(num_cpus=2)``) before any timing: a timed run covers planning, the
table, Ray Data's actor start-up, reading, tokenizing, embedding and writing, not ``ray.init``.
Milestones of a run (seconds from the call): the plan written, the table ready and the first shard's
receipt. Throughput with start-up excluded: whole runs on the input and on the input repeated
(``--repeat``; gzip members back to back) give time = fixed cost + reads / rate for each side, and
the rate of the extra reads (:func:`marginal_rate`) leaves out everything a run pays once whatever
its size: Ray Data starting its actor processes and tasks, the table, planning, the manifest.

The peer (``baseline_run``): a Ray Data dataset of one item per input file, a read function reading it
with dnaio into dict batches of name/seq (4,096 reads), repartitioned into blocks of 1,024 reads,
``map_batches`` of a callable class in an
ActorPoolStrategy pool (same size and CPU share per actor as kmerx's) whose constructor draws a seeded
``numpy`` float16 table (buckets x dim) and whose ``__call__`` loops over each read's k-mers in Python:
canonical = ``min(kmer, revcomp)`` of the upper-cased string, k-mers holding a non-ACGT base skipped,
bucket = Python's built-in ``hash()`` (SipHash-1-3, salted per process, so its ids differ between
workers; kmerx uses ntHash, the same everywhere) masked to the bucket count; the rows are gathered with
numpy fancy indexing and averaged in float32; ``ds.write_parquet``.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import pathlib
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

SHARED = pathlib.Path(os.environ.get("KMERX_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
ART = [SHARED / f"reads/art_MG1655_HS25_2x150_10x_R{i}.fq.gz" for i in (1, 2)]
MIB = 1 << 20


def start_ray(num_cpus: int = 2) -> None:
    """Ray as the tests start it, quiet (the same settings ``kmerx.pipeline.ray_engine.session`` uses)."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")


def config(shard_bytes: int, buckets: int = 1 << 20) -> dict[str, Any]:
    """The pipeline defaults (canonical k=31 ntHash into ``buckets``, virtual float16 128-wide table, mean
    pooling, float32 vectors, Parquet) with the given shard size."""
    return {"tokenizer": {"buckets": buckets}, "output": {"shard_bytes": shard_bytes}}


class Milestones:
    """Seconds from the start of a run to: the plan written (``OUT/_kmerx/plan.json``), the table ready
    (``OUT/_kmerx/table.npy``, when the run materialises it) and the first shard receipt
    (``OUT/_kmerx/done/*``); polled every 50 ms by a thread, since the run deletes ``OUT/_kmerx`` at the end."""

    def __init__(self, out: str) -> None:
        work = os.path.join(out, "_kmerx")
        self.paths = {"plan": os.path.join(work, "plan.json"), "table": os.path.join(work, "table.npy"),
                      "first shard": os.path.join(work, "done")}
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.t0 = time.perf_counter()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.wait(0.05):
            now = time.perf_counter() - self.t0
            for name, path in self.paths.items():
                if name not in self.seen and os.path.exists(path) and (name != "first shard" or os.listdir(path)):
                    self.seen[name] = now

    def close(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join()
        return dict(self.seen)


def settle(timeout: float = 20.0) -> None:
    """Wait (untimed) until the actors of the last Ray Data run have exited: their processes wind down
    for a second or so after the run returns, which would otherwise land on the next side's timing."""
    import psutil

    me, end = psutil.Process(), time.monotonic() + timeout
    while time.monotonic() < end:
        names = []
        for p in me.children(recursive=True):
            try:
                names += p.cmdline()[:1]
            except psutil.Error:
                continue
        if not any(n.startswith("ray::MapWorker") for n in names):
            return
        time.sleep(0.05)


def kmerx_run(inputs: list, out: str, cfg: dict[str, Any], engine: str, workers: int | None = None,
              paired: bool = False, wait: bool = True) -> dict[str, Any]:
    """One ``kmerx.pipeline.run`` into ``out`` (must not exist; removed after): seconds, milestones (see
    :class:`Milestones`), reads, tokens and the shards' sha256 (the same for every engine and worker count).
    ``wait``: :func:`settle` after a Ray run (untimed)."""
    import kmerx.pipeline

    watch = Milestones(out)
    t = time.perf_counter()
    try:
        result = kmerx.pipeline.run(inputs, out, cfg, engine=engine, workers=workers, paired=paired)
    finally:
        milestones = watch.close()
    seconds = time.perf_counter() - t
    m = result.manifest
    if m["reads"]["output"] != m["reads"]["input"]:
        raise RuntimeError(f"reads lost: {m['reads']}")
    shutil.rmtree(out)
    if engine == "ray" and wait:
        settle()
    return {"seconds": seconds, "milestones": milestones, "reads": m["reads"]["input"],
            "tokens": m["reads"]["tokens"], "sha256": [s["sha256"] for s in m["shards"]]}


def repeat_fastq(src: os.PathLike, times: int, dst: os.PathLike) -> None:
    """``src`` (FASTQ.gz) ``times`` over into ``dst``: gzip members back to back, the reads repeated."""
    data = pathlib.Path(src).read_bytes()
    with open(dst, "wb") as f:
        for _ in range(times):
            f.write(data)


def marginal_rate(small: tuple[int, float], large: tuple[int, float]) -> float:
    """Reads per second of the extra reads of the larger input, from (reads, median seconds) of whole runs
    on two sizes of the same input: what a run's fixed costs (Ray's start-up, the table, planning) leave
    out, as a run's time is fixed costs + reads / rate."""
    (n1, t1), (n2, t2) = small, large
    return (n2 - n1) / (t2 - t1) if t2 > t1 else float("inf")


def subset_fastq(src: os.PathLike, n: int | None, dst: os.PathLike) -> int:
    """The first ``n`` records (all when None) of a FASTQ(.gz) into ``dst`` (gzip level 1); returns the count."""
    with gzip.open(src, "rb") as f:
        lines = list(itertools.islice(f, None if n is None else 4 * n))
    pathlib.Path(dst).write_bytes(gzip.compress(b"".join(lines), 1))
    return len(lines) // 4


# ---- the peer: a plain Ray Data pipeline ----------------------------------------------------------

_COMP = str.maketrans("ACGT", "TGCA")
_NON_ACGT = re.compile("[^ACGT]+")


def kmer_ids(seq: str, k: int, mask: int) -> list[int]:
    """Bucket ids of the canonical k-mers of ``seq`` (k-mers holding a non-ACGT base skipped)."""
    ids = []
    for piece in _NON_ACGT.split(seq.upper()):
        n = len(piece)
        rc = piece.translate(_COMP)[::-1]
        for i in range(n - k + 1):
            f, r = piece[i:i + k], rc[n - k - i:n - i]
            ids.append(hash(f if f <= r else r) & mask)
    return ids


def read_fastq(batch: dict[str, np.ndarray], limit: int | None = None, size: int = 4096):
    """Ray Data read function: one path in, dict batches of ``name``/``seq`` out (dnaio)."""
    import dnaio

    for path in batch["path"]:
        with dnaio.open(str(path)) as reader:
            records = itertools.islice(reader, limit)
            while True:
                chunk = list(itertools.islice(records, size))
                if not chunk:
                    break
                yield {"name": np.array([r.name for r in chunk], dtype=object),
                       "seq": np.array([r.sequence for r in chunk], dtype=object)}


class BaselineEmbed:
    """Ray Data callable class: seeded float16 table built once per actor; per read, Python k-mer loop,
    numpy gather, float32 mean."""

    def __init__(self, k: int, buckets: int, dim: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.table = rng.standard_normal((buckets, dim), dtype=np.float32).astype(np.float16)
        self.k, self.mask = k, buckets - 1

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        seqs = batch["seq"]
        out = np.zeros((len(seqs), self.table.shape[1]), np.float32)
        n_tokens = np.zeros(len(seqs), np.int32)
        for i, seq in enumerate(seqs):
            ids = kmer_ids(seq, self.k, self.mask)
            if ids:
                out[i] = self.table[ids].mean(axis=0, dtype=np.float32)
            n_tokens[i] = len(ids)
        return {"name": batch["name"], "n_tokens": n_tokens, "embedding": out}


def baseline_run(path: os.PathLike, out: str, workers: int = 2, k: int = 31, buckets: int = 1 << 20, dim: int = 128,
                 seed: int = 0, limit: int | None = None, block_rows: int = 1024, wait: bool = True) -> dict[str, Any]:
    """The plain Ray Data pipeline on one FASTQ(.gz) into ``out`` (removed after); seconds, reads, tokens.
    The read function's output is cut into blocks of ``block_rows`` reads, so that every actor gets work
    (as kmerx cuts its read output into one block per shard). ``wait``: :func:`settle` after (untimed)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import ray
    import ray.cloudpickle

    if buckets & (buckets - 1):
        raise ValueError(f"buckets must be a power of two, got {buckets}")
    # Workers cannot import this file (benchmarks/ is not a package): ship its functions by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1)))
    t = time.perf_counter()
    ds = ray.data.from_items([{"path": str(path)}])
    ds = ds.map_batches(read_fastq, fn_kwargs={"limit": limit}, batch_size=1)
    ds = ds.repartition(target_num_rows_per_block=block_rows)
    ds = ds.map_batches(BaselineEmbed, fn_constructor_args=(k, buckets, dim, seed), batch_size=block_rows,
                        batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                        num_cpus=max(0.05, min(1.0, (cpus - 1) / workers)))  # kmerx's actor share
    ds.write_parquet(out)
    seconds = time.perf_counter() - t
    if wait:
        settle()
    table = pq.read_table(out, columns=["n_tokens"])
    shutil.rmtree(out)
    return {"seconds": seconds, "reads": table.num_rows,
            "tokens": int(pc.sum(table.column("n_tokens")).as_py() or 0)}


# ---- command line ---------------------------------------------------------------------------------

SIDES = ("ray2", "ray1", "local", "baseline")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sides", nargs="+", choices=SIDES, default=["ray1", "local"],
                    help="ray1 / ray2: kmerx on Ray with 1 / 2 embedding actors; local: engine='local'; "
                         "baseline: the plain Ray Data pipeline (single-end R1 only)")
    ap.add_argument("--reads", type=int, default=None,
                    help="the first N reads of R1, single-end (default: the R1+R2 pairs; 'baseline' needs this)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="also run on the input repeated this many times, and report the throughput of the "
                         "extra reads (start-up excluded)")
    ap.add_argument("--shard-bytes", type=int, default=8 * MIB)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds after one warm-up round (interleaved)")
    ap.add_argument("--num-cpus", type=int, default=2,
                    help="ray.init(num_cpus=...) (default 2, as the benchmarks; a Ray started by run() itself "
                         "declares twice the cores)")
    args = ap.parse_args(argv)
    if "baseline" in args.sides and args.reads is None:
        ap.error("baseline runs on single-end reads: give --reads N (e.g. 20000, or 154655 for all of R1)")
    if any(s.startswith("ray") for s in args.sides) or "baseline" in args.sides:
        start_ray(args.num_cpus)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="kmerx-pipeline-speed-"))
    try:
        if args.reads is None:
            mates, paired, what = [str(p) for p in ART], True, "pairs"
        else:
            mates, paired, what = [str(tmp / "subset.fq.gz")], False, "reads"
            print(f"input: first {subset_fastq(ART[0], args.reads, mates[0]):,} reads of {ART[0].name}")
        scales = sorted({1, args.repeat})
        inputs = {1: mates}
        for x in scales[1:]:
            inputs[x] = [str(tmp / f"x{x}-{i}.fq.gz") for i in range(len(mates))]
            for src, dst in zip(mates, inputs[x], strict=True):
                repeat_fastq(src, x, dst)
        cfg = config(args.shard_bytes)
        runs = {(side, x): [] for side in args.sides for x in scales}
        for r in range(args.rounds + 1):
            for (side, x), got in runs.items():
                out = str(tmp / f"out-{side}-{x}-{r}")
                if side == "baseline":
                    res = baseline_run(inputs[x][0], out)
                else:
                    res = kmerx_run(inputs[x], out, cfg, "local" if side == "local" else "ray",
                                    workers={"ray2": 2, "ray1": 1}.get(side), paired=paired)
                got.append(res)
                extra = "".join(f", {k} {v:.2f} s" for k, v in res.get("milestones", {}).items())
                extra += f", {len(res['sha256'])} shards" if "sha256" in res else ""
                print(f"round {r}{' (warm-up)' if r == 0 else ''} {side} x{x}: {res['seconds']:.2f} s, "
                      f"{res['reads'] / res['seconds']:,.0f} {what}/s{extra}", flush=True)
        med = {key: (v[0]["reads"], statistics.median(x["seconds"] for x in v[1:] or v)) for key, v in runs.items()}
        for x in scales:
            print(f"whole runs on the input x{x} (medians after the warm-up round):")
            for s in args.sides:
                n, t = med[s, x]
                print(f"  {s:9s} {t:6.2f} s  {n / t:10,.0f} {what}/s"
                      + "".join(f"  x{med[o, x][1] / t:.2f} vs {o}" for o in args.sides if o != s))
        if len(scales) > 1:
            rate = {s: marginal_rate(med[s, 1], med[s, scales[-1]]) for s in args.sides}
            print(f"throughput of the extra reads of x{scales[-1]} over x1 (start-up excluded):")
            for s, v in rate.items():
                print(f"  {s:9s} {v:10,.0f} {what}/s" + "".join(f"  x{v / rate[o]:.2f} vs {o}" for o in rate if o != s))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if "ray" in sys.modules:
            import ray

            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
