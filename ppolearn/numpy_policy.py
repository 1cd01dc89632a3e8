"""The rollout's step in numpy: a feed-forward MLP policy's gradient-free forward on small CPU batches.

Why: every torch op costs a few microseconds of dispatch whatever its size, and one rollout step of a few
environments through actor and critic is about twenty such ops, more than the arithmetic. numpy's ops cost a
fraction of that. On Pendulum with the zoo's settings (4 environments, 64x64 networks) a rollout of 4,096
steps went from 281-304 ms to 208-215 ms, about a tenth of the whole training time (docs/performance.md).

What runs here is the torch policy's own forward, on numpy views of the same parameters, so it always sees the
current weights. The noise still comes from the run's torch generator, so a seed draws the same random numbers
as before. The numbers agree with torch's to float32 rounding: numpy's BLAS sums in another order and its
tanh rounds differently. So a stored log-probability differs from the update's torch forward by about 1e-7, as
between two machines. The update needs gradients and always runs in torch.

:class:`NumpyPolicy` serves a call only where all of these hold; otherwise the torch path runs:
- no gradient is being recorded;
- the observation is one float32 CPU tensor, so there is no encoder (vector observations);
- the policy is feed-forward with a Gaussian or a categorical head;
- the batch is small enough that numpy's BLAS keeps to one thread (NUMPY_MAX_MACS).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ppolearn.networks import LOG_SQRT_2PI, MASKED_LOGIT, MLP, Actor, CategoricalActor, Critic, GaussianActor

# At most this many multiply-adds in one layer (rows x inputs x outputs): half the product size at which
# numpy's BLAS (OpenBLAS) starts a second thread, so the run keeps to the one thread it asked torch for.
NUMPY_MAX_MACS = 131_072

Layers = List[Tuple[np.ndarray, np.ndarray]]


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, out=x)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0, out=x)


def _elu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.expm1(x))


_ACTIVATIONS = {"tanh": _tanh, "relu": _relu, "elu": _elu}


def _forward(layers: Layers, activation: Any, x: np.ndarray) -> np.ndarray:
    """MLP.forward: x W^T + b through each layer, the activation between them (in place on each output)."""
    *hidden, (weight, bias) = layers
    for w, b in hidden:
        y = x @ w.T
        y += b
        x = activation(y)
    y = x @ weight.T
    y += bias
    return y


class NumpyPolicy:
    """Actor and critic of a feed-forward, encoder-less policy, evaluated in numpy (see the module docstring)."""

    def __init__(self, actor: Actor, critic: Critic) -> None:
        self.actor, self.critic = actor, critic
        self._gaussian = isinstance(actor, GaussianActor)
        self._scaled = self._gaussian and actor.scaled  # mapped onto the action bounds: fixed at construction
        self._actor_net: MLP = actor.mean_net if self._gaussian else actor.logits_net
        nets = (self._actor_net, critic.net)
        self._params = [p for net in nets for layer in net.linears for p in (layer.weight, layer.bias)]
        if self._gaussian:
            self._params.append(actor.log_std)
        widest = max(layer.in_features * layer.out_features for net in nets for layer in net.linears)
        self._max_numel = NUMPY_MAX_MACS // widest * self._actor_net.linears[0].in_features
        self._act_fns = tuple(_ACTIVATIONS[net.activation] for net in nets)
        self._cache: Tuple[tuple, Dict[str, Any]] = ((), {})

    @staticmethod
    def supports(actor: Actor) -> bool:
        """Whether this head has a numpy version here (Gaussian for Box, categorical for Discrete)."""
        return isinstance(actor, (GaussianActor, CategoricalActor))

    def fits(self, obs: Any) -> bool:
        """Whether this call can run here: a small float32 CPU batch, no gradient recorded, CPU parameters."""
        return (
            isinstance(obs, torch.Tensor)
            and obs.dim() == 2
            and obs.numel() <= self._max_numel
            and not torch.is_grad_enabled()
            and obs.is_cpu
            and obs.dtype == torch.float32
            and not obs.requires_grad
            and self._params[0].is_cpu
        )

    def _views(self) -> Dict[str, Any]:
        """numpy views of the parameters, rebuilt when a parameter gets new memory (the optimiser's flat vector
        re-homes them, ``.to()`` moves them); in-place updates (Adam, load_state_dict) show through them."""
        key = tuple([p.data_ptr() for p in self._params])
        if self._cache[0] != key:
            views: Dict[str, Any] = {
                "actor": [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in self._actor_net.linears],
                "critic": [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in self.critic.net.linears],
            }
            if self._gaussian:
                views["log_std"] = self.actor.log_std.detach().numpy()
                views["center"] = self.actor.action_center.numpy()
                views["half"] = self.actor.action_half.numpy()
                views["log_half"] = self.actor.action_log_half.numpy()
            self._cache = (key, views)
        return self._cache[1]

    def _head(self, views: Dict[str, Any], x: np.ndarray) -> np.ndarray:
        """The actor network's output: the Gaussian's mean in the environment's units, or the logits."""
        out = _forward(views["actor"], self._act_fns[0], x)
        if self._scaled:
            out = views["center"] + out * views["half"]
        return out

    def _log_std(self, views: Dict[str, Any]) -> np.ndarray:
        log_std = views["log_std"]
        return log_std + views["log_half"] if self._scaled else log_std

    def act(
        self, obs: torch.Tensor, generator: Optional[torch.Generator], mask: Optional[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Policy.act: a sampled action, its log-probability and V(s)."""
        views = self._views()
        x = obs.numpy()
        out = self._head(views, x)
        value = torch.from_numpy(_forward(views["critic"], self._act_fns[1], x)[:, 0])
        if self._gaussian:
            log_std = self._log_std(views)
            noise = torch.randn(out.shape, generator=generator).numpy()  # the torch path's draw, from its stream
            action = out + noise * np.exp(log_std)
            log_prob = (noise * noise * -0.5 - (LOG_SQRT_2PI + log_std)).sum(-1)
            return torch.from_numpy(action), torch.from_numpy(log_prob), value
        log_p = self._log_softmax(out, mask)
        action = torch.multinomial(torch.from_numpy(np.exp(log_p)), 1, generator=generator).squeeze(-1)
        log_prob = np.take_along_axis(log_p, action.numpy()[:, None], axis=-1)[:, 0]
        return action, torch.from_numpy(log_prob), value

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """Policy.value: V(s)."""
        return torch.from_numpy(_forward(self._views()["critic"], self._act_fns[1], obs.numpy())[:, 0])

    def mode(self, obs: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Policy.mode: the Gaussian's mean, or the most likely valid choice."""
        out = self._head(self._views(), obs.numpy())
        if self._gaussian:
            return torch.from_numpy(out)
        return torch.from_numpy(self._masked(out, mask).argmax(-1))

    @staticmethod
    def _masked(logits: np.ndarray, mask: Optional[torch.Tensor]) -> np.ndarray:
        return logits if mask is None else np.where(mask.numpy(), logits, np.float32(MASKED_LOGIT))

    def _log_softmax(self, logits: np.ndarray, mask: Optional[torch.Tensor]) -> np.ndarray:
        logits = self._masked(logits, mask)
        shifted = logits - logits.max(-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))

    def __getstate__(self) -> Dict[str, Any]:
        # the views are of this process's memory: a copy rebuilds its own
        return {**self.__dict__, "_cache": ((), {})}
