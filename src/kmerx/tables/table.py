"""EmbeddingTable: rows x dim vectors stored as float32/float16/bfloat16/int8/int4 rows, either dense
(an array in RAM or memory-mapped from disk) or block-sparse (virtual rows, written blocks, a saved
table on disk) behind a bounded hot-block cache."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from kmerx import _core
from kmerx._checks import check_int
from kmerx.tables.config import DTYPES, INITS, TableConfig, check_dtype, row_bytes

__all__ = ["EmbeddingTable"]

_FORMAT = "kmerx.table"
_VERSION = 1
# numpy dtypes stored as-is (no re-encoding) when a table's dtype matches.
_NATIVE = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}


def _ids(ids: Any, name: str = "ids") -> np.ndarray:
    """uint32 / int64 ids as they are (no copy); other integer arrays as int64."""
    a = np.asarray(ids)
    if a.size == 0:
        return np.zeros(0, np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.dtype != np.uint32:
        if a.dtype.kind == "u" and a.size and int(a.max()) >= 2**63:
            raise ValueError(f"{name} holds {int(a.max())}, beyond int64")
        a = a.astype(np.int64, copy=False)
    return np.ascontiguousarray(a.reshape(-1))


class EmbeddingTable:
    """A rows x dim embedding table. Build one with :meth:`from_array`, :meth:`virtual`,
    :meth:`from_file` or :meth:`load`; look rows up with :meth:`lookup` or, fused with positions and
    pooling, :func:`kmerx.embed`.

    Dense tables hold every row (``nbytes`` = rows x row_bytes), in RAM or memory-mapped. Block-sparse
    tables (``virtual()``, or loading a saved block-sparse table) hold rows in blocks of
    ``block_rows``: a block is materialised in the hot-block cache when a lookup touches it, kept on
    disk (spill file, or the saved table) once written, and otherwise regenerated from (seed, row),
    so resident memory follows the blocks in use, up to ``cache_bytes``."""

    def __init__(self, config: TableConfig, *, rows: np.ndarray | None = None,
                 block: Any = None, base_dir: str | None = None) -> None:
        if (rows is None) == (block is None):
            raise TypeError("EmbeddingTable(...) is internal: use from_array, virtual, from_file or load")
        self._config = config
        self._rows = rows  # dense: uint8 [rows, row_bytes] (a view of the caller's array when possible)
        self._block = block  # _core.BlockTable
        self._base_dir = base_dir
        self._device: dict[Any, Any] = {}

    # ---- construction ---------------------------------------------------------------------------

    @classmethod
    def from_array(cls, values: Any, dtype: str | None = None) -> EmbeddingTable:
        """A dense table of ``values`` (rows x dim, any float dtype), stored as ``dtype`` (default:
        float16 for float16 input, float32 otherwise). float32/float16 arrays that need no conversion
        are used without copying (a ``np.memmap`` stays memory-mapped)."""
        a = np.asarray(values) if not isinstance(values, np.ndarray) else values
        if a.ndim != 2 or a.shape[1] < 1:
            raise ValueError(f"values must be 2-D (rows, dim) with dim >= 1, got shape {a.shape}")
        if a.dtype.kind != "f":
            raise TypeError(f"values must hold floats, got dtype {a.dtype}")
        dtype = check_dtype(dtype or ("float16" if a.dtype == np.float16 else "float32"))
        n, dim = a.shape
        cfg = TableConfig(rows=n, dim=dim, dtype=dtype, init="zeros")
        native = _NATIVE.get(dtype)
        if native is not None and a.dtype == native and a.flags.c_contiguous:
            return cls(cfg, rows=a.view(np.uint8).reshape(n, row_bytes(dtype, dim)))
        f32 = np.ascontiguousarray(a, dtype=np.float32)
        return cls(cfg, rows=_core.encode_rows(f32, DTYPES[dtype]))

    @classmethod
    def virtual(cls, rows: int, dim: int, *, dtype: str = "float16", init: str = "normal", seed: int = 0,
                scale: float = 1.0, block_rows: int = 0, cache_bytes: int = 256 << 20,
                spill_dir: str | os.PathLike | None = None) -> EmbeddingTable:
        """A block-sparse table whose unwritten rows are a pure function of (seed, row): the same on
        every machine and device, and costing no memory until touched. ``init="zeros"`` gives an
        empty table to :meth:`write` into. ``cache_bytes`` bounds the resident blocks; written blocks
        evicted from the cache go to an unlinked spill file in ``spill_dir`` (default: the temp dir)."""
        cfg = TableConfig(rows=rows, dim=dim, dtype=dtype, init=init, seed=seed, scale=scale,
                          block_rows=block_rows, cache_bytes=cache_bytes)
        return cls._blocked(cfg, spill_dir=spill_dir)

    @classmethod
    def from_config(cls, config: TableConfig | dict[str, Any], **kw: Any) -> EmbeddingTable:
        """A block-sparse table from a :class:`TableConfig` (or its dict)."""
        if isinstance(config, dict):
            config = TableConfig.from_dict(config)
        if not isinstance(config, TableConfig):
            raise TypeError(f"config must be a TableConfig or a dict, got {type(config).__name__}")
        return cls._blocked(config, **kw)

    @classmethod
    def _blocked(cls, cfg: TableConfig, *, spill_dir: Any = None, base_dir: str | None = None,
                 base_index: np.ndarray | None = None) -> EmbeddingTable:
        base_path = os.path.join(base_dir, "blocks.bin") if base_dir else ""
        block = _core.BlockTable(cfg.rows, cfg.dim, DTYPES[cfg.dtype], cfg.block_rows, cfg.seed, INITS[cfg.init],
                                 float(cfg.scale), cfg.cache_bytes, os.fspath(spill_dir or tempfile.gettempdir()),
                                 base_path, np.zeros(0, np.int64) if base_index is None else base_index)
        return cls(cfg, block=block, base_dir=base_dir)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, dataset: str | None = None, dtype: str | None = None,
                  mmap: bool = True, cache_bytes: int | None = None) -> EmbeddingTable:
        """A table from ``path``: a saved kmerx table (directory), ``.npy`` (memory-mapped when
        ``mmap`` and no conversion is needed), ``.safetensors`` (``dataset`` names the tensor when there
        are several) or HDF5 (``.h5``/``.hdf5``; ``dataset`` names it; kmerx-written datasets keep their
        stored dtype). ``dtype`` re-encodes float data."""
        from kmerx.tables import files

        return files.read_table(cls, os.fspath(path), dataset=dataset, dtype=dtype, mmap=mmap, cache_bytes=cache_bytes)

    @classmethod
    def load(cls, path: str | os.PathLike, *, cache_bytes: int | None = None, mmap: bool = True) -> EmbeddingTable:
        """A table saved by :meth:`save` (a directory). Dense rows are memory-mapped; block-sparse
        tables read their written blocks from disk through the cache."""
        from kmerx.tables import files

        return files.load_dir(cls, os.fspath(path), cache_bytes=cache_bytes, mmap=mmap)

    def save(self, path: str | os.PathLike, *, format: str = "kmerx", dataset: str = "embeddings") -> None:
        """Saves the table. ``kmerx``: a directory (``table.json`` written last, so a half-written save
        never loads), round-tripping exactly; a block-sparse table stores only its written blocks.
        ``hdf5``: one dataset chunked per block with the config in its attributes (dense tables, or
        block-sparse ones small enough to expand). ``npy``: the decoded float32 rows."""
        from kmerx.tables import files

        files.save_table(self, os.fspath(path), format=format, dataset=dataset)

    # ---- properties -----------------------------------------------------------------------------

    @property
    def config(self) -> TableConfig:
        return self._config

    @property
    def rows(self) -> int:
        return self._config.rows

    @property
    def dim(self) -> int:
        return self._config.dim

    @property
    def dtype(self) -> str:
        return self._config.dtype

    @property
    def row_bytes(self) -> int:
        return row_bytes(self.dtype, self.dim)

    @property
    def block_rows(self) -> int:
        return self._config.block_rows

    @property
    def dense(self) -> bool:
        """True for an array-backed table; False for a block-sparse one."""
        return self._rows is not None

    @property
    def nbytes(self) -> int:
        """Bytes of the whole table stored densely in its dtype."""
        return self.rows * self.row_bytes

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        kind = "dense" if self.dense else f"block-sparse, {self.block_rows} rows/block"
        return f"EmbeddingTable({self.rows} x {self.dim}, {self.dtype}, {kind})"

    # ---- rows -----------------------------------------------------------------------------------

    def native(self) -> Any:
        """What the native lookup takes: the uint8 rows array, or the BlockTable."""
        return self._rows if self._rows is not None else self._block

    def lookup(self, ids: Any, *, out_dtype: Any = np.float32) -> np.ndarray:
        """Rows of ``ids`` (any shape) decoded: ``ids.shape + (dim,)``; IndexError for an id outside
        the table."""
        from kmerx.embed import embed

        a = np.asarray(ids)
        flat = _ids(a)
        out = embed(self, flat, offsets=np.arange(flat.size + 1, dtype=np.int64), out_dtype=out_dtype)
        return out.reshape(*a.shape, self.dim)

    def write(self, ids: Any, values: Any) -> None:
        """Stores ``values`` (len(ids) x dim) at ``ids``, encoded in the table's dtype; a repeated id
        keeps its last row. Dense tables must be writable (not a read-only memory map)."""
        flat = _ids(ids)
        v = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, self.dim) if np.size(values) else \
            np.zeros((0, self.dim), np.float32)
        if v.shape[0] != flat.size:
            raise ValueError(f"values holds {v.shape[0]} rows for {flat.size} ids")
        if self._block is not None:
            self._block.write(flat, v)
            return
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= self.rows):
            raise IndexError(f"ids must be in 0..{self.rows - 1}, got {int(flat.min())}..{int(flat.max())}")
        if not self._rows.flags.writeable:
            raise ValueError("this table's rows are read-only (memory-mapped from a file opened read-only)")
        self._rows[flat] = _core.encode_rows(v, DTYPES[self.dtype])

    def read_blocks(self, blocks: Any) -> np.ndarray:
        """The stored bytes of ``blocks`` (uint8 [n, block_rows * row_bytes]), without caching them;
        rows past the table's end read as zeros."""
        b = np.ascontiguousarray(np.asarray(blocks, dtype=np.int64).reshape(-1))
        if self._block is not None:
            return self._block.read_blocks(b)
        nblocks = -(-self.rows // self.block_rows)
        if b.size and (int(b.min()) < 0 or int(b.max()) >= nblocks):
            raise IndexError(f"blocks must be in 0..{nblocks - 1}")
        rows = b[:, None] * self.block_rows + np.arange(self.block_rows)
        inside = rows < self.rows
        out = np.zeros((b.size, self.block_rows, self.row_bytes), np.uint8)
        out[inside] = self._rows[rows[inside]]
        return out.reshape(b.size, -1)

    def prefetch(self, ids: Any) -> int:
        """Brings the blocks of ``ids`` into the cache (each once); returns how many were loaded.
        Dense tables have nothing to load (0)."""
        return 0 if self._block is None else int(self._block.prefetch(_ids(ids)))

    def to_numpy(self, dtype: Any = np.float32) -> np.ndarray:
        """Every row decoded (rows x dim): for tables that fit in memory."""
        return self.lookup(np.arange(self.rows, dtype=np.int64), out_dtype=dtype)

    def written_blocks(self) -> np.ndarray:
        """Block-sparse: the blocks holding written rows (ascending)."""
        if self._block is None:
            return np.arange(-(-self.rows // self.block_rows), dtype=np.int64)
        return self._block.written_blocks()

    # ---- cache and memory -----------------------------------------------------------------------

    def cache_stats(self) -> dict[str, Any]:
        """Counters of the hot-block cache, per row lookup (lookups, hits, misses, hit_rate) and per
        block (loads, evictions, writebacks to the spill file, bypass), plus resident/capacity blocks.
        Dense tables have no cache: an empty dict."""
        if self._block is None:
            return {}
        s = dict(self._block.stats())
        s["hit_rate"] = s["hits"] / s["lookups"] if s["lookups"] else 0.0
        return s

    def reset_stats(self) -> None:
        if self._block is not None:
            self._block.reset_stats()

    def clear_cache(self) -> None:
        """Writes back written blocks and drops every resident block."""
        if self._block is not None:
            self._block.clear_cache()

    def memory(self, vocab_size: int | None = None) -> dict[str, Any]:
        """Bytes resident in RAM for this table (dense: the rows array, whether memory-mapped or not;
        block-sparse: cache slots in use plus the cache's bookkeeping), the bytes of this table stored
        densely, and, with ``vocab_size``, of a dense float32 table with one row per vocabulary entry."""
        if self._block is not None:
            s = self._block.stats()
            resident = s["used_blocks"] * s["block_bytes"] + s["index_bytes"]
        else:
            resident = int(self._rows.nbytes)
        out: dict[str, Any] = {"resident_bytes": int(resident), "dense_bytes": self.nbytes}
        if vocab_size is not None:
            check_int("vocab_size", vocab_size, 1)
            out["vocab_dense_bytes"] = int(vocab_size) * self.dim * 4
            out["ratio_vs_vocab"] = out["vocab_dense_bytes"] / max(1, out["resident_bytes"])
        return out

    # ---- persistence helpers (used by files.py) ------------------------------------------------

    def _to_doc(self) -> dict[str, Any]:
        return {"format": _FORMAT, "version": _VERSION, "dense": self.dense, "config": self._config.to_dict()}

    @staticmethod
    def _read_doc(path: str) -> dict[str, Any]:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a kmerx table (format {doc.get('format') if isinstance(doc, dict) else None!r})")
        if doc.get("version") != _VERSION:
            raise ValueError(f"{path}: kmerx table version {doc.get('version')!r}, this kmerx reads {_VERSION}")
        return doc
