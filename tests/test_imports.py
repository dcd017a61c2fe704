"""The package's import graph: no cycle, and every import inside a function says why it is there.

Read from the source with `ast` (nothing is imported): every `import` and `from ... import` of a
`fairgap_utils` module, at the top of a module or inside a function, is an arrow from the importing
module to the imported one (`from . import x` points at the sub-module `x` where there is one).
A cycle, even through an import inside a function, means two modules that cannot be understood (or
tested, or moved) one without the other. An import inside a function is there only on purpose: to
keep torch (or another heavy library) out of a light path, or to load an optional dependency when
used; a comment on its line or the line above says so, beginning with `lazy:`.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "fairgap_utils"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str) -> list[tuple[str, int, bool]]:
    """(imported fairgap_utils module, line, inside a function) for every import of the module `name`."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(child, name, is_package)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names]
            for target in targets:
                while target and target not in MODULES:      # fairgap_utils.x.y -> the module that defines it
                    target = target.rpartition(".")[0]
                if target.startswith("fairgap_utils") and target != name:
                    out.append((target, child.lineno, in_function))
            visit(child, inner)
    visit(tree, False)
    return out


def graph() -> dict[str, set[str]]:
    return {name: {target for target, _, _ in imports(name)} for name in MODULES}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def test_the_reader_sees_every_kind_of_import():
    """The reader itself: a cycle through a function-level import is found, as is a top-level one."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    found = {(t, inner) for t, _, inner in imports("fairgap_utils.computing.launcher")}
    assert ("fairgap_utils.computing.artifacts", False) in found          # `from . import artifacts as A`
    assert ("fairgap_utils.computing.stage", True) in found               # inside compute_units


def test_no_import_cycle():
    found = cycles(graph())
    assert not found, "import cycles (each a set of modules importing one another): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_config_is_a_leaf():
    """config imports nothing of the package but errors and definitions (themselves leaves)."""
    assert graph()["fairgap_utils.config"] <= {"fairgap_utils.errors", "fairgap_utils.definitions"}
    for leaf in ("fairgap_utils.errors", "fairgap_utils.definitions"):
        assert graph()[leaf] <= {"fairgap_utils.errors"}


def test_the_science_imports_no_machinery():
    """The top level (the science, config, the public api aside) and the book's reading modules never import
    `computing` at the top of a module."""
    for name in MODULES:
        if name == "fairgap_utils" or name.startswith(("fairgap_utils.computing", "fairgap_utils.api",
                                                          "fairgap_utils.__main__")):
            continue            # the package's own imports are for type checkers only (`if TYPE_CHECKING:`)
        top = [t for t, _, inner in imports(name) if not inner]
        assert not [t for t in top if t.startswith("fairgap_utils.computing")], name


# book/captions.py is being written by another engineer (issue 24, item 8): its imports get their reasons there
IN_PROGRESS: set = set()   # modules whose lazy imports are still being given reasons


def test_every_import_inside_a_function_says_why():
    missing = set()
    for name, path in MODULES.items():
        if name in IN_PROGRESS:
            continue
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    here = lines[inner.lineno - 1]
                    above = lines[inner.lineno - 2].strip() if inner.lineno > 1 else ""
                    block = _import_block_comment(lines, inner.lineno)
                    if "lazy:" not in here and not above.startswith("# lazy:") and not block:
                        missing.add(f"{path.relative_to(REPO)}:{inner.lineno}: {here.strip()}")
    assert not missing, (f"{len(missing)} imports inside functions without a `# lazy: <reason>` comment "
                         "(on the line, or above the block of imports it belongs to):\n" + "\n".join(sorted(missing)))


def _import_block_comment(lines: list[str], lineno: int) -> bool:
    """A `# lazy:` comment above a run of import lines (blank lines between groups allowed), or on one of
    them, covers each import of the run."""
    i = lineno - 2
    while i >= 0 and (lines[i].strip().startswith(("import ", "from ")) or not lines[i].strip()):
        if "# lazy:" in lines[i]:
            return True
        i -= 1
    return i >= 0 and lines[i].strip().startswith("# lazy:")
