"""The result keys of pipeline.plan: what makes two result files (or two cached models) different.

A key that leaves out the seed, the scenario, the method or a hyperparameter makes one result
file stand for several: every seed would silently reuse seed 0's original, or a changed
hyperparameter would be served the old numbers. A key that takes in something new makes every
committed result stale: `make book` would recompute for hours. Both kinds of mistake fail here,
the second through the committed cpu results, which must all be found by the planner.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO
from fairgap_utils.computing import artifacts as A
from fairgap_utils.computing import pipeline as P
from fairgap_utils import manifest
from fairgap_utils.config import EvalConfig, TrainConfig, get_profile
from fairgap_utils.unlearn import METHODS, register_method, unregister_method

ARCH = "resnet_tiny"


def _plan(tmp_path, **changes) -> dict:
    """{(seed, scenario, label): unit} of the smoke profile on one architecture, changed by `changes`."""
    profile = get_profile("smoke").replace(archs=(ARCH,), **changes)
    return {(u.seed, u.scenario, u.label): u for u in P.plan(profile, results=tmp_path)}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return _plan(tmp_path_factory.mktemp("results"), seeds=(0, 1))


def _labels(units, seed=0, scenario="class"):
    return [label for (s, sc, label) in units if s == seed and sc == scenario]


# --------------------------------------------------------------------------- what tells two results apart

def test_two_seeds_have_distinct_originals_and_results(base):
    """The mutation that dropped the seed from the original's key passed every test before this one."""
    for label in _labels(base, seed=1):
        a, b = base[(0, "class", label)], base[(1, "class", label)]
        assert a.original_key != b.original_key, label
        assert a.model_key != b.model_key, label
        assert a.key != b.key and a.path != b.path, label


def test_every_model_starts_from_the_original_of_its_own_seed(base):
    for (seed, scenario, label), u in base.items():
        assert u.original_key == base[(seed, scenario, "original")].model_key, (seed, scenario, label)


def test_the_two_scenarios_share_the_original_and_nothing_else(base):
    """One original per seed serves both scenarios (it never saw a forget set); every other model and
    every measurement (made on the scenario's split) is the scenario's own."""
    assert base[(0, "class", "original")].model_key == base[(0, "random", "original")].model_key
    for label in _labels(base, scenario="random"):
        a, b = base[(0, "class", label)], base[(0, "random", label)]
        assert a.key != b.key and a.path != b.path, label
        if label != "original":
            assert a.model_key != b.model_key, label


def test_no_two_units_share_a_key_or_a_file(base):
    units = list(base.values())
    assert len({u.key for u in units}) == len({u.path for u in units}) == len(units)
    models = [u.model_key for u in units if u.method != "original"]
    assert len(set(models)) == len(models)
    assert len({u.model_key for u in units if u.method == "original"}) == 2          # one per seed


def test_retrain_replicates_are_models_of_their_own(base):
    retrains = [u for (s, _, label), u in base.items() if s == 0 and u.method == "retrain"]
    assert sorted(u.label for u in retrains) == ["retrain", "retrain", "retrain-r1", "retrain-r1"]
    assert len({u.model_key for u in retrains}) == 4
    assert base[(0, "class", "retrain-r1")].hyperparameters["replicate"] == 1
    assert (1, "class", "retrain-r1") not in base                     # only the noise-floor seed has them


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_hyperparameter_of_each_method_is_in_its_key(method, base, tmp_path):
    """Changing one hyperparameter changes the keys of exactly the runs it reaches: that method's runs
    whose own overrides (a k of the sweep, a replicate) do not set it."""
    defaults = METHODS[method].defaults
    for name, value in defaults.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        new = value + "_other" if isinstance(value, str) else value * 2 + 1
        overrides = dict(get_profile("smoke").method_overrides)
        overrides[method] = {**overrides.get(method, {}), name: new}
        changed = _plan(tmp_path, seeds=(0, 1), method_overrides=overrides)
        for where in changed.keys() & base.keys():
            u, b = changed[where], base[where]
            moved = u.hyperparameters != b.hyperparameters
            assert not moved or u.method == method, where
            assert moved or u.label != method, f"{method}.{name}={new!r}: {where} did not take the new value"
            assert (u.key != b.key) == moved, f"{method}.{name}={new!r}: {where} key {'un' * (not moved)}changed"
            assert (u.model_key != b.model_key) == moved, where


def test_training_data_and_measurement_settings_are_in_the_keys(base, tmp_path):
    """The original's training and data reach every key; the measurement reaches the result keys
    only (its models are reused)."""
    smoke = get_profile("smoke")
    longer = TrainConfig(**{**smoke.train_resnet.__dict__, "epochs": smoke.train_resnet.epochs + 1})
    for changes in ({"train_resnet": longer}, {"n_train_per_class": 61}, {"n_test_per_class": 31},
                    {"val_fraction": 0.2}):
        changed = _plan(tmp_path, seeds=(0, 1), **changes)
        for where, u in changed.items():
            assert u.original_key != base[where].original_key and u.key != base[where].key, (changes, where)
            assert u.model_key != base[where].model_key, (changes, where)
    measured = _plan(tmp_path, seeds=(0, 1), eval=EvalConfig(**{**smoke.eval.__dict__, "fgsm_eps": (2, 4, 8)}))
    for where, u in measured.items():
        assert u.key != base[where].key and u.model_key == base[where].model_key, where


def test_the_forget_set_is_in_its_scenarios_keys_only(base, tmp_path):
    for changes, scenario in (({"forget_class": 3}, "class"), ({"forget_fraction": 0.2}, "random")):
        changed = _plan(tmp_path, seeds=(0, 1), **changes)
        for where, u in changed.items():
            moved = where[1] == scenario
            assert (u.key != base[where].key) == moved, (changes, where)
            if u.method != "original":
                assert (u.model_key != base[where].model_key) == moved, (changes, where)
            assert u.original_key == base[where].original_key, (changes, where)


def test_a_registered_methods_code_is_in_its_key(tmp_path):
    def mine(model, split, hp, ctx):
        return model, {}

    def edited(model, split, hp, ctx):
        return model, {"edited": True}

    register_method("keyed", mine, {"lr": 0.1})
    try:
        before = _plan(tmp_path, methods=("keyed",))
        register_method("keyed", edited, {"lr": 0.1}, replace=True)
        after = _plan(tmp_path, methods=("keyed",))
    finally:
        unregister_method("keyed")
    where = (0, "class", "keyed")
    assert before[where].model_key != after[where].model_key and before[where].key != after[where].key
    assert before[(0, "class", "original")].key == after[(0, "class", "original")].key


def test_present_means_a_file_with_the_units_key(tmp_path):
    units = _plan(tmp_path)
    u = units[(0, "class", "ft")]
    assert not u.present
    A.save_json(u.path, {"key": u.key})
    assert _plan(tmp_path)[(0, "class", "ft")].present
    A.save_json(u.path, {"key": "0" * 12})
    assert not _plan(tmp_path)[(0, "class", "ft")].present


# --------------------------------------------------------------------------- the committed results

def mismatches(profile_name: str, results: Path) -> tuple[int, list[str]]:
    """(result files under results/<profile>, one line for each that no unit of the plan finds with its key).

    Result files: <arch>/seed<S>/<scenario>/<label>.json. Not the plan itself (plan.json) nor the searches'
    files under tuning/: those are keyed by `tune` and checked by the planner as it reads them (a stale
    calibration is an error of `plan`, which fails this test as well)."""
    files = sorted((results / profile_name).glob("*/seed*/*/*.json"))
    units = {u.path.resolve(): u for u in P.plan(get_profile(profile_name), results=results)}
    lines = []
    for f in files:
        u = units.get(f.resolve())
        stored = json.loads(f.read_text()).get("key")
        if u is None:
            lines.append(f"{f.relative_to(results)}: no unit of the plan writes this file")
        elif stored != u.key:
            lines.append(f"{f.relative_to(results)}: stored key {stored}, the plan's {u.key}")
    return len(files), lines


def test_every_committed_cpu_result_is_found_by_the_planner():
    """Every committed file under results/cpu is the result of a unit of plan(get_profile("cpu")), under
    that unit's key. A change of any key (or of what goes into it) fails here, instead of making
    `make book` recompute the whole profile, hours on 2 cores."""
    results = REPO / "results"
    count, bad = mismatches("cpu", results)
    assert count > 0, f"no committed result file under {results / 'cpu'}"
    assert not bad, (f"{len(bad)} of {count} committed cpu result files are not found by the planner; first: "
                     + "; ".join(bad[:5]))


def test_the_committed_cpu_manifest_is_the_plan():
    """results/cpu/plan.json, which the book reads instead of importing the planner (torch), is exactly what
    the planner gives for the cpu profile today: code and manifest cannot drift apart unnoticed."""
    committed = REPO / "results" / "cpu" / "plan.json"
    rewrite = "rewrite it with `python -m fairgap_utils plan --profile cpu` and commit it"
    assert committed.is_file(), f"{committed} is missing; {rewrite}"
    assert committed.read_text() == P.manifest_text(get_profile("cpu"), REPO / "results"), (
        f"{committed.relative_to(REPO)} is not the plan of the cpu profile (a key, a label or a method's name "
        f"changed); {rewrite}")


def test_the_manifest_lists_the_plan_and_reads_back(tmp_path):
    """What the book reads (`manifest.read`) is the planner's plan: every unit, key and path, and the
    methods' names; present means a file holding the unit's key, as for the planner."""
    profile = get_profile("smoke")
    units = P.plan(profile, results=tmp_path)
    P.write_manifest(profile, tmp_path)
    m = manifest.read("smoke", tmp_path)
    assert [(u.arch, u.seed, u.scenario, u.label, u.method, u.key) for u in m.units] == \
        [(u.arch, u.seed, u.scenario, u.label, u.method, u.key) for u in units]
    assert all(m.folder / u.path == p.path for u, p in zip(m.units, units))
    assert m.methods["ft"] == {"title": METHODS["ft"].title, "short": "FT", "summary": METHODS["ft"].summary,
                               "registered": False, "hyperparameters": {**METHODS["ft"].defaults, "epochs": 1}}
    assert m.methods["original"]["short"] == "Original"
    facts = manifest.method_facts(tmp_path, "smoke")             # what the pages read: the plan, in registry order
    assert list(facts) == ["original", *METHODS] and facts["bs"] == m.methods["bs"]
    assert not any(u.present for u in m.present())
    A.save_json(units[3].path, {"key": units[3].key})
    assert [u.present for u in m.present()] == [i == 3 for i in range(len(units))]
    A.save_json(units[3].path, {"key": "0" * 12})                 # another configuration's file
    assert not any(u.present for u in m.present())
    before = (tmp_path / "smoke" / "plan.json").stat().st_mtime_ns
    P.write_manifest(profile, tmp_path)                               # the same plan: the file is left alone
    assert (tmp_path / "smoke" / "plan.json").stat().st_mtime_ns == before
    assert manifest.read("paper", tmp_path) is None
