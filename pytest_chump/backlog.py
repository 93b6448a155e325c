"""Load the YAML backlog and validate it, reporting every problem as one line.

Each problem reads ``{display}:{line}: {field}: {message}``; a clean file yields ``Gap`` objects.
"""

from __future__ import annotations

import gc
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from pytest_chump.errors import BacklogError
from pytest_chump.model import EFFORTS, KINDS, PRIORITIES, STATUSES, Gap, id_problem, slug_for

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _DATE = _TAG + "str", _TAG + "null", _TAG + "timestamp"
_LIST, _MAP = " list", " mapping"  # markers for collections; no YAML tag contains a space
_KINDS = {"str": "string", "int": "int", "float": "float", "bool": "bool", "timestamp": "date"}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EMPTY = "file: is empty (expected a mapping with a 'gaps:' list)"
_WANTED = frozenset(("id", "title", "description", "priority", "effort", "status", "kind"))
_WANTED |= {"depends_on", "closed_date"}

_Node = Any  # a yaml.nodes node: .id is "scalar", "sequence" or "mapping"
_Value = tuple[str, Any, int]  # (tag, or _LIST/_MAP; text, items or fields; 1-based line)
_Problem = tuple[int, str]  # (1-based line, "field: message")
_Emit = Callable[[_Value], None]  # receives each entry of the gaps list, in order


@dataclass(frozen=True, slots=True)
class Backlog:
    """A validated backlog: its file and its gaps in declared order."""

    path: Path
    gaps: tuple[Gap, ...]

    def by_id(self) -> dict[str, Gap]:
        return {gap.id: gap for gap in self.gaps}

    def done_ids(self) -> frozenset[str]:
        return frozenset(gap.id for gap in self.gaps if gap.status == "done")


def load_backlog(path: Path, display: str | None = None) -> Backlog:
    """Read and validate ``path``; raise ``BacklogError`` listing every problem."""
    shown = str(path) if display is None else display
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BacklogError([f"{shown}:1: file: not found"]) from None
    except OSError as exc:
        raise BacklogError([f"{shown}:1: file: cannot read: {exc.strerror or exc}"]) from None
    gaps, problems = check_bytes(data, shown)
    if problems:
        raise BacklogError(problems)
    return Backlog(path, tuple(gaps))


def check_bytes(data: bytes, display: str) -> tuple[list[Gap], list[str]]:
    """Parse and validate ``data``; return (gaps, problems). Gaps mean something only if clean."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        return [], [f"{display}:{line}: file: not valid UTF-8 ({bad})"]
    collecting = gc.isenabled()
    gc.disable()  # everything built here is acyclic: collector passes would only cost time
    try:
        gaps, found = _check(text)
    finally:
        if collecting:
            gc.enable()
    return gaps, [f"{display}:{line}: {text}" for line, text in sorted(found, key=_line)]


def _line(problem: _Problem) -> int:
    return problem[0]


def _check(text: str) -> tuple[list[Gap], list[_Problem]]:
    checker = _Checker()
    if not _read_fast(text, checker.entry):
        checker = _Checker()
        checker.problems.extend(_read_tree(text, checker.entry))
    return checker.finish()


# -- Reading, slow and general: PyYAML's C composer gives a node tree to walk. --


@cache
def _loader() -> type:
    """The fastest safe loader, with a leaner implicit-tag resolver (same tags as PyYAML's)."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    defaults = {
        yaml.ScalarNode: base.DEFAULT_SCALAR_TAG,
        yaml.SequenceNode: base.DEFAULT_SEQUENCE_TAG,
        yaml.MappingNode: base.DEFAULT_MAPPING_TAG,
    }

    def resolve(self: object, kind: type, value: str, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _plain_tag(value)
        return defaults[kind]

    return type("_BacklogLoader", (base,), {"resolve": resolve})


@cache
def _implicit_tags() -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    import yaml

    return dict(yaml.SafeLoader.yaml_implicit_resolvers)


def _plain_tag(text: str) -> str:
    """The tag the safe loader gives an unquoted scalar: ``str`` unless it looks typed."""
    for tag, pattern in _implicit_tags().get(text[:1], ()):
        if pattern.match(text):
            return tag
    return _STR


def _compose(text: str) -> tuple[_Node | None, _Problem | None]:
    """The single document's node tree, or the syntax error."""
    import yaml

    try:
        return yaml.compose(text, Loader=_loader()), None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        words = " ".join(str(exc.problem or "invalid YAML").split())
        if exc.context:
            words += f" ({' '.join(exc.context.split())})"
        return None, ((mark.line + 1) if mark else 1, f"yaml: {words}")
    except yaml.reader.ReaderError as exc:
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        where = text.find(char)
        line = text.count("\n", 0, where) + 1 if where >= 0 else 1
        return None, (line, f"yaml: {exc.reason} (character {ord(char):#06x})")
    except yaml.YAMLError as exc:
        return None, (1, f"yaml: {' '.join(str(exc).split())}")


def _read_tree(text: str, emit: _Emit) -> list[_Problem]:
    """Emit every entry of the composed ``gaps:`` list; return problems that prevent it."""
    root, error = _compose(text)
    if error is not None or root is None:
        return [error or (1, _EMPTY)]
    line = root.start_mark.line + 1
    if root.id != "mapping":
        got = _describe(_leaf(root))
        return [(line, f"gaps: top level must be a mapping with a 'gaps:' list, got {got}")]
    found = [value for key, value in root.value if _is_str_node(key) and key.value == "gaps"]
    if not found:
        return [(line, "gaps: missing (the top level needs a 'gaps:' list)")]
    if found[-1].id != "sequence":
        gaps = _leaf(found[-1])
        return [(gaps[2], f"gaps: must be a list, got {_describe(gaps)}")]
    for node in found[-1].value:
        emit(_entry_value(node))
    return []


def _is_str_node(node: _Node) -> bool:
    return node.id == "scalar" and node.tag == _STR


def _leaf(node: _Node, line: int = 0) -> _Value:
    line = line or node.start_mark.line + 1
    if node.id == "scalar":
        return (node.tag, node.value, line)
    return (_LIST if node.id == "sequence" else _MAP, None, line)


def _entry_value(node: _Node) -> _Value:
    if node.id != "mapping":
        return _leaf(node)
    fields = {}
    for key, value in node.value:
        if key.id == "scalar" and key.value in _WANTED:
            line = key.start_mark.line + 1
            items = [_leaf(item) for item in value.value] if value.id == "sequence" else None
            fields[key.value] = _leaf(value, line) if items is None else (_LIST, items, line)
    return (_MAP, fields, node.start_mark.line + 1)


# -- Reading, fast: the usual layout, line by line with one regex (composing is ~3x slower). --
# Every line under "gaps:" must be blank, a comment, "- key: value", "key: value", "key:" or
# "- item", with one-line values (plain, quoted without escapes, or a flat [a, b]). The text
# around that block is composed with "gaps: []" in its place, which proves it valid YAML with a
# block-mapping root. Anything else: _read_fast gives up and the composer reads the file.

_U = r"\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff"
_CH = rf"\x21-\x7e{_U}"  # printable, not blank (YAML refuses the rest; \x85 \u2028 \u2029 break)
_FIRST = rf"(?![-?:,\[\]{{}}#&*!|>'\"%@`])[{_CH}]"  # how a plain scalar may start
_PLAIN = rf"{_FIRST}(?:[\x21-\x39\x3b-\x7e{_U}]++|:(?=[{_CH}])|[ ]++(?=[^\s#]))*+"
_QUOTED = rf"'(?:[ \x21-\x26\x28-\x7e{_U}]++|'')*+'|\"[ \x21\x23-\x5b\x5d-\x7e{_U}]*+\""
_ITEM = rf"{_FIRST}[\x21-\x2b\x2d-\x39\x3b-\x5a\x5c\x5e-\x7a\x7c\x7e{_U}]*+"  # no , : [ ] { }
_FLOW = rf"\[[ ]*+(?:{_ITEM}(?:[ ]*+,[ ]*+{_ITEM})*+)?[ ]*+\]"
_VALUE = rf"(?:{_FLOW}|{_QUOTED}|{_PLAIN})"
_COMMENT = rf"#[\t {_CH}]*+"
_TAIL = rf"(?:[ ]++(?:{_COMMENT})?)?\n"
_ROW = re.compile(  # one whole line ((?<![^\n]) = at a line start); possessive: no backtracking
    rf"(?<![^\n])(?:[ ]*+(?:{_COMMENT})?\n|(?P<ind>[ ]*+)(?P<dash>-[ ]++)?"
    rf"(?:(?P<key>[A-Za-z_][A-Za-z0-9_-]*+):(?:[ ]++(?P<val>{_VALUE}))?|(?P<item>{_VALUE})){_TAIL})"
)
_GAPS_LINE = re.compile(rf"^gaps:{_TAIL}", re.M)
_BLOCK_END = re.compile(r"^[^ \n#-]", re.M)
_ODD_BREAK = re.compile(r"[\r\x85\u2028\u2029]")  # line breaks other than \n
_FLOW_ITEMS = re.compile(_ITEM)
_CHUNK = 1 << 16  # characters scanned per findall: keeps the row tuples few and reused


def _read_fast(text: str, emit: _Emit) -> bool:
    """Emit the entries of a backlog in the usual layout; False (maybe midway) if it is not."""
    head = _GAPS_LINE.search(text)
    if head is None or _ODD_BREAK.search(text):
        return False
    start = head.end()
    block_end = _BLOCK_END.search(text, start)
    end = block_end.start() if block_end else len(text)
    if not _rest_is_plain(text, head.start(), end):
        return False
    reader, line = _FastReader(emit), text.count("\n", 0, start) + 1
    while start < end:
        cut = text.find("\n", min(start + _CHUNK, end - 1), end) + 1 or end
        chunk = text[start:cut] if text[cut - 1] == "\n" else text[start:cut] + "\n"
        rows = _ROW.findall(chunk)
        if len(rows) != chunk.count("\n") or not reader.read(rows, line):
            return False
        start, line = cut, line + len(rows)
    return reader.finish()


def _rest_is_plain(text: str, head: int, end: int) -> bool:
    """Whether the text around the ``gaps:`` block is valid YAML with a block-mapping root."""
    root, error = _compose(text[:head] + "gaps: []\n" + text[end:])
    if error is not None or root is None or root.id != "mapping" or root.flow_style:
        return False
    found = [value for key, value in root.value if _is_str_node(key) and key.value == "gaps"]
    stub_line = text.count("\n", 0, head)
    return len(found) == 1 and found[0].id == "sequence" and found[0].start_mark.line == stub_line


def _scalar(text: str, line: int) -> _Value:
    if text[0] == "'":
        return (_STR, text[1:-1].replace("''", "'"), line)
    if text[0] == '"':
        return (_STR, text[1:-1], line)
    return (_plain_tag(text), text, line)


class _FastReader:
    """Turns rows matched by ``_ROW`` into entries; refuses layouts it does not know."""

    def __init__(self, emit: _Emit) -> None:
        self.emit = emit
        self.entry: _Value | None = None
        self.fields: dict[str, _Value] = {}
        self.indent = -1  # of the "- " opening each entry
        self.field_ind: str | None = None  # the indent of the other keys, once known
        self.open_key = ""  # a "key:" with no value yet, which items may turn into a list
        self.items: list[_Value] | None = None
        self.item_indent = -1
        self.typed = frozenset(_implicit_tags()) | {"'", '"', "["}  # first chars to look at

    def read(self, rows: list[tuple[str, ...]], first_line: int) -> bool:
        wanted, typed, fields, field_ind = _WANTED, self.typed, self.fields, self.field_ind
        for line, (ind, dash, key, val, item) in enumerate(rows, first_line):
            if val and ind == field_ind and not dash:  # "    key: value", the usual row
                self.open_key = ""
                if key in wanted:
                    fields[key] = self.value(val, line) if val[0] in typed else (_STR, val, line)
                continue
            if key:
                if not self.field(len(ind), dash, key, val, line):
                    return False
                fields, field_ind = self.fields, self.field_ind
            elif item and not (dash and self.item(len(ind), item, line)):
                return False
        return True

    def finish(self) -> bool:
        """Emit the last entry; False when there was none."""
        if self.entry is not None:
            self.emit(self.entry)
        return self.entry is not None

    def field(self, indent: int, dash: str, key: str, val: str, line: int) -> bool:
        if dash:
            if dash != "- " or (self.entry is not None and indent != self.indent):
                return False
            if self.entry is not None:
                self.emit(self.entry)
            self.indent, self.field_ind, self.fields = indent, " " * (indent + 2), {}
            self.entry = (_MAP, self.fields, line)
        elif self.field_ind is None or indent != self.indent + 2:
            return False
        self.open_key, self.items = ("", None) if val else (key, None)
        if key in _WANTED:
            self.fields[key] = self.value(val, line) if val else (_NULL, "", line)
        return True

    def item(self, indent: int, text: str, line: int) -> bool:
        if not self.open_key or indent < self.indent + 2:
            return False
        if self.items is None:
            self.items, self.item_indent = [], indent
            if self.open_key in _WANTED:
                self.fields[self.open_key] = (_LIST, self.items, self.fields[self.open_key][2])
        elif indent != self.item_indent:
            return False
        self.items.append((_LIST, None, line) if text[0] == "[" else _scalar(text, line))
        return True

    def value(self, text: str, line: int) -> _Value:
        if text[0] != "[":
            return _scalar(text, line)
        return (_LIST, [_scalar(item, line) for item in _FLOW_ITEMS.findall(text)], line)


# -- Validating: each field, then ids across gaps, unknown dependencies and cycles. --


def _describe(value: _Value) -> str:
    """``int 123``, ``string 'FOO'``, ``a list``... for "got ..." messages."""
    tag, text = value[0], value[1]
    if tag in (_LIST, _MAP, _NULL):
        return {_LIST: "a list", _MAP: "a mapping"}.get(tag, "null")
    kind = _KINDS.get(tag.removeprefix(_TAG), tag)
    short = text if len(text) <= 60 else text[:57] + "..."
    return f"{kind} {short!r}" if kind == "string" else f"{kind} {short}"


_Check = Callable[["_Checker", int, str, _Value], Any]  # (checker, gap index, field, value)


def _text(c: _Checker, i: int, name: str, value: _Value) -> str | None:
    if value[0] == _STR:
        return value[1]
    c.fail(value[2], f"gaps[{i}].{name}", f"must be a string, got {_describe(value)}")
    return None


def _choice(allowed: tuple[str, ...]) -> _Check:
    """A checker accepting one of ``allowed`` (exact case), hinting at case slips."""
    members = frozenset(allowed)
    folded = {choice.lower(): choice for choice in allowed}
    expected = ", ".join(allowed)

    def check(c: _Checker, i: int, name: str, value: _Value) -> str | None:
        if value[0] == _STR and value[1] in members:
            return value[1]
        if value[0] != _STR:
            return _text(c, i, name, value)
        hint = folded.get(value[1].lower())
        tail = f"; did you mean {hint!r}?" if hint else ""
        message = f"unknown {name} {value[1]!r} (expected one of {expected}{tail})"
        c.fail(value[2], f"gaps[{i}].{name}", message)
        return None

    return check


def _depends_on(c: _Checker, i: int, name: str, value: _Value) -> tuple[str, ...] | None:
    where = f"gaps[{i}].{name}"
    if value[0] != _LIST:
        c.fail(value[2], where, f"must be a list of ids, got {_describe(value)}")
        return None
    for k, item in enumerate(value[1]):
        if item[0] != _STR:
            c.fail(item[2], f"{where}[{k}]", f"must be an id string, got {_describe(item)}")
    return tuple(item[1] for item in value[1] if item[0] == _STR)


def _closed_date(c: _Checker, i: int, name: str, value: _Value) -> str | None:
    tag, text, line = value
    if tag in (_STR, _DATE) and _ISO_DATE.fullmatch(text) and _real_date(text):
        return str(text)
    c.fail(line, f"gaps[{i}].{name}", f"must be an ISO date (YYYY-MM-DD), got {_describe(value)}")
    return None


def _real_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


_FIELDS: dict[str, _Check] = {
    "title": _text,
    "description": _text,
    "priority": _choice(PRIORITIES),
    "effort": _choice(EFFORTS),
    "status": _choice(STATUSES),
    "kind": _choice(KINDS),
    "depends_on": _depends_on,
    "closed_date": _closed_date,
}


@dataclass(slots=True, eq=False)
class _Entry:
    """What the checks across gaps need about one gap whose id is a string."""

    index: int
    id: str
    id_line: int
    deps: tuple[str, ...]
    deps_value: _Value | None  # the depends_on list when deps is not empty: lines to report at
    valid: bool = False  # a node of the dependency graph: a safe id, first of its name
    pos: int = -1  # index among the valid entries

    @property
    def where(self) -> str:
        return f"gaps[{self.index}].id"


class _Checker:
    """Checks entries as they are read; collects every problem as (line, "field: message")."""

    def __init__(self) -> None:
        self.problems: list[_Problem] = []
        self.gaps: list[Gap] = []  # built only while no problem is known
        self.entries: list[_Entry] = []
        self.first: dict[str, _Entry] = {}  # string id -> its first entry
        self.loose: set[str] = set()  # text of ids that are scalars but not strings
        self.slugs: dict[str, _Entry] = {}
        self.count = 0

    def fail(self, line: int, where: str, message: str) -> None:
        self.problems.append((line, f"{where}: {message}"))

    def entry(self, value: _Value) -> None:
        """Check one entry of the gaps list (called in declared order)."""
        i, self.count = self.count, self.count + 1
        tag, fields, line = value
        if tag != _MAP:
            return self.fail(line, f"gaps[{i}]", f"expected a mapping, got {_describe(value)}")
        kwargs: dict[str, Any] = {"line": line}
        for name, field in fields.items():
            check = _FIELDS.get(name)
            if check is not None and field[0] != _NULL:  # null counts as missing
                kwargs[name] = check(self, i, name, field)
        if "id" not in fields:
            return self.fail(line, f"gaps[{i}].id", "missing")
        kwargs["id"] = gap_id = self.string_id(i, fields["id"])
        if gap_id is not None:
            deps = kwargs.get("depends_on") or ()
            self.track(_Entry(i, gap_id, fields["id"][2], deps, fields.get("depends_on")))
        if not self.problems:
            self.gaps.append(Gap(**kwargs))
        return None

    def string_id(self, i: int, value: _Value) -> str | None:
        tag, gap_id, line = value
        if tag == _STR:
            return gap_id
        if tag not in (_LIST, _MAP, _NULL):
            self.loose.add(gap_id)
        self.fail(line, f"gaps[{i}].id", f"must be a string, got {_describe(value)}")
        return None

    def track(self, entry: _Entry) -> None:
        """Register a string id: a duplicate, an unsafe id, or a node of the dependency graph."""
        self.entries.append(entry)
        first = self.first.setdefault(entry.id, entry)
        if first is not entry:
            at = first.id_line
            return self.fail(
                entry.id_line, entry.where, f"duplicate id {entry.id!r} (first at line {at})"
            )
        problem = id_problem(entry.id)
        if problem is not None:
            return self.fail(entry.id_line, entry.where, problem)
        entry.valid = True
        other = self.slugs.setdefault(slug_for(entry.id), entry)
        if other is not entry:
            same = f"has the same branch/worktree name as {other.id!r} (line {other.id_line})"
            self.fail(entry.id_line, entry.where, f"{entry.id!r} {same}")
        return None

    def finish(self) -> tuple[list[Gap], list[_Problem]]:
        self.check_dependencies()
        return ([], self.problems) if self.problems else (self.gaps, [])

    def check_dependencies(self) -> None:
        """Report unknown ids, then every dependency cycle among valid gaps."""
        nodes = [entry for entry in self.entries if entry.valid]
        for pos, entry in enumerate(nodes):
            entry.pos = pos
        adjacency: list[list[int]] = [[]] * len(nodes)  # a slot is replaced when it has edges
        backward_only = True  # then declared order is a topological order: no cycle
        for entry in self.entries:
            if entry.deps:
                targets = [self.first.get(dep) for dep in entry.deps]
                if None in targets:
                    self.report_unknown(entry)
                if entry.valid:
                    edges = [t.pos for t in targets if t is not None and t.valid]
                    adjacency[entry.pos] = edges
                    backward_only = backward_only and all(w < entry.pos for w in edges)
        if not backward_only:
            self.report_cycles(nodes, adjacency)

    def report_unknown(self, entry: _Entry) -> None:
        assert entry.deps_value is not None
        for k, (tag, dep, line) in enumerate(entry.deps_value[1]):
            if tag == _STR and dep not in self.first and dep not in self.loose:
                self.fail(line, f"gaps[{entry.index}].depends_on[{k}]", f"unknown id {dep!r}")

    def report_cycles(self, nodes: list[_Entry], adjacency: list[list[int]]) -> None:
        for component in _Tarjan(adjacency).run():
            start = min(component)
            if len(component) > 1 or start in adjacency[start]:
                path = _cycle_path(adjacency, set(component), start)
                names = " -> ".join(nodes[pos].id for pos in path)
                entry = nodes[start]
                line = entry.deps_value[2] if entry.deps_value else entry.id_line
                self.fail(line, f"gaps[{entry.index}].depends_on", f"dependency cycle {names}")


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
