"""Bad input, follow-ups of session 37's reviews (helper s37f): each test failed before its fix.
The standard: a clear error naming the field and the fix, counted when refused, never a crash of
the agent, a figure poisoned, a warning on the user's stderr or a value silently read as another."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.events import EventFormatError, parse_event
from tests.sidecar_support import http, sample, start_sidecar
from tests.test_proxy import IRIS

__all__: list[str] = []


def _monitor(config: dict) -> Monitor:
    return Monitor(model="m", config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def test_a_masked_segment_request_id_or_label_is_missing_not_the_text_dashes(caplog: pytest.LogCaptureFixture) -> None:
    """numpy's ``np.ma.masked`` (a masked array's element) given as a row's segment or request id
    was read as its text "--": its rows formed a segment named "--", and a prediction was held under
    the id "--", which a label sent for "--" joined (one sent for a masked id too). Under
    ``output.kind: labels`` a masked answer was refused as output_shape, "several values per row".
    It is now missing wherever None and NaN are: no segment (``unset``), no request id (not held; a
    label for it is unknown_id at once, said once), an answer refused as nan_output; a masked label
    given to feedback() stays invalid, as None is."""
    masked = np.ma.masked
    mon = _monitor({"features": ["a"], "output": {"kind": "probabilities", "classes": ["n", "y"]},
                    "detectors": [{"kind": "segments"}]})
    labels = _monitor({"features": ["a"], "output": {"kind": "labels"}})
    try:
        mon.observe([[1.0], [2.0], [3.0]], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], request_id=["r1", masked, "r3"],
                    segment=[masked, "eu", "eu"], client=masked)
        mon.flush()
        value = mon.store.value
        assert value("monitor_segment_rows_in_window", {"segment": "unset"}) == 1
        assert value("monitor_segment_rows_in_window", {"segment": "--"}) is None
        assert value("monitor_labels_pending") == 2  # r1 and r3: the masked id held nothing
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback(["--", masked, "r1"], ["n", "y", "n"])
            mon.flush()
        assert value("monitor_feedback_labels", {"outcome": "joined"}) == 1  # r1 alone
        assert value("monitor_feedback_labels", {"outcome": "unknown_id"}) == 1  # the masked id, at once
        assert value("monitor_labels_early") == 1  # "--" is an id like any other: it waits for its prediction
        said = [r.getMessage() for r in caplog.records if "read as no id" in r.getMessage()]
        assert len(said) == 1 and "request id masked" in said[0] and "Fix:" in said[0], said

        labels.observe([[1.0], [2.0], [3.0]], ["x", masked, "x"], request_id=["a", "b", "c"])
        labels.flush()
        lv = labels.store.value
        assert lv("monitor_rows_rejected", {"reason": "nan_output"}) == 1
        assert lv("monitor_rows_rejected", {"reason": "output_shape"}) is None
        assert lv("monitor_predicted_class", {"class": "x"}) == 2 and lv("monitor_predicted_class", {"class": "--"}) is None
        labels.feedback(["a", "c"], [masked, "x"])
        labels.flush()
        assert lv("monitor_feedback_labels", {"outcome": "invalid"}) == 1
        assert lv("monitor_feedback_labels", {"outcome": "joined"}) == 1
    finally:
        mon.close()
        labels.close()


def test_an_empty_request_id_is_no_id_in_code_and_refused_in_feedback_over_http(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An empty request id ("") was an id like any other: every prediction given it was held under
    "" (a batch call's rows under "/0", "/1"), a label for "" joined whichever came last, and one
    with no such prediction waited labels.early_wait, then counted unknown_id without a word; over
    HTTP feedback for "" was accepted (202) where a null id is a 400. It is now no id, as None is:
    the predictions hold nothing under it, feedback() counts its label unknown_id at once and says
    so once, and /v1/feedback (and feedback events) refuse it with a 400 naming the field."""
    mon = _monitor({"features": ["a"], "output": {"kind": "regression"}})
    try:
        mon.observe([[1.0]], [0.1], request_id="")
        mon.observe([[1.0], [2.0]], [0.1, 0.2], request_id=["", "r2"])
        mon.observe([[1.0], [2.0]], [0.1, 0.2], request_id="")  # a batch call: its rows were "/0" and "/1"
        mon.flush()
        value = mon.store.value
        assert value("monitor_labels_pending") == 1  # r2 alone
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback(["", "r2", "/0"], [1.0, 2.0, 3.0])
            mon.flush()
        assert value("monitor_feedback_labels", {"outcome": "joined"}) == 1
        assert value("monitor_feedback_labels", {"outcome": "unknown_id"}) == 1  # "", at once
        assert value("monitor_labels_early") == 1  # "/0" is a text id: it waits for its prediction
        said = [r.getMessage() for r in caplog.records if "read as no id" in r.getMessage()]
        assert len(said) == 1 and "request id ''" in said[0] and "empty text" in said[0] and "Fix:" in said[0], said
    finally:
        mon.close()

    for event, field in (({"type": "feedback", "request_id": "", "label": 1}, "request_id"),
                         ({"type": "feedback", "request_ids": ["a", ""], "labels": [1, 1]}, "request_ids[1]")):
        with pytest.raises(EventFormatError) as err:
            parse_event(event, 0.0)
        assert (err.value.field, err.value.reason) == (field, "bad_request_id") and "is empty" in str(err.value)
    s = start_sidecar(IRIS, tmp_path)
    try:
        r = http("POST", s.url + "/v1/feedback", {"request_id": "", "label": "setosa"})
        assert r.status == 400 and (r.json()["field"], r.json()["reason"]) == ("request_id", "bad_request_id"), r.body
        assert "give the id the prediction was sent with" in r.json()["error"], r.body
        r = http("POST", s.url + "/v1/feedback", {"request_ids": ["r1", ""], "labels": ["setosa", "setosa"]})
        assert r.status == 400 and r.json()["field"] == "request_ids[1]", r.body
        r = http("POST", s.url + "/v1/events", {"inputs": [[5.1, 3.5, 1.4, 0.2]], "outputs": [[0.8, 0.1, 0.1]],
                                                "request_id": ""})
        assert r.status == 202, r.body  # a prediction without an id, as with "request_id": null
        assert sample(s.metrics(), "monitor_intake_events_refused_total", model="iris", endpoint="feedback",
                      reason="bad_request_id") == 2
    finally:
        s.close()
