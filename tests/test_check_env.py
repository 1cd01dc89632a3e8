"""`check-env` catches each problem it lists, with one hand-made broken environment per problem."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import TimeLimit

from ppolearn.cli import main
from ppolearn.envs.check import NOTE, PROBLEM, check_environment


class GoodEnv(gym.Env):
    """A correct little reaching task: everything check-env asks for is there."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-0.5, 0.5))
        return self._obs(), {}

    def _obs(self):
        return np.array([self.x, 0.0], np.float32)

    def step(self, action):
        self.x = float(np.clip(self.x + 0.1 * float(np.asarray(action).reshape(-1)[0]), -1, 1))
        return self._obs(), -abs(self.x), False, False, {"is_success": abs(self.x) < 0.05}


class UnseededEnv(GoodEnv):
    def reset(self, *, seed=None, options=None):
        self.x = 0.0  # forgets super().reset(seed=seed): Gymnasium's checker catches it
        return self._obs(), {}


class TupleObsEnv(GoodEnv):
    observation_space = gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.MultiBinary(3)))

    def _obs(self):
        return (int(self.x > 0), np.array([0, 1, 0], np.int8))


class MultiDiscreteEnv(GoodEnv):
    action_space = gym.spaces.MultiDiscrete([2, 3])

    def step(self, action):
        return super().step(np.asarray(action, np.float32)[:1] - 0.5)


class SequenceObsEnv(GoodEnv):
    observation_space = gym.spaces.Sequence(gym.spaces.Discrete(2))

    def _obs(self):
        return (0, 1)


class MultiBinaryEnv(GoodEnv):
    action_space = gym.spaces.MultiBinary(2)

    def step(self, action):
        return super().step(np.asarray(action, np.float32)[:1] - 0.5)


class TextMissionEnv(GoodEnv):
    observation_space = gym.spaces.Dict(
        {"image": gym.spaces.Box(-1.0, 1.0, (2,), np.float32), "mission": gym.spaces.Text(20)}
    )

    def _obs(self):
        return {"image": np.array([self.x, 0.0], np.float32), "mission": "reachTheMiddle"}


class UnboundedActionEnv(GoodEnv):
    action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)


class HugeBoundsActionEnv(GoodEnv):
    """float32's max standing for "unbounded": finite, but no useful range (and std 3e38 would overflow)."""

    action_space = gym.spaces.Box(-np.finfo(np.float32).max, np.finfo(np.float32).max, (1,), np.float32)


class NoSuccessEnv(GoodEnv):
    def step(self, action):
        obs, reward, terminated, truncated, _ = super().step(action)
        return obs, reward, terminated, truncated, {}


def limited(cls):
    return lambda **kwargs: TimeLimit(cls(**kwargs), 50)


def problems(env, **kwargs):
    return [f.what for f in check_environment(env, **kwargs) if f.severity == PROBLEM]


def test_a_correct_env_and_our_own_are_clean():
    assert problems(limited(GoodEnv)) == []
    assert check_environment("ppolearn/PointReach-v0") == []


@pytest.mark.parametrize(
    "cls, words",
    [
        (UnseededEnv, "Gymnasium's env checker failed"),
        (SequenceObsEnv, "unsupported observation space"),
        (UnboundedActionEnv, "infinite or huge bounds"),
        (HugeBoundsActionEnv, "infinite or huge bounds"),
        (NoSuccessEnv, "is_success"),
    ],
)
def test_each_problem_is_caught_alone(cls, words):
    found = problems(limited(cls))
    assert len(found) == 1 and words in found[0]


@pytest.mark.parametrize("cls", [TupleObsEnv, MultiDiscreteEnv, MultiBinaryEnv])
def test_every_supported_space_is_clean(cls):
    assert problems(limited(cls)) == []


def test_a_text_entry_is_a_note_that_it_is_dropped():
    findings = check_environment(limited(TextMissionEnv))
    assert [f.severity for f in findings if "mission" in f.what] == [NOTE]
    assert problems(limited(TextMissionEnv)) == []


def test_missing_time_limit_is_caught():
    found = problems(GoodEnv)
    assert len(found) == 1 and "no time limit" in found[0]


def test_a_success_criterion_satisfies_the_is_success_check():
    assert any("is_success" in p for p in problems("MountainCar-v0"))
    assert problems("MountainCar-v0", success="mountain_car_flag") == []


def test_gymnasium_warnings_are_notes_not_problems():
    findings = check_environment("CartPole-v1", success="cartpole_balanced")
    assert findings and all(f.severity == NOTE for f in findings)


def test_cli_exit_status_and_plain_words(capsys):
    assert main(["check-env", "Pendulum-v1"]) == 0  # the preset's criterion supplies is_success
    assert main(["check-env", "MountainCarContinuous-v0", "--success", "mountain_car_flag"]) == 0
    assert main(["check-env", "test_check_env:GoodEnv"]) == 1
    out = capsys.readouterr().out
    assert "no time limit" in out and "fix: register the id with max_episode_steps" in out


class ValveEnv(GoodEnv):
    action_space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 10.0], np.float32))


def test_action_bounds_the_default_scaling_maps_are_a_note():
    findings = check_environment(limited(ValveEnv))
    mapped = [f for f in findings if "scale_actions" in f.what]
    assert len(mapped) == 1 and mapped[0].severity == NOTE
    assert "1: [0, 10]" in mapped[0].what and "0: [" not in mapped[0].what  # the valve, not the [-1, 1] steering
    assert not any("scale_actions" in f.what for f in check_environment(limited(GoodEnv)))
