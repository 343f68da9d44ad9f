"""Prometheus durations: parsing and formatting exactly as ``prometheus/common/model`` does.

Rule files, promtool test files and the agent's config all spell durations the Prometheus way
(``1h30m``, ``5m``, ``0s``, ``90d``). Parsing them with a looser grammar would accept files that
``promtool check rules`` rejects, so the grammar here is the same: units in decreasing order,
each at most once, integers only, and the bare ``0``.
"""

from __future__ import annotations

import re

from monitor.rules.gofmt import go_quote

__all__ = [
    "DurationError",
    "parse_duration",
    "format_duration",
    "format_go_duration",
]

_MS = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}

_DURATION_RE = re.compile(
    r"^(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?$"
)

# Go's time.Duration is an int64 of nanoseconds: Prometheus refuses longer durations.
_MAX_MS = (2**63 - 1) // 1_000_000


class DurationError(ValueError):
    """A string is not a valid Prometheus duration."""


def parse_duration(text: str) -> float:
    """Parse a Prometheus duration and return it in seconds.

    Parameters
    ----------
    text : str
        E.g. ``"1h30m"``, ``"5m"``, ``"0s"``, ``"0"``, ``"250ms"``, ``"2w"``.

    Returns
    -------
    float
        The duration in seconds (millisecond resolution, like Prometheus).

    Raises
    ------
    DurationError
        With Prometheus's message ``not a valid duration string: "..."`` when the text does not
        follow the grammar (units out of order, repeated, fractional, empty...).
    """
    if text == "0":
        return 0.0
    m = _DURATION_RE.match(text)
    if m is None or text == "":
        raise DurationError(f"not a valid duration string: {go_quote(text)}")
    total = 0
    for unit, mult in _MS.items():
        v = m.group(unit)
        if v is None:
            continue
        n = int(v)
        if n > _MAX_MS // mult:
            raise DurationError("duration out of range")
        total += n * mult
        if total > _MAX_MS:
            raise DurationError("duration out of range")
    return total / 1000.0


def format_duration(seconds: float) -> str:
    """Format seconds the way ``model.Duration.String`` does (``5m``, ``1h30m``, ``0s``, ``90d``).

    Years and weeks are used only when they divide the duration exactly, as in Prometheus, so
    ``90d`` stays ``90d`` rather than ``12w6d``.
    """
    ms = int(round(seconds * 1000))
    if ms == 0:
        return "0s"
    sign = ""
    if ms < 0:
        sign, ms = "-", -ms
    out = []
    for unit, mult in _MS.items():
        if unit in ("y", "w") and ms % mult != 0:
            continue
        v = ms // mult
        if v > 0:
            out.append(f"{v}{unit}")
            ms -= v * mult
    return sign + "".join(out)


def format_go_duration(seconds: float) -> str:
    """Format seconds like Go's ``time.Duration.String`` (``0s``, ``1m0s``, ``1h0m0s``, ``1.5s``).

    promtool prints evaluation errors with this format (``time: 0s``), so the unit-test runner
    uses it to produce the same text: :func:`monitor.rules.gotime.go_duration_string` of the
    nanoseconds, the one implementation (alert templates print a ``Sub`` with it).
    """
    from monitor.rules.gotime import go_duration_string

    return go_duration_string(int(round(seconds * 1e9)))
