"""Turn a template's declared parameters into a Parameterized object, so widgets get the
template's types, bounds and help text, and values stay bound both ways."""

from __future__ import annotations

from decimal import Decimal

import panel as pn
import param

from services.templates import ParameterSpec


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
