"""Shared fixtures for the fairgap_utils test suite.

Everything here is small enough for a 2-core CPU: synthetic 32x32 images, `resnet_tiny`,
a few hundred images at most. Real CIFAR-10 is used only where a test asks for the
`real_data_path` fixture, which skips (with its reason) when no local copy exists. When a copy
is expected (FAIRGAP_DATA set, or ../shared/data present) and not found, the session stops at
once with one line naming the path, instead of skipping every real-data test.

Torch runs single-threaded by default (`FAIRGAP_TEST_THREADS` changes it): on a 2-core
machine shared with another heavy job, two OpenMP threads per process make small
convolutions up to 50x slower (spin-waiting), and one thread keeps every test
deterministic as well.
"""
from __future__ import annotations

import io
import os
import sys
import warnings
from pathlib import Path

os.environ["FAIRGAP_PROGRESS"] = "0"

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("FAIRGAP_TEST_THREADS", "1")))

from fairgap_utils import data as D  # noqa: E402
from fairgap_utils.config import TrainConfig  # noqa: E402
from fairgap_utils.models import create_model  # noqa: E402
from fairgap_utils.train import accuracy, seed_everything, train_supervised  # noqa: E402

CLASSES = D.CLASS_NAMES["cifar10"]
FORGET_CLASS = 9
JPEG_PACK = REPO.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.npz"


# --------------------------------------------------------------------------- environment

@pytest.fixture(autouse=True)
def _isolated_outputs(request, monkeypatch):
    """No test writes into the repository: results and cache go to the test's tmp_path.

    (Left out for the end-to-end book tests, test_book*.py, which manage their own folders.)
    """
    if request.module.__name__.rsplit(".", 1)[-1].startswith("test_book"):
        return
    tmp_path = request.getfixturevalue("tmp_path")
    monkeypatch.setenv("FAIRGAP_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("FAIRGAP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FAIRGAP_PROGRESS", "0")


def find_real_data() -> Path | None:
    """FAIRGAP_DATA if set (a file, or a folder holding one), else
    <repo>/../shared/data/cifar10/cifar10-jpeg.npz, else None."""
    env = os.environ.get("FAIRGAP_DATA")
    if env:
        p = Path(env).expanduser()
        if p.is_dir():
            p = next((p / n for n in ("cifar10.npz", "cifar10-jpeg.npz") if (p / n).is_file()), p / "missing")
        return p if p.is_file() else None
    return JPEG_PACK if JPEG_PACK.is_file() else None


SHARED_DATA = REPO.parent / "shared" / "data"


def data_problem() -> str | None:
    """Why an expected CIFAR-10 copy is not found (one line), or None when all is well or none is expected."""
    env = os.environ.get("FAIRGAP_DATA")
    if env:
        if find_real_data() is None:
            return (f"FAIRGAP_DATA={env!r} names no CIFAR-10 copy (a cifar10-jpeg.npz or cifar10.npz file, or a "
                    "folder holding one); point it at one or unset it")
    elif SHARED_DATA.is_dir() and not JPEG_PACK.is_file():
        return f"{SHARED_DATA} exists but holds no {JPEG_PACK.relative_to(SHARED_DATA)}; set FAIRGAP_DATA to a copy"
    return None


def pytest_configure(config):
    problem = data_problem()
    if problem:
        raise pytest.UsageError(problem)


class SyntheticDataWarning(UserWarning):
    """A test that would use real CIFAR-10 runs on the synthetic pattern task instead."""


def real_data_or_patterns(folder: Path, n_train_per_class: int, n_test_per_class: int, what: str) -> Path:
    """The local CIFAR-10 copy, or (when there is none) the pattern task in its file format, saying so."""
    real = find_real_data()
    if real is not None:
        return real
    warnings.warn(SyntheticDataWarning(f"{what}: no local CIFAR-10 copy (FAIRGAP_DATA, ../shared/data), so on "
                                       "the synthetic pattern task"), stacklevel=2)
    return write_pattern_npz(folder / "cifar10.npz", n_train_per_class, n_test_per_class)


@pytest.fixture
def fixed_rates(monkeypatch):
    """Throughput of the estimator fixed (images/s), so time estimates are exact and instant."""
    from fairgap_utils.computing import estimate as E
    monkeypatch.setattr(E, "training_rate", lambda arch, batch, device, classes=10: 100.0)
    monkeypatch.setattr(E, "forward_rate", lambda arch, batch, device, classes=10: 1000.0)
    monkeypatch.setattr(E, "attack_rate", lambda arch, batch, device, classes=10: 200.0)
    monkeypatch.setattr(E, "svm_seconds", lambda n: 0.5)


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    """The whole smoke book, built once per session by the CLI from real images: results, cache,
    executed notebooks and HTML under one folder (test_book.py, test_book_colab.py)."""
    import subprocess
    data = find_real_data()
    if data is None:
        pytest.skip("no local CIFAR-10 copy (set FAIRGAP_DATA); the e2e build needs real images")
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ, FAIRGAP_DATA=str(data), FAIRGAP_RESULTS=str(out / "results"),
               FAIRGAP_CACHE=str(out / "cache"), FAIRGAP_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-m", "fairgap_utils", "run", "--profile", "smoke", "--out", str(out)],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    p = find_real_data()
    if p is None:
        pytest.skip("no local CIFAR-10 copy (set FAIRGAP_DATA or provide ../shared/data/cifar10/cifar10-jpeg.npz)")
    return p


# --------------------------------------------------------------------------- synthetic images

def pattern_images(n_per_class: int, seed: int, noise: float = 15.0):
    """An easy 10-class task: the class is a stripe pattern, the colours are random.

    Classes 0-8: {horizontal stripes, vertical stripes, checkerboard} x period {4, 6, 8}
    with a random phase; class 9: a plain image. Foreground/background colours are drawn
    per image (shared by all classes), so per-class colour statistics are alike and the
    patterns survive the package's augmentation (crop + horizontal flip).
    Returns uint8 NCHW images and int64 labels, class-major.
    """
    g = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), n_per_class)
    yy, xx = np.mgrid[0:32, 0:32]
    out = np.empty((len(y), 3, 32, 32))
    for i, c in enumerate(y):
        fg, bg = g.uniform(0, 255, 3), g.uniform(0, 255, 3)
        while np.abs(fg - bg).sum() < 150:
            fg, bg = g.uniform(0, 255, 3), g.uniform(0, 255, 3)
        if c == 9:
            on = np.ones((32, 32), bool)
        else:
            period = (4, 6, 8)[c // 3]
            py, px = g.integers(0, period, 2)
            a, b = ((yy + py) % period) < period // 2, ((xx + px) % period) < period // 2
            on = [a, b, a ^ b][c % 3]
        out[i] = np.where(on[None], fg[:, None, None], bg[:, None, None]) + g.normal(0, noise, (3, 32, 32))
    return torch.from_numpy(np.clip(out, 0, 255).astype(np.uint8)), torch.from_numpy(y.astype(np.int64))


def make_class_split(x, y, x_test, y_test, forget_class=FORGET_CLASS, x_val=None, y_val=None) -> D.Split:
    f = y == forget_class
    x_val = x_test[:0] if x_val is None else x_val
    y_val = y_test[:0] if y_val is None else y_val
    return D.Split(x_forget=x[f], y_forget=y[f], x_retain=x[~f], y_retain=y[~f], x_val=x_val, y_val=y_val,
                   x_test=x_test, y_test=y_test, classes=CLASSES, scenario="class",
                   forget_class=forget_class, source="synthetic patterns")


@pytest.fixture(scope="session")
def synthetic_split() -> D.Split:
    """50 train / 20 test images per class of the pattern task; class 9 is forgotten."""
    x, y = pattern_images(50, seed=0)
    xt, yt = pattern_images(20, seed=1)
    return make_class_split(x, y, xt, yt)


ORIGINAL_CONFIG = TrainConfig(epochs=10, batch_size=50, lr=0.1, augment=True, label_smoothing=0.0)


@pytest.fixture(scope="session")
def trained_original(synthetic_split):
    """resnet_tiny trained once per session on the pattern task (about 5 s on one core).

    Never modify it in a test: run_method works on a copy; attacks only switch it to eval.
    FAIRGAP_TEST_ORIGINAL names a file to keep it in between sessions: benchmarks/mutation.py
    trains it once with the unmutated code instead of once per mutant (never for train.py's).
    """
    keep = os.environ.get("FAIRGAP_TEST_ORIGINAL")
    seed_everything(0)
    model = create_model("resnet_tiny")
    if keep and Path(keep).is_file():
        saved = torch.load(keep, weights_only=True)
        model.load_state_dict(saved["state"])
        log = saved["log"]
    else:
        log = train_supervised(model, synthetic_split.x_train, synthetic_split.y_train, ORIGINAL_CONFIG, seed=0)
        if keep:
            torch.save({"state": model.state_dict(), "log": log}, keep)
    model.eval()
    s = synthetic_split
    acc = {"forget": accuracy(model, s.x_forget, s.y_forget), "retain": accuracy(model, s.x_retain, s.y_retain),
           "test_remaining": accuracy(model, *s.test_remaining())}
    assert acc["forget"] >= 90 and acc["retain"] >= 90 and acc["test_remaining"] >= 85, \
        f"the synthetic original did not learn the easy task: {acc}"
    return model, ORIGINAL_CONFIG, acc, log


# --------------------------------------------------------------------------- small CIFAR-format files

def write_pattern_npz(path: Path, n_train_per_class: int, n_test_per_class: int) -> Path:
    """The pattern task (uint8 NHWC, int64 labels) in the unpacked cifar10.npz format."""
    arrays = {}
    for part, n, seed in (("train", n_train_per_class, 10), ("test", n_test_per_class, 11)):
        x, y = pattern_images(n, seed)
        arrays[f"x_{part}"], arrays[f"y_{part}"] = x.permute(0, 2, 3, 1).contiguous().numpy(), y.numpy()
    np.savez(path, classes=np.array(CLASSES), **arrays)
    return path


def write_unpacked_npz(path: Path, n_train_per_class=30, n_test_per_class=10, seed=0) -> dict:
    """A tiny file in the unpacked cifar10.npz format (uint8 NHWC, int64 labels, class-major)."""
    g = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train_per_class), ("test", n_test_per_class)):
        y = np.repeat(np.arange(10), n).astype(np.int64)
        x = g.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
        x[:, 0, 0, 0] = y  # the label is readable from the first pixel
        arrays[f"x_{part}"], arrays[f"y_{part}"] = x, y
    np.savez(path, classes=np.array(CLASSES), **arrays)
    return arrays


def write_jpeg_pack(path: Path, n_train_per_class=3, n_test_per_class=2, seed=0) -> dict:
    """A tiny file in the cifar10-jpeg.npz pack format: JPEG scans sharing one header."""
    from PIL import Image
    g = np.random.default_rng(seed)
    pack, decoded, header = {}, {}, None
    for part, n in (("train", n_train_per_class), ("test", n_test_per_class)):
        y = np.repeat(np.arange(10), n)
        scans, offsets, xs = [], [0], []
        for c in y:
            img = np.full((32, 32, 3), 25 * c, np.uint8) + g.integers(0, 20, (32, 32, 3), dtype=np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=75)
            b = buf.getvalue()
            sos = b.index(b"\xff\xda")
            end = sos + 2 + int.from_bytes(b[sos + 2:sos + 4], "big")
            assert header is None or header == b[:end], "PIL wrote differing JPEG headers"
            header = b[:end]
            scans.append(b[end:])
            offsets.append(offsets[-1] + len(b) - end)
            xs.append(np.asarray(Image.open(io.BytesIO(b)).convert("RGB")))
        pack[f"scans_{part}"] = np.frombuffer(b"".join(scans), np.uint8)
        pack[f"offsets_{part}"] = np.array(offsets, np.int64)
        pack[f"y_{part}"] = y.astype(np.uint8)
        decoded[f"x_{part}"], decoded[f"y_{part}"] = np.stack(xs), y.astype(np.int64)
    pack["header"] = np.frombuffer(header, np.uint8)
    np.savez(path, classes=np.array(CLASSES), **pack)
    return decoded


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory):
    """(path, arrays) of a small unpacked-format CIFAR file: 30 train / 10 test images per class."""
    path = tmp_path_factory.mktemp("tinydata") / "cifar10.npz"
    return path, write_unpacked_npz(path)


class StubModel(torch.nn.Module):
    """A model whose predictions the test controls through the pixels.

    For an image in [0, 1]: predicted class = round(255 * x[0, 0, 0]), logit margin =
    round(255 * x[1, 0, 0]) / 10; logits are margin * one_hot(predicted class).
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.num_classes = num_classes
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        pred = torch.round(x[:, 0, 0, 0] * 255).long()
        margin = torch.round(x[:, 1, 0, 0] * 255) / 10
        return torch.nn.functional.one_hot(pred, self.num_classes).float() * margin[:, None] + self.dummy


def stub_images(pred, margin=50) -> torch.Tensor:
    """uint8 images that StubModel maps to class `pred` with logit margin `margin / 10`."""
    pred = torch.as_tensor(pred, dtype=torch.uint8)
    x = torch.zeros(len(pred), 3, 32, 32, dtype=torch.uint8)
    x[:, 0, 0, 0] = pred
    x[:, 1, 0, 0] = torch.as_tensor(margin, dtype=torch.uint8)
    return x


def assert_percentages_of_counts(record: dict) -> None:
    """UA, RA, TA and MIA of a result file are percentages of whole numbers of images: UA and RA of
    D_f and D_r, TA of the remaining-class test images, MIA of D_f over the member draws (a metric
    in the wrong unit, or averaged over the wrong set, is not)."""
    sizes, m = record["sizes"], record["metrics"]
    remaining = sizes["test"] - (sizes["test"] // len(record["classes"]) if record["forget_class"] is not None else 0)
    draws = record["eval"]["mia_member_subsets"]
    for key, n in (("UA", sizes["forget"]), ("RA", sizes["retain"]), ("TA", remaining),
                   ("MIA", sizes["forget"] * draws)):
        count = m[key] * n / 100
        assert abs(count - round(count)) < 1e-3 and 0 <= round(count) <= n, (key, m[key], n)   # float32 means
