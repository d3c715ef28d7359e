"""The pipeline on Ray Data: a FASTA/FASTQ datasource whose read tasks (one per unit) read, clean and
tokenize, and embedding + shard writing in an ActorPoolStrategy pool whose actors open the table once."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import ray
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from kmerx.pipeline.config import PipelineConfig
from kmerx.pipeline.planning import Shard, Unit
from kmerx.pipeline.stages import Embedder, prepared_shards


@contextlib.contextmanager
def session(address: str | None, num_cpus: int | None = None) -> Iterator[int | None]:
    """Ray for one run: an initialised Ray is used as it is; ``address`` (or ``RAY_ADDRESS``) joins an
    existing cluster; otherwise a local Ray is started with this machine's resources and shut down after.
    Yields the number of cores of the local Ray it started, else None."""
    if ray.is_initialized():
        yield None
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Ray Data ships its UDFs' constructor arguments through the object store, which makes the core
    # worker log an error-level note for every restartable actor; real errors still raise.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    kw: dict[str, Any] = dict(logging_level="ERROR", log_to_driver=False, include_dashboard=False)
    address = address or os.environ.get("RAY_ADDRESS") or None
    cores = None if address else len(os.sched_getaffinity(0)) or 1
    try:
        if cores is None:
            ray.init(address=address, **kw)
        else:
            # Twice the cores as logical CPUs: the read tasks and the embedding actors then all get
            # a slot on a small machine (an actor pool holding every CPU would starve the reads); the
            # kernels' threads share the real cores.
            ray.init(num_cpus=num_cpus or 2 * cores, **kw)
    except Exception as e:  # Ray raises bare Exceptions for a node that does not come up
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ConnectionError(f"could not start or reach {where}: {e} (kmerx embed --local runs without Ray)") from e
    try:
        yield cores
    finally:
        ray.shutdown()


def default_workers(cores: int | None) -> int:
    """Embedding actors when none are asked for: one per two cores of a local Ray (each runs two kernel
    threads; every actor is a process whose start-up, mostly importing Ray Data, costs seconds of CPU),
    one per two logical CPUs of a cluster."""
    return max(1, (cores if cores else int(ray.cluster_resources().get("CPU", 2))) // 2)


def _unwrap(e: BaseException) -> BaseException:
    """The user-facing exception inside Ray's wrappers (a reader's FastxFormatError, a ValueError...)."""
    seen = 0
    while seen < 8 and isinstance(e, (ray.exceptions.RayTaskError, ray.exceptions.RayError)):
        cause = getattr(e, "cause", None) or e.__cause__
        if cause is None or cause is e:
            break
        e, seen = cause, seen + 1
    return e


class FastxDatasource(Datasource):
    """Reads a run's units: a plain file's byte range, a compressed file or a mate pair per read task,
    yielding each shard's token row (read, cleaned and tokenized in the task: the reads themselves never
    cross the object store, only their token lists; see :mod:`kmerx.pipeline.stages`)."""

    def __init__(self, units: list[Unit], shards: list[Shard], config: PipelineConfig, skip: frozenset[int]) -> None:
        self.units = [u for u in units if any(s.unit == u.index and s.index not in skip for s in shards)]
        self.shards, self.config, self.skip = shards, config, skip

    def estimate_inmemory_data_size(self) -> int | None:
        return sum(os.path.getsize(p) for u in self.units for p in u.paths)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[ReadTask]:
        # One task per unit whatever ``parallelism`` asks: the plan, not the cluster, fixes the shards.
        tasks = []
        for u in self.units:
            n = sum(1 for s in self.shards if s.unit == u.index and s.index not in self.skip)
            size = sum(os.path.getsize(p) for p in u.paths) if u.byte_range is None else u.byte_range[1] - u.byte_range[0]
            meta = BlockMetadata(num_rows=n, size_bytes=size, input_files=list(u.paths), exec_stats=None)
            tasks.append(ReadTask(_reader(u, self.shards, self.config, self.skip), meta))
        return tasks


def _reader(unit: Unit, shards: list[Shard], config: PipelineConfig, skip: frozenset[int]) -> Callable[[], Iterator[pa.Table]]:
    mine = [s for s in shards if s.unit == unit.index]
    return lambda: prepared_shards(unit, mine, config, skip)


class _EmbedActor:
    """Opens the table on its first batch (the driver may still be writing it): a failure there fails
    that batch with its own message (a failing constructor only shows as a dead actor)."""

    def __init__(self, config: dict[str, Any], threads: int, **kw: Any) -> None:
        import kmerx

        kmerx.set_num_threads(max(1, threads))
        self.config, self.kw = config, kw
        self.embedder: Embedder | None = None

    def __call__(self, table: pa.Table) -> pa.Table:
        if self.embedder is None:
            self.embedder = Embedder(PipelineConfig.from_dict(self.config), **self.kw)
        return self.embedder(table)


def execute(units: list[Unit], shards: list[Shard], config: PipelineConfig, skip: frozenset[int], *,
            workers: int, gpus: int, embed_kwargs: dict[str, Any], on_receipt: Callable[[dict[str, Any]], None]) -> None:
    """Run the dataset and call ``on_receipt`` for each shard as it completes."""
    ctx = ray.data.DataContext.get_current()
    saved = ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.target_max_block_size
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    # Small blocks: the read task hands each shard on as soon as it is read (with the default 128 MiB,
    # a unit's shards reach the next stage together when the read ends). A shard row is never split.
    ctx.target_max_block_size = 1 << 20
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    try:
        _execute(units, shards, config, skip, workers, gpus, embed_kwargs, on_receipt)
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.target_max_block_size = saved


def _execute(units, shards, config, skip, workers, gpus, embed_kwargs, on_receipt) -> None:
    cfg = config.to_dict()
    cpus = max(1.0, float(ray.cluster_resources().get("CPU", 1)))
    # Actors take at most half the CPUs, so the read tasks always find one.
    actor_cpus = 0.0 if gpus else min(1.0, cpus / (2 * workers))
    # Kernel threads per actor: twice its CPU share, so an actor uses a core a neighbour leaves idle
    # while it waits for input (measured faster than one thread each on 2 cores).
    threads = 1 if gpus else max(1, round(2 * actor_cpus))
    # Ray Data retries tasks and restarts actors after a worker dies (max_retries / max_restarts = -1);
    # a redone shard is rewritten with the same bytes under the same name.
    ds = ray.data.read_datasource(FastxDatasource(units, shards, config, skip), override_num_blocks=max(1, len(units)))
    # One shard row per call (batch_size=1), so shards spread over the actors whatever the blocks; a
    # batch size also keeps Ray Data from fusing the read into the actors, so reading and embedding
    # run side by side.
    ds = ds.map_batches(
        _EmbedActor, fn_constructor_args=(cfg, threads), fn_constructor_kwargs={**embed_kwargs, "device": bool(gpus)},
        batch_size=1, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=gpus or workers),
        num_cpus=actor_cpus or None, num_gpus=1 if gpus else None)
    try:
        with warnings.catch_warnings():
            # A pool of fixed size is what is wanted even when the plan has fewer read tasks than actors
            # (one compressed file still gives many shards).
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
            batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow"))
            try:
                for batch in batches:
                    for receipt in batch.to_pylist():
                        on_receipt(receipt)
            finally:
                # Stop Ray Data's threads before the session shuts Ray down (Ctrl-C, errors).
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
    except ray.exceptions.RayError as e:
        raise _unwrap(e) from None
