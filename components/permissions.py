"""Buttons a user may not use: disabled, with the reason shown next to them. The service layer
refuses the action anyway; this only says so before the click."""

from __future__ import annotations

import panel as pn


def permission(workbench, principal, action: str, *, live: bool = False,
               owner: str | None = None) -> tuple[bool, str]:
    """(allowed, reason) from the workbench's one authoriser."""
    return workbench.authorizer.allows(principal, action, live=live, owner=owner)


def restrict(button: pn.widgets.Button, allowed: bool, reason: str) -> None:
    """Disable ``button`` when not allowed; its tooltip says why."""
    if not allowed:
        button.disabled = True
        button.description = reason


def reason_note(*checks: tuple[bool, str]) -> pn.pane.Alert:
    """A muted note listing why buttons are disabled (hidden when everything is allowed)."""
    reasons = sorted({reason for allowed, reason in checks if not allowed})
    return pn.pane.Alert("\n\n".join(reasons), alert_type="secondary", visible=bool(reasons),
                         sizing_mode="stretch_width", css_classes=["permission-note"])
