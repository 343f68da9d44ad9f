"""The promtool test-file runner: notation, file validation and evaluation semantics, each scenario
also checked against the real promtool's verdict when it is installed."""

from __future__ import annotations

import math
import subprocess
import textwrap
from pathlib import Path

import pytest

from monitor.promql.storage import is_stale_nan
from monitor.rules.series_notation import SeriesDescError, expand_values, parse_metric, parse_series_desc
from monitor.rules.unittest import UnitTestFileError, parse_unit_test_text, run_unit_tests
from tests.conftest import require_binary


# ---------------------------------------------------------------------------- notation
@pytest.mark.parametrize("text,expected", [
    ("1+1x3", [1, 2, 3, 4]),
    ("-2+4x3", [-2, 2, 6, 10]),
    ("1-1x2", [1, 0, -1]),
    ("5x2", [5, 5, 5]),
    ("0x10", [0] * 11),  # not hexadecimal: ten repetitions of 0
    ("1 _ 3", [1, None, 3]),
    ("1 _x3 4", [1, None, None, None, 4]),
    ("0.5+0.25x2", [0.5, 0.75, 1.0]),
    ("1e3", [1000]),
    ("010", [8]),  # Go's ParseInt base 0: legacy octal
    ("Inf -Inf", [math.inf, -math.inf]),
])
def test_expanding_notation(text: str, expected: list[float | None]) -> None:
    assert expand_values(text) == expected


def test_stale_and_nan_values() -> None:
    stale, nan = expand_values("stale NaN")
    assert stale is not None and is_stale_nan(stale)
    assert nan is not None and math.isnan(nan) and not is_stale_nan(nan)


@pytest.mark.parametrize("text", ["1+x3", "abc", "1x", "_x", "1,2"])
def test_bad_values_are_refused(text: str) -> None:
    with pytest.raises(SeriesDescError):
        expand_values(text)


def test_series_and_metric_parsing() -> None:
    labels, values = parse_series_desc('up{job="api", instance=\'h:1\', x=`raw`,}', "1 2")
    assert labels == {"__name__": "up", "job": "api", "instance": "h:1", "x": "raw"} and values == [1, 2]
    assert parse_metric('{__name__="a", b="c"}') == {"__name__": "a", "b": "c"}
    assert parse_metric("") == {}
    with pytest.raises(SeriesDescError, match="inside braces"):
        parse_series_desc('up{job="api"', "0+0x10")


# ---------------------------------------------------------------------------- file validation
def test_unknown_fields_are_refused_like_yaml_strict() -> None:
    with pytest.raises(UnitTestFileError) as ei:
        parse_unit_test_text("groups: []\ntests:\n  - intervall: 1m\n")
    assert str(ei.value) == ("yaml: unmarshal errors:\n  line 1: field groups not found in type main.unitTestFile\n"
                             "  line 3: field intervall not found in type main.testGroup")


def test_bad_duration_in_test_file() -> None:
    with pytest.raises(UnitTestFileError, match='not a valid duration string: "1.5m"'):
        parse_unit_test_text("tests:\n  - interval: 1.5m\n")


def test_defaults() -> None:
    f = parse_unit_test_text("tests:\n  - {}\n")
    assert f.evaluation_interval_ms == 60_000 and f.tests[0].interval_ms == 0 and f.rule_files == []


# ---------------------------------------------------------------------------- scenarios
RULES = """
groups:
  - name: rec
    rules:
      - record: job:x:double
        expr: x * 2
  - name: alert
    rules:
      - alert: DoubleHigh
        expr: job:x:double > 5
        labels: {severity: "{{ $labels.job }}-sev"}
        annotations:
          where: "{{ $externalLabels.cluster }} {{ $externalURL }}"
      - alert: XHigh
        expr: x > 5
        for: 2m
        keep_firing_for: 1m
"""

SCENARIOS: dict[str, tuple[str, int]] = {
    # group_eval_order decides whether the alert sees the recording made at the same instant.
    "order_rec_first": ("""
        rule_files: [rules.yml]
        group_eval_order: [rec, alert]
        tests:
          - interval: 1m
            input_series: [{series: 'x{job="j"}', values: "10x5"}]
            external_labels: {cluster: eu1}
            external_url: http://prom.example
            alert_rule_test:
              - eval_time: 0m
                alertname: DoubleHigh
                exp_alerts:
                  - exp_labels: {job: j, severity: j-sev}
                    exp_annotations: {where: "eu1 http://prom.example"}
        """, 0),
    "order_alert_first": ("""
        rule_files: [rules.yml]
        group_eval_order: [alert, rec]
        tests:
          - interval: 1m
            input_series: [{series: 'x{job="j"}', values: "10x5"}]
            alert_rule_test:
              - eval_time: 0m
                alertname: DoubleHigh
                exp_alerts:
                  - exp_labels: {job: j, severity: j-sev}
                    exp_annotations: {where: " "}
        """, 1),
    # eval_time between evaluations uses the last evaluation; for + keep_firing_for.
    "for_and_keep_firing": ("""
        rule_files: [rules.yml]
        tests:
          - interval: 30s
            input_series: [{series: 'x{job="j"}', values: "10 10 10 10 10 10 0 0 0 0 0 0 0"}]
            alert_rule_test:
              - {eval_time: 1m59s, alertname: XHigh, exp_alerts: []}
              - {eval_time: 2m, alertname: XHigh, exp_alerts: [{exp_labels: {job: j}}]}
              - {eval_time: 3m30s, alertname: XHigh, exp_alerts: [{exp_labels: {job: j}}]}
              - {eval_time: 4m, alertname: XHigh, exp_alerts: []}
        """, 0),
    # staleness, gaps and the lookback delta in PromQL tests; ALERTS written back. The order is
    # pinned: without group_eval_order promtool sorts groups unstably out of a Go map, so whether
    # DoubleHigh sees the recording made at the same instant changes from run to run.
    "staleness_and_alerts_series": ("""
        rule_files: [rules.yml]
        group_eval_order: [rec, alert]
        tests:
          - interval: 1m
            input_series:
              - {series: 'x{job="j"}', values: "1 10 stale"}
              - {series: 'y', values: "1 _x7 2"}
            promql_expr_test:
              - {expr: x, eval_time: 1m, exp_samples: [{labels: 'x{job="j"}', value: 10}]}
              - {expr: x, eval_time: 2m, exp_samples: []}
              - {expr: absent(x), eval_time: 2m, exp_samples: [{value: 1}]}
              - {expr: y, eval_time: 5m, exp_samples: [{labels: y, value: 1}]}
              - {expr: y, eval_time: 6m, exp_samples: []}
              - expr: ALERTS
                eval_time: 1m
                exp_samples:
                  - labels: 'ALERTS{alertname="DoubleHigh", alertstate="firing", job="j", severity="j-sev"}'
                    value: 1
                  - labels: 'ALERTS{alertname="XHigh", alertstate="pending", job="j"}'
                    value: 1
              - {expr: 'ALERTS_FOR_STATE{alertname="XHigh"}', eval_time: 1m,
                 exp_samples: [{labels: 'ALERTS_FOR_STATE{alertname="XHigh", job="j"}', value: 60}]}
        """, 0),
    "wrong_value_fails": ("""
        tests:
          - input_series: [{series: a, values: "3"}]
            promql_expr_test:
              - {expr: a * 2, eval_time: 0, exp_samples: [{value: 7}]}
        """, 1),
    "missing_alertname": ("""
        rule_files: [rules.yml]
        tests:
          - alert_rule_test: [{eval_time: 0m, exp_alerts: []}]
        """, 1),
    "repeated_group_in_order": ("""
        rule_files: [rules.yml]
        group_eval_order: [rec, rec]
        tests: []
        """, 1),
    "bad_expected_labels": ("""
        tests:
          - input_series: [{series: a, values: "1"}]
            promql_expr_test:
              - {expr: a, eval_time: 0, exp_samples: [{labels: 'a{b=', value: 1}]}
        """, 1),
    "unmatched_rule_glob_is_a_warning": ("""
        rule_files: [rules.yml, nothing-*.yml]
        tests:
          - input_series: [{series: 'x{job="j"}', values: "1"}]
            promql_expr_test:
              - {expr: job:x:double, eval_time: 0, exp_samples: [{labels: 'job:x:double{job="j"}', value: 2}]}
        """, 0),
    # Without an interval every value is at time 0: the first one present wins.
    "values_without_interval": ("""
        tests:
          - input_series: [{series: a, values: "1 2"}, {series: b, values: "_ 5"}]
            promql_expr_test:
              - {expr: a, eval_time: 0, exp_samples: [{labels: a, value: 1}]}
              - {expr: b, eval_time: 0, exp_samples: [{labels: b, value: 5}]}
        """, 0),
}


def _write(tmp_path: Path, name: str) -> Path:
    (tmp_path / "rules.yml").write_text(textwrap.dedent(RULES))
    path = tmp_path / f"{name}.yml"
    path.write_text(textwrap.dedent(SCENARIOS[name][0]))
    return path


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_verdict(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, name)
    code = run_unit_tests([str(path)])
    out, err = capsys.readouterr()
    assert code == SCENARIOS[name][1], out + err
    if name == "unmatched_rule_glob_is_a_warning":
        assert "WARNING: no file match pattern" in err
    if name == "missing_alertname":
        assert "misses required attribute alertname" in err
    if name == "repeated_group_in_order":
        assert "group name repeated in evaluation order: rec" in err
    if name == "wrong_value_fails":
        assert 'expr: "a * 2", time: 0s,\n        exp: {} 7E+00\n        got: {} 6E+00' in err


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_verdict_matches_real_promtool(name: str, tmp_path: Path) -> None:
    exe = require_binary("promtool")
    path = _write(tmp_path, name)
    proc = subprocess.run([exe, "test", "rules", path.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == SCENARIOS[name][1], proc.stdout + proc.stderr
