"""The ``kmerx`` command line.

Errors are one line on stderr and a non-zero exit (1 for bad input, 2 for bad usage), never a traceback.
Progress bars go to stderr and only when it is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO

import kmerx


class _Fail(Exception):
    """An error already phrased for the user."""


def _progress(desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(desc=desc, unit=unit, unit_scale=True, leave=False, file=sys.stderr,
                disable=not sys.stderr.isatty(), mininterval=0.5)


def _batches(path: str, phred: int, desc: str) -> Iterator:
    from kmerx import io

    with _progress(desc, "reads") as bar:
        for batch in io.read(path, phred=phred):
            bar.update(batch.num_rows)
            yield batch


# ---- kmerx stats ---------------------------------------------------------------------------------

_STATS_COLUMNS = ("file", "format", "num_seqs", "sum_len", "min_len", "avg_len", "max_len", "N_count", "GC(%)", "quality")


def _stats_row(s) -> list[str]:
    return [s.file, s.format, str(s.records), str(s.bases), str(s.min_len), f"{s.avg_len:.1f}", str(s.max_len),
            str(s.n_count), f"{s.gc:.2f}", s.quality_encoding]


def cmd_stats(args) -> None:
    from kmerx import stats

    rows = []
    for path in args.files:
        s = stats.stats_of(_batches(path, args.phred, os.path.basename(path)), file=path)
        rows.append(_stats_row(s))
    out = sys.stdout
    if args.tabular:
        for row in [list(_STATS_COLUMNS), *rows]:
            out.write("\t".join(row) + "\n")
        return
    table = [list(_STATS_COLUMNS), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(_STATS_COLUMNS))]
    for row in table:
        cells = [c.ljust(w) if i < 2 or i == len(row) - 1 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.write("  ".join(cells).rstrip() + "\n")


# ---- kmerx kmers ---------------------------------------------------------------------------------

def _strand(args) -> str:
    return "canonical" if args.canonical else "forward"


def _kmer_tables(args) -> Iterator:
    """Per batch: a table of read_name, position, kmer."""
    import numpy as np
    import pyarrow as pa

    from kmerx import kmers

    for batch in _batches(args.file, args.phred, "k-mers"):
        codes, pos = kmers.kmer_codes(batch, args.k, strand=_strand(args), stride=args.stride, positions=True)
        counts = np.diff(np.asarray(codes.offsets))
        names = batch.column("name").take(pa.array(np.repeat(np.arange(batch.num_rows), counts)))
        yield pa.table({"read_name": names, "position": pos.values,
                        "kmer": kmers.decode_kmers_arrow(codes, args.k)})


def _count_table(args):
    """kmer, count sorted by k-mer (lexicographic ACGT order = code order)."""
    import pyarrow as pa

    from kmerx import kmers

    counter = kmers.KmerCounter()
    for batch in _batches(args.file, args.phred, "counting"):
        counter.add(kmers.kmer_codes(batch, args.k, strand=_strand(args), stride=args.stride))
    codes, counts = counter.result()
    return pa.table({"kmer": kmers.decode_kmers_arrow(codes, args.k), "count": pa.array(counts)})


def _write_tsv(tables, out: IO[bytes]) -> None:
    import pyarrow.csv as pacsv

    opts = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    for table in tables:
        if table.num_rows:
            pacsv.write_csv(table, out, write_options=opts)


def _write_parquet(tables, path: str) -> None:
    import pyarrow.parquet as pq

    from kmerx.formats import atomic_path

    writer = None
    with atomic_path(path) as tmp:
        try:
            for table in tables:
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise _Fail("no input records: nothing to write")


def cmd_kmers(args) -> None:
    if not 1 <= args.k <= 64:
        raise _Fail(f"-k must be in 1..64, got {args.k}")
    if args.stride < 1:
        raise _Fail(f"--stride must be >= 1, got {args.stride}")
    tables = [_count_table(args)] if args.count else _kmer_tables(args)
    if args.format == "parquet":
        if not args.output:
            raise _Fail("--format parquet needs -o OUT")
        _write_parquet(tables, args.output)
    elif args.output:
        from kmerx.formats import atomic_path

        with atomic_path(args.output) as tmp, open(tmp, "wb") as out:
            _write_tsv(tables, out)
    else:
        _write_tsv(tables, sys.stdout.buffer)
        sys.stdout.buffer.flush()


# ---- entry point ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kmerx", description="kmerx: FASTA/FASTQ to k-mers and embeddings.")
    p.add_argument("--version", action="version", version=f"kmerx {kmerx.__version__}")
    p.add_argument("--threads", type=int, default=0, help="native threads (default: all available cores)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--phred", type=int, choices=(33, 64), default=33, help="FASTQ quality offset (default 33)")

    s = sub.add_parser("stats", parents=[common], help="record, length, N, GC and quality summary per file",
                       description="Summary statistics per FASTA/FASTQ file (plain, gzip, bz2, xz, zstd; '-' for stdin).")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("-T", "--tabular", action="store_true", help="tab-separated output with a header line")
    s.set_defaults(func=cmd_stats)

    k = sub.add_parser("kmers", parents=[common], help="k-mers of every read, or their counts",
                       description="Rows 'read_name, position, kmer' (0-based start) for every k-mer free of "
                                   "non-ACGT bases; with --count, rows 'kmer, count' sorted by k-mer, as "
                                   "'jellyfish dump -c -t' prints them.")
    k.add_argument("file", metavar="FILE")
    k.add_argument("-k", type=int, required=True, help="k-mer length, 1..64")
    k.add_argument("--canonical", action="store_true",
                   help="report the smaller of each k-mer and its reverse complement")
    k.add_argument("--stride", type=int, default=1, help="step between k-mer starts (default 1; k = non-overlapping)")
    k.add_argument("--count", action="store_true", help="count k-mers instead of listing them")
    k.add_argument("--format", choices=("tsv", "parquet"), default="tsv", help="output format (default tsv)")
    k.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout, tsv only)")
    k.set_defaults(func=cmd_kmers)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads:
            kmerx.set_num_threads(args.threads)
        args.func(args)
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error. Silence the flush at exit as well.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("kmerx: interrupted", file=sys.stderr)
        return 130
    except (_Fail, ValueError, TypeError, OSError, ImportError) as e:
        msg = str(e) if not isinstance(e, OSError) or not e.filename else f"{e.filename}: {e.strerror}"
        print(f"kmerx: error: {msg}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
