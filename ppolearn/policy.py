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
interface for recurrent policies. :class:`Policy` is feed-forward, so they do nothing there (and the
feed-forward path pays nothing for them beyond an empty call per step). :class:`RecurrentPolicy` (config
``memory: lstm | gru``) puts a :class:`~ppolearn.memory.MemoryCore` between the encoder and the heads and
keeps the rollout's hidden state (one row per env) here: ``act`` moves it one step, the rollout calls
``reset(dones)`` after every step so an episode's first step starts from zeros, and the update re-runs the
core over each env's whole rollout from the state stored at its start (``evaluate(..., memory=...)``).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import nn

from ppolearn.config import PPOConfig
from ppolearn.encoders import build_encoder, features_dim
from ppolearn.envs.obs import Obs
from ppolearn.envs.spaces import ActionSpec, ObsSpec
from ppolearn.memory import MemoryCore
from ppolearn.networks import Actor, Critic, build_actor
from ppolearn.numpy_policy import NumpyPolicy

# What the update hands a recurrent policy with a minibatch of whole env sequences: the hidden state each
# env's rollout started from (n, S), and where episodes ended (T * n bools, time-major like the observations)
Sequences = Tuple[torch.Tensor, torch.Tensor]


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
        # the rollout's step in numpy where it can run there (ppolearn/numpy_policy.py): no encoder, no memory
        self._numpy: Optional[NumpyPolicy] = None
        if encoder is None and not self.is_recurrent and NumpyPolicy.supports(actor):
            self._numpy = NumpyPolicy(actor, critic)

    def _in_numpy(self, obs: Obs) -> Optional[NumpyPolicy]:
        """The numpy version of this policy where this call can run there, else None (the torch path)."""
        return self._numpy if self._numpy is not None and self._numpy.fits(obs) else None

    def features(self, obs: Obs) -> torch.Tensor:
        """What the heads read: the encoder's output, or the (normalised) vector itself where there is none."""
        encoder = self._parts[0]
        return obs if encoder is None else encoder(obs)

    def act(
        self, obs: Obs, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A sampled action, its log-probability and V(s), from one pass of the encoder (the rollout's step)."""
        numpy_policy = self._in_numpy(obs)
        if numpy_policy is not None:
            return numpy_policy.act(obs, generator, mask)
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
        numpy_policy = self._in_numpy(obs)
        if numpy_policy is not None:
            return numpy_policy.value(obs)
        return self._parts[2](self.features(obs))

    def evaluate(
        self,
        obs: Obs,
        actions: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        memory: Optional[Sequences] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """V(s), log pi(a|s) and the entropy under the current parameters (the tutorial's evaluate()).
        ``memory`` is for :class:`RecurrentPolicy`; a feed-forward policy scores each row on its own."""
        features = self.features(obs)
        log_probs, entropy = self._parts[1].evaluate(features, actions, mask)
        return self._parts[2](features), log_probs, entropy

    def mode(self, obs: Obs, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The most likely action."""
        numpy_policy = self._in_numpy(obs)
        if numpy_policy is not None:
            return numpy_policy.mode(obs, mask)
        return self._parts[1].mode(self.features(obs), mask)

    # --- the memory core's interface (rsl_rl's); feed-forward: nothing to keep --------------------------

    def reset(self, dones: Optional[torch.Tensor] = None) -> None:
        """Forget the hidden state of the environments whose episode ended (all, with no ``dones``)."""

    def get_hidden_state(self) -> Any:
        """The hidden state the next step starts from (None: feed-forward)."""
        return None

    def detach_hidden_state(self, dones: Optional[torch.Tensor] = None) -> None:
        """Cut the hidden state from the graph (truncated backpropagation through time)."""


class RecurrentPolicy(Policy):
    """Encoder (optional) + memory core + actor head + critic; the core is shared by both heads (see
    ppolearn/memory.py for why).

    ``hidden`` is the rollout's state, one row per env; None stands for zeros (a fresh start, whatever the
    number of envs). ``act``, ``sample`` and ``mode`` move it one step; ``value`` reads V(s) from it without
    moving it, which is what the time-limit bootstrap needs: the value of the final observation under the
    state the ended episode had, before ``reset(dones)`` forgets it. ``predict`` takes and returns a state
    instead, so evaluating or deploying the policy never disturbs a rollout in progress.
    """

    is_recurrent = True

    def __init__(self, encoder: Optional[nn.Module], memory: MemoryCore, actor: Actor, critic: Critic) -> None:
        super().__init__(encoder, actor, critic)
        self.memory = memory
        self.hidden: Optional[torch.Tensor] = None

    def _state(self, features: torch.Tensor) -> torch.Tensor:
        if self.hidden is None:
            return self.memory.initial_state(features.shape[0], features.device)
        return self.hidden

    def _step(self, obs: Obs) -> torch.Tensor:
        """The core's output for this step, moving the rollout's state on."""
        features = self.features(obs)
        out, self.hidden = self.memory(features, self._state(features))
        return out

    def act(
        self, obs: Obs, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self._step(obs)
        action, log_prob = self.actor.sample(out, generator, mask)
        return action, log_prob, self.critic(out)

    def sample(
        self, obs: Obs, generator: Optional[torch.Generator] = None, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.actor.sample(self._step(obs), generator, mask)

    def mode(self, obs: Obs, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.actor.mode(self._step(obs), mask)

    def value(self, obs: Obs) -> torch.Tensor:
        """V(s) from the current state, which stays as it is."""
        features = self.features(obs)
        return self.critic(self.memory(features, self._state(features))[0])

    def evaluate(
        self,
        obs: Obs,
        actions: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        memory: Optional[Sequences] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """V(s), log pi(a|s) and the entropy of whole env sequences: ``obs`` holds T steps of n envs,
        time-major (row t * n + i), ``memory`` their initial states and episode ends; the core is re-run
        over them as the rollout ran it. Without ``memory`` each row is one step from a fresh state."""
        features = self.features(obs)
        if memory is None:
            out = self.memory(features, self.memory.initial_state(features.shape[0], features.device))[0]
        else:
            initial, dones = memory
            n = initial.shape[0]
            sequences = features.reshape(-1, n, features.shape[-1])
            out = self.memory.unroll(sequences, initial, dones.reshape(-1, n)).reshape(features.shape[0], -1)
        log_probs, entropy = self.actor.evaluate(out, actions, mask)
        return self.critic(out), log_probs, entropy

    def predict(
        self,
        obs: Obs,
        state: torch.Tensor,
        deterministic: bool,
        generator: Optional[torch.Generator] = None,
        mask: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The action for each row from the given state (n, S), and the state after it."""
        out, state = self.memory(self.features(obs), state)
        action = self.actor.mode(out, mask) if deterministic else self.actor.sample(out, generator, mask)[0]
        return action, state

    def reset(self, dones: Optional[torch.Tensor] = None) -> None:
        """Zero the state of the envs whose episode ended (``dones``, bool per env), or of all of them."""
        if dones is None or self.hidden is None:
            self.hidden = None
        else:
            self.hidden = self.hidden * (~dones).unsqueeze(-1).to(self.hidden.dtype)

    def get_hidden_state(self) -> Optional[torch.Tensor]:
        """The state the next step starts from, (num_envs, S); None before the first step (zeros)."""
        return self.hidden

    def set_hidden_state(self, hidden: Optional[torch.Tensor]) -> None:
        """Continue from ``hidden`` (a resumed checkpoint's envs, mid-episode)."""
        self.hidden = hidden

    def detach_hidden_state(self, dones: Optional[torch.Tensor] = None) -> None:
        """Cut the state from the graph (rollouts run without one, so this only matters to callers that
        step the policy with gradients)."""
        if self.hidden is not None:
            self.hidden = self.hidden.detach()


def build_policy(obs_spec: ObsSpec, action_spec: ActionSpec, cfg: PPOConfig) -> Policy:
    """The encoder for the observation space, the memory core if the config asks for one, the head for the
    action space and the critic, from the config's net_arch, activation, ortho_init, log_std_init,
    scale_actions and image_scale."""
    encoder = build_encoder(obs_spec, cfg.ortho_init, cfg.image_scale)
    width = features_dim(obs_spec, encoder)
    memory = None
    if cfg.memory is not None:
        memory = MemoryCore(cfg.memory, width, cfg.memory_size, cfg.ortho_init)
        width = cfg.memory_size
    actor = build_actor(
        width, action_spec, cfg.net_arch, cfg.activation, cfg.ortho_init, cfg.log_std_init, cfg.scale_actions
    )
    critic = Critic(width, cfg.net_arch, cfg.activation, cfg.ortho_init)
    if memory is None:
        return Policy(encoder, actor, critic)
    return RecurrentPolicy(encoder, memory, actor, critic)
