"""kmerx.hpc.slurm: script rendering and validation without Slurm, then jobs on a real single-node cluster."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from kmerx.hpc.slurm import (
    JobResult,
    SlurmClient,
    SlurmError,
    SlurmJob,
    SlurmJobFailed,
    SlurmWaitTimeout,
    array_tasks,
)

pytest_plugins = ["slurm_cluster"]


def test_render_is_a_complete_deterministic_script(tmp_path):
    job = SlurmJob(["mpirun", "-n", "2", "python", "-m", "kmerx.hpc", "kmeans", "--input", "out dir"],
                   name="km", ntasks=2, cpus_per_task=3, mem="2G", time="1:30:00", partition="debug",
                   env={"B": "two words", "A": "it's"}, workdir=str(tmp_path), setup=["module load mpi"],
                   extra=["--exclusive"])
    text = job.render()
    assert text == job.render()
    assert text.splitlines() == [
        "#!/bin/bash",
        "#SBATCH --job-name=km",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks=2",
        "#SBATCH --cpus-per-task=3",
        "#SBATCH --mem=2G",
        "#SBATCH --time=1:30:00",
        "#SBATCH --partition=debug",
        f"#SBATCH --chdir={tmp_path}",
        f"#SBATCH --output={tmp_path}/slurm-%j.out",
        f"#SBATCH --error={tmp_path}/slurm-%j.err",
        "#SBATCH --exclusive",
        "set -euo pipefail",
        "export A='it'\"'\"'s'",
        "export B='two words'",
        "module load mpi",
        f"cd {tmp_path}",
        "mpirun -n 2 python -m kmerx.hpc kmeans --input 'out dir'",
    ]


def test_render_array_defaults_and_relative_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = SlurmJob("echo $SLURM_ARRAY_TASK_ID", array="0-9%2").render()
    assert "#SBATCH --array=0-9%2" in text
    assert f"#SBATCH --output={tmp_path}/slurm-%A_%a.out" in text
    assert f"#SBATCH --error={tmp_path}/slurm-%A_%a.err" in text
    assert text.endswith("\necho $SLURM_ARRAY_TASK_ID\n")
    assert SlurmJob("true", workdir="/w", output="logs/o-%j.txt").log_paths()[0] == "/w/logs/o-%j.txt"


def test_written_script_runs_under_plain_bash(tmp_path):
    """The #SBATCH lines are comments to bash, so the script's own semantics can be checked without Slurm."""
    job = SlurmJob('printf "%s|%s\\n" "$KMERX_X" "$PWD" > result.txt', env={"KMERX_X": "a 'b' $c"},
                   workdir=str(tmp_path), setup=["KMERX_SETUP=1"])
    path = job.write(tmp_path / "job.sbatch")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.sbatch"]
    subprocess.run(["bash", path], check=True, cwd="/")
    assert (tmp_path / "result.txt").read_text() == f"a 'b' $c|{tmp_path}\n"


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"command": []}, ValueError, "command"),
        ({"command": "   "}, ValueError, "command"),
        ({"command": 5}, TypeError, "command"),
        ({"nodes": 0}, ValueError, "nodes"),
        ({"ntasks": True}, TypeError, "ntasks"),
        ({"cpus_per_task": "2"}, TypeError, "cpus_per_task"),
        ({"time": "1h"}, ValueError, "'1h'"),
        ({"time": "1:2:3:4"}, ValueError, "time"),
        ({"mem": "2GB"}, ValueError, "'2GB'"),
        ({"partition": "a b"}, ValueError, "partition"),
        ({"env": {"1X": "a"}}, ValueError, "'1X'"),
        ({"env": {"X": 1}}, TypeError, "env['X']"),
        ({"array": "5-2"}, ValueError, "5-2"),
        ({"array": "0-"}, ValueError, "array"),
        ({"setup": "module load x"}, TypeError, "setup"),
        ({"extra": ["exclusive"]}, ValueError, "'exclusive'"),
        ({"name": "a\nb"}, ValueError, "name"),
    ],
)
def test_validation_names_the_argument(kwargs, error, names):
    with pytest.raises(error) as info:
        SlurmJob(**{"command": "true", **kwargs})
    assert names in str(info.value)


def test_accepted_spellings():
    job = SlurmJob("true", mem=512, time=90)
    assert (job.mem, job.time) == ("512M", "90")
    for t in ("5", "10:00", "1:00:00", "2-12", "2-12:30", "2-12:30:00", "UNLIMITED"):
        SlurmJob("true", time=t)
    assert array_tasks("0-9%2") == list(range(10))
    assert array_tasks("1,4-8:2") == [1, 4, 6, 8]


def test_missing_commands_raise_slurm_error(tmp_path):
    with pytest.raises(SlurmError, match=r"sbatch not found in .* \(install Slurm's client commands"):
        SlurmClient(bin_dir=str(tmp_path)).submit(tmp_path / "x.sbatch")
    with pytest.raises(SlurmError, match="scontrol not found on PATH"):
        SlurmClient(env={"PATH": str(tmp_path)}).status("1")


def test_job_failed_message_has_the_stderr_tail(tmp_path):
    err = tmp_path / "slurm-7.err"
    err.write_text("".join(f"line {i}\n" for i in range(30)))
    msg = str(SlurmJobFailed(JobResult("7", "FAILED", 3, 0, stderr=str(err))))
    assert "Slurm job 7 ended FAILED with exit code 3" in msg
    assert "line 29" in msg and "line 10" in msg and "line 9\n" not in msg
    assert not JobResult("7", "COMPLETED", 1).ok and JobResult("7", "COMPLETED", 0).ok


def test_history_falls_back_to_sacct(tmp_path):
    """Accounting is off on the test cluster, so sacct's format is checked with stand-in commands."""
    (tmp_path / "scontrol").write_text("#!/bin/sh\n"
                                       "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1\n")
    (tmp_path / "sacct").write_text("#!/bin/sh\nprintf '%s\\n' '7|COMPLETED|0:0|00:01:02' "
                                    "'7.batch|COMPLETED|0:0|00:01:02' '8_0|CANCELLED by 0|0:15|1-00:00:01' "
                                    "'8_1|OUT_OF_MEMORY|0:125|00:00:03'\n")
    for exe in ("scontrol", "sacct"):
        (tmp_path / exe).chmod(0o755)
    client = SlurmClient(bin_dir=str(tmp_path))
    assert client.status("7") == JobResult("7", "COMPLETED", 0, 0, elapsed=62.0)
    assert client.array_status("8", [0, 1]) == [JobResult("8_0", "CANCELLED", 0, 15, elapsed=86401.0),
                                                JobResult("8_1", "OUT_OF_MEMORY", 0, 125, elapsed=3.0)]
    with pytest.raises(SlurmError, match="Slurm job 8_2 is unknown to scontrol, sacct"):
        client.array_status("8", [2])


# ---- a real cluster ----


def _job(cluster, tmp_path, command, **kwargs):
    return SlurmJob(command, workdir=str(tmp_path), partition=cluster.partition, **kwargs)


def test_job_completes_with_logs(slurm_cluster, tmp_path):
    job = _job(slurm_cluster, tmp_path, 'echo "hello from $SLURM_JOB_ID"; echo to-stderr >&2').submit(
        slurm_cluster.client)
    result = job.wait(timeout=30)
    assert result.ok and (result.state, result.exit_code, result.signal) == ("COMPLETED", 0, 0)
    assert result.stdout == str(tmp_path / f"slurm-{job.job_id}.out")
    assert Path(result.stdout).read_text() == f"hello from {job.job_id}\n"
    assert Path(result.stderr).read_text() == "to-stderr\n"
    assert job.script is not None and job.script.startswith(str(tmp_path))


def test_env_reaches_the_job(slurm_cluster, tmp_path):
    job = _job(slurm_cluster, tmp_path, 'printf "%s|%s\\n" "$KMERX_VALUE" "$SLURM_CONF"',
               env={"KMERX_VALUE": "a b 'c'"}).submit(slurm_cluster.client)
    result = job.wait(timeout=30)
    assert Path(result.stdout).read_text() == f"a b 'c'|{slurm_cluster.conf}\n"


def test_nonzero_exit_raises_job_failed(slurm_cluster, tmp_path):
    job = _job(slurm_cluster, tmp_path, "echo boom-detail >&2; exit 3").submit(slurm_cluster.client)
    with pytest.raises(SlurmJobFailed) as info:
        job.wait(timeout=30)
    result = info.value.result
    assert (result.state, result.exit_code) == ("FAILED", 3)
    assert f"Slurm job {job.job_id} ended FAILED with exit code 3" in str(info.value)
    assert "boom-detail" in str(info.value)
    assert job.wait(timeout=30, check=False) == result


def test_wait_timeout_leaves_the_job_then_cancel(slurm_cluster, tmp_path):
    job = _job(slurm_cluster, tmp_path, "sleep 120").submit(slurm_cluster.client)
    with pytest.raises(TimeoutError) as info:
        job.wait(timeout=1.5)
    assert isinstance(info.value, SlurmWaitTimeout) and not info.value.cancelled
    assert job.job_id in str(info.value) and info.value.state in ("PENDING", "RUNNING")
    assert job.status().state in ("PENDING", "RUNNING")
    job.cancel()
    result = job.wait(timeout=30, check=False)
    assert result.state == "CANCELLED" and not result.ok

    job = _job(slurm_cluster, tmp_path, "sleep 120").submit(slurm_cluster.client)
    with pytest.raises(SlurmWaitTimeout, match="cancelled it"):
        job.wait(timeout=1, cancel_on_timeout=True)
    with pytest.raises(SlurmJobFailed, match="CANCELLED"):
        job.wait(timeout=30)


def test_bad_partition_is_slurms_own_message(slurm_cluster, tmp_path):
    with pytest.raises(SlurmError, match="invalid partition specified: nope"):
        SlurmJob("true", workdir=str(tmp_path), partition="nope").submit(slurm_cluster.client)


def test_array_job_one_result_per_task(slurm_cluster, tmp_path):
    job = _job(slurm_cluster, tmp_path, 'echo "$SLURM_ARRAY_TASK_ID" > "task-$SLURM_ARRAY_TASK_ID.txt"',
               array="0-2").submit(slurm_cluster.client)
    results = job.wait_all(timeout=60)
    assert [r.job_id for r in results] == [f"{job.job_id}_{t}" for t in range(3)]
    assert all(r.ok for r in results)
    assert [(tmp_path / f"task-{t}.txt").read_text() for t in range(3)] == ["0\n", "1\n", "2\n"]
    assert all(os.path.exists(r.stdout) for r in results)
    with pytest.raises(TypeError, match="wait_all"):
        job.wait()


def test_array_task_failure_is_reported(slurm_cluster, tmp_path):
    command = 'echo "task $SLURM_ARRAY_TASK_ID" >&2; exit $((SLURM_ARRAY_TASK_ID * 4))'
    job = _job(slurm_cluster, tmp_path, command,
               array="0,1").submit(slurm_cluster.client)
    with pytest.raises(SlurmJobFailed, match="1 of 2 array tasks failed") as info:
        job.wait_all(timeout=60)
    assert (info.value.result.job_id, info.value.result.exit_code) == (f"{job.job_id}_1", 4)
    assert "task 1" in str(info.value)


def test_status_after_purge_comes_from_jobcomp(slurm_cluster, tmp_path):
    """MinJobAge=2: slurmctld forgets the job, and there is no accounting, so only jobcomp knows it."""
    job = _job(slurm_cluster, tmp_path, "echo gone-detail >&2; exit 3").submit(slurm_cluster.client)
    for _ in range(100):
        proc = subprocess.run(["scontrol", "show", "job", job.job_id], capture_output=True, text=True,
                              env={**os.environ, **slurm_cluster.env}, check=False)
        if "Invalid job id" in proc.stderr:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"slurmctld kept job {job.job_id}:\n{proc.stdout}")
    result = job.status()
    assert (result.job_id, result.state, result.exit_code) == (job.job_id, "FAILED", 3)
    assert result.stderr == str(tmp_path / f"slurm-{job.job_id}.err")
    with pytest.raises(SlurmJobFailed, match="gone-detail"):
        job.wait(timeout=5)
    with pytest.raises(SlurmError, match="unknown to scontrol"):
        slurm_cluster.client.status("987654")
