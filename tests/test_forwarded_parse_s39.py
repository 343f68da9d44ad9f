"""A forwarding worker's event is parsed once, as a worker's (``parse_event(forwarded=True)``),
and what an in-process Monitor counts its own way is counted by the model's pipeline, after the
queue took the event. Before (session 38) the sidecar took such events apart around the HTTP
parse: a feedback event with a label its model cannot take was split label by label and that
label counted ``invalid`` at once, before the queue, so an event then refused (the sidecar
shutting down) had its label counted twice: ``invalid`` and, with the event, refused."""

from __future__ import annotations

import math

import numpy as np

from monitor.events import FEEDBACK, PREDICTION, EventFormatError, check_for_model, parse_event
from monitor.forwarding import ForwardingMonitor
from tests.sidecar_support import sample, start_sidecar, total, wait_until

__all__: list[str] = []

CLASSIFIER = {"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["n", "y"]}}


def test_a_refused_forwarded_feedback_event_counts_its_labels_once(tmp_path) -> None:
    sock = str(tmp_path / "fw.sock")
    s = start_sidecar({**CLASSIFIER, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        s.sidecar.accepting = False  # as after SIGTERM: intake closed, events refused (shutting_down)
        fm.feedback(["r0", "r1"], ["y", float("nan")])
        fm.flush()
        assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total") >= 1)
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_intake_events_refused_total", endpoint="forward", reason="shutting_down") == 1, text
        assert total(text, "monitor_feedback_labels_total") == 0, text  # the refused event's labels: not also invalid
    finally:
        fm.close()
        s.close()


def test_a_worker_event_keeps_what_the_model_counts_and_http_refuses() -> None:
    """The same JSON, parsed for ``POST /v1/events`` (refused with a 400 naming the field) and as a
    worker's (taken, for the pipeline to count as in process)."""
    long_id = "x" * 1_025
    cases = [
        ({"inputs": [[1, 2]], "outputs": [[0.5, 0.5]], "latency_s": -1}, "bad_latency",
         lambda e: e[0] == PREDICTION and math.isnan(e[4])),
        ({"inputs": [[1, 2]], "outputs": [[0.5, 0.5]], "request_id": long_id}, "bad_request_id",
         lambda e: e[6] == long_id),
        ({"type": "feedback", "request_ids": [None, "r1", long_id], "labels": ["y", None, {"k": 1}]}, "bad_request_id",
         lambda e: e == (FEEDBACK, 5.0, [None, "r1", long_id], ["y", None, {"k": 1}])),
        ({"type": "feedback", "request_ids": ["r0"], "labels": [float("nan")]}, "bad_label",
         lambda e: math.isnan(e[3][0])),
        ({"inputs": [[1, 2]], "outputs": None}, "missing_outputs", lambda e: e[3] is None),
    ]
    for obj, reason, kept in cases:
        try:
            check_for_model(parse_event(obj, 5.0), "probabilities", ("n", "y"))
        except EventFormatError as err:
            assert err.reason == reason, (obj, err)
        else:
            raise AssertionError(f"POST /v1/events took {obj}")
        parsed = parse_event(obj, 5.0, forwarded=True)
        check_for_model(parsed, "probabilities", ("n", "y"))
        assert kept(parsed.event), (obj, parsed.event)
    # what no worker sends stays refused as a worker's too: the sender is another program
    for obj, reason in [({"inputs": [[1, 2]]}, "missing_outputs"), ({"type": "feedback", "request_ids": "r0", "labels": [1]},
                                                                     "bad_request_id"),
                        ({"type": "feedback", "request_ids": [True], "labels": [1]}, "bad_request_id")]:
        try:
            check_for_model(parse_event(obj, 5.0, forwarded=True), "probabilities", ("n", "y"))
        except EventFormatError as err:
            assert err.reason == reason, (obj, err)
        else:
            raise AssertionError(f"taken from a worker: {obj}")
    assert np.isnan(parse_event({"type": "error", "latency_s": "slow"}, 5.0, forwarded=True).event[3])


def test_a_label_beyond_float64_is_counted_invalid_alone_as_in_process(tmp_path) -> None:
    """An integer label of 309 digits or more made the sidecar refuse the whole feedback event
    (``number_too_large``: JSON numbers past float64 break it), losing the call's other labels,
    where the in-process join counts that label alone ``invalid`` (s39d's review)."""
    from tests.test_forwarded_labels_s38 import OUTCOMES, _in_process  # the same call in process

    for config, outputs, labels in ((CLASSIFIER, [[0.9, 0.1]] * 3, ["y", 10 ** 400, [0, -10 ** 309]]),
                                    ({**CLASSIFIER, "output": {"kind": "regression"}}, [1.0, 2.0, 3.0], [1.5, 10 ** 400, 2.5])):
        feedback = [(["r0", "r1", "r2"], labels)]
        expected = _in_process({k: v for k, v in config.items() if k != "model"}, outputs, feedback)
        assert expected["invalid"] == (2 if config is CLASSIFIER else 1), expected
        sock = str(tmp_path / f"{len(outputs[0]) if isinstance(outputs[0], list) else 1}.sock")
        s = start_sidecar({**config, "server": {"forward": {"unix": sock}}}, tmp_path)
        fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
        try:
            fm.observe(np.zeros((3, 2)), outputs, request_id=["r0", "r1", "r2"])
            fm.feedback(*feedback[0])
            fm.flush()
            assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") >= 2)
            s.flush()
            text = s.metrics()
            assert total(text, "monitor_intake_events_refused_total") == 0, text
            got = {o: sample(text, "monitor_feedback_labels_total", model="m", outcome=o) for o in OUTCOMES}
            assert got == expected, (got, expected)
        finally:
            fm.close()
            s.close()


def test_a_multilabel_truth_of_bytes_names_is_read_as_their_text() -> None:
    """Bytes are text to every reader (a single-label model's label, ids, and a forwarding worker,
    which writes them as UTF-8 for JSON): a multi-label truth of names given as bytes was invalid
    in process and joined when forwarded (s39d's review); both read it as the names now."""
    from monitor.multilabel_truth import read_truth

    assert read_truth([b"cat", bytearray(b"outdoor")], ("cat", "dog", "outdoor"), 3) == (0, 2)
    assert read_truth(np.array([b"dog"]), ("cat", "dog", "outdoor"), 3) == (1,)


def test_an_error_named_by_empty_text_is_counted_as_exception_in_process_and_forwarded(tmp_path) -> None:
    """``observe_error("")`` was counted under ``exception=""`` (no label to Prometheus) in process,
    and a forwarding worker's such event was refused by the sidecar (``bad_exception``): both count
    it as ``Exception`` now, the name an event without one gets."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    mon = Monitor(model="m", config={k: v for k, v in CLASSIFIER.items() if k != "model"}, registry=CollectorRegistry(),
                  start_worker=False, live=False)
    try:
        mon.observe_error("")
        mon.flush()
        assert mon.store.value("monitor_errors", {"exception": "Exception"}) == 1
        assert mon.store.value("monitor_errors", {"exception": ""}) is None
    finally:
        mon.close()
    sock = str(tmp_path / "e.sock")
    s = start_sidecar({**CLASSIFIER, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        fm.observe_error("")
        fm.flush()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") >= 1)
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total") == 0, text
        assert sample(text, "monitor_errors_total", model="m", exception="Exception") == 1, text
    finally:
        fm.close()
        s.close()


def test_a_timestamp_that_is_no_time_is_counted_as_in_process(tmp_path) -> None:
    """A caller's ``timestamp=`` of NaN or infinity is taken in code (its rows counted
    ``invalid_timestamp`` by the pipeline) and a negative one kept; the sidecar refused a forwarding
    worker's such event whole (``bad_timestamp``, the 400 that tells an HTTP sender)."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    def calls(target) -> None:
        for ts in (float("nan"), float("inf"), -5.0):
            target.observe(np.zeros((2, 2)), [[0.9, 0.1]] * 2, timestamp=ts)
        target.observe_error("KeyError", timestamp=float("nan"))

    def figures(text_or_mon) -> tuple:
        if isinstance(text_or_mon, str):
            return (sample(text_or_mon, "monitor_rows_rejected_total", model="m", reason="invalid_timestamp"),
                    sample(text_or_mon, "monitor_predictions_total", model="m"))
        return (text_or_mon.store.value("monitor_rows_rejected", {"reason": "invalid_timestamp"}),
                text_or_mon.store.value("monitor_predictions"))

    mon = Monitor(model="m", config={k: v for k, v in CLASSIFIER.items() if k != "model"}, registry=CollectorRegistry(),
                  start_worker=False, live=False)
    try:
        calls(mon)
        mon.flush()
        expected = figures(mon)
    finally:
        mon.close()
    assert expected == (5.0, 2.0), expected  # 4 rows and the error's one row of NaN or infinite time; the -5 s call's 2 rows
    sock = str(tmp_path / "t.sock")
    s = start_sidecar({**CLASSIFIER, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        calls(fm)
        fm.flush()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") >= 4)
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total") == 0, text
        assert figures(text) == expected, text
    finally:
        fm.close()
        s.close()


def test_inputs_of_numpy_times_are_not_forwarded_as_counts_of_their_unit(tmp_path) -> None:
    """In process an array of ``datetime64[ns]`` inputs is read as seconds; a forwarding worker
    wrote it as ``tolist()`` does, integers of nanoseconds, which the sidecar read as numbers a
    billion times too large, silently (s39f's measure). Such a call is dropped and counted
    ``unserializable`` now, as one of another unit was (its datetimes are no JSON)."""
    config = {"model": "m", "features": ["t"], "output": {"kind": "probabilities", "classes": ["n", "y"]}}
    sock = str(tmp_path / "n.sock")
    s = start_sidecar({**config, "server": {"forward": {"unix": sock}}}, tmp_path)
    fm = ForwardingMonitor("m", f"unix://{sock}", start=False)
    try:
        fm.observe(np.array([[np.datetime64("2024-01-01T00:00:00", "ns")]]), [[0.9, 0.1]])
        fm.observe(np.zeros((1, 1)), [[0.9, 0.1]])  # a call that arrives, so that the first is known not to
        fm.flush()
        assert fm.counters().dropped == {"unserializable": 1}, fm.counters()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") >= 1)
        s.flush()
        assert sample(s.metrics(), "monitor_predictions_total", model="m") == 1
    finally:
        fm.close()
        s.close()
