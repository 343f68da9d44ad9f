"""Functions over instant vectors and scalars (``abs``, ``clamp``, ``label_replace``, dates, ...).

Element-wise math runs as one numpy call per node. Label-rewriting functions cache their output
label sets per input label set within one call. Date functions use integer civil-calendar
arithmetic (proleptic Gregorian, UTC) so any timestamp works, as Go's ``time`` does.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import numpy as np

from monitor.civil_days import civil_from_days, days_from_civil
from monitor.promql.errors import EvalError
from monitor.promql.goregexp import GoRegexpError, compile_anchored, expand, search
from monitor.promql.types import METRIC_NAME, Labels
from monitor.promql.values import IVec

__all__ = [
    "SIMPLE_FUNCTIONS",
    "DATE_FUNCTIONS",
    "drop_names",
    "label_replace",
    "label_join",
    "histogram_quantile",
    "bucket_quantile",
    "format_float_go",
    "sort_vector",
]

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def drop_names(labels: list[Labels]) -> list[Labels]:
    """Drop ``__name__`` from every label set (what functions and arithmetic do)."""
    return [lab.without_name() for lab in labels]


def _sgn(v: np.ndarray) -> np.ndarray:
    return np.where(v < 0, -1.0, np.where(v > 0, 1.0, v))


SIMPLE_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "rad": lambda v: v * math.pi / 180,
    "deg": lambda v: v * 180 / math.pi,
    "sgn": _sgn,
}


# ------------------------------------------------------------------------------- dates
def _is_leap(y: np.ndarray) -> np.ndarray:
    return ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _date_parts(seconds: np.ndarray, part: str) -> np.ndarray:
    secs = seconds.astype(np.int64)
    days = np.floor_divide(secs, 86400)
    sod = secs - days * 86400
    if part == "hour":
        return (sod // 3600).astype(np.float64)
    if part == "minute":
        return ((sod // 60) % 60).astype(np.float64)
    if part == "day_of_week":
        return np.mod(days + 4, 7).astype(np.float64)
    y, m, d = civil_from_days(days)
    if part == "year":
        return y.astype(np.float64)
    if part == "month":
        return m.astype(np.float64)
    if part == "day_of_month":
        return d.astype(np.float64)
    if part == "day_of_year":
        return (days - days_from_civil(y, np.ones_like(m), np.ones_like(d)) + 1).astype(
            np.float64)
    if part == "days_in_month":
        base = _MONTH_DAYS[m]
        return np.where((m == 2) & _is_leap(y), 29, base).astype(np.float64)
    raise KeyError(part)


def _to_unix_seconds(values: np.ndarray) -> np.ndarray:
    """Go's ``int64(float)`` conversion: truncation; out-of-range and NaN become MinInt64."""
    out = np.full(values.shape, np.iinfo(np.int64).min, dtype=np.int64)
    ok = np.isfinite(values) & (np.abs(values) < 9.2e18)
    out[ok] = np.trunc(values[ok]).astype(np.int64)
    return out


def date_function(part: str, vec: IVec | None, eval_ms: int) -> IVec:
    """Evaluate ``year()``/``hour()``/... on a vector of Unix times, or on the eval time."""
    if vec is None:
        secs = np.array([int(eval_ms / 1000) if eval_ms >= 0 else -((-eval_ms) // 1000)],
                        dtype=np.int64)
        return IVec([Labels()], _date_parts(secs, part))
    with np.errstate(all="ignore"):
        secs = _to_unix_seconds(vec.values)
        # keep the conversion within the algorithm's comfortable range
        secs = np.clip(secs, -(2 ** 50), 2 ** 50)
        return IVec(drop_names(vec.labels), _date_parts(secs, part))


DATE_FUNCTIONS = frozenset({"year", "month", "day_of_month", "day_of_year", "day_of_week",
                            "hour", "minute", "days_in_month"})


# ------------------------------------------------------------------------------- labels
def label_replace(vec: IVec, dst: str, repl: str, src: str, regex: str) -> IVec:
    """``label_replace(v, dst, replacement, src, regex)`` with Go's template expansion."""
    try:
        rx = compile_anchored(regex)
    except GoRegexpError:
        raise EvalError(f"invalid regular expression in label_replace(): {regex}") from None
    if not _LABEL_NAME.match(dst):
        raise EvalError(f"invalid destination label name in label_replace(): {dst}")
    cache: dict[Labels, Labels] = {}
    out: list[Labels] = []
    for lab in vec.labels:
        res = cache.get(lab)
        if res is None:
            m = search(rx, lab.get(src))
            if m is None:
                res = lab
            else:
                res = lab.with_(dst, expand(repl, m))
            cache[lab] = res
        out.append(res)
    return IVec(out, vec.values.copy())


def label_join(vec: IVec, dst: str, sep: str, srcs: list[str]) -> IVec:
    """``label_join(v, dst, separator, src...)``."""
    for s in srcs:
        if not _LABEL_NAME.match(s):
            raise EvalError(f"invalid source label name in label_join(): {s}")
    if not _LABEL_NAME.match(dst):
        raise EvalError(f"invalid destination label name in label_join(): {dst}")
    out = [lab.with_(dst, sep.join(lab.get(s) for s in srcs)) for lab in vec.labels]
    return IVec(out, vec.values.copy())


# ------------------------------------------------------------------------------- histograms
def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's ``bucketQuantile`` over (upper bound, cumulative count) pairs."""
    buckets = sorted(buckets, key=lambda b: b[0])
    return _bucket_quantile_sorted(q, [b[0] for b in buckets], [b[1] for b in buckets])


def _bucket_quantile_sorted(q: float, bounds: list[float], counts: list[float]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return math.nan
    # coalesce equal upper bounds
    ubs: list[float] = []
    cnt: list[float] = []
    for ub, c in zip(bounds, counts):
        if ubs and ubs[-1] == ub:
            cnt[-1] += c
        else:
            ubs.append(ub)
            cnt.append(c)
    # ensure monotonic counts
    mx = cnt[0]
    for i in range(1, len(cnt)):
        if cnt[i] > mx:
            mx = cnt[i]
        elif cnt[i] < mx:
            cnt[i] = mx
    if len(ubs) < 2:
        return math.nan
    observations = cnt[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search over the first len-1 buckets for count >= rank
    lo, hi = 0, len(ubs) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cnt[mid] >= rank:
            hi = mid
        else:
            lo = mid + 1
    b = lo
    if b == len(ubs) - 1:
        return ubs[-2]
    if b == 0 and ubs[0] <= 0:
        return ubs[0]
    bucket_start = 0.0
    bucket_end = ubs[b]
    count = cnt[b]
    if b > 0:
        bucket_start = ubs[b - 1]
        count -= cnt[b - 1]
        rank -= cnt[b - 1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


def _parse_go_float(text: str) -> float | None:
    """``strconv.ParseFloat`` subset: decimal/scientific, Inf/NaN spellings, hex floats."""
    t = text.strip()
    if t != text or not t:
        return None
    low = t.lower()
    if low in ("inf", "+inf", "infinity", "+infinity"):
        return math.inf
    if low in ("-inf", "-infinity"):
        return -math.inf
    if low == "nan":
        return math.nan
    try:
        if "x" in low:
            return float.fromhex(t)
        if "_" in t:
            return None
        return float(t)
    except ValueError:
        return None


def histogram_quantile(q: float, vec: IVec, cache: dict | None = None) -> IVec:
    """``histogram_quantile`` over classic ``le`` buckets.

    The grouping of buckets depends only on the input label list; with a per-call-site ``cache``
    it is computed once for the label list object the previous node hands out each evaluation.
    """
    plan = None
    if cache is not None:
        m = cache.get("hq_plan")
        if m is not None and m[0] is vec.labels:
            plan = m[1]
    if plan is None:
        plan = _histogram_plan(vec.labels)
        if cache is not None:
            cache["hq_plan"] = (vec.labels, plan)
    labels, groups = plan
    values = vec.values
    out = np.array([_bucket_quantile_sorted(q, bounds, values[order].tolist())
                    for order, bounds in groups], dtype=np.float64)
    return IVec(labels, out)


def _histogram_plan(labels: list[Labels]) -> tuple[list[Labels], list[tuple[np.ndarray,
                                                                             list[float]]]]:
    """Group bucket series by their labels without ``le``; sort each group by bound."""
    groups: dict[Labels, tuple[Labels, list[tuple[float, int]]]] = {}
    for i, lab in enumerate(labels):
        ub = _parse_go_float(lab.get("le"))
        if ub is None:
            continue  # no or malformed bucket label: skipped, as Prometheus does
        sig = lab.without("le")
        entry = groups.get(sig)
        if entry is None:
            entry = groups[sig] = (sig.without(METRIC_NAME), [])
        entry[1].append((ub, i))
    out_labels: list[Labels] = []
    plan: list[tuple[np.ndarray, list[float]]] = []
    for out_label, members in groups.values():
        members.sort(key=lambda m: m[0])
        out_labels.append(out_label)
        plan.append((np.array([m[1] for m in members], dtype=np.int64), [m[0] for m in members]))
    return out_labels, plan


# ------------------------------------------------------------------------------- misc
def format_float_go(v: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip decimal without exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    s = np.format_float_positional(v, unique=True, trim="-")
    return "0" if s in ("-0", "0") and v == 0 and math.copysign(1, v) > 0 else s


def sort_vector(vec: IVec, descending: bool) -> IVec:
    """``sort``/``sort_desc``: by value, NaN last in both directions."""
    vals = vec.values.tolist()
    if descending:
        order = sorted(range(len(vals)), key=lambda i: (math.isnan(vals[i]),
                                                        -vals[i] if not math.isnan(vals[i]) else 0))
    else:
        order = sorted(range(len(vals)), key=lambda i: (math.isnan(vals[i]),
                                                        vals[i] if not math.isnan(vals[i]) else 0))
    return IVec([vec.labels[i] for i in order], vec.values[order] if order else vec.values)
