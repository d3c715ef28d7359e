"""Embedding tables on the GPU: :class:`DeviceTable` (dense rows copied to the device, or a
device-resident hot-block cache over a host table) and :func:`embed_device`, the cupy twin of
:func:`kmerx.embed` (same arguments; cupy arrays in, a cupy array out).

A cached batch: the distinct blocks of its ids (``ids // block_rows``) are planned into the cache's
slots (pinned for the batch); blocks not resident are read from the host table in one call (written
blocks) or generated on the device (virtual rows, bit-identical to the host's), the kernel gets one
device row pointer per id, and the slots are released after the lookup."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from kmerx.kmers.codes import _cuda_module as _cuda
from kmerx.tables.composite import HashEmbedding, QREmbedding
from kmerx.tables.config import DTYPES, INITS
from kmerx.tables.table import EmbeddingTable

__all__ = ["DeviceTable", "embed_device", "to_device"]

_POOLS = {None: 0, "none": 0, "sum": 1, "mean": 2, "max": 3}
_POS = ("none", "sinusoidal", "learned")


def _cp() -> Any:
    try:
        import cupy
    except ImportError:
        raise RuntimeError("device tables need cupy (pip install cupy-cuda13x)") from None
    return cupy


class DeviceTable:
    """A table's rows for the GPU lookup. Build with :func:`to_device`. ``table`` is the host table
    (an EmbeddingTable, HashEmbedding or QREmbedding); ``cache_bytes`` None copies dense rows whole,
    otherwise a device cache of that many bytes serves the main table's blocks from the host table."""

    def __init__(self, table: Any, cache_bytes: int | None = None) -> None:
        cuda, cp = _cuda(), _cp()
        self.table = table
        self.num_hashes = 1
        self.importance = None
        self.remainder = None
        if isinstance(table, HashEmbedding):
            main = table.table
            self.num_hashes = table.num_hashes
            if table.importance is not None:
                self.importance = cp.asarray(table.importance)
        elif isinstance(table, QREmbedding):
            main = table.quotient
            if cache_bytes is not None:
                raise ValueError("quotient-remainder tables are dense: cache_bytes must be None")
            self.remainder = cp.asarray(table.remainder.native())
        elif isinstance(table, EmbeddingTable):
            main = table
        else:
            raise TypeError(f"table must be an EmbeddingTable, HashEmbedding or QREmbedding, got {type(table).__name__}")
        self.main = main
        self._rows = None
        self._cache = None
        if cache_bytes is None:
            if not main.dense:
                raise ValueError("a block-sparse table needs cache_bytes= (its rows are not all in memory)")
            self._rows = cp.asarray(main.native())
        else:
            if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, (int, np.integer)) or cache_bytes < 0:
                raise ValueError(f"cache_bytes must be an int >= 0 or None, got {cache_bytes!r}")
            self._cache = cuda.DeviceCache(main.block_rows, main.dim, DTYPES[main.dtype], int(cache_bytes))

    @property
    def dim(self) -> int:
        return self.main.dim

    def stats(self) -> dict[str, Any]:
        """The device cache's counters (as EmbeddingTable.cache_stats); an empty dict without a cache."""
        if self._cache is None:
            return {}
        s = dict(self._cache.stats())
        s["hit_rate"] = s["hits"] / s["lookups"] if s["lookups"] else 0.0
        return s

    def reset_stats(self) -> None:
        if self._cache is not None:
            self._cache.reset_stats()

    def _lookup(self, flat: Any, **kw: Any) -> None:
        """_cuda.lookup with this table's rows for the device ids ``flat``."""
        cuda = _cuda()
        main = self.main
        if self.remainder is not None:
            kw.update(table2=self.remainder, dtype2=DTYPES[self.table.remainder.dtype], qr_m=self.table.m,
                      combine=1 if self.table.combine == "product" else 0)
        if self._cache is None:
            cuda.lookup(self._rows, main.dim, DTYPES[main.dtype], flat, **kw)
            return
        cp = _cp()
        if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= main.rows):
            bad = int(cp.flatnonzero((flat < 0) | (flat >= main.rows))[0])
            raise IndexError(f"id {int(flat[bad])} of token {bad // self.num_hashes} is outside 0..{main.rows - 1}")
        r = main.block_rows
        blocks, inverse, counts = cp.unique(flat.astype(cp.int64) // r, return_inverse=True, return_counts=True)
        host_blocks = cp.asnumpy(blocks)
        slots, missing = self._cache.plan(host_blocks, cp.asnumpy(counts))
        try:
            if missing.size:
                self._fill(host_blocks[missing], slots[missing])
            slot_of = cp.asarray(slots)[inverse.reshape(-1)]
            ptrs = cp.empty(flat.size, dtype=cp.uint64)
            self._cache.row_pointers(flat, slot_of, ptrs)
            cuda.lookup(None, main.dim, DTYPES[main.dtype], flat, table_ptrs=ptrs, rows=main.rows, **kw)
        finally:
            self._cache.release()

    def _fill(self, blocks: np.ndarray, slots: np.ndarray) -> None:
        main = self.main
        cfg = main.config
        if main.dense or cfg.init == "zeros":
            self._cache.fill(slots, main.read_blocks(blocks))
            return
        # Blocks never written are a function of (seed, row): generate them on the device.
        stored = np.isin(blocks, main.written_blocks())
        if stored.any():
            self._cache.fill(slots[stored], main.read_blocks(blocks[stored]))
        fresh = ~stored
        if fresh.any():
            self._cache.fill_virtual(np.ascontiguousarray(slots[fresh]), np.ascontiguousarray(blocks[fresh]), main.rows,
                                     main.dim, DTYPES[main.dtype], cfg.seed, INITS[cfg.init], float(cfg.scale))


def to_device(table: Any, cache_bytes: int | None = None) -> DeviceTable:
    """``table`` ready for :func:`kmerx.embed` on cupy ids. Dense tables are copied whole when
    ``cache_bytes`` is None; otherwise (and for block-sparse tables, where it is required) a device
    hot-block cache of ``cache_bytes`` serves the blocks each batch touches from the host table."""
    if isinstance(table, DeviceTable):
        return table
    return DeviceTable(table, cache_bytes)


def _device_of(table: Any) -> DeviceTable:
    """A DeviceTable for ``table``: itself, the dense copy kept with a host EmbeddingTable (made once),
    or a fresh copy of a composite table."""
    if isinstance(table, DeviceTable):
        return table
    if isinstance(table, EmbeddingTable):
        dev = table._device.get(None)
        if dev is None:
            dev = table._device[None] = DeviceTable(table)
        return dev
    return DeviceTable(table)


@functools.lru_cache(maxsize=8)
def _device_sinusoidal(rows: int, dim: int) -> Any:
    from kmerx.embed import sinusoidal

    return _cp().asarray(sinusoidal(rows, dim))


def _flat_ids(ids: Any, offsets: Any, mask: Any, h: int) -> tuple[Any, Any, Any, Any, tuple[int, int] | None]:
    """(flat ids [T*h], offsets [n+1], out_rows or None, keep mask or None, padded shape or None)."""
    cp = _cp()
    a = cp.asarray(ids)
    if a.dtype.kind not in "iu":
        raise TypeError(f"ids must hold integers, got dtype {a.dtype}")
    if a.dtype != cp.uint32:
        a = a.astype(cp.int64, copy=False)
    if offsets is not None:
        if a.ndim not in (1, 2):
            raise ValueError(f"flat ids must be 1-D (or (T, h)), got shape {a.shape}")
        return cp.ascontiguousarray(a.reshape(-1)), cp.ascontiguousarray(cp.asarray(offsets, dtype=cp.int64)), \
            None, None, None
    if a.ndim not in (2, 3):
        raise ValueError(f"ids must be 1-D with offsets, (n, L) or (n, L, h), got shape {a.shape}")
    n, width = a.shape[:2]
    if mask is None:
        return cp.ascontiguousarray(a.reshape(-1)), cp.arange(n + 1, dtype=cp.int64) * width, None, None, (n, width)
    m = cp.asarray(mask).astype(bool)
    if m.shape != (n, width):
        raise ValueError(f"mask must have shape {(n, width)}, got {m.shape}")
    lengths = m.sum(axis=1)
    starts = cp.where(lengths > 0, m.argmax(axis=1), 0)
    col = cp.arange(width)
    if not bool(cp.all(m == ((col >= starts[:, None]) & (col < (starts + lengths)[:, None])))):
        raise ValueError("mask must mark one contiguous run of tokens per read (left or right padding)")
    offsets = cp.concatenate([cp.zeros(1, cp.int64), cp.cumsum(lengths).astype(cp.int64)])
    out_rows = (cp.arange(n, dtype=cp.int64) * width + starts).astype(cp.int64)
    return cp.ascontiguousarray(a[m].reshape(-1)), offsets, out_rows, m, (n, width)


def embed_device(table: Any, ids: Any, positions: Any = None, *, offsets: Any = None, mask: Any = None,
                 pos_encoding: str = "none", pos_table: Any = None, pool: str | None = None, weights: Any = None,
                 slots: Any = None, out_dtype: Any = np.float32) -> Any:
    """:func:`kmerx.embed` on the GPU: cupy ids (flat with ``offsets``, or padded ``(n, L)`` /
    ``(n, L, h)`` with an optional ``mask``) and a :class:`DeviceTable` (a host table is copied whole
    with :func:`to_device`). Returns a cupy array: ``[n, dim]`` pooled, ``[T, dim]`` or padded
    ``[n, L, dim]`` per token (zeros on padding)."""
    cp = _cp()
    if pool not in _POOLS:
        raise ValueError(f"pool must be None, 'sum', 'mean' or 'max', got {pool!r}")
    if pos_encoding not in _POS:
        raise ValueError(f"pos_encoding must be one of {_POS}, got {pos_encoding!r}")
    dt = np.dtype(out_dtype)
    if dt not in (np.float32, np.float16):
        raise ValueError(f"out_dtype must be float32 or float16, got {dt}")
    dev = _device_of(table)
    h, dim = dev.num_hashes, dev.dim
    flat, offs, out_rows, keep, padded = _flat_ids(ids, offsets, mask, h)
    if flat.size % h:
        raise ValueError(f"ids hold {flat.size} values, not a multiple of the table's {h} ids per token")
    tokens = flat.size // h

    def per_token(x: Any, name: str, dtype: Any, width: int = 1) -> Any:
        if x is None:
            return None
        a = cp.asarray(x)
        if keep is not None:
            a = a[keep]
        a = cp.ascontiguousarray(a.reshape(-1).astype(dtype, copy=False))
        if a.size != tokens * width:
            raise ValueError(f"{name} holds {a.size} values for {tokens} tokens x {width}")
        return a

    kw: dict[str, Any] = {}
    if (weights is not None or slots is not None) and not isinstance(dev.table, HashEmbedding):
        raise ValueError("weights and slots apply to a HashEmbedding")
    if weights is not None:
        kw["weights"] = per_token(weights, "weights", cp.float32, h)
    elif dev.importance is not None:
        if slots is None:
            raise ValueError("this HashEmbedding has learned importance weights: pass slots= (weight_slots)")
        kw["slots"] = per_token(slots, "slots", cp.uint32)
        kw["slot_weights"] = dev.importance
    if pos_encoding != "none":
        pos = per_token(positions, "positions", cp.int64)
        if pos is not None:
            top = int(pos.max()) + 1 if pos.size else 0
            if top > np.iinfo(np.int32).max:
                raise ValueError(f"positions must be < 2^31, got {top - 1}")
            kw["positions"] = pos.astype(cp.int32)
        else:
            top = int(cp.diff(offs).max()) if offs.size > 1 else 0
        if pos_encoding == "sinusoidal":
            kw["pos_table"] = _device_sinusoidal(max(top, 1), dim)
        else:
            if pos_table is None:
                raise ValueError("pos_encoding='learned' needs pos_table= (an EmbeddingTable or a [P, dim] array)")
            t = pos_table.to_numpy() if isinstance(pos_table, EmbeddingTable) else pos_table
            t = cp.ascontiguousarray(cp.asarray(t, dtype=cp.float32))
            if t.ndim != 2 or t.shape[1] != dim:
                raise ValueError(f"pos_table must be (positions, {dim}), got shape {t.shape}")
            kw["pos_table"] = t
    elif positions is not None or pos_table is not None:
        raise ValueError("positions and pos_table need pos_encoding='sinusoidal' or 'learned'")

    code = _POOLS[pool]
    n = offs.size - 1
    if code:
        out = cp.empty((n, dim), dtype=dt)
    elif padded is not None:
        out = cp.zeros((padded[0] * padded[1], dim), dtype=dt)
        if out_rows is not None:
            kw["out_rows"] = out_rows
    else:
        out = cp.empty((tokens, dim), dtype=dt)
    dev._lookup(flat, offsets=offs, h=h, pool=code, out_f16=dt == np.float16, out=out, **kw)
    if not code and padded is not None:
        return out.reshape(padded[0], padded[1], dim)
    return out
