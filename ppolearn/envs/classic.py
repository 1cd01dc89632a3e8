"""Batched clones of Gymnasium's classic-control tasks: the same dynamics, rewards, terminations and time
limits as ``gymnasium.envs.classic_control`` (1.x), written on (num_envs, ...) tensors.

Constants and formulas follow Gymnasium's source line by line, so that tests/test_batched_equivalence.py
can step both from the same states with the same actions and compare every output.
"""

from __future__ import annotations

import math
from typing import Tuple

import gymnasium as gym
import numpy as np
import torch

from ppolearn.envs.batched import BatchedEnv

Step = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # next state, reward, terminated


def _box(high: list) -> gym.spaces.Box:
    bound = np.array(high, dtype=np.float32)
    return gym.spaces.Box(-bound, bound, dtype=np.float32)


class Pendulum(BatchedEnv):
    """Pendulum-v1: swing up and balance; state (theta, theta_dot), reward -(angle^2 + 0.1 w^2 + 0.001 u^2)."""

    official_id = "Pendulum-v1"
    max_episode_steps = 200
    observation_space = _box([1.0, 1.0, 8.0])
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)
    max_speed, dt, g, mass, length = 8.0, 0.05, 10.0, 1.0, 1.0

    def sample_states(self, n: int) -> torch.Tensor:
        high = torch.tensor([math.pi, 1.0], dtype=self.dtype, device=self.device)
        return self.uniform(n, -high, high, 2)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> Step:
        th, thdot = state.unbind(-1)
        u = action[:, 0]
        angle = torch.remainder(th + math.pi, 2 * math.pi) - math.pi  # angle_normalize: 0 is upright
        costs = angle.pow(2) + 0.1 * thdot.pow(2) + 0.001 * u.pow(2)
        accel = 3 * self.g / (2 * self.length) * torch.sin(th) + 3.0 / (self.mass * self.length**2) * u
        newthdot = thdot + accel * self.dt
        newthdot = newthdot.clamp(-self.max_speed, self.max_speed)
        newth = th + newthdot * self.dt  # semi-implicit Euler: the new speed moves the angle
        return torch.stack([newth, newthdot], -1), -costs, torch.zeros_like(th, dtype=torch.bool)

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        th, thdot = state.unbind(-1)
        return torch.stack([torch.cos(th), torch.sin(th), thdot], -1)


class MountainCarContinuous(BatchedEnv):
    """MountainCarContinuous-v0: drive up the right hill; +100 at the goal, -0.1 a^2 per step."""

    official_id = "MountainCarContinuous-v0"
    max_episode_steps = 999
    observation_space = gym.spaces.Box(
        np.array([-1.2, -0.07], dtype=np.float32), np.array([0.6, 0.07], dtype=np.float32), dtype=np.float32
    )
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    min_position, max_position, max_speed, goal_position, goal_velocity, power = -1.2, 0.6, 0.07, 0.45, 0.0, 0.0015

    def sample_states(self, n: int) -> torch.Tensor:
        position = self.uniform(n, -0.6, -0.4, 1)
        return torch.cat([position, torch.zeros_like(position)], -1)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> Step:
        position, velocity = state.unbind(-1)
        force = action[:, 0]
        velocity = velocity + force * self.power - 0.0025 * torch.cos(3 * position)
        velocity = velocity.clamp(-self.max_speed, self.max_speed)
        position = (position + velocity).clamp(self.min_position, self.max_position)
        # an inelastic wall on the left: the car stops there
        velocity = torch.where((position <= self.min_position) & (velocity < 0), torch.zeros_like(velocity), velocity)
        terminated = (position >= self.goal_position) & (velocity >= self.goal_velocity)
        reward = 100.0 * terminated.to(state.dtype) - 0.1 * force.pow(2)
        return torch.stack([position, velocity], -1), reward, terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        return state


class CartPole(BatchedEnv):
    """CartPole-v1: keep the pole up; +1 per step (the terminating step included), ends past 12 deg or 2.4 m."""

    official_id = "CartPole-v1"
    max_episode_steps = 500
    observation_space = _box([4.8, np.inf, 12 * 2 * math.pi / 360 * 2, np.inf])
    action_space = gym.spaces.Discrete(2)
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_threshold, x_threshold = 12 * 2 * math.pi / 360, 2.4

    def sample_states(self, n: int) -> torch.Tensor:
        return self.uniform(n, -0.05, 0.05, 4)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> Step:
        x, x_dot, theta, theta_dot = state.unbind(-1)
        total_mass = self.masspole + self.masscart
        polemass_length = self.masspole * self.length
        force = torch.where(action == 1, self.force_mag, -self.force_mag).to(state.dtype)
        costheta, sintheta = torch.cos(theta), torch.sin(theta)
        temp = (force + polemass_length * theta_dot.pow(2) * sintheta) / total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta.pow(2) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        # explicit Euler, Gymnasium's default kinematics_integrator
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * xacc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc
        terminated = (x.abs() > self.x_threshold) | (theta.abs() > self.theta_threshold)
        return torch.stack([x, x_dot, theta, theta_dot], -1), torch.ones_like(x), terminated

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        return state


class Acrobot(BatchedEnv):
    """Acrobot-v1: swing the tip above the bar; -1 per step until then, RK4 over dt=0.2 ("book" dynamics)."""

    official_id = "Acrobot-v1"
    max_episode_steps = 500
    observation_space = _box([1.0, 1.0, 1.0, 1.0, 4 * math.pi, 9 * math.pi])
    action_space = gym.spaces.Discrete(3)
    dt, max_vel_1, max_vel_2 = 0.2, 4 * math.pi, 9 * math.pi

    def sample_states(self, n: int) -> torch.Tensor:
        return self.uniform(n, -0.1, 0.1, 4)

    def dynamics(self, state: torch.Tensor, action: torch.Tensor) -> Step:
        torque = (action - 1).to(state.dtype)  # AVAIL_TORQUE = [-1, 0, +1]
        k1 = self._dsdt(state, torque)  # one classical RK4 step over [0, dt], as gymnasium's rk4()
        k2 = self._dsdt(state + self.dt / 2 * k1, torque)
        k3 = self._dsdt(state + self.dt / 2 * k2, torque)
        k4 = self._dsdt(state + self.dt * k3, torque)
        ns = state + self.dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        th1, th2, dth1, dth2 = ns.unbind(-1)
        dth1, dth2 = dth1.clamp(-self.max_vel_1, self.max_vel_1), dth2.clamp(-self.max_vel_2, self.max_vel_2)
        ns = torch.stack([_wrap(th1), _wrap(th2), dth1, dth2], -1)
        terminated = -torch.cos(ns[:, 0]) - torch.cos(ns[:, 1] + ns[:, 0]) > 1.0  # tip above the bar
        reward = torch.where(terminated, 0.0, -1.0).to(state.dtype)
        return ns, reward, terminated

    @staticmethod
    def _dsdt(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        m1 = m2 = l1 = i1 = i2 = 1.0
        lc1 = lc2 = 0.5
        g = 9.8
        theta1, theta2, dtheta1, dtheta2 = s.unbind(-1)
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * torch.cos(theta2)) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * torch.cos(theta2)) + i2
        phi2 = m2 * lc2 * g * torch.cos(theta1 + theta2 - math.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2.pow(2) * torch.sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * torch.sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * torch.cos(theta1 - math.pi / 2)
            + phi2
        )
        ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1.pow(2) * torch.sin(theta2) - phi2) / (
            m2 * lc2**2 + i2 - d2.pow(2) / d1
        )
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return torch.stack([dtheta1, dtheta2, ddtheta1, ddtheta2], -1)

    def observe(self, state: torch.Tensor) -> torch.Tensor:
        th1, th2, dth1, dth2 = state.unbind(-1)
        return torch.stack([torch.cos(th1), torch.sin(th1), torch.cos(th2), torch.sin(th2), dth1, dth2], -1)


def _wrap(x: torch.Tensor) -> torch.Tensor:
    """Gymnasium's wrap(x, -pi, pi): shift by whole turns into [-pi, pi], leaving values inside untouched."""
    turn = 2 * math.pi
    x = torch.where(x > math.pi, x - turn * torch.ceil((x - math.pi) / turn), x)
    return torch.where(x < -math.pi, x + turn * torch.ceil((-math.pi - x) / turn), x)
