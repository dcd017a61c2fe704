"""Under every figure and verdict of the book, the code that produced it, in a collapsed block.

A reader traces any figure or verdict to the function that drew or decided it, with a link to its
source in the repository at the commit that ran it, and to the result files it read (the model: the
NeuroLibre T1-mapping book's collapsed "the code that generated this figure"). Nothing in the block
is typed: the function's name comes from the function object (`__module__`, `__qualname__`), its file
and lines from `inspect`, the files, profile and seeds from the records, the commit from git, and the
repository's URL from _config.yml. Where git or the repository is not there (a wheel, a copy without
.git), the commit is "unknown" and the block still renders.

    captions.produced_by(plots.claim_effects, records)                       # under a figure
    captions.produced_by([verdicts.all_claims, verdicts.scorecard], records, what="verdict")
    captions.produced_by(plots.epsilon_by_layer, records, scenario="class")  # the call read class-wise files

Keyword filters say which of the page's records the call was given (fields of a result record: arch,
seed, scenario, label, method; one value or a list; strings are glob patterns, `keep_gap*`), so the
block names and counts exactly those files. The block is HTML (<details>), which the Jupyter Book,
Jupyter and Colab all render collapsed; its plain-text form is the same sentences.
"""
from __future__ import annotations

import functools
import html
import inspect
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from ..errors import FairgapError, check_choice
from . import verdicts
from .sources import shown_path

ROOT = Path(__file__).resolve().parents[2]   # the repository (or the folder holding the installed package)
FIELDS = ("arch", "seed", "scenario", "label", "method")   # what a filter may name
KINDS = {"figure": ("this figure", "Drawn by"), "table": ("this table", "Computed by"),
         "verdict": ("this verdict", "Decided by")}
UNKNOWN = "unknown"


CODE = ("fairgap_utils", "notebooks", "pyproject.toml")   # what produces a page: the package and the source notebooks


@functools.lru_cache(maxsize=8)
def git_commit(root: Path = ROOT, git: str = "git") -> str:
    """The last commit that changed the code (`CODE`) of the repository at `root`, 12 hex digits, with
    "+ uncommitted changes" when the working tree's code differs from it; "unknown" when git is missing,
    fails, or `root` is not the top of a repository (an installed package inside some other repository
    must not report that repository's commit). Never raises.

    The code's commit rather than HEAD: committing the rebuilt book (or new result files) changes HEAD but
    not the code, so a rebuild from unchanged code and results gives the same bytes."""
    def run(*args) -> str:
        return subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()
    try:
        top = run("rev-parse", "--show-toplevel")
        if not top or Path(top).resolve() != Path(root).resolve():
            return UNKNOWN
        commit = run("log", "-1", "--format=%H", "--", *CODE)[:12]
        if not commit:
            return UNKNOWN
        dirty = run("status", "--porcelain", "--untracked-files=no", "--", *CODE)
        return commit + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError, ValueError):
        return UNKNOWN


@functools.lru_cache(maxsize=4)
def repository(root: Path = ROOT) -> dict:
    """The `repository` block of _config.yml (url, branch); empty when there is no readable _config.yml."""
    try:
        import yaml  # lazy: PyYAML only to read _config.yml
        cfg = yaml.safe_load((Path(root) / "_config.yml").read_text())
        repo = cfg.get("repository") or {}
        return dict(repo) if isinstance(repo, dict) and repo.get("url") else {}
    except Exception:   # a missing, unreadable or malformed file: no link, never a failed page
        return {}


@dataclass(frozen=True)
class Source:
    """Where a function is defined: its dotted name, its file in the repository and its lines."""
    name: str                  # module.qualname
    path: str | None           # relative to the repository; None outside it (defined on the page, a library)
    lines: tuple | None        # (first, last)

    def link(self, commit: str, repo: dict) -> str | None:
        """The source's URL in the repository, at the commit when known (a permalink), else on the branch."""
        if not (self.path and repo.get("url")):
            return None
        ref = commit.split()[0] if commit != UNKNOWN else repo.get("branch", "main")
        anchor = f"#L{self.lines[0]}-L{self.lines[1]}" if self.lines else ""
        return f"{repo['url'].rstrip('/')}/blob/{ref}/{self.path}{anchor}"


def source_of(f, root: Path = ROOT) -> Source:
    """The Source of a function (or any object with __module__ and __qualname__), read from the object."""
    if not callable(f) or not hasattr(f, "__qualname__"):
        raise FairgapError(f"produced_by names functions; got {f!r} ({type(f).__name__}), which is not a function")
    target = inspect.unwrap(f)
    name = f"{getattr(target, '__module__', None) or '?'}.{target.__qualname__}"
    path = lines = None
    try:
        file = Path(inspect.getsourcefile(target)).resolve()
        rel = file.relative_to(Path(root).resolve())
        code, first = inspect.getsourcelines(target)
        path, lines = rel.as_posix(), (first, first + len(code) - 1)
    except (TypeError, OSError, ValueError):   # built-in, defined in a notebook, or outside the repository
        pass
    return Source(name, path, lines)


def select(records, **where) -> list[dict]:
    """The records a call was given: those whose fields match every filter (a value or a list of them;
    strings are glob patterns)."""
    for field in where:
        check_choice("record field to filter on", field, FIELDS)
    wanted = {f: list(v) if isinstance(v, (list, tuple, set, frozenset)) else [v] for f, v in where.items()}

    def matches(value, pattern) -> bool:
        return fnmatch(str(value), pattern) if isinstance(pattern, str) else value == pattern
    return [r for r in records if all(any(matches(r.get(f), p) for p in ps) for f, ps in wanted.items())]


def _natural(value: str):
    return (0, int(value), "") if value.isdigit() else (1, 0, value)


def _alternatives(values) -> str:
    values = sorted({str(v) for v in values}, key=_natural)
    return values[0] if len(values) == 1 else "{" + ",".join(values) + "}"


def files_glob(chosen: list[dict], where: dict) -> str:
    """A glob of the chosen files, relative to the profile's folder (<arch>/seed<s>/<scenario>/<label>.json):
    a field is spelled as its filter where one chose it (a label chosen by method: the labels chosen), `*`
    elsewhere."""
    parts = []
    for field, fmt in (("arch", "{}"), ("seed", "seed{}"), ("scenario", "{}"), ("label", "{}.json")):
        if field in where:
            value = where[field]
            part = _alternatives(value if isinstance(value, (list, tuple, set, frozenset)) else [value])
        elif field == "label" and "method" in where and chosen:
            part = _alternatives(r["label"] for r in chosen)
        else:
            part = "*"
        parts.append(fmt.format(part))
    return "/".join(parts)


def span(numbers) -> str:
    """0, 1, 2, 3 as `0–3`; gaps kept: `0–2, 5`."""
    numbers, out = sorted(set(numbers)), []
    for n in numbers:
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}, {b}" if b == a + 1 else f"{a}–{b}" for a, b in out)


def _folder(records) -> str | None:
    """The folder the records were read from, as a page prints it; None when they come from several."""
    cov = getattr(records, "coverage", None)
    if cov is None or getattr(records, "shows", "committed") != "committed":
        return None
    return shown_path(cov.folder)


@dataclass(frozen=True)
class Caption:
    """The block under one figure or verdict: `.text` (plain sentences), `.html` (collapsed <details>)."""
    summary: str
    items: tuple   # ((plain text, html), ...)

    @property
    def text(self) -> str:
        return self.summary + "\n" + "\n".join(f"- {plain}" for plain, _ in self.items)

    @property
    def html(self) -> str:
        body = "".join(f"<li>{markup}</li>" for _, markup in self.items)
        return (f'<details class="fairgap-code"><summary>{html.escape(self.summary)}</summary>'
                f'<ul style="margin-top: 0.3em">{body}</ul></details>')

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def caption(functions, records, *, what: str = "figure", note: str | None = None, also=(), root: Path = ROOT,
            git: str = "git", **where) -> Caption:
    """The block for a figure or verdict produced by `functions` (one or a list, in the order they ran) from
    the records that `where` selects of `records` (a page's `Records` or a list of result records), and
    from the files `also` names (paths other than result files, e.g. a calibration outcome)."""
    check_choice("kind of output (what)", what, KINDS)
    functions = list(functions) if isinstance(functions, (list, tuple)) else [functions]
    sources = [source_of(f, root) for f in functions]
    commit, repo = git_commit(Path(root), git), repository(Path(root))
    thing, verb = KINDS[what]
    items = []
    if sources:
        plain, marks = [], []
        for s in sources:
            where_defined = (f"{s.path}, lines {s.lines[0]}–{s.lines[1]}" if s.path else
                             "defined on this page" if s.name.startswith("__main__.") else "outside the repository")
            plain.append(f"{s.name} ({where_defined})")
            url = s.link(commit, repo)
            code = f"<code>{html.escape(s.name)}</code>"
            marks.append((f'<a href="{html.escape(url)}">{code}</a>' if url else code)
                         + f" ({html.escape(where_defined)})")
        items.append((f"{verb} " + ", then ".join(plain), f"{verb} " + ", then ".join(marks)))
    else:
        items.append((f"{verb} the code of the cell above, on this page",
                      f"{verb} the code of the cell above, on this page"))
    chosen = select(records, **where)
    profile = getattr(records, "profile", None) or next((r.get("profile") for r in records), None) or UNKNOWN
    folder, glob = _folder(records), files_glob(chosen, where)
    pattern = f"{folder}/{glob}" if folder else glob
    if chosen:
        seeds = span(r["seed"] for r in chosen)
        archs = ", ".join(sorted({r["arch"] for r in chosen}))
        files = (f"{len(chosen)} result file{'s' if len(chosen) != 1 else ''} of the {profile} profile, "
                 f"seed{'s' if len({r['seed'] for r in chosen}) > 1 else ''} {seeds} ({archs}): ")
    else:
        files = f"no result file of the {profile} profile matches: "
    source = getattr(records, "source", None) if folder is None else None
    tail = f" {source}" if source else ""
    items.append((f"Read {files}{pattern}{tail}",
                  f"Read {html.escape(files)}<code>{html.escape(pattern)}</code>{html.escape(tail)}"))
    also = [Path(p) for p in also]
    if also:
        named = ", ".join(shown_path(p) for p in also)
        count = f"{len(also)} other file{'s' if len(also) != 1 else ''}"
        items.append((f"Also read {count}: {named}", f"Also read {count}: <code>{html.escape(named)}</code>"))
    if note:
        items.append((note, html.escape(note)))
    items.append((f"Code at git commit {commit}", f"Code at git commit <code>{html.escape(commit)}</code>"))
    return Caption(f"The code that generated {thing}", tuple(items))


def produced_by(functions, records, *, what: str = "figure", note: str | None = None, also=(), **where) -> None:
    """Show the collapsed block under the figure or verdict just displayed (one call per figure).

    functions: the function(s) that drew or decided it, e.g. `plots.claim_effects` or
    `[verdicts.all_claims, verdicts.scorecard]`; an empty list: drawn by the cell's own code.
    what: figure | table | verdict. note: one more line (what the call read of each file, say).
    also: files other than result files the call read. where: the records the call was given (see `select`)."""
    from IPython.display import display  # lazy: IPython only in a notebook kernel
    display(caption(functions, records, what=what, note=note, also=also, **where))


def verdict_function(claim):
    """The function of `verdicts` that decides one of the paper's claims (`claim_c1` for C1), read from the
    module by the claim's name; a claim of another name is one line naming the claims there are."""
    f = getattr(verdicts, f"claim_{str(claim.claim).lower()}", None)
    if f is None:
        known = sorted(n.removeprefix("claim_").upper() for n in dir(verdicts) if n.startswith("claim_c"))
        raise FairgapError(f"no function of verdicts decides claim {claim.claim!r}; the paper's claims are "
                           f"{', '.join(known)} (pass the deciding function to produced_by instead)")
    return f


def provenance_rows(root: Path = ROOT) -> dict:
    """Rows for a page's provenance table: the commit of the code that built the page."""
    commit = git_commit(Path(root))
    repo = repository(Path(root))
    sha = commit.split()[0]
    where = f" ({repo['url'].rstrip('/')}/tree/{sha})" if repo.get("url") and commit != UNKNOWN else ""
    return {"code (git commit)": commit + where}


__all__ = ["produced_by", "caption", "Caption", "git_commit", "provenance_rows", "select", "files_glob",
           "source_of", "Source", "verdict_function"]
