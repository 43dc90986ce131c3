"""Applying an update to a served document: the model graph is walked once, and a failed
update leaves the document working."""

from __future__ import annotations

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
    import asyncio
    import threading

    import panel as pn

    async def start():
        with set_curdoc(served_doc):
            return await run_in(lambda: (pn.state.curdoc, threading.current_thread().name))

    seen, thread = asyncio.run(start())

    # Panel keeps the current document in a context variable: the thread must carry it over.
    assert seen is served_doc
    assert thread.startswith("workbench-")
