"""The public API of `fairgap_utils`: every listed name, a method registered from this test
module (run, computed through `compute`, read back), and torchvision models measured
without the package's input-normalization wrapper.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

import fairgap_utils as fg
from fairgap_utils.registries import check_profile, method_overrides, methods_of
from conftest import REPO, write_pattern_npz
from fairgap_utils.book import pages, report, runner
from fairgap_utils.fairness import class_sigmas
from fairgap_utils import metrics as M
from fairgap_utils.metrics import unlearning_metrics
from fairgap_utils.train import accuracy
from fairgap_utils.unlearn import BUILT_IN, check_profiles, hyperparameters, run_method, unregister_method

NAME = "uniform_forget"


def uniform_forget(model, split, hp, ctx):
    """Fine-tune on D_r while pushing the predictions on D_f towards uniform (maximum entropy)."""
    opt = torch.optim.SGD(model.parameters(), lr=hp["lr"], momentum=0.9)
    gen = torch.Generator().manual_seed(ctx.seed)
    losses = []
    for _ in range(hp["epochs"]):
        model.train()
        forget = itertools.cycle(list(fg.batches(split.x_forget, split.y_forget, hp["batch_size"], True,
                                                 generator=gen)))
        total, n = 0.0, 0
        for x, y in fg.batches(split.x_retain, split.y_retain, hp["batch_size"], True, generator=gen):
            xf, _ = next(forget)
            logits = model(torch.cat([x, xf]))
            logp = F.log_softmax(logits[len(x):], 1)
            loss = F.cross_entropy(logits[:len(x)], y) + hp["beta"] * (logp.exp() * logp).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(x), n + len(x)
        losses.append(total / n)
    model.eval()
    return model, {"loss_per_epoch": losses}


DEFAULTS = dict(epochs=3, lr=0.05, batch_size=50, beta=1.0)


@pytest.fixture
def registered():
    """The method above, registered for one test and removed afterwards."""
    method = fg.register_method(NAME, uniform_forget, DEFAULTS, title="Uniform on D_f")
    yield method
    if NAME in fg.METHODS:
        unregister_method(NAME)


# --------------------------------------------------------------------------- the surface

def test_public_names_are_listed_documented_and_resolve():
    documented = fg.__doc__
    for name in fg.__all__:
        assert name in documented, f"{name} is public but not in the package docstring"
        assert getattr(fg, name) is not None
    assert {"register_method", "fairness_gap", "measure", "get_profile", "make_split", "create_model",
            "compute", "load_records", "FairgapError"} <= set(fg.__all__)
    with pytest.raises(AttributeError):
        fg.not_a_public_name  # noqa: B018


def test_importing_the_package_is_light():
    code = ("import sys, fairgap_utils as fg; assert 'torch' not in sys.modules; "
            "[getattr(fg, n) for n in fg.__all__]; "
            "print(sorted(m for m in sys.modules if m.startswith(('fairgap_utils.book', 'pandas', 'matplotlib'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- register_method

def test_registered_method_is_treated_like_a_built_in(registered, trained_original, synthetic_split):
    assert fg.METHODS[NAME] is registered and registered.registered and not fg.METHODS["ft"].registered
    assert registered.title == "Uniform on D_f" and registered.summary.startswith("Fine-tune on D_r")
    assert registered.defaults == DEFAULTS and registered.defaults is not DEFAULTS
    assert hyperparameters(NAME, {"beta": 2.0}) == {**DEFAULTS, "beta": 2.0}
    p = fg.get_profile("smoke", methods=("retrain", NAME), method_overrides={NAME: {"epochs": 1}})
    assert NAME in p.methods
    with pytest.raises(fg.FairgapError, match=f"hyperparameter of {NAME} 'learning_rate'"):
        check_profile(fg.get_profile("smoke", method_overrides={NAME: {"learning_rate": 1}}))   # where names enter
    assert NAME in runner.page_methods()
    assert ("02_unlearning_method.ipynb", f"book/methods/{NAME}.ipynb", {"method": NAME}) in runner.notebook_plan()
    # the registry-wide criteria of test_unlearn: forgets the class, keeps the rest, leaves the original alone
    original = trained_original[0]
    before_state = {k: v.clone() for k, v in original.state_dict().items()}
    model, stats = run_method(NAME, original, synthetic_split, fg.Context(original, None, "resnet_tiny", 0), {})
    s, before = synthetic_split, trained_original[2]
    assert accuracy(model, s.x_forget, s.y_forget) <= before["forget"] - 50
    assert accuracy(model, s.x_retain, s.y_retain) >= before["retain"] - 15
    assert accuracy(model, *s.test_remaining()) >= before["test_remaining"] - 20
    assert all(torch.equal(original.state_dict()[k], v) for k, v in before_state.items())
    assert (stats["method"] == NAME and stats["hyperparameters"] == DEFAULTS
            and len(stats["logs"]["loss_per_epoch"]) == 3)


def _one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_registration_errors(registered):
    with pytest.raises(fg.FairgapError) as e:
        fg.register_method(NAME, uniform_forget, DEFAULTS)
    _one_line(e, f"{NAME!r} is already registered", "replace=True")
    for built_in in ("ft", "retrain"):
        with pytest.raises(fg.FairgapError) as e:
            fg.register_method(built_in, uniform_forget, DEFAULTS, replace=True)
        _one_line(e, "a built-in method")
    for bad in ("my-method", "2fast", "", "original", None):
        with pytest.raises(fg.FairgapError) as e:
            fg.register_method(bad, uniform_forget, DEFAULTS)
        _one_line(e, "method name", "letters, digits and underscores")
    with pytest.raises(fg.FairgapError) as e:
        fg.register_method("two_args", lambda model, split: (model, {}), {})
    _one_line(e, "(model, split)", "expected (model, split, hp, ctx)")
    with pytest.raises(fg.FairgapError) as e:
        fg.register_method("not_callable", "uniform_forget", {})
    _one_line(e, "must be a function")
    with pytest.raises(fg.FairgapError) as e:
        fg.register_method("bad_defaults", uniform_forget, [("lr", 0.1)])
    _one_line(e, "defaults", "must be a dict")
    with pytest.raises(fg.FairgapError) as e:
        fg.register_method("bad_values", uniform_forget, {"lr": object()})
    _one_line(e, "JSON values")
    with pytest.raises(fg.FairgapError) as e:
        fg.register_method("bad_title", uniform_forget, {}, title="  ")
    _one_line(e, "title")
    assert set(fg.METHODS) == BUILT_IN | {NAME}          # nothing half-registered
    with pytest.raises(fg.FairgapError) as e:
        unregister_method("ft")
    _one_line(e, "'ft'", NAME)


def test_replace_and_a_method_returning_the_wrong_thing(registered, trained_original, synthetic_split):
    fg.register_method(NAME, lambda model, split, hp, ctx: model, {}, replace=True)
    ctx = fg.Context(trained_original[0], None, "resnet_tiny", 0)
    with pytest.raises(fg.FairgapError) as e:
        run_method(NAME, trained_original[0], synthetic_split, ctx)
    _one_line(e, NAME, "returned Normalized", "(model, logs dict)")


def test_a_method_says_which_profiles_run_it_and_with_what(registered):
    """Everything about a method is in its module or its registration: the profiles that run it (PROFILES),
    each with what it changes of its defaults there; the profile adds its own overrides on top."""
    smoke, cpu = fg.get_profile("smoke"), fg.get_profile("cpu")
    assert registered.profiles == {"smoke": {}, "cpu": {}, "paper": {}}     # default: every profile, at its defaults
    assert NAME in methods_of(smoke) and methods_of(smoke)[:2] == ("retrain", "ft")   # registry order
    assert method_overrides(cpu, "bs") == fg.METHODS["bs"].profiles["cpu"] == {"epochs": 5, "lr": 1e-3,
                                                                                "batch_size": 32}
    assert method_overrides(cpu.replace(method_overrides={"bs": {"lr": 0.1}}), "bs")["lr"] == 0.1
    assert method_overrides(fg.get_profile("paper"), "bs") == {}
    fg.register_method(NAME, uniform_forget, DEFAULTS, replace=True, profiles={"cpu": {"epochs": 1}})
    assert NAME in methods_of(cpu) and NAME not in methods_of(smoke)
    assert method_overrides(cpu, NAME) == {"epochs": 1} and method_overrides(smoke, NAME) == {}
    assert NAME in methods_of(smoke.replace(methods=("retrain", NAME)))   # a profile may still name it
    for bad, words in (({"laptop": {}}, ("'laptop'", "smoke, cpu, paper")), ({"cpu": {"learning_rate": 1}},
                       ("'learning_rate'", "epochs")), (["cpu"], ("must be a dict",))):
        with pytest.raises(fg.FairgapError) as e:
            fg.register_method(NAME, uniform_forget, DEFAULTS, replace=True, profiles=bad)
        _one_line(e, *words)


def test_every_built_in_method_declares_known_profiles_and_hyperparameters():
    for name in BUILT_IN:
        entry = fg.METHODS[name]
        check_profiles(name, entry.module.PROFILES, entry.defaults)        # one FairgapError line otherwise
        assert set(entry.profiles) == {"smoke", "cpu", "paper"}, name        # every profile runs every method
        assert entry.profiles["paper"] == {}, name                            # the paper profile: the defaults
        assert all(hp.get("epochs", 1) >= 1 and hp.get("lr", 1) > 0 for hp in entry.profiles.values()), name


# --------------------------------------------------------------------------- compute, load_records, original_model

@pytest.fixture(scope="module")
def pattern_data(tmp_path_factory):
    """The smoke profile's image counts (67 train / 30 test per class) of the synthetic pattern task."""
    return write_pattern_npz(tmp_path_factory.mktemp("patterns") / "cifar10.npz", 67, 30)


def test_registered_method_through_compute(registered, pattern_data, tmp_path):
    profile = fg.get_profile("smoke", retrain_replicates=0)  # no noise-floor replicates in this slice
    args = dict(archs=["resnet_tiny"], seeds=[0], scenarios=["class"], methods=["retrain", NAME],
                results=tmp_path / "results", cache=tmp_path / "cache", data_path=str(pattern_data), device="cpu")
    files = fg.compute(profile, **args)
    assert [f.name for f in files] == ["original.json", "retrain.json", f"{NAME}.json"]
    records = fg.load_records("smoke", tmp_path / "results")
    mine = next(r for r in records if r["label"] == NAME)
    assert mine["method"] == NAME and mine["title"] == "Uniform on D_f"
    assert mine["stats"]["hyperparameters"] == DEFAULTS and len(mine["stats"]["logs"]["loss_per_epoch"]) == 3
    assert mine["metrics"]["UA"] > 50                     # it forgot (the pattern task's forget class)
    frame = report.metrics_frame(records).set_index("label")
    assert np.isfinite(frame.loc[NAME, "avg_gap"]) and frame.loc["retrain", "avg_gap"] == 0
    # a rerun reuses every file; an edited method (same name, new code) is recomputed
    stamps = {f: f.stat().st_mtime_ns for f in files}
    assert fg.compute(profile, **args) == files and all(f.stat().st_mtime_ns == t for f, t in stamps.items())

    def uniform_forget_v2(model, split, hp, ctx):
        """Version 2: the same, with a different body."""
        return uniform_forget(model, split, dict(hp, epochs=1), ctx)
    fg.register_method(NAME, uniform_forget_v2, DEFAULTS, title="Uniform on D_f", replace=True)
    fg.compute(profile, **args)
    changed = [f.name for f in files if f.stat().st_mtime_ns != stamps[f]]
    assert changed == [f"{NAME}.json"]
    assert len(json.loads(files[2].read_text())["stats"]["logs"]["loss_per_epoch"]) == 1
    # a kernel that never registered the method still renders its book page from the result files
    unregister_method(NAME)
    title, summary, hp = pages.method_facts(NAME, fg.load_records("smoke", tmp_path / "results"))
    assert title == "Uniform on D_f" and hp == DEFAULTS and "register_method" in summary

    # original_model is the very model compute unlearned from: same checkpoint, same measurements
    model = fg.original_model(profile, "resnet_tiny", 0, data_path=str(pattern_data), cache=tmp_path / "cache",
                              device="cpu")
    assert len(list((tmp_path / "cache" / "checkpoints").glob("*.pt"))) == 2     # original + Retrain, no retraining
    split = fg.make_split("smoke", 0, "class", path=str(pattern_data))
    measured = fg.measure(model, split, profile)
    stored = next(r for r in records if r["label"] == "original")
    assert {k: measured[k] for k in ("UA", "RA", "TA", "MIA")} == pytest.approx(
        {k: stored["metrics"][k] for k in ("UA", "RA", "TA", "MIA")})
    assert measured["fgsm"] == pytest.approx({round(float(e) * 255, 3): a
                                              for e, a in stored["attacks"]["fgsm"].items()})


def test_load_records_without_results(tmp_path):
    with pytest.raises(fg.FairgapError) as e:
        fg.load_records("cpu", tmp_path)
    _one_line(e, "no results for profile 'cpu'", "compute --profile cpu")


def test_make_split_takes_a_profile_or_its_name(pattern_data):
    a = fg.make_split("smoke", 0, path=str(pattern_data))
    b = fg.make_split(fg.get_profile("smoke"), 0, path=str(pattern_data))
    assert isinstance(a, fg.Split) and torch.equal(a.x_retain, b.x_retain) and a.x_retain.dtype == torch.uint8
    with pytest.raises(fg.FairgapError, match="unknown profile 'smok'"):
        fg.make_split("smok", 0, path=str(pattern_data))


def test_create_model_and_normalized():
    torch.manual_seed(0)
    model = fg.create_model("resnet_tiny", num_classes=4)
    assert isinstance(model, fg.Normalized) and model.net.fc.out_features == 4
    net = torchvision.models.resnet18(num_classes=3).eval()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    x = torch.rand(2, 3, 32, 32)
    expected = net((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    assert torch.allclose(fg.Normalized(net, mean, std)(x), expected)
    with pytest.raises(fg.FairgapError, match="unknown architecture 'resnet19'"):
        fg.create_model("resnet19")


# --------------------------------------------------------------------------- fairness_gap on any model

def _images(n_per_class=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(10).repeat_interleave(n_per_class)
    x = torch.randint(0, 256, (len(y), 3, 32, 32), dtype=torch.uint8, generator=g)
    x[:, 0] = (x[:, 0].float() * (0.3 + y.float()[:, None, None] / 15)).clamp(0, 255).to(torch.uint8)  # classes differ
    return x, y


@pytest.fixture(scope="module")
def torchvision_resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


def test_fairness_gap_of_a_plain_torchvision_resnet(torchvision_resnet):
    model, (x, y) = torchvision_resnet, _images()
    rows = fg.fairness_gap(model, x, y)
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert [r["layer"] for r in rows] == bns and bns[:2] == ["bn1", "layer1.0.bn1"]   # torchvision's own names
    assert [r["depth"] for r in rows] == list(range(len(bns))) and {r["kind"] for r in rows} == {"BatchNorm2d"}
    for r in rows:
        assert len(r["sigma"]) == 10 and r["epsilon"] == pytest.approx(max(r["sigma"]) - min(r["sigma"]))
    assert rows[0]["epsilon"] > 0
    # the same numbers as the package's streaming statistics on the same [0, 1] images
    assert [r["sigma"] for r in rows] == [L["sigma"]["channel"] for L in class_sigmas(model, x, y, 10)]
    # uint8 and the same images as floats in [0, 1] agree; floats are never divided again
    assert fg.fairness_gap(model, x.float() / 255, y) == rows
    # floats outside [0, 1] (normalized as the model's own recipe wants) are taken too
    mean, std = (torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                 torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    normalized = fg.fairness_gap(model, (x / 255 - mean) / std, y)
    assert len(normalized) == len(rows) and normalized[0]["sigma"] != rows[0]["sigma"]
    retained = fg.fairness_gap(model, x, y, class_set="retained", forget_class=9)
    assert retained[3]["epsilon"] == pytest.approx(max(rows[3]["sigma"][:9]) - min(rows[3]["sigma"][:9]))
    pooled = fg.fairness_gap(model, x.numpy(), y.numpy(), definition="pooled")     # NumPy arrays are taken too
    assert pooled[0]["sigma"] != rows[0]["sigma"]


def test_fairness_gap_of_layer_and_group_norm_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.LayerNorm(32), nn.Linear(32, 3)).train()
    x, y = torch.rand(30, 3, 16, 16), torch.arange(30) % 3
    rows = fg.fairness_gap(model, x, y)
    assert [(r["layer"], r["kind"]) for r in rows] == [("1", "GroupNorm"), ("5", "LayerNorm")]
    assert model.training                                     # its mode is restored
    with torch.no_grad():
        h = model[1](model[0](x)).double()
        flat = model[5](model[4](model[3](model[2](h.float())))).double()
    for c in range(3):
        assert rows[0]["sigma"][c] == pytest.approx(h[y == c].var((0, 2, 3), unbiased=False).mean().item(), rel=1e-4)
        assert rows[1]["sigma"][c] == pytest.approx(flat[y == c].var(0, unbiased=False).mean().item(), rel=1e-4)


def test_fairness_gap_passes_floats_to_the_model_unchanged():
    """A first BatchNorm with fresh running statistics is x / sqrt(1 + 1e-5): its sigma is the input's."""
    model = nn.Sequential(nn.BatchNorm2d(3, affine=False), nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, 8, 8, generator=g) * 2 - 1, torch.arange(40) % 4
    rows = fg.fairness_gap(model, x, y)
    for c in range(4):
        expected = x[y == c].double().var((0, 2, 3), unbiased=False).mean().item() / (1 + 1e-5)
        assert rows[0]["sigma"][c] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("case, args, words", [
    ("no norm layer", (nn.Linear(3, 3),), ["Linear has no BatchNorm, LayerNorm or GroupNorm"]),
    ("NHWC", ("x_nhwc",), ["(40, 32, 32, 3)", "channels-last"]),
    ("int64 images", ("x_long",), ["torch.int64", "uint8"]),
    ("labels too large", ("y_big",), ["labels span 3..12", "0..9"]),
    ("float labels", ("y_float",), ["torch.float32", "integer class indices"]),
    ("unknown definition", ("def",), ["'variance'", "channel, pooled, sample"]),
    ("not a model", ("not_model",), ["str", "torch.nn.Module"]),
])
def test_fairness_gap_refuses_bad_input_in_one_line(case, args, words, torchvision_resnet):
    x, y = _images()
    call = dict(model=torchvision_resnet, x=x, y=y)
    kind = args[0]
    if isinstance(kind, nn.Module):
        call["model"] = kind
    elif kind == "x_nhwc":
        call["x"] = x.permute(0, 2, 3, 1)
    elif kind == "x_long":
        call["x"] = x.long()
    elif kind == "y_big":
        call["y"], call["num_classes"] = y + 3, 10
    elif kind == "y_float":
        call["y"] = y.float()
    elif kind == "def":
        call["definition"] = "variance"
    elif kind == "not_model":
        call["model"] = "resnet18"
    with pytest.raises(fg.FairgapError) as e:
        fg.fairness_gap(**call)
    _one_line(e, *words)


# --------------------------------------------------------------------------- measure

def _small(split, step=5):
    """Every step-th image of each part of a split (a smoke-sized slice)."""
    parts = {k: getattr(split, k)[::step] for k in ("x_forget", "y_forget", "x_retain", "y_retain", "x_test", "y_test")}
    return fg.Split(**{**split.__dict__, **parts, "train_all": None})


def test_measure_the_package_model(trained_original, synthetic_split):
    model, split = trained_original[0], synthetic_split
    m = fg.measure(model, split, "smoke")
    stored = unlearning_metrics(model, split, 300)
    assert {k: m[k] for k in ("UA", "RA", "TA")} == {k: stored[k] for k in ("UA", "RA", "TA")}
    assert m["test_acc"] == stored["test_acc_all"]
    draws = fg.get_profile("smoke").eval.mia_member_subsets      # MIA: the mean over the member draws
    assert m["MIA"] == M.mia_over_subsets(M.mia_subset_inputs(model, split, 300, draws))[0]
    assert list(m["fgsm"]) == [0.0, 2.0, 8.0] and list(m["pgd"]) == [0.0, 8.0]       # smoke: eps x 1/255
    assert m["attack_images"] == 100 and m["fgsm"][0.0] == m["pgd"][0.0] > 80        # smoke: 100 attacked images
    # on a trained model both attacks at 8/255 cost accuracy (strictly: an attack scored on clean images fails)
    assert m["fgsm"][8.0] < m["fgsm"][0.0] and m["pgd"][8.0] < m["pgd"][0.0]
    assert m["layers"] == fg.fairness_gap(model, split.x_test, split.y_test, batch_size=300)   # sigma: test set
    assert m["layer_mean_epsilon"] == pytest.approx(np.mean([L["epsilon"] for L in m["layers"]]))
    assert not model.training


def test_measure_without_pgd_leaves_it_out(trained_original, synthetic_split):
    """A profile with no PGD ε (the cpu profile) runs no PGD: no curve made of the clean accuracy alone."""
    smoke = fg.get_profile("smoke")
    m = fg.measure(trained_original[0], synthetic_split,
                   smoke.replace(eval=dataclasses.replace(smoke.eval, pgd_eps=())))
    assert "pgd" not in m and list(m["fgsm"]) == [0.0, 2.0, 8.0]


def test_measure_a_torchvision_model_without_the_wrapper(torchvision_resnet, synthetic_split):
    split = _small(synthetic_split)
    m = fg.measure(torchvision_resnet, split, "smoke", definition="sample", class_set="retained")
    acc = M.accuracies(torchvision_resnet, split, 300)
    assert [m[k] for k in ("UA", "RA", "TA", "test_acc")] == [acc[k] for k in ("UA", "RA", "TA", "test_acc_all")]
    draws = fg.get_profile("smoke").eval.mia_member_subsets
    assert m["MIA"] == M.mia_over_subsets(M.mia_subset_inputs(torchvision_resnet, split, 300, draws))[0]
    assert [L["layer"] for L in m["layers"]][:2] == ["bn1", "layer1.0.bn1"] and len(m["layers"]) == 20
    assert m["attack_images"] == len(split.test_remaining()[0]) and set(m["fgsm"]) == {0.0, 2.0, 8.0}
    json.dumps(m)                                                                       # plain values only


def test_measure_refuses_bad_input(trained_original, synthetic_split):
    with pytest.raises(fg.FairgapError, match="expected a Split"):
        fg.measure(trained_original[0], (synthetic_split.x_test, synthetic_split.y_test))
    with pytest.raises(fg.FairgapError, match="unknown profile 'papr'"):
        fg.measure(trained_original[0], synthetic_split, "papr")
    with pytest.raises(fg.FairgapError, match="unknown class set 'some'"):
        fg.measure(trained_original[0], synthetic_split, "smoke", class_set="some")
