"""Session 6's review: what the changes of that session had to get right and did not (each test
failed before its fix)."""

from __future__ import annotations

import asyncio

from tests.conftest import load_benchmark


class _Server(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length framed, answering every request at once, except the
    first ``WARM`` ones for the path ``slow``, answered after ``delay`` (a slow warm-up). It
    notes, for every request on the other path past its warm-up, whether the slow warm-up was
    still unanswered when it arrived."""

    WARM = 16

    def __init__(self, state: dict) -> None:
        self.state = state
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            self.buf = rest[length:]
            self._request(head.split(b" ")[1])

    def _request(self, path: bytes) -> None:
        st = self.state
        slow = path.startswith(b"/slow")
        st["seen", slow] = st.get(("seen", slow), 0) + 1
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
        if slow and st["seen", slow] <= self.WARM:
            st["slow_warm_pending"] = st.get("slow_warm_pending", 0) + 1
            asyncio.get_running_loop().call_later(st["delay"], self._late, answer)
            return
        if not slow and st["seen", slow] > self.WARM and st.get("slow_warm_pending", 0):
            st["early"] = st.get("early", 0) + 1
        assert self.transport is not None
        self.transport.write(answer)

    def _late(self, answer: bytes) -> None:
        self.state["slow_warm_pending"] -= 1
        assert self.transport is not None
        self.transport.write(answer)


def test_the_paired_streams_start_their_schedules_once_both_are_warm():
    """``bench_proxy.open_loop`` runs the proxied stream and its direct control together: their
    fixed schedules must start once both have warmed their connections, whatever that takes.
    A start fixed before the warm-ups (0.3 s ahead) lets the faster stream run while the other
    still warms, and makes the slower one send every request it is behind on at once, a burst
    that lands in its percentiles (the p99 of 1,000 requests is the 10 slowest)."""
    bench = load_benchmark("bench_proxy")

    async def run() -> tuple[dict, int, int]:
        state: dict = {"delay": 0.6}
        server = await asyncio.get_running_loop().create_server(lambda: _Server(state), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            lat, errors, control = await bench.open_loop(f"http://127.0.0.1:{port}/fast", 200.0, 0.5,
                                                         f"http://127.0.0.1:{port}/slow", 20.0)
        finally:
            server.close()
        assert errors == 0
        return state, len(lat), len(control)

    state, n, n_control = asyncio.run(run())
    assert (n, n_control) == (100, 10)  # every request of both schedules answered and recorded
    assert state.get("early", 0) == 0, f"{state['early']} measured requests sent while the other stream warmed up"
