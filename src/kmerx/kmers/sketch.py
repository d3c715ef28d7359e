"""MinHash sketches compatible with sourmash 4.x (re-exported by :mod:`kmerx.kmers`).

A k-mer's hash is the low 64 bits of MurmurHash3_x64_128 (seed 42 by default) of its canonical form
(the lexicographically smaller of the k-mer and its reverse complement) as uppercase ASCII, exactly as
sourmash computes it, so hash sets, signature files and similarities interoperate. Two kinds:

- :class:`FracMinHash` (``scaled=S``): every hash ``<= max_hash`` with sourmash's rule
  ``max_hash = round((2**64 - 1) / S)`` (``2**64 - 1`` for ``S == 1``);
- :class:`MinHash` (``num=n``): the ``n`` smallest distinct hashes (bottom-k).

Lowercase bases count as uppercase; k-mers holding any other byte (N, IUPAC) are skipped, like
sourmash's ``add_sequence(seq, force=True)``. See docs/sketch.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from kmerx import _core
from kmerx._checks import check_int
from kmerx.kmers.codes import seq_arrays

__all__ = ["FracMinHash", "MinHash", "Sketch", "load_signatures", "max_hash_for_scaled", "save_signatures"]

_U64_MAX = 2**64 - 1


def max_hash_for_scaled(scaled: int) -> int:
    """sourmash's ``max_hash`` for ``scaled`` (float division and rounding included, bit for bit)."""
    scaled = check_int("scaled", scaled, 1)
    if scaled == 1:
        return _U64_MAX
    return min(int(round(_U64_MAX / scaled, 0)), _U64_MAX)


def _scaled_for_max_hash(max_hash: int) -> int:
    return min(int(round(_U64_MAX / max_hash, 0)), _U64_MAX)


class Sketch:
    """A MinHash sketch: ``k``, ``seed`` and either ``scaled`` (FracMinHash) or ``num`` (bottom-k).

    Prefer the two concrete classes :class:`FracMinHash` and :class:`MinHash`."""

    def __init__(self, k: int, *, scaled: int = 0, num: int = 0, seed: int = 42, name: str = "",
                 filename: str = "") -> None:
        self.k = check_int("k", k, 1, 64)
        if bool(scaled) == bool(num):
            raise ValueError(f"give exactly one of scaled and num (both > 0 or both 0), got scaled={scaled}, num={num}")
        self.scaled = check_int("scaled", scaled, 1) if scaled else 0
        self.num = check_int("num", num, 1) if num else 0
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= _U64_MAX:
            raise ValueError(f"seed must be an int in 0..2**64-1, got {seed!r}")
        self.seed = int(seed)
        self.name = str(name)
        self.filename = str(filename)
        self._hashes = np.zeros(0, dtype=np.uint64)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def max_hash(self) -> int:
        """The largest hash kept (``2**64 - 1`` for num sketches, which cut by rank instead)."""
        return max_hash_for_scaled(self.scaled) if self.scaled else _U64_MAX

    @property
    def hashes(self) -> np.ndarray:
        """The sketch's distinct hashes, sorted ascending (read-only ``uint64`` view)."""
        view = self._hashes.view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return int(self._hashes.size)

    def __repr__(self) -> str:
        kind = f"scaled={self.scaled}" if self.scaled else f"num={self.num}"
        return f"{type(self).__name__}(k={self.k}, {kind}, seed={self.seed}, hashes={len(self)})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Sketch) and self._params() == other._params()
                and np.array_equal(self._hashes, other._hashes))

    __hash__ = None  # mutable

    def _params(self) -> tuple[int, int, int, int]:
        return (self.k, self.seed, self.scaled, self.num)

    def _like(self, *, scaled: int = 0, num: int = 0) -> Sketch:
        cls = FracMinHash if scaled else MinHash
        out = Sketch.__new__(cls)
        Sketch.__init__(out, self.k, scaled=scaled, num=num, seed=self.seed, name=self.name,
                        filename=self.filename)
        return out

    def copy(self) -> Sketch:
        out = self._like(scaled=self.scaled, num=self.num)
        out._hashes = self._hashes.copy()
        return out

    def _keep(self, hashes: np.ndarray) -> np.ndarray:
        # hashes: sorted distinct
        if self.scaled:
            return hashes[: np.searchsorted(hashes, np.uint64(self.max_hash), side="right")]
        return hashes[: self.num]

    # ---- building ------------------------------------------------------------------------------
    def add(self, seqs: Any) -> Sketch:
        """Adds the canonical k-mers of ``seqs`` (a ReadBatch, Arrow binary/string array, str, bytes or
        a list of them) in one native call, multi-threaded over reads. Returns self."""
        data, offsets = seq_arrays(seqs)
        new = _core.sketch_hashes(data, offsets, self.k, self.seed, self.max_hash, self.num)
        self._hashes = self._keep(np.union1d(self._hashes, new)) if self._hashes.size else new
        return self

    def add_hashes(self, hashes: Iterable[int] | np.ndarray) -> Sketch:
        """Adds hash values directly (those the sketch's filter rejects are dropped). Returns self."""
        arr = np.asarray(hashes)
        if arr.size and (arr.dtype.kind not in "iu" or (arr.dtype.kind == "i" and arr.min() < 0)):
            raise ValueError(f"hashes must be non-negative integers, got dtype {arr.dtype}")
        self._hashes = self._keep(np.union1d(self._hashes, arr.astype(np.uint64).ravel()))
        return self

    def merge(self, other: Sketch) -> Sketch:
        """Adds ``other``'s hashes (same k, seed and scaled/num). Returns self."""
        self._check_same(other, exact=True)
        self._hashes = self._keep(np.union1d(self._hashes, other._hashes))
        return self

    def __or__(self, other: Sketch) -> Sketch:
        return self.copy().merge(other)

    def downsample(self, *, scaled: int | None = None, num: int | None = None) -> Sketch:
        """A coarser copy: ``scaled`` >= this sketch's (FracMinHash) or ``num`` <= this sketch's (MinHash)."""
        if self.scaled:
            if num is not None:
                raise ValueError(f"a scaled sketch downsamples by scaled, got num={num}")
            scaled = check_int("scaled", self.scaled if scaled is None else scaled, 1)
            if scaled < self.scaled:
                raise ValueError(f"scaled must be >= this sketch's scaled {self.scaled}, got {scaled}")
            out = self._like(scaled=scaled)
        else:
            if scaled is not None:
                raise ValueError(f"a num sketch downsamples by num, got scaled={scaled}")
            num = check_int("num", self.num if num is None else num, 1)
            if num > self.num:
                raise ValueError(f"num must be <= this sketch's num {self.num}, got {num}")
            out = self._like(num=num)
        out._hashes = out._keep(self._hashes)
        return out

    # ---- comparison ----------------------------------------------------------------------------
    def _check_same(self, other: Any, *, exact: bool = False) -> None:
        if not isinstance(other, Sketch):
            raise TypeError(f"other must be a Sketch, got {type(other).__name__}")
        for attr in ("k", "seed") + (("scaled", "num") if exact else ()):
            if getattr(self, attr) != getattr(other, attr):
                raise ValueError(f"sketches differ in {attr}: {getattr(self, attr)} vs {getattr(other, attr)}")
        if bool(self.scaled) != bool(other.scaled):
            raise ValueError("cannot compare a scaled sketch with a num sketch")

    def _common(self, other: Sketch) -> tuple[np.ndarray, np.ndarray]:
        # Both at the coarser resolution, as sourmash's downsample=True comparisons do.
        self._check_same(other)
        if self.scaled:
            s = max(self.scaled, other.scaled)
            return self.downsample(scaled=s)._hashes, other.downsample(scaled=s)._hashes
        n = min(self.num, other.num)
        return self._hashes[:n], other._hashes[:n]

    def jaccard(self, other: Sketch) -> float:
        """Estimated Jaccard similarity, as sourmash's ``MinHash.jaccard``: for num sketches, the
        fraction of the union's bottom-``num`` hashes that both hold."""
        a, b = self._common(other)
        union = np.union1d(a, b)
        if not self.scaled:
            union = union[: min(self.num, other.num)]
        if union.size == 0:
            return 0.0
        both = np.intersect1d(np.intersect1d(a, b, assume_unique=True), union, assume_unique=True)
        return both.size / union.size

    def _check_scaled(self, what: str) -> None:
        if not self.scaled:
            raise ValueError(f"{what} needs scaled sketches (FracMinHash), got num={self.num}")

    def containment(self, other: Sketch) -> float:
        """Fraction of this sketch's hashes that ``other`` holds (sourmash's ``contained_by``)."""
        self._check_scaled("containment")
        a, b = self._common(other)
        return np.intersect1d(a, b, assume_unique=True).size / a.size if a.size else 0.0

    def max_containment(self, other: Sketch) -> float:
        """Shared hashes over the smaller sketch's size (sourmash's ``max_containment``)."""
        self._check_scaled("max_containment")
        a, b = self._common(other)
        small = min(a.size, b.size)
        return np.intersect1d(a, b, assume_unique=True).size / small if small else 0.0

    def md5sum(self) -> str:
        """sourmash's md5sum of the sketch (of k and the hashes as decimal text)."""
        m = hashlib.md5(str(self.k).encode())
        for h in self._hashes.tolist():
            m.update(str(h).encode())
        return m.hexdigest()

    # ---- sourmash JSON -------------------------------------------------------------------------
    def _to_json(self) -> dict:
        return {
            "num": self.num,
            "ksize": self.k,
            "seed": self.seed,
            "max_hash": self.max_hash if self.scaled else 0,
            "mins": self._hashes.tolist(),
            "md5sum": self.md5sum(),
            "molecule": "DNA",
        }

    @classmethod
    def _from_json(cls, d: dict, name: str, filename: str, where: str) -> Sketch:
        molecule = str(d.get("molecule", "DNA"))
        if molecule.upper() != "DNA":
            raise ValueError(f"{where}: only DNA sketches are supported, got molecule={molecule!r}")
        num, max_hash = int(d.get("num", 0)), int(d.get("max_hash", 0))
        scaled = 0 if num else (_scaled_for_max_hash(max_hash) if max_hash else 0)
        if not num and not scaled:
            raise ValueError(f"{where}: a sketch needs num > 0 or max_hash > 0, got num=0, max_hash=0")
        out = (FracMinHash if scaled else MinHash).__new__(FracMinHash if scaled else MinHash)
        Sketch.__init__(out, int(d["ksize"]), scaled=scaled, num=num, seed=int(d.get("seed", 42)),
                        name=name, filename=filename)
        out._hashes = np.unique(np.array(d.get("mins", []), dtype=np.uint64))
        return out


class FracMinHash(Sketch):
    """Scaled MinHash (sourmash ``MinHash(0, k, scaled=scaled)``): keeps every hash <= max_hash."""

    def __init__(self, k: int, scaled: int = 1000, *, seed: int = 42, name: str = "", filename: str = "") -> None:
        super().__init__(k, scaled=check_int("scaled", scaled, 1), seed=seed, name=name, filename=filename)


class MinHash(Sketch):
    """Bottom-k MinHash (sourmash ``MinHash(num, k)``): keeps the ``num`` smallest distinct hashes."""

    def __init__(self, k: int, num: int = 500, *, seed: int = 42, name: str = "", filename: str = "") -> None:
        super().__init__(k, num=check_int("num", num, 1), seed=seed, name=name, filename=filename)


def save_signatures(path: str | os.PathLike, sketches: Sketch | Iterable[Sketch], *, name: str | None = None,
                    filename: str | None = None) -> None:
    """Writes sketches as a sourmash signature file (JSON; gzip when ``path`` ends in ``.gz``), one
    signature per sketch. ``name``/``filename`` override the sketches' own."""
    items = [sketches] if isinstance(sketches, Sketch) else list(sketches)
    for i, s in enumerate(items):
        if not isinstance(s, Sketch):
            raise TypeError(f"sketches[{i}] must be a Sketch, got {type(s).__name__}")
    sigs = [
        {
            "class": "sourmash_signature",
            "email": "",
            "hash_function": "0.murmur64",
            "filename": s.filename if filename is None else filename,
            "name": s.name if name is None else name,
            "license": "CC0",
            "signatures": [s._to_json()],
            "version": 0.4,
        }
        for s in items
    ]
    text = json.dumps(sigs, separators=(",", ":")).encode()
    path = os.fspath(path)
    with (gzip.open(path, "wb") if path.endswith(".gz") else open(path, "wb")) as f:
        f.write(text)


def load_signatures(path: str | os.PathLike, *, k: int | None = None) -> list[Sketch]:
    """Reads a sourmash signature file (JSON, gzipped or not): one sketch per DNA MinHash in it, with
    the signature's name and filename; ``k`` keeps only that k-mer size. Abundances are ignored."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)}: not a sourmash JSON signature file ({e})") from None
    doc = [doc] if isinstance(doc, dict) else doc
    if not isinstance(doc, list):
        raise ValueError(f"{os.fspath(path)}: expected a JSON list of signatures, got {type(doc).__name__}")
    out = []
    for i, sig in enumerate(doc):
        if not isinstance(sig, dict) or "signatures" not in sig:
            raise ValueError(f"{os.fspath(path)}: signature {i} has no 'signatures' list")
        hf = sig.get("hash_function", "0.murmur64")
        if hf != "0.murmur64":
            raise ValueError(f"{os.fspath(path)}: signature {i}: hash_function must be '0.murmur64', got {hf!r}")
        for j, mh in enumerate(sig["signatures"]):
            if k is not None and int(mh["ksize"]) != k:
                continue
            out.append(Sketch._from_json(mh, sig.get("name") or "", sig.get("filename") or "",
                                         f"{os.fspath(path)}: signature {i}, sketch {j}"))
    return out
