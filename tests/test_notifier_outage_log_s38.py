"""An Alertmanager that is down is said in the log once, not at every attempt of every batch
(s38a's walkthrough: 10 warning lines in 15 s, burying the rest of the log), reminded at most
every ``OUTAGE_LOG_EVERY_S`` with the number of failures since, and its recovery said; a refusal
(4xx), which retrying cannot mend, is said every time."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from monitor.rules.notifier import DeliveryError, Notifier, OutgoingAlert


def _alert(name: str) -> OutgoingAlert:
    return OutgoingAlert(labels={"alertname": name}, annotations={}, starts_at=1_700_000_000.0, ends_at=1_700_000_240.0)


class FlakySink:
    """Down for its first ``down`` attempts, then up."""

    name = "alertmanager"

    def __init__(self, down: int, retryable: bool = True) -> None:
        self.down, self.retryable, self.attempts, self.got = down, retryable, 0, []

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        self.attempts += 1
        if self.attempts <= self.down:
            raise DeliveryError("connection refused", retryable=self.retryable)
        self.got.extend(a.labels["alertname"] for a in alerts)


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if "alert delivery to alertmanager" in r.getMessage()]


def test_an_outage_is_said_once_and_its_end_said(caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink(down=7)
    with caplog.at_level(logging.INFO, logger="monitor"):
        with Notifier([sink], max_retries=2, backoff_initial_s=0.0) as n:
            for name in ("A", "B", "C"):  # two batches fail whole (3 attempts each), the third after one more failure
                n.send([_alert(name)])
                n.flush(10)
    assert sink.got == ["C"]
    lines = _lines(caplog)
    warnings = [m for level, m in lines if level == logging.WARNING]
    assert len(warnings) == 1 and "attempt 1/3" in warnings[0] and "at most every 300 s" in warnings[0], lines
    infos = [m for level, m in lines if level == logging.INFO]
    assert infos == ["alert delivery to alertmanager works again, after 7 failed attempt(s)"], lines


def test_a_reminder_counts_the_failures_not_said(caplog: pytest.LogCaptureFixture) -> None:
    """The clock moves 100 s per failed attempt: the first is said, the next two are not (under
    300 s since), the fourth reminds with the two between."""
    sink = FlakySink(down=4)
    ticks = iter(range(0, 10_000, 100))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        with Notifier([sink], max_retries=4, backoff_initial_s=0.0) as n:
            n._now = lambda: float(next(ticks))
            n.send([_alert("A")])
            n.flush(10)
    warnings = [m for level, m in _lines(caplog) if level == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "attempt 1/5" in warnings[0] and "attempt 4/5" in warnings[1], warnings
    assert "2 more failed attempt(s) since the last line" in warnings[1], warnings
    assert sink.got == ["A"]


def test_a_refusal_is_said_every_time(caplog: pytest.LogCaptureFixture) -> None:
    sink = FlakySink(down=2, retryable=False)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        with Notifier([sink], max_retries=3, backoff_initial_s=0.0) as n:
            for name in ("A", "B"):
                n.send([_alert(name)])
                n.flush(10)
    warnings = [m for level, m in _lines(caplog) if level == logging.WARNING]
    assert len(warnings) == 2 and all("not retried" in m for m in warnings), warnings
