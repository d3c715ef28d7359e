"""Exact k-mer counting (k <= 64) with a memory budget, as KMC and jellyfish count.

Codes follow :func:`kmerx.kmers.kmer_codes` (``uint64[n]`` for k <= 32, ``[hi, lo]`` rows for k > 32);
results are sorted by code, i.e. by k-mer in ACGT order. See docs/counting.md for the algorithm.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

import kmerx
from kmerx import _core
from kmerx._checks import check_int
from kmerx.kmers.codes import _check_k, decode_kmers, decode_kmers_arrow, seq_arrays

__all__ = ["DEFAULT_MAX_MEMORY", "Counter", "KmerCounts", "count", "histogram"]

DEFAULT_MAX_MEMORY = 2 << 30  # bytes of binned k-mers held before spilling to tmp_dir
_U64_MAX = (1 << 64) - 1
_READ_BATCH_BYTES = 16 << 20
_ROWS_PER_GROUP = 1 << 20  # Parquet row group of Counter.finish(output); to_parquet's default


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    threads = check_int("threads", threads, 1)
    before = kmerx.num_threads()
    kmerx.set_num_threads(threads)
    try:
        yield
    finally:
        kmerx.set_num_threads(before)


class KmerCounts:
    """Distinct k-mers and their counts, sorted by code (k-mer order)."""

    def __init__(self, codes: np.ndarray, counts: np.ndarray, k: int, canonical: bool) -> None:
        self.codes, self.counts, self.k, self.canonical = codes, counts, int(k), bool(canonical)

    def __len__(self) -> int:
        return len(self.counts)

    def __repr__(self) -> str:
        return f"KmerCounts(k={self.k}, canonical={self.canonical}, distinct={len(self)}, total={self.total()})"

    def total(self) -> int:
        """Sum of the counts (k-mer occurrences kept)."""
        return int(self.counts.sum(dtype=np.uint64))

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """The k-mer spectrum as ``jellyfish histo`` prints it: ``(count, n)`` uint64 arrays, ascending
        count, every count that occurs (n = number of distinct k-mers seen exactly that many times)."""
        return histogram(self.counts)

    def top(self, n: int) -> KmerCounts:
        """The n most frequent k-mers, most frequent first; ties in k-mer order."""
        n = check_int("n", n, 0)
        c = self.counts.astype(np.int64)
        if n < len(c):
            # Only the candidates at or above the n-th largest count need a full sort.
            cut = np.partition(c, len(c) - n)[len(c) - n] if n else c.max(initial=0) + 1
            idx = np.flatnonzero(c >= cut)
        else:
            idx = np.arange(len(c))
        idx = idx[np.argsort(-c[idx], kind="stable")][:n]
        return KmerCounts(self.codes[idx], self.counts[idx], self.k, self.canonical)

    def kmers(self) -> list[str]:
        """The k-mer strings (uppercase ACGT), in the order of :attr:`codes`."""
        return decode_kmers(self.codes, self.k)

    def to_table(self, start: int = 0, stop: int | None = None, *, kmers: bool = True) -> pa.Table:
        """Rows ``kmer, count, code`` (``code_hi, code_lo`` for k > 32) of [start, stop); without the
        ``kmer`` strings when ``kmers=False``."""
        codes, counts = self.codes[start:stop], self.counts[start:stop]
        cols = {"kmer": decode_kmers_arrow(codes, self.k)} if kmers else {}
        cols["count"] = pa.array(counts)
        if self.k <= 32:
            cols["code"] = pa.array(codes)
        else:
            cols["code_hi"], cols["code_lo"] = pa.array(codes[:, 0]), pa.array(codes[:, 1])
        meta = {b"kmerx.k": str(self.k).encode(), b"kmerx.canonical": str(int(self.canonical)).encode()}
        return pa.table(cols).replace_schema_metadata(meta)

    def to_parquet(self, path: str | os.PathLike, *, kmers: bool = True, rows_per_group: int = 1 << 20) -> None:
        """Write :meth:`to_table` to Parquet atomically, decoding k-mers one row group at a time
        (``kmers=False``: codes and counts only, much smaller and faster to write)."""
        from kmerx.formats import atomic_path

        rows_per_group = check_int("rows_per_group", rows_per_group, 1)
        with atomic_path(path) as tmp:
            self._write_parquet(tmp, kmers, rows_per_group)

    def _parquet_writer(self, path: str, kmers: bool) -> Any:
        import pyarrow.parquet as pq

        schema = self.to_table(0, 0, kmers=kmers).schema
        # K-mer strings snappy-compressed (zstd writes at half the speed for 30% less); codes plain
        # and uncompressed (delta packing costs more time than it saves here), with
        # statistics so readers can skip row groups by code; counts (mostly small) dictionary-encoded.
        codes = [c for c in ("code", "code_hi", "code_lo") if c in schema.names]
        opts = dict(compression={n: "snappy" if n == "kmer" else "NONE" for n in schema.names},
                    use_dictionary=["count"], write_statistics=codes)
        return pq.ParquetWriter(path, schema, **opts)

    def _write_groups(self, writer: Any, start: int, stop: int, kmers: bool, rows_per_group: int) -> None:
        # Row groups start at multiples of rows_per_group, so writing in steps gives the same file.
        starts = range(start, stop, rows_per_group)
        tables = (self.to_table(s, min(s + rows_per_group, stop), kmers=kmers) for s in starts)
        if kmers and len(starts) > 1:  # decode the next group's strings while this one is compressed
            tables = prefetch(tables, depth=1)
        for t in tables:
            writer.write_table(t)

    def _write_parquet(self, path: str, kmers: bool, rows_per_group: int) -> None:
        with self._parquet_writer(path, kmers) as w:
            self._write_groups(w, 0, max(len(self), 1), kmers, rows_per_group)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike) -> KmerCounts:
        """Read a file written by :meth:`to_parquet`."""
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
        if b"kmerx.k" not in meta:
            raise ValueError(f"{path}: not a kmerx counts file (no 'kmerx.k' metadata)")
        k = int(meta[b"kmerx.k"])
        canonical = meta.get(b"kmerx.canonical", b"1") == b"1"
        cols = ["count", "code"] if k <= 32 else ["count", "code_hi", "code_lo"]
        t = pq.read_table(path, columns=cols)
        counts = t.column("count").to_numpy()
        if k <= 32:
            codes = t.column("code").to_numpy().astype(np.uint64, copy=False)
        else:
            codes = np.stack([t.column("code_hi").to_numpy(), t.column("code_lo").to_numpy()], axis=1)
        return cls(np.ascontiguousarray(codes, dtype=np.uint64), counts, k, canonical)


def histogram(counts: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(count, n)``: how many entries of ``counts`` hold each value, for the values present."""
    counts = np.asarray(counts)
    if counts.size == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    top = int(counts.max())
    if top <= (1 << 24):
        n = np.zeros(top + 1, np.int64)
        for s in range(0, counts.size, 1 << 22):  # slices: bincount would copy all counts to intp at once
            n += np.bincount(counts[s : s + (1 << 22)].astype(np.intp), minlength=top + 1)
        values = np.flatnonzero(n)
        return values.astype(np.uint64), n[values].astype(np.uint64)
    values, n = np.unique(counts, return_counts=True)
    return values.astype(np.uint64), n.astype(np.uint64)


class Counter:
    """Streaming exact counter: ``add(batch)`` any number of times, then ``finish() -> KmerCounts``.

    k: 1..64. canonical: count min(k-mer, reverse complement) (default) or the forward k-mer.
    min_count / max_count: keep k-mers seen in [min_count, max_count] times (max_count None: no bound).
    max_memory: bytes of binned k-mers held in memory (default 2 GiB); beyond half of it the bins spill
    to raw files under tmp_dir (default $TMPDIR) and are read back one at a time at finish().
    bins: number of bins (0: automatic, up to 1024). Threads: the kmerx pool size when constructed.
    """

    def __init__(
        self,
        k: int,
        *,
        canonical: bool = True,
        min_count: int = 1,
        max_count: int | None = None,
        max_memory: int = DEFAULT_MAX_MEMORY,
        tmp_dir: str | os.PathLike | None = None,
        bins: int = 0,
    ) -> None:
        k = _check_k(k)
        min_count = check_int("min_count", min_count, 1, _U64_MAX)
        max_count = _U64_MAX if max_count is None else check_int("max_count", max_count, 1, _U64_MAX)
        if min_count > max_count:
            raise ValueError(f"min_count must be <= max_count, got min_count={min_count} max_count={max_count}")
        max_memory = check_int("max_memory", max_memory, 1, _U64_MAX)
        bins = check_int("bins", bins, 0, 65536)
        if tmp_dir is not None and not pathlib.Path(tmp_dir).is_dir():
            raise ValueError(f"tmp_dir must be an existing directory, got {str(tmp_dir)!r}")
        self.k, self.canonical = k, bool(canonical)
        self._native = _core.KmerCountNative(k, self.canonical, max_memory, "" if tmp_dir is None else str(tmp_dir),
                                             bins, min_count, max_count)
        self._done = False

    def add(self, seqs: Any) -> None:
        """Count the k-mers of a ReadBatch / Table, an Arrow binary or string array, or str/bytes (list)."""
        if self._done:
            raise RuntimeError("Counter.add() after finish()")
        data, offsets = seq_arrays(seqs)
        self._native.add_reads(data, offsets)

    def add_codes(self, codes: Any) -> None:
        """Count k-mer codes computed elsewhere (``uint64[n]`` for k <= 32, ``[n, 2]`` for k > 32)."""
        from kmerx.kmers.codes import _codes_numpy

        if self._done:
            raise RuntimeError("Counter.add_codes() after finish()")
        self._native.add_codes(np.ascontiguousarray(_codes_numpy(codes), dtype=np.uint64))

    @property
    def total_kmers(self) -> int:
        """K-mers added so far."""
        return int(self._native.total_kmers)

    @property
    def spilled_bytes(self) -> int:
        """Bytes written to spill files so far."""
        return int(self._native.spilled_bytes)

    def finish(self, output: str | os.PathLike | None = None, *, kmers: bool = True) -> KmerCounts:
        """Count every bin: the result, sorted by code. output: also write it to this Parquet file, the
        same file as ``result.to_parquet(output, kmers=kmers)``, but while the bins are counted: bins are
        counted in groups and a writer thread writes the rows of one group while the next is counted."""
        if self._done:
            raise RuntimeError("Counter.finish() was already called")
        self._done = True
        codes, counts = self._native.begin_finish()
        if output is None:
            return self._result(codes, counts, self._native.count_bins(0))
        from kmerx.formats import atomic_path

        with atomic_path(output) as tmp:
            writer = _StreamWriter(tmp, KmerCounts(codes, counts, self.k, self.canonical), bool(kmers))
            try:
                # Groups of ~1/32 of the bins: the first group's write and the last group's count are
                # the only parts that do not overlap.
                group, rows = max(1, self._native.bins // 32), 0
                while self._native.bins_left:
                    rows = self._native.count_bins(group)
                    writer.ready(rows)
                result = self._result(codes, counts, rows)
            except BaseException:
                writer.close(None)
                raise
            writer.close(result)
        return result

    def _result(self, codes: np.ndarray, counts: np.ndarray, n: int) -> KmerCounts:
        counts = counts[:n]
        if self._native.max_count_seen >= 0xFFFFFFFF:  # saturated uint32 counts: the exact ones are native
            counts = counts.astype(np.uint64)
            self._native.big_counts(counts)
        return KmerCounts(codes[:n], counts, self.k, self.canonical)


class _StreamWriter:
    """Writes the rows of a result as they become final, on a thread, in the row groups of
    :meth:`KmerCounts.to_parquet` (same boundaries, same options), so the file is the same."""

    def __init__(self, path: str, rows: KmerCounts, kmers: bool) -> None:
        import queue
        import threading

        self._path, self._rows, self._kmers, self._rpg = path, rows, kmers, _ROWS_PER_GROUP
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kmerx-count-writer", daemon=True)
        self._thread.start()

    def ready(self, n: int) -> None:
        """Rows [0, n) are final."""
        if self._error is not None:
            raise self._error
        self._q.put(n)

    def close(self, result: KmerCounts | None) -> None:
        """Writes the rest of result and closes the file (result None: abandon it); raises the
        writer's error."""
        self._q.put(("end", result))
        self._thread.join()
        if self._error is not None and result is not None:
            raise self._error

    def _run(self) -> None:
        try:
            done = 0  # rows written
            with self._rows._parquet_writer(self._path, self._kmers) as w, _Writeback(self._path) as wb:
                while not isinstance(item := self._q.get(), tuple):
                    stop = item // self._rpg * self._rpg
                    if stop > done:
                        self._rows._write_groups(w, done, stop, self._kmers, self._rpg)
                        done = stop
                        wb.start()
                result = item[1]
                if result is not None and result.counts.dtype == self._rows.counts.dtype:
                    result._write_groups(w, done, max(len(result), 1), self._kmers, self._rpg)
            if result is not None and result.counts.dtype != self._rows.counts.dtype:
                # A count above 2^32 - 1 turned up after uint32 rows were written: start again.
                result._write_parquet(self._path, self._kmers, self._rpg)
        except BaseException as e:  # raised in the caller's thread
            self._error = e


class _Writeback:
    """Starts the disk writeback of a file being written (without waiting for it), so the fsync that
    ends an atomic write finds little left to flush."""

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDONLY) if hasattr(os, "posix_fadvise") else -1

    def start(self) -> None:
        if self._fd >= 0:  # Linux: DONTNEED starts the writeback of dirty pages and drops clean ones
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_DONTNEED)

    def __enter__(self) -> _Writeback:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)


def prefetch(batches: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Yields the items of batches, produced by a background thread up to depth ahead, so reading and
    decompressing the next batch overlaps counting this one (both release the GIL)."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for b in batches:
                while not stop.is_set():
                    try:
                        q.put(b, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(end)
        except BaseException as e:  # handed to the consumer, raised there
            q.put(e)

    t = threading.Thread(target=produce, name="kmerx-prefetch", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()
        t.join()


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _batches(sources: Any, progress: bool) -> Iterator[Any]:
    """Batches of sources: one path or a list of paths (read with kmerx.io.read), one batch, or an
    iterable of batches."""
    if _is_path(sources):
        sources = [sources]
    if isinstance(sources, (list, tuple)) and sources and all(_is_path(s) for s in sources):
        from kmerx import io

        for path in sources:
            yield from _progress(prefetch(io.read(path, batch_bytes=_READ_BATCH_BYTES)), progress, os.fspath(path))
        return
    if isinstance(sources, (pa.RecordBatch, pa.Table, pa.Array, pa.ChunkedArray, bytes)):
        sources = [sources]
    if not isinstance(sources, Iterable):
        raise TypeError(f"sources must be a path, a list of paths, a batch or an iterable of batches, "
                        f"got {type(sources).__name__}")
    yield from _progress(iter(sources), progress, "counting")


def _progress(batches: Iterator[Any], progress: bool, desc: str) -> Iterator[Any]:
    if not progress:
        yield from batches
        return
    from tqdm import tqdm

    with tqdm(desc=desc, unit="reads", unit_scale=True, leave=False, mininterval=0.5) as bar:
        for b in batches:
            bar.update(b.num_rows if hasattr(b, "num_rows") else len(b))
            yield b


def count(
    sources: Any,
    k: int,
    *,
    canonical: bool = True,
    min_count: int = 1,
    max_count: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    tmp_dir: str | os.PathLike | None = None,
    threads: int | None = None,
    bins: int = 0,
    progress: bool = False,
    output: str | os.PathLike | None = None,
    kmers: bool = True,
) -> KmerCounts:
    """Exact counts of the k-mers (free of non-ACGT bases) of ``sources``.

    sources: a FASTA/FASTQ path (str/PathLike) or a list of paths (any format kmerx.io.read takes), one
    ReadBatch / Arrow array, or an iterable of batches (each a ReadBatch, Arrow array or list of str).
    A list whose items are all str is taken as paths; wrap sequences as ``[["ACGT", ...]]``.
    threads: pool size for this call (default: kmerx.num_threads()). output: also write the result to this
    Parquet file (as ``result.to_parquet(output, kmers=kmers)``), overlapping the write with the final
    counting pass (:meth:`Counter.finish`). Other arguments: :class:`Counter`.
    """
    with _threads(threads):
        c = Counter(k, canonical=canonical, min_count=min_count, max_count=max_count, max_memory=max_memory,
                    tmp_dir=tmp_dir, bins=bins)
        for batch in _batches(sources, progress):
            c.add(batch)
        return c.finish(output, kmers=kmers)
