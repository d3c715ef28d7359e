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


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        pass


def _progress(desc: str, unit: str):
    if not sys.stderr.isatty():
        return _NoBar()  # without importing tqdm (~50 ms)
    from tqdm import tqdm

    return tqdm(desc=desc, unit=unit, unit_scale=True, leave=False, file=sys.stderr, mininterval=0.5)


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


# ---- kmerx count / histo ------------------------------------------------------------------------

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """Bytes of '2G', '512M', '100K' or a plain number."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _SIZE_UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 2G, 512M or 1000000, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be > 0, got {text!r}")
    return int(value * _SIZE_UNITS[unit])


def _counts(args, files: list[str], output: str | None = None, kmers: bool = True):
    """KmerCounts of files, with a progress bar over reads; also written to the Parquet file output
    (while the last pass runs) when given."""
    from kmerx import count, io

    kw = {"canonical": not args.forward, "max_memory": args.max_memory, "tmp_dir": args.tmp_dir}
    if hasattr(args, "min_count"):
        kw.update(min_count=args.min_count, max_count=args.max_count)
    counter = count.Counter(args.k, **kw)
    for path in files:
        with _progress(os.path.basename(path), "reads") as bar:
            for batch in count.prefetch(io.read(path, phred=args.phred, batch_bytes=16 << 20)):
                counter.add(batch)
                bar.update(batch.num_rows)
    return counter.finish(output, kmers=kmers)


def _check_k(k) -> None:
    if k is not None and not 1 <= k <= 64:
        raise _Fail(f"-k must be in 1..64, got {k}")


def cmd_count(args) -> None:
    _check_k(args.k)
    if args.top is not None and args.top < 0:
        raise _Fail(f"--top must be >= 0, got {args.top}")
    if args.top is None:
        _counts(args, args.files, args.output, kmers=not args.no_kmers)
        return
    _counts(args, args.files).top(args.top).to_parquet(args.output, kmers=not args.no_kmers)


def cmd_histo(args) -> None:
    from kmerx.count import KmerCounts

    if len(args.inputs) == 1 and args.inputs[0].endswith(".parquet"):
        result = KmerCounts.from_parquet(args.inputs[0])
        if args.k is not None and args.k != result.k:
            raise _Fail(f"-k {args.k} does not match {args.inputs[0]}, which holds k={result.k} counts")
    else:
        if args.k is None:
            raise _Fail("-k is required when counting FASTA/FASTQ files")
        _check_k(args.k)
        result = _counts(args, args.inputs)
    values, n = result.histogram()
    text = "".join(f"{v}\t{c}\n" for v, c in zip(values.tolist(), n.tolist(), strict=True))
    if args.output:
        from kmerx.formats import atomic_path

        with atomic_path(args.output) as tmp, open(tmp, "w") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _count_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--forward", action="store_true", help="count k-mers as read (default: canonical k-mers)")
    p.add_argument("--max-memory", type=_size, default="2G", metavar="SIZE",
                   help="memory for binned k-mers before spilling to --tmp-dir (default 2G)")
    p.add_argument("--tmp-dir", metavar="DIR", help="where bins spill (default: $TMPDIR or /tmp)")
    p.add_argument("--threads", type=int, default=argparse.SUPPRESS, help="native threads (default: all cores)")


# ---- kmerx tokenize -----------------------------------------------------------------------------

def cmd_tokenize(args) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from kmerx.formats import atomic_path
    from kmerx.tokenizers import Tokenizer

    tok = Tokenizer.from_config(args.tokenizer)
    if tok.needs_fit:
        raise _Fail(f"{args.tokenizer}: this tokenizer needs learned state; fit it and save it first (Tokenizer.save)")
    meta = {"kmerx.tokenizer": json.dumps(tok.to_doc())}
    with atomic_path(args.output) as tmp:
        writer = None
        try:
            for path in args.files:
                for batch in _batches(path, args.phred, os.path.basename(path)):
                    enc = tok.encode_batch(batch, return_tensors="arrow", return_positions=args.positions,
                                           max_length=args.max_length,
                                           truncation="right" if args.max_length else None)
                    cols = {"read_index": batch.column("read_index"), "name": batch.column("name"),
                            "input_ids": enc.input_ids}
                    if args.positions:
                        cols["positions"] = enc.positions
                    table = pa.table(cols)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema.with_metadata(meta))
                    writer.write_table(table)
            if writer is None:
                raise _Fail("no input reads")
        finally:
            if writer is not None:
                writer.close()


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

    c = sub.add_parser("count", parents=[common], help="exact k-mer counts to Parquet (like KMC, jellyfish)",
                       description="Exact counts of the k-mers (free of non-ACGT bases) of all FILEs, written "
                                   "atomically to a Parquet file with columns kmer, count and code (code_hi, "
                                   "code_lo for k > 32), sorted by k-mer (or by count with --top).")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("-k", type=int, required=True, help="k-mer length, 1..64")
    c.add_argument("-o", "--output", required=True, metavar="OUT", help="output Parquet file")
    c.add_argument("--min-count", type=int, default=1, metavar="N", help="drop k-mers seen fewer times (default 1)")
    c.add_argument("--max-count", type=int, default=None, metavar="N", help="drop k-mers seen more times")
    c.add_argument("--top", type=int, default=None, metavar="N", help="keep the N most frequent k-mers only")
    c.add_argument("--no-kmers", action="store_true",
                   help="write codes and counts only, not the k-mer strings (smaller, faster to write)")
    _count_options(c)
    c.set_defaults(func=cmd_count)

    h = sub.add_parser("histo", parents=[common], help="k-mer spectrum, as 'jellyfish histo' prints it",
                       description="Lines 'count<TAB>number of distinct k-mers with that count' of FILEs (counted "
                                   "with -k) or of a counts.parquet file written by 'kmerx count'.")
    h.add_argument("inputs", nargs="+", metavar="FILE|counts.parquet")
    h.add_argument("-k", type=int, default=None, help="k-mer length, 1..64 (required for FASTA/FASTQ input)")
    h.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    _count_options(h)
    h.set_defaults(func=cmd_histo)

    t = sub.add_parser("tokenize", parents=[common], help="token ids of every read to Parquet",
                       description="Token ids of every read (columns read_index, name, input_ids and, with "
                                   "--positions, positions), written atomically to a Parquet file whose "
                                   "metadata holds the tokenizer ('kmerx.tokenizer', as Tokenizer.save writes it).")
    t.add_argument("files", nargs="+", metavar="FILE")
    t.add_argument("-t", "--tokenizer", required=True, metavar="PRESET|FILE",
                   help="a preset (dnabert-3..6, nucleotide-transformer, hyenadna, caduceus), a saved tokenizer "
                        "or a config file (.json, .toml)")
    t.add_argument("-o", "--output", required=True, metavar="OUT", help="output Parquet file")
    t.add_argument("--max-length", type=int, default=None, metavar="N", help="cut each read's ids to N (specials included)")
    t.add_argument("--positions", action="store_true", help="also write each token's start offset in its read")
    t.set_defaults(func=cmd_tokenize)

    from kmerx.pipeline.cli import add_commands

    add_commands(sub)
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
