"""kmerx.hpc under a real mpirun (PyPI mpich): every solver at 1, 2 and 3 ranks (3 oversubscribes this
2-core machine) against a single-process numpy/scipy reference, on Parquet and HDF5 inputs, the
pipeline's own output, and bad input. mpirun's exit status is non-zero when any rank fails."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from reference import subprocess_env

from kmerx import _core
from kmerx.hpc.exact import grid_exponent, sq_dist, sq_dist_pairs
from kmerx.hpc.parts import Embeddings, pieces, span, write_embeddings

ROOT = Path(__file__).resolve().parents[1]
MPIRUN = shutil.which("mpirun", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
needs_mpi = pytest.mark.skipif(MPIRUN is None, reason="mpirun not found (pip install 'kmerx[mpi]': mpi4py + mpich)")
pytest.importorskip("scipy")


def mpirun(n: int, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    # The ranks inherit this environment: the installed kmerx, or PYTHONPATH=src in a development tree.
    p = subprocess.run([MPIRUN, "-n", str(n), sys.executable, "-m", "kmerx.hpc", *args], capture_output=True,
                       text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"mpirun -n {n} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def result(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The result manifest and its columns, shards joined in order."""
    m = json.loads((folder / "manifest.json").read_text())
    cols: dict[str, list] = {}
    for s in m["shards"]:
        path = folder / s["path"]
        if path.suffix == ".h5":
            import h5py

            with h5py.File(path) as f:
                for name in m["columns"]:
                    cols.setdefault(name, []).append(f[name][:])
        else:
            t = pq.read_table(path)
            for name in m["columns"]:
                c = t.column(name).combine_chunks()
                if pa.types.is_fixed_size_list(c.type):
                    cols.setdefault(name, []).append(c.flatten().to_numpy().reshape(len(c), c.type.list_size))
                else:
                    cols.setdefault(name, []).append(c.to_numpy())
    return m, {k: np.concatenate(v) for k, v in cols.items()}


def blobs(n: int = 600, dim: int = 16, centers: int = 5, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 6, (centers, dim))
    truth = rng.integers(centers, size=n)
    return (means[truth] + rng.normal(0, 1, (n, dim))).astype(np.float32), truth


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The same blobs as Parquet (4 shards, row groups that ranks cut through) and HDF5 (2 shards)."""
    x, truth = blobs()
    root = tmp_path_factory.mktemp("hpc")
    write_embeddings(root / "pq", x, shard_rows=150, row_group_rows=64)
    write_embeddings(root / "h5", x, shard_rows=300, row_group_rows=64, fmt="hdf5")
    return root, x, truth


def run_solver(data, ranks: int, solver: str, *opts: str, fmt: str = "pq") -> tuple[dict, dict[str, np.ndarray]]:
    root = data[0]
    out = root / f"{solver}-{fmt}-{ranks}-{'-'.join(opts)}"
    mpirun(ranks, solver, "--input", str(root / fmt), "--output", str(out), *opts)
    return result(out)


def model(m: dict, folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / m["model"]) as z:
        return dict(z)


# ---- the row split -----------------------------------------------------------------------------------

@given(st.lists(st.integers(0, 40), min_size=1, max_size=8), st.integers(1, 9))
@example([0], 3)
@example([5, 0, 0, 7], 9)
def test_ranks_read_every_row_once(shard_rows, ranks):
    total = sum(shard_rows)
    seen = []
    for r in range(ranks):
        lo, hi = span(total, ranks, r)
        assert hi - lo in (total // ranks, -(-total // ranks))
        ps = pieces(shard_rows, lo, hi)
        assert sum(p.hi - p.lo for p in ps) == hi - lo
        for p in ps:
            assert 0 <= p.lo < p.hi <= shard_rows[p.shard]
            seen += [(p.shard, i) for i in range(p.lo, p.hi)]
    assert seen == [(s, i) for s, n in enumerate(shard_rows) for i in range(n)]


@given(st.integers(0, 40), st.integers(1, 9), st.integers(1, 70), st.integers(0, 2**32))
@example(0, 1, 1, 0)
def test_row_wise_distances_do_not_depend_on_the_other_rows(n, m, dim, seed):
    rng = np.random.default_rng(seed)
    x, c = rng.normal(size=(n, dim)) * 10.0 ** rng.integers(-3, 4), rng.normal(size=(m, dim))
    d = sq_dist(x, c)
    np.testing.assert_allclose(d, ((x[:, None] - c[None]) ** 2).sum(axis=2), rtol=1e-12, atol=1e-12)
    for lo, hi in [(0, n // 2), (n // 3, n)]:  # any slice of the rows gives the same bits
        assert np.array_equal(sq_dist(x[lo:hi], c), d[lo:hi])
    if n:
        index = rng.integers(0, m, (n, 3))
        pairs = sq_dist_pairs(x, c, index)
        assert np.array_equal(pairs, np.take_along_axis(d, index, axis=1))
        assert np.array_equal(sq_dist_pairs(c, x, np.zeros((m, 1), np.int64))[:, 0], d[0])  # symmetric
        labels = rng.integers(0, m, n).astype(np.int32)
        sums, counts = _core.sums_by_label(x, labels, m)
        assert np.array_equal(counts, np.bincount(labels, minlength=m))
        for j in range(m):  # added in row order, as a sequential loop would
            expect = np.zeros(dim)
            for row in x[labels == j]:
                expect += row
            assert np.array_equal(sums[j], expect)


def test_distance_kernels_check_their_arguments():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="centers has 5 columns, x has 4"):
        sq_dist(x, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="index holds 2, outside y's rows 0..1"):
        sq_dist_pairs(x, np.zeros((2, 4)), np.array([[0], [1], [2]]))
    with pytest.raises(ValueError, match="one row per row of x"):
        sq_dist_pairs(x, np.zeros((2, 4)), np.zeros((2, 1), np.int64))
    with pytest.raises(ValueError, match="labels hold 3, outside 0..2"):
        _core.sums_by_label(x, np.array([0, 1, 3], np.int32), 3)


def test_reader_cuts_row_groups_and_pools_per_token(data, tmp_path):
    root, x, _ = data
    for fmt in ("pq", "h5"):
        emb = Embeddings(root / fmt)
        b = emb.read(140, 461)
        assert np.array_equal(b.read_index, np.arange(140, 461)) and np.array_equal(b.vectors, x[140:461])
        assert [(p.shard, p.lo, p.hi) for p in b.pieces][0][0] == (0 if fmt == "pq" else 0)
    for fmt in ("parquet", "hdf5"):  # per-token shards are mean-pooled per read as they are read
        args = ["embed", str(ROOT / "data/ecoli_1K_1.fq.gz"), "--local", "--set", "tokenizer.k=21", "--format", fmt]
        for mode in ("--per-token", "--pool=mean"):
            subprocess.run([sys.executable, "-m", "kmerx", *args, mode, "-o", str(tmp_path / f"{fmt}{mode}")],
                           check=True, capture_output=True)
        tok, pooled = Embeddings(tmp_path / f"{fmt}--per-token"), Embeddings(tmp_path / f"{fmt}--pool=mean")
        assert tok.per_token and tok.rows == pooled.rows
        a, b = tok.read(3, tok.rows - 5), pooled.read(3, pooled.rows - 5)
        assert np.array_equal(a.read_index, b.read_index)
        np.testing.assert_allclose(a.vectors, b.vectors, rtol=1e-5, atol=1e-6)


# ---- k-means -----------------------------------------------------------------------------------------

def snapped(x: np.ndarray) -> np.ndarray:
    """The rows on the grid that makes sums exact (kmerx.hpc.exact), as float64."""
    e = grid_exponent(float(np.abs(x).max()), len(x))
    return np.rint(x.astype(np.float64) * 2.0 ** e) * 2.0 ** -e


def reference_kmeans(X: np.ndarray, k: int, seed: int = 0, max_iter: int = 300, tol: float = 1e-4):
    """Single-process greedy k-means++ (the same draws) and Lloyd iterations, in plain numpy, on the rows
    snapped to the documented grid (kmerx.hpc.exact)."""
    X = snapped(X)
    n = len(X)
    rng = np.random.default_rng(seed)
    C = [X[rng.integers(n)]]
    d2 = ((X - C[0]) ** 2).sum(axis=1)
    scale = 2.0 ** (61 - math.ceil(math.log2(n * d2.max())))
    for _ in range(1, k):
        w = np.floor(d2 * scale).astype(np.int64)
        picks = np.searchsorted(np.cumsum(w), rng.integers(w.sum(), size=2 + int(math.log(k))), side="right")
        pots = [np.floor(np.minimum(d2, ((X - X[g]) ** 2).sum(axis=1)) * scale).astype(np.int64).sum() for g in picks]
        g = picks[int(np.argmin(pots))]
        C.append(X[g])
        d2 = np.minimum(d2, ((X - X[g]) ** 2).sum(axis=1))
    C = np.array(C)
    tol_abs = tol * ((X - X.mean(axis=0)) ** 2).sum() / X.size
    labels = None
    for _ in range(max_iter):
        new = ((X[:, None, :] - C[None]) ** 2).sum(axis=2).argmin(axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        updated = np.array([X[labels == c].mean(axis=0) for c in range(k)])
        shift = ((updated - C) ** 2).sum()
        C = updated
        if shift <= tol_abs:
            labels = ((X[:, None, :] - C[None]) ** 2).sum(axis=2).argmin(axis=1)
            break
    return C, labels


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_kmeans_equals_reference_at_any_rank_count(data, ranks):
    root, x, truth = data
    m, cols = run_solver(data, ranks, "kmeans", "--k", "5", "--seed", "3")
    centers, labels = reference_kmeans(x, 5, seed=3)
    assert m["ranks"] == ranks and m["rows"] == len(x) and m["result"]["converged"]
    assert np.array_equal(cols["read_index"], np.arange(len(x)))
    assert np.array_equal(cols["cluster"], labels)  # identical assignments for the same seed
    got = model(m, root / f"kmeans-pq-{ranks}---k-5---seed-3")["centers"]
    np.testing.assert_allclose(got, centers, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cols["distance"], np.sqrt(((x - got[labels]) ** 2).sum(axis=1)), rtol=1e-5)
    assert m["result"]["cluster_sizes"] == np.bincount(labels, minlength=5).tolist()
    if ranks > 1:  # bit for bit the same as one rank
        one = model(m, root / "kmeans-pq-1---k-5---seed-3")
        assert np.array_equal(one["centers"], got)


@needs_mpi
def test_kmeans_hdf5_with_more_ranks_than_shards(data):
    _, x, _ = data
    m, cols = run_solver(data, 3, "kmeans", "--k", "5", "--seed", "3", fmt="h5")
    assert len(m["shards"]) == 2 and [s["path"] for s in m["shards"]] == ["part-00000.h5", "part-00001.h5"]
    assert np.array_equal(cols["cluster"], reference_kmeans(x, 5, seed=3)[1])


@needs_mpi
def test_kmeans_invariants_on_duplicates_and_empty_clusters(tmp_path):
    """Many identical rows: seeding runs out of distinct points and Lloyd meets empty clusters."""
    x = np.repeat(np.eye(3, 8, dtype=np.float32), [50, 30, 1], axis=0)
    write_embeddings(tmp_path / "in", x, shard_rows=40)
    runs = []
    for ranks in (1, 3):
        mpirun(ranks, "kmeans", "--input", str(tmp_path / "in"), "--output", str(tmp_path / f"r{ranks}"), "--k", "5")
        runs.append(result(tmp_path / f"r{ranks}")[1]["cluster"])
    assert np.array_equal(runs[0], runs[1])
    assert len(set(runs[0][:50])) == 1 and len(set(runs[0][50:80])) == 1 and len(set(runs[0])) == 3


# ---- PCA, kNN graph, spectral --------------------------------------------------------------------------

@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_pca_equals_svd_up_to_sign(data, ranks):
    root, x, _ = data
    m, cols = run_solver(data, ranks, "pca", "--components", "4")
    X = snapped(x)
    X -= X.mean(axis=0)
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    got = model(m, root / f"pca-pq-{ranks}---components-4")
    sign = np.sign((got["components"] * vt[:4]).sum(axis=1))
    np.testing.assert_allclose(got["components"] * sign[:, None], vt[:4], atol=1e-9)
    np.testing.assert_allclose(got["explained_variance"], s[:4] ** 2 / (len(x) - 1), rtol=1e-10)
    np.testing.assert_allclose(got["explained_variance_ratio"], s[:4] ** 2 / (s ** 2).sum(), rtol=1e-10)
    np.testing.assert_allclose(cols["projection"] * sign, X @ vt[:4].T, rtol=1e-5, atol=1e-4)


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_knn_graph_equals_brute_force(data, ranks):
    _, x, _ = data
    m, cols = run_solver(data, ranks, "knn-graph", "--neighbors", "6")
    X = x.astype(np.float64)
    d = np.sqrt(((X[:, None] - X[None]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :6]
    assert np.array_equal(cols["neighbors"], order)  # read_index == row here
    np.testing.assert_allclose(cols["distances"], np.take_along_axis(d, order, axis=1), rtol=1e-6)


def reference_spectral(X: np.ndarray, neighbors: int, c: int) -> np.ndarray:
    """Eigenvalues of D^-1/2 W D^-1/2 for the self-tuning kNN affinity, dense, single process."""
    from kmerx.hpc.spectral import SCALE_NEIGHBOR

    X = X.astype(np.float64)
    d = np.sqrt(((X[:, None] - X[None]) ** 2).sum(axis=2))
    np.fill_diagonal(d, np.inf)
    nbr = np.argsort(d, axis=1, kind="stable")[:, :neighbors]
    s = np.take_along_axis(d, nbr, axis=1)[:, min(SCALE_NEIGHBOR, neighbors) - 1]
    W = np.zeros_like(d)
    rows = np.repeat(np.arange(len(X)), neighbors)
    W[rows, nbr.ravel()] = np.exp(-d[rows, nbr.ravel()] ** 2 / (s[rows] * s[nbr.ravel()]))
    W = np.maximum(W, W.T)
    inv = 1 / np.sqrt(W.sum(axis=1))
    return np.sort(np.linalg.eigvalsh(inv[:, None] * W * inv[None]))[::-1][:c]


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    pairs = lambda v: (v * (v - 1) / 2).sum()  # noqa: E731
    index, ra, rb, n = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([len(a)]))
    expected = ra * rb / n
    return (index - expected) / ((ra + rb) / 2 - expected)


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_spectral_equals_dense_reference(data, ranks):
    root, x, truth = data
    m, cols = run_solver(data, ranks, "spectral", "--clusters", "5", "--neighbors", "10")
    got = model(m, root / f"spectral-pq-{ranks}---clusters-5---neighbors-10")["eigenvalues"]
    np.testing.assert_allclose(got, reference_spectral(x, 10, 5), atol=1e-8)
    assert adjusted_rand(cols["cluster"], truth) == pytest.approx(1.0)
    assert cols["spectral"].shape == (len(x), 5)
    if ranks > 1:
        _, one = result(root / "spectral-pq-1---clusters-5---neighbors-10")
        assert np.array_equal(one["cluster"], cols["cluster"])


# ---- the pipeline's output, re-runs and errors -------------------------------------------------------------

@needs_mpi
def test_kmeans_on_the_readme_pipeline_output(tmp_path):
    out, res = tmp_path / "ecoli", tmp_path / "clusters"
    subprocess.run([sys.executable, "-m", "kmerx", "embed", str(ROOT / "data/ecoli_1K_1.fq.gz"),
                    str(ROOT / "data/ecoli_1K_2.fq.gz"), "--paired", "--local", "-o", str(out),
                    "--set", "output.shard_bytes=300000"],
                   check=True, capture_output=True)
    emb = Embeddings(out)
    assert len(emb.shards) > 2
    p = mpirun(2, "kmeans", "--input", str(out), "--output", str(res), "--k", "4")
    assert "kmeans on 2,054 rows" in p.stdout
    m, cols = result(res)
    assert [s["rows"] for s in m["shards"]] == emb.shard_rows
    assert [s["path"] for s in m["shards"]] == [s["path"] for s in emb.shards]
    assert np.array_equal(cols["read_index"], emb.read(0, emb.rows).read_index)
    assert sorted(set(cols["cluster"].tolist())) == [0, 1, 2, 3]
    assert m["timings"]["read_bytes"] > 0 and m["input"]["run_digest"] == emb.manifest["run_digest"]
    # A finished result is kept; an interrupted one (no manifest, a stale temp file) is redone.
    again = mpirun(1, "kmeans", "--input", str(out), "--output", str(res), "--k", "4")
    assert "already complete" in again.stdout
    (res / "manifest.json").unlink()
    (res / ".part-00000.parquet.tmp-999").write_bytes(b"partial")
    mpirun(3, "kmeans", "--input", str(out), "--output", str(res), "--k", "4")
    assert np.array_equal(result(res)[1]["cluster"], cols["cluster"])
    assert not list(res.glob(".*.tmp-*"))
    other = mpirun(2, "kmeans", "--input", str(out), "--output", str(res), "--k", "3", check=False)
    assert other.returncode == 1 and "holds a result of another run" in other.stderr
    mpirun(2, "kmeans", "--input", str(out), "--output", str(res), "--k", "3", "--overwrite")
    # Overwritten by a run on another input with fewer shards: none of the old result's files is left.
    write_embeddings(tmp_path / "small", np.eye(4, dtype=np.float32), shard_rows=4)
    mpirun(1, "kmeans", "--input", str(tmp_path / "small"), "--output", str(res), "--k", "2", "--overwrite")
    assert sorted(p.name for p in res.iterdir() if p.suffix in (".parquet", ".npz", ".json")) == [
        "manifest.json", "model.npz", "part-00000.parquet"]


@needs_mpi
def test_errors_name_the_problem_and_no_rank_hangs(data, tmp_path):
    root, x, _ = data
    bad = tmp_path / "bad"
    write_embeddings(bad, x, shard_rows=150)
    cases = [
        (["kmeans", "--input", str(tmp_path / "nope"), "--k", "2"], "no manifest"),
        (["kmeans", "--input", str(root / "pq"), "--k", "601"], "k=601 clusters need at least 601 rows"),
        (["pca", "--input", str(root / "pq"), "--components", "17"], "components must be in 1..16"),
        (["knn-graph", "--input", str(root / "pq"), "--neighbors", "0"], "neighbors must be in 1..599"),
    ]
    for args, message in cases:
        p = mpirun(2, *args, "--output", str(tmp_path / "out"), check=False, timeout=60)
        assert p.returncode != 0 and message in p.stderr, (args, p.stderr)
        assert p.stderr.count("kmerx.hpc: error") <= 1  # said once, by rank 0
    # Only rank 2 reads the last shard; its read fails, and every rank stops with its message.
    (bad / "part-00003.parquet").write_bytes(b"not parquet")
    p = mpirun(3, "kmeans", "--input", str(bad), "--output", str(tmp_path / "out"), "--k", "2", check=False,
               timeout=60)
    assert p.returncode != 0 and "reading the input failed: rank 2:" in p.stderr and "part-00003" in p.stderr
    os.remove(bad / "part-00001.parquet")
    p = mpirun(2, "kmeans", "--input", str(bad), "--output", str(tmp_path / "out"), "--k", "2", check=False)
    assert p.returncode != 0 and "missing: part-00001.parquet" in p.stderr


@needs_mpi
def test_readme_hpc_example_runs_on_the_readme_pipeline_output(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## On HPC\n.*?```bash\n(.*?)```", text, re.DOTALL).group(1)
    line = next(c for c in block.splitlines() if "-m kmerx.hpc kmeans" in c)
    embed = next(c for c in block.splitlines() if " embed " in c).split(" --then")[0]
    os.symlink(ROOT / "data", tmp_path / "data")
    run_env = subprocess_env()  # the commands run in tmp_path
    # The README's main job (`kmerx embed ... -o out/ecoli`), in-process: the same shards as on Ray.
    subprocess.run(shlex.split(embed.replace(".venv/bin/kmerx", f"{sys.executable} -m kmerx")) + ["--local"],
                   cwd=tmp_path, check=True, capture_output=True, env=run_env)
    cmd = line.split("#")[0].replace(".venv/bin/mpirun", MPIRUN).replace(".venv/bin/python", sys.executable)
    subprocess.run(shlex.split(cmd), cwd=tmp_path, check=True, capture_output=True, env=run_env, timeout=180)
    m, cols = result(tmp_path / "out/ecoli.kmeans")
    assert m["ranks"] == 2 and m["rows"] == 2054 and len(set(cols["cluster"].tolist())) == 7
