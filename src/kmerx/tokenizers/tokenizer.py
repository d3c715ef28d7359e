"""Tokenizer: reads -> token ids, attention and special-token masks, positions (one native call per batch)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from kmerx import _core
from kmerx._arrow import list_array
from kmerx.kmers.codes import kmer_codes, seq_arrays
from kmerx.tokenizers import lsh
from kmerx.tokenizers.config import PRESETS, TokenizerConfig, preset
from kmerx.vocab import Vocab

__all__ = ["Encoding", "Tokenizer"]

_FORMAT = "kmerx.tokenizer"
_VERSION = 1
_DEFAULT: Any = object()  # "use the config's value"


class Encoding(dict):
    """encode_batch's result, a dict (like transformers' BatchEncoding) whose keys are also attributes:
    input_ids, attention_mask, special_tokens_mask, lengths (tokens per read, int64), and positions
    (base offset of each token in its read, -1 on special tokens and padding) and weight_slots when
    asked for / defined. numpy: ``[n, width]`` arrays (``input_ids`` ``[n, width, h]`` when a token has
    h ids). arrow: ``large_list`` arrays, one list per read."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Tokenizer:
    """Turns reads into token ids for an embedding table; see :class:`TokenizerConfig` for the schemes.

    Build one with :meth:`from_config` (a config, a dict, a preset name or a saved file) or
    :meth:`from_preset`; schemes with learned state (a vocabulary, SVD hyperplanes) need :meth:`fit` or
    the state passed in. :meth:`save` / :meth:`load` round-trip config and state as versioned JSON."""

    def __init__(self, config: TokenizerConfig, *, vocab: Vocab | None = None,
                 hyperplanes: dict[str, Any] | None = None) -> None:
        if not isinstance(config, TokenizerConfig):
            raise TypeError(f"config must be a TokenizerConfig, got {type(config).__name__}")
        self.config = config
        if config.scheme in ("vocab", "lsh") and config.strand == "reverse":
            raise ValueError(f"strand must be 'canonical' or 'forward' for the {config.scheme} scheme, got 'reverse'")
        if vocab is not None:
            if not isinstance(vocab, Vocab):
                raise TypeError(f"vocab must be a kmerx.Vocab, got {type(vocab).__name__}")
            if vocab.k != config.k or vocab.specials != tuple(config.specials):
                raise ValueError(f"vocab (k={vocab.k}, specials={list(vocab.specials)}) does not match the config "
                                 f"(k={config.k}, specials={list(config.specials)})")
        self._vocab = vocab
        if hyperplanes is not None and (config.scheme, config.lsh, config.hyperplanes) != ("lsh", "projection", "svd"):
            raise ValueError("hyperplanes are state of lsh projection tokenizers with hyperplanes='svd'")
        self._planes = None if hyperplanes is None else {n: np.asarray(hyperplanes[n], np.float64) for n in "abc"}
        self._scheme = None
        c = config
        self._names = list(c.specials)
        self._offset = len(c.specials)
        self._range = {"direct": 4**c.k, "pieces": 4**c.k, "hashed": c.buckets, "chars": 0,
                       "vocab": 0 if vocab is None else len(vocab) - len(c.specials),
                       "lsh": 2**c.m if c.lsh == "projection" else 4**c.sampled}[c.scheme]
        self._alphabet_id = self._offset + self._range
        self._trailing_id = self._alphabet_id + len(c.alphabet)
        self._ids = {name: i for i, name in enumerate(c.specials)}
        self._ids.update({name: self._trailing_id + i for i, name in enumerate(c.trailing_specials)})

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Any) -> Tokenizer:
        """From a TokenizerConfig, a dict of its fields, a preset name (see ``PRESETS``), or a path to a
        saved tokenizer (:meth:`save`) or a config file (.json or .toml holding the fields)."""
        if isinstance(config, TokenizerConfig):
            return cls(config)
        if isinstance(config, dict):
            return cls(TokenizerConfig.from_dict(config))
        if isinstance(config, str) and config in PRESETS:
            return cls(PRESETS[config])
        if isinstance(config, (str, os.PathLike)):
            path = os.fspath(config)
            if not os.path.exists(path):
                raise ValueError(f"config must be a preset name ({sorted(PRESETS)}) or an existing file, got {path!r}")
            if path.endswith(".toml"):
                import tomllib

                with open(path, "rb") as f:
                    return cls(TokenizerConfig.from_dict(tomllib.load(f)))
            with open(path) as f:
                doc = json.load(f)
            if isinstance(doc, dict) and doc.get("format") == _FORMAT:
                return cls._from_doc(doc, path)
            return cls(TokenizerConfig.from_dict(doc))
        raise TypeError(f"config must be a TokenizerConfig, dict, preset name or path, got {type(config).__name__}")

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Tokenizer:
        """A model's tokenizer ("dnabert-3" .. "dnabert-6", "nucleotide-transformer", "hyenadna",
        "caduceus"), id for id; overrides change config fields (e.g. max_length)."""
        return cls(preset(name, **overrides))

    def fit(self, reads: Any) -> Tokenizer:
        """Learns the state the scheme needs from reads (a batch as :func:`kmerx.kmers.kmer_codes` takes
        one, or an iterable of batches): the vocabulary (vocab: exact counts, then ``vocab_min_count`` /
        ``vocab_max_size``) or the hyperplanes (lsh with hyperplanes="svd", from ``fit_samples`` k-mers
        sampled with ``seed``). A no-op for the other schemes. Returns self."""
        c = self.config
        batches = _batches(reads)
        if c.scheme == "vocab":
            from kmerx.count import Counter

            counter = Counter(c.k, canonical=c.strand == "canonical")
            for batch in batches:
                counter.add(batch)
            counts = counter.finish()
            vocab = Vocab.from_counts(counts.codes, counts.counts, k=c.k, min_count=c.vocab_min_count,
                                      max_size=c.vocab_max_size, specials=c.specials)
            self.__init__(c, vocab=vocab)
        elif c.scheme == "lsh" and c.lsh == "projection" and c.hyperplanes == "svd":
            codes = np.concatenate([_flat_codes(kmer_codes(b, c.k, strand="forward")) for b in batches])
            if len(codes) > c.fit_samples:
                pick = np.argsort(lsh._uniform(c.seed, 5, len(codes)), kind="stable")[: c.fit_samples]
                codes = codes[np.sort(pick)]
            self.__init__(c, hyperplanes=lsh.fit_hyperplanes(_digits(codes, c.k), c.m, c.num_hashes, c.seed))
        return self

    # ---- ids ---------------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._trailing_id + len(self.config.trailing_specials)

    @property
    def needs_fit(self) -> bool:
        """True while the scheme lacks learned state it needs (a vocabulary, SVD hyperplanes)."""
        c = self.config
        if c.scheme == "vocab":
            return self._vocab is None
        return c.scheme == "lsh" and c.lsh == "projection" and c.hyperplanes == "svd" and self._planes is None

    @property
    def vocab(self) -> Vocab | None:
        return self._vocab

    def token_to_id(self, token: str) -> int:
        """The id of a special token or one-character token."""
        if token in self._ids:
            return self._ids[token]
        if len(token) == 1 and token in self.config.alphabet:
            return self._alphabet_id + self.config.alphabet.index(token)
        raise ValueError(f"token must be a special or alphabet token of this tokenizer, got {token!r}")

    def convert_ids_to_tokens(self, ids: Any) -> list[str]:
        """The token string of each id: special tokens, k-mers (direct, vocab, pieces), characters.
        Hashed and LSH ids are buckets shared by many k-mers: ValueError for them."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids must be in 0..{self.vocab_size - 1}, got {ids.min()}..{ids.max()}")
        c = self.config
        out = np.empty(ids.size, dtype=object)
        special = ids < self._offset
        out[special] = np.array(c.specials, dtype=object)[ids[special]] if special.any() else []
        trailing = ids >= self._trailing_id
        out[trailing] = np.array(c.trailing_specials, dtype=object)[ids[trailing] - self._trailing_id] if trailing.any() else []
        chars = (ids >= self._alphabet_id) & ~trailing
        out[chars] = np.array(list(c.alphabet), dtype=object)[ids[chars] - self._alphabet_id] if chars.any() else []
        kmers = ~(special | trailing | chars)
        if kmers.any():
            if c.scheme in ("hashed", "lsh"):
                raise ValueError(f"ids of the {c.scheme} scheme are buckets shared by many k-mers and cannot be decoded")
            idx = ids[kmers] - self._offset
            if c.scheme == "vocab":
                codes, order = self._vocab.codes[idx], "ACGT"
            else:
                codes, order = idx.astype(np.uint64), c.base_order
            letters = np.frombuffer(order.encode(), dtype=np.uint8)[_digits(codes, c.k)]
            out[kmers] = [bytes(row).decode() for row in letters]
        return out.tolist()

    def decode(self, ids: Any, *, skip_special_tokens: bool = False) -> str:
        """One read's ids as text: tokens joined by spaces (by nothing for the chars scheme)."""
        ids = np.asarray(ids).reshape(-1)
        if skip_special_tokens:
            ids = ids[(ids >= self._offset) & (ids < self._trailing_id)]
        return ("" if self.config.scheme == "chars" else " ").join(self.convert_ids_to_tokens(ids))

    def batch_decode(self, rows: Any, *, skip_special_tokens: bool = False) -> list[str]:
        """decode() of each read: rows of a padded array (padding dropped) or an Arrow list array."""
        if isinstance(rows, (pa.Array, pa.ChunkedArray)):
            rows = rows.to_pylist()
        pad = self._ids[self.config.pad_token]
        out = []
        for row in rows:
            row = np.asarray(row).reshape(len(row), -1)[:, 0]
            out.append(self.decode(row[row != pad], skip_special_tokens=skip_special_tokens))
        return out

    # ---- encoding ----------------------------------------------------------------------------------
    def encode_batch(self, seqs: Any, *, add_special_tokens: bool = True, max_length: int | None = _DEFAULT,
                     truncation: str | bool | None = _DEFAULT, padding: str | bool | None = _DEFAULT,
                     pad_to_multiple_of: int | None = _DEFAULT, padding_side: str = _DEFAULT,
                     return_tensors: str = "numpy", return_positions: bool = False) -> Encoding:
        """Token ids of a batch of reads (a ReadBatch / Table, an Arrow binary or string array, str,
        bytes or a list of them), in one native call.

        return_tensors: "numpy" (padded arrays) or "arrow" (one list per read, no padding). The other
        options default to the config's: max_length (counting special tokens), truncation ("right" keeps
        the first tokens, "left" the last; True = "right"; None/False: never cut), padding ("longest",
        "max_length"; numpy only), pad_to_multiple_of, padding_side ("right" | "left")."""
        data, offsets = seq_arrays(seqs)
        if return_tensors not in ("numpy", "arrow"):
            raise ValueError(f"return_tensors must be 'numpy' or 'arrow', got {return_tensors!r}")
        raw = self._encode_arrays(data, offsets, add_special_tokens=add_special_tokens, max_length=max_length,
                                  truncation=truncation, padding=padding, pad_to_multiple_of=pad_to_multiple_of,
                                  padding_side=padding_side, arrow=return_tensors == "arrow",
                                  positions=return_positions)
        out_offsets = raw.pop("offsets")
        enc = Encoding(raw)
        enc["lengths"] = np.diff(out_offsets)
        if return_tensors == "arrow":
            for name in list(enc):
                if name != "lengths":
                    enc[name] = list_array(enc[name], out_offsets)
            enc["attention_mask"] = list_array(np.ones(int(out_offsets[-1]), dtype=np.uint8), out_offsets)
        return enc

    def encode(self, seq: str | bytes, *, add_special_tokens: bool = True) -> list[int]:
        """The ids of one read (a list; first hash function's ids for multi-hash schemes)."""
        ids = self.encode_batch([seq], add_special_tokens=add_special_tokens, padding="longest")["input_ids"][0]
        return (ids if ids.ndim == 1 else ids[:, 0]).tolist()

    def _encode_arrays(self, data: np.ndarray, offsets: np.ndarray, *, add_special_tokens: bool = True,
                       max_length: Any = _DEFAULT, truncation: Any = _DEFAULT, padding: Any = _DEFAULT,
                       pad_to_multiple_of: Any = _DEFAULT, padding_side: Any = _DEFAULT, arrow: bool = False,
                       positions: bool = False) -> dict[str, np.ndarray]:
        c = self.config
        overridden = any(v is not _DEFAULT for v in (max_length, truncation, padding, pad_to_multiple_of, padding_side))
        pick = lambda v, default: default if v is _DEFAULT else v  # noqa: E731
        max_length = pick(max_length, c.max_length)
        truncation = {True: "right", False: None}.get(pick(truncation, c.truncation), pick(truncation, c.truncation))
        padding = {True: "longest", False: None}.get(pick(padding, c.padding), pick(padding, c.padding))
        multiple = pick(pad_to_multiple_of, c.pad_to_multiple_of)
        side = pick(padding_side, c.padding_side)
        # Per-call options are validated through a config copy, so the checks and messages are the config's.
        if overridden:
            c.replace(max_length=max_length, truncation=truncation, padding=padding,
                      pad_to_multiple_of=multiple, padding_side=side)
        multiple = multiple or 1
        prefix = [self._ids[t] for t in c.prefix] if add_special_tokens else []
        suffix = [self._ids[t] for t in c.suffix] if add_special_tokens else []
        max_tokens = -1
        if truncation and max_length is not None:
            max_tokens = max_length - len(prefix) - len(suffix)
        if arrow:
            pad_to = -1
        elif padding is None:
            raise ValueError("numpy output is padded: padding must be 'longest' or 'max_length' "
                             "(return_tensors='arrow' gives unpadded lists)")
        elif padding == "max_length":
            if max_length is None:
                raise ValueError("padding='max_length' needs max_length")
            pad_to = max_length
        else:
            pad_to = 0
        return self._native().encode(data, offsets, prefix, suffix, max_tokens, truncation == "left", pad_to,
                                     multiple, side == "left", self._ids[c.pad_token], positions)

    def _native(self):
        if self._scheme is None:
            self._scheme = self._build()
        return self._scheme

    def _build(self):
        c = self.config
        unk = self._ids[c.unk_token]
        if c.scheme == "direct":
            return _core.direct_scheme(c.k, c.stride, c.strand, c.base_order, c.fold_case, self._offset, unk)
        if c.scheme == "hashed":
            return _core.hashed_scheme(c.k, c.stride, c.strand, c.num_hashes, c.buckets, c.weight_buckets,
                                       self._offset, unk)
        if c.scheme == "vocab":
            if self._vocab is None:
                raise ValueError("the vocab scheme needs a vocabulary: Tokenizer(config, vocab=...) or fit(reads)")
            return _core.vocab_scheme(c.k, c.stride, c.strand, self._vocab._table, unk)
        if c.scheme == "lsh":
            canonical = c.strand == "canonical"
            if c.lsh == "bits":
                positions = lsh.bit_positions(c.k, c.sampled, c.num_hashes, c.seed)
                return _core.lsh_bits_scheme(c.k, c.stride, canonical, positions, self._offset, unk)
            weights, thresholds = lsh.quantize(**self.hyperplanes)
            return _core.lsh_projection_scheme(c.k, c.stride, canonical, weights, thresholds, self._offset, unk)
        char_ids = np.full(256, unk, dtype=np.uint32)
        for i, ch in enumerate(c.alphabet):
            char_ids[ord(ch)] = self._alphabet_id + i
            if c.fold_case:
                char_ids[ord(ch.lower())] = self._alphabet_id + i
        if c.scheme == "pieces":
            return _core.pieces_scheme(c.k, c.base_order, c.fold_case, self._offset, char_ids, unk)
        return _core.chars_scheme(char_ids)

    @property
    def hyperplanes(self) -> dict[str, np.ndarray]:
        """The LSH projection's hyperplanes w = a + ib (``a``, ``b``: [h, m, k]) and thresholds ``c``
        ([h, m]): fitted, given, or seeded random ones."""
        c = self.config
        if self._planes is None:
            if c.hyperplanes == "svd":
                raise ValueError("hyperplanes='svd' needs fit(reads) (or hyperplanes=...) before encoding")
            self._planes = lsh.random_hyperplanes(c.k, c.m, c.num_hashes, c.seed)
        return self._planes

    # ---- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Writes config and learned state (vocabulary, fitted hyperplanes) as versioned JSON."""
        from kmerx.formats import atomic_path

        with atomic_path(path) as tmp, open(tmp, "w") as f:
            json.dump(self.to_doc(), f)

    def to_doc(self) -> dict[str, Any]:
        """The JSON document :meth:`save` writes (outputs embed it to record how ids were made)."""
        from kmerx import __version__

        state: dict[str, Any] = {}
        if self._vocab is not None:
            state["vocab"] = self._vocab.to_doc()
        if self._fitted_planes() is not None:
            state["hyperplanes"] = {n: v.tolist() for n, v in self._planes.items()}
        return {"format": _FORMAT, "version": _VERSION, "kmerx": __version__, "config": self.config.to_dict(),
                "state": state}

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Reads a tokenizer written by :meth:`save`."""
        path = os.fspath(path)
        with open(path) as f:
            try:
                doc = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not a kmerx tokenizer (invalid JSON: {e})") from None
        return cls._from_doc(doc, path)

    @classmethod
    def _from_doc(cls, doc: Any, path: str) -> Tokenizer:
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a kmerx tokenizer (format must be {_FORMAT!r})")
        if doc.get("version") != _VERSION:
            raise ValueError(f"{path}: unsupported tokenizer version {doc.get('version')!r} (this kmerx reads {_VERSION})")
        state = doc.get("state", {})
        vocab = Vocab.from_doc(state["vocab"], path) if "vocab" in state else None
        return cls(TokenizerConfig.from_dict(doc["config"]), vocab=vocab, hyperplanes=state.get("hyperplanes"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tokenizer) or self.config != other.config or self._vocab != other._vocab:
            return False
        mine, theirs = self._fitted_planes(), other._fitted_planes()
        return (mine is None) == (theirs is None) and (mine is None or all(np.array_equal(mine[n], theirs[n]) for n in "abc"))

    def _fitted_planes(self) -> dict[str, np.ndarray] | None:
        """Hyperplanes that are state (fitted or given), not a function of the config's seed."""
        return self._planes if self.config.scheme == "lsh" and self.config.hyperplanes == "svd" else None

    __hash__ = None

    def __repr__(self) -> str:
        c = self.config
        name = f"preset={c.preset!r}" if c.preset else f"scheme={c.scheme!r}, k={c.k}"
        return f"Tokenizer({name}, vocab_size={self.vocab_size})"


def _batches(reads: Any) -> list:
    """One batch, or the batches of an iterable of ReadBatches / Tables / Arrow arrays."""
    single = (str, bytes, pa.Array, pa.ChunkedArray, pa.RecordBatch, pa.Table)
    if isinstance(reads, single) or not isinstance(reads, Iterable):
        return [reads]
    items = list(reads)
    return items if items and all(isinstance(b, single[2:]) for b in items) else [items]


def _flat_codes(codes: pa.Array) -> np.ndarray:
    values = codes.values
    if pa.types.is_fixed_size_list(values.type):
        return values.flatten().to_numpy(zero_copy_only=False).reshape(-1, 2)
    return values.to_numpy(zero_copy_only=False)


def _digits(codes: np.ndarray, k: int) -> np.ndarray:
    """Base digits (n, k) of k-mer codes (uint64[n], or [n, 2] as [hi, lo] for k > 32), first base first."""
    codes = np.asarray(codes, dtype=np.uint64)
    shifts = 2 * (k - 1 - np.arange(k))
    if codes.ndim == 1:
        return ((codes[:, None] >> shifts.astype(np.uint64)) & np.uint64(3)).astype(np.int64)
    hi = (codes[:, :1] >> np.maximum(shifts - 64, 0).astype(np.uint64)) & np.uint64(3)
    lo = (codes[:, 1:] >> np.minimum(shifts, 62).astype(np.uint64)) & np.uint64(3)
    return np.where(shifts >= 64, hi, lo).astype(np.int64)
