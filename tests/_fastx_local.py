"""Tiny test-local FASTA/FASTQ parser and ReadBatch builder (independent of kmerx.io)."""

from __future__ import annotations

import gzip
import pathlib

import pyarrow as pa

DATA = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def data_file(rel: str) -> pathlib.Path:
    import pytest

    p = DATA / rel
    if not p.exists():
        pytest.skip(f"test data {p} missing (needs ../shared/data)")
    return p


def _open(path):
    path = pathlib.Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def parse_fastq(path) -> list[tuple[str, bytes, bytes]]:
    with _open(path) as f:
        lines = f.read().splitlines()
    return [(lines[i][1:].split()[0].decode(), lines[i + 1], lines[i + 3]) for i in range(0, len(lines) - 3, 4)]


def parse_fasta(path) -> list[tuple[str, bytes, None]]:
    recs, name, chunks = [], None, []
    with _open(path) as f:
        for line in f.read().splitlines():
            if line.startswith(b">"):
                if name is not None:
                    recs.append((name, b"".join(chunks), None))
                name, chunks = line[1:].split()[0].decode(), []
            elif line:
                chunks.append(line.strip())
    if name is not None:
        recs.append((name, b"".join(chunks), None))
    return recs


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
