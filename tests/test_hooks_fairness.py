"""fairgap_utils.hooks and fairgap_utils.fairness: normalization-layer hooks, sigma_c^l and epsilon^l.

class_sigmas streams float64 sums batch by batch; here every definition is recomputed by
brute force in NumPy from the raw layer outputs, captured with our own forward hooks.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fairgap_utils import data as D
from fairgap_utils.errors import FairgapError
from fairgap_utils.fairness import CLASS_SETS, SIGMA_DEFINITIONS, class_sigmas, epsilon, fairness_gap
from fairgap_utils.hooks import capture, layer_kind, norm_layers
from fairgap_utils.models import create_model

NORMS = (nn.BatchNorm2d, nn.LayerNorm)
NUM_CLASSES = 4


def _model(name):
    torch.manual_seed(0)
    m = create_model(name)
    # non-trivial BatchNorm statistics and affine parameters, so eval-mode outputs are not plain convs
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
            if isinstance(mod, NORMS):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
    return m.eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(30) % NUM_CLASSES
    x[y == 1] = (x[y == 1] // 2)                 # give classes different statistics
    x[y == 2] = 255 - x[y == 2] // 3
    return x, y


def _forward_order(model):
    """Norm modules in the order the forward pass calls them, found without fairgap_utils.hooks."""
    called = []
    handles = [mod.register_forward_hook(lambda m, i, o: called.append(m))
               for mod in model.modules() if isinstance(mod, NORMS)]
    with torch.no_grad():
        model(torch.rand(2, 3, 32, 32))
    for h in handles:
        h.remove()
    return called


@pytest.mark.parametrize("name, count, first, last", [
    ("resnet_tiny", 12, "bn1", "layer4.0.downsample.1"),
    ("resnet18_w8", 20, "bn1", "layer4.1.bn2"),
    ("vit_micro", 5, "encoder.layers.encoder_layer_0.ln_1", "encoder.ln"),
])
def test_norm_layers_finds_every_norm_in_forward_order(name, count, first, last):
    m = _model(name)
    found = norm_layers(m)
    assert len(found) == count
    assert [mod for _, mod in found] == _forward_order(m)
    names = [n for n, _ in found]
    assert names[0] == first and names[-1] == last
    assert not any(n.startswith("net.") for n in names)
    assert {layer_kind(mod) for _, mod in found} == ({"LayerNorm"} if name.startswith("vit") else {"BatchNorm2d"})


def test_capture_calls_back_for_each_layer_and_removes_hooks():
    m = _model("resnet_tiny")
    seen = []
    with capture(m, lambda n, out: seen.append((n, tuple(out.shape)))) as names:
        with torch.no_grad():
            m(torch.rand(2, 3, 32, 32))
    assert [n for n, _ in seen] == names == [n for n, _ in norm_layers(m)]
    assert seen[0] == ("bn1", (2, 8, 32, 32))
    seen.clear()
    with torch.no_grad():
        m(torch.rand(2, 3, 32, 32))
    assert seen == []                                   # hooks are gone after the with-block
    with capture(m, lambda n, out: seen.append(n), layers=["layer2.0.bn2", "bn1"]) as names:
        with torch.no_grad():
            m(torch.rand(1, 3, 32, 32))
    assert names == ["layer2.0.bn2", "bn1"] and seen == ["bn1", "layer2.0.bn2"]


def test_capture_rejects_unknown_layer():
    m = _model("resnet_tiny")
    with pytest.raises(FairgapError, match="'layer9.bn1'.*bn1"):
        with capture(m, lambda n, o: None, layers=["layer9.bn1"]):
            pass


def _brute_force(model, x, y, num_classes):
    """{layer module: {definition: [sigma_c]}} from raw outputs, in NumPy float64."""
    outputs = {}
    handles = [mod.register_forward_hook(lambda m, i, o: outputs.__setitem__(m, o.detach().double().numpy()))
               for mod in model.modules() if isinstance(mod, NORMS)]
    with torch.no_grad():
        model(D.to_float(x))
    for h in handles:
        h.remove()
    y = y.numpy()
    result = {}
    for mod, out in outputs.items():
        if isinstance(mod, nn.LayerNorm):                     # (B, tokens, D): channel = last dim
            per_channel_axes = (0, 1)
        else:                                                 # (B, C, H, W)
            per_channel_axes = (0, 2, 3)
        sig = {d: [] for d in SIGMA_DEFINITIONS}
        for c in range(num_classes):
            f = out[y == c]
            sig["channel"].append(f.var(axis=per_channel_axes).mean())
            sig["pooled"].append(f.var())
            sig["sample"].append(f.reshape(len(f), -1).var(axis=1).mean())
        result[mod] = sig
    return result


@pytest.mark.parametrize("name", ["resnet_tiny", "vit_micro"])
def test_class_sigmas_match_brute_force(name, data):
    x, y = data
    m = _model(name)
    got = class_sigmas(m, x, y, NUM_CLASSES, batch_size=7)      # 30 images: 5 batches, the last partial
    expected = _brute_force(m, x, y, NUM_CLASSES)
    modules = dict(norm_layers(m))
    assert [L["layer"] for L in got] == list(modules)
    assert [L["depth"] for L in got] == list(range(len(modules)))
    for L in got:
        mod = modules[L["layer"]]
        assert L["kind"] == type(mod).__name__
        assert set(L["sigma"]) == set(SIGMA_DEFINITIONS)
        for d in SIGMA_DEFINITIONS:
            assert len(L["sigma"][d]) == NUM_CLASSES
            np.testing.assert_allclose(L["sigma"][d], expected[mod][d], rtol=1e-5, atol=1e-9,
                                       err_msg=f"{name} {L['layer']} {d}")
    # the three definitions are different numbers (the test would notice a swapped definition)
    first = got[0]["sigma"]
    assert not np.allclose(first["channel"], first["pooled"], rtol=1e-3)
    assert not np.allclose(first["channel"], first["sample"], rtol=1e-3)


def test_class_sigmas_do_not_depend_on_batching(data):
    x, y = data
    m = _model("resnet_tiny")
    a = class_sigmas(m, x, y, NUM_CLASSES, batch_size=30)
    b = class_sigmas(m, x, y, NUM_CLASSES, batch_size=4)
    for la, lb in zip(a, b):
        for d in SIGMA_DEFINITIONS:
            np.testing.assert_allclose(la["sigma"][d], lb["sigma"][d], rtol=1e-6)


def test_class_sigmas_puts_the_model_in_eval_mode(data):
    x, y = data
    m = _model("resnet_tiny").train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    class_sigmas(m, x, y, NUM_CLASSES, batch_size=10)
    assert not m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())   # running stats untouched


# --------------------------------------------------------------------------- epsilon / fairness_gap

def test_epsilon_all_and_retained():
    sigma = [1.0, 4.0, 2.0, 0.5, 3.0]
    assert epsilon(sigma) == pytest.approx(3.5)
    assert epsilon(sigma, "all", forget_class=3) == pytest.approx(3.5)
    assert epsilon(sigma, "retained", forget_class=3) == pytest.approx(3.0)      # drops 0.5
    assert epsilon(sigma, "retained", forget_class=1) == pytest.approx(2.5)      # drops 4.0
    assert epsilon(sigma, "retained", forget_class=None) == pytest.approx(3.5)   # random forgetting
    assert epsilon([2.0]) == 0.0


@pytest.mark.parametrize("bad", ["some", "retain", ""])
def test_epsilon_rejects_bad_class_set(bad):
    with pytest.raises(FairgapError) as e:
        epsilon([1.0, 2.0], bad)
    assert repr(bad) in str(e.value) and all(c in str(e.value) for c in CLASS_SETS)


def test_epsilon_with_an_empty_class_does_not_depend_on_class_order():
    a = epsilon([float("nan"), 1.0, 3.0])
    b = epsilon([1.0, 3.0, float("nan")])
    assert a == b or (math.isnan(a) and math.isnan(b))


def test_fairness_gap_table(data):
    x, y = data
    layers = class_sigmas(_model("resnet_tiny"), x, y, NUM_CLASSES, batch_size=15)
    for d in SIGMA_DEFINITIONS:
        table = fairness_gap(layers, d, "retained", forget_class=2)
        assert [r["layer"] for r in table] == [L["layer"] for L in layers]
        for row, L in zip(table, layers):
            assert row["sigma"] == L["sigma"][d]
            kept = [s for c, s in enumerate(L["sigma"][d]) if c != 2]
            assert row["epsilon"] == pytest.approx(max(kept) - min(kept))
            assert row["epsilon"] >= 0


def test_fairness_gap_rejects_bad_definition(data):
    with pytest.raises(FairgapError) as e:
        fairness_gap([], "variance")
    assert "'variance'" in str(e.value) and all(d in str(e.value) for d in SIGMA_DEFINITIONS)
    with pytest.raises(FairgapError):
        fairness_gap([{"layer": "bn1", "depth": 0, "kind": "BatchNorm2d", "sigma": {"channel": [1.0, 2.0]}}],
                     "channel", "most")
