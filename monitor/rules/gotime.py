"""Go ``time`` values for alert templates: what Prometheus's ``toTime`` returns.

``{{ (1700000000 | toTime).Format "2006-01-02" }}`` calls methods of a Go ``*time.Time`` in
Prometheus. This module gives the template engine those values: :class:`GoTime` with the
methods of ``time.Time`` in the Go release promtool 2.42 is built with (1.19), the
:class:`GoDuration` that ``Sub`` returns, the ``time.Month``/``time.Weekday`` that ``Month`` and
``Weekday`` return (printed by name, compared as numbers) and the ``int64`` of ``Unix``. Dates are
computed with integer arithmetic on days since 1970, so ``AddDate`` beyond year 9999 prints as
Go does where :mod:`datetime` would overflow.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any, Callable

from monitor.civil_days import civil_from_days, days_from_civil
from monitor.rules.gofmt import GoStringer, go_float_v

__all__ = [
    "TIME",
    "DURATION",
    "GoMethod",
    "GoInt64",
    "GoDuration",
    "GoMonth",
    "GoWeekday",
    "GoTime",
    "GoTimeError",
    "time_from_seconds",
    "go_format_time",
    "go_duration_string",
]

#: Parameter kinds of methods taking a ``time.Time`` / ``time.Duration`` (as the executor names them).
TIME = "time.Time"
DURATION = "time.Duration"
INT = "int"
STRING = "string"

_NS = 1_000_000_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: Seconds from Go's zero time (January 1, year 1, UTC) to 1970: Round and Truncate count from it.
_ZERO_TO_UNIX = 62_135_596_800

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


class GoTimeError(Exception):
    """A ``toTime`` argument Go refuses (NaN, infinite, beyond int64 nanoseconds)."""


@dataclass(frozen=True)
class GoMethod:
    """A Go method callable from a template: parameter kinds, number of results, implementation
    (``impl(receiver, *args)``). Go refuses to call methods with more than one result (other than
    a trailing error), so those are listed with ``results`` > 1 to give Go's message."""

    params: tuple[str, ...]
    impl: Callable[..., Any]
    results: int = 1


class GoInt64(int):
    """A Go ``int64`` (``Unix``, ``UnixNano``...): prints as a number, ``%T`` is ``int64``."""

    go_type = "int64"


class GoDuration(int, GoStringer):
    """A Go ``time.Duration`` in nanoseconds: ``{{ }}`` prints ``1h2m3s``, ``%d`` the number."""

    go_type = "time.Duration"

    def go_string(self) -> str:
        return go_duration_string(int(self))


class GoMonth(int, GoStringer):
    """A Go ``time.Month`` (1..12): prints ``November``, compares as a number."""

    go_type = "time.Month"

    def go_string(self) -> str:
        return _MONTHS[self - 1] if 1 <= self <= 12 else f"%!Month({int(self)})"


class GoWeekday(int, GoStringer):
    """A Go ``time.Weekday`` (0 = Sunday): prints ``Tuesday``, compares as a number."""

    go_type = "time.Weekday"

    def go_string(self) -> str:
        return _DAYS[self] if 0 <= self <= 6 else f"%!Weekday({int(self)})"


def _frac(v: int, prec: int) -> tuple[str, int]:
    """Go's ``fmtFrac``: the fraction of ``v / 10**prec`` without trailing zeros, and the rest."""
    digits = f"{v % 10**prec:0{prec}d}".rstrip("0") if prec else ""
    return ("." + digits if digits else ""), v // 10**prec


def go_duration_string(d: int) -> str:
    """Go's ``time.Duration.String``: ``72h3m0.5s``, ``1.5ms``, ``0s``."""
    neg = d < 0
    u = -d if neg else d
    if u < _NS:
        if u == 0:
            return "0s"
        unit, prec = ("ns", 0) if u < 1_000 else ("µs", 3) if u < 1_000_000 else ("ms", 6)
        frac, whole = _frac(u, prec)
        out = f"{whole}{frac}{unit}"
    else:
        frac, secs = _frac(u, 9)
        out = f"{secs % 60}{frac}s"
        mins = secs // 60
        if mins:
            out = f"{mins % 60}m" + out
            if mins // 60:
                out = f"{mins // 60}h" + out
    return ("-" if neg else "") + out


def _saturate(ns: int) -> GoDuration:
    return GoDuration(min(max(ns, _INT64_MIN), _INT64_MAX))


class GoTime(GoStringer):
    """A Go ``time.Time`` (``*time.Time`` as ``toTime`` returns it) in UTC or the local zone.

    Parameters
    ----------
    ns : int
        Nanoseconds since 1970-01-01 UTC (not bounded to int64, as Go's ``time.Time`` is not).
    pointer : bool
        ``*time.Time`` (what ``toTime`` returns) rather than ``time.Time`` (what methods return):
        only ``%T`` and error messages tell them apart.
    local : bool
        In the agent's local zone (``.Local``) rather than UTC.
    """

    def __init__(self, ns: int, *, pointer: bool = False, local: bool = False) -> None:
        self.ns = ns
        self.pointer = pointer
        self.local = local

    @property
    def go_type(self) -> str:
        return "*time.Time" if self.pointer else "time.Time"

    # -- zone ----------------------------------------------------------------------------------
    def zone(self) -> tuple[str, int]:
        """(abbreviation, offset in seconds east of UTC)."""
        local = self._local_datetime()
        if local is None:
            return "UTC", 0
        offset = local.utcoffset()
        return local.tzname() or "", int(offset.total_seconds()) if offset is not None else 0

    def _local_datetime(self) -> _dt.datetime | None:
        if not self.local:
            return None
        try:
            return _dt.datetime.fromtimestamp(self.ns // _NS, _dt.timezone.utc).astimezone()
        except (OverflowError, OSError, ValueError):  # beyond what the C library knows: as Go's UTC
            return None

    def is_dst(self) -> bool:
        local = self._local_datetime()
        return bool(local is not None and local.dst())

    def _fields(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """year, month, day, hour, minute, second, nanosecond, weekday, yearday (in its zone)."""
        _, offset = self.zone()
        secs, nsec = divmod(self.ns, _NS)
        secs += offset
        days, sod = divmod(secs, 86_400)
        y, m, d = civil_from_days(days)
        yday = days - days_from_civil(y, 1, 1) + 1
        return y, m, d, sod // 3600, sod // 60 % 60, sod % 60, nsec, (days + 4) % 7, yday

    def _with(self, ns: int) -> GoTime:
        return GoTime(ns, local=self.local)

    def go_string(self) -> str:
        """Go's ``Time.String``."""
        return go_format_time(self, "2006-01-02 15:04:05.999999999 -0700 MST")

    # -- methods (time.Time's, Go 1.19) ---------------------------------------------------------
    def _add_date(self, years: int, months: int, days: int) -> GoTime:
        y, m, d, hh, mm, ss, nsec, _, _ = self._fields()
        _, offset = self.zone()
        day = days_from_civil(y + years, m + months, d + days)
        return self._with(((day * 86_400 + hh * 3600 + mm * 60 + ss - offset) * _NS) + nsec)

    def _round(self, d: int, up: bool) -> GoTime:
        if d <= 0:
            return self._with(self.ns)
        r = (self.ns + _ZERO_TO_UNIX * _NS) % d
        if up and r + r >= d:
            return self._with(self.ns + d - r)
        return self._with(self.ns - r)

    def _go_repr(self) -> str:
        y, m, d, hh, mm, ss, nsec, _, _ = self._fields()
        loc = "time.Local" if self.local else "time.UTC"
        return f"time.Date({y}, time.{_MONTHS[m - 1]}, {d}, {hh}, {mm}, {ss}, {nsec}, {loc})"


def _unsupported(name: str) -> Callable[..., Any]:
    def fail(_t: Any, *_a: Any) -> Any:
        raise GoTimeError(f"method {name} of time.Time is not supported by the monitor's template engine")

    return fail


_TIME_METHODS: dict[str, GoMethod] = {
    "String": GoMethod((), lambda t: t.go_string()),
    "GoString": GoMethod((), lambda t: t._go_repr()),
    "Format": GoMethod((STRING,), lambda t, layout: go_format_time(t, layout)),
    "Unix": GoMethod((), lambda t: GoInt64(t.ns // _NS)),
    "UnixMilli": GoMethod((), lambda t: GoInt64(t.ns // 1_000_000)),
    "UnixMicro": GoMethod((), lambda t: GoInt64(t.ns // 1_000)),
    "UnixNano": GoMethod((), lambda t: GoInt64(t.ns)),
    "UTC": GoMethod((), lambda t: GoTime(t.ns)),
    "Local": GoMethod((), lambda t: GoTime(t.ns, local=True)),
    "Year": GoMethod((), lambda t: t._fields()[0]),
    "Month": GoMethod((), lambda t: GoMonth(t._fields()[1])),
    "Day": GoMethod((), lambda t: t._fields()[2]),
    "Hour": GoMethod((), lambda t: t._fields()[3]),
    "Minute": GoMethod((), lambda t: t._fields()[4]),
    "Second": GoMethod((), lambda t: t._fields()[5]),
    "Nanosecond": GoMethod((), lambda t: t._fields()[6]),
    "Weekday": GoMethod((), lambda t: GoWeekday(t._fields()[7])),
    "YearDay": GoMethod((), lambda t: t._fields()[8]),
    "IsZero": GoMethod((), lambda t: t.ns == -_ZERO_TO_UNIX * _NS),
    "IsDST": GoMethod((), lambda t: t.is_dst()),
    "Add": GoMethod((DURATION,), lambda t, d: t._with(t.ns + d)),
    "AddDate": GoMethod((INT, INT, INT), lambda t, y, m, d: t._add_date(y, m, d)),
    "Sub": GoMethod((TIME,), lambda t, u: _saturate(t.ns - u.ns)),
    "Before": GoMethod((TIME,), lambda t, u: t.ns < u.ns),
    "After": GoMethod((TIME,), lambda t, u: t.ns > u.ns),
    "Equal": GoMethod((TIME,), lambda t, u: t.ns == u.ns),
    "Truncate": GoMethod((DURATION,), lambda t, d: t._round(d, up=False)),
    "Round": GoMethod((DURATION,), lambda t, d: t._round(d, up=True)),
    # Go refuses to call methods returning several values; its message is reproduced.
    "Date": GoMethod((), lambda t: None, results=3),
    "Clock": GoMethod((), lambda t: None, results=3),
    "ISOWeek": GoMethod((), lambda t: None, results=2),
    "Zone": GoMethod((), lambda t: None, results=2),
    "ZoneBounds": GoMethod((), lambda t: None, results=2),
    # Methods of time.Time whose results (locations, byte slices) alert templates have no use for.
    **{name: GoMethod(params, _unsupported(name)) for name, params in (
        ("In", ("*time.Location",)), ("Location", ()), ("AppendFormat", ("[]uint8", STRING)),
        ("MarshalJSON", ()), ("MarshalText", ()), ("MarshalBinary", ()), ("GobEncode", ()),
        ("UnmarshalJSON", ("[]uint8",)), ("UnmarshalText", ("[]uint8",)),
        ("UnmarshalBinary", ("[]uint8",)), ("GobDecode", ("[]uint8",)),
    )},
}
GoTime.go_methods = _TIME_METHODS  # type: ignore[attr-defined]


def _tdivmod(a: int, b: int) -> tuple[int, int]:
    """Go's integer ``/`` and ``%``: the quotient truncated towards zero, the remainder with the
    sign of ``a``."""
    q = abs(a) // b * (1 if a >= 0 else -1)
    return q, a - q * b


def _duration_in(unit: int) -> Callable[[int], float]:
    """Go's ``Duration.Hours``/``Minutes``/``Seconds``: whole units plus the fraction."""

    def convert(d: int) -> float:
        q, r = _tdivmod(int(d), unit)
        return float(q) + float(r) / float(unit)

    return convert


def _duration_round(d: int, m: int) -> GoDuration:
    """Go's ``Duration.Round``: halves away from zero, saturating at the int64 bounds."""
    if m <= 0:
        return GoDuration(d)
    r = abs(_tdivmod(d, m)[1])
    if r + r < m:
        return GoDuration(d - r if d >= 0 else d + r)
    return _saturate(d + m - r if d >= 0 else d - m + r)


GoDuration.go_methods = {  # type: ignore[attr-defined]
    "String": GoMethod((), lambda d: d.go_string()),
    "Hours": GoMethod((), _duration_in(3600 * _NS)),
    "Minutes": GoMethod((), _duration_in(60 * _NS)),
    "Seconds": GoMethod((), _duration_in(_NS)),
    "Milliseconds": GoMethod((), lambda d: GoInt64(_tdivmod(int(d), 1_000_000)[0])),
    "Microseconds": GoMethod((), lambda d: GoInt64(_tdivmod(int(d), 1_000)[0])),
    "Nanoseconds": GoMethod((), lambda d: GoInt64(int(d))),
    "Abs": GoMethod((), lambda d: _saturate(abs(int(d))) if d != _INT64_MIN else GoDuration(_INT64_MAX)),
    "Truncate": GoMethod((DURATION,), lambda d, m: GoDuration(d if m <= 0 else d - _tdivmod(int(d), m)[1])),
    "Round": GoMethod((DURATION,), lambda d, m: _duration_round(int(d), int(m))),
}
GoMonth.go_methods = {"String": GoMethod((), lambda m: m.go_string())}  # type: ignore[attr-defined]
GoWeekday.go_methods = {"String": GoMethod((), lambda w: w.go_string())}  # type: ignore[attr-defined]


def time_from_seconds(v: float) -> GoTime:
    """Prometheus's ``toTime``: seconds since 1970 -> ``*time.Time`` in UTC, to the millisecond
    (``model.TimeFromUnixNano`` truncates towards zero)."""
    if math.isnan(v) or math.isinf(v):
        raise GoTimeError("value is NaN or Inf")
    ts = v * 1e9
    if ts > _INT64_MAX or ts < _INT64_MIN:
        raise GoTimeError(f"{go_float_v(v)} cannot be represented as a nanoseconds timestamp since it overflows int64")
    ms = int(int(ts) / 1_000_000)
    return GoTime(ms * 1_000_000, pointer=True)


# ------------------------------------------------------------------------------------------
# Time.Format
# ------------------------------------------------------------------------------------------
# Go's layout elements in the order nextStdChunk recognises them at one position.
_CHUNKS: dict[str, tuple[str, ...]] = {
    "J": ("January", "Jan"),
    "M": ("Monday", "Mon", "MST"),
    "0": ("01", "02", "03", "04", "05", "06", "002"),
    "1": ("15", "1"),
    "2": ("2006", "2"),
    "_": ("_2006", "_2", "__2"),
    "3": ("3",), "4": ("4",), "5": ("5",),
    "P": ("PM",), "p": ("pm",),
    "-": ("-070000", "-07:00:00", "-0700", "-07:00", "-07"),
    "Z": ("Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"),
}


def _next_chunk(layout: str, i: int) -> tuple[str, int] | None:
    """The layout element starting at ``i`` (Go's ``nextStdChunk``) and its length, or None."""
    c = layout[i]
    rest = layout[i:]
    if c in ".,":
        if len(rest) > 1 and rest[1] in "09":
            j = 1
            while j < len(rest) and rest[j] == rest[1]:
                j += 1
            if j == len(rest) or not "0" <= rest[j] <= "9":  # Go's isDigit: ASCII only ("²" ends it)
                return rest[:j], j
        return None
    for chunk in _CHUNKS.get(c, ()):
        if not rest.startswith(chunk):
            continue
        if chunk in ("Jan", "Mon") and "a" <= rest[3:4] <= "z":
            continue  # "Janet", "Month" are text; Go's startsWithLowerCase is ASCII only ("Jané" is Nové)
        return chunk, len(chunk)
    return None


def _zone_text(chunk: str, name: str, offset: int) -> str:
    if chunk == "MST":
        if name:
            return name
        chunk = "-0700"
    if chunk.startswith("Z") and offset == 0:
        return "Z"
    sign = "-" if offset < 0 else "+"
    off = abs(offset)
    text = f"{sign}{off // 3600:02d}"
    colon = ":" if ":" in chunk else ""
    if chunk not in ("-07", "Z07"):
        text += f"{colon}{off // 60 % 60:02d}"
    if chunk in ("-070000", "-07:00:00", "Z070000", "Z07:00:00"):
        text += f"{colon}{off % 60:02d}"
    return text


def go_format_time(t: GoTime, layout: str) -> str:
    """Go's ``Time.Format`` with a reference-time layout (``2006-01-02T15:04:05Z07:00``)."""
    y, m, d, hh, mm, ss, nsec, wday, yday = t._fields()
    name, offset = t.zone()
    out: list[str] = []
    i = 0
    while i < len(layout):
        found = _next_chunk(layout, i)
        if found is None:
            out.append(layout[i])
            i += 1
            continue
        chunk, size = found
        i += size
        if chunk == "_2006":
            out.append("_" + _pad_int(y, 4))
        elif chunk == "2006":
            out.append(_pad_int(y, 4))
        elif chunk == "06":
            out.append(f"{abs(y) % 100:02d}")
        elif chunk in ("January", "Jan"):
            out.append(_MONTHS[m - 1][: len(chunk) if chunk == "Jan" else None])
        elif chunk in ("1", "01"):
            out.append(_pad_int(m, len(chunk)))
        elif chunk in ("Monday", "Mon"):
            out.append(_DAYS[wday][: 3 if chunk == "Mon" else None])
        elif chunk in ("2", "02"):
            out.append(_pad_int(d, len(chunk)))
        elif chunk == "_2":
            out.append(f"{d:2d}")
        elif chunk == "__2":
            out.append(f"{yday:3d}")
        elif chunk == "002":
            out.append(f"{yday:03d}")
        elif chunk == "15":
            out.append(f"{hh:02d}")
        elif chunk in ("3", "03"):
            out.append(_pad_int(hh % 12 or 12, len(chunk)))
        elif chunk in ("4", "04"):
            out.append(_pad_int(mm, len(chunk)))
        elif chunk in ("5", "05"):
            out.append(_pad_int(ss, len(chunk)))
        elif chunk in ("PM", "pm"):
            ampm = "PM" if hh >= 12 else "AM"
            out.append(ampm if chunk == "PM" else ampm.lower())
        elif chunk[0] in ".,":
            digits = f"{nsec:09d}"[: min(len(chunk) - 1, 9)]
            if chunk[1] == "9":
                digits = digits.rstrip("0")
                if digits:
                    out.append(chunk[0] + digits)
            else:
                out.append(chunk[0] + digits)
        else:
            out.append(_zone_text(chunk, name, offset))
    return "".join(out)


def _pad_int(v: int, width: int) -> str:
    """Go's ``appendInt``: zero-padded to ``width``, the sign before the zeros."""
    return ("-" if v < 0 else "") + f"{abs(v):0{width}d}"
