"""An engine session's states and the only moves between them.

Engine state changes arrive from several places at once — the user (stop, emergency stop), the
node's own log stream (running, stopping, error), Docker (the container exited) — often out of
order. Every write goes through :func:`may_move`, so a late event can never undo a settled
outcome (a killed engine reported as failed, a stopped one revived).
"""

from __future__ import annotations

STOPPED, STARTING, RUNNING, STOPPING, ERROR = "Stopped", "Starting", "Running", "Stopping", "Error"
ACTIVE_STATES = (STARTING, RUNNING, STOPPING)

# State -> the states it may move to. Staying put is listed where it records something new (a
# status snapshot, the exit code of an engine already stopped).
TRANSITIONS: dict[str, frozenset[str]] = {
    STARTING: frozenset({STARTING, RUNNING, STOPPING, STOPPED, ERROR}),
    RUNNING: frozenset({RUNNING, STOPPING, STOPPED, ERROR}),
    STOPPING: frozenset({STOPPING, STOPPED, ERROR}),
    STOPPED: frozenset({STOPPED}),
    ERROR: frozenset({ERROR}),  # until the user acts: see may_move's ``by_kill``
}


def may_move(current: str, new: str, *, by_kill: bool = False) -> bool:
    """Whether a session in ``current`` may move to ``new``. An emergency stop (``by_kill``)
    also settles an engine in Error as Stopped (Killed): the user has acted on it."""
    if by_kill and current == ERROR and new == STOPPED:
        return True
    return new in TRANSITIONS.get(current, frozenset())
