"""benchmarks/proof.py tables finished runs: IQM with its interval, every seed, the exact command."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import proof  # noqa: E402


def test_table_from_finished_runs(tmp_path):
    row = next(r for r in proof.ROWS if r.key == "gridreach")
    for seed, success in enumerate([1.0, 0.97, 0.99, 1.0, 0.93]):
        run_dir = tmp_path / f"{row.key}_s{seed}"
        run_dir.mkdir()
        result = {"success_rate": success, "mean_return": 1.4, "num_timesteps": 20480, "train_time_s": 30.0}
        (run_dir / "proof_eval.json").write_text(json.dumps(result))
    text = proof.table(proof.ROWS, tmp_path)
    line = next(line for line in text.splitlines() if line.startswith("| ppolearn/GridReach-v0"))
    assert "| 4/5 |" in line and "0: 100% / 1.40" in line and "4: 93% / 1.40" in line
    assert "`ppolearn train --env ppolearn/GridReach-v0 --seed SEED --run-dir RUN --quiet`" in line
    assert "FetchReach" not in text  # rows without runs are left out


def test_main_table_only_writes_its_section(tmp_path):
    out = tmp_path / "B.md"
    out.write_text("# Benchmarks\n\n## Other\n\nkept\n")
    assert proof.main(["--table-only", "--runs-dir", str(tmp_path / "none"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "kept" in text and proof.HEADING in text and proof.START in text


def test_a_return_target_tables_the_return(tmp_path):
    row = next(r for r in proof.ROWS if r.key == "lunarlander")
    for seed, ret in enumerate([250.0, 210.0, 190.0]):
        run_dir = tmp_path / f"{row.key}_s{seed}"
        run_dir.mkdir()
        result = {"success_rate": None, "mean_return": ret, "num_timesteps": 10, "train_time_s": 1.0, "budget": 20}
        (run_dir / "proof_eval.json").write_text(json.dumps(result))
    line = next(line for line in proof.table(proof.ROWS, tmp_path).splitlines() if line.startswith("| LunarLander-v3"))
    assert "| 2/3 |" in line and "0: 250.0, 1: 210.0, 2: 190.0" in line and "| 20 (10) |" in line
