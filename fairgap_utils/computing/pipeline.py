"""What a profile needs and how one of its result files is computed: original -> Retrain and every method ->
measurements -> one small JSON file each.

    plan(get_profile("paper"))                         # every result file the profile needs, present or not
    estimate_units(get_profile("paper"))               # seconds per stage of each missing one, on this device

A profile needs one result file per *unit*: an (architecture, seed, scenario) chunk times
the models of `runs_for` (the original, Retrain, every method with its CF-k/EU-k sweep and
variants, the Retrain replicates of the noise floor), each under its key (`keys`). Each unit's
measurements land in their own JSON file as soon as they exist; a rerun skips every file whose
configuration hash matches, so an interrupted run resumes where it stopped. The original and
Retrain are checkpointed (they are the costly ones). Every result file is claimed before it is
computed (`artifacts.claim`), so two runs on one results folder share the work.

`stage.compute` runs the whole: here (`_Computer`, chunk by chunk) or in one process per core
(`workers`). With a budget, each unit's stages are estimated from throughput measured on this
device (`estimate.Estimator`), corrected by what the run has measured so far, and a unit that
cannot finish in time is not started.
Needs only torch, torchvision, numpy, pillow, scikit-learn and tqdm: it runs on a bare GPU host.
"""
from __future__ import annotations

import dataclasses
import heapq
import platform
import sys
import time
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy
import torch
import torchvision

from .. import data as D
from .. import manifest
from .. import metrics as M
from ..attacks import accuracy_under_attack
from ..config import Profile, config_hash
from ..errors import FairgapError
from ..fairness import class_sigmas
from ..manifest import chunks, missing_chunks  # noqa: F401  (pipeline.chunks, the tests')
from ..models import create_model
from ..registries import check_profile, method_entries, method_overrides, methods_of
from ..train import prepare, seed_everything, train_supervised
from ..unlearn import METHODS, Context, hyperparameters, run_method
from . import artifacts as A
from .estimate import Estimator, work_images
from .keys import RESULTS_VERSION, data_config, original_key, scenario_config, variant_label  # noqa: F401
from .tuned import KEEP_GAP, keep_gap_runs, with_tuned_rates

_clock = time.monotonic  # the budget's clock (a test replaces it)
GPU_PROFILES = ("paper",)  # computed on a GPU; on a CPU only with allow_cpu (hours)


# --------------------------------------------------------------------------- what a profile needs


def runs_for(profile: Profile, scenario: str, seed: int | None = None) -> list[tuple[str, str, dict]]:
    """(label, method, overrides) of every model measured in a scenario, in the order they are computed.

    The original first; per method, its run with the profile's overrides and, in the
    class-wise scenario, the CF-k/EU-k k sweep and the profile's `variants` (labelled by
    `variant_label`; a run whose hyperparameters repeat an earlier one is not repeated).
    KeepGap's runs take the weight per target of `profile.keep_gap_weight` (its calibration),
    keeping their labels, and with `profile.keep_gap_dose` the dose-response grid follows
    them (`tune.keep_gap_runs`). Last, for `seed == profile.noise_floor_seed`, the Retrain
    replicates `retrain-r1`, ... (Retrain with other training seeds on the same split), each
    its own model.
    """
    runs = [("original", "original", {})]
    for m in methods_of(profile):
        base = method_overrides(profile, m)
        extra = []                                   # (label, variant); label None: variant_label's
        if scenario == "class":
            if m in ("cf_k", "eu_k"):
                extra += [(None, {"k": k}) for k in profile.k_sweep]
            extra += [(None, dict(v)) for v in profile.variants.get(m, ())]
        if m == KEEP_GAP:
            base, extra = keep_gap_runs(profile, scenario, seed, base, extra)
        seen = {config_hash(hyperparameters(m, base)): m}
        runs.append((m, m, base))
        for label, variant in extra:
            overrides = {**base, **variant}
            hp = config_hash(hyperparameters(m, overrides))
            if hp in seen:
                continue
            label = label or variant_label(m, variant)
            if label in seen.values():
                raise FairgapError(f"two variants of {m} are both labelled {label!r}; give them distinct values")
            seen[hp] = label
            runs.append((label, m, overrides))
    if "retrain" in methods_of(profile) and seed is not None and seed == profile.noise_floor_seed:
        base = method_overrides(profile, "retrain")
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
    return check_profile(profile.replace(archs=chosen(archs, profile.archs), seeds=chosen(seeds, profile.seeds),
                                         scenarios=chosen(scenarios, profile.scenarios),
                                         methods=chosen(methods, methods_of(profile))))


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
            data_cfg, original = data_config(profile), original_key(profile, arch, seed)
            for scenario in profile.scenarios:
                scenario_cfg = scenario_config(profile, scenario)
                for label, method, overrides in runs_for(with_tuned_rates(profile, arch, scenario, results),
                                                         scenario, seed):
                    hp = {} if method == "original" else hyperparameters(method, overrides)
                    if method == "original":
                        model_key = original
                    elif method == "retrain":
                        replicate = [{"replicate": hp["replicate"]}] if hp["replicate"] else []
                        model_key = config_hash("retrain", RESULTS_VERSION, data_cfg, scenario_cfg, arch,
                                                profile.train_config(arch), seed, *replicate)
                    else:  # a registered method's code is part of its key (built-in ones: none)
                        code = [METHODS[method].fingerprint] if METHODS[method].fingerprint else []
                        model_key = config_hash(original, scenario_cfg, method, hp, seed, *code)
                    key = config_hash(model_key, eval_key, scenario_cfg, RESULTS_VERSION)
                    path = root / arch / f"seed{seed}" / scenario / f"{label}.json"
                    units.append(Unit(arch, seed, scenario, label, method, overrides, hp, path, key, model_key,
                                      original, A.load_json(path, key) is not None))
    return units


def manifest_text(profile: Profile, results=None) -> str:
    """The text of results/<profile>/plan.json (`fairgap_utils.manifest`): every unit of the plan with its key
    and its path under results/<profile>, and of each of the profile's methods its title, short name, summary,
    hyperparameters and whether it was registered outside the package (`manifest.method_facts`)."""
    units = plan(profile, results=results)
    root = A.results_dir(results) / profile.name
    methods = method_entries(profile, methods_of(profile))
    return manifest.dumps(profile.name, [dict(arch=u.arch, seed=u.seed, scenario=u.scenario, label=u.label,
                                              method=u.method, key=u.key, path=u.path.relative_to(root).as_posix())
                                         for u in units], methods)


def write_manifest(profile: Profile, results=None) -> Path:
    """Write results/<profile>/plan.json for the book to read without the planner (only if its text changed,
    so a rebuild leaves git clean); returns its path."""
    text, where = manifest_text(profile, results), manifest.path(profile.name, results)
    if not where.is_file() or where.read_text() != text:
        A.atomic_write(where, text.encode())
    return where


def has_checkpoint(key: str, cache=None) -> bool:
    """A checkpoint and its log exist under `key` (not verified: loading verifies)."""
    folder = A.cache_dir(cache) / "checkpoints"
    return (folder / f"{key}.pt").is_file() and (folder / f"{key}.json").is_file()


def estimate_units(profile: Profile, units: list[Unit] | None = None, device=None, cache=None,
             estimator=None, **subset) -> list[tuple[Unit, dict]]:
    """(unit, {stage: seconds}) for every missing unit, from throughput measured on this device.

    Stages: "original" (when its checkpoint is not cached, once per architecture and seed, by
    the first unit that starts from it: Retrain does not),
    "retrain" (when its checkpoint is not cached) or the method's name, and "measure".
    `subset` takes plan's archs, seeds, scenarios, methods and results.
    """
    units = plan(profile, **subset) if units is None else units
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    est = estimator or Estimator(profile, device)
    return [(u, est.stages(u, train_original, train_retrain))
            for u, train_original, train_retrain in _with_training(units, cache)]


def duration(seconds: float) -> str:
    """`42 s`, `7.5 min`, `31.2 h`."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def estimate_table(estimates: list[tuple[Unit, dict]], where: str = "on this device") -> str:
    """The estimates as text: one line per missing unit with its stages, a total per chunk and overall
    (`where`: how they were timed, said on the last line)."""
    lines, grand = [], 0.0
    for chunk, rows in groupby(estimates, key=lambda r: r[0].chunk):
        rows = list(rows)
        total = sum(sum(st.values()) for _, st in rows)
        grand += total
        lines.append(f"{chunk[0]} {chunk[1]} seed {chunk[2]}: {len(rows)} missing, about {duration(total)}")
        for u, st in rows:
            parts = ", ".join(f"{STAGE_NAMES.get(k, k + ' run')} {v:.1f} s" for k, v in st.items())
            lines.append(f"  {u.label:16s} {sum(st.values()):8.1f} s   {parts}")
    lines.append(f"total: {len(estimates)} missing result files, about {duration(grand)} {where}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- measurement

def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance() -> dict:
    return {"hardware": hardware(), "python": sys.version.split()[0], "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": numpy.__version__, "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def measure_model(model, split, profile: Profile, seed: int, pool=None) -> dict:
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
    """A `measure_model` result with its MIA (a Future, or the (mean, per-draw) pair) replaced by the mean;
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


# --------------------------------------------------------------------------- processes


def _chunk_of(unit: Unit) -> tuple:
    """(arch, seed): what one process computes at a time (the data split and the original are loaded once)."""
    return unit.arch, unit.seed


def _with_training(units: list[Unit], cache) -> list[tuple[Unit, bool, bool]]:
    """(unit, trains the original, trains its Retrain) for each missing unit: the original is trained by the
    first unit of its (arch, seed) that starts from it (Retrain does not), unless its checkpoint is cached."""
    trained, out = set(), []
    for u in units:
        if u.present:
            continue
        train_original = (u.method != "retrain" and u.original_key not in trained
                          and not has_checkpoint(u.original_key, cache))
        if u.method != "retrain":
            trained.add(u.original_key)
        out.append((u, train_original, not has_checkpoint(u.model_key, cache)))
    return out


def _weights(profile: Profile, flagged) -> dict:
    """{result path: work in images} (`estimate.work_images`): how `compute` orders the chunks, heaviest first."""
    return {str(u.path): work_images(profile, u, train_original, train_retrain)
            for u, train_original, train_retrain in flagged}


def _helper_order(units: list[Unit]) -> list[Unit]:
    """The order in which a process helps with a chunk another one owns: Retrains first (they need no
    original), then from the end, away from the owner that goes from the start."""
    return [u for _, u in sorted(enumerate(units), key=lambda p: (p[1].method != "retrain", -p[0]))]


def makespan(estimates: list[tuple[Unit, dict]], processes: int, weights: dict | None = None) -> float:
    """Seconds until `processes` processes have computed the estimated units the way `compute` shares them.

    Whole (arch, seed) chunks, heaviest first by `weights` ({result path: work}; default: the
    estimates); a process with no chunk left helps with the unstarted units of the chunk with the most
    work left (`_helper_order`); a unit that starts from its chunk's original waits until that is
    trained. The processes' start-up (seconds each) is not counted.
    """
    chunks: dict = {}
    for u, st in estimates:
        chunks.setdefault(_chunk_of(u), []).append((u, sum(st.values()), st.get("original", 0.0)))

    def work(entry):
        return entry[1] if weights is None else weights[str(entry[0].path)]
    fresh = sorted(chunks, key=lambda k: -sum(work(e) for e in chunks[k]))
    taken, trained = set(), {}
    procs = [(0.0, i, None, False) for i in range(max(1, processes))]
    heapq.heapify(procs)
    end = 0.0

    orders: dict = {}

    def next_unit(key, helper):
        if (key, helper) not in orders:
            entries = chunks[key]
            rank = {id(u): i for i, u in enumerate(_helper_order([e[0] for e in entries]) if helper else
                                                   [e[0] for e in entries])}
            orders[key, helper] = sorted(entries, key=lambda e: rank[id(e[0])])
        return next((e for e in orders[key, helper] if id(e[0]) not in taken), None)
    while procs:
        t, i, key, helper = heapq.heappop(procs)
        entry = next_unit(key, helper) if key is not None else None
        if entry is None:
            if fresh:
                key, helper = fresh.pop(0), False
            else:
                open_ = {k: sum(work(e) for e in chunks[k] if id(e[0]) not in taken) for k in chunks}
                key = max(open_, key=open_.get, default=None)
                if key is None or open_[key] <= 0:
                    end = max(end, t)
                    continue
                helper = True
            entry = next_unit(key, helper)
        u, seconds, original = entry
        taken.add(id(u))
        begin = t if u.method == "retrain" else max(t, trained.get(key, t))
        if original:
            trained[key] = begin + original
        heapq.heappush(procs, (begin + seconds, i, key, helper))
    return end


# --------------------------------------------------------------------------- compute


def _fast_cuda() -> None:
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True


class _Computer:
    """Computes units chunk by chunk in one process, each under its claim (`artifacts.claim`).

    A unit whose file exists is passed over, as is one that another process (of this run or another)
    has claimed: `wait` waits for those at the end and computes any whose claim disappears without
    its file (its holder stopped or died). `tell(event, unit, line)` hears of each unit claimed
    ("claimed"), written ("written", with its progress line) or found written by another ("present");
    by default the line is said.
    """

    def __init__(self, profile, cache, data_path, device, say, pool=None, estimator=None, deadline=None,
                 tell=None, run=None):
        self.profile, self.cache, self.data_path, self.device = profile, cache, data_path, device
        self.say, self.pool, self.estimator, self.deadline, self.run = say, pool, estimator, deadline, run
        self.tell = tell or (lambda event, unit, line=None: say(line) if event == "written" else None)
        self.written, self.skipped, self.stopped = [], [], False

    def chunk(self, units: list[Unit], helper: bool = False) -> bool:
        """Compute what is missing of one (arch, seed)'s units, in plan order (a helper: `_helper_order`);
        False once the budget has stopped it."""
        units = _helper_order(units) if helper else units
        runner = _ArchSeedRunner(self.profile, units[0].arch, units[0].seed, self.cache, self.data_path,
                                 self.device, self._written, self.pool)
        try:
            for unit in units:
                held = self._claim(unit)
                if held is not None and not runner.run(unit, self.estimator if self.deadline is not None else None,
                                                       self.deadline, held):
                    self.stopped = True
                    return False
        finally:
            runner.flush(self.estimator)             # the last model's file, once its SVM is done
        return True

    def _written(self, unit: Unit, line: str) -> None:
        self.written.append(unit)
        self.tell("written", unit, line)

    def _claim(self, unit: Unit):
        """The unit's claim; None if its file exists, or if another process holds its claim (it is skipped)."""
        if A.load_json(unit.path, unit.key) is None:
            held = A.claim(A.claim_path(unit.path), run=self.run)
            if held is None:
                self.skipped.append(unit)
                return None
            if A.load_json(unit.path, unit.key) is None:     # not written between the look and the claim
                self.tell("claimed", unit)
                return held
            held.release()
        self.tell("present", unit)
        return None

    def wait(self, poll_s: float = 0.5) -> bool:
        """Wait for the units skipped as claimed by another process; compute those whose claim disappears
        without their file. False if the budget ends first (what is left stays for a rerun)."""
        told = False
        while self.skipped:
            pending, self.skipped = self.skipped, []
            for _, group in groupby(sorted(pending, key=_chunk_of), key=_chunk_of):
                if not self.chunk(list(group)):
                    return False
            if not self.skipped:
                break
            if not told:
                holders = {(o.get("pid"), o.get("host")) for o in map(A.holder, map(A.claim_path, (
                    u.path for u in self.skipped))) if o.get("run") != self.run or self.run is None}
                if holders:
                    self.say(f"waiting for {len(self.skipped)} result file{'s' if len(self.skipped) > 1 else ''} "
                             "another run is computing ("
                             + ", ".join(f"process {pid} on {host}" for pid, host in sorted(holders, key=str)) + ")")
                told = True
            if self.deadline is not None and _clock() >= self.deadline:
                self.stopped = True
                return False
            time.sleep(poll_s)
        return True


class _ArchSeedRunner:
    """Computes the units of one (architecture, seed): loads splits and the original once.

    Each unit is computed under its claim, released once its file is written. With a `pool`, a
    unit's result file is written by `flush`, once its MIA SVM (submitted to the pool by `measure_model`)
    is done: at the next unit's measurement, or at the end. `report(unit, line)` hears of each file
    written, with its stage times.
    """

    def __init__(self, profile, arch, seed, cache, data_path, device, report, pool=None):
        self.profile, self.arch, self.seed = profile, arch, seed
        self.cache, self.data_path, self.device, self.report, self.pool = cache, data_path, device, report, pool
        self.splits, self.original, self.original_stats = {}, None, None
        self.pending = None   # (unit, record, stage times, raw estimates, claim) waiting for its SVM

    def split(self, scenario):
        if scenario not in self.splits:
            self.splits[scenario] = D.make_split(self.profile, self.seed, scenario, self.device, self.data_path)
        return self.splits[scenario]

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, unit: Unit, estimator, deadline, claim=None) -> bool:
        """Compute one unit and write its result file; False (and nothing done) if it cannot fit the deadline.
        `claim` (the unit's, if any) is released once the file is written, or at once if nothing is."""
        try:
            if not self._run(unit, estimator, deadline, claim):
                if claim is not None:
                    claim.release()
                return False
            return True
        except BaseException:
            if claim is not None and (self.pending is None or self.pending[0] is not unit):
                claim.release()
            raise

    def _run(self, unit: Unit, estimator, deadline, claim) -> bool:
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
        measured = measure_model(model, split, self.profile, unit.seed, self.pool)
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
        self.pending = (unit, record, times, raw, claim)
        if self.pool is None:
            self.flush(estimator)
        return True

    def flush(self, estimator) -> None:
        """Write the pending unit's result file (waiting for its SVM), release its claim, report its stage times."""
        if self.pending is None:
            return
        unit, record, times, raw, claim = self.pending
        self.pending = None
        try:
            wait = time.perf_counter()
            record = resolve(record)
            wait = time.perf_counter() - wait                # the part of the SVM no training hid
            times["measure"] += wait
            # eval_time_s: what measuring cost the run (the SVM's own time is mia_svm_time_s)
            A.save_json(unit.path, {**record, "eval_time_s": record["eval_time_s"] + wait})
        finally:
            if claim is not None:
                claim.release()
        parts = []
        for stage, actual in times.items():
            name = STAGE_NAMES.get(stage, f"{stage} run")
            parts.append(f"{name} {actual:.1f} s" + (f" (est. {raw[stage]:.1f} s)" if stage in raw else ""))
            if estimator is not None and stage in raw:
                estimator.observe(unit.arch, stage, raw[stage], actual)
        self.report(unit, f"[{self.profile.name} {unit.describe()}] " + ", ".join(parts))


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


__all__ = ["plan", "estimate_units", "estimate_table", "makespan", "measure_model", "runs_for", "variant_label", "Unit",
           "chunks", "missing_chunks", "manifest_text", "write_manifest", "has_checkpoint", "select", "GPU_PROFILES",
           "RESULTS_VERSION"]
