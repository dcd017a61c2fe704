"""The public API's own functions: measure one model, the fairness-gap of any model, the original.

    import fairgap_utils as fg
    split = fg.make_split("cpu", seed=0)                       # forget/retain/test, uint8 NCHW
    model = fg.original_model("cpu", "resnet18_w8", seed=0)    # trained once, then a checkpoint
    fg.measure(model, split)                                   # UA/RA/TA/MIA, sigma/eps per layer, FGSM/PGD
    fg.fairness_gap(torchvision.models.resnet18(num_classes=10), x, y)   # any model with BN/LN/GN

Everything returns plain Python values (dicts and lists of floats), ready for
`pandas.DataFrame`. Image types are checked as `fairgap_utils.data` says.
"""
from __future__ import annotations

import numpy as np
import torch

from . import data as D
from .config import Profile, get_profile
from .errors import FairgapError, check_choice
from .fairness import CLASS_SETS, SIGMA_DEFINITIONS, class_sigmas
from .fairness import fairness_gap as _gap_table
from .hooks import norm_layers
from .models import MODELS
from .registries import check_profile


def _profile(profile) -> Profile:
    """A Profile or its name, with the names it takes from the registries checked (names enter here)."""
    return check_profile(profile if isinstance(profile, Profile) else get_profile(profile))


def make_split(profile, seed: int = 0, scenario: str = "class", device="cpu", path=None) -> D.Split:
    """`data.make_split` for a Profile or its name: the forget / retain / validation / test Split."""
    return D.make_split(_profile(profile), seed, scenario, device, path)


def _labels(y, n: int) -> torch.Tensor:
    y = torch.from_numpy(np.asarray(y)) if not isinstance(y, torch.Tensor) else y
    if y.dim() != 1 or len(y) != n or y.is_floating_point() or y.dtype == torch.bool:
        raise FairgapError(f"labels have dtype {y.dtype} and shape {tuple(y.shape)}; expected {n} integer "
                           "class indices, one per image")
    return y.long()


def fairness_gap(model: torch.nn.Module, x, y, num_classes: int | None = None, definition: str = "channel",
                 class_set: str = "all", forget_class: int | None = None, batch_size: int = 500) -> list[dict]:
    """Per-layer, per-class sigma and the fairness-gap eps of any model with normalization layers.

    model: any `torch.nn.Module` with BatchNorm, LayerNorm or GroupNorm layers (a plain
        `torchvision.models.resnet18(num_classes=10)` will do); run in eval mode, its
        train/eval mode is restored afterwards.
    x: labelled images, NCHW, a tensor or a NumPy array. uint8 (0-255) are scaled to [0, 1]
        (what the package's models take); floating-point images go to the model unchanged,
        so a model that expects normalized inputs gets them as you normalized them.
    y: integer class indices 0 .. num_classes - 1 (default: max(y) + 1).
    definition, class_set, forget_class: which sigma (channel | pooled | sample) and which
        classes enter eps = max_c sigma_c - min_c sigma_c (all | retained: without forget_class).

    Returns one dict per normalization layer in forward order:
    {layer, depth, kind, sigma: [sigma_c for each class], epsilon}.
    """
    if not isinstance(model, torch.nn.Module):
        raise FairgapError(f"model is a {type(model).__name__}; expected a torch.nn.Module")
    if not norm_layers(model):
        raise FairgapError(f"{type(model).__name__} has no BatchNorm, LayerNorm or GroupNorm layer; the "
                           "fairness-gap is measured on their outputs")
    check_choice("sigma definition", definition, SIGMA_DEFINITIONS)
    check_choice("class set", class_set, CLASS_SETS)
    x = torch.from_numpy(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    D.check_images(x, float_range=None)
    y = _labels(y, len(x))
    if len(y) == 0:
        raise FairgapError("no images given; the fairness-gap needs labelled images of at least two classes")
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise FairgapError(f"labels span {int(y.min())}..{int(y.max())}; expected 0..{num_classes - 1} (num_classes)")
    if forget_class is not None and not 0 <= forget_class < num_classes:
        raise FairgapError(f"forget_class {forget_class!r} is out of range; valid: 0-{num_classes - 1}")
    was_training = model.training
    try:
        layers = class_sigmas(model, x, y.to(x.device), num_classes, batch_size, float_range=None)
    finally:
        model.train(was_training)
    return _gap_table(layers, definition, class_set, forget_class)


def measure(model: torch.nn.Module, split: D.Split, profile=None, seed: int = 0, definition: str = "channel",
            class_set: str = "all") -> dict:
    """Every measurement the book makes of one model against a split, as one plain dict.

    model: takes float images in [0, 1] (the package's models normalize inside; wrap one of
        your own in `Normalized(net, mean, std)`), as the attacks clip to [0, 1].
    split: a `Split` (`make_split`); its forget class decides UA and the remaining classes.
    profile: a Profile or its name (default: `paper` with CUDA, else `cpu`); its EvalConfig
        sets the attacks' eps and steps, the images behind sigma and the batch size.
    seed: the seed of PGD's random start and of the MIA's member sample.

    Returns {UA, RA, TA, MIA, test_acc (all in %), fgsm: {eps (x1/255): accuracy %},
    pgd: {...} (absent if the profile runs no PGD), layers: [{layer, depth, kind, sigma (per class), epsilon}],
    layer_mean_epsilon, attack_images, eval_time_s}, computed by `pipeline.measure_model` (the
    numbers a result file of `compute` holds), with sigma/eps under `definition` and `class_set`.
    """
    from .computing.pipeline import measure_model  # lazy: as in original_model
    if not isinstance(split, D.Split):
        raise FairgapError(f"split is a {type(split).__name__}; expected a Split (from make_split)")
    if not isinstance(model, torch.nn.Module):
        raise FairgapError(f"model is a {type(model).__name__}; expected a torch.nn.Module")
    check_choice("sigma definition", definition, SIGMA_DEFINITIONS)
    check_choice("class set", class_set, CLASS_SETS)
    p = _profile(profile)
    was_training = model.training
    try:
        r = measure_model(model, split, p, seed)
    finally:
        model.train(was_training)
    layers = _gap_table(r["fairness"], definition, class_set, split.forget_class)
    m = r["metrics"]
    return {"UA": m["UA"], "RA": m["RA"], "TA": m["TA"], "MIA": m["MIA"], "test_acc": m["test_acc_all"],
            **{attack: {round(eps * 255, 3): acc for eps, acc in sorted(curve.items())}
               for attack, curve in r["attacks"].items()},
            "layers": layers, "layer_mean_epsilon": float(np.nanmean([L["epsilon"] for L in layers])),
            "attack_images": r["attack_images"], "eval_time_s": r["eval_time_s"]}


def original_model(profile, arch: str, seed: int = 0, data_path=None, cache=None, device=None) -> torch.nn.Module:
    """The original model of a profile: the one `compute` unlearns from (trained once, then loaded).

    Trained on the profile's whole training set (D_r + D_f) with its TrainConfig and `seed`,
    checkpointed under `cache/checkpoints/` by the same key as `compute`'s, in eval mode.
    """
    # lazy: the public api imports the compute machinery only for the calls that train or measure
    from .computing.keys import original_key
    from .computing.pipeline import _original_model
    p = _profile(profile)
    check_choice("architecture", arch, MODELS)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    split = D.make_split(p, seed, "class", device, data_path)
    key = original_key(p, arch, seed)
    model, _ = _original_model(p, arch, seed, key, split, cache, device)
    return model


__all__ = ["fairness_gap", "measure", "original_model"]
