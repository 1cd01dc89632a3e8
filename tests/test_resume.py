"""Checkpoints carry everything a run needs: resuming A steps to A+B equals training A+B straight."""

import torch
from envs import TensorPointEnv

from ppolearn import PPO
from ppolearn.checkpoint import list_checkpoints

CFG = {"n_steps": 16, "batch_size": 32, "n_epochs": 3, "net_arch": [16], "normalize_obs": True, "seed": 7}


def _metrics_without_wallclock(run_dir):
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    return [",".join(r.split(",")[2:-1]) for r in rows]  # drop time_s and sps


def test_resume_is_bitwise_identical_to_a_straight_run(tmp_path):
    straight = PPO(TensorPointEnv(), run_dir=tmp_path / "straight", verbose=0, **CFG)
    straight.learn(64 * 6)

    first = PPO(TensorPointEnv(), run_dir=tmp_path / "split", verbose=0, **CFG)
    first.learn(64 * 2)  # A = 2 updates, then the process "stops"
    first.close()  # releases the run directory, as the end of the process would
    ckpt = list_checkpoints(tmp_path / "split" / "checkpoints")[-1]
    resumed = PPO.load(ckpt, env=TensorPointEnv(), run_dir=tmp_path / "split", verbose=0)
    resumed.learn(64 * 4, reset_num_timesteps=False)  # B = 4 more updates

    for a, b in zip(straight.actor.state_dict().values(), resumed.actor.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.critic.state_dict().values(), resumed.critic.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(straight.obs_norm.rms.mean, resumed.obs_norm.rms.mean)
    assert _metrics_without_wallclock(tmp_path / "straight") == _metrics_without_wallclock(tmp_path / "split")


def test_resuming_gymnasium_envs_is_deterministic(tmp_path):
    # Gymnasium envs cannot hand over their mid-episode state: a resumed run restarts episodes with a seed
    # fixed by the checkpoint, so resuming the same checkpoint twice gives the same run.
    cfg = {**CFG, "num_envs": 2}
    PPO("Pendulum-v1", run_dir=tmp_path / "a", verbose=0, **cfg).learn(64)
    ckpt = list_checkpoints(tmp_path / "a" / "checkpoints")[-1]
    weights = []
    for run in ("b", "c"):
        model = PPO.load(ckpt, env="Pendulum-v1", run_dir=tmp_path / run, verbose=0)
        model.learn(64, reset_num_timesteps=False)
        weights.append(torch.cat([p.flatten() for p in model.actor.parameters()]))
    assert torch.equal(weights[0], weights[1])
