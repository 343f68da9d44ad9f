"""Forwarded events larger than a datagram go in parts (monitor.forwarding.ForwardingMonitor's
``_send_fragments``, the sidecar's ``ForwardReceiver._join_fragment``).

A gunicorn worker's batch call of some thousands of rows (about 200 kB of JSON over ``unix://``,
65 kB over UDP) was dropped whole as ``too_large``: the worker said so once, and the batch was not
monitored. Its JSON is now cut into up to MAX_FRAGMENTS datagrams, which the sidecar joins once the
last has come: one call, every row, its request ids joining their labels. Parts whose event never
completes are let go after REORDER_S (their loss is a datagram counted lost, or a drop the worker
counted), and all waiting parts are bounded by server.forward.receive_buffer_bytes.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from monitor.forwarding import MAX_FRAGMENTS, ForwardingMonitor
from monitor.server.forward import REORDER_S, ForwardReceiver
from monitor.server.settings import ForwardSettings
from monitor.store import MetricStore
from tests.conftest import free_port
from tests.sidecar_support import sample, start_sidecar, total, wait_until

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    z = np.exp(x[:, :3])
    return x, z / z.sum(axis=1, keepdims=True)


def test_a_batch_call_larger_than_a_datagram_arrives_whole_as_one_call(tmp_path) -> None:
    sock = str(tmp_path / "f.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    try:
        fm = ForwardingMonitor("iris", f"unix://{sock}", max_datagram_bytes=20_000, start=False)
        small_x, small_p = _batch(2, 1)
        fm.observe(small_x, small_p)
        x, p = _batch(3_000)
        ids = [f"big-{i}" for i in range(3_000)]
        fm.observe(x, p, request_id=ids)  # some 200 kB of JSON: about 20 parts
        fm.observe(small_x, small_p)
        fm.feedback(["big-1234", "big-2999"], ["setosa", "virginica"])
        fm.flush()
        c = fm.counters()
        assert c.dropped == {} and c.events_sent == 4 and c.datagrams_sent > 10
        mon = s.monitor()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 4)
        mon.flush()
        text = s.metrics()
        assert sample(text, "monitor_calls_total", model="iris") == 3  # the parts are one call
        assert sample(text, "monitor_predictions_total", model="iris") == 3_004
        assert sample(text, "monitor_feedback_labels_total", model="iris", outcome="joined") == 2
        assert total(text, "monitor_intake_events_refused_total") in (None, 0.0)
        fm.close()
    finally:
        s.close()


def test_over_udp_the_parts_fit_its_smaller_datagrams(tmp_path) -> None:
    port = free_port()
    s = start_sidecar({**IRIS, "server": {"forward": {"udp": f"127.0.0.1:{port}"}}}, tmp_path)
    try:
        fm = ForwardingMonitor("iris", f"udp://127.0.0.1:{port}", start=False)
        x, p = _batch(5_000)
        fm.observe(x, p)
        fm.flush()
        assert fm.counters().dropped == {} and fm.counters().datagrams_sent > 1
        mon = s.monitor()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 1)
        mon.flush()
        assert sample(s.metrics(), "monitor_predictions_total", model="iris") == 5_000
        fm.close()
    finally:
        s.close()


class _Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _receiver(buffer_bytes: int = 4 << 20) -> tuple[ForwardReceiver, list[tuple[str, str]], _Clock]:
    refused: list[tuple[str, str]] = []
    clock = _Clock()
    fake = SimpleNamespace(store=MetricStore("_sidecar"),
                           count_refused=lambda endpoint, reason, *a, **k: refused.append((endpoint, reason)))
    return ForwardReceiver(fake, ForwardSettings(receive_buffer_bytes=buffer_bytes), clock=clock), refused, clock


def _parts(text: str, n: int, fid: int = 1) -> list[dict]:
    size = -(-len(text) // n)
    return [{"id": fid, "i": i, "n": n, "data": text[i * size:(i + 1) * size]} for i in range(n)]


def test_parts_join_in_any_order_and_an_incomplete_event_is_let_go() -> None:
    r, refused, clock = _receiver()
    event = json.dumps({"inputs": [[1, 2, 3, 4]] * 50, "outputs": [[0.2, 0.3, 0.5]] * 50})
    parts = _parts(event, 4)
    assert [r._join_fragment("w:1", p) for p in (parts[2], parts[0], parts[3])] == [None, None, None]
    joined = r._join_fragment("w:1", parts[1])
    assert joined == event.encode() and not r._fragments and r._fragment_bytes == 0
    for p in _parts(event, 4, fid=2)[:3]:  # its last part lost on the way
        r._join_fragment("w:1", p)
    assert len(r._fragments) == 1
    clock.now += REORDER_S + 1
    r._join_fragment("w:1", _parts(event, 2, fid=3)[0])  # the next event's first part: the stale one goes
    assert list(r._fragments) == [("w:1", 3)] and r._fragment_bytes == len(_parts(event, 2, fid=3)[0]["data"])
    assert refused == []  # its loss is the lost datagram's, counted by sequence number


def test_waiting_parts_are_bounded_and_malformed_ones_refused() -> None:
    r, refused, _ = _receiver(buffer_bytes=1_000)
    for fid in range(1, 6):
        r._join_fragment("w:1", {"id": fid, "i": 0, "n": 2, "data": "x" * 300})
    assert r._fragment_bytes <= 1_000 and len(r._fragments) == 3
    assert refused == [("forward", "incomplete")] * 2
    for bad in ({"id": 1, "i": 2, "n": 2, "data": "x"}, {"id": 1, "i": 0, "n": MAX_FRAGMENTS + 1, "data": "x"},
                {"id": True, "i": 0, "n": 2, "data": "x"}, {"id": 1, "i": 0, "n": 2, "data": 5}, "part"):
        assert r._join_fragment("w:1", bad) is None
    assert refused[2:] == [("forward", "bad_datagram")] * 5


def test_the_counts_of_an_event_sent_in_parts_are_kept_whichever_part_comes_last() -> None:
    """The worker sends ``unknown_ids`` / ``dropped_ids`` with an event's last part; the sidecar
    counted them from the datagram that completed the join, so a last part that came before
    another part lost them uncounted (session 37)."""
    r, refused, _ = _receiver()
    event = json.dumps({"inputs": [[1, 2, 3, 4]] * 50, "outputs": [[0.2, 0.3, 0.5]] * 50})
    parts = _parts(event, 3)
    arrivals = [(parts[2], {"dropped_ids": 4, "unknown_ids": 1}), (parts[0], {}), (parts[2], {"dropped_ids": 4}),
                (parts[1], {})]  # the last part first, and once more (a duplicate counts once)
    outs = []
    for part, counts in arrivals:
        outs.append(r._join_fragment("w:1", part, counts))
    assert outs[:3] == [None, None, None] and outs[3] == event.encode()
    assert counts == {"dropped_ids": 4, "unknown_ids": 1}  # the completing datagram's, now the event's
    assert refused == []
