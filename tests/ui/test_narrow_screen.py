"""At 1280 px, beside the page's other column, rows of action buttons wrap instead of
crowding one another or running off the page (as they did: Halt, Cancel all and Flatten drawn
over each other on Engines, Emergency stop squeezed against Roll back on Pipeline)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import assert_no_traceback, sign_in

pytestmark = pytest.mark.ui

SCREEN_1280 = {"width": 1280, "height": 900}
ACTIONS = {
    "/engines": ["Stop…", "Restart…", "Halt new orders…", "Cancel all orders…", "Flatten…",
                 "Kill…", "Set…", "Pause…", "Resume…", "Stop strategy…"],
    "/pipeline": ["Request paper promotion…", "Request live promotion…", "Approve…",
                  "Reject…", "Deploy…", "Stop…", "Pause…", "Resume…", "Emergency stop…",
                  "Roll back…", "Step up rollout…", "Compute drift…"],
}


GAP_PX = 4  # buttons closer than this read as one


def _crowded(a: dict, b: dict) -> bool:
    """True if the boxes overlap or, side by side, are less than GAP_PX apart."""
    return (a["x"] < b["x"] + b["width"] + GAP_PX and b["x"] < a["x"] + a["width"] + GAP_PX
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


@pytest.mark.parametrize("path", sorted(ACTIONS))
def test_action_buttons_neither_crowd_nor_leave_the_screen_at_1280_px(browser, server, path):
    # Arrange
    context = browser.new_context(viewport=SCREEN_1280)
    sign_in(context, server)
    page = context.new_page()
    log_start = server.log_size()
    try:
        # Act
        page.goto(server.url + path)
        expect(page.get_by_role("heading", level=2).first).to_be_visible(timeout=30_000)
        buttons = [page.get_by_role("button", name=name, exact=True) for name in ACTIONS[path]]
        for button in buttons:
            expect(button).to_be_visible()
        boxes = dict(zip(ACTIONS[path], (b.bounding_box() for b in buttons), strict=True))

        # Assert
        assert_no_traceback(page)
        off_screen = [n for n, box in boxes.items() if box["x"] + box["width"] > 1280]
        assert not off_screen, f"past the right edge at 1280 px: {off_screen}"
        names = list(boxes)
        crowded = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                   if _crowded(boxes[a], boxes[b])]
        assert not crowded, f"drawn over or against each other at 1280 px: {crowded}"
        assert not server.log_problems(log_start)  # e.g. Bokeh's warning on a fixed size
    finally:
        context.close()


def test_every_engine_tab_is_in_reach_at_1280_px(browser, server):
    # Arrange
    context = browser.new_context(viewport=SCREEN_1280)
    sign_in(context, server)
    page = context.new_page()
    try:
        # Act
        page.goto(server.url + "/engines")
        expect(page.get_by_role("heading", level=2).first).to_be_visible(timeout=30_000)

        # Assert: the last tabs lie inside their strip, not scrolled away past its edge
        for name in ("Audit trail", "Alerts"):
            tab = page.locator(".bk-tab", has_text=name)
            expect(tab).to_have_count(1)
            inside = tab.evaluate("e => e.getBoundingClientRect().right"
                                  " <= e.parentElement.getBoundingClientRect().right")
            assert inside, f"the {name} tab runs past the edge of the tab strip at 1280 px"
    finally:
        context.close()
