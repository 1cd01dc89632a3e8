"""The learning curve of a run, drawn from its metrics.csv."""

from __future__ import annotations

import math
import multiprocessing
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

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
    ax.plot(steps, col["mean_return"], color="tab:blue", label="training episodes (last 100)")
    eval_steps, eval_returns = _points(steps, col.get("eval_return"))
    if eval_steps:  # the deterministic policy on unseen starts: the curve that says whether it reaches
        ax.plot(eval_steps, eval_returns, "o-", color="tab:orange", markersize=3, label="evaluation (deterministic)")
    ax.set_ylabel("mean episodic return")
    ax.legend(loc="lower right", fontsize=8)
    if any(not math.isnan(v) for v in col.get("success_rate", []) + col.get("eval_success_rate", [])):
        twin = ax.twinx()
        twin.plot(steps, col["success_rate"], color="tab:green", alpha=0.8)
        success_steps, success = _points(steps, col.get("eval_success_rate"))
        if success_steps:
            twin.plot(success_steps, success, "s--", color="tab:olive", markersize=3)
        twin.set_ylabel("success rate (training, evaluation dashed)", color="tab:green")
        twin.set_ylim(-0.02, 1.02)
    _panel(axes[0][1], steps, col, ["actor_loss", "critic_loss"], "loss")
    axes[0][1].set_yscale("symlog", linthresh=1e-2)  # the critic's loss spans orders of magnitude
    _panel(axes[1][0], steps, col, ["approx_kl", "clip_fraction"], "policy change")
    _panel(axes[1][1], steps, col, ["entropy", "explained_variance"], "")
    for a in axes[1]:
        a.set_xlabel("environment steps")
    fig.suptitle(title or Path(metrics_csv).parent.name)
    fig.subplots_adjust(left=0.07, right=0.93, bottom=0.08, top=0.93, wspace=0.22, hspace=0.1)  # tight_layout: +0.3 s
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def start_plot(metrics_csv: Path, out: Path, title: str = "") -> Callable[[], Path]:
    """Draw the learning curve in a child process while the caller goes on; call the result to wait for it.

    Why: importing matplotlib and drawing take about a second, as long as the final evaluation that
    `ppolearn train` runs next; side by side, on two cores, the run ends that much sooner. The child is forked
    (Linux only: fork is what makes it cheap, and elsewhere it is not safe with every library), so it starts
    with everything imported; elsewhere the curve is drawn at once. A failure is raised by the wait, with the
    child's message.
    """
    if not sys.platform.startswith("linux"):
        plot_learning_curve(metrics_csv, out, title)
        return lambda: Path(out)
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_plot_child, args=(send, metrics_csv, out, title), daemon=True)
    sys.stdout.flush(), sys.stderr.flush()  # else the child, flushing at its exit, repeats what is buffered
    child.start()
    send.close()

    def wait() -> Path:
        error = receive.recv() if receive.poll(None) else "the drawing process ended without a word"
        child.join()
        if error:
            raise PPOLearnError(error)
        return Path(out)

    return wait


def _plot_child(send, metrics_csv: Path, out: Path, title: str) -> None:  # noqa: ANN001 - a Connection
    try:
        plot_learning_curve(metrics_csv, out, title)
        send.send("")
    except Exception as exc:  # the parent raises it: a child's traceback would be lost in the output
        send.send(str(exc) if isinstance(exc, PPOLearnError) else f"drawing {out} failed: {type(exc).__name__}: {exc}")


def _points(steps: List[float], values: Optional[List[float]]) -> Tuple[List[float], List[float]]:
    """The (step, value) pairs of a column that is filled only on some rows (evaluations)."""
    pairs = [(s, v) for s, v in zip(steps, values or []) if not math.isnan(v)]
    return [s for s, _ in pairs], [v for _, v in pairs]


def _panel(ax, steps: List[float], col: Dict[str, List[float]], keys: List[str], ylabel: str) -> None:
    for key in keys:
        if key in col:
            ax.plot(steps, col[key], label=key)
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8)
