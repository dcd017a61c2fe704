"""fairgap_utils.attacks: FGSM and PGD against torchattacks, range checks, accuracy sweeps."""
from __future__ import annotations

import pytest
import torch

from fairgap_utils import data as D
from fairgap_utils.attacks import accuracy_under_attack, fgsm, pgd
from fairgap_utils.errors import FairgapError
from fairgap_utils.models import create_model
from fairgap_utils.train import accuracy

torchattacks = pytest.importorskip("torchattacks")


@pytest.fixture(scope="module")
def batch(synthetic_split):
    idx = torch.arange(0, len(synthetic_split.x_test), 8)          # 25 test images, every class
    return D.to_float(synthetic_split.x_test[idx]), synthetic_split.y_test[idx]


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    m = create_model("vit_micro").eval()
    with torch.no_grad():                     # torchvision zero-initializes the head: no input gradient
        m.net.heads.head.weight.normal_(0, 0.5)
    return m


def _models(trained_original, vit):
    return {"resnet_tiny (trained)": trained_original[0], "vit_micro (random)": vit}


@pytest.mark.parametrize("eps", [2 / 255, 8 / 255, 0.1])
def test_fgsm_equals_torchattacks(trained_original, vit, batch, eps):
    x, y = batch
    for name, model in _models(trained_original, vit).items():
        ours = fgsm(model, x, y, eps)
        ref = torchattacks.FGSM(model, eps=eps)(x, y)
        assert torch.allclose(ours, ref, atol=1e-6, rtol=0), name
        assert not torch.equal(ours, x)
        assert (ours - x).abs().max() <= eps + 1e-6 and ours.min() >= 0 and ours.max() <= 1


@pytest.mark.parametrize("eps, alpha, steps", [(8 / 255, 2 / 255, 5), (4 / 255, 1 / 255, 3)])
def test_pgd_equals_torchattacks(trained_original, vit, batch, eps, alpha, steps):
    x, y = batch
    for name, model in _models(trained_original, vit).items():
        ours = pgd(model, x, y, eps, alpha=alpha, steps=steps, random_start=False)
        ref = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=False)(x, y)
        assert torch.allclose(ours, ref, atol=1e-6, rtol=0), name
        assert (ours - x).abs().max() <= eps + 1e-6 and ours.min() >= 0 and ours.max() <= 1


def test_pgd_default_alpha_and_random_start(trained_original, batch):
    model = trained_original[0]
    x, y = batch
    eps = 8 / 255
    a = pgd(model, x, y, eps, steps=4, generator=torch.Generator().manual_seed(3))
    b = pgd(model, x, y, eps, steps=4, generator=torch.Generator().manual_seed(3))
    c = pgd(model, x, y, eps, steps=4, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - x).abs().max() <= eps + 1e-6 and a.min() >= 0 and a.max() <= 1
    # alpha defaults to 2.5 * eps / steps
    no_rs = pgd(model, x, y, eps, steps=4, random_start=False)
    ref = torchattacks.PGD(model, eps=eps, alpha=2.5 * eps / 4, steps=4, random_start=False)(x, y)
    assert torch.allclose(no_rs, ref, atol=1e-6, rtol=0)


def test_attacks_leave_the_model_alone(trained_original, batch):
    model = trained_original[0]
    x, y = batch
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    fgsm(model, x, y, 0.05)
    pgd(model, x, y, 0.05, steps=2, random_start=False)
    # only the input gradient is taken: parameter .grad is not touched
    assert all((g is None and p.grad is None) or torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


@pytest.mark.parametrize("eps", [-0.01, 1.01, 8, float("nan"), "big"])
def test_eps_outside_unit_interval_is_an_error(trained_original, batch, eps):
    model = trained_original[0]
    x, y = batch
    with pytest.raises(FairgapError, match=r"\[0.0, 1.0\]"):
        fgsm(model, x, y, eps)
    with pytest.raises(FairgapError, match=r"\[0.0, 1.0\]"):
        pgd(model, x, y, eps, steps=1)
    with pytest.raises(FairgapError, match=r"\[0.0, 1.0\]"):   # the sweep checks every eps itself
        accuracy_under_attack(model, x, y, "fgsm", [0.0, eps])


def test_pgd_moves_no_pixel_the_model_does_not_see(trained_original, batch):
    """sign(0) = 0: where the loss has no gradient PGD takes no step (from a fixed start the pixel stays)."""
    model, (x, y) = trained_original[0], batch
    blind = torch.nn.Sequential(torch.nn.Identity(), model).eval()
    mask = torch.ones(1, x.shape[1], 1, 1)
    mask[:, 0] = 0                                            # the red channel never reaches the model
    blind[0] = _Mask(mask)
    adv = pgd(blind, x, y, 8 / 255, steps=3, random_start=False)
    assert torch.equal(adv[:, 0], x[:, 0])                   # not one step where the gradient is 0
    assert (adv[:, 1:] - x[:, 1:]).abs().amax() > 0          # the channels the model sees are attacked


class _Mask(torch.nn.Module):
    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x):
        return x * self.mask


def test_pgd_zero_steps_is_a_fairgap_error(trained_original, batch):
    with pytest.raises(FairgapError):
        pgd(trained_original[0], *batch, 0.01, steps=0)


def test_accuracy_under_attack_fgsm(trained_original, synthetic_split):
    model = trained_original[0]
    x, y = synthetic_split.test_remaining()
    result = accuracy_under_attack(model, x, y, "fgsm", [0.0, 2 / 255, 8 / 255, 0.1], batch_size=64)
    assert list(result) == [0.0, 2 / 255, 8 / 255, 0.1]
    assert result[0.0] == pytest.approx(accuracy(model, x, y))
    # on this trained model 2/255 changes no prediction; 8/255 and 0.1 cost accuracy, the larger step more
    assert result[2 / 255] <= result[0.0]
    assert result[8 / 255] < result[0.0] and result[0.1] < result[8 / 255]
    assert result[0.1] < result[0.0] - 10          # a one-step attack of 0.1 hurts an undefended model
    # batching does not change the answer
    again = accuracy_under_attack(model, x, y, "fgsm", [8 / 255], batch_size=25)
    assert again[8 / 255] == pytest.approx(result[8 / 255])


def test_accuracy_under_attack_pgd_is_seeded(trained_original, synthetic_split):
    model = trained_original[0]
    x, y = synthetic_split.test_remaining()
    x, y = x[::3], y[::3]
    a = accuracy_under_attack(model, x, y, "pgd", [0.0, 8 / 255], batch_size=100, seed=1, steps=3)
    b = accuracy_under_attack(model, x, y, "pgd", [0.0, 8 / 255], batch_size=100, seed=1, steps=3)
    assert a == b
    assert a[0.0] == pytest.approx(accuracy(model, x, y))
    assert a[8 / 255] < a[0.0]                      # strictly: PGD scored on the clean images would fail here
    fgsm_acc = accuracy_under_attack(model, x, y, "fgsm", [8 / 255], batch_size=100)
    assert a[8 / 255] < fgsm_acc[8 / 255]            # three steps find more than FGSM's one, here


def test_accuracy_under_attack_unknown_attack(trained_original, synthetic_split):
    with pytest.raises(FairgapError, match="fgsm"):
        accuracy_under_attack(trained_original[0], synthetic_split.x_test[:4], synthetic_split.y_test[:4],
                              "cw", [0.01])


def test_fgsm_sweep_equals_one_attack_per_eps(trained_original, synthetic_split):
    """The sweep reuses one gradient per batch; every eps must match fgsm() run on its own."""
    model = trained_original[0]
    x, y = synthetic_split.test_remaining()
    eps_list = [0.0, 1 / 255, 4 / 255, 0.05]
    result = accuracy_under_attack(model, x, y, "fgsm", eps_list, batch_size=40)
    for eps in eps_list:
        correct = 0
        for xb, yb in D.batches(x, y, 40):
            adv = fgsm(model, xb, yb, eps) if eps > 0 else xb
            with torch.no_grad():
                correct += int((model(adv).argmax(1) == yb).sum())
        assert result[eps] == 100.0 * correct / len(x), eps
    with pytest.raises(FairgapError, match="FGSM epsilon"):
        accuracy_under_attack(model, x[:4], y[:4], "fgsm", [0.0, 2.0])


def test_pgd_random_start_is_uniform_in_the_eps_ball(trained_original, batch):
    """With alpha 0 the steps do not move, so PGD returns its start: x + eps * U(-1, 1), clipped to [0, 1]."""
    model = trained_original[0]
    x, y = batch
    eps = 8 / 255
    start = pgd(model, x, y, eps, alpha=0.0, steps=1, generator=torch.Generator().manual_seed(5))
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
    assert torch.equal(start, (x + eps * noise).clamp(0, 1))
    inside = (x > eps) & (x < 1 - eps)                        # where no clipping happened
    d = (start - x)[inside]
    assert d.min() < -0.9 * eps and d.max() > 0.9 * eps and d.abs().max() <= eps + 1e-6


def test_pgd_sweep_seed_defaults_to_zero(trained_original, synthetic_split):
    model = trained_original[0]
    x, y = synthetic_split.test_remaining()
    runs = {seed: accuracy_under_attack(model, x, y, "pgd", [8 / 255], batch_size=100, steps=2, seed=seed)
            for seed in (0, 1, -1)}
    assert len({r[8 / 255] for r in runs.values()}) == 3                 # the random start matters here
    assert accuracy_under_attack(model, x, y, "pgd", [8 / 255], batch_size=100, steps=2) == runs[0]
