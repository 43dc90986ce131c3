"""Turn a template's declared parameters into a Parameterized object, so widgets get the
template's types, bounds and help text, and values stay bound both ways."""

from __future__ import annotations

from decimal import Decimal

import panel as pn
import param
from panel.viewable import Viewer

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


def _parameter(spec: ParameterSpec, default) -> param.Parameter:
    label = spec.name.replace("_", " ").capitalize()
    # Soft bounds only: an out-of-range value must reach the service's validation, which says
    # what is wrong; hard bounds would make the widget silently revert the user's input.
    if spec.type == "int":
        return param.Integer(default=int(default), softbounds=(spec.min, spec.max), doc=spec.help,
                             label=label)
    if spec.type in ("float", "decimal"):
        return param.Number(default=float(default), softbounds=(float(spec.min), float(spec.max)),
                            doc=spec.help, label=label)
    if spec.type == "bool":
        return param.Boolean(default=bool(default), doc=spec.help, label=label)
    if spec.type == "choice":
        return param.Selector(default=default, objects=list(spec.choices), doc=spec.help, label=label)
    return param.String(default=str(default), doc=spec.help, label=label)


def parameters_from_specs(
    name: str, specs: dict[str, ParameterSpec], instrument_class: str | None = None
) -> param.Parameterized:
    """A fresh Parameterized whose parameters mirror ``specs`` (defaults for the instrument class)."""
    attributes = {key: _parameter(spec, spec.default_for(instrument_class)) for key, spec in specs.items()}
    cls = type(name, (param.Parameterized,), attributes)
    return cls(name=name)


def values_of(obj: param.Parameterized, specs: dict[str, ParameterSpec]) -> dict:
    """The values to submit: decimals as exact text (a float 0.1 must not become 0.1000000001)."""
    values = {}
    for key, spec in specs.items():
        value = getattr(obj, key)
        values[key] = format(Decimal(repr(value)).normalize(), "f") if spec.type == "decimal" else value
    return values


def widgets_for(obj: param.Parameterized, specs: dict[str, ParameterSpec]) -> pn.Column:
    """Widgets bound to ``obj``; numbers get spinners limited to the declared bounds."""
    widgets = []
    for key, spec in specs.items():
        p = obj.param[key]
        bounds = f" Allowed: {spec.min} to {spec.max}." if spec.min is not None else ""
        if spec.type == "int":
            widget = pn.widgets.IntInput.from_param(p, start=None, end=None,
                                                    description=spec.help + bounds)
        elif spec.type in ("float", "decimal"):
            widget = pn.widgets.FloatInput.from_param(p, start=None, end=None,
                                                      description=spec.help + bounds)
        elif spec.type == "bool":
            widget = pn.widgets.Checkbox.from_param(p)
        elif spec.type == "choice":
            widget = pn.widgets.Select.from_param(p, description=spec.help)
        else:
            widget = pn.widgets.TextInput.from_param(p, description=spec.help)
        widgets.append(widget)
    return pn.Column(*widgets, sizing_mode="stretch_width")


class ParameterFields(Viewer):
    """The fields of a template's declared parameters, bound both ways to ``values``.

    The defaults follow the instrument: when ``instrument_class`` changes, the fields whose
    default depends on it take the new default and the rest keep what the user typed. In grid
    mode each field holds the values to try as text, empty for the default.
    """

    specs = param.Dict(default={}, constant=True, doc="""
        The declared parameters (name -> ParameterSpec) the fields are for.""")

    grid = param.Boolean(default=False, constant=True, doc="""
        Hold the values to try per parameter (text, a list or a range) instead of one value.""")

    instrument_class = param.String(default=None, allow_None=True, doc="""
        Class of the instrument the run trades; the defaults of some parameters depend on it.""")

    values = param.Parameter(default=None, doc="""
        One parameter per field, bound to its widget (read-only).""")

    def __init__(self, **params):
        super().__init__(**params)
        specs, instrument = self.specs, self.instrument_class
        if self.grid:
            fields = {name: param.String(default=suggested_values(spec), label=name,
                                         doc=spec.help) for name, spec in specs.items()}
            self.values = type("values", (param.Parameterized,), fields)()
            self._widgets = {name: pn.widgets.TextInput.from_param(
                self.values.param[name], placeholder=self._hint(spec),
                sizing_mode="stretch_width") for name, spec in specs.items()}
        else:
            self.values = parameters_from_specs("values", specs, instrument)
            self._widgets = dict(zip(specs, widgets_for(self.values, specs), strict=True))
        self._layout = pn.Column(*self._widgets.values(), sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    def _hint(self, spec: ParameterSpec) -> str:
        bounds = f"; {spec.min}..{spec.max}" if spec.min is not None else ""
        return f"default {spec.default_for(self.instrument_class)}{bounds}"

    @param.depends("instrument_class", watch=True)
    def _on_instrument(self) -> None:
        for name, spec in self.specs.items():
            if not spec.default_by_instrument_class:
                continue
            if self.grid:
                self._widgets[name].placeholder = self._hint(spec)
            else:
                setattr(self.values, name,
                        _parameter(spec, spec.default_for(self.instrument_class)).default)

    def submitted(self) -> dict:
        """The values to submit (one value per parameter)."""
        return values_of(self.values, self.specs)

    def tried(self) -> dict[str, list[str]]:
        """The values to try per parameter (grid mode), as typed; empty fields left out."""
        return {name: [getattr(self.values, name)] for name in self.specs
                if getattr(self.values, name).strip()}
