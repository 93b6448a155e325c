"""Who owns a lease or a dispatch: an orchestrator process, named by host, pid and the
process's start time — so a recycled pid is never mistaken for the process that is gone.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path


def proc_start_ticks(pid: int) -> str:
    """Kernel start time of ``pid`` (Linux), so a recycled pid is not mistaken for its owner."""
    if pid <= 0:
        return ""  # no process (a spawner without one): nothing in /proc to read
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_own: tuple[int, str] = (0, "")  # this process's pid and owner id, once asked


def _own_owner() -> str:
    """This process's owner id, read once per process (a forked child has a pid of its own,
    so it reads its own)."""
    global _own
    pid = os.getpid()
    if _own[0] != pid:
        _own = (pid, f"{socket.gethostname()}:{pid}:{proc_start_ticks(pid)}")
    return _own[1]


def make_owner(pid: int | None = None) -> str:
    """An id for this orchestrator process: host, pid and process start time."""
    if pid is None or pid == os.getpid():
        return _own_owner()
    return f"{socket.gethostname()}:{pid}:{proc_start_ticks(pid)}"


def owner_alive(owner: str) -> bool:
    """Whether the process named by ``owner`` still runs (other hosts are assumed alive).

    This process is, without a look at ``/proc``: the loop asks about its own leases on
    every refill."""
    if owner == _own_owner():
        return True
    host, _, rest = owner.partition(":")
    pid_text, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    return pid_alive(pid) and (not ticks or proc_start_ticks(pid) == ticks)


def agent_alive(pid: int | None, start_ticks: str) -> bool:
    """Whether the agent process ``pid`` (started at ``start_ticks``) still runs, not a zombie
    and not a recycled pid."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return pid_alive(pid) and not start_ticks  # no /proc: trust the pid alone
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0] != "Z" and (not start_ticks or fields[19] == start_ticks)


def group_members(pgid: int, leader_ticks: str) -> list[int]:
    """Live processes of the process group ``pgid`` whose leader started at ``leader_ticks``
    (an agent's supervisor): the agent and what it started, even after the leader died.

    Linux keeps a group's id from being reused while any member lives, so when a live process
    has pid ``pgid`` but another start time, the group is gone: [].
    """
    if not pgid or not leader_ticks:
        return []  # without the leader's start time the group cannot be told from a stranger's
    try:
        leader = Path(f"/proc/{pgid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        leader = []
    if leader and leader[0] != "Z" and leader[19] != leader_ticks:
        return []  # the id now names someone else
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue  # gone meanwhile
        if fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def group_alive(pgid: int | None, leader_ticks: str) -> bool:
    """Whether an agent's process group still has a live process: its supervisor, or the
    agent and its children after the supervisor alone was killed."""
    if not pgid:
        return False
    if agent_alive(pgid, leader_ticks):
        return True
    if not Path("/proc").is_dir():
        return False
    return bool(group_members(pgid, leader_ticks))


def stop_group(pgid: int | None, leader_ticks: str) -> bool:
    """SIGKILL what is left of an agent's process group (never a later group reusing the
    id); whether anything was left."""
    if not pgid or not leader_ticks or not group_alive(pgid, leader_ticks):
        return False
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True
