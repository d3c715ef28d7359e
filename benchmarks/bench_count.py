"""Exact k=31 canonical counting, whole runs side by side: ``kmerx count`` vs KMC 3 and jellyfish.

Every side runs as its own process (2 threads) from the compressed input to its output file, so wall
time covers start-up, decompression, counting and writing, and peak RSS is the process's own (from
os.wait4). kmerx writes codes + counts Parquet (``--no-kmers``; KMC writes its binary database, not
strings); jellyfish reads the input through ``zcat`` (it cannot read gzip). Peak RSS per side lands
in ``extra_info["peak_rss_mb"]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from conftest import compare, shared, tiny_fastq

K = 31


def run(cmd: list[str], peaks: dict[str, float], name: str) -> int:
    """Runs cmd, records its peak RSS (MB) under name; returns 0 (compare() wants a value)."""
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as p:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {err[-500:]}")
    peaks[name] = max(peaks.get(name, 0.0), usage.ru_maxrss / 1024)
    return 0


def sides(files: list[str], work, fasta: bool) -> dict[str, list[str]]:
    out = {"kmerx count (2 threads)": [sys.executable, "-m", "kmerx", "--threads", "2", "count", *files, "-k", str(K),
                                       "-o", str(work / "kmerx.parquet"), "--no-kmers"]}
    if shutil.which("kmc"):
        listing = work / "inputs.txt"
        listing.write_text("".join(f"{f}\n" for f in files))
        (work / "kmc_tmp").mkdir(exist_ok=True)
        out["KMC 3 (2 threads)"] = ["kmc", f"-k{K}", "-t2", "-ci1", "-cs4294967295", "-fm" if fasta else "-fq",
                                    f"@{listing}", str(work / "kmc"), str(work / "kmc_tmp")]
    if shutil.which("jellyfish"):
        subs = " ".join(f"<(zcat -f {f})" for f in files)
        out["jellyfish (2 threads)"] = ["bash", "-c", f"jellyfish count -m {K} -s 100M -C -t 2 -o {work / 'jf.jf'} {subs}"]
    return out


def bench(benchmark, label: str, files: list[str], work, fasta: bool, rounds: int, bases: int) -> None:
    cmds = sides(files, work, fasta)
    if len(cmds) == 1:
        pytest.skip("neither kmc nor jellyfish is installed (apt-get install kmc jellyfish): no peer to compare")
    # Whole runs take seconds to minutes: 3 interleaved rounds for kmerx and KMC; jellyfish, several
    # times slower than both, runs once after them.
    slow = {n: c for n, c in cmds.items() if n.startswith("jellyfish")}
    peaks: dict[str, float] = {}
    compare(benchmark, f"k-mer counting: canonical k={K}, whole run to file, {label}",
            {name: (lambda c=cmd, n=name: run(c, peaks, n)) for name, cmd in cmds.items() if name not in slow},
            min(rounds, 3), bases, "bp")
    for name, cmd in slow.items():
        t = time.perf_counter()
        run(cmd, peaks, name)
        benchmark.extra_info["times"][f"{name}, 1 round"] = [time.perf_counter() - t]
        peaks[f"{name}, 1 round"] = peaks.pop(name)
    benchmark.extra_info["peak_rss_mb"] = {n: round(v, 1) for n, v in peaks.items()}


def bases_of(files: list[str]) -> int:
    import kmerx
    from kmerx.kmers import seq_arrays

    return sum(int(o[-1] - o[0]) for f in files for _, o in map(seq_arrays, kmerx.io.read(f)))


def test_count_reads(benchmark, full, rounds, tmp_path_factory):
    if full:
        files = [str(shared(f"reads/art_MG1655_HS25_2x150_10x_R{i}.fq.gz")) for i in (1, 2)]
        label = "E. coli MG1655 ART 2x150 10x (both mates)"
    else:
        files, label = [str(tiny_fastq(tmp_path_factory, compressed=True))], "quick: tiny FASTQ"
    bench(benchmark, label, files, tmp_path_factory.mktemp("count"), False, rounds, bases_of(files))


def test_count_chrx(benchmark, full, rounds, tmp_path_factory):
    if not full:
        pytest.skip("chrX counting runs with --full only (the reads benchmark is the quick smoke run)")
    files = [str(shared("genomes/human_GRCh37_chrX_first70Mb.fa.gz"))]
    bench(benchmark, "human chrX first 70 Mb", files, tmp_path_factory.mktemp("count"), True, rounds, bases_of(files))
