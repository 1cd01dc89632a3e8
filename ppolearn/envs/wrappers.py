"""The user's wrappers around every environment ppolearn builds (config ``env_wrapper``).

rl-baselines3-zoo's form: one class path, or a list of them, each optionally with keyword arguments::

    env_wrapper: minigrid.wrappers.FlatObsWrapper
    env_wrapper:
      - gymnasium.wrappers.TimeLimit: {max_episode_steps: 50}
      - gymnasium.wrappers.FlattenObservation

A path is ``package.module.Name`` (or ``package.module:Name``); ``Name`` is a ``gymnasium.Wrapper`` class or
any callable taking the environment (and the keyword arguments) and returning one. The first in the list is
applied first (innermost). They wrap the environment after its constructor's ``env_kwargs`` and the success
criterion (which reads the environment as it is), so the policy sees what the last wrapper returns, in
training, the Ray workers, evaluation, render and resume alike. Every failure is one :class:`EnvError` line.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import gymnasium as gym

from ppolearn.envs.make import EnvSpec, env_factory
from ppolearn.envs.success import with_success
from ppolearn.errors import ConfigError, EnvError

# One entry of ``env_wrapper``: a path, or {path: {keyword: value}} (the config normalises to these two forms)
WrapperEntry = Union[str, Dict[str, Dict[str, Any]]]


def wrapper_entries(value: Any) -> List[WrapperEntry]:
    """``env_wrapper`` checked and normalised: a list of paths and ``{path: {keyword: value}}`` entries (one
    entry alone, or None, is a list of one, or of none). The one check of the form, for the config and for
    code that hands wrappers to ``make_vec_env`` directly."""
    if value is None:
        return []
    out: List[WrapperEntry] = []
    # a path or {path: ...} alone is a list of one; any other non-list (a number, true) is checked as an entry
    for entry in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(entry, str) and entry.strip():
            out.append(entry.strip())
            continue
        if isinstance(entry, Mapping) and len(entry) == 1:
            ((path, kwargs),) = entry.items()
            kwargs = {} if kwargs is None else kwargs
            if isinstance(path, str) and isinstance(kwargs, Mapping) and all(isinstance(k, str) for k in kwargs):
                out.append({path.strip(): dict(kwargs)})
                continue
        raise ConfigError(
            f"env_wrapper={value!r} is not allowed: expected a wrapper's path ('minigrid.wrappers.FlatObsWrapper') "
            "or a list of them, each path alone or with its keyword arguments ({path: {name: value}}); "
            f"{entry!r} is neither a path nor that"
        )
    return out


def resolve_wrapper(path: str) -> Callable[..., gym.Env]:
    """The class or callable a path names, imported."""
    module_name, sep, name = path.partition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_name or not name:
        raise EnvError(f"env_wrapper '{path}' is not a path such as 'minigrid.wrappers.FlatObsWrapper'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvError(f"env_wrapper '{path}': cannot import module '{module_name}' ({exc})") from None
    wrapper = getattr(module, name, None)
    if wrapper is None or not callable(wrapper):
        raise EnvError(f"env_wrapper '{path}': module '{module_name}' has no class or function '{name}'")
    return wrapper


def with_wrappers(
    factory: Callable[..., gym.Env], entries: Union[WrapperEntry, Sequence[WrapperEntry], None]
) -> Callable[..., gym.Env]:
    """The factory itself when there are no wrappers, else one whose environments come wrapped in them.

    The paths are imported here, once, so that a misspelt one fails before any environment is built."""
    pairs = [(e, {}) if isinstance(e, str) else next(iter(e.items())) for e in wrapper_entries(entries)]
    if not pairs:
        return factory
    wrappers = [(path, resolve_wrapper(path), kwargs) for path, kwargs in pairs]

    def make(**kwargs: Any) -> gym.Env:
        env = factory(**kwargs)
        for path, wrapper, wrapper_kwargs in wrappers:
            try:
                wrapped = wrapper(env, **wrapper_kwargs)
            except EnvError:
                raise
            except Exception as exc:
                raise EnvError(f"env_wrapper '{path}' failed on the environment: {type(exc).__name__}: {exc}") from exc
            if not isinstance(wrapped, gym.Env):
                raise EnvError(f"env_wrapper '{path}' returned {type(wrapped).__name__}, not a gymnasium.Env")
            env = wrapped
        return env

    return make


def configured_factory(
    env: EnvSpec,
    success: Optional[str] = None,
    env_kwargs: Optional[Dict[str, Any]] = None,
    env_wrapper: Union[WrapperEntry, Sequence[WrapperEntry]] = (),
) -> Callable[..., gym.Env]:
    """One environment of ``env`` as a config builds it: the constructor's ``env_kwargs``, the ``success``
    criterion, then the ``env_wrapper`` wrappers. Keyword arguments of a call (``render_mode``) go to the
    constructor too."""
    made = with_wrappers(with_success(env_factory(env), success), env_wrapper)
    return functools.partial(made, **(env_kwargs or {}))
