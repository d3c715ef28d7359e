"""Benchmark harness: every benchmark times kmerx and a named peer on the same input in the same run.

Default (``--quick``) mode runs each benchmark once on tiny inputs as a smoke test (CI does this through the
README's test command); ``--full`` uses the real data in ../shared/data and times several rounds.
``python benchmarks/report.py`` runs the full set and rewrites BENCHMARKS.md.

Conventions read by report.py: ``benchmark.group`` names the comparison; ``extra_info["impl"]`` is
"kmerx" or the peer's name; ``extra_info["units"]`` and ``extra_info["unit"]`` give the work done
(e.g. bases) so a throughput can be printed.
"""

from __future__ import annotations

import gzip
import os
import pathlib

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
    return 5 if full else 1


def shared(name: str) -> pathlib.Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"benchmark input {path} is missing (../shared/data is not beside the project)")
    return path


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


def run(benchmark, fn, rounds: int, impl: str, units: int, unit: str):
    benchmark.extra_info.update(impl=impl, units=int(units), unit=unit)
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if rounds > 1 else 0)
