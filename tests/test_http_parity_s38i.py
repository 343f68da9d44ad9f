"""Events accepted by ``POST /v1/events`` and ``/v1/feedback`` over real HTTP give the figures an
in-process Monitor gives for the same calls (session 38, helper i's differential fuzz); an event
the intake refuses is answered 400 naming its field and the fix, and the README says that such
an event is refused over HTTP. Each test above the seeded run is a divergence the fuzz found, and
failed before its fix."""

from __future__ import annotations

import datetime
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import http, start_sidecar, total, wait_until
from tests.test_forwarded_parity_s38g import CLASSES, KINDS, figures

__all__: list[str] = []

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()

Event = dict[str, Any]


# -- the calls an accepted event is, made in process ------------------------------------------------

def call_in_process(mon: Monitor, event: Event) -> None:
    """The in-process call an event of the JSON format stands for (its values as JSON decoded them;
    an RFC 3339 timestamp as the datetime it writes)."""
    if isinstance(event.get("timestamp"), str):
        event = {**event, "timestamp": datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))}
    kind = event.get("type", "feedback" if "label" in event or "labels" in event else "prediction")  # /v1/feedback's default
    if kind == "error":
        mon.observe_error(event.get("exception", "Exception"), latency_s=event.get("latency_s"),
                          timestamp=event.get("timestamp"))
    elif kind == "feedback":
        if "request_ids" in event:
            mon.feedback(event["request_ids"], event["labels"], timestamp=event.get("timestamp"))
        else:
            mon.feedback(event["request_id"], event["label"], timestamp=event.get("timestamp"))
    else:
        mon.observe(event["inputs"], event.get("outputs"), request_id=event.get("request_id"),
                    segment=event.get("segment"), latency_s=event.get("latency_s"), embedding=event.get("embedding"),
                    timestamp=event.get("timestamp"))


def in_process(config: dict[str, Any], events: list[Event]) -> dict:
    mon = Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        for e in events:
            call_in_process(mon, e)
        mon.observe_error("EndOfCalls")
        mon.flush()
        return figures(mon.metrics_text())
    finally:
        mon.close()


def over_http_figures(config: dict[str, Any], events: list[Event], folder: Path) -> tuple[dict, str]:
    """The figures of ``events`` posted one at a time (each must be accepted)."""
    requests = [("/v1/events", "application/json", json.dumps(e).encode(), [e]) for e in events]
    got, accepted, refused, text = over_http(config, requests, folder)
    assert not refused, refused
    return got, text


def test_an_exception_name_is_cut_in_code_as_over_http(tmp_path) -> None:
    """``POST /v1/events`` keeps 100 characters of an error event's ``exception`` (a metric label:
    its length is bounded as its count is), while ``observe_error`` in code kept the name whole,
    so a long name (a message passed where the type's name goes, ``observe_error(str(err))``) was
    a label of any length, and the same call counted under another label over HTTP."""
    events = [{"type": "error", "exception": "E" * 300}, {"type": "error", "exception": "TimeoutError"},
              {"type": "error", "exception": "x" * 100}]
    expected = in_process(KINDS["probabilities"], events)
    assert expected[("monitor_errors", (("exception", "E" * 100),))] == 1, expected
    got, _ = over_http_figures(KINDS["probabilities"], events, tmp_path)
    assert got == expected


def test_a_batch_of_events_without_rows_is_counted_as_in_process(tmp_path) -> None:
    """A request of several events whose ``inputs`` are all ``[]`` (no row) is stacked by the
    intake into a 2-D array of zero columns, each event's inputs a row view of zero features: one
    row of the wrong width (``wrong_shape``) where the same event alone, or ``observe([], ...)``,
    is a call of no rows (outputs for none counted ``rows_mismatch``, none counted when there are
    none)."""
    for events in ([{"inputs": [], "outputs": []}] * 2,
                   [{"inputs": [], "outputs": [0.2, 0.3, 0.5]}, {"inputs": [], "outputs": [0.5, 0.3, 0.2]}],
                   [{"inputs": [1.0, 2.0], "outputs": []}, {"inputs": [3.0, 4.0], "outputs": []}]):
        expected = in_process(KINDS["probabilities"], events)
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        requests = [("/v1/events", "application/json", json.dumps(events).encode(), events)]
        got, accepted, refused, _ = over_http(KINDS["probabilities"], requests, folder)
        assert len(accepted) == 2 and not refused
        assert got == expected, events


def test_labels_posted_to_events_without_their_type_are_told_the_fix(tmp_path) -> None:
    """A feedback event posted to ``/v1/events`` without ``"type": "feedback"`` is read as a
    prediction (the type's default), and its ``labels`` refused as an unknown key of one: the 400
    listed a prediction's keys, which named no fix for labels."""
    s = start_sidecar({**KINDS["probabilities"], "model": "m"}, tmp_path)
    try:
        for event in ({"request_ids": ["r1"], "labels": ["y"]}, {"request_id": "r1", "label": "y"}):
            r = http("POST", s.url + "/v1/events", event)
            assert r.status == 400 and r.json()["reason"] == "unknown_key", r.body
            assert r.json()["field"] in ("labels", "label") and '"type": "feedback"' in r.json()["error"], r.json()
            assert http("POST", s.url + "/v1/events", {**event, "type": "feedback"}).status == 202
            assert http("POST", s.url + "/v1/feedback", event).status == 202
        r = http("POST", s.url + "/v1/events", {"inputs": [1.0, 2.0], "outputs": [0.2, 0.3, 0.5], "colour": 1})
        assert r.status == 400 and r.json()["field"] == "colour" and "Fix: remove it" in r.json()["error"], r.json()
    finally:
        s.close()


# -- the draws ----------------------------------------------------------------------------------------

def _cell(rng: random.Random) -> Any:
    return rng.choice([round(rng.uniform(-3, 3), 3)] * 10 + [math.nan, math.inf, -math.inf, "x", None, True, "2.5", [1, 2],
                                                              {"k": 1}, 1e308, 2 ** 70, -(2 ** 64), 0, "", [[1]]])


def _inputs(rng: random.Random, n: int) -> Any:
    rows = [[_cell(rng), _cell(rng)] for _ in range(n)]
    form = rng.choice(["lists", "lists", "dicts", "dicts", "row", "dict", "wide", "other_key", "flat_many", "empty", "scalar",
                       "text", "nested"])
    return {"lists": rows, "dicts": [{"a": a, "b": b} for a, b in rows], "row": rows[0], "dict": {"a": rows[0][0], "b": rows[0][1]},
            "wide": [r + [1.0] for r in rows], "other_key": [{"a": a, "c": b} for a, b in rows],
            "flat_many": [c for r in rows for c in r], "empty": [],
            "scalar": 5, "text": "a b", "nested": [[[1.0, 2.0]]] * n}[form]


def _rows(inputs: Any) -> int:
    if isinstance(inputs, dict) or (isinstance(inputs, list) and inputs and not isinstance(inputs[0], (list, dict))):
        return 1
    return len(inputs) if isinstance(inputs, list) else 1


def _outputs(rng: random.Random, kind: str, n: int) -> Any:
    def scores() -> list[float]:
        p = [rng.random() + 0.01 for _ in range(3)]
        return [v / sum(p) for v in p]
    good = {"probabilities": lambda: rng.choice([[scores() for _ in range(n)], scores() if n == 1 else [scores()] * n]),
            "regression": lambda: rng.choice([[rng.uniform(-5, 5) for _ in range(n)], [[1.0]] * n, 2.5 if n == 1 else [2.5] * n]),
            "labels": lambda: rng.choice([[rng.choice(CLASSES + [0, 2]) for _ in range(n)], "y" if n == 1 else ["y"] * n]),
            "multilabel": lambda: rng.choice([[[rng.random() for _ in range(3)] for _ in range(n)], [[0, 1, 1]] * n]),
            "text": lambda: rng.choice([["hello world"] * n, "one answer" if n == 1 else ["a b"] * n, [""] * n]),
            "none": lambda: rng.choice([None, [1] * n, "anything", {"k": 1}, "__absent__"])}
    bad = {"probabilities": [[[0.5, 0.5]] * n, [[math.nan, 0.5, 0.5]] * n, None, "y", [[2.0, -1.0, 0.0]] * n, "__absent__",
                             [[1e300, 0, 0]] * n, [[2 ** 70, 0, 0]] * n, [[0.2, 0.3, 0.5]] * (n + 1), [[{"p": 1}, 0, 0]] * n, [["a", "b", "c"]] * n],
           "regression": [[math.nan] * n, [math.inf] * n, [2 ** 70] * n, [-1e308] * n, ["x"] * n, None, [1e300] * n, [1.0] * (n + 1), [True] * n,
                          [[1, 2]] * n, [{"v": 1}] * n, "__absent__"],
           "labels": [["q"] * n, [math.nan] * n, [None] * n, [5] * n, None, ["n"] * (n + 1), [1.5] * n, [["n"]] * n,
                      [{"c": "n"}] * n, [True] * n],
           "multilabel": [[[0.5, 0.5]] * n, [[math.nan, 0.1, 0.1]] * n, None, [[2.0, 0.1, 0.1]] * n, ["y"] * n,
                          [[[1], 0, 0]] * n],
           "text": [[1.5] * n, None, [None] * n, ["x"] * (n + 1), [["a"]] * n, [{"t": "a"}] * n], "none": [None]}
    return rng.choice(bad[kind]) if rng.random() < 0.25 else good[kind]()


def _label(rng: random.Random, kind: str) -> Any:
    if kind == "regression":
        return rng.choice([math.nan, "x", 1e300, None, [1.0], rng.uniform(-5, 5), 3, "2.5", 1.0, 2.0, True, {"v": 1}])
    if kind == "multilabel":
        return rng.choice([[1, 0], "q", None, math.nan, [2, 0, 0], [1, 0, 1], ["n", "y"], [0, 0, 0], [0, 1, 1], [[1], 0, 0]])
    return rng.choice([math.nan, None, [0, 1], "q", 2 ** 300, 7, math.inf, True, {"c": 1}] + CLASSES * 3 + [0, 2, 1.0])


def _pick(rng: random.Random, good: list[Any], bad: list[Any]) -> Any:
    """A value the intake takes, or (one time in eight) one it refuses."""
    return rng.choice(bad) if bad and rng.random() < 0.125 else rng.choice(good)


def draw_event(rng: random.Random, kind: str, i: int, ids: list[str]) -> Event:
    r = rng.random()
    if r < 0.08:
        e: Event = {"type": "error", "exception": _pick(rng, ["TimeoutError", "ValueError", "x" * 300], ["", 5])}
        if rng.random() < 0.5:
            e["latency_s"] = _pick(rng, [0.2, 3, None], [-1, "slow", True, math.inf])
        return e
    if r < 0.3 and ids:
        k = rng.randint(1, 4)
        fids = [rng.choice(ids) if rng.random() < 0.7 else _pick(rng, ["nope", 17, 17.0, 2 ** 60, float(2 ** 60), "r0/0"],
                                                                 [None, math.nan, "", 1.5, True, "x" * 1100, [1], {"i": 1}])
                for _ in range(k)]
        labels = [_label(rng, kind) for _ in range(k)]
        e = {"type": "feedback"} if rng.random() < 0.7 else {}
        if k == 1 and rng.random() < 0.5:
            return {**e, "request_id": fids[0], "label": labels[0]}
        return {**e, "request_ids": fids, "labels": labels}
    x = _inputs(rng, rng.randint(1, 4))
    n = _rows(x)
    rid = _pick(rng, [f"r{i}", f"r{i}", f"r{i}", [f"r{i}_{j}" for j in range(n)], None, i, float(i), "",
                      [f"q{i}_{j}" for j in range(n + 1)], [None] * n, [float(j) for j in range(n)], 2 ** 60, float(2 ** 60),
                      "__absent__", "__absent__", [f"r{i}"] * n, 10 ** 30],
                [True, "x" * 1100, {"id": 1}, [[1]] * n, [True] * n, 1.5, math.nan])
    if isinstance(rid, str) and rid == f"r{i}":
        ids += [rid] if n == 1 else [f"{rid}/{j}" for j in range(n)]
    elif isinstance(rid, list) and rid and isinstance(rid[0], str) and rid[0] == f"r{i}_0":
        ids += rid
    e = {"inputs": x}
    if rng.random() < 0.3:
        e["type"] = "prediction"
    out = _outputs(rng, kind, n)
    if out != "__absent__":
        e["outputs"] = out
    if rid != "__absent__":
        e["request_id"] = rid
    for key, good, bad in (
            ("segment", [None, "eu", ["eu"] * n, ["us"] * (n + 1), 3, "", [None] * n, "s" * 300, ["eu", 7][:n], ["x"] * (n - 1)],
             [True, 1.5, [["eu"]] * n, {"s": 1}]),
            ("latency_s", [None, 0.01, 3, 0, 1e300, 2 ** 70], [-1, math.nan, math.inf, "fast", True]),
            ("embedding", [None, [0.1, 0.2, 0.3], [[0.1, 0.2]] * n, [[0.1, 0.2]] * (n + 1), "x", [math.nan, 1.0],
                           [[0.1, "a"]] * n, {"e": 1}, [[0.1, 0.2], [0.3]], [], [math.inf, 1e308], [[2 ** 70, 1]] * n], []),
            ("timestamp", [None, round(time.time() - 5, 3), int(time.time()), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())],
             [-1, "soon", True, "2024-01-01T00:00:00"]),
            ("model", ["m", None], [])):
        if rng.random() < 0.4:
            e[key] = _pick(rng, good, bad)
    return e


def draw_requests(seed: int, kind: str, n_requests: int = 40) -> list[tuple[str, str, bytes, list[Event]]]:
    """``(path, content type, body, events)``: single events, JSON arrays and NDJSON bodies."""
    rng = random.Random(seed)
    ids: list[str] = []
    out = []
    i = 0
    for _ in range(n_requests):
        form = rng.choice(["one"] * 5 + ["array"] * 2 + ["ndjson"] * 2)
        k = 1 if form == "one" else rng.randint(1, 4)
        events = []
        for _ in range(k):
            events.append(draw_event(rng, kind, i, ids))
            i += 1
        path = "/v1/events"
        if all(e.get("type") == "feedback" or "labels" in e or "label" in e for e in events):
            if rng.random() < 0.5:
                path = "/v1/feedback"
        elif any("labels" in e or "label" in e for e in events):
            for e in events:  # type defaults to prediction on /v1/events
                if "labels" in e or "label" in e:
                    e["type"] = "feedback"
        if form == "ndjson":
            body, ctype = b"\n".join(json.dumps(e).encode() for e in events), "application/x-ndjson"
        elif form == "array":
            body, ctype = json.dumps(events).encode(), "application/json"
        else:
            body, ctype = json.dumps(events[0]).encode(), "application/json"
        out.append((path, ctype, body, [json.loads(json.dumps(e)) for e in events]))
    return out


def over_http(config: dict[str, Any], requests: list[tuple[str, str, bytes, list[Event]]], folder: Path
              ) -> tuple[dict, list[Event], list[dict[str, Any]], str]:
    """Post each request to a real sidecar: the figures, the events accepted (in order), the 400s' bodies."""
    s = start_sidecar({**config, "model": "m"}, folder)
    accepted: list[Event] = []
    refused: list[dict[str, Any]] = []
    try:
        for path, ctype, body, events in requests:
            r = http("POST", s.url + path, body, {"Content-Type": ctype})
            if r.status == 202:
                assert r.json()["accepted"] == len(events)
                accepted += events
            else:
                assert r.status == 400, (r.status, r.body[:300])
                refused.append({**r.json(), "events": events})
        r = http("POST", s.url + "/v1/events", {"type": "error", "exception": "EndOfCalls"})
        assert r.status == 202

        def done() -> bool:
            s.flush()
            return total(s.metrics(), "monitor_errors_total", exception="EndOfCalls") >= 1

        assert wait_until(done)
        text = s.metrics()
        return figures(text), accepted, refused, text
    finally:
        s.close()


# -- the seeded differential run -------------------------------------------------------------------

#: Words by which a 400's message says what to send instead (each message was read once: see the
#: report of s38i); a message without any of them names no fix.
FIX_WORDS = ("Fix", "must", "give", "send", "is not sent", "use ", "needs", "allowed", "write", "is required")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_events_accepted_over_http_give_the_in_process_figures(tmp_path, kind: str) -> None:
    """Seeded random requests of each output kind (single events, JSON arrays and NDJSON bodies of
    predictions, errors and feedback, good and bad values in every field) posted to a real
    sidecar: the figures of the events it accepted are an in-process Monitor's for the same calls,
    every label set of the compared figures; each refused request is a 400 naming the field and the
    fix, its events counted refused, and its reason is one the README says the intake refuses."""
    for seed in range(2):
        requests = draw_requests(1000 * seed + len(kind), kind)
        folder = tmp_path / str(seed)
        folder.mkdir()
        got, accepted, refused, text = over_http(KINDS[kind], requests, folder)
        assert len(accepted) >= 10 and len(refused) >= 5, (len(accepted), len(refused))  # both paths drawn
        assert got == in_process(KINDS[kind], accepted), seed
        assert total(text, "monitor_intake_events_refused_total") == sum(len(r["events"]) for r in refused)
        for r in refused:
            for err in r.get("errors", [r]):
                assert err["field"] and err["error"].startswith(err["field"].split("[")[0]) or err["field"] in err["error"], err
                assert any(w in err["error"] for w in FIX_WORDS), err
                assert f"`{err['reason']}`" in README, err["reason"]
