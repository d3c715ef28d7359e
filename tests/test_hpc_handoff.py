"""The pipeline's hand-off to a real Slurm (tests/slurm_cluster.py starts munged, slurmctld and slurmd):
an MPI k-means job on embedding shards equals a direct mpirun, ``kmerx embed --then`` runs both stages
(in one process and through a Ray task), and a failing job surfaces Slurm's state and the job's stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from reference import subprocess_env

from kmerx.hpc import handoff
from kmerx.hpc.parts import write_embeddings
from kmerx.hpc.slurm import SlurmJobFailed

pytest_plugins = ["slurm_cluster"]
ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mpi4py")


def clusters(result: Path) -> np.ndarray:
    m = json.loads((result / "manifest.json").read_text())
    return np.concatenate([pq.read_table(result / s["path"]).column("cluster").to_numpy() for s in m["shards"]])


def env(cluster) -> dict[str, str]:
    return subprocess_env(**cluster.env)


@pytest.fixture
def job_env(slurm_cluster, monkeypatch):
    """The test process's own environment as a job's (sbatch exports it), with SLURM_CONF set."""
    for key, value in env(slurm_cluster).items():
        monkeypatch.setenv(key, value)
    return slurm_cluster


def test_parse_then_checks_the_spec_before_any_work():
    t = handoff.parse_then("slurm:kmeans --k 7 --seed 2")
    assert (t.backend, t.solver, t.args) == ("slurm", "kmeans", ("--k", "7", "--seed", "2"))
    for spec, message in [("kmeans --k 7", "BACKEND:SOLVER"), ("pbs:kmeans --k 2", "BACKEND:SOLVER"),
                          ("slurm:", "BACKEND:SOLVER"), ("slurm:kmedoids --k 2", "invalid choice: 'kmedoids'"),
                          ("slurm:kmeans", "required: --k"), ("slurm:pca --components x", "invalid int value"),
                          ("mpirun:kmeans --k 2 --output /x", "--input and --output are the pipeline's")]:
        with pytest.raises(ValueError, match=message):
            handoff.parse_then(spec)


def test_slurm_kmeans_job_equals_a_direct_run(job_env, tmp_path):
    rng = np.random.default_rng(5)
    x = (rng.normal(0, 5, (4, 8))[rng.integers(4, size=300)] + rng.normal(0, 1, (300, 8))).astype(np.float32)
    write_embeddings(tmp_path / "emb", x, shard_rows=70)
    direct = handoff.run_then(str(tmp_path / "emb"), "mpirun:kmeans --k 4", ranks=3, result=str(tmp_path / "direct"))
    r = handoff.run_then(str(tmp_path / "emb"), "slurm:kmeans --k 4", ranks=2, result=str(tmp_path / "slurm"),
                         client=job_env.client, slurm={"partition": job_env.partition, "time": 5}, timeout=120)
    assert r["job"]["backend"] == "slurm" and r["job"]["state"] == "COMPLETED" and r["ranks"] == 2
    assert r["job"]["stdout"].startswith(str(tmp_path / "slurm"))
    assert "#SBATCH --ntasks=2" in next((tmp_path / "slurm").glob("*.sbatch")).read_text()
    assert np.array_equal(clusters(tmp_path / "slurm"), clusters(tmp_path / "direct"))
    assert r["result"]["cluster_sizes"] == direct["result"]["cluster_sizes"]
    assert r["result"]["inertia"] == pytest.approx(direct["result"]["inertia"], rel=1e-12)  # a float sum

    with pytest.raises(SlurmJobFailed, match=r"(?s)FAILED.*k=1000 clusters need at least 1000 rows"):
        handoff.run_then(str(tmp_path / "emb"), "slurm:kmeans --k 1000", ranks=2, result=str(tmp_path / "bad"),
                         client=job_env.client, timeout=120)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_kmerx_embed_then_slurm_runs_both_stages(slurm_cluster, tmp_path, engine):
    out = tmp_path / "ecoli"

    def embed(then: str, *extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "kmerx", "embed", str(ROOT / "data/ecoli_1K_1.fq.gz"),
               str(ROOT / "data/ecoli_1K_2.fq.gz"), "--paired", "-o", str(out), "--then", then,
               "--then-slurm", f"partition={slurm_cluster.partition}", *extra,
               *(["--local"] if engine == "local" else ["--workers", "1"])]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              env={**env(slurm_cluster), "RAY_AUTH_MODE": "disabled"})

    p = embed("slurm:kmeans --k 4")
    assert p.returncode == 0, p.stderr
    assert "kmeans on 2 ranks via Slurm job" in p.stdout and "COMPLETED" in p.stdout
    labels = clusters(Path(f"{out}.kmeans"))
    assert len(labels) == 2054 and set(labels.tolist()) == {0, 1, 2, 3}
    # The embedding is complete, so a re-run goes straight to the hand-off; a failing job fails the command.
    bad = embed("slurm:kmeans --k 9999", "--then-output", str(tmp_path / "bad"))
    assert bad.returncode == 1 and "FAILED" in bad.stderr and "k=9999 clusters need at least 9999 rows" in bad.stderr
