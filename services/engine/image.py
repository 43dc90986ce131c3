"""Build the engine image from a small context: Dockerfile.engine (next to this module, so it
ships in the wheel) and the service package.

Online, pip inside the build installs NautilusTrader from PyPI. Offline (no registry or PyPI
reachable from the build), pass a host wheelhouse made with scripts/engine-wheelhouse.sh.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from services.errors import EngineError

SERVICES = Path(__file__).resolve().parent.parent  # the installed (or checked-out) package
DOCKERFILE = Path(__file__).resolve().parent / "Dockerfile.engine"
CONSTRAINTS = SERVICES.parent / "constraints.txt"  # in a checkout; absent from an installed wheel

DEFAULT_IMAGE = "nautilus-workbench-engine:1.231.0"
DEFAULT_BASE_IMAGE = "python:3.12-slim"
ENGINE_PYTHON = "/opt/venv/bin/python"  # the image's virtualenv (Dockerfile.engine)
# The service package: engine containers run services.engine_runtime, backtest containers
# services.backtest.worker; neither imports the server-side dependencies (SQLAlchemy, docker-py).
RUNTIME_PACKAGES = (SERVICES,)


@dataclass(frozen=True)
class ImageBuild:
    tag: str
    image_id: str
    seconds: float
    log_tail: list[str]


def _constraints() -> str:
    """The versions the image installs: the project's lock file, or (from an installed wheel)
    the versions of this environment, which the workbench was installed and tested with."""
    if CONSTRAINTS.is_file():
        return CONSTRAINTS.read_text(encoding="utf-8")
    from importlib.metadata import distributions

    pins = {d.metadata["Name"]: d.version for d in distributions() if d.metadata["Name"]}
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items())
                   if name.lower() != "nautilus-workbench")


def _context(folder: Path, wheelhouse: Path | None) -> None:
    shutil.copy(DOCKERFILE, folder / "Dockerfile")
    (folder / "constraints.txt").write_text(_constraints(), encoding="utf-8")
    for source in RUNTIME_PACKAGES:
        shutil.copytree(source, folder / "workbench" / source.name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = folder / "wheelhouse"
    wheels.mkdir()
    if wheelhouse is not None:
        if not wheelhouse.is_dir() or not any(wheelhouse.glob("*.whl")):
            raise EngineError(f"The wheelhouse {wheelhouse} holds no wheels. Make one with "
                              "scripts/engine-wheelhouse.sh, or build online without --wheelhouse.")
        for wheel in wheelhouse.glob("*.whl"):
            shutil.copy(wheel, wheels / wheel.name)


def build_engine_image(gateway, tag: str = DEFAULT_IMAGE, base_image: str = DEFAULT_BASE_IMAGE,
                       wheelhouse: str | Path | None = None, progress=None) -> ImageBuild:
    """Build the engine image with the Docker daemon behind ``gateway`` (a DockerGateway)."""
    started = time.perf_counter()
    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="workbench-engine-image-") as tmp:
        _context(Path(tmp), Path(wheelhouse) if wheelhouse else None)
        try:
            for chunk in gateway.build_image(tmp, tag, {"BASE_IMAGE": base_image}):
                if "error" in chunk:
                    raise EngineError(f"Building the engine image failed: {chunk['error'].strip()}"
                                      + _hint(base_image, chunk["error"], log))
                text = chunk.get("stream", "").rstrip()
                if text:
                    log.append(text)
                    if progress is not None:
                        progress(text)
        except EngineError as e:
            if "Building the engine image failed" in str(e):
                raise
            raise EngineError(f"Building the engine image failed: {e}"
                              + _hint(base_image, str(e), log)) from e
    return ImageBuild(tag, gateway.image_id(tag), time.perf_counter() - started, log[-20:])


def _hint(base_image: str, error: str, log: list[str]) -> str:
    text = error + "\n".join(log[-5:])
    if "pull access denied" in text or "manifest" in text or "dial tcp" in text:
        return (f". The base image {base_image} could not be pulled: pass a local one with "
                "--base-image (scripts/install-docker.sh makes one on machines with no registry).")
    if "pip" in text or "Could not find a version" in text or "No matching distribution" in text:
        return (". pip could not install NautilusTrader in the build: with no PyPI access, make a "
                "wheelhouse with scripts/engine-wheelhouse.sh and pass --wheelhouse.")
    return ""
