"""PPOConfig: every hyperparameter in one place (the tutorial's ``_init_hyperparameters``).

Field names follow Stable-Baselines3's PPO arguments so an rl-baselines3-zoo YAML carries over with few
edits. A config is built in layers, later ones winning: defaults, the preset for the environment id,
a YAML file, ``key=value`` overrides. Every value is checked on the way in; an unknown key or a value out
of range is a :class:`ConfigError` naming the field, the value and what is allowed.
"""

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import yaml

from ppolearn.envs.goal_shaping import MODES as SHAPING_MODES
from ppolearn.envs.registry import official_id
from ppolearn.envs.success import TARGET_PATTERN, criterion_names
from ppolearn.envs.wrappers import wrapper_entries
from ppolearn.errors import ConfigError

PRESETS_DIR = Path(__file__).parent / "presets"

# rl-baselines3-zoo spellings accepted for our field names.
ALIASES = {"n_envs": "num_envs", "n_timesteps": "total_timesteps"}


@dataclass
class PPOConfig:
    """Hyperparameters of a PPO run. Defaults are chosen to learn typical dense-reward tasks untuned."""

    # --- run length and parallelism ---
    total_timesteps: int = 1_000_000  # environment steps over the whole run (all envs together)
    num_envs: int = 8  # parallel environments; one rollout = n_steps * num_envs transitions
    vec_env: str = "sync"  # "sync" steps envs in this process; "async" uses subprocesses (slow envs)
    env_kwargs: Dict[str, Any] = field(default_factory=dict)  # passed to the environment's constructor (gym.make)
    # wherever ppolearn builds it: training, Ray workers, evaluation, render, resume
    env_wrapper: List[Any] = field(default_factory=list)  # wrappers around each environment ppolearn builds,
    # innermost first, as rl-baselines3-zoo writes them: "pkg.module.Name" or {"pkg.module.Name": {kw: value}};
    # a single path is a list of one (ppolearn/envs/wrappers.py); recorded with the run like env_kwargs
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when present, else CPU
    torch_threads: int = 1  # one thread is fastest for small MLPs on few cores (see BENCHMARKS.md)
    backend: str = "local"  # "local" steps every env in this process tree; "ray" uses Ray actors (a cluster)
    num_workers: int = 1  # Ray rollout workers (backend "ray"); each owns a slice of the num_envs envs

    # --- rollout (the tutorial's timesteps_per_batch = n_steps * num_envs) ---
    n_steps: int = 256  # steps per environment per rollout
    gamma: float = 0.99  # discount factor
    gae_lambda: float = 0.95  # GAE(lambda); 1.0 gives Monte-Carlo returns minus the value baseline

    # --- update (the tutorial's n_updates_per_iteration, lr, clip) ---
    n_epochs: int = 20  # passes over each rollout, at most: target_kl below ends them once the policy has moved
    batch_size: int = 64  # minibatch size; must divide n_steps * num_envs (with memory: rounded, see below)
    learning_rate: float = 3e-4
    anneal_lr: bool = False  # linearly decay the learning rate to 0 at total_timesteps
    clip_range: float = 0.2  # PPO-Clip epsilon: ratios outside [1-eps, 1+eps] get no gradient
    clip_range_vf: Optional[float] = None  # clip value updates around the old values (None: off)
    ent_coef: float = 0.0  # entropy bonus weight
    vf_coef: float = 0.5  # value loss weight in the joint loss
    max_grad_norm: float = 0.5  # global gradient-norm clipping
    target_kl: Optional[float] = 0.02  # stop the epochs early when approx KL exceeds 1.5 * target_kl (None: off)
    normalize_advantage: bool = True  # per-minibatch advantage normalisation

    # --- observation and reward normalisation (saved with the model) ---
    normalize_obs: bool = True  # running mean/std of observations
    normalize_reward: bool = True  # divide rewards by the running std of the discounted return
    clip_obs: float = 10.0  # clip normalised observations to +-clip_obs
    clip_reward: float = 10.0  # clip scaled rewards to +-clip_reward

    # --- the environment's output ---
    sanitize_nonfinite: bool = False  # replace NaN/inf in observations and rewards (NaN->0, inf->+-1e6) instead
    # of stopping with an error at the step they appear

    # --- what the policy sees and may do (ppolearn/envs/spaces.py, ppolearn/encoders.py) ---
    image_obs: bool = True  # uint8 Boxes of 3 dims with 1-4 channels at an end are images (a CNN, stored as
    # uint8); false flattens every Box into the vector
    channels_last: Optional[bool] = None  # images' channel axis: null reads it from the shape (last if 1-4)
    image_scale: float = 255.0  # the CNN reads image / image_scale: 255 for pixels; MiniGrid's symbolic grid
    # (object, colour and state indices of at most 10) would be squeezed into [0, 0.04] by 255, so its preset uses 10
    action_masking: str = "auto"  # invalid-action masks (Discrete, MultiDiscrete) from the env's
    # action_masks() or info["action_mask"]: "auto" where it gives them, "true" (required), "false" (ignored)

    # --- networks (separate actor and critic MLPs, as in the tutorial; a CNN shared by both for images) ---
    net_arch: List[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    log_std_init: float = 0.0  # initial log standard deviation of the Gaussian policy
    scale_actions: str = "auto"  # Box actions: the Gaussian's [-1, 1] mapped onto the bounds, "true" (every
    # bounded dimension), "auto" (where mean 0 and std 1 do not fit the bounds) or "false"; on a mapped
    # dimension log_std_init counts in half-ranges (ppolearn/envs/spaces.py, action_scaling)
    ortho_init: bool = True  # orthogonal init: hidden sqrt(2), policy head 0.01, value head 1.0
    memory: Optional[str] = None  # a recurrent core between the encoder and the heads: "lstm", "gru" or null
    # (feed-forward); with one, a minibatch is whole env sequences: batch_size // n_steps of them (at least
    # one, lowered to a divisor of num_envs; see minibatch_envs) of n_steps each
    memory_size: int = 128  # hidden units of the recurrent core (an LSTM's state is twice that: h and c)

    # --- bookkeeping ---
    checkpoint_every: int = 10  # updates between checkpoints (0: only at the end)
    keep_checkpoints: int = 3  # how many checkpoints to keep
    success: Optional[str] = None  # named criterion setting info["is_success"] (ppolearn/envs/success.py)

    # --- sparse goal tasks (ppolearn/envs/goal_shaping.py): training reward only, evaluation stays raw ---
    goal_shaping: Optional[str] = None  # "potential": train on r + gamma * Phi(s') - Phi(s), Phi = -goal distance
    # / scale (keeps the optimal policy; needs Dict observations with achieved_goal and desired_goal); null: off
    goal_shaping_scale: Optional[float] = None  # distance worth one unit of Phi; None: the env's
    # distance_threshold (Fetch: 0.05 m), else 1

    # --- evaluation: deterministic episodes on a separate, official environment (ppolearn/evaluation.py) ---
    eval_episodes: int = 100  # the final evaluation, and each confirmation that the target is reached
    eval_every: Optional[int] = None  # steps between evaluations during training; None: 10 per run when
    # there is a run directory (what `ppolearn train` has), else none; 0: none
    eval_during_episodes: int = 20  # episodes of each evaluation during training (best model, curve)
    target: Optional[str] = None  # what reaching the task means, e.g. "mean_return>=-200", "success_rate>=0.95"
    stop_at_target: bool = False  # end training once an evaluation of eval_episodes confirms the target

    @property
    def rollout_size(self) -> int:
        """Transitions per rollout: the tutorial's timesteps_per_batch."""
        return self.n_steps * self.num_envs

    @property
    def minibatch_envs(self) -> int:
        """With a memory core, the env sequences per minibatch: the update re-runs the core over whole
        rollouts of n_steps, so batch_size is read as sequences x n_steps, rounded down to whole sequences
        (at least one) and lowered until the sequences split num_envs into equal minibatches."""
        envs = max(1, min(self.batch_size // self.n_steps, self.num_envs))
        while self.num_envs % envs:
            envs -= 1
        return envs

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def env_options(self) -> Dict[str, Any]:
        """The fields that say how environments are built and read (the keyword arguments of
        ``make_vec_env`` and ``GymVecEnv``), so the learner's envs and the Ray workers' are built alike."""
        keys = (
            "env_kwargs", "env_wrapper", "sanitize_nonfinite", "success", "image_obs", "channels_last",
            "action_masking",
        )  # fmt: skip
        return {key: getattr(self, key) for key in keys}

    def replace(self, **changes: Any) -> "PPOConfig":
        """A validated copy with some fields changed."""
        return build_config(self.to_dict(), changes)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --- validation -------------------------------------------------------------------------------------

_Check = Tuple[Callable[[Any], bool], str]


def _positive(v: Any) -> bool:
    return v > 0


def _nonneg(v: Any) -> bool:
    return v >= 0


def _unit_open(v: Any) -> bool:
    return 0 < v < 1


def _valid_target(v: Any) -> bool:
    return v is None or TARGET_PATTERN.match(v) is not None


_CHECKS: Dict[str, _Check] = {
    "total_timesteps": (_positive, "a positive integer"),
    "num_envs": (_positive, "a positive integer"),
    "vec_env": (lambda v: v in ("sync", "async"), "'sync' or 'async'"),
    "seed": (_nonneg, "an integer >= 0"),
    "device": (lambda v: v in ("auto", "cpu") or v.startswith("cuda"), "'auto', 'cpu' or 'cuda[:N]'"),
    "torch_threads": (_nonneg, "an integer >= 0 (0 keeps torch's default)"),
    "backend": (lambda v: v in ("local", "ray"), "'local' or 'ray'"),
    "num_workers": (_positive, "a positive integer"),
    "n_steps": (_positive, "a positive integer"),
    "gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "gae_lambda": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "n_epochs": (_positive, "a positive integer"),
    "batch_size": (_positive, "a positive integer"),
    "learning_rate": (_positive, "a positive number"),
    "clip_range": (_unit_open, "in (0, 1)"),
    "clip_range_vf": (lambda v: v is None or v > 0, "a positive number or null"),
    "ent_coef": (_nonneg, "a number >= 0"),
    "vf_coef": (_nonneg, "a number >= 0"),
    "max_grad_norm": (_positive, "a positive number"),
    "target_kl": (lambda v: v is None or v > 0, "a positive number or null"),
    "clip_obs": (_positive, "a positive number"),
    "image_scale": (_positive, "a positive number"),
    "clip_reward": (_positive, "a positive number"),
    "net_arch": (lambda v: len(v) > 0 and all(n > 0 for n in v), "a non-empty list of positive layer sizes"),
    "activation": (lambda v: v in ("tanh", "relu", "elu"), "'tanh', 'relu' or 'elu'"),
    "action_masking": (lambda v: v in ("auto", "true", "false"), "'auto', 'true' or 'false'"),
    "log_std_init": (lambda v: -20 <= v <= 2, "in [-20, 2]"),
    "memory": (lambda v: v in (None, "lstm", "gru"), "'lstm', 'gru' or null (feed-forward)"),
    "scale_actions": (lambda v: v in ("auto", "true", "false"), "'auto', 'true' or 'false'"),
    "memory_size": (_positive, "a positive integer"),
    "checkpoint_every": (_nonneg, "an integer >= 0"),
    "keep_checkpoints": (_positive, "a positive integer"),
    "eval_episodes": (_positive, "a positive integer"),
    "eval_every": (lambda v: v is None or v >= 0, "an integer >= 0 (0: no evaluation during training) or null"),
    "eval_during_episodes": (_positive, "a positive integer"),
    "target": (_valid_target, "null or METRIC>=VALUE, METRIC mean_return or success_rate (e.g. 'mean_return>=-200')"),
    "success": (lambda v: v is None or v in criterion_names(), f"null or one of {criterion_names()}"),
    "goal_shaping": (lambda v: v is None or v in SHAPING_MODES, f"null or one of {list(SHAPING_MODES)}"),
    "goal_shaping_scale": (lambda v: v is None or v > 0, "a positive number or null"),
}

_FIELDS = {f.name: f for f in dataclasses.fields(PPOConfig)}


def _coerce(name: str, value: Any) -> Any:
    """Convert a YAML / command-line value to the field's type, or raise a ConfigError."""
    if name == "env_wrapper":
        return _wrapper_list(value)
    ftype = _FIELDS[name].type
    optional = getattr(ftype, "__origin__", None) is Union and type(None) in ftype.__args__
    if optional:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        ftype = next(a for a in ftype.__args__ if a is not type(None))
    bad = ConfigError(f"{name}={value!r} is not allowed: expected {_type_name(ftype, optional)}")
    if ftype is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if ftype is int:
        number = _to_number(value)
        if number is None or not float(number).is_integer():
            raise bad
        return int(number)
    if ftype is float:
        number = _to_number(value)
        if number is None or not math.isfinite(number):
            raise bad
        return float(number)
    if ftype is str:
        if isinstance(value, bool):  # YAML reads true / false as booleans; action_masking takes them as words
            return str(value).lower()
        if not isinstance(value, str):
            raise bad
        return value
    if getattr(ftype, "__origin__", None) is dict:
        return _mapping(name, value)
    if getattr(ftype, "__origin__", None) is list:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise bad from None
        if not isinstance(value, (list, tuple)):
            raise bad
        items = [_to_number(v) for v in value]
        if any(v is None or not float(v).is_integer() for v in items):
            raise bad
        return [int(v) for v in items]
    raise bad  # pragma: no cover - every field type is handled above


def _mapping(name: str, value: Any) -> Dict[str, Any]:
    """A mapping of keyword arguments: from YAML, or a ``{key: value}`` string given to ``--set``."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            value = None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name}={value!r} is not allowed: expected a mapping of names to values, e.g. {{a: 1}}")
    return dict(value)


def _wrapper_list(value: Any) -> List[Any]:
    """``env_wrapper`` as a list of paths and {path: {keyword: value}} entries (YAML text from ``--set`` too)."""
    if isinstance(value, str):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            pass
    return wrapper_entries(value)


def parse_env_kwargs(pairs: Iterable[str]) -> Dict[str, Any]:
    """``["map_name:8x8", "is_slippery:False"]`` (rl-baselines3-zoo's --env-kwargs) as a dict, each value
    parsed as a YAML scalar (``False`` -> False, ``8x8`` -> "8x8", ``0.5`` -> 0.5)."""
    return _parse_pairs(pairs, ":", "--env-kwargs expects NAME:VALUE")


def _to_number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value.replace("_", ""))  # YAML 1.1 reads "1e5" as a string
        except ValueError:
            return None
        return int(number) if number.is_integer() and math.isfinite(number) else number
    return None


def _type_name(ftype: Any, optional: bool) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    name = names.get(ftype, "a list of integers")
    return name + " or null" if optional else name


def _canonical_key(key: str) -> str:
    key = ALIASES.get(key, key)
    if key not in _FIELDS:
        close = difflib.get_close_matches(key, list(_FIELDS) + list(ALIASES), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else "; run `ppolearn presets --fields` for the list"
        raise ConfigError(f"unknown config key '{key}'{hint}")
    return key


def validate(config: PPOConfig) -> PPOConfig:
    """Range-check every field and the relations between them; return the config unchanged."""
    for name, (ok, allowed) in _CHECKS.items():
        value = getattr(config, name)
        if not ok(value):
            raise ConfigError(f"{name}={value!r} is not allowed: must be {allowed}")
    if config.backend == "ray" and config.num_workers > config.num_envs:
        raise ConfigError(
            f"num_workers={config.num_workers} is more than num_envs={config.num_envs}: every Ray worker "
            "needs at least one environment"
        )
    if config.stop_at_target and config.target is None:
        raise ConfigError("stop_at_target=true needs a target, e.g. target='mean_return>=-200'")
    if config.memory is not None:  # whole env sequences per minibatch: batch_size is rounded (minibatch_envs)
        return config
    if config.batch_size > config.rollout_size:
        raise ConfigError(
            f"batch_size={config.batch_size} is larger than one rollout "
            f"(n_steps * num_envs = {config.n_steps} * {config.num_envs} = {config.rollout_size})"
        )
    if config.rollout_size % config.batch_size:
        raise ConfigError(
            f"batch_size={config.batch_size} must divide n_steps * num_envs = {config.rollout_size} "
            "into equal minibatches"
        )
    return config


def build_config(*layers: Optional[Mapping[str, Any]]) -> PPOConfig:
    """Merge layers of settings (later wins) onto the defaults, coerce types and validate."""
    values: Dict[str, Any] = {}
    normalize_alias: Optional[bool] = None
    for layer in layers:
        for key, value in (layer or {}).items():
            if key == "normalize":  # zoo's `normalize: true` turns on both normalisations
                normalize_alias = _coerce("normalize_obs", value)
                values["normalize_obs"] = values["normalize_reward"] = normalize_alias
                continue
            name = _canonical_key(str(key))
            values[name] = _coerce(name, value)
    return validate(PPOConfig(**values))


def parse_overrides(pairs: Iterable[str]) -> Dict[str, Any]:
    """Turn ``["key=value", ...]`` from ``--set`` into a dict, values parsed as YAML scalars."""
    return _parse_pairs(pairs, "=", "--set expects KEY=VALUE")


def _parse_pairs(pairs: Iterable[str], separator: str, expected: str) -> Dict[str, Any]:
    """``key<separator>value`` strings as a dict, each value parsed as a YAML scalar (kept as text where it
    is not valid YAML); a pair without the separator or a key is one ConfigError naming ``expected``."""
    out: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition(separator)
        if not sep or not key.strip():
            raise ConfigError(f"{expected}, got '{pair}'")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def load_yaml(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a YAML mapping of config keys; a clear error if the file is missing or malformed."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of key: value, not {type(data).__name__}")
    return data


def preset_path(env_id: str) -> Path:
    return PRESETS_DIR / (env_id.replace("/", "__") + ".yaml")


def load_preset(env_id: str) -> Dict[str, Any]:
    """Tuned settings for a known environment id, or {} for an unknown one (defaults then apply).

    A batched clone (``ppolearn/Pendulum-v1``) is judged on the official task it clones, so it inherits
    that task's success criterion and target unless its own preset names others.
    """
    path = preset_path(env_id)
    values = load_yaml(path) if path.exists() else {}
    official = official_id(env_id)
    if official != env_id:
        judged = {k: v for k, v in load_preset(official).items() if k in ("success", "target")}
        values = {**judged, **values}
    return values


def list_presets() -> List[str]:
    return sorted(p.stem.replace("__", "/") for p in PRESETS_DIR.glob("*.yaml"))


def field_names() -> List[str]:
    return list(_FIELDS)
