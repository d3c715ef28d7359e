"""Reading and writing embedding tables: the kmerx directory format, .npy, safetensors and HDF5."""

from __future__ import annotations

import json
import os
import shutil
import struct
from typing import Any

import numpy as np

from kmerx.tables.config import TableConfig, check_dtype, row_bytes

_SAFETENSORS = {"F32": ("float32", np.dtype("<f4")), "F16": ("float16", np.dtype("<f2")),
                "BF16": ("bfloat16", np.dtype("<u2")), "F64": ("float32", np.dtype("<f8"))}


def load_dir(cls: Any, path: str, *, cache_bytes: int | None, mmap: bool) -> Any:
    doc = cls._read_doc(os.path.join(path, "table.json"))
    cfg = TableConfig.from_dict(doc["config"])
    if cache_bytes is not None:
        cfg = cfg.replace(cache_bytes=cache_bytes)
    if doc["dense"]:
        rows = np.load(os.path.join(path, "rows.npy"), mmap_mode="r" if mmap else None)
        if rows.dtype != np.uint8 or rows.shape != (cfg.rows, row_bytes(cfg.dtype, cfg.dim)):
            raise ValueError(f"{path}/rows.npy: expected uint8 {(cfg.rows, row_bytes(cfg.dtype, cfg.dim))}, "
                             f"got {rows.dtype} {rows.shape}")
        return cls(cfg, rows=rows)
    index = np.ascontiguousarray(np.load(os.path.join(path, "blocks.npy")), dtype=np.int64)
    return cls._blocked(cfg, base_dir=path, base_index=index)


def save_table(table: Any, path: str, *, format: str, dataset: str) -> None:
    if format == "kmerx":
        _save_dir(table, path)
    elif format == "hdf5":
        _save_hdf5(table, path, dataset)
    elif format == "npy":
        from kmerx.formats import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, table.to_numpy())
    else:
        raise ValueError(f"format must be 'kmerx', 'hdf5' or 'npy', got {format!r}")


def _save_dir(table: Any, path: str) -> None:
    """Writes into path + '.tmp' and renames, table.json last: an interrupted save leaves no table."""
    if table._base_dir is not None and os.path.abspath(table._base_dir) == os.path.abspath(path):
        raise ValueError(f"cannot save a table over the directory it was loaded from ({path})")
    tmp = path.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if table.dense:
        np.save(os.path.join(tmp, "rows.npy"), table._rows)
    else:
        index = table._block.save_blocks(os.path.join(tmp, "blocks.bin"))
        np.save(os.path.join(tmp, "blocks.npy"), index)
    with open(os.path.join(tmp, "table.json"), "w", encoding="utf-8") as f:
        json.dump(table._to_doc(), f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)


def _save_hdf5(table: Any, path: str, dataset: str) -> None:
    import h5py

    from kmerx.formats import atomic_path

    raw = table.dtype not in ("float32", "float16")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        chunk = (min(table.block_rows, max(1, table.rows)), table.row_bytes if raw else table.dim)
        shape = (table.rows, chunk[1])
        ds = f.create_dataset(dataset, shape=shape, dtype=np.uint8 if raw else table.dtype, chunks=chunk)
        ds.attrs["kmerx_format"] = "kmerx.table"
        ds.attrs["kmerx_config"] = table.config.to_json()
        ds.attrs["kmerx_encoded"] = raw  # rows are kmerx-encoded bytes (bfloat16, int8, int4)
        step = max(table.block_rows, (64 << 20) // max(1, table.row_bytes) // table.block_rows * table.block_rows)
        for lo in range(0, table.rows, step):  # per 64 MiB slice, not per row
            hi = min(table.rows, lo + step)
            blocks = np.arange(lo // table.block_rows, -(-hi // table.block_rows), dtype=np.int64)
            rows = table.read_blocks(blocks).reshape(-1, table.row_bytes)[: hi - lo]
            ds[lo:hi] = rows if raw else rows.view(table.dtype).reshape(hi - lo, table.dim)


def read_table(cls: Any, path: str, *, dataset: str | None, dtype: str | None, mmap: bool,
               cache_bytes: int | None) -> Any:
    if os.path.isdir(path):
        if dtype is not None:
            raise ValueError("dtype cannot re-encode a saved kmerx table; load it and build a new one")
        return load_dir(cls, path, cache_bytes=cache_bytes, mmap=mmap)
    if not os.path.exists(path):
        raise FileNotFoundError(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        a = np.load(path, mmap_mode="r" if mmap else None)
        return cls.from_array(_floats(a, path), dtype=dtype)
    if ext == ".safetensors":
        return cls.from_array(_safetensors(path, dataset, mmap), dtype=dtype)
    if ext in (".h5", ".hdf5", ".hdf"):
        return _read_hdf5(cls, path, dataset, dtype)
    raise ValueError(f"{path}: unknown table file type {ext!r} (expected a kmerx table directory, .npy, "
                     ".safetensors, .h5 or .hdf5)")


def _floats(a: np.ndarray, path: str) -> np.ndarray:
    if a.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D (rows, dim) array, got shape {a.shape}")
    if a.dtype.kind != "f":
        raise ValueError(f"{path}: expected float values, got dtype {a.dtype}")
    return a


def _safetensors(path: str, name: str | None, mmap: bool) -> np.ndarray:
    """One 2-D tensor of a safetensors file (8-byte header length, JSON header, raw data)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", head)
        size = os.path.getsize(path)
        if n > size - 8:
            raise ValueError(f"{path}: safetensors header of {n} bytes exceeds the file ({size} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise ValueError(f"{path}: bad safetensors header: {e}") from None
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if name is None:
        if len(tensors) != 1:
            raise ValueError(f"{path} holds tensors {sorted(tensors)}: pass dataset= to choose one")
        name = next(iter(tensors))
    if name not in tensors:
        raise ValueError(f"{path}: no tensor {name!r}; it holds {sorted(tensors)}")
    t = tensors[name]
    if t.get("dtype") not in _SAFETENSORS:
        raise ValueError(f"{path}: tensor {name!r} has dtype {t.get('dtype')!r}; kmerx reads {sorted(_SAFETENSORS)}")
    shape = tuple(t["shape"])
    lo, hi = t["data_offsets"]
    np_dtype = _SAFETENSORS[t["dtype"]][1]
    if len(shape) != 2 or hi - lo != int(np.prod(shape)) * np_dtype.itemsize or 8 + n + hi > size:
        raise ValueError(f"{path}: tensor {name!r} has shape {shape} and {hi - lo} bytes, which do not fit")
    a = np.memmap(path, dtype=np_dtype, mode="r", offset=8 + n + lo, shape=shape) if mmap else \
        np.fromfile(path, dtype=np_dtype, count=int(np.prod(shape)), offset=8 + n + lo).reshape(shape)
    if t["dtype"] == "BF16":  # bfloat16 is the top half of a float32
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return a


def _read_hdf5(cls: Any, path: str, dataset: str | None, dtype: str | None) -> Any:
    import h5py

    with h5py.File(path, "r") as f:
        if dataset is None:
            names = [k for k, v in f.items() if isinstance(v, h5py.Dataset)]
            if len(names) != 1:
                raise ValueError(f"{path} holds datasets {sorted(names)} at its root: pass dataset= to choose one")
            dataset = names[0]
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise ValueError(f"{path}: no dataset {dataset!r}")
        ds = f[dataset]
        if ds.attrs.get("kmerx_format") == "kmerx.table":
            cfg = TableConfig.from_json(ds.attrs["kmerx_config"])
            data = ds[...]
            if bool(ds.attrs.get("kmerx_encoded")):
                if data.shape != (cfg.rows, row_bytes(cfg.dtype, cfg.dim)):
                    raise ValueError(f"{path}:{dataset}: encoded rows of shape {data.shape} do not match its config")
                table = cls(cfg.replace(init="zeros"), rows=np.ascontiguousarray(data, dtype=np.uint8))
                if dtype is not None and check_dtype(dtype) != cfg.dtype:
                    return cls.from_array(table.to_numpy(), dtype=dtype)
                return table
            return cls.from_array(data, dtype=dtype or cfg.dtype)
        return cls.from_array(_floats(ds[...], f"{path}:{dataset}"), dtype=dtype)

