"""The Grafana dashboards: generated from the catalog, committed as generated, and well-formed.

The end-to-end test (tests/test_e2e_stack.py) runs every query against a real Prometheus; these tests
check everything that does not need one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser as pp
import pytest
from click.testing import CliRunner

from monitor import catalog
from monitor.catalog import SpecError
from monitor.cli import main
from monitor.dashboards import build
from monitor.dashboards.dashboard import DATASOURCE_UID
from monitor.dashboards.packs import pack_alerts
from monitor.dashboards.panels import Panel, Query, timeseries
from monitor.dashboards.promql import TARGET_LABELS, rate, selector
from monitor.dashboards.queries import iter_queries, substitute

SENTINEL = "7777s"  # stands for $__rate_interval, to find ranges that do not use it
VARIABLES = {"model": ".*", "instance": ".*", "segment": ".*", "detector": ".*", "feature": ".*", "datasource": DATASOURCE_UID}
#: Series Prometheus itself produces from loaded rules; the only names outside the catalog allowed.
PROMETHEUS_SERIES = {"ALERTS", "ALERTS_FOR_STATE"}


def _series_labels() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for spec in catalog.CATALOG.values():
        for name in spec.series_names():
            out[name] = set(spec.labels) | {"model"} | ({"le"} if name.endswith("_bucket") else set())
    return out


SERIES = _series_labels()
DASHBOARDS = {d.uid: d.to_json() for d in build.dashboards()}
QUERIES = [(uid, q) for uid, dash in DASHBOARDS.items() for q in iter_queries(dash)]


def _parse(expr: str) -> pp.Expr:
    if expr.startswith("label_values("):
        expr = expr[len("label_values("):].rsplit(",", 1)[0]
    return pp.parse(substitute(expr, VARIABLES, rate_window=SENTINEL))


def test_committed_dashboards_are_the_generated_ones() -> None:
    problems = build.check()
    assert not problems, "; ".join(f"{p.path.name} {p.problem}" for p in problems) + \
        " -- run `monitor dashboards build` and commit grafana/dashboards"


def test_the_five_dashboards_have_fixed_unique_uids() -> None:
    assert set(DASHBOARDS) == {"monitor-overview", "monitor-confidence", "monitor-drift", "monitor-probing", "monitor-agent"}
    for uid, dash in DASHBOARDS.items():
        assert dash["uid"] == uid and dash["id"] is None and dash["schemaVersion"] >= 36


@pytest.mark.parametrize("uid, query", QUERIES, ids=[f"{u}:{q.kind}:{q.title}" for u, q in QUERIES])
def test_every_query_reads_only_catalog_series_with_their_labels(uid: str, query) -> None:
    seen: list[str] = []

    def visit(node: pp.Expr) -> bool:
        if isinstance(node, pp.VectorSelector):
            name = node.name
            seen.append(name)
            assert name in SERIES or name in PROMETHEUS_SERIES, f"{query.where} reads {name!r}, which is not in the catalog"
            if name in SERIES:
                for m in node.matchers.matchers:
                    # instance and job: the labels Prometheus gives every series of a target
                    assert m.name in SERIES[name] or m.name in TARGET_LABELS, f"{query.where}: {name} has no label {m.name!r}"
        if isinstance(node, pp.MatrixSelector):
            assert str(pp.parse(f"x[{SENTINEL}]").range) == str(node.range), \
                f"{query.where}: a range other than $__rate_interval: {query.expr}"
        return True

    pp.walk(_parse(query.expr), visit)
    assert seen, f"{query.where} selects no series"
    if not (query.kind == "variable" and query.title == "model"):
        assert 'model=~"$model' in query.expr, f"{query.where} ignores the model variable"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_panels_have_title_description_unit_and_the_datasource_variable(uid: str) -> None:
    dash = DASHBOARDS[uid]
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert panels
    for p in panels:
        assert p["title"] and p["description"].strip(), p
        assert p["fieldConfig"]["defaults"]["unit"], p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
    assert "${DS_" not in json.dumps(dash), "import inputs break file provisioning"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    model = variables["model"]
    assert model["type"] == "query" and model["query"]["query"].startswith("label_values(")
    for v in variables.values():
        if v["type"] == "query":
            assert v["definition"].startswith("label_values(") and v["includeAll"] and v["allValue"] == ".*"


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_alert_state_annotations_from_both_evaluators(uid: str) -> None:
    exprs = [a.get("expr", "") for a in DASHBOARDS[uid]["annotations"]["list"]]
    assert any(e.startswith("monitor_alerts{") and 'alertstate="firing"' in e for e in exprs)
    assert any(e.startswith("ALERTS{") and 'alertstate="firing"' in e for e in exprs)


@pytest.mark.parametrize("uid", sorted(DASHBOARDS))
def test_panels_lie_on_the_grid_without_overlap(uid: str) -> None:
    taken: set[tuple[int, int]] = set()
    ids = set()
    for p in DASHBOARDS[uid]["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{p['title']} overlaps another panel"
        taken |= cells
        assert p["id"] not in ids
        ids.add(p["id"])


def test_every_rate_uses_the_rate_interval_in_the_raw_json() -> None:
    for uid, dash in DASHBOARDS.items():
        for q in iter_queries(dash):
            for fn in ("rate(", "irate(", "increase("):
                for chunk in q.expr.split(fn)[1:]:
                    depth, i = 1, 0
                    while depth:
                        depth += {"(": 1, ")": -1}.get(chunk[i], 0)
                        i += 1
                    assert chunk[:i].rstrip(")").endswith("[$__rate_interval]"), f"{q.where}: {fn}{chunk[:i]}"


def test_a_panel_on_a_metric_outside_the_catalog_fails_the_build() -> None:
    with pytest.raises(SpecError, match="not in the catalog"):
        selector("monitor_no_such_metric")
    with pytest.raises(SpecError, match="not in the catalog"):
        timeseries("x", Query("up"), metrics=("monitor_no_such_metric",))
    with pytest.raises(ValueError, match="no label 'nope'"):
        selector("monitor_errors", 'nope="x"')
    with pytest.raises(ValueError, match="only make sense on counters"):
        rate("monitor_queue_depth")
    with pytest.raises(ValueError, match="a title, a description and a unit"):
        Panel("timeseries", "t", "", "s", (Query("up"),), ())


def test_descriptions_and_units_come_from_the_catalog() -> None:
    panel = timeseries("Queue depth", Query("x"), metrics=("monitor_queue_depth",))
    assert panel.description == catalog.get("monitor_queue_depth").help
    assert panel.unit == catalog.get("monitor_queue_depth").unit
    latency = timeseries("Latency", Query("x"), metrics=("monitor_latency_seconds",))
    assert latency.unit == "s"


def test_pack_alert_panels_list_the_packs_alerts() -> None:
    names = pack_alerts("confidence")
    assert "ModelOverconfident" in names
    panel = next(p for p in DASHBOARDS["monitor-confidence"]["panels"] if p["title"] == "Confidence and calibration alerts")
    expr = panel["targets"][0]["expr"]
    assert all(n in expr for n in names)
    assert pack_alerts("no-such-pack") == ()


def test_cli_build_and_check(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "dash"
    res = runner.invoke(main, ["dashboards", "build", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.json")) == sorted(f"{u}.json" for u in DASHBOARDS)
    res = runner.invoke(main, ["dashboards", "build", "--check", "--out", str(out)])
    assert res.exit_code == 0, res.output
    (out / "monitor-overview.json").write_text("{}\n")
    (out / "stale.json").write_text("{}\n")
    res = runner.invoke(main, ["dashboards", "build", "--check", "--out", str(out)])
    assert res.exit_code == 1
    assert "monitor-overview.json: differs" in res.output and "stale.json" in res.output


def test_variable_substitution_as_grafana_does() -> None:
    from monitor.dashboards.queries import grafana_regex, rate_interval

    assert rate_interval(1.0, 2.0) == "4s" and rate_interval(15.0, 60.0) == "75s"
    assert grafana_regex(["a"]) == "a"
    assert grafana_regex(["a.b", "c"]) == "(a\\\\.b|c)"  # a regex escape, itself escaped in a PromQL string
    expr = 'rate(x{model=~"$model", d="${detector}"}[$__rate_interval])'
    assert substitute(expr, {"model": ".*", "detector": "pca"}, rate_window="4s") == 'rate(x{model=~".*", d="pca"}[4s])'
    with pytest.raises(KeyError, match=r"\$detector"):
        substitute(expr, {"model": ".*"})


@pytest.mark.parametrize("title, prefix", [("Reliability diagram", "monitor_reliability"),
                                           ("Reliability diagram of the selected segments", "monitor_segment_reliability")])
def test_reliability_diagrams_pool_the_selected_rows_per_bin(title: str, prefix: str) -> None:
    """With two segments (or two models) selected, each bar is the figure of their pooled rows in
    that bin, and the count bars the bin's labelled rows: a plain average of the two let 400
    coin-flip rows of a small segment weigh as much as 6,000 calibrated rows of a large one. The
    panel's queries run in the project's PromQL engine over the series two real monitors export,
    against numpy on the rows themselves."""
    import numpy as np
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.promql import Engine, Labels, SeriesStore

    rng = np.random.default_rng(99)
    t0 = 1_700_000_000.0
    groups = {"big": 6000, "small": 400}
    store = SeriesStore()
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scrape: list[tuple[Labels, float]] = []
    for name, n in groups.items():
        cfg = {"segments": {"cap": 5}, "output": {"kind": "probabilities", "classes": ["a", "b"]},
               "detectors": [{"kind": "segments", "reliability_bins": True, "min_labels_calibration": 200},
                             {"kind": "calibration"}]}
        # one monitor per group: two models for the whole-window diagram, two segments for the other
        mon = Monitor(model=name if prefix == "monitor_reliability" else "m", config=cfg, registry=CollectorRegistry(),
                      live=False, start_worker=False)
        p1 = rng.uniform(0.5, 1.0, n)
        y = (rng.random(n) < (p1 if name == "big" else 0.5)).astype(int)  # the small group: over-confident
        ids = [f"{name}{i}" for i in range(n)]
        mon.observe(np.zeros((n, 1)), np.c_[1 - p1, p1], segment=name, request_id=ids, timestamp=t0)
        mon.flush()
        mon.feedback(ids, list(map(int, y)), timestamp=t0 + 1)
        mon.flush()
        scrape += [(Labels({"__name__": s, **labels, "instance": name}), v) for s, labels, v in mon.store.samples()]
        mon.close()
        rows[name] = (p1, y == 1)
    store.append_scrape(t0 + 2, scrape)
    (panel,) = [p for p in DASHBOARDS["monitor-confidence"]["panels"] if p.get("title") == title]
    got = {}
    for target in panel["targets"]:
        expr = substitute(target["expr"], VARIABLES)
        got[target["legendFormat"]] = {s.labels["bin"]: s.value for s in Engine().compile(expr).instant(store, t0 + 2)}
    conf = np.concatenate([c for c, _ in rows.values()])
    correct = np.concatenate([k for _, k in rows.values()])
    index = np.minimum((conf * 15).astype(int), 14)
    assert set(got) == {"confidence", "accuracy", "labelled rows"}
    assert len(got["accuracy"]) >= 7 and set(got["accuracy"]) == set(got["confidence"]) <= set(got["labelled rows"])
    for b, count in got["labelled rows"].items():  # every bin, those without a row (or a figure) too
        assert count == (index == int(round(float(b.split("-")[0]) * 15))).sum()
    unweighted_off = 0.0
    for b, value in got["accuracy"].items():
        in_bin = index == int(round(float(b.split("-")[0]) * 15))
        assert value == pytest.approx(correct[in_bin].mean(), abs=1e-9)
        assert got["confidence"][b] == pytest.approx(conf[in_bin].mean(), abs=1e-9)
        plain = np.mean([k[np.minimum((c * 15).astype(int), 14) == index[in_bin][0]].mean() for c, k in rows.values()])
        unweighted_off = max(unweighted_off, abs(plain - value))
    assert unweighted_off > 0.1  # the plain average of the two would be far off: the data tells them apart


def test_the_proxy_panel_shows_the_share_of_requests_the_proxy_answered_itself() -> None:
    """The Agent health dashboard had no panel for the proxy's own 502/504 answers, which page
    MonitorProxyUpstreamFailing: on-call saw the alert and no graph of it. The panel's query, run by
    the agent's PromQL engine on the sidecar's series (model ``_sidecar``), gives each reason's share
    of the proxied requests (what the alert divides), 0 while requests pass, nothing without a proxy."""
    from monitor.promql.engine import Engine
    from monitor.promql.storage import SeriesStore

    panel = next(p for p in DASHBOARDS["monitor-agent"]["panels"] if p["title"].startswith("Proxy:"))
    assert panel["fieldConfig"]["defaults"]["unit"] == "percentunit"
    (target,) = panel["targets"]
    query = Engine().compile(substitute(target["expr"], VARIABLES, rate_window="2m"))

    def shares(per_second: dict[tuple[str, str, str], float]) -> dict[str, float]:
        store = SeriesStore(retention_s=3600.0)
        for t in (0.0, 60.0, 120.0):
            store.append_scrape(t, [({"__name__": name, "model": "_sidecar", label: value}, rate * t)
                                    for (name, label, value), rate in per_second.items()]
                                + [({"__name__": "monitor_queue_capacity", "model": "iris"}, 1000.0)])
        return {s.labels.get("reason", ""): round(s.value, 6) for s in query.instant_ms(store, 120_000)}

    ok = ("monitor_proxy_requests_total", "code", "2xx")
    failing = {ok: 95.0, ("monitor_proxy_requests_total", "code", "5xx"): 5.0,
               ("monitor_proxy_upstream_errors_total", "reason", "connect"): 3.0,
               ("monitor_proxy_upstream_errors_total", "reason", "timeout"): 2.0}
    assert shares(failing) == {"connect": 0.03, "timeout": 0.02}
    assert shares({ok: 95.0}) == {"none": 0.0}
    assert shares({}) == {}


@pytest.mark.parametrize("uid", ["monitor-confidence", "monitor-drift"])
def test_figures_are_per_replica_on_the_chosen_instances(uid: str) -> None:
    """Alerts are per instance: a panel that took the maximum over replicas showed one replica's
    figures beside another's alarm (the Drift dashboard mixed their "Features driving the
    alarm" ranks, s27b's finding). Every figure panel of these two dashboards reads the chosen
    $instance values, and the Drift dashboard's keep the instance label."""
    dash = DASHBOARDS[uid]
    assert any(v["name"] == "instance" for v in dash["templating"]["list"])
    checked = 0
    for panel in dash["panels"]:
        if panel.get("type") == "row" or "alerts" in panel["title"].lower():
            continue  # the pack alert panels count alerts by their own labels
        for target in panel.get("targets", []):
            expr = target["expr"]
            assert 'instance=~"$instance"' in expr, (panel["title"], expr)
            # (the Confidence dashboard's reliability diagrams pool the chosen replicas' rows per bin)
            for clause in re.findall(r"\bby \(([^)]*)\)", expr) if uid == "monitor-drift" else ():
                labels = {s.strip() for s in clause.split(",")}
                assert "instance" in labels or labels <= {"le"} or labels == {"model"}, (panel["title"], expr)
            checked += 1
    assert checked > 10
