"""The emergency stop on every page: kill every active engine after one confirmation."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import button
from components.offloop import in_urgent_thread
from components.permissions import permission, restrict
from services import Workbench, WorkbenchError
from services.identity.principal import Principal

MESSAGE_WIDTH = 420


class EmergencyStop(Viewer):
    """A button that kills every active engine after one confirmation (on every page)."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services whose engines it stops.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    arm = param.Event(label="EMERGENCY STOP", doc="Ask to confirm killing every active engine.")

    confirm = param.Event(label="Kill all engines now", doc="Kill every active engine.")

    cancel = param.Event(label="Cancel", doc="Do nothing.")

    armed = param.Boolean(default=False, doc="Waiting for the confirmation.")

    message = param.String(default="", doc="What the last emergency stop did.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("EmergencyStop needs a workbench (services.Workbench.open()).")
        self._arm = button(self.param.arm, color="danger", css_classes=["emergency-stop"],
                           width=170)
        # Paper engines are the least any role may stop; the service checks each engine's mode.
        restrict(self._arm, *permission(self.workbench, self.principal, "engine.emergency_stop"))
        self._confirm = button(self.param.confirm, color="danger", width=190)
        self._cancel = button(self.param.cancel, width=90)
        self._question = pn.pane.Markdown("", styles={"color": "white", "white-space": "nowrap"},
                                          margin=(0, 10), css_classes=["emergency-stop-message"])
        # Arming and cancelling show or hide this one row: a single property each, so the
        # confirmation answers at once even while the server is busy with other sessions. The
        # question sizes to its text: a fixed width, even hidden, pushed the header's user
        # menu past the screen's edge.
        self._confirmation = pn.Row(self._confirm, self._cancel, self._question, visible=False,
                                    margin=0)
        self._outcome = pn.pane.Markdown("", styles={"color": "white"}, margin=(0, 10),
                                         css_classes=["emergency-stop-message"], visible=False)
        self._layout = pn.Row(self._arm, self._confirmation, self._outcome, align="center")

    def __panel__(self):
        return self._layout

    @param.depends("arm", watch=True)
    def _on_arm(self) -> None:
        try:
            active = self._active_engines()
        except WorkbenchError as e:
            self._report(f"Cannot list engines: {e}")
            return
        question = (f"Kill {active} active engine(s)? " if active else
                    "No engine is active; confirm to check again and kill any that started.")
        self.message = question
        if self._question.object != question:
            self._question.object = question
        if self._outcome.visible:
            self._outcome.visible = False
        self.armed = True

    def _active_engines(self) -> int:
        live = self.workbench.live
        # The server's live state has the engines in memory: no database read on the event loop.
        engines = (live.engines.values() if live.is_following
                   else self.workbench.engines.list_sessions())
        return sum(1 for e in engines if e.is_active)

    @param.depends("cancel", watch=True)
    def _on_cancel(self) -> None:
        self.armed = False
        self.message = ""

    @param.depends("confirm", watch=True)
    async def _on_confirm(self) -> None:
        if not self.armed:
            return
        self.armed = False
        self._report("Killing…")
        try:
            killed = await in_urgent_thread(self.workbench.commands.emergency_all, "kill",
                                             principal=self.principal)
        except WorkbenchError as e:
            self._report(f"Emergency stop failed: {e}")
            return
        names = ", ".join(f"{e.name} ({e.session_id})" for e in killed)
        self._report(f"Emergency stop: killed {len(killed)} engine(s)"
                     f"{': ' + names if names else ''}.")
        if pn.state.notifications is not None:
            pn.state.notifications.warning(self.message, duration=10000)

    @param.depends("armed", watch=True)
    def _on_armed(self) -> None:
        self._confirmation.visible = self.armed

    def _report(self, text: str) -> None:
        """What the last emergency stop did, next to the button until the next arming."""
        self.message = text
        with pn.io.hold():
            self._outcome.object = text
            self._outcome.visible = True
            # The header counts the width of its visible members' fixed widths only; the
            # outcome is the header's last member, sized while shown.
            self._outcome.width = MESSAGE_WIDTH
