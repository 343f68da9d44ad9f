"""A streamed text answer watched in a forwarding worker, end to end against a real sidecar.

A ForwardingMonitor has no config of its own, so ``watch()`` could not tell that its model's
answers are text: every generator function (a streaming LLM endpoint, the usual way one answers)
was refused at decoration, with a fix naming ``output.kind: text``, a config the worker does not
have. ``ForwardingMonitor(..., output_kind="text")`` now says it: the stream is recorded when it
ends, its tokens joined into the answer, forwarded to the sidecar and described there as the text
feature ``output``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

import monitor
from monitor.forwarding import ForwardingMonitor
from tests.sidecar_support import quiet_factory, start_sidecar, total, wait_until
from tests.test_output_kind_text_sidecar import GEN, _answer_lengths, _monitored, _spy


@contextlib.contextmanager
def forwarding_to_a_sidecar(tmp_path) -> Iterator[tuple[Any, ForwardingMonitor]]:
    """A sidecar serving GEN (its detectors' batches kept as ``sc.seen``) and a text worker's
    ForwardingMonitor sending to it, both closed after."""
    sock = str(tmp_path / "gen.sock")
    sc = start_sidecar({"models": [GEN], "server": {"forward": {"unix": sock}}}, tmp_path,
                       factory=quiet_factory(start_worker=False))
    fm = ForwardingMonitor("gen", f"unix://{sock}", flush_interval_s=0.01, output_kind="text")
    try:
        _spy(sc)
        yield sc, fm
    finally:
        fm.close()
        sc.close()


def test_a_forwarded_streamed_answer_reaches_the_sidecar_as_the_text_output(tmp_path) -> None:
    with forwarding_to_a_sidecar(tmp_path) as (sc, fm):
        @monitor.watch(monitor=fm)
        def generate(prompt: str):
            for token in ("Rain ", "on ", "the ", "roof."):
                yield token

        @monitor.watch(monitor=fm)
        async def agenerate(prompt: str):
            for token in ("Bonjour", "!"):
                yield token

        async def consume() -> list[str]:
            return [t async for t in agenerate("Say hello in French.")]

        assert list(generate("Write a haiku about rain.")) == ["Rain ", "on ", "the ", "roof."]
        assert asyncio.run(consume()) == ["Bonjour", "!"]
        fm.flush()
        assert fm.counters().dropped == {}, fm.counters().dropped
        assert wait_until(lambda: total(sc.metrics(), "monitor_forward_events_received_total") == 2)
        assert _monitored(sc) == (2.0, {})
        assert _answer_lengths(sc) == [len("Bonjour!"), len("Rain on the roof.")]


def test_a_forwarding_monitor_not_told_the_kind_refuses_a_stream_naming_output_kind(tmp_path) -> None:
    fm = ForwardingMonitor("gen", f"unix://{tmp_path / 'none.sock'}", start=False)
    try:
        def generate(prompt: str):
            yield "token"

        with pytest.raises(TypeError, match=r"ForwardingMonitor\(\.\.\., output_kind='text'\)"):
            monitor.watch(generate, monitor=fm)
        unread = ForwardingMonitor("gen", f"unix://{tmp_path / 'none.sock'}", start=False, output_kind="none")
        try:
            assert unread.reads_outputs is False
            assert list(monitor.watch(generate, monitor=unread)("Hi.")) == ["token"]
        finally:
            unread.close()
    finally:
        fm.close()


@pytest.mark.parametrize("kwargs, said", [
    ({"output_kind": "txt"}, r"output_kind='txt'.*one of probabilities, .*text"),
    ({"output_kind": "text", "reads_outputs": False}, r"drop reads_outputs=False, or write output_kind='none'"),
])
def test_a_wrong_output_kind_is_refused_naming_the_fix(tmp_path, kwargs, said) -> None:
    with pytest.raises(ValueError, match=said):
        ForwardingMonitor("gen", f"unix://{tmp_path / 'x.sock'}", start=False, **kwargs)
