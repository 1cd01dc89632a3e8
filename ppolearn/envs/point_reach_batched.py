"""Batched PointReach: ``ppolearn/PointReach-v0`` (2-D, default options) on (num_envs, ...) tensors.

The state is (pos, vel, goal) per environment; the physics, dense reward and ``is_success`` follow
:mod:`ppolearn.envs.point_reach` line by line, so tests/test_batched_equivalence.py can step both from the
same states with the same actions. The flat observation is [pos, vel, pos, goal]: the Dict observation
flattened in ObsSpec's order (observation, achieved_goal, desired_goal), so a policy trained here runs on
the official environment unchanged.
"""

from __future__ import annotations

from typing import Tuple

import torch

from ppolearn.envs.batched import BatchedEnv
from ppolearn.envs.point_reach import DT, FRICTION, MAX_SPEED, TARGET_RANGE, PointReachEnv

_OFFICIAL = PointReachEnv()  # the default options this clone reproduces, and their spaces
DIM = _OFFICIAL.dim


class PointReach(BatchedEnv):
    """Reach and stop at a random target; reward -|pos - goal|, success within the radius and slow."""

    official_id = "ppolearn/PointReach-v0"
    batched_id = "ppolearn/PointReachBatched-v0"
    max_episode_steps = 100
    observation_space = _OFFICIAL.observation_space
    action_space = _OFFICIAL.action_space
    target_radius, stop_speed = _OFFICIAL.target_radius, _OFFICIAL.stop_speed

    def sample_states(self, n: int) -> torch.Tensor:
        pos = self.uniform(n, -TARGET_RANGE, TARGET_RANGE, DIM)
        goal = self.uniform(n, -TARGET_RANGE, TARGET_RANGE, DIM)  # drawn after the start, as reset() does
        return torch.cat([pos, torch.zeros_like(pos), goal], -1)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos, vel, goal = state.split(DIM, -1)
        vel = (vel + DT * (action - FRICTION * vel)).clamp(-MAX_SPEED, MAX_SPEED)
        pos = pos + DT * vel
        hit = pos.abs() > 1.0
        pos = pos.clamp(-1.0, 1.0)
        vel = vel.masked_fill(hit, 0.0)  # an inelastic wall: the blocked component of the velocity is lost
        # the official reward is computed on the float32 observation entries
        reward = -torch.linalg.vector_norm(pos.float() - goal.float(), dim=-1).to(state.dtype)
        terminated = torch.zeros(state.shape[0], dtype=torch.bool, device=state.device)  # no end on success
        return torch.cat([pos, vel, goal], -1), reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        pos, vel, goal = state.split(DIM, -1)
        return torch.cat([pos, vel, pos, goal], -1)

    def success(self, state: torch.Tensor) -> torch.Tensor:
        pos, vel, goal = state.split(DIM, -1)
        near = torch.linalg.vector_norm(pos - goal, dim=-1) < self.target_radius
        return near & (torch.linalg.vector_norm(vel, dim=-1) < self.stop_speed)
