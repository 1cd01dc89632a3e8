"""Optional environment families: which extra installs each, what it pins, and what a failure says.

MuJoCo, Gymnasium-Robotics, Box2D and MiniGrid environments come from packages ppolearn does not depend
on. When one of their environments cannot be built, reset or stepped, the usual cause is a missing package
or a release that breaks it (mujoco 3.12+ makes Gymnasium-Robotics' FetchReach fail on reset with a bare
``AssertionError``). :func:`env_failure` turns any such failure into one line naming the environment, the
failing call and where it raised, the installed versions of the family's packages, and the install line
whose pinned versions are known to work. The pins are those of ``pyproject.toml``'s extras (a test keeps
them equal).
"""

from __future__ import annotations

import importlib.metadata
import re
import traceback
from pathlib import PurePath
from typing import NamedTuple, Optional, Tuple

import gymnasium as gym

from ppolearn.errors import EnvError


class Family(NamedTuple):
    """An optional family of environments and how to install it."""

    name: str
    packages: Tuple[str, ...]  # distributions whose versions decide whether its environments work
    requirements: Tuple[str, ...]  # what its extra installs (pinned to releases known to work)
    install: str  # the command that installs them


FAMILIES = {
    "mujoco": Family(
        "mujoco",
        ("gymnasium", "mujoco"),
        ("gymnasium[mujoco]>=1.1",),
        "pip install 'ppolearn[mujoco]'",
    ),
    "robotics": Family(
        "robotics",
        ("gymnasium", "gymnasium-robotics", "mujoco"),
        ("gymnasium-robotics>=1.3", "mujoco>=3.2.7,<3.12"),
        "pip install 'ppolearn[robotics]'",
    ),
    "box2d": Family(
        "box2d", ("gymnasium", "box2d"), ("box2d==2.3.10", "pygame>=2.1.3"), "pip install 'ppolearn[box2d]'"
    ),
    "minigrid": Family("minigrid", ("gymnasium", "minigrid"), ("minigrid>=2.3",), "pip install 'ppolearn[minigrid]'"),
}

# Gymnasium-Robotics registers these ids when imported, so they are recognised before it is.
ROBOTICS_ID = re.compile(r"^(Fetch|Hand|Adroit|AntMaze|PointMaze|FrankaKitchen)\w*-v\d+$")
_ENTRY_POINT_FAMILIES = (
    ("gymnasium_robotics", "robotics"),
    ("gymnasium.envs.mujoco", "mujoco"),
    ("gymnasium.envs.box2d", "box2d"),
    ("minigrid", "minigrid"),
)


def family_of(env_id: str) -> Optional[Family]:
    """The optional family an id belongs to (from its registered entry point, or its name), else None."""
    if ROBOTICS_ID.match(env_id):
        return FAMILIES["robotics"]
    if env_id.startswith(("MiniGrid-", "BabyAI-")):
        return FAMILIES["minigrid"]
    spec = gym.registry.get(env_id)
    entry_point = spec.entry_point if spec is not None and isinstance(spec.entry_point, str) else ""
    for prefix, name in _ENTRY_POINT_FAMILIES:
        if entry_point.startswith(prefix):
            return FAMILIES[name]
    return None


def installed_versions(family: Family) -> str:
    """``gymnasium 1.4.0, mujoco 3.17.0`` for the family's packages (``not installed`` where missing)."""
    return ", ".join(f"{name} {_version(name)}" for name in family.packages)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def install_hint(family: Family) -> str:
    """The fix for a family's failures: its extra and the versions it pins."""
    pins = " ".join(f"'{r}'" for r in family.requirements)
    return f"{family.install} (or: pip install {pins})"


def describe(exc: BaseException) -> str:
    """``Type: message``, or where it was raised when the message is empty (a bare ``assert``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if text:
        return f"{type(exc).__name__}: {text}"
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    parts = PurePath(last.filename).parts
    short = "/".join(parts[parts.index("site-packages") + 1 :] if "site-packages" in parts else parts[-2:])
    return f"{type(exc).__name__} in {last.name}() at {short}:{last.lineno}"


def env_failure(env_id: str, exc: BaseException, where: Optional[str] = None) -> EnvError:
    """One line for an environment whose constructor (``where`` None) or ``where`` ("reset()", "step() at
    step 3", ...) raised ``exc``. For an optional family it adds the installed versions and the install line
    with the pins known to work."""
    if where is None:
        message = f"cannot make environment '{env_id}': {describe(exc)}"
    else:
        message = f"environment '{env_id}' raised in {where}: {describe(exc)}"
    family = family_of(env_id)
    if family is not None:
        message += (
            f" (installed: {installed_versions(family)}); "
            f"fix: install the versions the {family.name} extra pins: {install_hint(family)}"
        )
    return EnvError(message)
