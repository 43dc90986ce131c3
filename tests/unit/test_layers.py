"""Imports point down: app -> components -> services. Components never touch docker,
nautilus_trader or sqlalchemy; services never touch panel (or HoloViews, which pulls it in)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN = {
    "components": {"docker", "nautilus_trader", "sqlalchemy", "app"},
    "services": {"panel", "holoviews", "components", "app"},
}


def _imported_roots(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_may(package):
    # Arrange
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"

    # Act
    offenders = {str(f.relative_to(REPO_ROOT)): sorted(_imported_roots(f) & FORBIDDEN[package])
                 for f in files}

    # Assert
    assert {f: bad for f, bad in offenders.items() if bad} == {}


def test_only_the_docker_gateway_calls_docker():
    # Arrange: every module of the shipped code
    files = [f for package in ("app", "components", "services")
             for f in sorted((REPO_ROOT / package).rglob("*.py"))]

    # Act
    importers = {str(f.relative_to(REPO_ROOT)) for f in files if "docker" in _imported_roots(f)}

    # Assert: one seam, so a remote DOCKER_HOST, errors and tests are handled in one place
    assert importers == {"services/engine/docker_api.py"}
