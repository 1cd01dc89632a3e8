"""The learning curve of a run, drawn from its metrics.csv."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List

from ppolearn.errors import PPOLearnError
from ppolearn.logger import read_metrics


def plot_learning_curve(metrics_csv: Path, out: Path, title: str = "") -> Path:
    """Return (and success rate, where known), losses, KL and clip fraction, entropy against steps."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if not Path(metrics_csv).exists():
        raise PPOLearnError(f"no metrics.csv at '{metrics_csv}' to plot")
    rows = read_metrics(metrics_csv)
    if not rows:
        raise PPOLearnError(f"'{metrics_csv}' has no rows yet: train for at least one update")
    col: Dict[str, List[float]] = {k: [r[k] for r in rows] for k in rows[0]}
    steps = col["step"]

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    ax = axes[0][0]
    ax.plot(steps, col["mean_return"], color="tab:blue")
    ax.set_ylabel("mean episodic return (last 100)")
    if any(not math.isnan(v) for v in col.get("success_rate", [])):
        twin = ax.twinx()
        twin.plot(steps, col["success_rate"], color="tab:green", alpha=0.8)
        twin.set_ylabel("success rate", color="tab:green")
        twin.set_ylim(-0.02, 1.02)
    _panel(axes[0][1], steps, col, ["actor_loss", "critic_loss"], "loss")
    axes[0][1].set_yscale("symlog", linthresh=1e-2)  # the critic's loss spans orders of magnitude
    _panel(axes[1][0], steps, col, ["approx_kl", "clip_fraction"], "policy change")
    _panel(axes[1][1], steps, col, ["entropy", "explained_variance"], "")
    for a in axes[1]:
        a.set_xlabel("environment steps")
    fig.suptitle(title or Path(metrics_csv).parent.name)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _panel(ax, steps: List[float], col: Dict[str, List[float]], keys: List[str], ylabel: str) -> None:
    for key in keys:
        if key in col:
            ax.plot(steps, col[key], label=key)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8)
