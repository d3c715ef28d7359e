"""Each rank's rows of an embedding output: a deterministic, balanced split of the manifest's rows
into contiguous ranges, read as Parquet row groups or HDF5 hyperslabs, so no rank reads another's
data and any number of ranks (more than shards included) works.

Rows are numbered in manifest order (shard by shard), so rank r of N always holds rows
``span(total, N, r)``, whatever the shard sizes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from kmerx.formats import manifest


def span(total: int, ranks: int, rank: int) -> tuple[int, int]:
    """Rows [start, stop) of ``rank`` out of ``ranks``: sizes differ by at most one row."""
    if ranks < 1 or not 0 <= rank < ranks:
        raise ValueError(f"rank must be in 0..{ranks - 1}, got {rank}")
    return total * rank // ranks, total * (rank + 1) // ranks


@dataclasses.dataclass(frozen=True)
class Piece:
    """Rows [lo, hi) of shard ``shard`` (its index in the manifest); ``start`` is the global row of lo."""

    shard: int
    lo: int
    hi: int
    start: int


def pieces(shard_rows: list[int], start: int, stop: int) -> list[Piece]:
    """The shard row ranges that make up global rows [start, stop)."""
    out = []
    first = 0
    for i, rows in enumerate(shard_rows):
        lo, hi = max(start, first), min(stop, first + rows)
        if lo < hi:
            out.append(Piece(i, lo - first, hi - first, lo))
        first += rows
    return out


@dataclasses.dataclass
class Block:
    """One rank's rows: global row numbers [start, stop), their read_index and vectors (float32)."""

    start: int
    stop: int
    read_index: np.ndarray
    vectors: np.ndarray
    pieces: list[Piece]
    bytes_read: int = 0
    seconds: float = 0.0


class Embeddings:
    """The manifest of a pipeline output and the shard reader. ``read(start, stop)`` returns global
    rows [start, stop) as a :class:`Block`; per-token outputs are mean-pooled per read as they are read."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.folder = os.fspath(out)
        if self.folder.endswith(manifest.NAME):
            self.folder = os.path.dirname(self.folder) or "."
        self.manifest: dict[str, Any] = manifest.read(self.folder)
        self.format: str = self.manifest["format"]
        emb = self.manifest["embedding"]
        self.dim: int = int(emb["dim"])
        self.per_token: bool = emb["mode"] == "per_token"
        self.shards: list[dict[str, Any]] = self.manifest["shards"]
        self.shard_rows = [int(s["rows"]) for s in self.shards]
        self.rows = sum(self.shard_rows)
        missing = [s["path"] for s in self.shards if not os.path.exists(self.path_of(s))]
        if missing:
            raise FileNotFoundError(f"{self.folder}: {len(missing)} shard(s) in the manifest are missing: "
                                    + ", ".join(missing[:5]))

    def _import(self) -> None:
        # Imported before reading starts, so the read time (and rate) is the reading's.
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet  # noqa: F401

            pa.array(np.zeros(1, np.int64)).to_numpy()  # the first to_numpy imports pandas (0.3 s)
        else:
            import h5py  # noqa: F401

    def path_of(self, shard: dict[str, Any]) -> str:
        return os.path.join(self.folder, shard["path"])

    def path(self, shard: int) -> str:
        return self.path_of(self.shards[shard])

    def read(self, start: int, stop: int) -> Block:
        self._import()
        t0 = time.perf_counter()
        parts = pieces(self.shard_rows, start, stop)
        # One output, filled piece by piece: each piece's buffers are freed (and their pages reused)
        # before the next is read, and no second copy is made to join them.
        index = np.empty(stop - start, np.int64)
        vectors = np.empty((stop - start, self.dim), np.float32)
        nbytes = 0
        reader = self._parquet if self.format == "parquet" else self._hdf5
        for p in parts:
            try:
                ri, vec, b = reader(self.path(p.shard), p.lo, p.hi)
            except (OSError, ValueError, KeyError) as e:  # pyarrow's and h5py's errors don't name the file
                raise ValueError(f"{self.path(p.shard)}: {e}") from e
            if len(ri) != p.hi - p.lo or len(vec) != len(ri):
                raise ValueError(f"{self.path(p.shard)}: rows {p.lo}..{p.hi - 1} could not be read: the shard "
                                 f"holds fewer rows than the manifest's {self.shard_rows[p.shard]}")
            at = p.start - start
            index[at:at + len(ri)] = ri
            vectors[at:at + len(ri)] = vec
            nbytes += b
        return Block(start, stop, index, vectors, parts, nbytes, time.perf_counter() - t0)

    def _parquet(self, path: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, int]:
        import pyarrow.parquet as pq

        f = pq.ParquetFile(path, memory_map=True)
        meta = f.metadata
        groups, first, skip = [], 0, 0
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if first < hi and first + n > lo:
                if not groups:
                    skip = lo - first
                groups.append(g)
            first += n
        nbytes = sum(meta.row_group(g).total_byte_size for g in groups)
        table = f.read_row_groups(groups, columns=["read_index", "embedding"]).slice(skip, hi - lo)
        ri = table.column("read_index").to_numpy().astype(np.int64, copy=False)
        emb = table.column("embedding").combine_chunks()
        if self.per_token:
            lengths = emb.value_lengths().to_numpy(zero_copy_only=False)
            flat = _floats(emb.flatten().flatten(), self.dim)
            return ri, _mean_per_read(flat, lengths), nbytes
        return ri, _floats(emb.flatten(), self.dim), nbytes

    def _hdf5(self, path: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, int]:
        import h5py

        with h5py.File(path, "r") as f:
            ri = f["read_index"][lo:hi].astype(np.int64, copy=False)
            if self.per_token:
                n_tokens = f["n_tokens"][:hi].astype(np.int64)
                t0 = int(n_tokens[:lo].sum())
                lengths = n_tokens[lo:]
                vec = f["embedding"][t0:t0 + int(lengths.sum())]
                out = _mean_per_read(vec.astype(np.float32, copy=False), lengths)
            else:
                vec = f["embedding"][lo:hi]
                out = vec.astype(np.float32, copy=False)
        return ri, out, ri.nbytes + vec.nbytes


def _floats(values: Any, dim: int) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)


def _mean_per_read(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean of each read's token vectors (zero for a read without tokens)."""
    out = np.zeros((len(lengths), tokens.shape[1]), np.float32)
    has = lengths > 0
    if has.any():
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[has]
        out[has] = np.add.reduceat(tokens.astype(np.float64), starts, axis=0) / lengths[has, None]
    return out


def write_embeddings(out: str | os.PathLike, vectors: np.ndarray, *, shard_rows: int = 100_000,
                     fmt: str = "parquet", names: list[str] | None = None, row_group_rows: int = 16_384,
                     dtype: str = "float32") -> dict[str, Any]:
    """Write pooled ``vectors`` [n, dim] as an embedding output (shards + manifest.json) that the solvers
    read like a pipeline's: for embeddings made elsewhere, and for tests and benchmarks."""
    import pyarrow as pa

    from kmerx.formats.shards import SUFFIX, ShardWriter

    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not len(vectors):
        raise ValueError(f"vectors must be a non-empty [n, dim] array, got shape {vectors.shape}")
    if fmt not in SUFFIX:
        raise ValueError(f"fmt must be parquet or hdf5, got {fmt!r}")
    folder = os.fspath(out)
    os.makedirs(folder, exist_ok=True)
    n, dim = vectors.shape
    records = []
    for s, lo in enumerate(range(0, n, shard_rows)):
        hi = min(n, lo + shard_rows)
        w = ShardWriter(os.path.join(folder, f"part-{s:05d}{SUFFIX[fmt]}"), dim=dim, dtype=dtype, per_token=False,
                        metadata={"shard": s})
        for a in range(lo, hi, row_group_rows):
            b = min(hi, a + row_group_rows)
            label = pa.array(names[a:b] if names is not None else [f"r{i}" for i in range(a, b)], pa.string())
            w.write(np.arange(a, b, dtype=np.int64), label, np.ones(b - a, np.int32), vectors[a:b])
        r = w.close()
        records.append({**r, "tokens": hi - lo, "first_read_index": lo, "last_read_index": hi - 1})
    m = {"kind": manifest.KIND, "version": 1, "format": fmt, "run_digest": f"arrays-{n}x{dim}",
         "embedding": {"mode": "pooled", "pool": "mean", "dim": dim, "dtype": dtype},
         "row_group_rows": row_group_rows, "reads": {"input": n, "output": n, "tokens": n}, "shards": records}
    manifest.write(folder, m)
    return m
