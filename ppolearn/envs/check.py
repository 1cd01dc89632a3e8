"""``ppolearn check-env``: will this environment train, and will it report reaching its target?

Runs Gymnasium's own checker, then what ppolearn needs on top of it. Each finding says what is wrong in
plain words and how to fix it. Problems stop training or make its results meaningless; notes (Gymnasium's
warnings) are worth a look but ppolearn copes with them.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import gymnasium as gym
from gymnasium.utils.env_checker import check_env as gymnasium_check_env

from ppolearn.envs.make import EnvSpec
from ppolearn.envs.spaces import ActionSpec, ObsSpec, action_scaling, bounded_dimensions, mapped_dimensions
from ppolearn.envs.wrappers import WrapperEntry, configured_factory
from ppolearn.errors import EnvError

PROBLEM, NOTE = "problem", "note"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Gymnasium colours its warnings for terminals
_PROBE_STEPS = 5  # random steps taken to look for info["is_success"]


class Finding(NamedTuple):
    severity: str  # PROBLEM or NOTE
    what: str  # what is wrong
    fix: str  # how to fix it

    def __str__(self) -> str:
        return f"{self.severity}: {self.what}\n  fix: {self.fix}"


def check_environment(
    env: EnvSpec,
    success: Optional[str] = None,
    env_kwargs: Optional[Dict[str, Any]] = None,
    env_wrapper: Sequence[WrapperEntry] = (),
) -> List[Finding]:
    """Every finding for ``env`` (an id, ``module:Env-v0``, ``module:ClassName`` or a factory); [] if clean.

    ``success`` is the criterion training would add (the preset's, for a known id), so an environment
    that relies on one is not told to report ``is_success`` itself; ``env_kwargs`` go to its constructor and
    ``env_wrapper`` wraps it, as in training.
    """
    factory = configured_factory(env, success, env_kwargs, env_wrapper)
    instance = factory()
    try:
        findings = _gymnasium_checker(factory)
        findings += _spaces(instance)
        findings += _time_limit(instance)
        if not any(f.severity == PROBLEM for f in findings):  # stepping a broken env would only add noise
            findings += _success_info(instance)
    finally:
        instance.close()
    return findings


def describe_spaces(
    env: EnvSpec,
    env_kwargs: Optional[Dict[str, Any]] = None,
    image_obs: bool = True,
    channels_last: Optional[bool] = None,
    env_wrapper: Sequence[WrapperEntry] = (),
) -> str:
    """What the policy will see and do, in two lines: each observation entry's encoding (images with the
    CNN they get: ``image 7x7x3 uint8 -> small CNN``), the action space and where its masks come from."""
    instance = configured_factory(env, None, env_kwargs, env_wrapper)()
    try:
        with warnings.catch_warnings():  # a dropped Text entry is reported by check_environment
            warnings.simplefilter("ignore")
            obs = ObsSpec.from_space(instance.observation_space, image_obs, channels_last)
        action = ActionSpec.from_space(instance.action_space)
        masks = "none"
        if action.mask_dim:
            if instance.has_wrapper_attr("action_masks"):
                masks = "from action_masks()"
            elif "action_mask" in instance.reset(seed=0)[1]:
                masks = 'from info["action_mask"]'
    except EnvError as exc:
        return f"spaces: {exc}"
    finally:
        instance.close()
    stored = f"{obs.bytes_per_transition()} bytes per transition in the rollout buffer"
    return f"observations: {obs.describe()} ({stored})\nactions: {action.describe()}; action masks: {masks}"


def _gymnasium_checker(factory: Callable[..., gym.Env]) -> List[Finding]:
    fresh = factory()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                gymnasium_check_env(fresh.unwrapped, skip_render_check=True)
            except Exception as exc:  # the checker asserts; any failure is the finding
                return [
                    Finding(
                        PROBLEM,
                        f"Gymnasium's env checker failed: {type(exc).__name__}: {_clean(str(exc))}",
                        "make reset()/step() follow the Gymnasium API named in the message "
                        "(https://gymnasium.farama.org/api/env/)",
                    )
                ]
    finally:
        fresh.close()
    notes = []
    for message in dict.fromkeys(_clean(str(w.message)) for w in caught):  # dedupe, keep order
        notes.append(Finding(NOTE, f"Gymnasium's env checker warns: {message}", "see the warning; ppolearn copes"))
    return notes


def _clean(message: str) -> str:
    return _ANSI.sub("", message).replace("WARN: ", "").strip()


def _spaces(env: gym.Env) -> List[Finding]:
    findings = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # a dropped Text entry: a note, not a problem
            warnings.simplefilter("always")
            ObsSpec.from_space(env.observation_space)
        for w in caught:
            findings.append(Finding(NOTE, str(w.message), "fine if the task can be solved without it"))
    except EnvError as exc:
        findings.append(
            Finding(
                PROBLEM,
                f"unsupported observation space: {exc}",
                "return Box, Discrete, MultiDiscrete or MultiBinary observations, or a Dict / Tuple of them",
            )
        )
    try:
        action = ActionSpec.from_space(env.action_space)
    except EnvError as exc:
        findings.append(
            Finding(
                PROBLEM,
                f"unsupported action space: {exc}",
                "use a Box for continuous actions, or Discrete, MultiDiscrete or MultiBinary for choices",
            )
        )
        return findings
    if action.kind == "box" and not bounded_dimensions(action.low, action.high).all():
        findings.append(
            Finding(
                PROBLEM,
                f"the Box action space has infinite or huge bounds (low={action.low}, high={action.high}; a "
                "half-range of 1e6 or more counts as none); the Gaussian policy starts with standard deviation 1 "
                "around 0 and its actions are clipped to the bounds, so it needs to know the useful range",
                "give the action Box finite bounds that cover the useful actions",
            )
        )
    if action.kind == "box":
        mapped = [i for i, m in enumerate(mapped_dimensions(*action_scaling(action.low, action.high, "auto"))) if m]
        if mapped:
            bounds = ", ".join(f"{i}: [{action.low[i]:g}, {action.high[i]:g}]" for i in mapped)
            findings.append(
                Finding(
                    NOTE,
                    "action bounds far from a standard normal's reach (off-centre, or a range over 4x or under "
                    f"1/4 of it) in dimension(s) {bounds}: the default scale_actions 'auto' maps the Gaussian "
                    "onto them, so it starts mid-range with noise of about half the range",
                    "nothing to do if the bounds are the useful range; else set tighter bounds, or scale_actions: "
                    "false to keep the environment's units",
                )
            )
    return findings


def _time_limit(env: gym.Env) -> List[Finding]:
    limit = env.spec.max_episode_steps if env.spec is not None else None
    if limit is None and isinstance(getattr(env.unwrapped, "max_steps", None), int):
        limit = env.unwrapped.max_steps  # MiniGrid truncates its episodes itself
    wrapped = env
    while isinstance(wrapped, gym.Wrapper) and limit is None:
        if isinstance(wrapped, gym.wrappers.TimeLimit):
            limit = wrapped._max_episode_steps
        wrapped = wrapped.env
    if limit is not None:
        return []
    return [
        Finding(
            PROBLEM,
            "no time limit: an episode that never reaches the target never ends, so no return or success is "
            "ever logged and evaluation can hang",
            "register the id with max_episode_steps=N (gymnasium.register(..., max_episode_steps=N)) or wrap the "
            "env in gymnasium.wrappers.TimeLimit(env, N)",
        )
    ]


def _success_info(env: gym.Env) -> List[Finding]:
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(_PROBE_STEPS):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if "is_success" not in info:
            return [
                Finding(
                    PROBLEM,
                    'step() returns no info["is_success"], so success rate and steps to success cannot be measured',
                    'return info["is_success"] = <target state reached> from step(), or apply a criterion: '
                    "`success: NAME` in the config or ppolearn.envs.SuccessInfo(env, condition)",
                )
            ]
        if terminated or truncated:
            env.reset()
    return []
