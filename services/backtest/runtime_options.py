"""Which backtest runtimes work now, why the others do not, and the fix the app can apply.

A runtime is offered only when a queued run could start on it: ``local`` always; ``dask`` when
the server is connected to a Dask scheduler that answers; ``docker`` when Docker answers and the
engine image exists. For docker the app can do the rest itself (build the image, attach the
runtime); for dask the server must be started with a scheduler's address.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.backtest.docker_runtime import DockerRuntime, engine_image
from services.backtest.runtime import RUNTIME_NAMES
from services.engine.docker_api import DockerGateway
from services.engine.image import DEFAULT_BASE_IMAGE, ImageBuild, build_engine_image
from services.errors import WorkbenchError

if TYPE_CHECKING:
    from services.backtest.service import BacktestService
    from services.identity.principal import Principal

log = logging.getLogger(__name__)

# The engine image's base and wheels for a build from the app (the CLI takes them as options).
BASE_IMAGE_ENV = "WORKBENCH_ENGINE_BASE_IMAGE"
WHEELHOUSE_ENV = "WORKBENCH_ENGINE_WHEELHOUSE"


@dataclass(frozen=True)
class RuntimeOption:
    """One runtime: whether runs can start on it now, and if not why and what fixes it."""

    name: str
    available: bool
    reason: str = ""  # why not, saying what makes it work; empty when available
    fix: str = ""  # "build_image" or "attach_docker": the app can fix it (an admin); else ""


def runtime_options(backtests: BacktestService, gateway: DockerGateway) -> list[RuntimeOption]:
    """Every runtime, in RUNTIME_NAMES order (local first), as it stands now."""
    return [_option(backtests, gateway, name) for name in RUNTIME_NAMES]


def _option(backtests: BacktestService, gateway: DockerGateway, name: str) -> RuntimeOption:
    if name == "local":
        return RuntimeOption(name, True)
    attached = backtests.attached_runtime(name)
    try:
        backtests.check_runtime(name)
    except WorkbenchError as e:
        # Attached here but refused: another process's scheduler dispatches, without it.
        return RuntimeOption(name, False, str(e)) if attached else _missing(gateway, name)
    if name == "dask" and attached is not None and attached.capacity() == 0:
        return RuntimeOption(name, False, f"The Dask scheduler at {attached.address or 'the '
                             'local cluster'} does not answer (or has no workers); runs "
                             "queued there would wait.")
    if name == "docker":
        reachable, detail = gateway.ping()
        if not reachable:
            return RuntimeOption(name, False, detail)
    return RuntimeOption(name, True)


def _missing(gateway: DockerGateway, name: str) -> RuntimeOption:
    """Why a runtime that is not attached cannot be used, and the fix if the app has one."""
    if name == "dask":
        return RuntimeOption(name, False, (
            "No Dask scheduler is configured: start the server with --dask-address "
            "tcp://HOST:8786 (or --dask-address local for a cluster on this machine)."))
    reachable, detail = gateway.ping()
    if not reachable:
        return RuntimeOption(name, False, f"{detail} Start Docker (or set DOCKER_HOST), then "
                             "reload the page.")
    image = engine_image()
    if not gateway.image_present(image):
        return RuntimeOption(name, False, f"The engine image {image} is not built yet; an "
                             "administrator can build it here (a few minutes) or with "
                             "`nautilus-workbench engine build-image`.", "build_image")
    return RuntimeOption(name, False, f"Docker and the engine image {image} are ready, but "
                         "this server has not attached the docker runtime yet; an "
                         "administrator can attach it here.", "attach_docker")


def enable_docker_runtime(backtests: BacktestService, gateway: DockerGateway,
                          principal: Principal | None,
                          progress: Callable[[str], None] | None = None) -> ImageBuild | None:
    """Build the engine image if it is missing, then attach the docker runtime to this
    process's scheduler. Return the build (None when the image was there already)."""
    image = engine_image()
    actor = backtests.authorizer.require(principal, "engine.build_image", image)
    build = None
    try:
        if not gateway.image_present(image):
            build = build_engine_image(
                gateway, tag=image,
                base_image=os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE,
                wheelhouse=os.environ.get(WHEELHOUSE_ENV) or None, progress=progress)
        backtests.attach_runtime(DockerRuntime(image=image, gateway=gateway,
                                               max_parallel=backtests.max_parallel))
    except WorkbenchError as e:
        _audit(backtests, actor, image, "failed", str(e))
        raise
    _audit(backtests, actor, image, "done", f"built in {build.seconds:.0f} s" if build
           else "image present; docker runtime attached")
    return build


def _audit(backtests: BacktestService, actor, image: str, outcome: str, detail: str) -> None:
    audit = backtests.authorizer.audit
    if audit is not None:
        audit.record(actor, "engine.build_image", image, outcome, detail)
