"""The strategy deployment pipeline: content-hashed versions, promotions with gates and
four-eyes approvals, deployments to paper and live engines with a gradual rollout and
rollback, and the drift of every deployment from a backtest of its window."""

from __future__ import annotations

from dataclasses import dataclass

from services.pipeline.deployments import DeploymentService, DeployOptions
from services.pipeline.drift import DriftReport, DriftService
from services.pipeline.promotions import PromotionService
from services.pipeline.records import (
    LIVE,
    PAPER,
    DeploymentInfo,
    GateCheck,
    PromotionInfo,
    VersionInfo,
)
from services.pipeline.settings import PipelineSettings
from services.pipeline.versions import NewVersion, VersionDiff, VersionService


@dataclass(frozen=True)
class Pipeline:
    """The pipeline's services, built once per workbench (``workbench.pipeline``)."""

    versions: VersionService
    promotions: PromotionService
    deployments: DeploymentService
    drift: DriftService
    settings: PipelineSettings

    @classmethod
    def build(cls, database, templates, catalog, backtests, engines, authorizer) -> Pipeline:
        settings = PipelineSettings.from_environment()
        versions = VersionService(database, templates, backtests, authorizer)
        promotions = PromotionService(database, versions, engines, authorizer, settings)
        deployments = DeploymentService(database, versions, promotions, engines, authorizer,
                                        settings)
        drift = DriftService(versions, deployments, engines, backtests, catalog, authorizer,
                             settings)
        return cls(versions, promotions, deployments, drift, settings)


__all__ = ["LIVE", "PAPER", "DeployOptions", "DeploymentInfo", "DriftReport", "GateCheck",
           "NewVersion", "Pipeline", "PipelineSettings", "PromotionInfo", "VersionDiff",
           "VersionInfo"]
