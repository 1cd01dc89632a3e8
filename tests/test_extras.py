"""Optional extras: a missing MuJoCo or Gymnasium-Robotics says which `pip install` fixes it."""

import importlib.util
import sys

import pytest

from ppolearn.envs import make_env
from ppolearn.errors import EnvError


def test_missing_robotics_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # None in sys.modules makes the import fail
    with pytest.raises(EnvError, match=r"pip install 'ppolearn\[robotics\]'"):
        make_env("FetchReach-v4")


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is not None, reason="MuJoCo is installed here")
def test_missing_mujoco_names_the_extra():
    with pytest.raises(EnvError, match=r"pip install 'ppolearn\[mujoco\]'"):
        make_env("Reacher-v5")
