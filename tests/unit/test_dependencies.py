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
