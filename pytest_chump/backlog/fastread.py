"""Reading, fast: the usual layout, line by line with one regex (composing is ~3x slower).

Every line under "gaps:" must be blank, a comment, "- key: value", "key: value", "key:" or
"- item", with one-line values (plain, quoted without escapes, or a flat [a, b]). The text
around that block is composed with "gaps: []" in its place, which proves it valid YAML with a
block-mapping root. Anything else: ``read_fast`` gives up and the composer reads the file.
"""

from __future__ import annotations

import functools
import re

from pytest_chump.backlog.compose import compose_text, gaps_nodes
from pytest_chump.backlog.tagged import (
    LIST,
    MAP,
    NULL,
    STR,
    WANTED,
    Emit,
    Value,
    implicit_tags,
    plain_tag,
)

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


class _Patterns:
    """The reader's regular expressions, compiled on first use: their Unicode classes take
    tens of milliseconds to compile, which no command that never reads a backlog should pay."""

    @functools.cached_property
    def row(self) -> re.Pattern[str]:  # one whole line; possessive: no backtracking
        return re.compile(
            rf"(?<![^\n])(?:[ ]*+(?:{_COMMENT})?\n|(?P<ind>[ ]*+)(?P<dash>-[ ]++)?"
            rf"(?:(?P<key>[A-Za-z_][A-Za-z0-9_-]*+):(?:[ ]++(?P<val>{_VALUE}))?"
            rf"|(?P<item>{_VALUE})){_TAIL})"
        )

    @functools.cached_property
    def gaps_line(self) -> re.Pattern[str]:
        return re.compile(rf"^gaps:{_TAIL}", re.M)

    @functools.cached_property
    def flow_items(self) -> re.Pattern[str]:
        return re.compile(_ITEM)


_P = _Patterns()
_BLOCK_END = re.compile(r"^[^ \n#-]", re.M)
_ODD_BREAK = re.compile(r"[\r\x85\u2028\u2029]")  # line breaks other than \n
_CHUNK = 1 << 16  # characters scanned per findall: keeps the row tuples few and reused


def read_fast(text: str, emit: Emit) -> bool:
    """Emit the entries of a backlog in the usual layout; False (maybe midway) if it is not."""
    head = _P.gaps_line.search(text)
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
        rows = _P.row.findall(chunk)
        if len(rows) != chunk.count("\n") or not reader.read(rows, line):
            return False
        start, line = cut, line + len(rows)
    return reader.finish()


def _rest_is_plain(text: str, head: int, end: int) -> bool:
    """Whether the text around the ``gaps:`` block is valid YAML with a block-mapping root."""
    root, error = compose_text(text[:head] + "gaps: []\n" + text[end:])
    if error is not None or root is None or root.id != "mapping" or root.flow_style:
        return False
    found = gaps_nodes(root)
    stub_line = text.count("\n", 0, head)
    return len(found) == 1 and found[0].id == "sequence" and found[0].start_mark.line == stub_line


def _scalar(text: str, line: int) -> Value:
    if text[0] == "'":
        return (STR, text[1:-1].replace("''", "'"), line)
    if text[0] == '"':
        return (STR, text[1:-1], line)
    return (plain_tag(text), text, line)


class _FastReader:
    """Turns rows matched by ``_P.row`` into entries; refuses layouts it does not know."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.entry: Value | None = None
        self.fields: dict[str, Value] = {}
        self.indent = -1  # of the "- " opening each entry
        self.field_ind: str | None = None  # the indent of the other keys, once known
        self.open_key = ""  # a "key:" with no value yet, which items may turn into a list
        self.items: list[Value] | None = None
        self.item_indent = -1
        self.typed = frozenset(implicit_tags()) | {"'", '"', "["}  # first chars to look at

    def read(self, rows: list[tuple[str, ...]], first_line: int) -> bool:
        wanted, typed, fields, field_ind = WANTED, self.typed, self.fields, self.field_ind
        for line, (ind, dash, key, val, item) in enumerate(rows, first_line):
            if val and ind == field_ind and not dash:  # "    key: value", the usual row
                self.open_key = ""
                if key in wanted:
                    fields[key] = self.value(val, line) if val[0] in typed else (STR, val, line)
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
            self.entry = (MAP, self.fields, line)
        elif self.field_ind is None or indent != self.indent + 2:
            return False
        self.open_key, self.items = ("", None) if val else (key, None)
        if key in WANTED:
            self.fields[key] = self.value(val, line) if val else (NULL, "", line)
        return True

    def item(self, indent: int, text: str, line: int) -> bool:
        if not self.open_key or indent < self.indent + 2:
            return False
        if self.items is None:
            self.items, self.item_indent = [], indent
            if self.open_key in WANTED:
                self.fields[self.open_key] = (LIST, self.items, self.fields[self.open_key][2])
        elif indent != self.item_indent:
            return False
        self.items.append((LIST, None, line) if text[0] == "[" else _scalar(text, line))
        return True

    def value(self, text: str, line: int) -> Value:
        if text[0] != "[":
            return _scalar(text, line)
        return (LIST, [_scalar(item, line) for item in _P.flow_items.findall(text)], line)
