import pytest
import torch

from genseg.methods.flowseg.objective import (
    TRANSFORMS,
    ObjectiveOptions,
    potential,
    potential_grad,
    reshaped_target,
)


@pytest.mark.parametrize("kind", TRANSFORMS)
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_closed_form_gradient_equals_autograd(kind, tau):
    g = torch.Generator().manual_seed(0)
    centroids = torch.rand(6, 3, generator=g, dtype=torch.float64) * 2 - 1
    x = (torch.rand(50, 3, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    labels = torch.randint(0, 6, (50,), generator=g)
    (auto,) = torch.autograd.grad(potential(x, centroids, labels, kind, tau, 1e-3).sum(), x)
    closed = potential_grad(x.detach(), centroids, labels, kind, tau, 1e-3)
    assert torch.allclose(auto, closed, atol=1e-9, rtol=1e-6)


def _batch():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(2, 3, 4, 4, generator=g)
    x1_hat = torch.randn(2, 3, 4, 4, generator=g)
    labels = torch.randint(0, 5, (2, 4, 4), generator=g)
    labels[0, 0] = 255
    return v, x1_hat, torch.rand(5, 3, generator=g) * 2 - 1, labels, torch.rand(2, generator=g)


def test_lambda_zero_is_exactly_vanilla():
    v, x1_hat, c, labels, t = _batch()
    assert torch.equal(reshaped_target(v, x1_hat, c, labels, t, ObjectiveOptions(lam=0.0)), v)
    assert torch.equal(reshaped_target(v, x1_hat, c, labels, t, ObjectiveOptions(reshape=False)), v)


def test_no_gradient_reaches_the_target_and_ignore_pixels_are_untouched():
    v, x1_hat, c, labels, t = _batch()
    x1_hat.requires_grad_()
    target = reshaped_target(v, x1_hat, c, labels, t, ObjectiveOptions(lam=1.0))
    assert not target.requires_grad
    assert torch.equal(target[0, :, 0], v[0, :, 0])  # ignore row: vanilla target
    assert not torch.equal(target, v)


def test_correction_attracts_to_true_centroid_and_repels_the_other():
    centroids = torch.tensor([[-1.0, 0, 0], [1.0, 0, 0]])
    x = torch.tensor([[0.2, 0.0, 0.0]])  # between the two, nearer the wrong one
    for kind in TRANSFORMS:
        step = -potential_grad(x, centroids, torch.tensor([0]), kind, 1.0, 1e-3)  # descent direction
        assert step[0, 0] < 0, kind  # towards mu_0 = (-1, 0, 0), away from mu_1
        assert torch.allclose(step[0, 1:], torch.zeros(2)), kind


def test_annealed_schedule_scales_with_t():
    v, x1_hat, c, labels, _ = _batch()
    zero = reshaped_target(v, x1_hat, c, labels, torch.zeros(2), ObjectiveOptions(schedule="annealed"))
    assert torch.equal(zero, v)


@pytest.mark.parametrize("bad, message", [({"tau": 0.0}, "tau must be > 0"), ({"distance_transform": "cube"}, "distance_transform"), ({"prediction": "eps"}, "prediction")])
def test_bad_options_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        ObjectiveOptions(**bad).check()
