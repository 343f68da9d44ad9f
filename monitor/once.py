"""Say a thing once: the keys (refusal reasons, misused arguments) already logged, bounded.

A refusal that repeats on every call is counted every time but logged the first time only, with
what was wrong and the fix: counts alone do not say why, and a log line per call would flood the
log. The set of keys is bounded because the keys may come from outside (reasons named in a
datagram, say).
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["Once"]


class Once:
    """Keys seen, at most ``max_keys`` of them.

    >>> said = Once(max_keys=2)
    >>> said.first("nan_output"), said.first("nan_output"), "nan_output" in said
    (True, False, True)
    >>> said.first("wrong_shape"), said.first("third")  # past the bound nothing is new any more
    (True, False)
    """

    __slots__ = ("max_keys", "_seen")

    def __init__(self, max_keys: int = 64) -> None:
        self.max_keys = int(max_keys)
        self._seen: set[Hashable] = set()

    def first(self, key: Hashable) -> bool:
        """True the first time ``key`` comes (then remembered), False after, and for every new key
        once ``max_keys`` are remembered."""
        if key in self._seen or len(self._seen) >= self.max_keys:
            return False
        self._seen.add(key)
        return True

    def __contains__(self, key: Hashable) -> bool:
        return key in self._seen
