"""Shared test plumbing.

Tests that need something a developer's machine may lack (Chromium, Docker, the shared market
data files) skip there, but FAIL under CI: `.ci/run` sets WORKBENCH_REQUIRE_ALL=1 (and CI
services set CI=true), so a missing browser can never turn a red suite green by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def requirements_enforced() -> bool:
    """True under CI: optional-environment tests must run, not skip."""
    flags = (os.environ.get("WORKBENCH_REQUIRE_ALL", ""), os.environ.get("CI", ""))
    return any(f.lower() in ("1", "true", "yes") for f in flags)


def skip_or_fail(reason: str) -> None:
    """Skip on a developer machine; fail under CI (see module docstring)."""
    if requirements_enforced():
        pytest.fail(f"required under CI but unavailable: {reason}")
    pytest.skip(reason)


# The PostgreSQL server the integration suite also runs against (.ci/run starts one with
# scripts/install-postgres.sh); each test gets a database of its own on it.
POSTGRES_VARIABLE = "WORKBENCH_TEST_POSTGRES_URL"


def postgres_admin_url() -> str:
    """The admin URL of the test PostgreSQL server; skips (fails under CI) without one."""
    import sqlalchemy as sa

    url = os.environ.get(POSTGRES_VARIABLE)
    if not url:
        skip_or_fail(f"no PostgreSQL server for the tests ({POSTGRES_VARIABLE} is not set; "
                     "scripts/install-postgres.sh starts one and prints its URL)")
    try:
        with sa.create_engine(url).connect():
            pass
    except Exception as e:  # noqa: BLE001 - any reason it cannot be reached
        skip_or_fail(f"the PostgreSQL server at {url} is not reachable: {e}")
    return url


def create_postgres_database(admin_url: str) -> str:
    """A new, empty database on the test server; returns its URL."""
    import uuid

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"wbtest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(
            f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def shared_data_file(name: str) -> Path:
    """Path of a file in ../shared/data, skipping (or failing under CI) when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        skip_or_fail(f"{path} is absent (the shared market data is not checked out here)")
    return path


def cancel_unfinished(workbench) -> None:
    """Cancel every run of ``workbench`` that is not final, so no worker outlives a test."""
    from services.errors import BacktestError

    for info in workbench.backtests.list_runs():
        if not info.is_final:
            try:
                workbench.backtests.cancel(info.run_id)
            except BacktestError:
                pass  # finished between listing and cancelling


def wait_for_status(workbench, run_id: str, *statuses: str, timeout: float = 60.0):
    """The run once the scheduler (which starts runs in its own thread) has moved it into one
    of ``statuses``; fails the test with its last status after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        info = workbench.backtests.get(run_id)
        if info.status in statuses:
            return info
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} is still {info.status} after {timeout:.0f} s "
                        f"(waited for {', '.join(statuses)}): {info.error}")
        time.sleep(0.05)


def close_workbench(workbench) -> None:
    """A test's teardown: no worker outlives it, its scheduler stops, its database closes."""
    cancel_unfinished(workbench)
    workbench.close()


def docker_with_engine_image():
    """A DockerGateway to a daemon that has the engine image; skips (fails under CI) otherwise."""
    from services.engine.docker_api import DockerGateway
    from services.engine.image import DEFAULT_IMAGE

    gateway = DockerGateway()
    reachable, detail = gateway.ping()
    if not reachable:
        skip_or_fail(f"Docker is not available: {detail}")
    if not gateway.image_present(DEFAULT_IMAGE):
        skip_or_fail(f"the engine image {DEFAULT_IMAGE} is not built "
                     "(nautilus-workbench engine build-image; .ci/run builds it)")
    return gateway
