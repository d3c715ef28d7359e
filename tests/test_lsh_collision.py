"""Collision probability against Hamming distance (kmerx.tokenizers.lsh.collision_curve) on real k-mers:
LSH ids are shared less the further apart two k-mers are, bit sampling matches its exact law, hashed ids
collide at the rate 1/B. docs/tokenizers.md shows the curves; benchmarks/lsh_collision.py draws them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import parse_fastq, shared

import kmerx
from kmerx.tokenizers import lsh

K = 21
N = 30_000  # pairs per distance
SEED = 7


@pytest.fixture(scope="module")
def reads() -> list[bytes]:
    return [seq for _, seq, _ in parse_fastq(shared("unit/SRR059298_first2k.fastq"))]


def acgt_windows(reads: list[bytes], k: int) -> np.ndarray:
    """The distinct ACGT-only k-mer windows of the reads, uint8 letters (n, k), sorted. Distinct, so that
    repeated k-mers do not make the pairs' outcomes correlated."""
    acgt = np.zeros(256, dtype=bool)
    acgt[np.frombuffer(b"ACGT", dtype=np.uint8)] = True
    rows = [np.lib.stride_tricks.sliding_window_view(np.frombuffer(r, dtype=np.uint8), k)
            for r in reads if len(r) >= k]
    windows = np.concatenate(rows)
    return np.unique(windows[acgt[windows].all(axis=1)], axis=0)


def sample(windows: np.ndarray, n: int, seed: int) -> np.ndarray:
    assert len(windows) >= n
    return windows[np.sort(np.random.default_rng(seed).choice(len(windows), size=n, replace=False))]


@pytest.fixture(scope="module")
def kmers(reads) -> np.ndarray:
    return sample(acgt_windows(reads, K), N, SEED)  # of the 58048 distinct 21-mers of the 2000 reads


def curve(cfg: dict, kmers: np.ndarray, distances, fit=None) -> np.ndarray:
    tok = kmerx.Tokenizer.from_config(cfg)
    if fit is not None:
        tok.fit(fit)
    return lsh.collision_curve(tok, kmers, distances, seed=SEED)


def assert_decreasing(p: np.ndarray, n: int, strict_to: int) -> None:
    """P(d) strictly decreases for d <= strict_to (chosen per scheme so that each value rests on 100+
    colliding pairs and each step is 4+ standard errors). Past it, with few colliding pairs, P must not
    rise by more than 4 standard errors; ties there are zeros."""
    for d in range(len(p) - 1):
        if d < strict_to:
            assert p[d + 1] < p[d], f"P(d={d + 1}) = {p[d + 1]} is not below P(d={d}) = {p[d]}: {p.tolist()}"
        else:
            noise = 4 * math.sqrt(max(p[d], 1 / n) / n)
            assert p[d + 1] <= p[d] + noise, f"P rises from d={d} to d={d + 1}: {p.tolist()}"


# name: (config, last distance of the strict range)
LSH = {
    "projection m=8 forward": (dict(scheme="lsh", lsh="projection", k=K, m=8, strand="forward"), 10),
    "projection m=16 canonical": (dict(scheme="lsh", lsh="projection", k=K, m=16, strand="canonical"), 6),
    "projection m=24 forward, 2 functions": (dict(scheme="lsh", lsh="projection", k=K, m=24, strand="forward",
                                                  num_hashes=2), 4),
    "bits s=8 forward": (dict(scheme="lsh", lsh="bits", k=K, sampled=8, strand="forward"), 9),
    "bits s=12 canonical, 3 functions": (dict(scheme="lsh", lsh="bits", k=K, sampled=12, strand="canonical",
                                              num_hashes=3), 6),
}


@pytest.mark.parametrize("name", list(LSH))
def test_lsh_collisions_decrease_with_distance(name, kmers):
    cfg, strict_to = LSH[name]
    p = curve({**cfg, "seed": SEED}, kmers, range(strict_to + 3))
    assert p[0] == 1.0
    assert_decreasing(p, len(kmers), strict_to)
    assert p[1] < 0.8  # one substitution already separates a share of the pairs


@pytest.mark.parametrize("m,strand,strict_to", [(10, "forward", 9), (16, "canonical", 6)])
def test_svd_fitted_collisions_decrease_with_distance(m, strand, strict_to, kmers, reads):
    cfg = dict(scheme="lsh", lsh="projection", k=K, m=m, strand=strand, hyperplanes="svd", seed=SEED,
               fit_samples=20_000)
    p = curve(cfg, kmers, range(strict_to + 3), fit=reads)
    assert p[0] == 1.0
    assert_decreasing(p, len(kmers), strict_to)


@pytest.mark.parametrize("k,s", [(21, 8), (21, 12), (31, 10), (15, 15)])
def test_bit_sampling_matches_the_exact_law(k, s, reads):
    # A pair shares the forward id iff none of its d substituted positions (uniform among the k) is one of
    # the s sampled: C(k - d, s) / C(k, s), whatever positions the seed samples.
    n = 20_000
    kmers = sample(acgt_windows(reads, k), n, k)
    distances = list(range(0, k + 1, max(1, k // 6)))
    p = curve(dict(scheme="lsh", lsh="bits", k=k, sampled=s, strand="forward", seed=s), kmers, distances)
    for d, got in zip(distances, p):
        want = math.comb(k - d, s) / math.comb(k, s)
        tol = 5 * math.sqrt(want * (1 - want) / n) + 1e-12
        assert abs(got - want) <= tol, f"d={d}: measured {got}, exact {want}"


@pytest.mark.parametrize("strand", ["forward", "canonical"])
@pytest.mark.parametrize("buckets", [257, 1000])
def test_hashed_collides_at_one_over_b(strand, buckets, kmers):
    # A modulus that is not a power of two takes every bit of ntHash into account.
    p = curve(dict(scheme="hashed", k=K, buckets=buckets, strand=strand), kmers, [0, 1, 2, 5])
    assert p[0] == 1.0
    sd = math.sqrt(1 / buckets / len(kmers))
    for got in p[1:]:
        assert abs(got - 1 / buckets) <= 5 * sd, p.tolist()


def test_hashed_large_table_almost_never_collides(kmers):
    p = curve(dict(scheme="hashed", k=K, buckets=1 << 20, num_hashes=2), kmers, range(6))
    assert p[0] == 1.0
    assert (p[1:] * len(kmers) <= 3).all(), p.tolist()  # expected: 0.06 colliding ids per distance


def test_same_seed_same_curve(kmers):
    cfg = dict(scheme="lsh", lsh="projection", k=K, m=12, seed=3)
    a = curve(cfg, kmers[:2000], [0, 1, 4])
    assert np.array_equal(a, curve(cfg, kmers[:2000], [0, 1, 4]))


# ---- collision_curve's contract: one token per k-mer, ACGT k-mers, 0 <= d <= k ---------------------------
# These fail on the current collision_curve (lsh.py): it encodes with the tokenizer's own layout and checks
# none of its inputs, so the numbers come out wrong instead of an error.


def test_padding_layout_does_not_change_the_curve(kmers):
    cfg = dict(scheme="lsh", lsh="bits", k=K, sampled=8, strand="forward", seed=1)
    plain = curve(cfg, kmers[:4000], [0, 1, 2, 3])
    # pad_to_multiple_of pads every 1-token row to 8: the padding ids used to be compared as "same id"
    padded = curve({**cfg, "pad_to_multiple_of": 8}, kmers[:4000], [0, 1, 2, 3])
    assert np.array_equal(plain, padded), (plain.tolist(), padded.tolist())
    long = curve({**cfg, "padding": "max_length", "max_length": 16}, kmers[:4000], [0, 1, 2, 3])
    assert np.array_equal(plain, long), (plain.tolist(), long.tolist())


BITS = dict(scheme="lsh", lsh="bits", k=K, sampled=8, strand="forward")


def test_distances_out_of_range_raise(kmers):
    tok = kmerx.Tokenizer.from_config(BITS)
    for d in (K + 1, -1):  # now a numpy broadcasting error that names nothing
        with pytest.raises(ValueError, match="distances"):
            lsh.collision_curve(tok, kmers[:100], [d])


def test_tokenizer_k_must_match_the_kmers(kmers):
    # 21-mers through a k=15 tokenizer are 7 windows each, averaged silently; through k=25, no window at
    # all (a RuntimeWarning "Mean of empty slice" and NaN)
    for k in (15, 25):
        tok = kmerx.Tokenizer.from_config({**BITS, "k": k})
        with pytest.raises(ValueError, match=r"\bk\b"):
            lsh.collision_curve(tok, kmers[:100], [0, 1])


def test_non_acgt_kmers_raise(kmers):
    tok = kmerx.Tokenizer.from_config(BITS)
    with_n = kmers[:100].copy()
    with_n[:, 3] = ord("N")  # both k-mers of every pair are [UNK]: now counted as collisions (P ~ 1)
    with pytest.raises(ValueError, match="ACGT"):
        lsh.collision_curve(tok, with_n, [0, 1])
