"""fairgap_utils.unlearn.keep_gap: RL plus a differentiable fairness-gap penalty.

The registry-wide tests (test_unlearn.py) run KeepGap like every other method; here: the
penalty's gradient against finite differences (float64; batch and running statistics), its
sigma against fairness.py's, the running statistics' arithmetic, weight 0 = RL bit for bit,
that the penalty moves sigma toward its target (against RL's), the logs, and bad hyperparameters.
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from conftest import ORIGINAL_CONFIG
from fairgap_utils import data as D
from fairgap_utils.errors import FairgapError
from fairgap_utils.fairness import class_sigmas
from fairgap_utils.hooks import norm_layers
from fairgap_utils.unlearn import Context, run_method
from fairgap_utils.unlearn.keep_gap import (RunningSigmas, batch_class_sigma, channels, class_sigma_hooks,
                                            gap_penalty, penalized_classes, penalized_layers, reference_sigmas,
                                            smooth_spread)

RL_OVERRIDES = dict(epochs=2, lr=0.05, batch_size=50)


@pytest.fixture(scope="module")
def ctx(trained_original):
    return Context(original=trained_original[0], train_config=ORIGINAL_CONFIG, arch="resnet_tiny", seed=0)


class Tokens(nn.Module):
    """(B, C, H, W) -> (B, H*W, C), so a LayerNorm normalizes channels per token as in a ViT."""

    def forward(self, x):
        return x.flatten(2).transpose(1, 2)


def tiny_model() -> nn.Module:
    """Conv-BN-ReLU (in place, as in the ResNets) twice, then tokens with a LayerNorm, and a head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
        nn.Conv2d(4, 5, 3, stride=2), nn.BatchNorm2d(5), nn.ReLU(inplace=True),
        Tokens(), nn.LayerNorm(5), nn.Flatten(), nn.Linear(16 * 5, 3)).double().train()


@pytest.mark.parametrize("statistics", ["batch", "ema"])
@pytest.mark.parametrize("target", ["spread", "deviation"])
def test_penalty_gradient_matches_finite_differences(target, statistics):
    """The whole penalty of one step, as a function of the weights: with "ema" the running values are
    constants of the step and only the batch's sigma (times the momentum) carries the gradient."""
    model = tiny_model()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 3, 9, 9, dtype=torch.float64, generator=g)
    y = torch.tensor([0, 1, 2] * 4)
    classes = [0, 1, 2]
    layers = [n for n, _ in norm_layers(model)]
    assert len(layers) == 3
    reference = {n: (torch.rand(3, dtype=torch.float64, generator=g) + 0.5, 0.7 + 0.1 * i)
                 for i, n in enumerate(layers)}
    reference4 = {n: (torch.cat([r, torch.tensor([1.2], dtype=torch.float64)]), sc)   # class 3: not in the batch
                  for n, (r, sc) in reference.items()}
    names = [n for n, _ in model.named_parameters()]

    with class_sigma_hooks(model, layers) as (sigmas, batch):
        batch.update(y=y, classes=torch.tensor(classes))

        def penalty(*params):
            sigmas.clear()
            functional_call(model, dict(zip(names, params)), (x,))
            if statistics == "ema":   # a fresh running state each call: the step's constants stay the same
                running = RunningSigmas({n: (torch.tensor([0.9, 1.1, 0.8, 1.0], dtype=torch.float64), 1.0)
                                         for n in layers}, [0, 1, 2, 3], momentum=0.3)
                return gap_penalty(running.mix(sigmas, classes), [0, 1, 2, 3], reference4, target, temperature=0.3)
            return gap_penalty(sigmas, classes, reference, target, temperature=0.3)

        params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
        value = penalty(*params)
        assert value.dtype == torch.float64 and value.item() > 0
        grads = torch.autograd.grad(value, params, allow_unused=True)
        assert any(gr is not None and gr.abs().sum() > 0 for gr in grads)
        assert torch.autograd.gradcheck(penalty, params, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_smooth_spread_tends_to_max_minus_min():
    v = torch.tensor([0.8, 1.0, 1.3, 0.9], dtype=torch.float64)
    assert smooth_spread(v, 1e-4).item() == pytest.approx(0.5, abs=1e-3)
    assert smooth_spread(torch.full((5,), 2.0), 0.1).item() == pytest.approx(0.0, abs=1e-6)
    values = [smooth_spread(v, t).item() for t in (1.0, 0.3, 0.1, 0.03)]
    assert all(0 < a < b <= 0.5 + 1e-12 for a, b in zip(values, values[1:]))   # below max - min, rising as T falls


def test_batch_sigma_is_fairness_channel_sigma(trained_original, synthetic_split):
    """On one batch holding every image, the penalty's sigma_c is fairness.py's `channel` sigma_c."""
    model = trained_original[0]
    x, y = synthetic_split.x_retain, synthetic_split.y_retain
    classes = torch.arange(9)
    expected = {L["layer"]: L["sigma"]["channel"][:9] for L in class_sigmas(model, x, y, 10, batch_size=1000)}
    layers = list(expected)
    with torch.no_grad(), class_sigma_hooks(model.eval(), layers) as (sigmas, batch):
        batch.update(y=y, classes=classes)
        model(D.to_float(x))
    for name in layers:
        assert sigmas[name].tolist() == pytest.approx(expected[name], rel=1e-3, abs=1e-6), name


def test_channels_keeps_float64_and_puts_vit_channels_second():
    ln = nn.LayerNorm(6)
    out = torch.rand(2, 5, 6, dtype=torch.float64)
    assert channels(out, ln).shape == (2, 6, 5) and channels(out, ln).dtype == torch.float64
    assert channels(torch.rand(2, 4, 3, 3, dtype=torch.bfloat16), nn.BatchNorm2d(4)).dtype == torch.float32
    sigma = batch_class_sigma(channels(out, ln), torch.tensor([1, 1]), torch.tensor([1]))
    assert sigma.item() == pytest.approx(out.transpose(1, 2).reshape(2, 6, 5).var((0, 2), unbiased=False).mean().item())


@pytest.mark.parametrize("statistics", ["ema", "batch"])
def test_weight_zero_is_rl_bit_for_bit(statistics, trained_original, synthetic_split, ctx):
    rl_model, rl_stats = run_method("rl", trained_original[0], synthetic_split, ctx, RL_OVERRIDES)
    kg_model, kg_stats = run_method("keep_gap", trained_original[0], synthetic_split, ctx,
                                    dict(RL_OVERRIDES, weight=0.0, statistics=statistics))
    a, b = rl_model.state_dict(), kg_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)                     # weights and BatchNorm statistics
    assert kg_stats["logs"]["loss_per_epoch"] == rl_stats["logs"]["loss_per_epoch"]
    assert all(p > 0 for p in kg_stats["logs"]["penalty_per_epoch"])   # measured all the same
    assert kg_stats["logs"]["penalty_share_per_epoch"] == [0.0, 0.0] and kg_stats["logs"]["weight"] == 0.0


def test_running_sigmas_mix_the_batch_into_the_running_values():
    reference = {"a": (torch.tensor([1.0, 2.0, float("nan"), 4.0]), 1.0)}
    running = RunningSigmas(reference, [0, 1, 3], momentum=0.25)
    batch = torch.tensor([3.0, 8.0], requires_grad=True)                # classes 3 and 0, in that order
    mixed = running.mix({"a": batch}, [3, 0])["a"]
    assert mixed.tolist() == pytest.approx([0.75 * 1 + 0.25 * 8, 2.0, 0.75 * 4 + 0.25 * 3])
    assert running.running["a"][[0, 1, 3]].tolist() == mixed.tolist() and not running.running["a"].requires_grad
    mixed.sum().backward()
    assert batch.grad.tolist() == [0.25, 0.25]                         # only the batch's share carries a gradient
    assert reference["a"][0].tolist()[:2] == [1.0, 2.0]                # the reference itself is not moved
    again = running.mix({"a": torch.tensor([5.0])}, [1])["a"]
    assert again.tolist() == pytest.approx([2.75, 0.75 * 2 + 0.25 * 5, 3.75])


def _train_mode_penalty(model, split, layers, reference, target):
    """The penalty of the whole-data sigma (train mode, D_r in training batches): what the penalty estimates."""
    retained = list(range(9))
    after = reference_sigmas(model, split, layers, retained, 50, seed=7)
    return gap_penalty({n: after[n][0][retained] for n in layers}, retained, reference, target, 0.1).item()


@pytest.mark.parametrize("target, weight", [("deviation", 30.0), ("spread", 10.0)])
def test_the_penalty_moves_sigma_toward_its_target(target, weight, trained_original, synthetic_split, ctx):
    """Against RL from the same original: deviation, the classes' sigma ends closer to the original's;
    spread, the smooth spread of the classes' sigma ends lower (measured on the whole of D_r)."""
    original = trained_original[0]
    layers = penalized_layers(original, "all")
    reference = reference_sigmas(original, synthetic_split, layers, list(range(9)), 50, seed=7)
    overrides = dict(RL_OVERRIDES, epochs=3, sigma_momentum=0.5)
    rl_model, _ = run_method("rl", original, synthetic_split, ctx, {k: overrides[k] for k in RL_OVERRIDES})
    kg_model, stats = run_method("keep_gap", original, synthetic_split, ctx,
                                 dict(overrides, target=target, weight=weight))
    rl_value = _train_mode_penalty(rl_model, synthetic_split, layers, reference, target)
    kg_value = _train_mode_penalty(kg_model, synthetic_split, layers, reference, target)
    assert kg_value < 0.5 * rl_value, (target, kg_value, rl_value)
    logs = stats["logs"]
    assert logs["weight"] == weight and logs["statistics"] == "ema"
    for share, p, ce in zip(logs["penalty_share_per_epoch"], logs["penalty_per_epoch"], logs["penalized_ce_per_epoch"]):
        assert share == pytest.approx(weight * p / (ce + weight * p))   # of the penalized batches' loss
        assert 0.05 < share < 1
    assert logs["penalized_batches_per_epoch"] == [9, 9, 9]            # every retain batch of 50 (450 images)


@pytest.mark.parametrize("target, statistics", [("spread", "ema"), ("deviation", "batch")])
def test_penalty_changes_the_result_and_logs(target, statistics, trained_original, synthetic_split, ctx):
    rl_model, _ = run_method("rl", trained_original[0], synthetic_split, ctx, RL_OVERRIDES)
    model, stats = run_method("keep_gap", trained_original[0], synthetic_split, ctx,
                              dict(RL_OVERRIDES, weight=1.0, target=target, layers="last_half", statistics=statistics))
    logs = stats["logs"]
    assert not torch.equal(model.net.fc.weight, rl_model.net.fc.weight)
    assert len(logs["penalty_per_epoch"]) == 2 and all(p >= 0 for p in logs["penalty_per_epoch"])
    all_layers = [n for n, _ in norm_layers(model)]
    assert logs["penalized_layers"] == all_layers[len(all_layers) // 2:]
    assert set(logs["reference_scale"]) == set(logs["penalized_layers"])
    assert all(s > 0 for s in logs["reference_scale"].values())


def test_reference_deviation_is_zero_for_the_original(trained_original, synthetic_split):
    """The reference is what the penalty measures on the unchanged original: its deviation is 0."""
    model = trained_original[0]
    layers = penalized_layers(model, "all")
    retained = list(range(9))
    reference = reference_sigmas(model, synthetic_split, layers, retained, 450, seed=5)
    x, y = synthetic_split.x_retain, synthetic_split.y_retain
    probe = copy.deepcopy(model).train()
    with torch.no_grad(), class_sigma_hooks(probe, layers) as (sigmas, batch):
        batch.update(y=y, classes=torch.arange(9))
        gen = torch.Generator().manual_seed(5)
        (xb, yb), = list(D.batches(x, y, 450, shuffle=True, augment_images=True, generator=gen))
        batch.update(y=yb)
        probe(xb)
        assert gap_penalty(sigmas, retained, reference, "deviation", 0.1).item() == pytest.approx(0.0, abs=1e-8)
        assert gap_penalty(sigmas, retained, reference, "spread", 0.1).item() > 0


@pytest.mark.parametrize("key, value, fragment", [
    ("target", "gap", "unknown target 'gap'; valid choices: spread, deviation"),
    ("layers", "middle", "unknown layers 'middle'; valid choices: all, first_half, last_half"),
    ("weight", -1.0, "weight -1.0 must be >= 0"),
    ("temperature", 0.0, "temperature 0.0 must be > 0"),
    ("statistics", "eval", "unknown statistics 'eval'; valid choices: ema, batch"),
    ("sigma_momentum", 0.0, "sigma_momentum 0.0 must be in (0, 1]"),
    ("sigma_momentum", 1.5, "sigma_momentum 1.5 must be in (0, 1]")])
def test_bad_hyperparameters(key, value, fragment, trained_original, synthetic_split, ctx):
    with pytest.raises(FairgapError) as e:
        run_method("keep_gap", trained_original[0], synthetic_split, ctx, {key: value, "epochs": 1})
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_no_class_with_two_images_switches_the_penalty_off():
    y = torch.tensor([0, 1, 2, 2])
    assert penalized_classes(y, [0, 1, 2]) == [2]
    assert penalized_classes(y, []) == []          # the reference saw no class twice in a batch


# --------------------------------------------------------------------------- what a sampled mutation run left alive

def test_layer_sets_split_the_normalization_layers_in_forward_order():
    """first_half: the first ceil(n/2) layers; last_half: the last ceil(n/2); all: every one (3 here)."""
    model = tiny_model()
    names = [n for n, _ in norm_layers(model)]
    assert len(names) == 3
    assert penalized_layers(model, "all") == names
    assert penalized_layers(model, "first_half") == names[:2]
    assert penalized_layers(model, "last_half") == names[1:]
    five = nn.Sequential(*[nn.BatchNorm2d(2) for _ in range(5)])
    assert (penalized_layers(five, "first_half") == ["0", "1", "2"]
            and penalized_layers(five, "last_half") == ["2", "3", "4"])


def test_the_spread_penalty_is_relative_to_the_layers_mean_sigma():
    """Scaling a layer's sigmas as a whole leaves the spread penalty unchanged (it cannot be met by shrinking
    the features), and its value is the smooth spread of sigma / mean sigma."""
    sigma = torch.tensor([0.5, 0.8, 1.1, 2.0], dtype=torch.float64)
    value = gap_penalty({"a": sigma}, [0, 1, 2, 3], {}, "spread", 0.1)
    assert value.item() == pytest.approx(smooth_spread(sigma / sigma.mean(), 0.1).item(), rel=1e-12)
    for k in (0.1, 3.0, 40.0):
        assert (gap_penalty({"a": k * sigma}, [0, 1, 2, 3], {}, "spread", 0.1).item()
                == pytest.approx(value.item(), rel=1e-9))


def test_the_deviation_penalty_by_hand():
    """mean_c ((sigma_c - ref_c) / s)^2 over the batch's classes, averaged over layers."""
    sigma = {"a": torch.tensor([1.0, 3.0], dtype=torch.float64), "b": torch.tensor([2.0, 2.0], dtype=torch.float64)}
    reference = {"a": (torch.tensor([0.0, 2.0, 9.0, 1.0]), 2.0), "b": (torch.tensor([5.0, 2.0, 9.0, 4.0]), 1.0)}
    # classes 1 and 3: layer a ((1-2)/2)^2, ((3-1)/2)^2 -> mean 0.625; layer b (0, 4) -> mean 2.0
    assert gap_penalty(sigma, [1, 3], reference, "deviation", 0.1).item() == pytest.approx((0.625 + 2.0) / 2)


def test_penalized_classes_need_two_images_of_a_retained_class():
    y = torch.tensor([0, 0, 1, 3, 3, 3, 7])
    assert penalized_classes(y, [0, 1, 2, 3]) == [0, 3]
    assert penalized_classes(y, [1, 7]) == []
    assert penalized_classes(torch.tensor([2, 2]), [0, 2]) == [2]


def test_reference_weights_each_batch_by_the_class_images_in_it(trained_original, synthetic_split):
    """Per class, the reference sigma is the mean of its per-batch sigmas weighted by the class's images in each
    batch (recomputed here batch by batch, on the same augmented batches of D_r)."""
    model, s = trained_original[0], synthetic_split
    layers, retained = penalized_layers(model, "all")[-2:], list(range(9))
    reference = reference_sigmas(model, s, layers, retained, 50, seed=7)
    probe = copy.deepcopy(model).train()
    sums, images = {n: torch.zeros(10, dtype=torch.float64) for n in layers}, torch.zeros(10, dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad(), class_sigma_hooks(probe, layers) as (sigmas, batch):
        for x, y in D.batches(s.x_retain, s.y_retain, 50, shuffle=True, augment_images=True, generator=gen):
            classes = penalized_classes(y, retained)
            batch.update(y=y, classes=torch.tensor(classes))
            sigmas.clear()
            probe(x)
            for i, c in enumerate(classes):
                n_c = float((y == c).sum())
                images[c] += n_c
                for name in layers:
                    sums[name][c] += float(sigmas[name][i]) * n_c
    assert (images[:9] > 0).all() and (images[:9] <= 50).all()     # 50 images per class in D_r, some left out
    for name in layers:
        assert torch.allclose(reference[name][0][:9].double(), sums[name][:9] / images[:9], rtol=1e-4), name


def test_reference_leaves_unseen_classes_out_of_the_scale(trained_original, synthetic_split):
    """A retained class with no image in D_r has no reference sigma (nan), and the layer's scale s^l is the
    mean over the classes seen only."""
    model = trained_original[0]
    layers = penalized_layers(model, "all")[-2:]
    ref = reference_sigmas(model, synthetic_split, layers, [0, 1, 2], 50, seed=7)
    for name in layers:
        sigma, scale = ref[name]
        assert torch.isnan(sigma[3:]).all() and not torch.isnan(sigma[:3]).any()
        assert scale == pytest.approx(float(sigma[:3].mean()), rel=1e-6)


def test_the_penalty_covers_the_classes_above_the_forgotten_one(trained_original, synthetic_split, ctx):
    """Forgetting class 0, the penalty still acts: every other class is retained (not only those below it)."""
    s = synthetic_split
    x = torch.cat([s.x_retain, s.x_forget])
    y = torch.cat([s.y_retain, s.y_forget])
    from conftest import make_class_split
    split = make_class_split(x, y, s.x_test, s.y_test, forget_class=0)
    _, stats = run_method("keep_gap", trained_original[0], split, ctx, dict(RL_OVERRIDES, weight=10.0, target="spread"))
    logs = stats["logs"]
    assert all(n == 9 for n in logs["penalized_batches_per_epoch"]), logs["penalized_batches_per_epoch"]
    assert all(share > 0 for share in logs["penalty_share_per_epoch"])


def test_batch_statistics_need_two_classes_in_the_batch():
    """With the batch's own statistics a spread over one class is meaningless: a batch holding one retained class
    (two images or more) is not penalized; with the running statistics every retained class enters from its
    running value, so one class in the batch suffices. (The switch is in unlearn's loss; checked through the
    logs of a split whose D_r holds a single class.)"""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(60, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    y = torch.tensor([0] * 30 + [9] * 30)
    from conftest import make_class_split
    split = make_class_split(x, y, x[:10], y[:10])
    from fairgap_utils.models import create_model
    torch.manual_seed(0)
    model = create_model("resnet_tiny")
    c = Context(original=model, train_config=ORIGINAL_CONFIG, arch="resnet_tiny", seed=0)
    hp = dict(epochs=1, lr=0.01, batch_size=30, weight=1.0, target="deviation")
    _, batch_stats = run_method("keep_gap", model, split, c, dict(hp, statistics="batch"))
    _, ema_stats = run_method("keep_gap", model, split, c, dict(hp, statistics="ema"))
    assert batch_stats["logs"]["penalized_batches_per_epoch"] == [0]
    assert ema_stats["logs"]["penalized_batches_per_epoch"] == [1]
