"""Slow work (disk, database, Docker, NautilusTrader) off the server's event loop.

In a served session the work runs in a thread while the component shows it is busy, and its
outcome is applied on the session's event loop, so every other session (the header's emergency
stop included) keeps answering. The values a callback needs are read before the work starts,
in the order the browser sent them, so a click never acts on stale input. In a notebook or a
test there is no server loop: the work runs at once, and the component is updated before the
call returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import panel as pn
from bokeh.document.locking import without_document_lock

log = logging.getLogger(__name__)

# The components' slow work has threads of its own, apart from the event loop's default
# executor: Bokeh applies and serialises every session's messages there (a click included), so
# result loads and sweep rankings of other sessions never take all of its threads. The
# emergency stop's kill has a pool of its own again: it never waits behind other work.
_WORK = ThreadPoolExecutor(max_workers=4, thread_name_prefix="workbench-work")
_URGENT = ThreadPoolExecutor(max_workers=2, thread_name_prefix="workbench-urgent")
# Per session, the outcome of the off-loop work started last: resolved once it is applied.
_LAST_OUTCOME: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ORDER_LOCK = threading.Lock()


async def _in(pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any, **kwargs: Any):
    # As asyncio.to_thread does: the call sees the caller's context variables.
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool, call)


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in the components' worker threads; awaits its result."""
    return await _in(_WORK, fn, *args, **kwargs)


async def in_urgent_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in threads kept for emergencies (nothing else queues there)."""
    return await _in(_URGENT, fn, *args, **kwargs)


def served() -> bool:
    """True inside a browser session of the served app."""
    doc = pn.state.curdoc
    return doc is not None and doc.session_context is not None


@contextlib.contextmanager
def one_graph_walk() -> Iterator[None]:
    """Changes to the current session's document that walk its model graph once, at the end.

    Bokeh walks every model of a document after each change that may add one (a table's
    columns and configuration, a new chart); on a big page that walk was the costliest part of
    an update on the event loop, repeated for every table."""
    doc = pn.state.curdoc
    if doc is None or not served():
        yield
        return
    failure = None
    # Bokeh's freeze() does not thaw when its body raises: a failed update would leave the
    # document frozen, and nothing added to it afterwards would reach the browser.
    with doc.models.freeze():
        try:
            yield
        except BaseException as e:  # noqa: BLE001 - raised again once thawed
            failure = e
    if failure is not None:
        raise failure


def run_off_loop(work: Callable[[], Any], done: Callable[[Any], None],
                 busy: pn.viewable.Viewable | None = None) -> None:
    """Run ``work()``; then ``done(result)`` where ``result`` is the value or the exception."""
    if not served():
        try:
            result = work()
        except Exception as e:  # noqa: BLE001 - handed to done(), which says what went wrong
            result = e
        done(result)
        return
    doc = pn.state.curdoc
    if busy is not None:
        busy.loading = True
    # The order is taken here, in the order the session's events call this: the tasks below
    # may start in any order (Bokeh starts an unlocked callback from its executor).
    with _ORDER_LOCK:
        earlier, mine = _LAST_OUTCOME.get(doc), concurrent.futures.Future()
        _LAST_OUTCOME[doc] = mine

    def apply(result: Any) -> None:
        try:
            with one_graph_walk():
                done(result)
        except Exception:  # noqa: BLE001 - a failed update must not kill the session
            log.exception("applying the outcome of off-loop work failed")
        finally:
            try:
                if busy is not None:
                    busy.loading = False
            finally:
                mine.set_result(None)  # the session's next outcome may go

    # Without the session's lock while the work runs: holding it, every other event of the
    # session waited for the work (its own header's emergency stop behind a 5 s results
    # load). The values the work needs were read before it started, and outcomes are applied
    # in the order their work started, so a slow earlier outcome never overwrites a later one.
    @without_document_lock
    async def task() -> None:
        try:
            result = await in_thread(work)
        except Exception as e:  # noqa: BLE001 - handed to done()
            result = e
        if earlier is not None:
            await asyncio.wrap_future(earlier)
        # Applied in a callback of its own, not in this task: Bokeh runs a plain (not async)
        # session callback in its executor under the session's lock, with the session's
        # document current, so building the outcome's models (a sweep's leaderboard and
        # heatmaps: 0.2-0.8 s under load) never holds the event loop, and work the outcome
        # starts (ranking a new sweep) goes off the loop again instead of running in place.
        doc.add_next_tick_callback(functools.partial(apply, result))

    doc.add_next_tick_callback(task)


def on_loop(callback: Callable[..., None]) -> Callable[..., None]:
    """``callback`` made callable from a worker thread: in a served session each call runs on
    the session's event loop, under its lock; elsewhere at once."""
    if not served():
        return callback
    doc = pn.state.curdoc

    def call(*args) -> None:
        def run() -> None:
            with one_graph_walk():
                callback(*args)

        doc.add_next_tick_callback(run)

    return call
