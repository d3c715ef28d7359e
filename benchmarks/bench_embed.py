"""Embedding lookup: kmerx.embed against torch (CPU) and numpy on the same table and ids.

Table: 10,000,005 rows x 128 (the hashed tokenizer's id space: 5 specials + B = 10^7 buckets) of
standard normal values, stored as float32 (5.1 GB) or float16 (2.6 GB); built once per dtype (one at a
time) and shared with torch through ``torch.from_numpy`` (no copy). Ids: the ART MG1655 R1 reads (154,655
x 150 bp) tokenized with the hashed scheme (k=31, no special tokens), 120 ids per read, so rows are read
in hash order (no locality). The quick run uses a 50k-row table and 500 random 300 bp reads.

Pooled (bag mean). Per call: every token of 32,768 reads (flat ids + int64 offsets from the Arrow
output). kmerx: ``kmerx.embed(table, ids, offsets=offsets, pool="mean")`` (fp32 output);
peer: ``torch.nn.EmbeddingBag.from_pretrained(weights, mode="mean", freeze=True)(ids, offsets[:-1])``
under ``torch.no_grad()`` (its output has the weights' dtype), with the ids already int64 tensors.
1 and 2 threads: ``kmerx.set_num_threads`` / ``torch.set_num_threads``. Outputs are checked equal once.

Bandwidth. A numpy copy of a 1 GiB buffer (``np.copyto``; with 2 threads each copies one half) measures
the machine's copy bandwidth in the same run, reported counting bytes read + written (the STREAM
convention, 2 x 1 GiB per copy). A pooled lookup moves tokens x row bytes (rows read) + tokens x 4 (ids)
+ offsets + the output; its "moved GB/s" counts those bytes the same way, and "of copy bw" is that
rate over the copy rate at the same thread count.

Per token + sinusoidal positions. Padded ``(n, 120)`` ids and mask from ``encode_batch``, 4,096 reads
per call (a 252 MB fp32 output), 8 calls. kmerx: ``kmerx.embed(table, ids, mask=mask,
pos_encoding="sinusoidal")``; numpy: ``weights[ids]`` as float32, ``+= pe[:L]``, padding zeroed;
torch: ``F.embedding(ids, weights).float() + pe[:L]``, ``masked_fill`` of the padding. All three give
the same float32 ``[n, L, 128]`` (checked).
"""

from __future__ import annotations

import concurrent.futures
import statistics

import numpy as np
import pyarrow as pa
import pytest
from conftest import compare, quick_seqs, shared, with_threads

import kmerx
from kmerx.embed import sinusoidal
from kmerx.tables import EmbeddingTable
from kmerx.tokenizers import Tokenizer

torch = pytest.importorskip("torch", reason="the embedding benchmarks compare against torch (pip install torch)")

DIM = 128
K = 31
GIB = 1 << 30


def _sizes(full: bool) -> dict:
    if full:
        return dict(rows=10_000_005, reads="ART MG1655 R1 (154,655 x 150 bp)", pooled_batch=32_768,
                    token_batch=4096, token_calls=8, copy_bytes=GIB)
    return dict(rows=50_005, reads="quick random (500 x 300 bp)", pooled_batch=128, token_batch=64,
                token_calls=2, copy_bytes=16 << 20)


@pytest.fixture(scope="session")
def sizes(full) -> dict:
    return _sizes(full)


@pytest.fixture(scope="session")
def tokenizer(sizes) -> Tokenizer:
    # 5 specials ([PAD] [UNK] [CLS] [SEP] [MASK]) then the buckets: ids fill 0..rows-1 exactly.
    return Tokenizer.from_config(dict(scheme="hashed", k=K, buckets=sizes["rows"] - 5))


@pytest.fixture(scope="session")
def seqs(full) -> pa.Array:
    if full:
        path = shared("reads/art_MG1655_HS25_2x150_10x_R1.fq.gz")
        return pa.concat_arrays([b.column("seq") for b in kmerx.read(path)])
    return pa.array(quick_seqs(), pa.large_binary())


@pytest.fixture(scope="session", params=["float32", "float16"])
def table(request, sizes) -> tuple[np.ndarray, EmbeddingTable]:
    """(weights, dense EmbeddingTable over the same memory); one dtype alive at a time (pytest tears the
    float32 table down before building the float16 one)."""
    dtype = np.dtype(request.param)
    rows = sizes["rows"]
    w = np.empty((rows, DIM), dtype)
    chunk = 1 << 20  # float16 is converted from float32 a chunk at a time: no 5 GB float32 copy
    for i, start in enumerate(range(0, rows, chunk)):
        rng = np.random.default_rng([7, i])
        part = rng.standard_normal((min(chunk, rows - start), DIM), dtype=np.float32)
        w[start : start + part.shape[0]] = part
    return w, EmbeddingTable.from_array(w)


def _chunks(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@pytest.fixture(scope="session")
def pooled_input(seqs, tokenizer, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per call: (flat uint32 ids, int64 offsets) of a chunk of reads."""
    out = []
    for s in _chunks(len(seqs), sizes["pooled_batch"]):
        ids = tokenizer.encode_batch(seqs[s], return_tensors="arrow", add_special_tokens=False)["input_ids"]
        offsets = np.asarray(ids.offsets, dtype=np.int64)
        out.append((ids.values.to_numpy(), offsets - offsets[0]))
    return out


@pytest.fixture(scope="session")
def padded_input(seqs, tokenizer, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per call: padded (n, L) uint32 ids and their uint8 attention mask."""
    out = []
    for s in _chunks(len(seqs), sizes["token_batch"])[: sizes["token_calls"]]:
        enc = tokenizer.encode_batch(seqs[s], add_special_tokens=False)
        out.append((enc["input_ids"], enc["attention_mask"]))
    return out


def torch_threads(n: int, fn):
    """fn run with n torch intra-op threads (the previous count restored after)."""

    def call():
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return fn()
        finally:
            torch.set_num_threads(before)

    return call


# ---- copy bandwidth ------------------------------------------------------------------------------


class Copier:
    """np.copyto of one buffer into another, whole or as two halves on two threads (copyto releases
    the GIL)."""

    def __init__(self, nbytes: int) -> None:
        self.src = np.ones(nbytes // 8, np.float64)  # pages touched before any timing
        self.dst = np.zeros_like(self.src)
        self.pool = concurrent.futures.ThreadPoolExecutor(2)
        self.nbytes = self.src.nbytes

    def copy(self, threads: int) -> None:
        if threads == 1:
            np.copyto(self.dst, self.src)
            return
        h = self.src.size // 2
        parts = [(self.dst[:h], self.src[:h]), (self.dst[h:], self.src[h:])]
        list(self.pool.map(lambda p: np.copyto(*p), parts))

    def close(self) -> None:
        self.pool.shutdown()


@pytest.fixture(scope="session")
def copier(sizes):
    c = Copier(sizes["copy_bytes"])
    yield c
    c.close()


@pytest.fixture(scope="session")
def copy_bw(copier, full) -> dict[int, float]:
    """Best copy rate (bytes read + written per second) of 5 copies, per thread count: the reference
    for the lookups' bandwidth fraction."""
    import time

    best = {}
    for threads in (1, 2):
        times = []
        for _ in range(5 if full else 1):
            t = time.perf_counter()
            copier.copy(threads)
            times.append(time.perf_counter() - t)
        best[threads] = 2 * copier.nbytes / min(times)
    return best


def _threads(name: str) -> int:
    return 2 if "2 threads" in name else 1


def test_copy_bandwidth(benchmark, copier, rounds):
    impls = {f"numpy copyto ({t} thread{'s' * (t > 1)})": (lambda t=t: copier.copy(t)) for t in (1, 2)}
    compare(benchmark, f"Memory copy bandwidth: numpy.copyto of {copier.nbytes >> 20} MiB (bytes copied)",
            impls, rounds, copier.nbytes, "B")
    med = {n: statistics.median(t) for n, t in benchmark.extra_info["times"].items()}
    benchmark.extra_info["columns"] = {
        "read + written (STREAM)": {n: f"{2 * copier.nbytes / s / 1e9:.1f} GB/s" for n, s in med.items()},
    }


# ---- pooled lookup vs torch.nn.EmbeddingBag ------------------------------------------------------


def test_pooled_mean_vs_embeddingbag(benchmark, table, pooled_input, sizes, copy_bw, rounds):
    weights, tab = table
    tokens = sum(int(ids.size) for ids, _ in pooled_input)
    reads = sum(off.size - 1 for _, off in pooled_input)
    bag = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(weights), mode="mean", freeze=True)
    # The peer's input as it wants it (int64 tensors), prepared outside the timing.
    t_in = [(torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(off[:-1].copy())) for ids, off in pooled_input]

    def ours():
        for ids, off in pooled_input:
            out = kmerx.embed(tab, ids, offsets=off, pool="mean")
        return out

    def peer():
        with torch.no_grad():
            for ids, off in t_in:
                out = bag(ids, off)
        return out

    # Equal outputs, once (last chunk): float32 accumulation on both sides.
    got = ours()
    want = peer().float().numpy()
    tol = 1e-5 if weights.dtype == np.float32 else 2e-3  # torch writes float16 means for float16 weights
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    del got, want

    impls = {}
    for t in (1, 2):
        impls[f"kmerx embed pool=mean ({t} thread{'s' * (t > 1)})"] = with_threads(t, ours)
        impls[f"torch EmbeddingBag mean ({t} thread{'s' * (t > 1)})"] = torch_threads(t, peer)
    compare(benchmark, f"Embedding pooled mean, {weights.dtype} rows x {DIM}, {sizes['rows']:,} row table, "
            f"hashed k={K} ids of {sizes['reads']}, {sizes['pooled_batch']:,} reads per call",
            impls, rounds, tokens, "tokens", keep=lambda out: None)

    # Bytes moved per round: rows read, ids read, offsets read, output written.
    moved = tokens * weights.itemsize * DIM + tokens * 4 + (reads + len(pooled_input)) * 8 + reads * DIM * 4
    med = {n: statistics.median(t) for n, t in benchmark.extra_info["times"].items()}
    benchmark.extra_info["bytes_moved"] = moved
    benchmark.extra_info["copy_bw"] = {str(t): bw for t, bw in copy_bw.items()}
    benchmark.extra_info["columns"] = {
        "moved GB/s": {n: f"{moved / s / 1e9:.1f}" for n, s in med.items()},
        "of copy bw": {n: f"{moved / s / copy_bw[_threads(n)]:.0%}" for n, s in med.items()},
    }


# ---- per token + sinusoidal positions vs numpy / torch -------------------------------------------


def test_per_token_sinusoidal(benchmark, table, padded_input, sizes, rounds):
    weights, tab = table
    tokens = sum(int(m.sum()) for _, m in padded_input)
    width = max(ids.shape[1] for ids, _ in padded_input)
    pe = sinusoidal(width, DIM)
    w_t, pe_t = torch.from_numpy(weights), torch.from_numpy(pe.copy())
    t_in = [(torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(m == 0)) for ids, m in padded_input]

    def ours():
        for ids, m in padded_input:
            out = kmerx.embed(tab, ids, mask=m, pos_encoding="sinusoidal")
        return out

    def numpy_peer():
        for ids, m in padded_input:
            out = weights[ids].astype(np.float32, copy=False)
            out += pe[: ids.shape[1]]
            out[m == 0] = 0
        return out

    def torch_peer():
        with torch.no_grad():
            for ids, pad in t_in:
                out = torch.nn.functional.embedding(ids, w_t).float() + pe_t[: ids.shape[1]]
                out.masked_fill_(pad.unsqueeze(-1), 0)
        return out

    got = ours()
    np.testing.assert_allclose(got, numpy_peer(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, torch_peer().numpy(), rtol=1e-6, atol=1e-6)
    del got

    impls = {
        "kmerx embed sinusoidal (1 thread)": with_threads(1, ours),
        "kmerx embed sinusoidal (2 threads)": with_threads(2, ours),
        "numpy weights[ids] + pe, masked": numpy_peer,
        "torch F.embedding + pe, masked (1 thread)": torch_threads(1, torch_peer),
        "torch F.embedding + pe, masked (2 threads)": torch_threads(2, torch_peer),
    }
    compare(benchmark, f"Embedding per token + sinusoidal positions, {weights.dtype} rows x {DIM}, "
            f"{sizes['rows']:,} row table, padded ({sizes['token_batch']:,}, {width}) ids + mask of "
            f"{sizes['reads']}, {sizes['token_calls']} calls", impls, rounds, tokens, "tokens",
            keep=lambda out: None)
