"""Alert templates render exactly like Prometheus (Go text/template + Prometheus's helpers).

Expected outputs marked "Prometheus" are the outputs Prometheus v2.42's own template tests
(template/template_test.go) assert for the same inputs.
"""

from __future__ import annotations

import math

import pytest

from monitor.rules.gofmt import go_float_E, go_float_v, go_quote, go_sprintf
from monitor.rules.template import AlertTemplate, TemplateSyntaxError, UnsupportedTemplateError, _Executor, _has_func
from monitor.rules.template_funcs import FuncContext
from monitor.rules.template_parse import parse_template

URL = "http://testhost:9090/path/prefix"


def _query(expr: str) -> list[tuple[dict[str, str], float]]:
    if expr == "1.5":
        return [({}, 1.5)]
    if expr == "metric":
        return [({"__name__": "metric", "instance": "b"}, 21.0), ({"__name__": "metric", "instance": "a"}, 11.0)]
    if expr == "missing":
        return []
    return [({"__name__": "metric", "instance": "a"}, 11.0)]


def render(text: str, data: object = None) -> str:
    """Render a raw Go template (no alert prelude) with ``data`` as dot."""
    parsed = parse_template(text, "test", _has_func)
    return _Executor(parsed, FuncContext(query=_query, external_url=URL)).run(data)


PROMETHEUS_CASES = [
    ("plain text", None, "plain text"),
    ("{{ 1 }}", None, "1"),
    ('{{ "<b>" }}', None, "<b>"),
    ('{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}', None, "1 2"),
    ('{{ query "1.5" | first | value }}', None, "1.5"),
    ("{{ query \"metric{instance='a'}\" | first | value }}", None, "11"),
    ("{{ query \"metric{instance='a'}\" | first | label \"instance\" }}", None, "a"),
    ("{{ query \"metric{instance='a'}\" | first | label \"foo\" }}", None, ""),
    ('{{ range query "metric" | sortByLabel "instance" }}{{.Labels.instance}}:{{.Value}}: {{end}}', None,
     "a:11: b:21: "),
    ('{{ reReplaceAll "(a)b" "x$1" "ab" }}', None, "xa"),
    ("{{ range . }}{{ humanize . }}:{{ end }}", [0.0, 1.0, 1234567.0, 0.12], "0:1:1.235M:120m:"),
    ("{{ range . }}{{ humanize . }}:{{ end }}", ["0.0", "1.0", "1234567.0", ".12"], "0:1:1.235M:120m:"),
    ("{{ range . }}{{ humanize . }}:{{ end }}", [0, -1, 1, 1234567, 2**63 - 1], "0:-1:1:1.235M:9.223E:"),
    ("{{ range . }}{{ humanize . }}:{{ end }}", [0, 1, 1234567, 2**64 - 1], "0:1:1.235M:18.45E:"),
    ("{{ range . }}{{ humanize1024 . }}:{{ end }}", [0.0, 1.0, 1048576.0, 0.12], "0:1:1Mi:0.12:"),
    ("{{ range . }}{{ humanize1024 . }}:{{ end }}", [0, -1, 1, 1234567, 2**63 - 1], "0:-1:1:1.177Mi:8Ei:"),
    ("{{ range . }}{{ humanizeDuration . }}:{{ end }}",
     [0.0, 1.0, 60.0, 3600.0, 86400.0, 86400 + 3600.0, -(86400 * 2 + 3600 * 3 + 60 * 4 + 5.0), 899.99],
     "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:"),
    ("{{ range . }}{{ humanizeDuration . }}:{{ end }}", ["0", "1", "60", "3600", "86400"],
     "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:"),
    ("{{ range . }}{{ humanizeDuration . }}:{{ end }}", [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345],
     "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:"),
    ("{{ range . }}{{ humanizeDuration . }}:{{ end }}", [0, -1, 1, 1234567], "0s:-1s:1s:14d 6h 56m 7s:"),
    ("{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
     [math.inf, -math.inf, math.nan], "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:"),
    ("{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
     ["+Inf", "-Inf", "NaN"], "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:"),
    ("{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:"
     "{{ 1.23456 | humanizePercentage }}", None, "-22.22%:0%:12.35%:123.5%"),
    ("{{ range . }}{{ humanizePercentage . }}:{{ end }}", [0, -1, 1, 1234567, 2**63 - 1],
     "0%:-100%:100%:1.235e+08%:9.223e+20%:"),
    ('{{ "-0.22222" | humanizePercentage }}:{{ "0.0" | humanizePercentage }}:{{ "0.1234567" | humanizePercentage }}:'
     '{{ "1.23456" | humanizePercentage }}', None, "-22.22%:0%:12.35%:123.5%"),
    ("{{ range . }}{{ humanizeTimestamp . }}:{{ end }}", [0, -1, 1, 1234567, 9223372036],
     "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:1970-01-01 00:00:01 +0000 UTC:"
     "1970-01-15 06:56:07 +0000 UTC:2262-04-11 23:47:16 +0000 UTC:"),
    ("{{ 1435065584.128 | humanizeTimestamp }}", None, "2015-06-23 13:19:44.128 +0000 UTC"),
    ('{{ "1435065584.128" | humanizeTimestamp }}', None, "2015-06-23 13:19:44.128 +0000 UTC"),
    ('{{ "aa bb CC" | title }}', None, "Aa Bb CC"),
    ('{{ "aa bb CC" | toUpper }}', None, "AA BB CC"),
    ('{{ "aA bB CC" | toLower }}', None, "aa bb cc"),
    ('{{ match "a+" "aa" }} {{ match "a+" "b" }}', None, "true false"),
    ('{{ graphLink "up" }}', None, "/graph?g0.expr=up&g0.tab=0"),
    ('{{ tableLink "up" }}', None, "/graph?g0.expr=up&g0.tab=1"),
    ("{{ pathPrefix }}", None, "/path/prefix"),
    ("{{ externalURL }}", None, URL),
    ('{{ printf "%0.2f" (parseDuration "1h2m10ms") }}', None, "3720.01"),
    ('{{ "foo.example.com" | stripPort }}', None, "foo.example.com"),
    ('{{ "foo.example.com:12345" | stripPort }}', None, "foo.example.com"),
    ('{{ "192.0.2.1" | stripPort }}', None, "192.0.2.1"),
    ('{{ "192.0.2.1:12345" | stripPort }}', None, "192.0.2.1"),
    ('{{ "2001:0DB8::1" | stripPort }}', None, "2001:0DB8::1"),
    ('{{ "[2001:0DB8::1]:12345" | stripPort }}', None, "2001:0DB8::1"),
    ('{{ "[2001:0DB8::1]::12345" | stripPort }}', None, "[2001:0DB8::1]::12345"),
    ('{{ "foo.example.com" | stripDomain }}', None, "foo"),
    ('{{ "foo.example.com:12345" | stripDomain }}', None, "foo:12345"),
    ('{{ "192.0.2.1" | stripDomain }}', None, "192.0.2.1"),
    ('{{ "192.0.2.1:12345" | stripDomain }}', None, "192.0.2.1:12345"),
    ('{{ "2001:0DB8::1" | stripDomain }}', None, "2001:0DB8::1"),
    ('{{ "[2001:0DB8::1]:12345" | stripDomain }}', None, "[2001:0DB8::1]:12345"),
    ('{{ "[2001:0DB8::1]::12345" | stripDomain }}', None, "[2001:0DB8::1]::12345"),
]


@pytest.mark.parametrize("text,data,expected", PROMETHEUS_CASES)
def test_prometheus_template_outputs(text: str, data: object, expected: str) -> None:
    assert render(text, data) == expected


@pytest.mark.parametrize("text", ["{{ }}", "{{", "{{ end }}", "{{ if 1 }}x", "{{ nosuch }}", "{{ $x }}",
                                  "{{ 1 | 2 }}", "{{ else }}", "{{ break }}", "{{ range . }}{{ else with 1 }}{{ end }}"])
def test_syntax_errors_are_refused(text: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        AlertTemplate.compile(text, "A")


def test_parse_error_message_has_go_format() -> None:
    with pytest.raises(TemplateSyntaxError) as ei:
        AlertTemplate.compile("{{ nosuch 1 }}", "HighLatency")
    assert str(ei.value) == 'template: __alert_HighLatency:1: function "nosuch" not defined'


def test_unsupported_function_is_refused_with_reason() -> None:
    with pytest.raises(UnsupportedTemplateError, match="call.*function values"):
        AlertTemplate.compile("{{ call $value }}", "A")


def expand(text: str, labels: dict[str, str] | None = None, value: float = 0.0, **kw: object) -> str:
    return AlertTemplate.compile(text, "A").expand(labels or {}, value, **kw)  # type: ignore[arg-type]


def test_alert_variables_and_missing_keys() -> None:
    labels = {"instance": "host:9100", "job": "node"}
    assert expand("{{ $labels.instance }} of {{ $labels.job }}", labels) == "host:9100 of node"
    assert expand("[{{ $labels.nope }}]", labels) == "[]"  # missingkey=zero: empty, not <no value>
    assert expand("{{ .Labels.job }}", labels) == "node"
    assert expand("{{ $externalLabels.cluster }}", external_labels={"cluster": "eu1"}) == "eu1"
    assert expand("{{ $externalURL }}", external_url="http://prom") == "http://prom"
    assert expand("no actions", labels) == "no actions"


@pytest.mark.parametrize("value,expected", [(1.0, "1"), (0.5, "0.5"), (1e6, "1e+06"), (123456.0, "123456"),
                                            (1234567.0, "1.234567e+06"), (1e-5, "1e-05"), (0.1 + 0.2, "0.30000000000000004"),
                                            (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (-0.0, "-0")])
def test_value_prints_like_go(value: float, expected: str) -> None:
    assert expand("{{ $value }}", value=value) == expected


def test_control_structures() -> None:
    labels = {"severity": "critical", "a": "x", "b": "y"}
    tmpl = '{{ if eq $labels.severity "critical" }}PAGE{{ else if $labels.a }}A{{ else }}none{{ end }}'
    assert expand(tmpl, labels) == "PAGE"
    assert expand(tmpl, {"a": "1"}) == "A"
    assert expand(tmpl, {}) == "none"
    assert expand("{{ if gt $value 0.5 }}high{{ else }}low{{ end }}", value=0.7) == "high"
    assert expand("{{ with $labels.a }}a={{ . }}{{ else }}no a{{ end }}", labels) == "a=x"
    assert expand("{{ with $labels.z }}z={{ . }}{{ else }}no z{{ end }}", labels) == "no z"
    assert expand("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", labels) == "a=x;b=y;severity=critical;"
    assert expand("{{ range $labels }}{{ . }}{{ break }}{{ end }}", labels) == "x"
    assert expand("{{- /* comment */ -}}  {{ $value }}  {{- 'a' }}", value=2) == "297"  # 'a' is rune 97
    assert expand("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}") == "2"
    assert expand("{{ and 1 0 }} {{ or 0 \"\" 3 }} {{ not true }}") == "0 3 false"
    assert expand('{{ len $labels }} {{ index $labels "a" }} {{ slice "abcdef" 1 3 }}', labels) == "3 x bc"


def test_printf_and_pipelines() -> None:
    assert expand('{{ printf "%.2f" $value }}', value=3.14159) == "3.14"
    assert expand('{{ $value | printf "%.1f%%" }}', value=99.04) == "99.0%"
    assert expand('{{ printf "%s is %d" "x" 3 }}') == "x is 3"
    assert expand('{{ printf "%d" $value }}', value=1.5) == "%!d(float64=1.5)"
    assert expand('{{ $labels.job | toUpper | printf "[%s]" }}', {"job": "api"}) == "[API]"
    assert expand('{{ reReplaceAll "(.*):.*" "$1" $labels.instance }}', {"instance": "h:9"}) == "h"
    assert expand('{{ reReplaceAll "x*" "-" "abc" }}') == "-a-b-c-"
    assert expand("{{ $value | humanize }}", value=1234567.0) == "1.235M"
    assert expand("{{ humanizeDuration $value }}", value=3725.0) == "1h 2m 5s"
    assert expand('{{ "app_api" | title }}') == "App_api"


def test_execution_errors_render_like_prometheus() -> None:
    out = expand('{{ humanize "one" }}')
    assert out.startswith("<error expanding template: error executing template __alert_A: template: __alert_A:1:")
    assert out.endswith('error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax>')
    assert "incompatible types for comparison" in expand("{{ gt $value 1 }}", value=2.0)  # float vs int
    assert "first() called on vector with no elements" in expand('{{ query "missing" | first }}', query=_query)
    assert "wrong type for value; expected string; got float64" in expand("{{ toUpper $value }}")
    assert "<error expanding template" in expand("{{ externalURL }}", url_for_functions=None)


def test_query_in_alert_template_uses_query_function() -> None:
    text = '{{ range query "metric" }}{{ .Labels.instance }}={{ .Value }} {{ end }}'
    assert expand(text, query=_query) == "b=21 a=11 "
    assert "query is not available" in expand('{{ query "x" }}')


@pytest.mark.parametrize("v,expected", [(0.0, "0E+00"), (1.0, "1E+00"), (61.0, "6.1E+01"), (0.5, "5E-01"),
                                        (9218880000.0, "9.21888E+09"), (-2.5, "-2.5E+00"), (math.nan, "NaN")])
def test_go_float_E(v: float, expected: str) -> None:
    assert go_float_E(v) == expected


def test_go_fmt_helpers() -> None:
    assert go_float_v(100000.0) == "100000"
    assert go_quote('a"b\n\x01é') == '"a\\"b\\n\\x01é"'
    assert go_sprintf("%5.1f|%-4d|%04d|%x|%q|%v|%t", [2.25, 7, 42, 255, "s", [1, "a"], True]) == \
        '  2.2|7   |0042|ff|"s"|[1 a]|true'
    assert go_sprintf("%s %s", ["only"]) == "only %!s(MISSING)"
    assert go_sprintf("%s", ["a", 1]) == "a%!(EXTRA int=1)"
