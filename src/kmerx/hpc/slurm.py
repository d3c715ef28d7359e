"""A small bridge to Slurm's command-line tools: render and submit batch scripts, then track the jobs.

It drives ``sbatch``/``scontrol``/``scancel``/``sacct`` as subprocesses rather than a Slurm API
binding, so it needs nothing but Slurm's client commands and works wherever a user could type them.
A job's final state is read from ``scontrol`` while slurmctld still holds the record, then from
accounting (``sacct``) and, on clusters without accounting, from a ``jobcomp/filetxt`` file; that
order matters because slurmctld forgets finished jobs after ``MinJobAge`` seconds.

Typical use::

    job = SlurmJob(["mpirun", "-n", "4", "python", "-m", "kmerx.hpc", "kmeans", "--input", out,
                    "--output", res], ntasks=4, time="1:00:00", mem="8G")
    result = job.submit().wait()          # raises SlurmJobFailed unless it COMPLETED with exit code 0

Array jobs (``array="0-9"``) run one task per shard; use ``SubmittedJob.wait_all()`` for them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

__all__ = [
    "TERMINAL_STATES",
    "JobResult",
    "SlurmClient",
    "SlurmError",
    "SlurmJob",
    "SlurmJobFailed",
    "SlurmWaitTimeout",
    "SubmittedJob",
    "array_tasks",
]

TERMINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
     "DEADLINE"}
)

_NO_VAL = "4294967294"  # what Slurm prints for %a in a still-pending array task's log path
_TIME_RE = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE", re.I)
_MEM_RE = re.compile(r"\d+[KMGT]?", re.I)
_ARRAY_RE = re.compile(r"\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD_SPLIT = re.compile(r"\s+(?=[\w/:.]+=)")  # values may hold spaces; the next "Key=" starts a field
_UNKNOWN_JOB = re.compile(r"Invalid job id specified|Job \S+ not found")


class SlurmError(RuntimeError):
    """A Slurm command is missing or failed; the message carries the command and Slurm's stderr."""


class SlurmJobFailed(SlurmError):
    """A job ended in a state other than COMPLETED with exit code 0; ``result`` holds the details."""

    def __init__(self, result: JobResult, note: str = ""):
        self.result = result
        msg = f"Slurm job {result.job_id} ended {result.state} with exit code {result.exit_code}"
        if result.signal:
            msg += f" (signal {result.signal})"
        if note:
            msg += f"; {note}"
        tail = _tail(result.stderr) if result.stderr else None
        if tail:
            msg += f"\n--- last lines of {result.stderr} ---\n{tail}"
        super().__init__(msg)


class SlurmWaitTimeout(TimeoutError):
    """``wait`` gave up before the job reached a terminal state (the job keeps running unless cancelled)."""

    def __init__(self, job_id: str, state: str, seconds: float, cancelled: bool = False):
        self.job_id, self.state, self.seconds, self.cancelled = job_id, state, seconds, cancelled
        extra = "; cancelled it" if cancelled else ""
        super().__init__(f"Slurm job {job_id} still {state} after waiting {seconds:g} s{extra}")


@dataclass(frozen=True)
class JobResult:
    """One job's (or one array task's) state as Slurm reports it; paths are the job's log files."""

    job_id: str
    state: str
    exit_code: int = 0
    signal: int = 0
    stdout: str | None = None
    stderr: str | None = None
    elapsed: float | None = None

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED" and self.exit_code == 0

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


def array_tasks(spec: str) -> list[int]:
    """The task ids an ``--array`` spec names, sorted: ``"0-9%2"`` -> 0..9, ``"1,4-8:2"`` -> 1, 4, 6, 8."""
    tasks: set[int] = set()
    for part in spec.split("%", 1)[0].split(","):
        rng, _, step = part.partition(":")
        lo, _, hi = rng.partition("-")
        first, last, stride = int(lo), int(hi or lo), int(step or 1)
        if last < first or stride < 1:
            raise ValueError(f"array: bad range {part!r} in {spec!r}")
        tasks.update(range(first, last + 1, stride))
    return sorted(tasks)


class SlurmClient:
    """Runs Slurm's client commands; ``env`` (e.g. ``SLURM_CONF``) is added to each one's environment.

    Commands are looked up when first used, in ``bin_dir`` or on ``PATH``, so a cluster without
    ``sacct`` still works. ``jobcomp_path`` names a ``jobcomp/filetxt`` log that records finished
    jobs: the last place to find a job's outcome when slurmctld has purged it and there is no accounting.
    """

    def __init__(self, bin_dir: str | None = None, env: dict[str, str] | None = None, poll: float = 0.5,
                 jobcomp_path: str | None = None, command_timeout: float = 120.0):
        if poll <= 0:
            raise ValueError(f"poll must be > 0 seconds, got {poll!r}")
        self.bin_dir = os.fspath(bin_dir) if bin_dir is not None else None
        self.env = dict(env or {})
        self.poll = poll
        self.jobcomp_path = os.fspath(jobcomp_path) if jobcomp_path is not None else None
        self.command_timeout = command_timeout
        self._exe: dict[str, str] = {}
        self._no_accounting = False

    def _environ(self) -> dict[str, str]:
        # Read when a command runs, not when the client is made: sbatch exports it to the job.
        return {**os.environ, **self.env}

    def _which(self, name: str) -> str:
        if name not in self._exe:
            path = self.bin_dir if self.bin_dir is not None else self._environ().get("PATH", os.defpath)
            exe = shutil.which(name, path=path)
            if exe is None:
                where = f"in {self.bin_dir}" if self.bin_dir is not None else "on PATH"
                raise SlurmError(f"{name} not found {where} "
                                 "(install Slurm's client commands or pass bin_dir)")
            self._exe[name] = exe
        return self._exe[name]

    def _run(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self._which(name), *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self._environ(),
                                  timeout=self.command_timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SlurmError(f"{shlex.join(cmd)} failed: {e}") from e
        if check and proc.returncode != 0:
            raise SlurmError(f"{shlex.join(cmd)} failed with exit code {proc.returncode}: "
                             f"{(proc.stderr or proc.stdout).strip()}")
        return proc

    def submit(self, script_path: str | os.PathLike[str], *args: str) -> SubmittedJob:
        """``sbatch --parsable [args] script``; ``args`` are sbatch options placed before the script."""
        script = os.fspath(script_path)
        out = self._run("sbatch", "--parsable", *args, script).stdout.strip()
        job_id = out.splitlines()[-1].split(";")[0].strip() if out else ""
        if not job_id.isdigit():
            raise SlurmError(f"sbatch printed no job id for {script}: {out!r}")
        return SubmittedJob(job_id, self, script)

    def cancel(self, job_id: str | int) -> None:
        """``scancel``; Slurm treats cancelling a job that already ended as a no-op."""
        self._run("scancel", str(job_id))

    def status(self, job_id: str | int) -> JobResult:
        """The state of a job or of one array task (``"123_4"``); for an array's own id, the record
        slurmctld keeps under that id (see :meth:`array_status` for every task)."""
        job_id = str(job_id)
        records = self._scontrol(job_id)
        if records:
            base = job_id.partition("_")[0]
            rec = next((r for r in records if r.get("JobId") == base), records[0])
            return _from_scontrol(rec, job_id)
        found = self._history(job_id.partition("_")[0]).get(job_id)
        if found is None:
            raise SlurmError(self._nowhere(job_id))
        return found

    def array_status(self, job_id: str | int, tasks: list[int]) -> list[JobResult]:
        """One result per task of array job ``job_id`` (ids ``"<job_id>_<task>"``), in ``tasks`` order."""
        job_id = str(job_id)
        by_task: dict[int, dict[str, str]] = {}
        for rec in self._scontrol(job_id) or []:
            if rec.get("ArrayJobId") == job_id:
                try:
                    for t in array_tasks(rec.get("ArrayTaskId", "")):
                        by_task.setdefault(t, rec)
                except ValueError:
                    continue
        history: dict[str, JobResult] | None = None
        results = []
        for t in tasks:
            tid = f"{job_id}_{t}"
            if t in by_task:
                results.append(_from_scontrol(by_task[t], tid))
                continue
            if history is None:
                history = self._history(job_id)
            if tid not in history:
                raise SlurmError(self._nowhere(tid))
            results.append(history[tid])
        return results

    def wait(self, job_id: str | int, timeout: float | None = None, *,
             cancel_on_timeout: bool = False) -> JobResult:
        """Poll until the job reaches a terminal state; :class:`SlurmWaitTimeout` after ``timeout`` s."""
        return self._poll(str(job_id), lambda: [self.status(job_id)], timeout, cancel_on_timeout)[0]

    def wait_array(self, job_id: str | int, tasks: list[int], timeout: float | None = None, *,
                   cancel_on_timeout: bool = False) -> list[JobResult]:
        """:meth:`wait` for every task of an array job; returns one result per task."""
        return self._poll(str(job_id), lambda: self.array_status(job_id, tasks), timeout, cancel_on_timeout)

    def _poll(self, job_id: str, probe: Callable[[], list[JobResult]], timeout: float | None,
              cancel_on_timeout: bool) -> list[JobResult]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            results = probe()
            pending = [r for r in results if not r.done]
            if not pending:
                return results
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                if cancel_on_timeout:
                    self.cancel(job_id)
                raise SlurmWaitTimeout(job_id, pending[0].state, timeout or 0.0, cancelled=cancel_on_timeout)
            time.sleep(self.poll if left is None else min(self.poll, left))

    def _scontrol(self, job_id: str) -> list[dict[str, str]] | None:
        """``scontrol show job -o`` records, or None when slurmctld no longer knows the job."""
        proc = self._run("scontrol", "show", "job", "-o", job_id, check=False)
        if proc.returncode != 0:
            if _UNKNOWN_JOB.search(proc.stderr + proc.stdout):
                return None
            raise SlurmError(f"scontrol show job -o {job_id} failed with exit code {proc.returncode}: "
                             f"{(proc.stderr or proc.stdout).strip()}")
        return [_fields(line) for line in proc.stdout.splitlines() if line.strip()]

    def _history(self, base_id: str) -> dict[str, JobResult]:
        """Finished-job records for ``base_id`` and its array tasks: accounting first, then jobcomp."""
        found = self._jobcomp(base_id)
        found.update(self._sacct(base_id))
        return found

    def _sacct(self, base_id: str) -> dict[str, JobResult]:
        if self._no_accounting:
            return {}
        try:
            proc = self._run("sacct", "-n", "-P", "-j", base_id, "--format=JobID,State,ExitCode,Elapsed",
                             check=False)
        except SlurmError:
            self._no_accounting = True
            return {}
        if proc.returncode != 0:
            self._no_accounting = "accounting storage is disabled" in proc.stderr.lower()
            return {}
        found = {}
        for line in proc.stdout.splitlines():
            parts = line.split("|")
            if len(parts) < 4 or "." in parts[0] or "[" in parts[0] or not parts[1]:
                continue
            code, sig = _exit_code(parts[2])
            found[parts[0]] = JobResult(parts[0], parts[1].split()[0], code, sig, elapsed=_duration(parts[3]))
        return found

    def _jobcomp(self, base_id: str) -> dict[str, JobResult]:
        if not self.jobcomp_path:
            return {}
        try:
            with open(self.jobcomp_path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return {}
        found: dict[str, JobResult] = {}
        for line in text.split("\n")[:-1]:  # a line without its newline may still be being written
            if f"={base_id} " not in line:
                continue
            rec = _fields(line)
            if rec.get("ArrayJobId") == base_id and "ArrayTaskId" in rec:
                key = f"{base_id}_{rec['ArrayTaskId']}"
            elif rec.get("JobId") == base_id:
                key = base_id
            else:
                continue
            code, sig = _exit_code(rec.get("ExitCode", "0:0"))
            found[key] = JobResult(key, rec.get("JobState", "UNKNOWN").split()[0], code, sig,
                                   elapsed=_span(rec.get("StartTime"), rec.get("EndTime")))
            if rec.get("JobId") == base_id:
                found.setdefault(base_id, found[key])
        return found

    def _nowhere(self, job_id: str) -> str:
        where = ["scontrol"] + ([] if self._no_accounting else ["sacct"])
        where += [f"jobcomp file {self.jobcomp_path}"] if self.jobcomp_path else []
        return f"Slurm job {job_id} is unknown to {', '.join(where)}"


@dataclass(frozen=True)
class SubmittedJob:
    """A submitted job. ``status``/``wait`` serve plain jobs; ``status_all``/``wait_all`` return one
    result per task and work for both plain and array jobs. ``output``/``error`` are the log path
    patterns (``%j``/``%A``/``%a``), used when Slurm no longer reports the paths itself."""

    job_id: str
    client: SlurmClient = field(repr=False)
    script: str | None = None
    output: str | None = None
    error: str | None = None
    array: str | None = None
    name: str | None = None

    @property
    def tasks(self) -> list[int]:
        return array_tasks(self.array) if self.array else []

    def _plain(self, what: str) -> None:
        if self.array:
            raise TypeError(f"job {self.job_id} is an array job ({self.array}); use {what}_all()")

    def status(self) -> JobResult:
        self._plain("status")
        return self._paths(self.client.status(self.job_id), None)

    def status_all(self) -> list[JobResult]:
        if not self.array:
            return [self.status()]
        results = self.client.array_status(self.job_id, self.tasks)
        return [self._paths(r, t) for r, t in zip(results, self.tasks, strict=True)]

    def wait(self, timeout: float | None = None, check: bool = True, *,
             cancel_on_timeout: bool = False) -> JobResult:
        """Wait for a plain job to end; with ``check``, raise :class:`SlurmJobFailed` unless it succeeded."""
        self._plain("wait")
        result = self.client.wait(self.job_id, timeout, cancel_on_timeout=cancel_on_timeout)
        result = self._paths(result, None)
        if check and not result.ok:
            raise SlurmJobFailed(result)
        return result

    def wait_all(self, timeout: float | None = None, check: bool = True, *,
                 cancel_on_timeout: bool = False) -> list[JobResult]:
        """Wait for every task; with ``check``, raise :class:`SlurmJobFailed` for the first failed task."""
        if not self.array:
            return [self.wait(timeout, check, cancel_on_timeout=cancel_on_timeout)]
        tasks = self.tasks
        results = self.client.wait_array(self.job_id, tasks, timeout, cancel_on_timeout=cancel_on_timeout)
        results = [self._paths(r, t) for r, t in zip(results, tasks, strict=True)]
        failed = [r for r in results if not r.ok]
        if check and failed:
            raise SlurmJobFailed(failed[0], f"{len(failed)} of {len(results)} array tasks failed: "
                                            f"{', '.join(r.job_id for r in failed)}")
        return results

    def cancel(self) -> None:
        self.client.cancel(self.job_id)

    def _paths(self, result: JobResult, task: int | None) -> JobResult:
        out = result.stdout or _expand(self.output, self.job_id, task, self.name)
        err = result.stderr or _expand(self.error, self.job_id, task, self.name)
        return replace(result, stdout=out, stderr=err)


@dataclass
class SlurmJob:
    """A batch job: resources as ``#SBATCH`` options plus the command line the script runs.

    ``command`` is a list (joined with shell quoting) or a shell line. ``env`` is exported by the
    script, ``setup`` lines (``module load ...``) run before it. Log paths default to
    ``<workdir or cwd>/slurm-%j.out``/``.err`` (``%A_%a`` for arrays) and are always made absolute,
    so the paths a :class:`SubmittedJob` reports hold wherever it is inspected from.
    """

    command: list[str] | str
    name: str = "kmerx"
    nodes: int = 1
    ntasks: int = 1
    cpus_per_task: int = 1
    mem: str | None = None
    time: str | None = None
    partition: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    output: str | None = None
    error: str | None = None
    array: str | None = None
    setup: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.command, str):
            self.command = _str_list("command", self.command)
        if not (self.command.strip() if isinstance(self.command, str) else self.command):
            raise ValueError(f"command must not be empty, got {self.command!r}")
        _one_word("name", self.name, spaces=True)
        for arg in ("nodes", "ntasks", "cpus_per_task"):
            value = getattr(self, arg)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{arg} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{arg} must be >= 1, got {value!r}")
        if type(self.mem) is int:
            self.mem = f"{self.mem}M"
        if type(self.time) is int:
            self.time = str(self.time)
        if self.mem is not None and not (isinstance(self.mem, str) and _MEM_RE.fullmatch(self.mem)):
            raise ValueError(f"mem must look like '512M', '2G' or an int of MB, got {self.mem!r}")
        if self.time is not None and not (isinstance(self.time, str) and _TIME_RE.fullmatch(self.time)):
            raise ValueError(f"time must be minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, got {self.time!r}")
        if self.partition is not None:
            _one_word("partition", self.partition)
        if not isinstance(self.env, dict):
            raise TypeError(f"env must be a dict of str to str, got {self.env!r}")
        for key, value in self.env.items():
            if not isinstance(key, str) or not _IDENT_RE.fullmatch(key):
                raise ValueError(f"env key must be a shell identifier, got {key!r}")
            if not isinstance(value, str):
                raise TypeError(f"env[{key!r}] must be a str, got {value!r}")
        for arg in ("workdir", "output", "error"):
            value = getattr(self, arg)
            if value is not None:
                setattr(self, arg, os.fspath(value))
                _one_word(arg, getattr(self, arg), spaces=True)
        if self.array is not None:
            if not isinstance(self.array, str) or not _ARRAY_RE.fullmatch(self.array):
                raise ValueError(f"array must look like '0-9', '0-9%2' or '1,3,5-7', got {self.array!r}")
            array_tasks(self.array)
        self.setup = _str_list("setup", self.setup)
        self.extra = _str_list("extra", self.extra)
        for opt in self.extra:
            if not opt.startswith("-") or "\n" in opt:
                raise ValueError(f"extra entries must be sbatch options like '--exclusive', got {opt!r}")

    def log_paths(self) -> tuple[str, str]:
        """The absolute stdout/stderr path patterns the script asks Slurm for."""
        base = self.workdir or os.getcwd()
        stem = "slurm-%A_%a" if self.array else "slurm-%j"
        return (os.path.join(base, self.output or f"{stem}.out"),
                os.path.join(base, self.error or f"{stem}.err"))

    def render(self) -> str:
        """The sbatch script. ``#SBATCH`` lines come first because sbatch stops reading them at the
        first command; values are shell-quoted, which sbatch honours in directives."""
        out, err = self.log_paths()
        opts = [f"--job-name={shlex.quote(self.name)}", f"--nodes={self.nodes}", f"--ntasks={self.ntasks}",
                f"--cpus-per-task={self.cpus_per_task}"]
        opts += [f"--mem={self.mem}"] if self.mem else []
        opts += [f"--time={self.time}"] if self.time else []
        opts += [f"--partition={self.partition}"] if self.partition else []
        opts += [f"--array={self.array}"] if self.array else []
        opts += [f"--chdir={shlex.quote(self.workdir)}"] if self.workdir else []
        opts += [f"--output={shlex.quote(out)}", f"--error={shlex.quote(err)}", *self.extra]
        lines = ["#!/bin/bash", *(f"#SBATCH {o}" for o in opts), "set -euo pipefail"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]
        lines += self.setup
        lines += [f"cd {shlex.quote(self.workdir)}"] if self.workdir else []
        lines.append(shlex.join(self.command) if isinstance(self.command, list) else self.command)
        return "\n".join(lines) + "\n"

    def write(self, path: str | os.PathLike[str]) -> str:
        """Write the script atomically (a reader never sees half a script), mode 0755; returns the path."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".sbatch")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.render())
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    def submit(self, client: SlurmClient | None = None,
               script_dir: str | os.PathLike[str] | None = None) -> SubmittedJob:
        """Write the script (into ``script_dir``, else ``workdir``, else a new temp dir) and sbatch it."""
        client = client if client is not None else SlurmClient()
        folder = os.fspath(script_dir or self.workdir or tempfile.mkdtemp(prefix="kmerx-slurm-"))
        os.makedirs(folder, exist_ok=True)
        prefix = re.sub(r"[^\w.-]", "_", self.name) + "-"
        fd, path = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".sbatch")
        os.close(fd)
        job = client.submit(self.write(path))
        out, err = self.log_paths()
        return replace(job, output=out, error=err, array=self.array, name=self.name)


def _one_word(arg: str, value: object, spaces: bool = False) -> None:
    if (not isinstance(value, str) or not value or "\n" in value
            or (not spaces and any(c.isspace() for c in value))):
        raise ValueError(f"{arg} must be a non-empty single-line string, got {value!r}")


def _str_list(arg: str, value: object) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{arg} must be a list of str, got {value!r}")
    return list(value)


def _fields(line: str) -> dict[str, str]:
    """``Key=value Key=value`` (scontrol -o, jobcomp/filetxt) into a dict; a value may contain spaces."""
    rec: dict[str, str] = {}
    for token in _FIELD_SPLIT.split(line.strip()):
        key, sep, value = token.partition("=")
        if sep:
            rec.setdefault(key, value)
    return rec


def _from_scontrol(rec: dict[str, str], job_id: str) -> JobResult:
    code, sig = _exit_code(rec.get("ExitCode", "0:0"))
    paths = [p if p and p != "(null)" and _NO_VAL not in p else None
             for p in (rec.get("StdOut"), rec.get("StdErr"))]
    return JobResult(job_id, rec.get("JobState", "UNKNOWN").split()[0], code, sig, paths[0], paths[1],
                     _duration(rec.get("RunTime", "")))


def _exit_code(text: str) -> tuple[int, int]:
    code, _, sig = text.partition(":")
    try:
        return int(code), int(sig or 0)
    except ValueError:
        return 0, 0


def _duration(text: str) -> float | None:
    """Slurm's ``[D-]HH:MM:SS`` (also ``MM:SS``) as seconds; None for 'Unknown' and the like."""
    days, _, clock = text.strip().rpartition("-")
    try:
        parts = [float(p) for p in clock.split(":")]
        seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
        return seconds + 86400 * int(days or 0)
    except ValueError:
        return None


def _span(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(end or "") - datetime.fromisoformat(start or "")).total_seconds()
    except ValueError:
        return None


def _expand(pattern: str | None, job_id: str, task: int | None, name: str | None) -> str | None:
    """A log path pattern with the placeholders we can know filled in; None if others remain."""
    if pattern is None:
        return None
    subs = {"%%": "\0", "%A": job_id, "%x": name or ""}
    # An array task's %j is its own raw job id, which only Slurm knows; leaving it makes this None.
    subs.update({"%j": job_id} if task is None else {"%a": str(task)})
    for key, value in subs.items():
        pattern = pattern.replace(key, value)
    return None if "%" in pattern else pattern.replace("\0", "%")


def _tail(path: str, lines: int = 20) -> str | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    return "\n".join(data.splitlines()[-lines:]) or None
