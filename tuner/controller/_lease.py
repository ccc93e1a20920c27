"""Lease owners that name a process exactly, so a crashed controller's lease can be taken over.

An owner string is ``tuner/<host>/<pid>/<process start ticks>``. A controller on the same host
whose predecessor's process no longer exists (pid gone, or reused by a process that started
at another time) may release that lease at once instead of waiting for it to expire.
"""

from __future__ import annotations

import os
import socket


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (Linux), None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, None if unknown or gone."""
    fields = _stat(pid)
    try:
        return None if fields is None else int(fields[19])
    except (ValueError, IndexError):
        return None


def own_owner() -> str:
    """This process's owner string."""
    pid = os.getpid()
    return f"tuner/{socket.gethostname()}/{pid}/{_start_ticks(pid) or 0}"


def owner_is_dead(owner: str) -> bool:
    """True only when ``owner`` is a process of this host that provably no longer runs."""
    parts = owner.split("/")
    if len(parts) != 4 or parts[0] != "tuner" or parts[1] != socket.gethostname():
        return False
    try:
        pid, ticks = int(parts[2]), int(parts[3])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat(pid)
    if fields is not None and fields[0] in (b"Z", b"X"):
        return True  # exited, waiting to be reaped
    current = _start_ticks(pid)
    return ticks != 0 and current is not None and current != ticks
