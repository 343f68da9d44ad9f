"""A client given per row reaches the sidecar's model as it reaches an in-process Monitor's (s38h).

In code ``observe(..., client=[...])`` takes one client per row, as ``segment`` and
``request_id`` do (a batching server scoring several callers' requests in one call), and a list of
another length is counted in ``monitor_row_arguments_dropped_total{argument="client"}``. The
event format took one client per event: ``POST /v1/events`` refused a list (``bad_client``), and a
forwarding worker wrote it as one client named ``"['c1', 'c1']"``. A client over 200 characters was
cut by the sidecar, never in code, where the probing detector keeps one over 256 characters by
digest: two bearer tokens sharing their first 200 characters were one client of the sidecar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from monitor.config import DetectorConfig, MonitorConfig
from monitor.core import Monitor
from tests import probing_streams as S
from tests.sidecar_support import http, start_sidecar, total

__all__: list[str] = []

T0 = 1_700_000_000.0
FEATURES = [f"f{i}" for i in range(S.D)]
OUTPUT = {"kind": "probabilities", "classes": ["a", "b", "c", "d"]}
PROBING = {"client_id_salt": "s", "raw_client_ids": True}
#: two tokens of one issuer: their first 300 characters are the same (over 200: a cut made them one)
TOKEN_A, TOKEN_B = "eyJ" + "h" * 297 + "-alice", "eyJ" + "h" * 297 + "-bob"


def _in_process() -> Monitor:
    cfg = MonitorConfig(model="m", detectors=(DetectorConfig("probing", PROBING),))
    return Monitor(config=cfg, reference=S.reference(), registry=CollectorRegistry(), start_worker=False, live=False)


def tracked(mon: Monitor) -> dict[str, int]:
    """The probing detector's clients, by the key it tracks each by, and the queries it saw from each."""
    det = next(d for d in mon.detectors if type(d).__name__ == "ProbingDetector")
    return {key: int(det._queries[slot]) for key, slot in det._clients._lru.items()}


class _Sidecar:
    """A sidecar serving model ``m`` with a probing detector (``raw_client_ids``, a fixed salt)."""

    def __init__(self, folder: Path, server: dict[str, Any] | None = None) -> None:
        self.monitors: list[Monitor] = []

        def factory(cfg: MonitorConfig) -> Monitor:
            mon = Monitor(config=cfg, reference=S.reference(), registry=CollectorRegistry(auto_describe=False),
                          start_worker=False, live=False)
            self.monitors.append(mon)
            return mon

        raw = {"model": "m", "features": FEATURES, "output": OUTPUT, "detectors": [{"kind": "probing", **PROBING}]}
        self.s = start_sidecar({**raw, **({"server": server} if server else {})}, folder, factory=factory)

    def post(self, body: Any) -> Any:
        return http("POST", self.s.url + "/v1/events", body)

    def close(self) -> None:
        self.s.close()


def _rows(seed: int, n: int) -> tuple[list[list[float]], list[list[float]]]:
    x = S.natural(np.random.default_rng(seed), n)
    return x.round(6).tolist(), S.scores(x.round(6)).tolist()


def test_post_events_takes_a_client_per_row_as_observe_does(tmp_path: Path) -> None:
    """A list of one client per row (null and empty text: no client), a list of another length
    (counted, its rows anonymous), one client for the call, integers, and two long tokens that
    share their first 300 characters: the sidecar's probing detector tracks the clients the
    in-process one does, and counts the same dropped argument."""
    calls = [(_rows(0, 3), ["alice", None, "bob"]), (_rows(1, 2), "carol"), (_rows(2, 3), ["alice", "bob"]),
             (_rows(3, 2), [7, ""]), (_rows(4, 2), [TOKEN_A, TOKEN_B]), (_rows(5, 1), TOKEN_A), (_rows(6, 2), None)]
    mon = _in_process()
    try:
        for i, ((x, p), client) in enumerate(calls):
            mon.observe(np.array(x), np.array(p), client=client, timestamp=T0 + i)
        mon.flush()
        expected = tracked(mon)
        dropped = mon.store.value("monitor_row_arguments_dropped", labels=("client",))
    finally:
        mon.close()
    assert dropped == 3 and len(expected) == 7, expected  # alice, bob, carol, 7, anonymous, the two tokens
    sc = _Sidecar(tmp_path)
    try:
        events = [{"inputs": x, "outputs": p, "timestamp": T0 + i, **({} if client is None else {"client": client})}
                  for i, ((x, p), client) in enumerate(calls)]
        r = sc.post(events)
        assert r.status == 202, r.body
        sc.s.flush()
        assert tracked(sc.monitors[0]) == expected
        text = sc.s.metrics()
        assert total(text, "monitor_row_arguments_dropped_total", argument="client") == 3
    finally:
        sc.close()


def test_post_events_refuses_a_client_entry_of_another_type_naming_it(tmp_path: Path) -> None:
    """An entry that is no client id (a number with a fraction, a boolean, an object, a list) is a
    400 naming ``client[i]``, the batch refused whole and counted ``bad_client``; a client that is
    neither text, an integer nor a list is named ``client``."""
    sc = _Sidecar(tmp_path)
    try:
        (x, p) = _rows(0, 2)
        for client, field in ((["alice", 1.5], "client[1]"), ([True, "bob"], "client[0]"), ([None, {"id": 1}], "client[1]"),
                              (["a", ["b"]], "client[1]"), ({"id": 1}, "client"), (2.5, "client"), (False, "client")):
            r = sc.post([{"inputs": x, "outputs": p, "client": "ok"}, {"inputs": x, "outputs": p, "client": client}])
            assert r.status == 400, (client, r.body)
            body = r.json()
            assert (body["field"], body["reason"]) == (field, "bad_client"), body
            assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, field)]
            assert "a list of one per row" in body["error"] if field == "client" else "must be a string" in body["error"]
        sc.s.flush()
        text = sc.s.metrics()
        assert total(text, "monitor_intake_events_refused_total", reason="bad_client") == 7
        assert total(text, "monitor_calls_total") == 0  # nothing of a refused batch got in
    finally:
        sc.close()


def _forwarded_calls() -> list[tuple[np.ndarray, Any]]:
    """Rows and the client of each call, in every form ``observe`` takes one: per-row lists (with
    None, NaN and empty text for rows without one), of another length, arrays, a Series, bytes,
    numbers, long tokens, one client for the call, none."""
    import pandas as pd

    rng = np.random.default_rng(5)
    forms: list[Any] = [["c1", "c1"], ["c1", "c2", None], ["c1", "c2"], [b"c3", "c4"], b"c3", "c2", None,
                        np.array(["c5", "c1"], dtype=object), pd.Series(["c6", None, "c6"]), [7, 7.5, True],
                        [float("nan"), ""], [TOKEN_A, TOKEN_B], TOKEN_B, np.array(["c1", "c2", "c3"]), ("c2", "c4"), 8]
    calls = []
    for client in forms:
        n = len(client) if isinstance(client, (list, tuple, np.ndarray, pd.Series)) else int(rng.integers(1, 4))
        if client is forms[2]:
            n = 3  # two clients for three rows: counted, its rows anonymous
        calls.append((S.natural(rng, n), client))
    return calls


def test_a_forwarding_workers_clients_reach_the_sidecar_as_in_process(tmp_path: Path) -> None:
    """The same calls on an in-process Monitor and on a ForwardingMonitor to a sidecar over a Unix
    socket: the probing detector tracks the same clients with the same queries, and the dropped
    client count is the same. The worker wrote ``str(client)``: a per-row list was one client named
    ``"['c1', 'c1']"``, one of another length went uncounted, bytes were ``"b'c3'"``, and a long
    token was cut to 200 characters by the sidecar (two tokens of one issuer one client)."""
    from monitor.forwarding import ForwardingMonitor
    from tests.sidecar_support import wait_until

    calls = _forwarded_calls()
    mon = _in_process()
    try:
        for i, (x, client) in enumerate(calls):
            mon.observe(x, S.scores(x), client=client, timestamp=T0 + i)
        mon.flush()
        expected = tracked(mon)
        dropped = mon.store.value("monitor_row_arguments_dropped", labels=("client",))
    finally:
        mon.close()
    assert dropped == 3 and {"c1", "c3", "7", "anonymous"} <= set(expected) and len(expected) == 13, expected  # c1-c6, 7, 7.5, True, 8, anonymous, two digests
    sock = str(tmp_path / "fw.sock")
    sc = _Sidecar(tmp_path, {"forward": {"unix": sock}})
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        for i, (x, client) in enumerate(calls):
            fm.observe(x, S.scores(x), client=client, timestamp=T0 + i)
        fm.observe_error("EndOfCalls", client=["c1", "c2"])  # the last datagram; an error's client list is not refused
        fm.flush()
        assert fm.counters().dropped == {}

        def done() -> bool:
            sc.s.flush()
            return total(sc.s.metrics(), "monitor_errors_total", exception="EndOfCalls") >= 1

        assert wait_until(done), "the last call never reached the sidecar"
        assert tracked(sc.monitors[0]) == expected
        text = sc.s.metrics()
        assert total(text, "monitor_row_arguments_dropped_total", argument="client") == 3
        assert total(text, "monitor_intake_events_refused_total") == 0
    finally:
        fm.close()
        sc.close()
