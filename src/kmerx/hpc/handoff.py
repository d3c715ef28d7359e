"""The pipeline's hand-off to HPC: ``kmerx embed ... --then "slurm:kmeans --k 7"`` runs a solver on the
output once its manifest is written.

``slurm:SOLVER ARGS`` submits ``mpirun -n RANKS python -m kmerx.hpc SOLVER --input OUT --output RESULT
ARGS`` as a Slurm batch job and waits for it; ``mpirun:SOLVER ARGS`` runs the same line here, without
Slurm. The spec is checked (solver, options) before any embedding starts, so a typo costs nothing. On
the Ray engine the submit-and-wait runs as a Ray task, so it happens on the cluster, not the client.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
from typing import Any

from kmerx.hpc import results

BACKENDS = ("slurm", "mpirun")


@dataclasses.dataclass(frozen=True)
class Then:
    backend: str
    solver: str
    args: tuple[str, ...]

    def command(self, out: str, result: str, ranks: int) -> list[str]:
        return [mpirun(), "-n", str(ranks), sys.executable, "-m", "kmerx.hpc", self.solver, "--input", out,
                "--output", result, *self.args]


class _Strict(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise ValueError(message)


def parse_then(spec: str) -> Then:
    """``BACKEND:SOLVER [OPTIONS]`` (e.g. ``slurm:kmeans --k 7``), options checked like the solver's CLI."""
    from kmerx.hpc.__main__ import build_parser

    if not isinstance(spec, str):
        raise TypeError(f"the --then spec must be a string, got {type(spec).__name__}")
    backend, sep, rest = spec.partition(":")
    words = shlex.split(rest)
    if not sep or backend not in BACKENDS or not words:
        raise ValueError(f"--then takes BACKEND:SOLVER [OPTIONS] with BACKEND one of {', '.join(BACKENDS)} "
                         f"(e.g. 'slurm:kmeans --k 7'), got {spec!r}")
    if any(w in ("--input", "--output") or w.startswith(("--input=", "--output=")) for w in words):
        raise ValueError(f"--then {spec!r}: --input and --output are the pipeline's (see --then-output)")
    try:
        build_parser(_Strict).parse_args([*words, "--input", "OUT", "--output", "RESULT"])
    except ValueError as e:
        raise ValueError(f"--then {spec!r}: {e}") from None
    return Then(backend, words[0], tuple(words[1:]))


def mpirun() -> str:
    """The mpirun beside this Python (PyPI mpich puts it in the venv), else the one on PATH."""
    found = shutil.which("mpirun", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if found is None:
        raise FileNotFoundError("mpirun not found beside this Python or on PATH (pip install 'kmerx[mpi]')")
    return found


def default_result(out: str, solver: str) -> str:
    return os.path.abspath(os.fspath(out)).rstrip(os.sep) + "." + solver


def check(then: Then) -> None:
    """What the hand-off needs, checked before the pipeline runs."""
    mpirun()
    if then.backend == "slurm" and shutil.which("sbatch") is None:
        raise FileNotFoundError("--then slurm:... needs Slurm's sbatch on PATH (or use mpirun:... to run here)")


def run_then(out: str, then: Then | str, *, ranks: int = 2, result: str | None = None, slurm: dict | None = None,
             client: Any = None, timeout: float | None = None) -> dict[str, Any]:
    """Run the solver on the pipeline output ``out`` and return the result's manifest, with the Slurm job
    id and state under ``"job"``. Raises :class:`kmerx.hpc.slurm.SlurmJobFailed` (Slurm's state, exit
    code and the job's stderr tail) or ``RuntimeError`` (mpirun's) when the solver fails."""
    then = parse_then(then) if isinstance(then, str) else then
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ValueError(f"ranks must be an int >= 1, got {ranks!r}")
    out = os.path.abspath(os.fspath(out))
    result = os.path.abspath(result) if result else default_result(out, then.solver)
    command = then.command(out, result, ranks)
    os.makedirs(result, exist_ok=True)
    job: dict[str, Any]
    if then.backend == "slurm":
        from kmerx.hpc.slurm import SlurmJob

        spec = SlurmJob(command, name=f"kmerx-{then.solver}", ntasks=ranks, workdir=result,
                        output=os.path.join(result, "slurm-%j.out"), error=os.path.join(result, "slurm-%j.err"),
                        **(slurm or {}))
        submitted = spec.submit(client, script_dir=result)
        r = submitted.wait(timeout=timeout)
        job = {"backend": "slurm", "id": r.job_id, "state": r.state, "stdout": r.stdout, "stderr": r.stderr}
    else:
        p = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} exited {p.returncode}:\n{p.stderr.strip()[-4000:]}")
        job = {"backend": "mpirun", "state": "COMPLETED", "stdout": p.stdout}
    m = results.read_manifest(result)
    if m is None:
        raise RuntimeError(f"the {then.solver} job ended but {result} has no manifest")
    return {**m, "path": result, "job": job}


def run_then_on_ray(out: str, then: Then, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_then` as a Ray task (Ray must be initialised): the cluster submits and waits."""
    import ray

    task = ray.remote(num_cpus=0, max_retries=0)(run_then)
    return ray.get(task.remote(out, then, **kwargs))
