"""fairgap_utils.models: the registry, input normalization inside the model, CF-k/EU-k blocks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fairgap_utils.errors import FairgapError
from fairgap_utils.models import CIFAR_MEAN, CIFAR_STD, MODELS, Normalized, blocks, create_model

SMALL = ("resnet_tiny", "resnet18_w8", "vit_micro", "vit_tiny")
N_BLOCKS = {"resnet18": 10, "resnet50": 18, "resnet18_w8": 10, "resnet_tiny": 6,
            "vit_small": 8, "vit_tiny": 6, "vit_micro": 4}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: create_model(name).eval() for name in MODELS}


def test_registry_has_the_documented_models():
    assert set(MODELS) == set(N_BLOCKS)


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shape(models, name):
    m = models[name]
    assert isinstance(m, Normalized)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        out = m(x)
    assert out.shape == (2, 10) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", SMALL)
def test_num_classes(name):
    m = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert m(torch.rand(3, 3, 32, 32)).shape == (3, 7)


def test_normalization_is_inside_the_model(models):
    m = models["resnet_tiny"]
    x = torch.rand(4, 3, 32, 32)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(m(x), m.net((x - mean) / std), atol=1e-6)
        assert not torch.allclose(m(x), m.net(x), atol=1e-3)
    # mean/std are buffers (saved, moved with .to), not trainable parameters
    assert {"mean", "std"} <= dict(m.named_buffers()).keys()
    assert "mean" not in dict(m.named_parameters())


@pytest.mark.parametrize("name", list(MODELS))
def test_blocks_order_ends_with_the_head(models, name):
    m = models[name]
    units = blocks(m)
    assert len(units) == N_BLOCKS[name]
    # the wrapper and the bare network give the same units (stem and ViT head are fresh containers)
    assert all(a is b for a, b in zip(blocks(m.net)[1:-1], units[1:-1]))
    net = m.net
    if name.startswith("resnet"):
        assert units[-1] is net.fc
        assert net.conv1 in list(units[0].modules()) and net.bn1 in list(units[0].modules())
        assert list(units[1:-1]) == [*net.layer1, *net.layer2, *net.layer3, *net.layer4]
    else:
        head = list(units[-1].modules())
        assert net.heads in head and net.encoder.ln in head
        assert net.conv_proj in list(units[0].modules())
        assert list(units[1:-1]) == list(net.encoder.layers)
    # the head maps to the classes: its last Linear has num_classes outputs
    last_linear = [mod for mod in units[-1].modules() if isinstance(mod, nn.Linear)][-1]
    assert last_linear.out_features == 10


@pytest.mark.parametrize("name", [
    "resnet_tiny", "resnet18_w8",
    "vit_micro",
    "vit_tiny",
])
def test_blocks_partition_the_parameters(name):
    m = create_model(name)
    owner = {}
    for i, unit in enumerate(blocks(m)):
        for p in unit.parameters():
            assert id(p) not in owner, "a parameter sits in two blocks"
            owner[id(p)] = i
    missing = [n for n, p in m.named_parameters() if id(p) not in owner]
    assert missing == []


def test_unknown_architecture_names_valid_choices():
    with pytest.raises(FairgapError) as e:
        create_model("resnet1000")
    msg = str(e.value)
    assert "'resnet1000'" in msg and "\n" not in msg
    for name in MODELS:
        assert name in msg


def test_models_are_randomly_initialised_but_seedable():
    torch.manual_seed(1)
    a = create_model("resnet_tiny")
    torch.manual_seed(1)
    b = create_model("resnet_tiny")
    c = create_model("resnet_tiny")
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["net.conv1.weight"], sc["net.conv1.weight"])
