"""The learning curve of a run, drawn from its metrics.csv."""

from __future__ import annotations

import math
import multiprocessing
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

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


class CurvePlotter:
    """The learning curve drawn by a child process forked before training starts.

    Why: importing matplotlib and drawing took about a second of every `ppolearn train`, after training. The
    child imports matplotlib while the training runs (one torch thread: the second core is free), waits, and
    draws when :meth:`draw` asks, side by side with the final evaluation. It is forked (Linux only: elsewhere
    fork is not safe with every library, and the curve is drawn in this process), ignores Ctrl-C (the parent
    handles it and ends the child), drops the run directory's lock as every forked child does
    (ppolearn/rundir.py), and ends when the parent closes the pipe, dies included. A failure to draw is
    raised by the wait that :meth:`draw` returns, with the child's message.
    """

    def __init__(self) -> None:
        self._conn: Any = None
        self._child: Any = None
        if not sys.platform.startswith("linux"):
            return
        context = multiprocessing.get_context("fork")
        self._conn, child_conn = context.Pipe()
        self._child = context.Process(target=_plotter_child, args=(child_conn, self._conn), daemon=True)
        sys.stdout.flush(), sys.stderr.flush()  # else the child, flushing at its exit, repeats what is buffered
        self._child.start()
        child_conn.close()

    def draw(self, metrics_csv: Path, out: Path, title: str = "") -> Callable[[], Path]:
        """Start drawing ``out`` from ``metrics_csv``; the result waits for it (and raises its failure)."""
        if self._child is None:
            plot_learning_curve(metrics_csv, out, title)
            return lambda: Path(out)
        self._conn.send((str(metrics_csv), str(out), title))

        def wait() -> Path:
            try:
                error = self._conn.recv()
            except EOFError:
                error = f"drawing {out} failed: the drawing process ended without a word"
            self.close()
            if error:
                raise PPOLearnError(error)
            return Path(out)

        return wait

    def close(self) -> None:
        """End the child, whether or not it drew (training may have failed first)."""
        if self._child is None:
            return
        self._conn.close()  # the waiting child reads EOF and ends
        self._child.join(timeout=10)
        if self._child.is_alive():
            self._child.terminate()
            self._child.join()
        self._child = None


def _plotter_child(conn: Any, parents_end: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parents_end.close()  # the fork copied it: with it open here, the parent's exit would never reach recv()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - imported now, while the parent trains

    try:
        metrics_csv, out, title = conn.recv()
    except EOFError:  # closed without a request: nothing to draw
        return
    try:
        plot_learning_curve(Path(metrics_csv), Path(out), title)
        conn.send("")
    except Exception as exc:  # the parent raises it: a child's traceback would be lost in the output
        conn.send(str(exc) if isinstance(exc, PPOLearnError) else f"drawing {out} failed: {type(exc).__name__}: {exc}")


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
