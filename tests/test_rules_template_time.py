"""``toTime`` in alert templates renders as in Prometheus: a Go ``*time.Time`` whose methods
(``.Format``, ``.Unix``, ``.UTC``, ``.Sub``...) templates call, printed as Go prints it.

The rule loader refused every template using ``toTime``, so a rule file that promtool accepts
(``{{ (toTime $value).Format "2006-01-02" }}``) could not be loaded. Expected texts are what
promtool 2.42 (built with Go 1.19) renders for the same templates; the last test checks one rule
file with both programs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.rules.template import AlertTemplate


def expand(text: str, value: float = 1700000000.5) -> str:
    return AlertTemplate.compile(text, "B").expand({"job": "api"}, value)


def failure(text: str) -> str:
    """The message of a failed expansion, without the location prefix."""
    out = expand(text)
    assert out.startswith("<error expanding template: error executing template __alert_B: template: __alert_B:1:"), out
    return out.split(": ", 5)[-1].rstrip(">")


@pytest.mark.parametrize(("text", "want"), [
    ('{{ (1700000000 | toTime).Format "2006-01-02" }}', "2023-11-14"),
    ("{{ toTime $value }}", "2023-11-14 22:13:20.5 +0000 UTC"),
    ('{{ printf "%T %T %T" (toTime 1) (toTime 1).UTC (toTime 1).Unix }}', "*time.Time time.Time int64"),
    ('{{ (toTime 1700000000.123456789).Format "Mon Jan _2 15:04:05.000 MST 2006 Z07:00 -0700 pm 3 03 __2 002 .999 ,000000000 06 January Monday" }}',
     "Tue Nov 14 22:13:20.123 UTC 2023 Z +0000 pm 10 10 318 318 .123 ,123000000 23 November Tuesday"),
    ('{{ with toTime 1700000000.123456789 }}{{ .Year }} {{ .Month }} {{ .Day }} {{ .YearDay }} {{ .Weekday }} {{ .Hour }} '
     '{{ .Nanosecond }} {{ printf "%d %s %v %T" .Month .Month .Weekday .Month }}|{{ .Unix }} {{ .UnixMilli }} {{ .UnixNano }}{{ end }}',
     "2023 November 14 318 Tuesday 22 123000000 11 November Tuesday time.Month|1700000000 1700000000123 1700000000123000000"),
    ("{{ $t := toTime 1700000000 }}{{ $t.Add 90000000000 }}|{{ $t.AddDate 0 2 40 }}|{{ $t.Sub (toTime 0) }}|"
     "{{ $t.Sub (toTime 1699999999.9995) }}|{{ $t.Before (toTime 0) }}{{ $t.After (toTime 0) }}{{ $t.Equal $t.UTC }}|"
     "{{ $t.Truncate 604800000000000 }}|{{ $t.Round 3600000000000 }}|{{ ($t.Sub (toTime 0)).Hours }}",
     "2023-11-14 22:14:50 +0000 UTC|2024-02-23 22:13:20 +0000 UTC|472222h13m20s|1ms|falsetruetrue|"
     "2023-11-13 00:00:00 +0000 UTC|2023-11-14 22:00:00 +0000 UTC|472222.22222222225"),
    ("{{ toTime -1.5 }}|{{ (toTime -1.5).Unix }}|{{ (toTime -1.5).Nanosecond }}|{{ (toTime -1.0000000005).UnixNano }}",
     "1969-12-31 23:59:58.5 +0000 UTC|-2|500000000|-1000000000"),
    ('{{ (toTime -1e9).Format "2006 06 _2 Z07 -07 MST Jan 2 1 3PM 05.0 .99 Janet Month" }}|{{ (toTime 1).AddDate 9000 0 0 }}|'
     "{{ (toTime 1).AddDate -3000 0 0 }}|{{ (toTime 1).AddDate 0 -25 -400 }}",
     "1938 38 24 Z +00 UTC Apr 24 4 10PM 20.0  Janet Month|10970-01-01 00:00:01 +0000 UTC|"
     "-1030-01-01 00:00:01 +0000 UTC|1966-10-27 00:00:01 +0000 UTC"),
    ('{{ printf "%s|%q|%x|%d|%v|%10.4s" (toTime 1) (toTime 1) (toTime 1).UTC (toTime 1).Month (toTime 1) (toTime 1) }}',
     '1970-01-01 00:00:01 +0000 UTC|"1970-01-01 00:00:01 +0000 UTC"|'
     "313937302d30312d30312030303a30303a3031202b3030303020555443|1|1970-01-01 00:00:01 +0000 UTC|      1970"),
    ('{{ $d := (toTime 5).Sub (toTime 1) }}{{ printf "%s %d %v %x %T" $d $d $d $d $d }}|{{ (toTime 0.001).Sub (toTime 0) }}|'
     "{{ (toTime 0).Sub (toTime 1e9) }}|{{ (toTime 9e9).Sub (toTime -9e9) }}",
     "4s 4000000000 4s 3473 time.Duration|1ms|-277777h46m40s|2562047h47m16.854775807s"),
    ("{{ $d := (toTime 3725.5).Sub (toTime 0) }}{{ $d.Minutes }} {{ $d.Milliseconds }} {{ $d.Round 60000000000 }} "
     "{{ $d.Truncate 3600000000000 }} {{ ((toTime 0).Sub (toTime 3725.5)).Round 1000000000 }} "
     "{{ (toTime 0).Sub (toTime 0.0015) }} {{ $d.Abs }} {{ $d.Nanoseconds }}",
     "62.09166666666667 3725500 1h2m0s 1h0m0s -1h2m6s -1ms 1h2m5.5s 3725500000000"),
    ("{{ eq (toTime 1).Month 1 }}|{{ lt (toTime 1).Unix 3 }}|{{ if toTime 0 }}t{{ end }}|{{ (toTime 1).String }}|"
     "{{ (toTime 1).GoString }}|{{ humanize (toTime 1).Unix }}|{{ toTime 1 | html }}",
     "true|true|t|1970-01-01 00:00:01 +0000 UTC|time.Date(1970, time.January, 1, 0, 0, 1, 0, time.UTC)|1|"
     "1970-01-01 00:00:01 +0000 UTC"),
    ('{{ (toTime 86399.999).Format "3:04:05.000000 pm Mon __2" }}|'
     '{{ ((toTime 0).Add -1).Format "2006-01-02T15:04:05.999999999Z07:00" }}',
     "11:59:59.999000 pm Thu   1|1969-12-31T23:59:59.999999999Z"),
])
def test_to_time_renders_like_prometheus(text: str, want: str) -> None:
    assert expand(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ('{{ toTime "abc" }}', 'error calling toTime: strconv.ParseFloat: parsing "abc": invalid syntax'),
    ("{{ toTime 1e11 }}", "error calling toTime: 1e+11 cannot be represented as a nanoseconds timestamp since it overflows int64"),
    ("{{ (toTime 1).Date }}", 'can\'t call method/function "Date" with 3 results'),
    ("{{ (toTime 1).Nope }}", "can't evaluate field Nope in type *time.Time"),
    ("{{ (toTime 1).Compare (toTime 2) }}", "can't evaluate field Compare in type *time.Time"),  # Go 1.20
    ("{{ (toTime 1).Format }}", "wrong number of args for Format: want 1 got 0"),
    ("{{ (toTime 1).Add 1.5 }}", "expected integer; found 1.5"),
    ("{{ $d := 5 }}{{ (toTime 1).Add $d }}", "wrong type for value; expected time.Duration; got int"),
    ("{{ humanize ((toTime 2).Sub (toTime 1)) }}", "error calling humanize: can't convert time.Duration to float"),
])
def test_to_time_errors_read_like_prometheus(text: str, want: str) -> None:
    assert failure(text) == want


def test_error_location_of_a_method_is_where_go_reports_it() -> None:
    """Go reports a failing method of ``(toTime 1)`` at the last node it evaluated, the ``1``."""
    assert expand("{{ (toTime 1).Nope }}").startswith(
        '<error expanding template: error executing template __alert_B: template: __alert_B:1:123: executing "__alert_B" at <1>:')


def test_nan_value_is_an_error_for_to_time_and_a_number_for_humanize_timestamp() -> None:
    assert expand("{{ toTime $value }}", float("nan")).endswith("error calling toTime: value is NaN or Inf>")
    assert expand("{{ humanizeTimestamp $value }}", float("nan")) == "NaN"


RULES = """groups:
- name: g
  rules:
  - alert: B
    expr: m
    annotations:
      day: '{{ (toTime $value).Format "Mon 2006-01-02 15:04 MST" }}'
      age: '{{ (toTime 1700003725.5).Sub (toTime $value) }}'
      kinds: '{{ printf "%T %T %v" (toTime $value) (toTime $value).Unix (toTime $value).Month }}'
"""

UNIT_TEST = """rule_files: [r.yml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'm{job="api"}'
    values: '1700000000 1700000000'
  alert_rule_test:
  - eval_time: 1m
    alertname: B
    exp_alerts:
    - exp_labels: {job: api}
      exp_annotations:
        day: Tue 2023-11-14 22:13 UTC
        age: 1h2m5.5s
        kinds: '*time.Time int64 November'
"""


def test_the_same_rule_unit_test_passes_with_promtool_and_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.cli import main
    from tests.conftest import require_binary

    promtool = require_binary("promtool")
    (tmp_path / "r.yml").write_text(RULES)
    (tmp_path / "t.yml").write_text(UNIT_TEST)
    real = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert real.returncode == 0, real.stdout + real.stderr  # the premise: Prometheus renders these texts
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["rules", "test", "t.yml"])
    assert res.exit_code == 0 and "SUCCESS" in res.output, res.output
