"""The engine image's build context pins the tested versions (constraints.txt)."""

from __future__ import annotations

from services.engine import image
from tests.conftest import REPO_ROOT


def test_the_build_context_carries_the_lock_file(tmp_path):
    image._context(tmp_path, wheelhouse=None)

    shipped = (tmp_path / "constraints.txt").read_text(encoding="utf-8")
    assert shipped == (REPO_ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert "nautilus_trader==1.231.0" in shipped
    assert "COPY constraints.txt" in (tmp_path / "Dockerfile").read_text(encoding="utf-8")


def test_from_an_installed_wheel_the_context_pins_this_environment(tmp_path, monkeypatch):
    # An installed wheel has no constraints.txt beside its packages.
    monkeypatch.setattr(image, "CONSTRAINTS", tmp_path / "absent" / "constraints.txt")
    import pandas

    image._context(tmp_path, wheelhouse=None)

    pins = (tmp_path / "constraints.txt").read_text(encoding="utf-8").splitlines()
    assert f"pandas=={pandas.__version__}" in pins
    assert not any(line.lower().startswith("nautilus-workbench==") for line in pins)
