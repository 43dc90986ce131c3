"""Which backtest runtimes work now, and building the engine image from the app, over a real
workbench (SQLite, templates) with a hand-written Docker seam: the build itself is Docker's."""

from __future__ import annotations

import pytest

from services.errors import EngineError
from services.workbench import Workbench
from tests.conftest import close_workbench

IMAGE = "nautilus-workbench-engine:options-test"


class FakeDocker:
    """A Docker daemon that answers and has no engine image until one is built."""

    def __init__(self, build_output: list[dict]) -> None:
        self.images: set[str] = set()
        self.builds: list[tuple[str, dict, list[str]]] = []
        self._output = build_output

    def ping(self) -> tuple[bool, str]:
        return True, "ok"

    def image_present(self, image: str) -> bool:
        return image in self.images

    def build_image(self, path: str, tag: str, buildargs: dict):
        from pathlib import Path

        self.builds.append((tag, buildargs, sorted(p.name for p in Path(path).iterdir())))
        yield from self._output
        if not any("error" in chunk for chunk in self._output):
            self.images.add(tag)

    def image_id(self, tag: str) -> str:
        return "sha256:0123456789abcdef0123"


@pytest.fixture
def workbench(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_ENGINE_IMAGE", IMAGE)
    monkeypatch.setenv("WORKBENCH_ENGINE_BASE_IMAGE", "local/python:3.12")
    (tmp_path / "catalog").mkdir()
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(tmp_path / "catalog"))
    yield wb
    close_workbench(wb)


def _option(workbench, name: str):
    return next(o for o in workbench.backtests.runtime_options() if o.name == name)


def test_only_local_works_without_a_scheduler_address_or_an_engine_image(workbench):
    # Arrange
    workbench.backtests.docker = FakeDocker([])

    # Act
    options = workbench.backtests.runtime_options()

    # Assert
    assert [(o.name, o.available, o.fix) for o in options] == [
        ("local", True, ""), ("docker", False, "build_image"), ("dask", False, "")]
    assert f"The engine image {IMAGE} is not built yet" in options[1].reason
    assert "--dask-address" in options[2].reason


def test_building_the_image_attaches_the_docker_runtime(workbench):
    # Arrange
    docker = FakeDocker([{"stream": "Step 1/9 : FROM local/python:3.12\n"},
                         {"stream": "Successfully tagged " + IMAGE + "\n"}])
    workbench.backtests.docker = docker
    lines: list[str] = []

    # Act
    build = workbench.backtests.enable_docker_runtime(progress=lines.append)

    # Assert: built from the engine's Dockerfile on the configured base, then offered.
    assert build.tag == IMAGE and build.image_id.startswith("sha256:")
    assert lines == ["Step 1/9 : FROM local/python:3.12", f"Successfully tagged {IMAGE}"]
    ((tag, buildargs, context),) = docker.builds
    assert tag == IMAGE and buildargs == {"BASE_IMAGE": "local/python:3.12"}
    assert {"Dockerfile", "constraints.txt", "workbench"} <= set(context)
    assert _option(workbench, "docker").available
    (entry,) = workbench.audit.entries("engine.build_image")
    assert (entry.target, entry.outcome) == (IMAGE, "done") and "built in" in entry.detail


def test_a_failed_build_says_why_and_attaches_nothing(workbench):
    # Arrange
    workbench.backtests.docker = FakeDocker([{"error": "pull access denied for python"}])

    # Act
    with pytest.raises(EngineError) as failed:
        workbench.backtests.enable_docker_runtime()

    # Assert
    assert "Building the engine image failed: pull access denied" in str(failed.value)
    assert "--base-image" in str(failed.value)  # the fix for a machine without a registry
    assert workbench.backtests.attached_runtime("docker") is None
    assert _option(workbench, "docker").fix == "build_image"
    (entry,) = workbench.audit.entries("engine.build_image")
    assert entry.outcome == "failed"
