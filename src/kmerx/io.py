"""Read FASTA/FASTQ into ReadBatch (Arrow record batches), streaming and bounded in memory.

Sources: paths (str/PathLike), ``"-"`` for stdin, binary file objects, and URLs (``s3://``, ``gs://``,
``file://``...) through ``pyarrow.fs`` or fsspec. Compression is detected from magic bytes: gzip,
multi-member gzip and BGZF are decoded natively (ISA-L or zlib) on a second thread; bz2 and xz by the
standard library and zstd by the optional ``zstandard`` package, fed to the native parser.

Parsing is native; each batch's columns are Arrow arrays over the parser's buffers (no per-record
Python work). Sequence and quality bytes are passed through unchanged (no case change).

Byte ranges (:func:`split`, ``read(..., byte_range=)``): a reader yields the records whose header
byte lies in its range. At a cut it resynchronises on the first line start at or after the cut that
begins a record: for FASTA a ``>`` line; for FASTQ an ``@`` line from which the next 8 records (or all
up to the end of the file) parse cleanly under the sequential rules. Those rules make a quality line
that begins with ``@`` fail as a start: in wrapped FASTQ the real header that follows would land in
its sequence (a sequence line may not begin with ``@``), a ``+name`` line would name another record,
or the quality lengths would not line up.
"""

from __future__ import annotations

import bz2
import dataclasses
import lzma
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from kmerx import _core
from kmerx._arrow import binary_array, string_array
from kmerx._checks import check_int
from kmerx._core import FastxFormatError
from kmerx.config import StageConfig

__all__ = ["READ_SCHEMA", "ReadConfig", "read", "read_pairs", "split", "sniff"]

READ_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("seq", pa.large_binary()),
        pa.field("qual", pa.large_binary()),
        pa.field("read_index", pa.int64()),
    ]
)

_FORMATS = ("auto", "fasta", "fastq")
_CHUNK = 1 << 20  # bytes per pull from a Python stream
_PY_DECODED = ("bz2", "xz", "zstd")


# ---- argument checks -----------------------------------------------------------------------------
def _check_options(format: str, phred: int, batch_bytes: int, first_index: int) -> None:
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    if phred not in (33, 64) or isinstance(phred, bool):
        raise ValueError(f"phred must be 33 or 64, got {phred!r}")
    check_int("batch_bytes", batch_bytes, 1)
    check_int("first_index", first_index, 0)


# ---- sources ---------------------------------------------------------------------------------------
class _Prefixed:
    """A read(n) stream that serves ``head`` (bytes already taken for sniffing) before ``raw``."""

    def __init__(self, head: bytes, raw: Any):
        self._head, self._raw = head, raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out, self._head = self._head[:n], self._head[n:]
            return out
        return self._raw.read(n)


class _Guarded:
    """Turns decoder errors of a Python-decoded stream into FastxFormatError naming the file."""

    def __init__(self, stream: Any, label: str, compression: str, errors: tuple[type[BaseException], ...]):
        self._stream, self._label, self._comp, self._errors = stream, label, compression, errors

    def read(self, n: int) -> bytes:
        try:
            return self._stream.read(n)
        except self._errors as e:
            raise FastxFormatError(f"{self._label}: corrupt or truncated {self._comp} stream ({e})") from e


def _decoder(raw: Any, compression: str, label: str) -> _Guarded:
    if compression == "bz2":
        return _Guarded(bz2.BZ2File(raw), label, "bz2", (OSError, EOFError, ValueError))
    if compression == "xz":
        return _Guarded(lzma.LZMAFile(raw), label, "xz", (lzma.LZMAError, OSError, EOFError))
    try:
        import zstandard
    except ImportError:
        raise ImportError(
            f"{label} is zstd-compressed; reading it needs the 'zstandard' package (pip install zstandard)"
        ) from None
    dec = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return _Guarded(dec, label, "zstd", (zstandard.ZstdError, OSError, EOFError))


def _head(stream: Any, n: int = 18) -> tuple[bytes, Any]:
    """First bytes of a stream and a stream that still yields them."""
    peek = getattr(stream, "peek", None)
    if peek is not None:
        try:
            head = bytes(peek(n)[:n])
        except (OSError, ValueError):
            head = b""
        if len(head) == n:
            return head, stream
    head = b""
    while len(head) < n:
        more = stream.read(n - len(head))
        if not more:
            break
        if not isinstance(more, (bytes, bytearray, memoryview)):
            kind = type(more).__name__
            raise TypeError(f"source must be a binary stream (read() returned {kind}); open it with 'rb'")
        head += bytes(more)
    return head, _Prefixed(head, stream)


def _is_url(s: str) -> bool:
    return "://" in s and s.split("://", 1)[0].isalnum()


def _open_url(url: str) -> tuple[str | None, Any]:
    """(local path, None) for local file URLs, else (None, binary stream)."""
    try:
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(url)
        if isinstance(fs, pafs.LocalFileSystem):
            return path, None
        return None, fs.open_input_stream(path)
    except (ImportError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as arrow_err:
        try:
            import fsspec
        except ImportError:
            raise ValueError(
                f"cannot open {url!r}: pyarrow.fs does not support it ({arrow_err}) "
                "and fsspec is not installed"
            ) from None
        return None, fsspec.open(url, "rb").open()


def _stream_label(stream: Any) -> str:
    name = getattr(stream, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _open(source: Any, format: str, phred: int, batch_bytes: int, first_index: int, byte_range: Any):
    """(native reader over ``source``, file this call opened or None: close it after the reader)."""
    opts = dict(format=format, phred=phred, batch_bytes=batch_bytes, first_index=first_index)
    path: str | None = None
    stream: Any = None
    owned: Any = None  # a stream opened here, closed with the reader
    label = "<stream>"
    if isinstance(source, (str, bytes, os.PathLike)):
        s = os.fsdecode(source)
        if s == "-":
            stream, label = sys.stdin.buffer, "<stdin>"
        elif _is_url(s):
            path, stream = _open_url(s)
            owned = stream
            label = s if path is None else path
        else:
            path = s
    elif callable(getattr(source, "read", None)):
        stream, label = source, _stream_label(source)
    else:
        kind = type(source).__name__
        raise TypeError(f"source must be a path, '-', a URL or a binary file object, got {kind}")

    if path is not None:
        with open(path, "rb") as f:
            comp = _core.sniff_compression(f.read(18))
        if comp not in _PY_DECODED:
            rng = None if byte_range is None else _check_range(byte_range)
            return _core.fastx_open_path(path, byte_range=rng, **opts), None
        if byte_range is not None:
            raise ValueError(f"byte_range needs an uncompressed file path, but {path} is {comp}-compressed")
        stream, label = open(path, "rb"), path
        owned = stream
    elif byte_range is not None:
        if owned is not None:
            owned.close()
        raise ValueError(f"byte_range needs an uncompressed file path, got {label} (a stream)")
    try:
        head, stream = _head(stream)
        comp = _core.sniff_compression(head)
        if comp in _PY_DECODED:
            stream = _decoder(stream, comp, label)
        return _core.fastx_open_stream(stream.read, label, **opts), owned
    except BaseException:
        if owned is not None:
            owned.close()
        raise


def _check_range(byte_range: Any) -> tuple[int, int]:
    try:
        start, end = byte_range
    except (TypeError, ValueError):
        raise TypeError(f"byte_range must be a (start, end) tuple, got {byte_range!r}") from None
    start = check_int("byte_range start", start, 0)
    end = check_int("byte_range end", end, start)
    return start, end


def _batches(reader, owned: Any = None) -> Iterator[pa.RecordBatch]:
    try:
        while True:
            out = reader.next()
            if out is None:
                return
            n, first, nd, no, sd, so, qd, qo = out
            qual = binary_array(qd, qo) if qd is not None else pa.nulls(n, pa.large_binary())
            index = pa.array(np.arange(first, first + n, dtype=np.int64))
            yield pa.RecordBatch.from_arrays(
                [string_array(nd, no), binary_array(sd, so), qual, index], schema=READ_SCHEMA
            )
    finally:
        reader.close()
        if owned is not None:
            owned.close()


# ---- public API ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReadConfig(StageConfig):
    """Reader settings of a run (recorded in manifests): ``read(src, **cfg.kwargs())``.

    Fields as for :func:`read`: ``format`` ("auto"), ``phred`` (33), ``batch_bytes`` (4 MiB).
    Raises ValueError/TypeError on a bad value, naming it.
    """

    format: str = "auto"
    phred: int = 33
    batch_bytes: int = 4 << 20

    def __post_init__(self) -> None:
        _check_options(self.format, self.phred, self.batch_bytes, 0)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`read`."""
        return self.to_dict()


def read(
    source: Any,
    *,
    format: str = "auto",
    phred: int = 33,
    batch_bytes: int = 4 << 20,
    byte_range: tuple[int, int] | None = None,
    first_index: int = 0,
) -> Iterator[pa.RecordBatch]:
    """Stream the records of a FASTA/FASTQ source as ReadBatch (schema :data:`READ_SCHEMA`).

    Parameters
    ----------
    source:
        A path (str/PathLike), ``"-"`` for stdin, a binary file object (anything with ``read(n)``),
        or a URL (``file://``, ``s3://``, ``gs://``... through ``pyarrow.fs`` or fsspec). Plain, gzip
        (multi-member, BGZF), bz2, xz and zstd (needs ``zstandard``) inputs are detected by magic bytes.
    format:
        ``"auto"`` (default: from the first non-blank byte, ``>`` or ``@``), ``"fasta"`` or ``"fastq"``.
    phred:
        Quality offset, 33 (default; bytes 33..126 legal) or 64 (bytes 64..126). Qualities are
        passed through unchanged; the offset only sets the check.
    batch_bytes:
        Upper bound on name + sequence + quality bytes per batch (default 4 MiB); a single larger
        record makes a batch of its own. Memory stays bounded by about this plus the largest record.
    byte_range:
        ``(start, end)``: read only the records whose header starts in ``[start, end)`` of an
        uncompressed file (see :func:`split`). Any partition of ``[0, size)`` into ranges yields
        every record exactly once.
    first_index:
        ``read_index`` of the first record yielded (default 0); record i gets ``first_index + i``.

    Yields
    ------
    pyarrow.RecordBatch with columns ``name`` (the header line after ``>``/``@``), ``seq``, ``qual``
    (null for FASTA) and ``read_index``.

    Raises
    ------
    kmerx.FastxFormatError
        On a malformed record (``"{file}: record {n}, line {l}: {what}"``) or a corrupt/truncated
        compressed stream; raised while iterating.
    ValueError / TypeError
        On bad arguments, or ``byte_range`` with a stream or compressed file (raised at the call).
    ImportError
        For zstd input without the ``zstandard`` package.
    """
    _check_options(format, phred, batch_bytes, first_index)
    return _batches(*_open(source, format, phred, batch_bytes, first_index, byte_range))


def _pair_key(names: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    first_word = pc.replace_substring_regex(names, pattern=r"\s.*", replacement="")
    return pc.replace_substring_regex(first_word, pattern=r"/[12]$", replacement="")


def read_pairs(r1: Any, r2: Any, **kw: Any) -> Iterator[tuple[pa.RecordBatch, pa.RecordBatch]]:
    """Stream two mate files as aligned ``(batch1, batch2)`` pairs of equal length.

    ``r1``, ``r2`` and keyword options are as for :func:`read` (applied to both). Record i of batch1
    is the mate of record i of batch2.

    Raises
    ------
    kmerx.FastxFormatError
        When mate names differ (compared up to the first whitespace, a trailing ``/1`` or ``/2``
        ignored), naming both files and the record, or when one file has more records than the other.
    """

    def label(src: Any) -> str:
        return os.fsdecode(src) if isinstance(src, (str, bytes, os.PathLike)) else _stream_label(src)

    l1, l2 = label(r1), label(r2)
    it1, it2 = read(r1, **kw), read(r2, **kw)
    return _pairs(it1, it2, l1, l2)


def _pairs(it1, it2, l1: str, l2: str) -> Iterator[tuple[pa.RecordBatch, pa.RecordBatch]]:
    import pyarrow.compute as pc

    p1: pa.RecordBatch | None = None
    p2: pa.RecordBatch | None = None
    done1 = done2 = False
    seen = 0
    while True:
        while not done1 and (p1 is None or p1.num_rows == 0):
            p1 = next(it1, None)
            done1 = p1 is None
        while not done2 and (p2 is None or p2.num_rows == 0):
            p2 = next(it2, None)
            done2 = p2 is None
        n1 = 0 if p1 is None else p1.num_rows
        n2 = 0 if p2 is None else p2.num_rows
        if n1 == 0 or n2 == 0:
            if n1 or n2:
                longer, shorter = (l1, l2) if n1 else (l2, l1)
                raise FastxFormatError(
                    f"{l1} and {l2} have different numbers of records: {shorter} ends after {seen} records, "
                    f"{longer} has more"
                )
            return
        n = min(n1, n2)
        a, b = p1.slice(0, n), p2.slice(0, n)
        same = pc.equal(_pair_key(a.column(0)), _pair_key(b.column(0)))
        if not pc.all(same).as_py():
            i = int(np.argmin(np.asarray(same)))
            raise FastxFormatError(
                f"{l1} and {l2}: record {seen + i + 1}: mate names differ: "
                f"{a.column(0)[i].as_py()!r} vs {b.column(0)[i].as_py()!r}"
            )
        yield a, b
        seen += n
        p1, p2 = p1.slice(n), p2.slice(n)


def split(path: str | os.PathLike, n: int) -> list[tuple[int, int]]:
    """Cut an uncompressed file into ``n`` contiguous byte ranges of about equal size.

    Pass each range to ``read(path, byte_range=r)``: a reader yields the records whose header starts
    in its range, so the ranges together yield every record exactly once (cut points need not fall
    on record boundaries). Returns ``[(start, end), ...]`` covering ``[0, file size)``.

    Raises ValueError for ``n < 1`` or a compressed file; TypeError for a non-int ``n``.
    """
    n = check_int("n", n, 1)
    p = os.fspath(path)
    with open(p, "rb") as f:
        comp = _core.sniff_compression(f.read(18))
    if comp != "none":
        raise ValueError(f"split needs an uncompressed file, but {p} is {comp}-compressed")
    size = os.path.getsize(p)
    return [(size * i // n, size * (i + 1) // n) for i in range(n)]


def sniff(source: Any) -> dict[str, str]:
    """Detect ``{"compression": ..., "format": ...}`` of a source (as for :func:`read`) from its start.

    compression: ``"none"``, ``"gzip"``, ``"bgzf"``, ``"bz2"``, ``"xz"`` or ``"zstd"``; format:
    ``"fasta"``, ``"fastq"`` or ``"unknown"`` (empty, or not starting with ``>``/``@``). Parses at most
    the first 64 KiB of records; does not validate the rest. A file object is consumed.
    Raises ImportError for zstd input without ``zstandard``.
    """
    owned = None
    if isinstance(source, (str, bytes, os.PathLike)):
        s = os.fsdecode(source)
        if s == "-":
            source = sys.stdin.buffer
        elif _is_url(s):
            path, stream = _open_url(s)
            owned = stream
            source = path if path is not None else stream
        else:
            source = s
    if isinstance(source, str):
        with open(source, "rb") as f:
            comp = _core.sniff_compression(f.read(18))
    else:
        head, source = _head(source)
        comp = _core.sniff_compression(head)
    reader, opened = _open(source, "auto", 33, 1 << 16, 0, None)
    try:
        reader.next()
    except FastxFormatError:
        pass
    finally:
        fmt = reader.format
        reader.close()
        for f in (opened, owned):
            if f is not None:
                f.close()
    return {"compression": comp, "format": "unknown" if fmt == "auto" else fmt}
