"""The sidecar's JSON decoding of request bodies: ``json.loads``'s answers at orjson's speed.

Every body the sidecar reads (``/v1/events`` and ``/v1/feedback`` in every form, CloudEvents,
forwarding datagrams, the proxy tap's bodies) is decoded here. Why orjson: ``json.loads`` was the
largest single stage of the intake's CPU per event (about 2.0 of 8.2 us with every detector, a
quarter), and orjson decodes the same bodies about five times faster.

Why not orjson alone: the two disagree on inputs that the intake has answered for a long time,
and every answer must stay what it was (the status, the error naming the field and the fix, the
refusal reason counted). :func:`try_loads` returns orjson's value only where it is provably the
value ``json.loads`` gives, and otherwise :data:`NOT_DECODED`: the caller then calls ``json.loads``
as it always did, which returns or raises exactly what it always did, at the same stack depth
(where its RecursionError comes). The proxy tap's :func:`loads` does both:

* orjson refuses what ``json`` accepts: ``NaN``/``Infinity`` literals, numbers past the float range
  (``1e400``), unpaired surrogates (``"\\ud800"`` escaped, or encoded as UTF-8 bytes, which ``json``
  reads with ``surrogatepass``), a UTF-8 byte-order mark, UTF-16 and UTF-32 bodies: the refusal
  sends the body to ``json``;
* orjson's errors are worded differently from ``json``'s (``Expecting value: line 1 column 1``,
  ``Extra data``, which the intake reads to detect NDJSON): every orjson error goes to ``json``,
  whose exception is the one raised;
* orjson turns an integer outside [-2**63, 2**64) into a float (``json``: an exact ``int``, which
  :func:`~monitor.server.payloads.unsafe_json` refuses past the float range): a body with a run of
  20 digits, or of 19 after a ``-``, goes to ``json``;
* orjson accepts nesting up to 1024 deep, ``json`` stops at Python's recursion limit less the
  caller's stack (about 950 from a request handler), with a ``RecursionError``: a body that could
  nest deeper than 400 (half its length, or its count of ``[`` and ``{``) is decoded by orjson
  inside as many more arrays as make orjson refuse what ``json`` would refuse from here
  (:func:`_wrapped`), and a refusal goes to ``json``; a shallower one goes to orjson unless the
  caller's stack is 550 frames deep.

Duplicate keys (the last value, at the first key's place), whitespace (space, tab, CR, LF in both),
floats (correctly rounded in both), ``-0`` and ``-0.0`` agree; property tests hold :func:`try_loads` to
``json.loads`` on generated bodies, valid and broken, and the intake's answers to its answers
without orjson (tests/test_fast_json_session11.py).
"""

from __future__ import annotations

import json
import sys
from typing import Any

try:  # a core dependency; json alone where it cannot be imported
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - only without the package
    _orjson_loads = None

__all__ = ["NOT_DECODED", "try_loads", "try_loads_lines", "loads", "digit_map"]

#: Every digit as ``1``, ``-`` as ``2``, every other byte as ``0``: runs of digits found by
#: ``bytes.find`` in C (the intake's integer checks and unsafe_json's 309-digit check share it).
_DIGIT_MAP = bytes(0x31 if 0x30 <= b <= 0x39 else 0x32 if b == 0x2D else 0x30 for b in range(256))
_RUN_19 = b"1" * 19
_RUN_20 = b"1" * 20
_NEGATIVE_19 = b"2" + _RUN_19
#: The last body mapped and its map: a body's integer check and its unsafe_json check read the same
#: map (one pass over 12 KB costs about as much as the checks saved). Holding the body keeps its
#: identity from being reused by another.
_last_map: tuple[object, bytes] = (None, b"")
#: Nesting up to the recursion limit less this is decoded by ``json`` without a RecursionError
#: (and so by orjson) from a stack less deep than this less :data:`_JSON_FRAMES`: checked for each
#: body (0.7 us: ``sys._getframe`` raising), as a request handler stands on about 40 frames.
_STACK_ALLOWANCE = 600


def digit_map(raw: bytes) -> bytes:
    """``raw`` with every digit as ``1``, ``-`` as ``2`` and every other byte as ``0`` (the last
    body's map is kept: the intake maps each body once for its two checks)."""
    global _last_map
    last = _last_map
    if last[0] is raw:
        return last[1]
    mapped = raw.translate(_DIGIT_MAP)
    _last_map = (raw, mapped)
    return mapped


#: orjson's value is not json's here, or orjson refused the text: ``json.loads`` decides
NOT_DECODED: Any = object()
_UNPROBED = object()
#: The deepest nesting orjson accepts (1024 in orjson 3), found once by trying; None when it has no
#: limit (then deep bodies go to json)
_orjson_depth: Any = _UNPROBED
#: The recursion budget json's decoding takes beyond its nesting (its own frames: about 6), with room
_JSON_FRAMES = 50


def _orjson_value(text: bytes, source: bytes, bound: int) -> Any:
    """orjson's value of ``text`` where it is ``json.loads``'s, else :data:`NOT_DECODED`.

    ``source`` is the body the text is read from (the text itself, or the NDJSON body whose lines
    it joins: the same runs of digits), ``bound`` a bound on the text's nesting that costs nothing
    to know (each ``[`` or ``{`` of a document has its closing byte: half its length)."""
    if _orjson_loads is None or source.__class__ is not bytes:
        return NOT_DECODED
    if len(source) >= 19:  # orjson reads an integer outside [-2**63, 2**64) as a float
        mapped = digit_map(source)
        if mapped.find(_RUN_19) >= 0 and (mapped.find(_RUN_20) >= 0 or mapped.find(_NEGATIVE_19) >= 0):
            return NOT_DECODED
    safe = sys.getrecursionlimit() - _STACK_ALLOWANCE
    if bound > safe and _opens(text) > safe:
        return _wrapped(text)
    try:  # json decodes a nesting of ``safe`` from a stack less deep than this (a handler's: ~40)
        sys._getframe(_STACK_ALLOWANCE - _JSON_FRAMES)
    except ValueError:
        pass
    else:
        return NOT_DECODED
    try:
        return _orjson_loads(text)
    except Exception:  # noqa: BLE001 - json answers what it always answered
        return NOT_DECODED


def _opens(text: bytes) -> int:
    """The count of ``[`` and ``{`` in ``text`` (a bound on its nesting): in numpy, 3 us for
    12 KB against 8 us for two ``bytes.count``."""
    import numpy as np

    return int(np.count_nonzero((np.frombuffer(text, np.uint8) | 0x20) == 0x7B))


def _wrapped(text: bytes) -> Any:
    """orjson's value of a text that might nest deeper than ``json`` can decode from here, where it
    does not: the text is decoded inside as many more arrays as make orjson's own depth limit
    refuse what ``json`` would (the recursion limit less this stack's frames less json's own),
    then taken out of them. About 20 us for a caller at a request handler's depth."""
    top = _probe_orjson_depth()
    if top is None:
        return NOT_DECODED
    frame, stack = sys._getframe(), 0
    while frame is not None:
        stack += 1
        frame = frame.f_back
    room = sys.getrecursionlimit() - stack - _JSON_FRAMES
    if room <= 0:
        return NOT_DECODED
    extra = max(top - room, 0)
    try:
        value = _orjson_loads(b"[" * extra + text + b"]" * extra)
    except Exception:  # noqa: BLE001 - too deep for json, or not JSON: json answers
        return NOT_DECODED
    for _ in range(extra):
        value = value[0]
    return value


def _probe_orjson_depth() -> int | None:
    global _orjson_depth
    if _orjson_depth is _UNPROBED:
        def accepts(depth: int) -> bool:
            try:
                _orjson_loads(b"[" * depth + b"]" * depth)
            except Exception:  # noqa: BLE001 - too deep
                return False
            return True

        lo, hi = 1, 1 << 16
        if accepts(hi):
            _orjson_depth = None
        else:
            while lo < hi - 1:  # accepts(lo), not accepts(hi)
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if accepts(mid) else (lo, mid)
            _orjson_depth = lo
    return _orjson_depth


def try_loads(raw: bytes) -> Any:
    """orjson's value of ``raw`` where it is ``json.loads(raw)``'s, else :data:`NOT_DECODED`: then
    the caller calls ``json.loads(raw)`` itself, which returns or raises what it always did (at the
    caller's own stack depth, where its RecursionError has always come)."""
    return _orjson_value(raw, raw, len(raw) // 2)


def try_loads_lines(joined: bytes, body: bytes, lines: list[bytes]) -> Any:
    """:func:`try_loads` of ``joined``, ``b"[" + b",".join(lines) + b"]"`` for ``lines``, the
    non-blank lines of the NDJSON ``body``: the integer check reads ``body`` (the same runs of
    digits, and the map :func:`~monitor.server.payloads.unsafe_json` then reuses), and the nesting
    is bounded by the longest line's."""
    return _orjson_value(joined, body, 1 + max(map(len, lines), default=0) // 2)


_SCAN = json.JSONDecoder().scan_once  # the C scanner where the interpreter has one (CPython)
_WHITESPACE = json.decoder.WHITESPACE.match


def loads(raw: bytes) -> Any:
    """``json.loads(raw)`` for the proxy tap's bodies: the same value for every input, and the same
    exception for every input it refuses; orjson's value where it is ``json``'s (:func:`try_loads`).

    Otherwise, for a body of a hundred bytes ``json.loads`` spends more on its wrapping (detecting
    the encoding, the whitespace regular expressions, the decoder's two Python frames) than on the
    parse. A body whose first byte is ``{`` and whose second is not NUL is UTF-8 by
    ``json.detect_encoding``'s own rules (no byte-order mark starts with ``{``), so it is decoded
    and scanned directly, with ``json``'s own scanner; anything else, and any body the scanner
    stops on (invalid JSON, extra data, nesting too deep), goes to ``json.loads``, which raises
    what it always raised."""
    value = _orjson_value(raw, raw, len(raw) // 2)
    if value is not NOT_DECODED:
        return value
    if raw[:1] == b"{" and raw[1:2] != b"\x00" and raw.__class__ is bytes:
        try:
            text = raw.decode("utf-8", "surrogatepass")
            value, end = _SCAN(text, 0)
        except Exception:  # noqa: BLE001 - json.loads below raises the error the caller knows
            return json.loads(raw)
        if end == len(text) or _WHITESPACE(text, end).end() == len(text):
            return value
    return json.loads(raw)
