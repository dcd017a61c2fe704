"""Wall-time estimates of the compute stage, from throughput measured on this device.

    est = Estimator(profile, device)
    est.stages(unit, train_original=True, train_retrain=True)
    # {"original": 112.0, "retrain": 101.5, "measure": 9.2}   seconds, per stage

Nothing here is a constant: the rates are measured the first time they are needed, on
the device the run uses, and kept for the process (`training_rate`, `forward_rate`,
`attack_rate`, `svm_seconds`). Each is a few timed steps of the code a run executes
(`train.fit` with its augmentation, autocast and channels_last; `train.predict`;
`attacks.fgsm`; scikit-learn's SVM) on random inputs of the real shape.

A stage's estimate is the images it pushes through the model over the measured rate:
epochs x set size for training (original, Retrain, each method by what it iterates,
`method_images`), and every forward and input-gradient pass of `pipeline.measure_model`
plus its SVM. `Estimator.observe` records what a stage really took; later estimates
of that stage kind on that architecture are scaled by the ratio seen so far.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .. import attacks, metrics, models
from .. import data as D
from .. import train as T
from ..config import CLASS_NAMES

_RATES: dict = {}  # measured rates, per (what, arch, batch, device, classes), for the life of the process

TRAIN_SETS = {"cifar10": (5000, 1000), "cifar100": (500, 100)}  # images per class: train, test


def split_sizes(profile, scenario: str) -> dict:
    """Image counts of the split `data.make_split` draws for a profile and scenario (same arithmetic)."""
    classes = len(CLASS_NAMES[profile.dataset])
    full_train, full_test = TRAIN_SETS[profile.dataset]
    per_class = full_train if profile.n_train_per_class is None else min(
        full_train, int(round(profile.n_train_per_class / (1 - profile.val_fraction))))
    train_per_class = per_class - int(round(profile.val_fraction * per_class))
    test_per_class = full_test if profile.n_test_per_class is None else min(full_test, profile.n_test_per_class)
    train, test = train_per_class * classes, test_per_class * classes
    forget = train_per_class if scenario == "class" else int(round(profile.forget_fraction * train))
    return {"train": train, "forget": forget, "retain": train - forget, "test": test,
            "test_remaining": test - test_per_class if scenario == "class" else test, "classes": classes}


def method_images(method: str, hp: dict, sizes: dict) -> float:
    """Images a method pushes through a training step (forward and backward), all epochs together.

    Read off each method's module; a method not listed here is taken to iterate over
    D_f and D_r every epoch (an upper bound for every method listed).
    """
    f, r, e = sizes["forget"], sizes["retain"], hp.get("epochs", 1)
    if method in ("ft", "cf_k", "eu_k", "l1_sparse"):   # D_r each epoch (CF-k/EU-k: an upper bound)
        return e * r
    if method == "ga":
        return e * f
    if method == "bs":                                   # + one FGSM pass over D_f for the new labels
        return e * f + 2 * f
    if method in ("rl", "salun"):                        # D_f with random labels, then D_r; SalUn's mask pass
        return e * (f + r) + (f if method == "salun" else 0)
    if method == "scrub":                                # max-steps on D_f, min-steps on D_r, teacher forwards
        return (e * r + min(hp.get("msteps", e), e) * f) * 4 / 3
    return e * (f + r)


def measure_images(ev, sizes: dict) -> tuple[int, int, int]:
    """Images `pipeline.measure_model` pushes through the model: (forwards before the MIA's SVM is
    fitted, all forwards without gradients, forwards with an input gradient).

    One pass over D_f, D_r and the test set, which the accuracies and the MIA share (`metrics.predictions`);
    sigma on the fairness split; the attacked images clean, at
    every eps and, for PGD, every step. The FGSM sweep takes one input gradient per image for all
    its eps (`attacks._fgsm_sweep`).
    """
    s = sizes
    attacked = s["test_remaining"] if ev.attack_images is None else min(ev.attack_images, s["test_remaining"])
    before_svm = s["forget"] + s["retain"] + s["test"]
    fairness = s["test"] if ev.fairness_split == "test" else s["retain"]
    forwards = before_svm + fairness + attacked * (1 + len(ev.fgsm_eps) + len(ev.pgd_eps))
    gradients = attacked * ((1 if ev.fgsm_eps else 0) + len(ev.pgd_eps) * ev.pgd_steps)
    return before_svm, forwards, gradients


def work_images(profile, unit, train_original: bool = False, train_retrain: bool = True) -> float:
    """A unit's work in forward passes of one image, from image counts alone (no timing): a training
    image or an input gradient counts 3 (forward and backward). `compute` shares its (arch, seed)
    chunks among processes heaviest first by this; it ignores how the architectures differ per image.
    """
    s = split_sizes(profile, unit.scenario)
    cfg = profile.train_config(unit.arch)
    trained = cfg.epochs * s["train"] if train_original else 0
    if unit.method == "retrain":
        trained += cfg.epochs * s["retain"] if train_retrain else 0
    elif unit.method != "original":
        trained += method_images(unit.method, unit.hyperparameters, s)
    _, forwards, gradients = measure_images(profile.eval, s)
    return 3 * trained + forwards + 3 * gradients


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _steps(device):
    """(warm-up, timed) steps: enough on a GPU to pass cudnn's autotuning, a second or so on a CPU."""
    return (3, 10) if device.type == "cuda" else (2, 4)


# On a CPU, images/s still grow with the batch up to about 128 (ResNet-18/8 forwards: 1,760 images/s
# at 16, 2,330 at 128, one thread): time the run's own batch, capped so that timing stays short.
CPU_BATCH = 128


def _rate(what, arch, batch, device, classes, measure) -> float:
    """A rate timed once per process for each (what, arch, batch, device, classes) and, on a CPU, each
    torch thread count: `compute --dry-run` times one thread for its parallel figure, all for one process."""
    if device.type != "cuda":
        batch = min(batch, CPU_BATCH)
    threads = torch.get_num_threads() if device.type != "cuda" else None
    key = (what, arch, int(batch), str(device), classes, threads)
    if key not in _RATES:
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):   # leave the run's random streams untouched
            _RATES[key] = measure(int(batch))
    return _RATES[key]


def _images_per_s(run, warm: int, timed: int, batch: int, device) -> float:
    """Images/s of `run(n)` (n steps of `batch` images): `warm` steps untimed, then `timed` steps timed."""
    run(warm)
    _sync(device)
    start = time.perf_counter()
    run(timed)
    _sync(device)
    return timed * batch / (time.perf_counter() - start)


def _random_batches(batch, n_batches, device, classes):
    x = torch.randint(0, 256, (batch * n_batches, 3, 32, 32), dtype=torch.uint8, device=device)
    return x, torch.randint(0, classes, (len(x),), device=device)


def training_rate(arch: str, batch: int, device, classes: int = 10) -> float:
    """Images/s of `train.fit` (SGD, cross-entropy, augmentation) for `arch` at `batch` on `device`."""
    device = torch.device(device)

    def measure(batch):
        warm, timed = _steps(device)
        model = T.prepare(models.create_model(arch, classes), device)
        opt = T.make_optimizer(model.parameters(), "sgd", 0.01)
        x, y = _random_batches(batch, max(warm, timed), device, classes)

        def run(n):
            T.fit(model, 1, lambda e: D.batches(x[:n * batch], y[:n * batch], batch, True, True), T.cross_entropy(),
                opt, desc=f"throughput {arch}")
        return _images_per_s(run, warm, timed, batch, device)
    return _rate("train", arch, batch, device, classes, measure)


def forward_rate(arch: str, batch: int, device, classes: int = 10) -> float:
    """Images/s of `train.predict` (eval mode, no gradients) for `arch` at `batch` on `device`."""
    device = torch.device(device)

    def measure(batch):
        warm, timed = _steps(device)
        model = T.prepare(models.create_model(arch, classes), device)
        x, _ = _random_batches(batch, max(warm, timed), device, classes)
        return _images_per_s(lambda n: T.predict(model, x[:n * batch], batch), warm, timed, batch, device)
    return _rate("forward", arch, batch, device, classes, measure)


def attack_rate(arch: str, batch: int, device, classes: int = 10) -> float:
    """Images/s of one FGSM step (`attacks.fgsm`: forward, input gradient) for `arch` at `batch`."""
    device = torch.device(device)

    def measure(batch):
        warm, timed = _steps(device)
        model = T.prepare(models.create_model(arch, classes), device)
        x, y = _random_batches(batch, 1, device, classes)
        x = D.to_float(x)

        def run(n):
            for _ in range(n):
                attacks.fgsm(model, x, y, 8 / 255)
        return _images_per_s(run, warm, timed, batch, device)
    return _rate("attack", arch, batch, device, classes, measure)


def svm_seconds(n_per_side: int) -> float:
    """Seconds of the MIA's SVM (fit on n members + n non-members, predict D_f), scaled from a timed fit.

    Timed once per process at 400 points per side on confidences shaped like a trained
    model's; scaled by (n / 400)^2, about how libsvm's fit grows with the points (docs/computing.md).
    A first fit on a few points imports scikit-learn outside the timing, so the import, far longer
    than the fit, is not scaled as if it were fitting time.
    """
    n0 = 400
    if ("svm",) not in _RATES:
        rng = np.random.default_rng(0)
        features = np.concatenate([rng.beta(20, 1, n0), rng.beta(4, 2, n0)])[:, None]
        labels = np.concatenate([np.ones(n0), np.zeros(n0)])
        metrics.svm_non_member_rate(features[::40], labels[::40], features[:2])
        start = time.perf_counter()
        metrics.svm_non_member_rate(features, labels, features[:n0 // 4])
        _RATES[("svm",)] = time.perf_counter() - start
    return _RATES[("svm",)] * max(n_per_side / n0, 1e-3) ** 2


class Estimator:
    """Seconds per stage of a unit of work, from measured rates, corrected by what the run has seen.

    Stage names: "original" (training the original model), "retrain" (training Retrain or
    a replicate), a method's name (its unlearning run) and "measure" (`pipeline.measure_model`).
    """

    def __init__(self, profile, device, margin: float = 1.15):
        self.profile, self.device, self.margin = profile, torch.device(device), margin
        self.seen: dict = {}   # (arch, kind) -> [actual seconds, estimated seconds]

    # -------------------------------------------------------------- uncorrected, from rates
    def _train(self, arch, images, batch, set_size, classes) -> float:
        if images <= 0:
            return 0.0
        return images / training_rate(arch, max(1, min(batch, set_size)), self.device, classes)

    def raw(self, unit, train_original: bool = False, train_retrain: bool = True) -> dict:
        """{stage: seconds} of what `unit` still needs, from the measured rates alone."""
        p, arch = self.profile, unit.arch
        s = split_sizes(p, unit.scenario)
        cfg, classes = p.train_config(arch), s["classes"]
        stages = {}
        if train_original:
            stages["original"] = self._train(arch, cfg.epochs * s["train"], cfg.batch_size, s["train"], classes)
        if unit.method == "retrain":
            stages["retrain"] = (self._train(arch, cfg.epochs * s["retain"], cfg.batch_size, s["retain"], classes)
                                 if train_retrain else 0.0)
        elif unit.method != "original":
            hp = unit.hyperparameters
            stages[unit.method] = self._train(arch, method_images(unit.method, hp, s),
                                              hp.get("batch_size", cfg.batch_size), s["retain"], classes)
        stages["measure"] = self.measure_seconds(arch, s)
        return stages

    def measure_seconds(self, arch: str, s: dict) -> float:
        """`pipeline.measure_model`: accuracies, MIA, per-class sigma, FGSM/PGD sweeps, the SVM."""
        ev = self.profile.eval
        before_svm, forwards, gradients = measure_images(ev, s)
        batch = max(1, min(ev.batch_size, s["test"]))
        fwd = forward_rate(arch, batch, self.device, s["classes"])
        first = before_svm / fwd
        rest = (forwards - before_svm) / fwd + gradients / attack_rate(arch, batch, self.device, s["classes"])
        svm = ev.mia_member_subsets * svm_seconds(min(s["test_remaining"], s["retain"]))
        if self.device.type == "cuda":   # the SVM runs on a CPU thread (while the next model trains: this
            return first + max(rest, svm)  # counts it as if it overlapped only the rest of the measurement)
        return first + rest + svm

    # -------------------------------------------------------------- corrected by the run so far
    @staticmethod
    def kind(stage: str) -> str:
        return "supervised" if stage in ("original", "retrain") else stage

    def ratio(self, arch: str, stage: str) -> float:
        """Actual over estimated time of this stage kind so far; unseen kinds take the worst ratio
        seen on this architecture (or any), and never less than 1."""
        got = self.seen.get((arch, self.kind(stage)))
        if got and got[1] > 0:
            return got[0] / got[1]
        same_arch = [a / e for (ar, _), (a, e) in self.seen.items() if ar == arch and e > 0]
        anywhere = [a / e for (a, e) in self.seen.values() if e > 0]
        return max([1.0] + (same_arch or anywhere))

    def stages(self, unit, train_original: bool = False, train_retrain: bool = True) -> dict:
        """{stage: seconds}, corrected by what this run has measured (without the safety margin)."""
        return {k: v * self.ratio(unit.arch, k) for k, v in self.raw(unit, train_original, train_retrain).items()}

    def observe(self, arch: str, stage: str, estimated: float, actual: float) -> None:
        """Record that a stage estimated (uncorrected) at `estimated` seconds took `actual`."""
        got = self.seen.setdefault((arch, self.kind(stage)), [0.0, 0.0])
        got[0] += actual
        got[1] += estimated


__all__ = ["Estimator", "split_sizes", "method_images", "measure_images", "work_images", "training_rate",
           "forward_rate", "attack_rate", "svm_seconds"]
