"""The import graph drawn from the code: no cycle, and no module imports one of a layer above it
(the layers as docs/design.md names them). A move that breaks either fails here."""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src"

# Bottom to top; a module may import its own layer and those below. First match wins.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "interfaces",
        [
            "rollcall.*.views",
            "rollcall.callpower.intake",
            "rollcall.console*",
            "rollcall.cli*",
            "rollcall.operations",
            "rollcall.app",
            "rollcall.__main__",
        ],
    ),
    (
        "interface seam",
        ["rollcall.services", "rollcall.http", "rollcall.api", "rollcall.server", "rollcall.monitoring"],
    ),
    ("the whole database: backups", ["rollcall.backups*"]),
    ("all tables", ["rollcall.models"]),
    (
        "sources and nouns over calls",
        ["rollcall.callpower*", "rollcall.members*", "rollcall.webhooks*"],
    ),
    ("the call pipeline", ["rollcall.calls*"]),
    ("nouns", ["rollcall.activity*", "rollcall.events", "rollcall.sessions", "rollcall.reports*"]),
    (
        "foundation",
        [
            "rollcall",
            "rollcall.times",
            "rollcall.errors",
            "rollcall.fields",
            "rollcall.config",
            "rollcall.logs",
            "rollcall.phones",
            "rollcall.dialect",
            "rollcall.db",
            "rollcall.documents",
            "rollcall.paging",
            "rollcall.spreadsheets",
            "rollcall.limits",
            "rollcall.processes",
            "rollcall.progress",
            "rollcall.credentials",
            "rollcall.glance",
            "rollcall.metrics",
        ],
    ),
]


def modules() -> dict[str, Path]:
    found = {}
    for path in (SOURCE / "rollcall").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.with_suffix("").relative_to(SOURCE).parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every rollcall module a module imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def layer(module: str) -> int:
    """How high a module stands (the foundation is 1)."""
    for index, (_, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatch(module, pattern) for pattern in patterns):
            return len(LAYERS) - index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/design.md")


def test_every_module_imports_only_its_layer_and_those_below() -> None:
    known = modules()
    name = {module: LAYERS[len(LAYERS) - layer(module)][0] for module in known}
    upward = [
        f"{module} ({name[module]}) imports {target} ({name[target]})"
        for module, path in known.items()
        for target in imports(path, known)
        if target != module and layer(target) > layer(module)
    ]
    assert upward == []


def test_there_is_no_import_cycle() -> None:
    known = modules()
    graph = {module: imports(path, known) - {module} for module, path in known.items()}
    # A module imports a package's __init__ when it imports a submodule: not an edge of its own.
    graph = {module: {t for t in targets if not module.startswith(t + ".")} for module, targets in graph.items()}
    cycles = []
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_pipeline_and_the_nouns_know_nothing_of_callpower() -> None:
    """The pipeline knows a source only through `calls.source.Source`; activity is member
    activity, whatever sent the calls. (Their routes may use the contract's shapes.)"""
    known = modules()
    leaks = [
        f"{module} imports {target}"
        for module, path in known.items()
        if module.startswith(("rollcall.calls", "rollcall.activity")) and not module.endswith(".views")
        for target in imports(path, known)
        if target.startswith("rollcall.callpower")
    ]
    assert leaks == []
