"""PromQL engine: errors at compile time, result types, lookback/offset/@, range queries, and the
vectorised range functions checked against straightforward per-series reference implementations
of Prometheus's algorithms on random series with gaps, resets and stale markers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.promql import (
    Engine,
    EvalError,
    Labels,
    ParseError,
    Scalar,
    SeriesStore,
    String,
    UnsupportedError,
)
from monitor.promql.matchers import LabelMatcher, MatchOp
from monitor.promql.storage import STALE_NAN

ENGINE = Engine()


def _store(points: dict[str, list[tuple[float, float]]]) -> SeriesStore:
    store = SeriesStore(retention_s=1e9)
    for name, pts in points.items():
        for t, v in pts:
            store.append({"__name__": name, "job": "j"}, t, v)
    return store


# --------------------------------------------------------------------------- compile-time errors
@pytest.mark.parametrize("expr", ["sum(", "rate(x)", "{a=\"\"}", "1 > 2", "foo bar", ""])
def test_syntax_and_type_errors_are_parse_errors(expr: str) -> None:
    with pytest.raises(ParseError):
        ENGINE.compile(expr)


@pytest.mark.parametrize("expr, construct", [
    ("histogram_count(x)", "histogram_count"),
    ("histogram_fraction(0, 1, x)", "histogram_fraction"),
])
def test_unsupported_constructs_are_refused_by_name(expr: str, construct: str) -> None:
    with pytest.raises(UnsupportedError) as info:
        ENGINE.compile(expr)
    assert construct in str(info.value)
    assert construct in info.value.construct


def test_negative_at_timestamps_parse() -> None:
    store = _store({"m": [(-100, 7.0), (0, 8.0)]})
    assert ENGINE.compile("m @ -100").instant(store, 1000)[0].value == 7.0
    assert ENGINE.compile('label_replace(m @ -100, "x", "@ -5", "job", ".*")').instant(
        store, 0)[0].labels.get("x") == "@ -5"


# --------------------------------------------------------------------------- semantics
def test_result_types() -> None:
    store = _store({"m": [(0, 1.0), (10, 2.0)]})
    assert ENGINE.compile("1 + 2 * 3").instant(store, 0) == Scalar(7.0)
    assert ENGINE.compile('"text"').instant(store, 0) == String("text")
    assert ENGINE.compile("time()").instant(store, 12.5) == Scalar(12.5)
    matrix = ENGINE.compile("m[15s]").instant(store, 10)
    assert len(matrix) == 1 and matrix[0].points() == [(0.0, 1.0), (10.0, 2.0)]
    assert ENGINE.compile("m").value_type == "vector"


def test_lookback_delta_is_inclusive_and_configurable() -> None:
    store = _store({"m": [(0, 1.0)]})
    assert len(ENGINE.compile("m").instant(store, 300)) == 1
    assert ENGINE.compile("m").instant(store, 300.001) == []
    short = Engine(lookback_delta_s=60)
    assert len(short.compile("m").instant(store, 60)) == 1
    assert short.compile("m").instant(store, 61) == []


def test_offset_and_at_modifiers() -> None:
    store = _store({"m": [(t, float(t)) for t in range(0, 600, 60)]})
    assert ENGINE.compile("m offset 2m").instant(store, 540)[0].value == 420.0
    assert ENGINE.compile("m offset -2m").instant(store, 300)[0].value == 420.0
    assert ENGINE.compile("m @ 120").instant(store, 540)[0].value == 120.0
    assert ENGINE.compile("m @ 300 offset 1m").instant(store, 0)[0].value == 240.0
    series = ENGINE.compile("m @ start()").range(store, 120, 240, 60)
    assert series[0].values.tolist() == [120.0, 120.0, 120.0]
    series = ENGINE.compile("m @ end()").range(store, 120, 240, 60)
    assert series[0].values.tolist() == [240.0, 240.0, 240.0]


def test_range_query_collects_series_per_label_set() -> None:
    store = SeriesStore()
    for t in range(0, 100, 10):
        samples = [({"__name__": "m", "i": "a"}, float(t))]
        if t < 50:
            samples.append(({"__name__": "m", "i": "b"}, 1.0))
        store.append_scrape(t, samples)
    out = ENGINE.compile("m * 2").range(store, 30, 70, 20)
    assert [s.labels.to_dict() for s in out] == [{"i": "a"}, {"i": "b"}]
    assert out[0].points() == [(30.0, 60.0), (50.0, 100.0), (70.0, 140.0)]
    assert out[1].points() == [(30.0, 2.0)]  # b went stale at 50 s
    assert ENGINE.compile("time()").range(store, 0, 20, 10)[0].values.tolist() == [0, 10, 20]
    with pytest.raises(EvalError, match="range vector"):
        ENGINE.compile("m[1m]").range(store, 0, 60, 30)


def test_duplicate_label_sets_and_many_to_many_are_errors() -> None:
    store = SeriesStore()
    store.append({"__name__": "a", "k": "1"}, 0, 1.0)
    store.append({"__name__": "b", "k": "1"}, 0, 2.0)
    with pytest.raises(EvalError, match="same labelset"):
        ENGINE.compile('{__name__=~"a|b"} * 2').instant(store, 0)
    with pytest.raises(EvalError, match="many-to-many"):
        ENGINE.compile('a + on(k) {__name__=~"a|b"}').instant(store, 0)
    # filtering keeps the names, so no duplicate arises
    assert len(ENGINE.compile('{__name__=~"a|b"} > 0').instant(store, 0)) == 2


def test_vector_matching_with_group_left_copies_labels() -> None:
    store = SeriesStore()
    for i, v in (("1", 10.0), ("2", 20.0)):
        store.append({"__name__": "req", "model": "m", "i": i}, 0, v)
    store.append({"__name__": "info", "model": "m", "team": "ml"}, 0, 1.0)
    out = ENGINE.compile("req * on(model) group_left(team) info").instant(store, 0)
    assert sorted((s.labels.to_dict()["i"], s.labels.get("team"), s.value) for s in out) == [
        ("1", "ml", 10.0), ("2", "ml", 20.0)]


def test_matchers_read_patterns_as_go_regexp() -> None:
    """What Python's ``re`` reads otherwise (the real Prometheus's answers are held in
    tests/test_regex_differential_re2.py)."""
    def hit(pattern: str, value: str) -> bool:
        return LabelMatcher("l", MatchOp.RE, pattern).matches(value)

    assert hit("((?i)PRO).*", "production")
    assert not hit("a$", "a\n")
    assert not hit(r"\d+", "\u0663")  # Arabic-Indic digit
    assert hit(r"[[:alpha:]]+", "abc") and hit(r"[[:^alpha:]]+", "123") and hit(r"\pL+", "\u00e9t\u00e9")
    assert hit(r"\Qa.b\E", "a.b") and not hit(r"\Qa.b\E", "axb")
    assert hit("a\\b.*", "a\u00e9")  # \b is ASCII in RE2: a letter beyond it is a non-word character
    assert hit("x", "x") and hit("\u00e9", "\u00e9") and hit(".", "\udc80")  # a lone surrogate reads as U+FFFD
    with pytest.raises(ParseError, match="invalid escape sequence"):
        LabelMatcher("l", MatchOp.RE, r"\C")


def test_empty_matcher_semantics() -> None:
    store = SeriesStore()
    store.append({"__name__": "m", "foo": "bar"}, 0, 1.0)
    store.append({"__name__": "m"}, 0, 2.0)

    def values(expr: str) -> list[float]:
        return sorted(s.value for s in ENGINE.compile(expr).instant(store, 0))

    assert values('m{foo=""}') == [2.0]
    assert values('m{foo!="bar"}') == [2.0]
    assert values('m{foo=~".*"}') == [1.0, 2.0]
    assert values('m{foo=~".+"}') == [1.0]
    assert values('m{foo!~"b.*"}') == [2.0]


# --------------------------------------------------------------------------- reference checks
def _ref_rate(pts: list[tuple[int, float]], start: int, end: int, rng_ms: int,
              counter: bool, is_rate: bool) -> float | None:
    """Prometheus's extrapolatedRate, written out per series."""
    if len(pts) < 2:
        return None
    result = pts[-1][1] - pts[0][1]
    if counter:
        prev = pts[0][1]
        for _, v in pts[1:]:
            if v < prev:
                result += prev
            prev = v
    to_start = (pts[0][0] - start) / 1000
    to_end = (end - pts[-1][0]) / 1000
    sampled = (pts[-1][0] - pts[0][0]) / 1000
    avg = sampled / (len(pts) - 1)
    if counter and result > 0 and pts[0][1] >= 0:
        to_start = min(to_start, sampled * (pts[0][1] / result))
    thr = avg * 1.1
    interval = sampled + (to_start if to_start < thr else avg / 2) + (
        to_end if to_end < thr else avg / 2)
    factor = interval / sampled
    if is_rate:
        factor /= rng_ms / 1000
    return result * factor


def _ref(func: str, pts: list[tuple[int, float]], start: int, end: int, rng_ms: int,
         eval_ms: int) -> float | None:
    vals = [v for _, v in pts]
    if not pts:
        return None
    if func in ("rate", "increase", "delta"):
        return _ref_rate(pts, start, end, rng_ms, func != "delta", func == "rate")
    if func in ("irate", "idelta"):
        if len(pts) < 2:
            return None
        (t0, v0), (t1, v1) = pts[-2], pts[-1]
        if func == "idelta":
            return v1 - v0
        return (v1 if v1 < v0 else v1 - v0) / ((t1 - t0) / 1000)
    if func == "resets":
        return float(sum(1 for a, b in zip(vals, vals[1:]) if b < a))
    if func == "changes":
        return float(sum(1 for a, b in zip(vals, vals[1:]) if a != b))
    if func in ("deriv", "predict_linear"):
        if len(pts) < 2:
            return None
        icpt = pts[0][0] if func == "deriv" else eval_ms
        xs = [(t - icpt) / 1000 for t, _ in pts]
        n = len(xs)
        if all(v == vals[0] for v in vals):
            slope, intercept = 0.0, vals[0]
        else:
            sx, sy = sum(xs), sum(vals)
            sxy = sum(x * y for x, y in zip(xs, vals))
            sx2 = sum(x * x for x in xs)
            slope = (sxy - sx * sy / n) / (sx2 - sx * sx / n)
            intercept = sy / n - slope * sx / n
        return slope if func == "deriv" else slope * 600 + intercept
    if func == "sum_over_time":
        return math.fsum(vals)
    if func == "avg_over_time":
        return math.fsum(vals) / len(vals)
    if func == "count_over_time":
        return float(len(vals))
    if func == "min_over_time":
        return min(vals)
    if func == "max_over_time":
        return max(vals)
    if func == "last_over_time":
        return vals[-1]
    if func in ("stddev_over_time", "stdvar_over_time"):
        mean = math.fsum(vals) / len(vals)
        var = math.fsum((v - mean) ** 2 for v in vals) / len(vals)
        return math.sqrt(var) if func == "stddev_over_time" else var
    raise AssertionError(func)


FUNCS = ["rate", "increase", "delta", "irate", "idelta", "resets", "changes", "deriv",
         "predict_linear", "sum_over_time", "avg_over_time", "count_over_time", "min_over_time",
         "max_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time"]

_series = st.lists(
    st.tuples(st.integers(1, 40),                           # gap to the previous sample, seconds
              st.one_of(st.floats(0, 1000), st.just(0.0)),  # value (drops = counter resets)
              st.integers(0, 9)),                           # 0 => a stale marker instead
    min_size=0, max_size=40)


@settings(max_examples=60, deadline=None)
@given(data=st.lists(_series, min_size=1, max_size=4), eval_at=st.integers(0, 900),
       range_s=st.sampled_from([30, 60, 120, 300]), offset_s=st.sampled_from([0, 45]))
def test_range_functions_match_per_series_reference(data: list, eval_at: int, range_s: int,
                                                    offset_s: int) -> None:
    store = SeriesStore(retention_s=1e9)
    kept: list[list[tuple[int, float]]] = []
    for i, series in enumerate(data):
        t = 0
        pts: list[tuple[int, float]] = []
        for gap, value, stale in series:
            t += gap
            if stale == 0:
                store.append({"__name__": "m", "i": str(i)}, t, STALE_NAN)
            else:
                store.append({"__name__": "m", "i": str(i)}, t, value)
                pts.append((t * 1000, value))
        kept.append(pts)
    eval_ms = eval_at * 1000
    end = eval_ms - offset_s * 1000
    start = end - range_s * 1000
    off = f" offset {offset_s}s" if offset_s else ""
    for func in FUNCS:
        arg = f"m[{range_s}s]{off}"
        expr = f"{func}({arg}, 600)" if func == "predict_linear" else f"{func}({arg})"
        got = {s.labels.get("i"): s.value for s in ENGINE.compile(expr).instant_ms(store, eval_ms)}
        for i, pts in enumerate(kept):
            window = [(t, v) for t, v in pts if start <= t <= end]
            want = _ref(func, window, start, end, range_s * 1000, eval_ms)
            if want is None:
                assert str(i) not in got, (func, i, window)
                continue
            assert str(i) in got, (func, i, window)
            g = got[str(i)]
            assert math.isclose(g, want, rel_tol=1e-9, abs_tol=1e-9) or (
                math.isnan(g) and math.isnan(want)), (func, window, g, want)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30),
       groups=st.lists(st.sampled_from("abc"), min_size=30, max_size=30))
def test_aggregations_match_reference(values: list[float], groups: list[str]) -> None:
    store = SeriesStore()
    for i, v in enumerate(values):
        store.append({"__name__": "m", "g": groups[i], "i": str(i)}, 0, v)
    by_group: dict[str, list[float]] = {}
    for i, v in enumerate(values):
        by_group.setdefault(groups[i], []).append(v)

    def run(expr: str) -> dict[str, float]:
        return {s.labels.get("g"): s.value for s in ENGINE.compile(expr).instant(store, 0)}

    checks = {
        "sum": math.fsum, "count": len, "min": min, "max": max,
        "avg": lambda vs: math.fsum(vs) / len(vs),
        "stdvar": lambda vs: math.fsum((v - math.fsum(vs) / len(vs)) ** 2 for v in vs) / len(vs),
    }
    for op, ref in checks.items():
        got = run(f"{op} by (g) (m)")
        assert set(got) == set(by_group)
        for g, vs in by_group.items():
            assert math.isclose(got[g], ref(vs), rel_tol=1e-9, abs_tol=1e-6), (op, g, vs)
    top = ENGINE.compile("topk by (g) (2, m)").instant(store, 0)
    for g, vs in by_group.items():
        assert sorted((s.value for s in top if s.labels.get("g") == g), reverse=True) == sorted(
            vs, reverse=True)[:2]
    q = run("quantile by (g) (0.5, m)")
    for g, vs in by_group.items():
        assert math.isclose(q[g], float(np.quantile(vs, 0.5)), rel_tol=1e-9, abs_tol=1e-9)


def test_labels_are_hashable_keys_for_the_rule_engine() -> None:
    store = _store({"m": [(0, 1.0)]})
    out = ENGINE.compile("m").instant(store, 0)
    assert {out[0].labels: 1}[Labels({"__name__": "m", "job": "j"})] == 1
