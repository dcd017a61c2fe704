"""Unlearning metrics of the SalUn / l1-sparse literature: UA, RA, TA, MIA-efficacy, Avg. Gap."""
from __future__ import annotations

import numpy as np
import torch

from .definitions import METRICS, avg_gap  # noqa: F401  (metrics.avg_gap, the tests' and tune's)
from .train import predict


def true_label_confidence(model, x, y, batch_size=500, logits=None) -> np.ndarray:
    """The softmax probability of the true label of each image (`logits`: already computed ones)."""
    probs = torch.softmax(predict(model, x, batch_size) if logits is None else logits, 1).cpu()
    return probs[torch.arange(len(y)), y.cpu()].numpy()


def predictions(model, split, batch_size=500) -> dict:
    """The model's logits on D_f, D_r and every test image (CPU tensors): one pass that the accuracies and
    the MIA then share."""
    return {"forget": predict(model, split.x_forget, batch_size).cpu(),
            "retain": predict(model, split.x_retain, batch_size).cpu(),
            "test": predict(model, split.x_test, batch_size).cpu()}


def mia_subset_inputs(model, split, batch_size=500, subsets=1, logits=None) -> list[tuple]:
    """`mia_inputs` for member draws 0, 1, ..., subsets − 1: which retain images are the members is an
    arbitrary draw that moves unsaturated MIA values by several points, so a measurement averages over
    several. Non-members and D_f are the same in every draw."""
    logits = predictions(model, split, batch_size) if logits is None else logits
    x_test, y_test = split.test_remaining()
    keep = torch.ones(len(split.y_test), dtype=torch.bool) if split.forget_class is None else \
        (split.y_test != split.forget_class).cpu()
    n = min(len(x_test), len(split.x_retain))
    retain = true_label_confidence(None, None, split.y_retain, logits=logits["retain"])
    non_member = true_label_confidence(None, None, y_test[:n], logits=logits["test"][keep][:n])
    forget = true_label_confidence(None, None, split.y_forget, logits=logits["forget"])[:, None]
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    return [(np.concatenate([retain[np.random.default_rng(k).permutation(len(retain))[:n]], non_member])[:, None],
             labels, forget) for k in range(subsets)]


def mia_inputs(model, split, batch_size=500, seed=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the MIA's SVM sees: (confidence of members then non-members, their labels 1/0, confidence on D_f).

    Members are retain images, non-members as many test images of the remaining classes,
    balanced as in SalUn; the confidence is the true-label probability. (The model's part.)
    """
    x_test, y_test = split.test_remaining()
    n = min(len(x_test), len(split.x_retain))
    pick = torch.from_numpy(np.random.default_rng(seed).permutation(len(split.x_retain))[:n])
    member = true_label_confidence(model, split.x_retain[pick.to(split.x_retain.device)],
                                   split.y_retain[pick.to(split.y_retain.device)], batch_size)
    non_member = true_label_confidence(model, x_test[:n], y_test[:n], batch_size)
    features = np.concatenate([member, non_member])[:, None]
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    forget = true_label_confidence(model, split.x_forget, split.y_forget, batch_size)[:, None]
    return features, labels, forget


def svm_non_member_rate(features: np.ndarray, labels: np.ndarray, forget: np.ndarray) -> float:
    """% of `forget` that an RBF SVM (C=3) fitted on (features, labels) calls non-member. (CPU only.)"""
    from sklearn.svm import SVC  # lazy: scikit-learn (seconds to import) only when an MIA is measured
    if not (np.isfinite(features).all() and np.isfinite(forget).all()):
        return float("nan")   # a diverged model (non-finite outputs) has no MIA-efficacy
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(features, labels)
    return 100.0 * float((clf.predict(forget) == 0).mean())


def mia_efficacy(model, split, batch_size=500, seed=0) -> float:
    """SalUn's SVC_MIA on confidence: % of the forget set an RBF SVM (C=3) calls non-member.

    The SVM is trained on the true-label probability of retain images (members) and of
    as many test images (non-members, remaining classes); balanced as in SalUn.
    """
    return svm_non_member_rate(*mia_inputs(model, split, batch_size, seed))


def mia_over_subsets(inputs: list[tuple]) -> tuple[float, list[float]]:
    """(the mean MIA-efficacy, each draw's) over the member draws of `mia_subset_inputs`. (CPU only.)"""
    rates = [svm_non_member_rate(*i) for i in inputs]
    return (float(np.mean(rates)) if all(np.isfinite(rates)) else float("nan")), rates


def accuracies(model, split, batch_size=500, logits=None) -> dict:
    """UA = 100 - acc(D_f), RA = acc(D_r), TA = acc(test, remaining classes), and acc(test), in %."""
    logits = predictions(model, split, batch_size) if logits is None else logits

    def acc(out, y):
        return 100.0 * (out.argmax(1) == y.cpu()).float().mean().item()
    keep = torch.ones(len(split.y_test), dtype=torch.bool) if split.forget_class is None else \
        (split.y_test != split.forget_class).cpu()
    return {"UA": 100.0 - acc(logits["forget"], split.y_forget), "RA": acc(logits["retain"], split.y_retain),
            "TA": acc(logits["test"][keep], split.y_test.cpu()[keep]),
            "test_acc_all": acc(logits["test"], split.y_test)}


def unlearning_metrics(model, split, batch_size=500) -> dict:
    """UA = 100 - acc(D_f), RA = acc(D_r), TA = acc(test, remaining classes), MIA-efficacy; in %."""
    return {**accuracies(model, split, batch_size), "MIA": mia_efficacy(model, split, batch_size)}
