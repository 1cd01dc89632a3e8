"""BENCHMARKS.md tables and the scaling plot, drawn from the raw results of benchmarks/run.py."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional

HEADER = """## Speed: ppolearn against Stable-Baselines3

Regenerate everything (tables, `docs/scaling.png`, `benchmarks/results.json`) with one command:

    pip install -r benchmarks/requirements.txt   # stable-baselines3, benchmark-only
    python -m benchmarks.run                     # or: make bench   (make bench-smoke: seconds, for CI)

Every measured run is its own process, run one after the other; its timer starts after imports and
construction, evaluation time is excluded from training time, and its peak RSS is `ru_maxrss` of that
process. Times are wall-clock training seconds on the machine below, which other jobs shared while it ran:
compare the ratios measured side by side, not the absolute figures. Evaluation: deterministic policy,
100 episodes of the **official** Gymnasium environment (seeds 10000-10099, never used in training), also
for policies trained on a `ppolearn/` batched clone. Where the time goes and why: `docs/performance.md`.
"""


def _median(values: List[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value: Optional[float], digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


START, END = "<!-- speed:start -->", "<!-- speed:end -->"


def write(path: Path, section: str) -> None:
    """Put the section between its markers in BENCHMARKS.md, keeping other sections of the file as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{START}\n{section.rstrip()}\n{END}\n"
    if START in text and END in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END) :].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def render(results: Dict[str, Any], tasks: List[Dict[str, Any]], plot: Path, smoke: bool = False) -> str:
    """The speed section of BENCHMARKS.md (markdown), drawing the scaling plot on the way."""
    parts = [HEADER]
    if smoke:
        parts.append("**Smoke run: tiny budgets that only exercise the code path; these figures mean nothing.**\n")
    machine = results.get("machine", {})
    if machine:
        parts.append(
            f"Machine: {machine['cpus']} CPUs (load average {', '.join(f'{x:.1f}' for x in machine['load_avg'])} "
            f"at the start), Python {machine['python']}, torch {machine['torch']}, gymnasium {machine['gymnasium']}, "
            f"stable-baselines3 {machine['sb3']}; one torch thread per run.\n"
        )
    parts.append(_throughput(results.get("throughput", [])))
    parts.append(_target(results.get("target", []), tasks))
    parts.append(_scaling(results.get("scaling", []), plot))
    return "\n".join(parts)


def _throughput(rows: List[Dict[str, Any]]) -> str:
    out = [
        "### 1. Same work, same run: Pendulum-v1 with identical hyperparameters\n",
        "rl-baselines3-zoo's Pendulum-v1 PPO settings without gSDE for both (4 Gymnasium envs, n_steps 1024, "
        "batch 64, 10 epochs, gamma 0.9, GAE 0.95, lr 1e-3, 64x64 tanh nets), the same number of steps, "
        "runs alternated. Steps/s over wall-clock and over the process's CPU time (less sensitive to other "
        "jobs on the machine).\n",
        "| run | library | steps | seconds | steps/s | steps/s (CPU time) | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['seed']} | {r['lib']} | {r['steps']:,} | {r['seconds']:.1f} | {_fmt(r['steps_per_s'])} "
            f"| {_fmt(r['cpu_steps_per_s'])} | {r['peak_rss_mib']:.0f} |"
        )
    med = {
        lib: (
            _median([r["steps_per_s"] for r in rows if r["lib"] == lib]),
            _median([r["cpu_steps_per_s"] for r in rows if r["lib"] == lib]),
        )
        for lib in ("sb3", "ppolearn")
    }
    if med["sb3"][0] and med["ppolearn"][0]:
        wall, cpu = med["ppolearn"][0] / med["sb3"][0], med["ppolearn"][1] / med["sb3"][1]
        pairs = {(r["seed"], r["lib"]): r["steps_per_s"] for r in rows}
        seeds = [seed for seed, lib in pairs if lib == "sb3" and (seed, "ppolearn") in pairs]
        ratios = [pairs[(seed, "ppolearn")] / pairs[(seed, "sb3")] for seed in seeds]
        out.append(
            f"\nMedian steps/s: ppolearn {_fmt(med['ppolearn'][0])} vs SB3 {_fmt(med['sb3'][0])}: "
            f"**{wall:.2f}x** wall-clock, **{cpu:.2f}x** CPU time (goal: 2.0x). Each alternated pair, "
            f"wall-clock: {', '.join(f'{x:.2f}x' for x in ratios)}.\n"
        )
    return "\n".join(out) + "\n"


def _target(rows: List[Dict[str, Any]], tasks: List[Dict[str, Any]]) -> str:
    out = [
        "### 2. Time to target\n",
        "Training seconds (evaluation excluded) until the deterministic evaluation on the official env first "
        "reaches the threshold, evaluated every 4,096 steps (ppolearn: after the first update past each "
        "multiple); median over seeds, with how many seeds got there. `budget` is each configuration's whole "
        "run: SB3 with rl-baselines3-zoo's hyperparameters (gSDE on Pendulum, as the zoo; Acrobot cut from "
        "the zoo's 1M to 200k steps), ppolearn with its presets (`ppolearn/presets/`).\n",
    ]
    for task in tasks:
        env, threshold = task["env"], task["threshold"]
        task_rows = [r for r in rows if r["eval_env"] == env]
        if not task_rows:
            continue
        out += [
            f"#### {env} (threshold {threshold})\n",
            "| configuration | seeds at target | median s to target | median steps to target "
            "| budget steps | median budget s | median final return | worst final return | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        budgets = {}
        for name, pick in (
            ("SB3 PPO, zoo, Gymnasium env", lambda r: r["lib"] == "sb3"),
            (f"ppolearn, Gymnasium `{env}`", lambda r: r["lib"] == "ppolearn" and "/" not in r["env"]),
            (f"ppolearn, batched `ppolearn/{env}`", lambda r: r["lib"] == "ppolearn" and "/" in r["env"]),
        ):
            sel = [r for r in task_rows if pick(r)]
            if not sel:
                continue
            reached = [r for r in sel if r["seconds_to_target"] is not None]
            budgets[name.split(",")[0] + ("/batched" if "batched" in name else "")] = _median(
                [r["budget_seconds"] for r in sel]
            )
            cells = [
                name,
                f"{len(reached)}/{len(sel)}",
                _fmt(_median([r["seconds_to_target"] for r in reached]), 2),
                _fmt(_median([r["steps_to_target"] for r in reached])),
                _fmt(_median([r["budget_steps"] for r in sel])),
                _fmt(_median([r["budget_seconds"] for r in sel]), 2),
                _fmt(_median([r["final_return"] for r in sel]), 1),
                _fmt(min(r["final_return"] for r in sel), 1),
                _fmt(_median([r["peak_rss_mib"] for r in sel])),
            ]
            out.append("| " + " | ".join(cells) + " |")
        sb3, batched = budgets.get("SB3 PPO"), budgets.get("ppolearn/batched")
        finals = [r["final_return"] for r in task_rows if "/" in r["env"]]
        if sb3 and batched:
            at = sum(f >= threshold for f in finals)
            out.append(
                f"\nSB3-zoo's whole budget takes {sb3:.1f} s; ppolearn's batched preset {batched:.2f} s: "
                f"**{sb3 / batched:.1f}x** less training time (goal: 10x, with the final return at the threshold: "
                f"{at}/{len(finals)} seeds end at or above {threshold}).\n"
            )
        out.append("")
    return "\n".join(out) + "\n"


def _scaling(rows: List[Dict[str, Any]], plot: Path) -> str:
    if not rows:
        return ""
    data = rows[0]["rows"]
    out = [
        "### 3. Scaling with the number of batched environments (`ppolearn/Pendulum-v1`)\n",
        "Training: ppolearn's batched Pendulum preset with n_steps 32, 5 epochs and 4 minibatches per epoch "
        "(so the update's share stays constant), one torch thread. Environment only: the batched env stepped "
        "with random actions, no policy: the ceiling.\n",
        "| num_envs | training steps/s | environment-only steps/s |",
        "|---|---|---|",
    ]
    out += [f"| {r['num_envs']:,} | {_fmt(r['train_steps_per_s'])} | {_fmt(r['env_steps_per_s'])} |" for r in data]
    out.append(f"\nPeak RSS of the whole scaling run (up to 4,096 envs): {rows[0]['peak_rss_mib']:.0f} MiB.\n")
    out.append(f"![steps/s against num_envs]({plot.name if plot.parent.name != 'docs' else 'docs/' + plot.name})\n")
    _plot(data, plot)
    return "\n".join(out)


def _plot(data: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["num_envs"] for r in data]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(n, [r["env_steps_per_s"] for r in data], "o--", label="environment only (ceiling)")
    ax.loglog(n, [r["train_steps_per_s"] for r in data], "o-", label="ppolearn training")
    ax.set_xlabel("parallel environments (ppolearn/Pendulum-v1, CPU, 1 thread)")
    ax.set_ylabel("steps per second")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
