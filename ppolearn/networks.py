"""The action heads (actor: one per action space kind) and the critic, each an MLP over the features the
observation encoder gives (for vector-only spaces, the normalised observation itself); ppolearn/policy.py
puts them together with the encoder.

Invalid-action masks (Discrete and MultiDiscrete) set the logits of masked choices to a large negative
number before the softmax, in sampling and in ``evaluate`` alike: the update then scores each action under
the same distribution that sampled it, so the PPO ratio compares like with like (sb3-contrib's MaskablePPO).

Log-probabilities and entropies are written out in closed form rather than through
``torch.distributions``: the same numbers (a test checks them against torch.distributions) without the
per-call object construction and argument validation, which cost more than the tiny MLPs themselves.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ppolearn.envs.spaces import ActionSpec, action_scaling, mapped_dimensions

# Above this many elements a CPU tanh runs numpy's kernel (see tanh() below).
NUMPY_TANH_MIN = 32_768


class _NumpyTanh(torch.autograd.Function):
    """tanh computed by numpy, differentiated by torch's own tanh backward (from the output: 1 - tanh^2)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = torch.from_numpy(np.tanh(x.detach().numpy()))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """torch.tanh, except on large float32 CPU tensors with one torch thread, where numpy's kernel computes it.

    Why: torch's CPU tanh is several times slower than numpy's on some processors (on the 2-core AMD EPYC
    machine of BENCHMARKS.md: 2.9 ns against 0.43 ns per float, one thread), and with the batched
    environments' minibatches of thousands of rows it was a third of the update's time (docs/performance.md).
    Small tensors keep torch's kernel (the autograd.Function costs more than it saves there), and so does a
    multi-threaded torch, which splits large tensors over its threads where numpy would use one.
    """
    if (
        x.numel() >= NUMPY_TANH_MIN
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and torch.get_num_threads() == 1
    ):
        return _NumpyTanh.apply(x)
    return torch.tanh(x)


_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}
_FUNCTIONS = {"tanh": tanh, "relu": torch.relu, "elu": F.elu}
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
# A masked logit: finite (not -inf) so that 0 * log p stays 0 in the entropy; exp of it underflows to 0.
MASKED_LOGIT = -1e8


def _masked(logits: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    return logits if mask is None else logits.masked_fill(~mask, MASKED_LOGIT)


class MLP(nn.Sequential):
    """Linear layers with an activation between them; an ``nn.Sequential`` (same parameter names), whose
    forward calls the functions directly: for 64-wide layers the per-module call machinery costs more than
    the matrix products, and the rollout and update run this thousands of times per second."""

    def __init__(self, sizes: List[int], activation: str, ortho_init: bool, out_gain: float) -> None:
        layers: List[nn.Module] = []
        for a, b in zip(sizes[:-2], sizes[1:-1]):
            layers += [_init(nn.Linear(a, b), math.sqrt(2), ortho_init), _ACTIVATIONS[activation]()]
        layers.append(_init(nn.Linear(sizes[-2], sizes[-1]), out_gain, ortho_init))
        super().__init__(*layers)
        self.activation = activation
        self._act = _FUNCTIONS[activation]
        self.linears = [m for m in self if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *hidden, head = self.linears
        for layer in hidden:
            x = self._act(F.linear(x, layer.weight, layer.bias))
        return F.linear(x, head.weight, head.bias)


def mlp(in_dim: int, hidden: List[int], out_dim: int, activation: str, ortho_init: bool, out_gain: float) -> MLP:
    """Hidden layers with the activation, then a linear head; orthogonal init when asked (why: it keeps
    activations well-scaled at the start, and the small head gain starts the policy near-uniform)."""
    return MLP([in_dim, *hidden, out_dim], activation, ortho_init, out_gain)


def _init(layer: nn.Linear, gain: float, ortho_init: bool) -> nn.Linear:
    if ortho_init:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


class Critic(nn.Module):
    """V(s): the value network fitted by MSE regression onto the returns."""

    def __init__(self, obs_dim: int, hidden: List[int], activation: str = "tanh", ortho_init: bool = True) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, 1, activation, ortho_init, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


class Actor(nn.Module):
    """Common interface of every action head: sample for rollouts, evaluate for updates, mode for deployment.

    ``obs`` is the feature batch; ``mask`` (bool, (batch, mask_dim), True = allowed) only applies to the
    Discrete and MultiDiscrete heads, the others ignore it (their spaces cannot be masked).
    """

    def sample(
        self, obs: torch.Tensor, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """An action drawn from pi(.|obs) and its log-probability (the tutorial's get_action)."""
        raise NotImplementedError

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """log pi(actions|obs) under the current parameters, and the policy's entropy."""
        raise NotImplementedError

    def mode(self, obs: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The most likely action: what a deterministic evaluation runs."""
        raise NotImplementedError


class GaussianActor(Actor):
    """Diagonal Gaussian over Box actions; a learnable state-independent log-std (as in SB3 and CleanRL).

    ``center`` and ``half`` (per action dimension, from ``envs.spaces.action_scaling``: config
    ``scale_actions``) put the network's output in [-1, 1] units: a = center + half * u, so the Gaussian is
    N(center + half * mu(s), (half * std)^2) and starts mid-range with noise of about half the range.
    Samples, log-probabilities and clipping stay in the environment's units (the log-probabilities differ
    from the unit space's by a constant, which cancels in the PPO ratio), so the rollout, the buffer and
    every environment path are unchanged. Where every dimension has center 0 and half 1 (no scaling) there
    is no extra op: the numbers of an unscaled head.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: List[int],
        activation: str = "tanh",
        ortho_init: bool = True,
        log_std_init: float = 0.0,
        center: Optional[np.ndarray] = None,
        half: Optional[np.ndarray] = None,
    ) -> None:
        super().__init__()
        self.mean_net = mlp(obs_dim, hidden, action_dim, activation, ortho_init, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))
        center = np.zeros(action_dim) if center is None else np.asarray(center, np.float64)
        half = np.ones(action_dim) if half is None else np.asarray(half, np.float64)
        # a plain flag (read every step; a buffer is looked up through nn.Module.__getattr__); the buffers move
        # with .to(device) and are not saved: they follow from the saved action space and config
        self.scaled = bool(mapped_dimensions(center, half).any())
        self.register_buffer("action_center", torch.tensor(center, dtype=torch.float32), persistent=False)
        self.register_buffer("action_half", torch.tensor(half, dtype=torch.float32), persistent=False)
        self.register_buffer("action_log_half", torch.log(self.action_half), persistent=False)

    def _mean_log_std(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian's mean and log-std in the environment's units."""
        mean = self.mean_net(obs)
        if not self.scaled:
            return mean, self.log_std
        return torch.addcmul(self.action_center, mean, self.action_half), self.log_std + self.action_log_half

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self._mean_log_std(obs)[0]

    def sample(
        self, obs: torch.Tensor, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self._mean_log_std(obs)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        action = torch.addcmul(mean, noise, log_std.exp())  # mean + noise * std
        return action, self._log_prob(noise, log_std)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self._mean_log_std(obs)
        log_prob = self._log_prob((actions - mean) / log_std.exp(), log_std)
        entropy = (0.5 + LOG_SQRT_2PI + log_std).sum().expand(obs.shape[0])
        return log_prob, entropy

    def mode(self, obs: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._mean_log_std(obs)[0]

    @staticmethod
    def _log_prob(z: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """log N(a; mean, std) summed over action dims, from z = (a - mean) / std: -z^2/2 - log std - log
        sqrt(2 pi), as one fused multiply-add (fewer ops to run and to differentiate)."""
        return torch.addcmul(-LOG_SQRT_2PI - log_std, z, z, value=-0.5).sum(-1)


class CategoricalActor(Actor):
    """Categorical over Discrete actions, parameterised by logits."""

    def __init__(
        self, obs_dim: int, n_actions: int, hidden: List[int], activation: str = "tanh", ortho_init: bool = True
    ) -> None:
        super().__init__()
        self.logits_net = mlp(obs_dim, hidden, n_actions, activation, ortho_init, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits_net(obs)

    def sample(
        self, obs: torch.Tensor, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(_masked(self.logits_net(obs), mask), dim=-1)
        action = torch.multinomial(log_p.exp(), 1, generator=generator).squeeze(-1)
        return action, log_p.gather(-1, action.unsqueeze(-1)).squeeze(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        log_p = torch.log_softmax(_masked(self.logits_net(obs), mask), dim=-1)
        log_prob = log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return log_prob, entropy

    def mode(self, obs: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return _masked(self.logits_net(obs), mask).argmax(-1)


class MultiCategoricalActor(Actor):
    """Independent categoricals over MultiDiscrete actions: one logits head of sum(nvec) outputs, split per
    entry; log-probability and entropy are the sums over the entries.

    The entries are laid side by side in one (batch, entries, max n) tensor, shorter ones padded with -inf
    logits (probability 0, never sampled), so sampling and scoring are a few tensor ops whatever the count.
    """

    def __init__(
        self, obs_dim: int, nvec: List[int], hidden: List[int], activation: str = "tanh", ortho_init: bool = True
    ) -> None:
        super().__init__()
        self.logits_net = mlp(obs_dim, hidden, sum(nvec), activation, ortho_init, out_gain=0.01)
        width = max(nvec)
        offsets = torch.tensor([0, *nvec[:-1]]).cumsum(0)
        choice = torch.arange(width)
        pad = choice.unsqueeze(0) >= torch.tensor(nvec).unsqueeze(1)  # (entries, width): past an entry's n
        index = (offsets.unsqueeze(1) + choice).masked_fill(pad, 0)  # where each slot reads its logit
        self.register_buffer("_index", index.reshape(-1), persistent=False)
        self.register_buffer("_pad", pad, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits_net(obs)

    def _log_p(self, obs: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(batch, entries, max n) log-probabilities; -inf in the padding, MASKED_LOGIT's share where masked
        (the mask is sum(nvec) wide, laid out as the logits are)."""
        logits = _masked(self.logits_net(obs), mask)[:, self._index].reshape(obs.shape[0], *self._pad.shape)
        return torch.log_softmax(logits.masked_fill(self._pad, float("-inf")), dim=-1)

    def sample(
        self, obs: torch.Tensor, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        log_p = self._log_p(obs, mask)
        flat = torch.multinomial(log_p.exp().reshape(-1, log_p.shape[-1]), 1, generator=generator)
        action = flat.reshape(log_p.shape[:-1])
        return action, log_p.gather(-1, action.unsqueeze(-1)).squeeze(-1).sum(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        log_p = self._log_p(obs, mask)
        log_prob = log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1).sum(-1)
        entropy = -(log_p.exp() * log_p.masked_fill(self._pad, 0.0)).sum((-2, -1))  # 0 * -inf would be NaN
        return log_prob, entropy

    def mode(self, obs: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self._log_p(obs, mask).argmax(-1)


class BernoulliActor(Actor):
    """Independent Bernoullis over MultiBinary actions, one logit per bit; log-probability and entropy are
    the sums over the bits."""

    def __init__(
        self, obs_dim: int, n_bits: int, hidden: List[int], activation: str = "tanh", ortho_init: bool = True
    ) -> None:
        super().__init__()
        self.logits_net = mlp(obs_dim, hidden, n_bits, activation, ortho_init, out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits_net(obs)

    def sample(
        self, obs: torch.Tensor, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits_net(obs)
        uniform = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        action = (uniform < torch.sigmoid(logits)).long()
        return action, self._log_prob(logits, action)

    @staticmethod
    def _log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        # log p(1) = log sigmoid(l), log p(0) = log sigmoid(-l): both at once as -softplus(-/+ l)
        return -F.softplus(torch.where(actions.bool(), -logits, logits)).sum(-1)

    def evaluate(
        self, obs: torch.Tensor, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits_net(obs)
        p = torch.sigmoid(logits)
        entropy = (F.softplus(logits) - p * logits).sum(-1)  # -p log p - (1-p) log(1-p), stable form
        return self._log_prob(logits, actions), entropy

    def mode(self, obs: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return (self.logits_net(obs) > 0).long()


def build_actor(
    obs_dim: int,
    action: ActionSpec,
    hidden: List[int],
    activation: str,
    ortho_init: bool,
    log_std_init: float,
    scale_actions: str = "auto",
) -> Actor:
    """Gaussian for Box actions (mapped onto the bounds as ``scale_actions`` says), Categorical for
    Discrete, one categorical per entry for MultiDiscrete, one Bernoulli per bit for MultiBinary."""
    if action.kind == "discrete":
        return CategoricalActor(obs_dim, action.dim, hidden, activation, ortho_init)
    if action.kind == "multi_discrete":
        return MultiCategoricalActor(obs_dim, action.nvec, hidden, activation, ortho_init)
    if action.kind == "multi_binary":
        return BernoulliActor(obs_dim, action.dim, hidden, activation, ortho_init)
    center, half = action_scaling(action.low, action.high, scale_actions)
    return GaussianActor(obs_dim, action.dim, hidden, activation, ortho_init, log_std_init, center, half)
