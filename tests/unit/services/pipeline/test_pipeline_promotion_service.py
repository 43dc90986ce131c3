"""Promotion requests and decisions through the service over a real database: roles, the
four-eyes rules, gates and two people deciding at once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from services.db import AuditEntry
from services.errors import PermissionDenied, PipelineError, ValidationError
from services.identity.principal import Principal

ALICE = Principal.user("alice", {"researcher", "trader"})
BOB = Principal.user("bob", {"approver"})
CAROL = Principal.user("carol", {"approver"})
VIEWER = Principal.user("vera", set())
LIMITS = {"max_position": 1, "max_daily_loss": 500, "max_drawdown_pct": 5}


def _refusals(pipeline, actor):
    with pipeline.database.session() as session:
        return [(e.action, e.detail) for e in session.scalars(select(AuditEntry).where(
            AuditEntry.actor == actor, AuditEntry.outcome == "refused"))]


def test_a_request_links_the_versions_backtest_and_shows_its_gates(pipeline):
    # Act
    request = pipeline.promotions.request(pipeline.version_id, "paper", principal=ALICE)

    # Assert
    assert request.status == "Pending" and request.requested_by == "alice"
    assert [(g.name, g.passed) for g in request.gates] == [("backtest", True)]
    assert pipeline.versions.get(pipeline.version_id).completed_run_ids == ("run-1",)


def test_paper_is_approved_by_one_trader_even_the_author(pipeline):
    request = pipeline.promotions.request(pipeline.version_id, "paper", principal=ALICE)
    approved = pipeline.promotions.approve(request.request_id, comment="fine",
                                           principal=ALICE)
    assert approved.status == "Approved" and len(approved.approvals) == 1
    assert pipeline.versions.get(pipeline.version_id).stage == "paper"


def test_a_viewer_may_not_approve_and_the_refusal_is_audited(pipeline):
    request = pipeline.promotions.request(pipeline.version_id, "paper", principal=ALICE)
    with pytest.raises(PermissionDenied, match="vera may not approve paper promotions"):
        pipeline.promotions.approve(request.request_id, principal=VIEWER)
    assert _refusals(pipeline, "vera")[0][0] == "strategy.approve_paper"


def test_live_needs_two_approvers_other_than_the_author(pipeline):
    # Arrange: a paper run long enough and within the drift bounds
    pipeline.add_paper_drift(minutes=1500, correlation=0.99, pnl_pct=1.0)
    request = pipeline.promotions.request(pipeline.version_id, "live", risk_limits=LIMITS,
                                          principal=ALICE)
    assert request.gates_pass, request.gates
    alice_approver = Principal.user("alice", {"approver"})

    # Act / Assert: the author, then one approver twice, then a second approver
    with pytest.raises(PermissionDenied, match="alice requested this live promotion"):
        pipeline.promotions.approve(request.request_id, principal=alice_approver)
    with pytest.raises(PermissionDenied, match="the local operator"):
        pipeline.promotions.approve(request.request_id, principal=Principal.local())
    with pytest.raises(PermissionDenied, match="alice may not approve live promotions"):
        pipeline.promotions.approve(request.request_id, principal=ALICE)  # a trader
    once = pipeline.promotions.approve(request.request_id, principal=BOB)
    assert once.status == "Pending" and len(once.approvals) == 1
    with pytest.raises(PermissionDenied, match="bob already approved"):
        pipeline.promotions.approve(request.request_id, principal=BOB)
    twice = pipeline.promotions.approve(request.request_id, principal=CAROL)
    assert twice.status == "Approved" and [d.actor for d in twice.approvals] == ["bob", "carol"]
    assert [a for a, _ in _refusals(pipeline, "alice")] == ["strategy.approve_live"] * 2
    assert [a for a, _ in _refusals(pipeline, "bob")] == ["strategy.approve_live"]


def test_live_is_not_approved_while_gates_fail(pipeline):
    request = pipeline.promotions.request(pipeline.version_id, "live", principal=ALICE)
    failing = [g.name for g in request.gates if not g.passed]
    assert failing == ["paper_time", "drift", "risk_limits"]
    with pytest.raises(PipelineError, match="cannot be approved while gates fail: paper_time"):
        pipeline.promotions.approve(request.request_id, principal=BOB)
    rejected = pipeline.promotions.reject(request.request_id, comment="no paper run",
                                          principal=BOB)
    assert rejected.status == "Rejected"


def test_a_rejection_needs_a_comment_and_ends_the_request(pipeline):
    request = pipeline.promotions.request(pipeline.version_id, "paper", principal=ALICE)
    with pytest.raises(ValidationError, match="needs a comment"):
        pipeline.promotions.reject(request.request_id, comment=" ", principal=BOB)
    pipeline.promotions.reject(request.request_id, comment="not yet", principal=BOB)
    with pytest.raises(PipelineError, match="already Rejected"):
        pipeline.promotions.approve(request.request_id, principal=CAROL)


def test_one_pending_request_per_version_and_stage(pipeline):
    pipeline.promotions.request(pipeline.version_id, "paper", principal=ALICE)
    with pytest.raises(PipelineError, match="already pending"):
        pipeline.promotions.request(pipeline.version_id, "paper", principal=ALICE)


@pytest.mark.parametrize("limits, says", [
    ({"max_position": -1}, "max_position: must be a positive number"),
    ({"max_drawdown_pct": 150}, "at most 100"),
    ({"leverage": 3}, "leverage: not a risk limit"),
])
def test_bad_risk_limits_are_refused_naming_them(pipeline, limits, says):
    with pytest.raises(ValidationError, match=says):
        pipeline.promotions.request(pipeline.version_id, "live", risk_limits=limits,
                                    principal=ALICE)


def _race(pipeline, request_id, people, monkeypatch):
    """Both read the request, then both commit: the decisions really overlap."""
    barrier = threading.Barrier(len(people))
    read = pipeline.promotions._revision

    def read_then_wait(request):
        revision = read(request)
        barrier.wait(timeout=10)
        return revision

    monkeypatch.setattr(pipeline.promotions, "_revision", read_then_wait)
    outcomes = {}

    def decide(person):
        try:
            outcomes[person.name] = pipeline.promotions.approve(request_id, principal=person)
        except PipelineError as e:
            outcomes[person.name] = e

    threads = [threading.Thread(target=decide, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def test_two_approvers_racing_on_one_paper_request_count_once(pipeline, monkeypatch):
    request = pipeline.promotions.request(pipeline.version_id, "paper", principal=ALICE)
    outcomes = _race(pipeline, request.request_id, [BOB, CAROL], monkeypatch)
    errors = [o for o in outcomes.values() if isinstance(o, PipelineError)]
    assert len(errors) == 1 and "changed while" in str(errors[0])
    final = pipeline.promotions.get(request.request_id)
    assert final.status == "Approved" and len(final.approvals) == 1
    loser = next(name for name, o in outcomes.items() if isinstance(o, PipelineError))
    assert "changed while" in _refusals(pipeline, loser)[0][1]
