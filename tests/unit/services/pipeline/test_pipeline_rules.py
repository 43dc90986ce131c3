"""The pipeline's pure rules: gates, the four-eyes approval rules, rollback selection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.errors import ConfigurationError
from services.identity.principal import Principal
from services.pipeline.approvals import (
    GATES,
    PERSON,
    STATE,
    approved_after,
    decision_problem,
)
from services.pipeline.gates import Evidence, PaperEvidence, check_gates, drift_within_bounds
from services.pipeline.records import Decision
from services.pipeline.rollback import ApprovedVersion, rollback_target
from services.pipeline.settings import PipelineSettings

SETTINGS = PipelineSettings()
LIMITS = {"max_position": 1.0, "max_daily_loss": 500.0, "max_drawdown_pct": 5.0}
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _gates(stage, evidence, limits=LIMITS):
    return {g.name: g for g in check_gates(stage, evidence, limits, SETTINGS)}


# -- gates ------------------------------------------------------------------------------------
def test_paper_needs_only_a_completed_backtest():
    assert list(_gates("paper", Evidence(1))) == ["backtest"]
    assert _gates("paper", Evidence(1))["backtest"].passed
    failed = _gates("paper", Evidence(0))["backtest"]
    assert not failed.passed and "no completed backtest" in failed.detail


def test_live_passes_with_a_long_enough_paper_run_within_drift_bounds():
    # Arrange
    evidence = Evidence(2, (PaperEvidence("dep-a", 1500.0, True, 0.95, 3.0),))

    # Act
    gates = _gates("live", evidence)

    # Assert
    assert [g.name for g in gates.values()] == ["backtest", "paper_time", "drift", "risk_limits"]
    assert all(g.passed for g in gates.values()), gates


@pytest.mark.parametrize("paper, failing, says", [
    ((), "paper_time", "there is no paper deployment"),
    ((PaperEvidence("dep-a", 1439.0, True, 0.99, 0.0),), "paper_time", "ran 1,439"),
    ((PaperEvidence("dep-a", 1440.0, False),), "drift", "drift not computed yet for dep-a"),
    ((PaperEvidence("dep-a", 1440.0, True, 0.89, 0.0),), "drift", "0.890 is below 0.9"),
    ((PaperEvidence("dep-a", 1440.0, True, 0.99, 5.5),), "drift", "5.50 %, more than 5"),
    ((PaperEvidence("dep-a", 1440.0, True, None, 0.0),), "drift", "undefined"),
])
def test_live_gates_fail_naming_themselves(paper, failing, says):
    gates = _gates("live", Evidence(1, paper))
    assert not gates[failing].passed
    assert says in gates[failing].detail


def test_the_drift_gate_takes_any_long_enough_run_within_bounds():
    evidence = Evidence(1, (PaperEvidence("dep-short", 100.0, True, 1.0, 0.0),
                            PaperEvidence("dep-bad", 2000.0, True, 0.5, 0.0),
                            PaperEvidence("dep-good", 1440.0, True, 0.91, 4.9)))
    gate = _gates("live", evidence)["drift"]
    assert gate.passed and gate.detail.startswith("dep-good")


def test_live_without_risk_limits_names_the_missing_ones():
    gate = _gates("live", Evidence(1), {"max_position": 2.0})["risk_limits"]
    assert not gate.passed
    assert "max_daily_loss, max_drawdown_pct" in gate.detail


def test_a_pnl_difference_of_zero_passes_but_an_undefined_one_does_not():
    assert drift_within_bounds(0.95, 0.0, SETTINGS)[0]
    ok, why = drift_within_bounds(0.95, None, SETTINGS)
    assert not ok and "undefined" in why


# -- settings ---------------------------------------------------------------------------------
def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("WORKBENCH_GATE_PAPER_MINUTES", "60")
    monkeypatch.setenv("WORKBENCH_GATE_MIN_CORRELATION", "0.8")
    monkeypatch.setenv("WORKBENCH_ROLLOUT_STEPS", "0.25,1")
    settings = PipelineSettings.from_environment()
    assert (settings.paper_minutes, settings.min_correlation, settings.rollout_steps) == (
        60.0, 0.8, (0.25, 1.0))
    assert settings.next_step(0.25) == 1.0 and settings.next_step(1.0) is None


@pytest.mark.parametrize("name, value", [
    ("WORKBENCH_GATE_PAPER_MINUTES", "-1"), ("WORKBENCH_GATE_PAPER_MINUTES", "a day"),
    ("WORKBENCH_GATE_MIN_CORRELATION", "1.5"), ("WORKBENCH_GATE_MAX_PNL_DIFF_PCT", "nan"),
    ("WORKBENCH_ROLLOUT_STEPS", "0.5,0.1,1"), ("WORKBENCH_ROLLOUT_STEPS", "0.1,0.5"),
])
def test_unusable_settings_are_one_line_errors_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as error:
        PipelineSettings.from_environment()
    assert name in str(error.value) and repr(value) in str(error.value)
    assert "\n" not in str(error.value)


# -- approvals --------------------------------------------------------------------------------
ALICE = Principal.user("alice", {"researcher", "trader"})
BOB = Principal.user("bob", {"approver"})
CAROL = Principal.user("carol", {"approver"})


def _problem(stage, principal, decisions=(), status="Pending", author="alice",
             decision="approve", failing=()):
    return decision_problem(request_id="pr-1", stage=stage, status=status, requested_by=author,
                            principal=principal, decisions=tuple(decisions), decision=decision,
                            failing_gates=tuple(failing))


def _approved_by(name):
    return Decision(name, "approve", "", T0)


def test_the_author_may_approve_a_paper_request():
    assert _problem("paper", ALICE) is None


def test_the_author_may_not_approve_a_live_request():
    refusal = _problem("live", Principal.user("alice", {"approver"}))
    assert refusal.kind == PERSON and "alice requested this live promotion" in refusal.message


def test_the_local_operator_may_not_decide_live_but_may_decide_paper():
    refusal = _problem("live", Principal.local(), author="bob")
    assert refusal.kind == PERSON and "local operator" in refusal.message
    assert _problem("paper", Principal.local()) is None


def test_one_person_decides_once():
    refusal = _problem("live", BOB, [_approved_by("bob")])
    assert refusal.kind == PERSON and "bob already approved" in refusal.message


def test_live_needs_two_distinct_approvers():
    assert not approved_after("live", (_approved_by("bob"),))
    assert not approved_after("live", (_approved_by("bob"), _approved_by("bob")))
    assert approved_after("live", (_approved_by("bob"), _approved_by("carol")))
    assert approved_after("paper", (_approved_by("alice"),))
    assert not approved_after("paper", (Decision("bob", "reject", "no", T0),))


def test_a_decided_request_takes_no_more_decisions():
    refusal = _problem("paper", BOB, status="Approved")
    assert refusal.kind == STATE and "already Approved" in refusal.message


def test_failing_gates_block_approval_but_not_rejection():
    refusal = _problem("paper", BOB, failing=["backtest: none"])
    assert refusal.kind == GATES and "backtest: none" in refusal.message
    assert _problem("paper", BOB, decision="reject", failing=["backtest: none"]) is None


# -- rollback ---------------------------------------------------------------------------------
def _approved(version, hours):
    return ApprovedVersion(version, f"pr-{version}-{hours}", T0 + timedelta(hours=hours))


def test_rollback_goes_to_the_version_approved_just_before_the_current_one():
    approved = [_approved("v1", 1), _approved("v2", 2), _approved("v3", 3)]
    assert rollback_target("v3", approved).version_id == "v2"
    assert rollback_target("v2", approved).version_id == "v1"


def test_a_version_approved_after_the_current_one_is_not_a_step_back():
    approved = [_approved("v1", 1), _approved("v2", 2), _approved("v3", 3)]
    assert rollback_target("v1", approved) is None


def test_a_version_approved_again_counts_at_its_latest_approval():
    approved = [_approved("v1", 1), _approved("v2", 2), _approved("v1", 3), _approved("v3", 4)]
    assert rollback_target("v3", approved).version_id == "v1"
    assert rollback_target("v1", approved).version_id == "v2"


def test_no_earlier_version_means_no_rollback():
    assert rollback_target("v1", [_approved("v1", 1)]) is None
    assert rollback_target("v1", []) is None
