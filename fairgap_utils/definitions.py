"""What the stored numbers mean, without torch: the metrics of a result file, the fairness-gap's
definitions, and the arithmetic that turns stored numbers into the reported ones (Avg. Gap, eps).

`metrics` and `fairness` measure models (torch) and take these from here; the book reads result
files with them, so a page that only reads results never imports torch.
"""
from __future__ import annotations

import math

from .errors import check_choice

METRICS = ("UA", "RA", "TA", "MIA")          # the unlearning metrics of the SalUn / l1-sparse literature, in %
SIGMA_DEFINITIONS = ("channel", "pooled", "sample")   # which variance sigma_c is (`fairness` says how each is taken)
CLASS_SETS = ("all", "retained")             # the classes entering max/min of the fairness-gap


def avg_gap(metrics: dict, retrain: dict) -> float:
    """Mean absolute difference to Retrain over UA, RA, TA and MIA-efficacy."""
    gaps = [abs(metrics[k] - retrain[k]) for k in METRICS]
    return float(sum(gaps) / len(gaps))   # numpy's mean of these four, bit for bit


def epsilon(sigma_per_class, class_set: str = "all", forget_class: int | None = None) -> float:
    """eps = max_c sigma_c - min_c sigma_c over all classes or the retained ones only."""
    check_choice("class set", class_set, CLASS_SETS)
    values = list(sigma_per_class)
    if class_set == "retained" and forget_class is not None:
        values = [v for c, v in enumerate(values) if c != forget_class]
    values = [v for v in values if v is not None and not math.isnan(v)]  # classes without images
    return max(values) - min(values) if values else float("nan")


__all__ = ["METRICS", "SIGMA_DEFINITIONS", "CLASS_SETS", "avg_gap", "epsilon"]
