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


@pytest.mark.parametrize(("text", "want"), [
    ('{{ printf "%[2]d %[1]s" "a" 3 }}', "3 a"),
    ('{{ printf "%[1]d %[1]x %[1]o" 10 }}', "10 a 12"),
    ('{{ printf "%d %d %[1]d" 1 2 3 }}', "1 2 1"),  # reordered: no EXTRA
    ('{{ printf "%[3]d %d" 1 2 }}', "%!d(BADINDEX) 1"),
    ('{{ printf "%[0]d|%[x]d|%[5]d|%[2]*d|%[1]*.[2]*[3]f" 3 5 7.5 }}',
     "%!d(BADINDEX)|%!d(BADINDEX)|%!d(BADINDEX)|%!d(float64=  7.5)|7.50000"),
    ('{{ printf "%[2]5d|%[2].2f|%[1]|%[1]" 1 2.0 }}', "%!d(BADINDEX)|%!f(BADINDEX)|%!|(int=1)%!(NOVERB)"),
    ('{{ printf "%[1]d %d %d %[1]d %[3]s" 1 2 }}', "1 2 %!d(MISSING) 1 %!s(BADINDEX)"),
    ('{{ printf "%!|%z|%[]d|%[1]%" 1 }}', "%!!(int=1)|%!z(MISSING)|%!d(BADINDEX)|%"),
    ('{{ printf "%[2" 1 }}|{{ printf "%[12345678901]d" 1 }}', "%!(NOVERB)|%!d(BADINDEX)"),
])
def test_printf_explicit_argument_indexes(text: str, want: str) -> None:
    """``%[n]d`` picks argument n in Go; the agent printed ``%![(int=3)2]d``."""
    assert expand(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ('{{ printf "%+v|%+d|%5d|%-5.1d|%*d|%-*d|%.*f|%*d" 1.5 2 7.5 7.5 4 1 -4 2 2 3.14159 "x" 1 }}',
     "1.5|+2|%!d(float64=  7.5)|%!d(float64=8    )|   1|2   |3.14|%!(BADWIDTH)1"),
    ('{{ printf "%*d|%.*d|%*d" 1e7 1 -1 5 "w" 3 }}', "%!(BADWIDTH)1|%!(BADPREC)5|%!(BADWIDTH)3"),
    ('{{ printf "%s %d|%d" nil nil 1 nil }}|{{ printf "%v %v" nil 1 }}', "%!s(<nil>) %!d(<nil>)|1%!(EXTRA <nil>)|<nil> 1"),
    ('{{ printf "%.d|%5.%|%05d|%-05d|%+.3e" 7 -3 -3 1234.5678 }}|{{ printf "%." 1 }}|{{ printf "%5" 1 }}',
     "7|%|-0003|-3   |+1.235e+03|%!.(int=1)|%!(NOVERB)%!(EXTRA int=1)"),
    ('{{ printf "[%.d|%.0d|%5.0d|%.0x|%.0d|%-3.0d|%03.0d|%+.0d]" 0 0 0 0 3 0 0 0 }}', "[||     ||3|   |   |]"),
])
def test_printf_star_width_nil_and_bad_verbs_like_go(text: str, want: str) -> None:
    """``*`` widths were not read, ``%+v`` signed a number, a bad verb's value lost its padding
    and nil printed as ``<nil>=<nil>``."""
    assert expand(text) == want


@pytest.mark.parametrize(("text", "want"), [
    ('{{ printf "%x|%X|%#x|%.3x|%10x" 1.5 1.5 1.5 1.5 255.0 }}', "0x1.8p+00|0X1.8P+00|0x1.8000p+00|0x1.800p+00|0x1.fep+07"),
    ('{{ printf "%x|%x|%x|%x" 0.0 -2.0 1e300 3.14159 }}', "0x0p+00|-0x1p+01|0x1.7e43c8800759cp+996|0x1.921f9f01b866ep+01"),
    ('{{ printf "%.0x|%.1x|%.2x|%#x|%#.0X|%x" 1.96875 1.96875 1.99999 0.0 0.0 $value }}',
     "0x1p+01|0x1.0p+01|0x1.00p+01|0x0.0000p+00|0X0.P+00|0x1.954fc402p+30"),
    ('{{ printf "%x|%x|%+x|% x|%010x|%-12x|%+010X|%x|%x" 5e-324 2.2250738585072014e-308 1.0 1.0 1.5 1.5 -1.5 -0.0 0.5 }}',
     "0x1p-1074|0x1p-1022|+0x1p+00| 0x1p+00|00x1.8p+00|0x1.8p+00   |-0X1.8P+00|-0x0p+00|0x1p-01"),
])
def test_printf_x_of_a_float_is_hexadecimal_like_go(text: str, want: str) -> None:
    """``%x`` of a float printed ``%!x(float64=1.5)``; Go prints its hexadecimal form."""
    assert expand(text) == want


def test_printf_zero_padding_like_go() -> None:
    """``%08x`` of 255 was padded with spaces, ``%#08x`` put the zeros before ``0x`` and ``%08s``
    padded with spaces; the Go of promtool 2.42 pads them all with zeros, as here."""
    text = ('{{ printf "%08x|%#08x|%#06x|%08.3d|%#b|%08c|%08s|%08t|%08v|%08q" 255 255 10 5 5 67 "ab" true (toTime 1).Month "q" }}'
            '{{ printf "|%08f|%-8f" $value $value }}')
    assert expand(text) == '000000ff|0x000000ff|0x00000a|     005|0b101|0000000C|000000ab|0000true|0January|00000"q"|' \
        "1700000000.500000|1700000000.500000"
