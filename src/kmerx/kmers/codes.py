"""2-bit encoding and k-mer codes (re-exported by :mod:`kmerx.kmers`).

Bases A C G T (any case) are 0 1 2 3; a k-mer's code is ``sum(base_i * 4**(k-1-i))`` (first base most
significant). k <= 32 codes are ``uint64``; 33 <= k <= 64 codes are pairs ``[hi, lo]`` of the 128-bit
code (lexicographic k-mer order == numeric order of ``(hi, lo)``). K-mers holding a non-ACGT base are
skipped. See docs/kmer_codes.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from kmerx import _core
from kmerx._arrow import list_array, seq_buffers, string_array
from kmerx._checks import check_int

__all__ = [
    "canonical",
    "KmerCounter",
    "count_kmers",
    "decode_kmers",
    "decode_kmers_arrow",
    "encode_kmers",
    "kmer_codes",
    "kmer_codes_numpy",
    "pack_2bit",
    "reverse_complement",
    "seq_arrays",
    "unpack_2bit",
]

STRANDS = ("canonical", "forward", "reverse")
DEVICES = ("cpu", "cuda")

_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _CODE[_b + 32] = _i
_M1 = np.uint64(0x3333333333333333)
_M2 = np.uint64(0x0F0F0F0F0F0F0F0F)


def _check_k(k: Any) -> int:
    return check_int("k", k, 1, 64)


def _check_args(k: Any, strand: str, stride: Any) -> tuple[int, int]:
    k = _check_k(k)
    if strand not in STRANDS:
        raise ValueError(f"strand must be one of {STRANDS}, got {strand!r}")
    return k, check_int("stride", stride, 1)


def _as_bytes(s: Any) -> bytes:
    return s.encode() if isinstance(s, str) else bytes(s)


def seq_arrays(seqs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(data uint8, offsets int64)`` of: a ReadBatch / Table (its ``seq`` column), an Arrow binary or
    string array, a list of str/bytes, or one str/bytes."""
    if isinstance(seqs, (pa.RecordBatch, pa.Table)):
        if "seq" not in seqs.schema.names:
            raise ValueError(f"seqs: a batch needs a 'seq' column, got columns {seqs.schema.names}")
        seqs = seqs.column("seq")
    if isinstance(seqs, (pa.Array, pa.ChunkedArray)):
        return seq_buffers(seqs)
    if isinstance(seqs, (str, bytes, bytearray, memoryview)):
        seqs = [seqs]
    if isinstance(seqs, (list, tuple)):
        items = [_as_bytes(s) for s in seqs]
        offsets = np.zeros(len(items) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in items], out=offsets[1:])
        return np.frombuffer(b"".join(items), dtype=np.uint8), offsets
    raise TypeError(
        f"seqs must be a ReadBatch, an Arrow binary/string array, str, bytes or a list of them, "
        f"got {type(seqs).__name__}"
    )


def kmer_codes_numpy(
    data: np.ndarray,
    offsets: np.ndarray,
    k: int,
    *,
    strand: str = "canonical",
    stride: int = 1,
    positions: bool = False,
    device: str = "cpu",
):
    """K-mer codes of the reads ``data[offsets[i]:offsets[i+1]]`` in one native call.

    Returns ``(values, out_offsets)`` or ``(values, out_offsets, positions)``: values is ``uint64[n]``
    (k <= 32) or ``uint64[n, 2]`` ([hi, lo], k > 32); read i's k-mers are ``values[out_offsets[i]:
    out_offsets[i+1]]``; positions (``int32``) are the k-mer start offsets within the read. A k-mer
    starting at p is emitted when ``p % stride == 0`` and its k bases are all ACGT.
    With ``device="cuda"``, data/offsets may be cupy (or any ``__cuda_array_interface__``) arrays and the
    outputs are cupy arrays; numpy inputs give numpy outputs computed on the GPU."""
    k, stride = _check_args(k, strand, stride)
    if device == "cuda":
        out = run_cuda(
            data, offsets, k, stride, 1 if k <= 32 else 2, bool(positions),
            lambda cuda, d, o, ix, v, p: cuda.kmer_fill(d, o, k, strand, stride, ix, v, p),
            lambda cuda: cuda.kmer_codes_host(data, offsets, k, strand, stride, bool(positions)),
        )
    elif device == "cpu":
        out = _core.kmer_codes(data, offsets, k, strand, stride, bool(positions))
    else:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return out if positions else out[:2]


def _cuda_module():
    try:
        from kmerx import _cuda
    except ImportError:
        raise RuntimeError("kmerx was built without CUDA") from None
    if _cuda.device_count() == 0:
        raise RuntimeError("no CUDA device")
    return _cuda


def run_cuda(data, offsets, k: int, stride: int, width: int, positions: bool, fill, host):
    """A per-k-mer op's two passes on the GPU. Device arrays (``__cuda_array_interface__``): pass 1
    ``_cuda.window_index`` gives every k-mer its slot, then ``fill(cuda, data, offsets, index, values,
    positions)`` writes ``width`` uint64 per k-mer; outputs are cupy arrays. Host arrays go through
    ``host(cuda)``, the op's numpy round trip. Returns ``(values, out_offsets, positions or None)``."""
    cuda = _cuda_module()
    if not hasattr(data, "__cuda_array_interface__"):
        return host(cuda)
    import cupy as cp

    data = cp.ascontiguousarray(data, dtype=cp.uint8)
    offsets = cp.ascontiguousarray(offsets, dtype=cp.int64)
    if offsets.ndim != 1 or offsets.size < 1:
        raise ValueError(f"offsets must be a 1-D array with at least one entry, got shape {offsets.shape}")
    bases = cuda.covered_bases(offsets)
    if bases < 0:
        raise ValueError(f"seqs: offsets must be non-decreasing, offsets[-1] - offsets[0] = {bases}")
    index = cp.empty(bases + 1, dtype=cp.int64)
    out_offsets = cp.empty(offsets.size, dtype=cp.int64)
    total = cuda.window_index(data, offsets, k, stride, index, out_offsets)
    values = cp.empty((total,) if width == 1 else (total, width), dtype=cp.uint64)
    pos = cp.empty(total, dtype=cp.int32) if positions else None
    fill(cuda, data, offsets, index, values, pos)
    return values, out_offsets, pos


def kmer_codes(
    seqs: Any,
    k: int,
    *,
    strand: str = "canonical",
    stride: int = 1,
    positions: bool = False,
    device: str = "cpu",
):
    """K-mer codes per read as a ``pa.LargeListArray`` (``large_list<uint64>`` for k <= 32,
    ``large_list<fixed_size_list<uint64, 2>>`` of [hi, lo] for k > 32); with ``positions=True``,
    ``(codes, positions)`` where positions is ``large_list<int32>``. ``seqs``: see :func:`seq_arrays`.
    ``device="cuda"`` computes on the GPU (results copied back into Arrow)."""
    data, offsets = seq_arrays(seqs)
    out = kmer_codes_numpy(data, offsets, k, strand=strand, stride=stride, positions=positions, device=device)
    codes = list_array(out[0], out[1])
    return (codes, list_array(out[2], out[1])) if positions else codes


def _encode_rows(kmers: Any) -> np.ndarray:
    items = [_as_bytes(s) for s in kmers]
    if not items:
        return np.zeros((0, 0), dtype=np.uint8)
    k = len(items[0])
    for i, s in enumerate(items):
        if len(s) != k:
            raise ValueError(
                f"kmers must all have the same length, kmers[0] has {k} bases, kmers[{i}] has {len(s)}"
            )
    rows = _CODE[np.frombuffer(b"".join(items), dtype=np.uint8).reshape(len(items), k)]
    bad = np.flatnonzero((rows > 3).any(axis=1))
    if bad.size:
        raise ValueError(
            f"kmers[{bad[0]}] = {items[bad[0]].decode(errors='replace')!r} holds a non-ACGT base"
        )
    return rows


def _fold(rows: np.ndarray) -> np.ndarray:
    v = np.zeros(rows.shape[0], dtype=np.uint64)
    for j in range(rows.shape[1]):  # a loop over k positions, vectorised over k-mers
        v = (v << np.uint64(2)) | rows[:, j].astype(np.uint64)
    return v


def encode_kmers(kmers: Any) -> np.ndarray:
    """Codes of equal-length k-mers (str/bytes): ``uint64[n]`` for k <= 32, ``uint64[n, 2]`` for k > 32."""
    rows = _encode_rows(kmers)
    k = rows.shape[1]
    _check_k(k if rows.shape[0] else 1)
    if k <= 32:
        return _fold(rows)
    return np.stack([_fold(rows[:, : k - 32]), _fold(rows[:, k - 32 :])], axis=1)


def _codes_numpy(codes: Any) -> np.ndarray:
    """uint64 codes as numpy: ``[n]`` or ``[n, 2]``, from numpy or from Arrow (the values of a
    :func:`kmer_codes` list array, or the list array itself)."""
    if isinstance(codes, pa.ChunkedArray):
        codes = codes.combine_chunks()
    if isinstance(codes, pa.Array):
        if pa.types.is_list(codes.type) or pa.types.is_large_list(codes.type):
            codes = codes.flatten()
        if pa.types.is_fixed_size_list(codes.type):
            return codes.flatten().to_numpy().reshape(-1, 2)
        return codes.to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)
    return np.asarray(codes, dtype=np.uint64)


def _words(codes: Any, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(lo, hi) uint64 views of codes; hi is None for k <= 32."""
    codes = _codes_numpy(codes)
    if k <= 32:
        if codes.ndim != 1:
            raise ValueError(f"codes for k={k} must be a 1-D uint64 array, got shape {codes.shape}")
        return codes, None
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"codes for k={k} must have shape (n, 2) ([hi, lo]), got {codes.shape}")
    return codes[:, 1], codes[:, 0]


def _letters(codes: Any, k: int) -> np.ndarray:
    """``uint8[n, k]``: the ASCII bases of each code."""
    k = _check_k(k)
    codes = _codes_numpy(codes)
    _words(codes, k)  # checks the layout
    return _core.kmer_letters(np.ascontiguousarray(codes), k)


def decode_kmers(codes: Any, k: int) -> list[str]:
    """Inverse of :func:`encode_kmers`: the k-mer strings of codes (numpy or Arrow)."""
    letters = _letters(codes, k)
    if letters.shape[0] == 0:
        return []
    return np.frombuffer(letters.tobytes(), dtype=f"S{k}").astype(f"U{k}").tolist()


def decode_kmers_arrow(codes: Any, k: int) -> pa.StringArray:
    """The k-mer strings of codes as an Arrow string array, built without Python objects per k-mer."""
    letters = _letters(codes, k)
    n = letters.shape[0]
    return string_array(letters.reshape(-1), np.arange(n + 1, dtype=np.int64) * k)


def _reverse_pairs(x: np.ndarray) -> np.ndarray:
    """Reverse the order of the 32 2-bit groups of each uint64."""
    x = ((x >> np.uint64(2)) & _M1) | ((x & _M1) << np.uint64(2))
    x = ((x >> np.uint64(4)) & _M2) | ((x & _M2) << np.uint64(4))
    return x.byteswap()


def reverse_complement(codes: Any, k: int) -> np.ndarray:
    """Codes of the reverse complements (same layout as the input)."""
    k = _check_k(k)
    lo, hi = _words(codes, k)
    if hi is None:
        return _reverse_pairs(~lo) >> np.uint64(64 - 2 * k)
    s = 128 - 2 * k  # 0..62: the 128-bit reversal leaves the k-mer in the high bits
    rhi, rlo = _reverse_pairs(~lo), _reverse_pairs(~hi)
    if s:
        rlo = (rlo >> np.uint64(s)) | (rhi << np.uint64(64 - s))
        rhi = rhi >> np.uint64(s)
    return np.stack([rhi, rlo], axis=1)


def canonical(codes: Any, k: int) -> np.ndarray:
    """min(code, reverse complement) per k-mer (lexicographic min in ACGT order)."""
    k = _check_k(k)
    codes = np.asarray(codes, dtype=np.uint64)
    rc = reverse_complement(codes, k)
    if k <= 32:
        return np.minimum(codes, rc)
    take = (rc[:, 0] < codes[:, 0]) | ((rc[:, 0] == codes[:, 0]) & (rc[:, 1] < codes[:, 1]))
    return np.where(take[:, None], rc, codes)


def pack_2bit(seq: Any) -> np.ndarray:
    """Pack one ACGT sequence (str, bytes or uint8 array), 4 bases per byte, first base in the two high
    bits; the last byte is zero-padded. Raises ValueError naming the position of a non-ACGT base."""
    if isinstance(seq, np.ndarray):
        arr = seq
    else:
        arr = np.frombuffer(_as_bytes(seq), dtype=np.uint8)
    return _core.pack_2bit(arr)


def unpack_2bit(packed: Any, n: int) -> bytes:
    """The n bases (uppercase ASCII bytes) packed by :func:`pack_2bit`."""
    return _core.unpack_2bit(np.asarray(packed, dtype=np.uint8), int(n))


def count_kmers(codes: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(unique_codes, counts)`` sorted ascending (by (hi, lo) for k > 32). Accepts a codes array or
    the list array :func:`kmer_codes` returns. Counted by the native counter of :mod:`kmerx.count`."""
    counter = KmerCounter()
    counter.add(codes)
    return counter.result()


class KmerCounter:
    """Counts codes added batch by batch: ``add(codes)`` then ``result() -> (unique, counts)`` sorted
    ascending. A thin wrapper over :class:`kmerx.count.Counter` for codes computed elsewhere (without k,
    codes are taken as 64- or 128-bit keys); counting reads directly is :func:`kmerx.count.count`."""

    def __init__(self) -> None:
        self._counter = None

    def add(self, codes: Any) -> None:
        from kmerx.count import Counter

        codes = _codes_numpy(codes)
        if self._counter is None:
            self._counter = Counter(32 if codes.ndim == 1 else 64, canonical=False)
        self._counter.add_codes(codes)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if self._counter is None:
            return np.zeros(0, np.uint64), np.zeros(0, np.uint32)
        out = self._counter.finish()
        return out.codes, out.counts
