"""The batched path against its ceiling: where a training step's time goes, on CPU or CUDA.

For each num_envs, ppolearn's batched Pendulum preset (n_steps 32, 5 epochs, 4 minibatches an epoch) is
timed iteration by iteration and split into its parts, each measured on its own:

    environment   the batched env stepped with random actions, no policy (the ceiling of the whole loop)
    inference     the rollout's policy calls alone (actor sample + critic) on observations of that size
    rollout rest  the rollout minus the two above (normalisers, buffer writes, episode bookkeeping)
    update        returns and advantages, then the 5 epochs of minibatch Adam

and the training rate is reported as a fraction of the environment-only rate. On CUDA every timer waits for
the device (``torch.cuda.synchronize``). Results go to ``benchmarks/batched_<device>.json`` and a table into
BENCHMARKS.md between ``<!-- batched-<device>:start/end -->``.

    python -m benchmarks.batched [--device cpu|cuda] [--num-envs 1024 4096] [--threads 1] [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch

from benchmarks.markdown import write_section

ROOT = Path(__file__).resolve().parent.parent
ENV = "ppolearn/Pendulum-v1"
PARAMS = {"n_steps": 32, "n_epochs": 5}
MINIBATCHES = 4
PARTS = ("environment", "inference", "rollout_rest", "update")


def _timer(device: torch.device) -> Callable[[], float]:
    """A clock that first waits for the device's queued work, so GPU time is not hidden."""

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def measure(num_envs: int, device: str, iterations: int, compile_policy: bool) -> Dict[str, Any]:
    """One row: training steps/s, environment-only steps/s and the time split of one iteration."""
    from ppolearn import PPO
    from ppolearn.envs import make_vec_env

    dev = torch.device(device)
    now = _timer(dev)
    n_steps = PARAMS["n_steps"]

    env = make_vec_env(ENV, num_envs, device=device)
    env.reset(seed=0)
    actions = torch.rand(n_steps, num_envs, 1, device=dev) * 4 - 2
    for t in range(n_steps):  # warm-up
        env.step(actions[t])
    start = now()
    for t in range(n_steps):
        env.step(actions[t])
    env_s = now() - start
    env.close()

    params = {**PARAMS, "num_envs": num_envs, "batch_size": n_steps * num_envs // MINIBATCHES}
    model = PPO(ENV, seed=0, verbose=0, device=device, eval_every=0, **params)
    compile_s = 0.0
    if compile_policy:
        start = time.perf_counter()
        model.actor.compile()
        model.critic.compile()
        model.learn(2 * model.config.rollout_size)  # compiles here: forward and backward, every shape
        compile_s = time.perf_counter() - start
    model.learn(model.config.rollout_size)  # warm-up iteration: allocations, kernels
    rollout_s = update_s = 0.0
    for _ in range(iterations):
        start = now()
        model.rollout()
        mid = now()
        model.update(model.buffer.batch(model.config.gamma, model.config.gae_lambda))
        end = now()
        rollout_s += mid - start
        update_s += end - mid
    rollout_s, update_s = rollout_s / iterations, update_s / iterations

    obs = model.obs_norm(model._next_obs)  # the policy calls of one rollout, on observations of this size
    with torch.no_grad():
        for _ in range(3):  # warm-up
            model.actor.sample(obs, model.generator), model.critic(obs)
        start = now()
        for _ in range(n_steps):
            model.actor.sample(obs, model.generator)
            model.critic(obs)
        inference_s = now() - start
    model.close()

    rollout = n_steps * num_envs
    return {
        "num_envs": num_envs,
        "train_steps_per_s": rollout / (rollout_s + update_s),
        "env_steps_per_s": rollout / env_s,
        "seconds_per_iteration": {
            "environment": env_s,
            "inference": inference_s,
            "rollout_rest": max(rollout_s - env_s - inference_s, 0.0),
            "update": update_s,
        },
        "compile_s": compile_s,
    }


def table(result: Dict[str, Any]) -> str:
    """The markdown section: one row per num_envs, shares of an iteration's time in percent."""
    m = result["machine"]
    compiled = " with `torch.compile` on actor and critic" if result["compile"] else ""
    lines = [
        f"`python -m benchmarks.batched --device {result['device']} --num-envs "
        f"{' '.join(str(r['num_envs']) for r in result['rows'])} --threads {result['threads']}"
        f"{' --compile' if result['compile'] else ''}`{compiled}. Device: {m['device_name']}; "
        f"torch {m['torch']}, Python {m['python']}, {m['cpus']} CPU cores, {result['threads']} torch thread(s); "
        f"1-minute load average {m['load_avg']:.1f} at the start. `{ENV}`, n_steps {PARAMS['n_steps']}, "
        f"{PARAMS['n_epochs']} epochs of {MINIBATCHES} minibatches; mean of {result['iterations']} iterations "
        "after a warm-up.",
        "",
        "| num_envs | training steps/s | env-only steps/s | training / ceiling | environment | inference "
        "| rollout rest | update |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        parts = r["seconds_per_iteration"]
        total = sum(parts.values())
        share = " | ".join(f"{100 * parts[k] / total:.0f}%" for k in PARTS)
        lines.append(
            f"| {r['num_envs']:,} | {r['train_steps_per_s']:,.0f} | {r['env_steps_per_s']:,.0f} | "
            f"{100 * r['train_steps_per_s'] / r['env_steps_per_s']:.1f}% | {share} |"
        )
    if result["compile"]:
        lines.append("")
        lines.append(
            "Compile seconds (first two iterations, included nowhere above): "
            + ", ".join(f"{r['num_envs']:,} envs {r['compile_s']:.1f} s" for r in result["rows"])
        )
    return "\n".join(lines)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile the actor and critic first")
    parser.add_argument("--out", help="JSON results (default: benchmarks/batched_<device>[_compile].json)")
    parser.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="'' to skip writing the table")
    parser.add_argument("--report", metavar="JSON", help="only write the table of saved results (a GPU run's)")
    args = parser.parse_args(argv)
    if args.report:
        write_table(json.loads(Path(args.report).read_text()), Path(args.markdown))
        return 0
    torch.set_num_threads(args.threads)
    kind = torch.device(args.device).type
    name = f"{kind}{'_compile' if args.compile else ''}"
    machine = {
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name(args.device) if kind == "cuda" else platform.processor() or "CPU",
    }
    rows = []
    for n in args.num_envs:
        rows.append(measure(n, args.device, args.iterations, args.compile))
        print(json.dumps(rows[-1]), flush=True)
    result = {"device": args.device, "threads": args.threads, "compile": args.compile, "iterations": args.iterations}
    result.update({"machine": machine, "rows": rows})
    out = Path(args.out or ROOT / "benchmarks" / f"batched_{name}.json")
    out.write_text(json.dumps(result, indent=1))
    if args.markdown:
        write_table(result, Path(args.markdown))
    print(f"wrote {out}")
    return 0


def write_table(result: Dict[str, Any], markdown: Path) -> None:
    """The result's section of BENCHMARKS.md, one per device and compile setting."""
    kind = torch.device(result["device"]).type
    name = f"{kind}{'_compile' if result['compile'] else ''}"
    heading = f"### Batched path on {'CUDA' if kind == 'cuda' else 'CPU'}{' (compiled)' if result['compile'] else ''}"
    write_section(markdown, f"<!-- batched-{name}:start -->", f"<!-- batched-{name}:end -->", heading, table(result))


if __name__ == "__main__":
    raise SystemExit(main())
