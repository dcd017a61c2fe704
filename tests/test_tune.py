"""fairgap_utils.tune: the learning-rate search, its stored outcome, and computes at the tuned rates.

Tiny runs as in test_launcher: resnet_tiny, class-wise forgetting, 20 training images per
class of the synthetic pattern task.
"""
from __future__ import annotations

import copy
import json
import math

import matplotlib
import pytest

from fairgap_utils import pipeline as P
from fairgap_utils import tune as T
from fairgap_utils import unlearn as U
from fairgap_utils.__main__ import main
from fairgap_utils.book import plots
from fairgap_utils.errors import FairgapError
from fairgap_utils.launcher import Launcher
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
    grid = T.grid_frame("smoke", tmp_path / "R")
    assert list(grid.lr) == list(GRID) and list(grid.chosen) == [False, False, True, False]
    ax = plots.lr_search(grid, "ft")
    assert ax.get_xscale() == "log" and len(ax.lines) == 1 and list(ax.lines[0].get_xdata()) == list(GRID)
    assert list(ax.collections[0].get_offsets()[0]) == pytest.approx([1e-2, gaps[1e-2]])


def test_tune_through_local_processes_then_compute_at_the_tuned_rate(data_path, tmp_path):
    profile = tiny_profile(methods=("retrain", "ga"))
    R, C = tmp_path / "R", tmp_path / "C"
    report = T.tune(profile, results=R, cache=C, data_path=data_path, launcher=Launcher(kind="local", jobs=2, threads=1))
    assert report.ok, report.summary()
    assert report.done[-1] == "tune outcome smoke" and "tune ga resnet_tiny seed0 class" in report.done
    outcome = json.loads((R / "smoke" / "tuning" / "resnet_tiny" / "class.json").read_text())
    points = outcome["methods"]["ga"]["points"]
    assert [p["lr"] for p in points] == list(profile.lr_grid)
    best = min(points, key=lambda p: p["avg_gap"])
    assert outcome["methods"]["ga"]["lr"] == best["lr"]
    work, _ = T.units(profile, results=R, cache=C, data_path=data_path)
    assert not [u for u in work if u.name.startswith("tune ")]          # a rerun searches nothing again

    files = P.compute(profile.replace(tuned_lr=True), results=R, cache=C, data_path=str(data_path), device="cpu")
    ga = json.loads(next(f for f in files if f.stem == "ga").read_text())
    assert ga["stats"]["hyperparameters"]["lr"] == best["lr"]
    assert {k: ga["metrics"][k] for k in ("UA", "RA", "TA", "MIA")} == {k: best[k] for k in ("UA", "RA", "TA", "MIA")}
    table = T.rates_used([ga], "ga", T.grid_frame("smoke", R))
    assert table.loc[("resnet_tiny", "class")].tolist() == [best["lr"], best["lr"]]


def _outcome(profile, tmp_path, lr=1e-3, method="ft", grid=None):
    key = T._point_key(profile, "resnet_tiny", 0, "class", method, T._hp(profile, method, lr))
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
    assert tuned.method_overrides["ft"] == {"epochs": 1, "lr": 1e-3}
    assert tuned.method_overrides["ga"] == profile.method_overrides["ga"]
    assert T.with_tuned_rates(profile.replace(tuned_lr=False), "resnet_tiny", "class", tmp_path) == profile.replace(
        tuned_lr=False)
    assert T.with_tuned_rates(profile.replace(methods=("retrain",)), "resnet_tiny", "class", tmp_path).method_overrides \
        == profile.method_overrides                                      # nothing to tune: no file needed
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
