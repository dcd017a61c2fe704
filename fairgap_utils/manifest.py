"""The plan of a profile as a file, `results/<profile>/plan.json`: every result file the profile needs,
with its key, and what the pages say about each method (title, short name, summary, hyperparameters).
Read here without torch.

The planner (`computing.pipeline.plan`) derives the keys from the configuration and the method
registry, which import torch; a page that only reads results needs just the outcome: which file
belongs to which model, and under which key it is current. `computing.pipeline.write_manifest`
writes it whenever a whole profile is computed and before the book's notebooks execute
(`book.runner.run`); the bytes are deterministic, so a rebuild leaves git clean. A manifest is the
plan, not the state: it lists the files the profile needs whether or not they exist yet.

    m = read("cpu")                       # None where no manifest was written (then ask the planner)
    m.keys()                              # {(arch, seed, scenario, label): key}
    m.present()                           # the planned files, each marked present if its file holds its key
    m.methods["keep_gap"]                 # {"title": ..., "short": ...}
    method_facts()                        # {method: title, short, summary, hyperparameters} of every plan
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from .files import load_json, results_dir

NAME = "plan.json"
UNIT_FIELDS = ("arch", "seed", "scenario", "label", "method", "key", "path")


@dataclass(frozen=True)
class Planned:
    """One result file of the plan: its model (arch, seed, scenario, label, method), its key, and its path
    relative to results/<profile>. `present`: the file exists with this key (set by `Manifest.present`)."""
    arch: str
    seed: int
    scenario: str
    label: str
    method: str
    key: str
    path: str
    present: bool = False

    @property
    def chunk(self) -> tuple:
        """(arch, scenario, seed): the slice a GPU session computes at a time."""
        return self.arch, self.scenario, self.seed


@dataclass(frozen=True)
class Manifest:
    profile: str
    folder: Path              # results/<profile>: where the planned files are
    units: tuple              # Planned, in plan order
    methods: dict             # {method: {"title": ..., "short": ...}}, "original" included

    def keys(self) -> dict:
        """{(arch, seed, scenario, label): key} of every planned file."""
        return {(u.arch, u.seed, u.scenario, u.label): u.key for u in self.units}

    def present(self) -> list[Planned]:
        """The planned files, each with `present` set: its file exists and holds its key."""
        return [dataclasses.replace(u, present=load_json(self.folder / u.path, u.key) is not None)
                for u in self.units]


def path(profile: str, results=None) -> Path:
    """results/<profile>/plan.json (`results`: as `files.results_dir`)."""
    return results_dir(results) / profile / NAME


def dumps(profile: str, units: list[dict], methods: dict) -> str:
    """The manifest's text: one planned file per line, keys sorted, so that it diffs by file and the same
    plan always gives the same bytes."""
    head = {"profile": profile, "methods": methods,
            "about": "every result file of the profile with its key, and what the pages say about each method, "
                     "written by the planner; the book reads it instead of importing the planner"}
    lines = [json.dumps({k: u[k] for k in UNIT_FIELDS}, sort_keys=True, ensure_ascii=False) for u in units]
    body = json.dumps(head, sort_keys=True, indent=1, ensure_ascii=False)
    return body[:-2] + ',\n "units": [\n  ' + ",\n  ".join(lines) + "\n ]\n}\n"


def read(profile: str, results=None) -> Manifest | None:
    """The manifest of `profile` under `results`, or None where there is none (or it is unreadable)."""
    where = path(profile, results)
    data = load_json(where)
    if data is None or data.get("profile") != profile or not isinstance(data.get("units"), list):
        return None
    units = tuple(Planned(**{k: u[k] for k in UNIT_FIELDS}) for u in data["units"])
    return Manifest(profile, where.parent, units, dict(data.get("methods", {})))


def method_facts(results=None, profile: str | None = None) -> dict:
    """{method: {"title", "short", "summary", "hyperparameters", "registered"}} in registry order, "original"
    first: what a page says about the methods, from the plans written under `results` (`profile`'s plan, or
    every profile's, the first naming a method giving its entry), so that it needs no registry. A method no
    plan names comes from the registry when this process has loaded it anyway (a method registered here);
    where no plan is written at all, from the registry (which imports torch)."""
    plans = [path(profile, results)] if profile else sorted(results_dir(results).glob(f"*/{NAME}"))
    stamp = tuple((str(w), w.stat().st_mtime_ns) for w in plans if w.is_file())
    loaded = "fairgap_utils.unlearn" in sys.modules
    key = (str(results_dir(results)), profile, stamp, loaded and tuple(sys.modules["fairgap_utils.unlearn"].METHODS))
    if key not in _FACTS:
        facts = {}
        for where in plans:
            m = read(where.parent.name, results)
            for method in ["original", *dict.fromkeys(u.method for u in m.units)] if m else ():
                if method in m.methods:
                    facts.setdefault(method, m.methods[method])
        if loaded or not stamp:
            facts = {**facts, **{m: e for m, e in _registry_facts(profile).items() if m not in facts}}
        _FACTS.clear()
        _FACTS[key] = facts
    return _FACTS[key]


_FACTS: dict = {}


def _registry_facts(profile: str | None) -> dict:
    # lazy: the registry imports torch; only where no plan is written or a method was registered in this process
    from .config import get_profile
    from .registries import method_entries
    from .unlearn import METHODS
    return method_entries(get_profile(profile or "cpu"), METHODS)


def chunks(units, left=None) -> dict:
    """{(arch, scenario, seed): (present, total)} in plan order; `left`: the units missing (default: those
    not present). Units: anything with `chunk` and `present` (a Planned, a `pipeline.Unit`)."""
    missing = {id(u) for u in (left if left is not None else [u for u in units if not u.present])}
    out = {}
    for u in units:
        present, total = out.get(u.chunk, (0, 0))
        out[u.chunk] = (present + (id(u) not in missing), total + 1)
    return out


def missing_chunks(units, left=None) -> str:
    """One line naming every chunk with missing result files: `resnet50 class seed 0 (17 of 17 missing), ...`."""
    return ", ".join(f"{a} {sc} seed {s} ({total - present} of {total} missing)"
                     for (a, sc, s), (present, total) in chunks(units, left).items() if present < total)


__all__ = ["NAME", "Planned", "Manifest", "path", "dumps", "read", "method_facts", "chunks", "missing_chunks"]
