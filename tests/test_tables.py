"""Embedding tables on the CPU: row codecs (bit-exact fp16/bf16, bounded int8/int4 error), virtual rows
(a numpy re-implementation of the generator, pinned values, statistics), EmbeddingTable (dense and
block-sparse: writes, blocks, memory, exact cache counters, threads) and persistence (kmerx directories,
.npy, safetensors, HDF5, bad files). The fused lookup itself is tested in test_embed*.py."""

from __future__ import annotations

import concurrent.futures
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kmerx import _core
from kmerx.tables import DTYPES, INITS, EmbeddingTable, HashEmbedding, QREmbedding, row_bytes

DT = list(DTYPES)
F16, BF16, I8, I4 = DTYPES["float16"], DTYPES["bfloat16"], DTYPES["int8"], DTYPES["int4"]


def encode(x: np.ndarray, dtype: str) -> np.ndarray:
    return _core.encode_rows(np.ascontiguousarray(x, np.float32).reshape(-1, x.shape[-1]), DTYPES[dtype])


def decode(rows: np.ndarray, dim: int, dtype: str) -> np.ndarray:
    return _core.decode_rows(rows, dim, DTYPES[dtype])


def f32(bits) -> np.ndarray:
    return np.asarray(bits, np.uint32).view(np.float32)


# ---- fp16 / bf16 codecs ---------------------------------------------------------------------------
# Edge cases as float32 bit patterns: zeros, fp16 extremes (65504 max, 65520 = the first value that
# rounds to inf, the smallest subnormal 2^-24 and half of it, a tie that rounds to 0), rounding ties
# to even in the normal range (1 + 2^-11, 1 + 3 * 2^-11), the largest float32, infinities.
SPECIAL = [0x00000000, 0x80000000, 0x477FE000, 0x477FEFFF, 0x477FF000, 0xC77FF000, 0x33800000, 0x33000000,
           0x33000001, 0x32FFFFFF, 0x38800000, 0x387FC000, 0x3F801000, 0x3F803000, 0x3F801001, 0x7F7FFFFF,
           0x7F800000, 0xFF800000, 0x00000001, 0x3F7FFFFF, 0x3F808000, 0x3F818000, 0x3F808001]


def bf16_reference(bits: np.ndarray) -> np.ndarray:
    """Round to nearest even at 8 significant bits, by distance in float64 (not by bit tricks): the
    two neighbouring bfloat16 values (by magnitude) are the truncation and the next one up."""
    bits = np.asarray(bits, np.uint32)
    lo = (bits >> 16).astype(np.uint32)
    hi = lo + 1
    x = f32(bits).astype(np.float64)
    vlo = f32(lo << 16).astype(np.float64)
    with np.errstate(invalid="ignore"):  # the step above an infinity is a signalling NaN: unused
        vhi = f32(hi << 16).astype(np.float64)
    # Past the largest finite value the next step up is 2^128 (IEEE overflow: rounds to inf from halfway).
    vhi = np.where((hi & 0x7FFF) == 0x7F80, np.copysign(2.0**128, x), vhi)
    with np.errstate(invalid="ignore"):
        dlo, dhi = np.abs(x - vlo), np.abs(vhi - x)
    up = (dhi < dlo) | ((dhi == dlo) & (lo & 1 == 1))
    up &= (bits & 0xFFFF) != 0  # exact values (infinities included) stay
    return np.where(up, hi, lo).astype(np.uint16)


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64))
@settings(max_examples=60, deadline=None)
@example(SPECIAL)
def test_fp16_encode_bit_exact(bits):
    """numpy's float32 -> float16 cast is IEEE round-to-nearest-even: the reference for every non-NaN."""
    x = f32(bits)
    x = x[~np.isnan(x)]
    if not x.size:
        return
    got = encode(x[None], "float16").view(np.uint16)[0]
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(got, want)


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=64))
@settings(max_examples=60, deadline=None)
@example(SPECIAL)
def test_bf16_encode_bit_exact(bits):
    x = f32(bits)
    keep = ~np.isnan(x)
    if not keep.any():
        return
    got = encode(x[keep][None], "bfloat16").view(np.uint16)[0]
    np.testing.assert_array_equal(got, bf16_reference(np.asarray(bits, np.uint32)[keep]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_nan_stays_nan_with_its_sign(dtype):
    x = f32([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF812345])  # quiet and signalling NaNs of both signs
    h = encode(x[None], dtype).view(np.uint16)[0]
    exp_mask, frac_mask = (0x7C00, 0x03FF) if dtype == "float16" else (0x7F80, 0x007F)
    assert np.all(h & exp_mask == exp_mask) and np.all(h & frac_mask != 0)
    np.testing.assert_array_equal(h >> 15, [0, 1, 0, 1])
    assert np.isnan(decode(h.view(np.uint8)[None], 4, dtype)).all()


def test_fp16_and_bf16_decode_every_bit_pattern():
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    got = decode(h.view(np.uint8)[None], h.size, "float16")[0]
    want = h.view(np.float16).astype(np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))  # -0.0 included
    got = decode(h.view(np.uint8)[None], h.size, "bfloat16")[0]
    np.testing.assert_array_equal(got.view(np.uint32), h.astype(np.uint32) << 16)
    # And encode(decode(h)) is the identity on every non-NaN pattern.
    for dtype in ("float16", "bfloat16"):
        vals = decode(h.view(np.uint8)[None], h.size, dtype)
        keep = ~np.isnan(vals[0])
        np.testing.assert_array_equal(encode(vals[:, keep], dtype).view(np.uint16)[0], h[keep])


# ---- int8 / int4 ----------------------------------------------------------------------------------
def quant_check(x: np.ndarray, dtype: str) -> None:
    """Asserted bound, per row: bias = min, scale = (max - min) / (levels - 1) (both fp32), and
    |x - decoded| <= scale / 2 + slack, slack = 8 fp32 ulps of the row's largest magnitude (the fp32
    subtract/multiply in encoding and the multiply/add in decoding)."""
    levels = 256 if dtype == "int8" else 16
    n, dim = x.shape
    rows = encode(x, dtype)
    assert rows.shape == (n, row_bytes(dtype, dim))
    scale, bias = rows[:, -8:-4].copy().view(np.float32)[:, 0], rows[:, -4:].copy().view(np.float32)[:, 0]
    lo, hi = x.min(axis=1), x.max(axis=1)
    np.testing.assert_array_equal(bias, lo)
    np.testing.assert_array_equal(scale, (hi - lo) / np.float32(levels - 1))
    back = decode(rows, dim, dtype).astype(np.float64)
    mag = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
    bound = scale.astype(np.float64) / 2 + 8 * np.spacing(mag.astype(np.float32)).astype(np.float64)
    err = np.abs(back - x.astype(np.float64)).max(axis=1)
    assert np.all(err <= bound), (err - bound).max()
    if dtype == "int4" and dim % 2:  # the unused high nibble of the last byte is zero
        assert np.all(rows[:, (dim + 1) // 2 - 1] >> 4 == 0)


@given(dim=st.integers(1, 67), n=st.integers(1, 6), dtype=st.sampled_from(["int8", "int4"]),
       mag=st.sampled_from([1e-6, 1.0, 1e3]), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
@example(dim=1, n=3, dtype="int4", mag=1.0, seed=0)  # one value: scale 0, exact
@example(dim=7, n=2, dtype="int4", mag=1.0, seed=1)  # odd dim: half a byte at the end
@example(dim=128, n=4, dtype="int8", mag=1e3, seed=2)
def test_quantized_rows_error_bound(dim, n, dtype, mag, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, dim)) * mag + rng.standard_normal((n, 1)) * mag).astype(np.float32)
    quant_check(x, dtype)


@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_quantized_constant_rows_and_levels_are_exact(dtype):
    x = np.array([[3.25] * 9, [-0.0] * 9, [1e-30] * 9], np.float32)
    quant_check(x, dtype)
    np.testing.assert_array_equal(decode(encode(x, dtype), 9, dtype), x)
    # Values on the grid of levels decode exactly (here scale 1, bias -2).
    levels = 256 if dtype == "int8" else 16
    grid = (np.arange(levels, dtype=np.float32) - 2)[None]
    np.testing.assert_array_equal(decode(encode(grid, dtype), levels, dtype), grid)


# ---- virtual rows ---------------------------------------------------------------------------------
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def virtual_reference(rows, dim: int, seed: int, init: str, scale: float) -> np.ndarray:
    """The generator of kmerx/rows.hpp re-implemented in numpy (uint64 arithmetic wraps), float32."""
    rows = np.asarray(rows, np.uint64)
    if init == "zeros":
        return np.zeros((rows.size, dim), np.float32)
    stream = mix64(np.uint64(seed) ^ mix64(rows))[:, None]
    j = np.arange(1, dim + 1, dtype=np.uint64)[None, :]
    h = mix64(stream + np.uint64(0x9E3779B97F4A7C15) * j)
    if init == "uniform":
        c = (2 * (h >> np.uint64(40)).astype(np.int64) + 1 - (1 << 24)).astype(np.float32)
        return c * np.float32(scale / 2**24)
    s = sum(((h >> np.uint64(k)) & np.uint64(0xFFFF)).astype(np.int64) for k in (0, 16, 32, 48)) - 131070
    return s.astype(np.float32) * np.float32(scale / np.sqrt((65536.0 * 65536.0 - 1.0) / 3.0))


def virtual(rows, dim, dtype="float32", seed=0, init="normal", scale=1.0) -> np.ndarray:
    enc = _core.virtual_rows(np.asarray(rows, np.int64), dim, DTYPES[dtype], seed, INITS[init], scale)
    return decode(enc, dim, dtype)


@pytest.mark.parametrize("init", ["zeros", "uniform", "normal"])
@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1])
def test_virtual_rows_match_numpy_generator(init, seed):
    rows = np.array([0, 1, 2, 999, 2**31, 2**32 - 1, 2**32, 2**40 + 7, 2**62 - 1], np.int64)
    got = virtual(rows, 19, seed=seed, init=init, scale=0.37)
    np.testing.assert_array_equal(got.view(np.uint32), virtual_reference(rows, 19, seed, init, 0.37).view(np.uint32))
    # Other dtypes store the encoded fp32 row.
    for dtype in DT[1:]:
        enc = _core.virtual_rows(rows, 19, DTYPES[dtype], seed, INITS[init], 0.37)
        np.testing.assert_array_equal(enc, encode(got, dtype))


# Pinned: the first 4 values of rows 0 and 2^32 - 1, seed 0, scale 1, as float32 bits. A change here
# changes every virtual table ever described by a config.
PINNED = {
    "uniform": [[0x3F444151, 0xBE0C3B0C, 0xBF727745, 0x3F711771], [0x3F6173CD, 0x3D826888, 0xBF3C5431, 0xBF1B5403]],
    "normal": [[0x3FB6DD01, 0x3E0E7CFD, 0xBFBA0346, 0x3F8F434F], [0x3F2F0B9E, 0xBEF77E6B, 0x3FAFEE84, 0x3EA62B2B]],
}


@pytest.mark.parametrize("init", ["uniform", "normal"])
def test_virtual_rows_pinned(init):
    got = virtual([0, 2**32 - 1], 4, init=init)
    np.testing.assert_array_equal(got.view(np.uint32), np.array(PINNED[init], np.uint32))
    # A wider row starts with the same values: value j does not depend on dim.
    np.testing.assert_array_equal(virtual([0, 2**32 - 1], 33, init=init)[:, :4], got)


def test_virtual_rows_statistics():
    x = virtual(np.arange(4000), 64, init="uniform", scale=2.5).astype(np.float64).ravel()
    n = x.size
    assert -2.5 < x.min() and x.max() < 2.5
    assert abs(x.mean()) < 5 * 2.5 / np.sqrt(3 * n)  # 5 sigma
    assert abs(x.var() / (2.5**2 / 3) - 1) < 0.02
    y = virtual(np.arange(4000), 64, init="normal", scale=0.5, seed=3).astype(np.float64).ravel()
    assert np.abs(y).max() <= 3.47 * 0.5
    assert abs(y.mean()) < 5 * 0.5 / np.sqrt(n)
    assert abs(y.std() / 0.5 - 1) < 0.02  # sd of the sample sd ~ 1 / sqrt(2 n) = 0.0016
    # Seeds give different rows; zeros are zeros.
    assert not np.array_equal(virtual([5], 8, seed=1), virtual([5], 8, seed=2))
    assert not np.array_equal(virtual([5], 8), virtual([6], 8))
    assert not virtual(np.arange(100), 8, init="zeros").any()


def test_virtual_table_same_bits_across_layouts(simd):
    """A virtual row is the same whatever the table around it: block size, cache size, dtype path,
    SIMD level, or a repeated call."""
    ids = np.array([0, 1, 77, 4095, 4096, 2**32 - 1, 12345678], np.int64)
    want = virtual(ids, 24, dtype="bfloat16", seed=42, scale=0.1)
    for block_rows, cache in [(1, 0), (16, 1 << 12), (1000, 1 << 20), (0, 256 << 20)]:
        t = EmbeddingTable.virtual(2**32, 24, dtype="bfloat16", seed=42, scale=0.1, block_rows=block_rows,
                                   cache_bytes=cache)
        for _ in range(2):
            np.testing.assert_array_equal(t.lookup(ids).view(np.uint32), want.view(np.uint32))


# ---- EmbeddingTable: dense ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DT)
def test_from_array_every_dtype(dtype):
    x = np.random.default_rng(1).standard_normal((50, 13)).astype(np.float32)
    t = EmbeddingTable.from_array(x, dtype=dtype)
    assert (t.rows, t.dim, t.dtype, t.dense, len(t)) == (50, 13, dtype, True, 50)
    want = decode(encode(x, dtype), 13, dtype)
    np.testing.assert_array_equal(t.to_numpy(), want)
    np.testing.assert_array_equal(t.native(), encode(x, dtype))
    assert t.nbytes == 50 * row_bytes(dtype, 13) == t.memory()["resident_bytes"]
    assert t.cache_stats() == {} and t.prefetch([1, 2]) == 0


def test_from_array_zero_copy_when_no_conversion(tmp_path):
    x32 = np.ones((10, 4), np.float32)
    assert np.shares_memory(EmbeddingTable.from_array(x32).native(), x32)
    x16 = np.ones((10, 4), np.float16)
    t16 = EmbeddingTable.from_array(x16)
    assert t16.dtype == "float16" and np.shares_memory(t16.native(), x16)
    # Conversion or a non-contiguous view copies.
    assert not np.shares_memory(EmbeddingTable.from_array(x32, dtype="float16").native(), x32)
    wide = np.ones((10, 8), np.float32)
    assert not np.shares_memory(EmbeddingTable.from_array(wide[:, ::2]).native(), wide)
    assert EmbeddingTable.from_array(np.ones((3, 2))).dtype == "float32"  # float64 in: float32 rows
    path = tmp_path / "m.bin"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(10, 4))
    mm[:] = 2.5
    mm.flush()
    t = EmbeddingTable.from_array(np.memmap(path, dtype=np.float32, mode="r", shape=(10, 4)))
    assert isinstance(t.native(), np.memmap) and not t.native().flags.writeable
    np.testing.assert_array_equal(t.to_numpy(), mm)


def test_from_array_rejects_bad_values():
    with pytest.raises(ValueError, match="values must be 2-D"):
        EmbeddingTable.from_array(np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="values must hold floats"):
        EmbeddingTable.from_array(np.zeros((5, 2), np.int32))
    with pytest.raises(ValueError, match="dtype must be one of .* got 'int2'"):
        EmbeddingTable.from_array(np.zeros((5, 2), np.float32), dtype="int2")


@pytest.mark.parametrize("sparse", [False, True])
def test_lookup_shapes_write_and_bad_ids(sparse):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 6)).astype(np.float32)
    if sparse:
        t = EmbeddingTable.virtual(100, 6, dtype="float32", init="zeros", block_rows=8, cache_bytes=3 * 8 * 24)
        t.write(np.arange(100), x)
    else:
        t = EmbeddingTable.from_array(x.copy())
    assert t.lookup([[1, 2, 3], [4, 5, 6]]).shape == (2, 3, 6)
    assert t.lookup(7).shape == (6,)
    assert t.lookup(np.zeros(0, np.int64)).shape == (0, 6)
    np.testing.assert_array_equal(t.lookup(np.array([3, 99], np.uint32)), x[[3, 99]])
    # Writes: a repeated id keeps its last row; untouched rows stay.
    new = rng.standard_normal((4, 6)).astype(np.float32)
    t.write([10, 50, 10, 11], new)
    x[[50, 10, 11]] = new[[1, 2, 3]]
    np.testing.assert_array_equal(t.to_numpy(), x)
    t.write(np.zeros(0, np.int64), np.zeros((0, 6), np.float32))
    for bad in (100, -1, 2**40):
        with pytest.raises(IndexError, match=f"{bad}"):
            t.lookup(np.array([0, bad], np.int64))
    with pytest.raises(IndexError, match="100"):
        t.write([5, 100], np.zeros((2, 6), np.float32))
    with pytest.raises(ValueError, match="values holds 1 rows for 2 ids"):
        t.write([1, 2], np.zeros((1, 6), np.float32))
    with pytest.raises(TypeError, match="ids must hold integers"):
        t.lookup(np.array([1.0]))
    np.testing.assert_array_equal(t.to_numpy(), x)  # failed calls changed nothing


@pytest.mark.parametrize("dtype", DT)
def test_read_blocks_dense_and_sparse_agree(dtype):
    x = np.random.default_rng(3).standard_normal((45, 10)).astype(np.float32)
    dense = EmbeddingTable.from_array(x, dtype=dtype)
    sparse = EmbeddingTable.virtual(45, 10, dtype=dtype, init="uniform", block_rows=dense.block_rows,
                                    cache_bytes=0)
    sparse.write(np.arange(45), x)
    br, rb = dense.block_rows, dense.row_bytes
    nblocks = -(-45 // br)
    want = np.zeros((nblocks * br, rb), np.uint8)
    want[:45] = encode(x, dtype)
    want = want.reshape(nblocks, br * rb)
    np.testing.assert_array_equal(dense.read_blocks(np.arange(nblocks)), want)
    np.testing.assert_array_equal(sparse.read_blocks(np.arange(nblocks)[::-1]), want[::-1])
    with pytest.raises(IndexError):
        dense.read_blocks([nblocks])
    with pytest.raises(IndexError, match=f"block {nblocks}"):
        sparse.read_blocks([0, nblocks])


def test_read_blocks_of_virtual_rows_with_partial_last_block():
    t = EmbeddingTable.virtual(21, 5, dtype="int4", seed=8, block_rows=10)
    got = t.read_blocks([2, 0]).reshape(2, 10, t.row_bytes)
    np.testing.assert_array_equal(got[0, 0], _core.virtual_rows(np.array([20]), 5, I4, 8, 2, 1.0)[0])
    assert not got[0, 1:].any()  # rows past the end read as zeros
    np.testing.assert_array_equal(got[1], _core.virtual_rows(np.arange(10), 5, I4, 8, 2, 1.0))
    assert t.cache_stats()["loads"] == 0  # read_blocks does not go through the cache


# ---- block-sparse: memory and cache counters -----------------------------------------------------
def test_memory_follows_blocks_touched():
    t = EmbeddingTable.virtual(2**32, 128, dtype="float16", block_rows=16, cache_bytes=64 * 16 * 256)
    m0 = t.memory(vocab_size=2**32)
    s = t.cache_stats()
    assert m0["dense_bytes"] == 2**32 * 256 == 1 << 40
    assert m0["resident_bytes"] == s["index_bytes"] < 64 << 10  # nothing but the slot bookkeeping
    assert m0["vocab_dense_bytes"] == 2**32 * 128 * 4
    t.lookup(np.array([0, 1, 15], np.int64))  # one block
    assert t.memory()["resident_bytes"] == s["index_bytes"] + 4096
    t.lookup(np.array([16, 2**32 - 1, 10**9], np.int64))  # three more
    assert t.memory()["resident_bytes"] == s["index_bytes"] + 4 * 4096
    t.lookup(np.arange(0, 200 * 16, 16, dtype=np.int64))  # more blocks than the 64 slots: capped
    assert t.memory()["resident_bytes"] == s["index_bytes"] + 64 * 4096
    assert t.cache_stats()["used_blocks"] == 64


def test_cache_counters_scripted():
    """2 slots of 10-row blocks; each step's counters are exact whatever the eviction policy."""
    dim, br = 4, 10
    t = EmbeddingTable.virtual(1000, dim, dtype="float32", seed=5, block_rows=br, cache_bytes=2 * br * dim * 4)
    ref = virtual(np.arange(1000), dim, seed=5)

    def step(ids, **want):
        got = t.lookup(np.array(ids, np.int64))
        np.testing.assert_array_equal(got, ref[ids])
        s = t.cache_stats()
        assert {k: s[k] for k in want} == want

    assert t.cache_stats()["capacity_blocks"] == 2
    step([0, 1, 12], lookups=3, hits=0, misses=3, loads=2, evictions=0, resident_blocks=2)
    step([3, 13, 13], lookups=6, hits=3, misses=3, loads=2, evictions=0)
    v = np.full((1, dim), 7.5, np.float32)
    t.write([21], v)  # block 2 loaded into a slot (one eviction), then dirty
    ref[21] = v
    s = t.cache_stats()
    assert (s["loads"], s["evictions"], s["writebacks"], s["lookups"]) == (3, 1, 0, 6)
    # Two new blocks in one batch need both slots: the written block goes to the spill file.
    step([35, 45], lookups=8, hits=3, loads=5, evictions=3, writebacks=1, resident_blocks=2)
    # ... and comes back from it.
    step([21, 20], lookups=10, hits=3, loads=6, evictions=4, writebacks=1)
    assert t.cache_stats()["hit_rate"] == pytest.approx(0.3)
    # Three blocks for two slots: two are cached, one served from the batch's private buffer.
    step([50, 60, 70, 51], lookups=14, hits=3, loads=9, evictions=6, bypass=1, resident_blocks=2)
    step([21, 22], hits=3, loads=10, writebacks=1)  # the written row survived its trip through the spill
    t.reset_stats()
    s = t.cache_stats()
    assert (s["lookups"], s["hits"], s["loads"], s["evictions"], s["writebacks"], s["hit_rate"]) == (0, 0, 0, 0, 0, 0.0)
    assert s["resident_blocks"] == 2


def test_write_without_cache_slots_goes_to_the_spill(tmp_path):
    t = EmbeddingTable.virtual(100, 3, dtype="int8", init="zeros", block_rows=4, cache_bytes=0, spill_dir=tmp_path)
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    t.write(np.arange(0, 100, 10), x)
    s = t.cache_stats()
    assert s["capacity_blocks"] == 0 and s["writebacks"] == 10
    assert list(os.listdir(tmp_path)) == []  # the spill file is unlinked at once
    np.testing.assert_array_equal(t.lookup(np.arange(0, 100, 10)), decode(encode(x, "int8"), 3, "int8"))
    assert t.cache_stats()["bypass"] == 10
    np.testing.assert_array_equal(t.written_blocks(), np.arange(0, 100, 10) // 4)


def test_clear_cache_keeps_written_rows_and_prefetch_dedups():
    t = EmbeddingTable.virtual(1000, 8, dtype="float16", seed=1, block_rows=10, cache_bytes=1 << 16)
    v = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float16).astype(np.float32)
    t.write([5, 6, 500], v)
    t.clear_cache()
    s = t.cache_stats()
    assert s["resident_blocks"] == 0 and s["writebacks"] == 2
    np.testing.assert_array_equal(t.lookup([5, 6, 500]), v)
    np.testing.assert_array_equal(t.written_blocks(), [0, 50])
    t.clear_cache()
    t.reset_stats()
    assert t.prefetch([0, 1, 2, 15, 15, 999, 998]) == 3  # blocks 0, 1, 99
    assert t.prefetch(np.array([3, 19, 990], np.uint32)) == 0
    t.lookup([1, 2, 15, 999])
    s = t.cache_stats()
    assert (s["loads"], s["lookups"] - 7 - 3, s["hits"] - 3) == (3, 4, 4)


def test_threads_share_one_block_sparse_table():
    """4 threads write disjoint rows (sharing blocks) and read them back alongside unwritten rows,
    through a cache of 3 blocks: every read equals the reference."""
    rows, dim = 2000, 8
    t = EmbeddingTable.virtual(rows, dim, dtype="float32", seed=11, block_rows=16, cache_bytes=3 * 16 * dim * 4)
    ref = virtual(np.arange(rows), dim, seed=11)
    unwritten = np.arange(rows)[np.arange(rows) % 8 >= 4]

    def worker(k: int) -> int:
        rng = np.random.default_rng(k)
        mine = np.arange(k, rows, 8)
        rng.shuffle(mine)
        vals = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim) * (k + 1)
        done = []
        for chunk in np.array_split(mine, 25):
            t.write(chunk, vals[chunk])
            done.extend(chunk.tolist())
            ids = np.concatenate([rng.choice(done, 20), rng.choice(unwritten, 20)])
            want = np.concatenate([vals[ids[:20]], ref[ids[20:]]])
            np.testing.assert_array_equal(t.lookup(ids), want)
        return len(done)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(worker, range(4))) == rows // 2
    want = ref.copy()
    for k in range(4):
        want[k::8] = (np.arange(rows * dim, dtype=np.float32).reshape(rows, dim) * (k + 1))[k::8]
    np.testing.assert_array_equal(t.to_numpy(), want)
    s = t.cache_stats()
    assert s["resident_blocks"] <= 3 and s["evictions"] > 0 and s["writebacks"] > 0


# ---- persistence ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DT)
def test_save_load_dense_exact(tmp_path, dtype):
    x = np.random.default_rng(5).standard_normal((33, 7)).astype(np.float32)
    t = EmbeddingTable.from_array(x, dtype=dtype)
    t.save(tmp_path / "t")
    u = EmbeddingTable.load(tmp_path / "t")
    assert u.dense and u.config == t.config
    np.testing.assert_array_equal(u.native(), t.native())
    assert isinstance(u.native(), np.memmap)
    assert not isinstance(EmbeddingTable.load(tmp_path / "t", mmap=False).native(), np.memmap)
    assert sorted(os.listdir(tmp_path)) == ["t"]  # no temp dir left behind


@pytest.mark.parametrize("dtype", DT)
def test_save_load_block_sparse_stores_written_blocks_only(tmp_path, dtype):
    t = EmbeddingTable.virtual(10**6, 9, dtype=dtype, seed=3, scale=0.2, block_rows=100, cache_bytes=1 << 14)
    ids = np.array([5, 150, 999_999, 151], np.int64)
    t.write(ids, np.random.default_rng(6).standard_normal((4, 9)).astype(np.float32))
    probe = np.concatenate([ids, [0, 99, 100, 500_000, 999_900]]).astype(np.int64)
    before = t.lookup(probe)
    t.save(tmp_path / "t")
    assert os.path.getsize(tmp_path / "t" / "blocks.bin") == 3 * 100 * row_bytes(dtype, 9)
    np.testing.assert_array_equal(np.load(tmp_path / "t" / "blocks.npy"), [0, 1, 9999])
    u = EmbeddingTable.load(tmp_path / "t", cache_bytes=1 << 12)
    assert not u.dense and u.config.cache_bytes == 1 << 12
    np.testing.assert_array_equal(u.lookup(probe).view(np.uint32), before.view(np.uint32))
    np.testing.assert_array_equal(u.written_blocks(), [0, 1, 9999])
    # Saving over the directory it reads from is refused; writing on and saving elsewhere keeps both.
    with pytest.raises(ValueError, match="cannot save a table over the directory it was loaded from"):
        u.save(tmp_path / "t")
    u.write([300], np.ones((1, 9), np.float32))
    u.save(tmp_path / "t2")
    w = EmbeddingTable.load(tmp_path / "t2")
    np.testing.assert_array_equal(w.written_blocks(), [0, 1, 3, 9999])
    np.testing.assert_array_equal(w.lookup(probe), before)
    np.testing.assert_array_equal(w.lookup([300]), u.lookup([300]))


def test_interrupted_save_leaves_no_table(tmp_path, monkeypatch):
    from kmerx.tables import files

    t = EmbeddingTable.from_array(np.ones((4, 2), np.float32))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(files.json, "dump", boom)
    with pytest.raises(OSError, match="disk full"):
        t.save(tmp_path / "t")
    assert not (tmp_path / "t").exists()
    with pytest.raises(FileNotFoundError):
        EmbeddingTable.load(tmp_path / "t")
    # The half-written temp dir is never at the table's path, and the next save replaces it.
    assert (tmp_path / "t.tmp").is_dir()
    monkeypatch.undo()
    t.save(tmp_path / "t")
    np.testing.assert_array_equal(EmbeddingTable.load(tmp_path / "t").to_numpy(), np.ones((4, 2)))
    assert not (tmp_path / "t.tmp").exists()
    # A failed save over an existing table keeps the old one.
    monkeypatch.setattr(files.json, "dump", boom)
    with pytest.raises(OSError):
        EmbeddingTable.from_array(np.zeros((4, 2), np.float32)).save(tmp_path / "t")
    np.testing.assert_array_equal(EmbeddingTable.load(tmp_path / "t").to_numpy(), np.ones((4, 2)))


def test_load_rejects_foreign_and_inconsistent_dirs(tmp_path):
    t = EmbeddingTable.from_array(np.ones((4, 2), np.float32))
    t.save(tmp_path / "t")
    doc = json.loads((tmp_path / "t" / "table.json").read_text())
    (tmp_path / "t" / "table.json").write_text(json.dumps({**doc, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        EmbeddingTable.load(tmp_path / "t")
    (tmp_path / "t" / "table.json").write_text(json.dumps({**doc, "format": "other"}))
    with pytest.raises(ValueError, match="not a kmerx table"):
        EmbeddingTable.load(tmp_path / "t")
    (tmp_path / "t" / "table.json").write_text(json.dumps(doc))
    np.save(tmp_path / "t" / "rows.npy", np.zeros((5, 8), np.uint8))
    with pytest.raises(ValueError, match="rows.npy"):
        EmbeddingTable.load(tmp_path / "t")


def test_from_file_npy(tmp_path):
    x = np.random.default_rng(7).standard_normal((20, 5))
    np.save(tmp_path / "a.npy", x.astype(np.float32))
    t = EmbeddingTable.from_file(tmp_path / "a.npy")
    assert isinstance(t.native(), np.memmap) and t.dtype == "float32"
    np.testing.assert_array_equal(t.to_numpy(), x.astype(np.float32))
    with pytest.raises(ValueError, match="read-only"):
        t.write([0], np.zeros((1, 5), np.float32))
    np.save(tmp_path / "b.npy", x)  # float64: converted
    u = EmbeddingTable.from_file(tmp_path / "b.npy", dtype="int8")
    np.testing.assert_array_equal(u.native(), encode(x.astype(np.float32), "int8"))
    np.save(tmp_path / "c.npy", x[0])
    with pytest.raises(ValueError, match="c.npy.*2-D"):
        EmbeddingTable.from_file(tmp_path / "c.npy")
    np.save(tmp_path / "d.npy", np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match="d.npy.*float"):
        EmbeddingTable.from_file(tmp_path / "d.npy")


def write_safetensors(path, tensors: dict[str, tuple[str, tuple, bytes]]) -> None:
    """A safetensors file by hand (the format: 8-byte header size, JSON header, data), for dtypes
    numpy lacks (BF16)."""
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)


def test_from_file_safetensors(tmp_path):
    from safetensors.numpy import save_file

    x = np.random.default_rng(8).standard_normal((12, 6)).astype(np.float32)
    save_file({"emb": x}, str(tmp_path / "a.safetensors"))
    t = EmbeddingTable.from_file(tmp_path / "a.safetensors")
    assert t.dtype == "float32"
    np.testing.assert_array_equal(t.to_numpy(), x)
    save_file({"emb": x.astype(np.float16), "other": np.zeros((2, 2), np.float32)}, str(tmp_path / "b.safetensors"))
    t = EmbeddingTable.from_file(tmp_path / "b.safetensors", dataset="emb")
    assert t.dtype == "float16"
    np.testing.assert_array_equal(t.to_numpy(), x.astype(np.float16).astype(np.float32))
    with pytest.raises(ValueError, match="b.safetensors.*dataset="):
        EmbeddingTable.from_file(tmp_path / "b.safetensors")
    with pytest.raises(ValueError, match="no tensor 'nope'"):
        EmbeddingTable.from_file(tmp_path / "b.safetensors", dataset="nope")
    # BF16: the top halves of float32 values.
    top = (x.view(np.uint32) >> 16).astype(np.uint16)
    write_safetensors(tmp_path / "c.safetensors", {"w": ("BF16", x.shape, top.tobytes())})
    for mmap in (True, False):
        t = EmbeddingTable.from_file(tmp_path / "c.safetensors", mmap=mmap)
        np.testing.assert_array_equal(t.to_numpy().view(np.uint32), top.astype(np.uint32) << 16)
    t = EmbeddingTable.from_file(tmp_path / "c.safetensors", dtype="bfloat16")
    np.testing.assert_array_equal(t.native().view(np.uint16), top)


def test_bad_safetensors_files(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="bad.safetensors.*shorter than 8 bytes"):
        EmbeddingTable.from_file(p)
    p.write_bytes(struct.pack("<Q", 1000) + b'{"a": 1}')  # header runs past the end
    with pytest.raises(ValueError, match="bad.safetensors.*exceeds the file"):
        EmbeddingTable.from_file(p)
    p.write_bytes(struct.pack("<Q", 5) + b"{not ")
    with pytest.raises(ValueError, match="bad.safetensors.*bad safetensors header"):
        EmbeddingTable.from_file(p)
    write_safetensors(p, {"w": ("F32", (4, 4), bytes(60))})  # 4 x 4 floats need 64 bytes
    with pytest.raises(ValueError, match="bad.safetensors.*do not fit"):
        EmbeddingTable.from_file(p)
    write_safetensors(p, {"w": ("F32", (16,), bytes(64))})
    with pytest.raises(ValueError, match="bad.safetensors.*shape"):
        EmbeddingTable.from_file(p)
    write_safetensors(p, {"w": ("I32", (4, 4), bytes(64))})
    with pytest.raises(ValueError, match="bad.safetensors.*dtype 'I32'"):
        EmbeddingTable.from_file(p)
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(ValueError, match=r"t\.txt.*unknown table file type"):
        EmbeddingTable.from_file(tmp_path / "t.txt")
    with pytest.raises(FileNotFoundError):
        EmbeddingTable.from_file(tmp_path / "missing.npy")


def test_from_file_hdf5_plain_datasets(tmp_path):
    h5py = pytest.importorskip("h5py")
    x = np.random.default_rng(9).standard_normal((15, 4))
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["f64"] = x
        f["f16"] = x.astype(np.float16)
        f["grp/inner"] = x.astype(np.float32)
        f["cube"] = np.zeros((2, 2, 2), np.float32)
    t = EmbeddingTable.from_file(tmp_path / "a.h5", dataset="f64")
    np.testing.assert_array_equal(t.to_numpy(), x.astype(np.float32))
    t = EmbeddingTable.from_file(tmp_path / "a.h5", dataset="f16")
    assert t.dtype == "float16"
    np.testing.assert_array_equal(t.to_numpy(), x.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(EmbeddingTable.from_file(tmp_path / "a.h5", dataset="grp/inner").to_numpy(),
                                  x.astype(np.float32))
    with pytest.raises(ValueError, match="a.h5 holds datasets"):
        EmbeddingTable.from_file(tmp_path / "a.h5")
    with pytest.raises(ValueError, match="no dataset 'nope'"):
        EmbeddingTable.from_file(tmp_path / "a.h5", dataset="nope")
    with pytest.raises(ValueError, match="a.h5:cube.*2-D"):
        EmbeddingTable.from_file(tmp_path / "a.h5", dataset="cube")


@pytest.mark.parametrize("dtype", DT)
@pytest.mark.parametrize("sparse", [False, True])
def test_hdf5_round_trip_keeps_encoded_rows(tmp_path, dtype, sparse):
    h5py = pytest.importorskip("h5py")
    x = np.random.default_rng(10).standard_normal((37, 11)).astype(np.float32)
    if sparse:
        t = EmbeddingTable.virtual(37, 11, dtype=dtype, seed=2, block_rows=8, cache_bytes=1 << 12)
        t.write([3, 36], x[:2])
    else:
        t = EmbeddingTable.from_array(x, dtype=dtype)
    t.save(tmp_path / "t.h5", format="hdf5", dataset="emb")
    with h5py.File(tmp_path / "t.h5") as f:
        assert f["emb"].chunks[0] == min(t.block_rows, 37)
    u = EmbeddingTable.from_file(tmp_path / "t.h5")
    assert u.dtype == dtype and u.dense
    np.testing.assert_array_equal(u.to_numpy().view(np.uint32), t.to_numpy().view(np.uint32))
    np.testing.assert_array_equal(u.native(), t.read_blocks(np.arange(-(-37 // t.block_rows))).reshape(
        -1, t.row_bytes)[:37])


def test_npy_export(tmp_path):
    t = EmbeddingTable.virtual(50, 3, dtype="int4", seed=4)
    t.save(tmp_path / "x.npy", format="npy")
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), t.to_numpy())
    with pytest.raises(ValueError, match="format must be .* got 'zip'"):
        t.save(tmp_path / "y", format="zip")


# ---- composite tables: memory ---------------------------------------------------------------------
def test_composite_memory_against_vocab():
    qr = QREmbedding.create(10**6, 16, dtype="int8", seed=2)
    assert (qr.m, qr.quotient.rows, qr.rows) == (1000, 1000, 10**6)
    resident = 2 * 1000 * row_bytes("int8", 16)
    m = qr.memory(vocab_size=10**6)
    assert m == {"resident_bytes": resident, "vocab_dense_bytes": 10**6 * 64, "ratio_vs_vocab": 10**6 * 64 / resident}
    # The two tables are virtual rows of seeds seed and seed + 1.
    np.testing.assert_array_equal(qr.quotient.native(), _core.virtual_rows(np.arange(1000), 16, I8, 2, 2, 1.0))
    np.testing.assert_array_equal(qr.remainder.native(), _core.virtual_rows(np.arange(1000), 16, I8, 3, 2, 1.0))
    qr2 = QREmbedding.create(10, 4, m=3)
    assert (qr2.quotient.rows, qr2.m) == (4, 3)
    with pytest.raises(ValueError, match="m must be in 1..10, got 11"):
        QREmbedding.create(10, 4, m=11)

    base = EmbeddingTable.from_array(np.zeros((4096, 32), np.float16))
    h = HashEmbedding(base, 2, importance=np.ones((100, 2), np.float32))
    m = h.memory(vocab_size=4**15)
    assert m["resident_bytes"] == 4096 * 64 + 800
    assert m["vocab_dense_bytes"] == 4**15 * 128 and m["ratio_vs_vocab"] == m["vocab_dense_bytes"] / m["resident_bytes"]
    assert HashEmbedding(base, 3).memory() == {"resident_bytes": 4096 * 64}
    with pytest.raises(ValueError, match="importance must be"):
        HashEmbedding(base, 2, importance=np.ones((10, 3)))
    with pytest.raises(ValueError, match="num_hashes must be in 1..64, got 0"):
        HashEmbedding(base, 0)
    with pytest.raises(ValueError, match="vocab_size must be >= 1, got 0"):
        base.memory(vocab_size=0)
