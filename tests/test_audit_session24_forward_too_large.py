"""A forwarded event larger than a datagram (a batch of some thousands of rows: about 200 kB of
JSON over a Unix socket, 65 kB over UDP), found by session 24's audit. The worker dropped it as
``too_large`` without a word: the count reached the sidecar only, under ``model="_sidecar"``,
though MonitorForwardingDrops' runbook sends on-call to "the workers' log" for why. The worker
now says it once, with the event's size, the limit and the fix, as it does for unserializable
events; further ones are counted without a log line."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from monitor.forwarding import ForwardingMonitor

__all__: list[str] = []


def test_a_worker_says_once_why_an_event_is_too_large_to_forward(tmp_path: Any, caplog: Any) -> None:
    # 20,000 rows: some 700 kB of JSON, more than 64 parts of a 20 kB datagram
    fm = ForwardingMonitor("iris", f"unix://{tmp_path / 'fwd.sock'}", max_datagram_bytes=20_000, start=False)
    try:
        rows = np.ones((20_000, 4))
        scores = np.tile([0.2, 0.3, 0.5], (20_000, 1))
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for _ in range(3):
                fm.observe(rows, scores)
            fm.flush()
        assert fm.counters().dropped.get("too_large") == 3
        said = [r.getMessage() for r in caplog.records if "too_large" in r.getMessage()]
        assert len(said) == 1, said
        assert "20000 rows" in said[0] and "64 forwarding datagrams (20000 bytes each" in said[0] and "/v1/events" in said[0] and "Fix:" in said[0]
    finally:
        fm.close()


class _FailingSocket:
    """A datagram socket whose sends fail with ``errno_``, as the kernel refuses them."""

    def __init__(self, errno_: int) -> None:
        self.errno_ = errno_

    def sendto(self, payload: bytes, address: Any) -> None:
        import os

        raise OSError(self.errno_, os.strerror(self.errno_))

    def close(self) -> None:
        pass


def test_a_send_the_kernel_refuses_is_said_once_with_its_reason(tmp_path: Any, caplog: Any, monkeypatch: Any) -> None:
    """A datagram the kernel refuses (EMSGSIZE: larger than the socket allows; any other error)
    was counted as too_large or send_error with no log line either."""
    import errno

    for code, reason in ((errno.EMSGSIZE, "too_large"), (errno.EIO, "send_error")):
        fm = ForwardingMonitor("iris", f"unix://{tmp_path / 'fwd.sock'}", start=False)
        monkeypatch.setattr(fm, "_socket", lambda code=code: _FailingSocket(code))
        try:
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="monitor"):
                for _ in range(3):
                    fm.observe(np.ones((2, 4)), np.tile([0.2, 0.3, 0.5], (2, 1)))
                    fm.flush()
            assert fm.counters().dropped.get(reason) == 3
            said = [r.getMessage() for r in caplog.records if f"counted as {reason}" in r.getMessage()]
            assert len(said) == 1 and "Fix:" in said[0] and "fwd.sock" in said[0], said
        finally:
            fm.close()
