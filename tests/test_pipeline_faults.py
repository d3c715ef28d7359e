"""kmerx.pipeline under faults, with real Ray and real processes (no mocks): a SIGKILLed read/prepare
task and a SIGKILLed embedding actor are redone (every read exactly once, shards byte-identical to an
uninterrupted run), SIGINT stops ``kmerx embed`` promptly without a manifest and a re-run resumes to
the same output, and a per-token run (output ~150x its gzip input) stays within a memory bound under
the smallest object store Ray accepts.

Ray is started once for the module (a fixed 75 MiB object store); each run executes in a thread of
this process while the main thread watches OUT and the Ray worker processes (``ray::...`` children of
this process, found with psutil) and kills one. ``kmerx embed`` runs as a subprocess with its own Ray.
Every wait is bounded; processes left behind are killed by id."""

from __future__ import annotations

import contextlib
import gzip
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from reference import shared

import kmerx
from kmerx.formats import manifest as manifest_mod
from kmerx.pipeline import plan, run

pytestmark = pytest.mark.slow

psutil = pytest.importorskip("psutil")
ray = pytest.importorskip("ray")

SRR_100K = "reads/SRR059298_subset_100k.fastq.gz"  # 100,000 reads of 72 bp, 7 MB gzip
N_READS = 20_000  # the fault runs' input: the first 20,000 of them
# Pooled float32 (544 B/read in the plan): 800 reads per shard, 25 shards. A 4096-bucket vocabulary
# keeps the table small (the default one is 256 MiB, written out by every run).
CONFIG = {"tokenizer": {"buckets": 4096}, "output": {"shard_bytes": 800 * 544}}
N_SHARDS = 25
OBJECT_STORE = 75 * 1024 * 1024  # ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES: the least Ray accepts

RUN_TIMEOUT = 300  # s, one pipeline run (Ray on 2 shared cores is slow to start actors)
EXIT_TIMEOUT = 30  # s, from SIGINT to the driver's exit
MEMORY_BOUND = 7 << 29  # 3.5 GiB: summed PSS of this process and every Ray process during the per-token run


# ---------------------------------------------------------------------------------------------- helpers

def parts(out) -> list[pathlib.Path]:
    return sorted(pathlib.Path(out).glob("part-*.parquet"))


def ray_processes(root: psutil.Process) -> list[tuple[psutil.Process, str]]:
    """(process, title) of the ``ray::`` workers under ``root`` (tasks and actors, not raylet/gcs)."""
    out = []
    for p in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            title = " ".join(p.cmdline()).strip()
            if title.startswith("ray::"):
                out.append((p, title))
    return out


def is_read_task(title: str) -> bool:
    """A read (+ clean + tokenize) task (not an actor: those run in ``MapWorker``s)."""
    return "MapWorker" not in title and "ReadFastx" in title


def is_embed_actor(title: str) -> bool:
    return "MapWorker" in title and "_EmbedActor" in title


def kill_ids(procs) -> None:
    """SIGKILL each process (by id) that is still the one we saw (same create_time)."""
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running():
                p.kill()


def check_output(out, reference: dict) -> dict:
    """The complete output of a faulted run: manifest last and verified, every read once (read_index
    0..N-1 over all shards), shards byte-identical to the uninterrupted reference, no temp files left."""
    out = pathlib.Path(out)
    m = manifest_mod.read(out)
    assert manifest_mod.verify(out, m) == []
    assert [s["sha256"] for s in m["shards"]] == reference["sha256"], "shards differ from the uninterrupted run"
    assert m["reads"] == reference["reads"]
    assert [s["path"] for s in m["shards"]] == [p.name for p in parts(out)], "a shard file the manifest does not list"
    ri = np.concatenate([pq.read_table(p, columns=["read_index"]).column(0).to_numpy() for p in parts(out)])
    assert len(ri) == reference["n"], f"{len(ri) - reference['n']:+d} rows: reads lost or doubled"
    assert np.array_equal(ri, np.arange(reference["n"])), "read_index over the shards is not 0..N-1 in order"
    leftovers = [n for n in os.listdir(out) if n != manifest_mod.NAME and not n.startswith("part-")]
    assert leftovers == [], f"left in OUT: {leftovers}"
    return m


class Killer(threading.Thread):
    """Polls OUT and the ``ray::`` processes under this process and SIGKILLs one per step, in order:
    step (match, min_shards) fires on the first process whose title matches once at least
    ``min_shards`` shards exist (and before the manifest does)."""

    def __init__(self, out, steps, root: psutil.Process | None = None) -> None:
        super().__init__(daemon=True)
        self.out, self.steps = pathlib.Path(out), list(steps)
        self.root = root or psutil.Process()
        self.stop = threading.Event()
        self.killed: list[dict] = []

    def run(self) -> None:
        while not self.stop.is_set() and len(self.killed) < len(self.steps):
            match, min_shards = self.steps[len(self.killed)]
            if not (self.out / manifest_mod.NAME).exists():
                done = len(parts(self.out)) if self.out.is_dir() else 0
                if done >= min_shards:
                    for p, title in ray_processes(self.root):
                        if match(title) and all(k["pid"] != p.pid for k in self.killed):
                            with contextlib.suppress(psutil.Error):
                                p.send_signal(signal.SIGKILL)
                                self.killed.append({"pid": p.pid, "title": title, "shards_before": done})
                                break
            self.stop.wait(0.02)


def run_bounded(inputs, out, config, what: str = ""):
    """``run(inputs, out, config)`` on the module's Ray, in a thread joined with RUN_TIMEOUT (a hung run
    fails the test instead of hanging it; the module's ray.shutdown() then ends its tasks)."""
    box: dict = {}

    def target() -> None:
        try:
            box["result"] = run(inputs, out, config)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = e

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(RUN_TIMEOUT)
    if worker.is_alive():
        pytest.fail(f"the run did not finish within {RUN_TIMEOUT} s{what}")
    if "error" in box:
        raise AssertionError(f"the run failed{what}: {box['error']!r}") from box["error"]
    return box["result"]


def run_with_kills(inputs, out, config, steps) -> tuple[object, list[dict]]:
    """``run(inputs, out, config)`` while a Killer works through ``steps``; returns (RunResult, what
    was killed). Fails when the run fails or does not finish, or when a step found nothing to kill."""
    killer = Killer(out, steps)
    killer.start()
    try:
        result = run_bounded(inputs, out, config, what=f" after killing {killer.killed}")
    finally:
        killer.stop.set()
        killer.join(5)
    assert len(killer.killed) == len(steps), (
        f"killed only {killer.killed}: no process for step {len(killer.killed) + 1} was seen before the run ended")
    assert all(k["shards_before"] < N_SHARDS for k in killer.killed)
    return result, killer.killed


def describe(killed: list[dict]) -> str:
    return "; ".join(f"{k['title']} after {k['shards_before']} shards" for k in killed)


# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def reads_20k(tmp_path_factory) -> pathlib.Path:
    """The first 20,000 reads of SRR059298_subset_100k as one gzip file (one read task, 25 shards)."""
    src = shared(SRR_100K)
    path = tmp_path_factory.mktemp("faults-in") / "srr20k.fastq.gz"
    with gzip.open(src, "rb") as f:
        lines = [f.readline() for _ in range(4 * N_READS)]
    with gzip.open(path, "wb", compresslevel=1) as g:
        g.writelines(lines)
    return path


@pytest.fixture(scope="module")
def reference(reads_20k, tmp_path_factory) -> dict:
    """The uninterrupted run (in-process engine: its shards are byte-identical to Ray's)."""
    out = tmp_path_factory.mktemp("faults-ref") / "out"
    r = run([str(reads_20k)], out, CONFIG, engine="local")
    m = r.manifest
    assert len(m["shards"]) == N_SHARDS and m["reads"]["output"] == N_READS
    return {"sha256": [s["sha256"] for s in m["shards"]], "reads": m["reads"], "n": N_READS}


@pytest.fixture(scope="module")
def ray_session():
    """One Ray for the module's in-process runs, with the smallest object store Ray accepts."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.setenv("RAY_BACKEND_LOG_LEVEL", "fatal")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 object_store_memory=OBJECT_STORE)
        me = psutil.Process()
        try:
            yield
        finally:
            children = me.children(recursive=True)
            ray.shutdown()
            gone, alive = psutil.wait_procs(children, timeout=10)
            kill_ids(alive)


def test_fault_inputs_are_what_the_tests_assume(reads_20k):
    # Cheap guard for the constants above (no Ray): one gzip unit cut into N_SHARDS shards.
    p = plan([str(reads_20k)], CONFIG)
    assert p["reads"] == N_READS and len(p["shards"]) == N_SHARDS and len(p["units"]) == 1


# ------------------------------------------------------------------------------------ driver interrupted

def _summary_counts(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"shards\s+(\d+) \((\d+) written, (\d+) already done\)", stdout)
    assert m, f"no shard counts in the summary:\n{stdout}"
    return int(m[1]), int(m[2]), int(m[3])


def test_sigint_stops_the_driver_and_a_rerun_resumes_to_identical_output(reads_20k, reference, tmp_path, capsys):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kmerx", "embed", str(reads_20k), "-o", str(out),
           "--set", f"tokenizer.buckets={CONFIG['tokenizer']['buckets']}",
           "--set", f"output.shard_bytes={CONFIG['output']['shard_bytes']}"]
    src = str(pathlib.Path(kmerx.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # its own Ray, not the module's
    env.update(PYTHONPATH=os.pathsep.join([src, env.get("PYTHONPATH", "")]), RAY_AUTH_MODE="disabled")
    seen: dict[int, psutil.Process] = {}  # every process the driver started (to check none outlives it)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        driver = psutil.Process(proc.pid)
        deadline = time.monotonic() + RUN_TIMEOUT
        done_at_signal = 0
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                for p in driver.children(recursive=True):
                    seen.setdefault(p.pid, p)
            done_at_signal = len(parts(out)) if out.is_dir() else 0
            if done_at_signal:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the driver exited before any shard was written:\n{proc.communicate()[1]}"
        assert done_at_signal, f"no shard within {RUN_TIMEOUT} s"
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the driver and its process group (gcs, raylet)
        t0 = time.monotonic()
        try:
            _, stderr = proc.communicate(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver did not exit within {EXIT_TIMEOUT} s of SIGINT")
        exit_s = time.monotonic() - t0
        assert proc.returncode != 0, f"exit {proc.returncode} after SIGINT ({exit_s:.1f} s):\n{stderr}"
        assert "Traceback" not in stderr, f"a traceback after SIGINT (the CLI prints one line):\n{stderr}"
        assert not (out / manifest_mod.NAME).exists(), "an interrupted run wrote manifest.json"
        interrupted = len(parts(out))
        assert interrupted < N_SHARDS, "the run had finished every shard before SIGINT landed (test too small?)"
        # The driver's Ray (gcs, raylet, workers) must not outlive it.
        _, alive = psutil.wait_procs(list(seen.values()), timeout=15)
        assert not alive, f"still running 15 s after the driver exited: {[(p.pid, p.name()) for p in alive]}"

        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                               start_new_session=True)
        assert rerun.returncode == 0, rerun.stderr
        total, written, skipped = _summary_counts(rerun.stdout)
        assert total == N_SHARDS and written + skipped == total
        assert 1 <= skipped and written < total, f"the re-run did not resume: {written} written, {skipped} done"
        check_output(out, reference)
        with capsys.disabled():
            print(f"\n  SIGINT after {done_at_signal} shards: exit {proc.returncode} in {exit_s:.1f} s with "
                  f"{interrupted}/{N_SHARDS} shards; re-run: {written} written, {skipped} already done")
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        kill_ids(seen.values())


# ------------------------------------------------------------------------------------- workers killed

def test_killed_read_and_prepare_tasks_are_redone_without_loss_or_duplicates(ray_session, reads_20k, reference,
                                                                             tmp_path, capsys):
    # The read task (a streaming generator yielding one token row per shard) is killed mid-stream as soon
    # as it runs, then again (the retry) once a shard is on disk: both must be redone, nothing doubled.
    out = tmp_path / "out"
    steps = [(is_read_task, 0), (is_read_task, 1)]
    result, killed = run_with_kills([str(reads_20k)], out, CONFIG, steps)
    with capsys.disabled():
        print(f"\n  killed {describe(killed)}; run {result.seconds:.0f} s")
    check_output(out, reference)
    assert result.shards_written == N_SHARDS and result.shards_skipped == 0


def test_killed_embedding_actors_are_replaced_without_loss_or_duplicates(ray_session, reads_20k, reference,
                                                                         tmp_path, capsys):
    # Two kills: an actor once a shard is written, then an actor (maybe the restarted one) a little later.
    out = tmp_path / "out"
    result, killed = run_with_kills([str(reads_20k)], out, CONFIG, [(is_embed_actor, 1), (is_embed_actor, 3)])
    with capsys.disabled():
        print(f"\n  killed {describe(killed)}; run {result.seconds:.0f} s")
    check_output(out, reference)
    assert result.shards_written == N_SHARDS and result.shards_skipped == 0


# ------------------------------------------------------------------------------------------- memory

class MemorySampler(threading.Thread):
    """Peak summed PSS and RSS of this process and all its descendants (the Ray cluster), every 0.2 s.
    PSS splits shared pages (the object store, the memory-mapped table) among their users; RSS
    counts them once per process."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_pss = self.peak_rss = self.samples = 0
        self.at_peak: list[tuple[int, str]] = []  # (pss, name) of each process at the peak
        self.me = psutil.Process()

    def sample(self) -> None:
        pss = rss = 0
        each = []
        for p in [self.me, *self.me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                info = p.memory_full_info()
                pss += info.pss
                rss += info.rss
                each.append((info.pss, " ".join(p.cmdline())[:60] if p.pid != self.me.pid else "driver (pytest)"))
        if pss > self.peak_pss:
            self.peak_pss, self.at_peak = pss, sorted(each, reverse=True)
        self.peak_rss = max(self.peak_rss, rss)
        self.samples += 1

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(0.2)


def test_per_token_run_memory_is_bounded(ray_session, tmp_path, capsys):
    src = shared(SRR_100K)
    # Per token, float16, the default tokenizer/table and shards: 9 shards of ~120 MiB, ~1 GiB in all.
    config = {"embed": {"pool": "none", "out_dtype": "float16"}}
    out = tmp_path / "out"
    estimated = plan([str(src)], config)["estimated_bytes"]
    free = shutil.disk_usage(tmp_path).free
    if free < 3 * estimated:
        pytest.skip(f"needs {3 * estimated / 2**30:.1f} GiB free under {tmp_path}, has {free / 2**30:.1f}")
    sampler = MemorySampler()
    sampler.sample()
    baseline = sampler.peak_pss
    sampler.start()
    try:
        try:
            result = run_bounded([str(src)], out, config)
        finally:
            sampler.stop.set()
            sampler.join(5)
        m = result.manifest
        assert m["reads"]["input"] == m["reads"]["output"] == 100_000
        ri = np.concatenate([pq.read_table(p, columns=["read_index"]).column(0).to_numpy() for p in parts(out)])
        assert np.array_equal(ri, np.arange(100_000))
        assert manifest_mod.verify(out, m) == []
        out_bytes = sum(s["bytes"] for s in m["shards"])
        in_bytes = os.path.getsize(src)
        with capsys.disabled():
            print(f"\n  per-token run: {len(m['shards'])} shards, {out_bytes / 2**20:.0f} MiB out / "
                  f"{in_bytes / 2**20:.1f} MiB in = {out_bytes / in_bytes:.0f}x, {result.seconds:.0f} s; "
                  f"peak PSS {sampler.peak_pss / 2**20:.0f} MiB (baseline {baseline / 2**20:.0f}), "
                  f"peak RSS sum {sampler.peak_rss / 2**20:.0f} MiB, {sampler.samples} samples; at the peak: "
                  + ", ".join(f"{name.split(' ')[0]} {pss / 2**20:.0f}" for pss, name in sampler.at_peak[:4]))
        assert sampler.samples >= 5
        assert sampler.peak_pss < MEMORY_BOUND, f"peak PSS {sampler.peak_pss / 2**30:.2f} GiB"
    finally:
        shutil.rmtree(out, ignore_errors=True)
