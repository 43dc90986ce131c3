"""Backtest workers in Docker containers from the engine image (``--runtime docker``).

The container runs the same ``python -m services.backtest.worker RUN_FOLDER`` as a local worker,
with the run folder mounted read-write and the catalog read-only at the same paths as on this
machine, so the same spec gives the same results. Containers are hardened like engines (no
network, all capabilities dropped, read-only root file system). Pause and resume use the cgroup
freezer (``docker pause``): a paused run uses no CPU.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from services.backtest.layout import WORKER_LOG
from services.backtest.runtime import Execution, Resources, Runtime, RuntimeLostError
from services.engine.docker_api import DockerGateway, unreadable_by_others
from services.engine.image import DEFAULT_IMAGE
from services.errors import RuntimeUnavailableError, WorkbenchError

CONTAINER_UID = 10001  # the engine image's unprivileged user


def engine_image(image: str | None = None) -> str:
    """The engine image backtest containers run: ``image``, else $WORKBENCH_ENGINE_IMAGE, else
    the default tag."""
    return image or os.environ.get("WORKBENCH_ENGINE_IMAGE") or DEFAULT_IMAGE


class DockerExecution(Execution):
    """A backtest container, followed through the Docker gateway."""

    # docker-py's wait times out with the client's own timeout: wait in slices of this.
    WAIT_SLICE_S = 10.0

    def __init__(self, gateway: DockerGateway, container_id: str) -> None:
        self._gateway = gateway
        self._id = container_id
        self._latest: Resources | None = None
        threading.Thread(target=self._follow_stats, name=f"stats-{container_id[:12]}",
                         daemon=True).start()

    def _follow_stats(self) -> None:
        try:
            for sample in self._gateway.raw_stats(self._id):
                cpu = (sample.get("cpu_stats") or {}).get("cpu_usage", {}).get("total_usage")
                memory = (sample.get("memory_stats") or {}).get("usage")
                if cpu:
                    self._latest = Resources(cpu / 1e9, int(memory or 0))
        except Exception:  # noqa: BLE001 - the container is gone; the last sample stays
            return

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = self.WAIT_SLICE_S if deadline is None else max(
                0.01, min(self.WAIT_SLICE_S, deadline - time.monotonic()))
            try:
                code = self._gateway.wait_container(self._id, step)
            except WorkbenchError as e:
                raise RuntimeLostError(f"Docker lost this run ({e})") from e
            if code is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return None
        self._remove()
        # Killed containers exit 137 (128 + SIGKILL): report it as the signal, like a process.
        return -(code - 128) if code > 128 else code

    def _remove(self) -> None:
        try:
            self._gateway.remove(self._id)
        except WorkbenchError:
            pass  # already gone

    def kill(self) -> None:
        try:
            self._gateway.kill(self._id)
        except WorkbenchError:
            pass  # not running any more

    def suspend(self) -> None:
        self._gateway.pause(self._id)

    def resume(self) -> None:
        self._gateway.unpause(self._id)

    def resources(self) -> Resources | None:
        return self._latest


class DockerRuntime(Runtime):
    """Workers in containers of the engine image on the Docker host behind ``gateway``."""

    name = "docker"

    def __init__(self, image: str | None = None, max_parallel: int | None = None,
                 gateway: DockerGateway | None = None) -> None:
        self.image = engine_image(image)
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self.gateway = gateway or DockerGateway()
        reachable, detail = self.gateway.ping()
        if not reachable:
            raise RuntimeUnavailableError(detail + " Nothing was queued.")
        if not self.gateway.image_present(self.image):
            raise RuntimeUnavailableError(
                f"The engine image {self.image} is not built; build it with `nautilus-workbench "
                "engine build-image`. Nothing was queued.")

    def capacity(self) -> int:
        return self.max_parallel

    def start(self, run_id: str, folder: Path) -> Execution:
        folder = Path(folder).resolve()
        catalog = _catalog_path(folder)
        volumes = {str(folder): {"bind": str(folder), "mode": "rw"}}
        if catalog is not None:
            if blocked := unreadable_by_others(catalog):
                raise OSError(f"the backtest container cannot read {blocked} (part of the "
                              f"catalog); allow it with `chmod o+rX`")
            volumes[catalog] = {"bind": catalog, "mode": "ro"}
        user = _container_user(folder)
        command = (f"exec /opt/venv/bin/python -m services.backtest.worker '{folder}' "
                   f"> '{folder / WORKER_LOG}' 2>&1")
        try:
            container_id = self.gateway.run_backtest(
                self.image, f"nautilus-backtest-{run_id}", command, user, volumes,
                {"nautilus-workbench.backtest": run_id})
        except WorkbenchError as e:
            raise OSError(str(e)) from e
        return DockerExecution(self.gateway, container_id)


def _catalog_path(folder: Path) -> str | None:
    """The local catalog folder the run reads (from its NautilusTrader config)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for data in config.get("data", []):
        path = data.get("catalog_path")
        if path and "://" not in path:
            return str(Path(path).resolve())
    return None


def _container_user(folder: Path) -> str:
    """Run as this machine's user when it is not root; as root, hand the run folder to the
    image's unprivileged user instead of running the container as root."""
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        return f"{uid}:{gid}"
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), CONTAINER_UID, CONTAINER_UID)
    os.chown(folder, CONTAINER_UID, CONTAINER_UID)
    return str(CONTAINER_UID)


def find_execution(run_id: str, gateway: DockerGateway | None = None) -> DockerExecution | None:
    """The running container of ``run_id`` (started by this or another process), if any."""
    gateway = gateway or DockerGateway()
    try:
        container_id = gateway.running_container(f"nautilus-backtest-{run_id}")
    except WorkbenchError:
        return None
    return DockerExecution(gateway, container_id) if container_id else None
