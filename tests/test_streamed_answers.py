"""A streamed text answer (an LLM yielding tokens) watched by the decorator (session 30).

Before, ``watch()`` refused every generator function: a streaming endpoint (the usual way an LLM
answers) could not be decorated at all, neither its prompts nor its answers monitored. For
``output.kind: text`` (or ``none``) the call is now recorded when its stream ends, the chunks
passed on unchanged, the tokens joined into the answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor

WRITER = {"features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "text"}}


def _monitor(config: dict[str, Any]) -> tuple[Monitor, list[Any]]:
    mon = Monitor("writer", config=config, registry=CollectorRegistry(), live=False, start_worker=False)
    seen: list[Any] = []
    mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                   "__getattr__": lambda self, n: (lambda *a, **k: None)})())
    return mon, seen


def _answer_lengths(seen: list[Any]) -> list[float]:
    return [float(v) for b in seen if hasattr(b, "numeric_names")
            for v in b.numeric[:, list(b.numeric_names).index("output.length")]]


def test_a_streamed_answer_is_recorded_joined_when_the_stream_ends() -> None:
    mon, seen = _monitor(WRITER)
    try:
        @mon.watch
        def generate(prompt: str):
            for token in ["Once ", "upon ", "a ", "time."]:
                yield token

        assert list(generate("Tell me a story.")) == ["Once ", "upon ", "a ", "time."]  # passed on unchanged
        assert list(generate("Another one.")) == ["Once ", "upon ", "a ", "time."]
        mon.flush()
        assert mon.store.value("monitor_calls") == 2
        assert _answer_lengths(seen) == [len("Once upon a time.")] * 2
        assert not any(v for v in (mon.store.value("monitor_rows_rejected", (r,)) for r in
                                   ("non_numeric_output", "rows_mismatch", "wrong_type")) if v)
    finally:
        mon.close()


def test_send_throw_and_an_early_close_reach_the_function_and_the_partial_answer_is_recorded() -> None:
    mon, seen = _monitor(WRITER)
    closed: list[bool] = []
    try:
        @mon.watch
        def echo(prompt: str):
            try:
                got = yield "ready "
                while True:
                    try:
                        got = yield f"{got} "
                    except ValueError:
                        got = "recovered"
            finally:
                closed.append(True)

        stream = echo("Echo me.")
        assert next(stream) == "ready "
        assert stream.send("one") == "one "
        assert stream.throw(ValueError("x")) == "recovered "  # the function caught it and went on
        stream.close()  # the client went away: the answer so far is recorded
        assert closed == [True]
        mon.flush()
        assert _answer_lengths(seen) == [len("ready one recovered ")]
    finally:
        mon.close()


def test_an_exception_in_the_stream_is_counted_and_raised_unchanged() -> None:
    mon, _ = _monitor(WRITER)
    try:
        class Overloaded(RuntimeError):
            pass

        @mon.watch
        def generate(prompt: str):
            yield "Hel"
            raise Overloaded("GPU out of memory")

        stream = generate("Hi")
        assert next(stream) == "Hel"
        with pytest.raises(Overloaded, match="GPU out of memory"):
            next(stream)
        mon.flush()
        assert mon.store.value("monitor_errors", ("Overloaded",)) == 1
    finally:
        mon.close()


def test_an_async_stream_of_a_model_whose_outputs_are_not_read_has_its_prompts_watched() -> None:
    mon, seen = _monitor({"features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}})
    try:
        @mon.watch
        async def generate(prompt: str):
            for token in ["a", "b", "c"]:
                await asyncio.sleep(0)
                yield {"token": token}  # objects, not read for kind none

        async def consume() -> list[Any]:
            return [chunk async for chunk in generate("What is drift?")]

        assert asyncio.run(consume()) == [{"token": "a"}, {"token": "b"}, {"token": "c"}]
        mon.flush()
        assert mon.store.value("monitor_calls") == 1
        lengths = [float(v) for b in seen if hasattr(b, "numeric_names")
                   for v in b.numeric[:, list(b.numeric_names).index("prompt.length")]]
        assert lengths == [len("What is drift?")]
    finally:
        mon.close()


def test_an_outputs_extractor_gets_the_chunks() -> None:
    mon, seen = _monitor(WRITER)
    try:
        @mon.watch(outputs=lambda chunks: "".join(c["delta"] for c in chunks))
        def generate(prompt: str):
            yield {"delta": "Hello"}
            yield {"delta": ", world"}

        assert len(list(generate("Greet me."))) == 2
        mon.flush()
        assert _answer_lengths(seen) == [len("Hello, world")]
    finally:
        mon.close()


def test_a_stream_of_scores_is_still_refused_with_the_fix() -> None:
    mon = Monitor("clf", config={"output": {"kind": "probabilities"}}, registry=CollectorRegistry(), live=False,
                  start_worker=False)
    try:
        def stream(x: np.ndarray):
            yield [0.25, 0.75]

        with pytest.raises(TypeError, match="scores do not stream.*output.kind: text"):
            mon.watch(stream)
    finally:
        mon.close()


class _Frame:
    """A chunk of a stream whose outputs are not read (an audio or video frame)."""


@pytest.mark.parametrize("is_async", [False, True])
def test_a_stream_whose_outputs_are_not_read_keeps_no_chunk(is_async: bool) -> None:
    """Under ``output.kind: none`` the wrapper kept every chunk until the stream ended, for nothing:
    a stream of frames held them all (session 38). Each frame is now let go once its consumer has it;
    the call is recorded as before. With an ``embedding=`` extractor the chunks are still kept (it
    reads the answer)."""
    import gc
    import weakref

    mon, _ = _monitor({"features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}})
    alive: list[int] = []
    try:
        refs: list[weakref.ref[_Frame]] = []

        def frames():
            for _ in range(5):
                frame = _Frame()
                refs.append(weakref.ref(frame))
                yield frame
            del frame  # this generator's own reference to the last one
            gc.collect()
            alive.append(sum(r() is not None for r in refs))  # the frames still held, at the stream's end

        if is_async:
            @mon.watch
            async def stream(prompt: str):
                for frame in frames():
                    yield frame

            async def consume() -> int:
                n = 0
                async for _ in stream("play"):
                    n += 1
                return n

            assert asyncio.run(consume()) == 5
        else:
            @mon.watch
            def stream(prompt: str):
                yield from frames()

            assert sum(1 for _ in stream("play")) == 5
        mon.flush()
        assert mon.store.value("monitor_calls") == 1
        assert alive[0] <= 1, alive  # at most the last one, still in the consumer's and the wrapper's hands (5 before)

        @mon.watch(embedding=lambda chunks: [[float(len(chunks))]])
        def embedded(prompt: str):
            yield from frames()

        alive.clear()
        refs.clear()
        assert sum(1 for _ in embedded("play")) == 5
        assert alive == [5], alive  # the extractor reads them: kept
    finally:
        mon.close()
