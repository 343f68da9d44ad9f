"""The sidecar decodes request bodies with orjson (``monitor.server.jsonbody``) and answers exactly
as it did with ``json``: the same value for every body, the same exception for every body it
refuses, and so the same status, field, message and refusal reason from the intake.

The differences between the two decoders, each with the body that shows it: NaN/Infinity literals,
numbers past the float range, integers outside 64 bits (orjson: a float), unpaired surrogates
(escaped or as UTF-8 bytes), a byte-order mark, UTF-16/32 bodies, nesting past the recursion
limit, and every error message. Property tests hold the decoder to ``json.loads`` on generated
bodies, valid and broken, and the intake's decoding to itself without orjson.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.server import jsonbody
from monitor.server.errors import IntakeError
from monitor.server.intake import decode_events
from monitor.server.jsonbody import NOT_DECODED, loads, try_loads
from monitor.server.payloads import unsafe_json


def _same(a: Any, b: Any) -> bool:
    """Identical JSON values: the same types (1 is not 1.0, True is not 1), the same floats to
    the bit (-0.0 is not 0.0; NaN is NaN), the same keys in the same order. Iterative: the values
    may nest a thousand deep."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if type(x) is not type(y):
            return False
        if type(x) is float:
            if repr(x) != repr(y):
                return False
        elif type(x) is list:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y))
        elif type(x) is dict:
            if list(x) != list(y):
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", fn(*args)
    except IntakeError as err:
        return "intake", (err.status, err.field, err.message, err.reason, err.events)
    except Exception as err:  # noqa: BLE001 - the exception itself is what is compared
        return "error", (type(err), str(err))


def _decoded(raw: bytes) -> Any:
    """What the sidecar's routes do: orjson's value, else json.loads called here, where the
    reference below calls it (the same stack depth: json's RecursionError comes at the same nesting)."""
    value = try_loads(raw)
    if value is NOT_DECODED:
        value = json.loads(raw)
    return value


def _reference(raw: bytes) -> Any:
    return json.loads(raw)  # at _decoded's depth


def _agree(raw: bytes) -> None:
    got, want = _outcome(_decoded, raw), _outcome(_reference, raw)
    assert got[0] == want[0], (raw[:200], got, want)
    if got[0] == "value":
        assert _same(got[1], want[1]), (raw[:200], got, want)
    else:
        assert got[1] == want[1], (raw[:200], got, want)


@contextlib.contextmanager
def _without_orjson() -> Iterator[None]:
    saved = jsonbody._orjson_loads
    jsonbody._orjson_loads = None
    try:
        yield
    finally:
        jsonbody._orjson_loads = saved


# -- bodies --------------------------------------------------------------------------------------------

#: every code point, lone surrogates included (json.dumps escapes them or, with ensure_ascii off,
#: they are encoded as UTF-8 bytes with surrogatepass: what json reads and orjson refuses)
_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=8)
_numbers = st.one_of(
    st.integers(),  # unbounded: past 64 bits and past the float range
    st.integers(-2**64 - 5, 2**64 + 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64 - 1, 2**64, 10**19, -10**19, 10**308, 10**309]),
)
_values = st.recursive(st.none() | st.booleans() | _numbers | _text,
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4), max_leaves=12)
#: number literals as a client may write them: long mantissas, big exponents, signs, leading zeros
_literals = st.builds(
    lambda sign, intpart, frac, exp: (sign + intpart + frac + exp).encode(),
    st.sampled_from(["", "-", "+"]),
    st.one_of(st.just("0"), st.from_regex(r"\A[1-9][0-9]{0,40}\Z"), st.from_regex(r"\A0[0-9]{1,3}\Z")),
    st.one_of(st.just(""), st.from_regex(r"\A\.[0-9]{0,40}\Z")),
    st.one_of(st.just(""), st.from_regex(r"\A[eE][+-]?[0-9]{1,5}\Z")),
)
_tokens = st.sampled_from([
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e-400", b"18446744073709551616", b"-9223372036854775809",
    b"9223372036854775808", b"-0", b"-0.0", b"01", b"1.", b".5", b'"\\ud800"', b'"\\udc00"', b'"\\ud83d\\ude00"',
    b'"\xed\xa0\x80"', b"\xef\xbb\xbf", b"\x00", b"\xff", b"\xc0\x80", b",", b"[", b"]", b"{", b"}", b":", b'"', b"\\",
    b" ", b"\t", b"\r\n", b"\n", b"\x0c", b"\x0b", b"\xc2\xa0", b'{"a":1,"a":2}', b"true", b"nul", b"[1,]",
    b"1" * 19, b"-" + b"9" * 19, b"1" * 309,
])


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["value", "value", "literal", "nested", "encoded"]))
    if kind == "literal":
        raw = draw(_literals)
    elif kind == "nested":
        depth = draw(st.one_of(st.integers(0, 40), st.integers(390, 420), st.integers(900, 1100)))
        open_, close = draw(st.sampled_from([(b"[", b"]"), (b'{"k":', b"}"), (b'[{"k":', b"}]")]))
        raw = open_ * depth + draw(st.sampled_from([b"1", b"[]", b"NaN", b"2" * 25])) + close * depth
    else:
        value = draw(_values)
        text = json.dumps(value, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([None, (",", ":")])))
        raw = text.encode("utf-8", "surrogatepass")
        if kind == "encoded":  # what json.detect_encoding reads and orjson refuses
            codec = draw(st.sampled_from(["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]))
            try:
                raw = text.encode(codec)
            except UnicodeEncodeError:  # a lone surrogate: kept as UTF-8 with surrogatepass
                pass
    for _ in range(draw(st.integers(0, 2))):  # a token inserted, or a slice cut out
        at = draw(st.integers(0, len(raw)))
        if draw(st.booleans()):
            raw = raw[:at] + draw(_tokens) + raw[at:]
        else:
            raw = raw[:at] + raw[at + draw(st.integers(1, 4)):]
    return raw


# -- the decoder against json.loads ---------------------------------------------------------------------

@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=st.one_of(_bodies(), st.binary(max_size=40)))
@example(raw=b"18446744073709551616")  # orjson: 1.8446744073709552e+19
@example(raw=b"-9223372036854775809")
@example(raw=b'{"inputs": [100000000000000000000000000000], "outputs": [1]}')
def test_the_decoder_answers_as_json_loads(raw: bytes) -> None:
    _agree(raw)


@pytest.mark.parametrize("raw", [
    b"NaN", b"[Infinity, -Infinity]", b"1e400", b"[1.7976931348623159e308]",  # json: nan, inf; orjson refuses
    b"18446744073709551616", b"-9223372036854775809", b"[" + b"9" * 30 + b"]", b"1" + b"0" * 400,  # orjson: floats
    b"18446744073709551615", b"-9223372036854775808", b"[1733012345123456789]",  # 64-bit: both exact
    b'["\\ud800"]', b'{"\\udc00": 1}', b'"\\ud800\\u0041"', b'"\xed\xa0\x80"',  # unpaired surrogates
    b'"\xff"', b'"\xc0\x80"', b"\xef\xbb\xbf{}", "{}".encode("utf-16"), "[1]".encode("utf-32-be"), b"1\x00",
    b'{"a": 1, "b": 2, "a": 3}', b" \t\r\n{}\n", b"\x0c{}", b"{}\x0c", b"\xc2\xa0{}",  # duplicates, whitespace
    b"", b"  ", b"01", b"1.", b"[1,]", b"-", b"nul", b'{"a" 1}', b"{} {}", b"[1]\n[2]\n",  # errors, Extra data
    b"-0", b"-0.0", b"1e-400", b"2.2250738585072011e-308", b"1.00000000000000011102230246251565404236316680908203125",
    b"[" * 400 + b"]" * 400, b"[" * 1000 + b"]" * 1000, b"[" * 1030 + b"]" * 1030, b'{"a":' * 990 + b"1" + b"}" * 990,
])
def test_each_known_difference_answers_as_json(raw: bytes) -> None:
    _agree(raw)


def test_ordinary_bodies_are_decoded_by_orjson() -> None:
    """The agreement above is not json.loads everywhere: the intake's NDJSON batch and a tap's
    body never reach it (json.loads replaced by a function that fails)."""
    ndjson = b"".join(json.dumps({"inputs": [i, 0.5], "outputs": [0.2, 0.8], "request_id": f"r{i}"}).encode() + b"\n"
                      for i in range(500))
    array = b"[" + ndjson.strip().replace(b"\n", b",") + b"]"  # 1,501 brackets: decoded inside more arrays
    single = b'{"instances": [[1.0, 2.0]], "id": "r-1"}'
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jsonbody.json, "loads", _refuse)
        assert len(decode_events(ndjson, "application/x-ndjson")) == 500
        wrapped = decode_events(array, "application/json")
    assert _same(wrapped, json.loads(array))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jsonbody.json, "loads", _refuse)
        assert loads(single) == {"instances": [[1.0, 2.0]], "id": "r-1"}
        with pytest.raises(AssertionError):  # and one orjson refuses does
            loads(b"[NaN]")


def _refuse(*_: Any) -> Any:
    raise AssertionError("json.loads was called")


def test_the_integer_and_unsafe_checks_share_one_map_of_the_body() -> None:
    body = b'{"inputs": [1, 2], "outputs": [' + b"9" * 320 + b"]}"
    assert unsafe_json(body, loads(body)) == "number_too_large"  # json's exact int, refused as before
    assert jsonbody._last_map[0] is body
    other = b'{"inputs": [1, 2], "outputs": [1.5], "pad": "' + b"x" * 400 + b'"}'
    assert unsafe_json(other, loads(other)) is None
    assert jsonbody._last_map[0] is other


# -- the intake's decoding with and without orjson ------------------------------------------------------

_lines = st.lists(_bodies(), min_size=0, max_size=6)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=_lines, sep=st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\n \n"]), trailing=st.booleans(),
       ctype=st.sampled_from(["application/x-ndjson", "application/json", "application/json; charset=utf-8", "text/plain"]))
def test_the_intake_decodes_every_body_as_it_did_with_json(lines: list[bytes], sep: bytes, trailing: bool,
                                                          ctype: str) -> None:
    body = sep.join(lines) + (sep if trailing else b"")
    got = _outcome(decode_events, body, ctype)
    with _without_orjson():
        want = _outcome(decode_events, body, ctype)
    assert got[0] == want[0], (body[:200], got, want)
    if got[0] == "value":
        assert _same(got[1], want[1])
        assert unsafe_json(body, got[1]) == unsafe_json(body, want[1])
    else:
        assert got[1] == want[1], (body[:200], got, want)


@pytest.mark.parametrize("body,ctype", [
    (b'{"inputs": [1], "outputs": [1]}\n{"inputs": [2], "outputs": [NaN]}\n', "application/x-ndjson"),
    (b'{"inputs": [1], "outputs": [1]}\n{"inputs": [2], "outputs": [2]}\n', "application/json"),  # NDJSON detected
    (b'{"inputs": [1], "outputs": [1]}\n{"inputs": [2], "outputs": [2]', "application/x-ndjson"),  # line 2 broken
    (b'{"inputs": [1], "outputs": [1]} {"inputs": [2]}\n', "application/x-ndjson"),  # two documents on a line
    (b'{"inputs": [1], "outputs": [' + b"9" * 25 + b"]}\n", "application/x-ndjson"),
    (b"[" * 399 + b"]" * 399 + b"\n" + b"[" * 399 + b"]" * 399, "application/x-ndjson"),
    (b"[" * 995 + b"]" * 995, "application/json"),  # RecursionError: "nested too deeply"
    (b"[" * 995 + b"]" * 995 + b"\n1\n", "application/x-ndjson"),
    (b"\xef\xbb\xbf[{}]", "application/json"), ("[{}]".encode("utf-16"), "application/json"),
    (b"", "application/json"), (b" \n ", "application/x-ndjson"), (b'{"a": "\xff"}', "application/json"),
])
def test_the_intake_answers_known_differences_as_it_did(body: bytes, ctype: str) -> None:
    got = _outcome(decode_events, body, ctype)
    with _without_orjson():
        want = _outcome(decode_events, body, ctype)
    assert got[0] == want[0] and (_same(got[1], want[1]) if got[0] == "value" else got[1] == want[1]), (got, want)


def test_import_monitor_does_not_load_orjson() -> None:
    code = "import sys, monitor; print('orjson' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
