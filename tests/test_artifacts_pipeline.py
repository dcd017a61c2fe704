"""fairgap_utils.computing.artifacts (atomic JSON, checksummed checkpoints) and the cached compute pipeline.

The pipeline tests run the `smoke` profile restricted to resnet_tiny, the class-wise
scenario and two quick methods, on real CIFAR-10 when a local copy exists (FAIRGAP_DATA,
then ../shared/data/cifar10/cifar10-jpeg.npz), else on the synthetic pattern task written
in the same file format.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import assert_percentages_of_counts, real_data_or_patterns
from fairgap_utils.computing import artifacts as A
from fairgap_utils import data as D
from fairgap_utils import metrics as M
from fairgap_utils.computing import pipeline as P
from fairgap_utils.computing import stage as S
from fairgap_utils.config import get_profile
from fairgap_utils.hooks import norm_layers
from fairgap_utils.models import create_model
from fairgap_utils.train import prepare

ARCH, SCENARIO, METHODS = "resnet_tiny", "class", ("ft", "ga")


# --------------------------------------------------------------------------- artifacts

def test_save_json_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "er" / "r.json"
    A.save_json(path, {"b": 1, "a": [1.5, float("nan"), float("inf")], "n": {"x": float("-inf"), 3: "k"}})
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]
    obj = json.loads(path.read_text())
    assert obj == {"a": [1.5, None, None], "b": 1, "n": {"3": "k", "x": None}}
    A.save_json(path, {"b": 2})
    assert A.load_json(path) == {"b": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    A.save_json(path, {"v": 1})

    def boom(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(A.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        A.save_json(path, {"v": 2})
    monkeypatch.undo()
    assert A.load_json(path) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_load_json(tmp_path):
    path = tmp_path / "r.json"
    assert A.load_json(path) is None                                 # absent
    A.save_json(path, {"key": "abc", "x": 1})
    assert A.load_json(path) == {"key": "abc", "x": 1}
    assert A.load_json(path, "abc") == {"key": "abc", "x": 1}
    assert A.load_json(path, "abd") is None                          # made by another configuration
    path.write_text('{"key": "abc", "x": ')                          # truncated
    assert A.load_json(path, "abc") is None


def test_results_and_cache_dirs_follow_env_and_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRGAP_RESULTS", str(tmp_path / "R"))
    monkeypatch.setenv("FAIRGAP_CACHE", str(tmp_path / "C"))
    assert A.results_dir() == tmp_path / "R" and A.cache_dir() == tmp_path / "C"
    assert A.results_dir(tmp_path / "x") == tmp_path / "x" and A.cache_dir(str(tmp_path / "y")) == tmp_path / "y"
    monkeypatch.delenv("FAIRGAP_RESULTS")
    assert A.results_dir() == A.REPO_ROOT / "results"


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_roundtrip_and_checksum(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet_tiny")
    with torch.no_grad():
        model.net.bn1.running_mean.add_(1.0)                         # buffers are saved too
    path = A.save_checkpoint(model, "k1", tmp_path)
    assert path == tmp_path / "checkpoints" / "k1.pt"
    assert path.with_suffix(".sha256").read_text() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in path.parent.iterdir()) == ["k1.pt", "k1.sha256"]
    fresh = create_model("resnet_tiny")
    assert not _same_state(fresh, model)
    assert A.load_checkpoint(fresh, "k1", tmp_path) is True
    assert _same_state(fresh, model)
    assert A.load_checkpoint(create_model("resnet_tiny"), "other", tmp_path) is False


def test_corrupted_checkpoint_fails_the_checksum(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet_tiny")
    path = A.save_checkpoint(model, "k", tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01                                     # one flipped bit
    path.write_bytes(bytes(data))
    fresh = create_model("resnet_tiny")
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert A.load_checkpoint(fresh, "k", tmp_path) is False
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())   # nothing loaded
    path.with_suffix(".sha256").unlink()
    assert A.load_checkpoint(fresh, "k", tmp_path) is False


# --------------------------------------------------------------------------- pipeline

def _compute(data_path, results, cache, **kw):
    args = dict(archs=[ARCH], scenarios=[SCENARIO], methods=list(METHODS), results=results, cache=cache,
                data_path=str(data_path), device="cpu")
    args.update(kw)
    return S.compute(get_profile("smoke"), **args)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory) -> Path:
    return real_data_or_patterns(tmp_path_factory.mktemp("patterns"), 67, 30, "the pipeline tests")


@pytest.fixture(scope="module")
def first_run(data_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    files = _compute(data_path, root / "results", root / "cache")
    return root, files


@pytest.fixture
def run_copy(first_run, tmp_path):
    """A private copy of the first run's results and cache, to modify freely."""
    root, _ = first_run
    shutil.copytree(root, tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def counters(monkeypatch):
    calls = {"run_method": [], "train_supervised": 0}
    real_run, real_train = P.run_method, P.train_supervised

    def run_method(name, *a, **k):
        calls["run_method"].append(name)
        return real_run(name, *a, **k)

    def train_supervised(*a, **k):
        calls["train_supervised"] += 1
        return real_train(*a, **k)
    monkeypatch.setattr(P, "run_method", run_method)
    monkeypatch.setattr(P, "train_supervised", train_supervised)
    return calls


def _files(root: Path) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _measured(record):
    return {k: record[k] for k in ("key", "metrics", "fairness", "attacks", "sizes", "attack_images")} | {
        "hyperparameters": record["stats"]["hyperparameters"], "trainable_params": record["stats"]["trainable_params"]}


def test_compute_writes_one_record_per_model(first_run, data_path):
    root, files = first_run
    base = root / "results" / "smoke" / ARCH / "seed0" / SCENARIO
    assert files == [base / "original.json", base / "ft.json", base / "ga.json"]
    n_layers = len(norm_layers(create_model(ARCH)))
    for f in files:
        r = json.loads(f.read_text())
        assert r["label"] == f.stem and r["arch"] == ARCH and r["scenario"] == SCENARIO and r["seed"] == 0
        assert r["forget_class"] == 9 and r["forget_class_name"] == "truck"
        assert r["sizes"] == {"forget": 60, "retain": 540, "val": 70, "test": 300}
        assert set(r["metrics"]) >= {"UA", "RA", "TA", "MIA"}
        assert_percentages_of_counts(r)
        assert len(r["fairness"]) == n_layers and r["fairness"][0]["layer"] == "bn1"
        assert all(len(L["sigma"]["channel"]) == 10 for L in r["fairness"])
        fgsm = {float(k): v for k, v in r["attacks"]["fgsm"].items()}
        assert sorted(fgsm) == pytest.approx([0.0, 2 / 255, 8 / 255])
        pgd = {float(k): v for k, v in r["attacks"]["pgd"].items()}
        assert sorted(pgd) == pytest.approx([0.0, 8 / 255]) and pgd[0.0] == fgsm[0.0]
        assert r["attack_images"] == 100
        assert r["stats"]["peak_memory_mb"] is None and isinstance(r["stats"]["time_s"], float)
        assert data_path.name in r["data_source"]
    # the original's numbers are its checkpoint's: recomputed here from its weights and the split
    smoke = get_profile("smoke")
    unit = next(u for u in P.plan(smoke, archs=[ARCH], scenarios=[SCENARIO], methods=list(METHODS),
                                  results=root / "results") if u.label == "original")
    model = prepare(create_model(ARCH), "cpu")
    assert A.load_trained(model, unit.model_key, root / "cache") is not None
    split = D.make_split(smoke, 0, SCENARIO, torch.device("cpu"), str(data_path))
    accuracies = M.accuracies(model.eval(), split, smoke.eval.batch_size)
    assert {k: json.loads(files[0].read_text())["metrics"][k] for k in accuracies} == accuracies
    ga = json.loads(files[2].read_text())
    assert ga["stats"]["hyperparameters"]["lr"] == 1e-2 and ga["stats"]["hyperparameters"]["epochs"] == 1
    # checkpoints with their checksums and training log; no temporary file anywhere
    ckpt = sorted(p.name for p in (root / "cache" / "checkpoints").iterdir())
    assert len(ckpt) == 3 and {Path(n).suffix for n in ckpt} == {".pt", ".sha256", ".json"}
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_second_call_recomputes_nothing(data_path, run_copy, counters):
    before = _files(run_copy)
    files = _compute(data_path, run_copy / "results", run_copy / "cache")
    assert counters == {"run_method": [], "train_supervised": 0}
    assert len(files) == 3
    assert _files(run_copy) == before


def test_deleting_one_result_recomputes_only_it(data_path, run_copy, counters):
    before = _files(run_copy)
    target = run_copy / "results" / "smoke" / ARCH / "seed0" / SCENARIO / "ft.json"
    old = json.loads(target.read_text())
    target.unlink()
    _compute(data_path, run_copy / "results", run_copy / "cache")
    assert counters == {"run_method": ["ft"], "train_supervised": 0}     # the original comes from its checkpoint
    after = _files(run_copy)
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {target.relative_to(run_copy)}
    assert _measured(json.loads(target.read_text())) == _measured(old)   # and the same numbers again


def test_stale_result_is_recomputed(data_path, run_copy, counters):
    target = run_copy / "results" / "smoke" / ARCH / "seed0" / SCENARIO / "ga.json"
    r = json.loads(target.read_text())
    r["key"] = "0" * 12
    target.write_text(json.dumps(r))
    _compute(data_path, run_copy / "results", run_copy / "cache")
    assert counters == {"run_method": ["ga"], "train_supervised": 0}
    assert json.loads(target.read_text())["key"] != "0" * 12


def test_corrupted_original_checkpoint_is_retrained(data_path, run_copy, counters):
    ckpt = next((run_copy / "cache" / "checkpoints").glob("*.pt"))
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 3] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    (run_copy / "results" / "smoke" / ARCH / "seed0" / SCENARIO / "original.json").unlink()
    _compute(data_path, run_copy / "results", run_copy / "cache")
    assert counters == {"run_method": [], "train_supervised": 1}
    assert A.load_checkpoint(create_model(ARCH), ckpt.stem, run_copy / "cache")


def test_same_seed_in_fresh_dirs_gives_the_same_metrics(data_path, first_run, tmp_path):
    root, files = first_run
    again = _compute(data_path, tmp_path / "results", tmp_path / "cache")
    assert [p.name for p in again] == [p.name for p in files]
    for a, b in zip(files, again):
        ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
        assert _measured(ra) == _measured(rb), a.name


def _dummy_measure(model, split, profile, seed, pool=None):
    return {"metrics": {}, "fairness": [], "attacks": {}, "attack_images": 0, "eval_time_s": 0.0}


def test_original_model_does_not_depend_on_the_scenario_computed_first(data_path, first_run, tmp_path,
                                                                        monkeypatch):
    root, _ = first_run
    monkeypatch.setattr(P, "measure_model", _dummy_measure)
    monkeypatch.setattr(P, "run_method", lambda name, original, *a, **k: (original, {}))
    _compute(data_path, tmp_path / "results", tmp_path / "cache", scenarios=["random"], methods=["ga"])
    class_ckpts = {p.name: p.read_bytes() for p in (root / "cache" / "checkpoints").glob("*.pt")}
    random_ckpts = {p.name: p.read_bytes() for p in (tmp_path / "cache" / "checkpoints").glob("*.pt")}
    assert class_ckpts.keys() == random_ckpts.keys()          # the same configuration key ...
    name = next(iter(class_ckpts))
    a, b = create_model(ARCH), create_model(ARCH)
    assert A.load_checkpoint(a, Path(name).stem, root / "cache")
    assert A.load_checkpoint(b, Path(name).stem, tmp_path / "cache")
    assert _same_state(a, b)                                   # ... must mean the same model


def test_runs_for_adds_the_k_sweep_in_the_class_scenario():
    p = get_profile("smoke").replace(methods=("ft", "cf_k", "eu_k"))
    labels = [label for label, _, _ in P.runs_for(p, "class")]
    assert labels == ["original", "ft", "cf_k", "cf_k-k2", "eu_k", "eu_k-k2"]
    assert [label for label, _, _ in P.runs_for(p, "random")] == ["original", "ft", "cf_k", "eu_k"]
    overrides = dict((label, ov) for label, _, ov in P.runs_for(p, "class"))
    assert overrides["cf_k-k2"] == {"epochs": 1, "k": 2}
