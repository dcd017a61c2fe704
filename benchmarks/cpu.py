"""CPU benchmark: where the time of the `cpu` profile goes, and what makes it faster.

    python benchmarks/cpu.py                          # every figure, ~25 min on 2 cores
    python benchmarks/cpu.py --only loop augment      # some sections
    python benchmarks/cpu.py --only budget --override '{"n_train_per_class": 1000}'

Sections (each prints a table; nothing is asserted):
  loop      `train.fit` against a plain eager loop (float32, fixed batch, no augmentation)
            per architecture, for this checkout and for `--before` (default b370a5c, the
            code before the CPU work), each in its own single-threaded process on core 0.
  augment   `data.augment` alone, the pre-b370a5c indexing version against the current one.
  variants  per architecture, one thread: NCHW against channels_last, batch sizes, and
            torch.compile's CPU backend (compile time, steady speed, recompile on a new shape).
  threads   one process with 1 or 2 threads against 2 single-threaded processes side by side
            (images per second for the whole machine). Needs both cores: only meaningful
            on a machine nobody else is using.
  eval      evaluation throughput per batch size: predict, class_sigmas, the FGSM sweep
            (4 eps), PGD-5 (2 eps), and the MIA's SVM.
  budget    the profile's real work on its real split (`FAIRGAP_DATA`): one training epoch,
            one epoch of every unlearning run, one `pipeline.measure`, counted over every
            training, run and measurement of the profile, projected for one process and for
            two single-threaded processes (one per architecture).

Timed work runs single-threaded pinned to core 0 (`--core`). Wall times are medians of
interleaved rounds; "cpu" figures are the process's CPU time, which time-sharing with other
jobs on the same core does not inflate (cache and memory-bandwidth contention still do).
Before each section the busy share of every core over one second is printed, so a figure
taken on a loaded machine says so.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from fairgap_utils import data as D  # noqa: E402
from fairgap_utils.config import TrainConfig, get_profile  # noqa: E402
from fairgap_utils.models import create_model  # noqa: E402
from fairgap_utils.train import make_optimizer, prepare, predict  # noqa: E402

SECTIONS = ("loop", "augment", "variants", "threads", "eval", "budget")
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.npz"
FIGURES: dict = {}   # figures one section hands to a later one (the two-process slow-down, for the budget)


# --------------------------------------------------------------------------- timing helpers

def core_load(seconds: float = 1.0) -> str:
    """Busy share of every core over `seconds`, from /proc/stat (Linux only)."""
    def read():
        with open("/proc/stat") as f:
            rows = [line.split() for line in f if line.startswith("cpu") and line[3].isdigit()]
        return {r[0]: (sum(map(int, r[1:])), int(r[4]) + int(r[5])) for r in rows}
    try:
        a = read()
        time.sleep(seconds)
        b = read()
    except OSError:
        return "core load unknown"
    return ", ".join(f"core {k[3:]} busy {100 * (1 - (b[k][1] - a[k][1]) / max(b[k][0] - a[k][0], 1)):.0f}%"
                     for k in sorted(a))


def interleaved(variants: dict, rounds: int = 5, repeat: int = 3) -> dict:
    """{name: (median wall s, median cpu s)} per call of each callable, rounds interleaved."""
    for f in variants.values():
        f()                                            # warm-up (allocations, oneDNN primitives)
    times = {k: [] for k in variants}
    for _ in range(rounds):
        for k, f in variants.items():
            w, c = time.perf_counter(), time.process_time()
            for _ in range(repeat):
                f()
            times[k].append(((time.perf_counter() - w) / repeat, (time.process_time() - c) / repeat))
    return {k: (statistics.median(t[0] for t in v), statistics.median(t[1] for t in v)) for k, v in times.items()}


def train_step(model, batch: int, channels_last: bool):
    """One plain SGD step on a fixed random batch, as a callable."""
    opt = make_optimizer(model.parameters(), "sgd", 0.01)
    x, y = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.train()

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def legacy_augment(x, generator=None):
    """`data.augment` as of b370a5c (four broadcast index tensors, then a where for the flip)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), device=x.device, generator=generator)
    dy = torch.randint(0, 9, (n,), device=x.device, generator=generator)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    out = padded[torch.arange(n, device=x.device)[:, None, None, None],
                 torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
    flip = torch.rand(n, device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def run_child(code: str, args: list, core: int | None, pythonpath: Path, threads: int = 1) -> dict:
    """Run `code` in a fresh interpreter (pinned to `core`), importing fairgap_utils from
    `pythonpath`; the child prints one JSON line last."""
    env = dict(os.environ, PYTHONPATH=str(pythonpath), OMP_NUM_THREADS=str(threads), FAIRGAP_PROGRESS="0")
    cmd = [sys.executable, "-c", code, *map(str, args)]
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# fit and a plain loop in one child process, interleaved; works on any checkout since b370a5c
LOOP_CHILD = r"""
import json, statistics, sys, time, torch
from torch.nn import functional as F
from fairgap_utils import data as D
from fairgap_utils.models import create_model
from fairgap_utils.train import fit, make_optimizer, prepare
arch, batch, steps, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(int(sys.argv[5]))
torch.manual_seed(0)
x = torch.randint(0, 256, (batch * steps, 3, 32, 32), dtype=torch.uint8)
y = torch.randint(0, 10, (batch * steps,))
model = prepare(create_model(arch), "cpu")
opt = make_optimizer(model.parameters(), "sgd", 0.01)
loss = lambda m, xb, yb, e: F.cross_entropy(m(xb), yb)
gen = torch.Generator().manual_seed(0)
plain = create_model(arch)
plain_opt = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)
xs, ys = torch.rand(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
def run_fit():
    fit(model, 1, lambda e: D.batches(x, y, batch, True, True, gen), loss, opt)
def run_plain():
    for _ in range(steps):
        l = F.cross_entropy(plain(xs), ys); plain_opt.zero_grad(); l.backward(); plain_opt.step()
fit(model, 1, lambda e: D.batches(x[:2 * batch], y[:2 * batch], batch, True, True, gen), loss, opt)
run_plain()
t = {"fit": [], "plain": []}
for _ in range(rounds):
    for name, f in (("fit", run_fit), ("plain", run_plain)):
        s = time.perf_counter(); f(); t[name].append(time.perf_counter() - s)
print(json.dumps({k: batch * steps / statistics.median(v) for k, v in t.items()}))
"""

# plain training steps for `seconds`; prints images per second
STEPS_CHILD = r"""
import json, sys, time, torch
from torch.nn import functional as F
from fairgap_utils.models import create_model
from fairgap_utils.train import make_optimizer, prepare
arch, batch, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
torch.set_num_threads(int(sys.argv[4]))
model = prepare(create_model(arch), "cpu").train()
opt = make_optimizer(model.parameters(), "sgd", 0.01)
x = torch.rand(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (batch,))
def step():
    l = F.cross_entropy(model(x), y); opt.zero_grad(); l.backward(); opt.step()
step(); step()
start, n = time.perf_counter(), 0
while time.perf_counter() - start < seconds:
    step(); n += 1
print(json.dumps({"img_s": n * batch / (time.perf_counter() - start)}))
"""


def export_checkout(ref: str) -> Path:
    """fairgap_utils/ as of git `ref`, in a temporary folder (for the `before` figures)."""
    dest = Path(tempfile.mkdtemp(prefix="fairgap-before-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "fairgap_utils"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


# --------------------------------------------------------------------------- sections

def section_loop(args, archs):
    before = export_checkout(args.before)
    print(f"fit vs a plain eager loop (float32, fixed batch, no augmentation), images/s, 1 thread, core {args.core}; "
          f"median of {args.rounds} rounds of {args.steps} steps, alternating processes")
    print(f"  {'arch':14s} {'batch':>5s} | {'before ' + args.before[:7]:>26s} | {'now':>26s} | fit speed-up")
    for arch, batch in archs:
        got = {"before": [], "now": []}
        for _ in range(2):
            for name, path in (("before", before), ("now", REPO)):
                got[name].append(run_child(LOOP_CHILD, [arch, batch, args.steps, args.rounds, 1], args.core, path))
        med = {n: {k: statistics.median(r[k] for r in rs) for k in ("fit", "plain")} for n, rs in got.items()}
        b, a = med["before"], med["now"]
        print(f"  {arch:14s} {batch:5d} "
              f"| fit {b['fit']:5.0f} plain {b['plain']:5.0f} ({b['fit'] / b['plain']:4.2f}x) "
              f"| fit {a['fit']:5.0f} plain {a['plain']:5.0f} ({a['fit'] / a['plain']:4.2f}x) "
              f"| {a['fit'] / b['fit']:4.2f}x")


def section_augment(args, archs):
    print("augmentation alone (random crop, padding 4, + flip), ms per batch, 1 thread")
    for batch in (128, 512):
        x = torch.rand(batch, 3, 32, 32)
        g = torch.Generator().manual_seed(0)
        t = interleaved({"before": lambda: legacy_augment(x, g), "now": lambda: D.augment(x, g),
                         "to_float": lambda: D.to_float((x * 255).to(torch.uint8))}, args.rounds, 10)
        print(f"  batch {batch:4d}: before {1e3 * t['before'][0]:6.2f}   now {1e3 * t['now'][0]:6.2f}   "
              f"({t['before'][0] / t['now'][0]:3.1f}x)   uint8 -> float {1e3 * t['to_float'][0]:5.2f}")
    for arch, batch in archs:
        step = train_step(prepare(create_model(arch), "cpu"), batch, True)
        x = torch.rand(batch, 3, 32, 32)
        g = torch.Generator().manual_seed(0)
        t = interleaved({"step": step, "before": lambda: legacy_augment(x, g), "now": lambda: D.augment(x, g)},
                        args.rounds, 2)
        print(f"  {arch:14s} batch {batch}: a training step {1e3 * t['step'][0]:6.1f} ms; augmentation "
              f"{100 * t['before'][0] / t['step'][0]:4.1f}% of it before, {100 * t['now'][0] / t['step'][0]:4.1f}% now")


def section_variants(args, archs):
    print("training step variants, images/s (cpu-time based in brackets), 1 thread")
    for arch, _ in archs:
        v = {}
        for batch in (64, 128, 256, 512):
            v[f"NCHW b{batch}"] = train_step(create_model(arch), batch, False)
            v[f"channels_last b{batch}"] = train_step(create_model(arch), batch, True)
        t = interleaved(v, args.rounds, 1)
        row = "  ".join(f"{k} {int(k.rsplit('b', 1)[1]) / w:5.0f} ({int(k.rsplit('b', 1)[1]) / c:5.0f})"
                        for k, (w, c) in t.items())
        print(f"  {arch:14s} {row}")
    if args.no_compile:
        return
    import torch._dynamo
    for arch, batch in archs:
        torch._dynamo.reset()
        model = prepare(create_model(arch), "cpu")
        compiled = torch.compile(model)
        step = train_step(compiled, batch, True)
        start = time.perf_counter()
        step()
        step()
        first = time.perf_counter() - start
        odd = train_step(compiled, batch // 2 + 3, True)    # the last, partial batch of an epoch
        start = time.perf_counter()
        odd()
        odd()
        recompile = time.perf_counter() - start
        model.eval()
        start = time.perf_counter()
        with torch.no_grad():
            compiled(torch.rand(batch, 3, 32, 32))
        eval_compile = time.perf_counter() - start
        model.train()
        t = interleaved({"eager": train_step(prepare(create_model(arch), "cpu"), batch, True), "compiled": step},
                        args.rounds, 2)
        print(f"  {arch:14s} torch.compile b{batch}: first two steps {first:5.1f} s, "
              f"a new batch size {recompile:5.1f} s, "
              f"eval mode {eval_compile:5.1f} s; then {batch / t['compiled'][0]:5.0f} img/s vs eager channels_last "
              f"{batch / t['eager'][0]:5.0f} ({t['eager'][0] / t['compiled'][0]:4.2f}x)")


def section_threads(args, archs):
    print(f"threads and processes, training images/s for the whole machine, {args.seconds:.0f} s each "
          "(needs both cores: figures to be re-measured on a quiet machine)")
    slowdowns = []
    for arch, batch in archs:
        one = run_child(STEPS_CHILD, [arch, batch, args.seconds, 1], args.core, REPO, 1)["img_s"]
        two = run_child(STEPS_CHILD, [arch, batch, args.seconds, 2], None, REPO, 2)["img_s"]
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", FAIRGAP_PROGRESS="0")
        procs = [subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-c", STEPS_CHILD, arch, str(batch),
                                   str(args.seconds), "1"], env=env, stdout=subprocess.PIPE, text=True)
                 for core in (0, 1)]
        pair = [json.loads(p.communicate()[0].strip().splitlines()[-1])["img_s"] for p in procs]
        slowdowns.append(2 * one / sum(pair))
        print(f"  {arch:14s} b{batch}: 1 process x 1 thread {one:5.0f} | 1 process x 2 threads {two:5.0f} "
              f"({two / one:4.2f}x) | 2 processes x 1 thread {sum(pair):5.0f} ({sum(pair) / one:4.2f}x; "
              f"each {pair[0]:.0f} and {pair[1]:.0f})")
    FIGURES["two_process_slowdown"] = max(slowdowns)


def section_eval(args, archs):
    from fairgap_utils.attacks import accuracy_under_attack
    from fairgap_utils.fairness import class_sigmas
    print("evaluation throughput, images/s, 1 thread (model in eval mode, channels_last)")
    n = 1000
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (n,))
    for arch, _ in archs:
        model = prepare(create_model(arch), "cpu").eval()
        for name, fn, images in (
                ("predict", lambda b: predict(model, x, b), n),
                ("class_sigmas", lambda b: class_sigmas(model, x, y, 10, b), n),
                ("FGSM 4 eps", lambda b: accuracy_under_attack(model, x[:300], y[:300], "fgsm",
                                                               [0, 1 / 255, 2 / 255, 4 / 255, 8 / 255], b), 300),
                ("PGD-5 2 eps", lambda b: accuracy_under_attack(model, x[:200], y[:200], "pgd", [2 / 255, 8 / 255],
                                                                b, steps=5), 200)):
            t = interleaved({b: (lambda b=b: fn(b)) for b in (64, 128, 256, 500)}, max(2, args.rounds // 2), 1)
            print(f"  {arch:14s} {name:12s} " + "  ".join(f"b{b} {images / w:6.0f}" for b, (w, _) in t.items()))
    import numpy as np
    from sklearn.svm import SVC
    rng = np.random.default_rng(0)
    for members in (900, 4500, 9000):
        f = np.concatenate([rng.beta(8, 1, members), rng.beta(4, 1, members)])[:, None]
        labels = np.concatenate([np.ones(members), np.zeros(members)])
        start = time.process_time()
        clf = SVC(C=3, gamma="auto", kernel="rbf").fit(f, labels)
        clf.predict(f[:1000])
        print(f"  MIA SVM on {members} + {members} points: {time.process_time() - start:5.2f} s")


# --------------------------------------------------------------------------- budget

def method_runs(profile, scenario, extra: dict):
    """(label, method, overrides) of every unlearning run of a scenario, plus assumed extra runs."""
    from fairgap_utils.computing.pipeline import runs_for
    runs = [r for r in runs_for(profile, scenario) if r[1] not in ("original", "retrain")]
    if scenario == "class":
        for m, variants in profile.variants.items():
            runs += [(f"{m}-v{i + 1}", m, {**profile.method_overrides.get(m, {}), **hp})
                     for i, hp in enumerate(variants)]
    for m, count in extra.items():
        runs += [(f"extra-{m}-{i + 1}", m, dict(profile.method_overrides.get(m, {}))) for i in range(count)]
    return runs


def profile_with(name: str, override: str | None):
    """The named profile with JSON changes; nested TrainConfig/EvalConfig fields by dict."""
    profile = get_profile(name)
    if not override:
        return profile
    changes = json.loads(override)
    for key in ("train_resnet", "train_vit", "eval", "analysis"):
        if key in changes:
            changes[key] = type(getattr(profile, key))(**{**vars(getattr(profile, key)), **changes[key]})
    return profile.replace(**changes)


def schedule(chunks: dict, processes: int) -> float:
    """Longest-processing-time-first makespan of independent chunks over `processes` workers."""
    loads = [0.0] * processes
    for cost in sorted(chunks.values(), reverse=True):
        loads[loads.index(min(loads))] += cost
    return max(loads)


def section_budget(args, archs_unused):
    from fairgap_utils.computing.pipeline import measure_model as measure
    from fairgap_utils.train import seed_everything, train_supervised
    from fairgap_utils.unlearn import Context, hyperparameters, run_method
    profile = profile_with(args.profile, args.override)
    data = args.data or os.environ.get("FAIRGAP_DATA") or str(DEFAULT_DATA)
    extra = dict((k, int(v)) for k, v in (e.split("=") for e in args.extra))
    print(f"budget of profile {profile.name} ({profile.n_train_per_class} train / {profile.n_test_per_class} test "
          f"images per class, seeds {profile.seeds}, {profile.retrain_replicates} Retrain replicates per scenario, "
          f"eval batch {profile.eval.batch_size}" + (f", assumed extra runs per scenario {extra}" if extra else "")
          + "), 1 thread, CPU seconds measured on seed 0's class-wise split")
    chunks = {}
    for arch in profile.archs:
        cfg = profile.train_config(arch)
        split = D.make_split(profile, 0, "class", "cpu", data)
        seed_everything(0)
        model = prepare(create_model(arch, split.num_classes), "cpu")
        start = time.process_time()
        train_supervised(model, split.x_train, split.y_train, TrainConfig(**{**vars(cfg), "epochs": 1}), 0)
        epoch_s = time.process_time() - start
        measure_s = float("inf")
        for _ in range(2):                  # the first call also pays for imports and first-use set-up
            start = time.process_time()
            measure(model, split, profile, 0)
            measure_s = min(measure_s, time.process_time() - start)
        ctx = Context(original=model, train_config=cfg, arch=arch, seed=0)
        per_run = {}
        for scenario in profile.scenarios:
            for label, method, overrides in method_runs(profile, scenario, extra):
                key = (method, tuple(sorted(overrides.items())))
                if key not in per_run:
                    hp = hyperparameters(method, overrides)
                    start = time.process_time()
                    run_method(method, model, split, ctx, {**overrides, "epochs": 1} if "epochs" in hp else overrides)
                    per_run[key] = (label, time.process_time() - start, hp.get("epochs", 1))
        retrain_s = cfg.epochs * epoch_s * len(split.x_retain) / len(split.x_train)
        train_total = unlearn_total = measure_total = 0.0
        trainings = models = 0
        for seed in profile.seeds:
            reps = profile.retrain_replicates if seed == profile.noise_floor_seed else 0
            n_train = 1 + len(profile.scenarios) * (1 + reps)
            runs = [r for sc in profile.scenarios for r in method_runs(profile, sc, extra)]
            unlearn_s = sum(per_run[(m, tuple(sorted(o.items())))][1] * per_run[(m, tuple(sorted(o.items())))][2]
                            for _, m, o in runs)
            n_models = len(runs) + len(profile.scenarios) * (2 + reps)   # + original, Retrain, replicates
            train_s = cfg.epochs * epoch_s + (n_train - 1) * retrain_s
            chunks[(arch, seed)] = train_s + unlearn_s + n_models * measure_s
            train_total, unlearn_total, measure_total = (train_total + train_s, unlearn_total + unlearn_s,
                                                         measure_total + n_models * measure_s)
            trainings, models = trainings + n_train, models + n_models
        print(f"  {arch}: a training epoch {epoch_s:5.1f} s over {len(split.x_train)} images "
              f"({len(split.x_train) / epoch_s:4.0f} img/s); {trainings} trainings of {cfg.epochs} epochs "
              f"{train_total / 60:6.1f} min")
        print(f"    one measurement {measure_s:5.1f} s x {models} models = {measure_total / 60:6.1f} min")
        runs = ", ".join(f"{lab} {s:.1f}x{e}" for lab, s, e in per_run.values())
        print(f"    unlearning runs (s per epoch x epochs): {runs}; "
              f"all runs of all seeds {unlearn_total / 60:6.1f} min")
        print(f"    {arch} total {(train_total + unlearn_total + measure_total) / 60:6.1f} min")
    one = sum(chunks.values())
    two = schedule(chunks, 2)
    slow = FIGURES.get("two_process_slowdown")
    print(f"  projected: 1 single-threaded process {one / 60:6.1f} min; 2 single-threaded processes sharing the "
          f"{len(chunks)} (arch, seed) chunks {two / 60:6.1f} min"
          + (f", {slow * two / 60:6.1f} min with the {slow:.2f}x slow-down measured in `threads`" if slow else
             " (without the slow-down two processes cause each other: run section `threads` too)"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--profile", default="cpu", help="profile whose architectures and batch sizes are measured")
    ap.add_argument("--archs", nargs="+", help="architectures (default: the profile's)")
    ap.add_argument("--before", default="b370a5c", help="git ref of the code to compare `fit` against")
    ap.add_argument("--core", type=int, default=0, help="core the single-threaded measurements run on")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10, help="training steps per round (loop section)")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds per threads/processes figure")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile (minutes of compiling)")
    ap.add_argument("--override", help="JSON changes to the profile (architectures, batch sizes, budget), e.g. "
                                       "'{\"n_train_per_class\": 1000, \"train_vit\": {\"epochs\": 20}}'")
    ap.add_argument("--extra", nargs="*", default=[], help="assumed extra runs per scenario priced like an "
                                                            "existing method, e.g. rl=2")
    ap.add_argument("--data", help="CIFAR-10 copy for the budget (default: $FAIRGAP_DATA or the shared copy)")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {args.core})
    except (AttributeError, OSError):
        pass
    torch.set_num_threads(1)
    profile = profile_with(args.profile, args.override)
    archs = [(a, profile.train_config(a).batch_size) for a in (args.archs or profile.archs)]
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; timed work on core {args.core}, 1 thread")
    for name in SECTIONS:
        if name in args.only:
            print(f"\n[{name}] ({core_load()})")
            globals()[f"section_{name}"](args, archs)


if __name__ == "__main__":
    main()
