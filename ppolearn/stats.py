"""Confidence intervals for evaluation figures: one evaluation, and an aggregate over training seeds.

A learning figure is a claim about the policy, not about the episodes that happened to be drawn, so every
figure ppolearn reports comes with its uncertainty:

* the mean return of one evaluation: Student-t 95% interval of the mean over its episodes;
* a success rate: the Wilson score interval (honest near 0% and 100%, where the normal one collapses);
* an aggregate over training seeds: the interquartile mean (IQM, the mean of the middle 50%, robust to
  one outlying seed yet using more runs than the median) with a stratified-bootstrap percentile interval —
  the method of Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice".

The ``rliable`` package implements the last one; it is written here instead because ppolearn needs two of
its functions, and rliable would bring scipy, arch, pandas and seaborn into every install. Only numpy and
the standard library are used; the same conventions hold (IQM trims ``floor(n/4)`` runs from each end,
as ``scipy.stats.trim_mean(x, 0.25)``; bootstrap percentile intervals, runs resampled within each task).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

Interval = Tuple[float, float]


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` of Student's t with ``df`` degrees of freedom.

    The Cornish-Fisher expansion around the normal quantile (Abramowitz & Stegun 26.7.5): within 1e-3 of
    the exact value for df >= 4 and 0.04 at df = 2 — far inside the sampling noise of any interval built
    from so few values.
    """
    if df < 1:
        raise ValueError(f"df={df}: Student's t needs at least one degree of freedom")
    z = _normal_quantile(p)
    if df == 1:  # Cauchy: exact
        return math.tan(math.pi * (p - 0.5))
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean; a single value (or no spread) gives the point itself."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("mean_interval needs at least one value")
    mean = float(x.mean())
    if len(x) == 1:
        return mean, mean
    half = t_quantile(0.5 + confidence / 2, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean - half, mean + half


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a success rate from ``successes`` out of ``n`` trials."""
    if n <= 0:
        raise ValueError("wilson_interval needs n > 0")
    z = _normal_quantile(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean after trimming ``floor(n / 4)`` values from each end."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if len(x) == 0:
        raise ValueError("iqm needs at least one value")
    cut = len(x) // 4
    return float(x[cut : len(x) - cut].mean())


def stratified_bootstrap_interval(
    scores: Sequence[Sequence[float]],
    statistic: Callable[[np.ndarray], float] = iqm,
    confidence: float = 0.95,
    reps: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over a (runs, tasks) score matrix.

    Runs (training seeds) are resampled with replacement *within each task* (the strata), so every
    resample keeps the task mix; ``statistic`` sees the resampled matrix flattened. With one task this
    is the ordinary bootstrap over seeds. Seeded: the same scores always give the same interval.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    runs, tasks = x.shape
    if runs == 0:
        raise ValueError("stratified_bootstrap_interval needs at least one run")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(np.broadcast_to(x, (reps, runs, tasks)), picks, axis=1)
    stats = np.array([statistic(r.ravel()) for r in resampled])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def aggregate_seeds(per_seed: Sequence[float], confidence: float = 0.95) -> Dict[str, Optional[float]]:
    """IQM of per-seed figures with its stratified-bootstrap interval, plus the plain mean, min and max."""
    x = np.asarray(per_seed, dtype=np.float64)
    low, high = stratified_bootstrap_interval(x, iqm, confidence)
    return {
        "iqm": iqm(x),
        "iqm_ci_low": low,
        "iqm_ci_high": high,
        "mean": float(x.mean()),
        "min": float(x.min()),
        "max": float(x.max()),
        "seeds": len(x),
    }


def _normal_quantile(p: float) -> float:
    """The standard normal quantile; statistics is imported here, not at start-up (it costs 0.1 s to import)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)
