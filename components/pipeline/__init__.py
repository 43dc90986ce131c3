"""The strategy deployment pipeline's components (the Pipeline page, one line in a notebook)."""

from components.pipeline.board import PipelineBoard
from components.pipeline.create_version import VersionFromRun
from components.pipeline.deployments import DeploymentPanel
from components.pipeline.model import PipelineModel
from components.pipeline.pipeline import DeploymentPipeline
from components.pipeline.promotions import PromotionPanel
from components.pipeline.version_detail import VersionDetail

__all__ = ["DeploymentPanel", "DeploymentPipeline", "PipelineBoard", "PipelineModel",
           "PromotionPanel", "VersionDetail", "VersionFromRun"]
