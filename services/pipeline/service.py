"""The pipeline's services, built once per workbench (``workbench.pipeline``)."""

from __future__ import annotations

from dataclasses import dataclass

from services.pipeline.deployments import DeploymentService
from services.pipeline.drift import DriftService
from services.pipeline.promotions import PromotionService
from services.pipeline.settings import PipelineSettings
from services.pipeline.signature import pipeline_signature
from services.pipeline.versions import VersionService


@dataclass(frozen=True)
class Pipeline:
    """Versions, promotions, deployments and drift over one database."""

    versions: VersionService
    promotions: PromotionService
    deployments: DeploymentService
    drift: DriftService
    settings: PipelineSettings

    @classmethod
    def build(cls, database, templates, catalog, backtests, engines, commands,
              authorizer) -> Pipeline:
        settings = PipelineSettings.from_environment()
        versions = VersionService(database, templates, backtests, authorizer)
        promotions = PromotionService(database, versions, engines, authorizer, settings)
        deployments = DeploymentService(database, versions, promotions, engines, commands,
                                        authorizer, settings)
        drift = DriftService(versions, deployments, engines, backtests, catalog, authorizer,
                             settings)
        return cls(versions, promotions, deployments, drift, settings)

    def signature(self) -> tuple:
        """Changes whenever a version, request, decision, deployment or drift does."""
        return pipeline_signature(self.versions.database)
