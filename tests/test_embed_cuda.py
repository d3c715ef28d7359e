"""The fused lookup on every device against a float64 numpy reference (dense gather + weights +
positional add + pool), one test body per behaviour parametrized over devices; the device hot-block
cache's counters; device virtual rows bit-identical to the host's."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import kmerx
from kmerx import _core
from kmerx.embed import embed, sinusoidal
from kmerx.tables import DTYPES, INITS, EmbeddingTable, HashEmbedding, QREmbedding

HAS_CUDA = kmerx.cuda_available()
HAS_CUPY = importlib.util.find_spec("cupy") is not None
GPU = [pytest.mark.gpu, pytest.mark.skipif(not (HAS_CUDA and HAS_CUPY), reason="no CUDA device or cupy not installed")]
DEVICES = ["cpu", pytest.param("cuda", marks=GPU)]
DT = list(DTYPES)
# Against the decoded rows, only fp32 accumulation (and fp16 output) differs from the reference.
ATOL = {np.float32: 1e-4, np.float16: 2e-2}


def decoded(table: EmbeddingTable) -> np.ndarray:
    return _core.decode_rows(table.native(), table.dim, DTYPES[table.dtype]).astype(np.float64)


def reference(rows: np.ndarray, ids: np.ndarray, offsets: np.ndarray, *, pool=None, pos=None, weights=None,
              h: int = 1) -> np.ndarray:
    """float64: per token the (weighted) sum of its h rows plus its positional row, then the pool."""
    tok = rows[ids.reshape(-1, h)]  # [T, h, dim]
    w = np.ones(tok.shape[:2]) if weights is None else weights.reshape(-1, h).astype(np.float64)
    vec = (tok * w[..., None]).sum(axis=1)
    if pos is not None:
        vec = vec + pos
    if pool is None:
        return vec
    out = np.zeros((len(offsets) - 1, rows.shape[1]))
    for i in range(len(offsets) - 1):
        part = vec[offsets[i]:offsets[i + 1]]
        if len(part):
            out[i] = {"sum": part.sum(0), "mean": part.mean(0), "max": part.max(0)}[pool]
    return out


def run(device: str, table, ids, offsets=None, *, cache_bytes=None, **kw) -> np.ndarray:
    """kmerx.embed on the device: numpy in and out on "cpu"; cupy in, cupy out (copied back) on "cuda"."""
    if device == "cpu":
        return np.asarray(embed(table, ids, offsets=offsets, **kw))
    import cupy as cp

    from kmerx.tables.device import to_device

    dev = _device_table(table, cache_bytes, to_device) if cache_bytes is not None else table
    for k in ("positions", "weights", "slots", "mask"):
        if kw.get(k) is not None:
            kw[k] = cp.asarray(kw[k])
    out = embed(dev, cp.asarray(ids), offsets=None if offsets is None else cp.asarray(offsets), **kw)
    assert isinstance(out, cp.ndarray)
    return cp.asnumpy(out)


def batch(rng: np.random.Generator, rows: int, n: int = 40, max_len: int = 30):
    lengths = rng.integers(0, max_len, n)
    lengths[0] = 0  # an empty read
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, rows, int(offsets[-1])).astype(np.uint32)
    return ids, offsets


def table_of(rng: np.random.Generator, rows: int, dim: int, dtype: str) -> EmbeddingTable:
    return EmbeddingTable.from_array(rng.standard_normal((rows, dim)).astype(np.float32), dtype=dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("pool", [None, "sum", "mean", "max"])
@pytest.mark.parametrize("out_dtype", [np.float32, np.float16])
def test_lookup_matches_reference(device, dtype, pool, out_dtype):
    rng = np.random.default_rng(DT.index(dtype))
    table = table_of(rng, 500, 37, dtype)  # odd dim: int4 rows end in half a byte
    ids, offsets = batch(rng, 500)
    got = run(device, table, ids, offsets, pool=pool, pos_encoding="sinusoidal", out_dtype=out_dtype)
    lengths = np.diff(offsets)
    index = np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)
    pos = sinusoidal(int(lengths.max()), 37).astype(np.float64)[index]
    want = reference(decoded(table), ids, offsets, pool=pool, pos=pos)
    assert got.dtype == out_dtype and got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-3 if out_dtype == np.float16 else 1e-5,
                               atol=ATOL[out_dtype])


@pytest.mark.parametrize("device", DEVICES)
@given(data=st.data())
@settings(max_examples=25, deadline=None)
@example(data=None)  # pinned edge cases below
def test_lookup_property(device, data):
    if data is None:  # dim 1, every id equal, an empty read, int4
        dim, dtype, lengths, same, pool = 1, "int4", [0, 3, 0, 5], True, "mean"
    else:
        dim = data.draw(st.integers(1, 70), label="dim")
        dtype = data.draw(st.sampled_from(DT), label="dtype")
        lengths = data.draw(st.lists(st.integers(0, 12), min_size=1, max_size=8), label="lengths")
        same = data.draw(st.booleans(), label="same")
        pool = data.draw(st.sampled_from([None, "sum", "mean", "max"]), label="pool")
    rng = np.random.default_rng(dim)
    table = table_of(rng, 64, dim, dtype)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.full(int(offsets[-1]), 7, np.int64) if same else rng.integers(0, 64, int(offsets[-1]))
    got = run(device, table, ids, offsets, pool=pool)
    want = reference(decoded(table), ids, offsets, pool=pool)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["weights", "slots", "ones"])
def test_hash_embedding(device, mode):
    rng = np.random.default_rng(3)
    h = 3
    importance = rng.random((5, h)).astype(np.float32) if mode == "slots" else None
    table = HashEmbedding(table_of(rng, 300, 16, "float16"), h, importance=importance)
    lengths = np.array([4, 0, 7, 2])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = int(offsets[-1])
    ids = rng.integers(0, 300, (tokens, h)).astype(np.int64)
    kw = {}
    w = None
    if mode == "weights":
        w = rng.random((tokens, h)).astype(np.float32)
        kw["weights"] = w
    if mode == "slots":
        slots = rng.integers(0, 5, tokens).astype(np.uint32)
        kw["slots"] = slots
        w = importance[slots]
    got = run(device, table, ids, offsets, pool="sum", **kw)
    want = reference(decoded(table.table), ids, offsets, pool="sum", weights=w, h=h)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("combine", ["product", "sum"])
def test_quotient_remainder(device, combine):
    qr = QREmbedding.create(1000, 24, m=40, dtype="bfloat16", combine=combine, seed=5)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 1000, 200).astype(np.int64)
    offsets = np.array([0, 50, 50, 200], np.int64)
    got = run(device, qr, ids, offsets)
    q, r = decoded(qr.quotient), decoded(qr.remainder)
    want = q[ids // 40] * r[ids % 40] if combine == "product" else q[ids // 40] + r[ids % 40]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_padded_per_token_with_mask_and_positions(device):
    rng = np.random.default_rng(5)
    table = table_of(rng, 100, 8, "int8")
    ids = rng.integers(0, 100, (4, 6)).astype(np.int64)
    mask = np.zeros((4, 6), np.int8)
    mask[0, :6] = 1
    mask[1, 2:5] = 1  # left and right padding
    mask[3, 0:1] = 1  # read 2 is empty
    positions = rng.integers(-1, 10, (4, 6)).astype(np.int64)  # -1: no positional term
    learned = rng.standard_normal((10, 8)).astype(np.float32)
    got = run(device, table, ids, mask=mask, positions=positions, pos_encoding="learned", pos_table=learned)
    rows = decoded(table)
    want = rows[ids] + np.where(positions[..., None] >= 0, learned.astype(np.float64)[positions.clip(0)], 0)
    want[mask == 0] = 0
    assert got.shape == (4, 6, 8)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_range_names_the_token(device):
    table = table_of(np.random.default_rng(6), 10, 4, "float32")
    ids = np.array([1, 2, 10, 3], np.int64)
    with pytest.raises(IndexError, match="token 2"):
        run(device, table, ids, np.array([0, 4], np.int64), pool="sum")
    with pytest.raises(IndexError, match="position 9 of token 1"):
        run(device, table, ids[:2], np.array([0, 2], np.int64), positions=np.array([0, 9]),
            pos_encoding="learned", pos_table=np.zeros((5, 4), np.float32))


@pytest.mark.parametrize("device", DEVICES)
def test_cache_counters(device):
    """A block-sparse table behind a cache of 4 blocks: rows count per id, loads per distinct block."""
    table = EmbeddingTable.virtual(10_000, 16, dtype="float16", seed=9, block_rows=64, cache_bytes=4 * 64 * 32)
    ids = np.array([0, 1, 63, 64, 200, 200], np.int64)  # blocks 0, 0, 0, 1, 3, 3
    offsets = np.array([0, 3, 6], np.int64)
    cache = 4 * 64 * 32
    want = reference(decoded_virtual(table, ids), np.arange(6), offsets, pool="mean")
    first = run(device, table, ids, offsets, pool="mean", cache_bytes=cache)
    np.testing.assert_allclose(first, want, rtol=1e-5, atol=1e-5)
    stats = stats_of(device, table, cache)
    assert (stats["lookups"], stats["hits"], stats["loads"], stats["bypass"]) == (6, 0, 3, 0)
    run(device, table, ids, offsets, pool="mean", cache_bytes=cache)
    stats = stats_of(device, table, cache)
    assert (stats["lookups"], stats["hits"], stats["loads"]) == (12, 6, 3)
    assert stats["resident_blocks"] == 3 and stats["capacity_blocks"] == 4
    # Two more blocks than free slots: one eviction (CLOCK), still the right values.
    more = np.array([64 * 10, 64 * 11], np.int64)
    got = run(device, table, more, np.array([0, 2], np.int64), pool="sum", cache_bytes=cache)
    np.testing.assert_allclose(got, reference(decoded_virtual(table, more), np.arange(2), np.array([0, 2]), pool="sum"),
                               rtol=1e-5, atol=1e-5)
    stats = stats_of(device, table, cache)
    assert stats["loads"] == 5 and stats["evictions"] == 1 and stats["resident_blocks"] == 4


_DEVICE_TABLES: dict = {}


def stats_of(device: str, table: EmbeddingTable, cache: int) -> dict:
    if device == "cpu":
        return table.cache_stats()
    from kmerx.tables.device import to_device

    return _device_table(table, cache, to_device).stats()


def _device_table(table, cache, to_device):
    key = id(table)
    if key not in _DEVICE_TABLES or _DEVICE_TABLES[key][0] is not table:
        _DEVICE_TABLES[key] = (table, to_device(table, cache))
    return _DEVICE_TABLES[key][1]


def decoded_virtual(table: EmbeddingTable, ids: np.ndarray) -> np.ndarray:
    cfg = table.config
    enc = _core.virtual_rows(ids.astype(np.int64), cfg.dim, DTYPES[cfg.dtype], cfg.seed, INITS[cfg.init], cfg.scale)
    return _core.decode_rows(enc, cfg.dim, DTYPES[cfg.dtype]).astype(np.float64)


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("init", ["uniform", "normal"])
@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_CUDA and HAS_CUPY), reason="no CUDA device or cupy not installed")
def test_device_virtual_rows_bit_identical(dtype, init):
    import cupy as cp

    from kmerx import _cuda

    dim = 33
    rows = np.array([0, 1, 2, 12345, 2**32 - 1, 2**40 + 7, 99], np.int64)
    host = _core.virtual_rows(rows, dim, DTYPES[dtype], 17, INITS[init], 0.5)
    out = cp.zeros(host.shape, cp.uint8)
    _cuda.virtual_rows(cp.asarray(rows), dim, DTYPES[dtype], 17, INITS[init], 0.5, 2**62, out)
    np.testing.assert_array_equal(cp.asnumpy(out), host)
    # And through the device cache: a virtual table's lookup equals the CPU's, bit for bit.
    table = EmbeddingTable.virtual(2**32, dim, dtype=dtype, init=init, seed=17, scale=0.5, block_rows=16)
    ids = rows[rows < 2**32]
    offsets = np.arange(ids.size + 1, dtype=np.int64)
    np.testing.assert_array_equal(run("cuda", table, ids, offsets, cache_bytes=1 << 20), run("cpu", table, ids, offsets))


@pytest.mark.skipif(importlib.util.find_spec("kmerx._cuda") is None, reason="kmerx built without CUDA")
def test_device_lookup_checks_arguments_before_any_cuda_call():
    from kmerx import _cuda

    host = np.zeros(3, np.int64)
    with pytest.raises(TypeError, match="ids must be a device array"):
        _cuda.lookup(None, 4, 0, host, host, out=host)
    with pytest.raises(ValueError, match="dtype code must be in 0..4"):
        _cuda.DeviceCache(16, 4, 9, 1 << 20)
    with pytest.raises(ValueError, match="block_rows must be in"):
        _cuda.DeviceCache(0, 4, 0, 1 << 20)
