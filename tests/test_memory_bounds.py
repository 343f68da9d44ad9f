"""Structures that grow with traffic stay at their caps, whatever identifiers the traffic invents.

Each test feeds one structure many more distinct ids (senders, reasons, ...) than its cap and
asserts its size, never a timing. ``benchmarks/bench_memory.py`` measures the whole sidecar's
resident memory under such traffic.
"""

from __future__ import annotations

import json

import numpy as np

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


def test_label_joiner_holds_a_bounded_amount_of_id_text_whatever_the_ids_length():
    """Ids of 50,000 characters (a body of a few MB holds a hundred): the joiner keeps ``capacity``
    of them, each as a short digest, and a label sent with the same long id still joins."""
    import numpy as np

    from monitor.batch import Batch
    from monitor.labels import LabelJoiner
    from monitor.outputs import ClassIndex

    joiner = LabelJoiner(capacity=100)
    rng = np.random.default_rng(0)
    long_ids = []
    for b in range(10):
        ids = [f"{b}-{i}-" + "x" * 50_000 for i in range(100)]
        long_ids += ids
        joiner.remember(Batch.from_arrays(np.zeros((100, 1)), rng.dirichlet(np.ones(3), size=100),
                                          ts=np.full(100, float(b)), request_id=ids, segment=["s"] * 100))
        held = [k for k in joiner._ids.tolist() if k is not None]
        assert len(held) <= 100 and len(joiner) <= 100
        assert sum(map(len, held)) <= 100 * 300  # of 5,000,000 characters remembered
        assert sum(map(len, joiner._slot_of)) <= 100 * 300
    short = "short-id"
    joiner.remember(Batch.from_arrays(np.zeros((1, 1)), np.array([[0.2, 0.3, 0.5]]), ts=np.array([20.0]),
                                      request_id=[short], segment=["s"]))
    labeled, outcome = joiner.join_many([(30.0, [long_ids[-1], long_ids[0], short], ["a", "b", "c"])],
                                        ClassIndex(("a", "b", "c")), regression=False)
    assert outcome["joined"] == 2 and outcome["unknown_id"] == 1  # the newest long id and the short one; the oldest was evicted
    assert labeled is not None and labeled.label.tolist() == [0, 2]


def test_client_and_segment_text_of_json_events_is_bounded(tmp_path):
    """Clients and segments of 100,000 characters each, through the event format into a monitor:
    what it keeps of them (the segments tracked, each remembered prediction's segment) is cut; a
    queued event's client is its digest, the key the probing detector tracks it by (in code, and
    from the proxy's client header, too: never cut, so that two long ids stay two clients)."""
    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor
    from monitor.events import parse_event

    mon = Monitor(config=IRIS, registry=CollectorRegistry(), start_worker=False, live=False)
    for i in range(60):
        obj = {"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.3, 0.5], "request_id": f"r{i}",
               "client": f"{i}-" + "c" * 100_000, "segment": f"{i}-" + "s" * 100_000}
        event = parse_event(obj, 1_700_000_000.0 + i).event
        assert len(event[5]) == 65 and len(event[7]) <= 200
        mon.queue.put(event)
    mon.flush()
    seg = next(d for d in mon.detectors if type(d).__name__ == "SegmentDetector")
    assert seg._slots.learned == 20 and sum(map(len, seg._slots.names[:-1])) <= 20 * 200  # the cap's 20 values, each cut
    remembered = [s for s in mon.pipeline.joiner._segment.tolist() if s is not None]
    assert len(remembered) == 60 and max(map(len, remembered)) <= 200
    mon.close()


def test_categorical_value_codes_are_bounded_in_number_and_in_text():
    """The output-repeat detector memoises a code per categorical value: distinct values beyond
    the cap clear the memo, and long values are never kept in it (hashed at each sight, to the
    same code)."""
    import numpy as np

    from monitor.detectors import repetition
    from monitor.detectors.repetition import _CODES, _text_codes

    _CODES.clear()
    for chunk in range(50):  # 250,000 distinct short values
        values = np.array([f"v{chunk}-{i}" for i in range(5_000)], dtype=object)
        _text_codes(values)
        assert len(_CODES) <= repetition._CODES_CAP + 5_000
    long_values = np.array([f"{i}-" + "x" * 10_000 for i in range(2_000)], dtype=object)
    first = _text_codes(long_values)
    assert max(map(len, map(str, _CODES))) <= 300  # of 20,000,000 characters seen
    assert np.array_equal(first, _text_codes(long_values.copy()))  # the same value, the same code
    _CODES.clear()


def test_probing_client_ids_are_bounded_in_text_and_still_tell_clients_apart():
    """The decorator hands client ids to the probing detector as the caller gives them (the event
    format cuts them, the decorator does not): long ids are tracked by digest."""
    from monitor.detectors.probing.clients import ClientTable
    from monitor.labels import MAX_ID_CHARS

    table = ClientTable(100, salt="s", raw_ids=True)
    ids = np.array(["k" * 100_000 + str(i) for i in range(50)] + ["short"], dtype=object)
    first = table.lookup(ids).slots
    assert len(set(first.tolist())) == 51  # every client its own slot
    assert table.lookup(ids).slots.tolist() == first.tolist()  # and the same one when seen again
    assert max(len(k) for k in table._lru) <= MAX_ID_CHARS + 1
    assert table.slot_of("k" * 100_000 + "7") == first[7] and table.slot_of("short") == first[50]
