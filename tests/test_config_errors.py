"""fairgap_utils.config and errors: profiles, validation, one-line FairgapErrors naming the choices."""
from __future__ import annotations

import dataclasses

import pytest

from fairgap_utils import api as fg_api
from fairgap_utils import data as D
from fairgap_utils.computing import pipeline as P
from fairgap_utils.computing import stage as S
from fairgap_utils.config import PROFILES, EvalConfig, Profile, TrainConfig, config_hash, get_profile
from fairgap_utils.errors import FairgapError, check_choice, check_range
from fairgap_utils.models import MODELS
from fairgap_utils.registries import check_profile, methods_of
from fairgap_utils.unlearn import METHODS


def _error(fn, *a, **k) -> str:
    with pytest.raises(FairgapError) as e:
        fn(*a, **k)
    msg = str(e.value)
    assert "\n" not in msg, "a FairgapError is one line"
    return msg


def test_fairgap_error_is_a_value_error():
    assert issubclass(FairgapError, ValueError)


def test_check_helpers():
    check_choice("colour", "red", ("red", "blue"))
    assert _error(check_choice, "colour", "green", ("red", "blue")) == \
        "unknown colour 'green'; valid choices: red, blue"
    check_range("x", 0.5, 0, 1)
    check_range("x", "0.5", 0, 1)
    for bad in (-1, 2, None, "abc", float("nan")):
        assert "must lie in [0, 1]" in _error(check_range, "x", bad, 0, 1)


@pytest.mark.parametrize("name", list(PROFILES))
def test_profiles_are_valid(name):
    p = get_profile(name)
    assert isinstance(p, Profile) and p.name == name
    assert p.train_config("vit_micro") is p.train_vit and p.train_config("resnet_tiny") is p.train_resnet
    assert isinstance(p.to_dict(), dict) and p.to_dict()["name"] == name


def test_default_profile_on_cpu():
    import torch
    expected = "paper" if torch.cuda.is_available() else "cpu"
    assert get_profile().name == expected


def test_smoke_profile_is_small():
    p = get_profile("smoke")
    assert p.archs == ("resnet_tiny", "vit_micro") and p.n_train_per_class == 60 and p.seeds == (0,)
    assert p.methods is None and set(methods_of(p)) == set(METHODS)   # every method names the smoke profile


def test_unknown_profile():
    msg = _error(get_profile, "nope")
    assert "'nope'" in msg and all(n in msg for n in PROFILES)


def test_replace_and_overrides_validate():
    p = get_profile("smoke", seeds=(1, 2), forget_class="cat")
    assert p.seeds == (1, 2) and p.forget_class == "cat"
    assert p.replace(archs=("resnet18",)).archs == ("resnet18",)
    with pytest.raises(FairgapError):
        p.replace(seeds=())
    with pytest.raises(FairgapError):           # a registry's name: checked where names enter (the planner)
        P.select(p.replace(archs=("resnet_huge",)))


def test_config_leaves_registry_names_to_the_boundary():
    """config imports no registry (it is a leaf of the import graph): a profile naming an unknown
    architecture or method is made, and refused by the planner, the CLI and the public api."""
    p = get_profile("smoke", archs=("resnet_huge",))
    for at_the_boundary in (P.select, lambda p: P.plan(p), check_profile, lambda p: fg_api._profile(p)):
        assert "'resnet_huge'" in _error(at_the_boundary, p)


REGISTRY_ROWS = [
    (dict(archs=("resnet_tiny", "resnet_huge")), "'resnet_huge'", list(MODELS)),
    (dict(methods=("ft", "magic")), "'magic'", list(METHODS)),
    (dict(method_overrides={"ft": {"learning_rate": 0.1}}), "'learning_rate'", list(METHODS["ft"].defaults)),
    (dict(method_overrides={"magic": {"lr": 0.1}}), "'magic'", list(METHODS)),
    (dict(variants={"ft": ({"learning_rate": 0.1},)}), "'learning_rate'", list(METHODS["ft"].defaults)),
    (dict(keep_gap_weight={"everything": 3.0}), "'everything'", ["deviation", "spread"]),
]


@pytest.mark.parametrize("changes, bad, choices", REGISTRY_ROWS)
def test_bad_registry_names_are_one_line_errors_naming_the_choices(changes, bad, choices):
    msg = _error(check_profile, get_profile("smoke", **changes))
    assert bad in msg, msg
    for c in choices:
        assert c in msg, msg


@pytest.mark.parametrize("changes, bad, choices", [
    (dict(scenarios=("class", "half")), "'half'", ["class", "random"]),
    (dict(forget_class=10), "10", ["0-9", "airplane"]),
    (dict(forget_class=-1), "-1", ["0-9"]),
    (dict(forget_class="spaceship"), "'spaceship'", ["truck", "airplane", "0-9"]),
    (dict(eval=EvalConfig(fgsm_eps=(2, 300))), "300", ["[0, 255]"]),
    (dict(eval=EvalConfig(fgsm_eps=(-1,))), "-1", ["[0, 255]"]),
    (dict(eval=EvalConfig(pgd_eps=(256,))), "256", ["[0, 255]"]),
    (dict(eval=EvalConfig(fairness_split="val")), "'val'", ["test", "retain"]),
    (dict(train_resnet=TrainConfig(optimizer="lbfgs")), "'lbfgs'", ["sgd", "adamw"]),
    (dict(train_vit=TrainConfig(schedule="step")), "'step'", ["onecycle", "cosine", "constant"]),
    (dict(dataset="mnist"), "'mnist'", ["cifar10", "cifar100"]),
    (dict(forget_fraction=0.95), "0.95", ["[0.001, 0.9]"]),
    (dict(seeds=()), "seeds", ["seeds=(0,)"]),
])
def test_bad_values_are_one_line_errors_naming_the_choices(changes, bad, choices):
    msg = _error(get_profile, "smoke", **changes)
    assert bad in msg, msg
    for c in choices:
        assert c in msg, msg


def test_attack_eps_in_range_is_accepted():
    assert get_profile("smoke", eval=EvalConfig(fgsm_eps=(0, 8, 255), pgd_eps=(0.5,))).eval.fgsm_eps == (0, 8, 255)


@pytest.mark.parametrize("changes", [dict(eval=EvalConfig(pgd_steps=0)), dict(k_sweep=(0, 1))])
def test_late_failures_are_caught_up_front(changes):
    _error(get_profile, "smoke", **changes)


@pytest.mark.parametrize("kw, bad", [(dict(archs=["resnet999"]), "resnet999"),
                                     (dict(methods=["forget_all"]), "forget_all"),
                                     (dict(scenarios=["sideways"]), "sideways"), (dict(seeds=[]), "seeds"),
                                     (dict(seeds=[0, -1]), "seed -1"), (dict(seeds=[2**32]), "seed 4294967296"),
                                     (dict(seeds=[1.5]), "seed 1.5")])
def test_compute_rejects_bad_names_before_any_work(kw, bad, monkeypatch, tmp_path):
    def no_work(*a, **k):
        raise AssertionError("compute started work before validating its arguments")
    monkeypatch.setattr(D, "load_arrays", no_work)
    monkeypatch.setattr(P, "train_supervised", no_work)
    msg = _error(S.compute, get_profile("smoke"), results=tmp_path / "r", cache=tmp_path / "c", **kw)
    assert bad in msg


def test_config_hash():
    a = config_hash("x", {"b": 1, "a": 2}, TrainConfig())
    assert a == config_hash("x", {"a": 2, "b": 1}, TrainConfig())                    # key order does not matter
    assert a == config_hash("x", {"a": 2, "b": 1}, dataclasses.asdict(TrainConfig()))
    assert a != config_hash("x", {"a": 2, "b": 1}, TrainConfig(epochs=41))
    assert len(a) == 12 and int(a, 16) >= 0


def test_headline_attack_must_be_one_that_is_measured():
    from fairgap_utils.config import AnalysisConfig
    with pytest.raises(FairgapError, match=r"headline FGSM epsilon \(x1/255\) 4; valid choices: 2, 8"):
        get_profile("smoke", analysis=AnalysisConfig(attack_eps=4, c5_k=2))
    with pytest.raises(FairgapError, match=r"c5_k \(a value of k_sweep\) 5; valid choices: 1, 2"):
        get_profile("smoke", analysis=AnalysisConfig(attack_eps=8, c5_k=5))
