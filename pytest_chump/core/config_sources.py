"""Where setting values come from: flag > env ``CHUMP_*`` > ``[tool.chump]`` in pyproject.toml
> default, each parsed and checked by its declaration.

Errors name where the bad value came from (``--max-parallel``, ``env CHUMP_MAX_PARALLEL``,
``pyproject.toml [tool.chump] ...``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_chump.core.config import Settings, declared, env_names, flag_name
from pytest_chump.core.errors import UsageError


def _parse(f: dataclasses.Field[Any], value: object, source: str) -> object:
    try:
        return f.metadata["parse"](value)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def read_pyproject(repo_root: Path) -> dict[str, object]:
    """The ``[tool.chump]`` table of ``<repo_root>/pyproject.toml`` ({} when absent)."""
    import tomllib

    path = repo_root / "pyproject.toml"
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    table = data.get("tool", {}).get("chump", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.chump] must be a table")
    return table


def resolve(
    repo_root: Path,
    flags: Mapping[str, object] | None = None,
    env: Mapping[str, str] | None = None,
    table: Mapping[str, object] | None = None,
) -> Settings:
    """Apply precedence (flag > env > pyproject > default) and validate every value."""
    flags = flags or {}
    env = env or {}
    table = read_pyproject(repo_root) if table is None else table
    known = {f.name: f for f in declared()}
    for key in table:
        if key not in known:
            raise UsageError(
                f"{repo_root / 'pyproject.toml'}: [tool.chump] {key}: unknown setting "
                f"(valid: {', '.join(known)})"
            )
    values: dict[str, object] = {"repo_root": repo_root}
    for name, f in known.items():
        value = _pick_source(f, flags, env, table, repo_root)
        if value is not None:
            values[name] = value
    return Settings(**values)  # type: ignore[arg-type]


def _pick_source(
    f: dataclasses.Field[Any],
    flags: Mapping[str, object],
    env: Mapping[str, str],
    table: Mapping[str, object],
    repo_root: Path,
) -> object | None:
    if flags.get(f.name) is not None:
        return _parse(f, flags[f.name], flag_name(f))
    for var in env_names(f) if f.metadata["flag"] else ():
        if env.get(var, "") != "":
            return _parse(f, env[var], f"env {var}")
    if f.name in table:
        return _parse(f, table[f.name], f"{repo_root / 'pyproject.toml'} [tool.chump] {f.name}")
    return None
