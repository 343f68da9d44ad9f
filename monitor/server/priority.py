"""Thread priorities for ``server.worker_nice``: the sidecar's monitoring work below the proxy's
data path.

Linux keeps a nice value per thread (``setpriority(PRIO_PROCESS, tid)``), and a thread inherits
its creator's at creation, as a process inherits the forking thread's: so nicing a thread nices
what it starts later, and a thread left at the first priority can start processes at it.
Elsewhere the value is the whole process's, and nothing is changed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

__all__ = ["lower_priority", "lower_process_priority"]

log = logging.getLogger("monitor.server")


def _nice(tid: int, nice: int) -> None:
    """Raise thread ``tid``'s nice value to ``nice`` (never lower it: that needs a privilege)."""
    os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))


def lower_priority(nice: int) -> bool:
    """Raise the calling thread's nice value to ``nice`` (threads it starts inherit it); False
    where the platform cannot."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        log.warning("server.worker_nice: thread priorities are Linux's; left unchanged on %s", sys.platform)
        return False
    try:
        _nice(threading.get_native_id(), nice)
    except OSError as err:
        log.warning("server.worker_nice: cannot lower the workers' priority (%s)", err)
        return False
    return True


def lower_process_priority(nice: int, *, spare: int | None = None) -> int:
    """Raise the nice value of every thread of this process but ``spare`` (a native thread id) to
    ``nice``; threads started later by them inherit it. Returns how many were changed (Linux)."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return 0
    changed = 0
    for tid in tids:
        if tid == spare:
            continue
        try:
            _nice(tid, nice)
            changed += 1
        except OSError:
            continue  # a thread that ended meanwhile
    return changed
