"""pipeline.plan / estimate / compute(budget_minutes=...): what a profile needs, how long it takes, time-boxed runs.

The budget test replaces the clock and the estimates with fixed numbers, so where a run
stops never depends on this machine's speed; the estimator's arithmetic is checked with
fixed rates, its count of a measurement's images against what `measure` pushes through a
model, and its measured rates only for being positive and cached.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_pattern_npz
from fairgap_utils import __main__ as cli
from fairgap_utils.computing import artifacts as A
from fairgap_utils import data as D
from fairgap_utils.computing import estimate as E
from fairgap_utils.computing import keys as K
from fairgap_utils.computing import pipeline as P
from fairgap_utils.computing import stage as S
from fairgap_utils.config import config_hash, get_profile
from fairgap_utils.errors import FairgapError
from fairgap_utils.unlearn import hyperparameters


@pytest.fixture(scope="module")
def pattern_data(tmp_path_factory) -> Path:
    """The pattern task in the CIFAR file format, large enough for the smoke profile (fast to load)."""
    return write_pattern_npz(tmp_path_factory.mktemp("patterns") / "cifar10.npz", 67, 30)


# --------------------------------------------------------------------------- runs and labels

def test_variant_labels():
    assert P.variant_label("cf_k", {"k": 3}) == "cf_k-k3"
    assert P.variant_label("keep_gap", {"target": "spread"}) == "keep_gap-spread"
    assert P.variant_label("ft", {"lr": 0.05, "schedule": "cosine"}) == "ft-lr0.05-cosine"
    assert P.variant_label("bs", {"augment": False}) == "bs-no_augment"
    with pytest.raises(FairgapError, match="safe file name"):
        P.variant_label("ft", {"schedule": "a/b"})


def test_runs_for_expands_variants_and_replicates():
    p = get_profile("smoke").replace(
        methods=("retrain", "cf_k", "ft", "scrub"),
        variants={"cf_k": ({"k": 2}, {"k": 3}), "ft": ({"lr": 0.05, "schedule": "cosine"}, {"epochs": 1}),
                  "scrub": ({"msteps": 2},)})
    labels = [label for label, _, _ in P.runs_for(p, "class", seed=0)]
    # cf_k-k2 comes once (k sweep and variant agree); ft {"epochs": 1} repeats the smoke override: not run twice
    assert labels == ["original", "retrain", "cf_k", "cf_k-k2", "cf_k-k3", "ft", "ft-lr0.05-cosine",
                      "scrub", "scrub-msteps2", "retrain-r1"]
    assert [label for label, _, _ in P.runs_for(p, "random", seed=0)] == ["original", "retrain", "cf_k", "ft",
                                                                          "scrub", "retrain-r1"]
    assert "retrain-r1" not in [label for label, _, _ in P.runs_for(p, "class", seed=1)]   # not the noise-floor seed
    runs = {label: (method, ov) for label, method, ov in P.runs_for(p, "class", seed=0)}
    assert runs["retrain-r1"] == ("retrain", {"replicate": 1})
    assert runs["ft-lr0.05-cosine"] == ("ft", {"epochs": 1, "lr": 0.05, "schedule": "cosine"})
    assert runs["scrub-msteps2"] == ("scrub", {"epochs": 2, "msteps": 2})
    many = p.replace(retrain_replicates=3)
    assert [lb for lb, _, _ in P.runs_for(many, "random", 0)][-3:] == ["retrain-r1", "retrain-r2", "retrain-r3"]
    assert [lb for lb, _, _ in P.runs_for(many.replace(methods=("ft",)), "random", 0)] == ["original", "ft"]


def test_two_variants_with_one_label_are_an_error():
    p = get_profile("smoke").replace(methods=("ft",), variants={"ft": ({"lr": 0.02}, {"lr": 0.0200000001})})
    with pytest.raises(FairgapError, match="both labelled 'ft-lr0.02'"):
        P.runs_for(p, "class", 0)


# --------------------------------------------------------------------------- plan

def test_plan_of_the_paper_profile(tmp_path):
    units = P.plan(get_profile("paper"), results=tmp_path)
    per_chunk = P.chunks(units)
    assert list(per_chunk) == [(a, s, 0) for a in ("resnet50", "vit_small", "resnet18") for s in ("class", "random")]
    # class: original, 11 methods, CF-k / EU-k at k=3, 4 Retrain replicates; random: no k sweep
    assert {c: t for c, (_, t) in per_chunk.items()} == {c: 18 if c[1] == "class" else 16 for c in per_chunk}
    assert not any(u.present for u in units)
    first = [u.label for u in units if u.chunk == ("resnet50", "class", 0)]
    assert first == ["original", "retrain", "ft", "cf_k", "cf_k-k3", "eu_k", "eu_k-k3", "ga", "rl", "salun", "scrub",
                     "bs", "l1_sparse", "keep_gap", "retrain-r1", "retrain-r2", "retrain-r3", "retrain-r4"]
    u = units[0]
    assert u.path == tmp_path / "paper" / "resnet50" / "seed0" / "class" / "original.json"
    assert len({x.key for x in units}) == len(units) and len({x.path for x in units}) == len(units)
    retrains = [x for x in units if x.method == "retrain" and x.chunk == ("resnet50", "class", 0)]
    assert [x.hyperparameters["replicate"] for x in retrains] == [0, 1, 2, 3, 4]
    assert len({x.model_key for x in retrains}) == 5                  # each replicate its own checkpoint
    assert "resnet50 class seed 0 (18 of 18 missing)" in P.missing_chunks(units)


def test_plan_keeps_the_keys_of_existing_results():
    """Replicates and variants add keys; the keys of Retrain (replicate 0) and of every other run stay as before."""
    p = get_profile("smoke")
    u = next(x for x in P.plan(p, archs=["resnet_tiny"], scenarios=["class"]) if x.label == "retrain")
    data_cfg, original = K.data_config(p), K.original_key(p, "resnet_tiny", 0)
    scenario_cfg = dict(scenario="class", forget_class=9, forget_fraction=None)
    assert u.model_key == config_hash("retrain", K.RESULTS_VERSION, data_cfg, scenario_cfg, "resnet_tiny",
                                      p.train_config("resnet_tiny"), 0)
    assert u.key == config_hash(u.model_key, config_hash(p.eval), scenario_cfg, K.RESULTS_VERSION)
    ga = next(x for x in P.plan(p, archs=["resnet_tiny"], scenarios=["class"]) if x.label == "ga")
    ga_hp = hyperparameters("ga", {"epochs": 1, "lr": 1e-2})
    assert ga.model_key == config_hash(original, scenario_cfg, "ga", ga_hp, 0)


# --------------------------------------------------------------------------- estimates

def test_split_sizes_match_make_split(pattern_data):
    p = get_profile("smoke", forget_fraction=0.25)
    for scenario in ("class", "random"):
        s = D.make_split(p, 0, scenario, "cpu", pattern_data)
        assert E.split_sizes(p, scenario) == {
            "train": len(s.x_train), "forget": len(s.x_forget), "retain": len(s.x_retain), "test": len(s.x_test),
            "test_remaining": len(s.test_remaining()[0]), "classes": 10}
    full = E.split_sizes(get_profile("paper"), "class")
    assert full == {"train": 45000, "forget": 4500, "retain": 40500, "test": 10000, "test_remaining": 9000,
                    "classes": 10}


def test_estimates_are_work_over_measured_rates(fixed_rates, tmp_path):
    p = get_profile("smoke")
    s = E.split_sizes(p, "class")                                      # train 600, forget 60, retain 540
    est = E.Estimator(p, "cpu")
    units = {u.label: u for u in P.plan(p, archs=["resnet_tiny"], scenarios=["class"], results=tmp_path)}
    ev = p.eval
    attacked = ev.attack_images
    forwards = (s["forget"] + s["retain"] + s["test"] + s["test"]    # one shared pass, then sigma on the test set
                + attacked * (1 + len(ev.fgsm_eps) + len(ev.pgd_eps)))
    steps = attacked * (1 + len(ev.pgd_eps) * ev.pgd_steps)          # one gradient for the whole FGSM sweep
    measure = forwards / 1000 + steps / 200 + 0.5 * ev.mia_member_subsets   # one SVM per member draw
    epochs = p.train_resnet.epochs
    assert est.raw(units["original"], train_original=True) == pytest.approx(
        {"original": epochs * s["train"] / 100, "measure": measure})
    assert est.raw(units["retrain"]) == pytest.approx({"retrain": epochs * s["retain"] / 100, "measure": measure})
    assert est.raw(units["retrain"], train_retrain=False)["retrain"] == 0
    assert est.raw(units["ft"])["ft"] == pytest.approx(1 * s["retain"] / 100)   # smoke: FT 1 epoch on D_r
    assert est.raw(units["ga"])["ga"] == pytest.approx(1 * s["forget"] / 100)
    assert est.raw(units["scrub"])["scrub"] == pytest.approx((2 * s["retain"] + 1 * s["forget"]) * 4 / 3 / 100)
    # corrections: a stage kind's own ratio once seen; unseen kinds the worst ratio seen, never below 1
    assert est.ratio("resnet_tiny", "ft") == 1.0
    est.observe("resnet_tiny", "measure", 10.0, 5.0)
    assert est.ratio("resnet_tiny", "measure") == 0.5 and est.ratio("resnet_tiny", "ft") == 1.0
    est.observe("resnet_tiny", "ft", 4.0, 8.0)
    est.observe("resnet_tiny", "ft", 6.0, 12.0)
    assert est.ratio("resnet_tiny", "ft") == 2.0 and est.ratio("resnet_tiny", "ga") == 2.0
    assert est.ratio("resnet_tiny", "original") == 2.0 and est.ratio("vit_micro", "ga") == 2.0
    est.observe("resnet_tiny", "original", 10.0, 11.0)
    assert est.ratio("resnet_tiny", "retrain") == pytest.approx(1.1)     # original and Retrain: one kind
    assert est.stages(units["ft"]) == pytest.approx({"ft": 2 * s["retain"] / 100, "measure": 0.5 * measure})


@pytest.mark.parametrize("scenario", ["class", "random"])
def test_measure_images_are_what_measure_pushes_through_the_model(pattern_data, scenario):
    import torch
    from fairgap_utils.models import create_model
    p = get_profile("smoke")
    split = D.make_split(p, 0, scenario, "cpu", pattern_data)
    model = create_model("resnet_tiny", 10).eval()
    seen = {"forward": 0, "gradient": 0}

    def count(module, args):
        seen["gradient" if torch.is_grad_enabled() else "forward"] += len(args[0])
    model.register_forward_pre_hook(count)
    P.measure_model(model, split, p, 0)
    _, forwards, gradients = E.measure_images(p.eval, E.split_sizes(p, scenario))
    assert seen == {"forward": forwards, "gradient": gradients}


def test_estimate_counts_each_original_once_and_skips_cached_checkpoints(fixed_rates, tmp_path):
    p = get_profile("smoke")
    rows = P.estimate_units(p, archs=["resnet_tiny"], methods=["retrain", "ft"], results=tmp_path / "r",
                      cache=tmp_path / "c", device="cpu")
    assert [(u.scenario, u.label) for u, _ in rows] == [(sc, lb) for sc in ("class", "random")
                                                        for lb in ("original", "retrain", "ft", "retrain-r1")]
    assert [("original" in st) for _, st in rows] == [True] + [False] * 7
    assert all(st["retrain"] > 0 for u, st in rows if u.method == "retrain")
    retrain = rows[1][0]
    (tmp_path / "c" / "checkpoints").mkdir(parents=True)
    for suffix in (".pt", ".json"):
        (tmp_path / "c" / "checkpoints" / f"{retrain.model_key}{suffix}").write_text("x")
        (tmp_path / "c" / "checkpoints" / f"{retrain.original_key}{suffix}").write_text("x")
    rows = P.estimate_units(p, archs=["resnet_tiny"], methods=["retrain", "ft"], results=tmp_path / "r",
                      cache=tmp_path / "c", device="cpu")
    assert not any("original" in st for _, st in rows)
    assert rows[1][1]["retrain"] == 0 and rows[3][1]["retrain"] > 0     # replicate r1 is not cached
    text = P.estimate_table(rows)
    assert "resnet_tiny class seed 0: 4 missing" in text and text.splitlines()[-1].startswith("total: 8 missing")


def test_measured_rates_are_positive_and_cached(monkeypatch):
    E._RATES.clear()
    rate = E.training_rate("resnet_tiny", 8, "cpu")
    assert rate > 0 and E.forward_rate("resnet_tiny", 8, "cpu") > 0 and E.attack_rate("resnet_tiny", 8, "cpu") > 0
    assert E.svm_seconds(800) == pytest.approx(4 * E.svm_seconds(400))
    import fairgap_utils.train as T
    monkeypatch.setattr(T, "fit", lambda *a, **k: pytest.fail("a cached rate was measured again"))
    assert E.training_rate("resnet_tiny", 8, "cpu") == rate


def test_svm_timing_leaves_out_the_first_calls_import(monkeypatch):
    """The first (import-paying) fit is left out of the timing: a fake clock, advanced by the fake SVM,
    says exactly which call was timed, whatever this machine's speed."""
    import fairgap_utils.metrics as M
    clock, calls = [0.0], []

    class FakeTime:
        @staticmethod
        def perf_counter():
            return clock[0]

    def svm(features, labels, forget):   # the first call pays an import, as scikit-learn's does
        calls.append(len(features))
        clock[0] += 100.0 if len(calls) == 1 else 2.0
        return 0.0
    monkeypatch.setattr(M, "svm_non_member_rate", svm)
    monkeypatch.setattr(E, "time", FakeTime)
    monkeypatch.setattr(E, "_RATES", {})
    assert E.svm_seconds(400) == 2.0 and E.svm_seconds(800) == 8.0      # timed at 400 per side, scaled by n^2
    assert calls == [20, 800]


# --------------------------------------------------------------------------- budget

SUBSET = dict(archs=["resnet_tiny"], scenarios=["class"], methods=["retrain", "ga"])   # 4 units, one replicate


def _measured(record):
    return {k: record[k] for k in ("key", "metrics", "fairness", "attacks", "sizes", "attack_images", "eval")} | {
        "hyperparameters": record["stats"]["hyperparameters"], "trainable_params": record["stats"]["trainable_params"]}


@pytest.fixture(scope="module")
def uninterrupted(pattern_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    done = S.compute(get_profile("smoke"), **SUBSET, results=root / "r", cache=root / "c", data_path=pattern_data,
                     device="cpu", log=lambda line: None)
    assert done.complete and not done.stopped_for_budget and len(done) == 4
    return done


def test_a_budget_stops_before_a_unit_that_cannot_finish_and_a_rerun_resumes(pattern_data, uninterrupted,
                                                                           tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(P, "_clock", lambda: clock[0])
    monkeypatch.setattr(E.Estimator, "raw", lambda self, unit, *a: {"measure": 8.0})
    monkeypatch.setattr(E.Estimator, "ratio", lambda self, arch, stage: 1.0)
    real_measure = P.measure_model

    def measure(*a, **k):                           # every unit takes 10 s on the fake clock
        clock[0] += 10.0
        return real_measure(*a, **k)
    monkeypatch.setattr(P, "measure_model", measure)
    lines = []
    # overlap_svm: each SVM runs on a thread while the next model trains, as on CUDA
    args = dict(**SUBSET, results=tmp_path / "r", cache=tmp_path / "c", data_path=pattern_data, device="cpu",
                overlap_svm=True)
    # needs 8 s x 1.15 margin = 9.2 s each: starts at 0, 10, 20 fit 30 s; the one at 30 s would end at 39.2
    done = S.compute(get_profile("smoke"), budget_minutes=0.5, log=lines.append, **args)
    assert done.stopped_for_budget and not done.complete
    assert [Path(p).stem for p in done] == ["original", "retrain", "ga"]
    assert [u.label for u in done.left] == ["retrain-r1"] and len(done.written) == 3
    assert done.summary.startswith("stopped for the budget of 0.5 min: 3 result files written")
    assert "resnet_tiny class seed 0 (1 of 4 missing)" in done.summary and "rerun to resume" in done.summary
    assert len(lines) == 3 and lines[1].startswith("[smoke resnet_tiny seed 0 class retrain] Retrain training")
    files = sorted(p.name for p in (tmp_path / "r").rglob("*") if p.is_file())
    assert files == ["ga.json", "original.json", "retrain.json"]           # complete files only, no temporaries
    planned = {u.path: u.key for u in P.plan(get_profile("smoke"), **SUBSET, results=tmp_path / "r")}
    for p in done:
        assert A.load_json(p, planned[Path(p)]) is not None, p          # whole, and under the key the plan gives it
    monkeypatch.setattr(P, "measure_model", real_measure)
    again = S.compute(get_profile("smoke"), log=lines.append, **args)     # the rerun resumes
    assert again.complete and [u.label for u in again.written] == ["retrain-r1"]
    for a, b in zip(uninterrupted, again):
        ra, rb = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
        assert Path(a).name == Path(b).name and _measured(ra) == _measured(rb), Path(a).name


def test_records_store_the_eval_configuration_and_replicates(uninterrupted):
    import dataclasses
    records = {Path(p).stem: json.loads(Path(p).read_text()) for p in uninterrupted}
    assert all(r["eval"] == json.loads(json.dumps(dataclasses.asdict(get_profile("smoke").eval)))
               for r in records.values())
    assert records["retrain-r1"]["method"] == "retrain" and records["retrain-r1"]["stats"]["hyperparameters"] == \
        {"replicate": 1}
    loss = {k: records[k]["stats"]["logs"]["loss_per_epoch"] for k in ("retrain", "retrain-r1")}
    assert loss["retrain"] != loss["retrain-r1"]                                  # another training seed


def test_cli_budget_stop_is_a_clean_exit(pattern_data, tmp_path, capsys):
    rc = cli.main(["compute", "--profile", "smoke", "--arch", "resnet_tiny", "--scenario", "class", "--methods", "ga",
                   "--budget-minutes", "0.0001", "--results", str(tmp_path / "r"), "--data", str(pattern_data)])
    out = capsys.readouterr().out
    assert rc == 0 and "stopped for the budget of 0.0 min: 0 result files written" in out and "rerun" in out
    assert not (tmp_path / "r").exists() or not any(p.is_file() for p in (tmp_path / "r").rglob("*"))


def test_cli_dry_run_writes_nothing(fixed_rates, tmp_path, capsys):
    rc = cli.main(["compute", "--profile", "smoke", "--arch", "vit_micro", "--dry-run", "--results",
                   str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0 and "vit_micro class seed 0: 15 missing" in out and "vit_micro random seed 0: 13 missing" in out
    assert not (tmp_path / "r").exists()


def test_cli_bad_budget(tmp_path, capsys):
    rc = cli.main(["compute", "--profile", "smoke", "--budget-minutes", "-1", "--results", str(tmp_path)])
    assert rc == 2 and "budget_minutes -1.0 is out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit):                                    # argparse: not a number
        cli.main(["compute", "--profile", "smoke", "--budget-minutes", "eight"])


# --------------------------------------------------------------------------- the paper profile on a CPU

def test_paper_profile_on_a_cpu_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    def no_work(*a, **k):
        raise AssertionError("work started")
    monkeypatch.setattr(D, "load_arrays", no_work)
    monkeypatch.setattr(P, "train_supervised", no_work)
    monkeypatch.setattr(P.torch.cuda, "is_available", lambda: False)
    rc = cli.main(["compute", "--profile", "paper", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "resnet50 class seed 0 (18 of 18 missing)" in err and "resnet18 random seed 0 (16 of 16 missing)" in err
    assert "--allow-cpu" in err
    with pytest.raises(FairgapError, match="no CUDA"):
        S.compute(get_profile("paper"), archs=["resnet18"], results=tmp_path, device="cpu")


def test_paper_profile_on_a_cpu_reads_what_exists(tmp_path, monkeypatch):
    """With every requested result present, nothing is computed and nothing is refused."""
    subset = dict(archs=["resnet18"], scenarios=["random"], methods=["ga"], results=tmp_path)
    units = P.plan(get_profile("paper"), **subset)
    for u in units:
        A.save_json(u.path, {"key": u.key})
    monkeypatch.setattr(D, "load_arrays", lambda *a, **k: pytest.fail("work started"))
    done = S.compute(get_profile("paper"), **subset, device="cpu")
    assert done.complete and list(done) == [u.path for u in units] and not done.written
