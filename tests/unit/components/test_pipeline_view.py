"""The DeploymentPipeline viewer without a browser: versions by stage, the side-by-side diff,
a paper promotion asked for, confirmed and approved through its buttons, and the buttons a
viewer may not use (disabled with the reason; the service refuses them anyway).

Real services and real backtests over the sample catalog; no Docker (nothing is deployed).
"""

from __future__ import annotations

import re

import pytest

from components import DeploymentPipeline, ResultsViewer
from components.pipeline import VersionFromRun
from services.identity.principal import Principal

ALICE = Principal.user("alice", {"researcher", "trader"})
VERA = Principal.user("vera", {"viewer"})


def _stage_html(view: DeploymentPipeline, stage: str) -> str:
    """The board's column of one stage (the first strategy's)."""
    found = re.search(rf'class="pipeline-stage stage-{stage}"[^>]*><div class="title">{stage}'
                      r"</div>(.*?)</div>", view.board._board.object)
    assert found, f"no {stage} column on the board"
    return found.group(1)


@pytest.fixture
def paper_request(workbench, short_spec):
    """A pending paper request of a version made from a completed run (by the local operator)."""
    pipeline = workbench.pipeline
    run_id = workbench.backtests.submit(short_spec(label="pipeline view"))
    assert workbench.backtests.wait(run_id, timeout=180).status == "Completed"
    version = pipeline.versions.create_from_run(run_id).version
    return pipeline.promotions.request(version.version_id, "paper")


def _notes(component) -> list[str]:
    return [n.object for n in component.__panel__().select(
        lambda o: "permission-note" in getattr(o, "css_classes", [])) if n.visible]


def test_versions_show_in_their_stage_and_differ_side_by_side(workbench, short_spec):
    # Arrange: two versions of one strategy that differ in one parameter
    versions = workbench.pipeline.versions
    slow = versions.create_from_template(short_spec(
        parameters={"fast_ema_period": 10, "slow_ema_period": 20, "trade_size": "100"})).version
    fast = versions.create_from_template(short_spec(
        parameters={"fast_ema_period": 7, "slow_ema_period": 20, "trade_size": "100"})).version

    # Act
    view = DeploymentPipeline(workbench=workbench, principal=ALICE, version=slow.version_id)
    view.detail._other.value = fast.version_id

    # Assert: both wait in research; nothing is in paper or live
    research = _stage_html(view, "research")
    assert slow.short_id in research and fast.short_id in research
    assert slow.short_id not in _stage_html(view, "paper") + _stage_html(view, "live")
    table = view.board._table.value
    assert sorted(table["Version"]) == sorted([slow.short_id, fast.short_id])
    rows = view.detail._diff.value.values.tolist()
    assert ["parameters", "fast_ema_period", "10", "7"] in rows
    assert all(row[1] != "slow_ema_period" for row in rows)  # equal fields are not listed


def test_a_completed_run_becomes_a_version_promoted_and_approved_for_paper(workbench,
                                                                           short_spec):
    # Arrange: a real backtest, made into a version on the Results page
    run_id = workbench.backtests.submit(short_spec(label="pipeline view"), principal=ALICE)
    assert workbench.backtests.wait(run_id, timeout=180).status == "Completed"
    results = ResultsViewer(workbench=workbench, principal=ALICE)
    results.run_id = run_id
    results.version_from_run.param.trigger("create")
    (version,) = workbench.pipeline.versions.list()
    assert f"Created version `{version.short_id}`" in results.version_from_run.message
    again = VersionFromRun(workbench=workbench, principal=ALICE, run_id=run_id)
    again.param.trigger("create")
    assert again.message.startswith(f"Already there: version `{version.short_id}`")
    view = DeploymentPipeline(workbench=workbench, principal=ALICE)
    promotions = view.promotions

    # Act 1: ask for paper; nothing happens before the confirmation
    promotions.param.trigger("request_paper")
    assert promotions.confirmation.pending
    assert workbench.pipeline.promotions.list() == []
    promotions.confirmation.param.trigger("confirm")

    # Assert 1: the request, its passing backtest gate on the checklist, awaiting approval
    (request,) = workbench.pipeline.promotions.list()
    assert (request.version_id, request.stage, request.status) == (version.version_id,
                                                                   "paper", "Pending")
    checklist = promotions._checklist.object
    assert "&#10004; <b>backtest</b>" in checklist and "0 of 1 approvals" in checklist
    assert not promotions._buttons["approve"].disabled

    # Act 2: approve with a comment
    promotions.comment = "EMA 10/20 looks fine"
    promotions.param.trigger("approve")
    promotions.confirmation.param.trigger("confirm")

    # Assert 2: approved, audited with the comment, and the version moved to paper
    (approved,) = workbench.pipeline.promotions.list()
    assert approved.status == "Approved"
    assert [(d.actor, d.decision, d.comment) for d in approved.decisions] == [
        ("alice", "approve", "EMA 10/20 looks fine")]
    assert version.short_id in _stage_html(view, "paper")
    assert version.short_id not in _stage_html(view, "research")
    assert view.model.outcome.message_kind == "success"
    assert not view.deployments._buttons["deploy"].disabled


def test_with_no_version_chosen_promoting_and_deploying_are_not_active(workbench, short_spec):
    empty = DeploymentPipeline(workbench=workbench, principal=ALICE)
    asks = [empty.promotions._buttons["request_paper"], empty.promotions._buttons["request_live"],
            empty.deployments._buttons["deploy"]]
    assert all(b.disabled and b.description == "Select a version first." for b in asks)
    # No empty tables: each section says in words that there is nothing yet.
    tables = [empty.board._table, empty.promotions._table, empty.deployments._table]
    assert not any(t.visible for t in tables)

    version = workbench.pipeline.versions.create_from_template(short_spec()).version
    chosen = DeploymentPipeline(workbench=workbench, principal=ALICE, version=version.version_id)
    asks = [chosen.promotions._buttons["request_paper"], chosen.deployments._buttons["deploy"]]
    assert not any(b.disabled for b in asks), [(b.name, b.description) for b in asks]
    assert chosen.board._table.visible


def test_a_viewer_sees_every_action_disabled_with_the_reason(workbench, paper_request):
    # Act
    view = DeploymentPipeline(workbench=workbench, principal=VERA)
    make = VersionFromRun(workbench=workbench, principal=VERA, run_id="any")

    # Assert: each button is disabled and the notes say why
    buttons = {**view.promotions._buttons, **view.deployments._buttons}
    assert all(b.disabled for b in buttons.values()), {n: b.disabled for n, b in buttons.items()}
    assert make._button.disabled
    assert make._button.description == ("vera may not create strategy versions: the researcher "
                                         "or trader role is needed.")
    assert _notes(view.promotions) == [
        ("vera may not approve paper promotions: the approver or trader role is needed.\n\n"
         "vera may not request strategy promotions: the researcher or trader role is needed.")]
    assert "vera may not deploy strategies: the trader role is needed." in \
        _notes(view.deployments)[0]


def test_the_service_refuses_a_viewer_whatever_the_buttons_show(workbench, paper_request):
    view = DeploymentPipeline(workbench=workbench, principal=VERA)
    approve = view.promotions._buttons["approve"]
    approve.disabled = False  # as if the browser were tampered with

    view.promotions.param.trigger("approve")
    view.promotions.confirmation.param.trigger("confirm")

    assert view.model.outcome.message.startswith("Refused: vera may not approve paper")
    assert workbench.pipeline.promotions.get(paper_request.request_id).status == "Pending"
