"""Shared pieces of the benchmarks: run a manage.py command in a child
process and read its wall time and peak RSS."""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    output: str
    cpu_seconds: float = 0.0  # user + system, the process and the children it waited for


def proc_stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of the main
    thread of process ``pid`` so far (the kernel's schedstat)."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


class ThreadStates:
    """The states one thread was seen in, sampled every ``interval`` seconds
    while it runs (the kernel's letters: R running or waiting for a core,
    S asleep, D waiting on the disk). Sampling, because the kernel counts
    time blocked on the disk only with delay accounting, which is off here.
    A sample costs the sampler about 35 us of CPU (one pread of the open
    stat file and a sleep): 0.35% of a core at the default 10 ms, counted
    among the other processes."""

    def __init__(self, pid: int, interval: float = 0.01):
        self.path = f"/proc/{pid}/task/{pid}/stat"
        self.interval = interval
        self.seen: Counter = Counter()
        self._stopping = False
        self._thread = threading.Thread(target=self._sample, name="thread-states", daemon=True)

    def __enter__(self) -> "ThreadStates":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping = True
        self._thread.join()

    def share(self, state: str) -> float:
        """The fraction of the samples that found the thread in ``state``."""
        return self.seen[state] / max(sum(self.seen.values()), 1)

    def _sample(self) -> None:
        try:
            stat = os.open(self.path, os.O_RDONLY)
        except OSError:
            return  # the thread is gone already
        try:
            while not self._stopping:
                time.sleep(self.interval)
                self.seen[os.pread(stat, 1024, 0).rsplit(b")", 1)[1].split(None, 1)[0].decode()] += 1
        except (OSError, IndexError):
            return  # the thread is gone
        finally:
            os.close(stat)


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU time PostgreSQL has used so far: the postmaster's own and its
    children's, live ones and those it has reaped (a connection's backend
    exits when the connection closes)."""
    reaped = sum(int(value) for value in proc_stat(postmaster)[13:15]) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    total = cpu_seconds(postmaster) + reaped
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(proc_stat(entry.name)[1]) == postmaster:
                    total += cpu_seconds(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    return total


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used so far, all cores
    together (/proc/stat: all but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def manage(*arguments: str, env: dict[str, str], check: bool = True, profile: Path | None = None) -> Run:
    """Run ``manage.py`` with ``arguments``; raise if it fails (and ``check``).
    With ``profile``, under py-spy, which samples it and its workers into that
    file (its own CPU is then counted in the run's)."""
    started = time.monotonic()
    sampler = [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "--subprocesses", "--rate", "250",
               "--nonblocking", "--output", str(profile), "--"] if profile else []  # fmt: skip
    process = subprocess.Popen(
        [*sampler, sys.executable, "manage.py", *arguments],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode and check:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{output}")
    return Run(time.monotonic() - started, usage.ru_maxrss / 1024, output, usage.ru_utime + usage.ru_stime)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def local_mongo():
    """A throwaway in-memory MongoDB wire-protocol server in its own process
    (``bin/local-mongo``); yields its URI.

    Its own process, not this one: a child's peak RSS as the kernel reports it
    survives exec, so a fat benchmark process would inflate every figure.
    """
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bin" / "local-mongo"), "--port", str(port), "--memory"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready = server.stdout.readline()
        if "listening" not in ready:
            raise SystemExit(f"bin/local-mongo did not start: {ready}")
        yield f"mongodb://127.0.0.1:{port}/", server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
