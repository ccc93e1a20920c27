"""Lease owners that name a process exactly, so a crashed controller's lease can be taken over.

An owner string is ``tuner/<host>/<pid>/<process start time>`` (hundredths of a second since
the epoch, from psutil). A controller on the same host
whose predecessor's process no longer exists (pid gone, or reused by a process that started
at another time) may release that lease at once instead of waiting for it to expire.
"""

from __future__ import annotations

import os
import socket

import psutil


def _start_stamp(pid: int) -> int | None:
    """The process's start time in hundredths of a second since the epoch (psutil, on any
    OS it supports), None if unknown or gone. Stable for one process across calls and
    readers, so with the pid it names the process."""
    try:
        return round(psutil.Process(pid).create_time() * 100)
    except (psutil.Error, OSError):
        return None


def own_owner() -> str:
    """This process's owner string."""
    pid = os.getpid()
    return f"tuner/{socket.gethostname()}/{pid}/{_start_stamp(pid) or 0}"


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
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return True  # exited, waiting to be reaped
        current = round(process.create_time() * 100)
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, OSError):
        return False  # exists, not ours to inspect
    return ticks != 0 and current != ticks
