"""The strategy deployment pipeline: content-hashed versions, promotions with gates and
four-eyes approvals, deployments to paper and live engines with a gradual rollout and
rollback, and the drift of every deployment from a backtest of its window.

Exports resolve lazily: the live state's light ``signature`` query imports no pandas.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "DeployOptions": "services.pipeline.deployments",
    "DeploymentInfo": "services.pipeline.records",
    "DriftReport": "services.pipeline.drift",
    "GateCheck": "services.pipeline.records",
    "LIVE": "services.pipeline.records",
    "NewVersion": "services.pipeline.versions",
    "PAPER": "services.pipeline.records",
    "Pipeline": "services.pipeline.service",
    "PipelineSettings": "services.pipeline.settings",
    "PromotionInfo": "services.pipeline.records",
    "VersionDiff": "services.pipeline.versions",
    "VersionInfo": "services.pipeline.records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'services.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
