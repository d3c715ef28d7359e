"""Fused embedding lookup: token ids -> vectors (gather + dequantise + positional encoding), per token
or pooled per read, in one multi-threaded native pass (kmerx/lookup.hpp)."""

from __future__ import annotations

import functools
import sys
import types
from typing import Any

import numpy as np
import pyarrow as pa

from kmerx import _core
from kmerx.tables.composite import HashEmbedding, QREmbedding
from kmerx.tables.config import DTYPES
from kmerx.tables.table import EmbeddingTable, _ids

__all__ = ["embed", "sinusoidal"]

_POOLS = {None: 0, "none": 0, "sum": 1, "mean": 2, "max": 3}
_POS = ("none", "sinusoidal", "learned")


def sinusoidal(positions: int, dim: int) -> np.ndarray:
    """The fixed positional encoding of "Attention is all you need" for positions 0..positions-1:
    float32 ``[positions, dim]``, column 2i = sin(p / 10000^(2i/dim)), 2i+1 = cos of the same angle
    (computed in float64). Read-only (shared by later calls)."""
    if positions < 0:
        raise ValueError(f"positions must be >= 0, got {positions}")
    rows = 512
    while rows < positions:
        rows *= 2
    return _sinusoidal(rows, dim)[:positions]


@functools.lru_cache(maxsize=16)
def _sinusoidal(rows: int, dim: int) -> np.ndarray:
    t = _core.sinusoidal(rows, dim)
    t.flags.writeable = False
    return t


def _out_dtype(out_dtype: Any) -> bool:
    dt = np.dtype(out_dtype)
    if dt not in (np.float32, np.float16):
        raise ValueError(f"out_dtype must be float32 or float16, got {dt}")
    return dt == np.float16


def _arrow_lists(a: pa.Array | pa.ChunkedArray, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(flat values [T] or [T, h], offsets int64 [n + 1], h) of a list array."""
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    if not (pa.types.is_list(a.type) or pa.types.is_large_list(a.type)):
        raise TypeError(f"{name} must be a list or large_list array, got {a.type}")
    if a.null_count:
        raise ValueError(f"{name} holds null lists")
    offsets = np.asarray(a.offsets, dtype=np.int64)
    values = a.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    offsets = offsets - offsets[0]
    h = 1
    if pa.types.is_fixed_size_list(values.type):
        h = values.type.list_size
        values = values.flatten()
    flat = values.to_numpy(zero_copy_only=False)
    return (flat.reshape(-1, h) if h > 1 else flat), offsets, h


class _Batch:
    """Token arrays in the flat layout the kernel takes, and how to shape the output back."""

    def __init__(self, ids: Any, offsets: Any, mask: Any) -> None:
        self.padded_shape: tuple[int, int] | None = None
        self.out_rows: np.ndarray | None = None
        self.keep: np.ndarray | None = None  # padded input with a mask: which slots hold tokens
        self.arrow = False
        if isinstance(ids, (pa.Array, pa.ChunkedArray)):
            flat, self.offsets, self.h = _arrow_lists(ids, "ids")
            self.flat = flat
            self.arrow = True
            return
        a = np.asarray(ids)
        if a.ndim == 1 or (a.ndim == 2 and offsets is not None):
            if offsets is None:
                raise ValueError("1-D ids need offsets= (read i holds ids[offsets[i]:offsets[i+1]])")
            self.offsets = np.ascontiguousarray(offsets, dtype=np.int64)
            self.flat, self.h = a, (a.shape[1] if a.ndim == 2 else 1)
            return
        if offsets is not None:
            raise ValueError("offsets= applies to flat ids; padded (n, L) ids take mask=")
        if a.ndim not in (2, 3):
            raise ValueError(f"ids must be 1-D with offsets, (n, L) or (n, L, h), got shape {a.shape}")
        n, width = a.shape[:2]
        self.h = a.shape[2] if a.ndim == 3 else 1
        self.padded_shape = (n, width)
        if mask is None:
            self.flat = a.reshape(n * width, self.h) if self.h > 1 else a.reshape(-1)
            self.offsets = np.arange(n + 1, dtype=np.int64) * width
            return
        m = np.asarray(mask)
        if m.shape != (n, width):
            raise ValueError(f"mask must have shape {(n, width)}, got {m.shape}")
        m = m.astype(bool, copy=False)
        lengths = m.sum(axis=1)
        starts = np.where(lengths > 0, m.argmax(axis=1), 0)
        col = np.arange(width)
        if not np.array_equal(m, (col >= starts[:, None]) & (col < (starts + lengths)[:, None])):
            raise ValueError("mask must mark one contiguous run of tokens per read (left or right padding)")
        self.keep = m
        self.flat = a[m]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.out_rows = (np.arange(n, dtype=np.int64) * width + starts).astype(np.int64)

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    def per_token(self, x: Any, name: str, dtype: Any, width: int = 1) -> np.ndarray | None:
        """A per-token array given in the same layout as ids, flattened like them."""
        if x is None:
            return None
        if isinstance(x, (pa.Array, pa.ChunkedArray)):
            flat, off, h = _arrow_lists(x, name)
            if h != width or not np.array_equal(off, self.offsets):
                raise ValueError(f"{name} must have the same lists as ids")
        else:
            a = np.asarray(x)
            if self.keep is not None:
                if a.shape[:2] != self.keep.shape:
                    raise ValueError(f"{name} must have the shape of ids, got {a.shape}")
                a = a[self.keep]
            flat = a
        flat = np.ascontiguousarray(flat, dtype=dtype).reshape(-1)
        tokens = int(self.offsets[-1])
        if flat.size != tokens * width:
            raise ValueError(f"{name} holds {flat.size} values for {tokens} tokens x {width}")
        return flat


def embed(table: Any, ids: Any, positions: Any = None, *, offsets: Any = None, mask: Any = None,
          pos_encoding: str = "none", pos_table: Any = None, pool: str | None = None, weights: Any = None,
          slots: Any = None, out_dtype: Any = np.float32, return_type: str | None = None) -> Any:
    """Token vectors for ``ids``: gather each token's row(s) (decoding the table's dtype), add the
    positional encoding, and return one vector per token or pool per read in the same pass.

    table         an :class:`EmbeddingTable`, :class:`HashEmbedding` (h ids per token, weighted sum)
                  or :class:`QREmbedding`; a device table with cupy ids runs on the GPU.
    ids           a tokenizer :class:`~kmerx.tokenizers.Encoding` (input_ids, attention_mask and
                  weight_slots are taken from it); padded ``(n, L)`` / ``(n, L, h)`` ids with
                  ``mask`` (1 on tokens, one contiguous run per read; omitted: every slot is a token);
                  flat ids with ``offsets`` (int64, n + 1); or an Arrow list array (one list per read,
                  of uint32 or fixed-size lists of h ids).
    positions     per-token positions in the layout of ids (int; negative: no positional term);
                  default: each token's index in its read.
    pos_encoding  "none", "sinusoidal" (the Transformer's fixed encoding) or "learned" (``pos_table``:
                  an EmbeddingTable or float array ``[P, dim]``; a position >= P raises IndexError).
    pool          None (per token), "sum", "mean" or "max" (per read; an empty read gives zeros).
    weights       HashEmbedding: per-token weights in the layout of ids, ``(..., h)``; otherwise the
                  table's learned per-bucket ``importance`` is used with ``slots`` (weight slots).
    out_dtype     float32 or float16 (accumulation is always float32).
    return_type   "numpy" or "arrow"; default: the input's kind.

    Returns, pooled: ``[n, dim]`` (Arrow: fixed_size_list<dim>). Per token: padded input gives
    ``[n, L, dim]`` with zero vectors on padding (the mask is the input's); flat input gives
    ``[T, dim]``; Arrow gives large_list<fixed_size_list<dim>>."""
    if isinstance(ids, dict):
        enc = ids
        ids = enc["input_ids"]
        if mask is None and not isinstance(ids, (pa.Array, pa.ChunkedArray)):
            mask = enc.get("attention_mask")
        if slots is None and isinstance(table, HashEmbedding) and table.importance is not None:
            slots = enc.get("weight_slots")
    if _on_device(table, ids):
        from kmerx.tables.device import embed_device

        return embed_device(table, ids, positions, offsets=offsets, mask=mask, pos_encoding=pos_encoding,
                            pos_table=pos_table, pool=pool, weights=weights, slots=slots, out_dtype=out_dtype)
    if pool not in _POOLS:
        raise ValueError(f"pool must be None, 'sum', 'mean' or 'max', got {pool!r}")
    if pos_encoding not in _POS:
        raise ValueError(f"pos_encoding must be one of {_POS}, got {pos_encoding!r}")
    if return_type not in (None, "numpy", "arrow"):
        raise ValueError(f"return_type must be 'numpy' or 'arrow', got {return_type!r}")
    f16 = _out_dtype(out_dtype)

    # The table(s) and how a token's ids combine.
    kw: dict[str, Any] = {}
    want_h = 1
    if isinstance(table, EmbeddingTable):
        main = table
    elif isinstance(table, HashEmbedding):
        main, want_h = table.table, table.num_hashes
    elif isinstance(table, QREmbedding):
        main = table.quotient
        kw.update(table2=table.remainder.native(), dtype2=DTYPES[table.remainder.dtype], qr_m=table.m,
                  combine=1 if table.combine == "product" else 0)
    else:
        raise TypeError(f"table must be an EmbeddingTable, HashEmbedding or QREmbedding, got {type(table).__name__}")
    dim = main.dim

    batch = _Batch(ids, offsets, mask)
    if batch.h != want_h:
        raise ValueError(f"ids have {batch.h} id(s) per token, the table takes {want_h}")
    flat = _ids(batch.flat)
    if weights is not None or slots is not None:
        if not isinstance(table, HashEmbedding):
            raise ValueError("weights and slots apply to a HashEmbedding")
    if weights is not None:
        kw["weights"] = batch.per_token(weights, "weights", np.float32, want_h)
    elif isinstance(table, HashEmbedding) and table.importance is not None:
        if slots is None:
            raise ValueError("this HashEmbedding has learned importance weights: pass slots= (weight_slots)")
        kw["slots"] = batch.per_token(slots, "slots", np.uint32)
        kw["slot_weights"] = table.importance

    if pos_encoding != "none":
        pos = batch.per_token(positions, "positions", np.int64)
        if pos is not None:
            if pos.size and pos.max() > np.iinfo(np.int32).max:
                raise ValueError(f"positions must be < 2^31, got {int(pos.max())}")
            kw["positions"] = pos.astype(np.int32)
            top = int(pos.max()) + 1 if pos.size else 0
        else:
            top = int(np.diff(batch.offsets).max()) if batch.n else 0
        if pos_encoding == "sinusoidal":
            kw["pos_table"] = sinusoidal(max(top, 1), dim)
        else:
            kw["pos_table"] = _learned(pos_table, dim)
    elif positions is not None or pos_table is not None:
        raise ValueError("positions and pos_table need pos_encoding='sinusoidal' or 'learned'")

    code = _POOLS[pool]
    out = None
    if code == 0 and batch.out_rows is not None:
        n, width = batch.padded_shape
        # np.empty, not np.zeros: calloc'ed pages cost ~10x more to first touch (no huge pages).
        out = np.empty((n, width, dim), np.float16 if f16 else np.float32)
        out[~batch.keep] = 0
        kw["out_rows"] = batch.out_rows
    result = _core.lookup(main.native(), dim, DTYPES[main.dtype], flat, batch.offsets, h=want_h, pool=code,
                          out_f16=f16, out=out, **kw)
    if code == 0 and batch.padded_shape is not None:
        result = result.reshape(*batch.padded_shape, dim)
    if (return_type or ("arrow" if batch.arrow else "numpy")) == "numpy":
        return result
    return _to_arrow(result, batch, pooled=code != 0, dim=dim)


def _learned(pos_table: Any, dim: int) -> np.ndarray:
    if pos_table is None:
        raise ValueError("pos_encoding='learned' needs pos_table= (an EmbeddingTable or a [P, dim] array)")
    t = pos_table.to_numpy() if isinstance(pos_table, EmbeddingTable) else np.asarray(pos_table)
    if t.ndim != 2 or t.shape[1] != dim:
        raise ValueError(f"pos_table must be (positions, {dim}), got shape {t.shape}")
    return np.ascontiguousarray(t, dtype=np.float32)


def _to_arrow(values: np.ndarray, batch: _Batch, *, pooled: bool, dim: int) -> pa.Array:
    if not pooled and batch.keep is not None:
        values = values[batch.keep]
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dim)
    if pooled:
        return vectors
    return pa.LargeListArray.from_arrays(pa.array(batch.offsets, pa.int64()), vectors)


def _on_device(table: Any, ids: Any) -> bool:
    if type(table).__name__ == "DeviceTable":
        return True
    if isinstance(ids, dict):
        ids = ids.get("input_ids")
    return hasattr(ids, "__cuda_array_interface__") and not isinstance(ids, np.ndarray)


class _CallableModule(types.ModuleType):
    """``kmerx.embed`` is this module and also callable as :func:`embed` itself."""

    def __call__(self, *args: Any, **kw: Any) -> Any:
        return embed(*args, **kw)


sys.modules[__name__].__class__ = _CallableModule
