"""The webhook sink sends what an Alertmanager would send its receiver: an alert that fires, its
resolution, and a still-firing alert again every repeat interval (4 h), not every re-send of the
evaluator (each resend delay while it fires, 15 minutes of them after it resolved).

Before, a chat or paging relay behind ``rules.webhook`` was posted the same firing alert every
75 s and its resolution thirteen times.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import pytest

from monitor.promql.storage import SeriesStore
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.loader import parse_rules_text
from monitor.rules.notifier import OutgoingAlert, WebhookSink
from tests.test_rules_notifier import Receiver

T0 = 1_700_000_000


class Direct:
    """Hands the evaluator's notifications straight to the sink (no thread: deterministic)."""

    def __init__(self, sink: WebhookSink) -> None:
        self.sink = sink

    def send(self, alerts: list[OutgoingAlert]) -> None:
        self.sink.deliver(alerts)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _run(sink: WebhookSink, up: list[float], clock: list[float]) -> None:
    groups, errors = parse_rules_text("groups: [{name: g, rules: [{alert: ModelDown, expr: up == 0}]}]")
    assert not errors
    store = SeriesStore()
    ev = RuleEvaluator(groups, storage=store, notifier=Direct(sink), default_interval_s=15)
    for i, v in enumerate(up):
        t = T0 + 15 * i
        clock[0] = float(t)
        store.append_scrape(t, [({"__name__": "up", "job": "m"}, v)])
        ev.evaluate(t)


def test_one_post_when_it_fires_and_one_when_it_resolves(receiver: Receiver) -> None:
    clock = [0.0]
    sink = WebhookSink(receiver.url, clock=lambda: clock[0])
    _run(sink, [0.0] * 80 + [1.0] * 80, clock)  # fires 20 minutes, then resolved for 20 minutes
    statuses = [(b["status"], [a["status"] for a in b["alerts"]]) for _, _, b in receiver.requests]
    assert statuses == [("firing", ["firing"]), ("resolved", ["resolved"])]


def test_a_long_firing_alert_is_repeated_every_repeat_interval(receiver: Receiver) -> None:
    clock = [0.0]
    sink = WebhookSink(receiver.url, clock=lambda: clock[0], repeat_interval_s=600.0)
    _run(sink, [0.0] * 100, clock)  # 25 minutes firing: at 0, 10 and 20 minutes (a re-send after each)
    assert Counter(b["status"] for _, _, b in receiver.requests) == {"firing": 3}


def test_a_failed_post_is_delivered_by_the_next_resend() -> None:
    r = Receiver(statuses=[500])
    try:
        clock = [0.0]
        sink = WebhookSink(r.url, clock=lambda: clock[0])
        a = OutgoingAlert(labels={"alertname": "ModelDown"}, annotations={}, starts_at=T0, ends_at=T0 + 240)
        with pytest.raises(Exception):
            sink.deliver([a])
        sink.deliver([a])  # the evaluator's re-send: the receiver has not heard it yet
        sink.deliver([a])  # now it has
        assert len(r.requests) == 2  # the failed post, its redelivery; the third was a repeat
    finally:
        r.close()


def test_several_sends_of_one_alert_in_a_batch_post_the_newest(receiver: Receiver) -> None:
    sink = WebhookSink(receiver.url, clock=lambda: 0.0)
    firing = OutgoingAlert(labels={"alertname": "ModelDown"}, annotations={}, starts_at=T0, ends_at=T0 + 240)
    resolved = OutgoingAlert(labels={"alertname": "ModelDown"}, annotations={}, starts_at=T0, ends_at=T0 + 60,
                             resolved=True)
    sink.deliver([firing, firing, resolved])
    (body,) = [b for _, _, b in receiver.requests]
    assert body["status"] == "resolved" and [a["status"] for a in body["alerts"]] == ["resolved"]
