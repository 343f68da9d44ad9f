"""Series descriptions of promtool test files and PromQL test scripts.

An input series is ``metric{label="value"}`` followed by values in Prometheus's expanding
notation (``promql/parser`` ``ParseSeriesDesc``):

* ``a`` -- one value; ``_`` -- one missing sample; ``stale`` -- a stale marker;
* ``axn`` -- ``n + 1`` copies of ``a``;
* ``a+bxn`` / ``a-bxn`` -- ``n + 1`` values ``a, a+b, ..., a+n*b`` (``-2+4x3`` is ``-2 2 6 10``);
* ``_xn`` -- ``n`` missing samples.

Numbers are decimal (``1``, ``1.5``, ``1e3``, ``Inf``, ``NaN``, signed); hexadecimal is not
allowed, so ``0x10`` means ten repetitions of 0 as in Prometheus.
"""

from __future__ import annotations

import re

from monitor.promql.storage import STALE_NAN
from monitor.rules.gofmt import go_parse_int
from monitor.rules.template_parse import go_unquote

__all__ = ["SeriesDescError", "parse_series_desc", "split_series_desc", "parse_metric", "expand_values"]


class SeriesDescError(ValueError):
    """A series description does not parse (message in Prometheus's style)."""


# No hexadecimal: Prometheus disallows it in series descriptions ("0x10" is 0 repeated 10 times).
_NUM = r"(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF]|[nN][aA][nN])"
_ITEM_RE = re.compile(
    rf"^(?:(?P<blank>_)(?:x(?P<bn>[0-9]+))?|(?P<v>[+-]?{_NUM}|stale)(?:(?P<s>[+-]{_NUM})?x(?P<n>[0-9]+))?)$"
)
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _number(text: str) -> float:
    if text == "stale":
        return STALE_NAN
    iv = go_parse_int(text)
    if iv is not None:
        return -0.0 if iv == 0 and text.startswith("-") else float(iv)  # "-0" is -0 in promtool
    low = text.lower().lstrip("+-")
    if low in ("inf", "nan"):
        v = float("nan") if low == "nan" else float("inf")
        return -v if text.startswith("-") else v
    return float(text)


def expand_values(values: str) -> list[float | None]:
    """Expand a value sequence; ``None`` marks an omitted sample, ``STALE_NAN`` a stale one.

    Raises
    ------
    SeriesDescError
        On an item that is not in the notation.
    """
    out: list[float | None] = []
    for item in values.split():
        m = _ITEM_RE.match(item)
        if m is None:
            raise SeriesDescError(f'unexpected "{item}" in series values (expected a number, "_", '
                                  f'"stale" or the a+bxn notation)')
        if m.group("blank"):
            n = int(m.group("bn")) if m.group("bn") is not None else 1
            out.extend([None] * n)
            continue
        v = _number(m.group("v"))
        if m.group("n") is None:
            out.append(v)
            continue
        n = int(m.group("n"))
        if m.group("s") is None:
            out.extend([v] * (n + 1))
            continue
        step = _number(m.group("s"))
        out.append(v)
        for _ in range(n):
            v += step
            out.append(v)
    return out


def parse_metric(text: str) -> dict[str, str]:
    """Parse ``name{a="b", ...}``, ``{__name__="x"}`` or ``name`` into a label dict
    (Prometheus's ``parser.ParseMetric``); an empty string is the empty label set."""
    if not text.strip():
        return {}
    labels, rest = _parse_metric_prefix(text)
    if rest.strip():
        raise SeriesDescError(f"unexpected {rest.strip()[:1]!r} after the metric")
    return labels


def _parse_metric_prefix(text: str) -> tuple[dict[str, str], str]:
    s = text.lstrip()
    labels: dict[str, str] = {}
    m = _NAME_RE.match(s)
    if m:
        labels["__name__"] = m.group(0)
        s = s[m.end():]
    if s.startswith("{"):
        s = s[1:]
        while True:
            s = s.lstrip()
            if s.startswith("}"):
                s = s[1:]
                break
            lm = _LABEL_RE.match(s)
            if lm is None:
                if not s:
                    raise SeriesDescError("unexpected end of input inside braces")
                raise SeriesDescError(f"unexpected character inside braces: {s[0]!r}")
            name = lm.group(0)
            s = s[lm.end():].lstrip()
            if not s.startswith("="):
                raise SeriesDescError(f"unexpected {s[:1]!r} in label matching, expected \"=\"")
            s = s[1:].lstrip()
            if not s or s[0] not in "\"'`":
                raise SeriesDescError(f"unexpected {s[:1]!r} in label matching, expected string")
            q = s[0]
            i = 1
            while i < len(s) and s[i] != q:
                i += 2 if (s[i] == "\\" and q != "`") else 1
            if i >= len(s):
                raise SeriesDescError("unterminated quoted string")
            try:
                value = go_unquote(s[: i + 1])
            except ValueError:
                raise SeriesDescError(f"invalid label value {s[: i + 1]}") from None
            labels[name] = value
            s = s[i + 1:].lstrip()
            if s.startswith(","):
                s = s[1:]
            elif not s.startswith("}"):
                if not s:
                    raise SeriesDescError("unexpected end of input inside braces")
                raise SeriesDescError(f"unexpected character inside braces: {s[0]!r}")
    elif not labels:
        raise SeriesDescError(f"unexpected {s[:1]!r}: expected a metric name or a label set")
    return {k: v for k, v in labels.items() if v != ""}, s


def parse_series_desc(series: str, values: str) -> tuple[dict[str, str], list[float | None]]:
    """Parse a test file's ``series`` and ``values`` (joined as promtool does: ``series values``).

    Returns the labels and the expanded values (``None`` = omitted sample).
    """
    return split_series_desc(series + " " + values)


def split_series_desc(line: str) -> tuple[dict[str, str], list[float | None]]:
    """Parse one ``metric{labels} values...`` line (a PromQL test script's ``load`` entries)."""
    labels, rest = _parse_metric_prefix(line)
    return labels, expand_values(rest)
