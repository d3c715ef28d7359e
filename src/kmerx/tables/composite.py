"""Composite tables for compressed vocabularies: hash embeddings and the quotient-remainder trick."""

from __future__ import annotations

from typing import Any

import numpy as np

from kmerx import _core
from kmerx._checks import check_int
from kmerx.tables.config import DTYPES, INITS, TableConfig, check_dtype
from kmerx.tables.table import EmbeddingTable

__all__ = ["HashEmbedding", "QREmbedding"]


def _memory(resident: int, dim: int, vocab_size: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"resident_bytes": int(resident)}
    if vocab_size is not None:
        check_int("vocab_size", vocab_size, 1)
        out["vocab_dense_bytes"] = int(vocab_size) * dim * 4
        out["ratio_vs_vocab"] = out["vocab_dense_bytes"] / max(1, resident)
    return out


class HashEmbedding:
    """Hash embeddings: a token with h ids (a hashed tokenizer with ``num_hashes=h``) is the weighted
    sum of its h rows of ``table``. The weights are per token (``embed(..., weights=)``), or learned
    per bucket: ``importance`` is float32 ``[buckets, h]`` and a token's bucket is its weight slot
    (``Encoding.weight_slots`` of a tokenizer with ``weight_buckets``), or 1 when neither is given."""

    def __init__(self, table: EmbeddingTable, num_hashes: int, importance: Any = None) -> None:
        if not isinstance(table, EmbeddingTable):
            raise TypeError(f"table must be an EmbeddingTable, got {type(table).__name__}")
        self.table = table
        self.num_hashes = check_int("num_hashes", num_hashes, 1, 64)
        self.importance = None
        if importance is not None:
            imp = np.ascontiguousarray(importance, dtype=np.float32)
            if imp.ndim != 2 or imp.shape[1] != self.num_hashes or imp.shape[0] < 1:
                raise ValueError(f"importance must be (buckets, {self.num_hashes}), got shape {imp.shape}")
            self.importance = imp

    @property
    def dim(self) -> int:
        return self.table.dim

    def memory(self, vocab_size: int | None = None) -> dict[str, Any]:
        """Resident bytes (table + importance weights) against a dense float32 vocabulary table."""
        extra = 0 if self.importance is None else self.importance.nbytes
        return _memory(self.table.memory()["resident_bytes"] + extra, self.dim, vocab_size)

    def __repr__(self) -> str:
        return f"HashEmbedding({self.table!r}, num_hashes={self.num_hashes})"


class QREmbedding:
    """The quotient-remainder trick: id i is ``quotient[i // m] * remainder[i % m]`` (``combine=
    "product"``) or their sum, with m = ``remainder.rows``: two small tables give every one of
    ``quotient.rows * m`` ids its own vector. Both tables are dense."""

    def __init__(self, quotient: EmbeddingTable, remainder: EmbeddingTable, combine: str = "product") -> None:
        for name, t in (("quotient", quotient), ("remainder", remainder)):
            if not isinstance(t, EmbeddingTable):
                raise TypeError(f"{name} must be an EmbeddingTable, got {type(t).__name__}")
            if not t.dense:
                raise ValueError(f"{name} must be a dense table (quotient-remainder tables are small)")
        if quotient.dim != remainder.dim:
            raise ValueError(f"quotient and remainder dims differ: {quotient.dim} != {remainder.dim}")
        if combine not in ("product", "sum"):
            raise ValueError(f"combine must be 'product' or 'sum', got {combine!r}")
        self.quotient, self.remainder, self.combine = quotient, remainder, combine

    @classmethod
    def create(cls, num_ids: int, dim: int, *, m: int | None = None, dtype: str = "float32",
               combine: str = "product", seed: int = 0, init: str = "normal", scale: float = 1.0) -> QREmbedding:
        """Tables for ids 0..num_ids-1: m (default ceil(sqrt(num_ids))) remainder rows and
        ceil(num_ids / m) quotient rows, initialised with virtual rows of seeds seed and seed + 1."""
        check_int("num_ids", num_ids, 1, 2**62)
        m = check_int("m", m if m is not None else int(np.ceil(np.sqrt(num_ids))), 1, num_ids)
        check_dtype(dtype)
        if init not in INITS:
            raise ValueError(f"init must be one of {sorted(INITS)}, got {init!r}")

        def table(rows: int, s: int) -> EmbeddingTable:
            encoded = _core.virtual_rows(np.arange(rows, dtype=np.int64), dim, DTYPES[dtype], s, INITS[init], scale)
            return EmbeddingTable(TableConfig(rows=rows, dim=dim, dtype=dtype, init="zeros"), rows=encoded)

        return cls(table(-(-num_ids // m), seed), table(m, seed + 1), combine)

    @property
    def m(self) -> int:
        return self.remainder.rows

    @property
    def dim(self) -> int:
        return self.quotient.dim

    @property
    def rows(self) -> int:
        """Ids the pair can represent: quotient.rows * m."""
        return self.quotient.rows * self.m

    def lookup(self, ids: Any) -> np.ndarray:
        from kmerx.embed import embed

        a = np.asarray(ids)
        flat = np.ascontiguousarray(a.reshape(-1).astype(np.int64, copy=False))
        return embed(self, flat, offsets=np.arange(flat.size + 1, dtype=np.int64)).reshape(*a.shape, self.dim)

    def memory(self, vocab_size: int | None = None) -> dict[str, Any]:
        resident = self.quotient.memory()["resident_bytes"] + self.remainder.memory()["resident_bytes"]
        return _memory(resident, self.dim, vocab_size)

    def __repr__(self) -> str:
        return f"QREmbedding({self.quotient.rows} x {self.m} ids, dim {self.dim}, {self.combine})"
