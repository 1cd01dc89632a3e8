"""Where training metrics go: metrics.csv (one row per update), TensorBoard events, and a progress bar."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from tqdm import tqdm

# metrics.csv columns, in order: first where the run is, then how well it does, then how the update went.
COLUMNS = [
    "step",
    "time_s",
    "mean_return",
    "success_rate",
    "mean_length",
    "episodes",
    "eval_return",
    "eval_success_rate",
    "actor_loss",
    "critic_loss",
    "entropy",
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "learning_rate",
    "epochs",
    "worker_restarts",
    "sps",
]


class RunLogger:
    """Writes each update's metrics to the run directory and shows progress on the terminal."""

    def __init__(self, run_dir: Optional[Path], total_steps: int, start_step: int, show_progress: bool) -> None:
        self.csv_path = run_dir / "metrics.csv" if run_dir is not None else None
        self._tb = None
        if run_dir is not None:
            self._prepare_csv(start_step)
            self._tb = _tensorboard_writer(run_dir / "tb")
        self._bar = None
        self._last_eval: Optional[str] = None  # the latest evaluation's return, kept in the bar between evaluations
        if show_progress:
            self._bar = tqdm(
                total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, file=sys.stderr, smoothing=0.1
            )

    def _prepare_csv(self, start_step: int) -> None:
        """New file with a header; on resume keep only rows up to the step being resumed from."""
        assert self.csv_path is not None
        if start_step == 0 or not self.csv_path.exists():
            with self.csv_path.open("w", newline="") as fh:
                csv.writer(fh).writerow(COLUMNS)
            return
        with self.csv_path.open(newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("step") and float(r["step"]) <= start_step]
        with self.csv_path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def log(self, metrics: Dict[str, Any]) -> None:
        if self.csv_path is not None:
            with self.csv_path.open("a", newline="") as fh:
                csv.writer(fh).writerow([_fmt(metrics.get(c)) for c in COLUMNS])
        if self._tb is not None:
            step = int(metrics["step"])
            for key, value in metrics.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(_tb_tag(key), value, step)
        if self._bar is not None:
            self._bar.update(int(metrics["step"]) - self._bar.n)
            postfix = {"sps": f"{metrics['sps']:.0f}"}
            if _finite(metrics.get("mean_return")):
                postfix["return"] = f"{metrics['mean_return']:.1f}"
            if _finite(metrics.get("success_rate")):
                postfix["success"] = f"{metrics['success_rate']:.0%}"
            if _finite(metrics.get("eval_return")):
                self._last_eval = f"{metrics['eval_return']:.1f}"
            if self._last_eval is not None:
                postfix["eval"] = self._last_eval
            self._bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()


def _tensorboard_writer(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is in requirements.txt, but a minimal install still trains
        return None
    return SummaryWriter(str(directory))


def _tb_tag(key: str) -> str:
    if key.startswith("eval_"):
        return f"eval/{key[len('eval_') :]}"
    group = "rollout" if key in ("mean_return", "success_rate", "mean_length", "episodes") else "train"
    return f"{group}/{key}"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_metrics(path: Path) -> List[Dict[str, float]]:
    """metrics.csv as a list of rows of floats (NaN where a cell is empty)."""
    with Path(path).open(newline="") as fh:
        return [
            {k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(fh)
        ]
