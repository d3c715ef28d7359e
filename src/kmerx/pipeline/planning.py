"""The plan of a run: inputs -> read units (byte ranges of plain files, whole compressed files, mate
pairs) -> shards of a fixed number of reads. It depends only on the inputs and the config, never on
the number of workers, so shard contents are the same however the run is spread."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from typing import Any

from kmerx import _core
from kmerx._arrow import seq_buffers
from kmerx.io import ReadConfig, read, read_pairs

_FINGERPRINT_BYTES = 1 << 20


def normalize_inputs(inputs: Any, paired: bool = False) -> list[tuple[str, ...]]:
    """Inputs as a list of (path,) or (r1, r2) tuples: a path, a list of paths (consecutive ones
    paired when ``paired``), or a list mixing paths and (r1, r2) tuples."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise ValueError(f"inputs must be a non-empty list of paths or (r1, r2) pairs, got {inputs!r}")
    items: list[tuple[str, ...]] = []
    for x in inputs:
        if isinstance(x, (list, tuple)):
            if len(x) not in (1, 2):
                raise ValueError(f"a paired input must be (r1, r2), got {x!r}")
            items.append(tuple(os.fspath(p) for p in x))
        elif isinstance(x, (str, os.PathLike)):
            items.append((os.fspath(x),))
        else:
            raise TypeError(f"an input must be a path or an (r1, r2) pair, got {type(x).__name__}")
    if paired:
        if any(len(i) != 1 for i in items) or len(items) % 2:
            raise ValueError(f"paired inputs must be an even number of files (R1 R2 R1 R2 ...), got {len(items)}")
        items = [(items[i][0], items[i + 1][0]) for i in range(0, len(items), 2)]
    for group in items:
        for p in group:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"input file not found: {p}")
    return items


def describe(path: str) -> dict[str, Any]:
    """Path, size, mtime, compression and a fingerprint (sha256 of the size and the first and last MiB),
    cheap on any size of file and enough to tell a changed input."""
    st = os.stat(path)
    h = hashlib.sha256(str(st.st_size).encode())
    with open(path, "rb") as f:
        head = f.read(_FINGERPRINT_BYTES)
        h.update(head)
        if st.st_size > 2 * _FINGERPRINT_BYTES:
            f.seek(st.st_size - _FINGERPRINT_BYTES)
            h.update(f.read())
        elif st.st_size > _FINGERPRINT_BYTES:
            h.update(f.read())
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime": st.st_mtime,
            "compression": _core.sniff_compression(head[:18]), "fingerprint": "sha256-ends:" + h.hexdigest()}


@dataclasses.dataclass(frozen=True)
class Unit:
    """What one read task reads: a file, a byte range of a plain file, or a mate pair."""

    index: int
    paths: tuple[str, ...]
    byte_range: tuple[int, int] | None = None
    reads: int = 0  # reads (pairs) in the unit, known after counting
    bases: int = 0
    first_read: int = 0  # read_index of the unit's first read


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int
    unit: int
    start: int  # first read within the unit
    reads: int
    first_read: int  # global read_index of the first read

    @property
    def name(self) -> str:
        return shard_name(self.index)


def shard_name(shard: int) -> str:
    """The file stem of shard ``shard``: part-00000, part-00001, ..."""
    return f"part-{shard:05d}"


def units_of(inputs: list[tuple[str, ...]], split_bytes: int) -> list[Unit]:
    """Read units, in input order: a plain single file larger than ``split_bytes`` becomes byte ranges
    (records belong to the range their header starts in); compressed files and pairs stay whole."""
    units: list[Unit] = []
    for paths in inputs:
        size = os.path.getsize(paths[0])
        n = math.ceil(size / split_bytes)
        if len(paths) == 1 and n > 1 and describe_compression(paths[0]) == "none":
            for i in range(n):
                units.append(Unit(len(units), paths, (size * i // n, size * (i + 1) // n)))
        else:
            units.append(Unit(len(units), paths))
    return units


def describe_compression(path: str) -> str:
    with open(path, "rb") as f:
        return _core.sniff_compression(f.read(18))


def read_unit(unit: Unit, config: ReadConfig):
    """The unit's ReadBatches with global ``read_index`` values; a pair yields (mate1, mate2) batches."""
    kw = dict(config.kwargs(), first_index=unit.first_read)
    if len(unit.paths) == 2:
        return read_pairs(unit.paths[0], unit.paths[1], **kw)
    return read(unit.paths[0], byte_range=unit.byte_range, **kw)


def count_unit(unit: Unit, config: ReadConfig) -> tuple[int, int]:
    """(reads, bases) of a unit: a full parse, so a malformed file fails here, before any output."""
    reads = bases = 0
    for b in read_unit(unit, config.replace(batch_bytes=max(config.batch_bytes, 16 << 20))):
        batches = b if isinstance(b, tuple) else (b,)
        reads += batches[0].num_rows
        bases += sum(_bases(x) for x in batches)
    return reads, bases


def _bases(batch) -> int:
    offsets = seq_buffers(batch.column(1))[1]
    return int(offsets[-1] - offsets[0]) if len(offsets) else 0


def shards_of(units: list[Unit], reads_per_shard: int) -> list[Shard]:
    """Each unit's reads cut into shards of ``reads_per_shard`` (the last one of a unit shorter);
    a unit without reads has no shard."""
    shards: list[Shard] = []
    for u in units:
        for start in range(0, u.reads, reads_per_shard):
            n = min(reads_per_shard, u.reads - start)
            shards.append(Shard(len(shards), u.index, start, n, u.first_read + start))
    return shards


def with_counts(units: list[Unit], counts: list[tuple[int, int]]) -> list[Unit]:
    out, first = [], 0
    for u, (reads, bases) in zip(units, counts, strict=True):
        out.append(dataclasses.replace(u, reads=reads, bases=bases, first_read=first))
        first += reads
    return out
