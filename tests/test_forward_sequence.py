"""The forwarding receiver's sequence accounting, on its own clock: every datagram's events are
processed once, a gap is counted lost only when it stays open for REORDER_S, and drops reported
only by a datagram that arrived late are counted (the sidecar end to end: tests/test_forwarding.py
and tests/test_sidecar_loose_ends_session11.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from monitor.server.forward import _MAX_GAPS, REORDER_S, ForwardReceiver
from monitor.server.settings import ForwardSettings
from monitor.store import MetricStore


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """A receiver whose processed datagrams are recorded instead of enqueued."""

    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.store = MetricStore("_sidecar")
        self.receiver = ForwardReceiver(SimpleNamespace(store=self.store), ForwardSettings(), clock=self.clock)
        self.processed: list[int] = []

    def send(self, seq: int, dropped: dict[str, int] | None = None, counted: dict[str, int] | None = None,
             sender: str = "host:7:cafe") -> None:
        msg = {"v": 1, "sender": sender, "seq": seq, "model": "m", "dropped": dropped or {}, "events": []}
        if counted:
            msg["counted"] = counted
        if self.receiver._account(json.loads(json.dumps(msg))):
            self.processed.append(seq)

    def value(self, name: str, *labels: str) -> float:
        return self.store.value(name, labels or None) or 0.0

    @property
    def lost(self) -> float:
        return self.value("monitor_forward_datagrams_lost")

    @property
    def discarded(self) -> float:
        return self.value("monitor_forward_datagrams_discarded")


def test_copies_are_discarded_and_a_late_datagram_within_the_reorder_time_is_processed() -> None:
    rig = Rig()
    for seq in (1, 2, 4, 2, 3, 3, 1, 5):
        rig.send(seq)
    assert rig.processed == [1, 2, 4, 3, 5]
    assert rig.discarded == 3 and rig.lost == 0
    rig.clock.now += 3600
    rig.receiver.sweep()
    assert rig.lost == 0  # every gap was filled


def test_a_gap_is_counted_lost_after_the_reorder_time_and_its_datagram_is_then_discarded() -> None:
    rig = Rig()
    rig.send(1)
    rig.send(4)  # 2 and 3 missing
    rig.clock.now += REORDER_S / 2
    rig.receiver.sweep()
    assert rig.lost == 0
    rig.send(2)  # late, within the reorder time: processed
    rig.clock.now += REORDER_S
    rig.receiver.sweep()
    assert rig.lost == 1  # 3 stayed missing
    rig.send(3)  # later still: counted lost already, so not processed (nothing counts twice)
    assert rig.processed == [1, 4, 2] and rig.discarded == 1 and rig.lost == 1


def test_gaps_are_also_closed_when_the_sender_speaks_again_or_is_forgotten() -> None:
    rig = Rig()
    rig.send(1)
    rig.send(3)
    rig.clock.now += REORDER_S + 1
    rig.send(4)  # no sweep in between: the next datagram closes the old gap
    assert rig.lost == 1
    rig.send(6)
    rig.clock.now += 400  # past the senders' TTL: forgotten, its open gap counted
    rig.receiver.sweep()
    assert rig.lost == 2 and rig.receiver._senders == {}


def test_a_jump_of_the_sequence_keeps_the_table_bounded_and_counts_every_number() -> None:
    rig = Rig()
    rig.send(1)
    rig.send(10_000)
    sender = rig.receiver._senders["host:7:cafe"]
    assert len(sender.gaps) == _MAX_GAPS
    assert rig.lost == 10_000 - 2 - _MAX_GAPS  # beyond the table: lost at once
    rig.send(10_000 - 5)  # within the table: still processed
    rig.clock.now += REORDER_S + 1
    rig.receiver.sweep()
    assert rig.lost == 10_000 - 2 - 1 and rig.processed == [1, 10_000, 10_000 - 5]


def test_a_reordered_first_datagram_is_not_a_restart_and_its_drops_are_counted_once() -> None:
    """Datagram 2 arrives before datagram 1. Read as a sender that started again under the same
    id, 1 reset the sender's totals, and 3 counted its drops a second time (5 for 3)."""
    rig = Rig()
    rig.send(2, {"queue_full": 3}, counted={"queue_full": 1})  # 1 reported queue_full 1 and was sent without error
    rig.send(1, {"queue_full": 1})
    rig.send(3, {"queue_full": 3}, counted={"queue_full": 3})
    assert rig.processed == [2, 1, 3]
    assert rig.value("monitor_forward_events_dropped", "queue_full") == 3
    assert rig.lost == 0 and rig.discarded == 0


def test_drops_that_only_a_late_datagram_reported_are_counted() -> None:
    """A sidecar that meets a sender at datagram 10 counts from the totals 10 says an earlier
    receiver counted, those of datagram 9. If 9 itself was delayed and arrives here after 10, no
    receiver counted what 9 reported: 8 dropped in all, 3 counted before."""
    rig = Rig()
    rig.send(10, {"queue_full": 8}, counted={"queue_full": 5})
    assert rig.value("monitor_forward_events_dropped", "queue_full") == 3
    rig.send(9, {"queue_full": 5}, counted={"queue_full": 2})
    assert rig.value("monitor_forward_events_dropped", "queue_full") == 6  # 8 - 2: datagram 8's went to the earlier receiver
    rig.send(8, {"queue_full": 2})  # 8 too arrives here, late: its drops are what 9 left out
    assert rig.value("monitor_forward_events_dropped", "queue_full") == 8
    rig.send(9, {"queue_full": 5}, counted={"queue_full": 2})  # a copy
    assert rig.value("monitor_forward_events_dropped", "queue_full") == 8 and rig.discarded == 1
    assert rig.processed == [10, 9, 8]


@pytest.mark.parametrize("delay", [REORDER_S + 1, 0.0])
def test_numbers_below_the_first_datagram_heard_are_never_counted_lost(delay: float) -> None:
    """A sidecar restarted mid-session meets its senders at whatever number they reached: what
    came before went to the earlier sidecar, not lost here; older than the reorder time it is
    discarded (it may have been processed there)."""
    rig = Rig()
    rig.send(50)
    rig.clock.now += delay
    rig.send(49)
    rig.clock.now += 3600
    rig.receiver.sweep()
    assert rig.lost == 0
    assert rig.processed == ([50, 49] if delay == 0.0 else [50]) and rig.discarded == (delay > 0)


def test_a_datagram_without_a_sequence_is_processed_without_accounting() -> None:
    rig = Rig()
    for seq in (None, "7", True, 0, -3):
        msg = {"v": 1, "sender": "s", "seq": seq, "dropped": {"queue_full": 9}, "events": []}
        assert rig.receiver._account(msg)
    assert rig.lost == 0 and rig.discarded == 0 and rig.value("monitor_forward_events_dropped", "queue_full") == 0


@pytest.mark.parametrize("field", ["seq", "dropped"])
def test_numbers_beyond_what_a_counter_holds_exactly_are_not_read(field: str) -> None:
    """The review's: a sequence number or drop total of 10**400 raised OverflowError out of the
    receiver (the float counters cannot take it) after 64 gaps had been noted, counted lost 5 s
    later; one of 1e300 inflated the lost counter for good."""
    rig = Rig()
    rig.send(1, {"queue_full": 1})
    for huge in (10**400, 2**53 + 1):
        if field == "seq":
            rig.send(huge)
        else:
            rig.send(2 if huge > 2**53 + 1 else 3, {"queue_full": huge})
    rig.clock.now += REORDER_S + 1
    rig.receiver.sweep()
    assert rig.lost == 0 and rig.value("monitor_forward_events_dropped", "queue_full") == 1
    assert len(rig.processed) == 3  # the events still go through


def test_with_many_senders_each_tracks_fewer_gaps(monkeypatch) -> None:
    """The review's: 10,000 senders with 64 gaps each held some 90 MB, and a datagram of a new
    sender walked them all (44 ms) when the table was full. The gaps share a budget now, and only
    the housekeeping's sweep walks them."""
    monkeypatch.setattr("monitor.server.forward._GAP_BUDGET", 100)
    rig = Rig()
    for i in range(50):
        rig.send(1, sender=f"s{i}")
    rig.send(60, sender="s0")  # 58 skipped, with 50 senders: 100 // 50 = 2 < 4 tracked
    assert len(rig.receiver._senders["s0"].gaps) == 4 and rig.lost == 58 - 4
    rig.send(57, sender="s0")  # tracked: processed
    rig.send(40, sender="s0")  # counted lost at once: discarded
    assert rig.processed[-1] == 57 and rig.discarded == 1
    rig.clock.now += REORDER_S + 1
    rig.receiver.sweep()
    assert rig.lost == 58 - 1


def test_close_counts_what_it_could_not_send_in_time(tmp_path) -> None:
    """close() waited 5 s for the sender thread, then returned with events still unsent: the
    process exited, the daemon thread with it, and those events were counted nowhere (a loaded
    CI machine starved a worker's sender: 128 of 1,208 events missing from its counters)."""
    import time as _time

    from monitor.forwarding import ForwardingMonitor

    fm = ForwardingMonitor("m", f"unix://{tmp_path / 'none.sock'}", batch_max=1, start=False)
    sent: list[int] = []

    def slow_send(pieces: list[str], **kwargs: object) -> bool:
        _time.sleep(0.1)
        sent.append(len(pieces))
        fm.stats.events_sent += len(pieces)
        return True

    fm._send = slow_send  # type: ignore[method-assign]
    for i in range(200):
        fm.observe([[float(i)]], [[0.5, 0.5]])
    fm._thread.start()
    fm.close(timeout=0.5)  # 200 sends of 0.1 s cannot all be done
    c = fm.counters()
    assert c.dropped.get("shutdown_timeout", 0) > 0
    assert c.events_sent + c.dropped["shutdown_timeout"] == 200
