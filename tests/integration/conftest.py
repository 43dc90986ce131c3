"""Shared fixtures of the integration tests: one generated sample catalog and Workbench per session.

Generating the synthetic sample catalog takes several seconds, so it is built once, in a temporary
folder (never the checkout's ``data/``), and every test that only reads it shares it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.catalog.sample import generate_sample_catalog, is_sample_catalog
from services.workbench import Workbench
from tests.conftest import cancel_unfinished, close_workbench


@pytest.fixture(scope="session")
def stop_unfinished():
    """``stop_unfinished(workbench)`` cancels every run of a workbench that is not final."""
    return cancel_unfinished


@pytest.fixture(scope="session")
def sample_catalog_path(tmp_path_factory) -> Path:
    """The workbench's generated sample catalog, written once per test session."""
    path = tmp_path_factory.mktemp("sample") / "catalog"
    generate_sample_catalog(path)
    assert is_sample_catalog(path)
    return path


@pytest.fixture(scope="session")
def workbench(tmp_path_factory, sample_catalog_path) -> Workbench:
    """A Workbench over the sample catalog with its own state folder and SQLite database."""
    state = tmp_path_factory.mktemp("state")
    wb = Workbench.open(state_dir=state, catalog=str(sample_catalog_path), scheduler=True)
    yield wb
    close_workbench(wb)
