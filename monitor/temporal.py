"""Points in time and durations among a model's inputs.

A duration (a ``timedelta64`` column, ``datetime.timedelta``, pandas ``Timedelta``: the time since
the last login) is a number, read as seconds. A point in time (``datetime64``, ``datetime``,
pandas ``Timestamp``) is no feature to compare with a reference: every live window lies later than
the reference's rows, so it "drifts" by itself as time passes. Read as text it became a categorical
feature of unique values (monitored as ids); in dict rows it refused every row as not numeric. It is
left out of the features that are learned (from a reference DataFrame, from live DataFrames or dict
rows) and said once; listed under ``features:`` it is read as configured (``kind: numeric`` as
seconds since 1970 UTC, ``kind: categorical`` as its text).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from typing import Any

__all__ = ["POINT_IN_TIME_FIX", "is_duration_dtype", "is_point_in_time", "is_point_in_time_dtype", "left_out_message",
           "temporal_seconds"]

POINT_IN_TIME_FIX = ("to monitor what the model reads from it, send that as a number of its own (the age in days, "
                     "the hour of day), or list it under features: (kind: numeric reads it as seconds since 1970 UTC, "
                     "kind: categorical as its text)")

_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_UTC = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def is_point_in_time_dtype(dtype: Any) -> bool:
    """A pandas/numpy column dtype of points in time (``datetime64``, with or without a zone)."""
    return getattr(dtype, "kind", None) == "M"


def is_duration_dtype(dtype: Any) -> bool:
    """A pandas/numpy column dtype of durations (``timedelta64``)."""
    return getattr(dtype, "kind", None) == "m"


def is_point_in_time(value: Any) -> bool:
    """One value that is a point in time (a date, a datetime, a pandas Timestamp, a datetime64)."""
    if isinstance(value, _dt.date):
        return True
    return getattr(getattr(value, "dtype", None), "kind", None) == "M" and getattr(value, "ndim", 0) == 0


def temporal_seconds(value: Any) -> float | None:
    """Seconds of a duration, or since 1970-01-01 UTC of a point in time (naive ones read as UTC);
    NaN for NaT; None when ``value`` is neither.

    >>> temporal_seconds(_dt.timedelta(minutes=2)), temporal_seconds(_dt.datetime(1970, 1, 2))
    (120.0, 86400.0)
    >>> temporal_seconds("2026-01-01") is None
    True
    """
    if isinstance(value, _dt.timedelta):
        seconds = value.total_seconds()
        return float("nan") if seconds != seconds else float(seconds)
    if isinstance(value, _dt.datetime):
        if value != value:  # pandas NaT is a datetime here
            return float("nan")
        if value.tzinfo is None:
            return (value - _EPOCH).total_seconds()
        return (value - _EPOCH_UTC).total_seconds()
    if isinstance(value, _dt.date):
        return float((value - _EPOCH.date()).days * 86400)
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if kind in ("m", "M") and getattr(value, "ndim", 0) == 0:
        import numpy as np

        if np.isnat(value):
            return float("nan")
        if kind == "m":
            return float(value / np.timedelta64(1, "ns")) / 1e9
        return float((value - np.datetime64(0, "ns")) / np.timedelta64(1, "ns")) / 1e9
    return None


def left_out_message(names: Iterable[str], where: str) -> str:
    """What is said once when points in time are left out of the features learned from ``where``
    (e.g. "the reference DataFrame's columns")."""
    listed = ", ".join(repr(str(n)) for n in names)
    return (f"{where} {listed} hold points in time: left out of the monitored features, since every live "
            f"window lies later than the reference and such a column drifts by itself as time passes. Fix: "
            f"{POINT_IN_TIME_FIX}")
