"""Model registry: every model takes images in [0, 1] and normalizes inside.

Keeping normalization inside the model means every input, every attack and every
clip works in pixel space, as in the SalUn / l1-sparse code base.

| name          | what                                                              | params |
|---------------|-------------------------------------------------------------------|--------|
| resnet18      | torchvision BasicBlock ResNet-18, CIFAR stem (3x3 conv, stride 1, no max-pool) | 11.2M |
| resnet50      | torchvision Bottleneck ResNet-50, CIFAR stem                       | 23.5M |
| resnet18_w8   | ResNet-18 layout at 1/8 of the width (8-16-32-64), `cpu` profile | 0.18M |
| resnet_tiny   | one BasicBlock per stage, widths 8-16-32-64, `smoke` profile      | 0.08M |
| vit_small     | "SmallViT": torchvision ViT, patch 4, 6 layers, 8 heads, hidden 512, MLP 512 | 9.5M |
| vit_tiny      | patch 4, 4 layers, 4 heads, hidden 48, MLP 96, `cpu` profile      | 0.08M |
| vit_micro     | patch 8, 2 layers, 2 heads, hidden 32, MLP 64, `smoke` profile    | 0.02M |

The residual blocks come from torchvision (`BasicBlock`, `Bottleneck`); only the stem
and the stage widths differ from `torchvision.models.resnet18/50`, so layer names
(`layer3.1.bn2`, ...) are the ones readers know.

CF-k and EU-k count from the end of one of two ordered lists:
- `weight_layers(model)`: the Conv/Linear layers, as Goel et al. count them (the default unit);
- `blocks(model)`: stem, residual blocks / encoder layers, head (the unit "block").
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.models.vision_transformer import VisionTransformer

from .errors import check_choice

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


class Normalized(nn.Module):
    """`net((x - mean) / std)`: the wrapper that lets the rest of the code work in [0, 1]."""

    def __init__(self, net: nn.Module, mean=CIFAR_MEAN, std=CIFAR_STD):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


class CifarResNet(nn.Module):
    """torchvision's ResNet with the CIFAR stem and configurable stage widths."""

    def __init__(self, block, layers, widths=(64, 128, 256, 512), num_classes=10):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, widths[0], layers[0], 1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], 2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], 2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def blocks(self) -> list[nn.Module]:
        """Units counted by CF-k / EU-k, input to output: stem, each residual block, fc."""
        stem = nn.ModuleList([self.conv1, self.bn1])
        return [stem, *self.layer1, *self.layer2, *self.layer3, *self.layer4, self.fc]


class CifarViT(VisionTransformer):
    """torchvision's VisionTransformer for 32x32 inputs (class token, LayerNorm pre-norm)."""

    def blocks(self) -> list[nn.Module]:
        """Units counted by CF-k / EU-k: patch embedding, each encoder layer, final LN + head."""
        embed = nn.ModuleList([self.conv_proj])
        embed.pos = self.encoder.pos_embedding  # parameters of the embedding unit, reachable
        embed.cls = self.class_token            # through embed.parameters()
        head = nn.ModuleList([self.encoder.ln, self.heads])
        return [embed, *self.encoder.layers, head]


def _vit(depth, heads, hidden, mlp, patch=4, num_classes=10):
    return CifarViT(image_size=32, patch_size=patch, num_layers=depth, num_heads=heads,
                    hidden_dim=hidden, mlp_dim=mlp, num_classes=num_classes)


MODELS: dict[str, Callable[[int], nn.Module]] = {
    "resnet18": lambda n: CifarResNet(BasicBlock, [2, 2, 2, 2], num_classes=n),
    "resnet50": lambda n: CifarResNet(Bottleneck, [3, 4, 6, 3], num_classes=n),
    "resnet18_w8": lambda n: CifarResNet(BasicBlock, [2, 2, 2, 2], (8, 16, 32, 64), n),
    "resnet_tiny": lambda n: CifarResNet(BasicBlock, [1, 1, 1, 1], (8, 16, 32, 64), n),
    "vit_small": lambda n: _vit(depth=6, heads=8, hidden=512, mlp=512, num_classes=n),
    "vit_tiny": lambda n: _vit(depth=4, heads=4, hidden=48, mlp=96, num_classes=n),
    "vit_micro": lambda n: _vit(depth=2, heads=2, hidden=32, mlp=64, patch=8, num_classes=n),
}


def create_model(name: str, num_classes: int = 10) -> Normalized:
    """Build a registered model (randomly initialised) wrapped in input normalization."""
    check_choice("architecture", name, MODELS)
    return Normalized(MODELS[name](num_classes))


def blocks(model: nn.Module) -> list[nn.Module]:
    """The ordered blocks CF-k / EU-k count from the end with unit="block" (see each model's `blocks`)."""
    net = model.net if isinstance(model, Normalized) else model
    return net.blocks()


WEIGHT_LAYER_TYPES = (nn.Conv2d, nn.Linear, nn.MultiheadAttention)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The weight layers CF-k / EU-k count (k = 1 is the last one, the classifier), in forward order.

    A weight layer is a Conv2d or a Linear (Goel et al.'s count); its parameters are the
    module's own (weight, bias). The ViT's attention counts as two layers: the in-projection
    (q, k, v packed: the MultiheadAttention module's own parameters, named
    `<...>.self_attention.in_proj`) and its `out_proj`. So, in forward order:

    - ResNets: conv1; per residual block conv1, conv2 (, conv3), then its shortcut conv
      `downsample.0` where there is one (torchvision runs the shortcut after the main
      branch); fc. resnet18: 21 layers, resnet50: 54.
    - ViT: conv_proj (the patch embedding); per encoder layer self_attention.in_proj,
      self_attention.out_proj, mlp.0, mlp.3; heads.head. vit_small: 26 layers.

    Registration order is forward order for every registered model (a test checks it with
    forward pre-hooks). The normalization layers are listed by `hooks.norm_layers`. Names
    drop the `net.` prefix of the input-normalization wrapper, as `hooks.norm_layers` does.
    """
    layers = []
    for name, m in model.named_modules():
        if isinstance(m, WEIGHT_LAYER_TYPES):
            name = name.removeprefix("net.")
            layers.append((f"{name}.in_proj" if isinstance(m, nn.MultiheadAttention) else name, m))
    return layers
