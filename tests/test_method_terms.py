"""Each unlearning method's defining term, recomputed by hand on the batches it trains on.

test_unlearn.py checks that every method forgets the class; a method can forget for the wrong
reason (GA with its sign flipped still moves the model, l1-sparse without its penalty is FT,
RL that keeps the true labels still fine-tunes). Here the training loop of the shared fine-tune
(`common.fit`) is replaced by a recorder, and the loss and batches each method hands it are
compared with the method's definition (docs/paper.md, "The methods it compares").
"""
from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from conftest import ORIGINAL_CONFIG
from fairgap_utils import data as D
from fairgap_utils.config import TrainConfig
from fairgap_utils.models import create_model
from fairgap_utils.train import seed_everything
from fairgap_utils.unlearn import METHODS, Context, run_method
from fairgap_utils.unlearn.bs import shrink_labels
from fairgap_utils.unlearn.common import FINETUNE_DEFAULTS, init_seed
from fairgap_utils.unlearn.retrain import training_seed
from fairgap_utils.unlearn.salun import saliency_mask


@pytest.fixture(scope="module")
def ctx(trained_original):
    model, cfg, _, _ = trained_original
    return Context(original=model, train_config=cfg, arch="resnet_tiny", seed=0)


@pytest.fixture
def recorded(monkeypatch):
    """`common.fit` replaced by a recorder of what it is given: no training."""
    from fairgap_utils.unlearn import common
    calls = []

    def fake_fit(model, epochs, epoch_batches, loss_fn, optimizer, scheduler=None, frozen=(), after_step=None,
                 desc="", compile=False):
        calls.append(dict(model=model, epochs=epochs, batches=epoch_batches, loss=loss_fn, optimizer=optimizer,
                          scheduler=scheduler, after_step=after_step))
        return [0.0] * epochs
    monkeypatch.setattr(common, "fit", fake_fit)
    return calls


def _record(name, recorded, original, split, ctx, overrides):
    run_method(name, original, split, ctx, overrides)
    (call,) = recorded
    return call


def _student(original, scale=0.05, seed=1):
    """A copy of the original moved off it, so that losses comparing the two are not zero."""
    student = copy.deepcopy(original)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return student.train()


def _image_keys(x):
    """One hashable key per image of a float batch in [0, 1] (as data.batches yields them)."""
    return [bytes(img.numpy()) for img in x]


def _stored_keys(x_uint8):
    return _image_keys(D.to_float(x_uint8))


# --------------------------------------------------------------------------- the documented defaults

DOCUMENTED = {   # docs/paper.md: the SalUn / l1-sparse protocol and each method's official code
    "ft": dict(FINETUNE_DEFAULTS),
    "rl": dict(FINETUNE_DEFAULTS),
    "ga": dict(FINETUNE_DEFAULTS, epochs=5, lr=1e-4),
    "salun": dict(FINETUNE_DEFAULTS, mask_ratio=0.5),
    "l1_sparse": dict(FINETUNE_DEFAULTS, alpha=1e-4),
    "scrub": dict(epochs=3, msteps=2, lr=5e-4, batch_size=256, forget_batch_size=512, weight_decay=5e-4,
                  momentum=0.9, schedule="constant", T=4.0, gamma=0.99, alpha=0.001),
    "bs": dict(epochs=10, lr=1e-5, batch_size=64, weight_decay=5e-4, momentum=0.9, schedule="constant", bound=0.1),
    "cf_k": dict(FINETUNE_DEFAULTS, k=1, unit="layer", frozen_mode="train"),
    "eu_k": dict(FINETUNE_DEFAULTS, k=1, lr=0.05, unit="layer", frozen_mode="train", budget="salun"),
    "retrain": dict(replicate=0),
}


def test_the_fine_tuning_defaults_are_the_salun_protocol():
    assert FINETUNE_DEFAULTS == dict(epochs=10, lr=0.01, batch_size=256, weight_decay=5e-4, momentum=0.9,
                                     schedule="constant")


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_defaults_are_the_documented_protocol(name):
    assert METHODS[name].defaults == DOCUMENTED[name]


def test_seeds_of_retrain_and_eu_k_are_fixed_numbers():
    """Not part of any result key: a changed formula would silently make the committed Retrain and
    EU-k results irreproducible, so the numbers themselves are pinned."""
    assert [training_seed(s) for s in (0, 1, 9)] == [1000, 1001, 1009]
    assert [training_seed(2, r) for r in (1, 4)] == [11002, 41002]
    assert [init_seed(s) for s in (0, 1, 9)] == [500, 501, 509]
    seeds = {training_seed(s, r) for s in range(10) for r in range(5)} | {init_seed(s) for s in range(10)}
    assert len(seeds) == 60 and not seeds & set(range(10))          # distinct, and never an original's seed


# --------------------------------------------------------------------------- the time a method takes

class FakeClock:
    """A stand-in for the `time` module whose perf_counter returns the given readings in turn."""

    def __init__(self, *readings):
        self.readings = list(readings)

    def perf_counter(self):
        return self.readings.pop(0)


def test_run_method_times_the_method_itself(recorded, monkeypatch, trained_original, synthetic_split, ctx):
    from fairgap_utils import unlearn
    monkeypatch.setattr(unlearn, "time", FakeClock(100.0, 103.25))
    _, stats = run_method("ft", trained_original[0], synthetic_split, ctx, {"epochs": 1})
    assert stats["time_s"] == 3.25


def test_train_supervised_times_the_training(monkeypatch):
    from fairgap_utils import train
    monkeypatch.setattr(train, "time", FakeClock(7.5, 9.0))
    model = create_model("resnet_tiny")
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    log = train.train_supervised(model, x, torch.arange(4), TrainConfig(epochs=0, batch_size=4), seed=0)
    assert log == {"loss_per_epoch": [], "train_time_s": 1.5}


# --------------------------------------------------------------------------- FT and l1-sparse

def test_the_fine_tune_schedule_spans_every_step(recorded, trained_original, synthetic_split, ctx):
    """A cosine schedule anneals over all epochs x steps per epoch of the run (not epochs + steps)."""
    call = _record("ft", recorded, trained_original[0], synthetic_split, ctx,
                   {"epochs": 3, "batch_size": 100, "schedule": "cosine"})
    steps = -(-len(synthetic_split.x_retain) // 100)
    assert steps > 1 and call["scheduler"].T_max == 3 * steps


def test_rl_schedule_spans_the_forget_and_the_retain_steps(recorded, trained_original, synthetic_split, ctx):
    """RL's epoch is one pass over D_f and one over D_r: a cosine schedule anneals over both, every epoch."""
    s = synthetic_split
    call = _record("rl", recorded, trained_original[0], s, ctx, {"epochs": 2, "batch_size": 100, "schedule": "cosine"})
    steps = -(-len(s.x_forget) // 100) + -(-len(s.x_retain) // 100)
    assert call["scheduler"].T_max == 2 * steps
    assert sum(1 for _ in call["batches"](0)) == steps


def test_ft_is_cross_entropy_on_the_retain_set(recorded, trained_original, synthetic_split, ctx):
    s = synthetic_split
    call = _record("ft", recorded, trained_original[0], s, ctx, {"epochs": 2, "batch_size": 100})
    sizes = [len(x) for x, _ in call["batches"](0)]
    assert sum(sizes) == len(s.x_retain) and sizes[0] == 100
    student = _student(trained_original[0])
    x, y = next(iter(call["batches"](1)))
    assert torch.equal(call["loss"](student, x, y, 1), F.cross_entropy(student(x), y))


def test_l1_sparse_is_ft_plus_a_linearly_decaying_l1_penalty(recorded, trained_original, synthetic_split, ctx):
    alpha, epochs = 3e-4, 4
    call = _record("l1_sparse", recorded, trained_original[0], synthetic_split, ctx,
                   {"alpha": alpha, "epochs": epochs, "batch_size": 100})
    model = call["model"]                         # the penalty is on the model being trained
    x, y = next(iter(call["batches"](0)))
    assert sum(len(xb) for xb, _ in call["batches"](0)) == len(synthetic_split.x_retain)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)                         # moved off the original: the penalty reads the current weights
    l1 = sum(p.abs().sum() for p in model.parameters())
    for epoch in range(epochs):
        expected = F.cross_entropy(model(x), y) + alpha * (1 - epoch / epochs) * l1
        assert call["loss"](model, x, y, epoch).item() == pytest.approx(expected.item(), rel=1e-6), epoch
    penalty = call["loss"](model, x, y, 0) - F.cross_entropy(model(x), y)
    assert penalty.item() == pytest.approx(alpha * l1.item(), rel=1e-4) and penalty.item() > 0


def test_l1_sparse_without_its_penalty_is_ft_and_with_it_shrinks_the_weights(trained_original, synthetic_split,
                                                                                 ctx):
    """alpha = 0 trains FT's weights bit for bit (same seed, batches and optimizer); alpha > 0 ends with a
    smaller L1 norm than FT: the difference between the two methods is the penalty's."""
    common = dict(epochs=1, lr=0.05, batch_size=100)
    ft, _ = run_method("ft", trained_original[0], synthetic_split, ctx, common)
    zero, _ = run_method("l1_sparse", trained_original[0], synthetic_split, ctx, dict(common, alpha=0.0))
    sparse, _ = run_method("l1_sparse", trained_original[0], synthetic_split, ctx, dict(common, alpha=1e-3))
    assert all(torch.equal(a, b) for a, b in zip(ft.state_dict().values(), zero.state_dict().values()))

    def norm(m):
        return sum(p.abs().sum().item() for p in m.parameters())
    assert norm(sparse) < norm(ft) - 1.0


# --------------------------------------------------------------------------- GA, RL, SalUn

def test_ga_is_gradient_ascent_on_the_forget_set(recorded, trained_original, synthetic_split, ctx):
    s = synthetic_split
    call = _record("ga", recorded, trained_original[0], s, ctx, {"epochs": 1, "batch_size": 20})
    batches = list(call["batches"](0))
    assert sum(len(x) for x, _ in batches) == len(s.x_forget)
    assert all(bool((y == s.forget_class).all()) for _, y in batches)     # D_f, true labels
    student = _student(trained_original[0])
    x, y = batches[0]
    assert torch.equal(call["loss"](student, x, y, 0), -F.cross_entropy(student(x), y))


def test_ga_raises_the_forget_loss(trained_original, synthetic_split, ctx):
    s = synthetic_split
    model, _ = run_method("ga", trained_original[0], s, ctx, {"epochs": 1, "lr": 1e-3, "batch_size": 50})

    def forget_loss(m):
        with torch.no_grad():
            return F.cross_entropy(m(D.to_float(s.x_forget)), s.y_forget).item()
    assert forget_loss(model) > 1.5 * forget_loss(trained_original[0])        # descent would lower it


def _rl_epochs(call, split, batch_size, epochs=3):
    """(forget labels, retain labels) per epoch of RL-style batches: the forget part comes first."""
    n_forget = -(-len(split.x_forget) // batch_size)
    out = []
    for e in range(epochs):
        batches = list(call["batches"](e))
        out.append((torch.cat([y for _, y in batches[:n_forget]]), torch.cat([y for _, y in batches[n_forget:]]),
                    batches))
    return out


def test_rl_relabels_the_forget_set_at_random_each_epoch(recorded, trained_original, synthetic_split, ctx):
    s = synthetic_split
    call = _record("rl", recorded, trained_original[0], s, ctx, {"epochs": 3, "batch_size": 25})
    epochs = _rl_epochs(call, s, 25)
    for forget, retain, batches in epochs:
        assert len(forget) == len(s.x_forget) and len(retain) == len(s.x_retain)
        # the retain pass keeps the true labels (as a multiset: the images are shuffled and augmented)
        assert torch.equal(torch.bincount(retain, minlength=10), torch.bincount(s.y_retain, minlength=10))
        assert 0 <= int(forget.min()) and int(forget.max()) < s.num_classes
        assert (forget == s.forget_class).float().mean() < 0.4            # not the true label
    drawn = torch.cat([f for f, _, _ in epochs])
    assert set(drawn.tolist()) == set(range(s.num_classes))                 # uniformly over all classes
    assert not torch.equal(epochs[0][0], epochs[1][0])                      # fresh labels every epoch
    student = _student(trained_original[0])
    x, y = epochs[0][2][0]
    assert torch.equal(call["loss"](student, x, y, 0), F.cross_entropy(student(x), y))


def test_rl_streams_are_fixed_offsets_of_the_run_seed(recorded, trained_original, synthetic_split):
    """D_f shuffled under the seed, D_r under seed + 1, the random labels under seed + 2. Not part of any
    result key: the committed results of RL, SalUn and KeepGap depend on these streams, so they are pinned."""
    s = synthetic_split
    ctx = Context(original=trained_original[0], train_config=ORIGINAL_CONFIG, arch="resnet_tiny", seed=3)
    call = _record("rl", recorded, trained_original[0], s, ctx, {"epochs": 1, "batch_size": 25})
    labels = torch.Generator().manual_seed(5)
    expected = [(x, torch.randint(0, s.num_classes, y.shape, generator=labels))
                for x, y in D.batches(s.x_forget, s.y_forget, 25, shuffle=True, augment_images=True,
                                      generator=torch.Generator().manual_seed(3))]
    expected += list(D.batches(s.x_retain, s.y_retain, 25, shuffle=True, augment_images=True,
                               generator=torch.Generator().manual_seed(4)))
    got = list(call["batches"](0))
    assert len(got) == len(expected)
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(got, expected))


def test_salun_trains_on_rls_batches(recorded, trained_original, synthetic_split, ctx):
    s = synthetic_split
    hp = {"epochs": 2, "batch_size": 25}
    rl = _record("rl", recorded, trained_original[0], s, ctx, hp)
    recorded.clear()
    salun = _record("salun", recorded, trained_original[0], s, ctx, hp)
    for e in range(2):
        for (xa, ya), (xb, yb) in zip(rl["batches"](e), salun["batches"](e), strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    student = _student(trained_original[0])
    x, y = next(iter(salun["batches"](0)))
    assert torch.equal(salun["loss"](student, x, y, 0), F.cross_entropy(student(x), y))


@pytest.mark.parametrize("ratio", [0.05, 0.2, 0.5])
def test_salun_mask_keeps_exactly_the_top_fraction(ratio, trained_original, synthetic_split):
    model = copy.deepcopy(trained_original[0])
    mask = saliency_mask(model, synthetic_split, ratio, 30)
    model.zero_grad()
    F.cross_entropy(model(D.to_float(synthetic_split.x_forget)), synthetic_split.y_forget, reduction="sum").backward()
    g = torch.cat([p.grad.abs().flatten() for p in model.parameters()])
    m = torch.cat([mask[n].flatten() for n, _ in model.named_parameters()])
    assert int(m.sum()) == round(ratio * len(g))
    assert g[m].min() >= g[~m].max() * (1 - 1e-4)                     # the largest |gradient of -CE on D_f|


def test_salun_mask_keeps_at_least_one_weight_and_refuses_a_ratio_outside_0_1(trained_original, synthetic_split):
    model = copy.deepcopy(trained_original[0])
    mask = saliency_mask(model, synthetic_split, 1e-12, 30)          # rounds to 0 weights: the largest one is kept
    assert sum(int(m.sum()) for m in mask.values()) == 1
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="mask_ratio"):
            saliency_mask(model, synthetic_split, bad, 30)


def test_salun_after_step_restores_exactly_the_weights_outside_the_mask(recorded, trained_original,
                                                                      synthetic_split, ctx):
    call = _record("salun", recorded, trained_original[0], synthetic_split, ctx, {"epochs": 1, "mask_ratio": 0.3})
    model = call["model"]
    mask = saliency_mask(copy.deepcopy(trained_original[0]), synthetic_split, 0.3, METHODS["salun"].defaults[
        "batch_size"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    call["after_step"]()
    for n, p in model.named_parameters():
        assert torch.equal(p[~mask[n]], before[n][~mask[n]]), n
        assert torch.equal(p[mask[n]], before[n][mask[n]] + 1.0), n


# --------------------------------------------------------------------------- SCRUB

def _kl(student_logits, teacher_logits, T):
    """KL(teacher || student) at temperature T, the mean over the batch, times T^2 (by hand)."""
    pt = torch.softmax(teacher_logits / T, 1)
    return (pt * (pt.log() - torch.log_softmax(student_logits / T, 1))).sum(1).mean() * T * T


def test_scrub_max_steps_then_min_steps(recorded, trained_original, synthetic_split, ctx):
    s = synthetic_split
    hp = dict(epochs=3, msteps=1, batch_size=100, forget_batch_size=20, T=2.0, gamma=0.7, alpha=0.2)   # max: epoch 0
    call = _record("scrub", recorded, trained_original[0], s, ctx, hp)
    teacher = trained_original[0]
    student = _student(teacher).eval()
    forget = set(_stored_keys(s.x_forget))
    for epoch in range(3):
        phases = []
        for x, y in call["batches"](epoch):                   # the loss is asked for while the batch is current
            loss = call["loss"](student, x, y, epoch)
            with torch.no_grad():
                t = teacher(x)
            out = student(x)
            kl = _kl(out, t, hp["T"])
            if all(k in forget for k in _image_keys(x)):
                phases.append("max")
                assert loss.item() == pytest.approx(-kl.item(), rel=1e-5)
            else:
                phases.append("min")
                expected = hp["gamma"] * F.cross_entropy(out, y) + hp["alpha"] * kl
                assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        n_max = -(-len(s.x_forget) // 20) if epoch < hp["msteps"] else 0
        assert phases == ["max"] * n_max + ["min"] * -(-len(s.x_retain) // 100), epoch
    assert kl.item() > 1e-4                                     # the student differs from the teacher


# --------------------------------------------------------------------------- BS

def test_bs_fine_tunes_on_the_forget_set_with_the_boundary_labels(recorded, trained_original, synthetic_split, ctx):
    s = synthetic_split
    bound = 0.05
    call = _record("bs", recorded, trained_original[0], s, ctx, {"bound": bound, "batch_size": 16, "epochs": 1})
    expected = dict(zip(_stored_keys(s.x_forget), shrink_labels(trained_original[0], s, bound).tolist()))
    seen = 0
    for x, y in call["batches"](0):
        for key, label in zip(_image_keys(x), y.tolist()):
            assert expected[key] == label                     # an unaugmented forget image, with its new label
            seen += 1
    assert seen == len(s.x_forget)
    assert sum(lb != s.forget_class for lb in expected.values()) > len(expected) / 2   # most labels moved
    student = _student(trained_original[0])
    x, y = next(iter(call["batches"](0)))
    assert torch.equal(call["loss"](student, x, y, 0), F.cross_entropy(student(x), y))


def test_bs_labels_come_from_the_step_of_size_bound(trained_original, synthetic_split):
    """A larger step moves more labels; a zero step moves none (the label is the model's own prediction)."""
    s = synthetic_split
    original = trained_original[0]
    with torch.no_grad():
        own = original(D.to_float(s.x_forget)).argmax(1)
    assert torch.equal(shrink_labels(original, s, 0.0), own)
    flips = [(shrink_labels(original, s, b) != own).float().mean().item() for b in (0.01, 0.1)]
    assert flips[0] < flips[1]


def test_bs_reports_the_share_of_forget_labels_it_keeps_and_flips(recorded, trained_original, synthetic_split, ctx):
    s = synthetic_split
    _, stats = run_method("bs", trained_original[0], s, ctx, {"bound": 0.02, "epochs": 1})   # moves some labels
    unchanged = (shrink_labels(trained_original[0], s, 0.02) == s.y_forget).float().mean().item()
    assert 0 < unchanged < 1 and stats["logs"]["label_unchanged_rate"] == pytest.approx(unchanged)
    assert stats["logs"]["label_flip_rate"] == pytest.approx(1 - unchanged)


# --------------------------------------------------------------------------- Retrain

def test_retrain_trains_a_fresh_model_on_the_retain_set_only(monkeypatch, trained_original, synthetic_split):
    from fairgap_utils.unlearn import retrain
    seen = {}

    def fake_train(model, x, y, cfg, seed, desc="", compile=False):
        seen.update(state={k: v.clone() for k, v in model.state_dict().items()}, x=x, y=y, cfg=cfg, seed=seed)
        return {"loss_per_epoch": [0.0], "train_time_s": 0.0}
    monkeypatch.setattr(retrain, "train_supervised", fake_train)
    s = synthetic_split
    cfg = TrainConfig(epochs=1, batch_size=50)
    ctx = Context(original=trained_original[0], train_config=cfg, arch="resnet_tiny", seed=2)
    run_method("retrain", trained_original[0], s, ctx, {"replicate": 3})
    assert seen["x"] is s.x_retain and seen["y"] is s.y_retain and seen["cfg"] is cfg
    assert seen["seed"] == training_seed(2, 3)
    seed_everything(training_seed(2, 3))
    fresh = create_model("resnet_tiny").state_dict()
    assert all(torch.equal(seen["state"][k], v) for k, v in fresh.items())        # from scratch, under its seed
    original = trained_original[0].state_dict()
    assert not torch.equal(seen["state"]["net.fc.weight"], original["net.fc.weight"])

