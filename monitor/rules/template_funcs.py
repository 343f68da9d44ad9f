"""The functions available to alert templates: Go's builtins and Prometheus's template helpers.

Each function declares the Go parameter types it takes, because Go's template engine checks
argument types before calling (``{{ humanize "x" }}`` is an error message in the alert text,
``{{ toUpper 1 }}`` too), and the rendered text must be the same as Prometheus's. The numeric
helpers (``humanize``, ``humanize1024``, ``humanizeDuration``, ``humanizePercentage``,
``humanizeTimestamp``) follow Prometheus's ``template/template.go``: same prefixes, same
``%.4g`` precision, same handling of NaN, infinities, zero and negative values.
"""

from __future__ import annotations

import ipaddress
import math
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from monitor.promql.goregexp import GoRegexpError, compile_go, expand, finditer, search
from monitor.rules.duration import DurationError, parse_duration
from monitor.rules.gofmt import GoTemplateValue, go_float_v, go_quote, go_sprint, go_sprintf, go_type_name
from monitor.rules.gotime import GoTime, GoTimeError, time_from_seconds

__all__ = [
    "FuncError",
    "FuncSpec",
    "StrMap",
    "GoStruct",
    "QuerySample",
    "FUNCS",
    "UNSUPPORTED_FUNCS",
    "convert_to_float",
    "humanize",
    "humanize1024",
    "humanize_duration",
    "humanize_percentage",
    "humanize_timestamp",
    "is_true",
    "table_link",
    "graph_link",
]

# Go parameter kinds understood by the executor.
ANY = "interface {}"
VALUE = "reflect.Value"
STRING = "string"
FLOAT = "float64"
INT = "int"
BOOL = "bool"
SAMPLE = "*template.sample"
QUERY_RESULT = "template.queryResult"


class FuncError(Exception):
    """A template function failed; rendered as ``error calling NAME: <message>``."""


class StrMap(dict):  # type: ignore[type-arg]
    """A Go ``map[string]string``: a missing key reads as ``""`` (``missingkey=zero``)."""

    zero: Any = ""


class GoStruct:
    """A Go struct value exposing exported fields to templates (``.Labels``, ``.Value``)."""

    go_type = "struct"
    fields: tuple[str, ...] = ()

    def get_field(self, name: str) -> Any:
        if name in self.fields:
            return getattr(self, name)
        raise KeyError(name)


class QuerySample(GoStruct, GoTemplateValue):
    """One element of a ``query`` result in a template: ``.Labels`` and ``.Value``."""

    go_type = "*template.sample"
    fields = ("Labels", "Value")

    def __init__(self, labels: Mapping[str, str], value: float) -> None:
        self.Labels = StrMap(labels)
        self.Value = float(value)

    def go_string(self) -> str:
        return "{" + go_sprint(self.Labels) + " " + go_float_v(self.Value) + "}"


class QueryResult(list):  # type: ignore[type-arg]
    """A ``template.queryResult`` (a list of :class:`QuerySample`)."""

    go_type = QUERY_RESULT


@dataclass(frozen=True)
class FuncSpec:
    """A template function: its Go parameter kinds, optional variadic kind, implementation.

    ``impl`` receives the :class:`FuncContext` first, then the converted arguments.
    """

    params: tuple[str, ...]
    variadic: str | None
    impl: Callable[..., Any]


@dataclass
class FuncContext:
    """What context-dependent functions need: the query function, time and external URL."""

    query: Callable[[str], Sequence[tuple[Mapping[str, str], float]]] | None = None
    external_url: str | None = None


# ------------------------------------------------------------------------------------------
# Numbers
# ------------------------------------------------------------------------------------------
_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:_[0-9]+)*)?(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan"
    r"|0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?[pP][+-]?[0-9]+)",
    re.IGNORECASE,
)


def go_parse_float(s: str) -> float:
    """``strconv.ParseFloat(s, 64)``: like Python's ``float`` but without surrounding spaces."""
    if not s or not _GO_FLOAT_RE.fullmatch(s) or s in ("+", "-", ".") or s.lstrip("+-") in ("", "."):
        raise FuncError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax")
    try:
        if "x" in s.lower() and "p" in s.lower():
            return float.fromhex(s.replace("_", ""))
        return float(s.replace("_", ""))
    except ValueError:
        raise FuncError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax") from None


def convert_to_float(v: Any) -> float:
    """Prometheus's ``convertToFloat``: float64, string, and integer kinds are accepted."""
    if isinstance(v, bool):
        raise FuncError("can't convert bool to float")
    if isinstance(v, float):
        return v
    if isinstance(v, int) and go_type_name(v) in ("int", "int64"):  # not a time.Duration or Month
        return float(v)
    if isinstance(v, str):
        return go_parse_float(v)
    raise FuncError(f"can't convert {go_type_name(v)} to float")


def _g4(v: float) -> str:
    """Go's ``%.4g``."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return "%.4g" % v


def humanize(value: Any) -> str:
    """Prometheus ``humanize``: SI prefixes (k, M, G... and m, u, n...), 4 significant digits."""
    v = convert_to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def humanize1024(value: Any) -> str:
    """Prometheus ``humanize1024``: binary prefixes (ki, Mi, Gi...)."""
    v = convert_to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def humanize_duration(value: Any) -> str:
    """Prometheus ``humanizeDuration``: ``1d 2h 3m 4s`` above a second, ``123.5ms`` below."""
    v = convert_to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign = "-"
            v = -v
        duration = int(v)
        seconds = duration % 60
        minutes = (duration // 60) % 60
        hours = (duration // 60 // 60) % 24
        days = duration // 60 // 60 // 24
        if days != 0:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours != 0:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes != 0:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(value: Any) -> str:
    """Prometheus ``humanizePercentage``: ``0.1234567`` -> ``12.35%``."""
    v = convert_to_float(value)
    return _g4(v * 100) + "%"


def humanize_timestamp(value: Any) -> str:
    """Prometheus ``humanizeTimestamp``: Unix seconds -> ``2015-06-23 13:19:44.128 +0000 UTC``."""
    v = convert_to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return _to_time(v).go_string()


def _to_time(v: Any) -> GoTime:
    """Prometheus ``toTime``: a ``*time.Time`` whose methods templates call (``.Format``)."""
    try:
        return time_from_seconds(convert_to_float(v))
    except GoTimeError as e:
        raise FuncError(str(e)) from None


# ------------------------------------------------------------------------------------------
# Strings
# ------------------------------------------------------------------------------------------
def _re2(pattern: str) -> Any:
    """Compile a template's pattern as Go's ``regexp.Compile`` (RE2's library,
    :mod:`monitor.promql.goregexp`); :class:`FuncError` says what Go would (``error parsing
    regexp: ...``)."""
    try:
        return compile_go(pattern)
    except GoRegexpError as e:
        raise FuncError(str(e)) from None


def _go_regexp(pattern: str) -> Any:
    """:func:`_re2` as ``regexp.MustCompile`` fails: ``regexp: Compile(`pattern`): ...``."""
    try:
        return _re2(pattern)
    except FuncError as e:
        raise FuncError(f"regexp: Compile({go_quote(pattern).replace(chr(34), '`')}): {e}") from None


def re_replace_all(pattern: str, repl: str, text: str) -> str:
    """Go's ``regexp.MustCompile(pattern).ReplaceAllString(text, repl)``."""
    rx = _go_regexp(pattern)
    out: list[str] = []
    last = 0
    for m in finditer(rx, text):
        a, b = m.span()
        out.append(text[last:a])
        # Go does not replace an empty match right after a previous match.
        if b > last or a == 0:
            out.append(expand(repl, m))
        last = b
    out.append(text[last:])
    return "".join(out)


def go_title(s: str) -> str:
    """Go's (deprecated) ``strings.Title``: upper-case the first letter of each word."""

    def is_sep(c: str) -> bool:
        if ord(c) <= 0x7F:
            return not (c.isascii() and (c.isalnum() or c == "_"))
        if c.isalpha() or c.isdigit():
            return False
        return c.isspace()

    out = []
    prev = " "
    for c in s:
        out.append(_simple_upper(c) if is_sep(prev) else c)
        prev = c
    return "".join(out)


def _simple_upper(c: str) -> str:
    u = c.upper()
    return u if len(u) == 1 else c


def _simple_lower(c: str) -> str:
    u = c.lower()
    return u if len(u) == 1 else c


def go_to_upper(s: str) -> str:
    """``strings.ToUpper`` (simple case mapping: ``ß`` stays ``ß``)."""
    return "".join(_simple_upper(c) for c in s)


def go_to_lower(s: str) -> str:
    """``strings.ToLower`` (simple case mapping)."""
    return "".join(_simple_lower(c) for c in s)


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """``net.SplitHostPort``; ``None`` where Go returns an error."""
    i = hostport.rfind(":")
    if i < 0:
        return None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            return None
        if end + 1 == len(hostport) or hostport[end + 1] != ":" or end + 1 != i:
            return None
        host = hostport[1:end]
        if "[" in hostport[1:] and hostport.count("[") > 1 or "]" in hostport[end + 1 :]:
            return None
        return host, hostport[i + 1 :]
    host = hostport[:i]
    if ":" in host:
        return None
    if "[" in hostport or "]" in hostport:
        return None
    return host, hostport[i + 1 :]


def strip_port(hostport: str) -> str:
    """Prometheus ``stripPort``."""
    hp = _split_host_port(hostport)
    return hostport if hp is None else hp[0]


def strip_domain(hostport: str) -> str:
    """Prometheus ``stripDomain``: keep the first DNS label, and the port; IPs unchanged."""
    hp = _split_host_port(hostport)
    host, port = (hostport, "") if hp is None else hp
    try:
        ipaddress.ip_address(host)
        return hostport
    except ValueError:
        pass
    host = host.split(".")[0]
    if port != "":
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def _query_escape(s: str) -> str:
    """Go's ``url.QueryEscape``."""
    return urllib.parse.quote_plus(s, safe="-_.~")


def table_link(expr: str) -> str:
    """Prometheus ``tableLink``: ``/graph?g0.expr=<escaped>&g0.tab=1``."""
    return f"/graph?g0.expr={_query_escape(expr)}&g0.tab=1"


def graph_link(expr: str) -> str:
    """Prometheus ``graphLink``: ``/graph?g0.expr=<escaped>&g0.tab=0``."""
    return f"/graph?g0.expr={_query_escape(expr)}&g0.tab=0"


def _html_escape(s: str) -> str:
    return (
        s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&#34;").replace("\x00", "\ufffd")
    )


def _eval_args_string(args: Sequence[Any]) -> str:
    """Go's ``evalArgs`` for ``html``, ``js`` and ``urlquery``: a nil argument reads as
    ``<no value>`` (as ``{{ }}`` prints it), where ``print`` writes ``<nil>``."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return _sprint(["<no value>" if a is None else a for a in args])


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def go_js_escape(s: str) -> str:
    """Go's ``template.JSEscapeString`` (the ``js`` function): quotes, backslash and ``<>&=``
    escaped, control characters and non-printable runes as ``\\uXXXX``, other text unchanged."""
    out: list[str] = []
    for ch in s:
        o = ord(ch)
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif o < 0x20 or (o >= 0x80 and not ch.isprintable()):
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    return "".join(out)


def _sprint(args: Sequence[Any]) -> str:
    """``fmt.Sprint``: spaces between operands when neither is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_sprint(a))
    return "".join(out)


# ------------------------------------------------------------------------------------------
# Truth and comparison (Go's builtins)
# ------------------------------------------------------------------------------------------
def is_true(v: Any) -> bool:
    """Go's template truth: false, 0, nil, empty string/slice/map are false."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) > 0
    return True


def _basic_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    raise FuncError("invalid type for comparison")


def _eq(_ctx: FuncContext, arg1: Any, *rest: Any) -> bool:
    if not rest:
        raise FuncError("missing argument for comparison")
    if isinstance(arg1, (dict, list)):
        raise FuncError("non-comparable type")
    try:
        k1 = _basic_kind(arg1) if arg1 is not None else "nil"
    except FuncError:
        k1 = "other"
    for arg in rest:
        try:
            k2 = _basic_kind(arg) if arg is not None else "nil"
        except FuncError:
            k2 = "other"
        if k1 != k2:
            if arg1 is not None and arg is not None:
                raise FuncError("incompatible types for comparison")
            truth = False
        else:
            truth = arg1 == arg
        if truth:
            return True
    return False


def _ne(ctx: FuncContext, a: Any, b: Any) -> bool:
    return not _eq(ctx, a, b)


def _lt(_ctx: FuncContext, a: Any, b: Any) -> bool:
    k1 = _basic_kind(a)
    k2 = _basic_kind(b)
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise FuncError("invalid type for comparison")
    return a < b


def _le(ctx: FuncContext, a: Any, b: Any) -> bool:
    return _lt(ctx, a, b) or _eq(ctx, a, b)


def _gt(ctx: FuncContext, a: Any, b: Any) -> bool:
    return not _le(ctx, a, b)


def _ge(ctx: FuncContext, a: Any, b: Any) -> bool:
    return not _lt(ctx, a, b)


def _not(_ctx: FuncContext, a: Any) -> bool:
    return not is_true(a)


def _len(_ctx: FuncContext, a: Any) -> int:
    if isinstance(a, str):
        return len(a.encode("utf-8"))
    if isinstance(a, (list, tuple, dict)):
        return len(a)
    raise FuncError(f"len of type {go_type_name(a)}")


def _index(_ctx: FuncContext, item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for idx in indexes:
        if isinstance(item, dict):
            if not isinstance(idx, str):
                raise FuncError(f"value has type {go_type_name(idx)}; should be string")
            item = item.get(idx, getattr(item, "zero", None))
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise FuncError(f"cannot index slice/array with type {go_type_name(idx)}")
            seq = item.encode("utf-8") if isinstance(item, str) else item
            if idx < 0 or idx >= len(seq):
                raise FuncError(f"index out of range: {idx}")
            item = seq[idx]
        else:
            raise FuncError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(_ctx: FuncContext, item: Any, *indexes: Any) -> Any:
    if not isinstance(item, (str, list)):
        raise FuncError(f"can't slice item of type {go_type_name(item)}")
    if len(indexes) > 2:
        raise FuncError("3-index slice is not supported by the monitor's template engine")
    seq = item.encode("utf-8") if isinstance(item, str) else item
    idx = [int(i) for i in indexes]
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(seq)
    if lo < 0 or hi < lo or hi > len(seq):
        raise FuncError(f"index out of range: {hi if hi > len(seq) else lo}")
    res = seq[lo:hi]
    return res.decode("utf-8", "replace") if isinstance(item, str) else list(res)


# ------------------------------------------------------------------------------------------
# Query helpers
# ------------------------------------------------------------------------------------------
def _query(ctx: FuncContext, q: str) -> QueryResult:
    if ctx.query is None:
        raise FuncError("query is not available in this context")
    return QueryResult(QuerySample(labels, value) for labels, value in ctx.query(q))


def _first(_ctx: FuncContext, v: QueryResult) -> QuerySample:
    if v:
        return v[0]
    raise FuncError("first() called on vector with no elements")


def _label(_ctx: FuncContext, label: str, s: QuerySample | None) -> str:
    if s is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    return s.Labels.get(label, "")


def _value(_ctx: FuncContext, s: QuerySample | None) -> float:
    if s is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    return s.Value


def _strvalue(_ctx: FuncContext, s: QuerySample | None) -> str:
    if s is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    return s.Labels.get("__value__", "")


def _sort_by_label(_ctx: FuncContext, label: str, v: QueryResult) -> QueryResult:
    if v is None:
        return QueryResult()
    v[:] = sorted(v, key=lambda s: s.Labels.get(label, ""))
    return v


def _args(_ctx: FuncContext, *args: Any) -> dict[str, Any]:
    return {f"arg{i}": a for i, a in enumerate(args)}


def _match(_ctx: FuncContext, pattern: str, s: str) -> bool:
    return search(_re2(pattern), s) is not None  # regexp.MatchString: no "regexp: Compile(...)" in its error


def _external_url(ctx: FuncContext) -> str:
    if ctx.external_url is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    return ctx.external_url


def _path_prefix(ctx: FuncContext) -> str:
    if ctx.external_url is None:
        raise FuncError("runtime error: invalid memory address or nil pointer dereference")
    return urllib.parse.urlsplit(ctx.external_url).path


def _parse_duration(_ctx: FuncContext, d: str) -> float:
    try:
        return parse_duration(d)
    except DurationError as e:
        raise FuncError(str(e)) from None


def _wrap1(fn: Callable[[Any], Any]) -> Callable[..., Any]:
    return lambda _ctx, a: fn(a)


FUNCS: dict[str, FuncSpec] = {
    # Go builtins.
    "and": FuncSpec((VALUE,), VALUE, lambda _c, *a: a[-1]),  # short-circuit handled by executor
    "or": FuncSpec((VALUE,), VALUE, lambda _c, *a: a[-1]),
    "not": FuncSpec((VALUE,), None, _not),
    "len": FuncSpec((VALUE,), None, _len),
    "index": FuncSpec((VALUE,), VALUE, _index),
    "slice": FuncSpec((VALUE,), VALUE, _slice),
    "print": FuncSpec((), ANY, lambda _c, *a: _sprint(a)),
    "printf": FuncSpec((STRING,), ANY, lambda _c, f, *a: go_sprintf(f, a)),
    "println": FuncSpec((), ANY, lambda _c, *a: " ".join(go_sprint(x) for x in a) + "\n"),
    "html": FuncSpec((), ANY, lambda _c, *a: _html_escape(_eval_args_string(a))),
    "urlquery": FuncSpec((), ANY, lambda _c, *a: _query_escape(_eval_args_string(a))),
    "js": FuncSpec((), ANY, lambda _c, *a: go_js_escape(_eval_args_string(a))),
    "eq": FuncSpec((VALUE,), VALUE, _eq),
    "ne": FuncSpec((VALUE, VALUE), None, _ne),
    "lt": FuncSpec((VALUE, VALUE), None, _lt),
    "le": FuncSpec((VALUE, VALUE), None, _le),
    "gt": FuncSpec((VALUE, VALUE), None, _gt),
    "ge": FuncSpec((VALUE, VALUE), None, _ge),
    # Prometheus helpers.
    "query": FuncSpec((STRING,), None, _query),
    "first": FuncSpec((QUERY_RESULT,), None, _first),
    "label": FuncSpec((STRING, SAMPLE), None, _label),
    "value": FuncSpec((SAMPLE,), None, _value),
    "strvalue": FuncSpec((SAMPLE,), None, _strvalue),
    "args": FuncSpec((), ANY, _args),
    "reReplaceAll": FuncSpec((STRING, STRING, STRING), None, lambda _c, p, r, t: re_replace_all(p, r, t)),
    "safeHtml": FuncSpec((STRING,), None, lambda _c, t: t),
    "match": FuncSpec((STRING, STRING), None, _match),
    "title": FuncSpec((STRING,), None, _wrap1(go_title)),
    "toUpper": FuncSpec((STRING,), None, _wrap1(go_to_upper)),
    "toLower": FuncSpec((STRING,), None, _wrap1(go_to_lower)),
    "graphLink": FuncSpec((STRING,), None, _wrap1(graph_link)),
    "tableLink": FuncSpec((STRING,), None, _wrap1(table_link)),
    "sortByLabel": FuncSpec((STRING, QUERY_RESULT), None, _sort_by_label),
    "stripPort": FuncSpec((STRING,), None, _wrap1(strip_port)),
    "stripDomain": FuncSpec((STRING,), None, _wrap1(strip_domain)),
    "humanize": FuncSpec((ANY,), None, _wrap1(humanize)),
    "humanize1024": FuncSpec((ANY,), None, _wrap1(humanize1024)),
    "humanizeDuration": FuncSpec((ANY,), None, _wrap1(humanize_duration)),
    "humanizePercentage": FuncSpec((ANY,), None, _wrap1(humanize_percentage)),
    "humanizeTimestamp": FuncSpec((ANY,), None, _wrap1(humanize_timestamp)),
    "toTime": FuncSpec((ANY,), None, _wrap1(_to_time)),
    "pathPrefix": FuncSpec((), None, _path_prefix),
    "externalURL": FuncSpec((), None, _external_url),
    "parseDuration": FuncSpec((STRING,), None, _parse_duration),
}

# Functions Prometheus defines that this engine refuses at load time (rather than rendering them
# differently from Prometheus): function values and console-template helpers.
UNSUPPORTED_FUNCS: dict[str, str] = {
    "call": "function values do not exist in alert templates",
    "tmpl": "only available in Prometheus console templates",
}
