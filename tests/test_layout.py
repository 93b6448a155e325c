"""The package layout: folders by stage of the flow, imports pointing down the flow, no circles.

Every import counts, wherever it is written (module level, inside a function, or under
``TYPE_CHECKING``): a lazy import still makes the lower stage depend on the higher one.
The stage order is the one ARCHITECTURE.md explains.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import pytest_chump

PACKAGE = Path(pytest_chump.__file__).parent
STAGES: tuple[str, ...] = (
    "core",
    "state",
    "backlog",
    "pick",
    "learn",
    "dispatch",
    "agents",
    "providers",
    "reflect",
    "loop",
    "observe",
    "simulate",
    "selftest",
    "cli",
    "githooks",
)
TOP_LEVEL = {  # modules outside the stage folders, and the stage they count as
    "pytest_chump": "core",  # the root package: the marker, plus the lazily exported API
    "pytest_chump.hookspecs": "core",
    "pytest_chump._deprecated": "core",
    "pytest_chump.pytest_plugin": "entry",
}
RANK = {name: i for i, name in enumerate((*STAGES, "entry"))}
EAGER_ROOT_NAMES = {"hookimpl", "PROJECT_NAME", "__version__"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported (a name inside the root package resolves to its home)
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def stage_of(module: str) -> str:
    if module in TOP_LEVEL:
        return TOP_LEVEL[module]
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in STAGES:
        raise AssertionError(f"{module} is in no stage folder (add it to one, see ARCHITECTURE.md)")
    return parts[1]


def _public_home(name: str) -> str:
    """Where a name of the root package's public API is defined."""
    home = pytest_chump._PUBLIC.get(name)
    assert home is not None, f"pytest_chump has no public name {name!r}: import it from its module"
    return home


def imports(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every chump module ``module`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pytest_chump":
                    yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            if base.split(".")[0] != "pytest_chump":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    yield Import(module, full, node.lineno)
                elif base == "pytest_chump" and alias.name not in EAGER_ROOT_NAMES:
                    yield Import(module, _public_home(alias.name), node.lineno)
                else:
                    yield Import(module, base, node.lineno)


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - node.level + 1]
    return ".".join([*parts, *([node.module] if node.module else [])])


def all_imports() -> list[Import]:
    found = modules()
    known = set(found)
    return [
        imp
        for name, path in found.items()
        if name != "pytest_chump"  # the API facade re-exports everything, lazily
        for imp in imports(name, path, known)
    ]


def test_every_module_sits_in_a_stage_folder() -> None:
    for name in modules():
        stage_of(name)


def test_every_stage_package_says_what_it_owns_and_may_import() -> None:
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))
        assert doc, f"pytest_chump/{stage}/__init__.py has no docstring"
        assert "may import" in " ".join(doc.split()[:60]).lower(), stage


def test_imports_point_down_the_flow() -> None:
    wrong = [
        f"{imp.source}:{imp.line} imports {imp.target} "
        f"({stage_of(imp.source)} may not import from the later stage {stage_of(imp.target)})"
        for imp in all_imports()
        if RANK[stage_of(imp.target)] > RANK[stage_of(imp.source)]
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles() -> None:
    edges: dict[str, set[str]] = {}
    for imp in all_imports():
        if imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    cycle = _find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle or ())


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in sorted(edges):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(edges.get(root, ())))]
        state[root] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return [*path[path.index(step) :], step]
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(sorted(edges.get(step, ()))))
    return None


# --- the checker itself: it must be able to fail ---------------------------------------


@pytest.mark.parametrize(
    ("source", "code", "target"),
    [
        ("pytest_chump.state.store", "from pytest_chump.loop.app import App", "loop"),
        ("pytest_chump.pick.picker", "import pytest_chump.reflect.record", "reflect"),
        ("pytest_chump.core.model", "from pytest_chump import RunResult", "selftest"),
        ("pytest_chump.backlog", "from pytest_chump.learn import routing", "learn"),
    ],
)
def test_checker_sees_an_import_from_a_later_stage(
    tmp_path: Path, source: str, code: str, target: str
) -> None:
    path = tmp_path / "m.py"
    path.write_text(f"def f():\n    {code}\n", encoding="utf-8")
    found = list(imports(source, path, set(modules())))
    assert [stage_of(imp.target) for imp in found] == [target]
    assert RANK[target] > RANK[stage_of(source)]


def test_checker_finds_a_cycle() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}}) is None
