"""``manifest.json``: written last, it makes an output directory complete. It records the schema, dim,
dtype, every shard's rows and sha256, every stage's config, versions and the inputs' fingerprints."""

from __future__ import annotations

import json
import os
from typing import Any

from kmerx.formats import atomic_path, sha256_file

NAME = "manifest.json"
KIND = "kmerx-embeddings"


def write(out: str | os.PathLike, manifest: dict[str, Any]) -> str:
    path = os.path.join(os.fspath(out), NAME)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    return path


def read(out: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an output directory (or the path of a manifest file). Raises FileNotFoundError
    when there is none (an incomplete run) and ValueError when it is not a kmerx manifest."""
    p = os.fspath(out)
    path = p if p.endswith(".json") else os.path.join(p, NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no manifest: the output is incomplete (re-run the same command to finish it)")
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as e:
        raise ValueError(f"{path}: not a JSON manifest: {e}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ValueError(f"{path}: not a kmerx embeddings manifest")
    return data


def verify(out: str | os.PathLike, manifest: dict[str, Any] | None = None) -> list[str]:
    """Problems found re-reading every shard (missing, wrong size or sha256); empty when all match."""
    folder = os.fspath(out)
    m = read(folder) if manifest is None else manifest
    problems = []
    for s in m["shards"]:
        path = os.path.join(folder, s["path"])
        if not os.path.exists(path):
            problems.append(f"{s['path']}: missing")
        elif os.path.getsize(path) != s["bytes"]:
            problems.append(f"{s['path']}: {os.path.getsize(path)} bytes, the manifest says {s['bytes']}")
        elif sha256_file(path) != s["sha256"]:
            problems.append(f"{s['path']}: sha256 differs from the manifest's")
    return problems


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def summary(m: dict[str, Any]) -> str:
    """A human-readable summary of a manifest."""
    shards = m["shards"]
    emb = m["embedding"]
    lines = [
        f"kmerx {m['kmerx_version']} embeddings, config {m['config_digest']}",
        f"  {emb['mode']}: dim {emb['dim']}, {emb['dtype']}" + (f", pool {emb['pool']}" if emb["pool"] != "none" else ""),
        f"  {m['format']}: {len(shards)} shards, {_size(sum(s['bytes'] for s in shards))}, "
        f"row groups of {m['row_group_rows']} reads",
        f"  reads: {m['reads']['input']:,} in, {m['reads']['output']:,} out, {m['reads']['tokens']:,} tokens",
        "  inputs:",
    ]
    lines += [f"    {i['path']} ({_size(i['size'])}, {i['compression']})" for group in m["inputs"] for i in group]
    return "\n".join(lines)
