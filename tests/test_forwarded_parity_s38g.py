"""The same calls give the same figures through a ForwardingMonitor and the sidecar as in an
in-process Monitor (session 38, helper g's differential fuzz): each test below is a divergence the
fuzz found, and failed before its fix; the last runs the fuzz's calls on a few seeds."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import numpy as np
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


def _run(target: Any, calls: list[Call]) -> None:
    for name, args, kwargs in calls:
        getattr(target, name)(*args, **kwargs)
    target.observe_error("EndOfCalls")  # the last datagram: once it is counted, every one before it was


def in_process(config: dict[str, Any], calls: list[Call]) -> dict:
    mon = Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        _run(mon, calls)
        mon.flush()
        return figures(mon.metrics_text())
    finally:
        mon.close()


def forwarded(config: dict[str, Any], calls: list[Call], folder: Path) -> tuple[dict, str]:
    """The figures of the same calls made on a ForwardingMonitor, read from the sidecar, and its
    exposition (a Unix datagram socket: in order, so the last call's error marks the end)."""
    sock = str(folder / "fw.sock")
    s = start_sidecar({**config, "model": "m", "server": {"forward": {"unix": sock}}}, folder)
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
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
