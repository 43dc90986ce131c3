"""Engine and strategy templates: NautilusTrader configs as data, with declared parameters.

A template is valid only if it decodes into NautilusTrader's real config classes. Loading
collects *every* problem (with its field name) before raising, so a user fixes a file once.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from services.errors import TemplateError, ValidationError
from services.identifiers import value_problems
from services.template_probe import BACKTEST_ENGINE, STRATEGY_CONFIG, nautilus_problems

PARAMETER_TYPES = ("int", "float", "decimal", "bool", "str", "choice")
# Fields the backtest service fills from the user's instrument and bar choice.
BOUND_FIELDS = ("instrument_id", "bar_type")
# Used only to check that a template's fixed config decodes; never run.
_PROBE_BINDINGS = {"instrument_id": "PROBE.SIM", "bar_type": "PROBE.SIM-1-MINUTE-LAST-EXTERNAL"}
# Class paths templates may name: NautilusTrader's packages, the workbench's strategies, and the
# packages an operator lists in WORKBENCH_STRATEGY_PACKAGES (comma-separated). Checked before any
# import: importing a module runs it.
STRATEGY_PACKAGES = ("nautilus_trader", "services.strategies")
PACKAGES_ENV = "WORKBENCH_STRATEGY_PACKAGES"
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|<|>|!=|==)\s*([A-Za-z_]\w*|-?\d+(\.\d+)?)\s*$")


@dataclass(frozen=True)
class ParameterSpec:
    """One declared, user-settable parameter of a template."""

    name: str
    type: str
    default: Any
    help: str
    min: Any = None
    max: Any = None
    choices: tuple = ()
    # Sensible defaults differ by asset class (0.01 BTC vs 100,000 EUR); keyed by instrument class.
    default_by_instrument_class: dict[str, Any] = field(default_factory=dict)
    label: str = ""  # what a user reads ("Fast EMA period"); empty: made from the name
    unit: str = ""  # e.g. "bars", "0 to 1", "{currency}" (the account currency)
    choice_labels: dict[str, str] = field(default_factory=dict)  # choice -> what a user reads
    # The parameter only applies while these other parameters have one of these values, e.g.
    # {"fee_model": ["fixed"]}; forms hide it otherwise.
    applies_when: dict[str, tuple] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The label a user reads: the declared one, else the name in words."""
        return self.label or self.name.replace("_", " ").capitalize()

    def default_for(self, instrument_class: str | None) -> Any:
        return self.default_by_instrument_class.get(instrument_class or "", self.default)

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this parameter's type, or raise ValueError saying why not."""
        if self.type == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"must be a whole number, was {value!r}")
            try:
                result: Any = int(str(value).strip()) if isinstance(value, str) else int(value)
            except (TypeError, ValueError):
                raise ValueError(f"must be a whole number, was {value!r}") from None
        elif self.type == "float":
            try:
                result = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"must be a number, was {value!r}") from None
            if isinstance(value, bool) or not math.isfinite(result):
                raise ValueError(f"must be a finite number, was {value!r}")
        elif self.type == "decimal":
            try:
                result = Decimal(str(value).strip())
            except (InvalidOperation, TypeError):
                raise ValueError(f"must be a decimal number, was {value!r}") from None
            if isinstance(value, bool) or not result.is_finite():
                raise ValueError(f"must be a finite decimal number, was {value!r}")
        elif self.type == "bool":
            if isinstance(value, bool):
                result = value
            elif str(value).lower() in ("true", "1", "yes", "on"):
                result = True
            elif str(value).lower() in ("false", "0", "no", "off"):
                result = False
            else:
                raise ValueError(f"must be true or false, was {value!r}")
        elif self.type == "choice":
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(str, self.choices))}; was {value!r}")
            result = value
        else:
            result = str(value)
        if self.min is not None and result < self._bound(self.min):
            raise ValueError(f"must be >= {self.min}, was {value!r}")
        if self.max is not None and result > self._bound(self.max):
            raise ValueError(f"must be <= {self.max}, was {value!r}")
        return result

    def _bound(self, bound: Any) -> Any:
        return Decimal(str(bound)) if self.type == "decimal" else bound

    def to_json_value(self, value: Any) -> Any:
        """Return ``value`` in the form NautilusTrader's JSON config decoding expects."""
        return str(value) if isinstance(value, Decimal) else value


@dataclass(frozen=True)
class Constraint:
    left: str
    op: str
    right: str
    message: str

    def holds(self, values: dict[str, Any]) -> bool:
        left = values[self.left]
        right = values[self.right] if self.right in values else Decimal(self.right)
        if isinstance(left, Decimal) or isinstance(right, Decimal):
            left, right = Decimal(str(left)), Decimal(str(right))
        return {
            "<": left < right, "<=": left <= right, ">": left > right,
            ">=": left >= right, "!=": left != right, "==": left == right,
        }[self.op]


@dataclass(frozen=True)
class StrategyTemplate:
    """A strategy class, its config class, fixed config and the parameters a user may set."""

    name: str
    title: str
    description: str
    strategy_path: str
    config_path: str
    config: dict[str, Any]
    parameters: dict[str, ParameterSpec]
    constraints: tuple[Constraint, ...]
    path: Path

    def validate_parameters(
        self, values: dict[str, Any] | None, instrument_class: str | None = None
    ) -> dict[str, Any]:
        """Return every parameter (defaults for ``instrument_class`` filled in) coerced, or raise
        ValidationError listing every problem."""
        values = dict(values or {})
        problems = [
            f"{name}: unknown parameter of template '{self.name}' (known: {', '.join(self.parameters)})"
            for name in values if name not in self.parameters
        ]
        result: dict[str, Any] = {}
        for name, spec in self.parameters.items():
            try:
                result[name] = spec.coerce(values.get(name, spec.default_for(instrument_class)))
            except ValueError as e:
                problems.append(f"{name}: {e}")
        for constraint in self.constraints:
            operands = [constraint.left, constraint.right]
            if all(o in result or o not in self.parameters for o in operands):
                if not constraint.holds(result):
                    problems.append(f"{constraint.left}: {constraint.message}")
        if problems:
            raise ValidationError(f"Invalid parameters for strategy '{self.name}'", problems)
        return result

    def strategy_config(
        self, values: dict[str, Any], instrument_id: str, bar_type: str,
        instrument_class: str | None = None,
    ) -> dict:
        """Return the complete strategy config dict (fixed config + parameters + bindings)."""
        coerced = self.validate_parameters(values, instrument_class)
        config = dict(self.config)
        config.update({k: self.parameters[k].to_json_value(v) for k, v in coerced.items()})
        config.update({"instrument_id": instrument_id, "bar_type": bar_type})
        return config


# Parameters of backtest_engine.json the backtest service builds the venue from.
VENUE_PARAMETERS = ("starting_balance", "oms_type", "account_type", "leverage", "fee_model",
                    "fixed_commission", "prob_slippage", "prob_fill_on_limit", "random_seed")


@dataclass(frozen=True)
class BacktestEngineTemplate:
    """Defaults for the backtest engine and the simulated venue, with declared parameters."""

    name: str
    title: str
    description: str
    engine: dict[str, Any]
    venue: dict[str, Any]
    parameters: dict[str, ParameterSpec]
    path: Path


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows; write a finite number")


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TemplateError(f"Template {path.name} is not UTF-8 text (byte {e.start} is "
                            f"{e.object[e.start:e.start + 1]!r}); save it as UTF-8") from None
    except OSError as e:
        raise TemplateError(f"Cannot read template {path}: {e.strerror or e}") from e
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        raise TemplateError(
            f"Template {path.name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from e
    except ValueError as e:  # NaN, Infinity
        raise TemplateError(f"Template {path.name}: {e}") from None
    except RecursionError:
        raise TemplateError(f"Template {path.name} nests objects or lists too deeply to read; "
                            "templates need a few levels") from None
    if not isinstance(data, dict):
        raise TemplateError(f"Template {path.name} must hold a JSON object, was {type(data).__name__}")
    return data


def allowed_packages(base: tuple[str, ...] = STRATEGY_PACKAGES) -> tuple[str, ...]:
    """``base`` and the packages of WORKBENCH_STRATEGY_PACKAGES."""
    extra = [p.strip() for p in os.environ.get(PACKAGES_ENV, "").split(",") if p.strip()]
    return base + tuple(p for p in extra if _MODULE_RE.match(p))


def class_path_problem(path: Any, what: str, base: tuple[str, ...] = STRATEGY_PACKAGES) -> str | None:
    """Why ``path`` may not be imported: not ``package.module:Class``, or outside the allowed
    packages. Nothing is imported."""
    if not isinstance(path, str):
        return f"{what}: must be a string like 'package.module:ClassName', was {path!r}"
    module_name, _, attr = path.partition(":")
    if not _MODULE_RE.match(module_name) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", attr):
        return f"{what}: must look like 'package.module:ClassName', was {path!r}"
    packages = allowed_packages(base)
    if not any(module_name == p or module_name.startswith(p + ".") for p in packages):
        return (f"{what}: {module_name!r} is not in an allowed package ({', '.join(packages)}); "
                f"add its package to {PACKAGES_ENV} to use it")
    return None


def _import_path(path: Any, what: str, problems: list[str]) -> Any:
    problem = class_path_problem(path, what)
    if problem:
        problems.append(problem)
        return None
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, relative names (TypeError), errors in the module itself
        problems.append(f"{what}: cannot import module {module_name!r} ({e})")
        return None
    try:
        return getattr(module, attr)
    except AttributeError:
        problems.append(f"{what}: module {module_name!r} has no class {attr!r}")
        return None


def _parse_parameters(raw: Any, problems: list[str]) -> dict[str, ParameterSpec]:
    if not isinstance(raw, dict):
        problems.append(f"parameters: must be an object of name -> spec, was {type(raw).__name__}")
        return {}
    specs: dict[str, ParameterSpec] = {}
    for name, spec in raw.items():
        where = f"parameters.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: must be an object, was {type(spec).__name__}")
            continue
        unknown = set(spec) - {"type", "default", "help", "min", "max", "choices",
                               "default_by_instrument_class", "label", "unit", "choice_labels",
                               "applies_when"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        kind = spec.get("type")
        if kind not in PARAMETER_TYPES:
            problems.append(f"{where}.type: must be one of {', '.join(PARAMETER_TYPES)}, was {kind!r}")
            continue
        if "default" not in spec:
            problems.append(f"{where}.default: missing")
            continue
        if not spec.get("help"):
            problems.append(f"{where}.help: missing (say what the parameter does)")
        if kind == "choice" and (not isinstance(spec.get("choices"), list) or not spec["choices"]):
            problems.append(f"{where}.choices: a choice parameter needs a non-empty list")
            continue
        by_class = spec.get("default_by_instrument_class") or {}
        if not isinstance(by_class, dict):
            problems.append(f"{where}.default_by_instrument_class: must be an object of "
                            f"instrument class -> default, was {by_class!r}")
            continue
        if kind in ("int", "float", "decimal"):
            bad_bound = False
            for bound in ("min", "max"):
                value = spec.get(bound)
                if value is None:
                    problems.append(f"{where}.{bound}: numeric parameters need bounds")
                    bad_bound = True
                elif isinstance(value, bool) or not (
                    (isinstance(value, (int, float)) and math.isfinite(value))
                    or (kind == "decimal" and isinstance(value, str) and _finite_decimal(value))
                ):
                    problems.append(f"{where}.{bound}: must be a finite number, was {value!r}")
                    bad_bound = True
            if bad_bound:
                continue
        texts = _presentation(spec, where, problems)
        if texts is None:
            continue
        candidate = ParameterSpec(
            name=name, type=kind, default=None, help=spec.get("help", ""),
            min=spec.get("min"), max=spec.get("max"), choices=tuple(spec.get("choices") or ()),
            default_by_instrument_class=dict(by_class), **texts,
        )
        try:
            if candidate.min is not None and candidate.max is not None:
                lo, hi = candidate._bound(candidate.min), candidate._bound(candidate.max)
                if lo > hi:
                    problems.append(f"{where}: min {candidate.min} is above max {candidate.max}")
                    continue
            default = candidate.coerce(spec["default"])
            for cls_name, value in candidate.default_by_instrument_class.items():
                try:
                    candidate.coerce(value)
                except ValueError as e:
                    problems.append(f"{where}.default_by_instrument_class.{cls_name}: {e}")
        except (ValueError, InvalidOperation, TypeError) as e:
            problems.append(f"{where}: {e}")
            continue
        specs[name] = ParameterSpec(**{**candidate.__dict__, "default": default})
    for name, spec in specs.items():
        for other, values in spec.applies_when.items():
            target = specs.get(other)
            if target is None or target.type not in ("choice", "bool"):
                problems.append(f"parameters.{name}.applies_when.{other}: must name a choice "
                                "or bool parameter of this template")
                continue
            for value in values:
                try:
                    target.coerce(value)
                except ValueError as e:
                    problems.append(f"parameters.{name}.applies_when.{other}: {e}")
    return specs


def _presentation(spec: dict, where: str, problems: list[str]) -> dict | None:
    """The optional label, unit, choice labels and applies_when of a parameter, checked."""
    texts = {key: spec.get(key, "") for key in ("label", "unit")}
    for key, value in texts.items():
        if not isinstance(value, str):
            problems.append(f"{where}.{key}: must be text, was {value!r}")
            return None
    labels = spec.get("choice_labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problems.append(f"{where}.choice_labels: must be an object of choice -> text, "
                        f"was {labels!r}")
        return None
    if unknown := [c for c in labels if c not in (spec.get("choices") or [])]:
        problems.append(f"{where}.choice_labels: {', '.join(map(repr, unknown))} is not a choice")
        return None
    when = spec.get("applies_when") or {}
    if not isinstance(when, dict) or not all(isinstance(v, list) and v for v in when.values()):
        problems.append(f"{where}.applies_when: must be an object of parameter -> a non-empty "
                        f"list of values, was {when!r}")
        return None
    return {**texts, "choice_labels": dict(labels),
            "applies_when": {k: tuple(v) for k, v in when.items()}}


def _finite_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def _parse_constraints(raw: Any, declared: set[str], problems: list[str]) -> tuple:
    constraints = []
    if raw is not None and not isinstance(raw, list):
        problems.append(f"constraints: must be a list of expressions, was {raw!r}")
        return ()
    for i, item in enumerate(raw or []):
        expr = item.get("expr") if isinstance(item, dict) else item
        match = _CONSTRAINT_RE.match(expr or "") if isinstance(expr, str) else None
        if not match:
            problems.append(f"constraints[{i}]: expected 'name OP name-or-number', was {expr!r}")
            continue
        left, op, right = match.group(1), match.group(2), match.group(3)
        for operand in (left, right):
            if operand[0].isalpha() or operand[0] == "_":
                if operand not in declared:
                    problems.append(f"constraints[{i}]: {operand!r} is not a declared parameter")
        message = item.get("message") if isinstance(item, dict) else None
        constraints.append(Constraint(left, op, right, message or f"must satisfy {expr.strip()}"))
    return tuple(constraints)


def load_strategy_template(path: Path) -> StrategyTemplate:
    """Load and fully validate a strategy template; raise TemplateError listing every problem."""
    data = _read_json(path)
    problems: list[str] = []
    for key in ("name", "title", "strategy_path", "config_path", "parameters"):
        if key not in data:
            problems.append(f"{key}: missing")
    unknown = set(data) - {"kind", "name", "title", "description", "strategy_path",
                           "config_path", "config", "parameters", "constraints"}
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}")
    if problems:
        raise TemplateError(f"Template {path.name} is incomplete", problems)

    strategy_cls = _import_path(data["strategy_path"], "strategy_path", problems)
    config_cls = _import_path(data["config_path"], "config_path", problems)
    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.trading.strategy import Strategy

    if strategy_cls is not None and not (isinstance(strategy_cls, type) and issubclass(strategy_cls, Strategy)):
        problems.append(f"strategy_path: {data['strategy_path']} is not a NautilusTrader Strategy")
    if config_cls is not None and not (isinstance(config_cls, type) and issubclass(config_cls, StrategyConfig)):
        problems.append(f"config_path: {data['config_path']} is not a NautilusTrader StrategyConfig")
        config_cls = None

    parameters = _parse_parameters(data["parameters"], problems)
    declared = set(data["parameters"]) if isinstance(data["parameters"], dict) else set()
    constraints = _parse_constraints(data.get("constraints"), declared, problems)
    fixed = data.get("config") or {}
    if not isinstance(fixed, dict):
        problems.append(f"config: must be an object, was {type(fixed).__name__}")
        fixed = {}

    if config_cls is not None:
        fields = set(config_cls.__struct_fields__)
        for name in list(parameters) + list(fixed):
            if name not in fields:
                where = f"parameters.{name}" if name in parameters else f"config.{name}"
                problems.append(f"{where}: {config_cls.__name__} has no field {name!r}")
        for name in BOUND_FIELDS:
            if name not in fields:
                problems.append(f"config_path: {config_cls.__name__} has no {name!r} field to bind")
        declared_params = data["parameters"] if isinstance(data["parameters"], dict) else {}
        for name in sorted(set(fixed) & set(declared_params)):
            problems.append(f"config.{name}: also declared as a parameter (the parameter would "
                            "silently override it); keep one of the two")
        known = {k: v for k, v in fixed.items() if k in fields and k not in declared_params}
        probe = {**known, **{k: s.to_json_value(s.default) for k, s in parameters.items()},
                 **_PROBE_BINDINGS}
        bad_values = value_problems(known, "config")
        problems.extend(bad_values)
        if not bad_values:
            # Decoded even when other problems exist, so a bad fixed value is never hidden; a
            # required field whose parameter failed to parse is already reported above.
            problems.extend(nautilus_problems(STRATEGY_CONFIG, {
                "config_path": data["config_path"], "probe": probe,
                "unparsed": sorted(set(declared_params) - set(parameters))}))

    if problems:
        raise TemplateError(f"Template {path.name} is invalid", problems)
    return StrategyTemplate(
        name=data["name"], title=data["title"], description=data.get("description", ""),
        strategy_path=data["strategy_path"], config_path=data["config_path"], config=fixed,
        parameters=parameters, constraints=constraints, path=path,
    )


def load_backtest_engine_template(path: Path) -> BacktestEngineTemplate:
    """Load and validate ``backtest_engine.json`` against BacktestEngineConfig/BacktestVenueConfig."""
    data = _read_json(path)
    problems: list[str] = []
    for key in ("name", "title", "engine", "venue", "parameters"):
        if key not in data:
            problems.append(f"{key}: missing")
    if problems:
        raise TemplateError(f"Template {path.name} is incomplete", problems)
    parameters = _parse_parameters(data["parameters"], problems)
    for name in VENUE_PARAMETERS:
        if isinstance(data["parameters"], dict) and name not in data["parameters"]:
            problems.append(f"parameters.{name}: missing (the backtest service sets the venue "
                            f"from it; declare it, see engine_templates/backtest_engine.json)")
    for key in ("engine", "venue"):
        if not isinstance(data[key], dict):
            problems.append(f"{key}: must be an object, was {type(data[key]).__name__}")
    if problems:
        raise TemplateError(f"Template {path.name} is invalid", problems)
    # The workbench's own checks first: NautilusTrader panics on some bad identifiers.
    problems.extend(value_problems(data["engine"], "engine") + value_problems(data["venue"], "venue"))
    for name, spec in parameters.items():  # choices end up in the venue config
        for choice in spec.choices if spec.type == "choice" else ():
            problems.extend(value_problems({name: choice}, f"parameters.{name}.choices"))
    if not problems:
        problems.extend(nautilus_problems(BACKTEST_ENGINE, {
            "engine": data["engine"],
            "venue": {"name": "SIM", "starting_balances": ["1 USD"], **data["venue"]}}))
    if problems:
        raise TemplateError(f"Template {path.name} is invalid", problems)
    return BacktestEngineTemplate(
        name=data["name"], title=data["title"], description=data.get("description", ""),
        engine=data["engine"], venue=data["venue"], parameters=parameters, path=path,
    )


@dataclass(frozen=True)
class TemplateSummary:
    name: str
    kind: str
    title: str
    description: str
    parameters: dict[str, dict]
    path: str
    error: str | None = None


class TemplateService:
    """Finds and loads the templates in one folder (``engine_templates/``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def strategy_names(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "strategies").glob("*.json"))

    def strategy(self, name: str) -> StrategyTemplate:
        path = self.root / "strategies" / f"{name}.json"
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", name or "") or not path.exists():
            known = ", ".join(self.strategy_names()) or "none"
            raise TemplateError(f"Unknown strategy template {name!r}. Known templates: {known}.")
        return load_strategy_template(path)

    def backtest_engine(self) -> BacktestEngineTemplate:
        return load_backtest_engine_template(self.root / "backtest_engine.json")

    def summaries(self) -> list[TemplateSummary]:
        """Every template with its parameters, or the error that keeps it from loading."""
        result = []
        for name in self.strategy_names():
            path = self.root / "strategies" / f"{name}.json"
            try:
                t = load_strategy_template(path)
                result.append(TemplateSummary(
                    t.name, "strategy", t.title, t.description,
                    {k: _spec_dict(s) for k, s in t.parameters.items()}, str(path)))
            except TemplateError as e:
                result.append(TemplateSummary(name, "strategy", name, "", {}, str(path), str(e)))
        try:
            e = self.backtest_engine()
            result.append(TemplateSummary(e.name, "backtest_engine", e.title, e.description,
                                          {k: _spec_dict(s) for k, s in e.parameters.items()},
                                          str(e.path)))
        except TemplateError as err:
            result.append(TemplateSummary("backtest_engine", "backtest_engine", "Backtest engine",
                                          "", {}, str(self.root / "backtest_engine.json"), str(err)))
        from services.engine.config import ENGINE_TEMPLATE_NAMES, load_engine_template

        for name in ENGINE_TEMPLATE_NAMES:
            path = self.root / f"{name}.json"
            if not path.exists():
                continue
            try:
                t = load_engine_template(path, self.strategy_names())
                result.append(TemplateSummary(t.name, f"engine ({t.mode})", t.title, t.description,
                                              {k: _spec_dict(s) for k, s in t.parameters.items()},
                                              str(path)))
            except TemplateError as err:
                result.append(TemplateSummary(name, "engine", name, "", {}, str(path), str(err)))
        return result


def _spec_dict(spec: ParameterSpec) -> dict:
    out = {"type": spec.type, "default": spec.to_json_value(spec.default), "help": spec.help}
    if spec.min is not None:
        out["min"] = spec.min
    if spec.max is not None:
        out["max"] = spec.max
    if spec.choices:
        out["choices"] = list(spec.choices)
    for key in ("label", "unit", "choice_labels"):
        if getattr(spec, key):
            out[key] = getattr(spec, key)
    if spec.applies_when:
        out["applies_when"] = {k: list(v) for k, v in spec.applies_when.items()}
    return out
