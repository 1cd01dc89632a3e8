"""The benchmark suite's smoke mode (tiny budgets, seconds) runs end to end, so the benchmarks never rot.

Stable-Baselines3 is benchmark-only: without it the SB3 runs are skipped and ppolearn's still run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_writes_every_table(tmp_path):
    out, results, plot = tmp_path / "BENCHMARKS.md", tmp_path / "results.json", tmp_path / "scaling.png"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["--smoke", "--out", str(out), "--results", str(results), "--plot", str(plot)]
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", *args], cwd=ROOT, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    text = out.read_text()
    for heading in ("### 1. Same work", "### 2. Time to target", "#### Pendulum-v1", "### 3. Scaling"):
        assert heading in text
    data = json.loads(results.read_text())
    assert any(r["lib"] == "ppolearn" and r["env"] == "ppolearn/Pendulum-v1" for r in data["target"])
    assert all(r["peak_rss_mib"] > 0 for r in data["throughput"] + data["target"] + data["scaling"])
    assert plot.stat().st_size > 0
