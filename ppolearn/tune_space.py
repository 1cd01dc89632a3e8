"""The search space of `ppolearn tune`: what may vary, in which range, and how a trial's draw becomes a config.

A space is a mapping of key to one of:

* a fixed value (``n_epochs: 10``): not searched, but applied to every trial;
* a list of choices (``gamma: [0.98, 0.99, 0.995]``);
* a range ``{low: 1e-5, high: 3e-3, log: true}`` (integers for integer keys, ``log`` optional).

Keys are PPOConfig fields, plus three that keep the draw consistent:

* ``n_minibatches``: the rollout (``n_steps * num_envs``) is cut into this many minibatches; batch_size is the
  largest divisor of the rollout not above ``rollout / n_minibatches``, so it always divides the rollout;
* ``net_width`` and ``net_depth``: ``net_arch`` is ``[net_width] * net_depth``.

A user's ``--space FILE`` is laid over DEFAULT_SPACE key by key: it narrows, widens or fixes a key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from ppolearn.config import PPOConfig, build_config
from ppolearn.errors import ConfigError

DEFAULT_SPACE: Dict[str, Any] = {
    "learning_rate": {"low": 1e-5, "high": 3e-3, "log": True},
    "n_steps": [64, 128, 256, 512, 1024, 2048],
    "n_minibatches": [1, 2, 4, 8, 16, 32],
    "n_epochs": [3, 5, 10, 20],
    "gamma": [0.9, 0.95, 0.98, 0.99, 0.995, 0.999],
    "gae_lambda": [0.8, 0.9, 0.92, 0.95, 0.98, 1.0],
    "clip_range": [0.1, 0.2, 0.3],
    "ent_coef": {"low": 1e-8, "high": 0.05, "log": True},
    "net_width": [32, 64, 128, 256],
    "net_depth": 2,
    "anneal_lr": [False, True],
    "normalize_obs": [False, True],
    "normalize_reward": [False, True],
}

DERIVED = {"n_minibatches": int, "net_width": int, "net_depth": int}
# Set by the tuner itself, or bookkeeping that does not change what is learned.
NOT_SEARCHABLE = {
    "total_timesteps": "it is the study's --budget",
    "seed": "every trial trains on the study's --seeds seeds",
    "batch_size": "search n_minibatches instead: batch_size must divide n_steps * num_envs",
    "net_arch": "search net_width and net_depth instead",
    "device": "it is not a hyperparameter",
    "backend": "it is not a hyperparameter",
    "num_workers": "it is not a hyperparameter",
    "vec_env": "it is not a hyperparameter",
    "torch_threads": "it is not a hyperparameter",
    "checkpoint_every": "trials keep no checkpoints",
    "keep_checkpoints": "trials keep no checkpoints",
    "eval_episodes": "it is the study's --episodes",
    "eval_every": "the study evaluates --evals times per seed",
    "eval_during_episodes": "the study sets it",
    "target": "it is the study's --target",
    "stop_at_target": "trials train their whole budget",
    "success": "it belongs to the environment (its preset)",
}
_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(PPOConfig)}
RANGE_KEYS = {"low", "high", "log"}


@dataclasses.dataclass
class Param:
    """One key of a space: fixed, choices or a range."""

    name: str
    kind: str  # "fixed", "choices", "range"
    value: Any = None
    choices: Optional[List[Any]] = None
    low: Union[int, float, None] = None
    high: Union[int, float, None] = None
    log: bool = False
    integer: bool = False

    def to_spec(self) -> Any:
        """Back to the YAML form (what a study stores and its resume reads)."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "choices":
            return list(self.choices or [])
        return {"low": self.low, "high": self.high, "log": self.log}


def searchable_keys() -> List[str]:
    return sorted([k for k in _FIELD_TYPES if k not in NOT_SEARCHABLE] + list(DERIVED))


def _check_key(key: Any) -> str:
    key = str(key)
    if key in NOT_SEARCHABLE:
        raise ConfigError(f"search space key '{key}' cannot be searched: {NOT_SEARCHABLE[key]}")
    if key not in _FIELD_TYPES and key not in DERIVED:
        close = difflib.get_close_matches(key, searchable_keys(), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else f"; searchable keys: {', '.join(searchable_keys())}"
        raise ConfigError(f"unknown search space key '{key}'{hint}")
    return key


def _is_integer(key: str) -> bool:
    return DERIVED.get(key) is int or _FIELD_TYPES.get(key) is int


def _check_value(key: str, value: Any) -> Any:
    """A value of ``key`` checked (and coerced) as a config value; a ConfigError naming the key otherwise."""
    if key in DERIVED:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or value != int(value):
            raise ConfigError(f"search space {key}={value!r} is not allowed: must be a positive integer")
        return int(value)
    if isinstance(value, (list, dict)):
        raise ConfigError(f"search space {key}={value!r} is not allowed: a choice must be a single value")
    checked = build_config({key: value, "batch_size": 1})  # batch_size 1 divides any rollout
    return getattr(checked, key)


def parse_param(key: Any, spec: Any) -> Param:
    """One key of a space file, checked: a fixed value, a non-empty list, or {low, high[, log]}."""
    key = _check_key(key)
    if isinstance(spec, Mapping):
        unknown = set(map(str, spec)) - RANGE_KEYS
        if unknown or "low" not in spec or "high" not in spec:
            raise ConfigError(
                f"search space key '{key}': a range is {{low: L, high: H}} with optional log: true, got {dict(spec)!r}"
            )
        if _FIELD_TYPES.get(key) is bool:
            raise ConfigError(f"search space key '{key}' is true or false: give choices [false, true], not a range")
        low, high, log = spec["low"], spec["high"], spec.get("log", False)
        for bound in (low, high):
            if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
                raise ConfigError(f"search space key '{key}': low and high must be numbers, got {dict(spec)!r}")
        if not isinstance(log, bool):
            raise ConfigError(f"search space key '{key}': log must be true or false, got {log!r}")
        if low >= high:
            raise ConfigError(f"search space key '{key}' has an empty range: low={low} must be below high={high}")
        if log and low <= 0:
            raise ConfigError(f"search space key '{key}': a log range needs low > 0, got low={low}")
        integer = _is_integer(key)
        if integer and (low != int(low) or high != int(high)):
            raise ConfigError(f"search space key '{key}' is an integer: low and high must be integers")
        low, high = _check_value(key, low), _check_value(key, high)
        return Param(key, "range", low=low, high=high, log=log, integer=integer)
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ConfigError(f"search space key '{key}' has an empty list of choices")
        choices = [_check_value(key, v) for v in spec]
        return Param(key, "choices", choices=choices)
    if spec is None and _FIELD_TYPES.get(key) is not None and "Optional" in str(_FIELD_TYPES[key]):
        return Param(key, "fixed", value=None)
    return Param(key, "fixed", value=_check_value(key, spec))


def load_space(overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Param]:
    """DEFAULT_SPACE with a user's keys laid over it (each checked)."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ConfigError(f"a search space must be a mapping of key: spec, not {type(overrides).__name__}")
    merged = {**DEFAULT_SPACE, **dict(overrides or {})}
    return {str(k): parse_param(k, v) for k, v in merged.items()}


def space_specs(space: Mapping[str, Param]) -> Dict[str, Any]:
    return {k: p.to_spec() for k, p in space.items()}


def fit_to_budget(space: Dict[str, Param], budget: int, num_envs: int) -> Dict[str, Param]:
    """Drop n_steps choices whose rollout is longer than the budget; an error where none is left."""
    param = space["n_steps"]
    envs = space.get("num_envs")
    if envs is not None:  # the smallest number of environments the space allows
        num_envs = int(envs.value if envs.kind == "fixed" else min(envs.choices or [envs.low]))  # type: ignore
    smallest = {"fixed": param.value, "choices": min(param.choices or [0]), "range": param.low}[param.kind]
    if smallest * num_envs > budget:
        raise ConfigError(
            f"budget {budget} is smaller than one rollout: n_steps={smallest} * num_envs={num_envs} = "
            f"{smallest * num_envs} steps; raise --budget or lower n_steps in --space"
        )
    if param.kind == "choices":
        kept = [v for v in param.choices or [] if v * num_envs <= budget]
        space = {**space, "n_steps": dataclasses.replace(param, choices=kept)}
    elif param.kind == "range":
        high = min(int(param.high), budget // num_envs)  # type: ignore[arg-type]
        if high <= int(param.low):  # type: ignore[arg-type]
            space = {**space, "n_steps": Param("n_steps", "fixed", value=int(param.low))}  # type: ignore[arg-type]
        else:
            space = {**space, "n_steps": dataclasses.replace(param, high=high)}
    return space


def sample(trial: Any, space: Mapping[str, Param]) -> Dict[str, Any]:
    """The trial's draw (Optuna suggests every searched key), as raw space values."""
    values: Dict[str, Any] = {}
    for name, p in space.items():
        if p.kind == "fixed":
            values[name] = p.value
        elif p.kind == "choices":
            values[name] = trial.suggest_categorical(name, p.choices)
        elif p.integer:
            values[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)  # type: ignore[arg-type]
        else:
            values[name] = trial.suggest_float(name, float(p.low), float(p.high), log=p.log)  # type: ignore[arg-type]
    return values


def to_config_values(values: Mapping[str, Any], base: PPOConfig) -> Dict[str, Any]:
    """Space values to PPOConfig keys: net_arch from width and depth, batch_size from n_minibatches."""
    out = {k: v for k, v in values.items() if k not in DERIVED}
    if "net_width" in values or "net_depth" in values:
        width = int(values.get("net_width", base.net_arch[0]))
        depth = int(values.get("net_depth", len(base.net_arch)))
        out["net_arch"] = [width] * depth
    rollout = int(out.get("n_steps", base.n_steps)) * int(out.get("num_envs", base.num_envs))
    minibatches = int(values.get("n_minibatches", max(1, rollout // base.batch_size)))
    out["batch_size"] = largest_divisor_at_most(rollout, max(1, rollout // minibatches))
    return out


def largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in _divisors(n) if d <= limit)


def _divisors(n: int) -> Sequence[int]:
    small = [d for d in range(1, int(math.isqrt(n)) + 1) if n % d == 0]
    return small + [n // d for d in small]
