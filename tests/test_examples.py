"""The custom-environment guide's example: it passes check-env and trains from the CLI as documented."""

import json

from ppolearn.cli import main
from ppolearn.envs.check import check_environment

EXAMPLE = "examples.slider_reach:SliderReach-v0"


def test_example_env_is_clean():
    assert check_environment(EXAMPLE) == []


def test_example_trains_and_evaluates_from_the_cli(tmp_path, capsys):
    run_dir = tmp_path / "slider"
    args = ["train", "--env", EXAMPLE, "--total-timesteps", "2048", "--run-dir", str(run_dir), "--quiet"]
    assert main(args + ["--set", "eval_episodes=2"]) == 0
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["env"] == EXAMPLE and result["success_rate"] is not None
    assert main(["eval", str(run_dir), "--episodes", "2"]) == 0
    assert "success rate" in capsys.readouterr().out
