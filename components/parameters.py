"""Fields for a template's declared parameters, with the template's types, bounds, units and
help text, checked as the user types."""

from __future__ import annotations

from decimal import Decimal

import panel as pn
import param
from panel.viewable import Viewer

from services.backtest.sweep import parse_values
from services.errors import ValidationError
from services.templates import ParameterSpec


def suggested_values(spec: ParameterSpec) -> str:
    """A first guess of values to try for a whole-number parameter: half, once and twice its
    default (empty for the other types: their default is kept)."""
    if spec.type != "int":
        return ""
    default = int(spec.default)
    values = sorted({max(spec.min or 1, default // 2), default,
                     min(spec.max or default * 2, default * 2)})
    return ",".join(str(v) for v in values)


class ParameterFields(Viewer):
    """The fields of a template's declared parameters, checked as the user types.

    Numbers are typed as text and checked with the template's own rules (the service checks
    them again on submission): "abc" or "7.5" in a whole-number field is an error shown under
    the field, never a silent return to the default. The defaults follow the instrument: when
    ``instrument_class`` changes, the fields whose default depends on it take the new default
    and the rest keep what the user typed. In grid mode each field holds the values to try, a
    list or a range, empty for the default.
    """

    specs = param.Dict(default={}, constant=True, doc="""
        The declared parameters (name -> ParameterSpec) the fields are for.""")

    grid = param.Boolean(default=False, constant=True, doc="""
        Hold the values to try per parameter (text, a list or a range) instead of one value.""")

    instrument_class = param.String(default=None, allow_None=True, doc="""
        Class of the instrument the run trades; the defaults of some parameters depend on it.""")

    currency = param.String(default="", doc="""
        The account currency, named in the labels of amounts (e.g. "Starting balance (USD)").""")

    values = param.Parameter(default=None, doc="""
        One parameter per field, bound to its widget (read-only): text for numbers and
        strings, a bool or a choice for the others.""")

    problems = param.Dict(default={}, doc="""
        What is wrong with each field now, one line naming the field and the value
        (read-only; empty when every field is valid).""")

    def __init__(self, **params):
        super().__init__(**params)
        fields = {name: self._field(spec) for name, spec in self.specs.items()}
        self.values = type("values", (param.Parameterized,), fields)()
        self._widgets = {name: self._widget(name, spec) for name, spec in self.specs.items()}
        self._errors = {name: error_line() for name in self.specs}
        self._layout = pn.Column(*[item for name in self.specs
                                   for item in (self._widgets[name], self._errors[name])],
                                 sizing_mode="stretch_width")
        self.values.param.watch(self._check, list(self.specs))
        self._check()
        self._on_currency()

    def __panel__(self):
        return self._layout

    def section(self, names) -> pn.Column:
        """The fields ``names`` with their error lines, for a form that groups its fields."""
        return pn.Column(*[item for name in names
                           for item in (self._widgets[name], self._errors[name])],
                         sizing_mode="stretch_width")

    # -- fields -------------------------------------------------------------------------------
    def _typed(self, spec: ParameterSpec) -> bool:
        """Whether the field is typed as text (numbers, strings, every field of a grid)."""
        return self.grid or spec.type not in ("bool", "choice")

    def _field(self, spec: ParameterSpec) -> param.Parameter:
        label = field_label(spec, self.currency)
        if self.grid:
            return param.String(default=suggested_values(spec), label=label, doc=spec.help)
        default = spec.default_for(self.instrument_class)
        if spec.type == "bool":
            return param.Boolean(default=bool(default), label=label, doc=spec.help)
        if spec.type == "choice":
            return param.Selector(default=default, objects=list(spec.choices), label=label,
                                  doc=spec.help)
        return param.String(default=_text(default), label=label, doc=spec.help)

    def _widget(self, name: str, spec: ParameterSpec) -> pn.widgets.Widget:
        p = self.values.param[name]
        if not self._typed(spec):
            if spec.type == "bool":
                return pn.widgets.Checkbox.from_param(p)
            options = {spec.choice_labels.get(c, str(c)): c for c in spec.choices}
            return pn.widgets.Select.from_param(p, options=options, description=spec.help,
                                                sizing_mode="stretch_width")
        # onkeyup: the value (and its check) follows every key press, not only Enter or
        # leaving the field, so Run is enabled or not for what the field shows.
        return pn.widgets.TextInput.from_param(p, onkeyup=True, placeholder=self._hint(spec),
                                               description=spec.help + _bounds(spec),
                                               sizing_mode="stretch_width")

    def _hint(self, spec: ParameterSpec) -> str:
        default = spec.default_for(self.instrument_class)
        if default is None or _text(default) == "":  # optional: no example to show
            return "optional" if not self.grid else "default: empty"
        if not self.grid:
            return f"e.g. {_text(default)}"
        bounds = f"; {spec.min}..{spec.max}" if spec.min is not None else ""
        return f"default {_text(default)}{bounds}"

    @param.depends("currency", watch=True)
    def _on_currency(self) -> None:
        for name, spec in self.specs.items():
            if "{currency}" in spec.unit:
                self._widgets[name].name = field_label(spec, self.currency)

    def applies(self, name: str) -> bool:
        """Whether the field ``name`` applies with the values the other fields hold now (a
        fixed commission does not under the maker/taker fee model)."""
        return all(getattr(self.values, other) in values
                   for other, values in self.specs[name].applies_when.items()
                   if other in self.specs)

    @param.depends("instrument_class", watch=True)
    def _on_instrument(self) -> None:
        for name, spec in self.specs.items():
            if not spec.default_by_instrument_class:
                continue
            if self._typed(spec):
                self._widgets[name].placeholder = self._hint(spec)
            if not self.grid:
                default = spec.default_for(self.instrument_class)
                setattr(self.values, name, _text(default) if self._typed(spec) else default)

    # -- checking -----------------------------------------------------------------------------
    def _check(self, *_events) -> None:
        problems = {}
        for name, spec in self.specs.items():
            shown = self.applies(name)
            self._widgets[name].visible = shown
            problem = self._problem(spec, getattr(self.values, name)) if shown else ""
            if problem:
                problems[name] = f"{spec.title}: {problem}"
            self._errors[name].object = problems.get(name, "")
            self._errors[name].visible = name in problems
        self.problems = problems

    def _problem(self, spec: ParameterSpec, value) -> str:
        """Why ``value`` cannot be used, or empty."""
        if not self._typed(spec):
            return ""
        text = str(value).strip()
        if self.grid:
            if not text:
                return ""  # the default is kept
            try:
                texts = parse_values(text)
            except ValueError as e:
                return str(e)
        else:
            default = _text(spec.default_for(self.instrument_class))
            if not text:
                # An optional text setting (empty by default, e.g. a replay start) may stay empty.
                optional = spec.type == "str" and not default
                return "" if optional else f"enter a value (e.g. {default})"
            texts = [text]
        for one in texts:
            try:
                spec.coerce(one)
            except ValueError as e:
                return str(e)
        return ""

    # -- what the fields say ------------------------------------------------------------------
    def submitted(self) -> dict:
        """The values to submit, one per parameter that applies (decimals as exact text);
        ValidationError listing every field that is not valid."""
        self._refuse_problems()
        values = {}
        for name, spec in self.specs.items():
            if not self.applies(name):
                continue  # hidden: the template's default, which does not matter
            value = getattr(self.values, name)
            if self._typed(spec):
                value = spec.coerce(value.strip())
            values[name] = (format(value.normalize(), "f") if isinstance(value, Decimal)
                            else value)
        return values

    def _refuse_problems(self) -> None:
        self._check()  # what the fields hold now, at the click
        if self.problems:
            raise ValidationError("Some fields are not valid", list(self.problems.values()))

    def tried(self) -> dict[str, list[str]]:
        """The values to try per parameter (grid mode), as typed, empty fields left out;
        ValidationError listing every field that is not valid."""
        self._refuse_problems()
        return {name: [getattr(self.values, name)] for name in self.specs
                if getattr(self.values, name).strip()}


_ERROR_CSS = ":host(.field-error) {color: #b3261e;} :host(.field-error) p {margin: 0;}"


def error_line() -> pn.pane.Markdown:
    """A hidden one-line error shown under a field (``object``: the text; ``visible``)."""
    return pn.pane.Markdown("", visible=False, margin=(0, 10, 6, 10), sizing_mode="stretch_width",
                            css_classes=["field-error"], stylesheets=[_ERROR_CSS])


def field_label(spec: ParameterSpec, currency: str = "") -> str:
    """A field's label: the parameter's title and its unit ("Fast EMA period (bars)")."""
    unit = spec.unit.replace("{currency}", currency or "account currency")
    return f"{spec.title} ({unit})" if unit else spec.title


def _text(value) -> str:
    """A default as the user would type it (no float noise, no exponent)."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _bounds(spec: ParameterSpec) -> str:
    return f" Allowed: {spec.min} to {spec.max}." if spec.min is not None else ""
