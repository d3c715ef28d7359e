"""A real single-node Slurm cluster for tests: munged, slurmctld and slurmd, all private to a temp dir.

A test module that needs it writes ``pytest_plugins = ["slurm_cluster"]`` and asks for the session
fixture ``slurm_cluster``. Nothing is mocked: jobs go through sbatch to slurmctld and run under
slurmd on this host. The cluster has its own munge key and socket, free ports, state and spool
directories and a ``jobcomp/filetxt`` log, so it neither needs nor touches a system Slurm or munge.
It needs root (slurmd starts jobs as their user) and skips without root or Slurm/munge installed.
``MinJobAge=2`` makes slurmctld forget finished jobs quickly, so the post-purge paths get exercised.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kmerx.hpc.slurm import SlurmClient

_SBIN = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/usr/local/sbin", "/sbin"])
_NEEDED = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "sinfo", "squeue")


@dataclass
class SlurmCluster:
    """What a test needs: a client wired to this cluster and the environment for running Slurm commands."""

    dir: Path
    conf: str
    env: dict[str, str]
    client: SlurmClient
    partition: str
    cpus: int
    jobcomp: str
    node: str
    logs: list[Path] = field(default_factory=list)

    def log_tail(self, lines: int = 30) -> str:
        """The end of every daemon log, for failure messages."""
        parts = []
        for log in self.logs:
            text = log.read_text(errors="replace") if log.exists() else "(missing)"
            parts.append(f"--- {log.name} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)


class _Daemons:
    """The processes this fixture started; stopping touches only these, by their Popen handles."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env)
        self.procs.append((name, proc))
        return proc

    def dead(self) -> list[str]:
        return [f"{name} exited with {p.returncode}" for name, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _hardware(slurmd: str) -> dict[str, str]:
    """This host as slurmd sees it (``slurmd -C``), so the node never registers with a mismatch."""
    out = subprocess.run([slurmd, "-C"], capture_output=True, text=True, timeout=30, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("NodeName="))
    return dict(token.split("=", 1) for token in line.split())


def _wait_for(what: str, ready, daemons: _Daemons, cluster_logs, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        dead = daemons.dead()
        if dead or time.monotonic() > deadline:
            reason = "; ".join(dead) or f"not ready after {timeout:g} s"
            pytest.fail(f"test Slurm cluster: {what}: {reason}\n{cluster_logs()}", pytrace=False)
        time.sleep(0.2)


def _write_conf(d: Path, sock: str, node: str, hw: dict[str, str], ports: list[int]) -> str:
    real_mem = max(1, int(hw.get("RealMemory", "1024")) * 9 // 10)
    node_hw = " ".join(f"{k}={hw[k]}" for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket",
                                                 "ThreadsPerCore") if k in hw)
    (d / "plugstack.conf").write_text("")
    conf = d / "slurm.conf"
    conf.write_text(f"""\
ClusterName=kmerxtest
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
PlugStackConfig={d}/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=2
InactiveLimit=0
MinJobAge=2
SchedulerParameters=batch_sched_delay=0
JobCompType=jobcomp/filetxt
JobCompLoc={d}/jobcomp.txt
AccountingStorageType=accounting_storage/none
NodeName={node} NodeAddr=127.0.0.1 {node_hw} RealMemory={real_mem} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    return str(conf)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Start a private single-node Slurm (partition ``debug``) for the session; stop it afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a test Slurm cluster needs root (slurmd runs jobs as their user)")
    exe = {name: shutil.which(name, path=_SBIN) for name in _NEEDED}
    missing = sorted(name for name, path in exe.items() if path is None)
    if missing:
        pytest.skip(f"Slurm/munge not installed (missing {', '.join(missing)}); "
                    "apt-get install slurm-wlm munge")

    d = tmp_path_factory.mktemp("slurm")
    # A unix socket path must fit sun_path (~108 bytes); a deep --basetemp gets a short dir of its own.
    sock_dir = d if len(str(d)) < 80 else Path(tempfile.mkdtemp(prefix="kmx-munge-"))
    for sub in ("state", "spool"):
        (d / sub).mkdir()
    key = d / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = str(sock_dir / "munge.sock")

    node = socket.gethostname().split(".")[0]
    hw = _hardware(exe["slurmd"])
    conf = _write_conf(d, sock, node, hw, _free_ports(2))
    env = {"SLURM_CONF": conf}
    full_env = {**os.environ, **env}
    logs = [d / "munged.out", d / "slurmctld.out", d / "slurmd.out"]
    cluster = SlurmCluster(dir=d, conf=conf, env=env, partition="debug", cpus=int(hw.get("CPUs", "1")),
                           jobcomp=str(d / "jobcomp.txt"), node=node, logs=logs,
                           client=SlurmClient(env=env, poll=0.2, jobcomp_path=str(d / "jobcomp.txt")))

    daemons = _Daemons()
    try:
        # --force: the pytest temp dirs are 0700, which munged would otherwise refuse for its socket.
        munged = [exe["munged"], "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
                  f"--pid-file={d}/munged.pid", f"--seed-file={d}/munged.seed", f"--log-file={d}/munged.log"]
        daemons.start("munged", munged, logs[0], full_env)
        _wait_for("munged socket", lambda: os.path.exists(sock), daemons, cluster.log_tail)
        daemons.start("slurmctld", [exe["slurmctld"], "-D", "-f", conf], logs[1], full_env)
        daemons.start("slurmd", [exe["slurmd"], "-D", "-f", conf, "-N", node], logs[2], full_env)

        def node_idle() -> bool:
            proc = subprocess.run([exe["sinfo"], "-h", "-N", "-n", node, "-o", "%t"], capture_output=True,
                                  text=True, env=full_env, timeout=30, check=False)
            return proc.returncode == 0 and proc.stdout.strip() == "idle"

        _wait_for(f"node {node} idle in sinfo", node_idle, daemons, cluster.log_tail)
        yield cluster
    finally:
        _shutdown(exe, full_env, daemons)
        if sock_dir != d:
            shutil.rmtree(sock_dir, ignore_errors=True)


def _shutdown(exe: dict[str, str | None], env: dict[str, str], daemons: _Daemons) -> None:
    """Cancel this cluster's leftover jobs (so no job processes outlive it), then stop our daemons."""
    if not daemons.dead() and len(daemons.procs) == 3:
        run = {"capture_output": True, "text": True, "env": env, "timeout": 30, "check": False}
        subprocess.run([exe["scancel"], f"--user={getpass.getuser()}"], **run)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not subprocess.run([exe["squeue"], "-h"], **run).stdout.strip():
                break
            time.sleep(0.3)
    daemons.stop()
