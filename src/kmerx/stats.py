"""Sequence statistics like ``seqkit stats``: one native pass per ReadBatch, merged across batches.

GC follows seqkit: ``gc = (G + C) / bases * 100`` (percent of all bases, N and others included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pyarrow as pa

from kmerx import _core
from kmerx._arrow import seq_buffers

__all__ = ["SeqStats", "batch_stats", "stats_of", "file_stats", "guess_quality_encoding", "quality_offset"]

PHRED33 = "Phred+33 (Sanger/Illumina 1.8+)"
PHRED64 = "Phred+64 (Illumina 1.3-1.7)"
SOLEXA64 = "Solexa+64"


def guess_quality_encoding(min_byte: int | None, max_byte: int | None) -> str:
    """Guess the FASTQ quality encoding from the smallest and largest quality byte seen.

    Returns "none" without qualities (FASTA: pass None), "unknown" when a byte falls outside '!'..'~'.
    Rules (the classic ranges): any byte below ';' (59) can only be Phred+33; ';'..'?' as the lowest
    byte is Solexa+64 unless the highest is <= 'K' (75), where Phred+33 with high qualities is far
    likelier; a lowest byte >= '@' (64) is Phred+64 (Illumina 1.3, or 1.5-1.7 whose lowest is 'B'),
    again unless the highest byte is <= 'K', which only Phred+33 reaches as a maximum.
    """
    if min_byte is None or max_byte is None:
        return "none"
    if min_byte > max_byte:
        raise ValueError(f"min_byte must be <= max_byte, got {min_byte} > {max_byte}")
    if min_byte < 33 or max_byte > 126:
        return "unknown"
    if min_byte < 59 or max_byte <= 75:
        return PHRED33
    if min_byte < 64:
        return SOLEXA64
    return PHRED64


def quality_offset(encoding: str) -> int | None:
    """ASCII offset of an encoding returned by :func:`guess_quality_encoding` (None if unknown/none)."""
    if encoding.startswith("Phred+33"):
        return 33
    if encoding.startswith(("Phred+64", "Solexa+64")):
        return 64
    return None


@dataclasses.dataclass(frozen=True)
class SeqStats:
    """Statistics of a set of reads. Counts are case-insensitive; ``other`` is every byte that is not
    A/C/G/T/N. ``qual_hist`` holds the count of each quality byte (256 entries; all zero for FASTA)."""

    file: str = "-"
    format: str = "FASTA"
    records: int = 0
    bases: int = 0
    min_len: int = 0
    max_len: int = 0
    a: int = 0
    c: int = 0
    g: int = 0
    t: int = 0
    n_count: int = 0
    other: int = 0
    qual_hist: tuple[int, ...] = dataclasses.field(default=(0,) * 256, repr=False)

    @property
    def avg_len(self) -> float:
        return self.bases / self.records if self.records else 0.0

    @property
    def gc(self) -> float:
        """Percent (G + C) over all bases, as seqkit reports it; 0.0 when there are no bases."""
        return 100.0 * (self.g + self.c) / self.bases if self.bases else 0.0

    @property
    def min_qual(self) -> int | None:
        return next((b for b, k in enumerate(self.qual_hist) if k), None)

    @property
    def max_qual(self) -> int | None:
        return next((255 - b for b, k in enumerate(reversed(self.qual_hist)) if k), None)

    @property
    def quality_encoding(self) -> str:
        return guess_quality_encoding(self.min_qual, self.max_qual)

    def q_percent(self, q: int) -> float | None:
        """Percent of quality values >= q (seqkit's Q20(%) / Q30(%)) under the guessed encoding;
        None without qualities or with an unknown encoding."""
        offset = quality_offset(self.quality_encoding)
        total = sum(self.qual_hist)
        if offset is None or not total:
            return None
        return 100.0 * sum(self.qual_hist[min(offset + q, 256):]) / total

    def merge(self, other: SeqStats) -> SeqStats:
        """Statistics of both sets; file and format are this one's."""
        if not other.records:
            return self
        if not self.records:
            return dataclasses.replace(other, file=self.file, format=self.format)
        return SeqStats(
            file=self.file,
            format=self.format,
            records=self.records + other.records,
            bases=self.bases + other.bases,
            min_len=min(self.min_len, other.min_len),
            max_len=max(self.max_len, other.max_len),
            a=self.a + other.a,
            c=self.c + other.c,
            g=self.g + other.g,
            t=self.t + other.t,
            n_count=self.n_count + other.n_count,
            other=self.other + other.other,
            qual_hist=tuple(x + y for x, y in zip(self.qual_hist, other.qual_hist, strict=True)),
        )

    __add__ = merge

    def to_dict(self) -> dict:
        """Flat summary (for the CLI's table / JSON): the counts plus the derived values."""
        return {
            "file": self.file,
            "format": self.format,
            "records": self.records,
            "bases": self.bases,
            "min_len": self.min_len,
            "avg_len": self.avg_len,
            "max_len": self.max_len,
            "a": self.a,
            "c": self.c,
            "g": self.g,
            "t": self.t,
            "n_count": self.n_count,
            "other": self.other,
            "gc": self.gc,
            "min_qual": self.min_qual,
            "max_qual": self.max_qual,
            "q20": self.q_percent(20),
            "q30": self.q_percent(30),
            "quality_encoding": self.quality_encoding,
        }


def batch_stats(batch: pa.RecordBatch, *, file: str = "-", format: str | None = None) -> SeqStats:
    """Statistics of one ReadBatch (one native call). ``format`` defaults to FASTQ when the batch has
    qualities, else FASTA."""
    data, offsets = seq_buffers(batch.column("seq"))
    qual = batch.column("qual") if "qual" in batch.schema.names else None
    has_qual = qual is not None and qual.null_count < len(qual)
    qdata, qoffsets = seq_buffers(qual) if has_qual else (None, None)
    d = _core.seq_counts(data, offsets, qdata, qoffsets)
    return SeqStats(
        file=file,
        format=format or ("FASTQ" if has_qual else "FASTA"),
        records=d["records"],
        bases=d["bases"],
        min_len=d["min_len"],
        max_len=d["max_len"],
        a=d["a"],
        c=d["c"],
        g=d["g"],
        t=d["t"],
        n_count=d["n"],
        other=d["other"],
        qual_hist=tuple(int(x) for x in d["qual_hist"]),
    )


def stats_of(batches: Iterable[pa.RecordBatch], *, file: str = "-", format: str | None = None) -> SeqStats:
    """Statistics over all batches. ``format`` defaults to what the first batch shows (FASTA when
    there is none)."""
    total: SeqStats | None = None
    for batch in batches:
        s = batch_stats(batch, file=file, format=format)
        total = s if total is None else total.merge(s)
    if total is None:
        return SeqStats(file=file, format=format or "FASTA")
    return total


def file_stats(path, **read_kw) -> SeqStats:
    """Statistics of a FASTA/FASTQ file read with ``kmerx.io.read(path, **read_kw)``."""
    from kmerx import io

    return stats_of(io.read(path, **read_kw), file=str(path))
