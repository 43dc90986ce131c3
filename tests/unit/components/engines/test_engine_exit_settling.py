"""A container that vanishes is settled once, and whoever asks meanwhile reads the settled end.

EngineService over the stand-in Docker of this folder's conftest: the engine's log follower and
a command that just found the container gone (``refresh``) both ask to settle the exit.
"""

from __future__ import annotations

import threading
import time

from services.engine.service import ERROR, RUNNING

FAST = {"replay_speed": 600, "fast_ema_period": 5, "slow_ema_period": 12}


def test_refresh_waits_for_the_follower_writing_the_end_of_a_vanished_engine(workbench, docker):
    # Arrange: a running engine whose follower writes its end slowly (as on a busy PostgreSQL)
    engines = workbench.engines
    info = engines.start("paper_trading", FAST, name="vanishing")
    assert engines.wait_for(info.session_id, (RUNNING,), timeout=10).state == RUNNING
    finish, writing = engines._finish, threading.Event()

    def slow_finish(*args, **kwargs):
        writing.set()
        time.sleep(0.5)
        return finish(*args, **kwargs)

    engines._finish = slow_finish

    # Act: the container is removed from outside; the follower claims the exit and writes it
    docker._exit(info.container_id, -1)
    assert writing.wait(5), "the follower never settled the exit"
    refreshed = engines.refresh(info.session_id)

    # Assert: the caller reads the settled Error, not the Running it had before
    assert refreshed.state == ERROR
    assert "container no longer exists" in refreshed.error
