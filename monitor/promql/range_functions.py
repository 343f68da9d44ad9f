"""Functions over range vectors (``rate``, ``*_over_time``, ...), vectorised across series.

Each function receives an :class:`~monitor.promql.values.RVec` (all selected series on one time
axis with a validity mask) and returns ``(rows, values)``: the indices of the series that
produce an output and their values. The semantics follow Prometheus v2.42 ``functions.go``:
the extrapolation rules of ``extrapolatedRate``, counter-reset handling, Kahan-compensated sums
for ``sum_over_time``/``avg_over_time`` (used when cancellation or non-finite values make plain
summation differ), NaN ordering for ``min``/``max``/``quantile``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from monitor.promql.values import RVec

__all__ = ["RangeCall", "RANGE_FUNCTIONS", "kahan_sum_inc", "quantile_sorted"]


@dataclass
class RangeCall:
    """Context of one range-function evaluation.

    ``range_start_ms``/``range_end_ms`` bound the selection window (after offset and ``@``),
    ``range_ms`` is its length, ``eval_ms`` the evaluation time, ``args`` the scalar arguments.
    """

    rv: RVec
    range_start_ms: int
    range_end_ms: int
    range_ms: int
    eval_ms: int
    args: tuple[float, ...] = ()


Result = tuple[np.ndarray, np.ndarray]


# ------------------------------------------------------------------------------- helpers
def _rows_with(rv: RVec, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    cnt = rv.mask.sum(axis=1)
    rows = np.flatnonzero(cnt >= min_count)
    return rows, cnt[rows]


def _first_last(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = mask.shape[1]
    first = np.argmax(mask, axis=1)
    last = r - 1 - np.argmax(mask[:, ::-1], axis=1)
    return first, last


def _prev_index(mask: np.ndarray) -> np.ndarray:
    """For each cell, the column of the previous valid sample in its row (-1 if none)."""
    r = mask.shape[1]
    idx = np.where(mask, np.arange(r)[None, :], -1)
    ff = np.maximum.accumulate(idx, axis=1)
    prev = np.empty_like(ff)
    prev[:, 0] = -1
    prev[:, 1:] = ff[:, :-1]
    return prev


def _pairs(vals: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (prev, cur, pair_mask) over consecutive valid samples of each row."""
    if mask.all():
        return vals[:, :-1], vals[:, 1:], np.ones((vals.shape[0], max(vals.shape[1] - 1, 0)),
                                                  dtype=bool)
    prev_idx = _prev_index(mask)
    pmask = mask & (prev_idx >= 0)
    prev = np.take_along_axis(vals, np.maximum(prev_idx, 0), axis=1)
    return prev, vals, pmask


def kahan_sum_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """One step of Kahan-Neumaier summation, as Prometheus's ``kahanSumInc``."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def _needs_exact(vals: np.ndarray, mask: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Rows whose plain sum may differ from a compensated one beyond 1e-9 relative error."""
    with np.errstate(all="ignore"):
        a = np.where(mask, np.abs(vals), 0.0)
        nonfinite = ~np.isfinite(np.where(mask, vals, 0.0)).all(axis=1)
        abs_sum = a.sum(axis=1)
        huge = a.max(axis=1, initial=0) > 1e150
        risky = (abs_sum > 1e6 * np.abs(sums)) | ~np.isfinite(abs_sum) | huge
    return nonfinite | risky


# ------------------------------------------------------------------------------- rate family
def _extrapolated(call: RangeCall, is_counter: bool, is_rate: bool) -> Result:
    rv = call.rv
    rows, cnt = _rows_with(rv, 2)
    if rows.size == 0:
        return rows, np.zeros(0)
    vals, mask = rv.vals[rows], rv.mask[rows]
    first, last = _first_last(mask)
    ar = np.arange(rows.size)
    first_v, last_v = vals[ar, first], vals[ar, last]
    first_t, last_t = rv.ts[first], rv.ts[last]
    with np.errstate(all="ignore"):
        result = last_v - first_v
        if is_counter:
            prev, cur, pmask = _pairs(vals, mask)
            result = result + np.where(pmask & (cur < prev), prev, 0.0).sum(axis=1)
        to_start = (first_t - call.range_start_ms).astype(np.float64) / 1000
        to_end = (call.range_end_ms - last_t).astype(np.float64) / 1000
        sampled = (last_t - first_t).astype(np.float64) / 1000
        avg_dur = sampled / (cnt - 1).astype(np.float64)
        if is_counter:
            to_zero = sampled * (first_v / result)
            use = (result > 0) & (first_v >= 0) & (to_zero < to_start)
            to_start = np.where(use, to_zero, to_start)
        threshold = avg_dur * 1.1
        interval = sampled.copy()
        interval += np.where(to_start < threshold, to_start, avg_dur / 2)
        interval += np.where(to_end < threshold, to_end, avg_dur / 2)
        factor = interval / sampled
        if is_rate:
            factor = factor / (call.range_ms / 1000.0)
        return rows, result * factor


def _rate(call: RangeCall) -> Result:
    return _extrapolated(call, True, True)


def _increase(call: RangeCall) -> Result:
    return _extrapolated(call, True, False)


def _delta(call: RangeCall) -> Result:
    return _extrapolated(call, False, False)


def _instant_value(call: RangeCall, is_rate: bool) -> Result:
    rv = call.rv
    rows, _ = _rows_with(rv, 2)
    if rows.size == 0:
        return rows, np.zeros(0)
    vals, mask = rv.vals[rows], rv.mask[rows]
    _, last = _first_last(mask)
    ar = np.arange(rows.size)
    prev_idx = _prev_index(mask)[ar, last]
    last_v, prev_v = vals[ar, last], vals[ar, prev_idx]
    with np.errstate(all="ignore"):
        if is_rate:
            res = np.where(last_v < prev_v, last_v, last_v - prev_v)
            res = res / ((rv.ts[last] - rv.ts[prev_idx]).astype(np.float64) / 1000)
        else:
            res = last_v - prev_v
    return rows, res


def _irate(call: RangeCall) -> Result:
    return _instant_value(call, True)


def _idelta(call: RangeCall) -> Result:
    return _instant_value(call, False)


def _resets(call: RangeCall) -> Result:
    rv = call.rv
    rows, _ = _rows_with(rv, 1)
    prev, cur, pmask = _pairs(rv.vals[rows], rv.mask[rows])
    return rows, (pmask & (cur < prev)).sum(axis=1).astype(np.float64)


def _changes(call: RangeCall) -> Result:
    rv = call.rv
    rows, _ = _rows_with(rv, 1)
    prev, cur, pmask = _pairs(rv.vals[rows], rv.mask[rows])
    changed = (cur != prev) & ~(np.isnan(cur) & np.isnan(prev))
    return rows, (pmask & changed).sum(axis=1).astype(np.float64)


# ------------------------------------------------------------------------------- regression
def _linear_regression(ts: np.ndarray, vals: np.ndarray, mask: np.ndarray,
                       intercept_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept per row with x in seconds relative to intercept_ms."""
    n = mask.sum(axis=1).astype(np.float64)
    first, _ = _first_last(mask)
    ar = np.arange(vals.shape[0])
    init_y = vals[ar, first]
    with np.errstate(all="ignore"):
        x = (ts[None, :] - intercept_ms[:, None]).astype(np.float64) / 1e3
        y = np.where(mask, vals, 0.0)
        xm = np.where(mask, x, 0.0)
        sum_x = xm.sum(axis=1)
        sum_y = y.sum(axis=1)
        sum_xy = (xm * y).sum(axis=1)
        sum_x2 = (xm * xm).sum(axis=1)
        const_y = (np.where(mask, vals == init_y[:, None], True)).all(axis=1)
        cov_xy = sum_xy - sum_x * sum_y / n
        var_x = sum_x2 - sum_x * sum_x / n
        slope = cov_xy / var_x
        intercept = sum_y / n - slope * sum_x / n
    inf_y = np.isinf(init_y)
    slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
    intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
    return slope, intercept


def _deriv(call: RangeCall) -> Result:
    rv = call.rv
    rows, _ = _rows_with(rv, 2)
    if rows.size == 0:
        return rows, np.zeros(0)
    mask = rv.mask[rows]
    first, _ = _first_last(mask)
    slope, _ = _linear_regression(rv.ts, rv.vals[rows], mask, rv.ts[first])
    return rows, slope


def _predict_linear(call: RangeCall) -> Result:
    rv = call.rv
    rows, _ = _rows_with(rv, 2)
    if rows.size == 0:
        return rows, np.zeros(0)
    duration = call.args[0]
    intercept_at = np.full(rows.size, call.eval_ms, dtype=np.int64)
    slope, intercept = _linear_regression(rv.ts, rv.vals[rows], rv.mask[rows], intercept_at)
    with np.errstate(all="ignore"):
        return rows, slope * duration + intercept


# ------------------------------------------------------------------------------- *_over_time
def _count_over_time(call: RangeCall) -> Result:
    rows, cnt = _rows_with(call.rv, 1)
    return rows, cnt.astype(np.float64)


def _present_over_time(call: RangeCall) -> Result:
    rows, _ = _rows_with(call.rv, 1)
    return rows, np.ones(rows.size)


def _last_over_time(call: RangeCall) -> Result:
    rows, _ = _rows_with(call.rv, 1)
    mask = call.rv.mask[rows]
    _, last = _first_last(mask)
    return rows, call.rv.vals[rows, last]


def _max_over_time(call: RangeCall) -> Result:
    rows, _ = _rows_with(call.rv, 1)
    v = np.where(call.rv.mask[rows], call.rv.vals[rows], np.nan)
    with np.errstate(all="ignore"):
        return rows, np.fmax.reduce(v, axis=1) if v.shape[1] else np.zeros(rows.size)


def _min_over_time(call: RangeCall) -> Result:
    rows, _ = _rows_with(call.rv, 1)
    v = np.where(call.rv.mask[rows], call.rv.vals[rows], np.nan)
    with np.errstate(all="ignore"):
        return rows, np.fmin.reduce(v, axis=1) if v.shape[1] else np.zeros(rows.size)


def _row_values(rv: RVec, row: int) -> list[float]:
    return rv.vals[row][rv.mask[row]].tolist()


def _kahan_sum(values: list[float]) -> float:
    total, c = 0.0, 0.0
    for v in values:
        total, c = kahan_sum_inc(v, total, c)
    return total if math.isinf(total) else total + c


def _kahan_mean(values: list[float]) -> float:
    mean, c, count = 0.0, 0.0, 0.0
    for v in values:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, c = kahan_sum_inc(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def _summed(call: RangeCall, mean: bool) -> Result:
    """``sum_over_time`` / ``avg_over_time``: vectorised, exact Kahan loop where it matters."""
    rv = call.rv
    rows, cnt = _rows_with(rv, 1)
    vals, mask = rv.vals[rows], rv.mask[rows]
    with np.errstate(all="ignore"):
        sums = np.where(mask, vals, 0.0).sum(axis=1)
        out = sums / cnt if mean else sums
    exact = _kahan_mean if mean else _kahan_sum
    for i in np.flatnonzero(_needs_exact(vals, mask, sums)).tolist():
        out[i] = exact(_row_values(rv, int(rows[i])))
    return rows, out


def _sum_over_time(call: RangeCall) -> Result:
    return _summed(call, mean=False)


def _avg_over_time(call: RangeCall) -> Result:
    return _summed(call, mean=True)


def _variance_rows(call: RangeCall) -> Result:
    rv = call.rv
    rows, cnt = _rows_with(rv, 1)
    vals, mask = rv.vals[rows], rv.mask[rows]
    with np.errstate(all="ignore"):
        x = np.where(mask, vals, 0.0)
        mean = x.sum(axis=1) / cnt
        dev = np.where(mask, vals - mean[:, None], 0.0)
        out = (dev * dev).sum(axis=1) / cnt
        lo = np.where(mask, vals, np.inf).min(axis=1)
        hi = np.where(mask, vals, -np.inf).max(axis=1)
    # a constant series has exactly zero variance in Prometheus's Welford/Kahan loop
    out[lo == hi] = 0.0
    exact = ~np.isfinite(x).all(axis=1) | ~np.isfinite(out)
    for i in np.flatnonzero(exact).tolist():
        count, mean_i, c_mean, aux, c_aux = 0.0, 0.0, 0.0, 0.0, 0.0
        for v in _row_values(rv, int(rows[i])):
            count += 1
            delta = v - (mean_i + c_mean)
            mean_i, c_mean = kahan_sum_inc(delta / count, mean_i, c_mean)
            aux, c_aux = kahan_sum_inc(delta * (v - (mean_i + c_mean)), aux, c_aux)
        out[i] = (aux + c_aux) / count
    return rows, out


def _stdvar_over_time(call: RangeCall) -> Result:
    return _variance_rows(call)


def _stddev_over_time(call: RangeCall) -> Result:
    rows, var = _variance_rows(call)
    with np.errstate(all="ignore"):
        return rows, np.sqrt(var)


def quantile_sorted(q: float, values: list[float]) -> float:
    """Prometheus's ``quantile``: linear interpolation, NaN sorted before everything."""
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    vs = sorted(values, key=lambda v: (not math.isnan(v), v if not math.isnan(v) else 0.0))
    n = float(len(vs))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return vs[int(lower)] * (1 - weight) + vs[int(upper)] * weight


def _quantile_over_time(call: RangeCall) -> Result:
    rv = call.rv
    rows, _ = _rows_with(rv, 1)
    q = call.args[0]
    out = np.array([quantile_sorted(q, _row_values(rv, r)) for r in rows.tolist()],
                   dtype=np.float64)
    return rows, out


def _holt_winters(call: RangeCall) -> Result:
    from monitor.promql.errors import EvalError

    sf, tf = call.args
    if sf <= 0 or sf >= 1:
        raise EvalError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if tf <= 0 or tf >= 1:
        raise EvalError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")
    rv = call.rv
    rows, _ = _rows_with(rv, 2)
    out = np.empty(rows.size)
    for i, r in enumerate(rows.tolist()):
        pts = _row_values(rv, r)
        s0, s1 = 0.0, pts[0]
        b = pts[1] - pts[0]
        for j in range(1, len(pts)):
            x = sf * pts[j]
            if j - 1 != 0:
                b = tf * (s1 - s0) + (1 - tf) * b
            y = (1 - sf) * (s1 + b)
            s0, s1 = s1, x + y
        out[i] = s1
    return rows, out


def _absent_over_time(call: RangeCall) -> Result:  # handled by the engine (needs labels)
    rows, _ = _rows_with(call.rv, 1)
    return rows, np.ones(rows.size)


RANGE_FUNCTIONS: dict[str, Callable[[RangeCall], Result]] = {
    "rate": _rate,
    "increase": _increase,
    "delta": _delta,
    "irate": _irate,
    "idelta": _idelta,
    "resets": _resets,
    "changes": _changes,
    "deriv": _deriv,
    "predict_linear": _predict_linear,
    "count_over_time": _count_over_time,
    "present_over_time": _present_over_time,
    "last_over_time": _last_over_time,
    "max_over_time": _max_over_time,
    "min_over_time": _min_over_time,
    "sum_over_time": _sum_over_time,
    "avg_over_time": _avg_over_time,
    "stddev_over_time": _stddev_over_time,
    "stdvar_over_time": _stdvar_over_time,
    "quantile_over_time": _quantile_over_time,
    "holt_winters": _holt_winters,
    "absent_over_time": _absent_over_time,
}
