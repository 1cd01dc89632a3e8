"""Turn what a user hands over into a factory of Gymnasium environments.

Accepted: a registered id (``"Pendulum-v1"``), an id in a module that registers it on import
(``"my_pkg.envs:Reach-v0"``), an entry point (``"my_pkg.envs:ReachEnv"``), an ``Env`` instance, or a
callable returning one. Every failure becomes one :class:`EnvError` line.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from typing import Any, Callable, Union

import gymnasium as gym

from ppolearn.envs.extras import env_failure, family_of, install_hint, installed_versions
from ppolearn.envs.registry import batched_ids, is_batched_id, official_id
from ppolearn.errors import EnvError

EnvFactory = Callable[..., gym.Env]
EnvSpec = Union[str, gym.Env, EnvFactory]

_REGISTERED_ID = re.compile(r"^(?:[\w.-]+/)?[\w.:-]+-v\d+$")


def env_id_of(env: EnvSpec) -> str:
    """A name for logs, presets and run directories."""
    if isinstance(env, str):
        return env
    if isinstance(env, gym.Env):
        spec = getattr(env.unwrapped, "spec", None) or getattr(env, "spec", None)
        return spec.id if spec is not None else type(env.unwrapped).__name__
    return getattr(env, "__name__", type(env).__name__)


def preset_key(env_id: str) -> str:
    """The id without a ``module:`` prefix: the key presets are stored under."""
    return env_id.split(":", 1)[1] if ":" in env_id else env_id


def make_env(env: EnvSpec, **kwargs: Any) -> gym.Env:
    """Build one environment from any accepted form (kwargs, e.g. render_mode, go to the constructor)."""
    return env_factory(env)(**kwargs)


def env_factory(env: EnvSpec) -> EnvFactory:
    """A callable that makes a fresh environment each time it is called."""
    if isinstance(env, gym.Env):
        raise EnvError(
            "an Env instance can be used once only; pass its id or a factory (e.g. `lambda: MyEnv()`) "
            "to run several copies"
        )
    if isinstance(env, str):
        return _factory_from_string(env)
    if callable(env):
        return _checked(env, env_id_of(env))
    raise EnvError(f"cannot make an environment from {type(env).__name__}: pass an id, Env or factory")


def _factory_from_string(spec: str) -> EnvFactory:
    if is_batched_id(spec):  # one env of a batched clone is the official Gymnasium env it clones
        spec = official_id(spec)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        module = _import(module_name, spec)
        target = getattr(module, attr, None)
        if target is not None and (inspect.isclass(target) or callable(target)):
            return _checked(target, spec)
        if not _REGISTERED_ID.match(attr):
            raise EnvError(f"module '{module_name}' has no environment class or id '{attr}'")
        spec = attr  # the import registered it (Gymnasium's "module:Env-v0" form)
    _check_registered(spec)

    def make(**kwargs: Any) -> gym.Env:
        return gym.make(spec, **kwargs)

    return _checked(make, spec)


def _import(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvError(f"cannot import module '{module_name}' for environment '{spec}': {exc}") from None


def _check_registered(env_id: str) -> None:
    if env_id in gym.registry:
        return
    family = family_of(env_id)
    importers = {"robotics": ("gymnasium_robotics", "Gymnasium-Robotics"), "minigrid": ("minigrid", "MiniGrid")}
    if family is not None and family.name in importers:
        module, name = importers[family.name]  # these families register their ids when imported (on demand here)
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise EnvError(
                f"environment '{env_id}' needs {name} ({type(exc).__name__}: {exc}; installed: "
                f"{installed_versions(family)}): {install_hint(family)}"
            ) from None
        if env_id in gym.registry:
            return
    namespace = env_id.split("/", 1)[0] if "/" in env_id else None
    if namespace == "ppolearn":
        importlib.import_module("ppolearn.envs")  # registers our own environments
        if env_id in gym.registry:
            return
    close = difflib.get_close_matches(env_id, list(gym.registry) + batched_ids(), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise EnvError(f"unknown environment '{env_id}'{hint} (see gymnasium.pprint_registry() for the ids)")


def _checked(factory: Callable[..., Any], name: str) -> EnvFactory:
    """Wrap a factory so that construction errors and non-Env results become one clear line."""

    def make(**kwargs: Any) -> gym.Env:
        try:
            env = factory(**kwargs)
        except EnvError:
            raise
        except gym.error.DependencyNotInstalled as exc:
            family = family_of(name)
            hint = f" (installed: {installed_versions(family)}); {install_hint(family)}" if family else ""
            raise EnvError(f"environment '{name}' needs a package that is not installed: {exc}{hint}") from None
        except gym.error.Error as exc:
            raise EnvError(f"cannot make environment '{name}': {exc}") from None
        except TypeError as exc:
            if kwargs and "render_mode" in str(exc):
                raise EnvError(f"environment '{name}' does not accept render_mode: {exc}") from None
            raise EnvError(f"cannot make environment '{name}': {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # the constructor failed: name it, the versions where they matter; keep the cause
            raise env_failure(name, exc) from exc
        if not isinstance(env, gym.Env):
            raise EnvError(f"'{name}' returned {type(env).__name__}, not a gymnasium.Env")
        return env

    return make
