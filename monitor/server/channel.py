"""Length-prefixed frames over a Unix stream socket, with sockets passed alongside.

The proxy's data path in its own process (:mod:`monitor.server.dataplane`) reports to the
sidecar over one ``socketpair``: batches of tapped exchanges and metric increments, and the
client connections that asked for the sidecar's own routes, whose file descriptors travel as
``SCM_RIGHTS`` ancillary data on the frame that names them. Both ends are non-blocking and run
on an asyncio loop's reader/writer callbacks (asyncio's transports do not carry ancillary data).

A frame is a 4-byte little-endian length and that many bytes. The descriptors of one ``sendmsg``
arrive with the first byte of its data, so by the time a frame is complete the descriptor sent
with it has arrived; the reader queues descriptors in arrival order and the caller, who knows
which frames carry one, takes them in order (:meth:`FrameReader.take_fd`).
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import struct
from collections import deque
from collections.abc import Callable

__all__ = ["FrameReader", "FrameWriter", "can_pass_sockets", "MAX_FRAME"]

log = logging.getLogger("monitor.server")

_LEN = struct.Struct("<I")
MAX_FRAME = 1 << 30  # a frame longer than this is a broken stream, not a message
_MAX_FDS = 16


def can_pass_sockets() -> bool:
    """Whether this platform passes file descriptors over Unix sockets."""
    return hasattr(socket, "AF_UNIX") and hasattr(socket, "SCM_RIGHTS") and hasattr(socket.socket, "sendmsg")


class FrameWriter:
    """Frames queued and written as the socket takes them; a frame may carry one descriptor,
    sent with its first byte and closed here once sent. ``pending`` is the bytes not yet
    written, for the caller's own bound (the writer itself never drops a frame)."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.loop = loop
        self._items: deque[list] = deque()  # [memoryview of the frame's unsent bytes, fd or None]
        self.pending = 0
        self.broken = False
        self._watching = False

    def send(self, payload: bytes, fd: int | None = None) -> None:
        """Queue one frame (and ``fd``, which this writer then owns and closes)."""
        if self.broken:
            if fd is not None:
                os.close(fd)
            return
        frame = _LEN.pack(len(payload)) + payload
        if fd is None and not self._items:
            # nothing waits: straight to the socket (the common case), queued only for what it does not take
            try:
                sent = self.sock.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._break()
                return
            if sent == len(frame):
                return
            self._items.append([memoryview(frame)[sent:], None])
            self.pending += len(frame) - sent
            self._watch(True)
            return
        self._items.append([memoryview(frame), fd])
        self.pending += len(frame)
        if not self._watching:
            self._write()

    def _write(self) -> None:
        items = self._items
        while items:
            item = items[0]
            data, fd = item
            try:
                if fd is not None:
                    sent = self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
                else:
                    sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                self._watch(True)
                return
            except OSError:
                self._break()
                return
            if fd is not None:
                os.close(fd)
                item[1] = None
            self.pending -= sent
            if sent < len(data):
                item[0] = data[sent:]
                self._watch(True)
                return
            items.popleft()
        self._watch(False)

    def _watch(self, on: bool) -> None:
        if on and not self._watching:
            self.loop.add_writer(self.sock.fileno(), self._write)
        elif not on and self._watching:
            self.loop.remove_writer(self.sock.fileno())
        self._watching = on

    def _break(self) -> None:
        self.broken = True
        self._watch(False)
        for _, fd in self._items:
            if fd is not None:
                os.close(fd)
        self._items.clear()
        self.pending = 0

    def flush_blocking(self, timeout: float) -> bool:
        """Write what is queued, waiting up to ``timeout`` seconds (at exit, off the loop)."""
        import selectors
        import time

        self._watch(False)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.sock, selectors.EVENT_WRITE)
            while self._items and not self.broken:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return False
                self._write()
                self._watch(False)
        return not self._items

    def close(self) -> None:
        self._watch(False)
        if self._items:
            self._break()
        self.sock.close()


class FrameReader:
    """Reads frames as they arrive and calls ``on_frame(payload)`` for each; a frame that carried
    a descriptor takes it with :meth:`take_fd` (then owned by the caller). ``on_close()`` is
    called once when the other end closes or the stream breaks."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop,
                 on_frame: Callable[[bytes], None], on_close: Callable[[], None]) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.loop = loop
        self.on_frame = on_frame
        self.on_close = on_close
        self._buf = bytearray()
        self._fds: deque[int] = deque()
        self.closed = False
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(1 << 18, socket.CMSG_SPACE(_MAX_FDS * 4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        for level, kind, raw in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
                self._fds.extend(fds)
        if not data:
            self.close()
            return
        self._buf += data
        self._frames()

    def _frames(self) -> None:
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_FRAME:
                self.close()
                return
            if len(buf) - pos - 4 < size:
                break
            payload = bytes(buf[pos + 4: pos + 4 + size])
            pos += 4 + size
            try:
                self.on_frame(payload)
            except Exception:  # noqa: BLE001 - one message's failure is not the stream's: it is
                # consumed (never handled twice) and the frames after it are read on
                log.exception("channel: a frame of %d bytes could not be handled", size)
            if self.closed:
                return
        if pos:
            del buf[:pos]

    def take_fd(self) -> int | None:
        """The oldest descriptor received and not yet taken (None: none came)."""
        return self._fds.popleft() if self._fds else None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        while self._fds:
            os.close(self._fds.popleft())
        self.sock.close()
        self.on_close()
