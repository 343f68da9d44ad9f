"""The on-call engineer's view of the shipped alerts, runbooks and dashboards.

What a page says must be true of the series that fired it: every ``{{ $labels.x }}`` of an
annotation is a label of the series the alert's expression returns (after its aggregations), the
ratios compare like with like (rows with rows), an alert documented as working without a
reference fires without one, the runbook names the label values the alert can carry, and every
dashboard panel rates only counters and names in its legend only labels its series carry.

The rule behaviour is checked twice, with the real ``promtool test rules`` and with the agent's
own rule engine (``monitor rules test``), on the same unit-test files.
"""

from __future__ import annotations

import ast as pyast
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from monitor import catalog, runbooks
from monitor.cli import main
from monitor.dashboards import build
from monitor.dashboards.queries import iter_queries, substitute
from monitor.pipeline import REJECTION_HINTS
from monitor.promql import ast
from tests.conftest import REPO_ROOT, require_binary
from tests.promql_labels import SERIES, output_labels, series_type

PACKS = sorted((REPO_ROOT / "rules").glob("*.yml"))
ALERTS = {rule["alert"]: (pack, rule) for pack in PACKS
          for group in yaml.safe_load(pack.read_text())["groups"] for rule in group["rules"] if "alert" in rule}
_LABEL_REF = re.compile(r"\$labels\.(\w+)")


def _annotation_labels(rule: dict) -> set[str]:
    used: set[str] = set()
    for text in (*rule.get("annotations", {}).values(), *rule.get("labels", {}).values()):
        used |= set(_LABEL_REF.findall(str(text)))
    return used


#: Labels Prometheus's scrape attaches to every series (absent in the agent's own evaluation, where
#: a selector on ``instance=""`` matches), which the catalog therefore does not list.
_TARGET_LABELS = {"instance", "job"}


def _keeps(node: ast.Node, label: str) -> bool:
    """Whether a label every input series carries is still on the expression's output (PromQL's
    rules: an aggregation keeps it under ``without`` unless listed, under ``by`` if listed; a
    one-to-one match ``on`` keeps only the listed labels, ``ignoring`` drops them; set operators
    and group_left keep the left side's)."""
    if isinstance(node, (ast.Paren, ast.Unary, ast.Subquery)):
        return _keeps(node.expr, label)
    if isinstance(node, ast.Aggregate):
        kept = (label not in node.grouping) if node.without else (label in node.grouping)
        return kept and _keeps(node.expr, label)
    if isinstance(node, ast.Binary):
        lhs_scalar, rhs_scalar = node.lhs.type == ast.SCALAR, node.rhs.type == ast.SCALAR
        if lhs_scalar or rhs_scalar:
            return _keeps(node.rhs if lhs_scalar else node.lhs, label)
        if node.op in ("and", "unless"):
            return _keeps(node.lhs, label)
        if node.op == "or":
            return _keeps(node.lhs, label) and _keeps(node.rhs, label)
        if node.card == "one-to-many":
            return _keeps(node.rhs, label)
        if node.card == "one-to-one" and node.has_matching and (label in node.matching) != node.on:
            return False
        return _keeps(node.lhs, label)
    if isinstance(node, ast.Call):
        return all(_keeps(arg, label) for arg in node.args if arg.type in (ast.VECTOR, ast.MATRIX))
    return True  # selectors and literals


def _missing_annotation_labels(rule: dict) -> set[str]:
    tree = ast.parse_expr(rule["expr"])
    labels = output_labels(tree)
    assert labels is not None, f"{rule['alert']}: the labels of its expression are unknown (a series outside the catalog?)"
    return _annotation_labels(rule) - labels - {t for t in _TARGET_LABELS if _keeps(tree, t)}


# -- annotations ---------------------------------------------------------------------------------

@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_annotation_label_is_on_the_series_the_alert_returns(alert: str) -> None:
    pack, rule = ALERTS[alert]
    missing = _missing_annotation_labels(rule)
    assert not missing, (f"{pack.name}: {alert} renders {sorted(missing)} in its annotations, which its expression "
                         "aggregates away: on-call would read an empty value")


def test_the_label_check_catches_a_label_aggregated_away() -> None:
    rule = {"alert": "X", "expr": "sum by (model) (rate(monitor_rows_rejected_total[5m])) > 0",
            "annotations": {"summary": "{{ $labels.model }} refuses rows ({{ $labels.reason }})"}}
    assert _missing_annotation_labels(rule) == {"reason"}
    rule["expr"] = ("sum by (model, reason) (rate(monitor_rows_rejected_total[5m])) / on (model) group_left () "
                    "sum by (model) (rate(monitor_calls_total[5m])) > 0")
    assert _missing_annotation_labels(rule) == set()
    rule["expr"] = ("sum by (model, reason) (rate(monitor_rows_rejected_total[5m])) / on (model) "
                    "sum by (model) (rate(monitor_calls_total[5m])) > 0")
    assert _missing_annotation_labels(rule) == {"reason"}, "one-to-one on() keeps only the matching labels"
    # the scrape's instance: kept where nothing is aggregated, gone where it is
    rule = {"alert": "Y", "expr": "monitor_accuracy_ratio < 0.9",
            "annotations": {"summary": "{{ $labels.model }} on {{ $labels.instance }}"}}
    assert _missing_annotation_labels(rule) == set()
    rule["expr"] = "max by (model) (monitor_accuracy_ratio) < 0.9"
    assert _missing_annotation_labels(rule) == {"instance"}
    rule["expr"] = "max without (high, low) (monitor_regression_segment_max_mae_gap) > 1"
    assert _missing_annotation_labels(rule) == set()
    rule["expr"] = "monitor_accuracy_ratio / on (model) monitor_reference_accuracy_ratio < 0.9"
    assert _missing_annotation_labels(rule) == {"instance"}
    rule["expr"] = "monitor_accuracy_ratio < 0.9 and on (model) sum by (model) (monitor_labels_in_window) > 100"
    assert _missing_annotation_labels(rule) == set()


# -- rule behaviour, with promtool and with the agent's engine -----------------------------------

def _run_unit_test(tmp_path: Path, rule_file: str, body: str) -> None:
    test = tmp_path / "test.yml"
    test.write_text(f"rule_files:\n  - {REPO_ROOT / 'rules' / rule_file}\nevaluation_interval: 1m\n" + textwrap.dedent(body))
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "promtool: " + result.stdout + result.stderr
    agent = CliRunner().invoke(main, ["rules", "test", str(test)])
    assert agent.exit_code == 0, "monitor rules test: " + agent.output


def test_missing_values_alert_fires_for_a_model_without_a_reference(tmp_path: Path) -> None:
    # data_quality runs without a reference (README: "always"); it then exports the missing ratio but
    # no monitor_data_reference_invalid_ratio, and the alert's subtraction matched nothing: silent
    # on a feature missing in half the rows.
    _run_unit_test(tmp_path, "data_quality.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_data_invalid_ratio{model="m",feature="age",reason="missing"}'
                values: '0.5x20'
              - series: 'monitor_data_invalid_ratio{model="m",feature="income",reason="missing"}'
                values: '0.01x20'
              - series: 'monitor_data_invalid_ratio{model="r",feature="age",reason="missing"}'
                values: '0.30x20'
              - series: 'monitor_data_reference_invalid_ratio{model="r",feature="age",reason="missing"}'
                values: '0.28x20'
              - series: 'monitor_data_window_rows{model="m"}'
                values: '1000x20'
              - series: 'monitor_data_window_rows{model="r"}'
                values: '1000x20'
            alert_rule_test:
              - eval_time: 15m
                alertname: ModelFeatureMissingValues
                exp_alerts:
                  - exp_labels: {severity: warning, model: m, feature: age, reason: missing}
                    exp_annotations:
                      summary: "Feature `age` of model m: missing values 50 percentage points above the reference's share"
                      description: "The share of rows where `age` is missing (NaN/None) exceeds the reference's rate (0 for a model without a reference) by 50 percentage points over the window: an upstream join, a renamed field or a broken sensor."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelfeaturemissingvalues"
    """)


def test_unreadable_rows_alert_compares_rows_with_rows(tmp_path: Path) -> None:
    # 100 rows per call; model "batch" has 1 bad row in 1,000 (0.1%): the rule divided rows by
    # calls and paged at "60% of the calls". Model "bad" has 5% bad rows: it fires, at 5%. Model
    # "all" has every row refused (no predictions series at all): it fires, at 100%.
    _run_unit_test(tmp_path, "core.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_calls_total{model="batch"}'
                values: '0+60x30'
              - series: 'monitor_predictions_total{model="batch"}'
                values: '0+5994x30'
              - series: 'monitor_rows_rejected_total{model="batch",reason="wrong_type"}'
                values: '0+6x30'
              - series: 'monitor_calls_total{model="bad"}'
                values: '0+60x30'
              - series: 'monitor_predictions_total{model="bad"}'
                values: '0+5700x30'
              - series: 'monitor_rows_rejected_total{model="bad",reason="nan_output"}'
                values: '0+300x30'
              - series: 'monitor_calls_total{model="all"}'
                values: '0+60x30'
              - series: 'monitor_rows_rejected_total{model="all",reason="output_shape"}'
                values: '0+6000x30'
            alert_rule_test:
              - eval_time: 25m
                alertname: ModelInputsUnreadable
                exp_alerts:
                  - exp_labels: {severity: warning, model: bad, reason: nan_output}
                    exp_annotations:
                      summary: "5% of the rows sent to bad are unreadable (nan_output)."
                      description: "More than 1% of the rows of bad (rows, not calls: a batch call counts each row) were refused by the monitor over 10 minutes with reason nan_output: a client sends the wrong shape or type, or the model returns NaN or unnormalised probabilities. The agent's log names the fix at the first refusal of each reason."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelinputsunreadable"
                  - exp_labels: {severity: warning, model: all, reason: output_shape}
                    exp_annotations:
                      summary: "100% of the rows sent to all are unreadable (output_shape)."
                      description: "More than 1% of the rows of all (rows, not calls: a batch call counts each row) were refused by the monitor over 10 minutes with reason output_shape: a client sends the wrong shape or type, or the model returns NaN or unnormalised probabilities. The agent's log names the fix at the first refusal of each reason."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelinputsunreadable"
    """)


# -- runbooks -------------------------------------------------------------------------------------

def _reason_values(expr: str) -> set[str]:
    values: set[str] = set()
    for node in ast.walk(ast.parse_expr(expr)):
        if isinstance(node, ast.VectorSel):
            for m in node.matchers:
                if m.name == "reason" and m.op in ("=", "=~"):
                    values |= set(m.value.split("|"))
    return values


@pytest.mark.parametrize("alert", sorted(a for a, (_, r) in ALERTS.items() if _reason_values(r["expr"])))
def test_runbook_names_each_reason_the_alert_selects(alert: str) -> None:
    _, rule = ALERTS[alert]
    text = runbooks.RUNBOOKS[alert].lower()
    for reason in _reason_values(rule["expr"]):
        assert reason in text or reason.replace("_", " ") in text, f"{alert}'s runbook does not say what reason {reason!r} means"


def test_unreadable_rows_runbook_names_every_reason_the_agent_counts() -> None:
    reasons = set(REJECTION_HINTS) | _counted_rejection_reasons()
    text = runbooks.RUNBOOKS["ModelInputsUnreadable"]
    missing = sorted(r for r in reasons if r not in text)
    assert not missing, f"ModelInputsUnreadable's runbook does not name {missing}: on-call sees them in the alert's reason label"


def _counted_rejection_reasons() -> set[str]:
    """Reasons the agent's code counts in monitor_rows_rejected_total, read from its source."""
    found: set[str] = set()
    pattern = re.compile(r"RowError\(\s*\"(\w+)\"|_reject\([^)]*\"(\w+)\"\)|rejected\[\"(\w+)\"\]"
                         r"|\(\"(\w+)\", (?:~finite|finite & ~keep)\)|\"monitor_rows_rejected\", [^,]+, labels=\(\"(\w+)\",\)")
    for path in (REPO_ROOT / "monitor").glob("*.py"):
        for match in pattern.finditer(path.read_text()):
            found |= {g for g in match.groups() if g}
    assert {"wrong_shape", "nan_output", "invalid_timestamp", "internal_error"} <= found, found
    return found


_METRIC_NAME = re.compile(r"\bmonitor_[a-z0-9_]+\b\*?")
_FAMILIES = {spec.name for spec in catalog.CATALOG.values() if spec.type == "histogram"}


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_runbook_and_description_name_only_metrics_that_exist(alert: str) -> None:
    _, rule = ALERTS[alert]
    text = runbooks.RUNBOOKS[alert] + " " + rule["annotations"]["description"]
    for name in _METRIC_NAME.findall(text):
        if name.endswith("*"):
            assert any(s.startswith(name[:-1]) for s in SERIES), f"{alert}: {name} matches no exported series"
        else:
            assert name in SERIES or name in _FAMILIES, f"{alert} tells on-call to look at {name}, which the agent does not export"


# -- dashboards -----------------------------------------------------------------------------------

_VARS = {"model": ".*", "instance": ".*", "segment": ".*", "detector": ".*", "feature": ".*", "datasource": "x"}
_RATE_FUNCS = {"rate", "irate", "increase", "resets"}
_PANEL_QUERIES = [(d.uid, q) for d in build.dashboards() for q in iter_queries(d.to_json()) if q.kind == "panel"]


def _legend_labels(node: ast.Node) -> frozenset[str] | None:
    """Labels a legend may name: as output_labels, but a zero fill after ``or`` keeps the first side's."""
    if isinstance(node, ast.Paren):
        return _legend_labels(node.expr)
    if isinstance(node, ast.Binary) and node.op == "or":
        return _legend_labels(node.lhs)
    return output_labels(node)


@pytest.mark.parametrize("uid, query", _PANEL_QUERIES, ids=[f"{u}:{q.title}" for u, q in _PANEL_QUERIES])
def test_panels_rate_only_counters_and_legends_name_labels_their_series_carry(uid: str, query) -> None:
    tree = ast.parse_expr(substitute(query.expr, _VARS, rate_window="5m"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.func in _RATE_FUNCS:
            arg = node.args[0]
            name = arg.vs.name if isinstance(arg, ast.MatrixSel) else "?"
            assert series_type(name) in ("counter", "histogram_bucket", "histogram_sum", "histogram_count"), \
                f"{query.where}: {node.func}() of {name}, a {series_type(name)}: a gauge's rate means nothing"
        if isinstance(node, ast.Call) and node.func == "histogram_quantile":
            labels = output_labels(node.args[1])
            assert labels is not None and "le" in labels, f"{query.where}: histogram_quantile without le buckets"
    labels = _legend_labels(tree)
    assert labels is not None, f"{query.where}: labels unknown"
    legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", query.legend))
    assert legend <= labels, f"{query.where}: legend names {sorted(legend - labels)}, not on its series ({sorted(labels)})"


def _unconditional_writes(func: "pyast.FunctionDef") -> set[str]:
    """Metric names a method writes with ``out.set`` / ``out.inc`` outside any ``if``/loop/``try``."""
    names: set[str] = set()
    for stmt in func.body:
        call = stmt.value if isinstance(stmt, pyast.Expr) else None
        if (isinstance(call, pyast.Call) and isinstance(call.func, pyast.Attribute) and call.func.attr in ("set", "inc")
                and call.args and isinstance(call.args[0], pyast.Constant)):
            names.add(call.args[0].value)
    return names


def test_drift_detector_variable_lists_every_drift_detector() -> None:
    # The Drift dashboard's $detector drop-down read monitor_drift_ert_events, which alibi's offline
    # detectors (KSDrift, MMDDrift) never export: they could not be picked alone.
    from monitor.dashboards import drift as drift_dashboard

    variable = next(v for v in build.dashboards() if v.uid == drift_dashboard.UID).to_json()["templating"]["list"]
    detector = next(v for v in variable if v["name"] == "detector")
    metric = detector["definition"][len("label_values("):].split(",")[0].split("{")[0]
    alarm_writers = 0
    for path in sorted((REPO_ROOT / "monitor" / "detectors").glob("*.py")):
        for cls in (n for n in pyast.walk(pyast.parse(path.read_text())) if isinstance(n, pyast.ClassDef)):
            export = next((f for f in cls.body if isinstance(f, pyast.FunctionDef) and f.name == "export"), None)
            if export is None or not any(isinstance(c, pyast.Constant) and c.value == "monitor_drift_detected"
                                         for c in pyast.walk(export)):
                continue
            alarm_writers += 1
            assert metric in _unconditional_writes(export), (
                f"{path.name}: {cls.name}.export does not always write {metric}, which the $detector variable lists")
    assert alarm_writers >= 2, "expected the sequential drift core and the alibi backend"


def test_readme_runbooks_read_as_text_not_go_templates() -> None:
    # The runbooks showed each description's raw template: ModelFeatureStuck's read "for {{ with
    # printf "monitor_data_stuck_run_rows{model=%q,..." | query }}{{ with first . }}{{ value . }}
    # {{ end }}{{ end }} consecutive rows".
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("<!-- runbooks:start -->"):readme.index("<!-- runbooks:end -->")]
    assert "{{" not in section and "}}" not in section
    # since session 33 a queried figure is named by its metric (tests/test_oncall_session33_pages.py)
    assert "`‹feature›` has repeated the same value for ‹monitor_data_stuck_run_rows› consecutive rows" in section
    assert "<value>" not in section, "Markdown hides <value> as an HTML tag"
    nested = 'a {{ with query "x" }}{{ range . }}{{ .Value }}{{ end }}{{ end }} b {{ $labels.model }} {{ $value | humanize }}.'
    assert runbooks.readable(nested) == "a ‹x›… b ‹model› ‹value›."
