"""Run the full benchmarks and rewrite BENCHMARKS.md: machine, date, medians, ratios, reproduce command.

    python benchmarks/report.py            # all benchmarks, real inputs from ../shared/data
    python benchmarks/report.py -k reader  # a subset (other sections of BENCHMARKS.md are kept)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "BENCHMARKS.md"


NOTES = """## Notes

- The machine is a shared 2-core VM: runs move by up to 2x; compare ratios within one run, not medians
  across runs. Tests never assert timings.
- Reader: kmerx builds Arrow batches (no Python object per record); dnaio yields one Python record
  object per read, and the peer loop sums the sequence lengths. gzip is decoded by ISA-L on a second
  thread while the first parses; dnaio reads gzip through xopen (python-isal).
- K-mer codes: both sides get the same ACGT-only sequences, prepared outside the timed call; bionumpy
  1.0 has no canonical k-mers, so its row computes forward codes (less work than canonical).
- ntHash: both sides hash the same ACGT-only pieces into a preallocated uint64 array. The peer is
  Debian libnthash-dev (ntHash 2.3) `NtHash::roll()` in benchmarks/nthash_peer.cpp (g++ -O3), a
  long-lived process timed per "go"/"done" round trip, so file reading and start-up are excluded.
  On chrX (long pieces) bp/s equals k-mers/s within 0.1%; on the 72 bp reads k-mers/s is 0.58x the
  bp/s (42 k-mers per read).
- Minimizers: kmerx returns hash, end, strand and span columns; pykmertools' `MinimiserGenerator`
  (window given in bases, w + k - 1) yields one tuple per minimizer, all collected into a list. Both
  pick about 2/(w+1) of the k-mers. The one-record chrX input runs on one thread either way (minimap2's
  window is sequential).
- Sketches: the same raw sequences (N included) on both sides; sourmash `MinHash.add_sequence(seq,
  force=True)` once per sequence; both sides' hash sets are asserted equal.
- Counting: whole runs as separate processes from the gzip input to an output file, 2 threads each:
  `python -m kmerx --threads 2 count FILES -k 31 -o out.parquet --no-kmers` (codes + counts),
  `kmc -k31 -t2 -ci1 -cs4294967295` (its binary database), `jellyfish count -m 31 -s 100M -C -t 2`
  (input through zcat). Peak RSS is each process's own (os.wait4).
- Tokenizers: DNABERT-6 against the path DNABERT users write (space-joined 6-mers into
  `transformers.BertTokenizer(vocab.txt, do_lower_case=False)`, truncation at 512; transformers 5 runs its
  Rust backend on both cores); both sides' ids are asserted equal. Hashed / LSH rows count k-mer windows
  (N windows included, they become [UNK]); "1 thread" rows pin kmerx to one core, so their k-mers/s is
  the per-core rate. The compression tables come from `benchmarks/compression_report.py`, the LSH
  collision curves from `benchmarks/lsh_collision.py` (docs/tokenizers.md).
- Embeddings (benchmarks/bench_embed.py): a 10,000,005 x 128 table of standard normal values (the
  hashed tokenizer's id space, B = 10^7 + 5 specials) as float32 (5.1 GB) or float16 (2.6 GB), shared
  with torch through `torch.from_numpy`; ids are the ART MG1655 R1 reads tokenized with the hashed
  scheme (k=31, no special tokens), 120 per read, in hash order (no locality). Pooled: both sides get
  the same flat ids + offsets, 32,768 reads per call; torch is `nn.EmbeddingBag.from_pretrained(w,
  mode="mean")` under `no_grad` with int64 id tensors prepared outside the timing (for float16 weights
  it writes float16 means; kmerx writes float32). "moved GB/s" counts rows read + ids + offsets +
  output; "of copy bw" divides it by the numpy copy rate (bytes read + written, best of 5, same thread
  count) measured in the same run. Per token: padded (4,096, 120) ids + mask per call, 8 calls; numpy
  and torch compose gather + float32 + sinusoidal add + zeroed padding; all outputs are checked equal.
  The memory / hit-rate table of the 2^32-row virtual table comes from `benchmarks/virtual_table.py`.
- HPC (`benchmarks/hpc_scaling.py`, `benchmarks/hpc_quality.py`): whole `mpirun -n R python -m kmerx.hpc`
  runs; solve / read / write seconds come from the result manifest (the slowest rank), speed-up and
  efficiency against 1 rank. Strong scaling is shown both with one BLAS thread per rank and with kmerx's
  default (the node's cores shared among its ranks). Neither is run by `report.py`: their sections are
  kept as written.
- CUDA kernels: no GPU was available to this project's runs yet, so no device numbers are recorded.
- Pipeline (`benchmarks/bench_pipeline.py`, `--full`): whole `kmerx.pipeline.run` calls into a fresh OUT
  with Ray already started (`ray.init(num_cpus=2)`), pipeline defaults, 8 MiB shards; a pair (2 x 150 bp)
  is embedded as one vector. "plan / table / first shard at" is seconds from the call. Every side also
  runs on its input repeated (gzip members back to back): "start-up excluded" is the throughput of the
  extra reads, (n2 - n1) / (t2 - t1) from the two medians, so each side's fixed cost per run cancels (Ray
  Data starting new actor processes, each importing `ray.data`: 2-4 s of CPU here; the table; planning;
  the manifest). The peer is a plain Ray Data pipeline (dnaio read function, Python canonical k-mer loop
  with Python's `hash()`, numpy float16 table, float32 mean, `write_parquet`) with 2 actors (one per
  core, its fastest), kmerx on its default (1 actor with 2 kernel threads on 2 cores); both sides' k-mer
  counts are checked equal.
"""


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import kmerx

    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"kmerx {kmerx.__version__} (simd {kmerx.simd_level()})"
    )


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_rate(units: int, unit: str, s: float) -> str:
    rate = units / s
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.1f} {prefix}{unit}/s"
    return f"{rate:.1f} {unit}/s"


def section(group: str, bench: dict) -> str:
    """One table: each implementation's median and throughput (of ``extra_info["row_units"][name]``
    when rows differ in size; and peak RSS, and the extra columns of ``extra_info["columns"]``, when the
    benchmark gives them), and each kmerx row's speed-up over every peer (peer median / kmerx median;
    the rounds were interleaved) unless ``extra_info["peer_columns"]`` is False."""
    info = bench["extra_info"]
    medians = {name: statistics.median(t) for name, t in info["times"].items()}
    rss = info.get("peak_rss_mb", {})
    extra = info.get("columns", {})  # {column title: {implementation: cell text}}, shown after throughput
    peers = sorted((n for n in medians if not n.startswith("kmerx")), key=medians.get)
    if not any(n.startswith("kmerx") for n in medians) or not info.get("peer_columns", True):
        peers = []  # a measurement without kmerx rows (e.g. copy bandwidth): no speed-up columns
    rounds = max(len(t) for t in info["times"].values())
    cols = ["implementation", "median", "throughput", *(["peak RSS"] if rss else []), *extra,
            *(f"kmerx speed-up vs {p}" for p in peers)]
    lines = [f"### {group}", "", f"{rounds} round{'s' if rounds != 1 else ''}.", "", "| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for name, med in sorted(medians.items(), key=lambda kv: kv[1]):
        row = [name, fmt_time(med), fmt_rate(info.get("row_units", {}).get(name, info["units"]), info["unit"], med)]
        if rss:
            row.append(f"{rss[name]:.0f} MB" if name in rss else "—")
        row += [cells.get(name, "—") for cells in extra.values()]
        row += [f"**{medians[p] / med:.2f}x**" if name.startswith("kmerx") else "—" for p in peers]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", default=None, help="pytest -k expression selecting benchmarks")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        js = pathlib.Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", str(ROOT / "benchmarks"), "--full", "--benchmark-enable",
               f"--benchmark-json={js}", "-q", "-p", "no:cacheprovider"]
        if args.k:
            cmd += ["-k", args.k]
        rc = subprocess.call(cmd, cwd=ROOT)
        if not js.exists():
            return rc or 1
        data = json.loads(js.read_text())
    groups = {b["group"] or b["name"]: b for b in data["benchmarks"]}
    old = OUT.read_text() if OUT.exists() else ""
    kept = {m.group(1): m.group(0) for m in re.finditer(r"(?ms)^### (.+?)\n.*?(?=^### |^## |\Z)", old)}
    for g, bench in groups.items():
        kept[g] = section(g, bench) + "\n"
    today = dt.date.today().isoformat()
    head = (
        "# kmerx benchmarks\n\n"
        "Each table times kmerx and a named peer on the same input in the same run, their rounds interleaved "
        "(kmerx, peer, kmerx, peer, ...) so that a change in the machine's speed hits both; the figure is the "
        "median of the rounds after a warm-up round (7, or 3 for whole counting runs). Speed-up = peer median / kmerx median.\n\n"
        f"- Machine: {machine()}\n- Date: {today}\n"
        "- Reproduce: `pip install '.[test,bench]' && python benchmarks/report.py` (inputs from ../shared/data)\n\n"
        "## Results\n\n"
    )
    OUT.write_text(head + "".join(kept[g] for g in sorted(kept)) + NOTES)
    print(f"wrote {OUT}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
