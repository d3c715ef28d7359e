"""The pipeline's stages as plain functions on Arrow tables, shared by the Ray and in-process engines.

The unit of work is a *shard row*: one row per shard whose ``reads`` (then ``tokens``) column holds
the shard's whole ReadBatch (then token lists) as a ``large_list<struct>``. Ray may coalesce rows into
blocks but never splits a row, so every shard reaches one embedding call whole and is written by it,
whatever the block sizes and the number of workers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from kmerx.clean import clean
from kmerx.formats import atomic_path
from kmerx.formats.shards import SUFFIX, ShardWriter
from kmerx.pipeline.config import PipelineConfig
from kmerx.pipeline.planning import Shard, Unit, read_unit, shard_name

WORK = "_kmerx"  # OUT/_kmerx: the plan, receipts of finished shards and the materialised table
FAILED = ".failed"  # beside the table file: the writer's error, for workers waiting for the file


def _nest(batch: pa.RecordBatch | pa.Table) -> pa.LargeListArray:
    """One list value holding every row of ``batch`` as a struct."""
    if isinstance(batch, pa.Table):
        batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else pa.RecordBatch.from_pylist([], batch.schema)
    struct = pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema))
    return pa.LargeListArray.from_arrays(pa.array([0, len(struct)], pa.int64()), struct)


def _unnest(value: pa.Array) -> pa.RecordBatch:
    return pa.RecordBatch.from_struct_array(value)


def _rows(table: pa.Table, column: str) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(shard index, nested batch) of each row of a block of shard rows."""
    shards = table.column("shard").to_numpy()
    col = table.column(column)
    for chunk_start, chunk in _chunks(col):
        offsets = chunk.offsets.to_numpy()
        for j in range(len(chunk)):
            yield int(shards[chunk_start + j]), _unnest(chunk.values.slice(offsets[j], offsets[j + 1] - offsets[j]))


def _chunks(col: pa.ChunkedArray) -> Iterator[tuple[int, pa.LargeListArray]]:
    start = 0
    for chunk in col.chunks:
        yield start, chunk
        start += len(chunk)


def _interleave(a: pa.RecordBatch, b: pa.RecordBatch) -> pa.RecordBatch:
    """Mates side by side: a0 b0 a1 b1 ... (both carry the pair's read_index)."""
    n = a.num_rows
    order = np.empty(2 * n, dtype=np.int64)
    order[0::2] = np.arange(n)
    order[1::2] = np.arange(n, 2 * n)
    return pa.Table.from_batches([a, b]).take(order).combine_chunks().to_batches()[0] if n else a


def read_shards(unit: Unit, shards: list[Shard], config: PipelineConfig, skip: frozenset[int] = frozenset()
                ) -> Iterator[pa.Table]:
    """Stream a unit and yield one shard row per shard not in ``skip``: ``{shard, reads}``, where
    ``reads`` is the shard's ReadBatch (mates interleaved for pairs)."""
    mine = [s for s in shards if s.unit == unit.index]
    if not mine or all(s.index in skip for s in mine):
        return
    it = iter(mine)
    shard = next(it)
    pending: list[pa.RecordBatch] = []
    have = 0
    for b in read_unit(unit, config.read):
        batch = _interleave(*b) if isinstance(b, tuple) else b
        per_read = 2 if isinstance(b, tuple) else 1
        while batch.num_rows:
            take = min(batch.num_rows, (shard.reads - have) * per_read)
            pending.append(batch.slice(0, take))
            have += take // per_read
            batch = batch.slice(take)
            if have == shard.reads:
                if shard.index not in skip:
                    yield pa.table({"shard": pa.array([shard.index], pa.int64()),
                                    "first_read": pa.array([shard.first_read], pa.int64()),
                                    "reads": _nest(pa.Table.from_batches(pending))})
                pending, have = [], 0
                shard = next(it, None)
                if shard is None:
                    break
        if shard is None:
            break
    if shard is not None:
        raise RuntimeError(f"{unit.paths}: fewer reads than counted when planning (the input changed during the run?)")


def prepared_shards(unit: Unit, shards: list[Shard], config: PipelineConfig, skip: frozenset[int] = frozenset()
                    ) -> Iterator[pa.Table]:
    """:func:`read_shards` through a :class:`Preparer`: the token rows of a unit's shards, one at a time."""
    prepare = Preparer(config)
    for row in read_shards(unit, shards, config, skip):
        yield prepare(row)


class Preparer:
    """clean -> tokenize: shard rows ``{shard, first_read, reads}`` -> ``{shard, first_read, reads_in, tokens}``, where ``tokens``
    holds per read (rows sharing a read_index merged: mates, pieces of a split read) ``read_index``,
    ``name``, ``ids`` and ``positions`` lists."""

    def __init__(self, config: PipelineConfig) -> None:
        from kmerx.tokenizers import Tokenizer

        self.config = config
        self.tokenizer = Tokenizer(config.tokenizer)

    def __call__(self, table: pa.Table) -> pa.Table:
        shards, reads_in, tokens = [], [], []
        for shard, batch in _rows(table, "reads"):
            ri = batch.column("read_index").to_numpy()
            reads_in.append(len(np.unique(ri)))
            shards.append(shard)
            tokens.append(_nest(self.tokens(batch)))
        return pa.table({"shard": pa.array(shards, pa.int64()), "first_read": table.column("first_read"),
                         "reads_in": pa.array(reads_in, pa.int64()),
                         "tokens": pa.concat_arrays(tokens) if tokens else _nest(self.tokens(None)).slice(0, 0)})

    def tokens(self, batch: pa.RecordBatch | None) -> pa.RecordBatch:
        cfg = self.config
        if batch is None or batch.num_rows == 0:
            empty_list = pa.array([], pa.large_list(pa.uint32()))
            return pa.RecordBatch.from_arrays(
                [pa.array([], pa.int64()), pa.array([], pa.string()), empty_list, pa.array([], pa.large_list(pa.int32()))],
                names=["read_index", "name", "ids", "positions"])
        batch = clean(batch, cfg.clean)
        sinusoidal = cfg.embed.pos_encoding != "none"
        enc = self.tokenizer.encode_batch(batch, add_special_tokens=cfg.embed.add_special_tokens,
                                          return_tensors="arrow", return_positions=sinusoidal)
        ids = enc["input_ids"]
        positions = enc["positions"] if sinusoidal else pa.nulls(len(ids), pa.large_list(pa.int32()))
        ri = batch.column("read_index").to_numpy()
        names = batch.column("name")
        starts = np.flatnonzero(np.r_[True, ri[1:] != ri[:-1]]) if len(ri) else np.zeros(0, np.int64)
        if len(starts) != len(ri):  # several rows per read: keep the first name, join the token lists
            bounds = np.r_[starts, len(ri)]
            ids = pa.LargeListArray.from_arrays(pa.array(ids.offsets.to_numpy()[bounds]), ids.values)
            if sinusoidal:
                positions = pa.LargeListArray.from_arrays(pa.array(positions.offsets.to_numpy()[bounds]), positions.values)
            else:
                positions = pa.nulls(len(starts), pa.large_list(pa.int32()))
            ri, names = ri[starts], names.take(pa.array(starts))
        return pa.RecordBatch.from_arrays([pa.array(ri, pa.int64()), names.cast(pa.string()), ids, positions],
                                          names=["read_index", "name", "ids", "positions"])


def open_table(source: dict[str, Any], poll: float = 0.05):
    """The embedding table a worker uses: ``{"path": path}`` (memory-mapped) or ``{"config": ...}`` (a
    virtual table). With ``"wait"``, the file is still being written (atomically, by the driver): wait
    for it, or for the note ``path + FAILED`` the writer leaves when it fails."""
    from kmerx.tables import EmbeddingTable

    if "path" not in source:
        return EmbeddingTable.from_config(source["config"])
    path = source["path"]
    while source.get("wait") and not os.path.exists(path):
        if os.path.exists(path + FAILED):
            with open(path + FAILED) as f:
                raise RuntimeError(f"the driver could not write the table {path}: {f.read()}")
        time.sleep(poll)
    return EmbeddingTable.from_file(path)


class Embedder:
    """Embeds shard rows ``{shard, first_read, reads_in, tokens}`` and writes each shard (temp name, then rename),
    then its receipt; returns the receipts ``{shard, path, rows, tokens, bytes, sha256, reads_in}``.
    The table is opened once per Embedder (once per Ray actor)."""

    def __init__(self, config: PipelineConfig, out: str, table_source: dict[str, Any], row_group_rows: int,
                 metadata: dict[str, Any], device: bool = False) -> None:
        self.config, self.out = config, out
        self.row_group_rows, self.metadata = row_group_rows, metadata
        self.table = open_table(table_source)
        self.device = device
        if device:
            from kmerx.tables.device import to_device

            # Dense tables are copied to the device whole; block-sparse ones get a device block cache.
            self.table = to_device(self.table, None if self.table.dense else self.table.config.cache_bytes)

    def __call__(self, table: pa.Table) -> pa.Table:
        receipts = []
        reads_in = table.column("reads_in").to_numpy()
        first_read = table.column("first_read").to_numpy()
        for i, (shard, batch) in enumerate(_rows(table, "tokens")):
            receipt = self.write_shard(shard, int(first_read[i]), batch)
            receipt["reads_in"] = int(reads_in[i])
            write_receipt(self.out, receipt)
            receipts.append(receipt)
        return pa.Table.from_pylist(receipts, schema=RECEIPT_SCHEMA)

    def write_shard(self, shard: int, first_read: int, batch: pa.RecordBatch) -> dict[str, Any]:
        cfg = self.config
        path = os.path.join(self.out, shard_name(shard) + SUFFIX[cfg.output.format])
        writer = ShardWriter(path, dim=self.metadata["dim"], dtype=cfg.embed.out_dtype, per_token=cfg.embed.per_token,
                             metadata={**self.metadata, "shard": shard, "first_read": first_read},
                             chunk_rows=self.row_group_rows)
        try:
            for start in range(0, max(batch.num_rows, 1), self.row_group_rows):
                group = batch.slice(start, self.row_group_rows)
                if group.num_rows == 0 and start:
                    break
                vectors, n_tokens = self.embed(group)
                writer.write(group.column("read_index").to_numpy(), group.column("name"), n_tokens, vectors)
            receipt = writer.close()
        except BaseException:
            writer.abort()
            raise
        receipt["shard"] = shard
        return receipt

    def embed(self, group: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
        from kmerx.embed import embed

        e = self.config.embed
        ids = group.column("ids")
        n_tokens = np.diff(ids.offsets.to_numpy()).astype(np.int32)
        positions = group.column("positions") if e.pos_encoding != "none" else None
        pool = None if e.per_token else e.pool
        if self.device:
            return self._embed_device(ids, positions, pool), n_tokens
        vectors = embed(self.table, ids, positions, pos_encoding=e.pos_encoding, pool=pool,
                        out_dtype=np.dtype(e.out_dtype), return_type="numpy")
        return vectors, n_tokens

    def _embed_device(self, ids: pa.Array, positions: pa.Array | None, pool: str | None) -> np.ndarray:
        import cupy as cp

        from kmerx.embed import _arrow_lists, embed

        e = self.config.embed
        flat, offsets, _ = _arrow_lists(ids, "ids")
        pos = None if positions is None else cp.asarray(_arrow_lists(positions, "positions")[0])
        out = embed(self.table, cp.asarray(flat), pos, offsets=cp.asarray(offsets), pos_encoding=e.pos_encoding,
                    pool=pool, out_dtype=np.dtype(e.out_dtype))
        return cp.asnumpy(out)


RECEIPT_SCHEMA = pa.schema([("shard", pa.int64()), ("path", pa.string()), ("rows", pa.int64()), ("tokens", pa.int64()),
                            ("bytes", pa.int64()), ("sha256", pa.string()), ("reads_in", pa.int64())])


def receipt_path(out: str, shard: int) -> str:
    return os.path.join(out, WORK, "done", shard_name(shard) + ".json")


def write_receipt(out: str, receipt: dict[str, Any]) -> None:
    path = receipt_path(out, receipt["shard"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(receipt, f, sort_keys=True)
