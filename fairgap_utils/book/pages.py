"""Helpers the book's notebooks share: load (or compute) results, banners, tables, provenance."""
from __future__ import annotations

import pandas as pd
from IPython.display import Markdown, display

from . import report
from ..config import get_profile


def load(profile: str | None = None, results_dir=None, data_path=None, compute_missing: bool = True) -> list[dict]:
    """The result records of a profile; computes whatever is missing first (cached by hash)."""
    p = get_profile(profile)
    if compute_missing:
        from ..pipeline import compute
        compute(p, results=results_dir, data_path=data_path)
    return report.load_records(p.name, results_dir)


def method_facts(method: str, records) -> tuple[str, str, dict]:
    """(title, summary, hyperparameters used) of a method: from the registry, or, for a method
    registered in another process (`register_method` is per process), from its result files."""
    from ..errors import FairgapError
    from ..unlearn import METHODS, hyperparameters
    if method in METHODS:
        overrides = get_profile(records[0]["profile"]).method_overrides.get(method)
        return METHODS[method].title, METHODS[method].summary, hyperparameters(method, overrides)
    runs = [r for r in records if r["method"] == method]
    if not runs:
        raise FairgapError(f"unknown unlearning method {method!r}: not registered here and no result files; "
                           f"registered: {', '.join(METHODS)}")
    return (runs[0]["title"], "A method added with `register_method`; its code is where it was registered.",
            runs[0]["stats"]["hyperparameters"])


def banner(records) -> None:
    """A one-line notice of what produced the numbers on the page."""
    r = records[0]
    seeds = sorted({x["seed"] for x in records})
    note = {"cpu": "**CPU profile**: small models on a subset of real CIFAR-10 images, not the paper's setting.",
            "smoke": "**Smoke profile**: tiny models for a plumbing test; the numbers mean nothing.",
            "paper": "**Paper profile**: full CIFAR-10 on a GPU."}.get(r["profile"], "")
    display(Markdown(f"> {note} Data: {r['data_source']}. Seeds: {len(seeds)} ({', '.join(map(str, seeds))}). "
                     f"Hardware: {r['provenance']['hardware']}. Mean ± std over seeds where there are several."))


def provenance_box(records) -> None:
    display(Markdown("**Provenance** (read from the result files)"))
    display(report.provenance(records))


def mean_pm_std(df: pd.DataFrame, by: list, cols: list, digits: int = 1) -> pd.DataFrame:
    """A table of 'mean ± std' strings over seeds."""
    g = df.groupby(by, sort=False)[cols]
    mean, std = g.mean(), g.std()
    out = mean.copy().astype(object)
    for c in cols:
        out[c] = [f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if pd.notna(s) else "") for m, s in zip(mean[c], std[c])]
    return out


def settings_table(profile_name: str | None = None) -> pd.DataFrame:
    """The choices the paper leaves open and the values this profile uses."""
    p = get_profile(profile_name)
    from ..unlearn import METHODS, hyperparameters
    rows = [
        ("σ_c definition", "channel (default); pooled and sample also measured", "fairness.SIGMA_DEFINITIONS"),
        ("classes in max/min", "all classes and retained only, both reported", "fairness.CLASS_SETS"),
        ("features from", p.eval.fairness_split + " set", "EvalConfig.fairness_split"),
        ("forget set", f"class-wise: class {p.forget_class} (truck); random: {p.forget_fraction:.0%} of train",
         "Profile.forget_class / forget_fraction"),
        ("architectures", ", ".join(p.archs), "models.MODELS"),
        ("images per class (train / test)", f"{p.n_train_per_class or 'all'} / {p.n_test_per_class or 'all'}",
         "Profile.n_train_per_class / n_test_per_class"),
        ("original training (ResNet)", _fmt(p.train_resnet), "Profile.train_resnet"),
        ("original training (ViT)", _fmt(p.train_vit), "Profile.train_vit"),
        ("FGSM ε (×1/255)", ", ".join(map(str, p.eval.fgsm_eps)), "EvalConfig.fgsm_eps"),
        ("PGD ε (×1/255), steps", f"{', '.join(map(str, p.eval.pgd_eps))}; {p.eval.pgd_steps} steps, step 2.5ε/steps, "
         f"random start {p.eval.pgd_random_start}", "EvalConfig.pgd_*"),
        ("attacked test images", str(p.eval.attack_images or "all"), "EvalConfig.attack_images"),
        ("CF-k / EU-k sweep", ", ".join(map(str, p.k_sweep)), "Profile.k_sweep"),
        ("seeds", ", ".join(map(str, p.seeds)), "Profile.seeds"),
        ("learning rates of the approximate methods",
         ("tuned per architecture and scenario" if p.tuned_lr else "fixed, as below")
         + f"; search grid {', '.join(f'{lr:g}' for lr in p.lr_grid)} (`python -m fairgap_utils tune`)",
         "Profile.tuned_lr / lr_grid"),
    ]
    for m in p.methods:
        hp = hyperparameters(m, p.method_overrides.get(m))
        rows.append((f"{METHODS[m].title}", ", ".join(f"{k}={v}" for k, v in hp.items()) or "as the original",
                     "register_method(defaults=...)" if METHODS[m].registered else f"unlearn/{m}.py DEFAULTS"))
    return pd.DataFrame(rows, columns=["setting", "value used", "where to change it"]).set_index("setting")


def _fmt(t) -> str:
    return (f"{t.epochs} epochs, batch {t.batch_size}, {t.optimizer} lr {t.lr} ({t.schedule}), "
            f"wd {t.weight_decay}, label smoothing {t.label_smoothing}, augment {t.augment}")
