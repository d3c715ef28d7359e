"""The embedding pipeline end to end (``kmerx.pipeline.run``: read -> clean -> tokenize -> embed -> Parquet
shards + manifest): the Ray engine against the in-process engine, and against a plain Ray Data pipeline.

Ray is started once per module (``ray.init(num_cpus=2)``), before any timing; every timed call is a whole
``run()`` into a fresh OUT (planning, the table, Ray Data's actor start-up, reading, tokenizing,
embedding, writing, the manifest). Config: the pipeline defaults (canonical k=31 hashed with ntHash into
2^20 buckets, a virtual float16 x 128 table, mean pooling, float32 vectors in Parquet) and a shard size
giving about 10 shards. Milestones per run (see ``pipeline_speed.Milestones``): plan written, table
ready, first shard receipt.

1. Engines (``test_pipeline_engines``): ART MG1655 2x150 pairs (154,655 pairs, mates joined into one
   vector), ``output.shard_bytes`` 8 MiB (11 shards): Ray with 2 actors (the default on 2 CPUs), Ray with
   1 actor, and ``engine="local"``. Every side's shards are checked byte-identical.
2. Peer (``test_pipeline_vs_ray_data``): the first 20,000 reads of ART R1 (1 MiB shards, 11 shards) and
   all 154,655 (8 MiB, 11 shards), single-end: kmerx on Ray (2 actors) against the plain Ray Data
   pipeline of ``pipeline_speed.baseline_run`` (dnaio read function, Python k-mer loop with Python's
   ``hash()``, numpy float16 table gather + float32 mean, ``write_parquet``; 2 actors with kmerx's CPU
   share). Both sides' token counts are checked equal (the same k-mers).

The quick (CI) run: a 2,000-read FASTQ and a 2^16-bucket table, one round each, Ray with 1 actor (the
quickest start) and the local engine; the peer alone (1 actor) on 500 reads, its token count checked
against a local-engine run. After each full-run Ray side the harness waits, untimed, for the run's actor
processes to exit (``pipeline_speed.settle``), so their wind-down does not land on the next side. ``python benchmarks/report.py -k pipeline`` rewrites these sections of BENCHMARKS.md;
``python benchmarks/pipeline_speed.py`` runs the same sides outside pytest (e.g. under py-spy).
"""

from __future__ import annotations

import itertools
import statistics

import pytest
from conftest import compare, shared, tiny_fastq

ray = pytest.importorskip("ray", reason="the pipeline benchmarks run Ray (pip install 'ray[data]')")
pytest.importorskip("ray.data", reason="the pipeline benchmarks run Ray Data (pip install 'ray[data]')")
pytest.importorskip("dnaio", reason="the plain Ray Data peer reads with dnaio (pip install dnaio)")

import pipeline_speed as ps  # noqa: E402  (after the skips: it is only useful with Ray)

MIB = 1 << 20
LOCAL = "kmerx pipeline, local engine"


def _actors(n: int) -> str:
    return f"{n} actor{'s' if n > 1 else ''}"


def ray_side(workers: int) -> str:
    return f"kmerx pipeline, Ray engine ({_actors(workers)})"


def peer_side(workers: int) -> str:
    return f"plain Ray Data: dnaio + Python k-mer loop + numpy ({_actors(workers)})"


@pytest.fixture(scope="module")
def ray_started():
    if ray.is_initialized():  # someone else's Ray: use it as it is
        yield
        return
    ps.start_ray(num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()


def _runner(results: list[dict], fn):
    def call():
        res = fn()
        results.append(res)
        return res["reads"]

    return call


def _milestones(runs: list[dict], skip: int) -> str:
    """'plan / table / first shard' medians (s) of the timed runs."""
    kept = runs[skip:] or runs
    cells = []
    for key in ("plan", "table", "first shard"):
        vals = [r["milestones"][key] for r in kept if key in r["milestones"]]
        cells.append(f"{statistics.median(vals):.1f}" if vals else "—")
    return " / ".join(cells) + " s"


def _outs(tmp_path_factory, name: str):
    base = tmp_path_factory.mktemp(name)
    counter = itertools.count()
    return lambda: str(base / f"out{next(counter)}")


def test_pipeline_engines(benchmark, full, rounds, tmp_path_factory, ray_started):
    if full:
        inputs = [(str(shared("reads/art_MG1655_HS25_2x150_10x_R1.fq.gz")), str(shared("reads/art_MG1655_HS25_2x150_10x_R2.fq.gz")))]
        cfg, unit = ps.config(8 * MIB), "pairs"
        what = "ART MG1655 2x150 10x pairs (154,655 pairs), shard_bytes 8 MiB"
        sides = {ray_side(2): ("ray", 2), ray_side(1): ("ray", 1), LOCAL: ("local", None)}
        rounds = min(rounds, 5)
    else:
        inputs = [str(tiny_fastq(tmp_path_factory, compressed=True))]
        cfg, unit = ps.config(200_000, buckets=1 << 16), "reads"
        what = "quick: tiny FASTQ (2,000 x 150 bp), 2^16 buckets, shard_bytes 200,000"
        sides = {ray_side(1): ("ray", 1), LOCAL: ("local", None)}  # one actor: the fastest start
    out = _outs(tmp_path_factory, "pipeline")
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    impls = {name: _runner(runs[name], lambda e=engine, w=workers: ps.kmerx_run(inputs, out(), cfg, e, w, wait=full))
             for name, (engine, workers) in sides.items()}
    got = compare(benchmark, f"Embedding pipeline, read to Parquet shards: {what}", impls, rounds, 0, unit)
    reads = next(iter(got.values()))
    assert set(got.values()) == {reads}
    digests = {name: r[-1]["sha256"] for name, r in runs.items()}
    assert all(d == digests[LOCAL] for d in digests.values()), "the engines wrote different shards"

    info = benchmark.extra_info
    info["units"] = reads
    warm = len(runs[LOCAL]) - len(info["times"][LOCAL])  # compare's warm-up round, not in "times"
    medians = {name: statistics.median(t) for name, t in info["times"].items()}
    info["columns"] = {
        "plan / table / first shard at": {name: _milestones(r, warm) for name, r in runs.items()},
        "throughput vs local engine": {name: f"{medians[LOCAL] / m:.2f}x" for name, m in medians.items()},
        "warm-up round": {name: f"{r[0]['seconds']:.1f} s" for name, r in runs.items() if not name.endswith("local engine")},
    }
    info["shards"] = len(digests[LOCAL])


@pytest.mark.parametrize("subset", [20_000, None], ids=["subset", "all"])
def test_pipeline_vs_ray_data(benchmark, full, rounds, tmp_path_factory, ray_started, subset):
    work = tmp_path_factory.mktemp("pipeline_peer")
    if full:
        path = work / "r1.fq.gz"
        n = ps.subset_fastq(shared("reads/art_MG1655_HS25_2x150_10x_R1.fq.gz"), subset, path)
        buckets, shard_bytes = 1 << 20, (8 * MIB if subset is None else MIB)
        what = f"{'first ' if subset else ''}{n:,} reads of ART MG1655 R1 (150 bp), shard_bytes {shard_bytes // MIB} MiB"
        rounds = min(rounds, 3)
    else:
        if subset is None:
            pytest.skip("the whole-R1 comparison runs with --full only")
        path = work / "tiny.fq.gz"
        n = ps.subset_fastq(tiny_fastq(tmp_path_factory, compressed=True), 500, path)
        buckets, shard_bytes, what = 1 << 16, 50_000, "quick: 500 x 150 bp, 2^16 buckets, shard_bytes 50,000"
    cfg = ps.config(shard_bytes, buckets=buckets)
    out = _outs(tmp_path_factory, "pipeline_peer_out")
    workers = 2 if full else 1
    kx, peer = ray_side(workers), peer_side(workers)
    runs: dict[str, list[dict]] = {kx: [], peer: []}
    block_rows = min(1024, max(1, n // 8))
    impls = {kx: _runner(runs[kx], lambda: ps.kmerx_run([str(path)], out(), cfg, "ray", workers)),
             peer: _runner(runs[peer], lambda: ps.baseline_run(path, out(), workers=workers, buckets=buckets,
                                                               block_rows=block_rows, wait=full))}
    if not full:  # the smoke run keeps the peer's code alive; kmerx's Ray side is the engines test's
        del impls[kx]
    got = compare(benchmark, f"Embedding pipeline vs plain Ray Data, k=31 hashed 2^{buckets.bit_length() - 1}, "
                             f"float16 x 128 table, mean, to Parquet: {what}", impls, rounds, n, "reads")
    assert set(got.values()) == {n}
    kmerx_tokens = runs[kx][-1]["tokens"] if full else ps.kmerx_run([str(path)], out(), cfg, "local")["tokens"]
    assert kmerx_tokens == runs[peer][-1]["tokens"], "the two sides embedded different k-mers"
    if full:
        info = benchmark.extra_info
        warm = len(runs[kx]) - len(info["times"][kx])
        info["columns"] = {"plan / table / first shard at": {kx: _milestones(runs[kx], warm)}}
        info["shards"] = len(runs[kx][-1]["sha256"])
