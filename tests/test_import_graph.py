"""The packages import one another one way only, and only the CLI imports the CLI and console.

Every module under src/llmselect is read with `ast`: imports inside functions count (they run
all the same), those under `if TYPE_CHECKING:` do not (they never run). A package
(`llmselect.finetune`) is one node, with everything under it; a top-level module
(`llmselect.errors`) is a node of its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import llmselect

SRC = Path(llmselect.__file__).parent
ROOT = "llmselect"

KNOWN_CYCLES: dict[frozenset[str], str] = {}
"""Package cycles that exist today, each with the reason it is still there; a new one fails."""

COMMAND_LINE = {"llmselect.cli", "llmselect.__main__"}
PRESENTATION = {"llmselect.cli", "llmselect.present"}
JOB_CALLERS = {"llmselect.jobs", "llmselect.demo"}
"""Besides the command line: the jobs themselves, and the demo (a job of jobs)."""
"""What only the command line may import: below it, everything returns typed data."""

KNOWN_PRESENTATION_IMPORTS: dict[str, str] = {
    "llmselect.report.html": "a renderer too: strips terminal controls with printable()",
    "llmselect.report.markdown": "a renderer too: strips terminal controls with printable()",
}
"""Modules that import the CLI or the presentation layer today, with the reason; a new one fails."""

Edges = dict[str, dict[str, set[str]]]
"""node -> node it imports -> the modules of the first node that import it."""


def module_name(path: Path) -> str:
    parts = [ROOT, *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def node(module: str) -> str:
    """`llmselect.finetune.loop` -> `llmselect.finetune`; a top-level module is its own."""
    return ".".join(module.split(".")[:2])


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import, at any depth, except those that only the type checker reads."""
    if isinstance(tree, ast.Import | ast.ImportFrom):
        yield tree
        return
    inside = tree.orelse if isinstance(tree, ast.If) and _type_checking(tree.test) else None
    for child in inside if inside is not None else ast.iter_child_nodes(tree):
        yield from _import_statements(child)


def _is_module(name: str) -> bool:
    relative = SRC.joinpath(*name.split(".")[1:])
    return relative.is_dir() or relative.with_suffix(".py").is_file()


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """The llmselect modules that `module` (whose text is `source`) imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for statement in _import_statements(ast.parse(source)):
        if isinstance(statement, ast.Import):
            found |= {alias.name for alias in statement.names}
            continue
        target = statement.module or ""
        if statement.level:  # relative: `from . import x`, `from ..y import z`
            base = package.split(".")[: len(package.split(".")) - statement.level + 1]
            target = ".".join([*base, *filter(None, [statement.module])])
        for alias in statement.names:
            # `from llmselect import errors` imports a module; `import __version__` does not.
            submodule = f"{target}.{alias.name}"
            found.add(submodule if _is_module(submodule) else target)
    return {m for m in found if m == ROOT or m.startswith(ROOT + ".")}


def module_imports() -> dict[str, set[str]]:
    """Each module under src/llmselect and the llmselect modules it imports."""
    return {
        module_name(path): imports_of(
            path.read_text(encoding="utf-8"),
            module_name(path),
            is_package=path.name == "__init__.py",
        )
        for path in sorted(SRC.rglob("*.py"))
    }


def package_edges(imports: dict[str, set[str]]) -> Edges:
    edges: Edges = {}
    for module, targets in imports.items():
        for target in targets:
            if node(target) != node(module):
                edges.setdefault(node(module), {}).setdefault(node(target), set()).add(module)
    return edges


def cycles(edges: Edges) -> list[frozenset[str]]:
    """The groups of two or more nodes that reach each other (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = {stack.pop()}
            while v not in group:
                group.add(stack.pop())
            if len(group) > 1:
                found.append(frozenset(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def describe(group: frozenset[str], edges: Edges) -> str:
    """The shortest cycle from the group's first node back to it, a module behind each step."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    for here in queue:  # breadth first: the queue grows while it is read
        for there in sorted(edges.get(here, {})):
            if there == start:
                loop = [*paths[here], start]
                steps = [f"{b} ({min(edges[a][b])} imports it)" for a, b in pairwise(loop)]
                return " -> ".join([start, *steps])
            if there in group and there not in paths:
                paths[there] = [*paths[here], there]
                queue.append(there)
    raise ValueError(f"{sorted(group)} is not a cycle")


def test_no_cycle_between_packages() -> None:
    edges = package_edges(module_imports())
    new = [describe(group, edges) for group in cycles(edges) if group not in KNOWN_CYCLES]
    assert not new, "packages import each other in a cycle:\n" + "\n".join(new)


def test_only_the_command_line_imports_the_cli_and_the_console() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in module_imports().items()
        for target in targets
        if node(target) in PRESENTATION
        and node(module) not in COMMAND_LINE | {node(target)}
        and module not in KNOWN_PRESENTATION_IMPORTS
    )
    assert not wrong, "only the command line may import these:\n" + "\n".join(wrong)


def test_no_stage_imports_a_job() -> None:
    """The jobs run the stages one after another; a stage that called a job would run upward."""
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in module_imports().items()
        for target in targets
        if node(target) == "llmselect.jobs" and node(module) not in COMMAND_LINE | JOB_CALLERS
    )
    assert not wrong, "only the command line and the demo run jobs:\n" + "\n".join(wrong)


def test_imports_in_functions_count_and_type_checking_ones_do_not() -> None:
    source = """
from typing import TYPE_CHECKING
import llmselect.errors
from llmselect import __version__, units
from . import ranking
from ..catalog import schema
if TYPE_CHECKING:
    from llmselect.finetune.config import TrainRun
else:
    from llmselect.quiet import quiet_transformers
def run() -> None:
    try:
        from llmselect.finetune.loop import train
    except ImportError:
        import llmselect.console
"""
    assert imports_of(source, "llmselect.selection.pipeline") == {
        "llmselect.errors",
        "llmselect",
        "llmselect.units",
        "llmselect.selection.ranking",
        "llmselect.catalog.schema",
        "llmselect.quiet",
        "llmselect.finetune.loop",
        "llmselect.console",
    }


def test_a_cycle_is_found_and_named() -> None:
    imports = {
        "llmselect.a.x": {"llmselect.b"},
        "llmselect.b": {"llmselect.c.y"},
        "llmselect.c.y": {"llmselect.a.z", "llmselect.c.w"},
        "llmselect.d": {"llmselect.a.x"},
    }
    edges = package_edges(imports)
    assert cycles(edges) == [frozenset({"llmselect.a", "llmselect.b", "llmselect.c"})]
    assert describe(cycles(edges)[0], edges) == (
        "llmselect.a -> llmselect.b (llmselect.a.x imports it) -> "
        "llmselect.c (llmselect.b imports it) -> llmselect.a (llmselect.c.y imports it)"
    )


def test_every_module_of_the_cli_package_is_the_command_line() -> None:
    modules = [m for m in module_imports() if m.startswith("llmselect.cli.")]
    assert modules, "the CLI is a package, one module per command group"
    assert {node(m) for m in modules} <= COMMAND_LINE
