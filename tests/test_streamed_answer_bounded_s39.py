"""A streamed text answer keeps what its descriptors read, not the whole text (session 39).

Before, the stream wrapper kept every chunk until the stream ended and joined them: memory grew
with the answer, without bound for an endless stream, though the text descriptors
(:mod:`monitor.text`) read only the first ``MAX_TEXT_CHARS`` characters and the length. It now
keeps those (:class:`monitor.text_prefix.TextPrefix`): the descriptors are those of the whole
text, to the last bit, and a forwarding worker sends the length beside the first characters.
"""

from __future__ import annotations

import asyncio
import pickle
import random
import tracemalloc
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.streaming import _Text, answer_of
from monitor.text import DESCRIPTORS, MAX_TEXT_CHARS, TextPrefix, describe
from tests.sidecar_support import total, wait_until
from tests.test_forwarded_stream import forwarding_to_a_sidecar
from tests.test_output_kind_text_sidecar import _monitored

WRITER = {"features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "text"}}
#: letters, spaces, newlines, punctuation, digits, 2-, 3- and 4-byte characters
ALPHABET = "abc de\nf,.;7é字😀 \tXY"
VOCABULARY = frozenset({"abc", "de", "f", "xy"})


def _monitor() -> tuple[Monitor, list[Any]]:
    mon = Monitor("writer", config=WRITER, registry=CollectorRegistry(), live=False, start_worker=False)
    seen: list[Any] = []
    mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                   "__getattr__": lambda self, n: (lambda *a, **k: None)})())
    return mon, seen


def _output_descriptors(seen: list[Any]) -> np.ndarray:
    """The ``output.*`` descriptors of every row the detectors saw, in the order of DESCRIPTORS."""
    rows = [b.numeric[:, [list(b.numeric_names).index(f"output.{d}") for d in DESCRIPTORS]]
            for b in seen if hasattr(b, "numeric_names")]
    return np.concatenate(rows)


def _answers(seed: int, n: int) -> list[tuple[list[Any], Any]]:
    """``n`` seeded answers as streamed chunks, each with the answer held whole as before
    (:func:`answer_of` the chunks): lengths at and around the cap and beyond, str chunks or the
    UTF-8 bytes cut anywhere (a character split across chunks), some bytes corrupted."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.choice([0, 1, MAX_TEXT_CHARS - 1, MAX_TEXT_CHARS, MAX_TEXT_CHARS + 1, MAX_TEXT_CHARS + 2,
                             rng.randrange(MAX_TEXT_CHARS - 50, MAX_TEXT_CHARS + 50), rng.randrange(3 * MAX_TEXT_CHARS)])
        text = "".join(rng.choices(ALPHABET, k=length))
        data: Any = text
        if i % 2:
            data = bytearray(text.encode("utf-8"))
            for _ in range(rng.choice([0, 0, 3])):  # invalid UTF-8 here and there: decoded as U+FFFD, as before
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(128, 256)
            data = bytes(data)
        chunks, at = [], 0
        while at < len(data):
            step = rng.choice([1, 2, 3, rng.randrange(1, 200), rng.randrange(1, 4 * MAX_TEXT_CHARS)])
            chunks.append(data[at:at + step])
            at += step
        out.append((chunks, answer_of(chunks)))
    return out


def test_the_kept_answer_describes_as_the_whole_one_on_seeded_answers_around_the_cap() -> None:
    """Every descriptor, ``oov_share`` too, equal to the bit on 400 seeded answers; what is kept
    is at most the cap."""
    answers = _answers(seed=39, n=400)
    kept = []
    for chunks, whole in answers:
        t = _Text()
        for c in chunks:
            t.add(c)
        answer = t.answer()
        assert sum(map(len, t.head)) <= MAX_TEXT_CHARS and len(answer) <= MAX_TEXT_CHARS
        assert (type(answer) is TextPrefix) == (len(whole) > MAX_TEXT_CHARS)
        assert answer == whole[:MAX_TEXT_CHARS] and getattr(answer, "length", len(answer)) == len(whole)
        kept.append(answer)
    before = describe([w for _, w in answers], VOCABULARY)
    after = describe(kept, VOCABULARY)
    assert np.array_equal(before, after, equal_nan=True)
    assert sum(len(w) > MAX_TEXT_CHARS for _, w in answers) > 100  # the long ones were tested, not only short ones
    assert sum(isinstance(c[0], bytes) for c, _ in answers if c) > 100
    prefix = next(a for a in kept if type(a) is TextPrefix)
    again = pickle.loads(pickle.dumps(prefix))
    assert type(again) is TextPrefix and again == prefix and again.length == prefix.length


@pytest.mark.parametrize("is_async", [False, True])
def test_decorated_streams_export_the_descriptors_of_the_whole_answers(is_async: bool) -> None:
    """Through the decorator, the queue and the row builder: the ``output.*`` columns the
    detectors see are those of the answers held whole."""
    answers = _answers(seed=7 + is_async, n=40)
    mon, seen = _monitor()
    try:
        if is_async:
            @mon.watch
            async def generate(prompt: str, chunks: list[Any]):
                for c in chunks:
                    yield c

            async def consume(chunks: list[Any]) -> list[Any]:
                return [c async for c in generate("Go.", chunks)]

            for chunks, _ in answers:
                assert asyncio.run(consume(chunks)) == chunks
        else:
            @mon.watch
            def generate(prompt: str, chunks: list[Any]):
                yield from chunks

            for chunks, _ in answers:
                assert list(generate("Go.", chunks)) == chunks
        mon.flush()
        assert mon.store.value("monitor_predictions") == len(answers)
        expected = describe([w for _, w in answers])
        assert np.array_equal(_output_descriptors(seen), expected, equal_nan=True)
    finally:
        mon.close()


def _chunk(i: int, size: int, as_bytes: bool) -> Any:
    """A new chunk of ``size`` characters (bytes), each a new object: kept, they would all be held."""
    text = (f"{i:08d} token é字 " * (size // 16 + 1))[:size]
    return text.encode("utf-8")[:size] if as_bytes else text


@pytest.mark.parametrize("as_bytes, is_async", [(False, False), (True, False), (False, True)])
def test_50_mb_streamed_through_the_decorator_holds_under_the_cap(as_bytes: bool, is_async: bool) -> None:
    """An endless stream read for 50 MB, then closed by its consumer (a client gone): the memory
    allocated at the peak (tracemalloc), beyond what one chunk and its decoding take, stays under
    a megabyte (before: the 50 MB of chunks, then their join); the answer recorded is the first
    ``MAX_TEXT_CHARS`` characters with the length of all of them."""
    size, total_bytes = 1 << 16, 50 << 20
    mon, seen = _monitor()
    try:
        if is_async:
            @mon.watch
            async def endless(prompt: str):
                i = 0
                while True:
                    yield _chunk(i, size, as_bytes)
                    i += 1
        else:
            @mon.watch
            def endless(prompt: str):
                i = 0
                while True:
                    yield _chunk(i, size, as_bytes)
                    i += 1

        first = _chunk(0, size, as_bytes)
        chars_per_chunk = len(answer_of([first]))

        async def consume_async() -> int:
            stream = endless("Talk forever.")
            n = 0
            async for _ in stream:
                n += 1
                if n * size >= total_bytes:
                    break
            await stream.aclose()
            return n

        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            if is_async:
                n = asyncio.run(consume_async())
            else:
                stream = endless("Talk forever.")
                n = 0
                for _ in stream:
                    n += 1
                    if n * size >= total_bytes:
                        break
                stream.close()
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert n * size >= total_bytes
        # one chunk, its decoding (4 bytes a character at most), the kept head and the event: well under 1 MB
        assert peak < (1 << 20) + 6 * size, peak
        mon.flush()
        assert mon.store.value("monitor_predictions") == 1
        assert _output_descriptors(seen)[:, 0].tolist() == [n * chars_per_chunk]  # the length of all of it
    finally:
        mon.close()


def test_an_extractor_still_reads_the_whole_answer() -> None:
    """``embedding=`` reads what the function answers: the whole text, kept for it."""
    mon, seen = _monitor()
    got: list[int] = []
    try:
        @mon.watch(embedding=lambda answer: got.append(len(answer)) or [[float(len(answer))]])
        def generate(prompt: str):
            for _ in range(30):
                yield "x" * 1000

        assert len(list(generate("Go."))) == 30
        mon.flush()
        assert got == [30_000]
        assert _output_descriptors(seen)[:, 0].tolist() == [30_000.0]
    finally:
        mon.close()


def test_a_stream_that_is_not_text_of_one_type_is_the_list_of_its_chunks_as_before() -> None:
    """Tokens, then a dict (usage figures), or str then bytes: not joined, the chunks as they came
    (refused under kind text, as before)."""
    for chunks in (["Hello", ", world", {"usage": 3}], ["Hi", b" there"], [{"delta": "x"}, "y"], [b"a", None]):
        t = _Text()
        for c in chunks:
            t.add(c)
        assert t.answer() == answer_of(chunks) == chunks


def test_a_long_streamed_answer_forwarded_reaches_the_sidecar_with_its_length(tmp_path) -> None:
    """8 MB of tokens in a forwarding worker: before, the whole answer was sent, some 8 MB of JSON,
    over the 64 datagrams an event may take, and dropped as ``too_large``; now its first
    characters and its length (``outputs_length``), described at the sidecar as the whole answer."""
    with forwarding_to_a_sidecar(tmp_path) as (sc, fm):
        token = "Rain on the roof, é字. "

        @fm.watch
        def generate(prompt: str):
            for _ in range((8 << 20) // len(token)):
                yield token

        n = sum(1 for _ in generate("Write a very long poem."))
        fm.flush()
        assert fm.counters().dropped == {}, fm.counters().dropped
        assert wait_until(lambda: total(sc.metrics(), "monitor_forward_events_received_total") == 1)
        assert _monitored(sc) == (1.0, {})
        whole = token * n
        got = np.concatenate([b.numeric[:, [list(b.numeric_names).index(f"output.{d}") for d in DESCRIPTORS]]
                              for b in sc.seen])
        assert np.array_equal(got, describe([whole]))
        assert got[0, 0] == len(whole) > 8_000_000


def test_the_sidecar_refuses_a_length_that_is_not_one_of_a_cut_answer() -> None:
    """``outputs_length`` only beside the first MAX_TEXT_CHARS characters, and longer than them;
    from a forwarding worker only (``parse_event(forwarded=True)``), an unknown key over HTTP."""
    from monitor.events import EventFormatError, parse_event
    from monitor.text_prefix import TextPrefix

    head = "a" * MAX_TEXT_CHARS
    event = parse_event({"inputs": "Go.", "outputs": head, "outputs_length": 12_345}, 0.0, forwarded=True).event
    assert type(event[3]) is TextPrefix and event[3] == head and event[3].length == 12_345
    with pytest.raises(EventFormatError) as err:
        parse_event({"inputs": "Go.", "outputs": head, "outputs_length": 12_345}, 0.0)
    assert err.value.reason == "unknown_key" and err.value.field == "outputs_length"
    for outputs, bad in ((head, MAX_TEXT_CHARS), (head, "12345"), (head, True), ("short", 12_345), ([head], 12_345)):
        with pytest.raises(EventFormatError) as err:
            parse_event({"inputs": "Go.", "outputs": outputs, "outputs_length": bad}, 0.0, forwarded=True)
        assert err.value.reason == "bad_outputs_length"
