"""kmerx.Vocab: count-based k-mer vocabularies, against a Python dict reference."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import kmerx
from kmerx import kmers
from kmerx.vocab import DEFAULT_SPECIALS, Vocab


def ref_vocab(codes, counts, min_count=1, max_size=None, nspecial=5):
    """{code (int or (hi, lo)): id} by summed count descending, ties by code ascending."""
    total: dict = {}
    for c, n in zip(codes, counts):
        total[c] = total.get(c, 0) + n
    items = sorted((kv for kv in total.items() if kv[1] >= min_count), key=lambda kv: (-kv[1], kv[0]))
    if max_size is not None:
        items = items[: max_size - nspecial]
    return {c: nspecial + i for i, (c, _) in enumerate(items)}


def _key(row):
    return tuple(int(x) for x in row) if np.ndim(row) else int(row)


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from([1, 3, 16, 32, 33, 50, 64]),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 6)), max_size=60),
    st.integers(0, 4),
    st.one_of(st.none(), st.integers(5, 30)),
    st.lists(st.integers(0, 50), max_size=40),
)
@example(1, [], 1, None, [0, 1])
@example(33, [(3, 2), (3, 2), (1, 4)], 1, 5, [3, 1])
def test_matches_dict_reference(k, pairs, min_count, max_size, queries):
    words = 1 if k <= 32 else 2
    cap = 4**k if k < 32 else 2**64

    def code(i):  # small ints spread over the code space; (hi, lo) for k > 32
        v = (i * 0x9E3779B97F4A7C15) % cap
        return v if words == 1 else (i % 3, v)

    codes = [code(i) for i, _ in pairs]
    counts = [n for _, n in pairs]
    arr = np.array(codes, dtype=np.uint64).reshape((-1,) if words == 1 else (-1, 2))
    vocab = Vocab.from_counts(arr, np.array(counts, dtype=np.int64), k=k, min_count=min_count, max_size=max_size)
    want = ref_vocab(codes, counts, min_count, max_size)
    assert len(vocab) == len(DEFAULT_SPECIALS) + len(want)
    assert [_key(c) for c in vocab.codes] == list(want)
    q = [code(i) for i in queries]
    qa = np.array(q, dtype=np.uint64).reshape((-1,) if words == 1 else (-1, 2))
    got = vocab.lookup(qa)
    assert got.dtype == np.uint32
    assert got.tolist() == [want.get(c, vocab.unk_id) for c in q]


def test_lookup_arrow_lists_and_strings():
    seqs = ["ACGTACGTTG", "", "NNNN", "GGGACGTA"]
    codes = kmers.kmer_codes(seqs, 3)
    flat = codes.values.to_numpy()
    uniq, counts = np.unique(flat, return_counts=True)
    vocab = Vocab.from_counts(uniq, counts, k=3)
    ids = vocab.lookup(codes)
    assert pa.types.is_large_list(ids.type) and ids.type.value_type == pa.uint32()
    np.testing.assert_array_equal(np.asarray(ids.offsets), np.asarray(codes.offsets))
    assert ids.values.to_numpy().tolist() == vocab.lookup(flat).tolist()
    assert [vocab.kmer_of(i) for i in ids[0].as_py()] == [
        kmers.decode_kmers(np.array([c], np.uint64), 3)[0] for c in codes[0].as_py()]
    sliced = vocab.lookup(codes.slice(3))
    assert sliced.to_pylist() == ids.slice(3).to_pylist()
    read = "GATTACACCGTTAGCATTCGGACTAGGCTAACGTTTAGC"
    wide = kmers.kmer_codes([read], 33, strand="forward")
    v33 = Vocab.from_counts(wide.values.flatten().to_numpy().reshape(-1, 2)[:2], [5, 6], k=33)
    assert v33.lookup(wide)[0].as_py() == [6, 5] + [v33.unk_id] * (len(read) - 34)
    assert v33.id_of(read[:33]) == 6 and v33.kmer_of(5) == read[1:34]


def test_ids_ties_and_specials():
    vocab = Vocab.from_counts(np.array([9, 3, 7, 3, 1], np.uint64), [2, 1, 2, 4, 5], k=4)
    # Summed: 3 -> 5, 1 -> 5, 9 -> 2, 7 -> 2; ties by code ascending.
    assert vocab.codes.tolist() == [1, 3, 7, 9] and vocab.counts.tolist() == [5, 5, 2, 2]
    assert [vocab.kmer_of(i) for i in range(5)] == list(DEFAULT_SPECIALS)
    assert vocab.kmer_of(5) == "AAAC" and vocab.id_of("AAAC") == 5 and vocab.id_of("TTTT") == vocab.unk_id
    assert vocab.id_of("[MASK]") == 4 and vocab.unk_id == 1
    custom = Vocab.from_counts(np.array([1], np.uint64), [1], k=4, specials=("[UNK]",))
    assert len(custom) == 2 and custom.id_of("AAAC") == 1 and custom.lookup(np.array([0], np.uint64)).tolist() == [0]
    assert len(Vocab.from_counts(np.array([1, 2], np.uint64), [1, 1], k=4, max_size=5)) == 5
    empty = Vocab.from_counts(np.zeros(0, np.uint64), np.zeros(0, np.int64), k=40)
    assert len(empty) == 5 and empty.lookup(np.zeros((0, 2), np.uint64)).size == 0
    assert empty.lookup(np.array([[0, 1]], np.uint64)).tolist() == [1]
    with pytest.raises(IndexError, match="token_id must be < 5, got 5"):
        empty.kmer_of(5)


@pytest.mark.parametrize("k", [1, 21, 32, 33, 64])
@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_save_load_roundtrip(tmp_path, k, suffix):
    rng = np.random.default_rng(k)
    top = 2**64 - 1 if k >= 32 else 4**k - 1
    shape = (50,) if k <= 32 else (50, 2)
    codes = rng.integers(0, top, size=shape, dtype=np.uint64, endpoint=True)
    if k > 32:
        codes[:, 0] &= np.uint64(4 ** (k - 32) - 1)
    vocab = Vocab.from_counts(codes, rng.integers(0, 2**62, 50), k=k, specials=("[UNK]", "[PAD]"))
    path = tmp_path / f"v{suffix}"
    vocab.save(path)
    back = Vocab.load(path)
    assert back == vocab and back.specials == ("[UNK]", "[PAD]")
    np.testing.assert_array_equal(back.lookup(codes), vocab.lookup(codes))
    assert kmerx.Vocab is Vocab


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "v.json"
    p.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a kmerx vocabulary"):
        Vocab.load(p)
    p.write_text(json.dumps({"format": "kmerx.vocab", "version": 99}))
    with pytest.raises(ValueError, match="unsupported vocabulary version 99"):
        Vocab.load(p)


def test_big_batch_multithreaded():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 4**31, 200_000, dtype=np.uint64)
    vocab = Vocab.from_counts(codes[:50_000], np.ones(50_000, np.int64), k=31)
    old = kmerx.num_threads()
    try:
        kmerx.set_num_threads(1)
        one = vocab.lookup(codes)
        kmerx.set_num_threads(2)
        two = vocab.lookup(codes)
    finally:
        kmerx.set_num_threads(old)
    np.testing.assert_array_equal(one, two)
    assert (one[:50_000] != vocab.unk_id).all()


U = np.array([1, 2], np.uint64)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(k=0), ValueError, "k must be in 1..64, got 0"),
        (dict(k="3"), TypeError, "k must be an int, got str"),
        (dict(k=3, min_count=-1), ValueError, "min_count must be >= 0, got -1"),
        (dict(k=3, max_size=3), ValueError, "max_size must be >= the 5 special tokens, got 3"),
        (dict(k=3, max_size=2.0), TypeError, "max_size must be an int, got float"),
        (dict(k=3, specials=("[PAD]",)), ValueError, "specials must include '\\[UNK\\]'"),
        (dict(k=3, specials=("[UNK]", "[UNK]")), ValueError, "specials must be distinct"),
        (dict(k=3, specials="[UNK]"), TypeError, "specials must be a sequence of str, got str"),
        (dict(k=1, codes=np.array([4], np.uint64)), ValueError, "codes holds a value too large for k=1"),
        (dict(k=40, codes=U), ValueError, "codes for k=40 must be uint64\\[n, 2\\], got shape \\(2,\\)"),
        (dict(k=3, codes=np.array([1.0, 2.0])), TypeError, "codes must be an integer array, got dtype float64"),
        (dict(k=3, counts=[1]), ValueError, "counts must be 1-D with one count per code \\(2\\), got shape \\(1,\\)"),
        (dict(k=3, counts=[1, -1]), ValueError, "counts must be non-negative, got -1"),
    ],
)
def test_argument_errors(kwargs, exc, msg):
    args = {"codes": U, "counts": [1, 1], **kwargs}
    with pytest.raises(exc, match=msg):
        Vocab.from_counts(args.pop("codes"), args.pop("counts"), **args)


def test_lookup_errors():
    vocab = Vocab.from_counts(U, [1, 1], k=3)
    with pytest.raises(ValueError, match="codes must be uint64\\[n\\]"):
        vocab.lookup(np.zeros((2, 2), np.uint64))
    with pytest.raises(TypeError, match="codes must be a list array"):
        vocab.lookup(pa.array([1, 2]))
    with pytest.raises(ValueError, match="kmer must be a 3-base string, got 'AC'"):
        vocab.id_of("AC")
    with pytest.raises(ValueError, match="codes must be distinct, codes\\[1\\] repeats"):
        kmerx._core.VocabTable(np.array([1, 1], np.uint64), np.array([0, 1], np.uint32), 1)
