"""The compute stage: original -> Retrain and every method -> measurements -> small JSON files.

    compute(get_profile("cpu"))          # everything the book needs, resumable

For each architecture and seed: train (or load) the original model; for each forget
scenario, measure the original, Retrain (checkpointed) and every method run. Each model's
measurements land in their own JSON file as soon as they exist; a rerun skips every file
whose configuration hash matches, so an interrupted run resumes where it stopped.
Needs only torch, torchvision, numpy, pillow and scikit-learn: it runs on a bare GPU host.
"""
from __future__ import annotations

import platform
import sys
import time

import torch

from . import artifacts as A
from . import data as D
from .attacks import accuracy_under_attack
from .config import Profile, config_hash
from .data import CLASS_NAMES, resolve_class
from .errors import FairgapError, check_choice
from .fairness import class_sigmas
from .metrics import unlearning_metrics
from .models import create_model
from .train import prepare, progress, seed_everything, train_supervised
from .tune import with_tuned_rates
from .unlearn import METHODS, Context, hyperparameters, run_method

RESULTS_VERSION = 2  # bump when the meaning of a stored number changes


def runs_for(profile: Profile, scenario: str) -> list[tuple[str, str, dict]]:
    """(label, method, overrides) of every model measured in a scenario, original first."""
    runs = [("original", "original", {})]
    for m in profile.methods:
        overrides = dict(profile.method_overrides.get(m, {}))
        runs.append((m, m, overrides))
        if m in ("cf_k", "eu_k") and scenario == "class":
            default_k = hyperparameters(m, overrides)["k"]
            runs += [(f"{m}-k{k}", m, {**overrides, "k": k}) for k in profile.k_sweep if k != default_k]
    return runs


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance() -> dict:
    import numpy
    import torchvision
    return {"hardware": hardware(), "python": sys.version.split()[0], "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__, "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def measure(model, split, profile: Profile, seed: int) -> dict:
    """UA/RA/TA/MIA, per-layer per-class sigma and FGSM/PGD accuracy of one model."""
    ev = profile.eval
    start = time.perf_counter()
    metrics = unlearning_metrics(model, split, ev.batch_size)
    fx, fy = (split.x_test, split.y_test) if ev.fairness_split == "test" else (split.x_retain, split.y_retain)
    fairness = class_sigmas(model, fx, fy, split.num_classes, ev.batch_size)
    ax, ay = split.test_remaining()
    if ev.attack_images is not None:  # a fixed random subset: the test arrays are sorted by class
        pick = torch.randperm(len(ax), generator=torch.Generator().manual_seed(0))[:ev.attack_images].to(ax.device)
        ax, ay = ax[pick], ay[pick]
    attacks = {
        "fgsm": accuracy_under_attack(model, ax, ay, "fgsm", [0.0] + [e / 255 for e in ev.fgsm_eps], ev.batch_size, seed),
        "pgd": accuracy_under_attack(model, ax, ay, "pgd", [e / 255 for e in ev.pgd_eps], ev.batch_size, seed,
                                     steps=ev.pgd_steps, random_start=ev.pgd_random_start),
    }
    attacks["pgd"][0.0] = attacks["fgsm"][0.0]
    return {"metrics": metrics, "fairness": fairness, "attacks": attacks, "attack_images": len(ax),
            "eval_time_s": time.perf_counter() - start}


def _keys(profile: Profile, arch: str, seed: int):
    data_cfg = dict(dataset=profile.dataset, n_train=profile.n_train_per_class, n_test=profile.n_test_per_class,
                    val_fraction=profile.val_fraction)
    original = config_hash("original", RESULTS_VERSION, data_cfg, arch, profile.train_config(arch), seed)
    return data_cfg, original


def compute(profile: Profile, archs=None, seeds=None, scenarios=None, methods=None, results=None,
            cache=None, data_path=None, device=None) -> list:
    """Compute (or reuse) every result of `profile`; returns the paths of the result files."""
    def chosen(value, default):
        return tuple(default if value is None else value)
    profile = profile.replace(archs=chosen(archs, profile.archs), seeds=chosen(seeds, profile.seeds),
                              scenarios=chosen(scenarios, profile.scenarios), methods=chosen(methods, profile.methods))
    archs, seeds = profile.archs, profile.seeds
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    root = A.results_dir(results) / profile.name
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    written = []
    for arch in archs:
        for seed in seeds:
            written += _compute_one(profile, arch, seed, root, cache, data_path, device)
    return written


def _original_model(profile, arch, seed, key, split, cache, device):
    """The original model, trained once per (arch, seed) on the whole training set and checkpointed."""
    seed_everything(seed)
    model = prepare(create_model(arch, split.num_classes), device)
    log = A.load_trained(model, key, cache)
    if log is None:
        with A.checkpoint_lock(key, cache):  # another job may be training it: wait, then load
            log = A.load_trained(model, key, cache)
            if log is None:
                seed_everything(seed)
                model = prepare(create_model(arch, split.num_classes), device)
                log = train_supervised(model, split.x_train, split.y_train, profile.train_config(arch), seed,
                                       desc=f"original {arch} seed {seed}", compile=profile.compile)
                A.save_trained(model, key, log, cache)
    model = prepare(model, device).eval()
    for p in model.parameters():
        p.requires_grad_(True)
    stats = {"method": "original", "hyperparameters": {}, "time_s": log["train_time_s"],
             "trainable_params": sum(p.numel() for p in model.parameters()),
             "total_params": sum(p.numel() for p in model.parameters()), "peak_memory_mb": None,
             "logs": {"loss_per_epoch": log["loss_per_epoch"]}}
    return model, stats


def _unlearned_model(method, overrides, original, split, ctx, retrain_key, cache, device):
    """Run a method on the original; Retrain is checkpointed (it is the costly one)."""
    seed_everything(ctx.seed)
    if method != "retrain":
        return run_method(method, original, split, ctx, overrides)
    model = prepare(create_model(ctx.arch, split.num_classes), device)
    with A.checkpoint_lock(retrain_key, cache):  # another job may be training it: wait, then load
        log = A.load_trained(model, retrain_key, cache)
        if log is not None:
            return prepare(model, device).eval(), log["stats"]
        model, stats = run_method(method, original, split, ctx, overrides)
        A.save_trained(model, retrain_key, {"stats": stats}, cache)
    return model, stats


def _compute_one(profile, arch, seed, root, cache, data_path, device) -> list:
    """Every result of one (architecture, seed). Nothing is loaded when every result is cached."""
    data_cfg, original_key = _keys(profile, arch, seed)
    eval_key = config_hash(profile.eval)
    cached = {}

    def lazy(name, make):
        if name not in cached:
            cached[name] = make()
        return cached[name]

    written = []
    for scenario in profile.scenarios:
        forget_class = resolve_class(profile.forget_class, CLASS_NAMES[profile.dataset]) if scenario == "class" else None
        scenario_cfg = dict(scenario=scenario, forget_class=forget_class,
                            forget_fraction=profile.forget_fraction if scenario == "random" else None)
        retrain_key = config_hash("retrain", RESULTS_VERSION, data_cfg, scenario_cfg, arch,
                                  profile.train_config(arch), seed)
        runs = runs_for(with_tuned_rates(profile, arch, scenario, root.parent), scenario)
        bar = progress(runs, desc=f"{profile.name} {arch} seed {seed} {scenario}")
        for label, method, overrides in bar:
            hp = {} if method == "original" else hyperparameters(method, overrides)
            code = [] if method == "original" or not METHODS[method].fingerprint else [METHODS[method].fingerprint]
            model_key = (original_key if method == "original" else retrain_key if method == "retrain"
                         else config_hash(original_key, scenario_cfg, method, hp, seed, *code))  # code: registered only
            key = config_hash(model_key, eval_key, scenario_cfg, RESULTS_VERSION)
            path = root / arch / f"seed{seed}" / scenario / f"{label}.json"
            written.append(path)
            if A.load_json(path, key) is not None:
                continue
            bar.set_postfix(model=label)
            split = lazy(scenario, lambda: D.make_split(profile, seed, scenario, device, data_path))
            original, original_stats = lazy("original", lambda: _original_model(
                profile, arch, seed, original_key, split, cache, device))
            if method == "original":
                model, stats = original, original_stats
            else:
                ctx = Context(original=original, train_config=profile.train_config(arch), arch=arch, seed=seed,
                              compile=profile.compile)
                model, stats = _unlearned_model(method, overrides, original, split, ctx, retrain_key, cache, device)
            A.save_json(path, {
                "key": key, "results_version": RESULTS_VERSION, "profile": profile.name, "arch": arch,
                "seed": seed, "scenario": scenario, "forget_class": split.forget_class,
                "forget_class_name": None if split.forget_class is None else split.classes[split.forget_class],
                "classes": list(split.classes), "label": label, "method": method,
                "title": "Original" if method == "original" else METHODS[method].title,
                "sizes": {"forget": len(split.x_forget), "retain": len(split.x_retain), "val": len(split.x_val),
                          "test": len(split.x_test)},
                "data_source": split.source, "stats": stats, **measure(model, split, profile, seed),
                "provenance": provenance(),
            })
    return written


def check_names(archs=(), methods=(), scenarios=()):
    from .models import MODELS
    for a in archs:
        check_choice("architecture", a, MODELS)
    for m in methods:
        check_choice("unlearning method", m, METHODS)
    for s in scenarios:
        check_choice("forget scenario", s, ("class", "random"))


__all__ = ["compute", "measure", "runs_for", "FairgapError"]
