"""TableConfig: the shape, storage and initialisation of an embedding table, as a frozen config."""

from __future__ import annotations

import dataclasses

from kmerx._checks import check_int
from kmerx.config import StageConfig

#: Storage dtypes and their native codes (kmerx/rows.hpp Dtype).
DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2, "int8": 3, "int4": 4}
#: Virtual initialisations and their native codes (kmerx/rows.hpp Init).
INITS = {"zeros": 0, "uniform": 1, "normal": 2}


def row_bytes(dtype: str, dim: int) -> int:
    """Bytes of one stored row: 4/2/2 per value for float32/float16/bfloat16; int8 and int4 rows hold
    1 byte / half a byte per value plus an fp32 scale and an fp32 bias."""
    code = DTYPES[check_dtype(dtype)]
    return (4 * dim, 2 * dim, 2 * dim, dim + 8, (dim + 1) // 2 + 8)[code]


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    return dtype


def default_block_rows(dtype: str, dim: int) -> int:
    """Rows per block when not given: blocks of about 4 KiB (one page, one disk read)."""
    return max(1, 4096 // row_bytes(dtype, dim))


@dataclasses.dataclass(frozen=True)
class TableConfig(StageConfig):
    """An embedding table's definition.

    rows, dim      table shape (rows up to 2^62; virtual tables never allocate it).
    dtype          storage: float32 | float16 | bfloat16 | int8 | int4 (row-wise scale and bias).
    init           content of rows never written: zeros | uniform | normal (virtual rows, a pure
                   function of (seed, row); see docs/tables.md for the exact definition).
    seed, scale    of the virtual rows: uniform on (-scale, scale), or mean 0 and standard deviation
                   scale.
    block_rows     rows per block, the unit of storage, caching and disk I/O (0: about 4 KiB blocks).
    cache_bytes    bound on the hot-block cache of a block-sparse table.
    """

    rows: int = 0
    dim: int = 0
    dtype: str = "float32"
    init: str = "normal"
    seed: int = 0
    scale: float = 1.0
    block_rows: int = 0
    cache_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        check_int("rows", self.rows, 0, 2**62)
        check_int("dim", self.dim, 1, 1 << 20)
        check_dtype(self.dtype)
        if self.init not in INITS:
            raise ValueError(f"init must be one of {sorted(INITS)}, got {self.init!r}")
        check_int("seed", self.seed, 0, 2**64 - 1)
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not 0 <= self.scale < 1e30:
            raise ValueError(f"scale must be a finite number >= 0, got {self.scale!r}")
        check_int("block_rows", self.block_rows, 0, 1 << 20)
        check_int("cache_bytes", self.cache_bytes, 0, 2**62)
        if self.block_rows == 0:
            object.__setattr__(self, "block_rows", default_block_rows(self.dtype, self.dim))
