"""The optimiser's side of the update: every actor and critic parameter kept in one flat vector.

Why: with 64x64 networks a minibatch step is per-op overhead, not arithmetic. When the parameter tensors of
both networks are views into one vector, and their gradients views into one gradient vector, zeroing the
gradients, the global grad-norm clip and the Adam step are each one or a few ops on a single tensor, instead
of loops or multi-tensor kernels over every weight and bias (measured on Pendulum with the zoo settings:
the clip 86 us -> 14 us, the update 0.99 -> 0.83 ms per minibatch of 64; docs/performance.md). The
networks still own their parameters: their ``state_dict()``, ``load_state_dict()`` and forward passes are
unchanged; only the memory is shared.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Tuple

import torch
from torch import nn


class FlatParameters:
    """The parameters of ``modules`` re-homed into one vector; its gradient is the modules' gradients.

    Build it after the modules reach their device (moving them later would give them new memory). The
    gradient views are never set to None: autograd then accumulates into them in place, which is what keeps
    ``vector.grad`` the gradient of every parameter.
    """

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        params = [p for module in modules for p in module.parameters()]
        first = params[0]
        self.vector = nn.Parameter(torch.empty(sum(p.numel() for p in params), dtype=first.dtype, device=first.device))
        self.vector.grad = torch.zeros_like(self.vector)
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                self.vector[offset : offset + n] = p.reshape(-1)
                p.data = self.vector.data[offset : offset + n].view_as(p)
                p.grad = self.vector.grad[offset : offset + n].view_as(p)
                offset += n

    def zero_grad(self) -> None:
        self.vector.grad.zero_()

    def clip_grad_norm_(self, max_norm: float) -> None:
        """Scale the gradient down to a global L2 norm of at most max_norm (torch.nn.utils.clip_grad_norm_)."""
        grad = self.vector.grad
        grad.mul_(torch.clamp(max_norm / (torch.linalg.vector_norm(grad) + 1e-6), max=1.0))


class FlatAdam:
    """Adam (Kingma & Ba, 2015) on the flat parameter vector: torch's fused Adam kernel, without torch.optim.

    Why not ``torch.optim.Adam``: building the first torch optimiser imports ``torch._dynamo``, which cost
    1.0-1.5 s of every run's start-up here (``python -X importtime``), longer than many short runs train. The
    step calls the same fused kernel ``torch.optim.Adam(fused=True)`` runs (``torch._fused_adam_``), so the
    numbers are bitwise those of torch's optimiser (tested), and ``state_dict()`` has its layout, so
    checkpoints written by either load in the other. Where this torch has no fused kernel for the device
    (CPU before torch 2.4), the same update is written out with tensor ops (torch's single-tensor Adam).
    """

    def __init__(self, param: torch.Tensor, lr: float, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-5):
        self.param = param
        # the one group torch would have; training code reads and anneals param_groups[0]["lr"]
        self.param_groups: List[Dict[str, Any]] = [{"lr": lr, "betas": betas, "eps": eps, "weight_decay": 0.0}]
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.steps = 0
        self._step_tensor = torch.zeros((), dtype=torch.float32, device=param.device)  # the kernel's counter
        self._fused = hasattr(torch, "_fused_adam_") and _fused_kernel_runs(param.device)

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step from ``param.grad``."""
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        self.steps += 1
        grad = self.param.grad
        if self._fused:
            self._step_tensor.fill_(self.steps)
            torch._fused_adam_(
                [self.param], [grad], [self.exp_avg], [self.exp_avg_sq], [], [self._step_tensor],
                lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0, eps=group["eps"],
                amsgrad=False, maximize=False,
            )  # fmt: skip
            return
        self.exp_avg.lerp_(grad, 1 - beta1)  # first moment: running mean of the gradient
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # second moment
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.steps)  # both moments start at 0: unbias them
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(group["eps"])
        self.param.addcdiv_(self.exp_avg, denom, value=-group["lr"] / (1 - beta1**self.steps))

    def state_dict(self) -> Dict[str, Any]:
        """torch's layout; copies, so that a loader's later steps never write into this optimiser's moments."""
        moments = {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone()}
        state = {"step": torch.tensor(float(self.steps)), **moments}
        group = {**self.param_groups[0], "amsgrad": False, "maximize": False, "params": [0]}
        return {"state": {0: state} if self.steps else {}, "param_groups": [group]}

    def load_state_dict(self, data: Dict[str, Any]) -> None:
        group = data["param_groups"][0]
        self.param_groups[0].update({k: group[k] for k in ("lr", "eps") if k in group})
        self.param_groups[0]["betas"] = tuple(group.get("betas", self.param_groups[0]["betas"]))
        state = data["state"].get(0) or data["state"].get("0")
        if not state:  # saved before the first step
            self.steps = 0
            self.exp_avg.zero_(), self.exp_avg_sq.zero_()
            return
        self.steps = int(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


def _fused_kernel_runs(device: torch.device) -> bool:
    """Whether ``torch._fused_adam_`` has a kernel for ``device`` in this torch (CPU: from torch 2.4)."""
    try:
        one = torch.zeros(1, device=device)
        torch._fused_adam_(
            [one.clone()], [one.clone()], [one.clone()], [one.clone()], [], [torch.ones((), device=device)],
            lr=0.1, beta1=0.9, beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False,
        )  # fmt: skip
        return True
    except (RuntimeError, NotImplementedError):
        return False


def adam(params: FlatParameters, lr: float) -> FlatAdam:
    """Adam with eps 1e-5 (as SB3) on the flat vector of ``params``."""
    return FlatAdam(params.vector, lr=lr, eps=1e-5)
