"""The agent's own evaluator computes the ``model="_sidecar"`` row of the intake rules as a
Prometheus scraping the sidecar does, on a sidecar serving several models.

MonitorIntakeOverloaded and MonitorIntakeRefused divide the refusals of no single model (503
``overloaded``: every queue together at ``server.max_queued_events``; events naming no served
model), counted under ``_sidecar``, by those refusals plus the events accepted for *every* model
(``label_replace(sum by (endpoint) (...accepted...), "model", "_sidecar", "", "")``). The first
model that evaluates rules reads the sidecar's store, but it read only its own model's
``monitor_intake_events_accepted_total``: with a second model taking most of the traffic the
agent's ratio was that of the first model's traffic alone (here 50% where Prometheus computes 3.0%),
and the agent paged where Prometheus stayed silent.

Real HTTP on 127.0.0.1: two models, iris (1 event accepted per step) and fraud (62), two events per
step refused 503 ``overloaded`` and one naming no served model (``unknown_model``); the ``_sidecar``
rows of both rules in the agent are compared with the same expressions over the ``/metrics`` text
(the series a Prometheus stores), and MonitorIntakeOverloaded's with the ratio of the counters'
increments. Fraud's own refusals (``unknown_key``, 1 in 63) fire MonitorIntakeRefused in fraud's
evaluator and must not in iris's, and no rule of any shipped pack yields a row of fraud's there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from monitor.promql.storage import SeriesStore
from monitor.shipped import rule_packs
from tests.sidecar_support import RunningSidecar, http, quiet_factory, start_sidecar, total

T0 = 1_800_000_000.0
STEP_S = 15
#: every shipped pack: none of their rules may yield a row of fraud from iris's evaluator
RULES = {"rules": {"packs": sorted(rule_packs()), "log": False, "interval": f"{STEP_S}s"}}
IRIS = {
    "model": "iris",
    "features": ["a", "b", "c", "d"],
    "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
    **RULES,
}
FRAUD = {**IRIS, "model": "fraud"}
#: events accepted per step: iris 1, fraud 62, so 63 queued; 2 more are then over the limit
IRIS_N, FRAUD_N, OVER_N, LIMIT = 1, 62, 2, 64


def _pred(i: int) -> dict[str, Any]:
    return {"inputs": [i % 7, 1.0, 2.0, 3.0], "outputs": [0.2, 0.5, 0.3], "request_id": f"r{i}"}


def _step(s: RunningSidecar, k: int) -> None:
    """One step of traffic, nothing drained in between: the queues hold 63 events when the
    2-event batch arrives, over ``server.max_queued_events`` 64 (503 overloaded, ``_sidecar``)."""
    assert http("POST", s.url + "/v1/events?model=fraud", [_pred(k * 100 + i) for i in range(FRAUD_N)]).status == 202
    assert http("POST", s.url + "/v1/events?model=iris", [_pred(k)]).status == 202
    r = http("POST", s.url + "/v1/events?model=iris", [_pred(k), _pred(k + 1)])
    assert r.status == 503 and r.json()["reason"] == "overloaded", r.body
    # one event of fraud's that the sidecar refuses (an unknown key): fraud's own refusal
    assert http("POST", s.url + "/v1/events?model=fraud", [{**_pred(k), "outputz": [1]}]).status == 400
    # and one naming no served model (``_sidecar``, unknown_model): MonitorIntakeRefused's row
    assert http("POST", s.url + "/v1/events", [{**_pred(k), "model": "nope"}]).status == 404
    s.flush()


def _scraped(text: str) -> list[tuple[dict[str, str], float]]:
    """The samples of a ``/metrics`` text as a Prometheus scrape stores them."""
    from prometheus_client.parser import text_string_to_metric_families

    return [({**smp.labels, "__name__": smp.name}, float(smp.value))
            for fam in text_string_to_metric_families(text) for smp in fam.samples]


def _ratio_expr(mon: Any, alert: str) -> str:
    """The shipped rule's expression without its threshold: the ratio itself."""
    rule = next(r for g in mon.rules.groups for r in g.rules if getattr(r, "alert", None) == alert)
    ratio, n = re.subn(r"\s*>\s*[0-9.]+\s*$", "", rule.expr)
    assert n == 1, rule.expr
    return ratio


def _rows(mon: Any, store: SeriesStore, expr: str, t: float) -> dict[tuple[str, str], float]:
    vec = mon.rules.engine.compile(expr).instant_ms(store, int(t * 1000))
    return {(smp.labels.to_dict()["model"], smp.labels.to_dict()["endpoint"]): smp.value for smp in vec}


def test_the_sidecar_row_counts_the_accepted_events_of_every_model(tmp_path: Path) -> None:
    s = start_sidecar({"models": [IRIS, FRAUD], "server": {"max_queued_events": LIMIT}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    prometheus = SeriesStore(retention_s=3600.0)  # what a Prometheus scraping /metrics stores
    transitions: dict[str, list[Any]] = {"iris": [], "fraud": []}
    texts: list[str] = []
    steps = 12 * 60 // STEP_S + 1
    try:
        iris, fraud = s.monitor("iris"), s.monitor("fraud")
        for k in range(steps):
            _step(s, k)
            t = T0 + STEP_S * k
            texts.append(s.metrics())
            prometheus.append_scrape(t, _scraped(texts[-1]))
            transitions["iris"] += iris.evaluate_rules(t)
            transitions["fraud"] += fraud.evaluate_rules(t)
        t_end = T0 + STEP_S * (steps - 1)
        expr = _ratio_expr(iris, "MonitorIntakeOverloaded")
        in_agent = _rows(iris, iris._series_store, expr, t_end)
        in_prometheus = _rows(iris, prometheus, expr, t_end)
        refused_expr = _ratio_expr(iris, "MonitorIntakeRefused")
        refused_rows = [{m: v for m, v in _rows(iris, store, refused_expr, t_end).items() if m[0] == "_sidecar"}
                        for store in (iris._series_store, prometheus)]
        # a user rule on the accepted events that keeps the model label (a model's traffic), as
        # written and with the README's `and on (model)` that keeps each evaluator to its own model
        user = 'sum by (model) (rate(monitor_intake_events_accepted_total[5m])) > 0'
        own = f"{user} and on (model) monitor_rule_last_reload_successful"
        user_rows = {(name, expr_): {smp.labels.to_dict()["model"] for smp in
                                     mon.rules.engine.compile(expr_).instant_ms(mon._series_store, int(t_end * 1000))}
                     for name, mon in (("iris", iris), ("fraud", fraud)) for expr_ in (user, own)}
        # the models of every row of every shipped rule, in each evaluator
        rows = {name: {lb.to_dict().get("model") for g in mon.rules.groups for r in g.rules
                       for lb in (smp.labels for smp in mon.rules.engine.compile(r.expr).instant_ms(
                           mon._series_store, int(t_end * 1000)))}
                for name, mon in (("iris", iris), ("fraud", fraud))}
    finally:
        s.close()

    # the counters' increments over the last 10 minutes, from the /metrics text alone
    first, last = texts[-1 - 600 // STEP_S], texts[-1]

    def grown(name: str, **labels: str) -> float:
        return total(last, name, **labels) - total(first, name, **labels)

    overloaded = grown("monitor_intake_events_refused_total", model="_sidecar", endpoint="events", reason="overloaded")
    refused = grown("monitor_intake_events_refused_total", model="_sidecar", endpoint="events")  # any reason
    accepted = grown("monitor_intake_events_accepted_total", endpoint="events")  # iris and fraud
    assert overloaded > 0 and grown("monitor_intake_events_accepted_total", model="fraud") > 0
    expected = overloaded / (refused + accepted)
    key = ("_sidecar", "events")
    assert abs(in_prometheus[key] - expected) <= 1e-12, (in_prometheus, expected)
    assert abs(in_agent[key] - in_prometheus[key]) <= 1e-12, (in_agent, in_prometheus)
    # MonitorIntakeRefused's _sidecar row (unknown_model) too: the same denominator
    assert refused_rows[0].keys() == refused_rows[1].keys() == {key}, refused_rows
    assert abs(refused_rows[0][key] - refused_rows[1][key]) <= 1e-12, refused_rows
    # under the rule's 5%: neither evaluator pages for the sidecar's refusals
    assert expected < 0.05
    for model in ("iris", "fraud"):
        assert [tr for tr in transitions[model] if tr.labels.get("model") == "_sidecar"
                and tr.alertname == "MonitorIntakeOverloaded"] == [], model

    def fired(model: str, name: str) -> list[dict[str, str]]:
        return [tr.labels for tr in transitions[model] if tr.alertname == name and tr.to_state == "firing"]

    # no shipped rule yields a row of fraud's from iris's evaluator (fraud's yields some)
    assert "fraud" in rows["fraud"] and rows["iris"] <= {"iris", "_sidecar"}, rows
    assert user_rows == {("iris", user): {"iris", "fraud"}, ("fraud", user): {"fraud"},
                         ("iris", own): {"iris"}, ("fraud", own): {"fraud"}}, user_rows
    # fraud's own refusals (1 in 63 > 1%) page from fraud's evaluator, once; never from iris's
    assert [lb["model"] for lb in fired("fraud", "MonitorIntakeRefused")] == ["fraud"]
    assert all(tr.labels.get("model") in ("iris", "_sidecar") for tr in transitions["iris"]), \
        [(tr.alertname, tr.labels) for tr in transitions["iris"] if tr.labels.get("model") not in ("iris", "_sidecar")]
