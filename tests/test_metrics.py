"""fairgap_utils.metrics: UA, RA, TA, MIA-efficacy and Avg. Gap on splits whose predictions we choose.

StubModel (conftest) predicts the class written in an image's first pixel, with a logit
margin written in its second channel, so every accuracy below is known in advance.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import CLASSES, StubModel, stub_images
from fairgap_utils import data as D
from fairgap_utils import metrics as M
from fairgap_utils.metrics import METRICS, avg_gap, mia_efficacy, true_label_confidence, unlearning_metrics


def _split(forget, retain, test, forget_class=9, scenario="class"):
    """Each part is (labels, predicted classes, margins*10)."""
    def part(labels, preds, margins):
        return stub_images(preds, margins), torch.as_tensor(labels, dtype=torch.int64)
    xf, yf = part(*forget)
    xr, yr = part(*retain)
    xt, yt = part(*test)
    return D.Split(x_forget=xf, y_forget=yf, x_retain=xr, y_retain=yr, x_val=xt[:0], y_val=yt[:0],
                   x_test=xt, y_test=yt, classes=CLASSES, scenario=scenario, forget_class=forget_class,
                   source="stub")


def _n(k, value):
    return [value] * k


def test_stub_model_does_what_the_tests_assume():
    m = StubModel()
    x = stub_images([3, 7], [20, 100])
    logits = m(D.to_float(x))
    assert logits.argmax(1).tolist() == [3, 7]
    assert logits.max(1).values.tolist() == pytest.approx([2.0, 10.0])


def test_ua_ra_ta_definitions():
    forget_labels = _n(10, 9)
    forget_preds = _n(3, 9) + _n(7, 0)                                  # 30 % right -> UA 70
    retain_labels = [i % 9 for i in range(20)]
    retain_preds = retain_labels[:16] + [(c + 1) % 9 for c in retain_labels[16:]]   # 16/20 right -> RA 80
    test_labels = [i % 9 for i in range(20)] + _n(10, 9)
    test_preds = test_labels[:15] + [(c + 1) % 9 for c in test_labels[15:20]] + _n(2, 9) + _n(8, 1)
    s = _split((forget_labels, forget_preds, _n(10, 50)),
               (retain_labels, retain_preds, _n(20, 50)),
               (test_labels, test_preds, _n(30, 50)))
    m = unlearning_metrics(StubModel(), s, batch_size=7)
    assert m["UA"] == pytest.approx(70.0)
    assert m["RA"] == pytest.approx(80.0)
    assert m["TA"] == pytest.approx(75.0)                     # forget class left out of TA: 15/20
    assert m["test_acc_all"] == pytest.approx(100 * 17 / 30)  # ... but counted in test_acc_all
    assert set(METRICS) <= set(m)


def test_ta_under_random_forgetting_uses_the_whole_test_set():
    s = _split(([0, 1, 2, 3], [0, 1, 5, 5], _n(4, 50)),
               ([4, 5, 6, 7], [4, 5, 6, 7], _n(4, 50)),
               ([0, 9, 9, 3], [0, 9, 1, 1], _n(4, 50)), forget_class=None, scenario="random")
    m = unlearning_metrics(StubModel(), s)
    assert m["UA"] == pytest.approx(50.0) and m["RA"] == pytest.approx(100.0)
    assert m["TA"] == pytest.approx(50.0) == m["test_acc_all"]


def test_true_label_confidence():
    x = stub_images([2, 2, 5], [0, 30, 30])
    y = torch.tensor([2, 5, 5])
    conf = true_label_confidence(StubModel(), x, y)
    e3 = math.exp(3.0)
    np.testing.assert_allclose(conf, [0.1, 1 / (e3 + 9), e3 / (e3 + 9)], rtol=1e-6)


def _mia_split(forget_preds, forget_margins):
    """Members (retain): right and confident. Non-members (test): wrong. Forget: as given."""
    retain = [i % 9 for i in range(40)]
    test = [i % 9 for i in range(30)] + _n(10, 9)
    return _split((_n(len(forget_preds), 9), forget_preds, forget_margins),
                  (retain, retain, _n(40, 100)),
                  (test, [(c + 1) % 9 for c in test[:30]] + _n(10, 0), _n(40, 50)))


@pytest.mark.parametrize("forget_preds, margins, expected", [
    (_n(12, 9), _n(12, 100), 0.0),                     # forget images look like members
    (_n(12, 0), _n(12, 50), 100.0),                    # ... like non-members
    (_n(6, 9) + _n(6, 0), _n(6, 100) + _n(6, 50), 50.0),
])
def test_mia_efficacy_counts_forget_images_called_non_members(forget_preds, margins, expected):
    s = _mia_split(forget_preds, margins)
    assert mia_efficacy(StubModel(), s) == pytest.approx(expected)
    assert unlearning_metrics(StubModel(), s)["MIA"] == pytest.approx(expected)


def test_avg_gap():
    retrain = {"UA": 12.0, "RA": 95.0, "TA": 80.0, "MIA": 10.0, "test_acc_all": 1.0}
    method = {"UA": 10.0, "RA": 90.0, "TA": 80.0, "MIA": 20.0, "test_acc_all": 99.0}
    assert avg_gap(method, retrain) == pytest.approx((2 + 5 + 0 + 10) / 4)
    assert avg_gap(retrain, retrain) == 0.0
    assert avg_gap(method, retrain) == avg_gap(retrain, method)
    assert isinstance(avg_gap(method, retrain), float)


# --------------------------------------------------------------------------- the MIA's member and non-member sets

def _conf(labels, preds, margins):
    """The true-label softmax probability StubModel gives, by hand: logits margin/10 * one_hot(pred)."""
    out = []
    for y, p, m in zip(labels, preds, margins):
        e = math.exp(m / 10)
        out.append(e / (e + 9) if y == p else 1 / (e + 9))
    return np.array(out)


def _sets_split(scenario="class"):
    """Every image has its own confidence, so each value in the SVM's input names its image.

    Retain: 40 images, right, margins 60..99. Test: the 10 forget-class images first (right,
    margin 5), then 30 remaining-class images, wrong, margins 10..39. Forget: 12 images,
    half right, margins 40..51.
    """
    retain = ([i % 9 for i in range(40)], [i % 9 for i in range(40)], list(range(60, 100)))
    test_labels = _n(10, 9) + [i % 9 for i in range(30)]
    test = (test_labels, _n(10, 9) + [(c + 1) % 9 for c in test_labels[10:]], _n(10, 5) + list(range(10, 40)))
    forget = (_n(12, 9), _n(6, 9) + _n(6, 2), list(range(40, 52)))
    if scenario == "random":
        return _split(forget, retain, test, forget_class=None, scenario="random"), retain, test, forget
    return _split(forget, retain, test), retain, test, forget


def test_mia_members_are_retain_images_and_non_members_remaining_class_test_images():
    s, retain, test, forget = _sets_split()
    draws = M.mia_subset_inputs(StubModel(), s, batch_size=7, subsets=3)
    assert len(draws) == 3
    retain_conf, forget_conf = _conf(*retain), _conf(*forget)
    non_member = _conf(*(part[10:] for part in test))            # the forget class's test images left out
    for k, (features, labels, on_forget) in enumerate(draws):
        assert features.shape == (60, 1) and on_forget.shape == (12, 1)
        np.testing.assert_array_equal(labels, [1] * 30 + [0] * 30)
        members = retain_conf[np.random.default_rng(k).permutation(40)[:30]]     # draw k of D_r
        np.testing.assert_allclose(features[:30, 0], members, rtol=1e-6)
        np.testing.assert_allclose(features[30:, 0], non_member, rtol=1e-6)
        np.testing.assert_allclose(on_forget[:, 0], forget_conf, rtol=1e-6)      # efficacy is measured on D_f
    assert not np.array_equal(draws[0][0], draws[1][0])                 # the draws differ
    # the logits of one pass, shared with the accuracies, give the same inputs
    shared = M.mia_subset_inputs(StubModel(), s, subsets=3, logits=M.predictions(StubModel(), s, 11))
    for a, b in zip(draws, shared):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_mia_under_random_forgetting_takes_non_members_from_the_whole_test_set():
    s, retain, test, forget = _sets_split("random")
    (features, labels, on_forget), = M.mia_subset_inputs(StubModel(), s)
    np.testing.assert_allclose(features[40:, 0], _conf(*test), rtol=1e-6)          # 40 test images, all classes
    np.testing.assert_array_equal(labels, [1] * 40 + [0] * 40)
    np.testing.assert_allclose(features[:40, 0], _conf(*retain)[np.random.default_rng(0).permutation(40)], rtol=1e-6)


def test_mia_inputs_of_one_draw_match_the_subset_draws():
    s, retain, test, forget = _sets_split()
    for seed in (0, 2):
        features, labels, on_forget = M.mia_inputs(StubModel(), s, batch_size=9, seed=seed)
        draw = M.mia_subset_inputs(StubModel(), s, subsets=seed + 1)[seed]
        np.testing.assert_allclose(features, draw[0], rtol=1e-6)
        np.testing.assert_array_equal(labels, draw[1])
        np.testing.assert_allclose(on_forget, draw[2], rtol=1e-6)


def test_the_svm_is_salun_s_rbf_svm_on_the_confidence(monkeypatch):
    import sklearn.svm
    made = []

    class Spy(sklearn.svm.SVC):
        def fit(self, X, y):
            made.append((self.get_params(), X.copy(), y.copy()))
            return super().fit(X, y)
    monkeypatch.setattr(sklearn.svm, "SVC", Spy)
    s, _, _, _ = _sets_split()
    inputs = M.mia_subset_inputs(StubModel(), s, subsets=2)
    mean, rates = M.mia_over_subsets(inputs)
    assert len(made) == 2
    for (params, X, y), (features, labels, _) in zip(made, inputs):
        assert (params["C"], params["kernel"], params["gamma"]) == (3, "rbf", "auto")
        np.testing.assert_array_equal(X, features)
        np.testing.assert_array_equal(y, labels)
    assert rates == [M.svm_non_member_rate(*i) for i in inputs]
    assert mean == pytest.approx(sum(rates) / 2)


def test_mia_over_subsets_averages_draws_that_differ():
    """Members that look like non-members in one draw only: the mean sits between the draws' values."""
    X = np.array([[0.9], [0.8], [0.1], [0.2]])
    draws = [(X, np.array([1, 1, 0, 0]), np.array([[0.85], [0.15]])),
             (X, np.array([1, 1, 0, 0]), np.array([[0.15], [0.12]]))]
    mean, rates = M.mia_over_subsets(draws)
    assert rates == [50.0, 100.0] and mean == 75.0


def test_accuracies_from_shared_logits_equal_the_direct_ones():
    s, _, _, _ = _sets_split()
    direct = M.accuracies(StubModel(), s, batch_size=7)
    assert M.accuracies(StubModel(), s, logits=M.predictions(StubModel(), s)) == direct
    assert direct["TA"] == 0.0 and direct["test_acc_all"] == 25.0 and direct["UA"] == 50.0 and direct["RA"] == 100.0


def test_a_forget_class_in_the_middle_is_left_out_of_ta_and_of_the_non_members():
    """Forget class 3: the classes below and above it stay (a `< forget_class` filter would keep 0-2 only)."""
    test_labels = list(range(10)) * 2
    test_preds = [c if c < 3 else (c + 1) % 10 for c in test_labels]            # classes 0-2 right, the rest wrong
    s = _split((_n(4, 3), _n(4, 3), _n(4, 50)), ([0, 1, 2, 4, 5, 6, 7, 8, 9], [0, 1, 2, 4, 5, 6, 7, 8, 9], _n(9, 50)),
               (test_labels, test_preds, list(range(20, 40))), forget_class=3)
    assert M.accuracies(StubModel(), s)["TA"] == pytest.approx(100 * 6 / 18)
    (features, labels, _), = M.mia_subset_inputs(StubModel(), s)
    kept = [i for i, c in enumerate(test_labels) if c != 3][:9]                   # n = min(18 remaining, 9 retain)
    np.testing.assert_allclose(features[9:, 0], _conf(*([part[i] for i in kept] for part in
                                                         (test_labels, test_preds, list(range(20, 40))))), rtol=1e-6)


def test_mia_inputs_default_to_member_draw_zero():
    s, _, _, _ = _sets_split()
    np.testing.assert_array_equal(M.mia_inputs(StubModel(), s)[0], M.mia_inputs(StubModel(), s, seed=0)[0])
    assert mia_efficacy(StubModel(), s) == M.svm_non_member_rate(*M.mia_subset_inputs(StubModel(), s)[0])
    assert not np.array_equal(M.mia_inputs(StubModel(), s)[0], M.mia_inputs(StubModel(), s, seed=1)[0])


def test_mia_efficacy_uses_member_draw_zero_by_default(monkeypatch):
    seen = []
    real = M.mia_inputs
    monkeypatch.setattr(M, "mia_inputs", lambda model, split, batch_size, seed: seen.append(seed) or
                        real(model, split, batch_size, seed))
    s, _, _, _ = _sets_split()
    mia_efficacy(StubModel(), s)
    mia_efficacy(StubModel(), s, seed=4)
    assert seen == [0, 4]


def test_a_diverged_model_has_no_mia_efficacy_instead_of_a_crash():
    from fairgap_utils.metrics import mia_over_subsets, svm_non_member_rate
    features = np.array([[0.9], [0.8], [0.1], [np.nan]])
    labels = np.array([1, 1, 0, 0])
    assert np.isnan(svm_non_member_rate(features, labels, np.array([[0.5]])))
    good = (np.array([[0.9], [0.8], [0.1], [0.2]]), labels, np.array([[0.15], [0.85]]))
    assert svm_non_member_rate(*good) == pytest.approx(50.0)
    mean, draws = mia_over_subsets([good, (features, labels, np.array([[0.5]]))])
    assert np.isnan(mean) and draws[0] == pytest.approx(50.0)
