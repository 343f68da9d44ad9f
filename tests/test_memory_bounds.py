"""Structures that grow with traffic stay at their caps, whatever identifiers the traffic invents.

Each test feeds one structure many more distinct ids (senders, reasons, ...) than its cap and
asserts its size, never a timing. ``benchmarks/bench_memory.py`` measures the whole sidecar's
resident memory under such traffic.
"""

from __future__ import annotations

import json

from monitor.server import forward
from monitor.server.forward import ForwardReceiver
from tests.sidecar_support import quiet_factory, sample, start_sidecar

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _datagram(sender: str, seq: int, dropped: dict[str, int] | None = None) -> bytes:
    return json.dumps({"v": 1, "sender": sender, "seq": seq, "model": "iris", "dropped": dropped or {},
                       "events": []}).encode()


def test_forward_senders_stay_at_their_cap_under_a_flood_of_fresh_ids(tmp_path, monkeypatch):
    """Every datagram names a new sender, all within the five minutes a quiet sender is kept:
    the table keeps the most recently heard from, up to its cap."""
    monkeypatch.setattr(forward, "_MAX_SENDERS", 50)
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        receiver = ForwardReceiver(s.sidecar, s.sidecar.settings.forward)
        receiver.receive(_datagram("worker-1", 1), "udp")
        for i in range(1_000):
            receiver.receive(_datagram(f"fresh-{i}", 1), "udp")
            if i % 10 == 0:
                receiver.receive(_datagram("worker-1", 2 + i // 10), "udp")  # a real worker, heard from regularly
            assert len(receiver._senders) <= 50
        assert len(receiver._senders) == 50
        assert "worker-1" in receiver._senders  # least recently heard from goes first, not the oldest id
        assert receiver._senders["worker-1"].seq == 2 + 990 // 10
    finally:
        s.close()


def test_forward_drop_reasons_per_sender_stay_at_their_cap(tmp_path):
    """One sender whose cumulative drop map names new reasons in every datagram."""
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        receiver = ForwardReceiver(s.sidecar, s.sidecar.settings.forward)
        receiver.receive(_datagram("w", 1, {"queue_full": 3}), "udp")
        for i in range(200):
            receiver.receive(_datagram("w", 2 + i, {"queue_full": 5, **{f"r{i}-{j}": 1 for j in range(10)}}), "udp")
        tracked = receiver._senders["w"].dropped
        assert len(tracked) <= 16 and len(tracked) == forward._MAX_REASONS  # of 2,001 reasons sent
        assert tracked["queue_full"] == 5  # a reason tracked before the flood goes on being counted
        text = s.metrics()
        assert sample(text, "monitor_forward_events_dropped_total", model="_sidecar", reason="queue_full") == 5
    finally:
        s.close()
