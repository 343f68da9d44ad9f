"""Dashboard queries of the sidecar's own series show with one model chosen (s38k).

The sidecar exports its process-level series under ``model="_sidecar"``. The Agent health
dashboard's "Last reload successful" panel read ``monitor_config_last_reload_successful`` with
``model=~"$model"`` only: under the default "All" (``.*``) it showed, but with a model chosen the
monitor.yaml line was gone, the one figure MonitorConfigReloadFailed pages on. (tests/test_dashboards.py
substitutes ``.*`` for every variable, which matches ``_sidecar`` too.)

A real sidecar's /metrics is loaded into the agent's PromQL store; every selector of every
dashboard query that names a series the sidecar exports only under ``_sidecar`` is evaluated with
the model variable set to the sidecar's model, and must match.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from monitor.dashboards import build
from monitor.dashboards.queries import iter_queries, substitute
from monitor.promql.engine import Engine
from monitor.promql.storage import SeriesStore
from tests.sidecar_support import quiet_factory, start_sidecar

IRIS = {"model": "iris", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]}}
CHOSEN = {"model": "iris", "instance": ".*", "segment": ".*", "detector": ".*", "feature": ".*", "datasource": "ds"}
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")


def _store(text: str) -> tuple[SeriesStore, set[str]]:
    """The exposition loaded at two scrapes a minute apart, and the series names carried only
    under model _sidecar."""
    samples, models = [], {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.append(({"__name__": s.name, **s.labels}, float(s.value)))
            models.setdefault(s.name, set()).add(s.labels.get("model"))
    store = SeriesStore(retention_s=3600.0)
    for t in (0.0, 60.0):
        store.append_scrape(t, samples)
    return store, {name for name, seen in models.items() if seen == {"_sidecar"}}


def test_the_sidecars_own_series_show_with_a_model_chosen(tmp_path: Path) -> None:
    s = start_sidecar(IRIS, tmp_path, factory=quiet_factory())
    try:
        s.metrics()  # a first request, so that the HTTP histograms have series
        store, process_only = _store(s.metrics())
    finally:
        s.close()
    assert {"monitor_config_last_reload_successful", "monitor_http_request_duration_seconds_bucket"} <= process_only
    engine, checked, empty = Engine(), 0, []
    for dash in build.dashboards():
        for query in iter_queries(dash.to_json()):
            expr = substitute(query.expr, CHOSEN, rate_window="1m")
            for name, matchers in _SELECTOR.findall(expr):
                if name not in process_only:
                    continue
                checked += 1
                if not list(engine.compile(f"{name}{{{matchers}}}").instant_ms(store, 60_000)):
                    empty.append((dash.uid, f"{name}{{{matchers}}}"))
    assert checked >= 2
    assert not empty, empty
