"""The learned and seeded state of the "lsh" schemes: hyperplanes (random or fitted by SVD), their
int16 quantization for the native kernels, bit-sampling positions, and the collision-probability
measurement of docs/tokenizers.md.

Random numbers come from splitmix64 of (seed, stream, counter), not numpy's generators, so a seed gives
the same hyperplanes on every machine and numpy version.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["bit_positions", "collision_curve", "fit_hyperplanes", "normal", "quantize", "random_hyperplanes"]

_U64 = np.uint64
# Complex base values A = -1, C = -i, G = +i, T = +1 as (real, imaginary) by 2-bit digit A C G T.
_RE = np.array([-1.0, 0.0, 0.0, 1.0])
_IM = np.array([0.0, -1.0, 1.0, 0.0])
# int16 kernels: a hyperplane's largest possible sum stays below 2^15 (lsh.hpp allows 32766).
_QUANT_RANGE = 30000.0


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
        return z ^ (z >> _U64(31))


def _uniform(seed: int, stream: int, n: int) -> np.ndarray:
    """n doubles in (0, 1): the top 53 bits of splitmix64(key + counter), plus half a step."""
    key = _splitmix(np.array([(seed * 0x100000001B3 + stream) & (2**64 - 1)], dtype=_U64))[0]
    with np.errstate(over="ignore"):
        bits = _splitmix(key + np.arange(n, dtype=_U64))
    return ((bits >> _U64(11)).astype(np.float64) + 0.5) * 2.0**-53


def normal(seed: int, stream: int, n: int) -> np.ndarray:
    """n standard normal values (Box-Muller), a pure function of (seed, stream)."""
    m = (n + 1) // 2
    u = _uniform(seed, stream, 2 * m)
    r = np.sqrt(-2.0 * np.log(u[:m]))
    t = 2.0 * np.pi * u[m:]
    return np.concatenate([r * np.cos(t), r * np.sin(t)])[:n]


def random_hyperplanes(k: int, m: int, h: int, seed: int) -> dict[str, np.ndarray]:
    """Complex Gaussian hyperplanes w = a + ib of h functions with m hyperplanes each, thresholds 0."""
    a = normal(seed, 1, h * m * k).reshape(h, m, k)
    b = normal(seed, 2, h * m * k).reshape(h, m, k)
    return {"a": a, "b": b, "c": np.zeros((h, m))}


def _features(digits: np.ndarray) -> np.ndarray:
    """[Re(x), Im(x)] (n, 2k) of k-mers given as base digits (n, k)."""
    return np.concatenate([_RE[digits], _IM[digits]], axis=1)


def fit_hyperplanes(digits: np.ndarray, m: int, h: int, seed: int) -> dict[str, np.ndarray]:
    """Hyperplanes along the top m principal directions of k-mers sampled from data (base digits
    (n, k), A0 C1 G2 T3); function j >= 1 uses a seeded random rotation of that subspace. Each
    threshold is the median projection, so every bit splits the sample in half."""
    n, k = digits.shape
    if n < 2:
        raise ValueError(f"fitting LSH hyperplanes needs at least 2 k-mers, got {n}")
    f = _features(digits)
    _, _, vt = np.linalg.svd(f - f.mean(axis=0), full_matrices=False)
    top = vt[:m]
    if top.shape[0] < m:  # fewer directions than hyperplanes (tiny k): fill with seeded random ones
        extra = normal(seed, 3, (m - top.shape[0]) * 2 * k).reshape(-1, 2 * k)
        top = np.concatenate([top, extra])
    a, b, c = np.empty((h, m, k)), np.empty((h, m, k)), np.empty((h, m))
    for j in range(h):
        rot = np.eye(m) if j == 0 else np.linalg.qr(normal(seed, 100 + j, m * m).reshape(m, m))[0]
        v = rot.T @ top
        a[j], b[j] = v[:, :k], -v[:, k:]
        c[j] = np.median(f @ v.T, axis=0)
    return {"a": a, "b": b, "c": c}


def quantize(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights int16 [h, m, k, 4], thresholds int32 [h, m]) for the native kernels: weights[..., p, base]
    = Re(x_base * w_p) scaled per hyperplane so its largest possible sum is 30000 (bits compare sums
    with thresholds, so a per-hyperplane scale changes no bit beyond rounding)."""
    per_base = np.stack([-a, b, -b, a], axis=-1)  # A C G T
    bound = np.abs(per_base).max(axis=-1).sum(axis=-1)  # [h, m]
    scale = _QUANT_RANGE / np.where(bound > 0, bound, 1.0)
    weights = np.rint(per_base * scale[..., None, None]).astype(np.int16)
    thresholds = np.clip(np.rint(c * scale), -(2**31), 2**31 - 1).astype(np.int32)
    return weights, thresholds


def bit_positions(k: int, s: int, h: int, seed: int) -> np.ndarray:
    """int32 [h, s]: for each function, s distinct positions of 0..k-1 in increasing order."""
    keys = _uniform(seed, 4, h * k).reshape(h, k)
    return np.sort(np.argsort(keys, axis=1, kind="stable")[:, :s], axis=1).astype(np.int32)


def collision_curve(tokenizer: Any, kmers: np.ndarray, distances: Any, *, seed: int = 0) -> np.ndarray:
    """P(same id) of a k-mer and a copy with d substitutions, for each d in distances: kmers are the
    uint8 letters (n, k) of real k-mers; each gets d distinct positions changed to another base (seeded),
    both are encoded by ``tokenizer`` (one token each, no special tokens) and ids compared per hash
    function. Returns float64 [len(distances)]."""
    kmers = np.ascontiguousarray(kmers, dtype=np.uint8)
    if kmers.ndim != 2:
        raise ValueError(f"kmers must be uint8 letters of shape (n, k), got shape {kmers.shape}")
    n, k = kmers.shape
    cfg = tokenizer.config
    if cfg.scheme not in ("direct", "vocab", "hashed", "lsh") or cfg.k != k:
        raise ValueError(f"tokenizer must be a k-mer window scheme with k={k} (the kmers' width), "
                         f"got scheme={cfg.scheme!r} k={cfg.k}")
    if not np.isin(kmers, np.frombuffer(b"ACGT", dtype=np.uint8)).all():
        raise ValueError("kmers must hold only uppercase A, C, G, T (a non-ACGT k-mer's id is [UNK])")
    distances = [int(d) for d in distances]
    if any(d < 0 or d > k for d in distances):
        raise ValueError(f"distances must be in 0..{k}, got {distances}")
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    digit = np.zeros(256, dtype=np.int64)
    digit[letters] = np.arange(4)
    out = []
    for d in distances:
        order = np.argsort(_uniform(seed, 10 + d, n * k).reshape(n, k), axis=1, kind="stable")[:, :d]
        shift = 1 + (_uniform(seed, 1000 + d, n * max(d, 1)).reshape(n, max(d, 1))[:, :d] * 3).astype(np.int64)
        mutated = kmers.copy()
        rows = np.arange(n)[:, None]
        mutated[rows, order] = letters[(digit[kmers[rows, order]] + shift) % 4]
        seqs = np.concatenate([kmers, mutated]).reshape(-1)
        offsets = np.arange(0, 2 * n * k + 1, k, dtype=np.int64)
        ids = tokenizer._encode_arrays(seqs, offsets, add_special_tokens=False, max_length=None, truncation=None,
                                       padding="longest", pad_to_multiple_of=None)["input_ids"]
        ids = ids.reshape(2, n, -1)
        out.append(float(np.mean(ids[0] == ids[1])))
    return np.array(out)
