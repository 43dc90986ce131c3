"""The engine state machine: late or out-of-order events never rewrite a settled outcome."""

from __future__ import annotations

import pytest

from services.engine.states import ERROR, RUNNING, STARTING, STOPPED, STOPPING, may_move


@pytest.mark.parametrize("active", [STARTING, RUNNING, STOPPING])
def test_an_active_engine_can_stop_or_fail(active):
    assert may_move(active, STOPPED) and may_move(active, ERROR)


def test_a_stopping_engine_never_reports_running_again():
    assert not may_move(STOPPING, RUNNING) and not may_move(STOPPING, STARTING)


@pytest.mark.parametrize("late", [STARTING, RUNNING, STOPPING, ERROR])
def test_a_stopped_engine_stays_stopped(late):
    # e.g. "Stopping failed" arriving after an emergency stop already killed the container
    assert not may_move(STOPPED, late)


def test_an_engine_in_error_is_settled_only_by_a_kill():
    assert not may_move(ERROR, STOPPED)
    assert not may_move(ERROR, RUNNING, by_kill=True)
    assert may_move(ERROR, STOPPED, by_kill=True)
