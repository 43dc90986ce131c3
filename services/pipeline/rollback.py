"""Which version a rollback deploys: the one approved for the stage before the current one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ApprovedVersion:
    """A version of the strategy approved for the stage, and when (its latest approval)."""

    version_id: str
    request_id: str
    approved_at: datetime


def rollback_target(current_version: str,
                    approved: list[ApprovedVersion]) -> ApprovedVersion | None:
    """The version approved most recently before ``current_version`` was, or None.

    ``approved`` holds the approved promotions of one strategy and stage. A version approved
    again later counts at its latest approval; a version approved after the current one is
    newer, not a step back.
    """
    latest: dict[str, ApprovedVersion] = {}
    for entry in approved:
        seen = latest.get(entry.version_id)
        if seen is None or entry.approved_at > seen.approved_at:
            latest[entry.version_id] = entry
    current = latest.get(current_version)
    earlier = [e for v, e in latest.items() if v != current_version
               and (current is None or e.approved_at < current.approved_at)]
    return max(earlier, key=lambda e: e.approved_at, default=None)
