"""A reusable confirmation step: what will happen, an optional warning, an optional typed
confirmation, then Confirm or Cancel.

Any action that changes something (start, stop, kill, an order, a risk limit) asks through one
of these. What was typed goes to the action as it is: the service checks it (live engines) and
audits a wrong one, so the rule holds for the API and the CLI too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import panel as pn
import param
from panel.viewable import Viewer


def button(parameter: param.Parameter, **options) -> pn.widgets.Button:
    """A button for an Event parameter, without the tooltip of its doc: a tooltip left over
    from a click covers the confirmation button that appears next to it."""
    return pn.widgets.Button.from_param(parameter, description=None, **options)


class ConfirmAction(Viewer):
    """Ask before doing: ``ask(summary, on_confirm, ...)`` shows the step, Confirm runs it."""

    summary = param.String(default="", doc="What confirming does (markdown).")

    warning = param.String(default="", doc="A risk to read first (markdown); empty: none.")

    expected = param.String(default="", doc="""
        Text the user must type to confirm (an engine's name); empty: no typing needed.""")

    typed = param.String(default="", label="Type the engine's name to confirm", doc="""
        What the user typed.""")

    confirm_label = param.String(default="Confirm", doc="The confirm button's label.")

    dismiss_label = param.String(default="Cancel", doc="""
        The label of the button that drops the action ("Keep it running" when the action
        itself is a cancel).""")

    danger = param.Boolean(default=False, doc="Show the confirm button as dangerous.")

    pending = param.Boolean(default=False, doc="A confirmation is being asked for.")

    confirm = param.Event(label="Confirm", doc="Carry out the action.")

    cancel = param.Event(label="Cancel", doc="Drop the action.")

    def __init__(self, **params):
        super().__init__(**params)
        self._on_confirm: Callable | None = None
        self._on_cancel: Callable | None = None
        self._warning = pn.pane.Alert("", alert_type="danger", visible=False,
                                      sizing_mode="stretch_width", css_classes=["confirm-warning"])
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._typed = pn.widgets.TextInput.from_param(self.param.typed, visible=False,
                                                      sizing_mode="stretch_width")
        self._confirm = button(self.param.confirm, color="primary")
        self._dismiss = button(self.param.cancel)
        self._layout = pn.Column(
            self._warning, self._summary, self._typed,
            pn.Row(self._confirm, self._dismiss, sizing_mode="stretch_width"),
            visible=False, sizing_mode="stretch_width",
            css_classes=["confirm-action"])
        self._draw()

    def __panel__(self):
        return self._layout

    def ask(self, summary: str, on_confirm: Callable, *, label: str = "Confirm",
            warning: str = "", expected: str = "", danger: bool = False,
            on_cancel: Callable | None = None, dismiss: str = "Cancel") -> None:
        """Show the step; ``on_confirm(typed)`` (a function or coroutine function) runs on
        Confirm with what was typed."""
        self._on_confirm, self._on_cancel = on_confirm, on_cancel
        self.param.update(summary=summary, warning=warning, expected=expected, typed="",
                          confirm_label=label, dismiss_label=dismiss, danger=danger,
                          pending=True)

    def dismiss(self) -> None:
        self._on_confirm = self._on_cancel = None
        self.param.update(pending=False, typed="")

    @param.depends("summary", "warning", "expected", "confirm_label", "dismiss_label", "danger",
                   "pending", watch=True)
    def _draw(self) -> None:
        self._summary.object = self.summary
        self._warning.object, self._warning.visible = self.warning, bool(self.warning)
        self._typed.visible = bool(self.expected)
        self._typed.placeholder = self.expected
        self._confirm.name = self.confirm_label
        self._dismiss.name = self.dismiss_label
        self._confirm.color = "danger" if self.danger or self.expected else "primary"
        self._layout.visible = self.pending

    @param.depends("confirm", watch=True)
    async def _confirmed(self) -> None:
        if not self.pending or self._on_confirm is None:
            return
        action, typed = self._on_confirm, self.typed.strip()
        self.dismiss()
        result = action(typed)
        if inspect.isawaitable(result):
            await result

    @param.depends("cancel", watch=True)
    def _cancelled(self) -> None:
        callback = self._on_cancel
        self.dismiss()
        if callback is not None:
            callback()
