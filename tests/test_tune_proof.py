"""benchmarks/tune_proof.py's table: study summaries read from Optuna storage, and "at target" per fresh seed."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmarks package, whatever the working directory

optuna = pytest.importorskip("optuna")


def _study(path: Path, name: str, values, pruned: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name=name, direction="maximize")
    for value in values:
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)})
        study.tell(trial, value)
    for _ in range(pruned):
        study.tell(study.ask(), state=optuna.trial.TrialState.PRUNED)


def test_table_counts_seeds_at_target_and_summarises_both_searches(tmp_path):
    from benchmarks import tune_proof

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _study(tmp_path / "ppolearn" / "study.db", "ppolearn", [0.4, 1.0], pruned=3)
    _study(tmp_path / "zoo" / "study.db", "zoo", [-7.0, -3.5, -5.0], pruned=1)
    runs = []
    for seed, tuned, zoo in zip(tune_proof.FRESH_SEEDS, [1.0] * 5, [1.0, 1.0, 0.95, 0.9, 0.89]):
        common = {"seed": seed, "budget": 1, "train_s": 2.0, "mean_return": -3.0}
        runs.append({**common, "setting": "ppolearn-tuned", "success_rate": tuned})
        runs.append({**common, "setting": "zoo-tuned", "success_rate": zoo})
    (tmp_path / "fresh.json").write_text(json.dumps(runs))

    text = tune_proof.table(tmp_path)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "| 5/5 (**all**) |" in rows[tune_proof.LABELS["ppolearn-tuned"]]
    assert "| 4/5 |" in rows[tune_proof.LABELS["zoo-tuned"]]  # 0.89 < 0.9: one seed short
    assert "| 5 (2 / 3) | 1 |" in rows["ppolearn tune"]  # trials finished (complete / pruned), best trial
    assert "| 4 (3 / 1) | 1 | -3.5 " in rows["rl-zoo --optimize"]


def test_a_step_without_its_inputs_is_one_line_and_exit_2(tmp_path, capsys):
    from benchmarks import tune_proof

    assert tune_proof.main(["table", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tune_proof.py table: {tmp_path / 'fresh.json'} is missing: run the step that writes it first"
    assert tune_proof.main(["fresh", "--out", str(tmp_path), "--settings", "zoo-tuned"]) == 2
    assert f"{tmp_path / 'zoo' / 'study.db'} is missing" in capsys.readouterr().err
