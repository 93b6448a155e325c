"""Checks across gaps: unknown dependencies, then dependency cycles (iterative Tarjan)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass

from pytest_chump.backlog.tagged import STR, Value

Found = tuple[str, int, str, str, "str | None"]
"""A problem as the checks find it: (origin, line, field, message, the gap it belongs to)."""


@dataclass(slots=True, eq=False)
class Entry:
    """What the checks across gaps need about one gap whose id is a string."""

    at: str  # "gaps[i]." (or a source's label): how its fields are named in problems
    id: str
    id_line: int
    deps: tuple[str, ...]
    deps_value: Value | None  # the depends_on list when deps is not empty: lines to report at
    origin: str = ""  # the file it was read from (a backlog directory has many)
    valid: bool = False  # a node of the dependency graph: a safe id, first of its name
    pos: int = -1  # index among the valid entries

    @property
    def where(self) -> str:
        return f"{self.at}id"


def dependency_problems(
    entries: list[Entry], first: Mapping[str, Entry], loose: Set[str]
) -> list[Found]:
    """Unknown ids, then every dependency cycle among valid gaps.

    ``first`` maps each string id to its first entry; ``loose`` holds the text of ids that
    are scalars but not strings (a dependency on one is not reported as unknown).
    """
    problems: list[Found] = []
    nodes = [entry for entry in entries if entry.valid]
    for pos, entry in enumerate(nodes):
        entry.pos = pos
    adjacency: list[list[int]] = [[]] * len(nodes)  # a slot is replaced when it has edges
    backward_only = True  # then declared order is a topological order: no cycle
    for entry in entries:
        if entry.deps:
            targets = [first.get(dep) for dep in entry.deps]
            if None in targets:
                problems += _unknown(entry, first, loose)
            if entry.valid:
                edges = [t.pos for t in targets if t is not None and t.valid]
                adjacency[entry.pos] = edges
                backward_only = backward_only and all(w < entry.pos for w in edges)
    if not backward_only:
        problems += _cycles(nodes, adjacency)
    return problems


def _unknown(entry: Entry, first: Mapping[str, Entry], loose: Set[str]) -> list[Found]:
    assert entry.deps_value is not None
    where = f"{entry.at}depends_on"
    return [
        (entry.origin, line, f"{where}[{k}]", f"unknown id {dep!r}", entry.id)
        for k, (tag, dep, line) in enumerate(entry.deps_value[1])
        if tag == STR and dep not in first and dep not in loose
    ]


def _cycles(nodes: list[Entry], adjacency: list[list[int]]) -> list[Found]:
    problems: list[Found] = []
    for component in _Tarjan(adjacency).run():
        start = min(component)
        if len(component) > 1 or start in adjacency[start]:
            path = _cycle_path(adjacency, set(component), start)
            names = " -> ".join(nodes[pos].id for pos in path)
            entry = nodes[start]
            line = entry.deps_value[2] if entry.deps_value else entry.id_line
            where = f"{entry.at}depends_on"
            problems.append((entry.origin, line, where, f"dependency cycle {names}", entry.id))
    return problems


class _Tarjan:
    """Tarjan's strongly connected components, with an explicit stack instead of recursion."""

    def __init__(self, adjacency: list[list[int]]) -> None:
        self.adjacency = adjacency
        self.order = [0] * len(adjacency)  # 0 = unvisited, else the 1-based visit number
        self.low = [0] * len(adjacency)
        self.on_stack = [False] * len(adjacency)
        self.stack: list[int] = []
        self.components: list[list[int]] = []
        self.visited = 0

    def run(self) -> list[list[int]]:
        for root in range(len(self.adjacency)):
            if not self.order[root]:
                self.search(root)
        return self.components

    def enter(self, v: int) -> tuple[int, Iterator[int]]:
        self.visited += 1
        self.order[v] = self.low[v] = self.visited
        self.stack.append(v)
        self.on_stack[v] = True
        return v, iter(self.adjacency[v])

    def search(self, root: int) -> None:
        work = [self.enter(root)]
        while work:
            v, children = work[-1]
            for w in children:
                if not self.order[w]:
                    work.append(self.enter(w))
                    break
                if self.on_stack[w]:
                    self.low[v] = min(self.low[v], self.order[w])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    self.low[parent] = min(self.low[parent], self.low[v])
                if self.low[v] == self.order[v]:
                    self.components.append(self.pop_component(v))

    def pop_component(self, v: int) -> list[int]:
        component: list[int] = []
        while not component or component[-1] != v:
            w = self.stack.pop()
            self.on_stack[w] = False
            component.append(w)
        return component


def _cycle_path(adjacency: list[list[int]], members: set[int], start: int) -> list[int]:
    """A shortest cycle from ``start`` back to itself inside its component (breadth first)."""
    parent = {start: start}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in adjacency[v]:
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    return [start, start]
