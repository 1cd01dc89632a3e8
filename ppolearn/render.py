"""A GIF of a trained policy acting in its environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import numpy as np

from ppolearn.envs import EnvSpec, configured_factory
from ppolearn.errors import EnvError

if TYPE_CHECKING:
    from ppolearn.ppo import PPO


def render_gif(
    model: PPO,
    out: Path,
    env: Optional[EnvSpec] = None,
    episodes: int = 1,
    seed: int = 10_000,
    max_side: int = 240,
    frame_skip: int = 2,
    fps: int = 25,
) -> Path:
    """Record deterministic episodes to ``out``; frames are downscaled and thinned to keep the file small."""
    import imageio.v2 as imageio
    from PIL import Image

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame-drawn envs: frames only, no window
    spec = model.env_id if env is None else env
    cfg = model.config
    instance = configured_factory(spec, cfg.success, cfg.env_kwargs, cfg.env_wrapper)(render_mode="rgb_array")
    frames: List[np.ndarray] = []
    try:
        for i in range(episodes):
            obs, _ = instance.reset(seed=seed + i)
            done, t, state = False, 0, None  # state: a recurrent policy's memory, zeros at the episode's start
            while not done:
                if t % frame_skip == 0:
                    frames.append(_shrink(instance.render(), max_side, Image))
                action, state = model.predict(obs, state, deterministic=True)
                obs, _, terminated, truncated, _ = instance.step(action)
                done, t = terminated or truncated, t + 1
            frames.append(_shrink(instance.render(), max_side, Image))
    finally:
        instance.close()
    if not frames or frames[0] is None:
        raise EnvError(f"environment '{model.env_id}' returned no rgb_array frames to render")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(out, frames, duration=1000 / fps, loop=0)
    return out


def _shrink(frame: Optional[np.ndarray], max_side: int, image_module) -> Optional[np.ndarray]:
    if frame is None:
        return None
    img = image_module.fromarray(np.asarray(frame, dtype=np.uint8))
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))
    return np.asarray(img)
