"""The policy: an observation encoder built from the space, a slot for a memory core, and an action head
built from the action space, with the critic beside the head.

    observation batch -> encoder (CNNs for images; none for vectors) -> [memory core] -> actor head -> action
                                                                                      -> critic     -> V(s)

Why the CNN is shared by actor and critic while vector MLPs stay separate: a CNN is most of the compute and
of the parameters, and learning pixels from the policy loss alone is slow; sharing it (as SB3's CnnPolicy
and CleanRL's ppo_atari do) lets the value loss shape the features too, at one forward pass per step. For
vector observations separate actor and critic MLPs are the tutorial's design and the stronger default on
continuous control (SB3 ``share_features_extractor`` for MlpPolicy, CleanRL's ppo_continuous_action).

The memory core: ``reset(dones)``, ``get_hidden_state()`` and ``detach_hidden_state()`` are rsl_rl's
interface for recurrent policies. This module is feed-forward, so they do nothing, but the rollout already
calls ``reset`` after every step; a recurrent core goes between the encoder and the heads in ``features``,
keeps its state here, and the rollout, the buffer and the update find it through these methods.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import nn

from ppolearn.config import PPOConfig
from ppolearn.encoders import build_encoder, features_dim
from ppolearn.envs.obs import Obs
from ppolearn.envs.spaces import ActionSpec, ObsSpec
from ppolearn.networks import Actor, Critic, build_actor


class Policy(nn.Module):
    """Encoder (optional) + actor head + critic. Parameters are registered encoder first, then actor, then
    critic: for vector spaces exactly the actor-then-critic order of the separate networks before it."""

    is_recurrent = False

    def __init__(self, encoder: Optional[nn.Module], actor: Actor, critic: Critic) -> None:
        super().__init__()
        self.encoder = encoder
        self.actor = actor
        self.critic = critic
        # plain references too: a submodule attribute goes through nn.Module.__getattr__, which costs more
        # than a 64-wide layer, and these are read several times per environment step and per minibatch
        # (a tuple: nn.Module would register modules assigned one by one a second time)
        self._parts = (encoder, actor, critic)

    def features(self, obs: Obs) -> torch.Tensor:
        """What the heads read: the encoder's output, or the (normalised) vector itself where there is none."""
        encoder = self._parts[0]
        return obs if encoder is None else encoder(obs)

    def act(
        self, obs: Obs, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A sampled action, its log-probability and V(s), from one pass of the encoder (the rollout's step)."""
        features = self.features(obs)
        action, log_prob = self._parts[1].sample(features, generator, mask)
        return action, log_prob, self._parts[2](features)

    def sample(
        self, obs: Obs, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """An action drawn from pi(.|obs) and its log-probability (the tutorial's get_action)."""
        return self._parts[1].sample(self.features(obs), generator, mask)

    def value(self, obs: Obs) -> torch.Tensor:
        """V(s)."""
        return self._parts[2](self.features(obs))

    def evaluate(
        self, obs: Obs, actions: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """V(s), log pi(a|s) and the entropy under the current parameters (the tutorial's evaluate())."""
        features = self.features(obs)
        log_probs, entropy = self._parts[1].evaluate(features, actions, mask)
        return self._parts[2](features), log_probs, entropy

    def mode(self, obs: Obs, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The most likely action."""
        return self._parts[1].mode(self.features(obs), mask)

    # --- the memory core's interface (rsl_rl's); feed-forward: nothing to keep --------------------------

    def reset(self, dones: Optional[torch.Tensor] = None) -> None:
        """Forget the hidden state of the environments whose episode ended (all, with no ``dones``)."""

    def get_hidden_state(self) -> Any:
        """The hidden state the next step starts from (None: feed-forward)."""
        return None

    def detach_hidden_state(self, dones: Optional[torch.Tensor] = None) -> None:
        """Cut the hidden state from the graph (truncated backpropagation through time)."""


def build_policy(obs_spec: ObsSpec, action_spec: ActionSpec, cfg: PPOConfig) -> Policy:
    """The encoder for the observation space, the head for the action space and the critic, from the
    config's net_arch, activation, ortho_init, log_std_init and image_scale."""
    encoder = build_encoder(obs_spec, cfg.ortho_init, cfg.image_scale)
    width = features_dim(obs_spec, encoder)
    actor = build_actor(width, action_spec, cfg.net_arch, cfg.activation, cfg.ortho_init, cfg.log_std_init)
    critic = Critic(width, cfg.net_arch, cfg.activation, cfg.ortho_init)
    return Policy(encoder, actor, critic)
