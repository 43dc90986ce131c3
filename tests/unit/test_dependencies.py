"""Every third-party module the shipped code imports is declared in pyproject.toml, so a fresh
install gets it; optional ones are imported only where their extra says so."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.conftest import REPO_ROOT

SHIPPED = ("app", "components", "services", "engine_templates")
# Imported only inside functions of features that name their extra in the error they raise.
OPTIONAL = {"distributed": "dask", "psycopg": "postgres"}


def _imported_roots() -> dict[str, str]:
    roots: dict[str, str] = {}
    for package in SHIPPED:
        for path in (REPO_ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    roots.setdefault(name.split(".")[0], str(path.relative_to(REPO_ROOT)))
    return roots


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    def names(requirements):
        return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-")
                for r in requirements}
    return {"": names(project["dependencies"]),
            **{extra: names(reqs) for extra, reqs in project["optional-dependencies"].items()}}


def test_every_imported_distribution_is_declared():
    # Arrange
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    stdlib = set(sys.stdlib_module_names) | set(SHIPPED)

    # Act
    missing = {}
    for root, where in _imported_roots().items():
        if root in stdlib or root.startswith("_"):
            continue
        dists = {d.lower().replace("_", "-") for d in distributions.get(root, [root])}
        extra = OPTIONAL.get(root, "")
        if not dists & declared[extra]:
            missing[root] = (sorted(dists), where, extra or "dependencies")

    # Assert
    assert missing == {}


def _pins() -> dict[str, str]:
    lines = (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pairs = (line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))
    return {name.strip().lower().replace("_", "-"): version.strip() for name, version in pairs}


def test_every_declared_dependency_is_pinned_in_the_lock_file():
    declared = set().union(*_declared().values()) - {"nautilus-workbench"}

    missing = declared - set(_pins())

    assert not missing, (f"{sorted(missing)} are not in constraints.txt: run "
                         "scripts/lock-dependencies.sh")


def test_the_installed_versions_are_the_locked_ones():
    # The suite tests what a fresh install gets: ./run installs with -c constraints.txt.
    pins = _pins()
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version
                 for d in importlib.metadata.distributions() if d.metadata["Name"]}

    different = {name: (installed[name], pins[name]) for name in pins
                 if name in installed and installed[name] != pins[name]}

    assert not different, f"installed vs locked: {different}"
