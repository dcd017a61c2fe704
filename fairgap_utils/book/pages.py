"""Helpers the book's notebooks share: the results a page shows (`sources`), banners, tables, provenance."""
from __future__ import annotations

import os

import pandas as pd
from IPython.display import Markdown, display

from .. import manifest
from ..config import get_profile
from ..errors import FairgapError
from . import captions, report
from .sources import load  # noqa: F401  (pages.load: what a page's first cell calls)


def live_kernel() -> bool:
    """False while the book is built (the runner sets FAIRGAP_BOOK_BUILD=1): cells for a live kernel
    only (the ipywidgets explorers, removed from the book) are skipped there."""
    return os.environ.get("FAIRGAP_BOOK_BUILD") != "1"


def method_facts(method: str, records) -> tuple[str, str, dict]:
    """(title, summary, hyperparameters used) of a method: as the plan of the records' profile says
    (`manifest.method_facts`), or, for a method registered in another process (`register_method` is
    per process), from its result files."""
    facts = manifest.method_facts(profile=records[0]["profile"] if records else None)
    entry = facts.get(method, {})
    if "summary" in entry:
        return entry["title"], entry["summary"], entry["hyperparameters"]
    runs = [r for r in records if r["method"] == method]
    if not runs:
        raise FairgapError(f"unknown unlearning method {method!r}: not registered here and no result files; "
                           f"known: {', '.join(m for m in facts if m != 'original')}")
    return (runs[0]["title"], "A method added with `register_method`; its code is where it was registered.",
            runs[0]["stats"]["hyperparameters"])


def banner(records) -> None:
    """A notice of what produced the numbers on the page, which results it shows and what the profile holds."""
    r = records[0]
    seeds = sorted({x["seed"] for x in records})
    note = {"cpu": "**CPU profile**: small models on a subset of real CIFAR-10 images, not the paper's setting.",
            "smoke": "**Smoke profile**: tiny models for a plumbing test; the numbers mean nothing.",
            "paper": "**Paper profile**: full CIFAR-10 on a GPU."}.get(r["profile"], "")
    text = (f"> {note} Data: {r['data_source']}. Seeds: {len(seeds)} ({', '.join(map(str, seeds))}). "
            f"Hardware: {r['provenance']['hardware']}. Mean ± std over seeds where there are several.")
    source, cov = getattr(records, "source", None), getattr(records, "coverage", None)
    if source:
        text += f"\n>\n> {source}"
    if cov is not None and (not cov.complete or cov.other_configuration):
        text += f"\n>\n> {cov.sentence()}"
    display(Markdown(text))


SCALE = {"cpu": "small models (ResNet-18 at 1/8 width, a tiny ViT) on 1,000 training images per class of real "
                "CIFAR-10, on CPUs: not the paper's setting",
         "smoke": "tiny models on 60 images per class: a plumbing test whose numbers mean nothing",
         "paper": "the paper's setting: ResNet-50, SmallViT and ResNet-18 on full CIFAR-10, on a GPU"}


def scale_sentence(records) -> str:
    """One sentence: which profile, scale and seeds the book's numbers come from (markdown)."""
    r = records[0]
    seeds = sorted({x["seed"] for x in records})
    span = f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1 else \
        ", ".join(map(str, seeds))
    return (f"This book shows the **{r['profile']} profile**: {SCALE.get(r['profile'], r['profile'])}; "
            f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({span}), {len(records)} result files.")


def compute_time(records) -> str:
    """What computing the shown result files cost, summed from the times they record (`report.compute_seconds`:
    each original once, as the provenance box counts it) (markdown)."""
    seconds = sum(report.compute_seconds(records))
    hardware = sorted({r.get("provenance", {}).get("hardware", "unknown") for r in records})
    return (f"Computing them took {seconds / 3600:.1f} hours of one process (training, unlearning and measuring, "
            f"as the files record), on {'; '.join(hardware)}.")


def coverage_markdown(records) -> str:
    """What the verdicts rest on: the chunks the profile holds and those still missing."""
    cov = getattr(records, "coverage", None)
    if cov is None:
        return ("**What these verdicts rest on**: "
                + ", ".join(f"{a} {sc} seed {s}" for a, sc, s in sorted({(x["arch"], x["scenario"], x["seed"])
                                                                          for x in records}))
                + (f". {records.source}" if getattr(records, "source", None) else "."))
    text = f"**What these verdicts rest on.** {cov.sentence()}"
    if not cov.complete:
        text += (" A claim is judged only on the architectures and scenarios present; the missing chunks have no "
                 "verdict yet.")
    if getattr(records, "shows", "committed") != "committed":
        text += f" {records.source}"
    return text


def provenance_box(records) -> None:
    display(Markdown("**Provenance** (read from the result files)"))
    table = report.provenance(records)
    cov = getattr(records, "coverage", None)
    rows = ({"shown": records.source.removeprefix("Shown: ").replace("`", "")}
            if getattr(records, "source", None) else {})
    rows |= cov.rows() if cov is not None else {}
    rows |= captions.provenance_rows()   # the commit of the code that built the page
    if rows:
        table = pd.concat([table, pd.DataFrame({"": list(rows.values())}, index=list(rows.keys()))])
    with pd.option_context("display.max_colwidth", None):
        display(table)


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
         f"random start {p.eval.pgd_random_start}" if p.eval.pgd_eps else "none (PGD not run)", "EvalConfig.pgd_*"),
        ("attacked test images", str(p.eval.attack_images or "all"), "EvalConfig.attack_images"),
        ("CF-k / EU-k sweep", ", ".join(map(str, p.k_sweep)), "Profile.k_sweep"),
        ("seeds", ", ".join(map(str, p.seeds)), "Profile.seeds"),
        ("learning rates of the approximate methods",
         ("tuned per architecture and scenario" if p.tuned_lr else "fixed, as below")
         + f"; search grid {', '.join(f'{lr:g}' for lr in p.lr_grid)} (`python -m fairgap_utils tune`)",
         "Profile.tuned_lr / lr_grid"),
    ]
    for m, entry in manifest.method_facts(profile=p.name).items():
        if m == "original":
            continue
        hp = entry["hyperparameters"]
        rows.append((entry["title"], ", ".join(f"{k}={v}" for k, v in hp.items()) or "as the original",
                     "register_method(defaults=..., profiles=...)" if entry["registered"]
                     else f"unlearn/{m}.py DEFAULTS, PROFILES"))
    return pd.DataFrame(rows, columns=["setting", "value used", "where to change it"]).set_index("setting")


def _fmt(t) -> str:
    return (f"{t.epochs} epochs, batch {t.batch_size}, {t.optimizer} lr {t.lr} ({t.schedule}), "
            f"wd {t.weight_decay}, label smoothing {t.label_smoothing}, augment {t.augment}")
