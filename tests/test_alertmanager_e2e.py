"""End to end with a real Alertmanager: the agent's rule evaluator fires an alert, the notifier
posts it to Alertmanager's API v2, Alertmanager routes it to a webhook receiver run by this test,
and the resolution follows the same way."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from monitor.promql.storage import SeriesStore
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.loader import parse_rules_text
from monitor.rules.notifier import AlertmanagerSink, Notifier, WebhookSink, alertmanager_fingerprint
from tests.conftest import require_binary
from tests.e2e.processes import Alertmanager, WebhookReceiver

pytestmark = pytest.mark.e2e


def wait_for(receiver: WebhookReceiver, pred: Callable[[dict[str, Any]], bool],
             timeout_s: float = 60.0) -> dict[str, Any]:
    """The first notification satisfying ``pred`` (polls the receiver; fails after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = [n for _, n in list(receiver.notifications)]  # a copy: the server thread appends
        found = [n for n in seen if pred(n)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            pytest.fail(f"no matching webhook notification; received: {json.dumps(seen)[:2000]}")
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[str]:
    exe = require_binary("prometheus-alertmanager")
    with Alertmanager(exe, tmp_path / "am", receiver.url) as am:
        yield am.url


RULES = """
groups:
  - name: model
    interval: 1s
    rules:
      - alert: LowConfidence
        expr: model_confidence_mean < 0.5
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.model }} confidence is {{ $value | humanizePercentage }}"
          runbook_url: "https://runbooks.example/{{ $labels.model }}"
"""


def _parse_time(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_alert_fires_and_resolves_through_real_alertmanager(alertmanager: str, receiver: WebhookReceiver) -> None:
    groups, errs = parse_rules_text(RULES, "model.yml")
    assert errs == []
    store = SeriesStore(retention_s=3600)
    notifier = Notifier([AlertmanagerSink(alertmanager)], backoff_initial_s=0.1)
    ev = RuleEvaluator(groups, storage=store, notifier=notifier, external_labels={"cluster": "edge-1"},
                       external_url="http://agent.example:9100")
    # Event time a minute in the past: the resolution's endsAt is then already over for
    # Alertmanager's wall clock, so it resolves at once; the firing alert's endsAt
    # (valid_until = t0 + 4 x resend delay) is in the future, so it fires.
    t0 = math.floor(time.time()) - 60
    series = {"__name__": "model_confidence_mean", "model": "churn"}
    try:
        store.append_scrape(t0, [(series, 0.31)], source="scrape")
        (tr,) = ev.evaluate(t0)
        assert (tr.from_state, tr.to_state) == ("inactive", "firing")
        assert notifier.flush(30) and notifier.stats.sent == 1

        firing = wait_for(receiver, lambda p: p["status"] == "firing")
        (a,) = firing["alerts"]
        want_labels = {"alertname": "LowConfidence", "severity": "page", "model": "churn", "cluster": "edge-1"}
        assert a["labels"] == want_labels
        assert a["annotations"] == {"summary": "churn confidence is 31%",
                                    "runbook_url": "https://runbooks.example/churn"}
        assert a["status"] == "firing"
        assert _parse_time(a["startsAt"]) == t0
        assert a["generatorURL"] == ("http://agent.example:9100/graph?g0.expr="
                                     "model_confidence_mean+%3C+0.5&g0.tab=1")
        assert a["fingerprint"] == alertmanager_fingerprint(want_labels)  # same identity as Alertmanager
        assert firing["groupLabels"] == {"alertname": "LowConfidence", "model": "churn"}

        # The condition clears: the evaluator resolves the alert and sends the resolution.
        store.append_scrape(t0 + 1, [(series, 0.9)], source="scrape")
        (tr,) = ev.evaluate(t0 + 1)
        assert (tr.from_state, tr.to_state) == ("firing", "inactive")
        assert notifier.flush(30) and notifier.stats.sent == 2
        resolved = wait_for(receiver, lambda p: p["status"] == "resolved")
        (r,) = resolved["alerts"]
        assert r["status"] == "resolved" and r["labels"] == want_labels
        assert _parse_time(r["endsAt"]) == t0 + 1
        assert notifier.stats.failed == 0 and notifier.stats.dropped == 0
    finally:
        notifier.close()


def test_generic_webhook_sink_matches_alertmanager_webhook_shape(alertmanager: str,
                                                                 receiver: WebhookReceiver) -> None:
    """The agent's own webhook payload has exactly the fields Alertmanager's webhook has."""
    groups, _ = parse_rules_text(RULES, "model.yml")
    store = SeriesStore(retention_s=3600)
    notifier = Notifier([AlertmanagerSink(alertmanager), WebhookSink(receiver.url + "?direct=1")])
    ev = RuleEvaluator(groups, storage=store, notifier=notifier)
    t0 = math.floor(time.time()) - 60
    try:
        store.append_scrape(t0, [({"__name__": "model_confidence_mean", "model": "m"}, 0.2)], source="s")
        ev.evaluate(t0)
        assert notifier.flush(30)
        ours = wait_for(receiver, lambda p: p["receiver"] == "monitor")
        theirs = wait_for(receiver, lambda p: p["receiver"] != "monitor")
        assert set(ours) == set(theirs)
        assert set(ours["alerts"][0]) == set(theirs["alerts"][0])
        assert ours["alerts"][0]["fingerprint"] == theirs["alerts"][0]["fingerprint"]
        assert ours["alerts"][0]["labels"] == theirs["alerts"][0]["labels"]
        assert ours["commonLabels"] == theirs["commonLabels"] and ours["version"] == theirs["version"] == "4"
    finally:
        notifier.close()
