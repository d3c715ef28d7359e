"""Benchmark harness: every benchmark times kmerx and a named peer on the same input in the same run.

Default (``--quick``) mode runs each benchmark once on tiny inputs as a smoke test (CI does this through the
README's test command); ``--full`` uses the real data in ../shared/data and times several rounds.
``python benchmarks/report.py`` runs the full set and rewrites BENCHMARKS.md.

One benchmark per comparison: :func:`compare` times kmerx and its peer on the same input with their
rounds interleaved (kmerx, peer, kmerx, peer, ...), so a machine that slows down mid-run (this one
does, by up to 2x) slows both sides alike. report.py reads ``benchmark.group`` (the comparison's
title) and ``extra_info``: ``times`` (per implementation, seconds per round; names starting with
"kmerx" are ours), ``units`` and ``unit`` (work per round, e.g. bases, for a throughput).
"""

from __future__ import annotations

import gzip
import os
import pathlib
import re
import time
from collections.abc import Callable

import numpy as np
import pytest

SHARED = pathlib.Path(os.environ.get("KMERX_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def pytest_addoption(parser):
    group = parser.getgroup("kmerx benchmarks")
    group.addoption("--full", action="store_true", default=False, help="benchmark real inputs (slow)")
    group.addoption("--quick", action="store_true", default=False,
                    help="tiny inputs, one round: the smoke run (the default unless --full)")


@pytest.fixture(scope="session")
def full(request) -> bool:
    return bool(request.config.getoption("--full"))


@pytest.fixture(scope="session")
def rounds(full) -> int:
    return 7 if full else 1


def shared(name: str) -> pathlib.Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"benchmark input {path} is missing (../shared/data is not beside the project)")
    return path


# ---- shared inputs: (label, list of sequences); real data with --full, a small random set otherwise ----
CHRX_BASES = 20_000_000


def chrx() -> list[bytes]:
    """The first 20 Mb of human chrX as one sequence (N runs included)."""
    text = gzip.decompress(shared("genomes/human_GRCh37_chrX_first70Mb.fa.gz").read_bytes())
    body = text.split(b"\n", 1)[1].split(b">", 1)[0].replace(b"\n", b"")
    return [body[:CHRX_BASES]]


def srr_reads() -> list[bytes]:
    """The 100k SRR059298 Illumina reads (72 bp; 3.5% hold an N)."""
    lines = gzip.decompress(shared("reads/SRR059298_subset_100k.fastq.gz").read_bytes()).split(b"\n")
    return lines[1::4]


def quick_seqs() -> list[bytes]:
    rng = np.random.default_rng(11)
    return [
        bytes(np.frombuffer(b"ACGTN", np.uint8)[rng.choice(5, 300, p=[0.245] * 4 + [0.02])])
        for _ in range(500)
    ]


def acgt_pieces(seqs: list[bytes], k: int) -> list[bytes]:
    """The sequences split at non-ACGT bases, pieces shorter than k dropped (for peers without N handling)."""
    return [p for s in seqs for p in re.split(rb"[^ACGT]+", s.upper()) if len(p) >= k]


@pytest.fixture(scope="session")
def chrx_seqs(full) -> tuple[str, list[bytes]]:
    return ("chrX first 20 Mb", chrx()) if full else ("quick random", quick_seqs())


@pytest.fixture(scope="session")
def read_seqs(full) -> tuple[str, list[bytes]]:
    return ("SRR059298 100k reads", srr_reads()) if full else ("quick random", quick_seqs())


def tiny_fastq(tmp_path_factory, n: int = 2000, length: int = 150, compressed: bool = False) -> pathlib.Path:
    """A small deterministic FASTQ for quick mode (no ../shared needed)."""
    import random

    rng = random.Random(7)
    path = tmp_path_factory.mktemp("bench") / ("tiny.fq.gz" if compressed else "tiny.fq")
    lines = []
    for i in range(n):
        seq = "".join(rng.choice("ACGT") for _ in range(length))
        lines.append(f"@r{i}\n{seq}\n+\n{'I' * length}\n")
    text = "".join(lines).encode()
    path.write_bytes(gzip.compress(text, 1) if compressed else text)
    return path


def compare(benchmark, group: str, impls: dict[str, Callable[[], object]], rounds: int, units: int, unit: str,
            keep: Callable[[object], object] = lambda v: v) -> dict:
    """Time every implementation once per round, interleaved; returns ``keep`` of each one's last result
    (pass e.g. ``len`` for large outputs, so one side's output does not stay alive while the other runs,
    as it would not in a pipeline)."""
    benchmark.group = group
    times: dict[str, list[float]] = {name: [] for name in impls}
    results: dict[str, object] = {}

    def one_round() -> None:
        for name, fn in impls.items():
            t = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t)
            results[name] = keep(out)
            del out

    warmup = 1 if rounds > 1 else 0
    benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=warmup)
    benchmark.extra_info.update(times={name: t[warmup:] for name, t in times.items()}, units=int(units), unit=unit)
    return results


def with_threads(n: int, fn: Callable[[], object]) -> Callable[[], object]:
    """fn run with n native threads (the default restored after)."""
    import kmerx

    def call():
        kmerx.set_num_threads(n)
        try:
            return fn()
        finally:
            kmerx.set_num_threads(0)

    return call
