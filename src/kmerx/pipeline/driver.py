"""``kmerx.pipeline.run``: FASTA/FASTQ -> embedding shards + manifest, resumable.

The driver plans (counts reads per unit, cuts shards), records the plan in ``OUT/_kmerx/plan.json``,
runs the stages on Ray (or in this process) and writes ``manifest.json`` last. Workers write each
shard to a temp name, rename it, then drop a receipt in ``OUT/_kmerx/done``; a re-run of the same
config and inputs skips shards with receipts, and any other config is refused.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import glob
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from kmerx._version import __version__
from kmerx.formats import atomic_path, manifest
from kmerx.formats.shards import SUFFIX, schema, write_virtual_hdf5
from kmerx.pipeline.config import PipelineConfig
from kmerx.pipeline.planning import (
    Shard,
    Unit,
    count_unit,
    describe,
    normalize_inputs,
    shards_of,
    units_of,
    with_counts,
)
from kmerx.pipeline.stages import FAILED, WORK, Embedder, prepared_shards, receipt_path

#: Virtual float32/float16 tables up to this size are written out once per run and memory-mapped by every
#: worker (the same bits; rows then cost a memory read instead of a random-number draw per value).
MATERIALIZE_BYTES = 1 << 30


class OutputConflictError(ValueError):
    """OUT holds a different run (another config or other inputs), or files that are not a kmerx run."""


@dataclasses.dataclass
class RunResult:
    out: str
    manifest: dict[str, Any]
    seconds: float
    shards_written: int
    shards_skipped: int
    already_complete: bool = False

    def summary(self) -> str:
        m = self.manifest
        reads = m["reads"]
        in_bytes = sum(i["size"] for g in m["inputs"] for i in g)
        out_bytes = sum(s["bytes"] for s in m["shards"])
        rate = reads["input"] / self.seconds if self.seconds else 0.0
        rows = [
            ("output", os.path.join(self.out, manifest.NAME)),
            ("shards", f"{len(m['shards'])} ({self.shards_written} written, {self.shards_skipped} already done)"),
            ("reads", f"{reads['input']:,} in, {reads['output']:,} out, {reads['tokens']:,} tokens"),
            ("bytes", f"{manifest._size(in_bytes)} in, {manifest._size(out_bytes)} out"),
            ("time", "nothing to do: already complete" if self.already_complete else
             f"{self.seconds:.1f} s, {rate:,.0f} reads/s, {in_bytes / 1e6 / max(self.seconds, 1e-9):.1f} MB/s in"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _tokenizer(cfg: PipelineConfig):
    from kmerx.tokenizers import Tokenizer

    c = cfg.tokenizer
    if c.scheme == "vocab" or (c.scheme == "lsh" and c.lsh == "projection" and c.hyperplanes == "svd"):
        raise ValueError(f"tokenizer scheme {c.scheme!r} needs fitting on data; the pipeline takes tokenizers "
                         "defined by their config alone (hashed, lsh with random hyperplanes, direct, presets)")
    return Tokenizer(c)


def _bytes_per_read(cfg: PipelineConfig, dim: int, reads: int, bases: int, mates: int) -> int:
    per_vector = dim * (2 if cfg.embed.out_dtype == "float16" else 4)
    if not cfg.embed.per_token:
        return per_vector + 32
    tokens = max(1.0, bases / max(reads, 1) - mates * (cfg.tokenizer.k - 1))
    return int(tokens * (per_vector + 4)) + 32


class _Progress:
    """Reads/s, MB/s out, shards done and ETA on stderr (tqdm), when asked for."""

    def __init__(self, enabled: bool, total_reads: int, total_shards: int, done_reads: int, done_shards: int) -> None:
        self.bar = None
        self.shards, self.total_shards, self.out_bytes = done_shards, total_shards, 0
        self.t0 = time.perf_counter()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total_reads, initial=done_reads, unit="reads", unit_scale=True, desc="embed",
                            file=sys.stderr, dynamic_ncols=True)
            self._postfix()

    def _postfix(self) -> None:
        mbs = self.out_bytes / 1e6 / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"shards {self.shards}/{self.total_shards}, {mbs:.1f} MB/s out")

    def update(self, receipt: dict[str, Any]) -> None:
        self.shards += 1
        self.out_bytes += receipt["bytes"]
        if self.bar is not None:
            self.bar.update(receipt["reads_in"])
            self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _state(out: str, run_digest: str, cfg: PipelineConfig) -> tuple[dict | None, dict | None]:
    """(complete manifest, saved plan) of OUT for this run; raises OutputConflictError for another run."""
    def refuse(found: dict[str, Any], what: str) -> None:
        changes = cfg.diff(found.get("config", {}))
        detail = ("; config changes: " + ", ".join(changes)) if changes else "; the inputs differ"
        raise OutputConflictError(f"{out} holds {what} of a different run (run {found.get('run_digest')}, this run "
                                  f"{run_digest}){detail}. Use another output directory, or delete it to start over.")

    mpath = os.path.join(out, manifest.NAME)
    if os.path.exists(mpath):
        m = manifest.read(out)
        if m.get("run_digest") != run_digest:
            refuse(m, "the output")
        return m, None
    ppath = os.path.join(out, WORK, "plan.json")
    if os.path.exists(ppath):
        with open(ppath) as f:
            plan = json.load(f)
        if plan.get("run_digest") != run_digest:
            refuse(plan, "an unfinished output")
        return None, plan
    if os.path.isdir(out) and any(not n.startswith(".") for n in os.listdir(out)):
        raise OutputConflictError(f"{out} is not empty and holds no kmerx run; give a new or empty output directory")
    return None, None


def _table_source(cfg: PipelineConfig, rows: int, work: str) -> tuple[dict[str, Any], Callable[[], None] | None]:
    """How workers open the table (a file path, or the virtual table's config), and the function that
    writes the file first when the virtual table is to be materialised (None when nothing is to write)."""
    from kmerx.tables.config import row_bytes

    if cfg.embed.table_path:
        return {"path": os.path.abspath(cfg.embed.table_path)}, None
    tcfg = cfg.table.replace(rows=rows)
    if tcfg.dtype not in ("float32", "float16") or rows * row_bytes(tcfg.dtype, tcfg.dim) > MATERIALIZE_BYTES:
        return {"config": tcfg.to_dict()}, None
    path = os.path.join(work, "table.npy")
    if os.path.exists(path):
        return {"path": path}, None
    with contextlib.suppress(FileNotFoundError):  # an earlier run's failure
        os.remove(path + FAILED)
    return {"path": path, "wait": True}, functools.partial(write_virtual_table, tcfg.to_dict(), path)


@contextlib.contextmanager
def _in_background(fn: Callable[[], None] | None) -> Iterator[concurrent.futures.Future | None]:
    """``fn()`` in a thread for the duration of the block (joined at its end); None when there is no fn."""
    if fn is None:
        yield None
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kmerx-table") as pool:
        yield pool.submit(fn)


def write_virtual_table(table_config: dict[str, Any], path: str, step: int = 1 << 16) -> None:
    """The rows of a float32/float16 virtual table as a ``.npy`` file (atomically): the same bits as the
    virtual table draws, so a memory-mapped row read replaces a random-number draw per value."""
    from kmerx import _core
    from kmerx.tables.config import DTYPES, INITS, TableConfig

    t = TableConfig.from_dict(table_config)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(t.dtype)), "fortran_order": False, "shape": (t.rows, t.dim)}
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for a in range(0, t.rows, step):
                ids = np.arange(a, min(t.rows, a + step), dtype=np.int64)
                f.write(_core.virtual_rows(ids, t.dim, DTYPES[t.dtype], t.seed, INITS[t.init], t.scale))
    except BaseException as e:  # workers waiting for the file stop on this note
        with contextlib.suppress(OSError), open(path + FAILED, "w") as f:
            f.write(f"{type(e).__name__}: {e}")
        raise


def _table_dim(source: dict[str, Any], rows: int) -> int:
    if "config" in source:
        return int(source["config"]["dim"])
    from kmerx.pipeline.stages import open_table

    table = open_table(source)
    if table.rows < rows:
        raise ValueError(f"the table {source['path']} has {table.rows} rows, fewer than the tokenizer's "
                         f"{rows} ids (embed.table_path)")
    return table.dim


def _identity(items: list[tuple[str, ...]], cfg: PipelineConfig) -> tuple[str, list[list[dict[str, Any]]]]:
    """(run digest, described inputs): the config and the inputs' sizes and fingerprints (not their paths,
    so moving the inputs keeps the identity)."""
    described = [[describe(p) for p in group] for group in items]
    identity = {"config": cfg.to_dict(), "inputs": [[{k: d[k] for k in ("size", "fingerprint")} for d in g]
                                                    for g in described]}
    return _digest(identity), described


def plan(inputs: Any, config: Any = None, *, paired: bool = False) -> dict[str, Any]:
    """The run's plan without running it: units, shards, reads, estimated output bytes. Counting parses
    every input once (threads over read units), so a malformed file fails here, before any output."""
    cfg = PipelineConfig.coerce(config)
    items = normalize_inputs(inputs, paired)
    tok = _tokenizer(cfg)
    run_digest, described = _identity(items, cfg)
    units = units_of(items, cfg.output.split_bytes)
    counts = _count(units, cfg)
    units = with_counts(units, counts)
    reads = sum(u.reads for u in units)
    bases = sum(u.bases for u in units)
    mates = max(len(g) for g in items)
    dim = cfg.table.dim
    if cfg.embed.table_path:
        dim = _table_dim({"path": cfg.embed.table_path}, 0)
    per_read = _bytes_per_read(cfg, dim, reads, bases, mates)
    reads_per_shard = max(1, cfg.output.shard_bytes // per_read)
    row_group_rows = max(1, min(reads_per_shard, cfg.output.row_group_bytes // per_read))
    shards = shards_of(units, reads_per_shard)
    return {
        "run_digest": run_digest, "config": cfg.to_dict(), "inputs": described,
        "units": [dataclasses.asdict(u) for u in units], "shards": [dataclasses.asdict(s) for s in shards],
        "reads": reads, "bases": bases, "reads_per_shard": reads_per_shard, "row_group_rows": row_group_rows,
        "dim": dim, "vocab_size": tok.vocab_size, "estimated_bytes": reads * per_read,
    }


def _count(units: list[Unit], cfg: PipelineConfig) -> list[tuple[int, int]]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(len(units), os.cpu_count() or 1))) as pool:
        return list(pool.map(lambda u: count_unit(u, cfg.read), units))


def _load_plan(p: dict[str, Any]) -> tuple[list[Unit], list[Shard]]:
    units = [Unit(**{**u, "paths": tuple(u["paths"]), "byte_range": None if u["byte_range"] is None
                     else tuple(u["byte_range"])}) for u in p["units"]]
    return units, [Shard(**s) for s in p["shards"]]


def _receipts(out: str, shards: list[Shard], fmt: str) -> dict[int, dict[str, Any]]:
    """Receipts of shards that are complete on disk."""
    done = {}
    for s in shards:
        rp = receipt_path(out, s.index)
        final = os.path.join(out, s.name + SUFFIX[fmt])
        if os.path.exists(rp) and os.path.exists(final):
            with open(rp) as f:
                r = json.load(f)
            if r.get("bytes") == os.path.getsize(final):
                done[s.index] = r
    return done


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"kmerx": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "pyarrow", "ray", "h5py"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def run(inputs: Any, out: str | os.PathLike, config: Any = None, *, paired: bool = False, engine: str = "ray",
        address: str | None = None, workers: int | None = None, gpus: int = 0, progress: bool = False) -> RunResult:
    """Embed the reads of ``inputs`` into shards under ``out`` and write ``out/manifest.json`` last.

    inputs    a path, a list of paths, (r1, r2) tuples for mate pairs, or paths paired in order (``paired``).
    config    a :class:`PipelineConfig`, a dict of sections, a .toml/.json path, or None (the defaults:
              canonical k=31 hashed into 2^20 buckets, a virtual 128-wide float16 table, mean-pooled
              float32 vectors in Parquet).
    engine    "ray" (default: Ray Data; a local Ray is started unless ``address``/``RAY_ADDRESS`` names a
              cluster or Ray is already initialised) or "local" (the same stages in this process).
    workers   embedding actors (default: one per two cores of a local Ray, one per two logical CPUs of a
              cluster; each actor runs two kernel threads); ``gpus``: GPU actors using the CUDA kernels.

    Re-running the same inputs and config resumes (finished shards are kept); another config or other
    inputs into the same ``out`` raise :class:`OutputConflictError`. Malformed input raises the reader's
    ``FastxFormatError`` before any shard is written. Returns a :class:`RunResult`.
    """
    if engine not in ("ray", "local"):
        raise ValueError(f"engine must be 'ray' or 'local', got {engine!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise ValueError(f"gpus must be an int >= 0, got {gpus!r}")
    cfg = PipelineConfig.coerce(config)
    out = os.path.abspath(os.fspath(out))
    t0 = time.perf_counter()
    items = normalize_inputs(inputs, paired)
    _tokenizer(cfg)
    m, saved = _state(out, _identity(items, cfg)[0], cfg)
    if m is not None:
        return RunResult(out, m, time.perf_counter() - t0, 0, len(m["shards"]), already_complete=True)
    work = os.path.join(out, WORK)
    # Plan (and so find malformed input) before Ray starts: a bad file costs no cluster time.
    if saved is None:
        saved = plan(items, cfg)
        os.makedirs(work, exist_ok=True)
        with atomic_path(os.path.join(work, "plan.json")) as tmp, open(tmp, "w") as f:
            json.dump(saved, f, sort_keys=True)
    units, shards = _load_plan(saved)
    done = _receipts(out, shards, cfg.output.format)
    skipped = len(done)
    skip = frozenset(done)
    if len(skip) < len(shards):
        source, build = _table_source(cfg, saved["vocab_size"], work)
        metadata = {"kmerx_version": __version__, "run_digest": saved["run_digest"], "dim": saved["dim"],
                    "dtype": cfg.embed.out_dtype, "pool": cfg.embed.pool}
        embed_kwargs = dict(out=out, table_source=source, row_group_rows=saved["row_group_rows"], metadata=metadata)
        bar = _Progress(progress, saved["reads"], len(shards), sum(r["reads_in"] for r in done.values()), skipped)

        def on_receipt(r: dict[str, Any]) -> None:
            done[r["shard"]] = r
            bar.update(r)

        try:
            if engine == "ray":
                from kmerx.pipeline import ray_engine

                # The table is written by a thread of this process while Ray starts (a local Ray, the actors,
                # the read tasks); the actors wait for the file (see stages.open_table).
                with _in_background(build) as building, ray_engine.session(address) as cores:
                    try:
                        ray_engine.execute(units, shards, cfg, skip, workers=workers or ray_engine.default_workers(cores),
                                           gpus=gpus, embed_kwargs=embed_kwargs, on_receipt=on_receipt)
                    except Exception:
                        if building is not None and building.done() and building.exception() is not None:
                            raise building.exception() from None  # the table's own error, not the actors' report
                        raise
                    if building is not None:
                        building.result()
            else:
                if build is not None:
                    build()
                _execute_local(units, shards, cfg, skip, embed_kwargs, on_receipt)
        finally:
            bar.close()
    missing = [s.name for s in shards if s.index not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} shard(s) missing after the run ({', '.join(missing[:5])}...); re-run to finish")
    m = _finish(out, cfg, saved, shards, done)
    return RunResult(out, m, time.perf_counter() - t0, len(shards) - skipped, skipped)


def _execute_local(units, shards, cfg, skip, embed_kwargs, on_receipt) -> None:
    embedder = Embedder(cfg, **embed_kwargs)
    for u in units:
        for row in prepared_shards(u, shards, cfg, skip):
            for r in embedder(row).to_pylist():
                on_receipt(r)


def _finish(out: str, cfg: PipelineConfig, saved: dict[str, Any], shards: list[Shard], done: dict[int, dict]) -> dict:
    fmt = cfg.output.format
    records = []
    for s in shards:
        r = done[s.index]
        records.append({"path": r["path"], "rows": r["rows"], "tokens": r["tokens"], "bytes": r["bytes"],
                        "sha256": r["sha256"], "reads_in": r["reads_in"], "first_read_index": s.first_read,
                        "last_read_index": s.first_read + s.reads - 1})
    per_token = cfg.embed.per_token
    dim = saved["dim"]
    m = {
        "kind": manifest.KIND, "version": 1, "kmerx_version": __version__, "versions": _versions(),
        "run_digest": saved["run_digest"], "config_digest": cfg.digest(), "config": cfg.to_dict(),
        "format": fmt, "row_group_rows": saved["row_group_rows"], "reads_per_shard": saved["reads_per_shard"],
        "embedding": {"mode": "per_token" if per_token else "pooled", "pool": cfg.embed.pool, "dim": dim,
                      "dtype": cfg.embed.out_dtype, "vocab_size": saved["vocab_size"]},
        "schema": str(schema(dim, cfg.embed.out_dtype, per_token)),
        "columns": ["read_index", "name", "n_tokens", "embedding"],
        "reads": {"input": saved["reads"], "output": sum(r["rows"] for r in records),
                  "tokens": sum(r["tokens"] for r in records)},
        "inputs": saved["inputs"], "shards": records,
    }
    if fmt == "hdf5":
        write_virtual_hdf5(os.path.join(out, "all.h5"), records, dim=dim, dtype=cfg.embed.out_dtype,
                           attrs={"per_token": int(per_token), "dim": dim, "run_digest": saved["run_digest"]})
        m["virtual_dataset"] = "all.h5"
    manifest.write(out, m)
    shutil.rmtree(os.path.join(out, WORK), ignore_errors=True)
    for stale in glob.glob(os.path.join(out, ".*.tmp-*")):  # left by killed workers
        with contextlib.suppress(OSError):
            os.remove(stale)
    return m
