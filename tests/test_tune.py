"""fairgap_utils.computing.tune: the learning-rate search, its stored outcome, and computes at the tuned rates.

Tiny runs as in test_launcher: resnet_tiny, class-wise forgetting, 20 training images per
class of the synthetic pattern task.
"""
from __future__ import annotations

import copy
import json
import math

import matplotlib
import pytest

from fairgap_utils.computing import pipeline as P

from fairgap_utils.computing import stage as S
from fairgap_utils.computing import tune as T
from fairgap_utils import unlearn as U
from fairgap_utils.__main__ import main
from fairgap_utils.book import plots
from fairgap_utils.book.report import grid_frame, rates_used
from fairgap_utils.errors import FairgapError
from fairgap_utils.computing.launcher import Launcher
from fairgap_utils.registries import method_overrides
from fairgap_utils.models import create_model
from test_launcher import _sbatch_options, data_path, fake_slurm, tiny_profile  # noqa: F401 (fixtures)

matplotlib.use("Agg")

GRID = (1e-4, 1e-3, 1e-2, 1e-1)


def test_choose_smallest_gap_ties_to_the_smaller_rate_nan_last():
    pts = [{"lr": 1e-1, "avg_gap": 2.0}, {"lr": 1e-3, "avg_gap": 2.0}, {"lr": 1e-4, "avg_gap": float("nan")},
           {"lr": 1e-2, "avg_gap": 3.0}]
    assert T.choose(pts)["lr"] == 1e-3
    assert T.choose([{"lr": 1e-4, "avg_gap": None}, {"lr": 1e-1, "avg_gap": 50.0}])["lr"] == 1e-1


def test_tunable_methods_are_the_approximate_ones_with_a_rate():
    p = tiny_profile(methods=("retrain", "ft", "cf_k", "ga", "scrub", "bs"))
    assert T.tunable(p) == ["ft", "cf_k", "ga", "scrub", "bs"]


@pytest.fixture
def built_case(monkeypatch):
    """FT whose outcome the rate decides: at 1e-2 it retrains from scratch on D_r (what Retrain does),
    at 1e-1 it returns an untrained network, at any other rate the original unchanged.
    Measured for real: 1e-2 must win by far (documented winner), whatever the noise."""
    real = U.run_method

    def fake(name, original, split, ctx, overrides=None):
        lr = overrides["lr"]
        if lr == 1e-2:
            model, _ = real("retrain", original, split, ctx)
        elif lr == 1e-1:
            model = create_model(ctx.arch, split.num_classes).eval()
        else:
            model = copy.deepcopy(original)
        return model, {"hyperparameters": U.hyperparameters(name, overrides), "time_s": 0.0}
    monkeypatch.setattr(U, "run_method", fake)


def test_tune_picks_the_documented_winner_and_stores_the_whole_grid(built_case, data_path, tmp_path):
    profile = tiny_profile(methods=("retrain", "ft"), lr_grid=GRID)
    report = T.tune(profile, results=tmp_path / "R", cache=tmp_path / "C", data_path=data_path)
    assert report.ok and report.done[-1] == "tune outcome smoke"
    outcome = json.loads((tmp_path / "R" / "smoke" / "tuning" / "resnet_tiny" / "class.json").read_text())
    assert outcome["grid"] == list(GRID) and outcome["seed"] == 0 and list(outcome["methods"]) == ["ft"]
    ft = outcome["methods"]["ft"]
    assert ft["lr"] == 1e-2
    gaps = {p["lr"]: p["avg_gap"] for p in ft["points"]}
    assert sorted(gaps) == list(GRID)
    assert all(gaps[1e-2] + 10 < gaps[lr] for lr in (1e-4, 1e-3, 1e-1)), gaps
    assert (tmp_path / "R" / "smoke" / "tuning" / "resnet_tiny" / "class" / "ft-lr0.01.json").is_file()
    # the book's view: the grid as a table and a figure
    grid = grid_frame("smoke", tmp_path / "R")
    assert list(grid.lr) == list(GRID) and list(grid.chosen) == [False, False, True, False]
    ax = plots.lr_search(grid, "ft")
    assert ax.get_xscale() == "log" and len(ax.lines) == 1 and list(ax.lines[0].get_xdata()) == list(GRID)
    assert list(ax.collections[0].get_offsets()[0]) == pytest.approx([1e-2, gaps[1e-2]])


def test_tune_through_local_processes_then_compute_at_the_tuned_rate(data_path, tmp_path):
    profile = tiny_profile(methods=("retrain", "ga"))
    R, C = tmp_path / "R", tmp_path / "C"
    report = T.tune(profile, results=R, cache=C, data_path=data_path,
                    launcher=Launcher(kind="local", jobs=2, threads=1))
    assert report.ok, report.summary()
    assert report.done[-1] == "tune outcome smoke" and "tune ga resnet_tiny seed0 class" in report.done
    outcome = json.loads((R / "smoke" / "tuning" / "resnet_tiny" / "class.json").read_text())
    points = outcome["methods"]["ga"]["points"]
    assert [p["lr"] for p in points] == list(profile.lr_grid)
    best = min(points, key=lambda p: p["avg_gap"])
    assert outcome["methods"]["ga"]["lr"] == best["lr"]
    work, _ = T.units(profile, results=R, cache=C, data_path=data_path)
    assert not [u for u in work if u.name.startswith("tune ")]          # a rerun searches nothing again

    files = S.compute(profile.replace(tuned_lr=True), results=R, cache=C, data_path=str(data_path), device="cpu")
    ga = json.loads(next(f for f in files if f.stem == "ga").read_text())
    assert ga["stats"]["hyperparameters"]["lr"] == best["lr"]
    assert {k: ga["metrics"][k] for k in ("UA", "RA", "TA", "MIA")} == {k: best[k] for k in ("UA", "RA", "TA", "MIA")}
    table = rates_used([ga], "ga", grid_frame("smoke", R))
    assert table.loc[("resnet_tiny", "class")].tolist() == [best["lr"], best["lr"]]


def _outcome(profile, tmp_path, lr=1e-3, method="ft", grid=None):
    key = T.point_key(profile, "resnet_tiny", 0, "class", method, T.rate_hyperparameters(profile, method, lr))
    path = T.outcome_path(profile, "resnet_tiny", "class", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"seed": 0, "grid": list(grid or profile.lr_grid),
                                "methods": {method: {"lr": lr, "key": key, "points": []}}}))


def test_tuned_rates_enter_the_hyperparameters_and_stale_searches_are_refused(tmp_path):
    profile = tiny_profile(methods=("retrain", "ft"), tuned_lr=True)
    with pytest.raises(FairgapError, match="python -m fairgap_utils tune --profile smoke"):
        T.with_tuned_rates(profile, "resnet_tiny", "class", tmp_path)
    _outcome(profile, tmp_path)
    tuned = T.with_tuned_rates(profile, "resnet_tiny", "class", tmp_path)
    assert method_overrides(tuned, "ft") == {"epochs": 1, "lr": 1e-3}    # FT's smoke budget, at the tuned rate
    assert method_overrides(tuned, "ga") == method_overrides(profile, "ga")
    assert T.with_tuned_rates(profile.replace(tuned_lr=False), "resnet_tiny", "class", tmp_path) == profile.replace(
        tuned_lr=False)
    assert (T.with_tuned_rates(profile.replace(methods=("retrain",)), "resnet_tiny", "class", tmp_path)
            .method_overrides == profile.method_overrides)               # nothing to tune: no file needed
    with pytest.raises(FairgapError, match="another configuration"):
        T.with_tuned_rates(profile.replace(method_overrides={"ft": {"epochs": 2}}), "resnet_tiny", "class", tmp_path)
    with pytest.raises(FairgapError, match="used the grid"):
        T.with_tuned_rates(profile.replace(lr_grid=(1e-3,)), "resnet_tiny", "class", tmp_path)
    with pytest.raises(FairgapError, match=r"has no rate for it \(ga\)"):
        T.with_tuned_rates(profile.replace(methods=("ft", "ga")), "resnet_tiny", "class", tmp_path)


def test_tune_on_slurm_ends_with_the_outcome_job_after_every_array(fake_slurm, tmp_path, capsys):
    rc = main(["tune", "--profile", "smoke", "--methods", "ga", "bs", "--scenario", "class", "--launcher", "slurm",
               "--results", str(tmp_path / "R"), "--cache", str(tmp_path / "C")])
    out = capsys.readouterr().out
    assert rc == 0
    opts = [_sbatch_options(c.read_text()) for c in sorted(fake_slurm.iterdir())]
    assert len(opts) == 4                       # originals; per original: Retrain + the grids; the outcome
    assert opts[0]["array"] == "0-1%2"
    assert [(o["array"], o["dependency"]) for o in opts[1:3]] == [("0-2%3", "afterok:1001_0"),
                                                                  ("0-2%3", "afterok:1001_1")]
    assert "array" not in opts[3] and opts[3]["dependency"] == "afterok:1001:1002:1003"
    assert "tune bs vit_micro seed0 class" in out and "tune outcome smoke" in out


def test_tune_runs_on_one_seed(capsys):
    assert main(["tune", "--profile", "smoke", "--seeds", "0", "1"]) == 2
    assert "tune runs on one seed" in capsys.readouterr().err


def test_lr_grid_default_and_validation():
    from fairgap_utils.config import get_profile
    grid = get_profile("cpu").lr_grid
    assert len(grid) == 5 and grid[0] == 1e-4 and grid[-1] == 1e-1
    steps = [math.log10(b / a) for a, b in zip(grid, grid[1:])]
    assert steps == pytest.approx([0.75] * 4, abs=0.01)                 # log-spaced
    assert len(get_profile("smoke").lr_grid) == 2
    with pytest.raises(FairgapError, match="lr_grid"):
        tiny_profile(lr_grid=())
    with pytest.raises(FairgapError, match="lr_grid value"):
        tiny_profile(lr_grid=(1e-3, -1.0))


# --------------------------------------------------------------------------- KeepGap's weight

class _Unreadable:
    """A stand-in for the test images: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the test set was read ({name})")

    def __len__(self):
        raise AssertionError("the test set was read (len)")

    def __getitem__(self, item):
        raise AssertionError("the test set was read (indexing)")


def _no_test_set(monkeypatch):
    """make_split as usual, but with test images and labels that fail the test when touched."""
    import dataclasses

    from fairgap_utils import data as D
    real = D.make_split

    def split(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), x_test=_Unreadable(), y_test=_Unreadable())
    monkeypatch.setattr(D, "make_split", split)


def _kg_profile(weights=(1, 3, 10, 30, 100), margin=2.0, **changes):
    import dataclasses
    p = tiny_profile(methods=("retrain", "rl", "keep_gap"), keep_gap_calibrated=True, **changes)
    return p.replace(analysis=dataclasses.replace(p.analysis, keep_gap_weights=weights, keep_gap_val_margin=margin))


def test_keep_gap_weight_is_the_largest_within_the_margin_on_validation_data(data_path, tmp_path, monkeypatch):
    """Run with fakes whose validation accuracy is set per weight: the rule walks the grid from the largest
    weight down, stops at the first within 2 points of RL's (not monotone: 30 fails, 100 fails, 10 passes
    for deviation) and only ever evaluates validation images; the test set cannot be touched."""
    import torch
    _no_test_set(monkeypatch)
    accuracy = {None: 80.0, ("deviation", 100.0): 70.0, ("deviation", 30.0): 77.9, ("deviation", 10.0): 78.0,
                ("deviation", 3.0): 80.0, ("deviation", 1.0): 80.0,
                ("spread", 100.0): 82.0, ("spread", 30.0): 50.0, ("spread", 10.0): 50.0}

    class Tagged(torch.nn.Module):
        def __init__(self, tag):
            super().__init__()
            self.tag = tag

    def fake_run(name, original, split, ctx, overrides=None):
        hp = U.hyperparameters(name, overrides)
        tag = None if name == "rl" else (hp["target"], hp["weight"])
        return Tagged(tag), {"hyperparameters": hp, "time_s": 0.0,
                             "logs": {} if name == "rl" else {"penalty_per_epoch": [0.1],
                                                              "penalty_share_per_epoch": [0.2]}}
    seen = []

    def fake_accuracy(model, x, y, batch_size=500):
        seen.append((model.tag, x, y))
        return accuracy[model.tag] if bool((y != 9).all()) else 5.0
    monkeypatch.setattr(U, "run_method", fake_run)
    monkeypatch.setattr(P, "_original_model", lambda *a, **k: (torch.nn.Identity(), {}))
    monkeypatch.setattr(T, "accuracy", fake_accuracy)
    profile = _kg_profile()
    R = tmp_path / "R"
    T.run_keep_gap_grid(profile, "resnet_tiny", 0, results=R, data_path=data_path)
    T.summarize_keep_gap(profile, ["resnet_tiny"], 0, results=R)
    outcome = json.loads(T.keep_gap_outcome_path(profile, "resnet_tiny", R).read_text())
    assert {t: e["weight"] for t, e in outcome["targets"].items()} == {"deviation": 10.0, "spread": 100.0}
    assert [p["weight"] for p in outcome["targets"]["deviation"]["points"]] == [100.0, 30.0, 10.0]   # walk stops
    assert outcome["rl"]["val_acc"] == 80.0 and outcome["targets"]["spread"]["penalty_share_first_epoch"] == 0.2
    from fairgap_utils import data as D
    split = D.make_split(profile, 0, "class", "cpu", data_path)
    keep = split.y_val != 9
    assert len(seen) == 2 * 5                       # RL and 4 KeepGap points, each: retained and forgotten class
    for i, (_, x, y) in enumerate(seen):
        mask = keep if i % 2 == 0 else ~keep
        assert torch.equal(x, split.x_val[mask]) and torch.equal(y, split.y_val[mask])
    assert T.keep_gap_weights(profile, "resnet_tiny", R) == {"deviation": 10.0, "spread": 100.0}
    assert T.choose_weight([{"weight": 3.0, "val_acc": 1.0}, {"weight": 1.0, "val_acc": 79.0}], 80.0, 2.0) == 1.0
    assert T.choose_weight([{"weight": 3.0, "val_acc": 1.0}], 80.0, 2.0) is None


def test_keep_gap_calibration_end_to_end_then_runs_at_the_chosen_weights(data_path, tmp_path, monkeypatch):
    """Real KeepGap runs on the tiny task (the test set unreadable throughout), then the plan: KeepGap, its
    spread variant and the dose grid take the chosen weights; every other run keeps its key."""
    profile = _kg_profile(weights=(0.1, 1000.0), margin=5.0, keep_gap_dose=True, variants={"keep_gap": (
        {"target": "spread"},)})
    R, C = tmp_path / "R", tmp_path / "C"
    S.compute(profile, methods=[], results=R, cache=C, data_path=str(data_path), device="cpu")   # the original
    _no_test_set(monkeypatch)
    report = T.tune(profile, methods=["keep_gap"], results=R, cache=C, data_path=data_path)
    assert report.ok and report.done[-1] == "tune keep_gap outcome smoke", report.summary()
    outcome = json.loads(T.keep_gap_outcome_path(profile, "resnet_tiny", R).read_text())
    chosen = {t: e["weight"] for t, e in outcome["targets"].items()}
    assert set(chosen) == {"deviation", "spread"} and all(w in (0.1, 1000.0) for w in chosen.values())
    for target, entry in outcome["targets"].items():
        points = {p["weight"]: p for p in entry["points"]}
        assert all(abs(p["val_acc_minus_rl"]) > 5.0 for w, p in points.items() if w > chosen[target])
        assert abs(points[chosen[target]]["val_acc_minus_rl"]) <= 5.0
        assert 0 < points[chosen[target]]["penalty_share_per_epoch"][0] < 1
    units = {u.label: u for u in P.plan(profile, results=R)}
    assert units["keep_gap"].hyperparameters["weight"] == chosen["deviation"]
    assert units["keep_gap-spread"].hyperparameters["weight"] == chosen["spread"]
    assert units["keep_gap-spread-x0.25"].hyperparameters["weight"] == pytest.approx(chosen["spread"] * 0.25)
    assert units["keep_gap-deviation-x4"].hyperparameters["target"] == "deviation"
    dose = sorted(label for label in units if label.startswith("keep_gap-") and "-x" in label)
    assert dose == sorted(f"keep_gap-{t}-x{m:g}" for t in ("deviation", "spread") for m in (0.25, 0.5, 2, 4))
    plain = profile.replace(keep_gap_calibrated=False, keep_gap_dose=False)
    before = {u.label: u.key for u in P.plan(plain, results=R) if u.method != "keep_gap"}
    assert before == {u.label: u.key for u in units.values() if u.method != "keep_gap"}
    assert [u.label for u in P.plan(profile, methods=["keep_gap"], results=R)] == ["original", *[
        lb for lb, u in units.items() if u.method == "keep_gap"]]
    # a calibration made with another configuration, or none, is refused
    with pytest.raises(FairgapError, match="another configuration"):
        P.plan(profile.replace(method_overrides={**profile.method_overrides, "keep_gap": {"epochs": 2}}), results=R)
    with pytest.raises(FairgapError, match="used the grid"):
        T.keep_gap_weights(_kg_profile(weights=(1, 2)), "resnet_tiny", R)
    with pytest.raises(FairgapError, match="--methods keep_gap"):
        P.plan(profile, results=tmp_path / "elsewhere")
    assert P.plan(profile, methods=["rl"], results=tmp_path / "elsewhere")     # no KeepGap: no calibration needed


def test_runs_for_labels_and_dose_grid_only_on_dose_seeds():
    p = get_profile_cpu().replace(keep_gap_dose=True, keep_gap_weight={"deviation": 30.0, "spread": 3.0})
    runs = {label: ov for label, m, ov in P.runs_for(p, "class", 0) if m == "keep_gap"}
    assert list(runs) == ["keep_gap", "keep_gap-spread", *[f"keep_gap-{t}-x{m:g}" for t in ("deviation", "spread")
                                                           for m in (0.25, 0.5, 2, 4)]]
    assert runs["keep_gap"]["weight"] == 30.0 and runs["keep_gap-spread"] == {"epochs": 3, "batch_size": 128,
                                                                              "target": "spread", "weight": 3.0}
    assert runs["keep_gap-deviation-x0.5"]["weight"] == 15.0 and runs["keep_gap-spread-x4"]["weight"] == 12.0
    assert [lb for lb, m, _ in P.runs_for(p, "class", 5) if m == "keep_gap"] == ["keep_gap", "keep_gap-spread"]
    assert [lb for lb, m, _ in P.runs_for(p, "random", 0) if m == "keep_gap"] == ["keep_gap"]
    assert [lb for lb, m, _ in P.runs_for(p.replace(keep_gap_dose=False), "class", 0) if m == "keep_gap"] == [
        "keep_gap", "keep_gap-spread"]


def get_profile_cpu():
    from fairgap_utils.config import get_profile
    return get_profile("cpu")


def test_the_cpu_profile_plans_keep_gap_at_its_committed_weights():
    """The cpu profile reads the committed calibration (results/cpu/tuning/<arch>/keep_gap.json) from any
    results folder; KeepGap, its spread variant and the dose grid (seeds 0-2, class-wise) take its weights."""
    from fairgap_utils.computing.artifacts import REPO_ROOT
    p = get_profile_cpu()
    units = P.plan(p, methods=["keep_gap"], seeds=[0, 3])
    for arch in p.archs:
        chosen = {t: e["weight"] for t, e in json.loads(
            (REPO_ROOT / "results" / "cpu" / "tuning" / arch / "keep_gap.json").read_text())["targets"].items()}
        mine = {(u.seed, u.scenario, u.label): u.hyperparameters for u in units if u.arch == arch
                and u.method == "keep_gap"}
        assert mine[(3, "class", "keep_gap")]["weight"] == chosen["deviation"]
        assert mine[(3, "random", "keep_gap")]["weight"] == chosen["deviation"]
        assert mine[(3, "class", "keep_gap-spread")]["weight"] == chosen["spread"]
        assert len(mine) == 10 + 1 + 2 + 1                  # seed 0: the dose grid's 8 more; seed 3: none
        for m in (0.25, 0.5, 2, 4):
            for t in ("deviation", "spread"):
                assert mine[(0, "class", f"keep_gap-{t}-x{m:g}")] == {**mine[(0, "class", "keep_gap")], "target": t,
                                                                    "weight": chosen[t] * m}


def test_tune_keep_gap_on_the_command_line(fake_slurm, tmp_path, capsys):
    rc = main(["tune", "--profile", "cpu", "--methods", "keep_gap", "--launcher", "slurm",
               "--results", str(tmp_path / "R"), "--cache", str(tmp_path / "C")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "tune keep_gap resnet18_w8 seed0 class" in out and "tune keep_gap vit_tiny seed0 class" in out
    assert "tune keep_gap outcome cpu" in out and "tune ft " not in out     # no learning-rate search
