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
        # a timeout long against the 4 x 10 ms of adding them: on a loaded machine "a" reached its
        # deadline of 50 ms before it was finished, and was called
        dl = Deadlines(loop, 0.5)
        due: dict[str, float] = {}
        exs = {}
        for name in ("a", "b", "c", "d"):
            ex = exs[name] = _Ex(name, calls, loop)
            ex.deadline = dl.add(ex)
            due[name] = ex.deadline[0]
            await asyncio.sleep(0.01)
        exs["a"].finish()  # answered in time: its entry is void
        exs["c"].finish()
        await asyncio.sleep(0.8)
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


def test_finished_exchanges_behind_a_long_lived_one_do_not_pile_up() -> None:
    """A stream open for the whole timeout holds the front of the queue: the many requests
    answered meanwhile leave void entries behind it, which are dropped once the queue doubles."""

    async def run() -> tuple[int, list[str]]:
        loop = asyncio.get_running_loop()
        calls: list[tuple[str, float]] = []
        dl = Deadlines(loop, 60.0)
        stream = _Ex("stream", calls, loop)
        stream.deadline = dl.add(stream)
        for i in range(50_000):
            ex = _Ex(str(i), calls, loop)
            ex.deadline = dl.add(ex)
            ex.finish()
        live = _Ex("live", calls, loop)
        live.deadline = dl.add(live)
        size = len(dl.queue)
        names = [entry[1].name for entry in dl.queue if entry[1] is not None]
        dl.close()
        return size, names

    size, names = asyncio.run(run())
    assert size <= 2 * 4096 + 2, size
    assert names == ["stream", "live"]  # the live ones kept, in order


class _Clock:
    """A loop whose time is set by hand: which timer the queue arms, exactly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.armed: list[float] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: object) -> asyncio.TimerHandle:
        self.armed.append(when)
        return asyncio.TimerHandle(when, lambda: None, (), asyncio.new_event_loop())


def test_an_exchange_added_from_inside_a_call_does_not_delay_the_deadlines_before_its_own() -> None:
    """a times out and its connection's next request (c) starts then; b, started before c, is due
    before c: the timer must wait for b, not for c."""
    clock = _Clock()
    calls: list[tuple[str, float]] = []
    dl = Deadlines(clock, 10.0)  # type: ignore[arg-type]
    c = _Ex("c", calls, clock)  # type: ignore[arg-type]
    a = _Ex("a", calls, clock, then=[c])  # type: ignore[arg-type]
    b = _Ex("b", calls, clock)  # type: ignore[arg-type]
    a.queue = c.queue = dl
    a.deadline = dl.add(a)
    clock.now = 4.0
    b.deadline = dl.add(b)
    clock.now = 10.0
    dl._expire()
    assert [name for name, _ in calls] == ["a"]
    assert clock.armed[-1] == 14.0  # b's deadline (c's is 20.0)
    clock.now = 14.0
    dl._expire()
    assert [name for name, _ in calls] == ["a", "b"]
    assert clock.armed[-1] == 20.0
