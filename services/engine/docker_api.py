"""The workbench's only door to Docker (docker-py): engine containers, their logs and stats.

Every docker-py failure becomes an EngineError whose message says what to do. Works the same
against a local daemon and a remote one (DOCKER_HOST), except that paper engines bind-mount the
catalog folder, which must then exist on the Docker host.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from services.errors import DockerUnavailable, EngineError, ValidationError

if TYPE_CHECKING:  # the engine's configuration (msgspec, templates): only when starting one
    from services.engine.config import EngineConfig

DOCKER_DOWN = ("The Docker daemon is not reachable ({detail}). Start Docker (e.g. `sudo systemctl "
               "start docker`, or scripts/install-docker.sh here), or point DOCKER_HOST at a "
               "running daemon.")
DOCKER_DENIED = ("This user may not use the Docker socket ({detail}): add it to the socket's group "
                 "(`docker`), or in compose.yaml set DOCKER_GID=$(stat -c %g "
                 "/var/run/docker.sock).")
ENGINE_LABEL = "nautilus-workbench.engine"
_FRACTION = re.compile(r"\.(\d+)Z$")


def normalise_timestamp(ts: str) -> str:
    """Docker trims trailing zeros of RFC 3339 nanoseconds; pad so strings compare in order."""
    match = _FRACTION.search(ts)
    if match:
        return ts[:match.start()] + "." + match.group(1).ljust(9, "0") + "Z"
    return ts.replace("Z", ".000000000Z")


def _epoch_seconds(ts: str) -> int:
    return int(datetime.fromisoformat(ts[:19] + "+00:00").timestamp())


def parse_stats(sample: dict) -> dict[str, float]:
    """Metric values from one `docker stats` sample (CPU in % of one core, sizes in bytes)."""
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage", {}).get("total_usage", 0)
                 - pre.get("cpu_usage", {}).get("total_usage", 0))
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    memory = sample.get("memory_stats") or {}
    inactive = (memory.get("stats") or {}).get("inactive_file", 0)
    networks = sample.get("networks") or {}
    blkio = (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    return {
        "cpu_usage": cpu_delta / system_delta * online * 100.0 if system_delta > 0 else 0.0,
        "memory_usage": float(max(memory.get("usage", 0) - inactive, 0)),
        "memory_limit": float(memory.get("limit", 0)),
        "network_rx_bytes": float(sum(n.get("rx_bytes", 0) for n in networks.values())),
        "network_tx_bytes": float(sum(n.get("tx_bytes", 0) for n in networks.values())),
        "block_read_bytes": float(sum(b.get("value", 0) for b in blkio
                                      if str(b.get("op", "")).lower() == "read")),
        "block_write_bytes": float(sum(b.get("value", 0) for b in blkio
                                       if str(b.get("op", "")).lower() == "write")),
        "pids": float((sample.get("pids_stats") or {}).get("current", 0)),
    }


class DockerGateway:
    """The one seam to Docker: a thin, error-translating wrapper over docker-py for engine and
    backtest containers (nothing else in the workbench calls docker-py)."""

    def __init__(self, base_url: str | None = None, timeout: int = 20) -> None:
        self._base_url = base_url
        self._timeout = timeout
        self._client = None

    def client(self):
        import docker
        import docker.errors

        if self._client is None:
            try:
                self._client = (docker.DockerClient(base_url=self._base_url, timeout=self._timeout)
                                if self._base_url else docker.from_env(timeout=self._timeout))
            except docker.errors.DockerException as e:
                raise docker_unavailable(e) from e
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):
        import docker.errors
        import requests

        try:
            return fn(*args, **kwargs)
        except docker.errors.NotFound:
            raise
        except docker.errors.APIError as e:
            raise EngineError(f"Docker refused to {what}: {e.explanation or e}") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException,
                ConnectionError, OSError) as e:
            self._client = None  # reconnect next time
            raise docker_unavailable(e) from e

    def ping(self) -> tuple[bool, str]:
        try:
            self._call("answer a ping", lambda: self.client().ping())
            return True, "ok"
        except EngineError as e:
            return False, str(e)

    def image_present(self, image: str) -> bool:
        import docker.errors

        try:
            self._call("look up an image", self.client().images.get, image)
            return True
        except docker.errors.NotFound:
            return False

    def create_engine(self, image: str, name: str, config: EngineConfig, labels: dict,
                      environment: dict[str, str], catalog: str, session_id: str):
        import docker.errors

        client = self.client()
        if not self.image_present(image):
            raise DockerUnavailable(f"The engine image {image} is not built on this Docker host. "
                                    "Build it with `nautilus-workbench engine build-image` "
                                    "(offline: add --base-image and --wheelhouse; see the README).")
        info = self._call("describe the host", client.info)
        problems = []
        if config.cpu_limit > info.get("NCPU", 1):
            problems.append(f"cpu_limit: must be at most {info.get('NCPU')} (the Docker host's "
                            f"CPUs), was {config.cpu_limit:g}")
        memory_mb = info.get("MemTotal", 0) / 2**20
        if memory_mb and config.memory_limit_mb > memory_mb:
            problems.append(f"memory_limit_mb: must be at most {memory_mb:.0f} (the Docker "
                            f"host's memory), was {config.memory_limit_mb}")
        if problems:
            raise ValidationError(f"Resource limits out of range for engine '{config.name}'",
                                  problems)
        volumes = {}
        if "://" not in catalog:
            folder = os.path.abspath(catalog)
            if config.mode == "paper" and (blocked := unreadable_by_others(folder)):
                raise EngineError(
                    f"The engine container runs as an unprivileged user and cannot read {blocked}"
                    f" (part of the catalog {folder}). Allow it with `chmod o+rX` on that path, "
                    "or point the workbench at a catalog in a readable folder.")
            volumes[folder] = {"bind": "/catalog", "mode": "ro"}
        elif config.mode == "paper":
            raise ValidationError(f"Paper engines replay from a catalog folder on the Docker "
                                  f"host; the catalog {catalog} is a URL. Copy it to a local "
                                  "folder and point the workbench at it.")
        env = {**environment, "WORKBENCH_SESSION_ID": session_id,
               "WORKBENCH_MODE": config.mode, "WORKBENCH_NODE_CONFIG": json.dumps(config.node),
               "WORKBENCH_RISK": json.dumps(config.risk)}
        try:
            return self._call(
                "create the engine container", client.containers.create, image,
                name=name, labels=labels, environment=env, volumes=volumes,
                user="10001", read_only=True, tmpfs={"/tmp": "rw,size=64m"},
                cap_drop=["ALL"], security_opt=["no-new-privileges:true"],
                mem_limit=f"{config.memory_limit_mb}m", nano_cpus=int(config.cpu_limit * 1e9),
                pids_limit=512, network_mode="bridge" if config.network else "none",
                log_config={"type": "json-file", "config": {"max-size": "20m", "max-file": "3"}},
                stop_signal="SIGTERM", detach=True,
            )
        except docker.errors.NotFound as e:
            raise EngineError(f"Cannot create the engine container: {e.explanation}") from e

    def start(self, container) -> None:
        self._call("start the engine container", container.start)

    def _container(self, container_id: str):
        import docker.errors

        try:
            return self._call("find the container", self.client().containers.get, container_id)
        except docker.errors.NotFound:
            return None

    def stop(self, container_id: str, timeout: int) -> None:
        container = self._container(container_id)
        if container is not None:
            self._call("stop the engine container", container.stop, timeout=timeout)

    def kill(self, container_id: str) -> bool:
        """SIGKILL the container; False when it was not running."""
        import docker.errors

        container = self._container(container_id)
        if container is None:
            return False
        try:
            self._call("kill the engine container", container.kill)
            return True
        except EngineError as e:
            if "is not running" in str(e):
                return False
            raise
        except docker.errors.NotFound:
            return False

    def wait_exited(self, container_id: str, timeout: float) -> None:
        """Wait for a killed container to exit; Docker going away meanwhile is not an error."""
        try:
            container = self._container(container_id)
            if container is not None:
                self._call("wait for the engine container", container.wait, timeout=timeout)
        except EngineError:
            pass

    def exit_info(self, container_id: str) -> tuple[int, bool, bool] | None:
        """(exit code, OOM-killed, still running) of a container; None if Docker is away."""
        try:
            container = self._container(container_id)
        except EngineError:
            return None
        if container is None:
            return (-1, False, False)
        state = container.attrs.get("State", {})
        return int(state.get("ExitCode", -1)), bool(state.get("OOMKilled")), bool(
            state.get("Running"))

    def log_stream(self, container_id: str, since: str | None = None) -> Iterator[str]:
        """Lines "TIMESTAMP text" of the container's output, following it until it exits."""
        kwargs = {"stream": True, "follow": True, "timestamps": True}
        if since:
            kwargs["since"] = _epoch_seconds(since)
        chunks = self._call("read the engine's logs", self.client().api.logs, container_id,
                            **kwargs)
        buffer = b""
        try:
            for chunk in chunks:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    yield _normalise_line(raw.decode("utf-8", errors="replace").rstrip("\r"))
        except Exception as e:  # the connection broke: the caller decides from the exit state
            raise EngineError(f"The log stream of container {container_id[:12]} broke: {e}") \
                from e
        if buffer:
            yield _normalise_line(buffer.decode("utf-8", errors="replace"))

    def log_tail(self, container_id: str, lines: int) -> list[str]:
        """The last ``lines`` lines of a container's output, with timestamps, no following."""
        import docker.errors

        try:
            raw = self._call("read the engine's logs", self.client().api.logs, container_id,
                             stream=False, follow=False, timestamps=True, tail=lines)
        except docker.errors.NotFound:
            return []
        return [_normalise_line(x) for x in raw.decode("utf-8", errors="replace").splitlines()]

    def raw_stats(self, container_id: str) -> Iterator[dict]:
        """Docker's stats samples of a container (about one a second) until it exits."""
        try:
            stream = self._call("read the container's stats", self.client().api.stats,
                                container_id, stream=True, decode=True)
            for sample in stream:
                if not (sample.get("cpu_stats") or {}).get("system_cpu_usage"):
                    continue  # the first sample and the one after exit carry no usage
                yield sample
        except EngineError:
            raise
        except Exception as e:
            raise EngineError(f"The stats stream of {container_id[:12]} broke: {e}") from e

    def stats_stream(self, container_id: str) -> Iterator[dict[str, float]]:
        for sample in self.raw_stats(container_id):
            yield parse_stats(sample)

    # -- images -----------------------------------------------------------------------------
    def build_image(self, path: str, tag: str, buildargs: dict) -> Iterator[dict]:
        """Docker's build output (decoded chunks) of the context in ``path``."""
        return self._call("build the image", self.client().api.build, path=path, tag=tag,
                          buildargs=buildargs, rm=True, forcerm=True, decode=True)

    def image_id(self, tag: str) -> str:
        return self._call("look up an image", self.client().images.get, tag).id

    # -- backtest containers ----------------------------------------------------------------
    def run_backtest(self, image: str, name: str, command: str, user: str, volumes: dict,
                     labels: dict) -> str:
        """Start a hardened container (no network, no capabilities, read-only root) that runs
        ``command`` in a shell; returns its id."""
        container = self._call(
            "start the backtest container", self.client().containers.run, image,
            entrypoint=["tini", "--", "sh", "-c", command], detach=True, name=name, user=user,
            volumes=volumes, network_mode="none", read_only=True,
            tmpfs={"/tmp": "rw,size=256m"}, cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"], pids_limit=256, labels=labels,
            environment={"PYTHONDONTWRITEBYTECODE": "1"})
        return container.id

    def running_container(self, name: str) -> str | None:
        """The id of the running (or paused) container called ``name``, else None."""
        container = self._container(name)
        return container.id if container is not None and container.status in (
            "running", "paused") else None

    def wait_container(self, container_id: str, timeout: float) -> int | None:
        """The container's exit code once it exits within ``timeout`` seconds, else None.
        EngineError when Docker or the container went away."""
        import requests

        container = self._container(container_id)
        if container is None:
            raise EngineError(f"The container {container_id[:12]} is gone.")
        try:
            result = container.wait(timeout=timeout)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as e:
            # docker-py surfaces a wait that outlasts its timeout as a (wrapped) read timeout.
            if "timed out" in str(e).lower():
                return None
            raise docker_unavailable(e) from e
        except Exception as e:  # noqa: BLE001 - daemon gone, container removed
            raise EngineError(f"Docker lost the container {container_id[:12]} ({e})") from e
        return int(result.get("StatusCode", -1))

    def pause(self, container_id: str) -> None:
        container = self._container(container_id)
        if container is not None:
            self._call("pause the container", container.pause)

    def unpause(self, container_id: str) -> None:
        container = self._container(container_id)
        if container is not None:
            self._call("resume the container", container.unpause)

    def remove(self, container_id: str) -> None:
        """Remove the container, running or not (nothing if it is gone)."""
        import docker.errors

        container = self._container(container_id)
        if container is not None:
            try:
                self._call("remove the container", container.remove, force=True)
            except docker.errors.NotFound:
                pass

    def list_engines(self, instance: str) -> list[dict]:
        containers = self._call(
            "list engine containers", self.client().containers.list, all=True,
            filters={"label": [f"{ENGINE_LABEL}=1", f"nautilus-workbench.instance={instance}"]})
        return [{
            "id": c.id, "name": c.name, "status": c.status,
            "session_id": c.labels.get("nautilus-workbench.session"),
            "engine": c.labels.get("nautilus-workbench.name"),
            "mode": c.labels.get("nautilus-workbench.mode"),
            "image": (c.attrs.get("Config") or {}).get("Image"),
            "created": c.attrs.get("Created"),
            "health": ((c.attrs.get("State") or {}).get("Health") or {}).get("Status"),
        } for c in containers]

    def open_exec(self, container_id: str, command: list[str]) -> ExecSession:
        """Start ``command`` in the container with its stdin and stdout kept open (one
        long-lived session: a command then costs a line on it, not an exec start-up)."""
        import docker.errors

        api = self.client().api
        try:
            exec_id = self._call("start a command session in the engine", api.exec_create,
                                 container_id, command, stdin=True, stdout=True, stderr=True,
                                 tty=False)["Id"]
            sock = self._call("attach to the engine's command session", api.exec_start,
                              exec_id, socket=True)
        except docker.errors.NotFound as e:
            raise EngineError(f"The engine's container {container_id[:12]} is gone.") from e
        return ExecSession(sock, lambda: self.exec_exit_code(exec_id))

    def exec_once(self, container_id: str, command: list[str]) -> tuple[int, str]:
        """Run ``command`` in the container to its end; (exit code, stdout)."""
        import docker.errors

        container = self._container(container_id)
        if container is None:
            raise EngineError(f"The engine's container {container_id[:12]} is gone.")
        try:
            result = self._call("run a command in the engine", container.exec_run, command,
                                stdout=True, stderr=False, demux=False)
        except docker.errors.NotFound as e:
            raise EngineError(f"The engine's container {container_id[:12]} is gone.") from e
        return result.exit_code, (result.output or b"").decode("utf-8", errors="replace")

    def exec_exit_code(self, exec_id: str) -> int | None:
        try:
            return self._call("inspect a command session", self.client().api.exec_inspect,
                              exec_id).get("ExitCode")
        except Exception:  # noqa: BLE001 - only used to explain a session that ended
            return None

    def remove_exited(self, instance: str) -> list[str]:
        removed = []
        for item in self.list_engines(instance):
            if item["status"] in ("exited", "dead", "created"):
                container = self._container(item["id"])
                if container is not None:
                    self._call("remove an engine container", container.remove)
                    removed.append(item["name"])
        return removed


class ExecSession:
    """The stdin/stdout of one ``docker exec`` (the daemon's hijacked connection): write
    bytes to its stdin, iterate its output as (stream, bytes) frames (1 stdout, 2 stderr)."""

    def __init__(self, sock, exit_code) -> None:
        self._sock = sock
        self._raw = getattr(sock, "_sock", sock)  # docker-py's SocketIO wraps the socket
        self.exit_code = exit_code

    def write(self, data: bytes) -> None:
        try:
            self._raw.sendall(data)
        except OSError as e:
            raise EngineError(f"The engine's command session is closed ({e}).") from e

    def frames(self) -> Iterator[tuple[int, bytes]]:
        from docker.utils.socket import frames_iter

        try:
            yield from frames_iter(self._sock, tty=False)
        except (OSError, ValueError):  # ValueError: "I/O operation on closed file"
            return  # closed under the reader: the session is over

    def close(self) -> None:
        import socket

        for close in (lambda: self._raw.shutdown(socket.SHUT_RDWR), self._raw.close,
                      self._sock.close):
            try:
                close()
            except OSError:
                pass


def unreadable_by_others(folder: str) -> str | None:
    """The first path (an ancestor folder, the catalog or a file in it) that a user other than
    its owner cannot read or enter; None when the whole catalog is readable."""
    import stat

    path = os.path.abspath(folder)
    parts = path.split(os.sep)
    for i in range(2, len(parts) + 1):
        ancestor = os.sep.join(parts[:i]) or os.sep
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    for root, dirs, files in os.walk(path):
        for name in dirs:
            mode = os.stat(os.path.join(root, name)).st_mode
            if mode & (stat.S_IROTH | stat.S_IXOTH) != (stat.S_IROTH | stat.S_IXOTH):
                return os.path.join(root, name)
        for name in files:
            if not os.stat(os.path.join(root, name)).st_mode & stat.S_IROTH:
                return os.path.join(root, name)
    if not os.stat(path).st_mode & stat.S_IROTH:
        return path
    return None


def _normalise_line(line: str) -> str:
    ts, sep, rest = line.partition(" ")
    if sep and ts.endswith("Z") and "T" in ts:
        return normalise_timestamp(ts) + " " + rest
    return line


def docker_unavailable(error: Exception) -> DockerUnavailable:
    """The one-line reason Docker cannot be used: no daemon, or a socket this user may not use
    (the daemon is then running: 'start Docker' would send the user the wrong way)."""
    detail = _short(error)
    denied = "permission denied" in str(error).lower() or isinstance(error, PermissionError)
    return DockerUnavailable((DOCKER_DENIED if denied else DOCKER_DOWN).format(detail=detail))


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200]
