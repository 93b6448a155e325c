"""The backlog as committed at a ref (``git show``, ``git cat-file``), not as in the work tree.

Used where the commit is what matters: the pre-push hook validates what is pushed, ``--new-since``
compares with an earlier commit, and the loop sees a gap that became ``done`` on the base by
another change (a race lost). A backlog directory is read in one ``git cat-file --batch``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from pytest_chump.backlog import check_bytes, check_files
from pytest_chump.backlog.reading import SUFFIXES, shown_text
from pytest_chump.core.records import Backlog
from pytest_chump.core.remote_refs import resolve
from pytest_chump.core.run import clean_env

_CACHE: dict[tuple[object, ...], Backlog] = {}  # (repo, object id, display, aliases) -> backlog
_CACHE_SIZE = 8


def _git(repo_root: Path, *args: str, feed: bytes | None = None) -> tuple[int, bytes]:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo_root,
        env=clean_env(),
        input=feed,
        stdin=None if feed is not None else subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    return proc.returncode, proc.stdout


def backlog_at(
    repo_root: Path,
    ref: str,
    backlog: Path,
    status_aliases: Mapping[str, str] | None = None,
    display: str | None = None,
) -> Backlog | None:
    """The backlog file or directory ``backlog`` as committed at ``ref``; None when it is not
    there (not in that commit, or not inside the repository at all). Problems are shown under
    ``display`` (default: the path relative to the repository root)."""
    try:
        relative = backlog.resolve().relative_to(repo_root.resolve()).as_posix()
    except ValueError:
        return None
    shown = display or relative
    code, out = _git(repo_root, "rev-parse", "--verify", "--quiet", f"{ref}:{relative}")
    if code != 0:
        return None
    aliases = tuple(sorted((status_aliases or {}).items()))
    key = (str(repo_root), out.strip().decode(), shown, aliases)
    if key not in _CACHE:
        found = _read(repo_root, ref, relative, shown, status_aliases)
        if found is None:
            return None
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = found
    return _CACHE[key]


def _read(
    repo_root: Path, ref: str, relative: str, shown: str, aliases: Mapping[str, str] | None
) -> Backlog | None:
    code, kind = _git(repo_root, "cat-file", "-t", f"{ref}:{relative}")
    if code != 0:
        return None
    if kind.strip() == b"blob":
        code, data = _git(repo_root, "show", f"{ref}:{relative}")
        return check_bytes(data, shown, aliases, relative) if code == 0 else None
    files = _tree_files(repo_root, ref, relative)
    contents = _contents(repo_root, [oid for _, oid in files])
    if contents is None:
        return None  # git could not give every file (a partial clone): nothing reliable
    prefix = shown.rstrip("/") + "/"
    items = (
        (prefix + shown_text(name), contents[oid], f"{relative}/{name}") for name, oid in files
    )
    return check_files(items, aliases)


def _tree_files(repo_root: Path, ref: str, relative: str) -> list[tuple[str, str]]:
    """(name below the directory, blob id) of its backlog files at ``ref``, in path order."""
    code, out = _git(repo_root, "ls-tree", "-r", "-z", f"{ref}:{relative}")
    files = []
    for record in out.split(b"\0") if code == 0 else []:
        meta, _, name_bytes = record.partition(b"\t")
        fields = meta.split()
        name = name_bytes.decode("utf-8", "surrogateescape")
        parts = PurePosixPath(name).parts
        hidden = any(part.startswith(".") for part in parts[:-1])
        blob = len(fields) == 3 and fields[1] == b"blob" and fields[0] != b"120000"  # no link
        if blob and not hidden and name.endswith(SUFFIXES):
            files.append((parts, name, fields[2].decode()))
    return [(name, oid) for _, name, oid in sorted(files)]


def _contents(repo_root: Path, oids: list[str]) -> dict[str, bytes] | None:
    """Blob contents by id, from one ``git cat-file --batch``; None when git cannot give
    them all (it failed, or answered ``missing`` for one)."""
    if not oids:
        return {}
    feed = "".join(f"{oid}\n" for oid in oids).encode()
    code, out = _git(repo_root, "cat-file", "--batch", feed=feed)
    found, at = {}, 0
    for oid in oids:
        header_end = out.find(b"\n", at)
        fields = out[at:header_end].split() if header_end >= 0 else []
        if code != 0 or len(fields) != 3 or fields[1] != b"blob" or not fields[2].isdigit():
            return None
        size = int(fields[2])
        found[oid] = out[header_end + 1 : header_end + 1 + size]
        at = header_end + 1 + size + 1
    return found


def done_on_base(
    repo_root: Path, base_ref: str, backlog: Path, status_aliases: Mapping[str, str] | None = None
) -> frozenset[str]:
    """Ids whose status is ``done`` in the base ref's copy of the backlog (empty if unknown);
    a remote base is the newer of chump's fetched copy and the user's (``core.remote_refs``)."""
    commit = resolve(repo_root, base_ref)
    found = backlog_at(repo_root, commit, backlog, status_aliases) if commit else None
    if found is None or any(p.fatal for p in found.problems):
        return frozenset()  # absent, or unreadable on the base: it says nothing reliable
    return found.done_ids()
