"""The same calls give the same figures through a ForwardingMonitor and the sidecar as in an
in-process Monitor (session 38, helper g's differential fuzz): each test below is a divergence the
fuzz found, and failed before its fix; the last runs the fuzz's calls on a few seeds."""

from __future__ import annotations

import datetime
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor import Monitor
from monitor.forwarding import ForwardingMonitor
from tests.sidecar_support import start_sidecar, total, wait_until

__all__: list[str] = []

CLASSES = ["n", "y", "z"]
PROBS = {"features": ["a", "b"], "output": {"kind": "probabilities", "classes": CLASSES}}
#: The figures a user reads, compared whole (every label set): counters of calls, rows and labels,
#: and the windowed figures that depend on the rows alone.
FIGURES = ("monitor_calls", "monitor_predictions", "monitor_rows_rejected", "monitor_feedback_labels",
           "monitor_row_arguments_dropped", "monitor_events_dropped", "monitor_data_invalid_rows",
           "monitor_predicted_class", "monitor_data_window_rows", "monitor_confidence_rows_in_window",
           "monitor_errors", "monitor_batch_size_rows_count", "monitor_latency_seconds_count")

Call = tuple[str, tuple[Any, ...], dict[str, Any]]


def figures(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The :data:`FIGURES` of model ``m`` in an exposition, by name and labels (zeros left out)."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            name = s.name[:-6] if s.name.endswith("_total") else s.name
            if name in FIGURES and s.labels.get("model") == "m" and s.value:
                out[(name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "model")))] = s.value
    return out


def stream(target: Any, chunks: list[Any], mode: str, stop: int, request_id: Any = None) -> None:
    """One streamed call through ``target.watch`` (session 39): its chunks consumed whole
    (``full``), closed after ``stop`` of them (``close``), raising after them (``raise``), or as an
    async generator (``async``)."""
    import asyncio

    def generate(prompt: Any, request_id: Any = None):
        for i, c in enumerate(chunks):
            if mode == "raise" and i == stop:
                raise RuntimeError("stream broke")
            yield c

    async def agenerate(prompt: Any, request_id: Any = None):
        for c in chunks:
            yield c

    if mode == "async":
        wrapped = target.watch(agenerate, request_id="request_id")

        async def consume() -> None:
            async for _ in wrapped([[0.5, 1.5]], request_id=request_id):
                pass

        asyncio.run(consume())
        return
    it = target.watch(generate, request_id="request_id")([[0.5, 1.5]], request_id=request_id)
    try:
        for i, _ in enumerate(it):
            if mode == "close" and i + 1 >= stop:
                it.close()
                break
    except RuntimeError:
        pass


def _run(target: Any, calls: list[Call]) -> None:
    for name, args, kwargs in calls:
        if name == "stream":
            stream(target, *args, **kwargs)
        else:
            getattr(target, name)(*args, **kwargs)
    target.observe_error("EndOfCalls")  # the last datagram: once it is counted, every one before it was


def spy(mon: Monitor, seen: list[Any]) -> None:
    """Keep each batch ``mon``'s detectors see in ``seen``."""
    mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                   "__getattr__": lambda self, n: (lambda *a, **k: None)})())


def in_process(config: dict[str, Any], calls: list[Call], seen: list[Any] | None = None) -> dict:
    """The figures of ``calls`` made on an in-process Monitor (its detectors' batches kept in ``seen``)."""
    mon = Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    if seen is not None:
        spy(mon, seen)
    try:
        _run(mon, calls)
        mon.flush()
        return figures(mon.metrics_text())
    finally:
        mon.close()


def forwarded(config: dict[str, Any], calls: list[Call], folder: Path, seen: list[Any] | None = None,
              told_kind: bool = False) -> tuple[dict, str]:
    """The figures of the same calls made on a ForwardingMonitor, read from the sidecar, and its
    exposition (a Unix datagram socket: in order, so the last call's error marks the end); the
    sidecar's detectors' batches kept in ``seen``. A worker of a text or ``none`` model is told its
    kind (it may then watch streams), any other when ``told_kind``."""
    sock = str(folder / "fw.sock")
    s = start_sidecar({**config, "model": "m", "server": {"forward": {"unix": sock}}}, folder)
    if seen is not None:
        spy(s.monitor("m"), seen)
    kind = config.get("output", {}).get("kind")
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False,
                           output_kind=kind if told_kind or kind in ("text", "none") else None)
    try:
        _run(fm, calls)
        fm.flush()
        assert fm.counters().dropped == {}

        def done() -> bool:
            s.flush()
            return total(s.metrics(), "monitor_errors_total", exception="EndOfCalls") >= 1

        assert wait_until(done), "the last call never reached the sidecar"
        text = s.metrics()
        return figures(text), text
    finally:
        fm.close()
        s.close()


def test_a_forwarded_call_with_a_latency_in_process_drops_keeps_its_rows(tmp_path) -> None:
    """A latency that is not a finite, non-negative number of seconds (NaN, -1, inf, text) is left
    out in process, the call's rows kept and the latency counted in
    ``monitor_row_arguments_dropped_total{argument="latency_s"}``; forwarded, the sidecar refused
    the whole event (``bad_latency``), its rows lost from every figure, and a ``timedelta``, which
    in process is its seconds, lost the event in the worker as ``unserializable``."""
    rows = np.zeros((2, 2))
    scores = [[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]
    latencies = [float("nan"), -1.0, float("inf"), "fast", datetime.timedelta(milliseconds=5), True,
                 np.float64(0.2), np.timedelta64(3, "ms"), 0.01]
    calls: list[Call] = [("observe", (rows, scores), {"latency_s": v}) for v in latencies]
    calls += [("observe_error", ("TimeoutError",), {"latency_s": v}) for v in (float("nan"), "slow", 0.5)]
    expected = in_process(PROBS, calls)
    assert expected[("monitor_row_arguments_dropped", (("argument", "latency_s"),))] == 6, expected
    assert expected[("monitor_predictions", ())] == 18, expected
    got, text = forwarded(PROBS, calls, tmp_path)
    assert total(text, "monitor_intake_events_refused_total") == 0
    assert got == expected


def test_a_forwarded_call_whose_model_returned_nothing_is_counted_as_in_process(tmp_path) -> None:
    """A call whose outputs are None (the predict function or the outputs= extractor returned
    nothing) is counted in process, a call whose rows are refused (``rows_mismatch``, said with the
    fix); forwarded, the sidecar refused the event (``missing_outputs``): the call was missing from
    monitor_calls_total and its rows from monitor_rows_rejected_total."""
    calls: list[Call] = [("observe", (np.zeros((3, 2)), None), {}),
                         ("observe", ([[1.0, 2.0]], [[0.2, 0.3, 0.5]]), {}),
                         ("observe", ({"a": 1.0, "b": 2.0}, None), {"latency_s": 0.1})]
    expected = in_process(PROBS, calls)
    assert expected[("monitor_calls", ())] == 4 and expected[("monitor_predictions", ())] == 1, expected
    assert sum(v for (name, _), v in expected.items() if name == "monitor_rows_rejected") == 4, expected
    got, text = forwarded(PROBS, calls, tmp_path)
    assert total(text, "monitor_intake_events_refused_total") == 0
    assert got == expected


def test_a_forwarded_label_for_no_id_is_counted_as_in_process(tmp_path) -> None:
    """In process the label join reads a label before its id: a label the model cannot take is
    ``invalid`` whatever its id, and only a usable one for an id that is no id (None, NaN, empty
    text, over 1,024 characters) is ``unknown_id``. The worker left such labels out, counting them
    all ``unknown_id`` (it cannot tell which the model takes: it does not know its kind); it now
    sends their ids as null, and the sidecar's join counts each as the in-process one does."""
    for config, labels in ((PROBS, [float("nan"), "y", None, [0, 1], "q", 2**300, "n"]),
                           ({**PROBS, "output": {"kind": "regression"}}, [float("nan"), 1.5, "soon", 1e300, 2.0, None, 3])):
        ids = [None, None, "", float("nan"), "x" * 1100, np.nan, "r0"]
        outputs = [[0.2, 0.3, 0.5]] if config is PROBS else [1.0]
        calls: list[Call] = [("observe", (np.zeros((1, 2)), outputs), {"request_id": "r0"}),
                             ("feedback", (ids, labels), {}), ("feedback", (None, float("nan")), {})]
        expected = in_process(config, calls)
        outcomes = {dict(k[1])["outcome"]: v for k, v in expected.items() if k[0] == "monitor_feedback_labels"}
        assert outcomes["invalid"] >= 3 and outcomes["unknown_id"] >= 2, outcomes
        folder = tmp_path / config["output"]["kind"]
        folder.mkdir()
        got, text = forwarded(config, calls, folder)
        assert total(text, "monitor_intake_events_refused_total") == 0
        assert got == expected


def test_the_labels_an_earlier_worker_left_out_are_still_counted(tmp_path) -> None:
    """A worker of an earlier release left out the labels of ids that are no id and said how many
    in the datagram's ``unknown_ids``: the sidecar still counts them ``unknown_id``."""
    import json
    import socket

    from monitor.forwarding import WIRE_VERSION

    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**PROBS, "model": "m", "server": {"forward": {"unix": sock}}}, tmp_path)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        c.sendto(json.dumps({"v": WIRE_VERSION, "sender": "old", "seq": 1, "model": "m", "unknown_ids": 2, "events": [
            {"type": "feedback", "timestamp": 1.0, "request_ids": ["r9"], "labels": ["y"]}]}).encode(), sock)

        def counted() -> bool:
            s.flush()
            return total(s.metrics(), "monitor_feedback_labels_total", outcome="unknown_id") >= 2

        assert wait_until(counted)
        s.flush()
        assert total(s.metrics(), "monitor_feedback_labels_total") == 2  # r9 waits for its prediction (early)
    finally:
        c.close()
        s.close()


def test_a_forwarded_over_long_request_id_is_counted_for_the_rows_read(tmp_path) -> None:
    """In process an id over 1,024 characters is counted in
    ``monitor_row_arguments_dropped_total{argument="request_id"}`` for the rows the builder read:
    none when the call's rows are refused (outputs of another count or width, inputs of another
    width). The worker counted the rows it guessed from the inputs, read or not."""
    long_id = "x" * 1100
    calls: list[Call] = [("observe", (x, out), {"request_id": rid}) for x, out, rid in (
        ([[1.0, 2.0], [1.0, 2.0]], [[0.2, 0.3, 0.5]] * 3, long_id),  # rows_mismatch
        ([[1.0, 2.0, 3.0]], [[0.2, 0.3, 0.5]], long_id),  # wrong_shape
        ([[1.0, 2.0]], [[0.5, 0.5]], long_id),  # outputs of another width
        (np.zeros((2, 2)), [[0.2, 0.3, 0.5]] * 2, long_id),  # counted: 2 rows
        (np.zeros((2, 2)), [[0.2, 0.3, 0.5]] * 2, ["ok", long_id]),  # counted: 1 row
        ([[1.0, 2.0]], [[0.2, 0.3, 0.5]], 10 ** 5000))]  # an id whose text cannot be taken: 1 row
    expected = in_process(PROBS, calls)
    assert expected[("monitor_row_arguments_dropped", (("argument", "request_id"),))] == 4, expected
    got, text = forwarded(PROBS, calls, tmp_path)
    assert total(text, "monitor_intake_events_refused_total") == 0
    assert got == expected


def test_a_forwarded_call_with_an_over_long_id_and_an_unusable_latency_keeps_both_counts(tmp_path) -> None:
    """The receiver's retry without the latency was given the event with its over-long id put
    aside, so the rows' dropped id went uncounted (the fuzz's next finding)."""
    calls: list[Call] = [("observe", (np.zeros((3, 2)), [[0.2, 0.3, 0.5]] * 3), {"request_id": "x" * 1100, "latency_s": math.inf}),
                         ("feedback", ([None, "r"], [float("nan"), "y"]), {})]
    expected = in_process(PROBS, calls)
    assert expected[("monitor_row_arguments_dropped", (("argument", "request_id"),))] == 3, expected
    got, _ = forwarded(PROBS, calls, tmp_path)
    assert got == expected


# -- the seeded differential run -------------------------------------------------------------------

KINDS = {"probabilities": PROBS, "regression": {**PROBS, "output": {"kind": "regression"}},
         "labels": {**PROBS, "output": {"kind": "labels", "classes": CLASSES}},
         "multilabel": {**PROBS, "output": {"kind": "multilabel", "classes": CLASSES}},
         "text": {**PROBS, "output": {"kind": "text"}}, "none": {**PROBS, "output": {"kind": "none"}}}


def _inputs(rng: random.Random, n: int) -> tuple[Any, int]:
    """Rows in each form observe() takes, good and bad (bad cells, another width, another key)."""
    def cell() -> Any:
        return rng.choice([round(rng.uniform(-3, 3), 3)] * 8 + [math.nan, math.inf, "x", None, True, "2.5", [1, 2],
                                                                 np.float32(1.5), np.int64(3)])
    rows = [[cell(), cell()] for _ in range(n)]
    form = rng.choice(["lists", "dicts", "np", "np_obj", "df", "row", "dict", "wide", "other_key"])
    if form == "np":
        return np.array([[rng.uniform(-3, 3), rng.uniform(-3, 3)] for _ in range(n)]), n
    if form == "df":
        return pd.DataFrame([[rng.uniform(-3, 3), rng.choice([rng.uniform(-3, 3), math.nan])] for _ in range(n)],
                            columns=["a", "b"]), n
    return {"lists": (rows, n), "dicts": ([{"a": a, "b": b} for a, b in rows], n), "np_obj": (np.array(rows, dtype=object), n),
            "row": (rows[0], 1), "dict": ({"a": rows[0][0], "b": rows[0][1]}, 1), "wide": ([r + [1.0] for r in rows], n),
            "other_key": ([{"a": a, "c": b} for a, b in rows], n)}[form]


def _outputs(rng: random.Random, kind: str, n: int) -> Any:
    """Outputs of ``kind`` in their forms, a quarter of them bad (NaN, out of range, another count
    or width, None, text for scores)."""
    def scores() -> list[float]:
        p = [rng.random() + 0.01 for _ in range(3)]
        return [v / sum(p) for v in p]
    good = {"probabilities": lambda: rng.choice([[scores() for _ in range(n)], np.array([scores() for _ in range(n)])]),
            "regression": lambda: rng.choice([[rng.uniform(-5, 5) for _ in range(n)], np.arange(float(n))]),
            "labels": lambda: rng.choice([[rng.choice(CLASSES + [0, 2]) for _ in range(n)], np.array(CLASSES * n)[:n]]),
            "multilabel": lambda: rng.choice([[[rng.random() for _ in range(3)] for _ in range(n)], np.eye(3)[[0] * n]]),
            "text": lambda: rng.choice([["hello world", "", "ok"][:1] * n, "one answer" if n == 1 else ["a b"] * n]),
            "none": lambda: rng.choice([None, [1] * n, "anything", {"k": 1}])}
    bad = {"probabilities": [[[0.5, 0.5]] * n, [[math.nan, 0.5, 0.5]] * n, None, "y", [[2.0, -1.0, 0.0]] * n,
                             [[1e300, 0, 0]] * n, [[0.2, 0.3, 0.5]] * (n + 1)],
           "regression": [[math.nan] * n, [math.inf] * n, ["x"] * n, None, [1e300] * n, [1.0] * (n + 1), [True] * n],
           "labels": [["q"] * n, [math.nan] * n, [None] * n, [5] * n, None, ["n"] * (n + 1), [1.5] * n],
           "multilabel": [[[0.5, 0.5]] * n, [[math.nan, 0.1, 0.1]] * n, None, [[2.0, 0.1, 0.1]] * n, ["y"] * n],
           "text": [[1.5] * n, None, [None] * n, ["x"] * (n + 1), [["a"]] * n], "none": [None]}
    return rng.choice(bad[kind]) if rng.random() < 0.25 else good[kind]()


def _label(rng: random.Random, kind: str) -> Any:
    if kind == "regression":
        return rng.choice([math.nan, "x", 1e300, None, [1.0], rng.uniform(-5, 5), 3, "2.5", 1.0, 2.0])
    if kind == "multilabel":
        return rng.choice([[1, 0], "q", None, math.nan, [2, 0, 0], [1, 0, 1], ["n", "y"], [0, 0, 0], [0, 1, 1]])
    return rng.choice([math.nan, None, [0, 1], "q", 2 ** 300, 7] + CLASSES * 2 + [0, 2])


def draw_calls(seed: int, kind: str, n_calls: int = 30) -> list[Call]:
    """Observe and feedback calls of every form the fuzz drew, good and bad: rows, outputs, request
    ids (text, numbers, bytes, lists of the right and the wrong length, arrays, over-long, none),
    segments, clients (one per call or per row, of the wrong length, bytes, missing ones: s38h),
    latencies; feedback for known, unknown and unusable ids."""
    rng = random.Random(seed)
    calls: list[Call] = []
    ids: list[str] = []
    for i in range(n_calls):
        if rng.random() < 0.7 or not ids:
            x, n = _inputs(rng, rng.randint(1, 4))
            rid = rng.choice([f"r{i}", f"r{i}", [f"r{i}_{j}" for j in range(n)], None, i, float(i), 1.5, True, b"b%d" % i, "",
                              "x" * 1100, math.nan, [f"q{j}" for j in range(n + 1)], np.array([f"a{i}_{j}" for j in range(n)]),
                              [None] * n, np.int64(i), [1.0] * n, 10 ** 5000])
            if isinstance(rid, str) and rid == f"r{i}":
                ids += [rid] if n == 1 else [f"{rid}/{j}" for j in range(n)]
            elif isinstance(rid, list) and rid and isinstance(rid[0], str) and rid[0] == f"r{i}_0":
                ids += rid
            calls.append(("observe", (x, _outputs(rng, kind, n)), {
                "request_id": rid,
                "client": rng.choice([None, "c1", "c2", "", 5, b"c3", math.nan, ["c1"] * n, [f"c{j}" for j in range(n)],
                                      ["c2"] * (n + 1), [None, b"c3", "", math.nan][:n], np.array(["c4"] * n)]),
                "segment": rng.choice([None, "eu", ["eu"] * n, ["us"] * (n + 1), math.nan, 3, "", [None] * n, b"eu"]),
                "latency_s": rng.choice([None, 0.01, -1.0, math.nan, math.inf, "fast", 3, np.float64(0.2), True,
                                         datetime.timedelta(milliseconds=4)])}))
        else:
            k = rng.randint(1, 4)
            fids = [rng.choice(ids) if rng.random() < 0.7 else rng.choice(["nope", None, math.nan, "", 17, b"r0", "x" * 1100])
                    for _ in range(k)]
            labels = [_label(rng, kind) for _ in range(k)]
            calls.append(("feedback", (fids[0], labels[0]) if k == 1 else (fids, labels), {}))
    return calls


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_forwarded_calls_give_the_in_process_figures(tmp_path, kind: str) -> None:
    """Seeded random calls of each output kind: the sidecar's figures of the forwarded calls are
    the in-process Monitor's, every label set of :data:`FIGURES`, and nothing is refused or dropped
    on the way (each divergence the fuzz found is a test above)."""
    for seed in range(3):
        calls = draw_calls(1000 * seed + len(kind), kind)
        expected = in_process(KINDS[kind], calls)
        assert expected[("monitor_calls", ())] >= 15, expected  # the calls were made, most of them read
        folder = tmp_path / str(seed)
        folder.mkdir()
        got, text = forwarded(KINDS[kind], calls, folder)
        assert total(text, "monitor_intake_events_refused_total") == 0, seed
        assert got == expected, seed
