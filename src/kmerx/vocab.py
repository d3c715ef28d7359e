"""Count-based k-mer vocabularies: token ids for k-mer codes (``kmerx.Vocab``).

Ids are deterministic: the special tokens first (ids ``0 .. len(specials) - 1``), then the k-mers by
count descending, ties by code ascending. Codes follow :mod:`kmerx.kmers.codes`: ``uint64[n]`` for
k <= 32, ``uint64[n, 2]`` ([hi, lo]) for 33 <= k <= 64. Lookups run in one native call per batch
through an open-addressing hash table built once. See docs/kmer_codes.md for the code layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from kmerx import _core
from kmerx._arrow import list_array
from kmerx._checks import check_int
from kmerx.kmers.codes import decode_kmers, encode_kmers

__all__ = ["DEFAULT_SPECIALS", "Vocab"]

# BERT's set (DNABERT uses it too): padding, unknown k-mer, sequence start and separator, masking.
DEFAULT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
UNK = "[UNK]"
_FORMAT = "kmerx.vocab"
_VERSION = 1


def _check_codes(codes: Any, k: int, name: str = "codes") -> np.ndarray:
    arr = np.asarray(codes)
    words = 1 if k <= 32 else 2
    if arr.size == 0:
        return np.zeros((0,) if words == 1 else (0, 2), dtype=np.uint64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative, got {arr.min()}")
    want = "uint64[n]" if words == 1 else "uint64[n, 2]"
    if (words == 1 and arr.ndim != 1) or (words == 2 and (arr.ndim != 2 or arr.shape[1] != 2)):
        raise ValueError(f"{name} for k={k} must be {want}, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.uint64)
    top = arr if words == 1 else arr[:, 0]
    bits = 2 * k - (0 if words == 1 else 64)
    if bits < 64 and (top >> np.uint64(bits)).any():
        raise ValueError(f"{name} holds a value too large for k={k}")
    return arr


def _check_specials(specials: Any) -> tuple[str, ...]:
    if isinstance(specials, str) or not isinstance(specials, (list, tuple)):
        raise TypeError(f"specials must be a sequence of str, got {type(specials).__name__}")
    out = tuple(specials)
    for s in out:
        if not isinstance(s, str):
            raise TypeError(f"specials must hold str, got {s!r}")
    if UNK not in out:
        raise ValueError(f"specials must include {UNK!r}, got {list(out)}")
    if len(set(out)) != len(out):
        raise ValueError(f"specials must be distinct, got {list(out)}")
    return out


class Vocab:
    """A k-mer vocabulary: special tokens, then k-mer codes with their counts, in id order."""

    def __init__(self, k: int, codes: Any, counts: Any, *, specials: Sequence[str] = DEFAULT_SPECIALS) -> None:
        """Wraps codes already in id order (use :meth:`from_counts` to build one from raw counts)."""
        self.k = check_int("k", k, 1, 64)
        self.specials = _check_specials(specials)
        self._codes = _check_codes(codes, self.k)
        self._counts = np.ascontiguousarray(np.asarray(counts, dtype=np.uint64).reshape(-1))
        if self._counts.size != self._codes.shape[0]:
            raise ValueError(f"counts must hold one count per code ({self._codes.shape[0]}), got {self._counts.size}")
        ids = np.arange(len(self.specials), len(self.specials) + self._codes.shape[0], dtype=np.uint32)
        self._table = _core.VocabTable(self._codes, ids, 1 if self.k <= 32 else 2)
        self._codes.flags.writeable = False
        self._counts.flags.writeable = False

    @classmethod
    def from_counts(cls, codes: Any, counts: Any, *, k: int, min_count: int = 1, max_size: int | None = None,
                    specials: Sequence[str] = DEFAULT_SPECIALS) -> Vocab:
        """A vocabulary of the codes counted at least ``min_count`` times, the most frequent first,
        ``max_size`` tokens at most (special tokens included). Repeated codes have their counts summed."""
        k = check_int("k", k, 1, 64)
        specials = _check_specials(specials)
        min_count = check_int("min_count", min_count, 0)
        if max_size is not None:
            max_size = check_int("max_size", max_size, 0)
            if max_size < len(specials):
                raise ValueError(f"max_size must be >= the {len(specials)} special tokens, got {max_size}")
        codes = _check_codes(codes, k)
        counts = np.asarray(counts)
        if counts.size and counts.dtype.kind not in "iu":
            raise TypeError(f"counts must be an integer array, got dtype {counts.dtype}")
        if counts.ndim != 1 or counts.size != codes.shape[0]:
            raise ValueError(f"counts must be 1-D with one count per code ({codes.shape[0]}), got shape {counts.shape}")
        if counts.size and counts.dtype.kind == "i" and counts.min() < 0:
            raise ValueError(f"counts must be non-negative, got {counts.min()}")
        counts = counts.astype(np.uint64)
        uniq, inverse = np.unique(codes, axis=0, return_inverse=True) if codes.shape[0] else (codes, np.zeros(0, int))
        total = np.zeros(uniq.shape[0], dtype=np.uint64)
        np.add.at(total, inverse.reshape(-1), counts)
        keep = total >= np.uint64(min_count)
        uniq, total = uniq[keep], total[keep]
        # np.unique sorted the codes ascending, so a stable sort by descending count breaks ties by code.
        order = np.argsort(~total, kind="stable")
        if max_size is not None:
            order = order[: max_size - len(specials)]
        return cls(k, uniq[order], total[order], specials=specials)

    # ---- accessors -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.specials) + int(self._codes.shape[0])

    def __repr__(self) -> str:
        return f"Vocab(k={self.k}, kmers={self._codes.shape[0]}, specials={list(self.specials)})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocab) and (self.k, self.specials) == (other.k, other.specials)
                and np.array_equal(self._codes, other._codes) and np.array_equal(self._counts, other._counts))

    __hash__ = None

    @property
    def codes(self) -> np.ndarray:
        """K-mer codes in id order (id = ``len(specials) + index``); read-only."""
        return self._codes

    @property
    def counts(self) -> np.ndarray:
        """Their counts (``uint64``); read-only."""
        return self._counts

    @property
    def unk_id(self) -> int:
        return self.specials.index(UNK)

    def special_id(self, token: str) -> int:
        if token not in self.specials:
            raise ValueError(f"token must be one of {list(self.specials)}, got {token!r}")
        return self.specials.index(token)

    def id_of(self, kmer: str) -> int:
        """The id of a k-mer string as written (no canonicalisation), or of a special token; the
        [UNK] id when absent."""
        if kmer in self.specials:
            return self.specials.index(kmer)
        if not isinstance(kmer, (str, bytes)) or len(kmer) != self.k:
            raise ValueError(f"kmer must be a {self.k}-base string, got {kmer!r}")
        return int(self.lookup(encode_kmers([kmer]))[0])

    def kmer_of(self, token_id: int) -> str:
        """The k-mer (or special token) of an id."""
        token_id = check_int("token_id", token_id, 0)
        if token_id >= len(self):
            raise IndexError(f"token_id must be < {len(self)}, got {token_id}")
        if token_id < len(self.specials):
            return self.specials[token_id]
        return decode_kmers(self._codes[token_id - len(self.specials)][None], self.k)[0]

    # ---- lookup --------------------------------------------------------------------------------
    def lookup(self, codes: Any) -> np.ndarray | pa.LargeListArray:
        """Token ids (``uint32``) of codes: a numpy array (``uint64[n]`` or ``uint64[n, 2]``) gives a
        numpy array; an Arrow list array of codes (as :func:`kmerx.kmers.kmer_codes` returns) gives a
        ``large_list<uint32>`` array with the same offsets. Unknown codes get the [UNK] id."""
        if isinstance(codes, pa.ChunkedArray):
            codes = codes.combine_chunks()
        if isinstance(codes, pa.Array):
            if not pa.types.is_list(codes.type) and not pa.types.is_large_list(codes.type):
                raise TypeError(f"codes must be a list array of k-mer codes, got {codes.type}")
            offsets = np.asarray(codes.offsets, dtype=np.int64)
            values = codes.values.slice(offsets[0], offsets[-1] - offsets[0])
            if pa.types.is_fixed_size_list(values.type):
                flat = values.flatten().to_numpy(zero_copy_only=False).reshape(-1, values.type.list_size)
            else:
                flat = values.to_numpy(zero_copy_only=False)
            return list_array(self._lookup(flat), offsets - offsets[0])
        return self._lookup(codes)

    def _lookup(self, codes: Any) -> np.ndarray:
        arr = np.asarray(codes)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"codes must be an integer array, got dtype {arr.dtype}")
        if self.k > 32 and arr.size == 0:
            arr = arr.reshape(0, 2)
        return self._table.lookup(np.ascontiguousarray(arr, dtype=np.uint64), self.unk_id)

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Writes the vocabulary: Parquet when ``path`` ends in ``.parquet``, versioned JSON otherwise."""
        path = os.fspath(path)
        meta = {"format": _FORMAT, "version": _VERSION, "k": self.k, "specials": list(self.specials)}
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            cols = ({"code": self._codes} if self.k <= 32
                    else {"code_hi": self._codes[:, 0], "code_lo": self._codes[:, 1]})
            table = pa.table({**{c: pa.array(v, pa.uint64()) for c, v in cols.items()},
                              "count": pa.array(self._counts, pa.uint64())})
            pq.write_table(table.replace_schema_metadata({"kmerx.vocab": json.dumps(meta)}), path)
            return
        with open(path, "w") as f:
            json.dump(self.to_doc(), f)

    def to_doc(self) -> dict[str, Any]:
        """The JSON document :meth:`save` writes (also embedded in saved tokenizers)."""
        return {"format": _FORMAT, "version": _VERSION, "k": self.k, "specials": list(self.specials),
                "codes": self._codes.tolist(), "counts": self._counts.tolist()}

    @classmethod
    def from_doc(cls, doc: Any, path: str) -> Vocab:
        """The vocabulary of a :meth:`to_doc` document; ``path`` names its file in errors."""
        doc = cls._check_meta(doc, path)
        k = doc["k"]
        codes = np.array(doc["codes"], dtype=np.uint64).reshape((-1,) if k <= 32 else (-1, 2))
        return cls(k, codes, np.array(doc["counts"], dtype=np.uint64), specials=doc["specials"])

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Reads a vocabulary written by :meth:`save`."""
        path = os.fspath(path)
        if path.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            raw = (table.schema.metadata or {}).get(b"kmerx.vocab")
            if raw is None:
                raise ValueError(f"{path}: not a kmerx vocabulary (no 'kmerx.vocab' metadata)")
            meta = cls._check_meta(json.loads(raw), path)
            col = lambda c: table.column(c).to_numpy().astype(np.uint64)  # noqa: E731
            codes = col("code") if meta["k"] <= 32 else np.stack([col("code_hi"), col("code_lo")], axis=1)
            return cls(meta["k"], codes, col("count"), specials=meta["specials"])
        with open(path) as f:
            return cls.from_doc(json.load(f), path)

    @staticmethod
    def _check_meta(meta: Any, path: str) -> dict:
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a kmerx vocabulary (format must be {_FORMAT!r})")
        if meta.get("version") != _VERSION:
            raise ValueError(f"{path}: unsupported vocabulary version {meta.get('version')!r} (this kmerx reads {_VERSION})")
        return meta
