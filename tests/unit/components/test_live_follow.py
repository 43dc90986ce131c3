"""components.live.follow: redraws of a served page follow the live state, and a change that
arrives while the session's document is being torn down is dropped, not raised in the live
state's thread (it was: 'DocumentCallbackManager' object has no attribute '_change_callbacks')."""

from __future__ import annotations

import weakref

import param
from bokeh.document import Document
from panel.io.state import set_curdoc

from components.live import follow


class _Live(param.Parameterized):
    price = param.Number(default=0.0)


class _SessionContext:
    """What Bokeh gives a served document (only its existence matters to ``follow``)."""


def test_a_change_while_the_document_is_torn_down_is_dropped():
    # Arrange: a served document following the live state.
    doc, context, live, redraws = Document(), _SessionContext(), _Live(), []
    doc._session_context = weakref.ref(context)
    with set_curdoc(doc):
        follow(live, ["price"], lambda: redraws.append(live.price))

    # Act: Bokeh's Document.destroy, in its order: the context goes, then the callbacks,
    # and only after that the session's destroy callbacks run; a change arrives in between.
    doc._session_context = None
    doc.callbacks.destroy()
    live.price = 2.0  # raised AttributeError before

    # Assert: nothing was redrawn into the dead document.
    assert redraws == []


def test_a_change_redraws_on_the_next_tick_of_a_served_document():
    doc, context, live, redraws = Document(), _SessionContext(), _Live(), []
    doc._session_context = weakref.ref(context)
    with set_curdoc(doc):
        follow(live, ["price"], lambda: redraws.append(live.price))

    live.price = 1.0
    live.price = 2.0  # before the tick: one redraw for both

    (tick,) = doc.callbacks.session_callbacks
    assert redraws == []
    tick.callback()
    assert redraws == [2.0]
