"""The data path process counts a tapped exchange in its shared tally *before* the client can hold
the whole answer, so that a kill -9 between the two never leaves an answered request whose tap
nothing counted (the sidecar counts ``made - arrived`` as ``process_lost``)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

from monitor.server.channel import FrameWriter
from monitor.server.dataplane_child import ChannelSink
from monitor.server.leanproxy import _Exchange
from monitor.server.proxyroutes import Target
from monitor.server.tally import SharedTally


class _RecordingSink:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def tapping(self) -> None:
        self.events.append("tapping")

    def answered(self, route: Any, status: int, upstream_seconds: float, request_seconds: float, tap: Any) -> None:
        self.events.append("answered" if tap is not None else "answered untapped")

    def count(self, name: str, labels: tuple[str, ...]) -> None:
        self.events.append(name)

    def request_time(self, status: int, seconds: float) -> None:
        pass


def _exchange(events: list[str], tapped: bool) -> _Exchange:
    lean = SimpleNamespace(wanted=set(), prefix=b"", host_header=b"model:8080", sink=_RecordingSink(events),
                           pool=SimpleNamespace(release=lambda up, keep: None), max_body=1 << 20, client_header=None,
                           loop=SimpleNamespace(time=lambda: 0.0), timeout=60.0)
    conn = SimpleNamespace(lean=lean, peer="127.0.0.1", write=lambda data: events.append("client write"),
                           exchange_done=lambda ex: events.append("done"))
    route = Target(False, object() if tapped else None, "iris", "infer")
    ex = _Exchange(conn, b"POST", b"/v2/models/iris/infer", "1.1", [(b"Content-Length", b"2")], True, route)
    ex.request_body(b"{}")
    ex.request_done()
    return ex


def _answer(ex: _Exchange, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> None:
    ex.response_head(200, b"OK", headers, True)
    for chunk in chunks:
        ex.response_body(chunk)
    ex.response_done(SimpleNamespace(closed=False), False)


def test_a_tapped_answer_is_counted_before_its_bytes_go_to_the_client() -> None:
    events: list[str] = []
    _answer(_exchange(events, tapped=True), [(b"Content-Length", b"2")], [b"{}"])  # buffered: written at the end
    assert events.index("tapping") < events.index("client write") < events.index("answered")
    assert events.count("tapping") == 1


def test_a_chunked_answer_is_counted_before_its_last_chunk() -> None:
    events: list[str] = []
    _answer(_exchange(events, tapped=True), [(b"Transfer-Encoding", b"chunked")], [b"{", b"}"])
    writes = [i for i, e in enumerate(events) if e == "client write"]  # head, two chunks, the last chunk
    assert len(writes) == 4 and writes[-2] < events.index("tapping") < writes[-1]


def test_an_untapped_route_is_not_counted() -> None:
    events: list[str] = []
    _answer(_exchange(events, tapped=False), [(b"Content-Length", b"2")], [b"{}"])
    assert "tapping" not in events and "answered untapped" in events


def test_the_channel_sink_counts_each_tap_once_when_it_is_announced() -> None:
    async def run() -> list[int]:
        a, b = socket.socketpair()
        tally = SharedTally.create()
        try:
            sink = ChannelSink(FrameWriter(a, asyncio.get_running_loop()), asyncio.get_running_loop(), 1 << 20, tally)
            seen = [tally.value]
            sink.tapping()
            seen.append(tally.value)
            sink.answered(Target(False, None, "iris", "infer"), 200, 0.001, 0.002,
                          ("iris", "c", "id", b"{}", b"{}", None, None, 0.0))
            seen.append(tally.value)  # the tap arriving does not count it again
            sink.flush(force=True)
            return seen
        finally:
            tally.close()
            a.close()
            b.close()

    assert asyncio.run(run()) == [0, 1, 1]
