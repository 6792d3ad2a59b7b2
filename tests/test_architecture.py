"""The shape of the code: no import cycles, imports only down the layers, vendors at the edge.

The import graph of bot/, handlers/ and schedules/ is read with ast: every `import` and
`from ... import`, at the top of a module, inside a function or under `if TYPE_CHECKING:`,
with relative imports resolved. Layers, low to high (a module may import its own layer or a
lower one, never a higher one):

    foundation  bot.store, bot.process, bot.settings, bot.config (and the bare bot package)
    kernel      bot.kernel
    mail        bot.mail
    engine      bot.engine
    domain      bot.cases, bot.agencies, bot.ballots, bot.report, bot.digest, bot.papers
    commands    bot.commands
    interfaces  bot.cli, bot.web, bot.service, handlers, schedules

bot.adapters is outside the stack: it imports only bot.adapters, bot.kernel, bot.settings and
bot.config, and only bot.service imports it. handlers and schedules are discovered at run time,
so nothing under bot/ imports them. Each rule is a test of its own that lists every offending
import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "schedules")

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("bot.store", "bot.process", "bot.settings", "bot.config")),
    ("kernel", ("bot.kernel",)),
    ("mail", ("bot.mail",)),
    ("engine", ("bot.engine",)),
    ("domain", ("bot.cases", "bot.agencies", "bot.ballots", "bot.report", "bot.digest",
                "bot.papers")),
    ("commands", ("bot.commands",)),
    ("interfaces", ("bot.cli", "bot.web", "bot.service", "handlers", "schedules")),
)
# The package roots themselves (their __init__.py) sit at the bottom of the stack.
ROOT_PACKAGES = {"bot": "foundation"}
ADAPTERS = "bot.adapters"
ADAPTERS_MAY_IMPORT = ("bot.adapters", "bot.kernel", "bot.settings", "bot.config")
ADAPTERS_IMPORTED_BY = ("bot.service",)
DISCOVERED = ("handlers", "schedules")
# Third-party libraries that only the adapters may import, and apscheduler's one home.
VENDOR_LIBRARIES = ("exchangelib", "slack_bolt", "slack_sdk", "msal")
SCHEDULER_LIBRARY = "apscheduler"
SCHEDULER_HOME = "bot.service.run"
MAX_FILES_IN_BOT = 8
MAX_LINES = 500


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. bot.store.db; a package is named by its folder
    path: Path  # relative to the root the graph was read from
    is_package: bool


@dataclass(frozen=True)
class Import:
    importer: Module
    line: int
    imported: str  # the full dotted name as written (resolved when relative)
    target: str | None  # the module of the graph it reaches, None for a library

    def describe(self) -> str:
        return f"{self.importer.path}:{self.line} {self.importer.name} imports {self.imported}"


def in_package(name: str, package: str) -> bool:
    """Tell whether a dotted name is the package or inside it."""
    return name == package or name.startswith(package + ".")


def modules_under(root: Path, packages: Iterable[str]) -> dict[str, Module]:
    """Return every module of the packages under root, by dotted name."""
    modules: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            parts = list(relative.with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            modules[name] = Module(name, relative, is_package)
    return modules


def owning_module(name: str, modules: Mapping[str, Module]) -> str | None:
    """Return the longest module of the graph that the dotted name is or is inside."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(module: Module, source: str, modules: Mapping[str, Module]) -> Iterator[Import]:
    """Yield every import in a module's source, wherever it stands, relative ones resolved."""
    for node in ast.walk(ast.parse(source, str(module.path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, node.lineno, alias.name,
                             owning_module(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(module, node.level, node.module)
            for alias in node.names:
                # `from package import name` reaches the submodule when there is one.
                full = f"{base}.{alias.name}"
                if full in modules:
                    yield Import(module, node.lineno, full, full)
                else:
                    yield Import(module, node.lineno, base, owning_module(base, modules))


def resolve_from(module: Module, level: int, name: str | None) -> str:
    """Return the absolute dotted name of `from <level dots><name> import ...` in module."""
    if level == 0:
        assert name is not None
        return name
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    parts = package.split(".")
    if level - 1 >= len(parts):
        raise ValueError(f"{module.path}: relative import beyond the top-level package")
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{name}" if name else base


def read_graph(root: Path, packages: Iterable[str] = PACKAGES) -> tuple[dict[str, Module],
                                                                          list[Import]]:
    """Return the modules under root and every import they make."""
    modules = modules_under(root, packages)
    found: list[Import] = []
    for module in modules.values():
        source = (root / module.path).read_text(encoding="utf-8")
        found.extend(imports_of(module, source, modules))
    # One import per line and name (`from m import a, b` is one import of m), in file order.
    unique = {(item.importer.path, item.line, item.imported): item for item in found}
    return modules, [unique[key] for key in sorted(unique)]


# The rules, each returning readable lines, one per offence (empty when the rule holds).


def import_cycles(modules: Mapping[str, Module], found: Iterable[Import]) -> list[str]:
    """Name every strongly connected component of more than one module, with its imports."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    where: dict[tuple[str, str], Import] = {}
    for item in found:
        if item.target is not None and item.target != item.importer.name:
            edges[item.importer.name].add(item.target)
            where.setdefault((item.importer.name, item.target), item)
    lines = []
    for component in strongly_connected(edges):
        if len(component) < 2:
            continue
        members = set(component)
        inside = sorted((where[(a, b)] for a in members for b in edges[a] if b in members),
                        key=lambda item: (item.importer.path, item.line))
        lines.append(f"cycle of {len(members)} modules: {', '.join(sorted(members))}")
        lines.extend(f"    {item.describe()}" for item in inside)
    return lines


def strongly_connected(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of a graph (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def layer_of(name: str) -> tuple[int, str] | None:
    """Return the rank and name of a module's layer, None when it is in none."""
    if name in ROOT_PACKAGES:
        label = ROOT_PACKAGES[name]
        return next((rank, label) for rank, (layer, _) in enumerate(LAYERS) if layer == label)
    for rank, (layer, packages) in enumerate(LAYERS):
        if any(in_package(name, package) for package in packages):
            return rank, layer
    return None


def layer_violations(modules: Mapping[str, Module], found: Iterable[Import]) -> list[str]:
    """Name every module in no layer and every import of a higher layer than the importer's."""
    lines = [f"{module.path} {name} is in no layer (nor bot.adapters): add it to a layer"
             for name, module in sorted(modules.items(), key=lambda pair: pair[1].path)
             if layer_of(name) is None and not in_package(name, ADAPTERS)]
    for item in found:
        importer, target = item.importer.name, item.target
        if target is None or in_package(importer, ADAPTERS) or in_package(target, ADAPTERS):
            continue
        mine, theirs = layer_of(importer), layer_of(target)
        if mine is None or theirs is None or theirs[0] <= mine[0]:
            continue
        lines.append(f"{item.describe()}: {mine[1]} may not import {theirs[1]}")
    return lines


def adapter_violations(found: Iterable[Import]) -> list[str]:
    """Name every import out of bot.adapters beyond its allowance, and into it but from service."""
    lines = []
    for item in found:
        importer, target = item.importer.name, item.target
        if target is None:
            continue
        if in_package(importer, ADAPTERS):
            if not any(in_package(target, allowed) for allowed in ADAPTERS_MAY_IMPORT):
                lines.append(f"{item.describe()}: bot.adapters may import only"
                             f" {', '.join(ADAPTERS_MAY_IMPORT)}")
        elif in_package(target, ADAPTERS):
            if not any(in_package(importer, allowed) for allowed in ADAPTERS_IMPORTED_BY):
                lines.append(f"{item.describe()}: only {', '.join(ADAPTERS_IMPORTED_BY)}"
                             " may import bot.adapters")
    return lines


def discovered_violations(found: Iterable[Import]) -> list[str]:
    """Name every import of handlers or schedules from under bot/."""
    return [
        f"{item.describe()}: {item.target.split('.')[0]} is discovered at run time, not imported"
        for item in found
        if item.target is not None and in_package(item.importer.name, "bot")
        and any(in_package(item.target, package) for package in DISCOVERED)
    ]


def library_violations(found: Iterable[Import]) -> list[str]:
    """Name every vendor SDK imported outside bot.adapters, apscheduler outside its home."""
    lines = []
    for item in found:
        if item.target is not None:
            continue
        library = item.imported.split(".")[0]
        if library in VENDOR_LIBRARIES and not in_package(item.importer.name, ADAPTERS):
            lines.append(f"{item.describe()}: {library} is for bot.adapters only")
        if library == SCHEDULER_LIBRARY and item.importer.name != SCHEDULER_HOME:
            lines.append(f"{item.describe()}: {library} is for {SCHEDULER_HOME} only")
    return lines


def long_modules(root: Path, modules: Iterable[Module], limit: int = MAX_LINES) -> list[str]:
    """Name every module longer than the limit, longest first."""
    counted = [(len((root / module.path).read_text(encoding="utf-8").splitlines()), module)
               for module in modules]
    return [f"{module.path}: {lines} lines (at most {limit})"
            for lines, module in sorted(counted, key=lambda pair: (-pair[0], pair[1].name))
            if lines > limit]


def fail_listing(title: str, lines: list[str]) -> None:
    """Fail with every offence, one a line (indented lines detail the one above)."""
    offences = [line for line in lines if not line.startswith(" ")]
    if offences:
        pytest.fail(f"{title} ({len(offences)}):\n" + "\n".join(lines), pytrace=False)


# The rules on this repository.


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, Module], list[Import]]:
    return read_graph(ROOT)


def test_there_are_no_import_cycles(graph: tuple[dict[str, Module], list[Import]]) -> None:
    fail_listing("import cycles", import_cycles(*graph))


def test_imports_go_down_the_layers(graph: tuple[dict[str, Module], list[Import]]) -> None:
    fail_listing("imports breaking the layer rule", layer_violations(*graph))


def test_the_adapters_stand_outside_the_stack(
    graph: tuple[dict[str, Module], list[Import]],
) -> None:
    fail_listing("imports crossing the adapters' boundary", adapter_violations(graph[1]))


def test_nothing_under_bot_imports_handlers_or_schedules(
    graph: tuple[dict[str, Module], list[Import]],
) -> None:
    fail_listing("imports of discovered packages", discovered_violations(graph[1]))


def test_vendor_sdks_only_in_the_adapters_and_apscheduler_only_in_run(
    graph: tuple[dict[str, Module], list[Import]],
) -> None:
    fail_listing("libraries imported outside their place", library_violations(graph[1]))


def test_bot_has_few_modules_of_its_own() -> None:
    files = sorted(path.name for path in (ROOT / "bot").glob("*.py"))
    assert len(files) <= MAX_FILES_IN_BOT, (
        f"{len(files)} .py files directly in bot/ (at most {MAX_FILES_IN_BOT}): {files}")


def test_no_module_is_over_500_lines(graph: tuple[dict[str, Module], list[Import]]) -> None:
    fail_listing("modules too long", long_modules(ROOT, graph[0].values()))


# The helpers themselves, on a small made-up tree, so that the rules above can fail.

SYNTHETIC = {
    "bot/__init__.py": "",
    "bot/config.py": "import tomllib\n",
    "bot/store/__init__.py": "",
    # An upward import, made inside a function: store (foundation) -> kernel.
    "bot/store/db.py": "def f():\n    from bot.kernel import outbox\n",
    "bot/kernel/__init__.py": "",
    # A cycle through a relative import and one under TYPE_CHECKING.
    "bot/kernel/outbox.py": ("from typing import TYPE_CHECKING\n"
                             "if TYPE_CHECKING:\n    from .audit import Entry\n"),
    "bot/kernel/audit.py": "from . import outbox\nimport slack_sdk\n",
    "bot/adapters/__init__.py": "",
    "bot/adapters/slack.py": "from bot.kernel.outbox import x\nfrom ..store import db\n",
    "bot/cases/__init__.py": "",
    "bot/cases/lifecycle.py": ("from bot.adapters.slack import y\nimport handlers.referral\n"
                               "from bot.store.db import z\n"),
    "bot/clock.py": "import apscheduler.schedulers\n",
    "bot/service/__init__.py": "",
    "bot/service/run.py": "import apscheduler\nfrom bot.adapters import slack\n",
    "handlers/__init__.py": "",
    "handlers/referral.py": "from bot.store.db import transaction\n" + "x = 1\n" * 3,
}


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[Path, dict[str, Module], list[Import]]:
    for relative, text in SYNTHETIC.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    return tmp_path, *read_graph(tmp_path, ("bot", "handlers"))


def test_the_graph_resolves_relative_nested_and_type_checking_imports(
    synthetic: tuple[Path, dict[str, Module], list[Import]],
) -> None:
    _root, modules, found = synthetic
    assert modules["bot.kernel"].is_package and not modules["bot.kernel.audit"].is_package
    edges = {(item.importer.name, item.target, item.line) for item in found}
    assert ("bot.store.db", "bot.kernel.outbox", 2) in edges  # inside a function
    assert ("bot.kernel.outbox", "bot.kernel.audit", 3) in edges  # relative, TYPE_CHECKING
    assert ("bot.kernel.audit", "bot.kernel.outbox", 1) in edges  # from . import module
    assert ("bot.adapters.slack", "bot.store.db", 2) in edges  # two dots up
    assert ("bot.cases.lifecycle", "bot.store.db", 3) in edges  # a name in a module
    assert ("bot.kernel.audit", None, 2) in edges  # a library


def test_the_rules_find_a_cycle_and_an_upward_import(
    synthetic: tuple[Path, dict[str, Module], list[Import]],
) -> None:
    root, modules, found = synthetic
    cycles = import_cycles(modules, found)
    assert cycles[0] == "cycle of 2 modules: bot.kernel.audit, bot.kernel.outbox"
    assert len([line for line in cycles if line.startswith("cycle")]) == 1
    assert layer_violations(modules, found) == [
        "bot/clock.py bot.clock is in no layer (nor bot.adapters): add it to a layer",
        "bot/cases/lifecycle.py:2 bot.cases.lifecycle imports handlers.referral: domain may not"
        " import interfaces",
        "bot/store/db.py:2 bot.store.db imports bot.kernel.outbox: foundation may not import"
        " kernel",
    ]
    assert adapter_violations(found) == [
        "bot/adapters/slack.py:2 bot.adapters.slack imports bot.store.db: bot.adapters"
        " may import only bot.adapters, bot.kernel, bot.settings, bot.config",
        "bot/cases/lifecycle.py:1 bot.cases.lifecycle imports bot.adapters.slack: only"
        " bot.service may import bot.adapters",
    ]
    assert discovered_violations(found) == [
        "bot/cases/lifecycle.py:2 bot.cases.lifecycle imports handlers.referral: handlers is"
        " discovered at run time, not imported",
    ]
    assert library_violations(found) == [
        "bot/clock.py:1 bot.clock imports apscheduler.schedulers: apscheduler is for"
        " bot.service.run only",
        "bot/kernel/audit.py:2 bot.kernel.audit imports slack_sdk: slack_sdk is for"
        " bot.adapters only",
    ]
    assert long_modules(root, modules.values(), limit=3) == [
        "handlers/referral.py: 4 lines (at most 3)"]


def test_a_graph_without_offences_passes_every_rule(tmp_path: Path) -> None:
    for relative, text in {"bot/__init__.py": "", "bot/store/__init__.py": "",
                           "bot/store/db.py": "import sqlalchemy\n",
                           "bot/engine/__init__.py": "", "bot/engine/step.py":
                           "from ..store import db\nfrom bot.config import x\n",
                           "bot/config.py": ""}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    modules, found = read_graph(tmp_path, ("bot",))
    assert import_cycles(modules, found) == []
    assert layer_violations(modules, found) == []
    assert adapter_violations(found) == discovered_violations(found) == []
    assert library_violations(found) == []
