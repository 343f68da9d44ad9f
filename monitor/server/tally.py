"""A count the proxy's data path process keeps in memory it shares with the sidecar.

The data path process (:mod:`monitor.server.dataplane_child`) sends what it answered in batches
every few milliseconds; killed (``kill -9``, the OOM killer), it takes the batch it was
collecting with it. A count in shared memory outlives it: the process adds each exchange it
taps just before the answer's last bytes go to the client (see ``ProxySink.tapping``), the
sidecar compares that with what arrived once the channel is closed and every frame read, and counts the difference as refused
(``reason="process_lost"``), so that nothing is lost without a counter.

One writer (the child) and one reader that reads only after the writer is gone (reaped): no
lock is needed.
"""

from __future__ import annotations

import mmap
import os
import tempfile

__all__ = ["SharedTally"]

_SIZE = 8  # one unsigned 64-bit counter


class SharedTally:
    """One 64-bit counter in a shared memory file (``memfd`` on Linux, an unlinked temporary
    file elsewhere), passed to the child by its descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _SIZE)
        self._view = memoryview(self._map).cast("Q")

    @classmethod
    def create(cls) -> "SharedTally":
        if hasattr(os, "memfd_create"):
            # close-on-exec: the data path process gets it by ``pass_fds`` only, no other child
            fd = os.memfd_create("monitor-dataplane-tally", os.MFD_CLOEXEC)
        else:
            fd, path = tempfile.mkstemp(prefix="monitor-dataplane-tally-")
            os.unlink(path)
        try:
            os.ftruncate(fd, _SIZE)
            return cls(fd)
        except OSError:
            os.close(fd)
            raise

    def add(self, n: int = 1) -> None:
        self._view[0] += n

    @property
    def value(self) -> int:
        return int(self._view[0])

    def close(self) -> None:
        """Unmaps and closes this process's descriptor (the other process keeps its own)."""
        self._view.release()
        self._map.close()
        os.close(self.fd)
