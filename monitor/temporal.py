"""Points in time and durations among a model's inputs.

A duration (a ``timedelta64`` column, ``datetime.timedelta``, pandas ``Timedelta``: the time since
the last login) is a number, read as seconds. A point in time (``datetime64``, ``datetime``,
pandas ``Timestamp``) is no feature to compare with a reference: every live window lies later than
the reference's rows, so it "drifts" by itself as time passes. Read as text it became a categorical
feature of unique values (monitored as ids); in dict rows it refused every row as not numeric. It is
left out of the features that are learned (from a reference DataFrame, from live DataFrames or dict
rows) and said once; listed under ``features:`` it is read as configured (``kind: numeric`` as
seconds since 1970 UTC, ``kind: categorical`` as its text).

JSON and CSV carry no type for time: a point in time comes as ISO 8601 text ("2026-01-15",
"2026-01-15T08:30:00Z"). Learned as a categorical feature, a column of dates raised ModelInputDrift
for ever once today's date was not among the reference's (every live value an unseen category); a
column whose every value is such text is a point in time too (:func:`is_point_in_time_text`).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["POINT_IN_TIME_FIX", "is_duration_dtype", "is_point_in_time", "is_point_in_time_dtype",
           "is_point_in_time_text", "left_out_message", "temporal_seconds"]

#: ISO 8601 / RFC 3339 text of a date or a date and time (a space or "T" between, optional
#: seconds, fraction and zone): what JSON encoders and ``DataFrame.to_csv`` write for one.
_ISO_TEXT = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
                       r"(Z|[+-]\d{2}(?::?\d{2})?)?)?")
#: How many of a column's values are looked at to call it text of points in time.
TEXT_SAMPLE = 1000

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


def _iso_datetime(text: str) -> _dt.datetime | None:
    """The point in time ISO 8601 text names (naive when it names no zone), None when it is not
    such text or names no real date."""
    m = _ISO_TEXT.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    tz = None
    if zone == "Z":
        tz = _dt.timezone.utc
    elif zone:
        digits = zone[1:].replace(":", "")
        offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        tz = _dt.timezone(-offset if zone[0] == "-" else offset)
    try:
        return _dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=tz)
    except ValueError:  # 2026-13-45, 24:00, an offset of a day or more
        return None


def is_point_in_time_text(values: Iterable[Any]) -> bool:
    """Whether a column of text holds points in time: its first :data:`TEXT_SAMPLE` values that
    are not missing (None, NaN, empty text) are all ISO 8601 dates or date-times, and there is one.

    >>> is_point_in_time_text(["2026-01-15", None, "2026-02-01T08:30:00.5+01:00"])
    True
    >>> is_point_in_time_text(["2026-01-15", "n/a"]), is_point_in_time_text(["2026-13-01"]), is_point_in_time_text([])
    (False, False, False)
    """
    seen = 0
    for v in values:
        if v is None or (isinstance(v, float) and v != v) or (isinstance(v, str) and not v.strip()):
            continue
        if not isinstance(v, str) or len(v) > 40 or _iso_datetime(v) is None:
            return False
        seen += 1
        if seen >= TEXT_SAMPLE:
            break
    return seen > 0


def temporal_seconds(value: Any) -> float | None:
    """Seconds of a duration, or since 1970-01-01 UTC of a point in time (naive ones read as UTC;
    ISO 8601 text too); NaN for NaT; None when ``value`` is neither.

    >>> temporal_seconds(_dt.timedelta(minutes=2)), temporal_seconds(_dt.datetime(1970, 1, 2))
    (120.0, 86400.0)
    >>> temporal_seconds("1970-01-02T01:00:00+01:00"), temporal_seconds("soon") is None
    (86400.0, True)
    """
    kind = type(value)  # not isinstance: it runs a caller's object's __class__, which may raise (the call was lost)
    if issubclass(kind, str):
        text = value if kind is str else str.__str__(value)  # a subclass's text, not its own methods
        parsed = _iso_datetime(text) if len(text) <= 40 else None
        return None if parsed is None else temporal_seconds(parsed)
    if issubclass(kind, _dt.timedelta):
        seconds = value.total_seconds()
        return float("nan") if seconds != seconds else float(seconds)
    if issubclass(kind, _dt.datetime):
        if value != value:  # pandas NaT is a datetime here
            return float("nan")
        if value.tzinfo is None:
            return (value - _EPOCH).total_seconds()
        return (value - _EPOCH_UTC).total_seconds()
    if issubclass(kind, _dt.date):
        return float((value - _EPOCH.date()).days * 86400)
    try:
        kind = getattr(getattr(value, "dtype", None), "kind", None)
    except Exception:  # noqa: BLE001 - the caller's object: its __getattr__ may raise anything (the drain was lost)
        return None
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
