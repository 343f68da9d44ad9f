"""Durations and points in time among the inputs (monitor.temporal).

Before: dict rows carrying a ``datetime`` (a FastAPI request's timestamp field) were refused
whole, every row, as ``wrong_type`` ("feature 'when' must be numeric"); a reference DataFrame's
``timedelta64`` column (time since the last login) became a categorical feature of unique texts
("0 days 00:01:13.99"), so its drift was never measured; a ``datetime64`` column became one too,
monitored as ids. Now a duration is a number of seconds, live and in the reference alike, and a
point in time is left out of the learned features (every live window lies later than the
reference: it drifts by itself) and said once; configured as a numeric feature it is read as
seconds since 1970 UTC.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.reference import Reference
from tests.sidecar_support import sample

OUTPUT = {"kind": "probabilities", "classes": ["a", "b"]}
NOW = 1_700_000_000.0


def _monitor(config: dict, reference: Reference | None = None) -> Monitor:
    return Monitor(config={"model": "m", "output": OUTPUT, **config}, reference=reference,
                   registry=CollectorRegistry(auto_describe=False), clock=lambda: NOW, start_worker=False)


def _scores(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.uniform(0.0, 0.5, size=n)
    return np.c_[1 - p, p]


def test_dict_rows_with_a_datetime_are_read_and_the_time_left_out(caplog) -> None:
    mon = _monitor({"detectors": [{"kind": "data_quality"}]})
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for i in range(5):
                mon.observe([{"x": 1.0, "when": dt.datetime(2026, 1, 1, 12, i), "wait": dt.timedelta(seconds=30 + i)}],
                            [[0.8, 0.2]])
            mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_rows_rejected_total", model="m", reason="wrong_type") in (None, 0.0)
        assert mon.pipeline.builder.schema.names == ("x", "wait")
        assert mon.pipeline.builder.schema.categorical_names == ()
        said = [r.getMessage() for r in caplog.records if "points in time" in r.getMessage()]
        assert len(said) == 1 and "'when'" in said[0] and "Fix:" in said[0], said
        assert sample(text, "monitor_data_invalid_rows_total", model="m", feature="wait", reason="missing") == 0.0
        assert sample(text, "monitor_data_stuck_run_rows", model="m", feature="wait") == 1.0  # 30 s, 31 s...: read
    finally:
        mon.close()


def test_a_reference_dataframe_reads_durations_as_seconds_and_leaves_times_out(caplog) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "ts": pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC"),
                          "dur": pd.to_timedelta([1.5, 60.0, None], unit="s"), "day": ["mon", "tue", "mon"]})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        ref = Reference.from_arrays(frame)
    assert ref.numeric_names == ("x", "dur") and ref.categorical_names == ("day",)
    np.testing.assert_array_equal(ref.numeric[:, 1], [1.5, 60.0, np.nan])
    assert any("'ts'" in r.getMessage() and "points in time" in r.getMessage() for r in caplog.records)
    kept = Reference.from_arrays(frame, categorical_names=["day", "ts"])  # named categorical: as asked
    assert kept.categorical_names == ("day", "ts") and kept.categorical[0, 1].startswith("2026-01-01")


def test_a_live_duration_is_compared_with_the_reference_as_a_number() -> None:
    rng = np.random.default_rng(0)
    n = 2_000

    def frame(scale: float, size: int) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(size=size), "opened": pd.Timestamp("2026-01-01"),
                             "idle": pd.to_timedelta(rng.exponential(scale, size=size), unit="s")})

    ref = Reference.from_arrays(frame(60.0, n), scores=_scores(rng, n))
    assert ref.numeric_names == ("x", "idle")

    def idle_pvalue(scale: float) -> float:
        mon = _monitor({"detectors": [{"kind": "input_drift"}]}, ref)
        try:
            for _ in range(10):
                mon.observe(frame(scale, 100), _scores(rng, 100))
            mon.flush()
            text = mon.metrics_text()
            assert sample(text, "monitor_rows_rejected_total", model="m", reason="wrong_type") in (None, 0.0)
            return sample(text, "monitor_drift_feature_pvalue", model="m", feature="idle", test="ks")
        finally:
            mon.close()

    assert idle_pvalue(60.0) > 0.01  # the same law: read as the same numbers (as text, every live value was new)
    assert idle_pvalue(180.0) < 1e-6  # three times longer idle times: seen


def test_a_datetime_under_a_numeric_feature_is_read_as_seconds_since_1970() -> None:
    mon = _monitor({"features": [{"name": "when", "kind": "numeric"}], "detectors": [{"kind": "data_quality"}]})
    try:
        mon.observe([{"when": dt.datetime(1970, 1, 2)}, {"when": np.datetime64("1970-01-03")}], [[0.8, 0.2], [0.7, 0.3]])
        rows, _, _ = mon.pipeline.builder._rows_from_dicts([{"when": pd.Timestamp("1970-01-02", tz="UTC")}])
        assert rows.tolist() == [[86400.0]]
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_rows_rejected_total", model="m", reason="wrong_type") in (None, 0.0)
        assert sample(text, "monitor_data_invalid_rows_total", model="m", feature="when", reason="missing") == 0.0
        assert sample(text, "monitor_data_stuck_run_rows", model="m", feature="when") == 1.0  # two days: two values
    finally:
        mon.close()


# -- points in time as ISO 8601 text (JSON and CSV carry no type for time) ----------------------------------


def _days_reference(rng: np.random.Generator, n: int) -> pd.DataFrame:
    days = [f"2026-01-{d:02d}" for d in range(1, 31)]
    return pd.DataFrame({"x": rng.normal(size=n), "day": rng.choice(days, n), "plan": rng.choice(["a", "b"], n)})


def test_a_column_of_iso_dates_is_no_feature_and_raises_no_drift_as_days_pass(caplog) -> None:
    """Before: the reference's "day" column (30 dates as text, as JSON and CSV carry them) was a
    categorical feature; on unchanged traffic a day later every live value was an unseen category
    and ModelInputDrift fired on every seed, explained as "unseen categories 100%"."""
    rng = np.random.default_rng(7)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        ref = Reference.from_arrays(_days_reference(rng, 3_000), scores=_scores(rng, 3_000))
    assert ref.numeric_names == ("x",) and ref.categorical_names == ("plan",)
    said = [r.getMessage() for r in caplog.records if "points in time" in r.getMessage()]
    assert len(said) == 1 and "'day'" in said[0] and "Fix:" in said[0], said
    mon = _monitor({"detectors": [{"kind": "input_drift"}]}, ref)
    try:
        for _ in range(10):
            rows = [{"x": float(v), "day": "2026-02-15", "plan": str(p)}
                    for v, p in zip(rng.normal(size=500), rng.choice(["a", "b"], 500))]
            mon.observe(rows, _scores(rng, 500))
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_drift_window_rows", model="m", detector="input_drift") > 0  # it measured
        assert sample(text, "monitor_drift_detected", model="m", detector="input_drift") == 0.0
        assert sample(text, "monitor_drift_feature_score_ratio", model="m", detector="input_drift", feature="day") is None
        assert sample(text, "monitor_rows_rejected_total", model="m", reason="wrong_type") in (None, 0.0)
    finally:
        mon.close()
    kept = Reference.from_arrays(_days_reference(rng, 50), categorical_names=["day", "plan"])  # named: as asked
    assert kept.categorical_names == ("day", "plan")


def test_text_that_is_not_all_iso_dates_stays_a_categorical() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "when": ["2026-01-01", "2026-01-02", "soon", None],
                          "code": ["2026-13-01", "2026-01-01", "2026-01-02", "2026-01-03"]})  # month 13: no date
    ref = Reference.from_arrays(frame)
    assert ref.categorical_names == ("when", "code")


def test_live_rows_learn_iso_text_as_a_point_in_time_and_a_numeric_feature_reads_it_as_seconds(caplog) -> None:
    mon = _monitor({"detectors": [{"kind": "data_quality"}]})
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe([{"x": 1.0, "at": "2026-01-01T12:00:00Z", "city": "Oslo"}], [[0.8, 0.2]])
            mon.observe(pd.DataFrame({"x": [2.0], "at": ["2026-01-01 12:00:01.250+01:00"], "city": ["Lima"]}),
                        [[0.8, 0.2]])
            mon.flush()
        assert mon.pipeline.builder.schema.names == ("x", "city")
        assert any("'at'" in r.getMessage() and "points in time" in r.getMessage() for r in caplog.records)
    finally:
        mon.close()
    mon = _monitor({"features": [{"name": "at", "kind": "numeric"}], "detectors": [{"kind": "data_quality"}]})
    try:
        rows, _, _ = mon.pipeline.builder._rows_from_dicts([{"at": "1970-01-02"}, {"at": "1970-01-02T01:00:00.5+01:00"},
                                                          {"at": "1970-01-02T00:00:00Z"}])
        assert rows[:, 0].tolist() == [86400.0, 86400.5, 86400.0]
    finally:
        mon.close()


def test_csv_and_parquet_references_leave_iso_text_columns_out_unless_named(tmp_path, caplog) -> None:
    from monitor.profile import build_profile

    rng = np.random.default_rng(3)
    frame = _days_reference(rng, 200).assign(ts=pd.date_range("2026-01-01", periods=200, freq="min"))
    frame.to_csv(tmp_path / "ref.csv", index=False)  # ts written "2026-01-01 00:00:00", day as "2026-01-05"
    frame.astype({"ts": str}).to_parquet(tmp_path / "ref.parquet", index=False)  # times as string columns
    for name in ("ref.csv", "ref.parquet"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            p = build_profile(tmp_path / name, progress=False)
        assert p.numeric_names == ("x",) and p.categorical_names == ("plan",), name
        assert any("'day', 'ts'" in r.getMessage() and "Fix:" in r.getMessage() for r in caplog.records), name
        named = build_profile(tmp_path / name, categorical=["day", "plan"], progress=False)
        assert named.categorical_names == ("day", "plan") and named.numeric_names == ("x",), name
