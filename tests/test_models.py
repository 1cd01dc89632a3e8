"""The policy's parts built from the spaces: image detection and encoding (HxWxC and CxHxW), uint8 storage
in the rollout buffer, the CNN encoders, invalid-action masking (sampling, evaluate, predict, Gymnasium's
vector infos), the memory-core seam, and save / load / predict without the environment."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from envs import BrightPixelEnv, InfoMaskedChoiceEnv, MaskedChoiceEnv

from ppolearn import PPO
from ppolearn.config import build_config
from ppolearn.encoders import ObsEncoder
from ppolearn.envs import GymVecEnv
from ppolearn.envs.check import describe_spaces
from ppolearn.envs.spaces import ActionSpec, ObsSpec
from ppolearn.errors import EnvError
from ppolearn.evaluation import evaluate_policy
from ppolearn.networks import CategoricalActor, MultiCategoricalActor
from ppolearn.policy import build_policy

S = gym.spaces
TINY = {"n_steps": 32, "num_envs": 2, "batch_size": 32, "n_epochs": 2, "net_arch": [16], "verbose": 0}
GRID = S.Box(0, 255, (7, 7, 3), np.uint8)


# --- image detection and encoding ---------------------------------------------------------------------


def test_hwc_image_is_kept_as_uint8_channels_first():
    spec = ObsSpec.from_space(GRID)
    assert spec.dim == 0 and spec.images == {"image": [3, 7, 7]}
    frame = np.arange(147, dtype=np.uint8).reshape(7, 7, 3)
    one = spec.encode(frame)
    assert set(one) == {"image"} and one["image"].dtype == np.uint8 and one["image"].shape == (3, 7, 7)
    np.testing.assert_array_equal(one["image"][2, 4, 1], frame[4, 1, 2])
    batch = spec.encode(np.stack([frame, frame]), batched=True)
    assert batch["image"].shape == (2, 3, 7, 7)
    assert spec.bytes_per_transition() == 147
    assert "image 7x7x3 uint8 -> small CNN" in spec.describe()


def test_chw_image_and_large_frames():
    chw = ObsSpec.from_space(S.Box(0, 255, (3, 10, 12), np.uint8))
    assert chw.images == {"image": [3, 10, 12]} and chw.layout["channels_last"] is False
    frame = np.random.default_rng(0).integers(0, 255, (3, 10, 12), dtype=np.uint8)
    np.testing.assert_array_equal(chw.encode(frame)["image"], frame)
    atari = ObsSpec.from_space(S.Box(0, 255, (84, 84, 4), np.uint8))
    assert atari.layout["cnn"] == "nature" and "NatureCNN" in atari.describe()


def test_a_stack_of_frames_is_one_image_of_its_frames_channels():
    # gymnasium's FrameStackObservation around an image env: (k, H, W, C) -> k * C channels, oldest frame first
    stack = ObsSpec.from_space(S.Box(0, 255, (4, 7, 7, 3), np.uint8))
    assert stack.images == {"image": [12, 7, 7]} and "image 4 frames of 7x7x3 uint8" in stack.describe()
    assert stack.bytes_per_transition() == 4 * 147
    frames = np.random.default_rng(0).integers(0, 255, (2, 4, 7, 7, 3), dtype=np.uint8)
    encoded = stack.encode(frames, batched=True)["image"]
    assert encoded.shape == (2, 12, 7, 7) and encoded.dtype == np.uint8
    np.testing.assert_array_equal(encoded[:, 3 * 2 + 1], frames[:, 2, :, :, 1])  # frame 2, channel 1
    np.testing.assert_array_equal(stack.encode(frames[0])["image"], encoded[0])
    chw = ObsSpec.from_space(S.Box(0, 255, (2, 3, 8, 8), np.uint8))
    assert chw.images == {"image": [6, 8, 8]} and chw.layout["channels_last"] is False
    frames = np.random.default_rng(1).integers(0, 255, (2, 3, 8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(chw.encode(frames)["image"][4], frames[1, 1])


def test_a_frame_stack_wrapper_trains_saves_and_predicts(tmp_path):
    wrapper = [{"gymnasium.wrappers.FrameStackObservation": {"stack_size": 2}}]
    model = PPO(BrightPixelEnv, env_wrapper=wrapper, **TINY)
    model.learn(64)
    frames = model.buffer.obs["image"]
    assert frames.dtype == torch.uint8 and frames.shape == (32, 2, 6, 7, 7)
    loaded = PPO.load(model.save(tmp_path / "stack.pt"))
    env = gym.wrappers.FrameStackObservation(BrightPixelEnv(), 2)
    obs = np.stack([env.reset(seed=i)[0] for i in range(8)])
    np.testing.assert_array_equal(loaded.predict(obs)[0], model.predict(obs)[0])
    assert evaluate_policy(loaded, BrightPixelEnv, episodes=4)["mean_length"] == 1  # wrapped by its config
    model.close()


def test_what_is_not_an_image_stays_a_vector_and_the_config_overrides():
    assert not ObsSpec.from_space(S.Box(0, 1, (7, 7, 3), np.float32)).images  # not uint8
    assert not ObsSpec.from_space(S.Box(0, 255, (7, 7), np.uint8)).images  # 2 dims
    assert not ObsSpec.from_space(S.Box(0, 255, (3, 3, 3), np.uint8)).images  # too small for a CNN
    assert ObsSpec.from_space(GRID, image_obs=False).dim == 147  # flattened, as before
    ambiguous = S.Box(0, 255, (4, 8, 4), np.uint8)
    assert ObsSpec.from_space(ambiguous).images == {"image": [4, 4, 8]}  # channels last by default
    assert ObsSpec.from_space(ambiguous, channels_last=False).images == {"image": [4, 8, 4]}


def test_dict_with_image_direction_and_text_like_minigrid():
    space = S.Dict({"image": GRID, "direction": S.Discrete(4), "mission": S.Text(20)})
    with pytest.warns(UserWarning, match="Text"):
        spec = ObsSpec.from_space(space)
    assert spec.dim == 4 and spec.images == {"image['image']": [3, 7, 7]}
    obs = {"image": np.full((7, 7, 3), 9, np.uint8), "direction": 2, "mission": "go"}
    encoded = spec.encode(obs)
    np.testing.assert_array_equal(encoded["vector"], [0, 0, 1, 0])
    assert encoded["image['image']"].dtype == np.uint8
    assert spec.bytes_per_transition() == 147 + 16
    assert ObsSpec(**spec.to_dict()) == spec  # the saved description rebuilds the same spec


def test_encoder_shares_the_cnn_and_concatenates_the_vector():
    space = S.Dict({"image": GRID, "direction": S.Discrete(4)})
    spec = ObsSpec.from_space(space)
    policy = build_policy(spec, ActionSpec.from_space(S.Discrete(3)), build_config({}, {"net_arch": [16]}))
    assert isinstance(policy.encoder, ObsEncoder) and policy.encoder.out_dim == 64 + 4
    obs = {"image['image']": torch.randint(0, 255, (5, 3, 7, 7), dtype=torch.uint8), "vector": torch.zeros(5, 4)}
    values, log_probs, entropy = policy.evaluate(obs, torch.zeros(5, dtype=torch.int64))
    assert values.shape == log_probs.shape == entropy.shape == (5,)
    assert policy.get_hidden_state() is None and not policy.is_recurrent  # the memory seam, feed-forward
    policy.reset(torch.ones(5, dtype=torch.bool))
    policy.detach_hidden_state()
    vector_policy = build_policy(
        ObsSpec.from_space(S.Box(-1, 1, (3,))), ActionSpec.from_space(S.Discrete(2)), build_config({}, {})
    )
    assert vector_policy.encoder is None  # vectors: the MLPs read the observation directly


def test_nature_cnn_reads_atari_frames():
    spec = ObsSpec.from_space(S.Box(0, 255, (4, 84, 84), np.uint8))
    encoder = ObsEncoder(spec, ortho_init=True)
    assert encoder({"image": torch.zeros(2, 4, 84, 84, dtype=torch.uint8)}).shape == (2, 512)


def test_image_scale_divides_the_frames():
    spec = ObsSpec.from_space(GRID)
    policy = build_policy(spec, ActionSpec.from_space(S.Discrete(3)), build_config({}, {"image_scale": 10}))
    assert policy.encoder.cnns[0].scale == 10.0


@pytest.mark.parametrize("channels_first", [False, True])
def test_buffer_stores_images_as_uint8_and_the_model_round_trips(tmp_path, channels_first):
    model = PPO(lambda: BrightPixelEnv(channels_first), **TINY)
    model.learn(64)
    assert model.buffer.obs["image"].dtype == torch.uint8 and model.buffer.obs["image"].shape == (32, 2, 3, 7, 7)
    assert model.buffer.obs["image"].max() == 255  # raw pixels, not normalised
    path = model.save(tmp_path / "image.pt")
    loaded = PPO.load(path)  # without the environment
    assert loaded.obs_spec == model.obs_spec
    env = BrightPixelEnv(channels_first)
    frames = np.stack([env.reset(seed=i)[0] for i in range(8)])
    np.testing.assert_array_equal(loaded.predict(frames)[0], model.predict(frames)[0])
    assert loaded.predict(frames[0])[0] == model.predict(frames[0])[0]
    model.close()


# --- invalid-action masking ---------------------------------------------------------------------------


def test_masked_logits_are_never_sampled_and_evaluate_scores_under_the_mask():
    torch.manual_seed(0)
    actor = CategoricalActor(3, 5, [8])
    obs = torch.randn(500, 3)
    mask = torch.rand(500, 5) < 0.5
    mask[torch.arange(500), torch.randint(0, 5, (500,))] = True
    actions, log_probs = actor.sample(obs, torch.Generator().manual_seed(0), mask)
    assert mask[torch.arange(500), actions].all()
    again, entropy = actor.evaluate(obs, actions, mask)
    torch.testing.assert_close(again, log_probs)
    expected = torch.distributions.Categorical(logits=actor(obs).masked_fill(~mask, float("-inf")))
    torch.testing.assert_close(again, expected.log_prob(actions))
    torch.testing.assert_close(entropy, expected.entropy())
    assert mask[torch.arange(500), actor.mode(obs, mask)].all()


def test_multi_discrete_masks_per_entry():
    torch.manual_seed(0)
    actor = MultiCategoricalActor(3, [2, 3], [8])
    mask = torch.tensor([[True, False, False, False, True]]).repeat(50, 1)  # entry 0: 0; entry 1: 2
    actions, log_probs = actor.sample(torch.randn(50, 3), torch.Generator().manual_seed(0), mask)
    assert (actions == torch.tensor([0, 2])).all()
    torch.testing.assert_close(log_probs, torch.zeros(50), atol=1e-5, rtol=0)


@pytest.mark.parametrize("env_class", [MaskedChoiceEnv, InfoMaskedChoiceEnv])
def test_training_never_steps_an_invalid_action(env_class):
    model = PPO(env_class, **TINY)  # the env raises on an invalid action
    assert model.env.masked
    model.learn(256)
    batch = model.buffer.batch(0.99, 0.95)
    assert batch.masks.shape == (64, 5)
    assert batch.masks[torch.arange(64), batch.acts].all()
    # before any update, evaluate() scores the stored actions as sampling did: the ratio starts at 1
    model.rollout()
    batch = model.buffer.batch(0.99, 0.95)
    with torch.no_grad():
        _, log_probs, _ = model.evaluate(batch.obs, batch.acts, batch.masks)
    torch.testing.assert_close(log_probs, batch.log_probs)
    model.close()


def test_an_env_with_one_valid_action_is_forced():
    env = GymVecEnv(lambda: InfoMaskedChoiceEnv(only=3), num_envs=3)
    assert env.masked
    model = PPO(env, **{**TINY, "num_envs": 3})
    model.learn(96)
    assert (model.buffer.acts == 3).all()
    torch.testing.assert_close(model.buffer.log_probs, torch.zeros_like(model.buffer.log_probs), atol=1e-5, rtol=0)
    model.close()


def test_masks_are_off_when_asked_or_absent():
    assert not GymVecEnv(lambda: MaskedChoiceEnv(), 1, action_masking="false").masked
    assert not GymVecEnv("CartPole-v1", 1).masked
    with pytest.raises(EnvError, match="cannot be masked"):
        GymVecEnv("Pendulum-v1", 1, action_masking="true")


def test_predict_takes_action_masks_after_loading(tmp_path):
    model = PPO(MaskedChoiceEnv, **TINY)
    model.learn(64)
    loaded = PPO.load(model.save(tmp_path / "masked.pt"))
    obs = np.ones((4, 5), np.int8)
    masks = np.eye(5, dtype=bool)[[0, 1, 2, 4]]
    assert loaded.predict(obs, action_masks=masks)[0].tolist() == [0, 1, 2, 4]
    assert loaded.predict(obs[0], action_masks=masks[3], deterministic=False)[0] == 4
    model.close()


def test_check_env_describes_images_and_masks():
    assert "image 7x7x3 uint8 -> small CNN" in describe_spaces(BrightPixelEnv)
    assert "action masks: from action_masks()" in describe_spaces(MaskedChoiceEnv)
    assert 'action masks: from info["action_mask"]' in describe_spaces(InfoMaskedChoiceEnv)


# --- images learn -------------------------------------------------------------------------------------


def test_a_cnn_policy_learns_to_read_a_bright_pixel():
    torch.set_num_threads(1)
    model = PPO(
        BrightPixelEnv,
        seed=0,
        n_steps=64,
        num_envs=8,
        batch_size=128,
        learning_rate=1e-3,
        normalize_reward=False,
        verbose=0,
    )
    model.learn(6144)
    env = BrightPixelEnv()
    frames, answers = [], []
    for i in range(200):
        frames.append(env.reset(seed=10_000 + i)[0])
        answers.append(env.quadrant)
    accuracy = float(np.mean(model.predict(np.stack(frames))[0] == np.array(answers)))
    assert accuracy >= 0.9, accuracy  # chance is 0.25
    model.close()


def test_evaluation_applies_the_environments_masks():
    model = PPO(MaskedChoiceEnv, **TINY)  # an invalid action would raise in the environment
    result = evaluate_policy(model, MaskedChoiceEnv, episodes=6, seed=1000)
    assert result["episodes"] == 6
    model.close()
