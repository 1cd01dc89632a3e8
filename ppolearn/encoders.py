"""Observation encoders built from the observation space: what turns an observation batch into the feature
vector the actor and critic MLPs read.

    vectors only    no encoder at all: the MLPs read the normalised float vector directly (the fast path)
    images          one CNN per image, scaled to [0, 1] here (``/ 255`` for pixels, config ``image_scale``;
                    never the running normaliser):
                    NatureCNN (8x8/4, 4x4/2, 3x3/1 convolutions, then linear 512; Mnih et al. 2015, as SB3
                    and CleanRL's ppo_atari) for frames of 36 px and more, and a small CNN (2x2
                    convolutions of 16/32/64 channels with a 2x2 max-pool, as rl-starter-files for
                    MiniGrid's 7x7x3 view) for small grids
    Dict / Tuple    each image's CNN features and the vector of every other entry, concatenated

Which CNN an image gets is part of the saved space description (ppolearn/envs/spaces.py), so a loaded
model rebuilds the same network without the environment.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
from torch import nn

from ppolearn.envs.spaces import VECTOR_KEY, Node, ObsSpec


def _conv(conv: nn.Conv2d, ortho_init: bool) -> nn.Conv2d:
    if ortho_init:  # sqrt(2) for ReLU layers, as SB3 and CleanRL initialise their CNNs
        nn.init.orthogonal_(conv.weight, math.sqrt(2))
        nn.init.zeros_(conv.bias)
    return conv


def nature_cnn(channels: int, ortho_init: bool) -> nn.Sequential:
    """NatureCNN's convolutions (flattened output; the linear 512 is added by :class:`ImageEncoder`)."""
    return nn.Sequential(
        _conv(nn.Conv2d(channels, 32, 8, stride=4), ortho_init),
        nn.ReLU(),
        _conv(nn.Conv2d(32, 64, 4, stride=2), ortho_init),
        nn.ReLU(),
        _conv(nn.Conv2d(64, 64, 3, stride=1), ortho_init),
        nn.ReLU(),
        nn.Flatten(),
    )


def small_cnn(channels: int, side: int, ortho_init: bool) -> nn.Sequential:
    """rl-starter-files' MiniGrid CNN; the max-pool only where the grid is 7 px or more (below that three
    2x2 convolutions alone already shrink it to 1 px or so)."""
    pool: List[nn.Module] = [nn.MaxPool2d(2)] if side >= 7 else []
    return nn.Sequential(
        _conv(nn.Conv2d(channels, 16, 2), ortho_init),
        nn.ReLU(),
        *pool,
        _conv(nn.Conv2d(16, 32, 2), ortho_init),
        nn.ReLU(),
        _conv(nn.Conv2d(32, 64, 2), ortho_init),
        nn.ReLU(),
        nn.Flatten(),
    )


class ImageEncoder(nn.Module):
    """uint8 (n, C, H, W) frames -> float features: divided by ``scale`` (255: pixels to [0, 1]), then the
    CNN the layout names."""

    def __init__(self, node: Node, chw: List[int], ortho_init: bool, scale: float = 255.0) -> None:
        super().__init__()
        self.scale = float(scale)
        channels, height, width = chw
        if node["cnn"] == "nature":
            self.cnn = nature_cnn(channels, ortho_init)
        else:
            self.cnn = small_cnn(channels, min(height, width), ortho_init)
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, *chw)).shape[1]
        # NatureCNN ends in a linear 512 layer; the small CNN's 64-ish features go to the MLPs as they are
        self.linear = nn.Linear(flat, 512) if node["cnn"] == "nature" else None
        if self.linear is not None and ortho_init:
            nn.init.orthogonal_(self.linear.weight, math.sqrt(2))
            nn.init.zeros_(self.linear.bias)
        self.out_dim = 512 if self.linear is not None else flat

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        # why scaled here and not in the normaliser: the range is known, and uint8 stays uint8 in storage
        x = self.cnn(frames.float() / self.scale)
        return torch.relu(self.linear(x)) if self.linear is not None else x


class ObsEncoder(nn.Module):
    """A space with images: each image through its CNN, the vector as it is, concatenated."""

    def __init__(self, spec: ObsSpec, ortho_init: bool, image_scale: float = 255.0) -> None:
        super().__init__()
        self.keys = list(spec.images)
        self.cnns = nn.ModuleList(
            ImageEncoder(spec.image_nodes[k], spec.images[k], ortho_init, image_scale) for k in self.keys
        )
        self.has_vector = spec.dim > 0
        self.out_dim = spec.dim + sum(cnn.out_dim for cnn in self.cnns)

    def forward(self, obs: Dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [cnn(obs[key]) for key, cnn in zip(self.keys, self.cnns)]
        if self.has_vector:
            parts.append(obs[VECTOR_KEY])
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]


def build_encoder(spec: ObsSpec, ortho_init: bool, image_scale: float = 255.0) -> Optional[ObsEncoder]:
    """The encoder for ``spec``; None for vector-only spaces, whose MLPs read the observation directly."""
    return ObsEncoder(spec, ortho_init, image_scale) if spec.images else None


def features_dim(spec: ObsSpec, encoder: Optional[ObsEncoder]) -> int:
    """The width of what the actor and critic MLPs read."""
    return spec.dim if encoder is None else encoder.out_dim
