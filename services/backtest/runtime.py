"""Where backtest workers run: one interface over local processes, a Dask cluster and Docker
containers (services.backtest.docker_runtime).

Every runtime runs the same thing, ``python -m services.backtest.worker RUN_FOLDER``, so the
same spec gives the same results everywhere; they differ only in where that process lives and
how it is paused, resumed and killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import psutil

from services.backtest.layout import CONTROL_FILE, RESOURCES_FILE, WORKER_LOG
from services.backtest.priority import WORKER_NICENESS
from services.errors import RuntimeUnavailableError
from services.settings import PROJECT_ROOT

RUNTIME_NAMES = ("local", "docker", "dask")
# How often a Dask supervisor looks at the control file and reports CPU and memory (seconds).
SUPERVISOR_POLL_S = 0.2
SUPERVISOR_REPORT_S = 1.0


@dataclass(frozen=True)
class Resources:
    """What a worker has used so far: CPU seconds (user + system) and resident memory."""

    cpu_seconds: float
    memory_bytes: int


class RuntimeLostError(Exception):
    """The runtime lost a run (e.g. the Dask cluster went away); the message says how."""


class Execution(ABC):
    """One started worker, controllable from any thread."""

    pid: int | None = None  # the worker's process id, when it runs on this machine

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """The worker's exit code (negative: killed by that signal), or None on timeout.

        Raises RuntimeLostError when the runtime can no longer tell what became of the worker.
        """

    @abstractmethod
    def kill(self) -> None:
        """End the worker now (also when it is paused)."""

    @abstractmethod
    def suspend(self) -> None:
        """Stop the worker from using CPU until :meth:`resume`."""

    @abstractmethod
    def resume(self) -> None:
        """Let a suspended worker continue."""

    @abstractmethod
    def resources(self) -> Resources | None:
        """CPU and memory used so far, or None when unknown."""


class Runtime(ABC):
    """Starts workers; at most :meth:`capacity` of its runs are started at once."""

    name: ClassVar[str]

    @abstractmethod
    def capacity(self) -> int:
        """How many runs may run at the same time."""

    @abstractmethod
    def start(self, run_id: str, folder: Path) -> Execution:
        """Start the worker of the run in ``folder``; raise OSError if it cannot start."""

    def close(self) -> None:
        """Release what the runtime holds (clusters, connections)."""


def unavailable_runtime_error(name: str) -> RuntimeUnavailableError:
    if name == "docker":
        return RuntimeUnavailableError(
            "The docker runtime is not attached: use --runtime docker on the command line, or "
            "Workbench.backtests.attach_runtime(DockerRuntime()) in Python (it needs a Docker "
            "daemon and the engine image).")
    if name == "dask":
        return RuntimeUnavailableError(
            "No Dask cluster is connected to this workbench. Use --runtime dask (a LocalCluster) "
            "or --runtime dask --dask-address tcp://HOST:8786 on the command line, or "
            "Workbench.backtests.attach_runtime(DaskRuntime(...)) in Python.")
    return RuntimeUnavailableError(
        f"Unknown runtime {name!r}; choose one of {', '.join(RUNTIME_NAMES)}.")


# -- processes -------------------------------------------------------------------------------------
def worker_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "services.backtest.worker", str(folder)]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # Workers import the project's packages (strategies, progress actor) even when the project
    # is not installed, e.g. when run from a source checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


# Loaded up front: the code between fork and exec must not import or take locks.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: the worker gets SIGKILL when the thread that started it ends, so a Dask worker
    # that dies takes its backtest with it instead of leaving an orphan writing results.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn_worker(folder: Path, die_with_parent: bool = False) -> subprocess.Popen:
    """Start the worker of ``folder`` in its own session, its output in the run's worker.log,
    at the batch priority from its first instruction."""
    with open(folder / WORKER_LOG, "wb") as log:
        process = subprocess.Popen(
            worker_command(folder), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=_worker_env(), start_new_session=True,
            # One C call, no locks: safe in a threaded parent despite the general warning.
            preexec_fn=_die_with_parent if die_with_parent and _LIBC is not None else None,  # noqa: PLW1509
        )
    # Set here, not by the worker itself: its interpreter start and imports (0.7 s of CPU)
    # came first, at the server's priority, two at once when a sweep started.
    with contextlib.suppress(OSError):  # it may have ended already
        os.setpriority(os.PRIO_PROCESS, process.pid, WORKER_NICENESS)
    return process


def _tree(pid: int) -> list[psutil.Process]:
    process = psutil.Process(pid)
    return [process, *process.children(recursive=True)]


def process_resources(pid: int) -> Resources | None:
    """CPU seconds and resident memory of ``pid`` and its children, or None once it is gone."""
    try:
        cpu, memory = 0.0, 0
        for process in _tree(pid):
            times = process.cpu_times()
            cpu += times.user + times.system
            memory += process.memory_info().rss
        return Resources(cpu, memory)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def reap(process: subprocess.Popen, timeout: float | None) -> tuple[int, Resources | None] | None:
    """Wait up to ``timeout`` seconds for a child to end: its exit code and the CPU time and peak
    memory it used in all, or None while it runs.

    The kernel's account at exit (``wait4``) is exact where sampling is not: a run shorter than
    one sample period would be measured at its first instant.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        except ChildProcessError:  # already collected elsewhere: the code is all that is left
            return (process.returncode or 0), None
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            used = Resources(usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024)  # Linux: KiB
            return process.returncode, used
        if deadline is not None and time.monotonic() >= deadline:
            return None
        remaining = 0.05 if deadline is None else deadline - time.monotonic()
        time.sleep(min(0.05, max(remaining, 0.0)))


def _signal_tree(pid: int, action: str) -> None:
    try:
        processes = _tree(pid)
    except psutil.NoSuchProcess:
        return
    for process in processes:
        try:
            getattr(process, action)()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        _signal_tree(pid, "kill")


class _ProcessTreeExecution(Execution):
    """A worker process on this machine, paused and measured through its process tree."""

    pid: int

    def suspend(self) -> None:
        _signal_tree(self.pid, "suspend")

    def resume(self) -> None:
        _signal_tree(self.pid, "resume")

    def resources(self) -> Resources | None:
        return process_resources(self.pid)


class LocalExecution(_ProcessTreeExecution):
    """A worker process this process started."""

    def __init__(self, process: subprocess.Popen) -> None:
        self._process = process
        self.pid = process.pid
        self._ended: tuple[int, Resources | None] | None = None

    def wait(self, timeout: float | None = None) -> int | None:
        if self._ended is None:
            self._ended = reap(self._process, timeout)
        return self._ended[0] if self._ended is not None else None

    def kill(self) -> None:
        if self._ended is None:
            _kill_group(self.pid)

    def resources(self) -> Resources | None:
        if self._ended is not None:
            return self._ended[1]
        return super().resources()



class PidExecution(_ProcessTreeExecution):
    """A worker on this machine that another process started (a previous server, the CLI).

    Its exit code is unknown; :meth:`wait` returns 0 and the caller looks at the run folder.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            psutil.Process(self.pid).wait(timeout)
        except psutil.TimeoutExpired:
            return None
        except psutil.NoSuchProcess:
            pass
        return 0

    def kill(self) -> None:
        _kill_group(self.pid)



def worker_alive(pid: int | None, run_folder: str) -> bool:
    """True if ``pid`` is still this run's worker (not a recycled pid of another process)."""
    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        return run_folder in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def find_worker_pid(run_folder: str) -> int | None:
    """The pid of a live worker of ``run_folder`` (a scheduler may have died after starting it
    and before writing its pid)."""
    wanted = ["-m", "services.backtest.worker", str(run_folder)]
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info.get("cmdline") or []
        if cmdline[-3:] == wanted and process.info.get("status") != psutil.STATUS_ZOMBIE:
            return process.pid
    return None


class LocalRuntime(Runtime):
    """Worker processes on this machine (the default)."""

    name = "local"

    def __init__(self, max_parallel: int | None = None) -> None:
        self.max_parallel = max_parallel or os.cpu_count() or 1

    def capacity(self) -> int:
        return self.max_parallel

    def start(self, run_id: str, folder: Path) -> Execution:
        return LocalExecution(spawn_worker(folder))


# -- control files: how a run on another machine is paused, resumed and cancelled ---------------
def write_json_atomically(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class ControlFileExecution(Execution):
    """A worker supervised elsewhere (a Dask worker), steered through files in its run folder.

    The run folder is shared (same path on every machine of the cluster); the supervisor reads
    ``control.json`` and writes ``resources.json`` every SUPERVISOR_REPORT_S, with its exit
    code at the end, so a scheduler that did not submit the run can still follow it.
    """

    # A supervisor silent for this long is gone (its machine or cluster went away).
    SILENT_S = 30.0

    def __init__(self, folder: Path) -> None:
        self._folder = Path(folder)

    def _command(self, action: str) -> None:
        write_json_atomically(self._folder / CONTROL_FILE, {"action": action, "ts": time.time()})

    def _report(self) -> tuple[dict | None, float]:
        path = self._folder / RESOURCES_FILE
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return None, float("inf")
        return read_json(path), age

    def supervised(self) -> bool:
        """True while a supervisor reports on the run (or has reported its end)."""
        report, age = self._report()
        return report is not None and (report.get("state") == "exited" or age < self.SILENT_S)

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = time.monotonic() + (timeout or 0.0)
        while True:
            report, age = self._report()
            if report is not None and report.get("state") == "exited" \
                    and report.get("exit_code") is not None:
                return report["exit_code"]
            if report is None or age >= self.SILENT_S:
                raise RuntimeLostError("its supervisor stopped reporting (the Dask worker or "
                                       "cluster went away)")
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(SUPERVISOR_REPORT_S, max(deadline - time.monotonic(), 0.01)))

    def kill(self) -> None:
        self._command("cancel")

    def suspend(self) -> None:
        self._command("pause")

    def resume(self) -> None:
        self._command("resume")

    def resources(self) -> Resources | None:
        data = read_json(self._folder / RESOURCES_FILE)
        if not data:
            return None
        return Resources(data["cpu_seconds"], data["memory_bytes"])


def supervise(folder: str) -> dict:
    """Run one worker and obey its control file; what a Dask task executes.

    Returns ``{"exit_code", "host", "pid", "cpu_seconds", "memory_bytes"}``.
    """
    path = Path(folder)
    process = spawn_worker(path, die_with_parent=True)
    host = socket.gethostname()
    state, peak, last_report, used = "running", 0, 0.0, None

    def report(exit_code: int | None = None) -> None:
        write_json_atomically(path / RESOURCES_FILE, {
            "host": host, "pid": process.pid, "state": state, "exit_code": exit_code,
            "cpu_seconds": used.cpu_seconds if used else 0.0, "memory_bytes": peak})

    while (ended := reap(process, SUPERVISOR_POLL_S)) is None:
        action = (read_json(path / CONTROL_FILE) or {}).get("action")
        if action == "cancel":
            _kill_group(process.pid)
        elif action == "pause" and state == "running":
            _signal_tree(process.pid, "suspend")
            state = "paused"
        elif action == "resume" and state == "paused":
            _signal_tree(process.pid, "resume")
            state = "running"
        now = time.monotonic()
        if now - last_report >= SUPERVISOR_REPORT_S:
            used = process_resources(process.pid) or used
            peak = max(peak, used.memory_bytes if used else 0)
            report()
            last_report = now
    exit_code, final = ended
    if final is not None:
        used, peak = final, max(peak, final.memory_bytes)
    state = "exited"
    report(exit_code)
    return {"exit_code": exit_code, "host": host, "pid": process.pid,
            "cpu_seconds": used.cpu_seconds if used else None, "memory_bytes": peak or None}


class DaskExecution(ControlFileExecution):
    """A run submitted to a Dask cluster as one :func:`supervise` task."""

    def __init__(self, future, folder: Path) -> None:
        super().__init__(folder)
        self._future = future
        self.outcome: dict | None = None

    def wait(self, timeout: float | None = None) -> int | None:
        from distributed import TimeoutError as DaskTimeoutError

        try:
            self.outcome = self._future.result(timeout=timeout)
        except (DaskTimeoutError, TimeoutError):
            return None
        except Exception as e:  # the task, its worker or the scheduler failed
            raise RuntimeLostError(f"the Dask cluster lost this run ({type(e).__name__}: {e})") from e
        return self.outcome["exit_code"]

    def kill(self) -> None:
        super().kill()
        self._future.cancel()  # a run the scheduler has not started yet never starts

    def resources(self) -> Resources | None:
        if self.outcome and self.outcome.get("cpu_seconds") is not None:
            return Resources(self.outcome["cpu_seconds"], self.outcome["memory_bytes"] or 0)
        return super().resources()


class DaskRuntime(Runtime):
    """Runs on a Dask cluster: a LocalCluster on this machine, or a scheduler's address.

    Each run is one task that supervises a worker process on a Dask worker, so it can be paused
    and killed (a thread cannot) and NautilusTrader starts fresh for every run. With a remote
    scheduler, the state folder must be reachable at the same path on every Dask worker.
    """

    name = "dask"

    def __init__(self, address: str | None = None, max_parallel: int | None = None,
                 connect_timeout: float = 5.0) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:
            raise RuntimeUnavailableError(
                "The dask runtime needs the 'distributed' package: pip install distributed") from e
        self.address = address
        self.max_parallel = max_parallel  # None: every thread of the cluster
        self._cluster = None
        try:
            if address is None:
                # One Dask worker process whose threads each supervise one backtest process.
                self._cluster = LocalCluster(
                    n_workers=1, threads_per_worker=max_parallel or os.cpu_count() or 1,
                    processes=True, dashboard_address=None, silence_logs=logging.ERROR)
                self._client = Client(self._cluster, timeout=connect_timeout, set_as_default=False)
            else:
                self._client = Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, RuntimeError) as e:
            if self._cluster is not None:
                self._cluster.close()
            where = address or "a new LocalCluster"
            raise RuntimeUnavailableError(
                f"Cannot reach the Dask scheduler at {where} ({type(e).__name__}: {e}). Check "
                "that the scheduler runs ('dask scheduler') and the address (tcp://HOST:8786); "
                "nothing was queued.") from e

    def capacity(self) -> int:
        try:
            threads = sum(self._client.nthreads().values())
        except Exception:  # scheduler gone: start nothing more; queued runs wait
            return 0
        return min(threads, self.max_parallel) if self.max_parallel else threads

    def start(self, run_id: str, folder: Path) -> Execution:
        (Path(folder) / CONTROL_FILE).unlink(missing_ok=True)
        future = self._client.submit(supervise, str(folder), key=f"backtest-{run_id}", pure=False)
        return DaskExecution(future, folder)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
