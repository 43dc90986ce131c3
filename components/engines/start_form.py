"""Start an engine from a template: its settings, its strategy's, its risk limits, then a
confirmation (live engines: their risks and the engine's name typed).

What is confirmed is what was validated: settings changed after validation need a new one.
"""

from __future__ import annotations

import dataclasses
import os

import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import ConfirmAction, button
from components.engines.common import Outcome, problem_list
from components.formats import strategy_title
from components.offloop import in_thread
from components.parameters import ParameterFields
from components.permissions import permission, reason_note
from services import PermissionDenied, ValidationError, Workbench, WorkbenchError
from services.engine.config import instrument_id_of
from services.engine_runtime.risk import ACTIONS, LIMITS
from services.identity.principal import Principal

# Template parameters shown together; anything a template adds lands in "Other settings".
SECTIONS = {
    "Strategy and data": ("strategy", "bar_type", "replay_speed", "replay_start"),
    "Venue and account": ("venue", "starting_balance", "balance_currency", "oms_type",
                          "account_type", "leverage"),
    "Risk engine": ("risk_engine", "max_notional_per_order", "max_order_submit_rate"),
    "Resources": ("memory_limit_mb", "cpu_limit"),
    "Cache and logging": ("bar_capacity", "log_level"),
}
LIVE_RISKS = (
    "**This engine trades real money.** It sends real orders to the venue with the keys in the "
    "server's environment. Losses are real and immediate; orders may fill before you can stop "
    "the engine; an emergency stop kills the engine but does not cancel orders already at the "
    "venue — check the venue afterwards."
)


class RiskSettings(param.Parameterized):
    """The risk limits of the engine to start, one value, action and cancel flag per limit."""

    def __init__(self, limits: dict, **params):
        super().__init__(**params)
        for name, limit in limits.items():
            kind = LIMITS[name]
            label = name.replace("_", " ").capitalize()
            self.param.add_parameter(name, param.Number(
                default=limit["value"] or 0.0, bounds=(0, None), label=f"{label} ({kind.unit})",
                doc=f"{kind.help}; 0: no limit"))
            self.param.add_parameter(f"{name}__action", param.Selector(
                default=limit["action"], objects=list(ACTIONS), label="On breach"))
            self.param.add_parameter(f"{name}__cancel", param.Boolean(
                default=limit["cancel_orders"], label="Cancel open orders"))
        self.names = list(limits)

    def values(self) -> dict:
        out = {}
        for name in self.names:
            value = getattr(self, name)
            out[f"risk.{name}"] = f"{value:g}" if value else "off"
            out[f"risk.{name}.action"] = getattr(self, f"{name}__action")
            out[f"risk.{name}.cancel_orders"] = str(getattr(self, f"{name}__cancel")).lower()
        return out

    def widgets(self) -> pn.Column:
        rows = []
        for name in self.names:
            rows.append(pn.Row(
                pn.widgets.FloatInput.from_param(self.param[name], start=0, width=190,
                                                 description=self.param[name].doc),
                pn.widgets.Select.from_param(self.param[f"{name}__action"], width=110),
                pn.widgets.Checkbox.from_param(self.param[f"{name}__cancel"], align="end"),
                sizing_mode="stretch_width"))
        return pn.Column(*rows, sizing_mode="stretch_width")


class EngineStartForm(Viewer):
    """Choose a template, fill in its settings, validate, confirm and start."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the form reads templates from and starts engines through.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    template = param.Selector(default=None, objects=[], doc="Engine template to start from.")

    engine_name = param.String(default="", label="Engine name", doc="""
        Name of the new engine (lower-case letters, digits, '.', '_', '-'); empty: a name made
        from the mode, strategy and instrument.""")

    start = param.Event(label="Start engine…", doc="Validate the settings, then ask to confirm.")

    problems = param.List(default=[], doc="Per-field problems of the last validation.")

    started = param.String(default=None, allow_None=True, doc="Session id of the last start.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("EngineStartForm needs a workbench (services.Workbench.open()).")
        self.engines = self.workbench.engines
        self.outcome = Outcome()
        self.confirmation = ConfirmAction()
        # The template's and the strategy's parameters, checked as the user types (the same
        # fields as on the Backtest page).
        self.engine_template = None
        self.engine_fields: ParameterFields | None = None
        self.strategy_template = None
        self.strategy_fields: ParameterFields | None = None
        self.risk_settings: RiskSettings | None = None
        self._description = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._settings_box = pn.Column(sizing_mode="stretch_width")
        self._strategy_box = pn.Column(sizing_mode="stretch_width")
        self._venue_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._problems = pn.pane.Alert("", alert_type="danger", visible=False,
                                       sizing_mode="stretch_width",
                                       css_classes=["validation-problems"])
        self._start = button(self.param.start, color="primary", sizing_mode="stretch_width")
        self._note = reason_note()
        self._layout = pn.Card(
            pn.widgets.Select.from_param(self.param.template, sizing_mode="stretch_width"),
            self._description,
            pn.widgets.TextInput.from_param(self.param.engine_name, placeholder="automatic"),
            self._settings_box, self._strategy_box, self._venue_note, self._problems,
            self._start, self._note, self.confirmation,
            title="Start an engine", collapsible=False, sizing_mode="stretch_width",
            css_classes=["start-form"])
        self._load_templates()

    def __panel__(self):
        return self._layout

    # -- the settings -------------------------------------------------------------------------
    def _load_templates(self) -> None:
        try:
            names = self.engines.template_names()
        except WorkbenchError as e:
            self.outcome.say(f"Cannot read the engine templates: {e}", "danger")
            return
        self.param.template.objects = names
        if names:
            self.template = "paper_trading" if "paper_trading" in names else names[0]

    @param.depends("template", watch=True)
    def _on_template(self) -> None:
        self.confirmation.dismiss()
        self._set_problems([])
        try:
            template = self.engines.template(self.template)
        except WorkbenchError as e:
            self.engine_template = self.engine_fields = None
            self._settings_box.objects = []
            self.outcome.say(f"Engine template **{self.template}** cannot be used:\n\n{e}",
                             "danger")
            return
        self.engine_template = template
        self._gate_start(template.mode)
        parameters = self._with_strategy_titles(template.parameters)
        self.engine_fields = ParameterFields(specs=parameters)
        self.risk_settings = RiskSettings(template.risk)
        catalog = (f"  \nReplays from the catalog `{self.workbench.settings.catalog}`."
                   if template.mode != "live" else "")
        self._description.object = (f"**Mode: {template.mode.upper()}** — {template.title}.  \n"
                                    f"{template.description}{catalog}")
        sections, placed = [], set()
        for title, keys in SECTIONS.items():
            specs = {k: parameters[k] for k in keys if k in parameters}
            placed.update(specs)
            if specs:
                sections.append(pn.Card(self.engine_fields.section(specs), title=title,
                                        collapsed=title == "Cache and logging",
                                        sizing_mode="stretch_width"))
        others = {k: s for k, s in parameters.items() if k not in placed}
        if others:
            sections.append(pn.Card(self.engine_fields.section(others),
                                    title="Other settings", sizing_mode="stretch_width"))
        sections.append(pn.Card(
            pn.pane.Markdown("Enforced inside the engine, whether or not the workbench runs. "
                             "Money limits are in the account currency; the day is the UTC "
                             "day.", sizing_mode="stretch_width"),
            self.risk_settings.widgets(), title="Risk limits", collapsed=True,
            sizing_mode="stretch_width"))
        self._settings_box.objects = sections
        chosen = self.engine_fields.values
        for key in ("strategy", "bar_type"):
            if key in template.parameters:
                chosen.param.watch(self._on_strategy_choice, key)
        if "venue" in template.parameters:
            chosen.param.watch(lambda _: self._describe_venue(), "venue")
        self._on_strategy_choice()
        self._describe_venue()

    def _gate_start(self, mode: str) -> None:
        """Disable Start, with the reason, for a user who may not start this mode's engines."""
        allowed, reason = permission(self.workbench, self.principal, "engine.start",
                                     live=mode == "live")
        self._start.disabled = not allowed
        self._start.description = None if allowed else reason
        self._note.object, self._note.visible = ("" if allowed else reason), not allowed

    def _with_strategy_titles(self, parameters: dict) -> dict:
        """The strategy menu reads each strategy's title, as on the Backtest page."""
        spec = parameters.get("strategy")
        if spec is None or not spec.choices:
            return parameters
        titles = {name: strategy_title(self.workbench.templates, name) for name in spec.choices}
        return {**parameters, "strategy": dataclasses.replace(
            spec, choice_labels={**titles, **spec.choice_labels})}

    def _on_strategy_choice(self, *_events) -> None:
        name = self._chosen("strategy")
        if not name:
            self.strategy_template = self.strategy_fields = None
            self._strategy_box.objects = []
            return
        try:
            strategy = self.workbench.templates.strategy(name)
        except WorkbenchError as e:
            self.strategy_template = self.strategy_fields = None
            self._strategy_box.objects = [pn.pane.Alert(str(e), alert_type="danger")]
            return
        if self.strategy_template is not None and self.strategy_template.name == strategy.name:
            # Same strategy, other instrument: what was typed stays, instrument-dependent
            # defaults (trade size) follow the instrument.
            self.strategy_fields.instrument_class = self._instrument_class()
            return
        self.strategy_template = strategy
        self.strategy_fields = ParameterFields(specs=strategy.parameters,
                                               instrument_class=self._instrument_class())
        self._strategy_box.objects = [pn.Card(
            pn.pane.Markdown(strategy.description, sizing_mode="stretch_width"),
            self.strategy_fields, title=f"Strategy parameters: {strategy.title}",
            sizing_mode="stretch_width")]

    def _chosen(self, name: str):
        """What the engine field ``name`` holds now (None without a template or that field)."""
        return getattr(self.engine_fields.values, name, None) if self.engine_fields else None

    def _instrument_class(self) -> str | None:
        instrument_id = instrument_id_of(str(self._chosen("bar_type") or ""))
        if not instrument_id:
            return None
        try:
            return self.workbench.catalog.instrument(instrument_id).instrument_class
        except WorkbenchError:  # not in the catalog (live venues): no instrument-specific defaults
            return None

    def _describe_venue(self) -> None:
        template = self.engine_template
        if template is None or template.mode != "live":
            self._venue_note.object = ""
            return
        venue = self._chosen("venue")
        needed = template.environment_for(venue)
        rows = "\n".join(
            f"- `{name}` ({kind}): {'set' if os.environ.get(name) else '**not set**'}"
            for name, kind in needed.items())
        self._venue_note.object = (
            f"**Venue settings for {venue}** come from the server's environment and are passed "
            f"only into the engine container (never stored or shown):\n\n{rows}"
            if needed else "")

    def values(self) -> dict:
        """Engine, strategy and risk settings as the service takes them; ValidationError
        naming each field that is not valid."""
        values = {}
        if self.engine_fields is not None:
            values.update(self.engine_fields.submitted())
        if self.strategy_fields is not None:
            values.update(self.strategy_fields.submitted())
        if self.risk_settings is not None:
            values.update(self.risk_settings.values())
        return values

    # -- starting -----------------------------------------------------------------------------
    @param.depends("start", watch=True)
    async def _on_start(self) -> None:
        if self.outcome.busy or self.template is None:
            return
        self.confirmation.dismiss()
        try:
            template, values = self.template, self.values()
        except ValidationError as e:
            self._set_problems(e.problems or [str(e)], e)
            self.outcome.say("The configuration is not valid; fix the fields listed and try "
                             "again.", "danger")
            return
        name = self.engine_name.strip() or None
        self.outcome.busy = True
        try:
            config = await self._validate(template, values, name)
        finally:
            self.outcome.busy = False
        if config is None:
            return
        self._set_problems([])
        live = config.mode == "live"
        warnings = "".join(f"\n\n**{w}**" for w in config.warnings)
        self.confirmation.ask(
            self._summary(config), lambda typed: self._start_now(template, values, name, typed),
            label="Confirm start", danger=live, expected=config.name if live else "",
            warning=(LIVE_RISKS + warnings + f"\n\nType **{config.name}** below to confirm.")
            if live else "")

    async def _validate(self, template, values, name):
        try:
            return await in_thread(self.engines.validate, template, values, name)
        except ValidationError as e:
            self._set_problems(e.problems or [str(e)], e)
            self.outcome.say("The configuration is not valid; fix the fields listed and try "
                             "again.", "danger")
        except WorkbenchError as e:
            self.outcome.say(f"Cannot check the configuration: {e}", "danger")
        return None

    def _summary(self, config) -> str:
        strategy = ", ".join(f"{k}={v}" for k, v in config.strategy_parameters.items())
        limits = ", ".join(f"{k} {v['value']:g} ({v['action']})" for k, v in config.risk.items()
                           if v["value"]) or "no workbench risk limits"
        return (f"Start **{config.mode}** engine **{config.name}** from template "
                f"`{config.template}`: strategy `{config.parameters.get('strategy')}` "
                f"({strategy}) on `{config.parameters.get('bar_type')}`, "
                f"{config.memory_limit_mb} MiB memory, {config.cpu_limit:g} CPU; {limits}.")

    async def _start_now(self, template: str, values: dict, name: str | None,
                         typed: str) -> None:
        actor = self.principal
        self.outcome.busy = True
        try:
            info = await in_thread(self.engines.start, template, values, principal=actor,
                                           name=name, confirm=typed or None)
        except ValidationError as e:
            self._set_problems(e.problems or [str(e)], e)
            self.outcome.say(f"Refused: {e.summary}.", "danger")
            return
        except PermissionDenied as e:
            self.outcome.say(f"Refused: {e}", "danger")
            return
        except WorkbenchError as e:
            self.outcome.say(f"Could not start: {e}", "danger")
            return
        finally:
            self.outcome.busy = False
        self.started = info.session_id
        self.outcome.say(f"Engine **{info.name}** is starting (session `{info.session_id}`).",
                         "success")

    def _set_problems(self, problems: list[str], error: ValidationError | None = None) -> None:
        self.problems = list(problems)
        if problems and error is not None:
            self._problems.object = f"**{error.summary}:**\n\n{problem_list(error)}"
        self._problems.visible = bool(problems)
