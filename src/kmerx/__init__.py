"""kmerx: FASTA/FASTQ to k-mer tokens to compressed embeddings, with a fast native core.

The kernels work on Arrow/numpy batches without Ray or MPI; orchestration lives in subpackages.
"""

from __future__ import annotations

from kmerx import _core
from kmerx._core import FastxFormatError
from kmerx._version import __version__

__all__ = [
    "FastxFormatError",
    "__version__",
    "cuda_available",
    "num_threads",
    "set_num_threads",
    "simd_level",
    "set_simd",
]

num_threads = _core.num_threads
set_num_threads = _core.set_num_threads


def simd_level() -> str:
    """The SIMD level native kernels use now: 'scalar', 'avx2' or 'avx512'."""
    return _core.simd_level()


def set_simd(level: str) -> None:
    """Force the SIMD level ('auto', 'scalar', 'avx2', 'avx512'); for tests and benchmarks.

    The environment variable ``KMERX_SIMD`` sets the initial level the same way. Raises ValueError
    if the CPU lacks the level."""
    _core.set_simd(level)


def cuda_available() -> bool:
    """True when kmerx was built with CUDA and a usable CUDA device is present."""
    try:
        from kmerx import _cuda
    except ImportError:
        return False
    return bool(_cuda.device_count() > 0)


def _lazy(name: str):
    import importlib

    return importlib.import_module(f"kmerx.{name}")


def __getattr__(name: str):
    # Submodules and their main entry points load on first use, so `import kmerx` stays fast.
    if name in ("io", "clean", "count", "kmers", "stats", "cli", "vocab", "tokenizers", "tables", "embed"):
        return _lazy(name)
    if name in ("read", "read_pairs", "ReadConfig", "READ_SCHEMA"):
        return getattr(_lazy("io"), name)
    if name == "CleanConfig":
        return _lazy("clean").CleanConfig
    if name == "Vocab":
        return _lazy("vocab").Vocab
    if name in ("Tokenizer", "TokenizerConfig"):
        return getattr(_lazy("tokenizers"), name)
    if name in ("EmbeddingTable", "HashEmbedding", "QREmbedding", "TableConfig"):
        return getattr(_lazy("tables"), name)
    raise AttributeError(f"module 'kmerx' has no attribute {name!r}")
