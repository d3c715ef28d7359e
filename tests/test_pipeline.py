"""kmerx.pipeline (``kmerx embed``): determinism across engines and worker counts, outputs readable
without kmerx, embeddings equal to the kernels', every read exactly once, the manifest, resume and
conflicts, bad input, the command line, the config, and edge cases.

One Ray session serves the whole module and only a few Ray runs are made (their outputs are shared by
module-scoped fixtures); everything else runs on the in-process engine, whose shards must be
byte-identical to Ray's."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reference import shared

import kmerx
from kmerx.formats import manifest as manifest_mod
from kmerx.pipeline import EmbedConfig, OutputConfig, OutputConflictError, PipelineConfig, plan, run

ROOT = pathlib.Path(__file__).resolve().parents[1]
R1 = ROOT / "data" / "ecoli_1K_1.fq.gz"
R2 = ROOT / "data" / "ecoli_1K_2.fq.gz"
N_PAIRS = 2054
SRR = "unit/SRR059298_first2k.fastq"  # 2,000 reads of 72 bp, ~485 KiB, plain
N_SRR = 2000

# A small vocabulary (a 1 MiB table instead of 256 MiB), shards of 367 pairs (6 shards), row groups of 91.
BASE = {"tokenizer": {"buckets": 4096}, "output": {"shard_bytes": 200_000, "row_group_bytes": 50_000}}
N_BASE_SHARDS = 6
# Per-token HDF5 of a plain file read as 8 byte ranges, 2 shards per range.
SRR_TOKENS = {"tokenizer": {"buckets": 4096}, "table": {"dim": 32}, "embed": {"pool": "none"},
              "output": {"format": "hdf5", "split_bytes": 65536, "shard_bytes": 1_000_000}}


# ---------------------------------------------------------------------------------------------- helpers

def parts(out) -> list[pathlib.Path]:
    return sorted(pathlib.Path(out).glob("part-*"))


def digests(out) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in parts(out)}


def parquet_table(out) -> pa.Table:
    tables = [pq.read_table(p).replace_schema_metadata(None) for p in parts(out)]
    return pa.concat_tables(tables)


def vectors(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A fixed_size_list<float, dim> column as an [n, dim] array."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return arr.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)


def read_hdf5(path) -> dict[str, np.ndarray]:
    import h5py

    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in ("read_index", "name", "n_tokens", "embedding")}


def input_pairs() -> tuple[list[str], list[bytes], list[bytes]]:
    names, s1, s2 = [], [], []
    for a, b in kmerx.read_pairs(str(R1), str(R2)):
        names += a.column("name").to_pylist()
        s1 += a.column("seq").to_pylist()
        s2 += b.column("seq").to_pylist()
    return names, s1, s2


def input_reads(path) -> tuple[list[str], list[bytes]]:
    names, seqs = [], []
    for b in kmerx.read(str(path)):
        names += b.column("name").to_pylist()
        seqs += b.column("seq").to_pylist()
    return names, seqs


def token_ids(cfg: PipelineConfig, mates: list[bytes]) -> np.ndarray:
    """The k-mer ids of one read (its mates' tokens in order), straight from the tokenizer."""
    from kmerx.tokenizers import Tokenizer

    enc = Tokenizer(cfg.tokenizer).encode_batch([bytes(m) for m in mates], add_special_tokens=False,
                                                return_tensors="arrow")
    return np.concatenate([np.asarray(x, dtype=np.uint32) for x in enc["input_ids"].to_pylist()])


def kernel_table(cfg: PipelineConfig):
    from kmerx.tables import EmbeddingTable
    from kmerx.tokenizers import Tokenizer

    return EmbeddingTable.from_config(cfg.table.replace(rows=Tokenizer(cfg.tokenizer).vocab_size))


def kmerx_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="error")
    return subprocess.run([sys.executable, "-m", "kmerx", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=ROOT)


def cli(capsys, *args) -> tuple[int, str, str]:
    """``kmerx ARGS`` in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    from kmerx.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def write_fastq(path, records) -> pathlib.Path:
    path = pathlib.Path(path)
    path.write_text("".join(f"@{n}\n{s}\n+\n{'I' * len(s)}\n" for n, s in records))
    return path


# --------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ray_session():
    """One local Ray for the module (run() uses an initialised Ray as it is)."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")
        mp.setenv("RAY_BACKEND_LOG_LEVEL", "fatal")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            yield ray
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def local_parquet(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    return run([R1, R2], out, BASE, paired=True, engine="local")


@pytest.fixture(scope="module")
def ray_parquet_w1(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray1") / "out"
    return run([R1, R2], out, BASE, paired=True, workers=1)


@pytest.fixture(scope="module")
def ray_parquet_w2(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray2") / "out"
    return run([(R1, R2)], out, BASE, workers=2)


@pytest.fixture(scope="module")
def srr_tokens_local(tmp_path_factory):
    out = tmp_path_factory.mktemp("srr_local") / "out"
    return run(shared(SRR), out, SRR_TOKENS, engine="local")


@pytest.fixture(scope="module")
def srr_tokens_ray(ray_session, tmp_path_factory):
    path = shared(SRR)
    out = tmp_path_factory.mktemp("srr_ray") / "out"
    return run(path, out, SRR_TOKENS, workers=2)


@pytest.fixture(scope="module")
def srr_pooled(tmp_path_factory):
    """The SRR file, mean-pooled (dim 128): read whole (one unit) and as 8 byte ranges; and per token."""
    path = shared(SRR)
    base = tmp_path_factory.mktemp("srr_pooled")
    cfg = {"tokenizer": {"buckets": 4096}, "output": {"shard_bytes": 100_000}}
    whole = run(path, base / "whole", cfg, engine="local")
    split = run(path, base / "split", {**cfg, "output": {**cfg["output"], "split_bytes": 65536}}, engine="local")
    tokens = run(path, base / "tokens", {**cfg, "embed": {"pool": "none"}, "output": {"shard_bytes": 10_000_000}},
                 engine="local")
    return whole, split, tokens


class _Crash(Exception):
    pass


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """OUT of a local run that died while writing shard 3 (shards 0-2 done, receipts written, no manifest)."""
    from kmerx.pipeline import stages

    out = tmp_path_factory.mktemp("interrupted") / "out"
    original = stages.Embedder.write_shard

    def write_shard(self, shard, first_read, batch):
        if shard == 3:
            raise _Crash("simulated crash while writing shard 3")
        return original(self, shard, first_read, batch)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stages.Embedder, "write_shard", write_shard)
        with pytest.raises(_Crash):
            run([R1, R2], out, BASE, paired=True, engine="local")
    return out


# ---------------------------------------------------------------------------------------- 1 determinism

@pytest.mark.slow
def test_parquet_shards_identical_across_engines_and_workers(local_parquet, ray_parquet_w1, ray_parquet_w2):
    expected = digests(local_parquet.out)
    assert len(expected) == N_BASE_SHARDS
    assert digests(ray_parquet_w1.out) == expected
    assert digests(ray_parquet_w2.out) == expected
    listing = sorted(p.name for p in pathlib.Path(local_parquet.out).iterdir())
    for r in (ray_parquet_w1, ray_parquet_w2):
        assert sorted(p.name for p in pathlib.Path(r.out).iterdir()) == listing  # no _kmerx, no temp files
        assert r.manifest["shards"] == local_parquet.manifest["shards"]
        assert r.manifest["run_digest"] == local_parquet.manifest["run_digest"]
        assert r.shards_written == N_BASE_SHARDS and r.shards_skipped == 0


@pytest.mark.slow
def test_hdf5_shards_identical_ray_and_local(srr_tokens_local, srr_tokens_ray):
    local, ray_out = srr_tokens_local.out, srr_tokens_ray.out
    assert len(srr_tokens_local.manifest["shards"]) == 16  # 8 byte ranges x 2 shards
    for p in parts(local):
        a, b = read_hdf5(p), read_hdf5(pathlib.Path(ray_out) / p.name)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{p.name}:{name}")
    # The files themselves (no timestamps) and the manifests' checksums.
    assert digests(ray_out) == digests(local)
    assert srr_tokens_ray.manifest["shards"] == srr_tokens_local.manifest["shards"]
    a, b = read_hdf5(pathlib.Path(local) / "all.h5"), read_hdf5(pathlib.Path(ray_out) / "all.h5")
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"all.h5:{name}")


def test_mate_tuples_equal_paired_flag(local_parquet, tmp_path):
    r = run([(str(R1), str(R2))], tmp_path / "out", BASE, engine="local")
    assert digests(r.out) == digests(local_parquet.out)


# ------------------------------------------------------------------------------- 2 readable without kmerx

def test_parquet_schema_and_metadata(local_parquet):
    m = local_parquet.manifest
    for i, p in enumerate(parts(local_parquet.out)):
        s = pq.read_schema(p)
        assert s.field("read_index").type == pa.int64()
        assert s.field("name").type == pa.string()
        assert s.field("n_tokens").type == pa.int32()
        assert s.field("embedding").type == pa.list_(pa.float32(), 128)
        assert s.names == ["read_index", "name", "n_tokens", "embedding"]
        meta = json.loads(s.metadata[b"kmerx"])
        assert meta["dim"] == 128 and meta["dtype"] == "float32" and meta["pool"] == "mean"
        assert meta["run_digest"] == m["run_digest"]
        assert meta["shard"] == i and meta["first_read"] == m["shards"][i]["first_read_index"]
        # Parquet names a list's child "element" where the writer's Arrow schema says "item".
        assert str(s.remove_metadata()).replace("element:", "item:") == m["schema"]
        f = pq.ParquetFile(p)
        assert f.metadata.num_row_groups > 1  # row_group_bytes=50_000 -> 91 reads per group
        assert all(f.metadata.row_group(g).num_rows <= m["row_group_rows"] for g in range(f.metadata.num_row_groups))


def test_duckdb_reads_the_shards(local_parquet):
    duckdb = pytest.importorskip("duckdb")
    glob = os.path.join(local_parquet.out, "*.parquet")
    con = duckdb.connect()
    try:
        n, lo, hi, tokens = con.execute(f"select count(*), min(read_index), max(read_index), sum(n_tokens) "
                                    f"from '{glob}'").fetchone()
        assert (n, lo, hi, tokens) == (N_PAIRS, 0, N_PAIRS - 1, local_parquet.manifest["reads"]["tokens"])
        rows = con.execute(f"select read_index, name, embedding from '{glob}' where read_index in (0, 1000, 2053) "
                       "order by read_index").fetchall()
    finally:
        con.close()
    table = parquet_table(local_parquet.out)
    emb = vectors(table.column("embedding"), 128)
    names = table.column("name").to_pylist()
    assert [r[0] for r in rows] == [0, 1000, 2053]
    for ri, name, vec in rows:
        assert name == names[ri]
        np.testing.assert_array_equal(np.asarray(vec, dtype=np.float32), emb[ri])


@pytest.mark.slow
def test_h5py_reads_shards_and_virtual_dataset(srr_tokens_ray):
    import h5py

    out = pathlib.Path(srr_tokens_ray.out)
    shards = [read_hdf5(p) for p in parts(out)]
    with h5py.File(out / "all.h5", "r") as f:
        assert f.attrs["per_token"] == 1 and f.attrs["dim"] == 32
        assert f["embedding"].shape == (srr_tokens_ray.manifest["reads"]["tokens"], 32)
        for name in ("read_index", "name", "n_tokens", "embedding"):
            np.testing.assert_array_equal(f[name][()], np.concatenate([s[name] for s in shards]), err_msg=name)
    with h5py.File(parts(out)[0], "r") as f:
        assert f["embedding"].dtype == np.float32 and f["read_index"].dtype == np.int64
        assert f["n_tokens"].dtype == np.int32
        assert f.attrs["rows"] == len(f["read_index"]) and f.attrs["tokens"] == len(f["embedding"])
    for s in shards:  # per token: [T, dim] rows, n_tokens telling where each read ends
        assert int(s["n_tokens"].sum()) == len(s["embedding"])


def test_per_token_lists_and_mean_of_tokens(srr_pooled):
    _, pooled, tokens = srr_pooled
    t = parquet_table(tokens.out)
    assert t.schema.field("embedding").type == pa.list_(pa.list_(pa.float32(), 128))
    lengths = t.column("embedding").combine_chunks().value_lengths().to_numpy()
    np.testing.assert_array_equal(lengths, t.column("n_tokens").to_numpy())
    assert tokens.manifest["embedding"]["mode"] == "per_token"
    assert tokens.manifest["reads"]["tokens"] == int(lengths.sum())
    p = parquet_table(pooled.out)
    np.testing.assert_array_equal(p.column("read_index").to_numpy(), t.column("read_index").to_numpy())
    means = vectors(p.column("embedding"), 128)
    per_token = t.column("embedding").combine_chunks()
    for ri in (0, 1, 777, N_SRR - 1):
        rows = vectors(per_token[ri].values, 128)
        assert len(rows) == t.column("n_tokens")[ri].as_py() > 0
        np.testing.assert_allclose(means[ri], rows.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------------------- 3 the embeddings

def test_pooled_vectors_equal_the_kernels(local_parquet):
    cfg = PipelineConfig.from_dict(BASE)
    names, s1, s2 = input_pairs()
    t = parquet_table(local_parquet.out)
    emb = vectors(t.column("embedding"), 128)
    n_tokens = t.column("n_tokens").to_numpy()
    picks = [0, 1, 366, 367, 1500, N_PAIRS - 1]  # both sides of a shard boundary, the last pair
    ids = [token_ids(cfg, [s1[i], s2[i]]) for i in picks]
    expected = kmerx.embed.embed(kernel_table(cfg), pa.array([x.tolist() for x in ids], pa.large_list(pa.uint32())),
                                 pool="mean", out_dtype=np.float32, return_type="numpy")
    for j, i in enumerate(picks):
        assert n_tokens[i] == len(ids[j])
        np.testing.assert_array_equal(emb[i], expected[j], err_msg=f"pair {i}")


@pytest.mark.slow
def test_per_token_vectors_are_table_rows(srr_tokens_ray):
    cfg = PipelineConfig.from_dict(SRR_TOKENS)
    table = kernel_table(cfg)
    _, seqs = input_reads(shared(SRR))
    data = read_hdf5(pathlib.Path(srr_tokens_ray.out) / "all.h5")
    ends = np.cumsum(data["n_tokens"])
    for i in (0, 5, 999, N_SRR - 1):
        ids = token_ids(cfg, [seqs[i]])
        rows = data["embedding"][ends[i] - data["n_tokens"][i]:ends[i]]
        expected = kmerx.embed.embed(table, ids.astype(np.uint32), offsets=np.array([0, len(ids)], np.int64),
                                     out_dtype=np.float32, return_type="numpy")
        np.testing.assert_array_equal(rows, expected, err_msg=f"read {i}")


# ------------------------------------------------------------------------------ 4 every read exactly once

@pytest.mark.slow
@pytest.mark.parametrize("which", ["local_parquet", "ray_parquet_w1", "ray_parquet_w2"])
def test_every_pair_exactly_once(which, request):
    result = request.getfixturevalue(which)
    names, _, _ = input_pairs()
    t = parquet_table(result.out)
    np.testing.assert_array_equal(t.column("read_index").to_numpy(), np.arange(N_PAIRS))
    assert t.column("name").to_pylist() == names  # mate 1's name
    m = result.manifest
    assert m["reads"]["input"] == m["reads"]["output"] == N_PAIRS
    assert m["reads"]["tokens"] == int(t.column("n_tokens").to_numpy().sum())


@pytest.mark.slow
def test_every_read_once_over_byte_ranges(srr_tokens_ray):
    names, _ = input_reads(shared(SRR))
    data = read_hdf5(pathlib.Path(srr_tokens_ray.out) / "all.h5")
    np.testing.assert_array_equal(data["read_index"], np.arange(N_SRR))
    assert [n.decode() if isinstance(n, bytes) else n for n in data["name"]] == names


# ------------------------------------------------------------------------------------------ 5 manifest

def test_manifest_contents(local_parquet):
    import importlib.metadata as md

    from kmerx.tokenizers import Tokenizer

    m = local_parquet.manifest
    on_disk = manifest_mod.read(local_parquet.out)
    assert on_disk == m
    cfg = PipelineConfig.from_dict(BASE)
    assert m["kind"] == "kmerx-embeddings"
    assert m["config"] == cfg.to_dict() and m["config_digest"] == cfg.digest()
    assert set(m["config"]) == {"read", "clean", "tokenizer", "table", "embed", "output"}
    assert m["embedding"] == {"mode": "pooled", "pool": "mean", "dim": 128, "dtype": "float32",
                              "vocab_size": Tokenizer(cfg.tokenizer).vocab_size}
    assert m["format"] == "parquet" and m["columns"] == ["read_index", "name", "n_tokens", "embedding"]
    assert m["versions"]["kmerx"] == kmerx.__version__
    for pkg in ("numpy", "pyarrow", "ray", "h5py"):
        assert m["versions"][pkg] == md.version(pkg)
    assert manifest_mod.verify(local_parquet.out) == []
    assert len(m["shards"]) == N_BASE_SHARDS
    first = 0
    for i, s in enumerate(m["shards"]):
        path = pathlib.Path(local_parquet.out) / s["path"]
        assert s["path"] == f"part-{i:05d}.parquet"
        assert s["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert s["bytes"] == path.stat().st_size
        t = pq.read_table(path)
        assert s["rows"] == t.num_rows == s["reads_in"]
        assert s["tokens"] == int(t.column("n_tokens").to_numpy().sum())
        assert (s["first_read_index"], s["last_read_index"]) == (first, first + s["rows"] - 1)
        first += s["rows"]
    assert first == N_PAIRS
    (g,) = m["inputs"]
    assert [i["path"] for i in g] == [str(R1), str(R2)]
    for info, path in zip(g, (R1, R2)):
        data = path.read_bytes()
        assert info["size"] == len(data) and info["compression"] == "gzip"
        # small files: sha256 of the size and the whole file
        assert info["fingerprint"] == "sha256-ends:" + hashlib.sha256(str(len(data)).encode() + data).hexdigest()
    assert not (pathlib.Path(local_parquet.out) / "_kmerx").exists()
    assert sorted(p.name for p in pathlib.Path(local_parquet.out).iterdir()) == sorted(
        ["manifest.json"] + [s["path"] for s in m["shards"]])


def test_run_result_summary(local_parquet):
    text = local_parquet.summary()
    assert os.path.join(local_parquet.out, "manifest.json") in text
    assert f"{N_BASE_SHARDS} ({N_BASE_SHARDS} written, 0 already done)" in text
    assert f"{N_PAIRS:,} in, {N_PAIRS:,} out" in text


def test_progress_on_stderr(tmp_path, capsys):
    run(R1, tmp_path / "out", BASE, engine="local", progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "embed" in err and "2.05k/2.05k" in err and f"shards {N_BASE_SHARDS}/{N_BASE_SHARDS}" in err


def test_inspect_ok_and_corrupt_shard(local_parquet, tmp_path, capsys):
    r = kmerx_cli("inspect", local_parquet.out)  # once as a user runs it
    assert r.returncode == 0, r.stderr
    assert f"checksums: all {N_BASE_SHARDS} shards match" in r.stdout
    assert "parquet: 6 shards" in r.stdout and str(R1) in r.stdout
    rc, out, _ = cli(capsys, "inspect", local_parquet.out, "--json")
    assert rc == 0
    assert json.loads(out) == local_parquet.manifest

    bad = tmp_path / "bad"
    shutil.copytree(local_parquet.out, bad)
    victim = bad / "part-00002.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    assert manifest_mod.verify(bad) == ["part-00002.parquet: sha256 differs from the manifest's"]
    rc, _, err = cli(capsys, "inspect", bad)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmerx: error: ") and "part-00002.parquet" in lines[0]
    assert "part-00001" not in lines[0]
    (bad / "part-00004.parquet").unlink()
    assert cli(capsys, "inspect", bad, "--no-verify")[0] == 0
    rc, _, err = cli(capsys, "inspect", bad)
    assert rc == 1 and "part-00004.parquet: missing" in err


# ------------------------------------------------------------------------------- 6 resume and conflicts

def test_rerun_is_already_complete(local_parquet):
    before = digests(local_parquet.out)
    r = run([R1, R2], local_parquet.out, BASE, paired=True, engine="local")
    assert r.already_complete and r.shards_written == 0 and r.shards_skipped == N_BASE_SHARDS
    assert r.manifest == local_parquet.manifest
    assert digests(local_parquet.out) == before


@pytest.mark.slow
def test_rerun_with_ray_is_already_complete(ray_parquet_w2):
    r = run([R1, R2], ray_parquet_w2.out, BASE, paired=True, workers=2)
    assert r.already_complete and r.shards_written == 0


def test_interrupted_run_leaves_no_manifest(interrupted, capsys):
    names = sorted(p.name for p in interrupted.iterdir())
    assert names == ["_kmerx", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sorted(p.name for p in (interrupted / "_kmerx" / "done").iterdir()) == [
        "part-00000.json", "part-00001.json", "part-00002.json"]
    with pytest.raises(FileNotFoundError, match="incomplete"):
        manifest_mod.read(interrupted)
    rc, _, err = cli(capsys, "inspect", interrupted)
    assert rc == 1 and "no manifest" in err


def test_resume_writes_only_missing_shards(interrupted, local_parquet, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(interrupted, out)
    (out / "part-00001.parquet").unlink()  # its receipt stays: rewritten all the same
    (out / "_kmerx" / "done" / "part-00002.json").unlink()  # its shard stays: rewritten
    (out / ".part-00005.parquet.tmp-99999").write_bytes(b"left by a killed worker")
    r = run([R1, R2], out, BASE, paired=True, engine="local")
    assert not r.already_complete
    assert (r.shards_written, r.shards_skipped) == (N_BASE_SHARDS - 1, 1)  # only shard 0 was kept
    assert digests(out) == digests(local_parquet.out)
    assert r.manifest["shards"] == local_parquet.manifest["shards"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in pathlib.Path(local_parquet.out).iterdir())


def test_resume_skips_a_truncated_shard_no_more(interrupted, local_parquet, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(interrupted, out)
    shard = out / "part-00000.parquet"
    shard.chmod(0o644)
    shard.write_bytes(shard.read_bytes()[:100])  # the receipt's size no longer matches: redone
    r = run([R1, R2], out, BASE, paired=True, engine="local")
    assert (r.shards_written, r.shards_skipped) == (4, 2)
    assert digests(out) == digests(local_parquet.out)


@pytest.mark.slow
def test_resume_with_ray(interrupted, local_parquet, ray_session, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(interrupted, out)
    r = run([R1, R2], out, BASE, paired=True, workers=2)
    assert (r.shards_written, r.shards_skipped) == (3, 3)
    assert digests(out) == digests(local_parquet.out)
    assert r.manifest["shards"] == local_parquet.manifest["shards"]


def test_other_config_into_complete_output_is_refused(local_parquet):
    other = {**BASE, "tokenizer": {"buckets": 4096, "k": 21}}
    with pytest.raises(OutputConflictError, match=r"tokenizer\.k: 31 -> 21") as e:
        run([R1, R2], local_parquet.out, other, paired=True, engine="local")
    assert local_parquet.out in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(OutputConflictError, match="inputs differ"):
        run([R2, R1], local_parquet.out, BASE, paired=True, engine="local")


def test_other_config_into_unfinished_output_is_refused(interrupted, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(interrupted, out)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(OutputConflictError, match=r"unfinished.*embed\.pool: 'mean' -> 'max'"):
        run([R1, R2], out, {**BASE, "embed": {"pool": "max"}}, paired=True, engine="local")
    assert sorted(p.name for p in out.iterdir()) == before


def test_non_kmerx_output_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputConflictError, match="not empty"):
        run([R1, R2], out, BASE, paired=True, engine="local")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (out / "notes.txt").unlink()
    (out / ".hidden").write_text("")  # hidden files do not count
    r = run([R1, R2], out, BASE, paired=True, engine="local")
    assert len(r.manifest["shards"]) == N_BASE_SHARDS


# ------------------------------------------------------------------------------------------ 7 bad input

BAD_RECORDS = {
    "missing_plus": ("@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nACGTACGTAC\nIIIIIIIIII\n@r3\nACGT\n+\nIIII\n",
                     "record 2"),
    "short_qual": ("@r1\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nACGTACGTAC\n+\nIIIII\n", "record 2"),
}


@pytest.mark.parametrize("engine", ["local", pytest.param("ray", marks=pytest.mark.slow)])
@pytest.mark.parametrize("kind", sorted(BAD_RECORDS))
def test_bad_record_stops_the_run(kind, engine, tmp_path, request):
    if engine == "ray":
        request.getfixturevalue("ray_session")
    text, where = BAD_RECORDS[kind]
    bad = tmp_path / "bad.fq"
    bad.write_text(text)
    out = tmp_path / "out"
    with pytest.raises(kmerx.FastxFormatError) as e:
        run(bad, out, BASE, engine=engine)
    assert str(bad) in str(e.value) and where in str(e.value)
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("part-*")) and not list(out.glob(".part-*"))


def test_bad_record_in_a_later_file_writes_nothing(tmp_path):
    bad = tmp_path / "bad.fq"
    bad.write_text(BAD_RECORDS["short_qual"][0])
    out = tmp_path / "out"
    with pytest.raises(kmerx.FastxFormatError, match="bad.fq"):
        run([R1, bad], out, BASE, engine="local")
    assert not out.exists() or not any(out.iterdir())


def test_mismatched_mates_stop_the_run(tmp_path):
    r2 = write_fastq(tmp_path / "r2.fq", [("other", "ACGT" * 10)])
    with pytest.raises(kmerx.FastxFormatError):
        run([R1, r2], tmp_path / "out", BASE, paired=True, engine="local")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_cli_bad_record_one_line_error(tmp_path):
    bad = tmp_path / "bad.fq"
    bad.write_text(BAD_RECORDS["missing_plus"][0])
    # The default engine (Ray): the inputs are parsed before Ray starts.
    r = kmerx_cli("embed", bad, "-o", tmp_path / "out", "--set", "tokenizer.buckets=4096", timeout=180)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("kmerx: error: ") and str(bad) in lines[0] and "record 2" in lines[0]
    assert r.stdout == ""
    assert not (tmp_path / "out" / "manifest.json").exists()


# ------------------------------------------------------------------------------------------------ 8 CLI

@pytest.mark.slow
def test_cli_embed_default_config_summary(tmp_path):
    out = tmp_path / "out"
    r = kmerx_cli("embed", "data/ecoli_1K_1.fq.gz", "data/ecoli_1K_2.fq.gz", "--paired", "-o", out, "--local")
    assert r.returncode == 0, r.stderr
    assert str(out / "manifest.json") in r.stdout
    assert f"{N_PAIRS:,} in, {N_PAIRS:,} out" in r.stdout
    m = manifest_mod.read(out)
    assert m["config"] == PipelineConfig().to_dict()
    assert m["embedding"]["dim"] == 128 and m["embedding"]["dtype"] == "float32"
    assert manifest_mod.verify(out) == []
    r = kmerx_cli("embed", "data/ecoli_1K_1.fq.gz", "data/ecoli_1K_2.fq.gz", "--paired", "-o", out, "--local")
    assert r.returncode == 0, r.stderr
    assert "already complete" in r.stderr


def test_cli_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    r = kmerx_cli("embed", R1, R2, "--paired", "-o", out, "--dry-run", *sum((["--set", f"{k}={v}"] for k, v in (
        ("tokenizer.buckets", 4096), ("output.shard_bytes", 200_000), ("output.row_group_bytes", 50_000))), []))
    assert r.returncode == 0, r.stderr
    p = plan([R1, R2], BASE, paired=True)
    assert f"plan for {out}" in r.stdout and p["run_digest"] in r.stdout
    assert f"{N_PAIRS:,}" in r.stdout and "2 files" in r.stdout
    assert f"shards      {N_BASE_SHARDS} x up to {p['reads_per_shard']:,} reads" in r.stdout
    assert "output      about" in r.stdout
    assert not out.exists()
    assert len(p["shards"]) == N_BASE_SHARDS and p["reads"] == N_PAIRS


def test_cli_per_token_hdf5_with_set(tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = cli(capsys, "embed", R1, R2, "--paired", "-o", out, "--local", "--set", "tokenizer.k=21",
                          "--per-token", "--format", "hdf5", "--set", "tokenizer.buckets=4096", "--set", "table.dim=16")
    assert rc == 0, err
    assert str(out / "manifest.json") in stdout
    m = manifest_mod.read(out)
    assert m["config"]["tokenizer"]["k"] == 21 and m["config"]["embed"]["pool"] == "none"
    assert m["format"] == "hdf5" and m["embedding"]["mode"] == "per_token" and m["embedding"]["dim"] == 16
    assert m["virtual_dataset"] == "all.h5"
    data = read_hdf5(out / "all.h5")
    np.testing.assert_array_equal(data["read_index"], np.arange(N_PAIRS))
    assert data["embedding"].shape == (m["reads"]["tokens"], 16) == (int(data["n_tokens"].sum()), 16)
    assert manifest_mod.verify(out) == []


def test_cli_config_file(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('[tokenizer]\nk = 15\nbuckets = 4096\n\n[embed]\npool = "max"\n\n[output]\nshard_bytes = 400000\n')
    out = tmp_path / "out"
    rc, _, err = cli(capsys, "embed", R1, "-o", out, "--local", "--config", cfg, "--set", 'embed.pool="sum"')
    assert rc == 0, err
    m = manifest_mod.read(out)
    expected = PipelineConfig.from_dict({"tokenizer": {"k": 15, "buckets": 4096}, "embed": {"pool": "sum"},
                                         "output": {"shard_bytes": 400_000}})
    assert m["config"] == expected.to_dict()  # --set overrides the file
    assert m["reads"]["input"] == N_PAIRS and m["embedding"]["pool"] == "sum"


@pytest.mark.parametrize("args,named", [
    (["--set", "tokenizer.kk=3"], "kk"),
    (["--set", "nosuch.k=3"], "nosuch"),
    (["--set", "tokenizerk=3"], "tokenizerk=3"),
    (["--set", "embed.pool=avg"], "avg"),
    (["--set", "output.split_bytes=10"], "split_bytes"),
])
def test_cli_bad_option_names_it(args, named, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = cli(capsys, "embed", R1, "-o", out, "--local", *args)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmerx: error: ") and named in lines[0], err
    assert not out.exists()


def test_cli_bad_config_file_names_file_and_option(tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("[embed]\npooling = \"max\"\n")
    rc, _, err = cli(capsys, "embed", R1, "-o", tmp_path / "out", "--local", "--config", cfg)
    assert rc == 1
    assert err.startswith("kmerx: error: ") and str(cfg) in err and "pooling" in err


# --------------------------------------------------------------------------------------------- 9 config

def test_config_round_trips(tmp_path):
    cfg = PipelineConfig.from_dict({"tokenizer": {"k": 21}, "embed": {"pool": "none", "out_dtype": "float16"},
                                    "output": {"format": "hdf5", "shard_bytes": 12345}, "clean": {"min_length": 5}})
    assert cfg.tokenizer.k == 21 and cfg.embed.per_token and cfg.output.shard_bytes == 12345
    assert cfg.table == PipelineConfig().table  # untouched sections keep the defaults
    assert PipelineConfig.from_dict(cfg.to_dict()) == cfg
    assert PipelineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert PipelineConfig.load(path) == cfg == PipelineConfig.coerce(str(path)) == PipelineConfig.coerce(cfg.to_dict())
    toml = tmp_path / "c.toml"
    toml.write_text('[tokenizer]\nk = 21\n[embed]\npool = "none"\nout_dtype = "float16"\n'
                    '[output]\nformat = "hdf5"\nshard_bytes = 12345\n[clean]\nmin_length = 5\n')
    assert PipelineConfig.load(toml) == cfg
    assert PipelineConfig.coerce(None) == PipelineConfig() == PipelineConfig.from_dict({})


def test_config_digest_stable():
    a = PipelineConfig.from_dict({"tokenizer": {"k": 21}, "embed": {"pool": "max"}})
    b = PipelineConfig.from_dict({"embed": {"pool": "max"}, "tokenizer": {"k": 21}})
    assert a.digest() == b.digest() == PipelineConfig.from_dict(json.loads(json.dumps(a.to_dict()))).digest()
    assert len(a.digest()) == 16 and int(a.digest(), 16) >= 0
    assert a.digest() != PipelineConfig().digest()
    assert PipelineConfig().digest() == PipelineConfig.from_dict({}).digest()
    assert a.diff(PipelineConfig().to_dict()) == ["embed.pool: 'mean' -> 'max'", "tokenizer.k: 31 -> 21"]


def test_config_unknown_names_raise(tmp_path):
    with pytest.raises(ValueError, match="nosuch"):
        PipelineConfig.from_dict({"nosuch": {}})
    with pytest.raises(ValueError, match="bogus"):
        PipelineConfig.from_dict({"embed": {"bogus": 1}})
    with pytest.raises(ValueError, match="shard_byte"):
        PipelineConfig.from_dict({"output": {"shard_byte": 1}})
    with pytest.raises(TypeError):
        PipelineConfig.from_dict({"embed": "mean"})
    with pytest.raises(TypeError):
        PipelineConfig.from_dict([("embed", {})])
    with pytest.raises(TypeError, match="tokenizer"):
        PipelineConfig(tokenizer=EmbedConfig())
    p = tmp_path / "c.toml"
    p.write_text("[table]\ndims = 4\n")
    with pytest.raises(ValueError, match=r"c\.toml.*dims"):
        PipelineConfig.load(p)
    p = tmp_path / "c.yaml"
    p.write_text("")
    with pytest.raises(ValueError, match=r"c\.yaml"):
        PipelineConfig.load(p)
    p = tmp_path / "broken.toml"
    p.write_text("[embed\n")
    with pytest.raises(ValueError, match=r"broken\.toml"):
        PipelineConfig.load(p)


@pytest.mark.parametrize("cls,kw,field", [
    (EmbedConfig, {"pool": "avg"}, "pool"),
    (EmbedConfig, {"pos_encoding": "rope"}, "pos_encoding"),
    (EmbedConfig, {"out_dtype": "float64"}, "out_dtype"),
    (EmbedConfig, {"add_special_tokens": "False"}, "add_special_tokens"),
    (OutputConfig, {"format": "csv"}, "format"),
    (OutputConfig, {"shard_bytes": 0}, "shard_bytes"),
    (OutputConfig, {"row_group_bytes": -1}, "row_group_bytes"),
    (OutputConfig, {"split_bytes": 1000}, "split_bytes"),
    (OutputConfig, {"shard_bytes": 1.5}, "shard_bytes"),
])
def test_stage_config_bad_values_name_the_field(cls, kw, field):
    with pytest.raises((ValueError, TypeError), match=field):
        cls(**kw)
    with pytest.raises((ValueError, TypeError), match=field):
        PipelineConfig.from_dict({"embed" if cls is EmbedConfig else "output": kw})


def test_run_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="engine"):
        run(R1, tmp_path / "o", BASE, engine="spark")
    with pytest.raises(ValueError, match="workers"):
        run(R1, tmp_path / "o", BASE, engine="local", workers=0)
    with pytest.raises(ValueError, match="gpus"):
        run(R1, tmp_path / "o", BASE, engine="local", gpus=-1)
    with pytest.raises(FileNotFoundError, match="nope.fq"):
        run(tmp_path / "nope.fq", tmp_path / "o", BASE, engine="local")
    with pytest.raises(ValueError, match="even number"):
        run([R1], tmp_path / "o", BASE, paired=True, engine="local")
    with pytest.raises(ValueError, match="needs fitting"):
        run(R1, tmp_path / "o", {"tokenizer": {"scheme": "vocab"}}, engine="local")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------- 10 edges

@pytest.mark.parametrize("fmt", ["parquet", "hdf5"])
def test_empty_input_gives_zero_shards(fmt, tmp_path, capsys):
    empty = tmp_path / "empty.fq"
    empty.write_text("")
    out = tmp_path / "out"
    r = run(empty, out, {**BASE, "output": {"format": fmt}}, engine="local")
    m = r.manifest
    assert m["shards"] == [] and m["reads"] == {"input": 0, "output": 0, "tokens": 0}
    assert m["inputs"][0][0]["size"] == 0
    assert manifest_mod.verify(out) == []
    assert not list(out.glob("part-*"))
    if fmt == "hdf5":
        data = read_hdf5(out / "all.h5")
        assert len(data["read_index"]) == 0 and data["embedding"].shape == (0, 128)
    rc, stdout, err = cli(capsys, "inspect", out)
    assert rc == 0 and "all 0 shards match" in stdout, err


def test_empty_gzip_input(tmp_path):
    empty = tmp_path / "empty.fq.gz"
    empty.write_bytes(gzip.compress(b""))
    r = run(empty, tmp_path / "out", BASE, engine="local")
    assert r.manifest["shards"] == [] and r.manifest["reads"]["input"] == 0


SHORT = [("short", "ACGT"), ("exact", "A" * 30 + "C"), ("long", "ACGTTGCA" * 5), ("empty", ""),
         ("k_minus_1", "G" * 30)]


@pytest.mark.parametrize("pool", ["mean", "sum", "max"])
def test_reads_shorter_than_k_pool_to_zeros(pool, tmp_path):
    fq = write_fastq(tmp_path / "short.fq", SHORT)
    out = tmp_path / "out"
    r = run(fq, out, {**BASE, "embed": {"pool": pool}}, engine="local")
    t = parquet_table(out)
    # The empty read is dropped by clean (drop_empty=True) and counted: input 5, output 4.
    assert r.manifest["reads"]["input"] == 5 and r.manifest["reads"]["output"] == t.num_rows == 4
    assert t.column("read_index").to_pylist() == [0, 1, 2, 4]
    assert t.column("name").to_pylist() == ["short", "exact", "long", "k_minus_1"]
    assert t.column("n_tokens").to_pylist() == [0, 1, 10, 0]
    emb = vectors(t.column("embedding"), 128)
    assert not emb[[0, 3]].any()  # no tokens: a zero vector
    assert emb[[1, 2]].any(axis=1).all()


def test_reads_shorter_than_k_per_token(tmp_path):
    fq = write_fastq(tmp_path / "short.fq", SHORT)
    for fmt in ("parquet", "hdf5"):
        out = tmp_path / fmt
        run(fq, out, {**BASE, "embed": {"pool": "none"}, "output": {"format": fmt}}, engine="local")
        if fmt == "parquet":
            t = parquet_table(out)
            assert [len(x) for x in t.column("embedding").to_pylist()] == [0, 1, 10, 0]
        else:
            data = read_hdf5(out / "all.h5")
            assert data["n_tokens"].tolist() == [0, 1, 10, 0] and data["embedding"].shape == (11, 128)


def test_byte_ranges_equal_one_unit(srr_pooled):
    whole, split, _ = srr_pooled
    p_whole = plan(shared(SRR), whole.manifest["config"])
    p_split = plan(shared(SRR), split.manifest["config"])
    assert len(p_whole["units"]) == 1 and len(p_split["units"]) == 8
    assert [u["byte_range"] for u in p_split["units"]][0][0] == 0
    assert sum(u["reads"] for u in p_split["units"]) == N_SRR
    a, b = parquet_table(whole.out), parquet_table(split.out)
    np.testing.assert_array_equal(a.column("read_index").to_numpy(), np.arange(N_SRR))
    np.testing.assert_array_equal(b.column("read_index").to_numpy(), np.arange(N_SRR))
    assert a.column("name").to_pylist() == b.column("name").to_pylist() == input_reads(shared(SRR))[0]
    assert a.column("n_tokens").equals(b.column("n_tokens"))
    np.testing.assert_array_equal(vectors(a.column("embedding"), 128), vectors(b.column("embedding"), 128))
    assert len(split.manifest["shards"]) > len(whole.manifest["shards"])  # shards never cross a range


def test_float16_output(tmp_path):
    out = tmp_path / "out"
    r = run(R1, out, {**BASE, "embed": {"out_dtype": "float16"}}, engine="local")
    s = pq.read_schema(parts(out)[0])
    assert s.field("embedding").type == pa.list_(pa.float16(), 128)
    assert r.manifest["embedding"]["dtype"] == "float16"
    assert dataclasses.asdict(PipelineConfig.from_dict(r.manifest["config"]).embed)["out_dtype"] == "float16"
