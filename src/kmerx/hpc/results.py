"""Solver results, written with the pipeline's conventions: one file per input shard (same name, same
rows, ``read_index`` first), each written atomically by the rank that holds the shard's first row after
the other ranks send it their rows of that shard; ``model.npz`` (centres, components...) and
``manifest.json`` last, by rank 0, once every shard is in place."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from kmerx.formats import atomic_path, sha256_file
from kmerx.hpc.parts import Block, Embeddings, span

NAME = "manifest.json"
KIND = "kmerx-hpc-result"
MODEL = "model.npz"


def read_manifest(result: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a result folder, or None when there is none (not written yet or interrupted)."""
    path = os.path.join(os.fspath(result), NAME)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        m = json.load(f)
    if m.get("kind") != KIND:
        raise ValueError(f"{path}: not a kmerx.hpc result manifest (kind {m.get('kind')!r})")
    return m


def _owner(first: int, total: int, size: int) -> int:
    """The rank whose rows include global row ``first`` (the last rank for an empty trailing shard)."""
    for r in range(size):
        lo, hi = span(total, size, r)
        if lo <= first < hi:
            return r
    return size - 1


def write_shards(result: str, emb: Embeddings, block: Block, columns: dict[str, np.ndarray], comm: Any,
                 fmt: str) -> list[dict[str, Any]]:
    """Write every shard's result columns (rows of this rank: ``block``) and return, on every rank, the
    records of all shards in manifest order."""
    rank, size = comm.Get_rank(), comm.Get_size()
    firsts = np.concatenate([[0], np.cumsum(emb.shard_rows)[:-1]]).astype(int)
    owners = [_owner(int(f), emb.rows, size) for f in firsts]
    mine = {"read_index": block.read_index, **columns}
    at = 0
    pending = []
    parts: dict[int, dict[str, np.ndarray]] = {}
    for p in block.pieces:
        n = p.hi - p.lo
        part = {name: col[at:at + n] for name, col in mine.items()}
        at += n
        if owners[p.shard] == rank:
            parts[p.shard] = part
        else:
            pending.append(comm.isend(part, dest=owners[p.shard], tag=p.shard))
    records = []
    for s, owner in enumerate(owners):
        if owner != rank:
            continue
        chunks = []
        for r in range(size):  # the ranks holding rows of shard s, in row order
            lo, hi = span(emb.rows, size, r)
            if lo < firsts[s] + emb.shard_rows[s] and hi > firsts[s]:
                chunks.append(parts.pop(s) if r == rank else comm.recv(source=r, tag=s))
        if not chunks:
            chunks = [{name: col[:0] for name, col in mine.items()}]
        table = {name: np.concatenate([c[name] for c in chunks]) for name in mine}
        records.append((s, _write(os.path.join(result, _name(emb.shards[s]["path"], fmt)), table, fmt)))
    for req in pending:
        req.wait()
    found = sorted((r for part in comm.allgather(records) for r in part), key=lambda t: t[0])
    return [r for _, r in found]


def _name(shard_path: str, fmt: str) -> str:
    return os.path.splitext(shard_path)[0] + (".parquet" if fmt == "parquet" else ".h5")


def _write(path: str, table: dict[str, np.ndarray], fmt: str) -> dict[str, Any]:
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrays = {}
            for name, col in table.items():
                if col.ndim == 2:
                    arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(col.reshape(-1)), col.shape[1])
                else:
                    arrays[name] = pa.array(col)
            pq.write_table(pa.table(arrays), tmp, compression="zstd")
        else:
            import h5py

            with h5py.File(tmp, "w", track_order=True) as f:
                for name, col in table.items():
                    f.create_dataset(name, data=col, track_times=False)
    return {"path": os.path.basename(path), "rows": len(table["read_index"]), "bytes": os.path.getsize(path),
            "sha256": sha256_file(path)}


def write_model(result: str, model: dict[str, np.ndarray]) -> None:
    with atomic_path(os.path.join(result, MODEL)) as tmp, open(tmp, "wb") as f:
        np.savez(f, **model)


def write_manifest(result: str, m: dict[str, Any]) -> str:
    path = os.path.join(result, NAME)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump({"kind": KIND, "version": 1, **m}, f, indent=1, sort_keys=True)
        f.write("\n")
    return path
