"""The lean proxy's deadline queue (:class:`monitor.server.leanproxy.Deadlines`): one loop timer
for the first deadline of every exchange of a listener, instead of a timer per exchange. What it
must keep from the timers it replaced: each live exchange is called once, at (not before) its
deadline, in the order they started; a finished exchange is never called; and an exchange started
from inside a call is served too."""

from __future__ import annotations

import asyncio

from monitor.server.leanproxy import _EARLY_S, Deadlines


class _Ex:
    """Stands in for an exchange: what the queue reads and calls."""

    def __init__(self, name: str, calls: list[tuple[str, float]], loop: asyncio.AbstractEventLoop,
                 then: "list[_Ex] | None" = None) -> None:
        self.name = name
        self.calls = calls
        self.loop = loop
        self.deadline: list | None = None
        self.then = then or []
        self.queue: Deadlines | None = None

    def timed_out(self) -> None:
        self.calls.append((self.name, self.loop.time()))
        for ex in self.then:  # e.g. a 504 answered, and the connection's next request started
            assert self.queue is not None
            ex.deadline = self.queue.add(ex)

    def finish(self) -> None:  # what _Exchange._finished does with its entry
        if self.deadline is not None:
            self.deadline[1] = None
            self.deadline = None


def test_live_exchanges_are_called_once_at_their_deadline_in_order_and_finished_ones_never() -> None:
    async def run() -> tuple[list[tuple[str, float]], dict[str, float], int]:
        loop = asyncio.get_running_loop()
        calls: list[tuple[str, float]] = []
        dl = Deadlines(loop, 0.05)
        due: dict[str, float] = {}
        exs = {}
        for name in ("a", "b", "c", "d"):
            ex = exs[name] = _Ex(name, calls, loop)
            ex.deadline = dl.add(ex)
            due[name] = ex.deadline[0]
            await asyncio.sleep(0.01)
        exs["a"].finish()  # answered in time: its entry is void
        exs["c"].finish()
        await asyncio.sleep(0.15)
        return calls, due, len(dl.queue)

    calls, due, left = asyncio.run(run())
    assert [name for name, _ in calls] == ["b", "d"]
    for name, at in calls:
        assert at >= due[name] - _EARLY_S, (name, at, due[name])
    assert left == 0  # every entry dropped once passed or void


def test_void_entries_at_the_front_are_dropped_as_exchanges_are_added() -> None:
    async def run() -> int:
        loop = asyncio.get_running_loop()
        dl = Deadlines(loop, 60.0)
        for i in range(1000):  # answered one after the other, well before the timeout
            ex = _Ex(str(i), [], loop)
            ex.deadline = dl.add(ex)
            ex.finish()
        size = len(dl.queue)
        dl.close()
        return size

    assert asyncio.run(run()) == 1  # only the last one's entry waits, not a thousand


def test_an_exchange_added_from_inside_a_call_is_served_and_the_timer_is_not_doubled() -> None:
    async def run() -> tuple[list[str], bool]:
        loop = asyncio.get_running_loop()
        calls: list[tuple[str, float]] = []
        dl = Deadlines(loop, 0.03)
        nxt = _Ex("next", calls, loop)
        first = _Ex("first", calls, loop, then=[nxt])
        first.queue = nxt.queue = dl
        first.deadline = dl.add(first)
        await asyncio.sleep(0.12)
        return [name for name, _ in calls], dl.timer is None

    names, idle = asyncio.run(run())
    assert names == ["first", "next"]
    assert idle  # nothing left: no timer armed
