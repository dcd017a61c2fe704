"""The paper profile's own code path on a CPU, at a reduced size, so no GPU minute goes to finding a crash.

Everything of the `paper` profile is kept (its name, archs resnet50 / vit_small / resnet18,
method hyperparameters other than epochs, optimizers, schedules, batch sizes, the k sweep,
Retrain replicates, variants) except the sizes: 1 training image and 1 test image per class,
1 epoch everywhere, one FGSM and one one-step PGD epsilon, and on the two ResNets 2 attacked
images (vit_small attacks every remaining-class test image, as the paper profile does).
Every method and every kind of run appears on at least one paper architecture (the smoke
profile runs them all on both of its tiny models); about a minute of one CPU core:

- resnet50, class-wise: original, CF-k at k = 1 and 3 (its last Conv/Linear layers)
- vit_small, class-wise: original, EU-k at k = 1 and 3, SCRUB and a non-k variant (`scrub-cosine`),
  BS, RL, GA, l1-sparse
- resnet18, random 10%: original, Retrain + replicate r1, FT, SalUn

Not run here, because they exist only on CUDA: bf16 autocast, channels_last, cudnn.benchmark
and TF32, peak-memory statistics, the MIA's SVM on a thread, torch.compile (off in paper).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from conftest import assert_percentages_of_counts, real_data_or_patterns
from fairgap_utils.computing import pipeline as P
from fairgap_utils.computing import stage as S
from fairgap_utils.config import get_profile
from fairgap_utils.hooks import norm_layers
from fairgap_utils.registries import methods_of
from fairgap_utils.models import create_model, weight_layers

RUNS = {  # (arch, scenario): methods
    ("resnet50", "class"): ("cf_k",),
    ("vit_small", "class"): ("eu_k", "scrub", "bs", "rl", "ga", "l1_sparse"),
    ("resnet18", "random"): ("retrain", "ft", "salun", "keep_gap"),
}
LABELS = {
    ("resnet50", "class"): ["original", "cf_k", "cf_k-k3"],
    ("vit_small", "class"): ["original", "eu_k", "eu_k-k3", "scrub", "scrub-cosine", "bs", "rl", "ga", "l1_sparse"],
    ("resnet18", "random"): ["original", "retrain", "ft", "salun", "keep_gap", "retrain-r1"],
}
ATTACKED = {"resnet50": 2, "vit_small": None, "resnet18": 2}   # attack_images (None: all 9 or 10)


def reduced_paper(arch="vit_small"):
    p = get_profile("paper")
    one_epoch = {m: {"epochs": 1} for m in ("ft", "cf_k", "eu_k", "ga", "rl", "salun", "bs", "l1_sparse", "keep_gap")}
    return p.replace(n_train_per_class=1, n_test_per_class=1,
                     train_resnet=dataclasses.replace(p.train_resnet, epochs=1),
                     train_vit=dataclasses.replace(p.train_vit, epochs=1),
                     eval=dataclasses.replace(p.eval, fgsm_eps=(4,), pgd_eps=(8,), pgd_steps=1,
                                              attack_images=ATTACKED[arch]),
                     method_overrides=one_epoch | {"scrub": {"epochs": 1, "msteps": 1}},
                     retrain_replicates=1, variants={"scrub": ({"schedule": "cosine"},)})


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    data = real_data_or_patterns(tmp_path_factory.mktemp("patterns"), 2, 1, "the paper-path rehearsal")
    root = tmp_path_factory.mktemp("paper")
    done = {}
    for (arch, scenario), methods in RUNS.items():
        p = reduced_paper(arch)
        done[arch, scenario] = S.compute(p, archs=[arch], scenarios=[scenario], methods=list(methods),
                                         results=root / "results", cache=root / "cache", data_path=data,
                                         device="cpu", allow_cpu=True, log=lambda line: None, overlap_svm=True)
    return root, done


def test_reduced_profile_differs_from_paper_only_in_size():
    p, paper = reduced_paper(), get_profile("paper")
    assert reduced_paper("resnet50").eval.attack_images == 2
    assert p.name == "paper" and p.archs == paper.archs and p.seeds == paper.seeds
    assert p.scenarios == paper.scenarios and p.k_sweep == paper.k_sweep and p.compile == paper.compile
    for field in ("optimizer", "lr", "batch_size", "schedule", "weight_decay", "augment", "label_smoothing"):
        assert getattr(p.train_resnet, field) == getattr(paper.train_resnet, field)
        assert getattr(p.train_vit, field) == getattr(paper.train_vit, field)
    assert p.eval.attack_images is None and p.eval.fairness_split == paper.eval.fairness_split
    assert p.eval.batch_size == paper.eval.batch_size
    assert set(RUNS) == {("resnet50", "class"), ("vit_small", "class"), ("resnet18", "random")}
    covered = {m for methods in RUNS.values() for m in methods}
    assert covered == set(methods_of(paper))                       # every method on a paper architecture


def test_every_unit_of_the_reduced_paper_profile_is_computed(paper_run):
    root, done = paper_run
    for (arch, scenario), result in done.items():
        p = reduced_paper(arch)
        assert result.complete and not result.stopped_for_budget
        assert [Path(f).stem for f in result] == LABELS[arch, scenario]
        units = P.plan(p, archs=[arch], scenarios=[scenario], methods=list(RUNS[arch, scenario]),
                       results=root / "results")
        assert all(u.present for u in units)                    # a rerun would compute nothing


def test_records_of_the_paper_architectures(paper_run):
    root, done = paper_run
    for (arch, scenario), result in done.items():
        model = create_model(arch)
        n_layers, n_weight_layers = len(norm_layers(model)), len(weight_layers(model))
        for f in result:
            r = json.loads(Path(f).read_text())
            assert r["profile"] == "paper" and r["arch"] == arch and r["scenario"] == scenario
            assert len(r["fairness"]) == n_layers
            assert all(len(L["sigma"]["channel"]) == 10 for L in r["fairness"])
            assert_percentages_of_counts(r)
            assert r["attack_images"] == (9 if arch == "vit_small" else 2)    # vit: every remaining-class image
            assert r["eval"]["attack_images"] == ATTACKED[arch] and r["eval"]["pgd_steps"] == 1
            assert r["stats"]["total_params"] == sum(q.numel() for q in model.parameters())
            if r["method"] in ("cf_k", "eu_k"):
                assert r["stats"]["logs"]["units_total"] == n_weight_layers   # k counts Conv/Linear layers
                assert r["stats"]["trainable_params"] < r["stats"]["total_params"]
            if r["label"] == "retrain-r1":
                assert r["stats"]["hyperparameters"] == {"replicate": 1}
    ckpts = {f.stem for f in (root / "cache" / "checkpoints").glob("*.pt")}
    assert len(ckpts) == 3 + 2                     # one original per architecture, Retrain and its replicate
    units = {u.label: u for u in P.plan(reduced_paper("resnet18"), archs=["resnet18"], scenarios=["random"],
                                        methods=["retrain"])}
    assert {units["retrain"].model_key, units["retrain-r1"].model_key} <= ckpts
