"""Profiles: every knob of a run in one frozen object, hashed to key cached artifacts.

Three profiles, picked by name (`get_profile`):

- `smoke`: CI and tests. Tiny models, 60 training images per class, 2 epochs. Minutes.
- `cpu`: a laptop or a 2-core machine. ResNet-18 at 1/8 width and a tiny ViT on
  1,000 training / 100 test images per class, 10 seeds; no PGD; resumable.
- `paper`: one GPU. Full CIFAR-10, ResNet-50 and SmallViT (plus ResNet-18), 40 epochs.

Every choice the paper leaves open is a field here with its default documented; the
book prints the values that produced its numbers (`pages.settings_table`).

A leaf: `validate` checks every value a profile holds by itself; the names it takes from the
registries (architectures, methods and their hyperparameters, KeepGap's targets) are checked where
they enter, by `registries.check_profile` (the CLI, the public api, the planner).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from dataclasses import dataclass, field

from .definitions import CLASS_SETS, SIGMA_DEFINITIONS
from .errors import FairgapError, check_choice, check_range

SCENARIOS = ("class", "random")   # class-wise forgetting (one whole class) | random forgetting (a share of D_train)

CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "cifar100": tuple(f"class{i}" for i in range(100)),  # replaced by torchvision's names on load
}


def resolve_class(value, classes) -> int:
    """A class given by index or by name, checked."""
    if isinstance(value, str) and not value.isdigit():
        if value not in classes:
            raise FairgapError(f"unknown forget class {value!r}; valid choices: {', '.join(classes)} "
                               f"or an index 0-{len(classes) - 1}")
        return classes.index(value)
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, str)):
        raise FairgapError(f"forget class {value!r} must be a class index 0-{len(classes) - 1} or a name "
                           f"({', '.join(classes[:10])})")
    idx = int(value)
    if not 0 <= idx < len(classes):
        raise FairgapError(f"forget class {value!r} is out of range; valid: 0-{len(classes) - 1} "
                           f"or a name ({', '.join(classes[:10])})")
    return idx


@dataclass(frozen=True)
class TrainConfig:
    """How the original model and Retrain are trained (one loop, `train.fit`)."""
    epochs: int = 40
    batch_size: int = 512
    optimizer: str = "sgd"          # sgd (nesterov, momentum 0.9) | adamw
    lr: float = 0.2                 # peak learning rate of the schedule
    weight_decay: float = 5e-4
    schedule: str = "onecycle"      # onecycle | cosine | constant
    label_smoothing: float = 0.0
    augment: bool = True            # random crop (padding 4) + horizontal flip, on the device


@dataclass(frozen=True)
class EvalConfig:
    """What is measured on every model."""
    fgsm_eps: tuple = (1, 2, 4, 8)  # in units of 1/255
    pgd_eps: tuple = (2, 8)         # in units of 1/255
    pgd_steps: int = 10
    pgd_random_start: bool = True
    attack_images: int | None = None  # remaining-class test images attacked (None: every one)
    fairness_split: str = "test"    # test | retain: the images whose features give sigma_c
    batch_size: int = 500
    mia_member_subsets: int = 10    # MIA-efficacy: the mean over this many draws of the member images from D_r


@dataclass(frozen=True)
class AnalysisConfig:
    """How the verdicts read the results, declared before any result is read.

    Not part of any result's hash: changing it re-reads the same result files.
    """
    definition: str = "channel"     # sigma definition of the headline fairness-gap
    class_set: str = "all"          # classes entering max/min of the headline fairness-gap
    attack: str = "fgsm"            # headline attack: the paper's
    attack_eps: float = 4           # headline epsilon (x1/255): the middle of the FGSM sweep 1, 2, 4, 8
    c5_k: int = 3                   # the CF-k / EU-k depth C5 is judged at (k counts Conv/Linear layers)
    collapse_fraction: float = 0.5  # "collapsed": test accuracy below this share of its own original's
    min_seeds: int = 3              # fewest seeds behind an interval; with fewer, no interval is drawn
    level: float = 0.95             # confidence level of every interval
    # The analysis plan (book/analysis_plan.md, committed before the results that it judges):
    alpha: float = 0.05             # family-wise error rate of each Holm family
    floor_bound: float = 0.95       # the noise floor uses this one-sided lower confidence bound of the Retrain sd
    margin_ua_class: float = 1.0    # points: UA's margin class-wise, declared (every Retrain has UA = 100)
    margin_mia_class: float = 1.0   # points: MIA-efficacy's margin class-wise, declared (every Retrain has 100)
    margin_rho: float = 0.3         # |rho| below this is no meaningful correlation (C2)
    c2_measure: str = "partial"     # C2's verdict: partial rho(eps, adversarial accuracy | clean accuracy)
    keep_gap_weights: tuple = (1, 3, 10, 30, 100, 300, 1000)   # KeepGap: the weights its calibration tries
    keep_gap_val_margin: float = 2.0   # points: the largest weight whose validation accuracy is this close to RL's
    dose_seeds: tuple = (0, 1, 2)   # the dose-response's seeds (class-wise)
    dose_multipliers: tuple = (0, 0.25, 0.5, 1, 2, 4)   # times each penalty's calibrated weight
    dose_slope_margin: float = 0.05    # points of FGSM accuracy per unit of 100 log(eps/eps_RL)


@dataclass(frozen=True)
class Profile:
    name: str
    archs: tuple
    n_train_per_class: int | None   # None: all 5000 (minus validation)
    n_test_per_class: int | None    # None: all 1000
    seeds: tuple
    train_resnet: TrainConfig
    train_vit: TrainConfig
    eval: EvalConfig
    dataset: str = "cifar10"
    val_fraction: float = 0.1       # held out per class, as in the SalUn protocol (45k/5k)
    scenarios: tuple = SCENARIOS
    forget_class: int | str = 9     # class-wise scenario: index or name ("truck")
    forget_fraction: float = 0.1    # random scenario: share of the training set forgotten
    methods: tuple | None = None    # None: every registered method whose PROFILES names this profile
    k_sweep: tuple = (1, 3)         # CF-k / EU-k depths (Conv/Linear layers) run in the class-wise scenario (C5)
    variants: dict = field(default_factory=dict)  # {method: ({hyperparameter: value}, ...)}: extra class-wise runs
    method_overrides: dict = field(default_factory=dict)  # {method: {hyperparameter: value}}, over its PROFILES
    retrain_replicates: int = 4     # extra Retrains of seed `noise_floor_seed` (same split, other training
    noise_floor_seed: int = 0       # seeds), per scenario: the Retrain-vs-Retrain noise floor of the verdicts
    analysis: AnalysisConfig = AnalysisConfig()
    # `tune`: rates tried per approximate method, 5 log-spaced over [1e-4, 1e-1] (the SalUn/l1-sparse range)
    lr_grid: tuple = (1e-4, 5.6e-4, 3.2e-3, 1.8e-2, 1e-1)
    tuned_lr: bool = False          # compute each approximate method at the rate `tune` chose per (arch, scenario)
    # KeepGap (beyond the paper): its weight per target chosen by `tune --methods keep_gap` (the analysis plan's
    # rule), read per architecture by tune.with_tuned_rates into keep_gap_weight ({target: weight}; empty: the
    # weight of method_overrides); keep_gap_dose: plan the dose-response runs (class-wise, analysis.dose_seeds)
    keep_gap_calibrated: bool = False
    keep_gap_weight: dict = field(default_factory=dict)
    keep_gap_dose: bool = False
    compile: bool = False           # torch.compile the training step (CUDA only)
    description: str = ""

    def train_config(self, arch: str) -> TrainConfig:
        return self.train_vit if arch.startswith("vit") else self.train_resnet

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "Profile":
        return validate(dataclasses.replace(self, **changes))


def config_hash(*parts) -> str:
    """A short, stable hash of JSON-able configuration parts (dataclasses allowed)."""
    def plain(x):
        return dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x
    blob = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


_VIT_TRAIN = dict(optimizer="adamw", lr=2e-3, weight_decay=0.05, schedule="onecycle")

PROFILES = {
    "smoke": Profile(
        name="smoke", archs=("resnet_tiny", "vit_micro"), n_train_per_class=60, n_test_per_class=30,
        seeds=(0,),
        train_resnet=TrainConfig(epochs=3, batch_size=100, lr=0.1),
        train_vit=TrainConfig(epochs=3, batch_size=100, **{**_VIT_TRAIN, "lr": 3e-3}),
        eval=EvalConfig(fgsm_eps=(2, 8), pgd_eps=(8,), pgd_steps=3, attack_images=100, batch_size=300),
        k_sweep=(1, 2), retrain_replicates=1, analysis=AnalysisConfig(attack_eps=8, c5_k=2, min_seeds=2),
        lr_grid=(1e-3, 1e-1),
        description="CI smoke test: tiny models, 60 train / 30 test images per class, 1 seed."),
    "cpu": Profile(
        name="cpu", archs=("resnet18_w8", "vit_tiny"), n_train_per_class=1000, n_test_per_class=100,
        seeds=tuple(range(10)),
        # recipes chosen by measurement (benchmarks/cpu_recipe.py; docs/computing.md)
        train_resnet=TrainConfig(epochs=15, batch_size=64, lr=0.2, label_smoothing=0.1),
        train_vit=TrainConfig(epochs=18, batch_size=64, **{**_VIT_TRAIN, "lr": 5e-3}),
        eval=EvalConfig(fgsm_eps=(1, 2, 4, 8), pgd_eps=(), batch_size=128),   # PGD at 8/255: 0% on every model
        variants={"keep_gap": ({"target": "spread"},)},
        keep_gap_calibrated=True, keep_gap_dose=True,   # weights: results/cpu/tuning/<arch>/keep_gap.json
        description="Real CIFAR-10 images on a CPU: 1,000 train / 100 test images per class, "
                    "small models, 10 seeds."),
    "paper": Profile(
        name="paper", archs=("resnet50", "vit_small", "resnet18"), n_train_per_class=None,
        n_test_per_class=None, seeds=(0,),
        train_resnet=TrainConfig(epochs=40, batch_size=512, lr=0.2, label_smoothing=0.0),
        train_vit=TrainConfig(epochs=40, batch_size=512, **_VIT_TRAIN),
        eval=EvalConfig(mia_member_subsets=3),   # at full CIFAR-10 each draw's SVM takes ~5 s of CPU
        compile=False,
        description="Full CIFAR-10 on one GPU: ResNet-50, SmallViT and ResNet-18, 40 epochs."),
}


def default_profile_name() -> str:
    import torch  # lazy: only a profile-less call asks for CUDA; reading a profile needs no torch
    return "paper" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The named profile (default: `paper` on a CUDA machine, else `cpu`), with overrides."""
    name = name or default_profile_name()
    check_choice("profile", name, PROFILES)
    return PROFILES[name].replace(**overrides) if overrides else validate(PROFILES[name])


def validate(p: Profile) -> Profile:
    """Check every value the profile holds by itself up front; one line per mistake.

    The registries' names (architectures, methods, hyperparameters, KeepGap targets) are
    `registries.check_profile`'s, at the boundary where they enter.
    """
    for s in p.scenarios:
        check_choice("forget scenario", s, SCENARIOS)
    check_choice("dataset", p.dataset, ("cifar10", "cifar100"))
    resolve_class(p.forget_class, CLASS_NAMES[p.dataset])
    check_range("forget_fraction", p.forget_fraction, 0.001, 0.9)
    check_range("val_fraction", p.val_fraction, 0.0, 0.5)
    for e in (*p.eval.fgsm_eps, *p.eval.pgd_eps):
        check_range("attack epsilon (in units of 1/255)", e, 0, 255)
    check_choice("fairness_split", p.eval.fairness_split, ("test", "retain"))
    check_range("pgd_steps", p.eval.pgd_steps, 1, 10_000)
    for k in p.k_sweep:
        check_range("k_sweep value (last layers unlearned)", k, 1, 10_000)
    check_range("retrain_replicates", p.retrain_replicates, 0, 1000)
    for target, weight in p.keep_gap_weight.items():
        check_range(f"KeepGap weight ({target})", weight, 0, 1e9)
    if not p.lr_grid:
        raise FairgapError("lr_grid is empty; give at least one learning rate, e.g. lr_grid=(1e-3, 1e-2)")
    for lr in p.lr_grid:
        check_range("lr_grid value (learning rate)", lr, 1e-7, 10)
    a = p.analysis
    check_choice("sigma definition", a.definition, SIGMA_DEFINITIONS)
    check_choice("class set", a.class_set, CLASS_SETS)
    check_choice("headline attack", a.attack, ("fgsm", "pgd"))
    check_choice(f"headline {a.attack.upper()} epsilon (x1/255)", a.attack_eps,
                 p.eval.fgsm_eps if a.attack == "fgsm" else p.eval.pgd_eps)
    check_choice("c5_k (a value of k_sweep)", a.c5_k, p.k_sweep)
    check_range("collapse_fraction", a.collapse_fraction, 0.0, 1.0)
    check_range("min_seeds", a.min_seeds, 2, 10_000)
    check_range("level", a.level, 0.5, 0.999)
    check_range("alpha", a.alpha, 1e-6, 0.5)
    check_range("floor_bound", a.floor_bound, 0.5, 0.999)
    check_choice("c2_measure", a.c2_measure, ("partial", "adv", "drop"))
    check_range("mia_member_subsets", p.eval.mia_member_subsets, 1, 1000)
    for t in (p.train_resnet, p.train_vit):
        check_choice("optimizer", t.optimizer, ("sgd", "adamw"))
        check_choice("schedule", t.schedule, ("onecycle", "cosine", "constant"))
    if not p.seeds:
        raise FairgapError("seeds is empty; give at least one seed, e.g. seeds=(0,)")
    for seed in p.seeds:  # numpy and python's random take seeds in [0, 2^32)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise FairgapError(f"seed {seed!r} is not a whole number; give seeds like 0 1 2")
        check_range("seed", seed, 0, 2**32 - 1)
    return p
