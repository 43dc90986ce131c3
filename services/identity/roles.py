"""Who may do what: the one role matrix of the product.

Every mutating service method names one action of :data:`PERMISSIONS`; the authoriser checks it
against the principal's roles. The README's role table is generated from this module
(``nautilus-workbench users roles``), and the API's role-matrix test walks it, so a new action
without an entry here cannot be used at all.
"""

from __future__ import annotations

from dataclasses import dataclass

VIEWER = "viewer"
RESEARCHER = "researcher"
TRADER = "trader"
LIVE_TRADER = "live_trader"
APPROVER = "approver"
ADMIN = "admin"
ROLES = (VIEWER, RESEARCHER, TRADER, LIVE_TRADER, APPROVER, ADMIN)

ROLE_DESCRIPTIONS = {
    VIEWER: "read everything: data, runs, results, engines, deployments, the audit log",
    RESEARCHER: "run backtests and sweeps; import, convert and export data",
    TRADER: "control paper and sandbox engines; manual paper orders; approve paper promotions",
    LIVE_TRADER: "control live engines (start, stop, orders, emergency stop)",
    APPROVER: "approve strategy promotions; set and change risk limits; step up live rollouts",
    ADMIN: "users and tokens, container cleanup, catalog delete and recovery, the engine image",
}


@dataclass(frozen=True)
class Permission:
    """The roles an action needs; any one of them is enough.

    ``live_roles`` replaces ``roles`` when the action targets a live engine (real money);
    ``others_roles`` is needed to act on an object another user owns (a run someone else
    submitted); ``None`` means ownership does not matter.
    """

    action: str
    description: str
    roles: frozenset[str]
    live_roles: frozenset[str] | None = None
    others_roles: frozenset[str] | None = None

    def needed(self, live: bool = False, other_owner: bool = False) -> frozenset[str]:
        if other_owner and self.others_roles is not None:
            return self.others_roles
        if live and self.live_roles is not None:
            return self.live_roles
        return self.roles


def _p(action: str, description: str, roles: set[str], live: set[str] | None = None,
       others: set[str] | None = None) -> Permission:
    return Permission(action, description, frozenset(roles),
                      frozenset(live) if live is not None else None,
                      frozenset(others) if others is not None else None)


PERMISSIONS: dict[str, Permission] = {p.action: p for p in (
    # engines
    _p("engine.start", "start engines", {TRADER}, live={LIVE_TRADER}),
    _p("engine.stop", "stop engines", {TRADER}, live={LIVE_TRADER}),
    _p("engine.restart", "restart engines", {TRADER}, live={LIVE_TRADER}),
    _p("engine.emergency_stop", "emergency-stop engines", {TRADER}, live={LIVE_TRADER}),
    _p("engine.update_config", "change engine configurations", {TRADER}, live={LIVE_TRADER}),
    _p("engine.command", "send orders and commands into engines", {TRADER}, live={LIVE_TRADER}),
    _p("engine.risk_limits", "change an engine's risk limits", {APPROVER}),
    _p("engine.cleanup", "remove exited engine containers", {ADMIN}),
    _p("engine.build_image", "build the engine image", {ADMIN}),
    # backtests
    _p("backtest.submit", "run backtests", {RESEARCHER}),
    _p("backtest.control", "pause, resume or cancel backtests", {RESEARCHER}, others={ADMIN}),
    _p("sweep.submit", "run sweeps and walk-forward analyses", {RESEARCHER}),
    _p("sweep.stop", "stop sweeps", {RESEARCHER}, others={ADMIN}),
    # catalog
    _p("catalog.import", "import data into the catalog", {RESEARCHER}),
    _p("catalog.convert", "convert catalog data", {RESEARCHER}),
    _p("catalog.export", "export catalog data", {RESEARCHER}),
    _p("catalog.delete", "delete catalog data", {ADMIN}),
    _p("catalog.recover", "recover interrupted catalog writes", {ADMIN}),
    # strategy deployment pipeline
    _p("strategy.version", "create strategy versions", {RESEARCHER, TRADER}),
    _p("strategy.promote", "request strategy promotions", {RESEARCHER, TRADER}),
    _p("strategy.approve_paper", "approve paper promotions", {TRADER, APPROVER}),
    _p("strategy.approve_live", "approve live promotions", {APPROVER}),
    _p("strategy.deploy", "deploy strategies", {TRADER}, live={LIVE_TRADER}),
    _p("strategy.rollout", "step up a live rollout", {APPROVER}),
    _p("strategy.drift", "compare a deployment with a backtest of its window",
       {RESEARCHER, TRADER, LIVE_TRADER, APPROVER}),
    # alerts and metrics
    _p("alerts.manage", "change alert rules", {ADMIN, APPROVER}),
    _p("metrics.write", "record metrics", {TRADER, LIVE_TRADER, ADMIN}),
    # identity
    _p("users.manage", "manage users", {ADMIN}),
    _p("tokens.create", "create API tokens", set(ROLES)),
    _p("tokens.revoke", "revoke API tokens", set(ROLES), others={ADMIN}),
)}


def role_matrix() -> list[tuple[str, str, dict[str, str]]]:
    """Rows (action, description, {role: "yes" | "live" | "own" | ""}) for the README table."""
    rows = []
    for p in PERMISSIONS.values():
        cells = {}
        for role in ROLES:
            marks = []
            if role in p.roles:
                marks.append("own" if p.others_roles is not None and role not in p.others_roles
                             else "yes")
            if p.live_roles is not None and role in p.live_roles:
                marks.append("live")
            if p.others_roles is not None and role in p.others_roles and role not in p.roles:
                marks.append("any")
            cells[role] = ", ".join(marks)
        rows.append((p.action, p.description, cells))
    return rows


def role_matrix_markdown() -> str:
    """The role matrix as the Markdown table the README shows (a test keeps them equal)."""
    lines = ["| Action | What | " + " | ".join(ROLES) + " |",
             "|---|---|" + "---|" * len(ROLES)]
    lines += [f"| `{action}` | {description} | " + " | ".join(cells[r] for r in ROLES) + " |"
              for action, description, cells in role_matrix()]
    return "\n".join(lines)
