"""Alert texts render as Prometheus renders them where Go's ``text/template`` and ``fmt`` have
corners: the ``js`` function, nil values, error locations, printf argument indexes, ``%x`` of
floats. Expected texts are what promtool 2.42 (Go 1.19) renders for the same templates, with
the alert value 1700000000.5 and labels ``{job="api"}``.
"""

from __future__ import annotations

import pytest

from monitor.rules.template import AlertTemplate


def expand(text: str) -> str:
    return AlertTemplate.compile(text, "B").expand({"job": "api"}, 1700000000.5)


ERROR = '<error expanding template: error executing template __alert_B: template: __alert_B:1:{col}: executing "__alert_B" at <{at}>: {msg}>'


@pytest.mark.parametrize(("text", "col", "at", "msg"), [
    ("{{ .Labels.job.x }}", 122, ".Labels.job.x", "can't evaluate field x in type string"),
    ("{{ $labels.job.x }}", 122, "$labels.job.x", "can't evaluate field x in type string"),
    ("{{ .Value.x }}", 121, ".Value.x", "can't evaluate field x in type float64"),
    ("{{ $labels.job 1 }}", 122, "$labels.job", "job is not a method but has arguments"),
])
def test_a_chained_field_is_located_where_go_locates_it(text: str, col: int, at: str, msg: str) -> None:
    """Go places ``.Labels.job`` at its second element; the agent said the first, so the
    column of the error sent in the alert differed from Prometheus's."""
    assert expand(text) == ERROR.format(col=col, at=at, msg=msg)


@pytest.mark.parametrize(("text", "want"), [
    ('{{ js "a<b>&\'\\"\\\\ \u2028 é =x\\x01\\t\u00a0\x7f\U0001F600\u200b" }}',
     "a\\u003Cb\\u003E\\u0026\\'\\\"\\\\ \\u2028 é \\u003Dx\\u0001\\u0009\\u00A0\x7f\U0001F600\\u200B"),
    ("{{ js 1 2 }}|{{ js }}|{{ \"x\" | js }}|{{ js (toTime 1) 3 }}", "1 2||x|1970-01-01 00:00:01 +0000 UTC 3"),
])
def test_js_escapes_like_go(text: str, want: str) -> None:
    """``js`` was refused when the rule file was loaded, though Prometheus renders it."""
    assert expand(text) == want


def test_nil_reads_as_no_value_in_html_js_and_urlquery_and_as_nil_in_print() -> None:
    text = ("{{ html 1 (args).x 2 }}|{{ print 1 (args).x 2 }}|{{ urlquery (args).x }}|{{ js (args).x }}|"
            "{{ html nil }}|{{ $m := args 1 }}{{ $m.zzz }}|{{ index $m \"zzz\" }}")
    assert expand(text) == "1&lt;no value&gt;2|1 <nil> 2|%3Cno+value%3E|\\u003Cno value\\u003E|&lt;no value&gt;|<no value>|<no value>"


@pytest.mark.parametrize(("text", "col", "at", "field"), [
    ("{{ $m := args 1 }}{{ $m.zzz.yy }}", 135, "$m.zzz.yy", "yy"),
    ("{{ $m := args nil }}{{ $m.arg0.x }}", 137, "$m.arg0.x", "x"),
    ("{{ (args).q.r }}", 116, "args", "r"),
])
def test_a_field_of_a_missing_args_entry_is_a_nil_pointer_error(text: str, col: int, at: str, field: str) -> None:
    """A missing entry of ``args`` is a nil interface in Go: a field of it is an error, where
    the agent printed ``<no value>``."""
    assert expand(text) == ERROR.format(col=col, at=at, msg=f"nil pointer evaluating interface {{}}.{field}")


def test_a_field_of_a_nil_variable_is_no_value() -> None:
    assert expand('{{ $x := (args).q }}{{ $x.y.z }}|{{ (index (args) "q").r }}') == "<no value>|<no value>"
