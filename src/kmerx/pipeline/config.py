"""The pipeline's configuration: one frozen config per stage, grouped in :class:`PipelineConfig`, whose
digest names an output (a re-run with the same digest resumes; another digest is refused)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from kmerx._checks import check_int
from kmerx.clean import CleanConfig
from kmerx.config import StageConfig
from kmerx.io import ReadConfig
from kmerx.tables.config import TableConfig
from kmerx.tokenizers.config import TokenizerConfig

_POOLS = ("mean", "sum", "max", "none")
_FORMATS = ("parquet", "hdf5")


@dataclasses.dataclass(frozen=True)
class EmbedConfig(StageConfig):
    """The embedding stage.

    pool               "mean" (default), "sum" or "max": one vector per read; "none": one per token.
    pos_encoding       "none" (default) or "sinusoidal" (added to each token's row before pooling).
    out_dtype          "float32" (default) or "float16": the stored vectors (sums are float32).
    add_special_tokens False (default): only the k-mer tokens; True: the tokenizer's prefix/suffix too.
    table_path         None (default: the [table] config, a virtual table) or a table file / saved
                       table directory (see ``EmbeddingTable.from_file``), memory-mapped by each worker.
    """

    pool: str = "mean"
    pos_encoding: str = "none"
    out_dtype: str = "float32"
    add_special_tokens: bool = False
    table_path: str | None = None

    def __post_init__(self) -> None:
        if self.pool not in _POOLS:
            raise ValueError(f"pool must be one of {_POOLS}, got {self.pool!r}")
        if self.pos_encoding not in ("none", "sinusoidal"):
            raise ValueError(f"pos_encoding must be 'none' or 'sinusoidal', got {self.pos_encoding!r}")
        if self.out_dtype not in ("float32", "float16"):
            raise ValueError(f"out_dtype must be 'float32' or 'float16', got {self.out_dtype!r}")
        if not isinstance(self.add_special_tokens, bool):
            raise TypeError(f"add_special_tokens must be a bool, got {self.add_special_tokens!r}")
        if self.table_path is not None and not isinstance(self.table_path, str):
            raise TypeError(f"table_path must be a path string or None, got {self.table_path!r}")

    @property
    def per_token(self) -> bool:
        return self.pool == "none"


@dataclasses.dataclass(frozen=True)
class OutputConfig(StageConfig):
    """Shards and their layout.

    format           "parquet" (default) or "hdf5" (one file per shard plus ``all.h5``, a virtual
                     dataset joining them).
    shard_bytes      target bytes of embeddings per shard (default 128 MiB); the shard size in reads is
                     derived from it and the inputs' mean read length, and recorded in the manifest.
    row_group_bytes  target bytes per Parquet row group / HDF5 chunk row block (default 32 MiB): large
                     enough for sequential reads, small enough for one MPI rank's share.
    split_bytes      uncompressed inputs larger than this are read as byte ranges of about this size
                     by separate tasks (default 256 MiB); compressed files are read one per task.
    """

    format: str = "parquet"
    shard_bytes: int = 128 << 20
    row_group_bytes: int = 32 << 20
    split_bytes: int = 256 << 20

    def __post_init__(self) -> None:
        if self.format not in _FORMATS:
            raise ValueError(f"format must be one of {_FORMATS}, got {self.format!r}")
        check_int("shard_bytes", self.shard_bytes, 1)
        check_int("row_group_bytes", self.row_group_bytes, 1)
        check_int("split_bytes", self.split_bytes, 1 << 16)


#: The default tokenizer: canonical k=31 k-mers hashed (ntHash) into 2^20 buckets, no special tokens.
DEFAULT_TOKENIZER = TokenizerConfig(scheme="hashed", k=31, buckets=1 << 20, prefix=(), suffix=())
#: The default table: 128-wide float16 rows drawn from a seeded normal, never stored (virtual).
DEFAULT_TABLE = TableConfig(dim=128, dtype="float16", init="normal", seed=0, scale=1.0)

_STAGES: dict[str, tuple[type[StageConfig], StageConfig]] = {
    "read": (ReadConfig, ReadConfig()),
    "clean": (CleanConfig, CleanConfig()),
    "tokenizer": (TokenizerConfig, DEFAULT_TOKENIZER),
    "table": (TableConfig, DEFAULT_TABLE),
    "embed": (EmbedConfig, EmbedConfig()),
    "output": (OutputConfig, OutputConfig()),
}


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Every stage's config. ``PipelineConfig.from_dict({"tokenizer": {"k": 21}, "embed": {"pool":
    "none"}})`` changes only the named fields of the defaults; ``load(path)`` reads the same from a
    ``.toml`` or ``.json`` file. ``table.rows`` = 0 (default) means the tokenizer's vocabulary size."""

    read: ReadConfig = _STAGES["read"][1]
    clean: CleanConfig = _STAGES["clean"][1]
    tokenizer: TokenizerConfig = DEFAULT_TOKENIZER
    table: TableConfig = DEFAULT_TABLE
    embed: EmbedConfig = _STAGES["embed"][1]
    output: OutputConfig = _STAGES["output"][1]

    def __post_init__(self) -> None:
        for name, (cls, _) in _STAGES.items():
            if not isinstance(getattr(self, name), cls):
                raise TypeError(f"PipelineConfig.{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).to_dict() for name in _STAGES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        if not isinstance(data, dict):
            raise TypeError(f"a pipeline config must be a dict of stage sections, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_STAGES))
        if unknown:
            raise ValueError(f"unknown config section(s) {unknown}; valid sections: {sorted(_STAGES)}")
        stages = {}
        for name, (stage_cls, default) in _STAGES.items():
            section = data.get(name, {})
            if not isinstance(section, dict):
                raise TypeError(f"config section [{name}] must be a table/dict, got {type(section).__name__}")
            stages[name] = stage_cls.from_dict({**default.to_dict(), **section})
        return cls(**stages)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PipelineConfig:
        """A config from a ``.toml`` or ``.json`` file (sections: read, clean, tokenizer, table, embed,
        output). Raises ValueError naming the file on a parse error or an unknown option."""
        p = os.fspath(path)
        with open(p, "rb") as f:
            raw = f.read()
        try:
            if p.endswith(".toml"):
                import tomllib

                data = tomllib.loads(raw.decode())
            elif p.endswith(".json"):
                data = json.loads(raw)
            else:
                raise ValueError("the file name must end in .toml or .json")
            return cls.from_dict(data)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{p}: {e}") from None

    @classmethod
    def coerce(cls, config: Any) -> PipelineConfig:
        """``config`` as a PipelineConfig: None (defaults), a PipelineConfig, a dict or a file path."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, dict):
            return cls.from_dict(config)
        if isinstance(config, (str, os.PathLike)):
            return cls.load(config)
        raise TypeError(f"config must be None, a PipelineConfig, a dict or a path, got {type(config).__name__}")

    def digest(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def diff(self, other: dict[str, Any]) -> list[str]:
        """``section.option: other -> self`` for each option that differs from the dict ``other``."""
        mine = self.to_dict()
        out = []
        for section in sorted(set(mine) | set(other)):
            a, b = other.get(section, {}), mine.get(section, {})
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    out.append(f"{section}.{key}: {a.get(key)!r} -> {b.get(key)!r}")
        return out
