"""The Panel pages: one navigation, one page per feature, fresh components per browser session,
each acting for the user signed in to that session."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from urllib.parse import urlencode

import panel as pn

from app.web.access import SESSION_COOKIE, SessionCookie
from components import (
    AccountPanel,
    BacktestConfigurator,
    CatalogBrowser,
    DeploymentPipeline,
    EmergencyStop,
    EngineManager,
    Overview,
    ResultsViewer,
    RunComparison,
    RunQueue,
    SweepView,
    UserAdmin,
)
from components.theme import ACCENT, workbench_design
from services import WorkbenchError
from services.errors import AuthenticationError
from services.identity.principal import Principal

log = logging.getLogger("nautilus_workbench.app")

TITLE = "Nautilus Workbench"
WORKBENCH_DESIGN = workbench_design()

_NAV_CSS = (".workbench-nav {display: flex; flex-direction: column; gap: 4px;}"
            ".nav-link {padding: 8px 12px; border-radius: 6px; text-decoration: none;"
            " color: inherit; font-size: 1.05em;}"
            ".nav-link:hover {background: rgba(15,110,140,0.12);}"
            ".nav-link.active {background: rgba(15,110,140,0.22); font-weight: 600;}"
            ".nav-link.disabled {opacity: 0.45; cursor: not-allowed;}")
# Right-aligned in whatever the header leaves.
_USER_CSS = (".workbench-user {display: flex; align-items: center; justify-content: flex-end;"
             " gap: 10px; color: white; font-size: 0.9em; white-space: nowrap;"
             " margin-right: 12px;}"
             ".workbench-user .roles {opacity: 0.8;}"
             # Narrow screens: the roles give way before the header overflows.
             "@media (max-width: 1360px) {.workbench-user .roles {display: none;}}"
             ".workbench-user button {background: transparent; color: white; cursor: pointer;"
             " border: 1px solid rgba(255,255,255,0.6); border-radius: 4px; padding: 3px 10px;}")


# The theme a user chose, remembered by the browser for a year (set by the header's button).
THEME_COOKIE = "workbench_theme"


def _keep_in_url(component, parameter: str, query: str) -> None:
    """Show ``component.parameter`` as ``?query=...`` in the address bar as the user changes
    it, so the page can be bookmarked, shared and reloaded as it is (a list: one per value).
    Not Location.sync: it parses the query's values (an id of digits would become a number)."""

    def show(event) -> None:
        values = [v for v in (event.new if isinstance(event.new, list) else [event.new]) if v]
        pn.state.location.search = f"?{urlencode([(query, v) for v in values])}" if values else ""

    if pn.state.location is not None:
        component.param.watch(show, parameter)


def _user_html(principal: Principal, dark: bool) -> str:
    e = html.escape
    roles = ", ".join(sorted(principal.roles - {"viewer"})) or "viewer"  # everyone views
    other = "light" if dark else "dark"
    toggle = (f"document.cookie='{THEME_COOKIE}={other}; path=/; max-age=31536000; "
              "SameSite=Lax'; location.reload()")
    return (f'<div class="workbench-user"><span class="user" title="roles: {e(roles)}">'
            f'{e(principal.name)}</span>'
            f'<span class="roles">({e(roles)})</span>'
            f'<button type="button" class="theme-toggle" onclick="{toggle}">'
            f'{"Light" if dark else "Dark"} theme</button>'
            '<form method="post" action="/logout" style="margin:0">'
            '<button type="submit">Sign out</button></form></div>')


class Pages:
    """Builds each page for a new browser session over one shared Workbench."""

    def __init__(self, workbench, cookie: SessionCookie, monitor=None) -> None:
        self.workbench = workbench
        self.cookie = cookie
        self.monitor = monitor
        self.routes: dict[str, tuple[str, Callable[[Principal], pn.viewable.Viewable]]] = {
            "/": ("Overview", self.overview),
            "/backtest": ("Backtest", self.backtest),
            "/runs": ("Runs", self.runs),
            "/sweeps": ("Sweeps", self.sweeps),
            "/results": ("Results", self.results),
            "/compare": ("Compare", self.compare),
            "/catalog": ("Catalog", self.catalog),
            "/engines": ("Engines", self.engines),
            "/pipeline": ("Pipeline", self.pipeline),
            "/account": ("Account", self.account),
            "/users": ("Users", self.users),
        }
        # Pages only some roles may open: shown greyed in the navigation, with the reason.
        self.restricted = {"/users": "users.manage"}

    # -- plumbing ---------------------------------------------------------------------------
    def principal(self) -> Principal:
        """The user signed in to this browser session (AuthenticationError if none)."""
        request = pn.state.curdoc.session_context.request
        cookie = (request.cookies or {}).get(SESSION_COOKIE)
        secret = self.cookie.session_secret(getattr(cookie, "value", cookie))
        if secret is None:
            raise AuthenticationError("Not signed in.")
        return self.workbench.sessions.resolve(secret)

    def guarded(self, path: str) -> Callable[[], pn.viewable.Viewable]:
        """The page builder for ``path``; a failure shows a message, never a traceback."""
        label, build = self.routes[path]

        def page():
            principal = None
            try:
                principal = self.principal()
                return build(principal)
            except AuthenticationError as e:
                return pn.pane.HTML(f'<p>{html.escape(str(e))} <a href="/login?next='
                                    f'{html.escape(path)}">Sign in</a></p>')
            except WorkbenchError as e:
                text = str(e)
            except Exception:
                log.exception("building page %s failed", path)
                text = ("Something went wrong while building this page. The details are in the "
                        "server log; reload the page to try again.")
            return self._template(path, principal, pn.pane.Markdown(f"## {label}"),
                                  pn.pane.Alert(text, alert_type="danger"))

        return page

    def _template(self, path: str, principal: Principal | None, *main):
        links = []
        for route, (label, _) in self.routes.items():
            allowed, reason = self._may_open(route, principal)
            if not allowed:
                links.append(f'<span class="nav-link disabled" title="{html.escape(reason)}">'
                             f"{label}</span>")
                continue
            active = " active" if route == path else ""
            links.append(f'<a class="nav-link{active}" href=".{route}">{label}</a>')
        links = "\n".join(links)
        nav = pn.pane.HTML(f'<nav class="workbench-nav">{links}</nav>', stylesheets=[_NAV_CSS],
                           sizing_mode="stretch_width")
        catalog = self.workbench.catalog
        data_note = pn.pane.Markdown(
            f"**Catalog**  \n`{catalog.location}`"
            + ("  \n*Sample catalog: synthetic data, except what was imported*"
               if catalog.is_sample else ""),
            sizing_mode="stretch_width", styles={"font-size": "0.85em"},
        )
        header = [EmergencyStop(workbench=self.workbench, principal=principal)]
        dark = pn.state.cookies.get(THEME_COOKIE) == "dark"
        if principal is not None:
            header.append(pn.pane.HTML(_user_html(principal, dark), stylesheets=[_USER_CSS],
                                       sizing_mode="stretch_width", height=40,
                                       align="center"))
        # Bootstrap: every resource is bundled with Panel, so the app works with no internet.
        # No busy indicator: Panel's is one state for the whole process, so every click in any
        # session turned every open page's spinner on and off (two patches to each page, each
        # under that page's lock: another user's click waited behind them). Components show
        # their own loading state instead.
        return pn.template.BootstrapTemplate(
            title=TITLE, sidebar=[nav, pn.layout.Divider(), data_note], main=list(main),
            header=header, header_background=ACCENT, sidebar_width=240, busy_indicator=None,
            theme="dark" if dark else "default", design=WORKBENCH_DESIGN,
        )

    def _may_open(self, route: str, principal: Principal | None) -> tuple[bool, str]:
        action = self.restricted.get(route)
        if action is None:
            return True, ""
        return self.workbench.authorizer.allows(principal, action)

    # -- pages ------------------------------------------------------------------------------
    def overview(self, principal: Principal):
        return self._template("/", principal,
                              Overview(workbench=self.workbench, principal=principal))

    def backtest(self, principal: Principal):
        configurator = BacktestConfigurator(workbench=self.workbench, principal=principal)
        return self._template("/backtest", principal,
                              pn.pane.Markdown("## Configure and run a backtest"), configurator)

    def runs(self, principal: Principal):
        queue = RunQueue(workbench=self.workbench, principal=principal)
        return self._template("/runs", principal, pn.pane.Markdown("## Backtest queue"), queue)

    def sweeps(self, principal: Principal):
        view = SweepView(workbench=self.workbench, principal=principal)
        return self._template("/sweeps", principal, pn.pane.Markdown("## Parameter sweeps"),
                              view)

    def results(self, principal: Principal):
        run = pn.state.session_args.get("run", [b""])[0].decode() or None
        viewer = ResultsViewer(workbench=self.workbench, principal=principal)
        notice = pn.pane.Alert("", alert_type="warning", visible=False)
        if not (run and viewer.open_run(run)):
            if run:
                notice.object = (f"There is no run `{html.escape(run)}`; showing the latest "
                                 "completed run instead.")
                notice.visible = True
            viewer.open_latest()
        _keep_in_url(viewer, "run_id", "run")
        return self._template("/results", principal, pn.pane.Markdown("## Backtest results"),
                              notice, viewer)

    def pipeline(self, principal: Principal):
        version = pn.state.session_args.get("version", [b""])[0].decode() or None
        view = DeploymentPipeline(workbench=self.workbench, principal=principal,
                                  version=version)
        return self._template("/pipeline", principal,
                              pn.pane.Markdown("## Strategy deployment pipeline"), view)

    def engines(self, principal: Principal):
        manager = EngineManager(workbench=self.workbench, monitor=self.monitor,
                                principal=principal)
        return self._template("/engines", principal, pn.pane.Markdown("## Trading engines"),
                              manager)

    def compare(self, principal: Principal):
        runs = [r for r in pn.state.session_args.get("run", []) if r]
        comparison = RunComparison(workbench=self.workbench)
        chosen = [r.decode() for r in runs if r.decode() in comparison.param.run_ids.objects]
        if chosen:
            comparison.run_ids = chosen
        _keep_in_url(comparison, "run_ids", "run")
        return self._template("/compare", principal, pn.pane.Markdown("## Compare backtests"),
                              comparison)

    def account(self, principal: Principal):
        return self._template("/account", principal, pn.pane.Markdown("## Your account"),
                              AccountPanel(workbench=self.workbench, principal=principal))

    def users(self, principal: Principal):
        allowed, reason = self._may_open("/users", principal)
        body = (UserAdmin(workbench=self.workbench, principal=principal) if allowed
                else pn.pane.Alert(reason, alert_type="warning"))
        return self._template("/users", principal, pn.pane.Markdown("## Users"), body)

    def catalog(self, principal: Principal):
        browser = CatalogBrowser(workbench=self.workbench, principal=principal)
        return self._template("/catalog", principal, pn.pane.Markdown("## Data catalog"),
                              browser)
