"""Small hand-made environments for tests: every number they produce is known in advance."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np


class FixedEpisodeEnv(gym.Env):
    """Constant observation, reward 1 per step; after `length` steps the episode terminates (MDP end) or is
    truncated (time limit), as chosen."""

    metadata = {"render_modes": []}

    def __init__(self, length: int = 3, truncate: bool = False) -> None:
        self.length, self.truncate = length, truncate
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([1.0, 0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        ended = self.t >= self.length
        obs = np.array([1.0, self.t / 10], np.float32)
        return obs, 1.0, ended and not self.truncate, ended and self.truncate, {"is_success": ended}


class BoundedActionEnv(FixedEpisodeEnv):
    """FixedEpisodeEnv with Box action bounds of one's choosing (the actions do not matter)."""

    def __init__(self, low: float = -1.0, high: float = 1.0, length: int = 5) -> None:
        super().__init__(length=length)
        self.action_space = gym.spaces.Box(low, high, (1,), np.float32)


class GoalDictEnv(gym.Env):
    """A 1-D goal-conditioned task with Dict observations: move `achieved_goal` onto `desired_goal`."""

    def __init__(self) -> None:
        box = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
        self.observation_space = gym.spaces.Dict({"desired_goal": box, "observation": box, "achieved_goal": box})
        self.action_space = gym.spaces.Discrete(3)
        self.pos = self.goal = 0.0
        self.t = 0

    def _obs(self):
        p = np.array([self.pos], np.float32)
        return {"observation": p, "achieved_goal": p.copy(), "desired_goal": np.array([self.goal], np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.goal, self.t = 0.0, float(self.np_random.choice([-1.0, 1.0])), 0
        return self._obs(), {}

    def step(self, action):
        self.pos = float(np.clip(self.pos + 0.25 * (int(action) - 1), -2, 2))
        self.t += 1
        reached = abs(self.pos - self.goal) < 1e-6
        return self._obs(), -abs(self.pos - self.goal), reached, self.t >= 20, {"is_success": reached}


class _OneStepTask(gym.Env):
    """A one-step contextual bandit: observe a random context, answer it, get the fraction answered right
    (is_success when all of it is). PPO solves these in a few thousand steps only if its heads learn."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))  # the context follows reset's seed
        self.context = self.observation_space.sample()
        return self.context, {}

    def step(self, action):
        right = self.score(action)
        return self.context, float(right), True, False, {"is_success": bool(right == 1.0)}


class TupleObsEnv(_OneStepTask):
    """Tuple observation (a Discrete choice, a Box distractor): answer the Discrete entry."""

    def __init__(self) -> None:
        box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Tuple((gym.spaces.Discrete(3), box))
        self.action_space = gym.spaces.Discrete(3)

    def score(self, action):
        return float(int(action) == int(self.context[0]))


class MultiDiscreteActionEnv(_OneStepTask):
    """MultiDiscrete in and out: copy each observed entry into the action (whose entries start at 1, 0)."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.MultiDiscrete([3, 4])
        self.action_space = gym.spaces.MultiDiscrete([3, 4], start=[1, 0])

    def score(self, action):
        assert self.action_space.contains(action), action
        return float(np.mean(action == self.context + self.action_space.start))


class MultiBinaryActionEnv(_OneStepTask):
    """MultiBinary in and out: answer every observed bit with its complement."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.MultiBinary(4)
        self.action_space = gym.spaces.MultiBinary(4)

    def score(self, action):
        assert self.action_space.contains(action), action
        return float(np.mean(action == 1 - self.context))


class SequenceObsEnv(FixedEpisodeEnv):
    """Observations of varying length (a Sequence space): what a flat vector cannot hold."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Sequence(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))


class ExplodingEnv(FixedEpisodeEnv):
    """Raises inside step() after `at` steps: a crash in the user's environment."""

    def __init__(self, at: int = 50) -> None:
        super().__init__(length=5)
        self.at, self.calls = at, 0

    def step(self, action):
        self.calls += 1
        if self.calls > self.at:
            raise RuntimeError("simulator exploded")
        return super().step(action)


class CrashOnceEnv(FixedEpisodeEnv):
    """Raises in step() the first time any instance in this process steps: one crashed tuning trial."""

    crashes_left = 1

    def step(self, action):
        if CrashOnceEnv.crashes_left > 0:
            CrashOnceEnv.crashes_left -= 1
            raise RuntimeError("simulator crashed once")
        return super().step(action)


class NaNEnv(FixedEpisodeEnv):
    def step(self, action):
        obs, r, term, trunc, info = super().step(action)
        return obs, float("nan"), term, trunc, info


gym.register("ppolearn_tests/GoalDict-v0", entry_point=GoalDictEnv, max_episode_steps=20)


class TensorPointEnv:
    """A batched 1-D point mass written directly against ppolearn's VecEnv protocol, with a state_dict so
    a checkpoint can hold where every episode is (what exact resume needs)."""

    env_id = "tests/TensorPoint"

    def __init__(self, num_envs: int = 4, horizon: int = 25) -> None:
        import torch

        from ppolearn.envs.spaces import ActionSpec, ObsSpec

        self.torch = torch
        self.num_envs, self.horizon = num_envs, horizon
        self.device = torch.device("cpu")
        self.obs_spec = ObsSpec(dim=2, shapes=[[2]])
        self.action_spec = ActionSpec(kind="box", dim=1, low=[-1.0], high=[1.0], shape=[1])
        self.gen = torch.Generator().manual_seed(0)
        self.pos = torch.zeros(num_envs)
        self.vel = torch.zeros(num_envs)
        self.t = torch.zeros(num_envs, dtype=torch.int64)
        self.ret = torch.zeros(num_envs)

    def _obs(self):
        return self.torch.stack([self.pos, self.vel], -1)

    def _restart(self, mask):
        self.pos = self.torch.where(mask, self.torch.rand(self.num_envs, generator=self.gen) * 2 - 1, self.pos)
        self.vel = self.vel.masked_fill(mask, 0.0)
        self.t = self.t.masked_fill(mask, 0)
        self.ret = self.ret.masked_fill(mask, 0.0)

    def reset(self, seed=None):
        if seed is not None:
            self.gen.manual_seed(seed)
        self._restart(self.torch.ones(self.num_envs, dtype=self.torch.bool))
        return self._obs()

    def step(self, actions):
        from ppolearn.envs.vector import StepResult

        a = actions.reshape(self.num_envs).clamp(-1, 1)
        self.vel = 0.9 * self.vel + 0.1 * a
        self.pos = (self.pos + self.vel).clamp(-2, 2)
        self.t += 1
        reward = -self.pos.abs()
        self.ret += reward
        terminated = self.pos.abs() < 0.05
        truncated = (self.t >= self.horizon) & ~terminated
        done = terminated | truncated
        final_obs, ep_ret, ep_len = self._obs(), self.ret.clone(), self.t.clone()
        self._restart(done)
        return StepResult(self._obs(), reward, terminated, truncated, final_obs, ep_ret, ep_len, terminated.float())

    def state_dict(self):
        return {"pos": self.pos, "vel": self.vel, "t": self.t, "ret": self.ret, "gen": self.gen.get_state()}

    def load_state_dict(self, state):
        self.pos, self.vel, self.t, self.ret = state["pos"], state["vel"], state["t"], state["ret"]
        self.gen.set_state(state["gen"])

    def close(self):
        pass


class SlowFixedEpisodeEnv(FixedEpisodeEnv):
    """FixedEpisodeEnv whose step takes a few milliseconds, so a rollout lasts long enough to be interrupted."""

    def step(self, action):
        time.sleep(0.005)
        return super().step(action)


class BrightPixelEnv(gym.Env):
    """A one-step image task: a 7x7 RGB grid (uint8) with one bright pixel; answer which quadrant it is in
    (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right; the middle row and column are never used).
    Only a policy that reads the pixels through its encoder beats 25%. ``channels_first`` gives 3x7x7."""

    def __init__(self, channels_first: bool = False) -> None:
        self.channels_first = channels_first
        shape = (3, 7, 7) if channels_first else (7, 7, 3)
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Discrete(4)
        self.quadrant = 0
        self.frame = np.zeros(shape, np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        row, col = (int(v) for v in self.np_random.choice([0, 1, 2, 4, 5, 6], size=2))
        self.quadrant = 2 * (row > 3) + (col > 3)
        grid = np.full((7, 7, 3), 20, np.uint8)
        grid[row, col] = (255, 200, 50)
        self.frame = grid.transpose(2, 0, 1).copy() if self.channels_first else grid
        return self.frame, {}

    def step(self, action):
        right = int(action) == self.quadrant
        return self.frame, float(right), True, False, {"is_success": right}


class _MaskedChoice(gym.Env):
    """Discrete(5) with a random subset of valid actions each step; an invalid action raises. The
    observation is the mask itself; reward 1 for the highest valid action; ``only`` forces one valid action.
    Episodes last 4 steps (truncated)."""

    via_info = False

    def __init__(self, only: int | None = None) -> None:
        self.only = only
        self.observation_space = gym.spaces.MultiBinary(5)
        self.action_space = gym.spaces.Discrete(5)
        self.mask = np.ones(5, np.int8)
        self.t = 0

    def _draw(self):
        if self.only is not None:
            self.mask = np.eye(5, dtype=np.int8)[self.only]
        else:
            self.mask = (self.np_random.random(5) < 0.5).astype(np.int8)
            self.mask[self.np_random.integers(5)] = 1  # at least one valid action
        return self.mask.copy(), ({"action_mask": self.mask.astype(bool)} if self.via_info else {})

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._draw()

    def step(self, action):
        if not self.mask[int(action)]:
            raise RuntimeError(f"invalid action {action} under mask {self.mask}")
        reward = float(int(action) == int(np.flatnonzero(self.mask).max()))
        self.t += 1
        obs, info = self._draw()
        return obs, reward, False, self.t >= 4, {**info, "is_success": reward == 1.0}


class MaskedChoiceEnv(_MaskedChoice):
    """Masks from an ``action_masks()`` method, as sb3-contrib's MaskablePPO reads them."""

    def action_masks(self):
        return self.mask.astype(bool)


class InfoMaskedChoiceEnv(_MaskedChoice):
    """Masks in ``info["action_mask"]`` of reset() and step() only."""

    via_info = True


class ZeroStartEnv(FixedEpisodeEnv):
    """FixedEpisodeEnv whose episodes start with an all-zero observation (every later one is all ones): a
    recurrent core fed a zero input from a zero state outputs zeros, so any state leaked from the previous
    episode shows at that first step."""

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        _, reward, terminated, truncated, info = super().step(action)
        return np.ones(2, np.float32), reward, terminated, truncated, info


class CueRecallEnv(gym.Env):
    """A task only a policy with memory can solve: the first observation shows a cue (+1 or -1, drawn anew
    each episode); the next ``delay`` observations show nothing; the last shows that it is the last
    (``[0, 1]``), and the action taken there must match the cue (0 for -1, 1 for +1): reward +1 and
    is_success, else -1. Actions before the last step do nothing. A feed-forward policy sees the same last
    observation whatever the cue, so it is right half of the time at best."""

    metadata = {"render_modes": []}

    def __init__(self, delay: int = 2) -> None:
        self.delay = delay
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.cue, self.t = 1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue, self.t = int(self.np_random.choice([-1, 1])), 0
        return np.array([self.cue, 0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t <= self.delay:  # the cue is gone; the answer is not due yet
            return np.array([0.0, float(self.t == self.delay)], np.float32), 0.0, False, False, {"is_success": False}
        right = (int(action) == 1) == (self.cue > 0)
        return np.zeros(2, np.float32), 1.0 if right else -1.0, True, False, {"is_success": right}


class StillOrMovingEnv(gym.Env):
    """30 steps, then the time limit; no success. ``moving``: the observation counts the steps; else it never
    changes, so a deterministic policy repeats one (observation, action) pair the whole episode."""

    def __init__(self, moving: bool = False) -> None:
        self.moving = moving
        self.observation_space = gym.spaces.Box(0.0, 30.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.array([self.t if self.moving else 0.0], np.float32)
        return obs, 0.0, False, self.t >= 30, {}
