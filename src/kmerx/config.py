"""Base for the per-stage configs (ReadConfig, CleanConfig, ...): frozen dataclasses that round-trip
through JSON and hash to a stable digest, so an output can be named by the config that made it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, TypeVar

T = TypeVar("T", bound="StageConfig")


@dataclasses.dataclass(frozen=True)
class StageConfig:
    """Subclass with ``@dataclasses.dataclass(frozen=True)``; fields hold JSON values (None, bool, int,
    float, str, or tuples of them, which JSON stores as lists). Validate in ``__post_init__``."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(data).__name__}")
        _check_keys(cls, data)
        tuples = {f.name for f in dataclasses.fields(cls) if isinstance(f.default, tuple)}
        kwargs = {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, **kw)

    @classmethod
    def from_json(cls: type[T], text: str | bytes) -> T:
        return cls.from_dict(json.loads(text))

    def replace(self: T, **changes: Any) -> T:
        """A copy with some fields changed; unknown names raise ValueError."""
        _check_keys(type(self), changes)
        return dataclasses.replace(self, **changes)

    def digest(self, length: int = 16) -> str:
        """Hex digest of the canonical JSON (class name included): equal configs, equal digests."""
        text = type(self).__name__ + ":" + json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:length]


def _check_keys(cls: type, data: dict[str, Any]) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown option(s) {unknown}; valid options: {sorted(names)}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
