"""Tests of services/settings.py: where state, database and catalog come from."""

from __future__ import annotations

import os

import pytest

from services.errors import ConfigurationError
from services.settings import Settings

ENV_VARS = ("WORKBENCH_STATE_DIR", "WORKBENCH_CATALOG", "DATABASE_URL", "WORKBENCH_TEMPLATES")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Each test starts without any workbench variable set."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_defaults_in_a_source_checkout(project_root):
    # Act
    settings = Settings.resolve()

    # Assert
    assert settings.state_dir == project_root / "var"
    assert settings.database_url == f"sqlite:///{project_root / 'var' / 'workbench.db'}"
    assert settings.catalog == str(project_root / "data" / "sample_catalog")
    assert settings.catalog_is_sample is True
    assert settings.templates_dir == project_root / "engine_templates"
    assert settings.runs_dir == project_root / "var" / "runs"


def test_environment_beats_defaults(monkeypatch, tmp_path):
    # Arrange
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "env-state"))
    monkeypatch.setenv("WORKBENCH_CATALOG", "s3://bucket/catalog")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://env@db/workbench")
    monkeypatch.setenv("WORKBENCH_TEMPLATES", str(tmp_path / "env-templates"))

    # Act
    settings = Settings.resolve()

    # Assert
    assert settings.state_dir == tmp_path / "env-state"
    assert settings.catalog == "s3://bucket/catalog"
    assert settings.catalog_is_sample is False
    assert settings.database_url == "postgresql+psycopg://env@db/workbench"
    assert settings.templates_dir == tmp_path / "env-templates"


def test_arguments_beat_environment(monkeypatch, tmp_path):
    # Arrange
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "env-state"))
    monkeypatch.setenv("WORKBENCH_CATALOG", "s3://bucket/env-catalog")
    monkeypatch.setenv("DATABASE_URL", "sqlite:////env/workbench.db")
    monkeypatch.setenv("WORKBENCH_TEMPLATES", str(tmp_path / "env-templates"))

    # Act
    settings = Settings.resolve(
        state_dir=tmp_path / "arg-state", catalog=str(tmp_path / "arg-catalog"),
        database_url="sqlite:////arg/workbench.db", templates_dir=tmp_path / "arg-templates",
    )

    # Assert
    assert settings.state_dir == tmp_path / "arg-state"
    assert settings.catalog == str(tmp_path / "arg-catalog")
    assert settings.catalog_is_sample is False
    assert settings.database_url == "sqlite:////arg/workbench.db"
    assert settings.templates_dir == tmp_path / "arg-templates"


def test_state_dir_from_environment_places_database_and_runs_inside_it(monkeypatch, tmp_path):
    # Arrange
    monkeypatch.setenv("WORKBENCH_STATE_DIR", str(tmp_path / "state"))

    # Act
    settings = Settings.resolve()

    # Assert
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'workbench.db'}"
    assert settings.runs_dir == tmp_path / "state" / "runs"


def test_relative_and_home_state_dirs_are_made_absolute(monkeypatch, tmp_path):
    # Arrange
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    # Act
    relative = Settings.resolve(state_dir="rel/state")
    home = Settings.resolve(state_dir="~/wb")

    # Assert
    assert relative.state_dir == tmp_path / "rel" / "state"
    assert home.state_dir == tmp_path / "home" / "wb"


def test_empty_catalog_variable_falls_back_to_the_sample_catalog(monkeypatch, project_root):
    # Arrange: e.g. docker compose's WORKBENCH_CATALOG=${WORKBENCH_CATALOG:-}
    monkeypatch.setenv("WORKBENCH_CATALOG", "")

    # Act
    settings = Settings.resolve()

    # Assert
    assert settings.catalog == str(project_root / "data" / "sample_catalog")
    assert settings.catalog_is_sample is True


def test_ensure_state_dir_creates_the_runs_folder(tmp_path):
    # Arrange
    settings = Settings.resolve(state_dir=tmp_path / "new" / "state")

    # Act
    settings.ensure_state_dir()

    # Assert
    assert (tmp_path / "new" / "state" / "runs").is_dir()
    assert [p.name for p in (tmp_path / "new" / "state").iterdir()] == ["runs"]


def test_state_dir_below_a_file_raises_configuration_error(tmp_path):
    # Arrange: a path under a regular file cannot be created, even by root
    (tmp_path / "afile").write_text("not a folder")
    settings = Settings.resolve(state_dir=tmp_path / "afile" / "state")

    # Act
    with pytest.raises(ConfigurationError) as info:
        settings.ensure_state_dir()

    # Assert
    message = str(info.value)
    assert str(tmp_path / "afile" / "state") in message
    assert "--state-dir" in message
    assert "WORKBENCH_STATE_DIR" in message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_read_only_state_dir_raises_configuration_error(tmp_path):
    # Arrange
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    state.chmod(0o500)
    settings = Settings.resolve(state_dir=state)

    # Act
    try:
        with pytest.raises(ConfigurationError) as info:
            settings.ensure_state_dir()
    finally:
        state.chmod(0o700)

    # Assert
    assert "--state-dir" in str(info.value)


def test_processes_checking_one_state_dir_at_once_do_not_trip_over_each_other(tmp_path):
    # Arrange: four checkers of one folder at once, as CLI commands started together are (a
    # shared probe file let one remove the probe another had just written).
    import threading

    settings = Settings.resolve(state_dir=tmp_path / "state")
    failures = []

    def check_repeatedly():
        for _ in range(300):
            try:
                settings.ensure_state_dir()
            except ConfigurationError as e:
                failures.append(str(e))

    threads = [threading.Thread(target=check_repeatedly) for _ in range(4)]

    # Act
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Assert: no check failed, and none left a probe behind.
    assert failures == []
    assert sorted(p.name for p in settings.state_dir.iterdir()) == ["runs"]
