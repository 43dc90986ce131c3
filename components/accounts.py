"""Accounts in the browser: your own API tokens and password (``AccountPanel``), and the users
of the workbench for admins (``UserAdmin``)."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.permissions import permission, reason_note, restrict
from services import Workbench, WorkbenchError
from services.identity.principal import Principal
from services.identity.roles import ROLE_DESCRIPTIONS, ROLES


class AccountPanel(Viewer):
    """Create and revoke your personal API tokens; change your password."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the tokens live in.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        The signed-in user whose tokens these are.""")

    token_name = param.String(default="", label="Token name", doc="What the token is for.")

    expires_days = param.Integer(default=90, bounds=(0, 3650), label="Expires after (days)",
                                 doc="0: never (until revoked).")

    create = param.Event(label="Create token", doc="Create a token and show it once.")

    selected = param.Selector(default=None, objects=[], label="Token", doc="Token to revoke.")

    revoke = param.Event(label="Revoke", doc="Revoke the selected token at once.")

    new_password = param.String(default="", label="New password", doc="At least 10 characters.")

    change_password = param.Event(label="Change password", doc="Set the new password.")

    message = param.String(default="", doc="Outcome of the last action (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        self._tokens = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                            sizing_mode="stretch_width")
        self._secret = pn.widgets.TextInput(label="Your new token (shown once: copy it now)",
                                            disabled=True, visible=False,
                                            sizing_mode="stretch_width")
        self._alert = pn.pane.Alert(self.param.message, visible=False,
                                    sizing_mode="stretch_width")
        self._no_tokens = pn.pane.Markdown("No tokens yet: name one above and create it.")
        self._revoke = pn.widgets.Button.from_param(self.param.revoke, color="danger",
                                                    align="end")
        self._layout = pn.Column(
            pn.pane.Markdown(f"Signed in as **{html.escape(self.principal.name)}**; roles: "
                             f"{', '.join(sorted(self.principal.roles))}."
                             if self.principal else "Not signed in."),
            pn.pane.Markdown("### API tokens\nSend a token as `Authorization: Bearer <token>` to "
                             "the REST API, or set `WORKBENCH_TOKEN` for the command line."),
            pn.Row(pn.widgets.TextInput.from_param(self.param.token_name,
                                                   placeholder="laptop, CI, ..."),
                   pn.widgets.IntInput.from_param(self.param.expires_days),
                   pn.widgets.Button.from_param(self.param.create, color="primary",
                                                align="end")),
            self._secret, self._tokens, self._no_tokens,
            pn.Row(pn.widgets.Select.from_param(self.param.selected, width=300),
                   self._revoke),
            pn.pane.Markdown("### Password"),
            pn.Row(pn.widgets.PasswordInput.from_param(self.param.new_password),
                   pn.widgets.Button.from_param(self.param.change_password, align="end")),
            self._alert, sizing_mode="stretch_width")
        self._load()

    def __panel__(self):
        return self._layout

    def _load(self) -> None:
        try:
            tokens = self.workbench.tokens.list(principal=self.principal)
        except WorkbenchError as e:
            self._say(str(e), "danger")
            return
        self._tokens.value = pd.DataFrame([{
            "Id": t.token_id, "Name": t.name, "State": t.state,
            "Created (UTC)": f"{t.created_at:%Y-%m-%d %H:%M}",
            "Expires (UTC)": f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never",
            "Last used (UTC)": f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never",
        } for t in tokens])
        self._tokens.visible, self._no_tokens.visible = bool(tokens), not tokens
        active = {f"{t.name} ({t.token_id})": t.token_id for t in tokens if t.state == "active"}
        self.param.selected.objects = active
        self.selected = next(iter(active.values()), None)
        self._revoke.disabled = not active  # nothing to revoke: not a live red button

    @param.depends("create", watch=True)
    def _on_create(self) -> None:
        try:
            token, secret = self.workbench.tokens.create(
                self.token_name or "browser", expires_days=self.expires_days or None,
                principal=self.principal)
        except WorkbenchError as e:
            self._say(str(e), "danger")
            return
        self._secret.value, self._secret.visible = secret, True
        self._say(f"Created token `{token.token_id}`. Copy it now: it is not shown again.",
                  "success")
        self._load()

    @param.depends("revoke", watch=True)
    def _on_revoke(self) -> None:
        if not self.selected:
            return
        try:
            token = self.workbench.tokens.revoke(self.selected, principal=self.principal)
        except WorkbenchError as e:
            self._say(str(e), "danger")
            return
        self._say(f"Token `{token.token_id}` is revoked.", "success")
        self._load()

    @param.depends("change_password", watch=True)
    def _on_change_password(self) -> None:
        try:
            self.workbench.users.set_password(self.principal.name, self.new_password,
                                              principal=self.principal)
        except WorkbenchError as e:
            self._say(str(e), "danger")
            return
        self.new_password = ""
        self._say("Password changed.", "success")

    def _say(self, text: str, kind: str) -> None:
        self._alert.alert_type = kind
        self.message = text
        self._alert.visible = bool(text)


class UserAdmin(Viewer):
    """The workbench's users: add, change roles, disable (admins only)."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the users live in.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in admin.""")

    username = param.String(default="", label="Username", doc="2-32 lower-case characters.")

    roles = param.ListSelector(default=["viewer"], objects=list(ROLES), label="Roles",
                               doc="What the user may do (see the role list).")

    add = param.Event(label="Add user", doc="Create the user with a random password.")

    selected = param.Selector(default=None, objects=[], label="User", doc="User to change.")

    set_roles = param.Event(label="Set roles", doc="Give the selected user the roles above.")

    disable = param.Event(label="Disable", doc="Disable the selected user at once.")

    enable = param.Event(label="Enable", doc="Enable the selected user again.")

    message = param.String(default="", doc="Outcome of the last action (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        may = permission(self.workbench, self.principal, "users.manage")
        buttons = [pn.widgets.Button.from_param(self.param.add, color="primary"),
                   pn.widgets.Button.from_param(self.param.set_roles),
                   pn.widgets.Button.from_param(self.param.disable, color="danger"),
                   pn.widgets.Button.from_param(self.param.enable)]
        for button in buttons:
            restrict(button, *may)
        self._users = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                           sizing_mode="stretch_width")
        self._alert = pn.pane.Alert(self.param.message, visible=False,
                                    sizing_mode="stretch_width")
        roles_help = "\n".join(f"- **{r}**: {ROLE_DESCRIPTIONS[r]}" for r in ROLES)
        self._layout = pn.Column(
            reason_note(may), self._users,
            pn.Row(pn.widgets.TextInput.from_param(self.param.username, width=220),
                   pn.widgets.MultiChoice.from_param(self.param.roles, width=420), buttons[0]),
            pn.Row(pn.widgets.Select.from_param(self.param.selected, width=220), *buttons[1:]),
            self._alert, pn.pane.Markdown(roles_help), sizing_mode="stretch_width")
        self._load()

    def __panel__(self):
        return self._layout

    def _load(self) -> None:
        users = self.workbench.users.list()
        self._users.value = pd.DataFrame([{
            "User": u.username, "Roles": ", ".join(u.roles),
            "State": "disabled" if u.disabled else "active",
            "Created by": u.created_by,
            "Last sign-in (UTC)": f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at
            else "never"} for u in users])
        names = [u.username for u in users]
        self.param.selected.objects = names
        if self.selected not in names:
            self.selected = names[0] if names else None

    def _act(self, call, done: str) -> None:
        try:
            result = call()
        except WorkbenchError as e:
            self._say(str(e), "danger")
            return
        self._say(done.format(result=result), "success")
        self._load()

    @param.depends("add", watch=True)
    def _on_add(self) -> None:
        def add():
            user, password = self.workbench.users.add(self.username.strip(), self.roles,
                                                      principal=self.principal)
            return f"{user.username}; their password (shown once): `{password}`"
        self._act(add, "Added {result}")

    @param.depends("set_roles", watch=True)
    def _on_set_roles(self) -> None:
        self._act(lambda: self.workbench.users.set_roles(self.selected, self.roles,
                                                         principal=self.principal).username,
                  "Changed the roles of {result}.")

    @param.depends("disable", watch=True)
    def _on_disable(self) -> None:
        self._act(lambda: self.workbench.users.set_disabled(self.selected, True,
                                                            principal=self.principal).username,
                  "Disabled {result}: their sessions and tokens stopped working.")

    @param.depends("enable", watch=True)
    def _on_enable(self) -> None:
        self._act(lambda: self.workbench.users.set_disabled(self.selected, False,
                                                            principal=self.principal).username,
                  "Enabled {result}.")

    def _say(self, text: str, kind: str) -> None:
        self._alert.alert_type = kind
        self.message = text
        self._alert.visible = bool(text)
