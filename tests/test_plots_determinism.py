"""The book's figures give the same PNG bytes on any machine.

Another CPU computes fits, sums and logarithms with other last bits (OpenBLAS and numpy pick their
kernels by CPU), and matplotlib turns such differences in a least-squares line into other PNG bytes.
Here every figure of `plots` is drawn twice, from tables that differ only by
noise of 1e-12 relative (far more than last bits), and must give the same bytes. With the rounding
(`plots.drawn`) switched off, the same noise changes the bytes of the fitted-line figures, so these
tests notice the rounding going missing.
"""
from __future__ import annotations

import io
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fairgap_utils.book import plots  # noqa: E402

NOISE = 1e-12
LABELS = ["original", "retrain", "ft", "cf_k", "rl"]
SEEDS = (0, 1, 2)
DEPTHS = range(8)


def png(draw) -> bytes:
    """The PNG bytes of what `draw()` draws (a figure, or axes of one), as the book's pages save it."""
    plt.close("all")
    with plt.rc_context({"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3}):
        out = draw()
        fig = out if isinstance(out, plt.Figure) else plt.gcf()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    plt.close("all")
    return buf.getvalue()


# Settings, not measurements: the same on every machine (attack strength, k, learning rate).
KEYS = {"eps", "k", "ε×255", "lr"}


def jitter(table: pd.DataFrame, rng) -> pd.DataFrame:
    """`table` with every measured float column multiplied by 1 + NOISE·N(0, 1): last-bit-sized differences."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f" and col not in KEYS:
            out[col] = out[col] * (1 + NOISE * rng.standard_normal(len(out)))
    return out


# Synthetic tables with the columns each figure reads, values of the sizes the book shows.
def eps_table(rng):
    return pd.DataFrame([dict(arch="net", label=label, seed=s, depth=d, epsilon=rng.uniform(0.01, 0.3))
                         for label in LABELS for s in SEEDS for d in DEPTHS])


def sigma_table(rng):
    return pd.DataFrame([dict(arch="net", label="retrain", seed=s, layer=f"bn{j}", class_index=c, **{"class": f"c{c}"},
                              sigma=rng.uniform(0.5, 2.0)) for s in SEEDS for j in range(3) for c in range(10)])


def attack_table(rng):
    return pd.DataFrame([dict(arch="net", attack="fgsm", label=label, seed=s, eps=e, accuracy=rng.uniform(5, 90))
                         for label in LABELS for s in SEEDS for e in (0.0, 2.0, 4.0, 8.0)])


def layer_table(rng):
    return pd.DataFrame([dict(arch="net", label=label, method=label, seed=s, depth=d,
                              log_vs_original=rng.normal(0, 0.2), log_vs_retrain=rng.normal(0, 0.2),
                              delta=rng.normal(0, 0.05))
                         for label in LABELS for s in SEEDS for d in DEPTHS])


def floor_table(rng):
    return pd.DataFrame([dict(arch="net", depth=d, floor=rng.uniform(0.02, 0.1), n_retrains=5) for d in DEPTHS])


def thirds_table(rng):
    rows = []
    for label in LABELS[2:]:
        for third in ("early", "intermediate", "last"):
            m = rng.uniform(2, 20)
            rows.append(dict(arch="net", label=label, method=label, third=third, mean=m, lo=m - rng.uniform(1, 3),
                             hi=m + rng.uniform(1, 3)))
    return pd.DataFrame(rows)


def sweep_table(rng):
    rows = [dict(arch="net", method=m, label=f"{m}-k{k}", seed=s, k=float(k), own_change=rng.normal(0, 10),
                 TA=rng.uniform(60, 80), adv=rng.uniform(5, 30), time_s=rng.uniform(5, 40),
                 param_share=rng.uniform(1, 50), peak_memory_mb=np.nan)
            for m in ("cf_k", "eu_k") for k in (1, 2, 3) for s in SEEDS]
    rows += [dict(arch="net", method=m, label=m, seed=s, k=np.nan, own_change=rng.normal(0, 10), TA=rng.uniform(60, 80),
                  adv=rng.uniform(5, 30), time_s=rng.uniform(5, 40), param_share=100.0, peak_memory_mb=np.nan)
             for m in ("ft", "retrain") for s in SEEDS]
    return pd.DataFrame(rows)


def model_table(rng):
    """One row per model and seed: layer-mean ε and the FGSM drop, roughly on a line (as the C2 page)."""
    rows = []
    for s in SEEDS:
        slope, icept = rng.normal(-150, 30), rng.normal(70, 5)
        for label in LABELS:
            e = rng.uniform(0.05, 0.3)
            rows.append(dict(arch="net", seed=s, label=label, replicate=False, collapsed=label == "rl" and s == 0,
                             eps_mean=e, drop=slope * e + icept + rng.normal(0, 3)))
    return pd.DataFrame(rows)


def grid_table(rng):
    rows = [dict(arch="net", attack=a, **{"ε×255": e, "σ": sd, "ρ": rng.uniform(-1, 1), "p (Holm)": rng.uniform(0, 1)},
                 classes=cs, headline=(a, e, sd, cs) == ("fgsm", 4.0, "channel", "all"))
            for a in ("fgsm",) for e in (2.0, 4.0) for sd in ("channel", "spatial") for cs in ("all", "forget")]
    return pd.DataFrame(rows)


def lr_table(rng):
    return pd.DataFrame([dict(method="ft", arch="net", scenario="class", seed=0, lr=lr, avg_gap=rng.uniform(1, 10),
                              chosen=lr == 0.01) for lr in (0.001, 0.003, 0.01, 0.03)])


def claims(rng):
    """Two claims in the shape `verdicts` returns, with one interval per architecture."""
    def part(name):
        per_arch = {}
        for arch in ("net", "vit"):
            m = rng.normal(0, 5)
            est = SimpleNamespace(mean=m, lo=m - rng.uniform(2, 6), hi=m + rng.uniform(2, 6), has_interval=True,
                                  seeds_text="3 seeds")
            per_arch[arch] = SimpleNamespace(estimate=est, verdict="inconclusive", margin=rng.uniform(3, 10))
        return SimpleNamespace(name=name, unit="log-ratio ×100", direction=1, per_arch=per_arch)
    return [SimpleNamespace(claim=f"C{i}", statement="a claim", overall="inconclusive",
                            verdicts={"net": "inconclusive", "vit": "inconclusive"}, parts=[part("effect")])
            for i in (1, 2)]


def jitter_claims(cs, rng):
    for c in cs:
        for p in c.parts:
            for v in p.per_arch.values():
                e = v.estimate
                e.mean, e.lo, e.hi = (x * (1 + NOISE * rng.standard_normal()) for x in (e.mean, e.lo, e.hi))
                v.margin *= 1 + NOISE * rng.standard_normal()
    return cs


# figure name -> (tables from a generator, perturbation, drawing from the tables)
FIGURES = {
    "epsilon_by_layer": (eps_table, jitter, lambda t: plots.epsilon_by_layer(t, LABELS, "net")),
    "class_sigma_bars": (sigma_table, jitter, lambda t: plots.class_sigma_bars(t, "net", "retrain", ["bn0", "bn2"])),
    "attack_curves": (attack_table, jitter, lambda t: plots.attack_curves(t, LABELS, "net")),
    "gap_heatmap": (layer_table, jitter, lambda t: plots.gap_heatmap(t, "net")),
    "scatter_with_fit": (model_table, jitter,
                         lambda t: plots.scatter_with_fit(t.eps_mean, t["drop"], t.label, xlabel="ε", ylabel="drop")),
    "log_ratio_heatmap": (layer_table, jitter, lambda t: plots.log_ratio_heatmap(t, "net")),
    "retrain_distance_by_layer": (lambda rng: (layer_table(rng), floor_table(rng)),
                                  lambda t, rng: (jitter(t[0], rng), jitter(t[1], rng)),
                                  lambda t: plots.retrain_distance_by_layer(t[0], t[1], "net", LABELS[2:])),
    "thirds_bars": (thirds_table, jitter, lambda t: plots.thirds_bars(t, "net")),
    "k_sweep": (sweep_table, jitter, lambda t: plots.k_sweep(t, "net")),
    "c2_scatter": (model_table, jitter, lambda t: plots.c2_scatter(t, "net")),
    "correlation_grid": (grid_table, jitter, lambda t: plots.correlation_grid(t, "net")),
    "lr_search": (lr_table, jitter, lambda t: plots.lr_search(t, "ft")),
    "claim_effects": (claims, jitter_claims, plots.claim_effects),
}


def test_every_figure_of_plots_is_covered():
    """A figure added to plots without a case here would escape the byte check."""
    drawing = {name for name, f in vars(plots).items()
               if callable(f) and getattr(f, "__module__", "") == plots.__name__ and not name.startswith("_")
               and name not in {"drawn", "method_of", "method_color", "label_style"}}
    assert drawing == set(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_last_bit_noise_leaves_the_png_bytes_unchanged(name):
    make, perturb, draw = FIGURES[name]
    for world in range(2):
        tables = make(np.random.default_rng(world))
        before = png(lambda: draw(tables))
        again = make(np.random.default_rng(world))
        after = png(lambda: draw(perturb(again, np.random.default_rng(100 + world))))
        assert after == before, f"{name}: 1e-12 relative noise changed the PNG (world {world})"


@pytest.mark.parametrize("name", ["c2_scatter", "scatter_with_fit"])
def test_without_the_rounding_the_same_noise_changes_a_fitted_line(name, monkeypatch):
    """The control: matplotlib does turn such noise into other bytes when nothing is rounded."""
    monkeypatch.setattr(plots, "drawn", lambda values: values)
    make, perturb, draw = FIGURES[name]
    for world in range(8):
        before = png(lambda: draw(make(np.random.default_rng(world))))
        after = png(lambda: draw(perturb(make(np.random.default_rng(world)), np.random.default_rng(100 + world))))
        if after != before:
            return
    pytest.fail(f"{name}: unrounded, 1e-12 noise never changed the PNG in 8 worlds")


def test_drawn_rounds_to_a_power_of_two_grid_of_the_largest_value():
    values = pd.Series([0.3, -12.5, 1e-9, np.nan, np.inf], index=list("abcde"), name="v")
    out = plots.drawn(values)
    assert isinstance(out, pd.Series) and list(out.index) == list("abcde") and out.name == "v"
    step = 2.0 ** (4 - plots.DRAWN_BITS)            # 12.5 lies in [8, 16) = [2^3, 2^4)
    finite = out.iloc[:3].to_numpy()
    assert np.all(finite / step == np.round(finite / step))
    assert np.all(np.abs(finite - values.iloc[:3].to_numpy()) <= step / 2)
    assert out.iloc[2] == 0.0 and np.isnan(out.iloc[3]) and out.iloc[4] == np.inf
    assert plots.drawn(0.1 * (1 + 1e-13)) == plots.drawn(0.1) and isinstance(plots.drawn(0.1), float)
    assert np.array_equal(plots.drawn(np.zeros(3)), np.zeros(3))
