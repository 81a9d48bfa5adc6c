"""The search space: Hydra sweep overrides -> Optuna distributions, and trial values -> overrides.

The grammar is hydra-optuna-sweeper's, with the same meaning, so a search defined for it
samples the same space here:

- `choice(a, b, c)`: categorical;
- `interval(low, high)`: uniform float (`int(interval(...))`: uniform int); `tag(log, interval(...))`: log-uniform;
- `range(start, stop[, step])`: ints (floats when any bound is a float) from start to stop *inclusive*,
  in steps; `shuffle(range(...))` is categorical;
- anything else (`optim.momentum=0.9`): a fixed value every trial gets.

Optuna is imported by the caller before these functions run (the sweeper, when the search starts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer

from litzoo.errors import ConfigError


@dataclass
class SearchSpace:
    """What each trial samples (`distributions`) and what every trial gets unchanged (`fixed`)."""

    distributions: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(
        cls,
        params: Mapping[str, Any] | None,
        arguments: Sequence[str] = (),
        search_space: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> SearchSpace:
        """`hydra.sweeper.params`, then the command line's sweep arguments (which win), then the
        deprecated `hydra.sweeper.search_space` for names neither defines."""
        lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
        space = cls()
        for name, spec in (search_space or {}).items():
            space.distributions[str(name)] = distribution_from_spec(str(name), spec)
        for override in OverridesParser.create().parse_overrides(lines):
            name = override.get_key_element()
            space.distributions.pop(name, None)
            space.fixed.pop(name, None)
            if override.is_sweep_override():
                space.distributions[name] = distribution_from_override(override)
            else:
                space.fixed[name] = override.get_value_element_as_str()
        return space

    def grid(self) -> dict[str, list[Any]]:
        """Every value of every parameter, for Optuna's GridSampler (discrete parameters only)."""
        return {name: grid_values(name, d) for name, d in self.distributions.items()}


def distribution_from_override(override: Override) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    name = override.get_key_element()
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(_choices(override))
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if any(isinstance(v, float) for v in (start, stop, step)):
            return FloatDistribution(float(start), float(stop), step=float(step))
        return IntDistribution(int(start), int(stop), step=int(step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ConfigError(
        f"hydra.sweeper.params.{name}={override.get_value_element_as_str()} is not a search "
        "space Optuna can sample: use choice(...), interval(low, high), tag(log, interval(...)) "
        "or range(start, stop, step)."
    )


def distribution_from_spec(name: str, spec: Mapping[str, Any]) -> Any:
    """Hydra 1.1's `search_space` entry: {type: int|float|categorical, low, high, log, step, choices}."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    kind = str(spec.get("type", "")).rsplit(".", 1)[-1]
    if kind == "categorical":
        return CategoricalDistribution(list(spec["choices"]))
    if kind in ("int", "float"):
        number = int if kind == "int" else float
        step = spec.get("step")
        return (IntDistribution if kind == "int" else FloatDistribution)(
            number(spec["low"]),
            number(spec["high"]),
            log=bool(spec.get("log", False)),
            step=number(step) if step is not None else (1 if kind == "int" else None),
        )
    raise ConfigError(
        f"hydra.sweeper.search_space.{name}.type={spec.get('type')!r} must be int, float or "
        "categorical (or define the parameter in hydra.sweeper.params instead)."
    )


def grid_values(name: str, distribution: Any) -> list[Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if (
        isinstance(distribution, (IntDistribution, FloatDistribution))
        and distribution.step
        and not distribution.log
    ):
        count = int(round((distribution.high - distribution.low) / distribution.step)) + 1
        return [distribution.low + i * distribution.step for i in range(count)]
    raise ConfigError(
        f"The grid sampler needs discrete parameters, but {name} is continuous. Give it as "
        f"choice(...) or range(start, stop, step), or pick another sampler."
    )


def to_overrides(values: Mapping[str, Any]) -> list[str]:
    """`key=value` overrides that give a job these parameter values."""
    return [f"{name}={override_value(value)}" for name, value in values.items()]


def override_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # every digit Optuna suggested
    return str(value)  # choices are kept in Hydra's escaped form


def _choices(override: Override) -> list[Any]:
    values: Iterable[Any] = override.sweep_iterator(transformer=Transformer.encode)
    choices = list(values)
    for choice in choices:
        if not isinstance(choice, (str, int, float, bool, type(None))):
            raise ConfigError(
                f"{override.get_key_element()}: a choice must be a string, number, bool or null, "
                f"not {choice!r}."
            )
    return choices
