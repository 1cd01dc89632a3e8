"""The memory core: a recurrent cell (LSTM or GRU) between the observation encoder and the actor and critic
heads, for tasks where the current observation does not say everything (a cue seen once, a velocity never
shown).

    features (n, F) + hidden state (n, S) -> core output (n, H) + next hidden state (n, S)

The hidden state of a batch is one float tensor of shape (n, S): an LSTM's ``h`` and ``c`` side by side
(S = 2H), a GRU's ``h`` (S = H). One tensor, whatever the cell, is what the rollout buffer stores per env,
what a Ray worker sends back, what a checkpoint keeps and what ``* (1 - done)`` resets.

Why one core shared by the actor and the critic (CleanRL's ppo_atari_lstm) rather than one per head
(rsl_rl, SB3's RecurrentPPO default): one state per env to carry, store, send and reset, half the recurrent
compute, and the critic's loss trains the memory too, which on memory tasks is most of the signal early on
(the value of a state depends on the remembered cue before the actor has learnt to use it). The MLPs above
it stay separate, as in the feed-forward policy.

Why cells stepped one time step at a time (``nn.LSTMCell`` / ``nn.GRUCell``) and not ``nn.LSTM`` over a
sequence: the update must reset the state inside a sequence wherever an episode ended, and it must compute
exactly what the rollout computed (the PPO ratio starts at 1); the same cell in the same loop does both.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ppolearn.errors import ConfigError


class MemoryCore(nn.Module):
    """One recurrent layer of ``size`` units over ``in_dim`` features; ``kind`` is "lstm" or "gru"."""

    def __init__(self, kind: str, in_dim: int, size: int, ortho_init: bool = True) -> None:
        super().__init__()
        self.kind, self.size = kind, size
        self.cell = nn.LSTMCell(in_dim, size) if kind == "lstm" else nn.GRUCell(in_dim, size)
        self.state_size = 2 * size if kind == "lstm" else size  # what one env's hidden state takes
        if ortho_init:  # CleanRL's ppo_atari_lstm: orthogonal weights (gain 1), zero biases
            for name, param in self.cell.named_parameters():
                if name.startswith("weight"):
                    nn.init.orthogonal_(param, 1.0)
                else:
                    nn.init.zeros_(param)

    def initial_state(self, n: int, device: torch.device) -> torch.Tensor:
        """The state an episode starts from: zeros, (n, state_size)."""
        return torch.zeros(n, self.state_size, device=device)

    def state_from_arrays(
        self, state: Optional[Tuple[Any, ...]], episode_start: Any, n: int, device: torch.device
    ) -> torch.Tensor:
        """sb3-contrib RecurrentPPO's state for ``predict`` (a tuple of (1, n, size) arrays: ``(h, c)`` for an
        LSTM, ``(h,)`` for a GRU; None at the start) as this core's (n, state_size) tensor, zeroed where
        ``episode_start`` (a bool per row) says an episode begins."""
        if state is None:
            return self.initial_state(n, device)
        parts = [torch.as_tensor(np.asarray(part), dtype=torch.float32, device=device) for part in state]
        hidden = torch.cat([part.reshape(n, -1) for part in parts], dim=-1)
        if hidden.shape[1] != self.state_size:
            raise ConfigError(
                f"state holds {hidden.shape[1]} values per observation; this model's {self.kind} core "
                f"takes {self.state_size} (pass the state predict returned, or None)"
            )
        if episode_start is not None:
            starts = torch.as_tensor(np.asarray(episode_start, dtype=bool).reshape(-1), device=device)
            hidden = hidden * (~starts).unsqueeze(-1).to(hidden.dtype)
        return hidden

    def state_to_arrays(self, hidden: torch.Tensor) -> Tuple[np.ndarray, ...]:
        """The (n, state_size) tensor as ``predict`` returns it: ``(h, c)`` or ``(h,)``, each (1, n, size)."""
        return tuple(part[None].cpu().numpy() for part in hidden.split(self.size, -1))

    def forward(self, features: torch.Tensor, state: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One time step: the output the heads read (n, size) and the next state (n, state_size)."""
        if self.kind == "lstm":
            h, c = self.cell(features, (state[:, : self.size], state[:, self.size :]))
            return h, torch.cat([h, c], dim=-1)
        h = self.cell(features, state)
        return h, h

    def unroll(self, features: torch.Tensor, state: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """The outputs over whole sequences, as the rollout computed them step by step.

        ``features`` (T, n, F) time-major, ``state`` (n, state_size) the state at the first step, ``dones``
        (T, n) bool: the episode ended at that step, so the next step starts from zeros (the rollout's
        ``reset(dones)``). Returns (T, n, size).
        """
        keep = (~dones).unsqueeze(-1).to(features.dtype)  # (T, n, 1): 0 where the state is forgotten
        outputs = []
        for t in range(features.shape[0]):
            out, state = self(features[t], state)
            outputs.append(out)
            state = state * keep[t]
        return torch.stack(outputs)
