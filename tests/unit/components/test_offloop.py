"""Applying an update to a served document: the model graph is walked once, and a failed
update leaves the document working."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import panel as pn
import param
import pytest
from bokeh.document import Document
from bokeh.models import Div
from panel.io.state import set_curdoc

from components import offloop
from components.offloop import one_graph_walk


@pytest.fixture
def served_doc(monkeypatch) -> Document:
    monkeypatch.setattr(offloop, "served", lambda: True)  # a browser session, as in the server
    doc = Document()
    doc.add_root(Div(text="page"))
    return doc


def test_models_added_inside_are_known_to_the_document_once_the_update_ends(served_doc):
    added = Div(text="added")
    with set_curdoc(served_doc), one_graph_walk():
        served_doc.add_root(added)
        assert served_doc.get_model_by_id(added.id) is None  # not walked yet: one walk, at the end

    assert served_doc.get_model_by_id(added.id) is added


def test_a_failed_update_raises_and_leaves_the_document_walking_its_graph(served_doc):
    with set_curdoc(served_doc), pytest.raises(RuntimeError, match="boom"), one_graph_walk():
        raise RuntimeError("boom")

    later = Div(text="later")
    served_doc.add_root(later)
    assert served_doc.get_model_by_id(later.id) is later


@pytest.mark.parametrize("run_in", [offloop.in_thread, offloop.in_urgent_thread])
def test_work_in_a_thread_sees_the_session_it_was_started_from(served_doc, run_in):
    async def start():
        with set_curdoc(served_doc):
            return await run_in(lambda: (pn.state.curdoc, threading.current_thread().name))

    seen, thread = asyncio.run(start())

    # Panel keeps the current document in a context variable: the thread must carry it over.
    assert seen is served_doc
    assert thread.startswith("workbench-")



@contextlib.contextmanager
def bokeh_server(page):
    """A real Bokeh server serving ``page(doc)`` (under Panel's current document, as Panel's
    server builds a page); yields (the event loop's thread id, a client session of it)."""
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.client import pull_session
    from bokeh.server.server import Server

    def in_panel(doc: Document) -> None:
        with set_curdoc(doc):
            page(doc)

    ready, holder = threading.Event(), {}

    def serve() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        server = Server({"/": Application(FunctionHandler(in_panel))}, port=0,
                        allow_websocket_origin=["127.0.0.1"])
        server.start()
        holder.update(server=server, loop_thread=threading.get_ident())
        ready.set()
        server.io_loop.start()

    threading.Thread(target=serve, daemon=True).start()
    assert ready.wait(10)
    server = holder["server"]
    try:
        with pull_session(url=f"http://127.0.0.1:{server.port}/") as session:
            yield holder["loop_thread"], session
    finally:
        server.io_loop.add_callback(server.stop)
        server.io_loop.add_callback(server.io_loop.stop)


def _until(condition, pull=None) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "not in 10 s"
        if pull is not None:
            pull()
        time.sleep(0.01)


def test_the_outcome_is_applied_off_the_event_loop_of_a_served_session():
    """Building the outcome's models (a sweep's leaderboard and heatmaps) on the event loop
    held every session's clicks, the emergency stop's included, for up to a second under load.
    The outcome must be applied in a thread other than the loop's, with the session's document
    current (work it starts goes off the loop again), and reach the browser's copy."""
    seen: dict = {}

    def page(doc: Document) -> None:
        shown = Div(text="waiting", name="shown")
        doc.add_root(shown)

        def done(result) -> None:
            seen.update(thread=threading.get_ident(), doc=pn.state.curdoc, result=result,
                        nested_served=offloop.served())
            shown.text = f"work gave {result}"

        offloop.run_off_loop(lambda: 6 * 7, done)

    with bokeh_server(page) as (loop_thread, session):
        _until(lambda: session.document.select_one({"name": "shown"}).text == "work gave 42",
               session.pull)

    assert seen["result"] == 42
    assert seen["thread"] != loop_thread
    assert seen["doc"] is not None and seen["doc"].session_context is not None
    assert seen["nested_served"] is True


def test_a_redraw_of_a_served_session_runs_with_its_document_current():
    """A real Bokeh server: a redraw runs with its session's document current, so off-loop work
    it starts (a sweep ranked again when a run ends) goes off the loop, not in place."""
    from components.live import follow

    class Live(param.Parameterized):
        price = param.Number(default=0.0)

    live, seen = Live(), []

    def page(doc: Document) -> None:
        doc.add_root(Div(text="page"))
        follow(live, ["price"], lambda: seen.append((pn.state.curdoc is doc, offloop.served())))

    with bokeh_server(page):
        live.price = 1.0  # from another thread, as the live state's
        _until(lambda: seen)

    assert seen == [(True, True)]


def test_a_session_answers_its_other_events_while_its_own_work_runs():
    """Holding the session's lock while its work ran, every other event of that session (its
    own header's emergency stop) waited for a 5 s results load to end."""
    release = threading.Event()

    def page(doc: Document) -> None:
        shown, other = Div(text="waiting", name="shown"), Div(text="", name="other")
        doc.add_root(shown)
        doc.add_root(other)
        offloop.run_off_loop(lambda: release.wait(20) and "loaded",
                             lambda result: setattr(shown, "text", str(result)))

        def answer() -> None:  # another event of the same session, after the work started
            other.text = "answered"

        doc.add_next_tick_callback(answer)

    with bokeh_server(page) as (_, session):
        def text(name: str) -> str:
            return session.document.select_one({"name": name}).text

        try:
            _until(lambda: text("other") == "answered", session.pull)
            assert text("shown") == "waiting"  # the work is still running
        finally:
            release.set()
        _until(lambda: text("shown") == "loaded", session.pull)


def test_outcomes_are_applied_in_the_order_their_work_started():
    """Work no longer holds the session: a slow first load must still not overwrite the
    outcome of a quick second one (a run chosen, then another)."""
    release, applied = threading.Event(), []

    def page(doc: Document) -> None:
        shown = Div(text="", name="shown")
        doc.add_root(shown)

        def done(result) -> None:
            applied.append(result)
            shown.text = result

        offloop.run_off_loop(lambda: release.wait(20) and "first", done)
        offloop.run_off_loop(lambda: "second", done)

    with bokeh_server(page) as (_, session):
        time.sleep(0.5)  # the second work is long done; its outcome waits for the first's
        assert applied == []
        release.set()
        _until(lambda: len(applied) == 2)
        _until(lambda: session.document.select_one({"name": "shown"}).text == "second",
               session.pull)

    assert applied == ["first", "second"]
