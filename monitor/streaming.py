"""Watching a generator function: a streamed answer (an LLM yielding tokens), recorded when it ends.

A generator function's call returns at once; its answer comes as the caller iterates. The wrappers
here pass every chunk on unchanged (``send``, ``throw`` and ``close`` reach the function as they
would without the monitor), keep the chunks, and record one call when the stream ends: finished,
raised (the exception counted and re-raised unchanged), or closed early by its consumer (a client
that went away: the answer so far). Only for models whose answers are text or not read
(``output.kind: text`` or ``none``); scores do not stream. Under ``none`` (and no ``embedding=``
extractor) the chunks are not kept: nothing reads them, and a stream of audio or video frames
held every frame until it ended. Under ``text`` a stream of text (every chunk ``str``, or every
chunk bytes) keeps what the text descriptors read (:mod:`monitor.text`): its first
:data:`~monitor.text_prefix.MAX_TEXT_CHARS` characters and the count of all of them, the answer then a
:class:`~monitor.text_prefix.TextPrefix` that they describe exactly as the whole text; the whole answer
is kept only for an ``outputs=`` or ``embedding=`` extractor, which reads it.
"""

from __future__ import annotations

import codecs
import functools
from collections.abc import AsyncGenerator, Callable, Generator
from time import perf_counter
from typing import Any

from monitor.text_prefix import MAX_TEXT_CHARS, TextPrefix

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


class _Whole:
    """Every chunk kept: the answer an extractor reads (:func:`answer_of` them when ``joined``)."""

    __slots__ = ("add", "chunks", "joined")

    def __init__(self, joined: bool) -> None:
        self.chunks: list[Any] = []
        self.add = self.chunks.append
        self.joined = joined

    def answer(self) -> Any:
        return answer_of(self.chunks) if self.joined else self.chunks


class _Text:
    """What the text descriptors read of a stream joined as :func:`answer_of` joins it, and no
    more: the first ``cap`` characters of its text and the count of all of them (bytes decoded as
    they come, a character split across two chunks decoded whole, as the joined bytes decode).
    The chunks themselves are kept while there are at most ``cap`` of them holding at most ``cap``
    characters (or bytes), for a stream that turns out not to be text of one type (dicts, str then
    bytes), whose answer is then the list of chunks as :func:`answer_of` gives it; past that, such a
    stream's list begins with the text before it (a :class:`~monitor.text_prefix.TextPrefix` when long),
    in place of those chunks."""

    __slots__ = ("cap", "chunks", "decoder", "head", "held", "kind", "length", "raw", "size")

    def __init__(self, cap: int = MAX_TEXT_CHARS) -> None:
        self.cap = cap
        self.kind: type | None = None  # str or bytes, once a chunk came
        self.head: list[str] = []  # the first ``cap`` characters, in pieces
        self.held = 0  # characters in ``head``
        self.length = 0  # characters of the whole text
        self.raw: list[Any] | None = []  # the chunks while few and short
        self.size = 0  # characters (or bytes) of ``raw``
        self.decoder: Any = None
        self.chunks: list[Any] | None = None  # not text of one type: every chunk, as they came

    def add(self, chunk: Any) -> None:
        if self.chunks is not None:
            self.chunks.append(chunk)
            return
        kind = str if isinstance(chunk, str) else bytes if isinstance(chunk, (bytes, bytearray)) else None
        if kind is None or (kind is not self.kind and self.kind is not None):
            self.chunks = self.raw if self.raw is not None else [self._text()]
            self.chunks.append(chunk)
            self.raw = self.head = None  # type: ignore[assignment]
            return
        if self.kind is None:
            self.kind = kind
            if kind is bytes:
                self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        raw = self.raw
        if raw is not None:
            self.size += len(chunk)
            if self.size > self.cap or len(raw) >= self.cap:
                self.raw = None
            else:
                raw.append(chunk)
        self._take(chunk if kind is str else self.decoder.decode(chunk))

    def _take(self, text: str) -> None:
        self.length += len(text)
        if self.held < self.cap:
            piece = text[:self.cap - self.held]
            head = self.head
            head.append(piece)
            self.held += len(piece)
            if len(head) >= 256:  # a token a chunk: a few pieces, not ``cap`` strings
                self.head = ["".join(head)]

    def _text(self) -> str:
        if self.decoder is not None:
            self._take(self.decoder.decode(b"", final=True))
            self.decoder = None
        head = "".join(self.head)
        self.head = [head]
        return head if self.length <= self.cap else TextPrefix(head, self.length)

    def answer(self) -> Any:
        return self.chunks if self.chunks is not None else self._text()


def _ended(record: Record, args: tuple[Any, ...], kwargs: dict[str, Any], kept: _Whole | _Text | None,
           t0: float) -> None:
    """Record a call whose stream ended (finished, or closed early: the answer so far)."""
    record(args, kwargs, None if kept is None else kept.answer(), perf_counter() - t0)


def _kept(keep: bool, joined: bool, whole: bool) -> _Whole | _Text | None:
    return None if not keep else _Whole(joined) if whole or not joined else _Text()


def watch_stream(fn: Callable[..., Generator[Any, Any, Any]], record: Record, record_error: Record,
                 joined: bool, keep: bool = True, whole: bool = False) -> Callable[..., Generator[Any, Any, Any]]:
    """``fn`` (a generator function) wrapped to record each call when its stream ends; the
    answer is :func:`answer_of` the chunks when ``joined``, else the list of chunks; None when
    not ``keep`` (nothing reads it). A joined text answer keeps only what its descriptors read
    (:class:`_Text`) unless ``whole`` (an extractor reads the answer)."""

    @functools.wraps(fn)
    def stream_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        t0 = perf_counter()
        kept = _kept(keep, joined, whole)
        gen = fn(*args, **kwargs)
        try:
            value = next(gen)
            while True:
                if kept is not None:
                    kept.add(value)
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
            _ended(record, args, kwargs, kept, t0)
            return stop.value
        except GeneratorExit:  # closed early by its consumer: the answer so far
            _ended(record, args, kwargs, kept, t0)
            raise
        except Exception as exc:
            record_error(args, kwargs, exc, perf_counter() - t0)
            raise

    return stream_wrapper


def watch_async_stream(fn: Callable[..., AsyncGenerator[Any, Any]], record: Record, record_error: Record,
                       joined: bool, keep: bool = True, whole: bool = False) -> Callable[..., AsyncGenerator[Any, Any]]:
    """:func:`watch_stream` for an async generator function (a FastAPI streaming endpoint)."""

    @functools.wraps(fn)
    async def async_stream_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        t0 = perf_counter()
        kept = _kept(keep, joined, whole)
        gen = fn(*args, **kwargs)
        try:
            value = await gen.__anext__()
            while True:
                if kept is not None:
                    kept.add(value)
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
            _ended(record, args, kwargs, kept, t0)
        except GeneratorExit:
            _ended(record, args, kwargs, kept, t0)
            raise
        except Exception as exc:
            record_error(args, kwargs, exc, perf_counter() - t0)
            raise

    return async_stream_wrapper
