"""Generates the option table of the pytest plugin (``FLAGS`` in ``pytest_plugin.py``): the
``--chump-<setting>`` options and ``chump_<setting>`` ini keys, as plain data.

The plugin is loaded into every pytest run of every user; declaring its options from a literal
table imports nothing, where deriving them from :mod:`pytest_chump.core.config` would import
the settings machinery each time. After adding or changing a setting, run
``python -m pytest_chump.core.pytest_options``; ``tests/test_import_cost.py`` fails while the
table and the settings disagree.
"""

from __future__ import annotations

from pathlib import Path

PLUGIN = "pytest_plugin.py"
"""The module holding the table, in the package's folder."""
BEGIN, END = "    # generated: begin\n", "    # generated: end\n"


def expected() -> tuple[tuple[str, str], ...]:
    """What the table should be: (name, help ending in the default) of each flag setting."""
    from pytest_chump.core import config

    return tuple(
        (f.name, f"{f.metadata['help']} (default {config.shown_default(f)})")
        for f in config.declared()
        if f.metadata["flag"]
    )


def render(flags: tuple[tuple[str, str], ...], width: int = 100) -> str:
    """The generated lines of the table (formatted as ``ruff format`` leaves them)."""
    lines = []
    for name, text in flags:
        one = f"    ({_literal(name)}, {_literal(text)}),"
        if len(one) <= width:
            lines.append(one)
            continue
        lines += ["    (", f"        {_literal(name)},"]
        lines += [f"        {piece}" for piece in _pieces(text, width - 8)]
        lines[-1] += ","
        lines.append("    ),")
    return "\n".join(lines) + "\n"


def _pieces(text: str, width: int) -> list[str]:
    """``text`` as implicitly concatenated string literals, each at most ``width`` long."""
    pieces: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and len(candidate) + 3 > width:  # quotes and the space kept at the end
            pieces.append(current + " ")
            current = word
        else:
            current = candidate
    pieces.append(current)
    return [_literal(p) for p in pieces]


def _literal(text: str) -> str:
    """``repr(text)``, in double quotes unless ``text`` holds one (as ``ruff format`` writes it)."""
    literal = repr(text)
    if literal.startswith("'") and '"' not in text:
        literal = f'"{literal[1:-1]}"'
    return literal


def plugin_path() -> Path:
    return Path(__file__).resolve().parents[1] / PLUGIN


def regenerated(text: str) -> str:
    """``text`` (the plugin's source) with the table between its markers regenerated."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}{render(expected())}{END}{tail}"


def main() -> None:
    """Rewrite the table in the plugin's source from the declared settings."""
    path = plugin_path()
    path.write_text(regenerated(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
