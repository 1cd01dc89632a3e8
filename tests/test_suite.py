"""The suite runner's smoke mode: trains two tasks briefly, writes its BENCHMARKS.md section and GIFs."""

import importlib.util
import json
import sys
from pathlib import Path

SUITE = Path(__file__).resolve().parent.parent / "benchmarks" / "suite.py"


def load_suite():
    spec = importlib.util.spec_from_file_location("suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_smoke_run_writes_its_section_and_small_gifs(tmp_path):
    suite = load_suite()
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## Speed\n\nkept as it is\n")
    args = ["--smoke", "--out", str(out), "--gif-dir", str(tmp_path / "gifs"), "--runs-dir", str(tmp_path / "runs")]
    assert suite.main(args) == 0
    assert suite.main(args) == 0  # a second run replaces the section instead of adding one
    text = out.read_text()
    assert "## Speed\n\nkept as it is" in text
    assert text.count(suite.HEADING) == 1 and text.count(suite.START) == 1
    assert "| CartPole-v1 | balanced |" in text and "| ppolearn/PointReach-v0 |" in text
    gifs = sorted((tmp_path / "gifs").glob("*.gif"))
    assert [g.name for g in gifs] == ["CartPole-v1.gif", "ppolearn__PointReach-v0.gif"]
    assert all(g.stat().st_size < 500_000 for g in gifs)
    table_only = tmp_path / "T.md"
    assert suite.main(["--table-only", "--no-gif", "--out", str(table_only), "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "| CartPole-v1 | balanced | mean_return>=500 | 0/1 (not all) |" in table_only.read_text()  # read back


def test_tasks_missing_their_extra_are_listed_not_run(tmp_path, monkeypatch):
    suite = load_suite()
    monkeypatch.setattr(suite.importlib.util, "find_spec", lambda name: None)
    out = tmp_path / "B.md"
    assert suite.main(["--tasks", "Reacher-v5", "--out", str(out), "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "not run: `pip install 'ppolearn[mujoco]'`" in out.read_text()


def test_sb3_reference_figures_stand_beside_the_preset_and_its_batched_clone(tmp_path, monkeypatch):
    suite = load_suite()
    reference = tmp_path / "sb3_reference.json"
    per_seed = [{"seed": s, "mean_return": r, "timesteps": 102400} for s, r in enumerate([-150, -160, -170])]
    reference.write_text(json.dumps({"Pendulum-v1": {"settings": {}, "results": per_seed}}))
    monkeypatch.setattr(suite, "SB3_REFERENCE", reference)
    rows = [
        {"task": task, "results": [], "skipped": "x"} for task in suite.TASKS if task.env_id.endswith("Pendulum-v1")
    ]
    result = {"seed": 0, "mean_return": -150.0, "success_rate": 1.0, "num_timesteps": 1, "train_time_s": 1.0}
    rows[0]["results"] = rows[1]["results"] = [result]
    lines = [line for line in suite.table(rows).splitlines() if "Pendulum-v1 |" in line]
    assert len(lines) == 2 and all("-160.0 [-170.0, -150.0] (3 seeds, 102,400 steps)" in line for line in lines)
