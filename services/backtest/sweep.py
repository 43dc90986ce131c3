"""Parameter sweeps: which parameter values to try, expanded into one BacktestSpec per run.

A sweep is a grid (every combination of the values given per parameter) or N random draws
from that grid, minus the combinations that break a constraint (the template's own, such as
``fast_ema_period < slow_ema_period``, and any the user adds). Everything is checked before
anything is queued: unknown parameters, values of the wrong type or out of bounds, malformed
ranges, and the size of the sweep (1 to 10,000 runs).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from services.backtest.spec import BacktestSpec, VenueSettings
from services.errors import ValidationError
from services.templates import Constraint, StrategyTemplate, _parse_constraints

MAX_RUNS = 10_000
# Grids larger than this are refused before enumerating them, whatever the constraints keep.
MAX_GRID = 1_000_000


@dataclass(frozen=True)
class SweepSpec:
    """A sweep as the user describes it; the values per parameter are text or numbers."""

    strategy: str
    bar_type: str
    grid: dict[str, list[Any]]
    start: str | None = None
    end: str | None = None
    random_draws: int | None = None  # None: the whole grid
    constraints: tuple[str, ...] = ()  # besides the template's own, e.g. "fast_ema_period<30"
    fixed: dict[str, Any] = field(default_factory=dict)  # parameters every run shares
    venue: VenueSettings = field(default_factory=VenueSettings)
    seed: int = 0  # of the random draws, so a sweep can be repeated exactly
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["grid"] = {k: [_plain(v) for v in vs] for k, vs in self.grid.items()}
        data["fixed"] = {k: _plain(v) for k, v in self.fixed.items()}
        data["constraints"] = list(self.constraints)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        data = dict(data)
        venue = VenueSettings(**(data.pop("venue", None) or {}))
        data["constraints"] = tuple(data.get("constraints") or ())
        return cls(venue=venue, **data)


def _plain(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def parse_values(text: str) -> list[str]:
    """``"10,20,30"``, ``"10..50:10"`` (inclusive, step 10) or a mix, as a list of value texts.

    Raises ValueError saying what is wrong with a range.
    """
    values: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if ".." not in part:
            values.append(part)
            continue
        bounds, _, step_text = part.partition(":")
        low_text, _, high_text = bounds.partition("..")
        try:
            low, high = Decimal(low_text.strip()), Decimal(high_text.strip())
            step = Decimal(step_text.strip()) if step_text.strip() else Decimal(1)
        except InvalidOperation:
            raise ValueError(f"{part!r} is not a range LOW..HIGH[:STEP] of numbers") from None
        if not all(x.is_finite() for x in (low, high, step)):
            raise ValueError(f"{part!r}: the bounds and step must be finite numbers")
        if step <= 0:
            raise ValueError(f"{part!r}: the step must be positive, was {step}")
        if high < low:
            raise ValueError(f"{part!r}: the range is empty ({high} is below {low}); "
                             f"write it as {high}..{low}")
        count = int((high - low) / step) + 1
        if count > MAX_RUNS:
            raise ValueError(f"{part!r} has {count:,} values; at most {MAX_RUNS:,} are allowed")
        values.extend(str(low + i * step) for i in range(count))
    return values


def _constraints(template: StrategyTemplate, extra: tuple[str, ...]) -> tuple[Constraint, ...]:
    problems: list[str] = []
    added = _parse_constraints(list(extra), set(template.parameters), problems)
    if problems:
        raise ValidationError("Invalid sweep constraints", [
            p.replace("constraints[", "constraint[") for p in problems])
    return template.constraints + added


def expand(spec: SweepSpec, template: StrategyTemplate,
           instrument_class: str | None = None) -> list[dict[str, Any]]:
    """The parameter values of every run of the sweep, in grid order (or draw order).

    Raises ValidationError listing every problem, or saying why the sweep has no runs or too
    many.
    """
    problems: list[str] = []
    if not spec.grid:
        problems.append("grid: choose at least one parameter to vary, e.g. "
                        "--grid fast_ema_period=5,10,20")
    axes: dict[str, list[Any]] = {}
    for name, raw_values in spec.grid.items():
        parameter = template.parameters.get(name)
        if parameter is None:
            problems.append(f"grid.{name}: unknown parameter of template '{template.name}' "
                            f"(known: {', '.join(template.parameters)})")
            continue
        if name in spec.fixed:
            problems.append(f"grid.{name}: also given as a fixed parameter; choose one")
        texts: list[Any] = []
        for raw in raw_values:
            if isinstance(raw, str):
                try:
                    texts.extend(parse_values(raw))
                except ValueError as e:
                    problems.append(f"grid.{name}: {e}")
            else:
                texts.append(raw)
        coerced = []
        for value in texts:
            try:
                coerced.append(parameter.coerce(value))
            except ValueError as e:
                problems.append(f"grid.{name}: {e}")
        if not texts and not any(p.startswith(f"grid.{name}:") for p in problems):
            problems.append(f"grid.{name}: no values given (e.g. {name}=1,2,3 or {name}=1..9:2)")
        axes[name] = list(dict.fromkeys(coerced))  # duplicates run once, in the order given
    if spec.random_draws is not None and not 1 <= spec.random_draws <= MAX_RUNS:
        problems.append(f"random: the number of random draws must be between 1 and "
                        f"{MAX_RUNS:,}, was {spec.random_draws}")
    try:
        constraints = _constraints(template, spec.constraints)
    except ValidationError as e:
        problems.extend(e.problems)
        constraints = ()
    if problems:
        raise ValidationError("Invalid sweep", problems)

    size = 1
    for values in axes.values():
        size *= len(values)
    if size > MAX_GRID:
        raise ValidationError(f"The sweep's grid has {size:,} combinations; the limit is "
                              f"{MAX_RUNS:,} runs", [(
                                  "grid: give fewer values per parameter, or draw a sample "
                                  f"with --random N (N <= {MAX_RUNS:,}) from a grid of at most "
                                  f"{MAX_GRID:,}")])
    base = {name: p.default_for(instrument_class) for name, p in template.parameters.items()}
    base.update(spec.fixed)
    names = list(axes)
    combinations, rejected = [], 0
    for values in itertools.product(*axes.values()):
        candidate = dict(zip(names, values, strict=True))
        try:
            full = {**base, **candidate}
            coerced = {k: template.parameters[k].coerce(v) for k, v in full.items()
                        if k in template.parameters}
        except ValueError as e:
            raise ValidationError("Invalid sweep", [f"fixed: {e}"]) from None
        if all(c.holds(coerced) for c in constraints):
            combinations.append(candidate)
        else:
            rejected += 1
    if not combinations:
        rules = "; ".join(f"{c.left} {c.op} {c.right}" for c in constraints) or "none"
        raise ValidationError("The sweep has 0 combinations to run", [(
            f"constraints: all {rejected:,} combinations of the grid break a constraint "
            f"({rules}); widen the grid's values")])
    if spec.random_draws is not None:
        if spec.random_draws > len(combinations):
            raise ValidationError("Too many random draws", [(
                f"random: asked for {spec.random_draws:,} draws but the grid has only "
                f"{len(combinations):,} valid combinations; ask for at most that many")])
        combinations = random.Random(spec.seed).sample(combinations, spec.random_draws)
    if len(combinations) > MAX_RUNS:
        raise ValidationError(f"The sweep has {len(combinations):,} combinations; the limit is "
                              f"{MAX_RUNS:,} runs", [(
                                  "grid: give fewer values per parameter, or draw a sample "
                                  f"with --random N (N <= {MAX_RUNS:,})")])
    return [{k: template.parameters[k].to_json_value(v) for k, v in c.items()}
            for c in combinations]


def run_specs(spec: SweepSpec, combinations: list[dict[str, Any]]) -> list[BacktestSpec]:
    """One BacktestSpec per combination: the fixed parameters plus the combination's values."""
    return [
        BacktestSpec(strategy=spec.strategy, bar_type=spec.bar_type, start=spec.start,
                     end=spec.end, parameters={**spec.fixed, **combination}, venue=spec.venue,
                     label=spec.label or " ".join(f"{k}={v}" for k, v in combination.items()))
        for combination in combinations
    ]
