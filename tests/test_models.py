"""fairgap_utils.models: the registry, input normalization inside the model, CF-k/EU-k layers and blocks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fairgap_utils.errors import FairgapError
from fairgap_utils.hooks import norm_layers
from fairgap_utils.models import CIFAR_MEAN, CIFAR_STD, MODELS, Normalized, blocks, create_model, weight_layers

SMALL = ("resnet_tiny", "resnet18_w8", "vit_micro", "vit_tiny")
N_BLOCKS = {"resnet18": 10, "resnet50": 18, "resnet18_w8": 10, "resnet_tiny": 6,
            "vit_small": 8, "vit_tiny": 6, "vit_micro": 4}
N_LAYERS = {"resnet18": 21, "resnet50": 54, "resnet18_w8": 21, "resnet_tiny": 13,   # Conv/Linear layers (CF-k's k)
            "vit_small": 26, "vit_tiny": 18, "vit_micro": 10}


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


@pytest.mark.parametrize("name", list(MODELS))
def test_weight_layers_are_the_conv_linear_layers_in_forward_order(models, name):
    m = models[name]
    layers = weight_layers(m)
    assert len(layers) == N_LAYERS[name]
    names = [n for n, _ in layers]
    assert names[-1] == ("fc" if name.startswith("resnet") else "heads.head")
    assert names[0] == ("conv1" if name.startswith("resnet") else "conv_proj")
    assert layers[-1][1].out_features == 10
    assert all(isinstance(mod, (nn.Conv2d, nn.Linear, nn.MultiheadAttention)) for _, mod in layers)
    assert weight_layers(m.net) == layers                                 # same names with or without the wrapper
    if name.startswith("resnet"):
        assert names == [n for n, mod in m.net.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
    else:   # per encoder layer: in-projection, out-projection, MLP in, MLP out
        per_layer = [[f"encoder.layers.{b}.{part}" for part in ("self_attention.in_proj", "self_attention.out_proj",
                                                                  "mlp.0", "mlp.3")]
                     for b, _ in m.net.encoder.layers.named_children()]
        assert names == ["conv_proj", *sum(per_layer, []), "heads.head"]
    # the listed order (weight and normalization layers by registration) is the order the forward pass runs them
    # in; a ViT's out_proj is not called as a module (MultiheadAttention uses its weight directly)
    listed = sorted([mod for _, mod in layers] + [mod for _, mod in norm_layers(m)],
                    key=[mod for _, mod in m.named_modules()].index)
    fired, handles = [], []
    for mod in listed:
        handles.append(mod.register_forward_pre_hook(lambda mod, args: fired.append(mod) if mod not in fired else None))
    with torch.no_grad():
        m(torch.rand(2, 3, 32, 32))
    for h in handles:
        h.remove()
    out_projs = [mod for n, mod in layers if n.endswith("out_proj")]
    assert fired == [mod for mod in listed if not any(mod is o for o in out_projs)]


@pytest.mark.parametrize("name", ["resnet_tiny", "vit_micro"])
def test_weight_and_norm_layers_own_every_parameter_but_the_vit_embeddings(name):
    m = create_model(name)
    owners = [mod for _, mod in weight_layers(m)] + [mod for _, mod in norm_layers(m)]
    owned = [id(p) for mod in owners for p in mod.parameters(recurse=False)]
    assert len(owned) == len(set(owned))
    loose = [n for n, p in m.named_parameters() if id(p) not in set(owned)]
    assert loose == ([] if name.startswith("resnet") else ["net.class_token", "net.encoder.pos_embedding"])


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
