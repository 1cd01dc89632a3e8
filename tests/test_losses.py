import pytest
import torch

from ppolearn.update import clipped_surrogate_loss, value_loss


def _loss_and_grad(ratio: float, advantage: float, eps: float = 0.2):
    old = torch.zeros(1)
    log_prob = torch.tensor([float(torch.log(torch.tensor(ratio)))], requires_grad=True)
    loss, _ = clipped_surrogate_loss(log_prob, old, torch.tensor([advantage]), eps)
    loss.backward()
    return loss.item(), log_prob.grad.item()


@pytest.mark.parametrize("ratio", [0.9, 1.0, 1.1])
@pytest.mark.parametrize("adv", [2.0, -2.0])
def test_inside_clip_range_is_plain_surrogate(ratio, adv):
    loss, grad = _loss_and_grad(ratio, adv)
    assert loss == pytest.approx(-ratio * adv, rel=1e-6)
    assert grad == pytest.approx(-ratio * adv, rel=1e-5)  # d(-r A)/d log r = -r A


@pytest.mark.parametrize(
    "ratio,adv,expected_loss",
    [
        (1.5, 2.0, -1.2 * 2.0),  # positive advantage, ratio above 1+eps: clipped, no gradient
        (0.5, -2.0, 0.8 * 2.0),  # negative advantage, ratio below 1-eps: clipped, no gradient
    ],
)
def test_outside_clip_range_has_no_gradient(ratio, adv, expected_loss):
    loss, grad = _loss_and_grad(ratio, adv)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert grad == 0.0


@pytest.mark.parametrize("ratio,adv", [(1.5, -2.0), (0.5, 2.0)])
def test_outside_clip_range_on_the_harmful_side_keeps_gradient(ratio, adv):
    # the min picks the unclipped term when it is worse: the update can still undo a bad move
    loss, grad = _loss_and_grad(ratio, adv)
    assert loss == pytest.approx(-ratio * adv, rel=1e-6)
    assert grad == pytest.approx(-ratio * adv, rel=1e-5)


def test_value_loss_plain_and_clipped():
    values = torch.tensor([2.0, 0.0])
    old = torch.tensor([1.0, 1.0])
    rtgs = torch.tensor([3.0, 3.0])
    assert value_loss(values, old, rtgs, None).item() == pytest.approx(0.5 * (1 + 9) / 2)
    # clipped to old +- 0.5 -> [1.5, 0.5]; max of squared errors: [max(1, 2.25), max(9, 6.25)]
    assert value_loss(values, old, rtgs, 0.5).item() == pytest.approx(0.5 * (2.25 + 9) / 2)
