"""Test helpers shared by the test modules (no tests here): the location of ../shared/data, a slow
reference FASTA/FASTQ parser that is independent of kmerx.io, ReadBatch builders and small writers."""

from __future__ import annotations

import contextlib
import gzip
import pathlib
import struct
import zlib

import pyarrow as pa

SHARED = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def shared(name: str) -> pathlib.Path:
    """A file under ../shared/data, or skip the test (with the reason) when it is not there."""
    import pytest

    path = SHARED / name
    if not path.exists():
        pytest.skip(f"test input {path} is missing (../shared/data is not beside the project)")
    return path


def raw_bytes(path: pathlib.Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def ref_records(data: bytes) -> list[tuple[str, bytes, bytes | None]]:
    """(name, seq, qual) per record: multi-line FASTA, or FASTQ with 4-line records."""
    lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in data.split(b"\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return []
    out: list[tuple[str, bytes, bytes | None]] = []
    if lines[0].startswith(b">"):
        for ln in filter(bytes.strip, lines):
            if ln.startswith(b">"):
                out.append((ln[1:].decode(), b"", None))
            else:
                name, seq, _ = out[-1]
                out[-1] = (name, seq + ln, None)
        return out
    assert len(lines) % 4 == 0
    for i in range(0, len(lines), 4):
        h, s, p, q = lines[i : i + 4]
        assert h.startswith(b"@") and p.startswith(b"+") and len(s) == len(q)
        out.append((h[1:].decode(), s, q))
    return out


def batches_records(batches) -> list[tuple[str, bytes, bytes | None]]:
    out = []
    for b in batches:
        d = b.to_pydict()
        out.extend(zip(d["name"], d["seq"], d["qual"]))
    return out


def wrapped_fastq(records, widths=(7, 13, 60, 1, 29)) -> tuple[bytes, list[int]]:
    """Multi-line FASTQ (sequence and quality wrapped at a width that changes per record, so many
    quality lines start with '@' or '+') and the byte offset of each record."""
    parts: list[bytes] = []
    offsets = []
    size = 0
    for i, (name, seq, qual) in enumerate(records):
        w = widths[i % len(widths)]
        rec = [b"@" + name.encode() + b"\n"]
        rec.extend(seq[j : j + w] + b"\n" for j in range(0, len(seq), w))
        rec.append(b"+\n" if i % 3 else b"+" + name.encode() + b"\n")
        rec.extend(qual[j : j + w] + b"\n" for j in range(0, len(qual), w))
        offsets.append(size)
        chunk = b"".join(rec)
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), offsets


def record_offsets(data: bytes) -> list[int]:
    """Byte offset of each record of a FASTA or 4-line FASTQ file (blank lines allowed in FASTA)."""
    offsets, pos = [], 0
    fasta = data.lstrip()[:1] == b">"
    lines = data.split(b"\n")
    k = 0
    for ln in lines:
        if fasta and ln.startswith(b">"):
            offsets.append(pos)
        elif not fasta and ln.strip():
            if k % 4 == 0:
                offsets.append(pos)
            k += 1
        pos += len(ln) + 1
    return offsets


def bgzf(data: bytes, block: int = 20000) -> bytes:
    """BGZF: gzip members of at most 64 KiB, each with the 'BC' extra field, then the EOF block."""
    out = []
    for i in range(0, len(data), block):
        out.append(_bgzf_block(data[i : i + block]))
    out.append(_bgzf_block(b""))
    return b"".join(out)


def _bgzf_block(chunk: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = c.compress(chunk) + c.flush()
    bsize = 18 + len(body) + 8 - 1
    # ID1 ID2 CM FLG(FEXTRA), MTIME, XFL OS, XLEN, then the "BC" subfield holding BSIZE.
    head = b"\x1f\x8b\x08\x04" + b"\0\0\0\0" + b"\0\xff" + struct.pack("<H", 6)
    head += b"BC" + struct.pack("<HH", 2, bsize)
    return head + body + struct.pack("<II", zlib.crc32(chunk), len(chunk))


def parse_fastq(path) -> list[tuple[str, bytes, bytes]]:
    """(first word of the name, seq, qual) per record of a 4-line FASTQ file (plain or gzip)."""
    return [(name.split()[0], seq, qual) for name, seq, qual in ref_records(raw_bytes(pathlib.Path(path)))]


def parse_fasta(path) -> list[tuple[str, bytes, None]]:
    """(first word of the name, seq, None) per record of a FASTA file (plain or gzip)."""
    return [(name.split()[0], seq, None) for name, seq, _ in ref_records(raw_bytes(pathlib.Path(path)))]


def make_batch(recs, start_index: int = 0) -> pa.RecordBatch:
    """recs: (name, seq, qual|None) or (name, seq, qual|None, read_index)."""
    names = [r[0] for r in recs]
    seqs = [r[1] for r in recs]
    quals = [r[2] for r in recs]
    idx = [r[3] if len(r) > 3 else start_index + i for i, r in enumerate(recs)]
    return pa.RecordBatch.from_arrays(
        [pa.array(names, pa.string()), pa.array(seqs, pa.large_binary()), pa.array(quals, pa.large_binary()),
         pa.array(idx, pa.int64())],
        names=["name", "seq", "qual", "read_index"],
    )


def rows(batch: pa.RecordBatch) -> list[tuple]:
    d = batch.to_pydict()
    return list(zip(d["name"], d["seq"], d["qual"], d["read_index"]))


# ---- SIMD paths: every level this CPU runs must give the scalar path's result --------------------
def simd_levels() -> list[str]:
    import kmerx

    return ["scalar"] + (["avx2"] if kmerx._core.simd_detected() in ("avx2", "avx512") else [])


SIMD = simd_levels()


@contextlib.contextmanager
def simd_level(level: str):
    """Native kernels forced to one SIMD level inside the block, back to automatic after."""
    import kmerx

    kmerx.set_simd(level)
    try:
        yield level
    finally:
        kmerx.set_simd("auto")


def same_on_every_simd_path(fn):
    """fn() under every SIMD level; asserts each result equals the scalar one (arrays, tuples, lists,
    None compared element by element) and returns the scalar result."""
    import numpy as np

    out = {}
    for level in SIMD:
        with simd_level(level):
            out[level] = fn()
    for level in SIMD[1:]:
        np.testing.assert_equal(out[level], out["scalar"], err_msg=f"SIMD level {level} differs from scalar")
    return out["scalar"]


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment for a child that runs elsewhere (another cwd, a Slurm job): PYTHONPATH
    entries made absolute, so a development tree's relative PYTHONPATH=src still finds kmerx there."""
    import os

    paths = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, **({"PYTHONPATH": os.pathsep.join(paths)} if paths else {}), **extra}
