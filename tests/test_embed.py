"""kmerx.embed on the CPU, complementing test_embed_cuda.py (which checks each dtype x pool x out dtype,
hash/QR tables, padded + mask with learned positions and the cache counters): every input layout gives
the same vectors (flat, padded right/left, no mask, Arrow, tokenizer Encodings), positions and the
sinusoidal table against the formula, float16 output == rounded float32 output, SIMD paths bit-equal,
edge-sized batches, a property test over dims 1..130 on dense and block-sparse tables with an error bound
derived per element, and argument errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import SIMD, simd_level

import kmerx
from kmerx import _core
from kmerx.embed import embed, sinusoidal
from kmerx.tables import DTYPES, INITS, EmbeddingTable, HashEmbedding

DT = list(DTYPES)
U = 2.0**-24  # unit roundoff of float32


def decoded(table: EmbeddingTable) -> np.ndarray:
    """The table's values in float64: dense rows decoded, or block-sparse rows regenerated."""
    if table.dense:
        return _core.decode_rows(table.native(), table.dim, DTYPES[table.dtype]).astype(np.float64)
    return table.to_numpy().astype(np.float64)


def reference(rows, ids, offsets, *, pool=None, pos=None):
    """float64 gather + positional add + pool, and a bound on the float32 kernel's error per element:
    recursive fp32 summation of k terms errs by at most k u sum|terms| (u = 2^-24); per token k = 2
    (row + position), per read k = 2 x tokens, plus one rounding for the mean's scale."""
    tok = rows[ids]
    absval = np.abs(tok)
    if pos is not None:
        tok, absval = tok + pos, absval + np.abs(pos)
    if pool is None:
        return tok, 2 * U * absval
    n, dim = len(offsets) - 1, rows.shape[1]
    out, bound = np.zeros((n, dim)), np.zeros((n, dim))
    for i in range(n):
        part, mag = tok[offsets[i]:offsets[i + 1]], absval[offsets[i]:offsets[i + 1]]
        if not len(part):
            continue
        if pool == "max":
            out[i], bound[i] = part.max(0), (2 * U * mag).max(0)
        else:
            out[i], bound[i] = part.sum(0), 2 * len(part) * U * mag.sum(0)
            if pool == "mean":
                out[i], bound[i] = out[i] / len(part), bound[i] / len(part) + 2 * U * np.abs(out[i]) / len(part)
    return out, bound


def check(got, want, bound, out_dtype=np.float32):
    """|got - want| <= bound (+ half an ulp of float16 output, + a denormal's worth)."""
    got = np.asarray(got, np.float64)
    if out_dtype == np.float16:
        bound = bound * (1 + 2**-10) + 2.0**-11 * np.abs(want) + 2.0**-24
    bound = bound + 1e-30
    assert got.shape == want.shape
    excess = np.abs(got - want) - bound
    assert excess.max(initial=-1) <= 0, f"error exceeds the bound by {excess.max()} at {np.unravel_index(excess.argmax(), excess.shape)}"


def table_of(seed: int, rows: int, dim: int, dtype: str) -> EmbeddingTable:
    return EmbeddingTable.from_array(np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32),
                                     dtype=dtype)


def index_in_read(offsets: np.ndarray) -> np.ndarray:
    return np.concatenate([np.arange(n) for n in np.diff(offsets)] + [np.zeros(0, int)]).astype(np.int64)


# ---- one batch, every layout ----------------------------------------------------------------------
LENGTHS = [3, 0, 5, 1, 5]


@pytest.fixture(scope="module")
def layouts():
    rng = np.random.default_rng(0)
    table = table_of(1, 200, 12, "bfloat16")
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    flat = rng.integers(0, 200, int(offsets[-1])).astype(np.uint32)
    n, width = len(LENGTHS), max(LENGTHS)
    right, left = np.zeros((n, width), np.uint32), np.zeros((n, width), np.uint32)
    mright, mleft = np.zeros((n, width), np.int8), np.zeros((n, width), np.int8)
    for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        right[i, :b - a], mright[i, :b - a] = flat[a:b], 1
        left[i, width - (b - a):], mleft[i, width - (b - a):] = flat[a:b], 1
    return table, flat, offsets, (right, mright), (left, mleft)


@pytest.mark.parametrize("pool", [None, "sum", "mean", "max"])
@pytest.mark.parametrize("pos", ["none", "sinusoidal"])
def test_every_layout_gives_the_same_vectors(layouts, pool, pos):
    table, flat, offsets, (right, mright), (left, mleft) = layouts
    kw = {"pool": pool, "pos_encoding": pos}
    want, bound = reference(decoded(table), flat, offsets, pool=pool,
                            pos=None if pos == "none" else sinusoidal(5, 12).astype(np.float64)[index_in_read(offsets)])
    base = embed(table, flat, offsets=offsets, **kw)
    check(base, want, bound)
    np.testing.assert_array_equal(embed(table, flat.astype(np.int64), offsets=offsets, **kw), base)
    arrow_ids = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.uint32()))
    out = embed(table, arrow_ids, **kw)
    if pool is None:
        assert out.type == pa.large_list(pa.list_(pa.float32(), 12))
        np.testing.assert_array_equal(np.diff(out.offsets.to_numpy()), LENGTHS)
        np.testing.assert_array_equal(out.values.flatten().to_numpy().reshape(-1, 12), base)
    else:
        assert out.type == pa.list_(pa.float32(), 12) and len(out) == len(LENGTHS)
        np.testing.assert_array_equal(out.flatten().to_numpy().reshape(-1, 12), base)
    np.testing.assert_array_equal(embed(table, arrow_ids, return_type="numpy", **kw), base)
    np.testing.assert_array_equal(embed(table, pa.chunked_array([arrow_ids]), return_type="numpy", **kw), base)
    for ids, mask in ((right, mright), (left, mleft)):
        got = embed(table, ids, mask=mask, **kw)
        if pool is None:  # [n, L, dim]: zero vectors on padding
            assert got.shape == (*ids.shape, 12)
            np.testing.assert_array_equal(got[mask == 1], base)
            assert not got[mask == 0].any()
            arrow = embed(table, ids, mask=mask, return_type="arrow", **kw)
            np.testing.assert_array_equal(arrow.values.flatten().to_numpy().reshape(-1, 12), base)
        else:
            np.testing.assert_array_equal(got, base)


def test_padded_without_mask_and_sliced_arrow(layouts):
    table, flat, offsets, _, _ = layouts
    ids = flat[:12].reshape(3, 4)
    full = embed(table, ids, pool="mean", pos_encoding="sinusoidal")
    np.testing.assert_array_equal(full, embed(table, ids.ravel(), offsets=np.array([0, 4, 8, 12]), pool="mean",
                                              pos_encoding="sinusoidal"))
    per_token = embed(table, ids, pos_encoding="sinusoidal")
    np.testing.assert_array_equal(per_token.reshape(12, 12), embed(table, ids.ravel(), offsets=np.array([0, 4, 8, 12]),
                                                                   pos_encoding="sinusoidal"))
    # A sliced Arrow array (offsets not starting at 0) reads its own lists only.
    arrow = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.uint32()))[2:4]
    np.testing.assert_array_equal(embed(table, arrow, pool="sum", return_type="numpy"),
                                  embed(table, flat[3:9], offsets=np.array([0, 5, 6]), pool="sum"))


def test_positions_argument():
    table = table_of(2, 50, 6, "float32")
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 50, 20)
    offsets = np.array([0, 8, 8, 20], np.int64)
    positions = rng.integers(-3, 30, 20)
    sin = sinusoidal(30, 6).astype(np.float64)
    pos = np.where(positions[:, None] >= 0, sin[positions.clip(0)], 0.0)  # negative: no positional term
    for pool in (None, "mean"):
        got = embed(table, ids, positions, offsets=offsets, pool=pool, pos_encoding="sinusoidal")
        check(got, *reference(decoded(table), ids, offsets, pool=pool, pos=pos))
    # Learned positions from an EmbeddingTable (decoded) equal the same float array.
    learned = EmbeddingTable.from_array(rng.standard_normal((30, 6)), dtype="int8")
    a = embed(table, ids, positions, offsets=offsets, pos_encoding="learned", pos_table=learned)
    b = embed(table, ids, positions, offsets=offsets, pos_encoding="learned", pos_table=learned.to_numpy())
    np.testing.assert_array_equal(a, b)


def test_sinusoidal_against_formula():
    for positions, dim in ((700, 16), (50, 7), (3, 1)):
        got = sinusoidal(positions, dim)
        p = np.arange(positions, dtype=np.float64)[:, None]
        j = np.arange(dim)
        angle = p / 10000.0 ** ((j - j % 2) / dim)
        want = np.where(j % 2 == 0, np.sin(angle), np.cos(angle))
        assert got.dtype == np.float32 and got.shape == (positions, dim)
        # float32 rounding of the float64 value: within half an ulp (libm sin/cos may differ by an ulp
        # of float64, which can flip a float32 tie, so allow one float32 ulp).
        assert np.all(np.abs(got - want) <= np.spacing(np.abs(want).astype(np.float32)))
        assert not got.flags.writeable
    np.testing.assert_array_equal(sinusoidal(10, 16), sinusoidal(700, 16)[:10])
    assert sinusoidal(0, 4).shape == (0, 4)
    with pytest.raises(ValueError, match="positions must be >= 0, got -1"):
        sinusoidal(-1, 4)


def test_embed_is_a_callable_module():
    table = table_of(4, 10, 3, "float32")
    ids, offsets = np.array([1, 2, 3], np.int64), np.array([0, 3], np.int64)
    want = embed(table, ids, offsets=offsets, pool="sum")
    np.testing.assert_array_equal(kmerx.embed(table, ids, offsets=offsets, pool="sum"), want)
    np.testing.assert_array_equal(kmerx.embed.embed(table, ids, offsets=offsets, pool="sum"), want)
    assert kmerx.embed.sinusoidal is sinusoidal


# ---- output dtype and SIMD paths ------------------------------------------------------------------
@pytest.mark.parametrize("pool", [None, "sum", "mean", "max"])
def test_float16_output_is_the_rounded_float32_output(simd, pool):
    rng = np.random.default_rng(5)
    for dtype in DT:
        for dim in (8, 13, 128):
            table = EmbeddingTable.from_array(rng.standard_normal((64, dim)) * 3000, dtype=dtype)  # some overflow
            ids, offsets = rng.integers(0, 64, 40), np.array([0, 10, 10, 40], np.int64)
            kw = {"offsets": offsets, "pool": pool, "pos_encoding": "sinusoidal"}
            f32 = embed(table, ids, **kw)
            f16 = embed(table, ids, out_dtype=np.float16, **kw)
            assert f16.dtype == np.float16
            with np.errstate(over="ignore"):
                np.testing.assert_array_equal(f16.view(np.uint16), f32.astype(np.float16).view(np.uint16))


@pytest.mark.parametrize("pool", [None, "sum", "mean", "max"])
@pytest.mark.parametrize("pos", ["none", "sinusoidal"])
def test_simd_paths_give_the_same_bits(pool, pos):
    """The portable and AVX2 kernels do the same fp32 operations in the same order (lookup_kernel.hpp),
    so every dtype and dim (multiple of 8 or not, 64, 128) must give identical bits. (Pooled sum/mean
    with positions at dims % 8 == 0 failed when written: the AVX2 path adds the positional rows after
    all token rows, the portable one after each token row.)"""
    rng = np.random.default_rng(6)
    differ = []
    for dtype in DT:
        for dim in (1, 8, 13, 64, 128, 136):
            table = table_of(dim, 300, dim, dtype)
            sparse = EmbeddingTable.virtual(300, dim, dtype=dtype, seed=dim, block_rows=7, cache_bytes=1 << 14)
            ids, offsets = rng.integers(0, 300, 60), np.array([0, 1, 1, 33, 60], np.int64)
            for kind, t in (("dense", table), ("block-sparse", sparse)):
                for out_dtype in (np.float32, np.float16):
                    out = {}
                    for level in SIMD:
                        with simd_level(level):
                            out[level] = embed(t, ids, offsets=offsets, pool=pool, pos_encoding=pos,
                                               out_dtype=out_dtype).view(np.uint8)
                    if any(not np.array_equal(out[level], out["scalar"]) for level in SIMD):
                        differ.append((dtype, dim, kind, np.dtype(out_dtype).name))
    assert not differ, f"SIMD paths differ for (dtype, dim, table, out dtype) {differ}"


# ---- batch sizes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("pool", [None, "mean"])
def test_empty_batches_and_reads(pool):
    table = table_of(7, 10, 4, "int4")
    empty = np.zeros(0, np.uint32)
    got = embed(table, empty, offsets=np.zeros(1, np.int64), pool=pool, pos_encoding="sinusoidal")
    assert got.shape == (0, 4) and got.dtype == np.float32
    got = embed(table, empty, offsets=np.zeros(4, np.int64), pool=pool)
    assert got.shape == ((0, 4) if pool is None else (3, 4)) and not got.any()
    arrow = embed(table, pa.array([[], []], pa.large_list(pa.uint32())), pool=pool)
    assert len(arrow) == 2 and (pool or arrow.values.type == pa.list_(pa.float32(), 4))
    got = embed(table, np.zeros((3, 4), np.int64), mask=np.zeros((3, 4), np.int8), pool=pool)
    assert not got.any() and got.shape == ((3, 4, 4) if pool is None else (3, 4))
    got = embed(table, np.zeros((0, 5), np.int64), mask=np.zeros((0, 5), np.int8), pool=pool)
    assert got.shape == ((0, 5, 4) if pool is None else (0, 4))


def test_one_huge_read():
    rng = np.random.default_rng(8)
    table = table_of(8, 5000, 16, "float16")
    ids = rng.integers(0, 5000, 300_000).astype(np.uint32)
    offsets = np.array([0, 1, 300_000], np.int64)
    pos = sinusoidal(299_999, 16).astype(np.float64)[index_in_read(offsets)]
    for pool in ("sum", "mean", "max"):
        got = embed(table, ids, offsets=offsets, pool=pool, pos_encoding="sinusoidal")
        check(got, *reference(decoded(table), ids, offsets, pool=pool, pos=pos))


# ---- property test --------------------------------------------------------------------------------
@given(data=st.data())
@settings(max_examples=40, deadline=None)
@example(data=None)
def test_embed_property(data):
    """Random ids, lengths (0 included), dims 1..130, dtypes, pools, positions, out dtypes, dense or
    block-sparse tables behind a cache of a few blocks, against the float64 reference with the bound of
    `reference` (+ half a float16 ulp for float16 output)."""
    if data is None:  # pinned: dim 1, every id equal, empty reads, int4, block-sparse, float16 out
        dim, dtype, lengths, same, pool, pos, sparse, f16, wide = 1, "int4", [0, 4, 0], True, "sum", "sinusoidal", \
            True, True, False
    else:
        dim = data.draw(st.one_of(st.integers(1, 130), st.sampled_from([8, 64, 127, 128, 129])), label="dim")
        dtype = data.draw(st.sampled_from(DT), label="dtype")
        lengths = data.draw(st.lists(st.integers(0, 20), min_size=1, max_size=10), label="lengths")
        same = data.draw(st.booleans(), label="same")
        pool = data.draw(st.sampled_from([None, "sum", "mean", "max"]), label="pool")
        pos = data.draw(st.sampled_from(["none", "sinusoidal"]), label="pos")
        sparse = data.draw(st.booleans(), label="sparse")
        f16 = data.draw(st.booleans(), label="f16")
        wide = data.draw(st.booleans(), label="uint32")
    rng = np.random.default_rng(dim * 7 + len(lengths))
    rows = 97
    if sparse:
        table = EmbeddingTable.virtual(rows, dim, dtype=dtype, seed=dim, block_rows=5,
                                       cache_bytes=3 * 5 * kmerx.tables.row_bytes(dtype, dim))
        table.write([3, 50], rng.standard_normal((2, dim)))
    else:
        table = table_of(dim, rows, dim, dtype)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.full(int(offsets[-1]), 3, np.int64) if same else rng.integers(0, rows, int(offsets[-1]))
    ids = ids.astype(np.uint32 if wide else np.int64)
    p = None if pos == "none" else sinusoidal(max(lengths) or 1, dim).astype(np.float64)[index_in_read(offsets)]
    out_dtype = np.float16 if f16 else np.float32
    got = embed(table, ids, offsets=offsets, pool=pool, pos_encoding=pos, out_dtype=out_dtype)
    assert got.dtype == out_dtype
    check(got, *reference(decoded(table), ids.astype(np.int64), offsets, pool=pool, pos=p), out_dtype=out_dtype)


# ---- tokenizer encodings --------------------------------------------------------------------------
READS = ["ACGTACGTACGTTTGACA", "GGGTTTAAACCC", "ACG", "", "TTTTTTTTTTTTTTTTTTTTTTTTTTTTTT"]


def test_dnabert_encoding_numpy_and_arrow():
    tok = kmerx.Tokenizer.from_preset("dnabert-6")
    table = table_of(9, tok.vocab_size, 24, "float16")
    enc = tok.encode_batch(READS)
    got = embed(table, enc, pool="mean", pos_encoding="sinusoidal")
    ids, mask = np.asarray(enc["input_ids"]), np.asarray(enc["attention_mask"]).astype(bool)
    offsets = np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int64)
    flat = ids[mask]
    pos = sinusoidal(int(mask.sum(1).max()), 24).astype(np.float64)[index_in_read(offsets)]
    check(got, *reference(decoded(table), flat, offsets, pool="mean", pos=pos))
    arrow = embed(table, tok.encode_batch(READS, return_tensors="arrow"), pool="mean", pos_encoding="sinusoidal")
    np.testing.assert_array_equal(arrow.flatten().to_numpy().reshape(-1, 24), got)
    per_token = embed(table, enc, pos_encoding="sinusoidal")
    assert per_token.shape == (*ids.shape, 24)
    np.testing.assert_array_equal(per_token[mask], embed(table, flat, offsets=offsets, pos_encoding="sinusoidal"))


def test_hashed_encoding_feeds_a_hash_embedding_with_importance():
    cfg = kmerx.TokenizerConfig(scheme="hashed", k=5, buckets=500, num_hashes=2, weight_buckets=7)
    tok = kmerx.Tokenizer.from_config(cfg)
    enc = tok.encode_batch(READS)
    ids, mask, slots = (np.asarray(enc[k]) for k in ("input_ids", "attention_mask", "weight_slots"))
    assert ids.shape[2] == 2
    rng = np.random.default_rng(10)
    importance = rng.random((len(cfg.specials) + cfg.weight_buckets, 2)).astype(np.float32)
    h = HashEmbedding(table_of(10, tok.vocab_size, 16, "int8"), 2, importance=importance)
    got = embed(h, enc, pool="sum")
    m = mask.astype(bool)
    rows = decoded(h.table)
    w = importance[slots[m]].astype(np.float64)
    tok_vec = (rows[ids[m]] * w[..., None]).sum(1)
    absv = (np.abs(rows[ids[m]]) * np.abs(w[..., None])).sum(1)
    offsets = np.concatenate([[0], np.cumsum(m.sum(1))]).astype(np.int64)
    want = np.stack([tok_vec[a:b].sum(0) for a, b in zip(offsets[:-1], offsets[1:])])
    # Each id adds a product and a sum (2 roundings), then the per-read sum: k = 2 h + tokens.
    bound = np.stack([(4 + 2 * (b - a)) * U * absv[a:b].sum(0) for a, b in zip(offsets[:-1], offsets[1:])])
    check(got, want, bound)
    # The same through Arrow encodings and explicit slots.
    arrow = tok.encode_batch(READS, return_tensors="arrow")
    np.testing.assert_array_equal(embed(h, arrow, pool="sum", return_type="numpy"), got)
    np.testing.assert_array_equal(embed(h, ids, mask=mask, slots=slots, pool="sum"), got)
    with pytest.raises(ValueError, match="slots="):
        embed(h, ids, mask=mask, pool="sum")


# ---- argument errors ------------------------------------------------------------------------------
def test_bad_arguments_name_the_argument():
    table = table_of(11, 10, 8, "float32")
    ids, offsets = np.array([1, 2, 3], np.int64), np.array([0, 3], np.int64)
    cases = [
        (ValueError, "pool must be .* got 'avg'", {"pool": "avg"}),
        (ValueError, "pos_encoding must be .* got 'rope'", {"pos_encoding": "rope"}),
        (ValueError, "out_dtype must be float32 or float16, got float64", {"out_dtype": np.float64}),
        (ValueError, "return_type must be .* got 'torch'", {"return_type": "torch"}),
        (ValueError, "offsets end at 3, ids hold 4 tokens", {"ids": np.arange(4), "offsets": offsets}),
        (ValueError, "offsets must be non-decreasing", {"ids": np.arange(4), "offsets": np.array([0, 3, 2, 4])}),
        (ValueError, "offsets\\[0\\] must be 0, got 1", {"offsets": np.array([1, 3])}),
        (ValueError, "1-D ids need offsets=", {"offsets": None}),
        (ValueError, "weights and slots apply to a HashEmbedding", {"weights": np.ones(3, np.float32)}),
        (ValueError, "positions and pos_table need pos_encoding", {"positions": np.arange(3)}),
        (ValueError, "pos_encoding='learned' needs pos_table=", {"pos_encoding": "learned"}),
        (ValueError, r"pos_table must be \(positions, 8\), got shape \(5, 7\)",
         {"pos_encoding": "learned", "pos_table": np.zeros((5, 7), np.float32)}),
        (ValueError, "positions holds 2 values for 3 tokens", {"pos_encoding": "sinusoidal", "positions": [0, 1]}),
        (TypeError, "ids must hold integers", {"ids": np.array([1.0, 2.0, 3.0])}),
        (TypeError, "table must be an EmbeddingTable, HashEmbedding or QREmbedding, got ndarray",
         {"table": np.zeros((10, 8), np.float32)}),
    ]
    for exc, msg, kw in cases:
        args = {"table": table, "ids": ids, "offsets": offsets, **kw}
        with pytest.raises(exc, match=msg):
            embed(args.pop("table"), args.pop("ids"), **args)
    padded = np.zeros((2, 4), np.int64)
    with pytest.raises(ValueError, match="mask must mark one contiguous run"):
        embed(table, padded, mask=np.array([[1, 0, 1, 0], [1, 1, 0, 0]]))
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 4\), got \(2, 3\)"):
        embed(table, padded, mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="offsets= applies to flat ids"):
        embed(table, padded[None], offsets=offsets)
    with pytest.raises(TypeError, match="ids must be a list or large_list array, got int64"):
        embed(table, pa.array([1, 2, 3]))
    with pytest.raises(ValueError, match="ids holds null lists"):
        embed(table, pa.array([[1], None], pa.large_list(pa.uint32())))
    h = HashEmbedding(table, 2)
    with pytest.raises(ValueError, match=r"ids have 1 id\(s\) per token, the table takes 2"):
        embed(h, ids, offsets=offsets)
    with pytest.raises(ValueError, match=r"ids have 3 id\(s\) per token, the table takes 2"):
        embed(h, np.zeros((3, 3), np.int64), offsets=offsets)
    with pytest.raises(ValueError, match="weights holds 3 values for 3 tokens x 2"):
        embed(h, np.zeros((3, 2), np.int64), offsets=offsets, weights=np.ones(3))
    with pytest.raises(IndexError, match="id 10 of token 1"):
        embed(table, np.array([0, 10]), offsets=np.array([0, 2]))


def test_virtual_init_codes_are_the_configs():
    assert INITS == {"zeros": 0, "uniform": 1, "normal": 2}
    assert DTYPES == {"float32": 0, "float16": 1, "bfloat16": 2, "int8": 3, "int4": 4}
