"""Process-wide pieces of the native core: errors, threads, SIMD dispatch, CUDA detection, atomic outputs."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import kmerx
from kmerx.formats import atomic_path


def test_format_error_is_a_value_error():
    assert issubclass(kmerx.FastxFormatError, ValueError)


def test_thread_count_roundtrip():
    default = kmerx.num_threads()
    assert default >= 1
    kmerx.set_num_threads(3)
    try:
        assert kmerx.num_threads() == 3
    finally:
        kmerx.set_num_threads(0)
    assert kmerx.num_threads() == default


def test_simd_switch():
    assert kmerx.simd_level() in ("scalar", "avx2", "avx512")
    kmerx.set_simd("scalar")
    try:
        assert kmerx.simd_level() == "scalar"
    finally:
        kmerx.set_simd("auto")
    with pytest.raises(ValueError, match="simd level must be one of"):
        kmerx.set_simd("sse9")


def test_simd_env_forces_level():
    out = subprocess.run([sys.executable, "-c", "import kmerx; print(kmerx.simd_level())"],
                         env=dict(os.environ, KMERX_SIMD="scalar"), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "scalar"


def test_cuda_available_is_a_bool():
    assert isinstance(kmerx.cuda_available(), bool)


def test_import_is_light():
    code = "import sys, kmerx; bad = [m for m in ('ray', 'mpi4py', 'kmerx.io', 'tqdm') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_atomic_path(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        pathlib.Path(tmp).write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            pathlib.Path(tmp).write_text("partial")
            raise RuntimeError("interrupted")
    assert target.read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
