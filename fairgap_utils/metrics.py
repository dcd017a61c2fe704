"""Unlearning metrics of the SalUn / l1-sparse literature: UA, RA, TA, MIA-efficacy, Avg. Gap."""
from __future__ import annotations

import numpy as np
import torch

from .train import predict

METRICS = ("UA", "RA", "TA", "MIA")


def true_label_confidence(model, x, y, batch_size=500) -> np.ndarray:
    probs = torch.softmax(predict(model, x, batch_size), 1).cpu()
    return probs[torch.arange(len(y)), y.cpu()].numpy()


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
    from sklearn.svm import SVC
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(features, labels)
    return 100.0 * float((clf.predict(forget) == 0).mean())


def mia_efficacy(model, split, batch_size=500, seed=0) -> float:
    """SalUn's SVC_MIA on confidence: % of the forget set an RBF SVM (C=3) calls non-member.

    The SVM is trained on the true-label probability of retain images (members) and of
    as many test images (non-members, remaining classes); balanced as in SalUn.
    """
    return svm_non_member_rate(*mia_inputs(model, split, batch_size, seed))


def accuracies(model, split, batch_size=500) -> dict:
    """UA = 100 - acc(D_f), RA = acc(D_r), TA = acc(test, remaining classes), and acc(test), in %."""
    def acc(x, y):
        return 100.0 * (predict(model, x, batch_size).argmax(1).cpu() == y.cpu()).float().mean().item()
    x_test, y_test = split.test_remaining()
    return {"UA": 100.0 - acc(split.x_forget, split.y_forget), "RA": acc(split.x_retain, split.y_retain),
            "TA": acc(x_test, y_test), "test_acc_all": acc(split.x_test, split.y_test)}


def unlearning_metrics(model, split, batch_size=500) -> dict:
    """UA = 100 - acc(D_f), RA = acc(D_r), TA = acc(test, remaining classes), MIA-efficacy; in %."""
    return {**accuracies(model, split, batch_size), "MIA": mia_efficacy(model, split, batch_size)}


def avg_gap(metrics: dict, retrain: dict) -> float:
    """Mean absolute difference to Retrain over UA, RA, TA and MIA-efficacy."""
    return float(np.mean([abs(metrics[k] - retrain[k]) for k in METRICS]))
