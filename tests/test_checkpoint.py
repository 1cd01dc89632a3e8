import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from ppolearn import PPO
from ppolearn.checkpoint import atomic_save, list_checkpoints, safe_load
from ppolearn.errors import CheckpointError

TINY = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 2, "net_arch": [16]}


class _Payload:
    """Unpickling this would create a file: the attack a shared checkpoint could carry."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    target = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "ppolearn", "actor": _Payload(str(target))}, evil)
    with pytest.raises(CheckpointError, match=r"refusing to load .* GLOBAL _?io.open"):
        safe_load(evil)
    with pytest.raises(CheckpointError, match="refusing to load"):
        PPO.load(evil)
    assert not target.exists()


def test_plain_pickle_file_is_refused(tmp_path):
    target = tmp_path / "pwned2"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Payload(str(target))))
    with pytest.raises(CheckpointError):
        PPO.load(evil)
    assert not target.exists()


def test_truncated_and_foreign_files_are_one_line(tmp_path):
    good = PPO("CartPole-v1", verbose=0, **TINY).save(tmp_path / "good.pt")
    data = good.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="is corrupt"):
        PPO.load(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="is corrupt"):
        PPO.load(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a ppolearn model"):
        PPO.load(other)
    with pytest.raises(CheckpointError, match="no model or checkpoint file"):
        PPO.load(tmp_path / "absent.pt")


def test_model_file_is_a_plain_zip_of_tensors(tmp_path):
    path = PPO("CartPole-v1", verbose=0, **TINY).save(tmp_path / "m.pt")
    assert zipfile.is_zipfile(path)
    data = torch.load(path, weights_only=True)
    assert data["env_id"] == "CartPole-v1" and data["config"]["n_steps"] == 32


def test_atomic_save_leaves_previous_file_on_failure(tmp_path):
    path = tmp_path / "x.pt"
    atomic_save({"format": "ppolearn", "v": 1}, path)

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_save({"format": "ppolearn", "v": Unsaveable()}, path)
    assert safe_load(path)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]  # no temporary file left behind


def test_checkpoints_rotate_and_resume_continues(tmp_path):
    model = PPO("CartPole-v1", run_dir=tmp_path, verbose=0, checkpoint_every=1, keep_checkpoints=2, **TINY)
    model.learn(64 * 4)
    kept = list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in kept] == ["step_000000000192.pt", "step_000000000256.pt"]
    model.close()  # the run directory is held until then
    resumed = PPO.load(kept[-1], env="CartPole-v1", run_dir=tmp_path, verbose=0)
    assert resumed.num_timesteps == 256 and resumed.num_updates == 4
    assert resumed.optimizer.state_dict()["state"]  # Adam moments restored, not fresh
    resumed.learn(128, reset_num_timesteps=False)
    assert resumed.num_timesteps == 384


@pytest.mark.parametrize("scale_actions", ["true", "false"])
def test_action_scaling_travels_with_the_model_and_older_files_load_unscaled(tmp_path, scale_actions):
    model = PPO("Pendulum-v1", verbose=0, **{**TINY, "scale_actions": scale_actions})  # bounds [-2, 2]
    model.learn(64)
    obs = np.array([[0.3, -0.9, 1.5], [1.0, 0.0, -4.0]], dtype=np.float32)
    expected = model.predict(obs, deterministic=True)[0]
    loaded = PPO.load(model.save(tmp_path / "m.pt"))
    assert loaded.config.scale_actions == scale_actions
    assert np.allclose(loaded.predict(obs, deterministic=True)[0], expected, atol=1e-6)
    # a file written before the setting existed has no such key: it was trained in the environment's units
    data = safe_load(tmp_path / "m.pt")
    del data["config"]["scale_actions"]
    atomic_save(data, tmp_path / "old.pt")
    old = PPO.load(tmp_path / "old.pt")
    assert old.config.scale_actions == "false"
    same = bool(np.allclose(old.predict(obs, deterministic=True)[0], expected, atol=1e-6))
    assert same == (scale_actions == "false")  # the unscaled model reads as it did; a scaled one would not
    # the setting's first form, a bool, reads as the word it meant
    data["config"]["scale_actions"] = scale_actions == "true"
    atomic_save(data, tmp_path / "bool.pt")
    assert PPO.load(tmp_path / "bool.pt").config.scale_actions == scale_actions
