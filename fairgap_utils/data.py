"""CIFAR-10/100 as uint8 tensors, forget/retain/validation splits, and a device-resident loader.

Where the images come from, in order:
1. `path=` or the environment variable `FAIRGAP_DATA`: a `.npz` with `x_train, y_train,
   x_test, y_test` (uint8, NHWC), or the JPEG pack `cifar10-jpeg.npz` of
   `shared/data/cifar10/` (decoded here in a few seconds), or a folder holding either.
2. Otherwise `torchvision.datasets.CIFAR10/100(root, download=True)`.

The whole (sub)set sits on the device once as uint8; batches are cut, converted to
float in [0, 1] and augmented (random crop with padding 4, horizontal flip) on the
device, so a GPU never waits for a CPU data loader.

Input types, checked here in one place (`check_images`, called by `batches`, hence by
training, prediction, the metrics, the attacks and the fairness-gap):
- images are NCHW tensors (N, C, H, W); channels-last (N, 32, 32, 3) is refused;
- uint8 images hold pixels 0-255 and are scaled to float32 in [0, 1] (divided by 255 once);
- floating-point images are never rescaled. Where they feed the package's models and
  attacks, which work in [0, 1] pixel space, they must lie in [0, 1] (`float_range=UNIT`,
  the default); `fairness_gap` on a model of your own passes them to it as they are
  (`float_range=None`), e.g. already normalized;
- any other dtype (int64, bool, ...) is refused. Labels are integer class indices.
A refusal is one `FairgapError` line naming what was given and what is expected.
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .config import CLASS_NAMES, SCENARIOS, Profile, resolve_class  # noqa: F401  (data.CLASS_NAMES)
from .errors import FairgapError, check_choice

# sha256 of x_test decoded from shared/data/cifar10/cifar10-jpeg.npz (its README): recognizes the unpacked copy
JPEG_COPY_X_TEST_SHA256 = "5a6aa8185204d80b65d3dfb540696dadd5f10d185ded226a96665d3e0fc6259f"

def _decode_jpeg_pack(pack) -> dict:
    from PIL import Image  # lazy: Pillow only to decode the JPEG pack
    header = pack["header"].tobytes()
    out = {}
    for part in ("train", "test"):
        scans, offs = pack[f"scans_{part}"].tobytes(), pack[f"offsets_{part}"]
        x = np.empty((len(offs) - 1, 32, 32, 3), np.uint8)
        for i in range(len(offs) - 1):
            x[i] = np.asarray(Image.open(io.BytesIO(header + scans[offs[i]:offs[i + 1]])).convert("RGB"))
        out[f"x_{part}"], out[f"y_{part}"] = x, pack[f"y_{part}"].astype(np.int64)
    return out


def _find_local(path: Path) -> Path:
    if path.is_dir():
        for name in ("cifar10.npz", "cifar10-jpeg.npz"):
            if (path / name).exists():
                return path / name
        raise FairgapError(f"no cifar10.npz or cifar10-jpeg.npz in {path}")
    if not path.exists():
        raise FairgapError(f"local CIFAR-10 copy {path} does not exist (set by path= or FAIRGAP_DATA)")
    return path


def load_arrays(dataset: str = "cifar10", path: str | None = None, root: str = "data") -> dict:
    """`x_train, y_train, x_test, y_test` as numpy (uint8 NHWC, int64), plus `source` and `classes`."""
    return _load_arrays(dataset, str(path or os.environ.get("FAIRGAP_DATA") or "") or None, root)


@lru_cache(maxsize=2)
def _load_arrays(dataset: str, path: str | None, root: str) -> dict:
    if path and dataset == "cifar10":
        f = _find_local(Path(path).expanduser())
        with np.load(f) as z:
            packed = "header" in z.files
            arrays = _decode_jpeg_pack(z) if packed else {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        digest = hashlib.sha256(np.ascontiguousarray(arrays["x_test"]).tobytes()).hexdigest()
        jpeg = packed or digest == JPEG_COPY_X_TEST_SHA256
        arrays["source"] = f"local copy {f.name}" + (" (the JPEG-derived CIFAR-10 copy)" if jpeg else "")
        arrays["classes"] = CLASS_NAMES["cifar10"]
        return arrays
    import torchvision  # lazy: torchvision only to download CIFAR when no local copy is given
    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[dataset]
    try:
        train, test = cls(root, train=True, download=True), cls(root, train=False, download=True)
    except Exception as e:  # no network, no disk: say how to get the data
        raise FairgapError(
            f"could not load {dataset} from {root!r} ({type(e).__name__}: {e}). Either connect to the "
            "internet so torchvision can download it, or point FAIRGAP_DATA at a local copy "
            "(a .npz with x_train/y_train/x_test/y_test, or shared/data/cifar10/cifar10-jpeg.npz)") from None
    return {"x_train": train.data, "y_train": np.asarray(train.targets, np.int64),
            "x_test": test.data, "y_test": np.asarray(test.targets, np.int64),
            "source": f"torchvision {cls.__name__} (original pixels)", "classes": tuple(train.classes)}


def balanced_subset(y: np.ndarray, per_class: int | None, seed: int = 0) -> np.ndarray:
    """Indices of `per_class` images of every class (all if None), picked with a fixed seed."""
    if per_class is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    idx = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    return np.sort(np.concatenate(idx))


@dataclass
class Split:
    """Everything an unlearning run needs, as device tensors (images uint8 NCHW, or float NCHW in [0, 1])."""
    x_forget: torch.Tensor
    y_forget: torch.Tensor
    x_retain: torch.Tensor
    y_retain: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple
    scenario: str                 # "class" or "random"
    forget_class: int | None      # the forgotten class under class-wise forgetting
    source: str
    train_all: tuple | None = None  # (x, y) of D_r + D_f in a fixed, scenario-independent order

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def x_train(self):
        """The whole training set (the original model's data), the same for every scenario."""
        return self.train_all[0] if self.train_all else torch.cat([self.x_retain, self.x_forget])

    @property
    def y_train(self):
        return self.train_all[1] if self.train_all else torch.cat([self.y_retain, self.y_forget])

    def test_remaining(self):
        """Test images of the classes that remain (all of them under random forgetting)."""
        if self.forget_class is None:
            return self.x_test, self.y_test
        keep = self.y_test != self.forget_class
        return self.x_test[keep], self.y_test[keep]


def make_split(profile: Profile, seed: int, scenario: str = "class", device="cpu", path=None) -> Split:
    """Subset per profile, hold out validation (per class), then carve the forget set.

    The image subset and the validation split are fixed (seed 0) so that seeds vary the
    models, not the data; the random forget set is drawn with the run's seed. A profile's
    name is resolved where names enter (`fg.make_split`, the public api), not here.
    """
    if not isinstance(profile, Profile):
        raise FairgapError(f"make_split takes a Profile (get_profile(name)), got {type(profile).__name__} "
                           f"{profile!r}")
    check_choice("forget scenario", scenario, SCENARIOS)
    a = load_arrays(profile.dataset, path)
    classes = tuple(a["classes"])
    tr = balanced_subset(a["y_train"], None if profile.n_train_per_class is None
                         else int(round(profile.n_train_per_class / (1 - profile.val_fraction))), seed=0)
    te = balanced_subset(a["y_test"], profile.n_test_per_class, seed=0)
    rng = np.random.default_rng(0)
    y_tr = a["y_train"][tr]
    val_mask = np.zeros(len(tr), bool)
    for c in np.unique(y_tr):
        members = np.flatnonzero(y_tr == c)
        val_mask[rng.permutation(members)[:int(round(profile.val_fraction * len(members)))]] = True
    train_idx, val_idx = tr[~val_mask], tr[val_mask]
    y_train = a["y_train"][train_idx]
    if scenario == "class":
        forget_class = resolve_class(profile.forget_class, classes)
        forget = y_train == forget_class
    else:
        forget_class = None
        forget = np.zeros(len(train_idx), bool)
        n_forget = int(round(profile.forget_fraction * len(train_idx)))
        pick = np.random.default_rng(seed).permutation(len(train_idx))[:n_forget]
        forget[pick] = True

    def images(x, idx):
        return torch.from_numpy(x[idx]).permute(0, 3, 1, 2).contiguous().to(device)

    def labels(y):
        return torch.from_numpy(y).to(device)
    x_train = a["x_train"]
    return Split(
        x_forget=images(x_train, train_idx[forget]), y_forget=labels(y_train[forget]),
        x_retain=images(x_train, train_idx[~forget]), y_retain=labels(y_train[~forget]),
        x_val=images(x_train, val_idx), y_val=labels(a["y_train"][val_idx]),
        x_test=images(a["x_test"], te), y_test=labels(a["y_test"][te]),
        classes=classes, scenario=scenario, forget_class=forget_class, source=a["source"],
        train_all=(images(x_train, train_idx), labels(y_train)))


UNIT = (0.0, 1.0)  # the pixel range of float images the package's models and attacks take


def check_images(x, what: str = "images", float_range: tuple | None = UNIT) -> None:
    """Refuse, in one line, images that are not NCHW uint8 or float (in `float_range` unless None)."""
    if not isinstance(x, torch.Tensor):
        raise FairgapError(f"{what} are a {type(x).__name__}; expected a torch.Tensor of shape (N, C, H, W)")
    if x.dim() != 4:
        raise FairgapError(f"{what} have shape {tuple(x.shape)}; expected 4 dimensions (N, C, H, W)")
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        raise FairgapError(f"{what} have shape {tuple(x.shape)}, which looks channels-last (N, H, W, C); "
                           "expected (N, C, H, W): pass x.permute(0, 3, 1, 2)")
    if x.dtype == torch.uint8:
        return
    expected = ("uint8 (0-255, scaled to [0, 1]) or floating point"
                + ("" if float_range is None else f" in [{float_range[0]:g}, {float_range[1]:g}]"))
    if not x.is_floating_point():
        raise FairgapError(f"{what} have dtype {x.dtype}; expected {expected}")
    if float_range is not None and x.numel():
        lo, hi = torch.aminmax(x.detach())
        lo, hi = lo.item(), hi.item()
        if not (float_range[0] <= lo and hi <= float_range[1]):
            raise FairgapError(f"{what} are {x.dtype} with values in [{lo:.4g}, {hi:.4g}]; expected {expected} "
                               "(floats are never rescaled: divide 0-255 floats by 255, or pass uint8)")


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0-255 -> float32 in [0, 1]; floating point -> float32 as it is (never divided twice)."""
    if x.dtype == torch.uint8:
        return x.float().div_(255)
    if x.is_floating_point():
        return x.float()
    raise FairgapError(f"images have dtype {x.dtype}; expected uint8 (0-255) or floating point")


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with zero padding 4 and random horizontal flip, batched, on x's device.

    Per image: a column offset dx and a row offset dy drawn uniformly from 0-8 and a flip
    with probability 1/2, in that order from `generator`. Crop and flip are one gather
    over the flattened padded image (a flipped crop reads its columns in reverse), four
    times cheaper on a CPU than indexing with four broadcast index tensors.
    """
    n, c, h, w = x.shape
    pad = 4
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)).reshape(n, c, -1)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device, generator=generator)
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    col = torch.arange(w, device=x.device)
    cols = torch.where(flip[:, None], col.flip(0), col) + dx[:, None]            # (n, w)
    rows = (dy[:, None] + torch.arange(h, device=x.device)) * (w + 2 * pad)      # (n, h)
    index = (rows[:, :, None] + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return padded.gather(2, index).view(n, c, h, w)


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
            augment_images: bool = False, generator: torch.Generator | None = None,
            float_range: tuple | None = UNIT):
    """Yield (float32 images, labels) batches from device tensors, checked as the module docstring says.

    uint8 images come out in [0, 1]; float images come out as they went in.
    """
    check_images(x, float_range=float_range)
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or len(y) != len(x) or y.is_floating_point() \
            or y.dtype == torch.bool:
        raise FairgapError(f"labels must be a 1-D integer tensor with one label per image ({len(x)}); got "
                           + (f"{y.dtype} of shape {tuple(y.shape)}" if isinstance(y, torch.Tensor)
                              else type(y).__name__))
    order = (torch.randperm(len(x), device=x.device, generator=generator) if shuffle
             else torch.arange(len(x), device=x.device))
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        xb = to_float(x[idx])
        yield (augment(xb, generator) if augment_images else xb), y[idx]
