"""Mutation testing of the science core and the decision code, with cosmic-ray (issue 26).

A reviewer's check that the tests fail when the science breaks: cosmic-ray puts one small
bug (a mutant: `+` for `-`, `<` for `<=`, a constant off by one, a decorator removed, ...)
into one module at a time, runs that module's own fast test files against it, and counts
the mutants no test notices (survivors). Not part of `make test`. A mutant costs one run of
the module's test files: on 2 otherwise idle cores metrics.py's 84 mutants took 5 minutes;
beside a running compute each test run is several times slower, and `--sample N` bounds a
module's run to N mutants (the same N each time the source is the same).

    .venv/bin/python benchmarks/mutation.py --list             # the scope: modules, their tests, mutant counts
    .venv/bin/python benchmarks/mutation.py metrics keys        # some modules
    .venv/bin/python benchmarks/mutation.py                     # every module in scope, one after the other
    .venv/bin/python benchmarks/mutation.py --report            # the figures of the last runs again
    .venv/bin/python benchmarks/mutation.py --sample 40 train   # 40 mutants of train.py, the same 40 each time
    .venv/bin/python benchmarks/mutation.py --tests-at a1d6371  # the tests of an older commit (figures before)

Per module it prints the kill rate (killed / (killed + survived)) and every survivor as
`file:line  operator  old -> new`. Nothing here touches the working tree: each run mutates a
copy of it (tracked and untracked, not ignored files) in a scratch folder
(`$FAIRGAP_MUTATION_DIR`, default `/tmp/fairgap-mutation`), and cosmic-ray lives in its own
virtual environment there (installed from PyPI on first use), so the project's `.venv` gets
no new package. The tests run with the project's `.venv` python, niced, single-threaded.

Operators: cosmic-ray's core set without the replacements that only make noise on this
code (a float or tensor operand turned into a bit operation, shift, `%` or `//`; `==` turned
into `is`; `~` on a float): each of those crashes at once or is an identity test on small
ints, so they cost a test run and say nothing about the tests. Mutants in code where every
mutant is equivalent are left out too (`equivalent_spans`: annotations, `batch_size` defaults).
The result keys are mutated only in the lines that build them (`SCOPE["keys"]`).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRATCH = Path(os.environ.get("FAIRGAP_MUTATION_DIR", "/tmp/fairgap-mutation"))
COSMIC_RAY = "cosmic-ray==8.7.0"
TEST_PYTHON = REPO / ".venv" / "bin" / "python"

EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_\w+_(BitOr|BitAnd|BitXor|LShift|RShift|Mod|FloorDiv)",
    r"core/ReplaceComparisonOperator_(Eq|NotEq|Lt|LtE|Gt|GtE)_(Is|IsNot)",
    r"core/ReplaceUnaryOperator_\w+_Invert",
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Eq|NotEq|Lt|LtE|Gt|GtE)",   # `is None` -> `== None`: the same here
]


@dataclass
class Module:
    """One module in scope: its source, the test files (pytest arguments) that cover it, and,
    optionally, the functions whose lines alone are mutated."""
    path: str
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    note: str = ""


def _method(name: str, *extra: str) -> Module:
    # the defining terms' tests first: with -x a killed mutant stops at its first failure; the committed results'
    # keys check the method's PROFILES (its cpu budget is in every cpu result's key), test_api that every profile
    # named there exists and trains
    return Module(f"fairgap_utils/unlearn/{name}.py",
                  ["tests/test_method_terms.py", "tests/test_unlearn.py", *extra, "tests/test_result_keys.py",
                   "tests/test_api.py", "-k", f"{name} or every_committed_cpu_result or declares_known_profiles"])


SCOPE: dict[str, Module] = {
    "fairness": Module("fairgap_utils/fairness.py", ["tests/test_hooks_fairness.py"]),
    "hooks": Module("fairgap_utils/hooks.py", ["tests/test_hooks_fairness.py"]),
    "attacks": Module("fairgap_utils/attacks.py", ["tests/test_attacks.py"]),
    "metrics": Module("fairgap_utils/metrics.py", ["tests/test_metrics.py"]),
    "train": Module("fairgap_utils/train.py", ["tests/test_train.py",
                                               "tests/test_method_terms.py::test_train_supervised_times_the_training"]),
    "unlearn.retrain": _method("retrain"),
    "unlearn.ft": _method("ft"),
    "unlearn.ga": _method("ga"),
    "unlearn.rl": _method("rl"),
    "unlearn.l1_sparse": _method("l1_sparse"),
    "unlearn.salun": _method("salun"),
    "unlearn.scrub": _method("scrub"),
    "unlearn.bs": _method("bs"),
    "unlearn.cf_k": _method("cf_k"),
    "unlearn.eu_k": _method("eu_k"),
    "unlearn.common": Module("fairgap_utils/unlearn/common.py",
                             ["tests/test_method_terms.py", "tests/test_unlearn.py", "-k",
                              "cf_k or eu_k or nesterov or plain_momentum or fine_tuning_defaults or fixed_numbers "
                              "or fine_tune_schedule"],
                             note="what the fine-tuning methods share; CF-k / EU-k's choice of the last k layers"),
    "unlearn.keep_gap": _method("keep_gap", "tests/test_keep_gap.py"),
    # test_plan_budget's planning tests (its budget runs compute models: minutes, and build no key), and
    # test_result_keys but its committed-results test (it reads results/cpu, not the mutated lines)
    "keys": Module("fairgap_utils/computing/pipeline.py", [
        *(f"tests/test_plan_budget.py::{t}" for t in ("test_variant_labels",
                                                      "test_runs_for_expands_variants_and_replicates",
                                                      "test_two_variants_with_one_label_are_an_error",
                                                      "test_plan_of_the_paper_profile",
                                                      "test_plan_keeps_the_keys_of_existing_results")),
        "tests/test_result_keys.py", "--deselect",
        "tests/test_result_keys.py::test_every_committed_cpu_result_is_found_by_the_planner"],
                   functions=["runs_for", "_keys", "_scenario_cfg", "plan"],
                   note="only the lines that build the result keys"),
    # being rewritten by others while this script was written: run last, numbers only
    "book.stats": Module("fairgap_utils/book/stats.py", ["tests/test_stats.py", "tests/test_verdicts.py"]),
    "book.verdicts": Module("fairgap_utils/book/verdicts.py", ["tests/test_verdicts.py"]),
}


# --------------------------------------------------------------------------- set-up

def tool_python() -> Path:
    """The python of cosmic-ray's own virtual environment (created on first use)."""
    venv = SCRATCH / "venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "cosmic-ray").is_file():
        print(f"installing {COSMIC_RAY} into {venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", COSMIC_RAY], check=True)
    return python


def snapshot(dest: Path) -> None:
    """Copy the working tree's tracked and untracked (not ignored) files to `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def tests_at(tree: Path, commit: str) -> None:
    """Replace the copy's tests by those of `commit` (the figures before new tests), except conftest.py,
    whose only change since is the trained-original file that makes the runs faster."""
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "tests/"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for f in (tree / "tests").glob("*.py"):
        if f.name != "conftest.py" and f"tests/{f.name}" not in names:
            f.unlink()
    for name in names:
        if name != "tests/conftest.py":
            (tree / name).write_bytes(subprocess.run(["git", "show", f"{commit}:{name}"], cwd=REPO, check=True,
                                                     capture_output=True).stdout)


def line_ranges(source: Path, functions: list[str]) -> list[tuple[int, int]]:
    """(first, last) line of every function named in `functions` (decorators included)."""
    tree = ast.parse(source.read_text())
    ranges = [(min([n.lineno] + [d.lineno for d in n.decorator_list]), n.end_lineno)
              for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in functions]
    missing = set(functions) - {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    if missing:
        raise SystemExit(f"{source}: no function {', '.join(sorted(missing))}; update SCOPE in {__file__}")
    return ranges


def equivalent_spans(source: Path) -> list[tuple[int, int, int, int]]:
    """(line, col, end line, end col) of the code where every mutant is equivalent, left out:

    - annotations: under `from __future__ import annotations` they are never evaluated
      (`float | None` -> `float - None` changes nothing);
    - the default of a `batch_size` parameter: how many images go through the model at once
      changes no number (tests check it: class_sigmas and the attack sweeps against batching).
    """
    spans = []
    for n in ast.walk(ast.parse(source.read_text())):
        skip = []
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = n.args
            skip = [a.annotation for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
                    if a is not None] + [n.returns]
            positional = [*args.posonlyargs, *args.args]
            defaults = dict(zip(positional[len(positional) - len(args.defaults):], args.defaults))
            defaults.update(zip(args.kwonlyargs, args.kw_defaults))
            skip += [d for a, d in defaults.items() if a.arg == "batch_size"]
        elif isinstance(n, ast.AnnAssign):
            skip = [n.annotation]
        spans += [(a.lineno, a.col_offset, a.end_lineno, a.end_col_offset) for a in skip if a is not None]
    return spans


def test_env(tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), FAIRGAP_PROGRESS="0", FAIRGAP_TEST_THREADS="1")
    data = REPO.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.npz"
    if "FAIRGAP_DATA" not in env and data.is_file():   # the copy does not sit beside ../shared
        env["FAIRGAP_DATA"] = str(data)
    return env


def pytest_args(module: Module, tree: Path) -> list[str]:
    """The module's test files that exist in `tree` (a test file added later is left out until then)."""
    def present(t):
        return ".py" not in t or (tree / t.split("::")[0]).is_file()
    tests, args = [], list(module.tests)
    while args:
        t = args.pop(0)
        if t == "--deselect":
            t = f"{t}={args.pop(0)}"
        if present(t.removeprefix("--deselect=")):
            tests.append(t)
    return ["-x", "-q", "-p", "no:cacheprovider", *tests]


def test_command(module: Module, tree: Path, socket_path: Path, timeout: float) -> list[str]:
    """What cosmic-ray runs per mutant: a client of the fork server (`serve`) that runs pytest."""
    return [sys.executable, str(Path(__file__).resolve()), "--client", str(socket_path), f"{timeout:.0f}", "--",
            *pytest_args(module, tree)]


# --------------------------------------------------------------------------- fork server
# Starting python and importing torch takes about 4 s here, more than most test files take:
# a server imports the heavy packages once, and each mutant's pytest runs in a fork of it
# (fairgap_utils itself is imported in the fork only, from the mutated copy).

PRELOAD = ("numpy", "torch", "torchvision", "sklearn.svm", "scipy.stats", "pytest", "matplotlib")


def serve(socket_path: str, log: str) -> None:
    import importlib
    import signal
    import socket
    sys.dont_write_bytecode = True          # a mutant written in the same second must not reuse a stale .pyc
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    import torch
    torch.set_num_threads(1)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(1)
    while True:
        conn, _ = server.accept()
        with conn:
            request = json.loads(conn.makefile().readline())
            if request.get("stop"):
                return
            pid = os.fork()
            if pid == 0:   # the child: one pytest run in the mutated tree
                try:
                    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    os.chdir(request["cwd"])
                    sys.path.insert(0, request["cwd"])
                    import pytest
                    code = int(pytest.main(request["args"]))
                except BaseException:  # noqa: BLE001 - whatever happens, the child reports a failure
                    import traceback
                    traceback.print_exc()
                    code = 99
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            deadline = time.monotonic() + float(request["timeout"])
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    code = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    code = 124
                    break
                time.sleep(0.02)
            try:
                conn.sendall(f"{code}\n".encode())
            except OSError:
                pass


def client(socket_path: str, timeout: float, args: list[str], cwd: str | None = None) -> int:
    """Run pytest `args` in the fork server, in `cwd` (default: here), killed after `timeout` s; its exit code."""
    import socket
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(socket_path)
    conn.sendall((json.dumps({"args": args, "cwd": cwd or os.getcwd(), "timeout": timeout}) + "\n").encode())
    reply = conn.makefile().readline().strip()
    return int(reply) if reply else 98


class Server:
    """The fork server of one module, started with the module's environment."""

    def __init__(self, name: str, tree: Path, env: dict):
        self.path = SCRATCH / f"{name}.sock"
        self.log = SCRATCH / f"{name}.last-test.log"
        self.path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(["nice", "-n", "10", str(TEST_PYTHON), str(Path(__file__).resolve()), "--serve",
                                      str(self.path), str(self.log)], cwd=tree, env=env)
        while not self.path.exists():
            if self.proc.poll() is not None:
                raise SystemExit(f"the fork server for {name} did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        try:
            import socket
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(str(self.path))
            conn.sendall(b'{"stop": true}\n')
            conn.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self.path.unlink(missing_ok=True)


# The part that runs inside cosmic-ray's environment: skip the excluded operators and the
# lines outside the chosen functions; dump the results as JSON.
FILTER = r"""
import json, re, sys
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkResult, WorkerOutcome
session, exclude, ranges = sys.argv[1], re.compile("|".join(json.loads(sys.argv[2]))), json.loads(sys.argv[3])
notes = [((a, b), (c, d)) for a, b, c, d in json.loads(sys.argv[4])]
sample = int(sys.argv[5])
def skipped(m):
    start = tuple(m.start_pos)
    return (exclude.fullmatch(m.operator_name) or (ranges and not any(a <= start[0] <= b for a, b in ranges))
            or any(a <= start < b for a, b in notes))
with use_db(session, WorkDB.Mode.open) as db:
    items = db.pending_work_items
    skip = [item.job_id for item in items if skipped(item.mutations[0])]
    db.set_multiple_results(skip, WorkResult(output="filtered by benchmarks/mutation.py",
                                             worker_outcome=WorkerOutcome.SKIPPED))
    left = sorted((i for i in items if i.job_id not in set(skip)),
                  key=lambda i: (tuple(i.mutations[0].start_pos), i.mutations[0].operator_name,
                                 i.mutations[0].occurrence))
    if 0 < sample < len(left):   # the same sample every time the source is the same
        import random
        kept = {i.job_id for i in random.Random(0).sample(left, sample)}
        db.set_multiple_results([i.job_id for i in left if i.job_id not in kept],
                                WorkResult(output="not in the sample", worker_outcome=WorkerOutcome.SKIPPED))
    print(len(skip))
"""
DUMP = r"""
import json, sys
from cosmic_ray.work_db import WorkDB, use_db
out = []
with use_db(sys.argv[1], WorkDB.Mode.open) as db:
    for item, result in db.completed_work_items:
        m = item.mutations[0]
        out.append(dict(line=m.start_pos[0], operator=m.operator_name, occurrence=m.occurrence,
                        worker=result.worker_outcome.value, unsampled=result.output == "not in the sample",
                        test=result.test_outcome.value if result.test_outcome else None, diff=result.diff or ""))
    pending = len(db.pending_work_items)
print(json.dumps(dict(results=out, pending=pending)))
"""


def _config(module: Module, tree: Path, timeout: float, command: list[str]) -> Path:
    import shlex
    cfg = tree.parent / "config.toml"
    cmd = " ".join(shlex.quote(a) for a in command)
    cfg.write_text(f'[cosmic-ray]\nmodule-path = "{module.path}"\ntimeout = {timeout:.0f}\nexcluded-modules = []\n'
                   f'test-command = {json.dumps(cmd)}\n\n[cosmic-ray.distributor]\nname = "local"\n')
    return cfg


# --------------------------------------------------------------------------- one module

def init(name: str, module: Module, tree: Path, python: Path, timeout: float = 600, command=("true",),
         sample: int = 0) -> Path:
    """A fresh cosmic-ray session for `module`, the excluded operators and lines already skipped."""
    session = SCRATCH / f"{name}.sqlite"
    session.unlink(missing_ok=True)
    cfg = _config(module, tree, timeout, list(command))
    subprocess.run([str(python.parent / "cosmic-ray"), "init", str(cfg), str(session)], cwd=tree, check=True)
    ranges = line_ranges(tree / module.path, module.functions) if module.functions else []
    subprocess.run([str(python), "-c", FILTER, str(session), json.dumps(EXCLUDED_OPERATORS), json.dumps(ranges),
                    json.dumps(equivalent_spans(tree / module.path)), str(sample)], check=True, capture_output=True)
    return session


def dump(session: Path, python: Path) -> dict:
    out = subprocess.run([str(python), "-c", DUMP, str(session)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _change(diff: str) -> str:
    """`old -> new` from a one-line unified diff."""
    old = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    new = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return f"{' / '.join(old)}  ->  {' / '.join(new)}"


def summarize(name: str, module: Module, data: dict, seconds: float | None) -> dict:
    runs = [r for r in data["results"] if r["worker"] == "normal"]
    killed = [r for r in runs if r["test"] == "killed"]
    survived = sorted((r for r in runs if r["test"] == "survived"), key=lambda r: r["line"])
    incompetent = [r for r in data["results"] if r["worker"] in ("exception", "abnormal") or r["test"] == "incompetent"]
    tested = len(killed) + len(survived)
    unsampled = sum(r.get("unsampled", False) for r in data["results"])
    return dict(module=name, path=module.path, tests=module.tests, mutants=tested, killed=len(killed),
                of=tested + unsampled + data["pending"] if unsampled else None,
                survived=len(survived), incompetent=len(incompetent), pending=data["pending"],
                kill_rate=(100.0 * len(killed) / tested) if tested else None, seconds=seconds,
                survivors=[dict(line=r["line"], operator=r["operator"].removeprefix("core/"),
                                change=_change(r["diff"])) for r in survived])


def print_summary(s: dict) -> None:
    rate = "n/a" if s["kill_rate"] is None else f"{s['kill_rate']:.1f}%"
    took = "" if s.get("seconds") is None else f", {s['seconds'] / 60:.1f} min"
    extra = (f", {s['incompetent']} incompetent" if s["incompetent"] else "") + \
            (f", {s['pending']} NOT RUN" if s["pending"] else "")
    sample = f" (a sample of the {s['of']} mutants)" if s.get("of") else ""
    print(f"\n== {s['module']} ({s['path']}): {s['killed']} of {s['mutants']}{sample} killed ({rate}), "
          f"{s['survived']} survived{extra}{took}", flush=True)
    for r in s["survivors"]:
        print(f"   {s['path']}:{r['line']}  {r['operator']}  {r['change']}")


def module_env(name: str, tree: Path) -> dict:
    env = test_env(tree)
    if SCOPE[name].path != "fairgap_utils/train.py":
        # conftest's trained_original, trained by the unmutated code in the baseline run and reused by every
        # mutant (a mutant of train.py trains its own: the fixture's accuracy check is one of its tests)
        env["FAIRGAP_TEST_ORIGINAL"] = str(SCRATCH / f"{name}.original.pt")
        Path(env["FAIRGAP_TEST_ORIGINAL"]).unlink(missing_ok=True)
    return env


def run_module(name: str, tree: Path, python: Path, sample: int = 0) -> dict:
    module = SCOPE[name]
    start = time.perf_counter()
    server = Server(name, tree, module_env(name, tree))
    try:
        args = pytest_args(module, tree)
        code = client(str(server.path), 3600, args, cwd=str(tree))
        baseline = time.perf_counter() - start
        if code != 0:
            raise SystemExit(f"{name}: the unmutated tests fail (pytest {' '.join(args)}, exit {code}):\n"
                             + server.log.read_text()[-3000:])
        timeout = 3 * baseline + 30    # a mutant that makes the tests three times slower counts as killed
        session = init(name, module, tree, python, timeout + 10, test_command(module, tree, server.path, timeout),
                       sample)
        print(f"[{name}] baseline {baseline:.1f} s; running the mutants of {module.path} against pytest "
              f"{' '.join(args[4:])}", flush=True)
        subprocess.run(["nice", "-n", "10", str(python.parent / "cosmic-ray"), "exec",
                        str(tree.parent / "config.toml"), str(session)], cwd=tree, check=True)
    finally:
        server.stop()
    summary = summarize(name, module, dump(session, python), time.perf_counter() - start)
    (SCRATCH / f"{name}.json").write_text(json.dumps(summary, indent=1))
    print_summary(summary)
    return summary


def table(summaries: list[dict]) -> None:
    print("\nmodule              mutants  killed  survived  kill rate")
    for s in summaries:
        rate = "n/a" if s["kill_rate"] is None else f"{s['kill_rate']:.1f}%"
        sample = f"  (sample of {s['of']})" if s.get("of") else ""
        print(f"{s['module']:20s}{s['mutants']:7d}{s['killed']:8d}{s['survived']:10d}  {rate:>9s}{sample}")
    total = sum(s["mutants"] for s in summaries)
    killed = sum(s["killed"] for s in summaries)
    if total:
        print(f"{'all':20s}{total:7d}{killed:8d}{total - killed:10d}  {100 * killed / total:8.1f}%")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", help=f"modules to run (default: all): {', '.join(SCOPE)}")
    parser.add_argument("--list", action="store_true", help="print the scope and each module's mutant count")
    parser.add_argument("--report", action="store_true", help="print the saved results of the last runs")
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="run N mutants per module, the same random N every time (default: all)")
    parser.add_argument("--tests-at", metavar="COMMIT",
                        help="run the tests as they were at COMMIT (the figures before new tests)")
    parser.add_argument("--serve", nargs=2, metavar=("SOCKET", "LOG"), help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--client"]:          # the test command: --client SOCKET TIMEOUT -- pytest arguments
        return client(argv[1], float(argv[2]), argv[4:])
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    for name in args.modules:
        if name not in SCOPE:
            parser.error(f"unknown module {name!r}; valid choices: {', '.join(SCOPE)}")
    names = args.modules or list(SCOPE)
    if args.report:
        saved = [json.loads((SCRATCH / f"{n}.json").read_text()) for n in names if (SCRATCH / f"{n}.json").is_file()]
        for s in saved:
            print_summary(s)
        table(saved)
        return 0
    SCRATCH.mkdir(parents=True, exist_ok=True)
    python = tool_python()
    tree = SCRATCH / "tree"
    snapshot(tree)
    if args.tests_at:
        tests_at(tree, args.tests_at)
    if args.list:
        for name in names:
            m = SCOPE[name]
            session = init(name, m, tree, python)
            data = dump(session, python)
            print(f"{name:18s} {data['pending']:4d} mutants  {m.path}  <- {' '.join(m.tests)}"
                  + (f"  (functions {', '.join(m.functions)})" if m.functions else ""))
        return 0
    summaries = [run_module(name, tree, python, args.sample) for name in names]
    table(summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
