"""Untrusted text (ids, labels, file names, error messages) is never markup in any pane."""

from __future__ import annotations

import panel as pn
import pytest

import components  # noqa: F401 - sets the Markdown default under test

HOSTILE = ("<script>fetch('/api/v1/nautilus/engine/emergency-stop',{method:'POST',"
           "body:'{\"all\":true}'})</script>.SIM <img src=x onerror=alert(1)>")


@pytest.mark.parametrize("pane", [pn.pane.Markdown, pn.pane.Alert])
def test_raw_html_in_markdown_and_alerts_is_shown_as_text(pane):
    rendered = pane(f"Unknown instrument **{HOSTILE}**")._transform_object(
        f"Unknown instrument **{HOSTILE}**")["object"]

    assert "<script" not in rendered and "<img" not in rendered
    assert "&amp;lt;script&amp;gt;" in rendered  # escaped once more for the HTML model
    assert "&lt;strong&gt;" in rendered  # Markdown itself still works
