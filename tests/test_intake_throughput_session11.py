"""Session 11, intake throughput (issue #7): the batch fast parser of ``POST /v1/events``.

``parse_fast_batch`` parses an NDJSON batch whose events carry the same fields a column at a
time; whatever it returns must be exactly what :func:`parse_fast` returns event by event (which a
property test of ``test_server_fuzz`` holds to ``parse_event``), and it must be taken whenever
every event of such a batch is a fast-path prediction.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.events import MAX_LABEL_CHARS
from monitor.server.intake import parse_batch, parse_fast, parse_fast_batch

NOW = 1_700_000_000.0
KEYS = ["model", "timestamp", "inputs", "outputs", "client", "request_id", "segment", "latency_s", "embedding", "type", "x"]
values = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(10**307, 10**309), st.floats(),
    st.text(max_size=3), st.text(min_size=MAX_LABEL_CHARS - 1, max_size=MAX_LABEL_CHARS + 2),
    st.lists(st.floats(), max_size=3), st.sampled_from(["iris", "other", 7]),
)


@st.composite
def batches(draw: Any) -> list[Any]:
    """Batches of events with one key set (mostly with inputs and outputs), now and then a stray
    event of other keys or another type."""
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=6))
    if draw(st.booleans()):
        keys = list(dict.fromkeys(["inputs", "outputs", *keys]))
    n = draw(st.integers(1, 6))
    out: list[Any] = [{k: draw(values) for k in keys} for _ in range(n)]
    if draw(st.integers(0, 5)) == 0:
        out.insert(draw(st.integers(0, n)), draw(st.one_of(st.dictionaries(st.sampled_from(KEYS), values, max_size=4),
                                                             values)))
    return out


def _types(events: list[tuple[Any, ...]]) -> list[tuple[type, ...]]:
    return [tuple(map(type, e)) for e in events]


@settings(max_examples=600, deadline=None)
@given(batch=batches())
def test_batch_parser_is_the_event_parser_column_by_column(batch: list[Any]) -> None:
    got = parse_fast_batch(batch, NOW)
    try:
        singles = [parse_fast(obj, NOW) for obj in batch]
    except OverflowError:  # an integer timestamp past float range (unsafe_json refuses it before)
        assert got is None  # the event-by-event path then does what it does
        return
    same_keys = all(isinstance(o, dict) for o in batch) and len({frozenset(o) for o in batch}) == 1
    if all(s is not None for s in singles) and same_keys:
        assert got is not None, "a batch of fast-path predictions with the same fields took the slow path"
    if got is None:
        return
    models, events = got
    assert all(s is not None for s in singles)
    assert events == [s[1] for s in singles] and _types(events) == _types([s[1] for s in singles])
    assert (models or [None] * len(batch)) == [s[0] for s in singles]


class _Sidecar:
    """What parse_batch asks of the sidecar: its settings and model resolution (two models)."""

    class settings:  # noqa: N801 - attribute access as on SidecarSettings
        max_batch_events = 10_000

    def resolve(self, name: str | None, field: str = "model") -> str:
        from monitor.server.errors import IntakeError

        if name not in (None, "iris", "7"):
            raise IntakeError(404, field, f"no model named {name!r} here", "unknown_model")
        return "iris" if name is None else name


def test_parse_batch_gives_the_same_pairs_through_the_batch_parser(monkeypatch: Any) -> None:
    """The pairs parse_batch returns (and the models they resolve to) are the same with the batch
    parser and event by event, for one model and for per-event models."""
    import monitor.server.intake as intake

    side = _Sidecar()
    rows = [{"inputs": [1.0, 2.0], "outputs": [0.3, 0.7], "client": f"c{i}", "request_id": f"r{i}", "timestamp": 5 + i}
            for i in range(5)]
    cases = [rows, [{**r, "model": m} for r, m in zip(rows, ["iris", 7, "iris", None, "7"])]]
    for values in cases:
        fast = parse_batch(side, values, default_model=None, endpoint="events")  # type: ignore[arg-type]
        monkeypatch.setattr(intake, "parse_fast_batch", lambda values, now: None)
        slow = parse_batch(side, values, default_model=None, endpoint="events")  # type: ignore[arg-type]
        monkeypatch.undo()
        assert [(m, e[:1] + e[2:]) for m, e in fast] == [(m, e[:1] + e[2:]) for m, e in slow]
        assert [e[1] for _, e in fast] == [float(5 + i) for i in range(5)]
    assert [m for m, _ in parse_batch(side, cases[1], default_model=None, endpoint="events")] == [  # type: ignore[arg-type]
        "iris", "7", "iris", "iris", "7"]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 40), d=st.integers(1, 5), width=st.sampled_from([1, 3, 11, 300]), seed=st.integers(0, 2**16))
def test_edge_counts_are_the_broadcast_comparison_sum(n: int, d: int, width: int, seed: int) -> None:
    """The drift binner's counts of edges at or below each value: the same integers as the
    (n, d, width) comparison summed, with NaN, infinities, ties with an edge and inf padding."""
    import numpy as np

    from monitor.detectors.drift import edge_counts

    rng = np.random.default_rng(seed)
    edges = np.sort(rng.normal(size=(d, width)), axis=1)
    edges[:, width // 2:] = np.inf if seed % 2 else edges[:, width // 2:]
    v = rng.normal(size=(n, d))
    if n:
        v[0, 0] = edges[0, 0]
        v[rng.random(size=(n, d)) < 0.1] = np.nan
        v[rng.random(size=(n, d)) < 0.05] = np.inf
        v[rng.random(size=(n, d)) < 0.05] = -np.inf
    got = edge_counts(v, edges)
    assert got.dtype == np.int64
    assert np.array_equal(got, (v[:, :, None] >= edges[None, :, :]).sum(axis=2, dtype=np.int64))


def _reference_lookup(lru: Any, max_clients: int, free: list[int], clients: list[Any]) -> tuple[list[int], list[int], list[str]]:
    """The client table's lookup walked row by row (what it did before resolving each distinct id
    once): slots, created slots, evicted ids, on a plain ordered dict."""
    slots, created, evicted, seen, keys, last = [], [], [], {}, {}, {}
    for i, c in enumerate(clients):
        s = seen.get(c)
        if s is None:
            key = "anonymous" if c is None else c
            s = lru.get(key)
            if s is None:
                if free:
                    s = free.pop()
                else:
                    old, s = lru.popitem(last=False)
                    evicted.append(old)
                lru[key] = s
                created.append(s)
            else:
                lru.move_to_end(key)
            seen[c], keys[c] = s, key
        last[c] = i
        slots.append(s)
    for c in sorted(last, key=last.__getitem__):
        lru.move_to_end(keys[c])
    return slots, created, evicted


@settings(max_examples=200, deadline=None)
@given(batches=st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e", None, "anonymous"]), max_size=12), max_size=6),
       max_clients=st.integers(1, 4))
def test_client_lookup_resolves_each_id_once_as_row_by_row(batches: list[list[Any]], max_clients: int) -> None:
    """Slots, new slots, evictions and the recency order after each batch are those of the
    row-by-row walk, with evictions of earlier clients and None next to "anonymous"."""
    from collections import OrderedDict

    import numpy as np

    from monitor.detectors.probing.clients import ClientTable

    table = ClientTable(max_clients, salt="s", raw_ids=True)
    lru: OrderedDict[str, int] = OrderedDict()
    free = list(range(max_clients - 1, -1, -1))
    for batch in batches:
        if len({"anonymous" if c is None else c for c in batch}) > max_clients:
            continue  # the detector hands over at most max_clients rows at a time (more ids: a KeyError, as before)
        got = table.lookup(np.array(batch, dtype=object))
        slots, created, evicted = _reference_lookup(lru, max_clients, free, batch)
        assert got.slots.tolist() == slots and got.created == created
        assert [name for _, _, name in got.evicted] == evicted
        assert list(table._lru.items()) == list(lru.items())


def test_a_drain_of_mixed_kinds_and_one_of_predictions_only() -> None:
    """The pipeline splits a drain by kind once (predictions only: no other pass) and takes the
    newest time from the drain's times: errors, feedback and predictions are each counted, and
    the clock is the newest event's, whichever kind it is."""
    from monitor.core import Monitor
    from monitor.events import ERROR, FEEDBACK, PREDICTION

    mon = Monitor(config={"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities"}}, live=False,
                  start_worker=False, registry=__import__("prometheus_client").CollectorRegistry())
    try:
        preds = [(PREDICTION, 100.0 + i, [1.0, 2.0], [0.2, 0.8], None, "c", f"r{i}", None, None) for i in range(5)]
        mon.pipeline.process(preds)
        assert mon.store.value("monitor_calls") == 5 and mon.pipeline.clock == 104.0
        mon.pipeline.process([(ERROR, 107.5, "ValueError", None, "c"), *preds[:2],
                              (FEEDBACK, 106.0, ["r0", "r1"], [1, 0])])
        assert mon.store.value("monitor_errors", ("ValueError",)) == 1 and mon.store.value("monitor_calls") == 8
        assert mon.pipeline.clock == 107.5 and mon.store.value("monitor_last_event_timestamp_seconds") == 107.5
    finally:
        mon.close()
