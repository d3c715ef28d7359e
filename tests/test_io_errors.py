"""Malformed input: every bad record raises FastxFormatError naming file, record and line; mutated
real records never crash or hang the reader."""

from __future__ import annotations

import gzip
import io
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reference import raw_bytes, shared

import kmerx
import kmerx.io as kio

GOOD = b"@r1\nACGT\n+\nIIII\n"

# (content, options, record, line, message fragment)
MALFORMED = [
    (GOOD + b"r2\nACGT\n+\nIIII\n", {}, 2, 5, "expected '@'"),
    (GOOD + b"@r2", {}, 2, 6, "truncated record (missing sequence)"),
    (GOOD + b"@r2\n", {}, 2, 6, "truncated record (missing sequence)"),
    (GOOD + b"@r2\nACG", {}, 2, 7, "truncated record (missing '+' line)"),
    (b"@r1\nACGT\n+", {}, 1, 4, "truncated record (quality has 0 of 4 bytes)"),
    (b"@r1\nACGT\n+\nII", {}, 1, 5, "truncated record (quality has 2 of 4 bytes)"),
    (b"@r1\nACGT\nIIII\n" + GOOD, {}, 1, 4, "missing '+' line"),
    (b"@r1\nACGT\n+\nIIIII\n", {}, 1, 4, "quality length (5) != sequence length (4)"),
    (b"@r1\nACGT\n+\nII\n" + GOOD, {}, 1, 4, "quality length (2) != sequence length (4)"),
    (GOOD + b"@r2\nACGT\n+\nII I\n", {}, 2, 8, "quality byte ' ' (0x20) outside the Phred+33 range 33..126"),
    (b"@r1\nACGT\n+\nII\x7fI\n", {}, 1, 4, "quality byte 0x7f outside"),
    (b"@r1\nACGT\n+\nII5I\n", {"phred": 64}, 1, 4, "byte '5' (0x35) outside the Phred+64 range 64..126"),
    (b"@r1\nAC\0T\n+\nIIII\n", {}, 1, 2, "invalid byte 0x00 in sequence"),
    (b"@r1\nAC\xffT\n+\nIIII\n", {}, 1, 2, "invalid byte 0xff in sequence"),
    (b"@r\x01\nACGT\n+\nIIII\n", {}, 1, 1, "control byte 0x01 in header"),
    (b"@r\xff\nACGT\n+\nIIII\n", {}, 1, 1, "header is not valid UTF-8"),
    (b"@r1\nACGT\n+r2\nIIII\n", {}, 1, 3, "'+' line name does not match the header"),
    (b"\0\x01\x02\x03", {}, 1, 1, "expected '>' or '@'"),
    (b"\n\nACGT\n>r\nAC\n", {}, 1, 3, "expected '>' or '@'"),
    (b"ACGT\n>r\nAC\n", {"format": "fasta"}, 1, 1, "expected '>' at the start of a FASTA record"),
    (b">a\nAC\nA\0C\n", {}, 1, 3, "invalid byte 0x00 in sequence"),
    (b">a\nAC\n>b\nA\x01\n", {}, 2, 4, "invalid byte 0x01 in sequence"),
    (b">a\x02b\nAC\n", {}, 1, 1, "control byte 0x02 in header"),
    (b">a\nAC\x80G\n", {}, 1, 2, "invalid byte 0x80 in sequence"),
]


@pytest.mark.parametrize("content,opts,record,line,what", MALFORMED)
@pytest.mark.parametrize("via", ["path", "gzip", "stream"])
def test_malformed(tmp_path, content, opts, record, line, what, via):
    p = tmp_path / "bad.txt"
    p.write_bytes(gzip.compress(content) if via == "gzip" else content)
    src = io.BytesIO(content) if via == "stream" else p
    label = "<stream>" if via == "stream" else str(p)
    expect = f"{re.escape(label)}: record {record}, line {line}: .*{re.escape(what)}"
    with pytest.raises(kmerx.FastxFormatError, match=expect):
        for _ in kio.read(src, **opts):
            pass


def test_error_is_value_error():
    assert issubclass(kmerx.FastxFormatError, ValueError)


def _records(name: str, n_bytes: int) -> bytes:
    data = raw_bytes(shared(name))
    return data[:n_bytes]


def _read_bytes(data: bytes) -> list:
    """Records of `data`, or the FastxFormatError it raises; anything else propagates."""
    try:
        return [b for b in kio.read(io.BytesIO(data), batch_bytes=1 << 10)]
    except kmerx.FastxFormatError as e:
        return [e]


OPS = st.sampled_from(["flip", "insert", "delete", "truncate"])
mutation = st.lists(
    st.tuples(OPS, st.integers(0, 1 << 30), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, val in ops:
        i = pos % (len(b) + 1)
        if op == "flip" and i < len(b):
            b[i] ^= val or 1
        elif op == "insert":
            b[i:i] = bytes([val])
        elif op == "delete" and i < len(b):
            del b[i]
        elif op == "truncate":
            del b[i:]
    return bytes(b)


def _check_result(result, fastq: bool) -> None:
    for item in result:
        if isinstance(item, kmerx.FastxFormatError):
            assert re.match(r"<stream>: record \d+, line \d+: ", str(item)), str(item)
            continue
        if fastq and item.column("qual").null_count < item.num_rows:  # a mutated '@' can make it FASTA
            assert item.column("seq").to_pylist() is not None
            seqs, quals = item.column("seq").to_pylist(), item.column("qual").to_pylist()
            assert [len(s) for s in seqs] == [len(q) for q in quals]


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(ops=mutation)
@example(ops=[("truncate", 10, 0)])
@example(ops=[("flip", 0, 0x1f)])
@example(ops=[("flip", 0, 126)])  # '@' -> '>': the rest is read as FASTA
def test_mutated_fastq_never_crashes(ops):
    data = _records("unit/SRR059298_first2k.fastq", 3000)
    _check_result(_read_bytes(_mutate(data, ops)), fastq=True)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(ops=mutation)
@example(ops=[("insert", 0, ord(">"))])
def test_mutated_fasta_never_crashes(ops):
    data = _records("unit/MT-human.fa", 3000)
    _check_result(_read_bytes(_mutate(data, ops)), fastq=False)


@settings(deadline=None, max_examples=100)
@given(cut=st.integers(0, 1 << 30), flip=st.booleans())
@example(cut=5, flip=True)
def test_damaged_gzip_raises_or_reads(cut, flip):
    data = _records("unit/SRR059298_first2k.fastq", 20000)
    data = data[: data.rfind(b"\n@") + 1]  # whole records
    packed = gzip.compress(data)
    i = cut % len(packed)
    damaged = packed[:i] + bytes([packed[i] ^ 0x40]) + packed[i + 1 :] if flip else packed[:i]
    try:
        n = sum(b.num_rows for b in kio.read(io.BytesIO(damaged)))
    except kmerx.FastxFormatError as e:
        assert str(e).startswith("<stream>: ")
    else:
        # Reads cleanly only when the flip hit a byte gzip does not check (header mtime, OS...)
        # or the cut left nothing (empty input).
        full = data.count(b"\n") // 4
        assert (flip and n == full) or (not flip and i == 0 and n == 0), (i, n)
