"""Embedding-table compression of the hashed and LSH tokenizers: distinct k-mers vs table rows.

    PYTHONPATH=src python benchmarks/compression_report.py [--k 15 21 31] [--threads N]

For k = 15, 21, 31, on the E. coli MG1655 genome (species/Ecoli_MG1655-K12.fa.gz) and on its simulated
ART reads (reads/art_MG1655_HS25_2x150_10x_R1+R2), prints a markdown table per input:

- distinct canonical k-mers: the exact vocabulary a k-mer table would need (kmerx.count), and those seen
  at least twice (for reads, most singletons are sequencing errors);
- for hashed (B = 2^20, 2^24), LSH random projection (m = 20, 24) and LSH bit sampling (s = 10, 12):
  the rows the scheme's table has (B, 2^m, 4^s), the rows the input's k-mers actually use (distinct ids
  of ``encode_batch(..., return_tensors="arrow", add_special_tokens=False)``, special tokens excluded),
  and the compression factors distinct k-mers / table rows and distinct k-mers / rows used;
- rows used by the reads / rows used by the genome: how many rows the sequencing errors add.

Inputs come from ../shared/data (KMERX_SHARED_DATA overrides). Timings go to stderr.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np
import pyarrow as pa

import kmerx
from kmerx import kmers
from kmerx.tokenizers import Tokenizer

DATA = pathlib.Path(os.environ.get("KMERX_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
INPUTS = {
    "E. coli MG1655 genome (4.64 Mb, 1 record)": ["species/Ecoli_MG1655-K12.fa.gz"],
    "ART reads of MG1655 (2 x 154,655 x 150 bp, 10x)": [f"reads/art_MG1655_HS25_2x150_10x_R{i}.fq.gz" for i in (1, 2)],
}
SCHEMES = [
    ("hashed B=2^20", dict(scheme="hashed", buckets=2**20)),
    ("hashed B=2^24", dict(scheme="hashed", buckets=2**24)),
    ("LSH projection m=20", dict(scheme="lsh", lsh="projection", m=20)),
    ("LSH projection m=24", dict(scheme="lsh", lsh="projection", m=24)),
    ("LSH bits s=10", dict(scheme="lsh", lsh="bits", sampled=10)),
    ("LSH bits s=12", dict(scheme="lsh", lsh="bits", sampled=12)),
]


class Timer:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    def __call__(self, label: str, fn):
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        self.rows.append((label, dt))
        print(f"  {dt:7.2f} s  {label}", file=sys.stderr, flush=True)
        return out


def load(paths: list[str]) -> pa.Array:
    """The sequences of the files as one large_binary array."""
    for p in paths:
        if not (DATA / p).exists():
            sys.exit(f"missing input {DATA / p} (set KMERX_SHARED_DATA to the shared data folder)")
    return pa.concat_arrays([b.column("seq") for p in paths for b in kmerx.read(DATA / p)])


def rows_used(tok: Tokenizer, seqs: pa.Array) -> tuple[int, int]:
    """(table rows, distinct non-special ids) of the tokens of seqs."""
    enc = tok.encode_batch(seqs, return_tensors="arrow", add_special_tokens=False)
    ids = enc["input_ids"].values.to_numpy()
    first = len(tok.config.specials)
    table = tok.vocab_size - first - len(tok.config.trailing_specials) - len(tok.config.alphabet)
    # A presence count over the id range gives np.unique(ids[ids >= first]).size without a sort.
    seen = np.bincount(ids, minlength=tok.vocab_size)[first : first + table]
    return table, int(np.count_nonzero(seen))


def factor(distinct: int, rows: int) -> str:
    return f"{distinct / rows:,.1f}" if rows else "—"


def pow2(n: int) -> str:
    e = n.bit_length() - 1
    return f"2^{e}" if n == 1 << e else f"{n:,}"


def measure(name: str, seqs: pa.Array, ks: list[int], timer: Timer) -> dict:
    """{k: (windows, distinct, distinct with count >= 2, {scheme: (table rows, rows used)})}."""
    out = {}
    for k in ks:
        counts = timer(f"{name}: count k={k}", lambda k=k: kmerx.count.count(seqs, k))
        used = {}
        for label, cfg in SCHEMES:
            tok = Tokenizer.from_config(dict(cfg, k=k))
            used[label] = timer(f"{name}: {label} k={k}", lambda tok=tok: rows_used(tok, seqs))
        out[k] = (counts.total(), len(counts), int(np.count_nonzero(counts.counts >= 2)), used)
    return out


def table(name: str, seqs: pa.Array, res: dict) -> str:
    bases = int(kmers.seq_arrays(seqs)[0].size)
    lines = [
        f"### Embedding-table compression: {name}",
        "",
        f"{len(seqs):,} sequence(s), {bases:,} bp. Distinct = distinct canonical k-mers (kmerx.count); rows used = "
        "distinct ids the scheme gives the input's k-mers; compression = distinct k-mers / rows.",
        "",
        "| k | k-mers | distinct k-mers (count ≥ 2) | scheme | table rows | rows used (% of table) "
        "| distinct / table rows | distinct / rows used |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, (windows, distinct, solid, used) in res.items():
        lines.append(f"| {k} | {windows:,} | {distinct:,} ({solid:,}) | exact k-mer vocabulary | {distinct:,} "
                     f"| {distinct:,} (100%) | 1.0 | 1.0 |")
        for label, (rows, n) in used.items():
            lines.append(f"| {k} | | | {label} | {pow2(rows)} | {n:,} ({100 * n / rows:.1f}%) "
                         f"| {factor(distinct, rows)} | {factor(distinct, n)} |")
    return "\n".join(lines) + "\n"


def growth(genome: dict, reads: dict) -> str:
    """Rows the reads use against rows the genome uses: the rows sequencing errors add (exact: every
    error k-mer is a new row; LSH is meant to send it to its true k-mer's row)."""
    lines = [
        "### Embedding-table compression: rows added by sequencing errors (ART reads vs their genome)",
        "",
        "Rows used by the reads / rows used by the genome they were simulated from (1.0: errors add no rows).",
        "",
        "| k | exact | " + " | ".join(label for label, _ in SCHEMES) + " |",
        "|---" * (2 + len(SCHEMES)) + "|",
    ]
    for k in genome:
        g, r = genome[k], reads[k]
        cells = [f"{r[1] / g[1]:.2f}"] + [f"{r[3][label][1] / g[3][label][1]:.2f}" for label, _ in SCHEMES]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, nargs="+", default=[15, 21, 31], help="k-mer sizes (default 15 21 31)")
    ap.add_argument("--threads", type=int, default=0, help="kmerx threads (default: all cores)")
    args = ap.parse_args()
    kmerx.set_num_threads(args.threads)
    timer = Timer()
    t0 = time.perf_counter()
    tables, results = [], []
    for name, paths in INPUTS.items():
        seqs = timer(f"read {name}", lambda paths=paths: load(paths))
        results.append(measure(name, seqs, args.k, timer))
        tables.append(table(name, seqs, results[-1]))
    tables.append(growth(*results))
    print("\n".join(tables))
    print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
