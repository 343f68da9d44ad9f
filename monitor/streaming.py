"""Watching a generator function: a streamed answer (an LLM yielding tokens), recorded when it ends.

A generator function's call returns at once; its answer comes as the caller iterates. The wrappers
here pass every chunk on unchanged (``send``, ``throw`` and ``close`` reach the function as they
would without the monitor), keep the chunks, and record one call when the stream ends: finished,
raised (the exception counted and re-raised unchanged), or closed early by its consumer (a client
that went away: the answer so far). Only for models whose answers are text or not read
(``output.kind: text`` or ``none``); scores do not stream. Under ``none`` (and no ``embedding=``
extractor) the chunks are not kept: nothing reads them, and a stream of audio or video frames
held every frame until it ended.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Generator
from time import perf_counter
from typing import Any

__all__ = ["answer_of", "watch_async_stream", "watch_stream"]

#: record(args, kwargs, out, latency) and record_error(args, kwargs, exc, latency) of the decorator
Record = Callable[[tuple[Any, ...], dict[str, Any], Any, float], None]


def answer_of(chunks: list[Any]) -> Any:
    """The streamed answer: its text chunks joined (bytes decoded), else the chunks as they came
    (what an ``outputs=`` extractor of the decorator receives as well)."""
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    if all(isinstance(c, (bytes, bytearray)) for c in chunks):
        return b"".join(chunks).decode("utf-8", "replace")
    return chunks


def _ended(record: Record, args: tuple[Any, ...], kwargs: dict[str, Any], chunks: list[Any] | None, joined: bool,
           t0: float) -> None:
    """Record a call whose stream ended (finished, or closed early: the answer so far)."""
    answer = None if chunks is None else answer_of(chunks) if joined else chunks
    record(args, kwargs, answer, perf_counter() - t0)


def watch_stream(fn: Callable[..., Generator[Any, Any, Any]], record: Record, record_error: Record,
                 joined: bool, keep: bool = True) -> Callable[..., Generator[Any, Any, Any]]:
    """``fn`` (a generator function) wrapped to record each call when its stream ends; the
    answer is :func:`answer_of` the chunks when ``joined``, else the list of chunks; None when
    not ``keep`` (nothing reads it)."""

    @functools.wraps(fn)
    def stream_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        t0 = perf_counter()
        chunks: list[Any] | None = [] if keep else None
        gen = fn(*args, **kwargs)
        try:
            value = next(gen)
            while True:
                if chunks is not None:
                    chunks.append(value)
                try:
                    sent = yield value
                except GeneratorExit:
                    gen.close()
                    raise
                except BaseException as thrown:  # noqa: BLE001 - the consumer's throw() reaches the function
                    value = gen.throw(thrown)
                else:
                    value = gen.send(sent)
        except StopIteration as stop:
            _ended(record, args, kwargs, chunks, joined, t0)
            return stop.value
        except GeneratorExit:  # closed early by its consumer: the answer so far
            _ended(record, args, kwargs, chunks, joined, t0)
            raise
        except Exception as exc:
            record_error(args, kwargs, exc, perf_counter() - t0)
            raise

    return stream_wrapper


def watch_async_stream(fn: Callable[..., AsyncGenerator[Any, Any]], record: Record, record_error: Record,
                       joined: bool, keep: bool = True) -> Callable[..., AsyncGenerator[Any, Any]]:
    """:func:`watch_stream` for an async generator function (a FastAPI streaming endpoint)."""

    @functools.wraps(fn)
    async def async_stream_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        t0 = perf_counter()
        chunks: list[Any] | None = [] if keep else None
        gen = fn(*args, **kwargs)
        try:
            value = await gen.__anext__()
            while True:
                if chunks is not None:
                    chunks.append(value)
                try:
                    sent = yield value
                except GeneratorExit:
                    await gen.aclose()
                    raise
                except BaseException as thrown:  # noqa: BLE001 - the consumer's athrow() reaches the function
                    value = await gen.athrow(thrown)
                else:
                    value = await gen.asend(sent)
        except StopAsyncIteration:
            _ended(record, args, kwargs, chunks, joined, t0)
        except GeneratorExit:
            _ended(record, args, kwargs, chunks, joined, t0)
            raise
        except Exception as exc:
            record_error(args, kwargs, exc, perf_counter() - t0)
            raise

    return async_stream_wrapper
