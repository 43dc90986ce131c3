"""Buttons a user may not use are disabled and say why; the service refuses anyway."""

from __future__ import annotations

import pytest

from components import BacktestConfigurator, CatalogBrowser, RunQueue, SweepView
from services.errors import PermissionDenied
from services.identity.principal import Principal

VIEWER = Principal.user("vera", {"viewer"})
RESEARCHER = Principal.user("rico", {"researcher"})


def _notes(component) -> list[str]:
    return [n.object for n in component.__panel__().select(lambda o: "permission-note" in
                                                           getattr(o, "css_classes", []))
            if n.visible]


def test_a_viewer_sees_the_run_button_disabled_with_the_reason(workbench):
    # Act
    viewer = BacktestConfigurator(workbench=workbench, principal=VIEWER)
    researcher = BacktestConfigurator(workbench=workbench, principal=RESEARCHER)

    # Assert
    assert viewer._run_button.disabled
    assert _notes(viewer) == ["vera may not run backtests: the researcher role is needed."]
    assert not researcher._run_button.disabled and _notes(researcher) == []


def test_the_service_refuses_a_viewer_whatever_the_component_shows(workbench):
    viewer = BacktestConfigurator(workbench=workbench, principal=VIEWER)
    viewer._run_button.disabled = False  # as if the browser were tampered with

    viewer.param.trigger("run")

    assert "vera may not run backtests" in viewer.message
    assert workbench.backtests.list_runs() == []
    with pytest.raises(PermissionDenied):
        workbench.backtests.submit(viewer.spec(), principal=VIEWER)


def test_a_researcher_may_import_and_export_but_not_delete_catalog_data(workbench):
    browser = CatalogBrowser(workbench=workbench, principal=RESEARCHER)

    notes = _notes(browser)

    assert notes == ["rico may not delete catalog data: the admin role is needed."]
    assert not browser._export_download.disabled and not browser._upload.disabled


def test_sweeps_and_the_queue_act_only_for_their_owner_or_an_admin(workbench, short_spec):
    # Arrange: rico's run, seen by another researcher and by an admin
    run_id = workbench.backtests.submit(short_spec(), principal=RESEARCHER)
    other = RunQueue(workbench=workbench, principal=Principal.user("olga", {"researcher"}))
    admin = RunQueue(workbench=workbench, principal=Principal.user("ada", {"admin"}))
    owner = RunQueue(workbench=workbench, principal=RESEARCHER)

    # Act
    for queue in (other, admin, owner):
        queue.selected = run_id

    # Assert
    assert other._buttons["cancel"].disabled
    assert "olga may not pause, resume or cancel backtests of another user" in other._note.object
    assert not admin._buttons["cancel"].disabled and not admin._note.visible
    assert not owner._buttons["cancel"].disabled
    assert SweepView(workbench=workbench, principal=VIEWER)._queue.principal == VIEWER
