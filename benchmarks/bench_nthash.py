"""ntHash 2, canonical k=31, 1 hash, into a uint64 array: kmerx (1 and 2 threads) vs the reference
library's ``nthash::NtHash`` (Debian libnthash-dev, ntHash 2.3) in a C++ driver.

Both sides get the same ACGT-only pieces (sequences split at non-ACGT bases, pieces shorter than k
dropped), prepared outside the timed call. The peer is benchmarks/nthash_peer.cpp, compiled here with
``g++ -O3`` once per session (skipped, with the reason, when the header or library is missing). It runs
as one long-lived subprocess that reads the sequences once; each timed call sends it "go" and waits for
"done": it hashes every sequence with ``NtHash::roll()`` into one preallocated uint64 array. compare()
times that call like any other, so file reading and process start-up stay out of the timing and only a
pipe round trip (tens of microseconds, against tens to hundreds of milliseconds of hashing) is added;
the driver's own timing of its loop is kept in extra_info["peer_self_seconds"] to show it. Results are
checked: the same number of k-mers and the same XOR of all hashes on both sides.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from conftest import acgt_pieces, compare, with_threads

from kmerx import kmers

K = 31
HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def peer_binary(tmp_path_factory) -> pathlib.Path:
    if not pathlib.Path("/usr/include/nthash/nthash.hpp").exists():
        pytest.skip("libnthash-dev is not installed (no /usr/include/nthash/nthash.hpp)")
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed: cannot build the ntHash peer driver")
    exe = tmp_path_factory.mktemp("nthash_peer") / "nthash_peer"
    cmd = ["g++", "-O3", "-std=c++17", str(HERE / "nthash_peer.cpp"), "-lnthash", "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"the ntHash peer driver does not build against libnthash-dev: {res.stderr[-500:]}")
    return exe


class Peer:
    """The driver process, holding the sequences; ``run()`` hashes them all once."""

    def __init__(self, exe: pathlib.Path, seqs: list[bytes], tmp: pathlib.Path):
        path = tmp / "seqs.txt"
        path.write_bytes(b"\n".join(seqs) + b"\n")
        self.proc = subprocess.Popen(
            [str(exe), str(path), str(K)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().startswith("ready")
        self.self_seconds: list[float] = []

    def run(self) -> tuple[int, int]:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        _, n, x, secs = self.proc.stdout.readline().split()
        self.self_seconds.append(float(secs))
        return int(n), int(x)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


def bench(benchmark, name, seqs, rounds, peer_binary, tmp_path):
    data, offsets = kmers.seq_arrays(seqs)
    peer = Peer(peer_binary, seqs, tmp_path)
    try:
        run = lambda: kmers.nthash_numpy(data, offsets, K)[0]  # noqa: E731
        summary = lambda v: (int(v.size), int(np.bitwise_xor.reduce(v))) if isinstance(v, np.ndarray) else v  # noqa: E731
        got = compare(
            benchmark,
            f"ntHash 2: canonical k={K}, 1 hash, {name}",
            {
                "kmerx (1 thread)": with_threads(1, run),
                "kmerx (2 threads)": with_threads(2, run),
                "ntHash 2.3 NtHash (libnthash-dev)": peer.run,
            },
            rounds,
            data.size,
            "bp",
            keep=summary,
        )
        benchmark.extra_info["peer_self_seconds"] = peer.self_seconds
    finally:
        peer.close()
    assert len(set(got.values())) == 1, got
    assert next(iter(got.values()))[0] == int(np.sum(np.diff(offsets) - K + 1))


def test_nthash_chrx(benchmark, chrx_seqs, rounds, peer_binary, tmp_path):
    name, seqs = chrx_seqs
    bench(benchmark, name, acgt_pieces(seqs, K), rounds, peer_binary, tmp_path)


def test_nthash_reads(benchmark, read_seqs, rounds, peer_binary, tmp_path):
    name, seqs = read_seqs
    bench(benchmark, name, acgt_pieces(seqs, K), rounds, peer_binary, tmp_path)
