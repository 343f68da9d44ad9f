"""SeriesStore: staleness per source, retention, series/cell bounds, ordering, label semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from monitor.promql import Engine, LabelMatcher, Labels, SeriesStore, is_stale_nan
from monitor.promql.storage import STALE_NAN

ENGINE = Engine()


def _names(result: list) -> list[dict[str, str]]:
    return [s.labels.to_dict() for s in result]


def test_labels_semantics() -> None:
    a = Labels({"__name__": "up", "job": "x", "empty": ""})
    assert a == Labels([("job", "x"), ("__name__", "up")])  # empty value == absent label
    assert hash(a) == hash(Labels({"job": "x", "__name__": "up"}))
    assert a.name == "up" and a.get("job") == "x" and a.get("missing") == ""
    assert "empty" not in a and len(a) == 2
    assert a.without_name() == Labels({"job": "x"})
    assert a.without_name() is a.without_name()  # cached: same object every time
    assert a.with_("job", "y").get("job") == "y" and a.with_("job", "").get("job") == ""
    assert a.without("job").to_dict() == {"__name__": "up"}
    assert list(a) == [("__name__", "up"), ("job", "x")]
    assert str(a) == 'up{job="x"}'


def test_missing_series_get_stale_marker_per_source() -> None:
    store = SeriesStore()
    a, b = {"__name__": "m", "i": "a"}, {"__name__": "m", "i": "b"}
    rule = {"__name__": "r"}
    store.append_scrape(10, [(a, 1.0), (b, 2.0)])
    store.append_scrape(10, [(rule, 5.0)], source="rules")
    store.append_scrape(20, [(a, 3.0)])  # b vanished from the scrape; the rule output did not
    q = ENGINE.compile("m")
    assert _names(q.instant(store, 20)) == [{"__name__": "m", "i": "a"}]
    # without the stale marker b would still be visible for 5 minutes (lookback)
    raw = store.select({"__name__": "m", "i": "b"}, 0, 30_000, include_stale=True)
    assert len(raw) == 1 and is_stale_nan(float(raw[0].values[-1]))
    assert [v for v in raw[0].values[:-1]] == [2.0]
    assert store.select({"__name__": "m", "i": "b"}, 0, 30_000)[0].values.tolist() == [2.0]
    # the "rules" source did not report at 20 s, so r is not stale
    assert len(ENGINE.compile("r").instant(store, 20)) == 1
    # b comes back
    store.append_scrape(30, [(a, 4.0), (b, 6.0)])
    assert [s.value for s in q.instant(store, 30)] == [4.0, 6.0]


def test_stale_nan_is_a_specific_nan() -> None:
    assert is_stale_nan(STALE_NAN)
    assert not is_stale_nan(float("nan"))
    assert not is_stale_nan(1.0)
    store = SeriesStore()
    store.append({"__name__": "x"}, 0, float("nan"))
    store.append({"__name__": "y"}, 0, STALE_NAN)
    assert math.isnan(ENGINE.compile("x").instant(store, 10)[0].value)  # a real NaN sample
    assert ENGINE.compile("y").instant(store, 10) == []                  # a stale marker


def test_retention_trims_old_samples_and_refuses_old_appends() -> None:
    store = SeriesStore(retention_s=60)
    for t in range(0, 200, 10):
        store.append_scrape(t, [({"__name__": "m"}, float(t))])
    st = store.stats()
    assert st.timestamps == 7  # 130..190 inclusive are within 60 s of 190
    assert st.trimmed_samples == 13
    assert store.select({"__name__": "m"}, 0, 120_000) == []
    store.append({"__name__": "m"}, 5, 1.0)  # far older than the retention window
    assert store.stats().dropped_out_of_retention == 1
    series = store.select({"__name__": "m"}, 0, 200_000)[0]
    assert series.ts_ms.tolist() == list(range(130_000, 200_000, 10_000))


def test_series_limit_refuses_and_counts() -> None:
    store = SeriesStore(max_series=3)
    store.append_scrape(0, [({"__name__": "m", "i": str(i)}, 1.0) for i in range(5)])
    assert store.num_series == 3
    assert store.stats().dropped_series_limit == 2
    store.append({"__name__": "other"}, 1, 1.0)
    assert store.stats().dropped_series_limit == 3


def test_dead_series_are_forgotten_after_retention() -> None:
    store = SeriesStore(retention_s=30)
    many = [({"__name__": "m", "i": str(i)}, 1.0) for i in range(100)]
    store.append_scrape(0, many)
    for t in range(10, 100, 10):
        store.append_scrape(t, [({"__name__": "m", "i": "0"}, float(t))])
    assert store.num_series == 1
    assert ENGINE.compile("count(m)").instant(store, 90)[0].value == 1.0
    # the remaining series keeps its history and staleness bookkeeping
    store.append_scrape(100, [])
    assert ENGINE.compile("m").instant(store, 100) == []


def test_cell_budget_bounds_memory_and_keeps_recent_data() -> None:
    store = SeriesStore(retention_s=1e9, max_cells=64 * 100)
    for t in range(0, 1000):
        store.append_scrape(t, [({"__name__": "m"}, float(t))])
    s_cap, t_cap = store._vals.shape
    assert s_cap * t_cap <= 64 * 100
    st = store.stats()
    assert st.dropped_capacity > 0 and st.timestamps < 1000
    assert ENGINE.compile("m").instant(store, 999)[0].value == 999.0
    assert ENGINE.compile("count_over_time(m[10s])").instant(store, 999)[0].value == 11.0


def test_out_of_order_appends_are_sorted() -> None:
    store = SeriesStore()
    lab = {"__name__": "m"}
    for t in (20, 10, 30, 15, 10):
        store.append(lab, t, float(t))
    other = {"__name__": "n"}
    store.append(other, 12, 1.0)
    s = store.select([LabelMatcher.equal("__name__", "m")], 0, 100_000)[0]
    assert s.ts_ms.tolist() == [10_000, 15_000, 20_000, 30_000]
    assert s.values.tolist() == [10.0, 15.0, 20.0, 30.0]
    assert store.select({"__name__": "n"}, 0, 100_000)[0].ts_ms.tolist() == [12_000]


def test_select_filters_and_orders_by_labels() -> None:
    store = SeriesStore()
    for job in ("b", "a", "c"):
        store.append({"__name__": "up", "job": job}, 0, 1.0)
    store.append({"__name__": "up"}, 0, 1.0)
    res = store.select([LabelMatcher("__name__", "=", "up"), LabelMatcher("job", "!~", "c")], 0, 0)
    assert _names(res) == [{"__name__": "up"}, {"__name__": "up", "job": "a"},
                           {"__name__": "up", "job": "b"}]
    assert isinstance(res[0].ts_ms, np.ndarray) and res[0].ts_ms.dtype == np.int64


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="retention_s"):
        SeriesStore(retention_s=0)
    with pytest.raises(ValueError, match="max_series"):
        SeriesStore(max_series=0)


def test_bad_input_is_refused_with_clear_errors_or_counted() -> None:
    store = SeriesStore()
    with pytest.raises(ValueError, match="t must be a finite time"):
        store.append({"__name__": "m"}, float("nan"), 1.0)
    with pytest.raises(ValueError, match="value must be a number"):
        store.append({"__name__": "m"}, 0, "high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid label name '1abc'"):
        store.append({"__name__": "m", "1abc": "x"}, 0, 1.0)
    with pytest.raises(ValueError, match="invalid metric name 'my-metric'"):
        store.append({"__name__": "my-metric"}, 0, 1.0)
    # the bulk path never raises for bad samples: it skips and counts them
    store.append_scrape(10, [({"__name__": "ok"}, 1.0), ({"__name__": "bad-name"}, 1.0),
                             ({"__name__": "ok2"}, None)])  # type: ignore[list-item]
    assert store.stats().dropped_invalid == 2
    known = Labels({"__name__": "ok"})
    store.append_scrape(20, [(known, None), (known, "2.5")])  # type: ignore[list-item]
    assert store.stats().dropped_invalid == 3  # None is not a number (and not NaN)
    assert [s.labels.name for s in store.select({"__name__": "ok"}, 0, 20_000)] == ["ok"]
    with pytest.raises(ValueError, match="evaluation time must be finite"):
        ENGINE.compile("ok").instant(store, float("inf"))


def test_the_agent_keeps_the_history_its_longest_rule_reads(tmp_path):
    """``Monitor`` sizes the series store's retention to its rules' reach (an ``offset 1h`` reads 65
    minutes back). Setting ``retention_s`` used to change nothing (the store read a millisecond
    copy made at construction), so history was cut at an hour: an ``offset 1h`` rule evaluated
    every 70 s never saw its sample (review). Bound: active from its 52nd evaluation (one hour on)
    at 70 and 80 s intervals, as at 15 s."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.config import MonitorConfig, RulesConfig

    rules = tmp_path / "off.yml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - alert: SeesAnHourAgo\n"
                     "        expr: monitor_queue_capacity offset 1h\n")
    t0 = 1_700_000_000.0 - 1_700_000_000.0 % 5040.0
    for interval in (15.0, 70.0, 80.0):
        cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=interval, log_alerts=False))
        mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
        try:
            assert mon._series_store.retention_s >= 3900.0
            active = []
            for k in range(int(2.0 * 3600 // interval)):
                mon.evaluate_rules(t0 + k * interval)
                if any(a.name == "SeesAnHourAgo" for a in mon.alerts()):
                    active.append(k * interval)
            assert active and active[0] <= 3600.0 + interval, (interval, active[:1])
        finally:
            mon.close()
