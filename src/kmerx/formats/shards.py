"""Embedding shards: one Parquet or HDF5 file per shard, written row group by row group to a temp name
and renamed when complete, so a shard that exists is whole.

Columns (both formats): ``read_index`` int64, ``name`` string, ``n_tokens`` int32 and ``embedding``:
pooled, ``fixed_size_list<float, dim>`` (Parquet) / ``[n, dim]`` (HDF5); per token,
``list<fixed_size_list<float, dim>>`` (Parquet) / ``[tokens, dim]`` with each read's rows in order,
``n_tokens`` telling where a read ends (HDF5). Plain pyarrow, DuckDB or h5py read them without kmerx.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import numpy as np
import pyarrow as pa

from kmerx.formats import atomic_path, sha256_file

SUFFIX = {"parquet": ".parquet", "hdf5": ".h5"}


def embedding_type(dim: int, dtype: str, per_token: bool) -> pa.DataType:
    vec = pa.list_(pa.float16() if dtype == "float16" else pa.float32(), dim)
    return pa.list_(vec) if per_token else vec


def schema(dim: int, dtype: str, per_token: bool, metadata: dict[str, Any] | None = None) -> pa.Schema:
    fields = [pa.field("read_index", pa.int64(), nullable=False), pa.field("name", pa.string(), nullable=False),
              pa.field("n_tokens", pa.int32(), nullable=False),
              pa.field("embedding", embedding_type(dim, dtype, per_token), nullable=False)]
    meta = None if metadata is None else {"kmerx": json.dumps(metadata, sort_keys=True)}
    return pa.schema(fields, metadata=meta)


def _vectors(values: np.ndarray, dim: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, dim)


class ShardWriter:
    """Writes one shard: ``write(...)`` per row group, then ``close()`` (fsync + rename; returns the
    shard's rows, tokens, bytes and sha256) or ``abort()`` (removes the temp file).

    path       the final path (``.parquet`` or ``.h5``; the format follows the suffix)
    metadata   a JSON-able dict stored in the file (Parquet key-value metadata ``kmerx`` / HDF5 attributes)
    """

    def __init__(self, path: str | os.PathLike, *, dim: int, dtype: str, per_token: bool,
                 metadata: dict[str, Any], chunk_rows: int = 4096) -> None:
        self.path = os.fspath(path)
        self.dim, self.dtype, self.per_token = dim, dtype, per_token
        self.rows = self.tokens = 0
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._hdf5 = self.path.endswith(".h5")
        try:
            if self._hdf5:
                self._open_hdf5(metadata, chunk_rows)
            else:
                import pyarrow.parquet as pq

                self._schema = schema(dim, dtype, per_token, metadata)
                # Vectors are incompressible floats: stored plain, without statistics or dictionaries.
                self._pq = pq.ParquetWriter(
                    self._tmp, self._schema, compression={"read_index": "zstd", "name": "zstd", "n_tokens": "zstd",
                                                          "embedding": "none"},
                    use_dictionary=False, write_statistics=["read_index", "n_tokens"])
        except BaseException:
            self.abort()
            raise

    def _open_hdf5(self, metadata: dict[str, Any], chunk_rows: int) -> None:
        import h5py

        self._h5 = h5py.File(self._tmp, "w", track_order=True)
        for key, value in metadata.items():
            self._h5.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value, sort_keys=True)
        np_dtype = np.float16 if self.dtype == "float16" else np.float32
        rows = max(1, min(chunk_rows, (4 << 20) // (self.dim * np.dtype(np_dtype).itemsize)))
        opts = dict(maxshape=(None,), track_times=False)
        self._h5.create_dataset("read_index", (0,), dtype=np.int64, chunks=(rows,), **opts)
        self._h5.create_dataset("name", (0,), dtype=h5py.string_dtype(), chunks=(rows,), **opts)
        self._h5.create_dataset("n_tokens", (0,), dtype=np.int32, chunks=(rows,), **opts)
        self._h5.create_dataset("embedding", (0, self.dim), dtype=np_dtype, chunks=(rows, self.dim),
                                maxshape=(None, self.dim), track_times=False)

    def write(self, read_index: np.ndarray, names: pa.Array, n_tokens: np.ndarray, vectors: np.ndarray) -> None:
        """One row group: ``n`` reads; ``vectors`` is ``[n, dim]`` pooled or ``[sum(n_tokens), dim]``."""
        n = len(read_index)
        if self._hdf5:
            self._append("read_index", read_index)
            self._append("name", names.to_numpy(zero_copy_only=False).astype(object))
            self._append("n_tokens", n_tokens)
            self._append("embedding", vectors)
        else:
            emb: pa.Array = _vectors(vectors, self.dim)
            if self.per_token:
                offsets = np.zeros(n + 1, dtype=np.int32)
                np.cumsum(n_tokens, out=offsets[1:])
                emb = pa.ListArray.from_arrays(pa.array(offsets), emb)
            batch = pa.RecordBatch.from_arrays(
                [pa.array(read_index, pa.int64()), names.cast(pa.string()), pa.array(n_tokens, pa.int32()), emb],
                schema=self._schema)
            self._pq.write_batch(batch, row_group_size=max(1, n))
        self.rows += n
        self.tokens += int(n_tokens.sum())

    def _append(self, name: str, values: np.ndarray) -> None:
        ds = self._h5[name]
        start = ds.shape[0]
        ds.resize(start + len(values), axis=0)
        ds[start:] = values

    def close(self) -> dict[str, Any]:
        """Finishes the file and moves it into place; returns its description for the manifest."""
        try:
            if self._hdf5:
                self._h5.attrs["rows"] = self.rows
                self._h5.attrs["tokens"] = self.tokens
                self._h5.close()
            else:
                self._pq.close()
            digest = sha256_file(self._tmp)
            self._ctx.__exit__(None, None, None)
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        return {"path": os.path.basename(self.path), "rows": self.rows, "tokens": self.tokens,
                "bytes": os.path.getsize(self.path), "sha256": digest}

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            (self._h5 if self._hdf5 else self._pq).close()
        err = RuntimeError("shard aborted")
        with contextlib.suppress(RuntimeError):
            self._ctx.__exit__(RuntimeError, err, None)


def write_virtual_hdf5(path: str | os.PathLike, shards: list[dict[str, Any]], *, dim: int, dtype: str,
                       attrs: dict[str, Any]) -> None:
    """``all.h5``: virtual datasets ``read_index``, ``n_tokens``, ``embedding`` (and ``name``) joining
    the shard files (paths relative to it) in shard order, so readers see one table."""
    import h5py

    out = os.fspath(path)
    folder = os.path.dirname(out)
    np_dtype = np.float16 if dtype == "float16" else np.float32
    total_rows = sum(s["rows"] for s in shards)
    total_emb = sum(s["tokens"] if attrs.get("per_token") else s["rows"] for s in shards)
    layouts = {
        "read_index": h5py.VirtualLayout((total_rows,), np.int64),
        "name": h5py.VirtualLayout((total_rows,), h5py.string_dtype()),
        "n_tokens": h5py.VirtualLayout((total_rows,), np.int32),
        "embedding": h5py.VirtualLayout((total_emb, dim), np_dtype),
    }
    at = {name: 0 for name in layouts}
    for s in shards:
        with h5py.File(os.path.join(folder, s["path"]), "r") as f:
            for name, layout in layouts.items():
                shape = f[name].shape
                layout[at[name]:at[name] + shape[0]] = h5py.VirtualSource(s["path"], name, shape=shape)
                at[name] += shape[0]
    with atomic_path(out) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value, sort_keys=True)
        for name, layout in layouts.items():
            f.create_virtual_dataset(name, layout, fillvalue=None)
