"""Alerts over the event hub: rules, deduplication and cool-down, webhook and e-mail delivery."""

from services.alerts.rules import DEFAULT_RULES, AlertRule
from services.alerts.service import Alert, AlertService

__all__ = ["DEFAULT_RULES", "Alert", "AlertRule", "AlertService"]
