"""Differential test against the real Prometheus v2.42 query engine.

Random (seeded) series -- counters with resets, gauges with NaN samples, a classic histogram,
irregular scrape intervals and gaps -- are backfilled into a TSDB with ``promtool tsdb
create-blocks-from openmetrics``; a real ``prometheus`` server started on 127.0.0.1 over that TSDB
answers ``/api/v1/query`` for a broad set of expressions at several instants, and the in-agent
engine must return the same label sets and values (relative tolerance 1e-9, NaN equal to NaN),
or fail in the same cases. Any difference is reported with expression, time and both results.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from monitor.promql import Engine, EvalError, Scalar, SeriesStore
from tests.prometheus_tsdb import prometheus_over, query as prometheus_query

pytestmark = pytest.mark.e2e

BASE = (int(time.time()) // 3600 - 3) * 3600  # a few hours ago: inside default TSDB retention
DURATION = 3600

EXPRESSIONS = [
    "req_total", "rate(req_total[5m])", "irate(req_total[2m])", "increase(req_total[10m])",
    "resets(req_total[30m])", "changes(temp[15m])", "delta(temp[10m])", "idelta(temp[5m])",
    "deriv(temp[10m])", "predict_linear(temp[10m], 600)",
    "sum by (job) (rate(req_total[5m]))", "avg without (instance) (temp)",
    "max by (job) (temp)", "min(temp)", "count by (job) (req_total)", "group by (job) (temp)",
    "stddev by (job) (temp)", "stdvar(temp)", "quantile(0.3, temp)",
    "quantile by (job) (0.9, temp)",
    "topk(2, temp)", "bottomk by (job) (1, temp)", 'count_values("v", round(temp))',
    "avg_over_time(temp[10m])", "min_over_time(temp[10m])", "max_over_time(temp[10m])",
    "sum_over_time(temp[10m])", "count_over_time(temp[3m])", "last_over_time(temp[10m])",
    "stddev_over_time(temp[10m])", "stdvar_over_time(temp[10m])",
    "quantile_over_time(0.75, temp[10m])", "present_over_time(temp[1m])",
    "absent_over_time(temp[1m])", 'absent(nonexistent{job="x"})', "absent(temp)",
    "histogram_quantile(0.9, rate(lat_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(lat_bucket[10m])))",
    "temp > 20", "temp > bool 20", "20 < temp", "temp * 2 + 1", "-temp", "temp % 7",
    "temp ^ 2", "temp atan2 3", "rate(req_total[5m]) / on(job, instance) temp",
    "temp / ignoring(instance) group_left sum by (job) (temp)",
    "sum by (job) (temp) * on(job) group_right temp",
    "temp and on(job) (temp > 25)", "temp or on(instance) req_total", "temp unless temp > 25",
    "abs(temp - 20)", "ceil(temp)", "floor(temp)", "round(temp, 0.5)", "sqrt(abs(temp))",
    "exp(temp / 100)", "ln(abs(temp) + 1)", "log2(abs(temp) + 1)", "log10(abs(temp) + 1)",
    "sgn(temp - 20)", "clamp(temp, 15, 25)", "clamp_min(temp, 20)", "clamp_max(temp, 20)",
    "scalar(sum(temp))", "vector(1)", "time()", "timestamp(temp)", "hour(vector(time()))",
    'label_replace(temp, "host", "h-$1", "instance", "i(.*)")',
    'label_join(temp, "both", "/", "job", "instance")', "sort(temp)", "sort_desc(temp)",
    "temp offset 5m", "rate(req_total[5m] offset 10m)", "max_over_time(temp[20m:1m])",
    "avg_over_time(rate(req_total[2m])[15m:30s])", 'temp{instance=~"i[12]"}',
    'temp{instance!~"i1|i3"}', 'temp{job!="b"}', "sin(temp)", "cos(temp)", "tanh(temp / 10)",
    "deg(temp)", "rad(temp)", "day_of_week(vector(time()))", "days_in_month(vector(time()))",
]


Family = list[tuple[dict[str, str], list[tuple[float, float]]]]


def _generate(rng: np.random.Generator) -> dict[str, Family]:
    """Families -> series -> (labels, [(t seconds, value)])."""
    fams: dict[str, list] = {"req_total": [], "temp": [], "lat_bucket": []}
    for job in ("a", "b"):
        for inst in ("i1", "i2", "i3"):
            labels = {"job": job, "instance": inst}
            t = float(BASE)
            counter, temp = 0.0, 20.0
            req, tmp = [], []
            while t < BASE + DURATION:
                if rng.random() > 0.05:  # 5% missed scrapes
                    counter = 0.0 if rng.random() < 0.01 else counter + float(rng.poisson(7))
                    temp = temp + float(rng.normal(0, 1.5))
                    req.append((round(t, 3), counter))
                    value = float("nan") if rng.random() < 0.005 else round(temp, 3)
                    tmp.append((round(t, 3), value))
                t += float(rng.choice([10.0, 15.0, 15.0, 15.0, 20.0]))
            fams["req_total"].append((labels, req))
            fams["temp"].append((labels, tmp))
    for le in ("0.1", "0.5", "1", "+Inf"):
        t, count, pts = float(BASE), 0.0, []
        while t < BASE + DURATION:
            count += float(rng.poisson({"0.1": 2, "0.5": 5, "1": 7, "+Inf": 8}[le]))
            pts.append((t, count))
            t += 15.0
        fams["lat_bucket"].append(({"le": le}, pts))
    # bucket counts must be cumulative: rebuild from the per-bucket increments
    series = fams["lat_bucket"]
    for k in range(1, len(series)):
        series[k] = (series[k][0], [(t, v + series[k - 1][1][i][1])
                                    for i, (t, v) in enumerate(series[k][1])])
    return fams


def _openmetrics(fams: dict[str, list]) -> str:
    lines = []
    for name, series in fams.items():
        family = name[:-len("_total")] if name.endswith("_total") else name
        kind = "counter" if name.endswith("_total") else "unknown"
        lines.append(f"# TYPE {family} {kind}")
        for labels, pts in series:
            lab = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            for t, v in pts:
                val = "NaN" if math.isnan(v) else repr(v)
                lines.append(f"{name}{{{lab}}} {val} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus_and_store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    fams = _generate(np.random.default_rng(20240601))
    with prometheus_over(_openmetrics(fams), tmp_path_factory.mktemp("promql-diff")) as port:
        store = SeriesStore(retention_s=1e9)
        for name, series in fams.items():
            for labels, pts in series:
                for t, v in pts:
                    store.append({"__name__": name, **labels}, t, v)
        yield port, store


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _prom_value(v: str) -> float:
    """Prometheus's JSON sample value ("+Inf", "-Inf", "NaN" or a decimal)."""
    return float(v.replace("+Inf", "inf").replace("-Inf", "-inf"))


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_same_results_as_prometheus(prometheus_and_store, expr: str) -> None:  # type: ignore
    port, store = prometheus_and_store
    engine = Engine()
    query = engine.compile(expr)
    problems: list[str] = []
    nonempty = 0
    for offset in (0, 301, 777, 1500, 2222.5, 3000, 3599, 3900):
        t = BASE + offset
        prom = prometheus_query(port, expr, t)
        try:
            ours = query.instant(store, t)
            our_err = None
        except EvalError as exc:
            ours, our_err = None, str(exc)
        if prom.get("status") != "success":
            if our_err is None:
                problems.append(f"t=+{offset}: Prometheus failed ({prom.get('error')}), we did not")
            continue
        if our_err is not None:
            problems.append(f"t=+{offset}: we failed ({our_err}), Prometheus returned "
                            f"{prom['data']['result']}")
            continue
        data = prom["data"]
        if data["resultType"] == "scalar":
            want = {(): _prom_value(data["result"][1])}
        else:
            want = {tuple(sorted(r["metric"].items())): _prom_value(r["value"][1])
                    for r in data["result"]}
        if isinstance(ours, Scalar):
            got = {(): ours.value}
        else:
            got = {s.labels.items(): s.value for s in ours}  # type: ignore[union-attr]
        nonempty += bool(want)
        if set(want) != set(got):
            problems.append(f"t=+{offset}: label sets differ: only Prometheus "
                            f"{sorted(set(want) - set(got))[:3]}, only ours "
                            f"{sorted(set(got) - set(want))[:3]}")
            continue
        for key, w in want.items():
            if not _same(got[key], w):
                problems.append(f"t=+{offset}: {dict(key)}: Prometheus {w!r}, ours {got[key]!r}")
    assert not problems, f"{expr}:\n" + "\n".join(problems[:10])
    # guard against a vacuous comparison of two empty results everywhere
    # every expression has a non-empty result at some instant (absent() after the data ends)
    assert nonempty, f"{expr}: empty at every instant, the comparison would prove nothing"
