"""The flat parameter vector must be invisible to the networks and exactly the optimiser SB3 users expect."""

import torch

from ppolearn.networks import Critic, GaussianActor
from ppolearn.optim import FlatParameters, adam


def _nets(seed: int = 0):
    torch.manual_seed(seed)
    return GaussianActor(3, 2, [16, 16]), Critic(3, [16, 16])


def _loss(actor, critic, obs, acts):
    log_prob, _ = actor.evaluate(obs, acts)
    return -log_prob.mean() + 3.0 * critic(obs).pow(2).mean()  # large enough for the clip to act


def test_modules_keep_their_parameters_and_state_dicts():
    actor, critic = _nets()
    before = {k: v.clone() for k, v in {**actor.state_dict(), **critic.state_dict()}.items()}
    flat = FlatParameters([actor, critic])
    after = {**actor.state_dict(), **critic.state_dict()}
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    n = sum(p.numel() for m in (actor, critic) for p in m.parameters())
    assert flat.vector.shape == (n,)
    flat.vector.data.add_(1.0)  # the networks see what the optimiser writes
    assert torch.equal(actor.log_std, before["log_std"] + 1.0)


def test_loading_a_state_dict_writes_into_the_vector():
    actor, critic = _nets(0)
    other, _ = _nets(1)
    flat = FlatParameters([actor, critic])
    actor.load_state_dict(other.state_dict())
    assert torch.equal(actor.log_std, other.log_std)
    everything = torch.cat([p.reshape(-1) for m in (actor, critic) for p in m.parameters()])
    assert torch.equal(flat.vector, everything)  # still one vector: loading copied into it, not beside it


def test_steps_match_torch_adam_and_clip_on_separate_parameters():
    """Three clipped Adam steps through the flat vector give the weights torch's own per-parameter path gives."""
    obs = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    acts = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    ref_actor, ref_critic = _nets()
    ref_params = list(ref_actor.parameters()) + list(ref_critic.parameters())
    ref_opt = torch.optim.Adam(ref_params, lr=1e-2, eps=1e-5)
    actor, critic = _nets()
    flat = FlatParameters([actor, critic])
    opt = adam(flat, lr=1e-2)
    clipped = False
    for _ in range(3):
        ref_opt.zero_grad()
        _loss(ref_actor, ref_critic, obs, acts).backward()
        norm = torch.nn.utils.clip_grad_norm_(ref_params, 0.5)
        clipped |= bool(norm > 0.5)
        ref_opt.step()
        flat.zero_grad()
        _loss(actor, critic, obs, acts).backward()
        assert torch.allclose(flat.vector.grad.norm(), norm, rtol=1e-5)
        flat.clip_grad_norm_(0.5)
        opt.step()
    assert clipped  # the clip was exercised, not just Adam
    for ref, p in zip(ref_params, list(actor.parameters()) + list(critic.parameters())):
        assert torch.allclose(ref, p, atol=1e-6)


def test_state_dicts_travel_between_torch_adam_and_ours():
    """A checkpoint written with torch.optim.Adam (earlier versions) resumes with the same next step, and back."""
    torch.manual_seed(0)
    grads = [torch.randn(10) for _ in range(4)]

    def torch_adam(param):
        return torch.optim.Adam([param], lr=1e-2, eps=1e-5, foreach=False)

    ref = torch.nn.Parameter(torch.ones(10))
    ref_opt = torch_adam(ref)
    for g in grads[:2]:
        ref.grad = g.clone()
        ref_opt.step()
    ours = torch.nn.Parameter(ref.detach().clone())
    ours_opt = adam(type("P", (), {"vector": ours})(), lr=1e-2)
    ours_opt.load_state_dict(ref_opt.state_dict())
    back = torch.nn.Parameter(ref.detach().clone())
    back_opt = torch_adam(back)
    back_opt.load_state_dict(ours_opt.state_dict())
    for g in grads[2:]:
        for p, opt in ((ref, ref_opt), (ours, ours_opt), (back, back_opt)):
            p.grad = g.clone()
            opt.step()
    assert torch.allclose(ours, ref, atol=1e-7) and torch.allclose(back, ref, atol=1e-7)
    assert ours_opt.steps == 4


def _side_by_side(seed: int, ours_fused: bool, **torch_options):
    """20 Adam steps on the same gradients: torch's optimiser and ours (fused kernel or written out)."""
    torch.manual_seed(seed)
    grads = [torch.randn(50) for _ in range(20)]
    ref = torch.nn.Parameter(torch.randn(50))
    ours = torch.nn.Parameter(ref.detach().clone())
    ref_opt = torch.optim.Adam([ref], lr=3e-3, eps=1e-5, **torch_options)
    ours_opt = adam(type("P", (), {"vector": ours})(), lr=3e-3)
    if ours_fused:
        assert ours_opt._fused  # this torch (2.4+) has the CPU kernel
    ours_opt._fused = ours_fused
    for g in grads:
        for p, opt in ((ref, ref_opt), (ours, ours_opt)):
            p.grad = g.clone()
            opt.step()
    return ours, ref


def test_steps_are_bitwise_torch_fused_adams():
    """The same kernel as torch.optim.Adam(fused=True): trajectories (and thus results) do not change."""
    ours, ref = _side_by_side(0, ours_fused=True, fused=True)
    assert torch.equal(ours, ref)


def test_the_written_out_step_matches_torchs_single_tensor_adam():
    """The path for a torch without a fused kernel for the device (CPU before 2.4)."""
    ours, ref = _side_by_side(1, ours_fused=False, foreach=False)
    assert torch.allclose(ours, ref, atol=1e-7)
