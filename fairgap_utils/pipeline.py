"""The compute stage: original -> Retrain and every method -> measurements -> small JSON files.

    compute(get_profile("cpu"))                        # everything the book needs, resumable
    compute(get_profile("paper"), budget_minutes=8)    # as much as fits in 8 minutes, then stop cleanly
    plan(get_profile("paper"))                         # every result file the profile needs, present or not
    estimate(get_profile("paper"))                     # seconds per stage of each missing one, on this device

A profile needs one result file per *unit*: an (architecture, seed, scenario) chunk times
the models of `runs_for` (the original, Retrain, every method with its CF-k/EU-k sweep and
variants, the Retrain replicates of the noise floor). Each unit's measurements land in
their own JSON file as soon as they exist; a rerun skips every file whose configuration
hash matches, so an interrupted run resumes where it stopped. The original and Retrain
are checkpointed (they are the costly ones).

With a budget, `compute` estimates each unit's stages from throughput measured on this
device (`estimate.Estimator`), corrected by what the run has measured so far, and never
starts a unit it cannot finish in time; it returns what exists and what is left.
Needs only torch, torchvision, numpy, pillow, scikit-learn and tqdm: it runs on a bare GPU host.
"""
from __future__ import annotations

import contextlib
import dataclasses
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import torch

from . import artifacts as A
from . import data as D
from . import metrics as M
from .attacks import accuracy_under_attack
from .config import Profile, config_hash
from .data import CLASS_NAMES, resolve_class
from .errors import FairgapError, check_choice, check_range
from .fairness import class_sigmas
from .models import create_model
from .train import prepare, seed_everything, train_supervised
from .tune import with_tuned_rates
from .unlearn import METHODS, Context, hyperparameters, run_method

RESULTS_VERSION = 2  # bump when the meaning of a stored number changes
_clock = time.monotonic  # the budget's clock (a test replaces it)
GPU_PROFILES = ("paper",)  # computed on a GPU; on a CPU only with allow_cpu (hours)


# --------------------------------------------------------------------------- what a profile needs

def variant_label(method: str, variant: dict) -> str:
    """The label of an extra run of `method`: `cf_k-k3`, `keep_gap-spread`, `ft-lr0.05`, `bs-no_augment`.

    One part per hyperparameter in the variant's order: a string value stands for itself,
    a number is written after its name, a bool is the name (True) or `no_` + name (False).
    """
    def part(key, value):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return key if value else f"no_{key}"
        return f"{key}{value:g}" if isinstance(value, float) else f"{key}{value}"
    label = "-".join([method] + [part(k, v) for k, v in variant.items()])
    if not label.replace("-", "").replace("_", "").replace(".", "").replace("+", "").isalnum():
        raise FairgapError(f"variant {variant!r} of {method} gives the label {label!r}, which is not a safe "
                           "file name; use letters, digits, '.', '_', '+' and '-' in string values")
    return label


def runs_for(profile: Profile, scenario: str, seed: int | None = None) -> list[tuple[str, str, dict]]:
    """(label, method, overrides) of every model measured in a scenario, in the order they are computed.

    The original first; per method, its run with the profile's overrides and, in the
    class-wise scenario, the CF-k/EU-k k sweep and the profile's `variants` (labelled by
    `variant_label`; a run whose hyperparameters repeat an earlier one is not repeated).
    Last, for `seed == profile.noise_floor_seed`, the Retrain replicates `retrain-r1`, ...
    (Retrain with other training seeds on the same split), each its own model.
    """
    runs = [("original", "original", {})]
    for m in profile.methods:
        base = dict(profile.method_overrides.get(m, {}))
        extra = []
        if scenario == "class":
            if m in ("cf_k", "eu_k"):
                extra += [{"k": k} for k in profile.k_sweep]
            extra += [dict(v) for v in profile.variants.get(m, ())]
        seen = {config_hash(hyperparameters(m, base)): m}
        runs.append((m, m, base))
        for variant in extra:
            overrides = {**base, **variant}
            hp = config_hash(hyperparameters(m, overrides))
            if hp in seen:
                continue
            label = variant_label(m, variant)
            if label in seen.values():
                raise FairgapError(f"two variants of {m} are both labelled {label!r}; give them distinct values")
            seen[hp] = label
            runs.append((label, m, overrides))
    if "retrain" in profile.methods and seed is not None and seed == profile.noise_floor_seed:
        base = dict(profile.method_overrides.get("retrain", {}))
        runs += [(f"retrain-r{r}", "retrain", {**base, "replicate": r})
                 for r in range(1, profile.retrain_replicates + 1)]
    return runs


@dataclass(frozen=True, eq=False)
class Unit:
    """One result file a profile needs: one model (original, Retrain, a method run) and its measurement."""
    arch: str
    seed: int
    scenario: str
    label: str
    method: str                # "original", "retrain" or a method of the registry
    overrides: dict            # the profile's overrides of the method's defaults (k sweep, variant, replicate)
    hyperparameters: dict      # the method's defaults with the overrides ({} for the original)
    path: Path                 # the result file
    key: str                   # its configuration hash (a file with another key is stale)
    model_key: str             # the checkpoint key of the original / Retrain; the model's hash otherwise
    original_key: str          # the checkpoint key of the original model it starts from
    present: bool              # the result file exists with this key

    @property
    def chunk(self) -> tuple:
        """(arch, scenario, seed): the slice a GPU session computes at a time."""
        return self.arch, self.scenario, self.seed

    def describe(self) -> str:
        return f"{self.arch} seed {self.seed} {self.scenario} {self.label}"


def select(profile: Profile, archs=None, seeds=None, scenarios=None, methods=None) -> Profile:
    """The profile restricted to a subset (None: the profile's own), validated before any work."""
    def chosen(value, default):
        return tuple(default if value is None else value)
    return profile.replace(archs=chosen(archs, profile.archs), seeds=chosen(seeds, profile.seeds),
                           scenarios=chosen(scenarios, profile.scenarios), methods=chosen(methods, profile.methods))


def _keys(profile: Profile, arch: str, seed: int):
    data_cfg = dict(dataset=profile.dataset, n_train=profile.n_train_per_class, n_test=profile.n_test_per_class,
                    val_fraction=profile.val_fraction)
    original = config_hash("original", RESULTS_VERSION, data_cfg, arch, profile.train_config(arch), seed)
    return data_cfg, original


def _scenario_cfg(profile: Profile, scenario: str) -> dict:
    forget_class = resolve_class(profile.forget_class, CLASS_NAMES[profile.dataset]) if scenario == "class" else None
    return dict(scenario=scenario, forget_class=forget_class,
                forget_fraction=profile.forget_fraction if scenario == "random" else None)


def plan(profile: Profile, archs=None, seeds=None, scenarios=None, methods=None, results=None) -> list[Unit]:
    """Every result file the profile (or the subset) needs, in the order `compute` makes them.

    Order: architecture, seed, scenario, then `runs_for`. Reads only the result files.
    """
    profile = select(profile, archs, seeds, scenarios, methods)
    root = A.results_dir(results) / profile.name
    eval_key = config_hash(profile.eval)
    units = []
    for arch in profile.archs:
        for seed in profile.seeds:
            data_cfg, original_key = _keys(profile, arch, seed)
            for scenario in profile.scenarios:
                scenario_cfg = _scenario_cfg(profile, scenario)
                for label, method, overrides in runs_for(with_tuned_rates(profile, arch, scenario, results),
                                                         scenario, seed):
                    hp = {} if method == "original" else hyperparameters(method, overrides)
                    if method == "original":
                        model_key = original_key
                    elif method == "retrain":
                        replicate = [{"replicate": hp["replicate"]}] if hp["replicate"] else []
                        model_key = config_hash("retrain", RESULTS_VERSION, data_cfg, scenario_cfg, arch,
                                                profile.train_config(arch), seed, *replicate)
                    else:  # a registered method's code is part of its key (built-in ones: none)
                        code = [METHODS[method].fingerprint] if METHODS[method].fingerprint else []
                        model_key = config_hash(original_key, scenario_cfg, method, hp, seed, *code)
                    key = config_hash(model_key, eval_key, scenario_cfg, RESULTS_VERSION)
                    path = root / arch / f"seed{seed}" / scenario / f"{label}.json"
                    units.append(Unit(arch, seed, scenario, label, method, overrides, hp, path, key, model_key,
                                      original_key, A.load_json(path, key) is not None))
    return units


def chunks(units: list[Unit], left=None) -> dict:
    """{(arch, scenario, seed): (present, total)} in plan order; `left`: the units missing (default: not present)."""
    missing = {id(u) for u in (left if left is not None else [u for u in units if not u.present])}
    out = {}
    for u in units:
        present, total = out.get(u.chunk, (0, 0))
        out[u.chunk] = (present + (id(u) not in missing), total + 1)
    return out


def missing_chunks(units: list[Unit], left=None) -> str:
    """One line naming every chunk with missing result files: `resnet50 class seed 0 (17 of 17 missing), ...`."""
    return ", ".join(f"{a} {sc} seed {s} ({total - present} of {total} missing)"
                     for (a, sc, s), (present, total) in chunks(units, left).items() if present < total)


def has_checkpoint(key: str, cache=None) -> bool:
    """A checkpoint and its log exist under `key` (not verified: loading verifies)."""
    folder = A.cache_dir(cache) / "checkpoints"
    return (folder / f"{key}.pt").is_file() and (folder / f"{key}.json").is_file()


def estimate(profile: Profile, units: list[Unit] | None = None, device=None, cache=None,
             estimator=None, **subset) -> list[tuple[Unit, dict]]:
    """(unit, {stage: seconds}) for every missing unit, from throughput measured on this device.

    Stages: "original" (when its checkpoint is not cached, once per architecture and seed, by
    the first unit that starts from it: Retrain does not),
    "retrain" (when its checkpoint is not cached) or the method's name, and "measure".
    `subset` takes plan's archs, seeds, scenarios, methods and results.
    """
    from .estimate import Estimator
    units = plan(profile, **subset) if units is None else units
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    est = estimator or Estimator(profile, device)
    trained, out = set(), []
    for u in units:
        if u.present:
            continue
        train_original = (u.method != "retrain" and u.original_key not in trained
                          and not has_checkpoint(u.original_key, cache))
        if u.method != "retrain":
            trained.add(u.original_key)
        out.append((u, est.stages(u, train_original, not has_checkpoint(u.model_key, cache))))
    return out


def duration(seconds: float) -> str:
    """`42 s`, `7.5 min`, `31.2 h`."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def estimate_table(estimates: list[tuple[Unit, dict]]) -> str:
    """The estimates as text: one line per missing unit with its stages, a total per chunk and overall."""
    lines, grand = [], 0.0
    for chunk, rows in groupby(estimates, key=lambda r: r[0].chunk):
        rows = list(rows)
        total = sum(sum(st.values()) for _, st in rows)
        grand += total
        lines.append(f"{chunk[0]} {chunk[1]} seed {chunk[2]}: {len(rows)} missing, about {duration(total)}")
        for u, st in rows:
            parts = ", ".join(f"{STAGE_NAMES.get(k, k + ' run')} {v:.1f} s" for k, v in st.items())
            lines.append(f"  {u.label:16s} {sum(st.values()):8.1f} s   {parts}")
    lines.append(f"total: {len(estimates)} missing result files, about {duration(grand)} on this device")
    return "\n".join(lines)


# --------------------------------------------------------------------------- measurement

def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance() -> dict:
    import numpy
    import torchvision
    return {"hardware": hardware(), "python": sys.version.split()[0], "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__, "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def measure(model, split, profile: Profile, seed: int, pool=None) -> dict:
    """UA/RA/TA/MIA, per-layer per-class sigma and FGSM/PGD accuracy of one model.

    MIA is the mean over `profile.eval.mia_member_subsets` member draws (each draw's value in
    `mia_subsets`). Its SVMs need only the CPU (scikit-learn; ~5 s per draw at full CIFAR-10). With
    `pool` (a concurrent.futures executor) they are submitted there and `metrics["MIA"]` is a
    Future: `compute` resolves it while the GPU trains the next model. The numbers are the
    same either way.
    """
    ev = profile.eval
    start = time.perf_counter()
    logits = M.predictions(model, split, ev.batch_size)
    accuracies = M.accuracies(model, split, ev.batch_size, logits)
    mia_inputs = M.mia_subset_inputs(model, split, ev.batch_size, ev.mia_member_subsets, logits)
    mia = pool.submit(_timed, M.mia_over_subsets, mia_inputs) if pool is not None else None
    if mia is None:
        mia, svm_s = _timed(M.mia_over_subsets, mia_inputs)
    fx, fy = (split.x_test, split.y_test) if ev.fairness_split == "test" else (split.x_retain, split.y_retain)
    fairness = class_sigmas(model, fx, fy, split.num_classes, ev.batch_size)
    ax, ay = split.test_remaining()
    if ev.attack_images is not None:  # a fixed random subset: the test arrays are sorted by class
        pick = torch.randperm(len(ax), generator=torch.Generator().manual_seed(0))[:ev.attack_images].to(ax.device)
        ax, ay = ax[pick], ay[pick]
    attacks = {"fgsm": accuracy_under_attack(model, ax, ay, "fgsm", [0.0] + [e / 255 for e in ev.fgsm_eps],
                                             ev.batch_size, seed)}
    if ev.pgd_eps:   # a profile may run no PGD (cpu: at 8/255 it left every model at 0%)
        attacks["pgd"] = {0.0: attacks["fgsm"][0.0], **accuracy_under_attack(
            model, ax, ay, "pgd", [e / 255 for e in ev.pgd_eps], ev.batch_size, seed, steps=ev.pgd_steps,
            random_start=ev.pgd_random_start)}
    result = {"metrics": {**accuracies, "MIA": mia}, "fairness": fairness, "attacks": attacks,
              "attack_images": len(ax), "eval_time_s": time.perf_counter() - start}
    return result if pool is not None else resolve(result, svm_s)


def _timed(fn, *args):
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def resolve(measured: dict, svm_s: float | None = None) -> dict:
    """A `measure` result with its MIA (a Future, or the (mean, per-draw) pair) replaced by the mean;
    `mia_subsets` (each member draw's value) and `mia_svm_time_s` added."""
    mia = measured["metrics"].get("MIA")
    if hasattr(mia, "result"):
        mia, svm_s = mia.result()
    elif svm_s is None:
        return measured
    mean, draws = mia
    return {**measured, "metrics": {**measured["metrics"], "MIA": mean}, "mia_subsets": draws,
            "mia_svm_time_s": svm_s}


# --------------------------------------------------------------------------- compute

class Computed(list):
    """What `compute` returns: the paths of every requested result file that exists, in plan order.

    A list as before, plus: `units` (the plan), `left` (the units still missing), `written` (the units written
    by this call), `stopped_for_budget` (True when the budget stopped it), `elapsed_s`, and
    `summary` (one line: what was done and what is left).
    """

    def __init__(self, units, paths, left, written, stopped_for_budget, elapsed_s, budget_s=None):
        super().__init__(paths)
        self.units, self.left, self.written = units, left, written
        self.stopped_for_budget, self.elapsed_s, self.budget_s = stopped_for_budget, elapsed_s, budget_s

    @property
    def complete(self) -> bool:
        return not self.left

    @property
    def summary(self) -> str:
        done = f"{len(self.written)} result files written in {duration(self.elapsed_s)}"
        if self.complete:
            return f"complete: all {len(self)} result files present ({done})"
        why = (f"stopped for the budget of {self.budget_s / 60:.1f} min: " if self.stopped_for_budget else "")
        return (f"{why}{done}; {len(self)} present, {len(self.left)} left: {missing_chunks(self.units, self.left)}; "
                f"rerun to resume")


def _print(message: str) -> None:
    print(message, flush=True)


def compute(profile: Profile, archs=None, seeds=None, scenarios=None, methods=None, results=None,
            cache=None, data_path=None, device=None, budget_minutes: float | None = None,
            allow_cpu: bool = False, log=None, estimator=None, overlap_svm: bool | None = None) -> Computed:
    """Compute (or reuse) every result of `profile` or of the subset; returns the result files present.

    budget_minutes: never start a unit (a model and its measurement, with the original's
      training when it is not cached) that the estimates say cannot finish within this
      many minutes of the call; stop cleanly instead (`Computed.stopped_for_budget`).
    allow_cpu: compute a GPU profile (`GPU_PROFILES`: paper) without CUDA; otherwise that
      is refused with the list of missing chunks, before any work.
    log: called with one line per stage time (default: print).
    estimator: an `estimate.Estimator` to use (and to keep its corrections across calls).
    overlap_svm: run each model's MIA SVM on a CPU thread while the next model trains, writing
      its result file when the SVM is done (default: on CUDA; the numbers are the same).
    """
    start = _clock()
    profile = select(profile, archs, seeds, scenarios, methods)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if budget_minutes is not None:
        check_range("budget_minutes", budget_minutes, 0, 10 ** 6)
    units = plan(profile, results=results)
    missing = [u for u in units if not u.present]
    if missing and device.type != "cuda" and profile.name in GPU_PROFILES and not allow_cpu:
        raise FairgapError(
            f"the {profile.name} profile is computed on a GPU (hours on a CPU) and this machine has no CUDA; "
            f"missing: {missing_chunks(missing)}. Compute them on a GPU (README, 'Paper-scale results on a GPU'), "
            "or pass --allow-cpu (allow_cpu=True) to compute them here anyway")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if budget_minutes is not None and estimator is None:
        from .estimate import Estimator
        estimator = Estimator(profile, device)
    say = log or _print
    budget_s = None if budget_minutes is None else 60.0 * budget_minutes
    written, stopped = [], False
    overlap = device.type == "cuda" if overlap_svm is None else overlap_svm
    with ThreadPoolExecutor(1, thread_name_prefix="mia-svm") if overlap else contextlib.nullcontext() as pool:
        for (arch, seed), group in groupby(missing, key=lambda u: (u.arch, u.seed)):
            runner = _ArchSeedRunner(profile, arch, seed, cache, data_path, device, say, pool)
            try:
                for unit in group:
                    if not runner.run(unit, estimator if budget_s is not None else None,
                                      None if budget_s is None else start + budget_s):
                        stopped = True
                        break
                    written.append(unit)
            finally:
                runner.flush(estimator)             # the last model's file, once its SVM is done
            if stopped:
                break
    done = {id(u) for u in written}
    return Computed(units, [u.path for u in units if u.present or id(u) in done],
                    [u for u in missing if id(u) not in done], written, stopped, _clock() - start, budget_s)


class _ArchSeedRunner:
    """Computes the units of one (architecture, seed): loads splits and the original once.

    With a `pool`, a unit's result file is written by `flush`, once its MIA SVM (submitted
    to the pool by `measure`) is done: at the next unit's measurement, or at the end.
    """

    def __init__(self, profile, arch, seed, cache, data_path, device, say, pool=None):
        self.profile, self.arch, self.seed = profile, arch, seed
        self.cache, self.data_path, self.device, self.say, self.pool = cache, data_path, device, say, pool
        self.splits, self.original, self.original_stats = {}, None, None
        self.pending = None   # (unit, record, stage times, raw estimates) waiting for its SVM

    def split(self, scenario):
        if scenario not in self.splits:
            self.splits[scenario] = D.make_split(self.profile, self.seed, scenario, self.device, self.data_path)
        return self.splits[scenario]

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, unit: Unit, estimator, deadline) -> bool:
        """Compute one unit and write its result file; False (and nothing done) if it cannot fit the deadline."""
        split = self.split(unit.scenario)       # loading data starts no model: done before the check
        needs_original = unit.method != "retrain"   # Retrain trains from scratch on D_r
        train_original = needs_original and self.original is None and not has_checkpoint(unit.original_key, self.cache)
        train_retrain = unit.method == "retrain" and not has_checkpoint(unit.model_key, self.cache)
        raw = estimator.raw(unit, train_original, train_retrain) if estimator else {}
        if estimator is not None:
            need = sum(v * estimator.ratio(unit.arch, k) for k, v in raw.items()) * estimator.margin
            if _clock() + need > deadline:
                return False
        times = {}
        if needs_original and self.original is None:
            t = time.perf_counter()
            self.original, self.original_stats = _original_model(
                self.profile, unit.arch, unit.seed, unit.original_key, split, self.cache, self.device)
            self._sync()
            if train_original:
                times["original"] = time.perf_counter() - t
        model, stats = self.original, self.original_stats
        if unit.method != "original":
            # Retrain never reads the original: an untrained stand-in spares loading or training it
            start_from = self.original if needs_original else prepare(create_model(unit.arch, split.num_classes),
                                                                      self.device)
            t = time.perf_counter()
            ctx = Context(original=start_from, train_config=self.profile.train_config(unit.arch), arch=unit.arch,
                          seed=unit.seed, compile=self.profile.compile)
            model, stats = _unlearned_model(unit.method, unit.overrides, start_from, split, ctx, unit.model_key,
                                            self.cache, self.device)
            self._sync()
            if unit.method != "retrain" or train_retrain:
                times["retrain" if unit.method == "retrain" else unit.method] = time.perf_counter() - t
        self.flush(estimator)                      # the previous model's SVM ran while this one trained
        measured = measure(model, split, self.profile, unit.seed, self.pool)
        times["measure"] = measured["eval_time_s"]
        record = {
            "key": unit.key, "results_version": RESULTS_VERSION, "profile": self.profile.name, "arch": unit.arch,
            "seed": unit.seed, "scenario": unit.scenario, "forget_class": split.forget_class,
            "forget_class_name": None if split.forget_class is None else split.classes[split.forget_class],
            "classes": list(split.classes), "label": unit.label, "method": unit.method,
            "title": "Original" if unit.method == "original" else METHODS[unit.method].title,
            "sizes": {"forget": len(split.x_forget), "retain": len(split.x_retain), "val": len(split.x_val),
                      "test": len(split.x_test)},
            "data_source": split.source, "stats": stats, **measured,
            "eval": dataclasses.asdict(self.profile.eval), "provenance": provenance(),
        }
        self.pending = (unit, record, times, raw)
        if self.pool is None:
            self.flush(estimator)
        return True

    def flush(self, estimator) -> None:
        """Write the pending unit's result file (waiting for its SVM) and report its stage times."""
        if self.pending is None:
            return
        unit, record, times, raw = self.pending
        self.pending = None
        wait = time.perf_counter()
        record = resolve(record)
        wait = time.perf_counter() - wait                # the part of the SVM no training hid
        times["measure"] += wait
        # eval_time_s: what measuring cost the run (the SVM's own time is mia_svm_time_s)
        A.save_json(unit.path, {**record, "eval_time_s": record["eval_time_s"] + wait})
        parts = []
        for stage, actual in times.items():
            name = STAGE_NAMES.get(stage, f"{stage} run")
            parts.append(f"{name} {actual:.1f} s" + (f" (est. {raw[stage]:.1f} s)" if stage in raw else ""))
            if estimator is not None and stage in raw:
                estimator.observe(unit.arch, stage, raw[stage], actual)
        self.say(f"[{self.profile.name} {unit.describe()}] " + ", ".join(parts))


STAGE_NAMES = {"original": "original training", "retrain": "Retrain training", "measure": "measurement"}


def _original_model(profile, arch, seed, key, split, cache, device):
    """The original model, trained once per (arch, seed) on the whole training set and checkpointed."""
    seed_everything(seed)
    model = prepare(create_model(arch, split.num_classes), device)
    log = A.load_trained(model, key, cache)
    if log is None:
        with A.checkpoint_lock(key, cache):  # another job may be training it: wait, then load
            log = A.load_trained(model, key, cache)
            if log is None:
                seed_everything(seed)
                model = prepare(create_model(arch, split.num_classes), device)
                log = train_supervised(model, split.x_train, split.y_train, profile.train_config(arch), seed,
                                       desc=f"original {arch} seed {seed}", compile=profile.compile)
                A.save_trained(model, key, log, cache)
    model = prepare(model, device).eval()
    for p in model.parameters():
        p.requires_grad_(True)
    stats = {"method": "original", "hyperparameters": {}, "time_s": log["train_time_s"],
             "trainable_params": sum(p.numel() for p in model.parameters()),
             "total_params": sum(p.numel() for p in model.parameters()), "peak_memory_mb": None,
             "logs": {"loss_per_epoch": log["loss_per_epoch"]}}
    return model, stats


def _unlearned_model(method, overrides, original, split, ctx, retrain_key, cache, device):
    """Run a method on the original; Retrain (and each replicate) is checkpointed under its own key."""
    seed_everything(ctx.seed)
    if method != "retrain":
        return run_method(method, original, split, ctx, overrides)
    model = prepare(create_model(ctx.arch, split.num_classes), device)
    with A.checkpoint_lock(retrain_key, cache):  # another job may be training it: wait, then load
        log = A.load_trained(model, retrain_key, cache)
        if log is not None:
            return prepare(model, device).eval(), log["stats"]
        model, stats = run_method(method, original, split, ctx, overrides)
        A.save_trained(model, retrain_key, {"stats": stats}, cache)
    return model, stats


def check_names(archs=(), methods=(), scenarios=()):
    from .models import MODELS
    for a in archs:
        check_choice("architecture", a, MODELS)
    for m in methods:
        check_choice("unlearning method", m, METHODS)
    for s in scenarios:
        check_choice("forget scenario", s, ("class", "random"))


__all__ = ["compute", "plan", "estimate", "estimate_table", "measure", "runs_for", "variant_label", "Unit", "Computed",
           "chunks", "missing_chunks", "has_checkpoint", "select", "GPU_PROFILES", "FairgapError"]
