"""The alert state machine and rule evaluator, driven by an injected event-time clock."""

from __future__ import annotations

import json
import math
import textwrap
from typing import Sequence

import pytest

from monitor.promql.engine import Engine
from monitor.promql.storage import SeriesStore
from monitor.rules.alerting import RESOLVED_RETENTION_S, AlertState
from monitor.rules.evaluator import RuleEvaluator, alerts_api_response
from monitor.rules.loader import parse_rules_text
from monitor.rules.notifier import OutgoingAlert


class CollectingNotifier:
    """Records what the evaluator hands to its notifier (the delivery itself is tested against a
    real HTTP server and a real Alertmanager elsewhere)."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[OutgoingAlert]]] = []
        self.now = 0.0

    def send(self, alerts: Sequence[OutgoingAlert]) -> None:
        self.batches.append((self.now, list(alerts)))


def make(rules_yaml: str, **kw: object) -> tuple[RuleEvaluator, SeriesStore, CollectingNotifier]:
    groups, errs = parse_rules_text(textwrap.dedent(rules_yaml), "t.yml")
    assert errs == [], errs
    store = SeriesStore(retention_s=7200)
    notifier = CollectingNotifier()
    ev = RuleEvaluator(groups, storage=store, notifier=notifier, **kw)  # type: ignore[arg-type]
    return ev, store, notifier


def feed(store: SeriesStore, t: float, value: float | None, name: str = "m", **labels: str) -> None:
    """One scrape of metric ``name`` at ``t`` (``None``: the series is gone, i.e. stale)."""
    samples = [] if value is None else [({"__name__": name, **labels}, value)]
    store.append_scrape(t, samples, source=f"scrape:{name}")


def run(ev: RuleEvaluator, store: SeriesStore, notifier: CollectingNotifier, values: dict[int, float | None],
        until: int, step: int = 60) -> list:  # type: ignore[type-arg]
    out = []
    v: float | None = None
    for t in range(0, until + 1, step):
        if t in values:
            v = values[t]
        feed(store, t, v)
        notifier.now = t
        out.extend(ev.evaluate(t))
    return out


def states(transitions: list) -> list[tuple[float, str, str]]:  # type: ignore[type-arg]
    return [(tr.time, tr.from_state, tr.to_state) for tr in transitions]


THRESHOLD = """
groups:
  - name: g
    interval: 1m
    rules:
      - alert: High
        expr: m > 10
        for: {for_}
        keep_firing_for: {keep}
        labels: {{severity: page}}
        annotations: {{summary: "value is {{{{ $value }}}}"}}
"""


def test_pending_then_firing_after_for_then_resolved() -> None:
    ev, store, n = make(THRESHOLD.format(for_="5m", keep="0s"))
    tr = run(ev, store, n, {0: 20.0, 600: 1.0}, until=700)
    assert states(tr) == [(0.0, "inactive", "pending"), (300.0, "pending", "firing"), (600.0, "firing", "inactive")]
    firing = tr[1]
    assert firing.labels == {"alertname": "High", "severity": "page"} and firing.value == 20.0
    assert firing.annotations == {"summary": "value is 20"}


def test_for_zero_fires_immediately() -> None:
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="0s"))
    tr = run(ev, store, n, {0: 20.0}, until=60)
    assert states(tr) == [(0.0, "inactive", "firing")]


def test_pending_that_clears_never_fires_or_notifies() -> None:
    ev, store, n = make(THRESHOLD.format(for_="5m", keep="0s"))
    tr = run(ev, store, n, {0: 20.0, 120: 1.0}, until=600)
    assert states(tr) == [(0.0, "inactive", "pending"), (120.0, "pending", "inactive")]
    assert n.batches == [] and ev.alerts() == []


def test_keep_firing_for_holds_the_alert() -> None:
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="3m"))
    tr = run(ev, store, n, {0: 20.0, 120: 1.0}, until=600)
    # cleared at 120: keeps firing while ts - 120 < 180, resolves at 300
    assert states(tr) == [(0.0, "inactive", "firing"), (300.0, "firing", "inactive")]


def test_keep_firing_since_resets_when_condition_returns() -> None:
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="3m"))
    tr = run(ev, store, n, {0: 20.0, 120: 1.0, 240: 20.0, 300: 1.0}, until=600)
    # back at 240 (still firing, timer reset), cleared again at 300 -> resolves at 480
    assert states(tr) == [(0.0, "inactive", "firing"), (480.0, "firing", "inactive")]


def test_keep_firing_shows_in_alerts_api() -> None:
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="3m"))
    run(ev, store, n, {0: 20.0, 120: 1.0}, until=180)
    body = alerts_api_response(ev.alerts())
    (item,) = body["data"]["alerts"]
    assert body["status"] == "success"
    assert item["state"] == "firing" and item["keepFiringSince"] == "1970-01-01T00:02:00Z"
    assert item["activeAt"] == "1970-01-01T00:00:00Z" and item["value"] == "2e+01"
    assert item["labels"] == {"alertname": "High", "severity": "page"}


def test_resolved_alert_reappearing_starts_a_new_pending_alert() -> None:
    ev, store, n = make(THRESHOLD.format(for_="2m", keep="0s"))
    tr = run(ev, store, n, {0: 20.0, 300: 1.0, 420: 30.0}, until=600)
    assert states(tr) == [(0.0, "inactive", "pending"), (120.0, "pending", "firing"), (300.0, "firing", "inactive"),
                          (420.0, "inactive", "pending"), (540.0, "pending", "firing")]
    (a,) = ev.alerts()
    assert a.active_at == 420.0 and a.fired_at == 540.0 and a.resolved_at is None


def test_without_an_external_url_no_source_link_is_sent() -> None:
    """A relative generatorURL ("/graph?g0.expr=...") made Alertmanager's "Source" link and mail
    templates point at nothing: without rules.external_url the alert carries none."""
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="0s"))
    run(ev, store, n, {0: 20.0}, until=60)
    assert n.batches and all(a.generator_url == "" for _, batch in n.batches for a in batch)


def test_resend_interval_valid_until_and_resolution_resends() -> None:
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="0s"), resend_delay_s=60.0,
                        external_labels={"cluster": "eu1"}, external_url="http://agent:9090")
    run(ev, store, n, {0: 20.0, 300: 1.0}, until=300 + int(RESOLVED_RETENTION_S) + 120)
    times = [t for t, _ in n.batches]
    # Prometheus resends when last_sent + resend_delay < now: every 2 minutes at a 1m interval.
    assert times[:3] == [0, 120, 240]
    first = n.batches[0][1][0]
    assert first.starts_at == 0.0 and first.ends_at == 240.0  # valid_until = now + 4 * max(1m, 1m)
    assert first.labels == {"alertname": "High", "severity": "page", "cluster": "eu1"}
    assert first.generator_url == "http://agent:9090/graph?g0.expr=m+%3E+10&g0.tab=1"
    assert not first.resolved
    # resolution is sent at once, then re-sent until the alert is forgotten (15m later)
    resolved = [(t, b[0]) for t, b in n.batches if b[0].resolved]
    assert resolved[0][0] == 300 and resolved[0][1].ends_at == 300.0 and resolved[0][1].starts_at == 0.0
    assert all(t <= 300 + RESOLVED_RETENTION_S + 60 for t, _ in resolved)
    assert len(resolved) >= 7
    assert ev.alerting_states()[0].active == {}  # forgotten after the retention


def test_state_resends_no_more_than_resend_delay() -> None:
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="0s"), resend_delay_s=300.0)
    run(ev, store, n, {0: 20.0}, until=1200)
    times = [t for t, _ in n.batches]
    assert times == [0, 360, 720, 1080]
    assert n.batches[0][1][0].ends_at == 4 * 300.0


def test_alerts_and_alerts_for_state_series_are_written_back() -> None:
    ev, store, n = make(THRESHOLD.format(for_="2m", keep="0s"))
    run(ev, store, n, {0: 20.0}, until=60)
    q = Engine().compile('ALERTS{alertname="High"}').instant(store, 60)
    assert [(s.labels.to_dict(), s.value) for s in q] == [
        ({"__name__": "ALERTS", "alertname": "High", "alertstate": "pending", "severity": "page"}, 1.0)]
    fs = Engine().compile("ALERTS_FOR_STATE").instant(store, 60)
    assert [s.value for s in fs] == [0.0]
    for t in (120, 180):
        feed(store, t, 20.0)
        ev.evaluate(t)
    q = Engine().compile("ALERTS").instant(store, 180)
    # the pending series went stale the moment the alert fired: only the firing one is left
    assert [s.labels.get("alertstate") for s in q] == ["firing"]


def test_recording_rule_written_back_and_marked_stale_when_gone() -> None:
    ev, store, n = make("""
        groups:
          - name: rec
            interval: 1m
            rules:
              - record: job:m:double
                expr: m * 2
                labels: {team: ml}
              - alert: FromRecorded
                expr: job:m:double > 30
    """)
    feed(store, 0, 20.0, job="a")
    tr = ev.evaluate(0)
    assert [t.to_state for t in tr] == ["firing"]  # later rules see earlier rules' output
    got = Engine().compile("job:m:double").instant(store, 0)
    assert [(s.labels.to_dict(), s.value) for s in got] == [
        ({"__name__": "job:m:double", "job": "a", "team": "ml"}, 40.0)]
    feed(store, 60, None, job="a")  # the input series disappears (stale marker)
    ev.evaluate(60)
    assert Engine().compile("job:m:double").instant(store, 61) == []  # stale at once, not after 5m


def test_limit_exceeded_fails_the_rule_and_clears_its_alerts() -> None:
    ev, store, n = make("""
        groups:
          - name: g
            limit: 2
            rules:
              - alert: Many
                expr: m > 0
    """)
    for i in range(3):
        store.append(dict(__name__="m", i=str(i)), 0, 1.0)
    ev.evaluate(0)
    (err,) = ev.rule_errors("g")
    assert err == ("Many", "exceeded limit of 2 with 3 alerts")
    assert ev.alerts() == [] and ev.rule_health()[0].health == "err"


def test_duplicate_labelsets_after_templating_fail_the_rule() -> None:
    ev, store, n = make("""
        groups:
          - name: g
            rules:
              - alert: Dup
                expr: '{__name__=~"a|b"}'
    """)
    store.append({"__name__": "a"}, 0, 1.0)
    store.append({"__name__": "b"}, 0, 1.0)
    ev.evaluate(0)
    assert ev.rule_errors(0) == [("Dup", "vector contains metrics with the same labelset after applying alert labels")]


def test_labels_are_templated_and_part_of_identity() -> None:
    ev, store, n = make("""
        groups:
          - name: g
            rules:
              - alert: Sev
                expr: m > 0
                labels:
                  severity: '{{ if gt $value 10.0 }}critical{{ else }}warning{{ end }}'
    """)
    feed(store, 0, 5.0)
    ev.evaluate(0)
    feed(store, 60, 50.0)
    tr = ev.evaluate(60)
    assert sorted((t.labels["severity"], t.from_state, t.to_state) for t in tr) == [
        ("critical", "inactive", "firing"), ("warning", "firing", "inactive")]


def test_annotations_rerendered_with_current_value() -> None:
    ev, store, n = make(THRESHOLD.format(for_="10m", keep="0s"))
    run(ev, store, n, {0: 20.0, 120: 25.0}, until=180)
    (a,) = ev.alerts()
    assert a.annotations == {"summary": "value is 25"} and a.state is AlertState.PENDING


def test_evaluate_runs_groups_at_multiples_of_their_interval() -> None:
    ev, store, n = make("""
        groups:
          - name: fast
            interval: 15s
            rules: [{record: f, expr: vector(1)}]
          - name: slow
            interval: 1m
            rules: [{record: s, expr: vector(1)}]
    """)
    for t in range(0, 190, 7):  # irregular calls: evaluations still land on multiples
        ev.evaluate(t)
    fast = store.select({"__name__": "f"}, 0, 200_000)[0].points()
    slow = store.select({"__name__": "s"}, 0, 200_000)[0].points()
    assert [t for t, _ in fast] == [float(t) for t in range(0, 181, 15)]
    assert [t for t, _ in slow] == [0.0, 60.0, 120.0, 180.0]


def test_catch_up_after_a_time_jump_gives_the_same_alerts_as_live() -> None:
    rules = THRESHOLD.format(for_="3m", keep="0s")
    live, s1, n1 = make(rules)
    jumpy, s2, n2 = make(rules)
    live_tr, jumpy_tr = [], []
    for t in range(0, 601, 60):
        v = 20.0 if t < 420 else 1.0
        feed(s1, t, v)
        feed(s2, t, v)
        live_tr += live.evaluate(t)
        if t in (0, 300, 600):  # the replay hands over time in big steps
            jumpy_tr += jumpy.evaluate(t)
    assert states(jumpy_tr) == states(live_tr) == [(0.0, "inactive", "pending"), (180.0, "pending", "firing"),
                                                   (420.0, "firing", "inactive")]


def test_max_catch_up_counts_missed_evaluations() -> None:
    ev, store, n = make(THRESHOLD.format(for_="0s", keep="0s"), max_catch_up=5)
    ev.evaluate(0)
    ev.evaluate(600)
    assert ev.missed_evaluations == 5


def test_state_dict_round_trip_does_not_repage() -> None:
    rules = THRESHOLD.format(for_="5m", keep="0s")
    ev, store, n = make(rules)
    run(ev, store, n, {0: 20.0}, until=300)  # fires (and is sent) at 300
    saved = json.loads(json.dumps(ev.state_dict()))  # JSON-safe
    ev2, store2, n2 = make(rules)
    assert ev2.load_state_dict(saved) == 1
    feed(store2, 360, 20.0)
    n2.now = 360
    assert ev2.evaluate(360) == []  # still firing: no new pending/firing transition
    (a,) = ev2.alerts()
    assert (a.state, a.active_at, a.fired_at) == (AlertState.FIRING, 0.0, 300.0)
    assert n2.batches == []  # sent at 300, within the resend delay: nothing new to page
    feed(store2, 420, 20.0)
    n2.now = 420
    ev2.evaluate(420)
    ((t, (resent,)),) = n2.batches  # the regular re-send keeps the original startsAt
    assert t == 420 and resent.starts_at == 300.0
    with pytest.raises(ValueError, match="unsupported rule state version"):
        ev2.load_state_dict({"version": 99})


def test_max_range_s_covers_ranges_offsets_subqueries_and_lookback() -> None:
    ev, _, _ = make("""
        groups:
          - name: g
            rules:
              - {record: a, expr: 'rate(x[10m] offset 5m)'}
              - {record: b, expr: 'max_over_time(rate(x[5m])[1h:1m])'}
              - {record: c, expr: 'y offset 1h'}
    """)
    assert ev.max_range_s == pytest.approx(3600 + 300)
    ev2, _, _ = make("groups:\n- name: g\n  rules:\n  - {record: a, expr: 'rate(x[1m])'}\n")
    assert ev2.max_range_s == pytest.approx(60.0)  # no instant selector: the lookback is not needed


def test_template_query_function_sees_the_store() -> None:
    ev, store, n = make("""
        groups:
          - name: g
            rules:
              - alert: Q
                expr: m > 0
                annotations:
                  total: '{{ with query "sum(m)" }}{{ . | first | value | humanize }}{{ end }}'
    """)
    store.append({"__name__": "m", "i": "1"}, 0, 1500.0)
    store.append({"__name__": "m", "i": "2"}, 0, 1500.0)
    ev.evaluate(0)
    assert {a.annotations["total"] for a in ev.alerts()} == {"3k"}


def test_alert_value_nan_and_inf_are_json_safe() -> None:
    ev, store, n = make("groups:\n- name: g\n  rules:\n  - {alert: A, expr: 'm != 0'}\n")
    store.append({"__name__": "m"}, 0, math.inf)
    ev.evaluate(0)
    state = json.dumps(ev.state_dict(), allow_nan=False)
    assert '"value": "+Inf"' in state


def test_for_is_exact_at_epoch_scale_with_millisecond_timestamps() -> None:
    """At t ~ 1.7e9, float seconds are inexact: (t0 + 1.1 s) - t0 computes to less than 1.1.
    ``for`` must still be reached exactly at active_at + for (compared in integer milliseconds)."""
    ev, store, n = make(THRESHOLD.format(for_="1s100ms", keep="0s"))
    t0_ms = 1_700_000_000_000
    t1_ms = t0_ms + 1100
    assert t1_ms / 1000 - t0_ms / 1000 < 1.1  # the float pitfall this guards against
    for t in (t0_ms, t1_ms):
        feed(store, t / 1000, 20.0)
    assert states(ev.evaluate_group_at(0, t0_ms)) == [(t0_ms / 1000, "inactive", "pending")]
    assert states(ev.evaluate_group_at(0, t1_ms)) == [(t1_ms / 1000, "pending", "firing")]


def test_alerts_can_be_read_while_another_thread_evaluates() -> None:
    import threading

    ev, store, n = make("groups:\n- name: g\n  interval: 1s\n  rules:\n  - {alert: A, expr: 'm > 0', for: 2s}\n")
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                ev.alerts()
                ev.state_dict()
                ev.rule_health()
        except BaseException as e:  # noqa: BLE001 - report any failure to the main thread
            errors.append(e)

    th = threading.Thread(target=reader)
    th.start()
    try:
        for t in range(300):  # many label sets appear and disappear
            store.append_scrape(t, [({"__name__": "m", "i": str(i)}, 1.0) for i in range(t % 7, t % 7 + 20)],
                                source="s")
            ev.evaluate(t)
    finally:
        done.set()
        th.join()
    assert errors == []
    assert {a.state for a in ev.alerts()} <= {AlertState.PENDING, AlertState.FIRING} and ev.alerts()
