"""Following the process-level live state from a component.

The board (services.live.LiveState) changes in its own thread. ``follow`` runs a component's
redraw on the component's own session (Bokeh documents may only be changed on their session's
event loop), at most one pending redraw at a time (a burst of events is one redraw of the
latest state), and stops following when the browser session ends. In a notebook or a test there
is no server session: the redraw runs at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import panel as pn
import param

from components.offloop import one_graph_walk


def follow(live: param.Parameterized, names: list[str], redraw: Callable[[], None]):
    """Call ``redraw()`` after ``live``'s parameters ``names`` change; returns the watcher."""
    doc = pn.state.curdoc
    served = doc is not None and doc.session_context is not None
    scheduled, ended = threading.Event(), threading.Event()

    def run() -> None:
        scheduled.clear()
        with one_graph_walk():
            redraw()

    def changed(*_events) -> None:
        if not served:
            redraw()
        elif not scheduled.is_set() and not ended.is_set():
            scheduled.set()
            try:
                doc.add_next_tick_callback(run)
            except AttributeError:
                # The session ended while this change was being applied in the live state's
                # thread: its document is torn down (Document.destroy drops the session
                # context first, before the session's destroy callbacks set ``ended``) and
                # there is nothing left to redraw.
                if not ended.is_set() and doc.session_context is not None:
                    raise

    def end(_context) -> None:
        ended.set()
        live.param.unwatch(watcher)

    watcher = live.param.watch(changed, names)
    if served:
        pn.state.on_session_destroyed(end)
    return watcher


def on_session_end(callback: Callable[[], None]) -> None:
    """Call ``callback()`` when the current browser session ends (nothing in a notebook)."""
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        doc.on_session_destroyed(lambda _context: callback())
