"""Templates' ``{{ query }}`` expressions are compiled once and kept, up to a bound: a query
written with ``printf`` from ``$labels`` is one text per label set, and an alert over churning
labels (clients, segments) grew the cache for as long as the agent ran."""

from __future__ import annotations

from monitor.promql.storage import SeriesStore
from monitor.rules import evaluator as ev_mod
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.loader import parse_rules_text

RULES = """
groups:
- name: g
  rules:
  - alert: PerClient
    expr: m > 0
    annotations:
      summary: '{{ with printf "m{client=%q}" $labels.client | query }}{{ . | first | value }}{{ end }}'
"""


def test_template_query_cache_is_bounded_and_answers_stay_right() -> None:
    groups, errors = parse_rules_text(RULES)
    assert not errors
    store = SeriesStore()
    ev = RuleEvaluator(groups, storage=store, default_interval_s=15)
    bound = ev_mod.TEMPLATE_QUERY_CACHE_SIZE
    t0 = 1_700_000_010
    for step in range(3):  # new clients at every evaluation
        t = t0 + 15 * step
        clients = range(step * bound, (step + 1) * bound)
        store.append_scrape(t, [({"__name__": "m", "client": f"c{i}"}, float(i + 1)) for i in clients])
        ev.evaluate(t)
        assert len(ev._template_queries) <= bound
    summaries = {a.labels["client"]: a.annotations["summary"] for a in ev.alerts()}
    assert len(summaries) == bound and summaries[f"c{3 * bound - 1}"] == str(3 * bound)
