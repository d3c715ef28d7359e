"""kmerx.kmers.sketch: sourmash-compatible MinHash sketches, against sourmash's own files and
MinHash, and a slow pure-Python MurmurHash3 reference."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reference import make_batch, parse_fasta, same_on_every_simd_path, shared

import kmerx
from kmerx import _core
from kmerx.kmers import sketch
from kmerx.kmers.sketch import FracMinHash, MinHash, Sketch, load_signatures, save_signatures

sourmash = pytest.importorskip("sourmash")

M64 = 2**64 - 1



def assert_simd_paths_agree(seqs, k, **kw):
    """Every SIMD path this CPU can run gives the scalar path's hashes."""
    return same_on_every_simd_path(lambda: Sketch(k, **kw).add(seqs).hashes.tolist())


# ---- a slow reference ------------------------------------------------------------------------
def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & M64


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & M64
    return k ^ (k >> 33)


def ref_murmur(data: bytes, seed: int = 42) -> int:
    """MurmurHash3_x64_128 low 64 bits, byte by byte from the algorithm's description."""
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = seed
    n = len(data)
    for b in range(n // 16):
        k1 = int.from_bytes(data[16 * b : 16 * b + 8], "little")
        k2 = int.from_bytes(data[16 * b + 8 : 16 * b + 16], "little")
        h1 ^= (_rotl((k1 * c1) & M64, 31) * c2) & M64
        h1 = (_rotl(h1, 27) + h2) & M64
        h1 = (h1 * 5 + 0x52DCE729) & M64
        h2 ^= (_rotl((k2 * c2) & M64, 33) * c1) & M64
        h2 = (_rotl(h2, 31) + h1) & M64
        h2 = (h2 * 5 + 0x38495AB5) & M64
    tail = data[16 * (n // 16) :]
    if len(tail) > 8:
        h2 ^= (_rotl((int.from_bytes(tail[8:], "little") * c2) & M64, 33) * c1) & M64
    if tail:
        h1 ^= (_rotl((int.from_bytes(tail[:8], "little") * c1) & M64, 31) * c2) & M64
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & M64
    h2 = (h2 + h1) & M64
    h1, h2 = _fmix(h1), _fmix(h2)
    return (h1 + h2) & M64


_COMP = bytes.maketrans(b"ACGT", b"TGCA")


def ref_hashes(seqs: list[bytes], k: int, seed: int = 42) -> set[int]:
    out = set()
    for s in seqs:
        s = s.upper()
        for i in range(len(s) - k + 1):
            w = s[i : i + k]
            if w.strip(b"ACGT"):
                continue
            out.add(ref_murmur(min(w, w.translate(_COMP)[::-1]), seed))
    return out


def sm_hashes(seqs: list[bytes], k: int, **kw) -> list[int]:
    mh = sourmash.MinHash(kw.get("num", 0), k, scaled=kw.get("scaled", 0), seed=kw.get("seed", 42))
    for s in seqs:
        mh.add_sequence(s.decode(), force=True)
    return sorted(mh.hashes)


# ---- the hash function -----------------------------------------------------------------------
def test_pinned_murmur():
    assert _core.murmur3_x64_128_low(b"ACG", 42) == 1731421407650554201  # sourmash's hash_murmur("ACG")
    assert ref_murmur(b"ACG") == 1731421407650554201


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 2**32))
@example(b"", 42)
def test_murmur_matches_reference(data, seed):
    assert _core.murmur3_x64_128_low(data, seed) == ref_murmur(data, seed)
    if seed == 42 and data.isascii() and b"\0" not in data:  # sourmash hashes UTF-8 text up to a NUL
        assert _core.murmur3_x64_128_low(data, seed) == sourmash.minhash.hash_murmur(data.decode())


# ---- exactness vs sourmash --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["MT-human", "lambda_virus"])
def test_oracle_signatures(simd, name):
    seqs = [s for _, s, _ in parse_fasta(shared(f"unit/{name}.fa"))]
    oracle = load_signatures(shared(f"oracle/sourmash/{name}.sig"))
    params = [(s.k, s.scaled, s.num) for s in oracle]
    assert params[:2] == [(21, 1, 0), (31, 1, 0)] and params[2:] in ([], [(21, 0, 500)])
    doc = json.loads(shared(f"oracle/sourmash/{name}.sig").read_bytes())
    mins = [m["mins"] for sig in doc for m in sig["signatures"]]
    for want, m in zip(oracle, mins):
        got = (FracMinHash(want.k, want.scaled) if want.scaled else MinHash(want.k, want.num)).add(seqs)
        assert got.hashes.tolist() == m
        assert got == want
        assert got.md5sum() == want.md5sum()


SEQ = st.text(alphabet="ACGTNacgtnRY", max_size=300)


@settings(max_examples=150, deadline=None)
@given(st.lists(SEQ, max_size=4), st.integers(1, 64))
@example([""], 1)
@example(["NNNNNNNNNN"], 3)
@example(["ACG"], 4)
@example(["A"], 1)
@example(["acgtacgtNNacgt"], 4)
@example(["ACGT" * 20], 4)  # palindromic k-mers
@example(["ACGTACGTACGTACGTACGTACGTACGTACGT" * 3], 32)
@example(["GATTACA" * 20], 64)
def test_scaled1_matches_sourmash_and_reference(seqs, k):
    raw = [s.encode() for s in seqs]
    got = assert_simd_paths_agree(raw, k, scaled=1)
    assert got == sm_hashes(raw, k, scaled=1)
    assert got == sorted(ref_hashes(raw, k))


@settings(max_examples=80, deadline=None)
@given(st.lists(SEQ, max_size=4), st.integers(1, 40), st.sampled_from([2, 3, 10, 1000]), st.integers(1, 60))
def test_scaled_and_num_match_sourmash(seqs, k, scaled, num):
    raw = [s.encode() for s in seqs]
    assert assert_simd_paths_agree(raw, k, scaled=scaled) == sm_hashes(raw, k, scaled=scaled)
    assert assert_simd_paths_agree(raw, k, num=num) == sm_hashes(raw, k, num=num)
    assert MinHash(k, num, seed=7).add(raw).hashes.tolist() == sm_hashes(raw, k, num=num, seed=7)


@pytest.mark.parametrize("scaled", [1, 2, 3, 7, 1000, 12345, 2**31 + 11])
def test_max_hash_rule(scaled):
    assert sketch.max_hash_for_scaled(scaled) == sourmash.MinHash(0, 21, scaled=scaled)._max_hash


def test_long_sequences_split_across_threads(simd):
    # Reads longer than the native segment (2^20 bases) are cut with k-1 bases of overlap.
    rng = np.random.default_rng(3)
    seq = bytes(np.frombuffer(b"ACGTN", np.uint8)[rng.choice(5, 2_500_000, p=[0.2495] * 4 + [0.002])])
    old = kmerx.num_threads()
    try:
        kmerx.set_num_threads(1)
        one = FracMinHash(31, 50).add(seq)
        kmerx.set_num_threads(2)
        two = FracMinHash(31, 50).add([seq, seq[:1000]])
        two_num = MinHash(21, 300).add(seq)
    finally:
        kmerx.set_num_threads(old)
    assert one == two
    assert one.hashes.tolist() == sm_hashes([seq], 31, scaled=50)
    assert two_num.hashes.tolist() == sm_hashes([seq], 21, num=300)


def test_many_short_reads_share_hash_blocks(simd):
    # The AVX2 path gathers codes across reads into 512-code blocks; a block boundary falls mid-read.
    rng = np.random.default_rng(8)
    reads = [bytes(np.frombuffer(b"ACGTN", np.uint8)[rng.choice(5, int(n), p=[0.24] * 4 + [0.04])])
             for n in rng.integers(0, 200, 3000)]
    for k in (4, 17, 31, 32):
        assert Sketch(k, scaled=1).add(reads).hashes.tolist() == sm_hashes(reads, k, scaled=1)


def test_input_forms_and_incremental_add():
    seqs = [b"ACGTTGCAAGGCTTANNACGGT", b"ttgacgatcgatcgtagc", b"GGGCCC"]
    whole = FracMinHash(5, 1).add(seqs)
    batch = make_batch([("a", seqs[0], None), ("b", seqs[1], None), ("c", seqs[2], None)])
    assert FracMinHash(5, 1).add(batch) == whole
    assert FracMinHash(5, 1).add(batch.column("seq")) == whole
    assert FracMinHash(5, 1).add([s.decode() for s in seqs]) == whole
    inc = FracMinHash(5, 1)
    for s in seqs:
        inc.add(s.decode())
    assert inc == whole
    bottom = MinHash(5, 4)
    for s in seqs:
        bottom.add(s)
    assert bottom == MinHash(5, 4).add(seqs)
    assert bottom.hashes.tolist() == whole.hashes.tolist()[:4]


# ---- similarity, merge, downsample -------------------------------------------------------------
def _pair(rng, n=3000, k=21):
    a = bytes(np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n)])
    b = a[: n // 2] + bytes(np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n)])
    return a, b


@pytest.mark.parametrize("kind", [dict(scaled=3), dict(scaled=1), dict(num=100)])
def test_similarities_match_sourmash(kind):
    a, b = _pair(np.random.default_rng(9))
    ours = [Sketch(21, **kind).add(x) for x in (a, b)]
    theirs = []
    for x in (a, b):
        mh = sourmash.MinHash(kind.get("num", 0), 21, scaled=kind.get("scaled", 0))
        mh.add_sequence(x.decode())
        theirs.append(mh)
    assert ours[0].jaccard(ours[1]) == pytest.approx(theirs[0].jaccard(theirs[1]), abs=1e-12)
    merged = ours[0] | ours[1]
    tm = theirs[0].copy_and_clear()
    tm.merge(theirs[0])
    tm.merge(theirs[1])
    assert merged.hashes.tolist() == sorted(tm.hashes)
    if "scaled" in kind:
        assert ours[0].containment(ours[1]) == pytest.approx(theirs[0].contained_by(theirs[1]), abs=1e-12)
        assert ours[0].max_containment(ours[1]) == pytest.approx(theirs[0].max_containment(theirs[1]), abs=1e-12)
        down = ours[0].downsample(scaled=50)
        assert down.hashes.tolist() == sorted(theirs[0].downsample(scaled=50).hashes)
        # Different resolutions compare at the coarser one.
        assert ours[0].jaccard(ours[1].downsample(scaled=50)) == down.jaccard(ours[1].downsample(scaled=50))
    else:
        with pytest.raises(ValueError, match="containment needs scaled"):
            ours[0].containment(ours[1])
        assert ours[0].downsample(num=10).hashes.tolist() == ours[0].hashes.tolist()[:10]


def test_empty_and_identity():
    e = FracMinHash(21, 10)
    assert len(e) == 0 and e.jaccard(e) == 0.0 and e.containment(e) == 0.0
    a = FracMinHash(21, 1).add("ACGT" * 30 + "GATTACA" * 5)
    assert a.jaccard(a) == 1.0 and a.containment(a) == 1.0
    assert a.copy() == a and a.copy() is not a
    with pytest.raises(ValueError):
        a.hashes[0] = 1


# ---- signature files ---------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".sig", ".sig.gz"])
def test_signatures_roundtrip_with_sourmash(tmp_path, suffix):
    a, b = _pair(np.random.default_rng(2))
    ours = [FracMinHash(31, 10).add(a), MinHash(21, 50, seed=42).add(b)]
    path = tmp_path / f"ours{suffix}"
    save_signatures(path, ours, name="sample")
    assert load_signatures(path) == ours
    loaded = list(sourmash.load_file_as_signatures(str(path)))
    assert [sorted(s.minhash.hashes) for s in loaded] == [s.hashes.tolist() for s in ours]
    assert [s.name for s in loaded] == ["sample", "sample"]
    assert [s.md5sum() for s in loaded] == [s.md5sum() for s in ours]
    # sourmash writes, kmerx reads.
    mh = sourmash.MinHash(0, 31, scaled=10)
    mh.add_sequence(a.decode())
    theirs = tmp_path / f"theirs{suffix}"
    from sourmash.signature import save_signatures_to_json

    with open(theirs, "wb") as f:
        save_signatures_to_json([sourmash.SourmashSignature(mh, name="x")], f,
                                compression=1 if suffix.endswith(".gz") else 0)
    (back,) = load_signatures(theirs)
    assert back == ours[0] and back.name == "x"
    assert load_signatures(theirs, k=21) == []


def test_load_rejects_bad_files(tmp_path):
    p = tmp_path / "bad.sig"
    p.write_text("not json")
    with pytest.raises(ValueError, match="not a sourmash JSON"):
        load_signatures(p)
    p.write_text(json.dumps([{"signatures": [{"ksize": 7, "num": 0, "max_hash": 0, "mins": []}]}]))
    with pytest.raises(ValueError, match="num > 0 or max_hash > 0"):
        load_signatures(p)
    p.write_text(json.dumps([{"signatures": [{"ksize": 7, "num": 3, "mins": [], "molecule": "protein"}]}]))
    with pytest.raises(ValueError, match="only DNA"):
        load_signatures(p)
    g = tmp_path / "x.sig.gz"
    g.write_bytes(gzip.compress(json.dumps([{"signatures": [{"ksize": 7, "num": 3, "mins": [5, 1]}]}]).encode()))
    assert load_signatures(g)[0].hashes.tolist() == [1, 5]


# ---- argument errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, exc, msg",
    [
        (lambda: FracMinHash(0), ValueError, "k must be in 1..64, got 0"),
        (lambda: FracMinHash(65), ValueError, "k must be in 1..64, got 65"),
        (lambda: FracMinHash(21, 0), ValueError, "scaled must be >= 1, got 0"),
        (lambda: FracMinHash(21, 1.5), TypeError, "scaled must be an int, got float"),
        (lambda: MinHash(21, -2), ValueError, "num must be >= 1, got -2"),
        (lambda: MinHash(21, 5, seed=-1), ValueError, "seed must be an int in 0..2\\*\\*64-1, got -1"),
        (lambda: Sketch(21, scaled=5, num=5), ValueError, "exactly one of scaled and num"),
        (lambda: FracMinHash(21).add(3), TypeError, "seqs must be"),
        (lambda: FracMinHash(21).jaccard(MinHash(21)), ValueError, "scaled sketch with a num sketch"),
        (lambda: FracMinHash(21).jaccard(FracMinHash(31)), ValueError, "differ in k: 21 vs 31"),
        (lambda: FracMinHash(21).merge(FracMinHash(21, 10)), ValueError, "differ in scaled: 1000 vs 10"),
        (lambda: FracMinHash(21, 10).downsample(scaled=5), ValueError, "scaled must be >= this sketch's scaled 10, got 5"),
        (lambda: MinHash(21, 10).downsample(num=50), ValueError, "num must be <= this sketch's num 10, got 50"),
        (lambda: save_signatures("/nonexistent/x.sig", [1]), TypeError, "sketches\\[0\\] must be a Sketch, got int"),
        (lambda: _core.sketch_hashes(np.zeros(3, np.uint8), np.array([0, 3]), 0, 42, M64, 0), ValueError, "k must be in 1..64, got 0"),
        (lambda: _core.sketch_hashes(np.zeros(3, np.uint8), np.array([0, 5]), 3, 42, M64, 0), ValueError, "beyond the data length"),
    ],
)
def test_argument_errors(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


@pytest.mark.parametrize("seed", [0, 7, 2**33 + 5, 2**64 - 1])
def test_seeds_match_sourmash(simd, seed):
    seq = b"ACGTTGCATGCATGCCCGATAGCTAGCTAGGGATtttacgNNacgtagctagctgatcga"
    for k in (3, 21, 31, 40):
        assert FracMinHash(k, 1, seed=seed).add(seq).hashes.tolist() == sm_hashes([seq], k, scaled=1, seed=seed)
