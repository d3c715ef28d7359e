"""A virtual 2^32-row embedding table serving every ART read: resident memory, cache hit rate, throughput.

    PYTHONPATH=src python benchmarks/virtual_table.py [--quick] [--block-rows 1 16] [--batch 4096]

The table is ``EmbeddingTable.virtual(2**32, 128, dtype="float16", block_rows=R)``: 1 TiB if dense, its
rows a pure function of (seed, row), so memory is spent only on the blocks the reads touch. The reads
(reads/art_MG1655_HS25_2x150_10x_R1 + R2; ``--quick``: the first 20k reads of R1) are tokenized with the
hashed scheme (k=31, B = 2^32 - 257, the largest the tokenizer allows, no special tokens) and embedded
with ``kmerx.embed(table, ids, offsets=..., pool="mean")`` in batches of ``--batch`` reads (1024: at
~120 distinct blocks per read, a batch's blocks fit in the 5% cache, so every block gets a slot).

First the distinct blocks touched (``np.unique(ids // R)``) are counted. Then, for each R and cache size
(100%, 20% and 5% of the touched blocks' bytes), a fresh table serves all batches twice: a cold pass
(every block generated on first touch) and a warm pass (the cache as the cold pass left it). Per pass:
resident bytes (``table.memory()``: slots in use + the cache's index), that over the dense 1 TiB, hit rate
(row lookups whose block was resident when the batch started; repeats of a missing block within a batch
count as misses), blocks loaded and evicted, bypass (blocks served from a batch's private buffer because
every slot was pinned by that batch), throughput in tokens/s and reads/s (wall clock), and tokens/s per
core (tokens / process CPU time). Cache sizes whose slab would exceed ``--max-cache-gb`` are skipped.
VmRSS after each pass and the process's peak (VmHWM) are printed. Timings of the setup go to stderr.
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
from kmerx.tables import EmbeddingTable
from kmerx.tokenizers import Tokenizer

DATA = pathlib.Path(os.environ.get("KMERX_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
READS = [f"reads/art_MG1655_HS25_2x150_10x_R{i}.fq.gz" for i in (1, 2)]
ROWS = 2**32
DIM = 128
FRACTIONS = (1.0, 0.2, 0.05)


def proc_status(field: str) -> int:
    """A /proc/self/status memory field (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def rate(n: float) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def load(quick: bool) -> pa.Array:
    paths = READS[:1] if quick else READS
    for p in paths:
        if not (DATA / p).exists():
            sys.exit(f"missing input {DATA / p} (set KMERX_SHARED_DATA to the shared data folder)")
    seqs = pa.concat_arrays([b.column("seq") for p in paths for b in kmerx.read(DATA / p)])
    return seqs[:20_000] if quick else seqs


def serve(table: EmbeddingTable, ids: np.ndarray, offsets: np.ndarray, batch: int) -> tuple[float, float]:
    """Embeds every batch of reads (pooled mean); returns (wall seconds, process CPU seconds)."""
    n = offsets.size - 1
    w, c = time.perf_counter(), time.process_time()
    for s in range(0, n, batch):
        e = min(s + batch, n)
        kmerx.embed(table, ids[offsets[s] : offsets[e]], offsets=offsets[s : e + 1] - offsets[s], pool="mean")
    return time.perf_counter() - w, time.process_time() - c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the first 20k reads of R1 only (a smoke run)")
    ap.add_argument("--block-rows", type=int, nargs="+", default=[1, 16], help="rows per block R (default 1 16)")
    ap.add_argument("--batch", type=int, default=None,
                    help="reads per embed call (default 1024; 256 with --quick): a batch's distinct blocks "
                         "should fit in the smallest cache, else the excess is served through bypass buffers")
    ap.add_argument("--max-cache-gb", type=float, default=8.0, help="skip cache sizes above this (default 8)")
    ap.add_argument("--threads", type=int, default=0, help="kmerx threads (default: all cores)")
    args = ap.parse_args()
    kmerx.set_num_threads(args.threads)
    if args.batch is None:
        args.batch = 256 if args.quick else 1024
    t0 = time.perf_counter()

    seqs = load(args.quick)
    tok = Tokenizer.from_config(dict(scheme="hashed", k=31, buckets=2**32 - 257))
    t = time.perf_counter()
    ids_arrow = tok.encode_batch(seqs, return_tensors="arrow", add_special_tokens=False)["input_ids"]
    offsets = np.asarray(ids_arrow.offsets, dtype=np.int64)
    ids = ids_arrow.values.to_numpy()
    del ids_arrow
    n_reads, tokens = offsets.size - 1, int(ids.size)
    print(f"  {time.perf_counter() - t:6.2f} s  tokenized {n_reads:,} reads, {tokens:,} tokens", file=sys.stderr)
    t = time.perf_counter()
    distinct_ids = np.unique(ids)
    print(f"  {time.perf_counter() - t:6.2f} s  {distinct_ids.size:,} distinct ids", file=sys.stderr)

    dense = ROWS * DIM * 2
    what = "ART MG1655 R1, first 20,000 reads" if args.quick else "ART MG1655 R1 + R2 (2 x 154,655 x 150 bp)"
    out = [
        f"### Virtual table 2^32 x {DIM} float16 (1 TiB dense), pooled mean of {what}",
        "",
        f"`PYTHONPATH=src python benchmarks/virtual_table.py {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        "",
        f"{n_reads:,} reads, {tokens:,} tokens (hashed k=31, B = 2^32 - 257), {distinct_ids.size:,} distinct ids; "
        f"batches of {args.batch:,} reads; {kmerx.num_threads()} "
        f"threads on {os.cpu_count()} cores. Pass 1 starts from an empty cache; pass 2 reuses the cache pass 1 left.",
        "",
        "| R | touched blocks | cache | pass | resident | of dense | hit rate | loads | evictions | bypass "
        "| tokens/s | reads/s | tokens/s per core | VmRSS after |",
        "|---" * 14 + "|",
    ]
    for R in args.block_rows:
        touched = int(np.unique(distinct_ids // R).size)
        block_bytes = R * DIM * 2
        for frac in FRACTIONS:
            slots = max(1, int(round(frac * touched)))
            cache = slots * block_bytes
            label = f"{frac:.0%} ({gb(cache)})"
            if cache > args.max_cache_gb * 1e9:
                out.append(f"| {R} | {touched:,} | {label} | — | skipped: over --max-cache-gb {args.max_cache_gb:g} "
                           + "| — " * 9 + "|")
                continue
            table = EmbeddingTable.virtual(ROWS, DIM, dtype="float16", block_rows=R, cache_bytes=cache)
            for p in (1, 2):
                table.reset_stats()
                wall, cpu = serve(table, ids, offsets, args.batch)
                s, mem = table.cache_stats(), table.memory()
                out.append(
                    f"| {R} | {touched:,} | {label} | {p} | {gb(mem['resident_bytes'])} "
                    f"| {mem['resident_bytes'] / dense:.2e} | {s['hit_rate']:.1%} | {s['loads']:,} | {s['evictions']:,} "
                    f"| {s['bypass']:,} | {rate(tokens / wall)} | {rate(n_reads / wall)} | {rate(tokens / cpu)} "
                    f"| {gb(proc_status('VmRSS'))} |"
                )
                print(f"  {wall:6.2f} s  R={R} cache {label} pass {p}", file=sys.stderr, flush=True)
            del table
    out += ["", f"Peak RSS of the process (VmHWM): {gb(proc_status('VmHWM'))}."]
    print("\n".join(out))
    print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
