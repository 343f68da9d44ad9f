"""Calls of an ``output.kind: none`` model are monitored through their inputs (seeded).

Found by a user study: a decorated text generator (prompts in, strings out), an object detector
(rows in, lists of boxes out) and ``mon.observe(x, None)`` had every call refused
(non_numeric_output, rows_mismatch "5 input rows but 1 outputs"), and the inputs with it: no input
drift, no data quality, no text descriptors of the prompts. With ``output.kind: none`` the outputs
are not read (anything or nothing is accepted, and not held in the queue), a call's rows are its
input rows, and request ids, segments, timestamps work as usual. Labels sent for such a model are
refused as invalid (counted, said once with the fix), never raised to the caller.

Stated: prompts drawn from the reference's vocabulary raise no input drift over the first 2,000
rows, prompts in another vocabulary are detected within 500 rows of the onset with
``prompt.oov_share`` named first; an object detector's inputs shifted by one standard deviation
in one feature are detected within 1,000 rows; no row is refused in either.
"""

from __future__ import annotations

import logging

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.reference import Reference
from tests.test_text_drift import OTHER, texts

ONSET = 2000


def _rejected(mon: Monitor) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in mon.metrics_text().splitlines()
               if line.startswith("monitor_rows_rejected_total{"))


def _first_drift(mon: Monitor, call, batches) -> tuple[int | None, list]:
    """Feed ``batches`` (100 rows each, ten rows a second) through ``call``; the row count at
    which input drift first fired and its top features then."""
    now = [1_000_000.0]
    mon.clock = lambda: now[0]
    det = next(d for d in mon.detectors if d.kind == "input_drift")
    for i, rows in enumerate(batches):
        now[0] = 1_000_000.0 + i * 10
        call(rows)
        mon.flush()
        if det.drift_detected:
            return (i + 1) * 100, det.top_features
    return None, []


def test_a_decorated_text_generator_has_its_prompts_described_and_their_drift_detected() -> None:
    rng = np.random.default_rng(7)
    ref = Reference.from_arrays(np.empty((3000, 0)), text=np.array(texts(rng, 3000), dtype=object), text_names=["prompt"])
    mon = Monitor(model="llm", config={"features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}},
                  reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        @mon.watch
        def generate(prompts: list[str]) -> list[str]:
            return [f"An answer to {p!r}, at some length." for p in prompts]

        batches = [texts(rng, 100, OTHER) if i * 100 >= ONSET else texts(rng, 100) for i in range(60)]
        assert generate(batches[0])[0].startswith("An answer")  # the caller's answer, unchanged
        alarm, top = _first_drift(mon, generate, batches)
        assert alarm is not None and ONSET < alarm <= ONSET + 500, alarm
        assert top[0][0] == "prompt.oov_share", top
        assert mon.store.value("monitor_predictions") == alarm + 100  # every row, the first call's included
        assert _rejected(mon) == 0
    finally:
        mon.close()


def test_an_object_detectors_numeric_inputs_get_input_drift_whatever_it_returns() -> None:
    rng = np.random.default_rng(8)
    names = ["brightness", "contrast", "width", "height"]
    ref = Reference.from_arrays(rng.normal(size=(3000, 4)), numeric_names=names)
    mon = Monitor(model="boxes", config={"features": names, "output": {"kind": "none"}}, reference=ref,
                  registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        @mon.watch
        def detect(x: np.ndarray) -> list[list[dict]]:
            return [[{"box": [0, 0, 10, 10], "label": "cat", "score": 0.9}] * int(rng.integers(0, 4)) for _ in x]

        def rows(i: int) -> np.ndarray:
            x = rng.normal(size=(100, 4))
            if i * 100 >= ONSET:
                x[:, 0] += 1.0
            return x

        alarm, top = _first_drift(mon, detect, [rows(i) for i in range(40)])
        assert alarm is not None and ONSET < alarm <= ONSET + 1000, alarm
        assert top[0][0] == "brightness", top
        assert _rejected(mon) == 0
    finally:
        mon.close()


def test_observe_without_outputs_keeps_the_calls_rows_ids_segments_and_times() -> None:
    rng = np.random.default_rng(9)
    mon = Monitor(model="enc", config={"output": {"kind": "none"}}, registry=CollectorRegistry(), start_worker=False,
                  live=False)
    try:
        assert mon.observe(rng.normal(size=(5, 3)), None, request_id="r1", segment="eu", timestamp=1_000_000.0)
        assert mon.observe([[1.0, 2.0, 3.0]], {"embedding": [0.1] * 768}, client="c1", timestamp=1_000_010.0)
        assert mon.observe(rng.normal(size=(4, 3)), rng.normal(size=(4, 768)), timestamp=1_000_020.0)
        mon.flush()
        assert mon.store.value("monitor_predictions") == 10
        assert mon.store.value("monitor_calls") == 3
        assert mon.store.value("monitor_last_event_timestamp_seconds") == 1_000_020.0
        assert _rejected(mon) == 0
        assert mon.pipeline.builder.schema.names == ("f0", "f1", "f2")
    finally:
        mon.close()


def test_labels_for_a_model_without_monitored_outputs_are_refused_counted_and_said_once(caplog) -> None:
    mon = Monitor(model="gen", config={"output": {"kind": "none"}}, registry=CollectorRegistry(), start_worker=False,
                  live=False)
    try:
        mon.observe(["a prompt", "another prompt"], ["an answer", "another"], request_id="r1", timestamp=1_000_000.0)
        with caplog.at_level(logging.WARNING, logger="monitor"):
            assert mon.feedback(["r1/0", "r1/1"], ["good", "bad"], timestamp=1_000_001.0) is True  # never raised
            mon.flush()
            mon.feedback(["r1/0"], ["good"], timestamp=1_000_002.0)
            mon.flush()
        assert mon.store.value("monitor_predictions") == 2
        assert mon.store.value("monitor_feedback_labels", {"outcome": "invalid"}) == 3
        assert not mon.store.value("monitor_feedback_labels", {"outcome": "joined"})
        said = [r.getMessage() for r in caplog.records if "refused as invalid" in r.getMessage()]
        assert len(said) == 1 and "output.kind is none" in said[0] and "Fix:" in said[0], said
    finally:
        mon.close()
