"""Where a page's numbers come from: the committed results, a slice the reader recomputed, or both.

    records = load("paper")          # results/paper as committed; nothing is computed
    records = load("paper", recompute=True, arch="resnet50", seed=0, scenario="class", methods=["retrain", "ft"])
    # prints what it will compute and the time it should take on this device (from throughput measured
    # just now), computes that one slice into results-local/paper (git-ignored), then shows the committed
    # results with the recomputed files replacing the committed files of the same models

A page never computes a whole profile: `make book` (`runner.run`) computes before the notebooks
run, and a page reads. That is also what a Colab session does by default: the notebooks' first
cell clones the repository, committed results included, so a page re-executes in seconds there.

`coverage` says what a profile's committed folder holds and which chunks (architecture,
scenario, seed) are still missing; the banner, the provenance box and the verdicts page print it.
The page "Evaluate your own method" reads its method's committed results from `results/tutorial/`
(`tutorial`), outside every profile's folder, so no other page sees them.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import manifest
from ..config import Profile, get_profile
from ..errors import FairgapError, check_choice, check_range
from ..files import REPO_ROOT, load_json
from ..files import results_dir as committed_folder
from ..manifest import chunks, missing_chunks

SHOW = ("committed", "recomputed", "merged")
TUTORIAL = "tutorial"  # results/tutorial/<profile>/...: the committed results of the page "Evaluate your own method"
PAGE_GLOB = "*/seed*/*/*.json"  # a profile folder's result files (artifacts.load_records reads the same)


def local_folder(path=None) -> Path:
    """Where a reader's recomputed results go: results-local/ in the repository (git-ignored), or
    $FAIRGAP_LOCAL_RESULTS."""
    return Path(path or os.environ.get("FAIRGAP_LOCAL_RESULTS") or REPO_ROOT / "results-local")


def shown_path(path: Path) -> str:
    """A folder as a page prints it, naming no machine's absolute path where it can: relative to the
    repository when inside it, else relative to $FAIRGAP_RESULTS or $FAIRGAP_LOCAL_RESULTS."""
    resolved = Path(path).resolve()
    roots = [("", REPO_ROOT)] + [(f"${var}", Path(os.environ[var]))
                                 for var in ("FAIRGAP_RESULTS", "FAIRGAP_LOCAL_RESULTS")
                                 if os.environ.get(var)]
    for prefix, root in roots:
        try:
            rel = resolved.relative_to(root.resolve())
        except ValueError:
            continue
        return "/".join(part for part in (prefix, str(rel) if str(rel) != "." else "") if part) or "."
    return str(path)


def result_files(profile: str, results=None) -> list[Path]:
    return sorted((committed_folder(results) / profile).glob(PAGE_GLOB))


def default_profile(results=None, cuda: bool | None = None, computing: bool = True, local=None) -> str:
    """The profile a book or a page shows when none is named.

    `paper` when results/paper holds result files (for a page, results-local/paper counts too);
    otherwise `paper` where CUDA can compute it and the caller computes (`make book`); otherwise `cpu`.
    """
    if result_files("paper", results) or (not computing and result_files("paper", local_folder(local))):
        return "paper"
    if computing:
        if cuda is None:
            import torch  # lazy: torch only to ask for CUDA; reading results needs none
            cuda = torch.cuda.is_available()
        if cuda:
            return "paper"
    return "cpu"


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def runtime_note(colab: bool | None = None, cuda: bool | None = None) -> str | None:
    """One line for a Colab session: which runtime it has and what the page does with it (None elsewhere)."""
    if not (in_colab() if colab is None else colab):
        return None
    import torch  # lazy: torch only to ask for CUDA; reading results needs none
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if cuda:
        return (f"Colab GPU runtime ({torch.cuda.get_device_name(0)}): this page shows the committed results; "
                "set recompute = True in its parameters to recompute one slice here.")
    return ("Colab CPU runtime: this page shows the committed results (a recomputation of the paper profile "
            "wants a GPU: Runtime > Change runtime type > GPU).")


# --------------------------------------------------------------------------- what a profile holds

@dataclass(frozen=True)
class Coverage:
    """What a profile's results folder holds, against what the profile needs (its plan: `planned`)."""
    profile: str
    folder: Path
    present: int          # result files of the current configuration
    total: int            # result files the profile needs
    files: int            # result files in the folder (present ones and those of another configuration)
    held: dict            # {(arch, scenario, seed): (present, total)} of the chunks with a file present
    missing: str          # `manifest.missing_chunks`: the chunks with files missing ('' when complete)
    unreadable: tuple = ()   # files that are truncated or not result files (shown paths)

    @property
    def complete(self) -> bool:
        return self.present == self.total

    @property
    def held_line(self) -> str:
        return ", ".join(f"{a} {sc} seed {s} ({p} of {t})" for (a, sc, s), (p, t) in self.held.items()) or "none"

    @property
    def other_configuration(self) -> int:
        """Readable result files made by another configuration (their key differs): left out of every page."""
        return self.files - self.present - len(self.unreadable)

    def sentence(self) -> str:
        """One paragraph: what the profile holds, what is missing, what the files shown were made by."""
        if self.complete:
            text = (f"The {self.profile} profile holds all {self.total} of its result files "
                    f"({self.held_line}).")
        else:
            text = (f"The {self.profile} profile holds {self.present} of its {self.total} result files, by chunk "
                    f"(architecture, scenario, seed): {self.held_line}. Still missing: {self.missing}.")
        if self.other_configuration:
            text += (f" {self.other_configuration} of the {self.files} files in {shown_path(self.folder)} were made "
                     "by another configuration than the current code's (their hash differs): they are left out of "
                     "every table and figure, and computing the profile replaces them.")
        if self.unreadable:
            text += f" Left out, unreadable (truncated or not a result file): {unreadable_line(self.unreadable)}."
        return text

    def rows(self) -> dict:
        """Rows for the provenance box."""
        return {"result files of the profile": f"{self.present} of {self.total} with the current configuration"
                                               + (f" ({self.other_configuration} more from another configuration)"
                                                  if self.other_configuration else ""),
                "chunks present (arch scenario seed)": self.held_line,
                "chunks missing": self.missing or "none",
                **({"unreadable files (left out)": unreadable_line(self.unreadable)} if self.unreadable else {})}


def unreadable_line(paths) -> str:
    """The unreadable files, named (the first five) and counted."""
    paths = list(paths)
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def planned(profile: Profile, results=None) -> list:
    """The profile's planned result files, each marked present or not: from its manifest
    (results/<profile>/plan.json, torch-free) where one is there, else from the planner."""
    written = manifest.read(profile.name, results)
    if written is not None:
        return written.present()
    from ..computing.pipeline import plan  # lazy: the planner (torch) only where no manifest was written
    return plan(profile, results=results)


def keys(profile: Profile, results=None) -> dict:
    """{(arch, seed, scenario, label): key} of the profile's plan: from its manifest where there is one."""
    written = manifest.read(profile.name, results)
    if written is not None:
        return written.keys()
    from ..computing.pipeline import plan  # lazy: as in `planned`
    return {(u.arch, u.seed, u.scenario, u.label): u.key for u in plan(profile, results=results)}


def coverage(profile: str | Profile, results=None) -> Coverage:
    """What results/<profile> holds of the profile: its plan (key-checked, `planned`) against the files there."""
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    units = planned(p, results)
    held = {c: n for c, n in chunks(units).items() if n[0] > 0}
    _, unreadable = _read(p.name, results)
    return Coverage(p.name, committed_folder(results) / p.name, sum(u.present for u in units), len(units),
                    len(result_files(p.name, results)), held, missing_chunks(units), tuple(unreadable))


# --------------------------------------------------------------------------- what a page shows

class Records(list):
    """The result records a page shows (a list of dicts, as `load_records` returns), and where they come from.

    profile: the profile's name; shows: "committed", "recomputed" or "merged"; source: one sentence saying
    so; coverage: what the committed folder holds of the profile (a Coverage, or None).
    """

    def __init__(self, records, profile: str, shows: str, source: str, coverage: Coverage | None = None):
        super().__init__(records)
        self.profile, self.shows, self.source, self.coverage = profile, shows, source, coverage


def _identity(r: dict) -> tuple:
    return r["arch"], r["seed"], r["scenario"], r["label"]


def _order(r: dict) -> tuple:  # the order of the files on disk (arch/seedS/scenario/label.json), as load_records
    return r["arch"], f"seed{r['seed']}", r["scenario"], f"{r['label']}.json"


RECORD_FIELDS = ("key",)   # what makes a JSON object a result file (of this configuration or another)


def _read(profile: str, folder) -> tuple[list[dict], list[str]]:
    """(the result records under the profile's folder, the files that are truncated or not result files)."""
    records, unreadable = [], []
    for path in result_files(profile, folder):
        try:
            r = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            r = None
        if isinstance(r, dict) and all(k in r for k in RECORD_FIELDS):
            records.append(r)
        else:
            unreadable.append(shown_path(path))
    return records, unreadable


def current(records: list[dict], profile: Profile, results=None) -> list[dict]:
    """The records whose key is the one the current configuration gives their model (the plan's, `keys`):
    a page never mixes configurations."""
    current_keys = keys(profile, results)
    return [r for r in records
            if current_keys.get(tuple(r.get(k) for k in ("arch", "seed", "scenario", "label"))) == r["key"]]


def _slices(records) -> str:
    """`resnet50 class seed 0: original, retrain, ft; ...`"""
    groups: dict = {}
    for r in sorted(records, key=_order):
        groups.setdefault((r["arch"], r["scenario"], r["seed"]), []).append(r["label"])
    return "; ".join(f"{a} {sc} seed {s}: {', '.join(labels)}" for (a, sc, s), labels in groups.items())


def shown(profile: str, results=None, local=None, show: str = "merged") -> Records:
    """The records of `profile` a page shows: committed (results/), recomputed (results-local/) or merged.

    merged: the committed records, each replaced by a recomputed record of the same model (architecture,
    seed, scenario, label) where there is one; with nothing recomputed, just the committed ones.
    """
    check_choice("show (which results a page shows)", show, SHOW)
    committed_dir, recomputed_dir = committed_folder(results) / profile, local_folder(local) / profile
    p = get_profile(profile)
    (committed, bad_c), (recomputed, bad_r) = _read(profile, results), _read(profile, local_folder(local))
    cov = coverage(profile, results) if committed or bad_c else None
    committed, recomputed = current(committed, p, results), current(recomputed, p, results)
    if bad_r:
        print(f"left out, unreadable (truncated or not a result file): {unreadable_line(bad_r)}", flush=True)
    where_c, where_r = shown_path(committed_dir), shown_path(recomputed_dir)
    if show == "committed" or (show == "merged" and not recomputed):
        records, shows = committed, "committed"
        source = f"Shown: the committed results in `{where_c}` ({len(committed)} files)."
    elif show == "recomputed" or not committed:
        records, shows = recomputed, "recomputed"
        source = (f"Shown: the results recomputed here, in `{where_r}` ({len(recomputed)} files: "
                  f"{_slices(recomputed)}).")
    else:
        mine = {_identity(r) for r in recomputed}
        kept = [r for r in committed if _identity(r) not in mine]
        records, shows = sorted(kept + recomputed, key=_order), "merged"
        source = (f"Shown: the committed results in `{where_c}` merged with {len(recomputed)} files recomputed here "
                  f"(`{where_r}`: {_slices(recomputed)}), which replace the {len(committed) - len(kept)} committed "
                  "files of the same models.")
    if not records:
        have = {"committed": where_c, "recomputed": where_r}.get(show, f"{where_c} or {where_r}")
        raise FairgapError(f"no results of the current configuration of the {profile} profile to show under {have}"
                           + (f" ({cov.sentence()})" if cov is not None else "") + "; set recompute = True to "
                           f"compute one slice here, or run `python -m fairgap_utils compute --profile {profile}`")
    return Records(records, profile, shows, source, cov)


def load(profile: str | None = None, results_dir=None, data_path=None, *, recompute: bool = False, arch=None,
         seed=None, scenario: str = "class", methods=None, show: str = "merged", allow_cpu: bool = False,
         local_dir=None, cache=None, say=print) -> Records:
    """The records a page shows; computes nothing unless `recompute` asks for one slice.

    profile None: `default_profile(computing=False)` (paper when its results exist, else cpu).
    recompute: compute one slice (arch, seed, scenario; methods None: every method of the profile)
      into results-local/ first (`recompute_slice`: it prints the plan and the time estimate).
    show: committed | recomputed | merged (`shown`).
    """
    check_choice("show (which results a page shows)", show, SHOW)
    name = profile or default_profile(results_dir, computing=False, local=local_dir)
    p = get_profile(name)
    note = runtime_note()
    if note:
        say(note)
    if recompute:
        recompute_slice(p, arch, seed, scenario, methods, data_path=data_path, local=local_dir, cache=cache,
                        allow_cpu=allow_cpu, say=say)
    return shown(p.name, results_dir, local_dir, show)


def _slice_profile(p: Profile, arch, seed, scenario, methods) -> Profile:
    """The profile restricted to one (arch, seed, scenario) and `methods`, without the Retrain replicates
    of the noise floor (each a Retrain: they would double a slice's time)."""
    # lazy: recomputing a slice needs the machinery (torch); reading results does not
    from ..computing.pipeline import select
    from ..registries import check_names
    arch = arch or p.archs[0]
    seed = p.seeds[0] if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FairgapError(f"seed {seed!r} is not a whole number; give one seed, e.g. seed = 0")
    check_range("seed", seed, 0, 2 ** 32 - 1)
    if isinstance(methods, str):
        methods = [methods]
    check_names([arch], methods or (), [scenario])
    return select(p, [arch], [seed], [scenario], methods).replace(retrain_replicates=0)


def recompute_slice(profile, arch=None, seed=None, scenario: str = "class", methods=None, data_path=None,
                    local=None, cache=None, allow_cpu: bool = False, device=None, say=print):
    """Compute one slice of a profile into results-local/: print what and how long first. Returns
    `pipeline.Computed`, or None when a GPU profile was asked for on a machine without CUDA (and not allow_cpu).

    The slice: one architecture (None: the profile's first), one seed (None: its first), one scenario,
    `methods` (None: all of the profile's; a method page asks for Retrain and itself), the original
    model always. Files already recomputed with the same configuration are reused.
    """
    import torch  # lazy: computing (a slice, a method) needs torch and the machinery; reading results does not

    from ..computing.pipeline import GPU_PROFILES, estimate_table, estimate_units, hardware, plan
    from ..computing.stage import compute
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    sub = _slice_profile(p, arch, seed, scenario, methods)
    where = local_folder(local)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    units = plan(sub, results=where)
    todo = [u for u in units if not u.present]
    say(f"Recompute: the {p.name} profile's slice {sub.archs[0]} {scenario} seed {sub.seeds[0]}, "
        f"{len(units)} models ({', '.join(u.label for u in units)}), into {shown_path(where / p.name)}, "
        f"on {hardware() if device.type == 'cuda' else 'this CPU'}.")
    if not todo:
        say("All of them are there already, computed with this configuration: nothing to do.")
        return compute(sub, results=where, data_path=data_path, cache=cache, device=device, allow_cpu=True)
    say(f"Estimated time for the {len(todo)} missing, from the throughput measured on this device just now:")
    say(estimate_table(estimate_units(sub, units=units, device=device, cache=cache)))
    if p.name in GPU_PROFILES and device.type != "cuda" and not allow_cpu:
        say(f"Not computed: the {p.name} profile is meant for a GPU and this machine has none (see the estimate). "
            "The page shows the committed results; set allow_cpu = True to compute here anyway.")
        return None
    done = compute(sub, results=where, data_path=data_path, cache=cache, device=device, allow_cpu=True)
    say(done.summary)
    return done


# --------------------------------------------------------------------------- the page "Evaluate your own method"

def tutorial_dir(results=None, local=None, recompute: bool = False) -> Path:
    """results/tutorial (committed), or results-local/tutorial when the reader recomputes."""
    return (local_folder(local) if recompute else committed_folder(results)) / TUTORIAL


def tutorial_profile(profile=None, method: str | None = None, results_dir=None, allow_cpu: bool = False,
                     say=print) -> Profile:
    """The profile the page "Evaluate your own method" computes with: the page's (None: `default_profile`),
    except a GPU profile on a machine without CUDA whose tutorial folder holds no result of `method`:
    then `cpu` (said in one line), as a new method cannot be computed there in minutes.
    """
    import torch  # lazy: computing (a slice, a method) needs torch and the machinery; reading results does not

    from ..computing.pipeline import GPU_PROFILES
    p = profile if isinstance(profile, Profile) else get_profile(profile or default_profile(results_dir,
                                                                                            computing=False))
    folder = tutorial_dir(results_dir) / p.name
    if (p.name in GPU_PROFILES and not torch.cuda.is_available() and not allow_cpu
            and not any(folder.glob(f"*/seed*/class/{method}.json"))):
        say(f"This book shows the {p.name} profile, which needs a GPU to compute a new method, and this machine has "
            "none: this page uses the cpu profile instead.")
        return get_profile("cpu")
    return p


def tutorial(profile, method: str, arch=None, seed: int = 0, compare_with=("ft", "rl"), results_dir=None,
             data_path=None, recompute: bool = False, allow_cpu: bool = False, local_dir=None, cache=None,
             say=print) -> Records:
    """The records of the page "Evaluate your own method": the original, Retrain, `compare_with` and
    `method` (registered in this process), for one architecture and seed, class-wise.

    The references come from the profile's committed results where these hold them with the current
    configuration; everything else, the method included, from results/tutorial/<profile> (committed,
    so a fresh clone computes nothing), computed there only when missing: the method's key includes
    its code and defaults, so an edited method is computed again. recompute=True reads and computes
    them in results-local/tutorial instead, so the method is computed here (once: a rerun reuses it).
    Returns Records with `arch`, `labels` (in page order), `own_original` (the original's record in
    the method's folder) and `original_note` (whether it measures as the committed original).
    """
    import torch  # lazy: computing (a slice, a method) needs torch and the machinery; reading results does not

    from ..computing.pipeline import GPU_PROFILES, estimate_table, estimate_units, plan, select
    from ..computing.stage import compute
    p = profile if isinstance(profile, Profile) else get_profile(profile)
    note = runtime_note()
    if note:
        say(note)
    references = ["retrain", *compare_with]
    arch = arch or p.archs[0]
    folder = tutorial_dir(results_dir, local_dir, recompute)
    sub = select(p, [arch], [seed], ["class"]).replace(retrain_replicates=0)
    committed = [u for u in plan(sub, methods=references, results=results_dir) if u.present]
    need = [m for m in references if m not in {u.label for u in committed}] + [method]
    units = plan(sub, methods=need, results=folder)
    todo = [u for u in units if not u.present]
    if todo:
        if p.name in GPU_PROFILES and not torch.cuda.is_available() and not allow_cpu:
            raise FairgapError(f"{', '.join(u.label for u in todo)} of the {p.name} profile would be computed on a "
                               f"machine without CUDA (hours); use profile = 'cpu', or set allow_cpu = True")
        say(f"Computing {', '.join(u.label for u in todo)} ({p.name} {arch} class seed {seed}) into "
            f"{shown_path(folder / p.name)}; estimated time on this device:")
        say(estimate_table(estimate_units(sub, units=units, cache=cache)))
        compute(sub, methods=need, results=folder, data_path=data_path, cache=cache, allow_cpu=True)
    mine = {u.label: load_json(u.path, u.key) for u in units}
    if any(r is None for r in mine.values()):
        raise FairgapError(f"the result files of {method} under {folder / p.name} are missing after computing them")
    theirs = {u.label: load_json(u.path, u.key) for u in committed}
    labels = ["original", *references, method]
    records = [theirs.get(label) or mine[label] for label in labels]   # a committed reference wins
    source = (f"Shown: {', '.join(theirs) or 'nothing'} from the committed results "
              f"(`{shown_path(committed_folder(results_dir) / p.name)}`); "
              f"{', '.join(label for label in labels if label not in theirs)} from `{shown_path(folder / p.name)}`.")
    out = Records(records, p.name, "recomputed" if recompute else "committed", source)
    out.arch, out.labels, out.own_original = arch, labels, mine["original"]
    out.original_note = _same_original(mine["original"], theirs.get("original"))
    return out


def _same_original(mine: dict, theirs: dict | None) -> str | None:
    """Whether the original this page's method started from measures as the committed one (None: no committed one)."""
    if theirs is None:
        return None
    keys = ("UA", "RA", "TA", "MIA")
    same = all(mine["metrics"][k] == theirs["metrics"][k] for k in keys)
    return (f"**Original model**: the one this page's method started from has RA {mine['metrics']['RA']:.1f} % and "
            f"TA {mine['metrics']['TA']:.1f} %; the committed results' original, RA {theirs['metrics']['RA']:.1f} % "
            f"and TA {theirs['metrics']['TA']:.1f} %. "
            + ("The same model: every method below started from it." if same else
               "Not bit-identical (floating-point sums depend on the machine and the number of threads), so Retrain "
               "and the paper's methods started from a slightly different original, trained with the same "
               "configuration."))


__all__ = ["load", "shown", "recompute_slice", "coverage", "Coverage", "Records", "default_profile", "local_folder",
           "runtime_note", "tutorial", "tutorial_dir", "tutorial_profile", "SHOW"]
