"""fairgap_utils.unlearn: every registered method forgets on an easy class-wise task.

The original (`trained_original`, conftest) is resnet_tiny trained on 10 stripe-pattern
classes; class 9 is forgotten. Each method runs with a few epochs and, where the official
default is meant for thousands of steps (BS lr 1e-5, GA lr 1e-4, SCRUB lr 5e-4), a larger
learning rate so that it acts in the handful of steps a test can afford.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch

from conftest import ORIGINAL_CONFIG
from fairgap_utils import data as D
from fairgap_utils.attacks import fgsm
from fairgap_utils.config import TrainConfig
from fairgap_utils.errors import FairgapError
from fairgap_utils.models import blocks, create_model, weight_layers
from fairgap_utils.train import accuracy
from fairgap_utils.unlearn import METHODS, Context, hyperparameters, run_method
from fairgap_utils.unlearn.bs import shrink_labels
from fairgap_utils.unlearn.common import init_seed, last_k, reinitialize
from fairgap_utils.unlearn.salun import saliency_mask

OVERRIDES = {   # chosen to pass with margin for several original seeds and 1e-6 weight perturbations
    "retrain": {},                                   # uses the Context's TrainConfig
    "ft": dict(epochs=3, lr=0.1, batch_size=25),
    "cf_k": dict(epochs=5, lr=0.5, batch_size=50, weight_decay=0.05),   # k = 1: the classifier only
    "eu_k": dict(epochs=3, lr=0.05, batch_size=50),
    "ga": dict(epochs=4, lr=0.01, batch_size=50),
    "rl": dict(epochs=3, lr=0.05, batch_size=50),
    "salun": dict(epochs=3, lr=0.05, batch_size=50),
    "scrub": dict(epochs=3, msteps=2, lr=0.02, batch_size=50),
    "bs": dict(epochs=10, lr=0.005, batch_size=25),
    "l1_sparse": dict(epochs=3, lr=0.1, batch_size=25),
    "keep_gap": dict(epochs=3, lr=0.05, batch_size=50),               # RL's, with the default penalty
}


def _overrides(name):
    if name in OVERRIDES:
        return OVERRIDES[name]
    defaults = METHODS[name].defaults                 # a method added later: a short run of its defaults
    return {"epochs": 3} if "epochs" in defaults else {}


@pytest.fixture(scope="module")
def ctx(trained_original):
    model, cfg, _, _ = trained_original
    return Context(original=model, train_config=cfg, arch="resnet_tiny", seed=0)


@pytest.fixture(scope="module")
def original_state(trained_original):
    return {k: v.clone() for k, v in trained_original[0].state_dict().items()}


@pytest.fixture(scope="module")
def runs(trained_original, synthetic_split, ctx):
    """run_method results, computed on first use and shared by the tests of this module."""
    cache = {}

    def get(name, overrides=None):
        ov = _overrides(name) if overrides is None else overrides
        key = (name, tuple(sorted(ov.items())))
        if key not in cache:
            cache[key] = run_method(name, trained_original[0], synthetic_split, ctx, ov)
        return cache[key]
    return get


def _acc(model, split):
    return {"forget": accuracy(model, split.x_forget, split.y_forget),
            "retain": accuracy(model, split.x_retain, split.y_retain),
            "test_remaining": accuracy(model, *split.test_remaining())}


def test_registry():
    assert set(METHODS) >= {"retrain", "ft", "cf_k", "eu_k", "ga", "rl", "salun", "scrub", "bs", "l1_sparse",
                            "keep_gap"}
    for name, m in METHODS.items():
        assert m.name == name and m.title and m.summary
        assert isinstance(m.defaults, dict)
        assert m.defaults is not m.module.DEFAULTS            # a copy: callers cannot corrupt the defaults
    assert METHODS["retrain"].exact and not METHODS["ft"].exact


@pytest.mark.parametrize("name", list(METHODS))
def test_method_forgets_the_class_and_keeps_the_rest(name, runs, trained_original, synthetic_split,
                                                     original_state):
    before = trained_original[2]
    model, stats = runs(name)
    after = _acc(model, synthetic_split)
    msg = f"{name}: before {before}, after {after}"
    assert after["forget"] <= before["forget"] - 50, msg
    assert after["retain"] >= before["retain"] - 15, msg
    assert after["test_remaining"] >= before["test_remaining"] - 20, msg
    # the original itself is never modified
    state = trained_original[0].state_dict()
    assert all(torch.equal(state[k], v) for k, v in original_state.items()), f"{name} modified the original"
    assert model is not trained_original[0]


@pytest.mark.parametrize("name", list(METHODS))
def test_stats_fields(name, runs):
    model, stats = runs(name)
    assert stats["method"] == name
    assert stats["hyperparameters"] == {**METHODS[name].defaults, **_overrides(name)}
    assert isinstance(stats["time_s"], float)          # its value: test_method_terms.py, with a fake clock
    total = sum(p.numel() for p in model.parameters())
    assert stats["total_params"] == total
    assert isinstance(stats["trainable_params"], int) and 0 < stats["trainable_params"] <= total
    assert stats["peak_memory_mb"] is None                       # CPU
    logs = stats["logs"]
    assert "trainable_params" not in logs
    losses = logs["loss_per_epoch"]
    epochs = ORIGINAL_CONFIG.epochs if name == "retrain" else stats["hyperparameters"].get("epochs")
    assert all(math.isfinite(v) for v in losses) and (epochs is None or len(losses) == epochs)
    # the returned model is ready to use: eval mode, every parameter trainable again
    assert not model.training and all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", ["ft", "ga", "rl", "scrub", "l1_sparse", "retrain", "bs", "keep_gap"])
def test_full_model_methods_train_every_parameter(name, runs):
    model, stats = runs(name)
    assert stats["trainable_params"] == stats["total_params"]


def test_bs_logs_and_labels(runs, trained_original, synthetic_split):
    model, stats = runs("bs")
    logs = stats["logs"]
    assert logs["label_flip_rate"] == pytest.approx(1 - logs["label_unchanged_rate"])
    hist = logs["new_label_histogram"]
    assert len(hist) == 10 and sum(hist) == len(synthetic_split.x_forget)
    # recompute the boundary labels independently: FGSM of size `bound` on the frozen original
    original = trained_original[0]
    x = D.to_float(synthetic_split.x_forget)
    neighbour = fgsm(original, x, synthetic_split.y_forget, stats["hyperparameters"]["bound"])
    with torch.no_grad():
        labels = original(neighbour).argmax(1)
    assert torch.equal(labels, shrink_labels(original, synthetic_split, stats["hyperparameters"]["bound"]))
    assert hist == torch.bincount(labels, minlength=10).tolist()
    assert logs["label_flip_rate"] == pytest.approx((labels != synthetic_split.y_forget).float().mean().item())
    assert logs["label_flip_rate"] > 0.5            # an undefended model: 0.1 crosses the boundary


def _changed(a: dict, b: dict):
    return {k for k in a if not torch.equal(a[k], b[k])}


# --------------------------------------------------------------------------- CF-k / EU-k

def _vit_names(block, *parts):
    return {f"encoder.layers.encoder_layer_{block}.{p}" for p in parts}


# exact parameter names (without the wrapper's "net.") CF-k trains for k = 1, 2, 3 (Goel et al.'s layer count)
CF_K_TRAINS = {
    "resnet18_w8": {1: {"fc.weight", "fc.bias"},
                    2: {"layer4.1.conv2.weight", "layer4.1.bn2.weight", "layer4.1.bn2.bias"},
                    3: {"layer4.1.conv1.weight", "layer4.1.bn1.weight", "layer4.1.bn1.bias"}},
    "vit_micro": {1: {"heads.head.weight", "heads.head.bias"},
                  2: _vit_names(1, "mlp.3.weight", "mlp.3.bias") | {"encoder.ln.weight", "encoder.ln.bias"},
                  3: _vit_names(1, "mlp.0.weight", "mlp.0.bias")},
}


def _expected_trainable(arch, k):
    return {f"net.{n}" for j in range(1, k + 1) for n in CF_K_TRAINS[arch][j]}


def _fresh(arch, seed=0):
    torch.manual_seed(seed)
    return create_model(arch).eval()


@pytest.mark.parametrize("arch", list(CF_K_TRAINS))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_cf_k_trains_the_last_k_layers_and_the_norms_between(arch, k, synthetic_split):
    """frozen_mode="eval": exactly the expected parameters move; BatchNorm statistics only inside them."""
    original = _fresh(arch)
    ctx = Context(original=original, train_config=ORIGINAL_CONFIG, arch=arch, seed=0)
    model, stats = run_method("cf_k", original, synthetic_split, ctx,
                              {"k": k, "epochs": 1, "batch_size": 100, "lr": 0.05, "frozen_mode": "eval"})
    expected = _expected_trainable(arch, k)
    params = dict(original.named_parameters())
    assert stats["trainable_params"] == sum(params[n].numel() for n in expected)
    changed = _changed(model.state_dict(), original.state_dict())
    assert {n for n in changed if n in params} == expected
    trained_bns = {n.rsplit(".", 1)[0] for n in expected if ".bn" in n}
    assert {n for n in changed if n not in params} == {f"{bn}.{b}" for bn in trained_bns
                                                       for b in ("running_mean", "running_var", "num_batches_tracked")}
    assert stats["logs"]["units_total"] == len(weight_layers(original))
    assert len(stats["logs"]["units_trained"]) == k


def test_cf_k_default_train_mode_re_estimates_frozen_batchnorm_statistics(synthetic_split, trained_original, ctx):
    """frozen_mode="train" (Goel et al.'s code): frozen weights fixed, every BatchNorm's statistics follow D_r."""
    original = trained_original[0]
    assert METHODS["cf_k"].defaults["frozen_mode"] == "train"
    model, _ = run_method("cf_k", original, synthetic_split, ctx, {"k": 1, "epochs": 1, "batch_size": 50})
    params = dict(original.named_parameters())
    changed = _changed(model.state_dict(), original.state_dict())
    assert {n for n in changed if n in params} == {"net.fc.weight", "net.fc.bias"}
    running = {n for n in original.state_dict() if "running_" in n}
    assert running and running <= changed                       # the frozen layers' statistics moved


def test_cf_k_by_block_keeps_the_old_count(runs, trained_original):
    model, stats = runs("cf_k", dict(OVERRIDES["cf_k"], k=2, epochs=1, unit="block", frozen_mode="eval"))
    units = blocks(trained_original[0])
    assert stats["logs"]["units_total"] == 6
    assert stats["trainable_params"] == sum(p.numel() for u in units[-2:] for p in u.parameters())
    changed = _changed(model.state_dict(), trained_original[0].state_dict())
    assert changed and all(k.startswith(("net.fc.", "net.layer4.")) for k in changed)
    assert any(k.startswith("net.layer4.") and "running_mean" in k for k in changed)   # its BatchNorms train


def test_cf_k_with_all_layers_trains_every_vit_parameter(synthetic_split):
    vit = _fresh("vit_micro")
    ctx = Context(original=vit, train_config=ORIGINAL_CONFIG, arch="vit_micro", seed=0)
    for unit, k in (("layer", 10), ("block", 4)):
        _, stats = run_method("cf_k", vit, synthetic_split, ctx, {"k": k, "unit": unit, "epochs": 1, "batch_size": 250})
        assert stats["trainable_params"] == stats["total_params"]


@pytest.mark.parametrize("arch, k", [("resnet18_w8", 3), ("vit_micro", 1), ("vit_micro", 10), ("resnet_tiny", 13)])
def test_eu_k_reinitializes_with_the_models_own_init(arch, k, synthetic_split):
    """With 0 epochs, EU-k's model is the original with the last k layers of a fresh model built under init_seed."""
    original = _fresh(arch)
    ctx = Context(original=original, train_config=ORIGINAL_CONFIG, arch=arch, seed=3)
    model, _ = run_method("eu_k", original, synthetic_split, ctx, {"k": k, "epochs": 0})
    torch.manual_seed(init_seed(3))
    fresh = create_model(arch).state_dict()
    sel = last_k(original, k)
    reinit = set(sel.reinit)
    module_name = {id(m): n for n, m in original.named_modules()}
    assert reinit == {f"{module_name[id(m)]}.{p}" for _, m in weight_layers(original)[-k:]
                      for p, _ in m.named_parameters(recurse=False)} | (
        {"net.class_token", "net.encoder.pos_embedding"} if arch.startswith("vit") and k == 10 else set())
    state, before = model.state_dict(), original.state_dict()
    for key, value in state.items():
        assert torch.equal(value, fresh[key] if key in reinit else before[key]), key
    if arch.startswith("vit"):
        assert not state["net.heads.head.weight"].any()                    # torchvision's zero-initialised head
    else:   # kaiming normal, fan-out: std sqrt(2 / fan_out) of the re-initialized convs
        conv = f"net.{weight_layers(original)[-2][0]}.weight"
        w = state[conv]
        assert w.std().item() == pytest.approx((2 / (w.shape[0] * w.shape[2] * w.shape[3])) ** 0.5, rel=0.1)
        assert not torch.equal(w, before[conv])


def test_eu_k_re_initialization_leaves_the_global_random_state_alone(trained_original, synthetic_split, ctx):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_method("eu_k", trained_original[0], synthetic_split, ctx, {"epochs": 0})
    assert torch.equal(torch.rand(3), expected)


def test_eu_k_with_the_default_budget_trains_the_head(runs, trained_original):
    model, stats = runs("eu_k")
    assert stats["trainable_params"] == 650
    params = dict(trained_original[0].named_parameters())
    changed = _changed(model.state_dict(), trained_original[0].state_dict())
    assert {n for n in changed if n in params} == {"net.fc.weight", "net.fc.bias"}
    run = stats["logs"]["training_run"]
    assert METHODS["eu_k"].defaults["budget"] == "salun"
    assert run["epochs"] == OVERRIDES["eu_k"]["epochs"] and run["lr"] == OVERRIDES["eu_k"]["lr"]


@pytest.fixture
def captured_fit(monkeypatch):
    """Replace the unlearning fine-tune's training loop by a recorder: no training, the arguments kept."""
    from fairgap_utils.unlearn import common
    calls = []

    def fake_fit(model, epochs, epoch_batches, loss_fn, optimizer, scheduler=None, frozen=(), after_step=None,
                 desc="", compile=False):
        calls.append(dict(model=model, epochs=epochs, batches=epoch_batches, optimizer=optimizer,
                          scheduler=scheduler, frozen=list(frozen)))
        return [0.0] * epochs
    monkeypatch.setattr(common, "fit", fake_fit)
    return calls


def test_eu_k_with_the_original_budget_trains_as_long_as_the_original(captured_fit, trained_original, synthetic_split):
    cfg = TrainConfig(epochs=4, batch_size=64, lr=0.3, weight_decay=1e-3, schedule="cosine", label_smoothing=0.1)
    ctx = Context(original=trained_original[0], train_config=cfg, arch="resnet_tiny", seed=0)
    _, stats = run_method("eu_k", trained_original[0], synthetic_split, ctx, {"budget": "original", "epochs": 2})
    (call,) = captured_fit
    assert call["epochs"] == 4 and len(stats["logs"]["loss_per_epoch"]) == 4
    group = call["optimizer"].param_groups[0]
    assert isinstance(call["optimizer"], torch.optim.SGD) and group["weight_decay"] == 1e-3
    assert group["nesterov"] is False
    assert isinstance(call["scheduler"], torch.optim.lr_scheduler.CosineAnnealingLR)
    assert call["scheduler"].base_lrs == [0.3]
    assert [len(x) for x, _ in call["batches"](0)] == [64] * 7 + [450 - 7 * 64]
    assert stats["logs"]["training_run"] == dict(epochs=4, lr=0.3, batch_size=64, weight_decay=1e-3,
                                                 schedule="cosine", optimizer="sgd", augment=True,
                                                 label_smoothing=0.1)
    _, stats = run_method("eu_k", trained_original[0], synthetic_split, ctx, {"epochs": 2})
    assert captured_fit[1]["epochs"] == 2 and captured_fit[1]["scheduler"] is None        # "salun": constant lr


@pytest.mark.parametrize("name", [n for n, m in METHODS.items() if not m.exact])
def test_unlearning_optimizers_use_plain_momentum(name, captured_fit, trained_original, synthetic_split, ctx):
    _, stats = run_method(name, trained_original[0], synthetic_split, ctx, {"epochs": 1})
    assert captured_fit, f"{name} did not train through sgd_finetune"
    for call in captured_fit:
        group = call["optimizer"].param_groups[0]
        assert isinstance(call["optimizer"], torch.optim.SGD)
        assert group["nesterov"] is False and group["momentum"] == stats["hyperparameters"]["momentum"] == 0.9


def test_retrain_keeps_nesterov(monkeypatch, trained_original, synthetic_split, ctx):
    """The original's and Retrain's training (TrainConfig) keeps its Nesterov momentum."""
    from fairgap_utils import train
    seen = []
    monkeypatch.setattr(train, "fit",
                        lambda model, epochs, b, loss_fn, optimizer, *a, **kw: seen.append(optimizer) or [0.0])
    run_method("retrain", trained_original[0], synthetic_split, ctx)
    assert seen and seen[0].param_groups[0]["nesterov"] is True


@pytest.mark.parametrize("name", ["cf_k", "eu_k"])
def test_k_out_of_range(name, trained_original, synthetic_split, ctx):
    with pytest.raises(FairgapError, match=r"k=14 is out of range; this model has 13 weight layers \(1-13\)"):
        run_method(name, trained_original[0], synthetic_split, ctx, {"k": 14, "epochs": 1})
    with pytest.raises(FairgapError, match=r"k=7 is out of range; this model has 6 blocks \(1-6\)"):
        run_method(name, trained_original[0], synthetic_split, ctx, {"k": 7, "unit": "block", "epochs": 1})
    with pytest.raises(FairgapError, match=r"k=0 is out of range; this model has 13 weight layers \(1-13\)"):
        run_method(name, trained_original[0], synthetic_split, ctx, {"k": 0, "epochs": 1})


def test_eu_k_refuses_a_fresh_model_whose_layer_has_another_shape():
    """`reinitialize` copies a fresh model's layers only where the shapes match: a head of 20 classes into one of
    10 (larger) or of 5 (smaller) is the wrong architecture, said in one line, not a copy error."""
    model = create_model("resnet_tiny", 10)
    head = [n for n, _ in model.named_parameters()][-2]
    for classes in (20, 5):
        with pytest.raises(ValueError, match="the freshly built model has no"):
            reinitialize(model, create_model("resnet_tiny", classes), [head])


@pytest.mark.parametrize("name, key, value, choices", [
    ("cf_k", "unit", "neuron", "layer, block"), ("eu_k", "frozen_mode", "frozen", "train, eval"),
    ("eu_k", "budget", "forever", "salun, original")])
def test_cf_eu_bad_options(name, key, value, choices, trained_original, synthetic_split, ctx):
    with pytest.raises(FairgapError) as e:
        run_method(name, trained_original[0], synthetic_split, ctx, {key: value, "epochs": 1})
    msg = str(e.value)
    assert repr(value) in msg and choices in msg and "\n" not in msg


def test_salun_mask_ratio_and_frozen_weights(trained_original, synthetic_split, ctx):
    """Weights outside the saliency mask stay bit-identical, even with momentum and weight decay."""
    ratio = 0.3
    overrides = dict(OVERRIDES["salun"], mask_ratio=ratio, momentum=0.9, weight_decay=5e-3, epochs=2)
    original = trained_original[0]
    mask = saliency_mask(copy.deepcopy(original), synthetic_split, ratio, overrides["batch_size"])
    model, stats = run_method("salun", original, synthetic_split, ctx, overrides)
    total = sum(m.numel() for m in mask.values())
    kept = sum(int(m.sum()) for m in mask.values())
    assert set(mask) == {n for n, _ in original.named_parameters()}
    assert stats["logs"]["mask_ratio_realized"] == pytest.approx(kept / total)
    assert stats["logs"]["mask_ratio_realized"] == pytest.approx(ratio, abs=0.01)
    assert stats["trainable_params"] == kept
    orig = dict(original.named_parameters())
    moved_inside = 0
    for n, p in model.named_parameters():
        m = mask[n]
        assert torch.equal(p[~m], orig[n][~m]), f"{n}: a weight outside the mask moved"
        moved_inside += int((p[m] != orig[n][m]).sum())
    assert moved_inside > 0.5 * kept                     # and the masked weights did train
    shares = stats["logs"]["mask_share_per_parameter"]
    assert shares == pytest.approx({n: float(m.float().mean()) for n, m in mask.items()})   # each parameter's share


def test_salun_mask_is_the_top_fraction_of_forget_gradients(trained_original, synthetic_split):
    model = copy.deepcopy(trained_original[0])
    mask = saliency_mask(model, synthetic_split, 0.5, 50)
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(D.to_float(synthetic_split.x_forget)), synthetic_split.y_forget,
                                             reduction="sum")
    loss.backward()
    g = torch.cat([p.grad.abs().flatten() for p in model.parameters()])
    m = torch.cat([mask[n].flatten() for n, _ in model.named_parameters()])
    assert g[m].min() >= g[~m].max() * (1 - 1e-4)
    assert 0.49 < m.float().mean() < 0.51
    # computing the mask leaves no gradients behind
    fresh = copy.deepcopy(trained_original[0])
    fresh.zero_grad(set_to_none=True)
    saliency_mask(fresh, synthetic_split, 0.5, 50)
    assert all(p.grad is None for p in fresh.parameters())


@pytest.mark.parametrize("ratio", [0.0, 1.5])
def test_salun_bad_mask_ratio(ratio, trained_original, synthetic_split, ctx):
    with pytest.raises(FairgapError, match="mask_ratio"):
        run_method("salun", trained_original[0], synthetic_split, ctx, {"mask_ratio": ratio, "epochs": 1})


def test_scrub_max_and_min_steps(runs, synthetic_split):
    model, stats = runs("scrub")
    hp = stats["hyperparameters"]
    n_forget_batches = -(-len(synthetic_split.x_forget) // hp["forget_batch_size"])
    n_retain_batches = -(-len(synthetic_split.x_retain) // hp["batch_size"])
    logs = stats["logs"]
    assert len(logs["max_loss"]) == hp["msteps"] * n_forget_batches
    assert len(logs["min_loss"]) == hp["epochs"] * n_retain_batches
    assert all(v <= 1e-6 for v in logs["max_loss"])       # max-steps minimize -KL
    assert all(v >= 0 for v in logs["min_loss"])


def test_scrub_batches_are_not_augmented_and_forget_batches_have_their_own_size(captured_fit, trained_original,
                                                                                 synthetic_split, ctx):
    assert METHODS["scrub"].defaults["forget_batch_size"] == 512 and METHODS["scrub"].defaults["batch_size"] == 256
    run_method("scrub", trained_original[0], synthetic_split, ctx,
               {"epochs": 2, "msteps": 1, "batch_size": 100, "forget_batch_size": 20})
    (call,) = captured_fit
    s = synthetic_split
    sizes = [[len(x) for x, _ in call["batches"](e)] for e in range(2)]
    assert sizes == [[20, 20, 10] + [100] * 4 + [50], [100] * 4 + [50]]     # max-steps in epoch 0 only
    images = {bytes(D.to_float(img).numpy()) for img in torch.cat([s.x_forget, s.x_retain])}
    for x, _ in call["batches"](0):
        assert all(bytes(img.numpy()) in images for img in x)          # every image as stored: no crop, no flip


def test_run_method_is_deterministic(trained_original, synthetic_split, ctx):
    a, _ = run_method("rl", trained_original[0], synthetic_split, ctx, dict(OVERRIDES["rl"], epochs=1))
    b, _ = run_method("rl", trained_original[0], synthetic_split, ctx, dict(OVERRIDES["rl"], epochs=1))
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_unknown_method(trained_original, synthetic_split, ctx):
    with pytest.raises(FairgapError) as e:
        run_method("unlearn_everything", trained_original[0], synthetic_split, ctx)
    msg = str(e.value)
    assert "'unlearn_everything'" in msg and "\n" not in msg
    assert all(m in msg for m in METHODS)


def test_unknown_hyperparameter(trained_original, synthetic_split, ctx):
    with pytest.raises(FairgapError) as e:
        run_method("ga", trained_original[0], synthetic_split, ctx, {"learning_rate": 0.1})
    msg = str(e.value)
    assert "'learning_rate'" in msg and "\n" not in msg
    assert all(k in msg for k in METHODS["ga"].defaults)
    with pytest.raises(FairgapError, match="'k'"):
        hyperparameters("retrain", {"k": 1})


def test_hyperparameters_merge_without_touching_defaults():
    hp = hyperparameters("bs", {"lr": 0.5})
    assert hp["lr"] == 0.5 and hp["bound"] == METHODS["bs"].defaults["bound"]
    assert METHODS["bs"].defaults["lr"] == 1e-5


@pytest.mark.parametrize("frozen_mode", ["train", "eval"])
def test_eu_k_frozen_mode_decides_whether_frozen_batchnorm_statistics_move(frozen_mode, synthetic_split,
                                                                           trained_original, ctx):
    """EU-k at k = 1 re-initializes and trains the classifier only: its frozen BatchNorms' statistics follow D_r
    in "train" mode (Goel et al.'s code, the default) and stay the original's in "eval" mode."""
    original = trained_original[0]
    assert METHODS["eu_k"].defaults["frozen_mode"] == "train"
    model, _ = run_method("eu_k", original, synthetic_split, ctx,
                          {"k": 1, "epochs": 1, "batch_size": 50, "frozen_mode": frozen_mode})
    params = dict(original.named_parameters())
    changed = _changed(model.state_dict(), original.state_dict())
    assert {n for n in changed if n in params} == {"net.fc.weight", "net.fc.bias"}
    running = {n for n in original.state_dict() if "running_" in n}
    assert running
    assert (running <= changed) if frozen_mode == "train" else not (running & changed)


def test_eu_k_budgets_train_as_declared():
    """"salun": the method's own hyperparameters, with augmentation and no label smoothing (as every other
    method here); "original": the original's training recipe."""
    import dataclasses

    from fairgap_utils.unlearn.eu_k import training_run
    hp = dict(METHODS["eu_k"].defaults, epochs=7, lr=0.05)
    cfg = dataclasses.replace(ORIGINAL_CONFIG, label_smoothing=0.1, augment=False)
    run, augment, smoothing = training_run(dict(hp, budget="salun"), cfg)
    assert (run["epochs"], run["lr"], augment, smoothing) == (7, 0.05, True, 0.0)
    run, augment, smoothing = training_run(dict(hp, budget="original"), cfg)
    assert (run["epochs"], run["lr"], augment, smoothing) == (cfg.epochs, cfg.lr, False, 0.1)
