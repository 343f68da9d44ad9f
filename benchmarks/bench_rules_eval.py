"""Benchmark: 50 realistic alerting expressions over 10,000 series with one hour of history.

Target (issue #6): under 50 ms per evaluation of all 50 expressions on the agent's store.

The workload mimics the agent's own metrics: 100 model/version targets, each exporting request
counters by outcome, latency and confidence histograms (12 buckets), per-feature drift scores,
p-values and missing-value ratios, plus calibration and queue gauges, scraped every 15 s for an
hour (240 snapshots, so range selectors see realistic history). Each iteration appends one new
snapshot (as the agent does) and then evaluates all 50 rules at that instant.

Printed figures: median and p95 ms per evaluation of all 50 rules, the scrape-append cost, and a
baseline measured in the same run -- a pure-Python pass that reads every selected series' latest
sample once per rule (what the simplest per-series interpreter would at least have to do) -- with
the ratio engine / baseline.

Run: ``python benchmarks/bench_rules_eval.py [--iterations N]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.promql import Engine, Labels, SeriesStore  # noqa: E402

MODELS = [f"model-{i:02d}" for i in range(20)]
VERSIONS = [f"v{i}" for i in range(5)]
FEATURES = [f"f{i:02d}" for i in range(20)]
LE = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
CONF_LE = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "0.95", "0.99", "+Inf"]
SCRAPE_S = 15.0
HISTORY_S = 3600.0

RULES = [
    # availability / errors
    'sum by (model, version) (rate(monitor_predictions_total{outcome="error"}[5m])) '
    '/ sum by (model, version) (rate(monitor_predictions_total[5m])) > 0.05',
    'sum by (model) (rate(monitor_predictions_total{outcome="error"}[5m])) '
    '/ ignoring(outcome) group_left sum by (model) (rate(monitor_predictions_total[5m])) > 0.1',
    'rate(monitor_predictions_total{outcome="shed"}[5m]) > 0',
    'increase(monitor_predictions_total{outcome="error"}[15m]) > 100',
    'sum by (model) (increase(monitor_predictions_total{outcome=~"error|shed"}[1h])) > 1000',
    'sum(rate(monitor_predictions_total[5m])) by (model) == 0',
    'absent(monitor_predictions_total{model="model-00"})',
    'absent_over_time(monitor_up{model="model-19"}[10m])',
    'monitor_up == 0',
    'avg_over_time(monitor_up[10m]) < 0.9',
    # latency
    'histogram_quantile(0.99, sum by (model, version, le) '
    '(rate(monitor_inference_latency_seconds_bucket[5m]))) > 1',
    'histogram_quantile(0.9, sum by (model, le) '
    '(rate(monitor_inference_latency_seconds_bucket[10m]))) > 0.5',
    'histogram_quantile(0.5, rate(monitor_inference_latency_seconds_bucket{model="model-03"}[5m]))'
    ' > 0.2',
    'rate(monitor_inference_latency_seconds_sum[5m]) / rate(monitor_inference_latency_seconds_count'
    '[5m]) > 0.3',
    'sum by (model) (rate(monitor_inference_latency_seconds_sum[5m])) / sum by (model) '
    '(rate(monitor_inference_latency_seconds_count[5m])) > 0.25',
    'deriv(monitor_queue_depth[10m]) > 1',
    'predict_linear(monitor_queue_depth[30m], 3600) > 1000',
    'max_over_time(monitor_queue_depth[5m]) > 500',
    'monitor_queue_depth / monitor_queue_capacity > 0.8',
    'quantile_over_time(0.95, monitor_queue_depth{model="model-07"}[15m]) > 100',
    # confidence & calibration
    'histogram_quantile(0.1, sum by (model, le) (rate(monitor_confidence_bucket[15m]))) < 0.3',
    'sum by (model, version) (rate(monitor_confidence_sum[15m])) / sum by (model, version) '
    '(rate(monitor_confidence_count[15m])) < 0.6',
    'monitor_calibration_error > 0.1',
    'avg_over_time(monitor_calibration_error[30m]) > 0.08',
    'delta(monitor_calibration_error[1h]) > 0.05',
    'monitor_calibration_error - monitor_calibration_error offset 1h > 0.03',
    'stddev_over_time(monitor_calibration_error[30m]) > 0.02',
    'changes(monitor_model_info[1h]) > 2',
    'topk(3, monitor_calibration_error) > 0.12',
    'abs(monitor_calibration_error - avg without (version) (monitor_calibration_error)) > 0.05',
    # drift & data quality
    'monitor_drift_score > 0.65',
    'max by (model, version) (monitor_drift_score) > 0.25',
    'count by (model) (monitor_drift_pvalue < 0.01) > 3',
    'avg_over_time(monitor_drift_score{feature=~"f0[0-4]"}[30m]) > 0.25',
    'max_over_time(monitor_drift_score[15m]) > 0.7 and on(model, version) monitor_up == 1',
    'sum by (model) (monitor_drift_pvalue < bool 0.001) >= 2',
    'monitor_feature_missing_ratio > 0.6',
    'avg by (model, version) (monitor_feature_missing_ratio) > 0.1',
    'max_over_time(monitor_feature_missing_ratio[10m]) - min_over_time('
    'monitor_feature_missing_ratio[10m]) > 0.6',
    'min_over_time(monitor_drift_pvalue{feature!="f19"}[5m]) < 0.0001',
    'count(monitor_drift_score > 0.4) by (model) / count(monitor_drift_score) by (model) > 0.5',
    'bottomk(2, min by (feature) (monitor_drift_pvalue)) < 0.001',
    'quantile by (model) (0.9, monitor_drift_score) > 0.35',
    'monitor_drift_score > 0.5 unless on(model, version) monitor_up == 0',
    'clamp_max(monitor_feature_missing_ratio, 1) * 100 > 60',
    # probing and housekeeping
    'resets(monitor_predictions_total[1h]) > 0',
    'irate(monitor_predictions_total{outcome="ok"}[5m]) < 0.1',
    'time() - monitor_last_feedback_timestamp_seconds > 3600',
    'label_replace(monitor_up, "service", "$1", "model", "model-(.*)") == 0',
    'sum by (model) (monitor_up) < count by (model) (monitor_up)',
]
assert len(RULES) == 50, len(RULES)


def _series() -> list[tuple[Labels, str, int]]:
    """All series of the workload: (labels, kind, index) -- kind drives the value generator."""
    out: list[tuple[Labels, str, int]] = []

    def add(name: str, kind: str, **labels: str) -> None:
        out.append((Labels({"__name__": name, **labels}), kind, len(out)))

    for m in MODELS:
        for v in VERSIONS:
            t = {"model": m, "version": v}
            for outcome in ("ok", "error", "shed"):
                add("monitor_predictions_total", "counter", outcome=outcome, **t)
            for le in LE:
                add("monitor_inference_latency_seconds_bucket", "counter", le=le, **t)
            add("monitor_inference_latency_seconds_sum", "counter", **t)
            add("monitor_inference_latency_seconds_count", "counter", **t)
            for le in CONF_LE:
                add("monitor_confidence_bucket", "counter", le=le, **t)
            add("monitor_confidence_sum", "counter", **t)
            add("monitor_confidence_count", "counter", **t)
            for f in FEATURES:
                add("monitor_drift_score", "gauge01", feature=f, **t)
                add("monitor_drift_pvalue", "gauge01", feature=f, **t)
                add("monitor_feature_missing_ratio", "gauge01", feature=f, **t)
            add("monitor_calibration_error", "gauge01", **t)
            add("monitor_queue_depth", "gauge", **t)
            add("monitor_queue_capacity", "const", **t)
            add("monitor_up", "up", **t)
            add("monitor_model_info", "const", **t)
            add("monitor_last_feedback_timestamp_seconds", "time", **t)
            add("monitor_probe_success", "up", **t)
            add("monitor_probe_duration_seconds", "gauge01", **t)
            add("monitor_rejected_inputs_total", "counter", **t)
    return out


def _values(kinds: np.ndarray, step: int, t: float, rng: np.random.Generator,
            counters: np.ndarray) -> np.ndarray:
    n = kinds.size
    vals = np.empty(n)
    c = kinds == 0
    counters[c] += rng.poisson(5.0, size=int(c.sum()))
    vals[c] = counters[c]
    g01 = kinds == 1
    vals[g01] = rng.beta(2, 8, size=int(g01.sum()))
    g = kinds == 2
    vals[g] = rng.gamma(2.0, 20.0, size=int(g.sum()))
    vals[kinds == 3] = 1000.0
    up = kinds == 4
    vals[up] = (rng.random(int(up.sum())) > 0.01).astype(float)
    vals[kinds == 5] = t - rng.integers(0, 7200)
    return vals


def build_store(seed: int = 1) -> tuple[SeriesStore, list[Labels], np.ndarray, np.ndarray,
                                        np.random.Generator, float]:
    """Fill a store with one hour of 15 s snapshots of all series; return it and the generator."""
    series = _series()
    codes = {"counter": 0, "gauge01": 1, "gauge": 2, "const": 3, "up": 4, "time": 5}
    labels = [s[0] for s in series]
    kinds = np.array([codes[s[1]] for s in series])
    rng = np.random.default_rng(seed)
    counters = np.zeros(len(series))
    store = SeriesStore(retention_s=HISTORY_S + 600, max_series=50_000)
    t = 1_700_000_000.0
    for step in range(int(HISTORY_S / SCRAPE_S)):
        store.append_scrape(t, zip(labels, _values(kinds, step, t, rng, counters).tolist()))
        t += SCRAPE_S
    return store, labels, kinds, counters, rng, t


def baseline_pass(store: SeriesStore, queries: list, t: float) -> float:
    """Pure-Python reference: read each selected series' latest sample once per rule."""
    start = time.perf_counter()
    total = 0.0
    vals, state = store._vals, store._state
    col = store._c1 - 1
    for q in queries:
        for node in _selectors(q.node):
            for sid in store.lookup(node.matchers).tolist():
                if state[sid, col]:
                    total += float(vals[sid, col])
    _ = total, t
    return time.perf_counter() - start


def _selectors(node):  # type: ignore[no-untyped-def]
    from monitor.promql import ast as A

    for n in A.walk(node):
        if isinstance(n, A.VectorSel):
            yield n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args()

    t0 = time.perf_counter()
    store, labels, kinds, counters, rng, t = build_store()
    build_s = time.perf_counter() - t0
    stats = store.stats()
    engine = Engine()
    queries = [engine.compile(r) for r in RULES]

    eval_ms: list[float] = []
    append_ms: list[float] = []
    cpu_ms: list[float] = []
    fired = 0
    for i in range(args.iterations):
        vals = _values(kinds, i, t, rng, counters).tolist()
        a0 = time.perf_counter()
        store.append_scrape(t, zip(labels, vals))
        a1 = time.perf_counter()
        c1 = time.process_time()
        fired = 0
        for q in queries:
            res = q.instant(store, t)
            fired += len(res) if isinstance(res, list) else 1
        a2 = time.perf_counter()
        c2 = time.process_time()
        append_ms.append((a1 - a0) * 1000)
        eval_ms.append((a2 - a1) * 1000)
        cpu_ms.append((c2 - c1) * 1000)
        t += SCRAPE_S

    steady = eval_ms[1:] or eval_ms  # the first iteration fills the per-node caches
    median = statistics.median(steady)
    p95 = float(np.percentile(steady, 95))
    base = statistics.median(baseline_pass(store, queries, t) * 1000 for _ in range(5))
    print(f"store: {stats.series} series, {stats.timestamps} timestamps, {stats.samples} samples "
          f"(built in {build_s:.1f} s)")
    print(f"rules: {len(queries)} expressions, {fired} result elements in the last evaluation")
    print(f"evaluation of all 50 rules: median {median:.1f} ms, p95 {p95:.1f} ms, "
          f"first (cold caches) {eval_ms[0]:.1f} ms   [target < 50 ms]")
    print(f"  CPU time per evaluation (robust to a busy machine): median "
          f"{statistics.median(cpu_ms[1:] or cpu_ms):.1f} ms")
    print(f"append_scrape of {len(labels)} samples: median {statistics.median(append_ms):.1f} ms")
    print(f"baseline (pure-Python read of each selected series' latest sample, once per rule): "
          f"{base:.1f} ms")
    print(f"ratio engine / baseline: {median / base:.2f}")


if __name__ == "__main__":
    main()
