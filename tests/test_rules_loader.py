"""Rule-file loading: every kind of error is reported with file, group, rule and what is wrong."""

from __future__ import annotations

import textwrap

import pytest

from monitor.rules.duration import DurationError, format_duration, format_go_duration, parse_duration
from monitor.rules.loader import find_duplicate_rules, load_rule_files, parse_rules_text
from monitor.rules.model import AlertingRule, RecordingRule, RuleLoadError


def _errors(text: str, **kw: object) -> list[str]:
    _, errs = parse_rules_text(textwrap.dedent(text), "r.yml", **kw)  # type: ignore[arg-type]
    return [str(e) for e in errs]


def _one(text: str, **kw: object) -> str:
    errs = _errors(text, **kw)
    assert len(errs) == 1, errs
    return errs[0]


# ---------------------------------------------------------------------------- durations
@pytest.mark.parametrize(
    "text,seconds",
    [("0", 0.0), ("0s", 0.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), ("2w", 14 * 86400.0),
     ("1y", 365 * 86400.0), ("1d2h3m4s5ms", 86400 + 7200 + 180 + 4.005)],
)
def test_parse_duration_prometheus_grammar(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1.5m", "5 m", "m", "30m1h", "5m5m", "-5m", "1H"])
def test_parse_duration_rejects_what_prometheus_rejects(text: str) -> None:
    with pytest.raises(DurationError, match="not a valid duration string"):
        parse_duration(text)


@pytest.mark.parametrize(
    "seconds,text", [(0, "0s"), (300, "5m"), (5400, "1h30m"), (90 * 86400, "90d"), (14 * 86400, "2w"),
                     (365 * 86400, "1y"), (0.25, "250ms"), (86400 * 106700, "106700d")],
)
def test_format_duration_like_model_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (60, "1m0s"), (3600, "1h0m0s"), (1.5, "1.5s"),
                                          (0.001, "1ms"), (3661, "1h1m1s")])
def test_format_go_duration(seconds: float, text: str) -> None:
    assert format_go_duration(seconds) == text


# ---------------------------------------------------------------------------- valid files
def test_valid_file_loads_typed_rules() -> None:
    groups, errs = parse_rules_text(textwrap.dedent("""
        groups:
          - name: api
            interval: 30s
            limit: 10
            rules:
              - record: job:errors:rate5m
                expr: sum by (job) (rate(errors_total[5m]))
                labels: {team: ml}
              - alert: HighErrorRate
                expr: job:errors:rate5m > 0.5
                for: 5m
                keep_firing_for: 1m
                labels:
                  severity: page
                annotations:
                  summary: "{{ $labels.job }} errors at {{ $value | humanizePercentage }}"
    """), "r.yml")
    assert errs == []
    (g,) = groups
    assert (g.name, g.interval_s, g.limit, g.file) == ("api", 30.0, 10, "r.yml")
    rec, alert = g.rules
    assert isinstance(rec, RecordingRule) and rec.record == "job:errors:rate5m" and rec.labels == {"team": "ml"}
    assert isinstance(alert, AlertingRule)
    assert (alert.for_s, alert.keep_firing_for_s, alert.index) == (300.0, 60.0, 2)
    assert alert.annotations["summary"].startswith("{{ $labels.job }}")


def test_empty_file_and_empty_groups_are_valid() -> None:
    assert parse_rules_text("", "e.yml") == ([], [])
    groups, errs = parse_rules_text("groups: []\n", "e.yml")
    assert (groups, errs) == ([], [])


def test_expr_given_as_number_is_kept_as_text() -> None:
    groups, errs = parse_rules_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 1\n", "n.yml")
    assert errs == [] and groups[0].rules[0].expr == "1"


# ---------------------------------------------------------------------------- each error kind
def test_bad_yaml_names_file_and_line() -> None:
    err = _one("groups:\n  - name: [unclosed\n")
    assert err.startswith("r.yml: ") and "yaml:" in err


def test_duplicate_yaml_key() -> None:
    err = _one("groups:\n- name: g\n  name: h\n  rules: []\n")
    assert 'mapping key "name" already defined at line 2' in err


def test_unknown_keys_at_every_level() -> None:
    errs = _errors("""
        groupz: []
        groups:
          - name: g
            intervall: 1m
            rules:
              - alert: A
                expr: up == 0
                severity: page
    """)
    assert any("field groupz not found" in e for e in errs)
    assert any('group "g": field intervall not found' in e for e in errs)
    assert any('group "g", rule 1, "A": field severity not found' in e and "valid fields: record, alert" in e
               for e in errs)


def test_missing_expr() -> None:
    err = _one("""
        groups:
          - name: g
            rules:
              - alert: NoExpr
    """)
    assert 'group "g", rule 1, "NoExpr": field \'expr\' must be set in rule' in err


def test_record_and_alert_both_or_neither() -> None:
    errs = _errors("""
        groups:
          - name: g
            rules:
              - alert: A
                record: a
                expr: up
              - expr: up
    """)
    assert any("rule 1" in e and "only one of 'record' and 'alert' must be set" in e for e in errs)
    assert any("rule 2" in e and "one of 'record' or 'alert' must be set" in e for e in errs)


def test_bad_durations_name_the_field() -> None:
    errs = _errors("""
        groups:
          - name: g
            interval: 1.5m
            rules:
              - alert: A
                expr: up == 0
                for: 5 minutes
                keep_firing_for: 10
    """)
    assert any('group "g": field \'interval\': not a valid duration string: "1.5m"' in e for e in errs)
    assert any("field 'for': not a valid duration string: \"5 minutes\"" in e for e in errs)
    assert any("field 'keep_firing_for': not a valid duration string: \"10\"" in e for e in errs)
    assert all("1h30m" in e for e in errs)  # the fix is suggested


def test_invalid_label_and_annotation_names() -> None:
    errs = _errors("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                labels: {"bad-name": x, __name__: y}
                annotations: {"1summary": z}
    """)
    assert any("invalid label name: bad-name" in e for e in errs)
    assert any("invalid label name: __name__" in e for e in errs)
    assert any("invalid annotation name: 1summary" in e for e in errs)


def test_recording_rule_restrictions() -> None:
    errs = _errors("""
        groups:
          - name: g
            rules:
              - record: "not a metric name"
                expr: up
                for: 5m
                keep_firing_for: 1m
                annotations: {summary: x}
    """)
    for msg in ("invalid recording rule name: not a metric name", "invalid field 'for' in recording rule",
                "invalid field 'keep_firing_for' in recording rule",
                "invalid field 'annotations' in recording rule"):
        assert any(msg in e for e in errs), (msg, errs)


def test_bad_templates_are_refused_at_load_time() -> None:
    errs = _errors("""
        groups:
          - name: g
            rules:
              - alert: A
                expr: up == 0
                labels: {severity: "{{ $labels.sev "}
                annotations:
                  summary: "{{ nosuchfunc $value }}"
                  description: "{{ $undefined }}"
                  time: "{{ call $value }}"
    """)
    assert any('label "severity": template: __alert_A:1: unclosed action' in e for e in errs)
    assert any('annotation "summary": template: __alert_A:1: function "nosuchfunc" not defined' in e for e in errs)
    assert any('annotation "description": template: __alert_A:1: undefined variable "$undefined"' in e for e in errs)
    assert any('annotation "time"' in e and "'call' is not supported" in e for e in errs)


def test_duplicate_group_names_in_one_file() -> None:
    err = _one("""
        groups:
          - name: g
            rules: []
          - name: g
            rules: []
    """)
    assert 'groupname: "g" is repeated in the same file' in err


def test_empty_group_name() -> None:
    assert "Groupname must not be empty" in _one("groups:\n- rules: []\n")


def test_promql_syntax_error_has_position() -> None:
    err = _one("""
        groups:
          - name: bad-syntax
            rules:
              - record: x
                expr: 'test +'
    """)
    assert err.startswith('r.yml: 6:15: group "bad-syntax", rule 1, "x": could not parse expression:')


def test_unsupported_promql_is_refused_clearly_unless_syntax_only() -> None:
    text = """
        groups:
          - name: g
            rules:
              - record: x
                expr: histogram_count(foo)
    """
    err = _one(text)
    assert "histogram_count" in err and "does not implement it" in err and 'rule 1, "x"' in err
    assert _errors(text, syntax_only=True) == []


def test_range_vector_rule_result_is_refused() -> None:
    err = _one("groups:\n- name: g\n  rules:\n  - record: x\n    expr: up[5m]\n")
    assert "returns a range vector" in err and "rate()" in err


def test_bad_limit() -> None:
    errs = _errors("groups:\n- name: g\n  limit: many\n  rules: []\n")
    assert any("field 'limit' must be an integer" in e for e in errs)


def test_all_errors_of_a_file_are_collected(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n  - record: b\n    expr: 'x +'\n")
    good = tmp_path / "good.yml"
    good.write_text("groups:\n- name: h\n  rules:\n  - record: c\n    expr: up\n")
    with pytest.raises(RuleLoadError) as ei:
        load_rule_files([good, bad])
    msgs = [str(e) for e in ei.value.errors]
    assert len(msgs) == 2 and all(m.startswith(str(bad)) for m in msgs)
    assert [g.name for g in load_rule_files([good])] == ["h"]


def test_missing_file_is_an_error_not_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleLoadError, match="cannot read rule file"):
        load_rule_files([tmp_path / "nope.yml"])


def test_duplicate_rule_lint_like_promtool() -> None:
    groups, errs = parse_rules_text(textwrap.dedent("""
        groups:
          - name: a
            rules:
              - {record: r, expr: up}
              - {record: r, expr: up}
              - {record: r, expr: up, labels: {x: "1"}}
          - name: b
            rules:
              - {record: r, expr: up}
              - {alert: A, expr: up}
    """), "d.yml")
    assert errs == []
    assert find_duplicate_rules(groups) == [("r", {})]


@pytest.mark.parametrize("field,where", [("for", "rule"), ("keep_firing_for", "rule"), ("interval", "group")])
def test_an_empty_duration_string_is_refused_as_promtool_refuses_it(field: str, where: str) -> None:
    """``for: ''`` read as 0 (session 38, s38b): promtool and Prometheus refuse "empty duration
    string"; a missing value (``for:``, null) stays 0 for both."""
    group_line = f"    {field}: ''\n" if where == "group" else ""
    rule_line = f"        {field}: ''\n" if where == "rule" else ""
    text = ("groups:\n  - name: g\n" + group_line + "    rules:\n      - alert: A\n        expr: vector(1)\n" + rule_line)
    assert any("empty duration string" in e and field in e for e in _errors(text)), _errors(text)
    assert _errors(text.replace("''", "")) == []
