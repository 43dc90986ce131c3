"""The test tree has no __init__.py: pytest imports every test module by its file name, so two
modules with one name stop the whole suite at collection."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_every_test_module_name_is_unique():
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))

    assert [name for name, count in names.items() if count > 1] == []
