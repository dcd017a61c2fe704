"""fairgap_utils.data: local CIFAR-10 copies, splits, class names, augmentation, batching."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CLASSES, JPEG_PACK, REPO, write_jpeg_pack, write_unpacked_npz
from fairgap_utils import data as D
from fairgap_utils.config import get_profile
from fairgap_utils.errors import FairgapError


def _hashes(x: torch.Tensor) -> list[str]:
    return [hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in x]


@pytest.fixture
def fresh_cache():
    """load_arrays is lru-cached; tests that read FAIRGAP_DATA start and end with an empty cache."""
    D._load_arrays.cache_clear()
    yield
    D._load_arrays.cache_clear()


# --------------------------------------------------------------------------- loading

def test_load_unpacked_npz_by_path(tiny_npz):
    path, arrays = tiny_npz
    a = D.load_arrays("cifar10", str(path))
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(a[k], arrays[k]), k
    assert a["x_train"].shape == (300, 32, 32, 3) and a["x_train"].dtype == np.uint8
    assert a["x_test"].shape == (100, 32, 32, 3) and a["x_test"].dtype == np.uint8
    assert a["y_train"].dtype == np.int64 and a["y_test"].dtype == np.int64
    assert tuple(a["classes"]) == CLASSES
    assert path.name in a["source"]


def test_load_folder_holding_the_npz(tiny_npz):
    path, arrays = tiny_npz
    a = D.load_arrays("cifar10", str(path.parent))
    assert np.array_equal(a["x_test"], arrays["x_test"])


def test_load_via_fairgap_data(tiny_npz, monkeypatch, fresh_cache):
    path, arrays = tiny_npz
    monkeypatch.setenv("FAIRGAP_DATA", str(path))
    a = D.load_arrays("cifar10")
    assert np.array_equal(a["x_train"], arrays["x_train"])
    assert np.array_equal(a["y_test"], arrays["y_test"])


def test_load_jpeg_pack_format(tmp_path):
    """A pack of JPEG scans sharing one header decodes to exactly what Pillow decodes."""
    path = tmp_path / "cifar10-jpeg.npz"
    expected = write_jpeg_pack(path)
    a = D.load_arrays("cifar10", str(path))
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(a[k], expected[k]), k
    assert a["x_train"].shape == (30, 32, 32, 3) and a["x_train"].dtype == np.uint8
    assert a["y_train"].dtype == np.int64
    assert "JPEG" in a["source"]
    assert tuple(a["classes"]) == CLASSES


def test_missing_local_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "cifar10.npz"
    with pytest.raises(FairgapError, match="does not exist") as e:
        D.load_arrays("cifar10", str(missing))
    assert str(missing) in str(e.value) and "\n" not in str(e.value)


def test_folder_without_a_copy_is_a_clear_error(tmp_path):
    with pytest.raises(FairgapError, match="no cifar10.npz or cifar10-jpeg.npz"):
        D.load_arrays("cifar10", str(tmp_path))


def test_missing_fairgap_data_is_a_clear_error(tmp_path, monkeypatch, fresh_cache):
    monkeypatch.setenv("FAIRGAP_DATA", str(tmp_path / "missing.npz"))
    with pytest.raises(FairgapError, match="FAIRGAP_DATA"):
        D.load_arrays("cifar10")


def test_changed_fairgap_data_is_honoured(tmp_path, monkeypatch, fresh_cache):
    a_path, b_path = tmp_path / "a.npz", tmp_path / "b.npz"
    write_unpacked_npz(a_path, seed=1)
    b = write_unpacked_npz(b_path, seed=2)
    monkeypatch.setenv("FAIRGAP_DATA", str(a_path))
    D.load_arrays("cifar10")
    monkeypatch.setenv("FAIRGAP_DATA", str(b_path))
    assert np.array_equal(D.load_arrays("cifar10")["x_train"], b["x_train"])
    monkeypatch.setenv("FAIRGAP_DATA", str(tmp_path / "gone.npz"))
    with pytest.raises(FairgapError):
        D.load_arrays("cifar10")


def _check_full_cifar10(a):
    assert a["x_train"].shape == (50000, 32, 32, 3) and a["x_train"].dtype == np.uint8
    assert a["x_test"].shape == (10000, 32, 32, 3) and a["x_test"].dtype == np.uint8
    assert a["y_train"].dtype == np.int64 and a["y_test"].dtype == np.int64
    assert np.array_equal(np.bincount(a["y_train"]), [5000] * 10)
    assert np.array_equal(np.bincount(a["y_test"]), [1000] * 10)
    assert tuple(a["classes"]) == CLASSES
    # per-channel means of the JPEG-derived copy (shared/data/cifar10/README.md), on a sample
    mean = a["x_train"][::10].reshape(-1, 3).mean(0) / 255
    assert np.allclose(mean, (0.4913, 0.4821, 0.4465), atol=3e-3), mean


def test_real_cifar10_copy(real_data_path):
    a = D.load_arrays("cifar10", str(real_data_path))
    _check_full_cifar10(a)
    assert real_data_path.name in a["source"]


def _unpacked_candidates():
    env = os.environ.get("FAIRGAP_DATA")
    cands = [Path(env)] if env else []
    cands += [REPO.parent / "shared" / "data" / "cifar10" / "cifar10.npz", Path("/work/data/cifar10.npz")]
    for p in cands:
        if p.is_file():
            with np.load(p) as z:
                if "x_train" in z.files:
                    return p
    return None


def test_real_unpacked_copy_matches_the_jpeg_pack():
    unpacked = _unpacked_candidates()
    if unpacked is None:
        pytest.skip("no unpacked cifar10.npz found")
    a = D.load_arrays("cifar10", str(unpacked))
    _check_full_cifar10(a)
    if not JPEG_PACK.exists():
        pytest.skip(f"an unpacked copy ({unpacked}) but no {JPEG_PACK} to compare it with")
    b = D.load_arrays("cifar10", str(JPEG_PACK))
    assert np.array_equal(a["y_train"], b["y_train"]) and np.array_equal(a["y_test"], b["y_test"])
    # another JPEG decoder build may differ by a level or so, never more on average
    assert np.abs(a["x_test"].astype(int) - b["x_test"]).mean() < 0.5
    assert "JPEG" in b["source"]
    if np.array_equal(a["x_test"], b["x_test"]):      # the unpacked pack: recognized as the JPEG-derived copy
        assert "JPEG" in a["source"], a["source"]


# --------------------------------------------------------------------------- resolve_class

@pytest.mark.parametrize("value, idx", [("truck", 9), ("airplane", 0), ("cat", 3), (3, 3), ("7", 7), (0, 0),
                                        (np.int64(9), 9)])
def test_resolve_class(value, idx):
    assert D.resolve_class(value, CLASSES) == idx


@pytest.mark.parametrize("value", ["spaceship", "Truck", 10, -1, "10", 100])
def test_resolve_class_rejects(value):
    with pytest.raises(FairgapError) as e:
        D.resolve_class(value, CLASSES)
    msg = str(e.value)
    assert repr(value) in msg and "\n" not in msg
    assert "0-9" in msg and "airplane" in msg


@pytest.mark.parametrize("value", [2.5, None])
def test_resolve_class_rejects_non_integers(value):
    with pytest.raises(FairgapError):
        D.resolve_class(value, CLASSES)


# --------------------------------------------------------------------------- make_split

def _profile(**kw):
    return get_profile("smoke").replace(**kw)


def test_class_split_on_a_small_copy(tiny_npz):
    path, arrays = tiny_npz
    p = _profile(n_train_per_class=None, n_test_per_class=None, forget_class=4)
    s = D.make_split(p, seed=0, scenario="class", path=str(path))
    assert s.scenario == "class" and s.forget_class == 4 and s.classes == CLASSES and s.num_classes == 10
    # forget set = exactly the forget class (what is left of it after validation)
    assert (s.y_forget == 4).all() and len(s.y_forget) == 27
    assert not (s.y_retain == 4).any()
    assert np.array_equal(np.bincount(s.y_retain.numpy(), minlength=10), [27] * 4 + [0] + [27] * 5)
    # validation: 10 % of every class
    assert np.array_equal(np.bincount(s.y_val.numpy(), minlength=10), [3] * 10)
    # images are uint8 NCHW and keep their labels (the label sits in the first pixel)
    for x, y in ((s.x_forget, s.y_forget), (s.x_retain, s.y_retain), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert x.dtype == torch.uint8 and x.shape[1:] == (3, 32, 32) and y.dtype == torch.int64
        assert torch.equal(x[:, 0, 0, 0].long(), y)
    # no overlap, and together they are the whole training set
    f, r, v = set(_hashes(s.x_forget)), set(_hashes(s.x_retain)), set(_hashes(s.x_val))
    assert not (f & r) and not (f & v) and not (r & v)
    all_train = set(_hashes(torch.from_numpy(arrays["x_train"]).permute(0, 3, 1, 2)))
    assert f | r | v == all_train
    assert len(s.x_test) == 100
    # x_train / y_train are retain + forget; test_remaining drops the forget class
    assert len(s.x_train) == len(s.x_retain) + len(s.x_forget) and len(s.y_train) == len(s.x_train)
    xt, yt = s.test_remaining()
    assert len(xt) == 90 and not (yt == 4).any()


def test_class_split_subsets_per_class(tiny_npz):
    path, _ = tiny_npz
    p = _profile(n_train_per_class=18, n_test_per_class=4, forget_class="deer")
    s = D.make_split(p, seed=0, scenario="class", path=str(path))
    # n_train_per_class counts what is left after validation: round(18 / 0.9) = 20 per class, 2 held out
    assert len(s.y_forget) == 18 and (s.y_forget == 4).all()
    assert np.array_equal(np.bincount(s.y_val.numpy(), minlength=10), [2] * 10)
    assert np.array_equal(np.bincount(s.y_test.numpy(), minlength=10), [4] * 10)


def test_random_split(tiny_npz):
    path, _ = tiny_npz
    p = _profile(n_train_per_class=None, n_test_per_class=None, forget_fraction=0.2)
    s0 = D.make_split(p, seed=0, scenario="random", path=str(path))
    s0b = D.make_split(p, seed=0, scenario="random", path=str(path))
    s1 = D.make_split(p, seed=1, scenario="random", path=str(path))
    assert s0.forget_class is None and s0.scenario == "random"
    n_train = len(s0.x_forget) + len(s0.x_retain)
    assert n_train == 270
    assert len(s0.x_forget) == round(0.2 * n_train)
    assert len(np.unique(s0.y_forget.numpy())) > 3          # drawn from many classes
    assert not set(_hashes(s0.x_forget)) & set(_hashes(s0.x_retain))
    # seeded: same seed, same set; another seed, another set (of the same images)
    assert torch.equal(s0.x_forget, s0b.x_forget) and torch.equal(s0.y_forget, s0b.y_forget)
    assert set(_hashes(s0.x_forget)) != set(_hashes(s1.x_forget))
    assert (set(_hashes(s0.x_forget)) | set(_hashes(s0.x_retain))
            == set(_hashes(s1.x_forget)) | set(_hashes(s1.x_retain)))
    # validation and test images do not depend on the seed
    assert torch.equal(s0.x_val, s1.x_val) and torch.equal(s0.x_test, s1.x_test)
    xt, yt = s0.test_remaining()
    assert torch.equal(xt, s0.x_test)


def test_split_bad_scenario(tiny_npz):
    with pytest.raises(FairgapError, match="'half'.*class, random"):
        D.make_split(_profile(), 0, "half", path=str(tiny_npz[0]))


def test_smoke_split_on_real_data(real_data_path):
    s = D.make_split(get_profile("smoke"), seed=0, scenario="class", path=str(real_data_path))
    assert s.forget_class == 9 and s.classes[s.forget_class] == "truck"
    assert len(s.x_forget) == 60 and (s.y_forget == 9).all()
    assert len(s.x_retain) == 540 and not (s.y_retain == 9).any()
    assert np.array_equal(np.bincount(s.y_val.numpy(), minlength=10), [7] * 10)
    assert np.array_equal(np.bincount(s.y_test.numpy(), minlength=10), [30] * 10)
    assert not set(_hashes(s.x_forget)) & set(_hashes(s.x_retain))
    assert not set(_hashes(s.x_val)) & (set(_hashes(s.x_forget)) | set(_hashes(s.x_retain)))


def test_balanced_subset():
    y = np.repeat(np.arange(5), 20)[np.random.default_rng(0).permutation(100)]
    idx = D.balanced_subset(y, 7, seed=3)
    assert np.array_equal(np.bincount(y[idx]), [7] * 5)
    assert np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, D.balanced_subset(y, 7, seed=3))
    assert np.array_equal(D.balanced_subset(y, None), np.arange(100))


# --------------------------------------------------------------------------- augment / batches

def _crops_and_flips(img: torch.Tensor):
    padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy:dy + 32, dx:dx + 32]
            yield crop
            yield crop.flip(2)


def test_augment_is_a_crop_and_flip():
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = D.augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1
    for i in range(len(x)):
        assert any(torch.equal(out[i], c) for c in _crops_and_flips(x[i])), i
    assert not torch.equal(out, x)   # 6 images, 162 choices each: some image moved


def test_augment_crops_and_flips_each_image_by_its_own_draws():
    """Image i is the 32x32 window at (dy_i, dx_i) of the zero-padded image, mirrored when flip_i;
    the draws are dx, dy, flip for the whole batch, in that order, from the generator."""
    n = 40
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    out = D.augment(x, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    dx, dy = torch.randint(0, 9, (n,), generator=g), torch.randint(0, 9, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        assert torch.equal(out[i], crop.flip(2) if flip[i] else crop), i
    assert 0 < int(flip.sum()) < n and len(set(zip(dx.tolist(), dy.tolist()))) > 10   # images drawn apart


def test_augment_covers_every_offset_and_both_orientations():
    """A one-hot pixel shows where each image's crop landed: all 81 offsets x 2 flips occur."""
    n = 4000
    x = torch.zeros(n, 1, 32, 32)
    x[:, 0, 0, 0] = 1.0                       # the top-left pixel, seen at (4 - dy, 4 - dx) or mirrored
    out = D.augment(x, torch.Generator().manual_seed(0))
    seen = set()
    for img in out[:, 0]:
        hit = torch.nonzero(img)
        if len(hit):                          # dy, dx <= 4: the marked pixel is inside the crop
            r, c = hit[0].tolist()
            seen.add((r, c))
    # inside-crop positions: rows 0-4, columns 0-4 (unflipped) or 27-31 (flipped)
    assert seen == {(r, c) for r in range(5) for c in (*range(5), *range(27, 32))}


def test_augment_is_deterministic_under_a_seeded_generator():
    x = torch.rand(16, 3, 32, 32)
    a = D.augment(x, torch.Generator().manual_seed(5))
    b = D.augment(x, torch.Generator().manual_seed(5))
    c = D.augment(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_to_float():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    assert torch.allclose(D.to_float(x).flatten(), torch.tensor([0.0, 0.2, 1.0]))
    assert torch.equal(D.to_float(D.to_float(x)), D.to_float(x))       # floats are never divided again
    assert D.to_float(x.double()).dtype == torch.float32


# --------------------------------------------------------------------------- input types

def test_float_images_in_unit_range_give_what_uint8_gives(trained_original, synthetic_split):
    """The bug this guards: float images in [0, 1] were divided by 255 a second time."""
    from fairgap_utils.attacks import accuracy_under_attack
    from fairgap_utils.fairness import class_sigmas
    from fairgap_utils.metrics import unlearning_metrics
    from fairgap_utils.train import predict
    model = trained_original[0]
    x, y = synthetic_split.x_test[::4], synthetic_split.y_test[::4]
    xf = x.float() / 255
    assert torch.equal(next(D.batches(xf, y, 64))[0], next(D.batches(x, y, 64))[0])
    assert torch.equal(predict(model, xf), predict(model, x))
    assert class_sigmas(model, xf, y, 10) == class_sigmas(model, x, y, 10)
    assert (accuracy_under_attack(model, xf, y, "fgsm", [0.0, 8 / 255])
            == accuracy_under_attack(model, x, y, "fgsm", [0.0, 8 / 255]))
    s = synthetic_split
    as_float = D.Split(**{**s.__dict__, **{k: getattr(s, k).float() / 255 for k in ("x_forget", "x_retain", "x_test")}})
    assert unlearning_metrics(model, as_float) == unlearning_metrics(model, s)
    assert unlearning_metrics(model, as_float)["TA"] > 80
    twice = D.Split(**{**as_float.__dict__,
                       **{k: getattr(as_float, k) / 255 for k in ("x_forget", "x_retain", "x_test")}})
    assert unlearning_metrics(model, twice)["TA"] < 20     # what dividing twice did: every image one class


BAD_IMAGES = {   # images -> what the one-line refusal must name
    "int64": (torch.zeros(4, 3, 8, 8, dtype=torch.int64), ["torch.int64", "uint8", "floating point in [0, 1]"]),
    "bool": (torch.zeros(4, 3, 8, 8, dtype=torch.bool), ["torch.bool", "uint8"]),
    "floats 0-255": (torch.full((4, 3, 8, 8), 200.0), ["[200, 200]", "[0, 1]", "divide 0-255 floats by 255"]),
    "negative floats": (torch.full((4, 3, 8, 8), -0.5), ["[-0.5, -0.5]", "[0, 1]"]),
    "NaN": (torch.full((4, 3, 8, 8), float("nan")), ["nan", "[0, 1]"]),
    "NHWC": (torch.zeros(4, 32, 32, 3, dtype=torch.uint8), ["(4, 32, 32, 3)", "channels-last", "(N, C, H, W)"]),
    "3-D": (torch.zeros(3, 32, 32, dtype=torch.uint8), ["(3, 32, 32)", "(N, C, H, W)"]),
    "numpy": (np.zeros((4, 3, 8, 8), np.uint8), ["ndarray", "torch.Tensor"]),
}


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_images_are_refused_in_one_line(case):
    x, words = BAD_IMAGES[case]
    with pytest.raises(FairgapError) as e:
        next(D.batches(x, torch.zeros(len(x), dtype=torch.long), 2))
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_floats_outside_unit_range_pass_unchanged_only_when_asked():
    x = torch.randn(6, 3, 8, 8) * 3                    # e.g. images normalized with mean/std
    xb, _ = next(D.batches(x, torch.zeros(6, dtype=torch.long), 6, float_range=None))
    assert torch.equal(xb, x)


@pytest.mark.parametrize("labels, words", [
    (torch.zeros(3, dtype=torch.long), ["one label per image (4)", "(3,)"]),
    (torch.zeros(4), ["torch.float32"]),
    (torch.zeros(4, 1, dtype=torch.long), ["(4, 1)"]),
])
def test_bad_labels_are_refused_in_one_line(labels, words):
    with pytest.raises(FairgapError) as e:
        next(D.batches(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels, 2))
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_attacks_refuse_uint8_and_unscaled_floats(trained_original):
    from fairgap_utils.attacks import fgsm, pgd
    model, y = trained_original[0], torch.zeros(2, dtype=torch.long)
    for attack in (fgsm, pgd):
        with pytest.raises(FairgapError, match="float images in \\[0, 1\\], got torch.uint8"):
            attack(model, torch.zeros(2, 3, 32, 32, dtype=torch.uint8), y, 8 / 255)
        with pytest.raises(FairgapError, match="values in \\[255, 255\\]"):
            attack(model, torch.full((2, 3, 32, 32), 255.0), y, 8 / 255)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("aug", [False, True])
def test_batches_cover_all_items(shuffle, aug):
    n = 23
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    x[:, 0, :, :] = torch.arange(n, dtype=torch.uint8)[:, None, None]   # an id in every pixel of channel 0
    y = torch.arange(n) * 10
    got = list(D.batches(x, y, 5, shuffle=shuffle, augment_images=aug, generator=torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in got] == [5, 5, 5, 5, 3]
    labels = torch.cat([b[1] for b in got])
    assert sorted(labels.tolist()) == y.tolist()
    if not shuffle:
        assert torch.equal(labels, y)
    for xb, yb in got:
        assert xb.dtype == torch.float32 and xb.shape[1:] == (3, 32, 32)
        assert xb.min() >= 0 and xb.max() <= 1
        ids = (yb // 10)
        # the centre pixel survives any crop by <= 4 pixels: it still carries the image id
        assert torch.equal(torch.round(xb[:, 0, 16, 16] * 255).long(), ids)
        if not aug:
            assert torch.equal(xb, x[ids].float() / 255)
    if shuffle:
        assert not torch.equal(labels, y)


def test_batches_shuffle_is_seeded():
    x = torch.zeros(50, 3, 32, 32, dtype=torch.uint8)
    y = torch.arange(50)

    def order(seed):
        return torch.cat([b for _, b in D.batches(x, y, 8, shuffle=True,
                                                  generator=torch.Generator().manual_seed(seed))])
    assert torch.equal(order(0), order(0))
    assert not torch.equal(order(0), order(1))
