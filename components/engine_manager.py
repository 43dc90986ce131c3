"""The Engines page in one component: the engine list, the start form and the selected engine's
detail view (components.engines), with Docker's health above them.

Everything live (states, snapshots, orders, fills, positions, risk, feed health, resources,
alerts) comes from the workbench's live state, one per process, which the engine watchers feed;
no browser tab polls the database. Slow calls run off the event loop.
"""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.engines.detail import EngineDetail
from components.engines.engine_list import EngineList
from components.engines.start_form import EngineStartForm
from services import Workbench, WorkbenchError
from services.identity.principal import Principal


class EngineManager(Viewer):
    """List trading engines, start them from a template, watch them and act on them."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the component reads templates from and controls engines through.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    monitor = param.Parameter(default=None, doc="""
        The server's engine monitor (one per process): its state says whether Docker is
        reachable. Without it (in a notebook) the component asks the service itself.""")

    selected = param.String(default=None, allow_None=True, doc="""
        Session id of the engine the detail view shows.""")

    docker_status = param.String(default="", doc="""
        Why engines cannot be controlled right now (Docker unreachable, image missing), or empty.""")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("EngineManager needs a workbench (services.Workbench.open()).")
        self.live = self.workbench.live.start()
        shared = dict(workbench=self.workbench, principal=self.principal)
        self.engine_list = EngineList(live=self.live)
        self.start_form = EngineStartForm(**shared)
        self.detail = EngineDetail(live=self.live, **shared)
        self.engine_list.param.watch(lambda e: setattr(self, "selected", e.new), "selected")
        self.start_form.param.watch(lambda e: setattr(self, "selected", e.new), "started")
        self._docker = pn.pane.Alert("", alert_type="danger", visible=False,
                                     sizing_mode="stretch_width", css_classes=["docker-status"])
        self._start_message = pn.pane.Alert("", visible=False, sizing_mode="stretch_width")
        self.start_form.outcome.param.watch(self._on_start_message, ["message", "message_kind"])
        self._layout = pn.Column(
            self._docker,
            pn.Row(pn.Column(pn.Card(self.engine_list, title="Engines", collapsible=False,
                                     sizing_mode="stretch_width"),
                             pn.Card(self.detail, title="Selected engine", collapsible=False,
                                     sizing_mode="stretch_width"),
                             sizing_mode="stretch_width"),
                   pn.Column(self._start_message, self.start_form, width=440),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        self.selected = self.engine_list.selected
        self.refresh_docker()

    def __panel__(self):
        return self._layout

    @param.depends("selected", watch=True)
    def _on_selected(self) -> None:
        self.engine_list.selected = self.selected
        self.detail.session_id = self.selected

    def refresh_docker(self) -> None:
        """Say whether Docker is usable: from the monitor's state, else ask the service."""
        if self.monitor is not None:
            state = self.monitor.state
            self.docker_status = "" if state.docker_reachable is not False else (
                f"**Docker is not reachable**, so engines cannot be started or stopped and "
                f"their state is the last one known. {state.detail}  \nThe workbench keeps "
                f"retrying: {state.failures} failed attempt(s), next in "
                f"{state.next_poll_in:.0f} s.")
            return
        try:
            health = self.workbench.engines.health()
        except WorkbenchError as e:
            health = {"docker": "unreachable", "detail": str(e)}
        if health.get("docker") != "reachable":
            self.docker_status = (f"**Docker is not reachable**, so engines cannot be started "
                                  f"or stopped. {health.get('detail', '')}")
        elif health.get("image_present") is False:
            self.docker_status = (f"**The engine image {health.get('image')} is not built.** "
                                  "Build it with `nautilus-workbench engine build-image`.")
        else:
            self.docker_status = ""

    @param.depends("docker_status", watch=True)
    def _on_docker_status(self) -> None:
        self._docker.object = self.docker_status
        self._docker.visible = bool(self.docker_status)

    def _on_start_message(self, *_events) -> None:
        outcome = self.start_form.outcome
        self._start_message.object = outcome.message
        self._start_message.alert_type = outcome.message_kind
        self._start_message.visible = bool(outcome.message)


__all__ = ["EngineManager"]
