"""Optional extras: each family works here (construct, reset, step) or is skipped with its reason
(`pytest -rs` lists them); a missing or broken one is one line naming the versions and the fix."""

import importlib.util
import re
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from ppolearn.cli import main
from ppolearn.envs import GymVecEnv, make_env
from ppolearn.envs.extras import FAMILIES, describe, env_failure, family_of
from ppolearn.errors import EnvError

ROOT = Path(__file__).resolve().parent.parent

# family -> (the module it installs, one of its environments)
ENV_FAMILIES = {
    "mujoco": ("mujoco", "Reacher-v5"),
    "robotics": ("gymnasium_robotics", "FetchReach-v4"),
    "box2d": ("Box2D", "LunarLander-v3"),
    "minigrid": ("minigrid", "MiniGrid-Empty-5x5-v0"),
}


@pytest.mark.parametrize("family", sorted(ENV_FAMILIES))
def test_each_environment_family_works_or_is_skipped_with_its_reason(family):
    module, env_id = ENV_FAMILIES[family]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{family}: '{module}' is not installed ({FAMILIES[family].install})")
    if family == "minigrid":
        importlib.import_module("minigrid")  # registers its ids
    env = make_env(env_id)
    try:
        try:  # ppolearn's own message on failure: versions and the pinned install line
            env.reset(seed=0)
            env.action_space.seed(0)
            env.step(env.action_space.sample())
        except Exception as exc:
            raise env_failure(env_id, exc, "reset() or step()") from exc
    finally:
        env.close()


def test_ray_works_or_is_skipped_with_its_reason():
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray: not installed (pip install 'ppolearn[ray]')")
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote
        def first_step() -> int:
            env = gym.make("CartPole-v1")
            env.reset(seed=0)
            obs = env.step(0)[0]
            return len(obs)

        assert ray.get(first_step.remote()) == 4
    finally:
        if started:
            ray.shutdown()


def test_optuna_works_or_is_skipped_with_its_reason():
    if importlib.util.find_spec("optuna") is None:
        pytest.skip("optuna: not installed (pip install 'ppolearn[tune]')")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=3)
    assert len(study.trials) == 3


def test_the_pins_in_messages_are_those_of_pyproject():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, family in FAMILIES.items():
        if name in extras:
            assert list(family.requirements) == extras[name], name
    robotics_txt = (ROOT / "requirements-robotics.txt").read_text().splitlines()
    assert [line for line in robotics_txt if line and not line.startswith("#")] == extras["robotics"]


def test_missing_robotics_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # None in sys.modules makes the import fail
    monkeypatch.delitem(gym.registry, "FetchReach-v4", raising=False)  # as before the package registered it
    with pytest.raises(EnvError, match=r"pip install 'ppolearn\[robotics\]'.*'mujoco>=3\.2\.7,<3\.12'"):
        make_env("FetchReach-v4")


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is not None, reason="MuJoCo is installed here")
def test_missing_mujoco_names_the_extra():
    with pytest.raises(EnvError, match=r"pip install 'ppolearn\[mujoco\]'"):
        make_env("Reacher-v5")


# --- a failing environment of a known family: one line with the versions and the fix ---------------------


class BareAssertOnReset(gym.Env):
    """Fails in reset() with an assert that has no message, as FetchReach does with mujoco 3.12+."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        raise AssertionError  # what a bare `assert` raises outside pytest's rewritten test modules

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


class FailsToConstruct(BareAssertOnReset):
    def __init__(self) -> None:
        raise OSError("libGL not found")


@pytest.fixture
def broken_robotics_ids(monkeypatch):
    """Two ids the robotics family owns (by name), one failing on reset, one in its constructor."""
    for env_id, cls in (("FetchBroken-v0", BareAssertOnReset), ("FetchNoBuild-v0", FailsToConstruct)):
        monkeypatch.setitem(gym.registry, env_id, gym.envs.registration.EnvSpec(env_id, entry_point=cls))
    return "FetchBroken-v0", "FetchNoBuild-v0"


def _one_line_with_versions_and_fix(message: str, env_id: str) -> None:
    assert "\n" not in message and f"'{env_id}'" in message
    version = r"(?:not installed|\S+)"  # the test runs with and without the extra installed
    pattern = rf"installed: gymnasium {version}, gymnasium-robotics {version}, mujoco {version}"
    assert re.search(pattern, message), message
    assert "fix: " in message and "pip install 'ppolearn[robotics]'" in message and "mujoco>=3.2.7,<3.12" in message


def test_a_bare_assert_in_reset_is_named_with_where_it_raised(broken_robotics_ids):
    env = GymVecEnv(broken_robotics_ids[0], 2)
    with pytest.raises(EnvError) as err:
        env.reset(seed=0)
    message = str(err.value)
    _one_line_with_versions_and_fix(message, "FetchBroken-v0")
    assert "raised in reset(): AssertionError in reset() at " in message and "test_extras.py" in message


def test_a_constructor_failure_is_one_line_with_versions(broken_robotics_ids):
    with pytest.raises(EnvError) as err:
        make_env(broken_robotics_ids[1])
    _one_line_with_versions_and_fix(str(err.value), "FetchNoBuild-v0")
    assert "cannot make environment 'FetchNoBuild-v0': OSError: libGL not found" in str(err.value)


def test_cli_prints_one_line_and_no_traceback(broken_robotics_ids, tmp_path, capsys):
    args = ["train", "--env", broken_robotics_ids[0], "--run-dir", str(tmp_path / "run"), "--quiet"]
    assert main([*args, "--total-timesteps", "64", "--set", "n_steps=8", "--set", "batch_size=8"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("ppolearn: error: environment 'FetchBroken-v0' raised in reset()")
    assert "Traceback" not in err
    _one_line_with_versions_and_fix(err, "FetchBroken-v0")


def test_families_are_recognised_by_id_and_entry_point():
    assert family_of("FetchReach-v4").name == "robotics"
    assert family_of("Reacher-v5").name == "mujoco"
    assert family_of("LunarLander-v3").name == "box2d"
    assert family_of("MiniGrid-DoorKey-5x5-v0").name == "minigrid"
    assert family_of("CartPole-v1") is None
    assert family_of("my_pkg:Reach-v0") is None


def test_an_environment_of_no_family_keeps_the_plain_message():
    message = str(env_failure("envs:MyEnv", RuntimeError("boom"), "step() at step 3"))
    assert message == "environment 'envs:MyEnv' raised in step() at step 3: RuntimeError: boom"
    assert describe(ValueError("")) == "ValueError"
