"""Differential test against the real ``promtool test rules``.

For several seeds, random series (gauges with gaps and stale markers, counters with resets) and
rules of several shapes (thresholds with ``for``/``keep_firing_for``, rates over counters through
a recording rule, aggregations, ``absent``, ``*_over_time``, ``unless``/``group_left`` vector
matching, ``label_replace``, templated labels and annotations) are
generated. The agent's evaluator runs them and its firing alerts at many instants, and the values
of several PromQL expressions (including the ``ALERTS`` series it wrote back), are written as the
*expected* results of a promtool unit-test file. Real promtool then evaluates the same rules on
the same series: it reports SUCCESS only if every alert (labels and rendered annotations) and
every value is identical; otherwise its report names the alert, the time, and both sides
(``exp`` = the agent, ``got`` = Prometheus).
"""

from __future__ import annotations

import json
import random
import subprocess
import textwrap
from pathlib import Path

import pytest

from monitor.promql.types import Labels, Sample, Scalar
from monitor.rules.unittest import TestGroup, firing_alerts, run_unit_tests, simulate_test_group
from tests.conftest import require_binary

pytestmark = pytest.mark.e2e

STEPS = 60  # one hour of 1-minute samples
JOBS = ("api", "batch")
INSTANCES = ("a", "b")


def gen_series(rng: random.Random) -> list[tuple[str, str]]:
    out = []
    for job in JOBS:
        for inst in INSTANCES:
            g = rng.randint(0, 20)
            vals = []
            for _ in range(STEPS + 1):
                g = min(25, max(0, g + rng.randint(-3, 3)))
                r = rng.random()
                vals.append("_" if r < 0.05 else "stale" if r < 0.07 else str(g))
            out.append((f'gauge{{job="{job}", instance="{inst}"}}', " ".join(vals)))
            c = 0
            vals = []
            for _ in range(STEPS + 1):
                c = 0 if rng.random() < 0.03 else c + rng.randint(0, 6)
                vals.append(str(c))
            out.append((f'errors_total{{job="{job}", instance="{inst}"}}', " ".join(vals)))
    return out


def gen_rules(rng: random.Random) -> str:
    p = {
        "t": rng.randint(8, 18), "f": rng.choice(["0s", "1m", "2m", "5m"]), "k": rng.choice(["0s", "0s", "2m"]),
        "t2": rng.randint(6, 14), "f2": rng.choice(["0s", "3m"]), "r": round(rng.uniform(0.01, 0.06), 3),
        "f3": rng.choice(["1m", "2m"]), "i": rng.randint(8, 20), "s": rng.randint(4, 12), "q": rng.randint(12, 20),
    }
    return textwrap.dedent("""\
        groups:
          - name: thresholds
            rules:
              - alert: GaugeHigh
                expr: gauge > {t}
                for: {f}
                keep_firing_for: {k}
                labels: {{severity: warning}}
                annotations:
                  summary: "{{{{ $labels.job }}}}/{{{{ $labels.instance }}}} gauge {{{{ $value }}}}"
              - alert: GaugeLowAvg
                expr: avg by (job) (gauge) < {t2}
                for: {f2}
                annotations:
                  summary: 'avg {{{{ printf "%.3f" $value }}}} on {{{{ $labels.job | toUpper }}}}'
          - name: rates
            rules:
              - record: job:errors:rate2m
                expr: sum by (job) (rate(errors_total[2m]))
              - alert: ErrorRateHigh
                expr: job:errors:rate2m > {r}
                for: {f3}
                annotations:
                  summary: "{{{{ $labels.job }}}} at {{{{ humanize $value }}}} errors/s"
              - alert: ErrorsIncreasing
                expr: increase(errors_total[5m]) > {i}
                annotations:
                  description: '{{{{ printf "%.2f" $value }}}} new errors in 5m'
          - name: aggregations
            rules:
              - alert: ManyHigh
                expr: count by (job) (gauge > {t}) >= 2
              - alert: Spread
                expr: max without (instance) (gauge) - min without (instance) (gauge) > {s}
                for: 2m
              - alert: GaugeAbsent
                expr: absent(gauge{{job="api", instance="a"}})
              - alert: QuantileHigh
                expr: quantile_over_time(0.9, gauge[10m]) > {q}
                labels:
                  severity: '{{{{ if gt $value 20.0 }}}}critical{{{{ else }}}}warning{{{{ end }}}}'
          - name: joins
            rules:
              - alert: ErrorsWithoutLoad
                expr: sum by (job) (increase(errors_total[5m])) > {i} unless on (job) avg by (job) (gauge) > {t}
              - record: instance:gauge:share
                expr: gauge / on (job) group_left sum by (job) (gauge)
              - alert: Dominant
                expr: instance:gauge:share > 0.7
                annotations:
                  share: "{{{{ $value | humanizePercentage }}}} of {{{{ $labels.job }}}}"
              - alert: Relabelled
                expr: label_replace(max_over_time(gauge[3m]), "host", "node-$1", "instance", "(.*)") > {q}
                annotations:
                  host: "{{{{ $labels.host | toUpper }}}}"
        """).format(**p)


ALERT_NAMES = ("GaugeHigh", "GaugeLowAvg", "ErrorRateHigh", "ErrorsIncreasing", "ManyHigh", "Spread",
               "GaugeAbsent", "QuantileHigh", "ErrorsWithoutLoad", "Dominant", "Relabelled")
ALERT_TIMES_MS = [m * 60_000 for m in range(0, STEPS + 1, 3)] + [450_000, 1_890_000]
EXPRS = [
    'count by (alertname, alertstate) (ALERTS)',
    'ALERTS_FOR_STATE',
    'round(job:errors:rate2m * 1000)',
    'sum by (job) (changes(gauge[10m]))',
    'resets(errors_total[15m])',
    'max_over_time(gauge[5m])',
    'sum without (instance) (gauge)',
    'count(gauge > 10)',
]
EXPR_TIMES_MS = [600_000, 1_200_000, 1_800_000, 2_700_000, 3_600_000]


def metric_text(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_agent_and_promtool_agree(seed: int, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rng = random.Random(seed)
    series = gen_series(rng)
    rules_path = tmp_path / "rules.yml"
    rules_path.write_text(gen_rules(rng))

    # 1. The agent evaluates, recording its firing alerts at every checked instant.
    tg = TestGroup(interval_ms=60_000, input_series=series)
    max_t = max(ALERT_TIMES_MS + EXPR_TIMES_MS)
    observed: dict[int, dict[str, list]] = {}  # type: ignore[type-arg]
    pending_times = sorted(ALERT_TIMES_MS)

    def on_step(ts: int, evaluator) -> None:  # type: ignore[no-untyped-def]
        while pending_times and ts <= pending_times[0] < ts + 60_000:
            observed[pending_times.pop(0)] = firing_alerts(evaluator, set(ALERT_NAMES))

    run = simulate_test_group(tg, 60_000, [str(rules_path)], on_step=on_step, until_ms=max_t)
    assert run.errors == [], run.errors
    assert run.engine is not None and run.store is not None
    assert len(observed) == len(set(ALERT_TIMES_MS))

    # 2. Its results become the expectations of a promtool test file.
    alert_tests = []
    for t in sorted(observed):
        for name in ALERT_NAMES:
            exp = []
            for labels, annotations in observed[t].get(name, []):
                lab = {k: v for k, v in labels if k != "alertname"}
                exp.append({"exp_labels": lab, "exp_annotations": dict(annotations)})
            alert_tests.append({"eval_time": f"{t // 1000}s", "alertname": name, "exp_alerts": exp})
    expr_tests = []
    for expr in EXPRS:
        for t in EXPR_TIMES_MS:
            res = run.engine.compile(expr).instant_ms(run.store, t)
            samples = [Sample(Labels(), res.value)] if isinstance(res, Scalar) else res
            assert all(s.value == s.value for s in samples), f"{expr} gave NaN"  # NaN never compares equal
            expr_tests.append({"expr": expr, "eval_time": f"{t // 1000}s",
                               "exp_samples": [{"labels": metric_text(s.labels.to_dict()), "value": s.value}
                                               for s in samples]})
    test_file = tmp_path / "diff_test.yml"
    test_file.write_text(json.dumps({
        "rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "name": f"seed {seed}",
                   "input_series": [{"series": s, "values": v} for s, v in series],
                   "alert_rule_test": alert_tests, "promql_expr_test": expr_tests}],
    }, indent=1))
    fired = sum(len(v) for obs in observed.values() for v in obs.values())
    assert fired > 0, "the generated data should make some alerts fire"

    # 3. Our own runner accepts its own expectations (the file round-trips through the format).
    assert run_unit_tests([str(test_file)]) == 0

    # 4. The real promtool must find exactly the same alerts and values.
    proc = subprocess.run([promtool, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (
        f"seed {seed}: the agent and Prometheus disagree (exp = agent, got = promtool).\n"
        f"rules:\n{rules_path.read_text()}\npromtool report:\n{proc.stdout}{proc.stderr}")
