"""chump's own remote-tracking refs: every fetch chump makes, and which commit a base ref means.

chump fetches into ``refs/chump/remotes/<remote>/<branch>``, never into the user's
``refs/remotes/*`` nor ``FETCH_HEAD``: git locks a ref while it updates it, so a fetch of
chump's writing the user's refs would fail the user's own ``git pull`` or ``git fetch`` running
at the same moment (``cannot lock ref``), and theirs would fail chump's. ``--refmap=`` keeps git
from also updating the configured remote-tracking refs of a named remote, ``--no-tags`` from
writing ``refs/tags/*`` and ``--no-auto-maintenance`` from a ``git gc --auto`` that locks refs
too.

A base ref such as ``origin/main`` then has two copies: chump's and the user's. The newer one
is used — the user may have pulled after chump fetched — and chump's when they diverged (a
force push), since that is what the remote had when chump last looked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pytest_chump.core.errors import ChumpError
from pytest_chump.core.run import run

NAMESPACE = "refs/chump/remotes"
USERS = "refs/remotes"

_BAD = re.compile(r"[\s:*?\[\\^~]|[\x00-\x1f\x7f]")
_ANCESTRY: dict[tuple[str, str, str], bool] = {}  # (repo, older, newer) -> is an ancestor
_ANCESTRY_SIZE = 256


def check_name(kind: str, value: str) -> None:
    """Refuse a remote or branch name (from configuration) that git would read as an option,
    or that would change the meaning of a refspec: one-line ChumpError naming what is wrong."""
    if not value:
        raise ChumpError(f"{kind} name is empty")
    if value.startswith("-"):
        raise ChumpError(f"{kind} name {value!r} starts with '-'")
    bad = _BAD.search(value)
    if bad is not None:
        what = "whitespace" if bad.group().isspace() else repr(bad.group())
        raise ChumpError(f"{kind} name {value!r} contains {what}")


def own_ref(remote: str, branch: str) -> str:
    """chump's copy of ``remote``'s ``branch``: ``refs/chump/remotes/<remote>/<branch>``."""
    return f"{NAMESPACE}/{remote}/{branch}"


def users_ref(remote: str, branch: str) -> str:
    """The user's remote-tracking ref of ``remote``'s ``branch`` (chump only reads it)."""
    return f"{USERS}/{remote}/{branch}"


def fetch(
    repo_root: Path, remote: str, branches: Sequence[str] | None = None, prune: bool = False
) -> None:
    """Fetch ``branches`` of ``remote`` (None: every branch) into chump's namespace only;
    ``prune`` drops chump's copies of branches the remote no longer has. Callers hold the
    fetch lock (``state.locks.fetch_lock``: two writers of one ref fail) and, where they may
    wait for it, the repository lock first (a fetch fails in the first moments of a ``git
    worktree add``). ChumpError when git fails."""
    check_name("remote", remote)
    for branch in branches or ():
        check_name("branch", branch)
    if branches is None:
        refspecs = [f"+refs/heads/*:{own_ref(remote, '*')}"]
    else:
        refspecs = [f"+refs/heads/{b}:{own_ref(remote, b)}" for b in branches]
    if not refspecs:
        return
    argv = ["git", "fetch", "--quiet", "--no-write-fetch-head", "--refmap=", "--no-tags"]
    argv += ["--no-auto-maintenance", *(["--prune"] if prune else []), remote, *refspecs]
    run(argv, cwd=repo_root)


def newer(repo_root: Path, own: str, users: str) -> str:
    """Of two commits of one remote branch (chump's, the user's; "" for a missing one): the
    user's when it descends from chump's, else chump's. One git process, only when both exist
    and differ; the answer for a pair is remembered (ancestry between commits never changes)."""
    if not own or not users or own == users:
        return own or users
    key = (str(repo_root), own, users)
    if key not in _ANCESTRY:
        proc = run(["git", "merge-base", "--is-ancestor", own, users], cwd=repo_root, check=False)
        if proc.returncode not in (0, 1):  # an error (a missing object): not worth remembering
            return own
        if len(_ANCESTRY) >= _ANCESTRY_SIZE:
            _ANCESTRY.clear()
        _ANCESTRY[key] = proc.returncode == 0
    return users if _ANCESTRY[key] else own


def remote_branch(ref: str) -> tuple[str, str] | None:
    """(remote, branch) when ``ref`` has the form of a remote-tracking branch
    (``origin/main``, ``refs/remotes/origin/main``) and names no revision expression;
    None otherwise (``main``, ``refs/heads/main``, a sha, ``origin/main~1``)."""
    if ref.startswith("refs/") and not ref.startswith(f"{USERS}/"):
        return None
    remote, _, branch = ref.removeprefix(f"{USERS}/").partition("/")
    try:
        check_name("remote", remote)
        check_name("branch", branch)
    except ChumpError:
        return None
    return remote, branch


def resolve(repo_root: Path, ref: str) -> str:
    """The commit a base ref means, or "" when it names none.

    A remote-tracking ref (``origin/main``) is the newer of chump's and the user's copy (see
    :func:`newer`); anything else (a local branch, a sha) resolves as git resolves it. At most
    two git processes.
    """
    named = remote_branch(ref)
    if named is not None:
        own, users = own_ref(*named), users_ref(*named)
        listed = run(
            ["git", "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", own, users],
            cwd=repo_root,
            check=False,
        ).stdout
        fields = (line.split(" ", 2) for line in listed.splitlines())
        tips = {f[2]: f[0] for f in fields if len(f) == 3 and f[1] == "commit"}
        if tips:
            return newer(repo_root, tips.get(own, ""), tips.get(users, ""))
    if not ref or ref.startswith("-"):
        return ""  # never an option to git
    verify = ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]
    proc = run(verify, cwd=repo_root, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""
