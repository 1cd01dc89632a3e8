"""Observation batches as the networks take them, and the few operations the rollout, the buffer, the update
and the Ray workers need on them.

An observation batch is one float32 tensor (n, dim) for spaces without images (the common case, kept as a
plain tensor so the MLP path costs nothing extra), or a dict of tensors for spaces with images: ``"vector"``
(float32, absent where nothing but images is left) and one uint8 (n, C, H, W) tensor per image (see
ppolearn/envs/spaces.py). Each helper below treats both forms alike.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Union

import numpy as np
import torch

Obs = Union[torch.Tensor, Dict[str, torch.Tensor]]


def obs_map(fn: Callable[[Any], Any], obs: Any) -> Any:
    """``fn`` applied to the tensor (or array), or to each entry of the dict."""
    if isinstance(obs, dict):
        return {key: fn(value) for key, value in obs.items()}
    return fn(obs)


def obs_len(obs: Obs) -> int:
    """The batch size."""
    return next(iter(obs.values())).shape[0] if isinstance(obs, dict) else obs.shape[0]


def obs_split(obs: Obs, size: int) -> List[Obs]:
    """Consecutive minibatches of ``size`` rows (views, as ``Tensor.split``)."""
    if not isinstance(obs, dict):
        return list(obs.split(size))
    parts = {key: value.split(size) for key, value in obs.items()}
    return [dict(zip(parts, rows)) for rows in zip(*parts.values())]


def obs_cat(batches: Sequence[Obs]) -> Obs:
    """Batches side by side along the first axis."""
    if isinstance(batches[0], dict):
        return {key: torch.cat([b[key] for b in batches]) for key in batches[0]}
    return torch.cat(list(batches))


def obs_assign(target: Any, index: Any, value: Any) -> None:
    """``target[index] = value``, entry by entry for a dict (tensors or numpy arrays)."""
    if isinstance(target, dict):
        for key in target:
            target[key][index] = value[key]
    else:
        target[index] = value


def obs_tensor(encoded: Union[np.ndarray, Dict[str, np.ndarray]], device: torch.device) -> Obs:
    """Encoded numpy observations (ObsSpec.encode) as tensors on ``device``: the vector as float32, images
    as the uint8 they are. from_numpy shares memory, so only a contiguous copy is made where needed."""

    if isinstance(encoded, dict):
        return {key: obs_tensor(part, device) for key, part in encoded.items()}
    return array_tensor(encoded, np.uint8 if encoded.dtype == np.uint8 else np.float32, device)


def array_tensor(array: np.ndarray, dtype: type, device: torch.device) -> torch.Tensor:
    """``array`` as a ``dtype`` tensor on ``device``. from_numpy shares memory: on the CPU no copy is made where
    the array already has that dtype and is contiguous, and no ``.to()`` is called (a no-op that still costs a
    dispatch per step)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=dtype))
    return tensor if device.type == "cpu" else tensor.to(device, non_blocking=True)
