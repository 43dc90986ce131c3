"""The deployment pipeline in one view: strategies and their versions by stage, the selected
version with its diff, its promotion requests, and the deployments with their drift.

One line in a notebook: ``DeploymentPipeline(workbench=wb)``.
"""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.pipeline.board import PipelineBoard
from components.pipeline.deployments import DeploymentPanel
from components.pipeline.model import PipelineModel
from components.pipeline.promotions import PromotionPanel
from components.pipeline.version_detail import VersionDetail
from services import Workbench
from services.identity.principal import Principal


class DeploymentPipeline(Viewer):
    """Versions, promotions and deployments of the workbench's strategies."""

    workbench = param.ClassSelector(class_=Workbench, doc="The services acted through.")

    principal = param.ClassSelector(class_=Principal, allow_None=True, doc="""
        Who acts (None: the workbench's default, the local operator in a notebook).""")

    version = param.String(default=None, allow_None=True, doc="The version to show first.")

    def __init__(self, **params):
        super().__init__(**params)
        self.model = PipelineModel(workbench=self.workbench, principal=self.principal,
                                   version=self.version)
        self.board = PipelineBoard(model=self.model)
        self.detail = VersionDetail(model=self.model)
        self.promotions = PromotionPanel(model=self.model)
        self.deployments = DeploymentPanel(model=self.model)
        outcome = self.model.outcome
        self._message = pn.pane.Alert("", visible=False, sizing_mode="stretch_width",
                                      css_classes=["pipeline-message"])
        outcome.param.watch(self._say, ["message", "message_kind"])
        self._layout = pn.Column(
            self._message, self.board,
            pn.Row(pn.Column(self.detail, sizing_mode="stretch_width"),
                   pn.Column(self.promotions, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            self.deployments, sizing_mode="stretch_width", css_classes=["deployment-pipeline"])
        self.model.reload()

    def __panel__(self):
        return self._layout

    def _say(self, *_events) -> None:
        outcome = self.model.outcome
        self._message.object = outcome.message
        self._message.alert_type = outcome.message_kind
        self._message.visible = bool(outcome.message)
