"""Where a sweep's runs execute: only the runtimes that work now are offered; the others are
explained in place, with the fix the app can apply (an administrator builds the engine image
or attaches the docker runtime from here)."""

from __future__ import annotations

import logging

import panel as pn
import param
from panel.viewable import Viewer

from components.offloop import on_loop, run_off_loop
from components.permissions import permission
from services import Workbench, WorkbenchError
from services.backtest.runtime_options import RuntimeOption
from services.identity.principal import Principal

log = logging.getLogger(__name__)

RUNTIME_LABELS = {"local": "Local worker processes", "dask": "Dask cluster",
                  "docker": "Docker containers"}
FIX_LABELS = {"build_image": "Build engine image", "attach_docker": "Attach docker runtime"}


class RuntimeChoice(Viewer):
    """Choose the runtime among those that work now; see why the others do not."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the runtimes are read from.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    runtime = param.Selector(default="local", objects=["local"], doc="""
        Where the runs execute; only runtimes that work now are offered.""")

    options = param.List(default=[], item_type=RuntimeOption, doc="""
        Every runtime as it stands (read-only): available, or why not.""")

    fix = param.Event(label="Build engine image", doc="""
        Build the engine image if it is missing and attach the docker runtime (administrators).""")

    message = param.String(default="", doc="Outcome of the last fix (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("RuntimeChoice needs a workbench (services.Workbench.open()).")
        self._select = pn.widgets.Select.from_param(
            self.param.runtime, name="Runtime", sizing_mode="stretch_width",
            options={RUNTIME_LABELS["local"]: "local"})
        self._notes = pn.pane.Markdown("Checking which runtimes work…",
                                       sizing_mode="stretch_width", css_classes=["runtime-notes"])
        self._fix_button = pn.widgets.Button.from_param(self.param.fix, visible=False,
                                                        sizing_mode="stretch_width")
        self._outcome = pn.pane.Markdown("", sizing_mode="stretch_width", visible=False)
        self._may_fix = permission(self.workbench, self.principal, "engine.build_image")
        self._building = False
        self._layout = pn.Column(self._select, self._notes, self._fix_button, self._outcome,
                                 sizing_mode="stretch_width")
        self.refresh()

    def __panel__(self):
        return self._layout

    def refresh(self) -> None:
        """Read the runtimes again (off the event loop: Docker may take seconds to answer)."""
        backtests = self.workbench.backtests

        def shown(outcome) -> None:
            if isinstance(outcome, Exception):
                log.error("reading the runtimes failed", exc_info=outcome)
                self._notes.object = f"Cannot tell which runtimes work: {outcome}"
                return
            self._show(outcome)

        run_off_loop(backtests.runtime_options, shown)

    def _show(self, options: list[RuntimeOption]) -> None:
        self.options = options
        available = [o.name for o in options if o.available]
        self.param.runtime.objects = available
        self._select.options = {RUNTIME_LABELS.get(n, n): n for n in available}
        if self.runtime not in available:
            self.runtime = available[0]
        missing = [o for o in options if not o.available]
        self._notes.object = "\n".join(
            f"- **{RUNTIME_LABELS.get(o.name, o.name)}** (`{o.name}`) not offered: {o.reason}"
            for o in missing)
        fix = next((o.fix for o in missing if o.fix), "")
        self._fix_button.name = FIX_LABELS.get(fix, "")
        self._fix_button.visible = bool(fix) and self._may_fix[0]
        self._fix_button.disabled = self._building

    @param.depends("fix", watch=True)
    def _on_fix(self) -> None:
        if self._building or not any(o.fix for o in self.options):
            return
        backtests, principal = self.workbench.backtests, self.principal
        self._building = True
        self._fix_button.disabled = True
        self._say("Working on the docker runtime…")
        say = on_loop(self._say)

        def work():
            lines = [0]

            def progress(line: str) -> None:
                lines[0] += 1
                if lines[0] % 10 == 1:  # the build prints hundreds of lines: show some
                    say(f"Building the engine image… `{line[:120]}`")

            return backtests.enable_docker_runtime(principal=principal, progress=progress)

        def done(outcome) -> None:
            self._building = False
            if isinstance(outcome, WorkbenchError):
                self._say(f"The docker runtime is still not available: {outcome}")
            elif isinstance(outcome, Exception):
                log.error("enabling the docker runtime failed", exc_info=outcome)
                self._say("The docker runtime is still not available; the details are in the "
                          "server log.")
            else:
                built = (f"Built {outcome.tag} in {outcome.seconds:.0f} s. "
                         if outcome is not None else "")
                self._say(f"{built}The docker runtime is attached: choose it above.")
            self.refresh()

        run_off_loop(work, done, busy=self._fix_button)

    def _say(self, text: str) -> None:
        self.message = text
        self._outcome.object, self._outcome.visible = text, bool(text)
