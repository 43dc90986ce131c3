"""The four-eyes rules of promotion decisions that are not role checks (the authoriser does
those): who may approve a request, and how many approvals a stage needs."""

from __future__ import annotations

from dataclasses import dataclass

from services.identity.principal import LOCAL, Principal
from services.pipeline.records import APPROVE, LIVE, PENDING, Decision

APPROVALS_NEEDED = {"paper": 1, LIVE: 2}
STATE, PERSON, GATES = "state", "person", "gates"


@dataclass(frozen=True)
class Refusal:
    """Why a decision is refused: the request's ``state``, the ``person`` deciding (the
    four-eyes rules), or failing ``gates``."""

    kind: str
    message: str


def decision_problem(*, request_id: str, stage: str, status: str, requested_by: str,
                     principal: Principal, decisions: tuple[Decision, ...], decision: str,
                     failing_gates: tuple[str, ...] = ()) -> Refusal | None:
    """Why ``principal`` may not approve (or reject) the request, or None.

    Paper needs one approval (the author may give it); live needs two by distinct people with
    the approver role, neither of them the author, and never by the local operator, who is an
    OS account rather than a signed-in person.
    """
    if status != PENDING:
        return Refusal(STATE, f"Request {request_id} is already {status}; nothing to decide.")
    if stage == LIVE and principal.kind == LOCAL:
        return Refusal(PERSON, f"{principal.name} is the local operator, not a signed-in "
                       "person: live promotions are decided by people with the approver role "
                       "(act as one with --token or WORKBENCH_TOKEN).")
    if stage == LIVE and principal.name == requested_by:
        return Refusal(PERSON, f"{principal.name} requested this live promotion and may not "
                       "decide it: live needs two approvers other than the author.")
    earlier = next((d for d in decisions if d.actor == principal.name), None)
    if earlier is not None:
        did = "approved" if earlier.decision == APPROVE else "rejected"
        return Refusal(PERSON, f"{principal.name} already {did} request {request_id}; the next "
                       "decision must come from another person.")
    if decision == APPROVE and failing_gates:
        return Refusal(GATES, f"Request {request_id} cannot be approved while gates fail: "
                       + "; ".join(failing_gates))
    return None


def approved_after(stage: str, decisions: tuple[Decision, ...]) -> bool:
    """Whether the approvals among ``decisions`` are enough for ``stage``."""
    people = {d.actor for d in decisions if d.decision == APPROVE}
    return len(people) >= APPROVALS_NEEDED[stage]
