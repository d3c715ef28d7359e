"""Zero-copy views between Arrow arrays and the (data, offsets) buffer pairs the native kernels take."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_BINARY = (pa.binary(), pa.large_binary(), pa.string(), pa.large_string())


def seq_buffers(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(data uint8, offsets int64)`` of a binary/string array; item i is
    ``data[offsets[i]:offsets[i+1]]``. Zero copy for ``large_binary``; int32 offsets are widened.
    Nulls read as empty items."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if array.type not in _BINARY:
        raise TypeError(f"expected a binary or string array, got {array.type}")
    large = array.type in (pa.large_binary(), pa.large_string())
    n = len(array)
    bufs = array.buffers()
    off_dtype = np.int64 if large else np.int32
    if bufs[1] is None:
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.frombuffer(bufs[1], dtype=off_dtype, count=array.offset + n + 1)[array.offset:]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    if array.null_count:
        valid = np.asarray(array.is_valid())
        lengths = np.where(valid, np.diff(offsets), 0)
        starts = offsets[:-1]
        # Re-pack only when a null item has a non-empty slot, which Arrow allows.
        if np.any(np.diff(offsets)[~valid]):
            pieces = [data[s : s + ln] for s, ln in zip(starts, lengths, strict=True)]
            data = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
    return data, np.ascontiguousarray(offsets, dtype=np.int64)


def binary_array(data: np.ndarray, offsets: np.ndarray, *, large: bool = True) -> pa.Array:
    """Wrap ``(data uint8, offsets int64)`` as an Arrow (large_)binary array without copying data."""
    n = len(offsets) - 1
    if large:
        return pa.Array.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(np.ascontiguousarray(offsets, np.int64)), pa.py_buffer(data)]
        )
    return pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(np.ascontiguousarray(offsets, np.int32)), pa.py_buffer(data)]
    )


def string_array(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """Wrap UTF-8 ``(data, offsets)`` as an Arrow string array (int32 offsets)."""
    n = len(offsets) - 1
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(np.ascontiguousarray(offsets, np.int32)), pa.py_buffer(data)]
    )


def list_array(values: pa.Array | np.ndarray, offsets: np.ndarray) -> pa.LargeListArray:
    """A ``large_list`` array from flat values and int64 offsets (zero copy)."""
    if isinstance(values, np.ndarray):
        if values.ndim == 2:  # (n, w) rows become fixed_size_list<w>
            flat = pa.array(values.reshape(-1))
            values = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        else:
            values = pa.array(values)
    return pa.LargeListArray.from_arrays(pa.array(np.ascontiguousarray(offsets, np.int64)), values)


def list_buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(values numpy, offsets int64)`` of a list/large_list array of primitive values."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = np.asarray(array.offsets, dtype=np.int64)
    values = array.values
    base = offsets[0]
    return values.slice(base, offsets[-1] - base).to_numpy(zero_copy_only=False), offsets - base
