"""The embedding pipeline end to end (``kmerx.pipeline.run``: read -> clean -> tokenize -> embed -> Parquet
shards + manifest): the Ray engine against the in-process engine, and against a plain Ray Data pipeline.

Ray is started once per module (``ray.init(num_cpus=2)``), before any timing; every timed call is a whole
``run()`` into a fresh OUT (planning, the table, Ray Data's actor start-up, reading, tokenizing,
embedding, writing, the manifest). Config: the pipeline defaults (canonical k=31 hashed with ntHash into
2^20 buckets, a virtual float16 x 128 table, mean pooling, float32 vectors in Parquet) and 8 MiB shards.
Milestones per run (see ``pipeline_speed.Milestones``): plan written, table ready, first shard receipt.

Every side runs on the input and on the input repeated (gzip members back to back): a run's time is
fixed costs + reads / rate, so the rate of the extra reads (``pipeline_speed.marginal_rate``, from the
two medians) is the throughput with start-up excluded (Ray Data starting its actor processes and tasks,
the table, planning, the manifest), measured the same way for every side.

1. Engines (``test_pipeline_engines``): ART MG1655 2x150 pairs (154,655 pairs, mates joined into one
   vector) x1 and x3: Ray with 1 actor (the default on 2 cores), Ray with 2 actors, and
   ``engine="local"``. Every side's shards are checked byte-identical.
2. Peer (``test_pipeline_vs_ray_data``): ART R1 (154,655 reads, single-end) x1 and x2: kmerx on Ray
   (1 actor, the default) against the plain Ray Data pipeline of ``pipeline_speed.baseline_run`` (dnaio
   read function, Python k-mer loop with Python's ``hash()``, numpy float16 table gather + float32 mean,
   ``write_parquet``) with 2 actors (one per core: its fastest). Both sides' token counts are checked equal.

The quick (CI) run: a 2,000-read FASTQ (x1 and x2) and a 2^16-bucket table, one round each, Ray with
1 actor and the local engine; the peer alone (1 actor) on 500 reads, its token count checked against a
local-engine run. After each full-run Ray side the harness waits, untimed, for the run's actor processes
to exit (``pipeline_speed.settle``), so their wind-down does not land on the next side.
``python benchmarks/report.py -k pipeline`` rewrites these sections of BENCHMARKS.md;
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
ART = [f"reads/art_MG1655_HS25_2x150_10x_R{i}.fq.gz" for i in (1, 2)]
LOCAL = "kmerx pipeline, local engine"


def _actors(n: int) -> str:
    return f"{n} actor{'s' if n > 1 else ''}"


def ray_side(workers: int) -> str:
    return f"kmerx pipeline, Ray engine ({_actors(workers)})"


def peer_side(workers: int) -> str:
    return f"plain Ray Data: dnaio + Python k-mer loop + numpy ({_actors(workers)})"


def sized(side: str, times: int) -> str:
    return f"{side}, input x{times}"


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


def _repeated(tmp_path_factory, paths: list, times: int) -> list[str]:
    work = tmp_path_factory.mktemp(f"x{times}")
    out = []
    for i, p in enumerate(paths):
        ps.repeat_fastq(p, times, work / f"{i}.fq.gz")
        out.append(str(work / f"{i}.fq.gz"))
    return out


def _start_up_excluded(info: dict, sides: list[str], scales: tuple[int, int], reference: str, unit: str,
                       ratio_title: str) -> None:
    """Columns on the larger input's rows: each side's throughput of the extra reads (start-up excluded)
    and its ratio to ``reference``'s, from the medians of the two sizes."""
    med = {name: statistics.median(t) for name, t in info["times"].items()}
    units = info["row_units"]
    small, large = scales
    rate = {s: ps.marginal_rate((units[sized(s, small)], med[sized(s, small)]), (units[sized(s, large)], med[sized(s, large)]))
            for s in sides}
    info["columns"][f"start-up excluded: {unit}/s of the extra reads (x{large} - x{small})"] = {
        sized(s, large): f"{rate[s] / 1e3:.1f} k{unit}/s" for s in sides}
    info["columns"][ratio_title] = {
        sized(s, large): f"**{rate[s] / rate[reference]:.2f}x**" for s in sides if s != reference}


def test_pipeline_engines(benchmark, full, rounds, tmp_path_factory, ray_started):
    if full:
        mates = [str(shared(p)) for p in ART]
        cfg, unit, scales = ps.config(8 * MIB), "pairs", (1, 3)
        what = "ART MG1655 2x150 10x pairs (154,655 pairs) x1 and x3, shard_bytes 8 MiB"
        sides = {ray_side(1): ("ray", 1), ray_side(2): ("ray", 2), LOCAL: ("local", None)}
        rounds = min(rounds, 5)
    else:
        mates = [str(tiny_fastq(tmp_path_factory, compressed=True))]
        cfg, unit, scales = ps.config(200_000, buckets=1 << 16), "reads", (1, 2)
        what = "quick: tiny FASTQ (2,000 x 150 bp) x1 and x2, 2^16 buckets, shard_bytes 200,000"
        sides = {ray_side(1): ("ray", 1), LOCAL: ("local", None)}  # one actor: the fastest start
    paired = len(mates) == 2
    inputs = {x: mates if x == 1 else _repeated(tmp_path_factory, mates, x) for x in scales}
    out = _outs(tmp_path_factory, "pipeline")
    runs: dict[str, list[dict]] = {sized(s, x): [] for s in sides for x in scales}
    impls = {sized(s, x): _runner(runs[sized(s, x)], lambda e=engine, w=workers, i=inputs[x]:
                                  ps.kmerx_run(i, out(), cfg, e, w, paired=paired, wait=full))
             for s, (engine, workers) in sides.items() for x in scales}
    got = compare(benchmark, f"Embedding pipeline, read to Parquet shards: {what}", impls, rounds, 0, unit)
    for x in scales:
        assert len({got[sized(s, x)] for s in sides}) == 1, "the engines read different counts"
        digests = {s: runs[sized(s, x)][-1]["sha256"] for s in sides}
        assert all(d == digests[LOCAL] for d in digests.values()), "the engines wrote different shards"

    info = benchmark.extra_info
    info["units"] = got[sized(LOCAL, 1)]
    info["row_units"] = dict(got)
    info["peer_columns"] = False  # every row is kmerx; the ratios are the columns below
    warm = len(runs[sized(LOCAL, 1)]) - len(info["times"][sized(LOCAL, 1)])  # compare's warm-up round
    med = {name: statistics.median(t) for name, t in info["times"].items()}
    info["columns"] = {
        "plan / table / first shard at": {name: _milestones(r, warm) for name, r in runs.items()},
        "whole run vs local engine": {sized(s, x): f"{med[sized(LOCAL, x)] / med[sized(s, x)]:.2f}x"
                                      for s in sides for x in scales if s != LOCAL},
    }
    _start_up_excluded(info, list(sides), scales, LOCAL, unit, "start-up excluded: vs local engine")
    info["shards"] = {x: len(runs[sized(LOCAL, x)][-1]["sha256"]) for x in scales}


def test_pipeline_vs_ray_data(benchmark, full, rounds, tmp_path_factory, ray_started):
    if full:
        r1 = str(shared(ART[0]))
        cfg, scales, workers = ps.config(8 * MIB), (1, 2), {"kmerx": 1, "peer": 2}
        what = "ART MG1655 R1 (154,655 x 150 bp, single-end) x1 and x2, shard_bytes 8 MiB"
        rounds = min(rounds, 3)
    else:
        r1 = str(tmp_path_factory.mktemp("pipeline_peer") / "tiny.fq.gz")
        ps.subset_fastq(tiny_fastq(tmp_path_factory, compressed=True), 500, r1)
        cfg, scales, workers = ps.config(50_000, buckets=1 << 16), (1,), {"kmerx": 1, "peer": 1}
        what = "quick: 500 x 150 bp, 2^16 buckets, shard_bytes 50,000"
    buckets = cfg["tokenizer"]["buckets"]
    inputs = {x: r1 if x == 1 else _repeated(tmp_path_factory, [r1], x)[0] for x in scales}
    out = _outs(tmp_path_factory, "pipeline_peer_out")
    kx, peer = ray_side(workers["kmerx"]), peer_side(workers["peer"])
    runs: dict[str, list[dict]] = {sized(s, x): [] for s in (kx, peer) for x in scales}
    impls = {}
    for x in scales:
        if full:  # the smoke run keeps the peer's code alive; kmerx's Ray side is the engines test's
            impls[sized(kx, x)] = _runner(runs[sized(kx, x)], lambda i=inputs[x]: ps.kmerx_run([i], out(), cfg, "ray", workers["kmerx"]))
        impls[sized(peer, x)] = _runner(runs[sized(peer, x)], lambda i=inputs[x]: ps.baseline_run(
            i, out(), workers=workers["peer"], buckets=buckets, wait=full, block_rows=1024 if full else 64))
    got = compare(benchmark, f"Embedding pipeline vs plain Ray Data, k=31 hashed 2^{buckets.bit_length() - 1}, "
                             f"float16 x 128 table, mean, to Parquet: {what}", impls, rounds, 0, "reads")
    for x in scales:
        assert len({n for name, n in got.items() if name.endswith(f"x{x}")}) == 1, "the sides read different counts"
    kmerx_tokens = runs[sized(kx, 1)][-1]["tokens"] if full else ps.kmerx_run([r1], out(), cfg, "local")["tokens"]
    assert kmerx_tokens == runs[sized(peer, 1)][-1]["tokens"], "the two sides embedded different k-mers"
    info = benchmark.extra_info
    info["units"] = got[sized(peer, 1)]
    info["row_units"] = dict(got)
    if full:
        info["peer_columns"] = False  # kmerx against the peer on the same input only: the columns below
        warm = len(runs[sized(kx, 1)]) - len(info["times"][sized(kx, 1)])
        med = {name: statistics.median(t) for name, t in info["times"].items()}
        info["columns"] = {
            "plan / table / first shard at": {sized(kx, x): _milestones(runs[sized(kx, x)], warm) for x in scales},
            "kmerx speed-up, whole run": {sized(kx, x): f"**{med[sized(peer, x)] / med[sized(kx, x)]:.2f}x**" for x in scales},
        }
        _start_up_excluded(info, [kx, peer], scales, peer, "reads", "kmerx speed-up, start-up excluded")
        info["shards"] = len(runs[sized(kx, 1)][-1]["sha256"])
