"""Days since 1970-01-01 <-> proleptic Gregorian dates (Howard Hinnant's algorithms).

Shared by PromQL's date functions (numpy arrays) and alert templates' Go times (Python ints,
unbounded, so a date past year 9999 is computed where :mod:`datetime` would overflow): every
operation here works on both, which is why conditionals are arithmetic on booleans.
"""

from __future__ import annotations

from typing import Any

__all__ = ["civil_from_days", "days_from_civil"]


def civil_from_days(days: Any) -> tuple[Any, Any, Any]:
    """(year, month 1..12, day 1..31) of ``days`` since 1970-01-01."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 - 12 * (mp >= 10)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def days_from_civil(y: Any, m: Any, d: Any) -> Any:
    """Days since 1970-01-01 of (year, month, day). Months and days out of range are carried
    over as Go's ``time.Date`` does: month 13 is January of the next year, October 32 is
    November 1."""
    y = y + (m - 1) // 12
    m = (m - 1) % 12 + 1
    y = y - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 + 12 * (m <= 2)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
