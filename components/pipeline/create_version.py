"""The Results page's "Create version from this run" button."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import button
from components.offloop import run_off_loop
from components.permissions import permission, restrict
from services import Workbench, WorkbenchError
from services.identity.principal import Principal


class VersionFromRun(Viewer):
    """Make (or find) the strategy version of the run on display."""

    workbench = param.ClassSelector(class_=Workbench, doc="The services acted through.")

    principal = param.ClassSelector(class_=Principal, allow_None=True, doc="Who acts.")

    run_id = param.String(default=None, allow_None=True, doc="The run the version is made of.")

    create = param.Event(label="Create version from this run",
                         doc="Make the version of the run's exact config.")

    message = param.String(default="", doc="The outcome (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        self._button = button(self.param.create, width=250)
        restrict(self._button, *permission(self.workbench, self.principal, "strategy.version"))
        self._message = pn.pane.Markdown(self.param.message, css_classes=["version-made"])
        self._layout = pn.Row(self._button, self._message)

    def __panel__(self):
        return self._layout

    @param.depends("run_id", watch=True)
    def _forget(self) -> None:
        self.message = ""

    @param.depends("create", watch=True)
    def _create(self) -> None:
        run_id, principal = self.run_id, self.principal
        if not run_id:
            return
        versions = self.workbench.pipeline.versions

        def done(result) -> None:
            if isinstance(result, WorkbenchError):
                self.message = f"Could not make a version of run {run_id}: {result}"
                return
            if isinstance(result, Exception):
                raise result
            version = result.version
            made = "Created" if result.created else "Already there:"
            self.message = (f"{made} version `{version.short_id}` — "
                            f"[open it on the Pipeline page](./pipeline?version="
                            f"{version.version_id})")

        run_off_loop(lambda: versions.create_from_run(run_id, principal=principal), done,
                     busy=self._button)
