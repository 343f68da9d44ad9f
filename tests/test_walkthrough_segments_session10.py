"""Defects found by a walkthrough of the per-segment figures (issue 3 item 4) in session 10: a
platform engineer running ``monitor serve`` with classifiers (probabilities, logits, an
ensemble) and regression models whose events carry a ``segment``, turning on the options as the
README says and reading ``/metrics``. Each test fails without its fix."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor import Monitor, Reference
from tests.sidecar_support import total

T0 = 1_700_000_000.0


def _monitor(config: dict, **kwargs: object) -> Monitor:
    return Monitor(model="wt10", config=config, registry=CollectorRegistry(), live=False, start_worker=False, **kwargs)


def _classifier_reference(rng: np.random.Generator, n: int = 600) -> Reference:
    p = rng.dirichlet([2, 2, 2], n)
    y = np.array([rng.choice(3, p=row) for row in p])
    return Reference.from_arrays(rng.normal(size=(n, 3)), numeric_names=["a", "b", "c"], scores=p, labels=y)


def _segment_series(text: str, name: str) -> list[tuple[str, ...]]:
    """Label sets of ``name``'s samples (to find the same series written twice)."""
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out.append(tuple(sorted(s.labels.items())))
    return out


def test_intake_fast_path_cuts_segment_and_client_as_the_event_parser_does() -> None:
    """README: ``segment`` of the event format is cut to 200 characters, and a ``client`` over 256
    is kept as its digest (as the probing detector keeps it in code; s38h: it was cut to 200,
    making two long tokens one client). The intake's fast path (every ordinary prediction event
    of ``POST /v1/events``) kept them whole: a 500-character segment became a 500-character
    ``segment`` label on every per-segment series (seen on a live sidecar's /metrics), while the
    general parser cut it."""
    from monitor.events import MAX_LABEL_CHARS, id_key, parse_event
    from monitor.server.intake import parse_fast, parse_fast_batch

    obj = {"inputs": [1.0], "outputs": [0.2, 0.8], "segment": "s" * 500, "client": "c" * 300, "timestamp": 5.0}
    fast = parse_fast(obj, T0)
    assert fast is not None  # the fast path is the one taken
    general = parse_event(obj, T0)
    assert fast == (general.model, general.event)
    assert len(fast[1][7]) == MAX_LABEL_CHARS and fast[1][5] == id_key("c" * 300) and len(fast[1][5]) == 65
    batch = parse_fast_batch([obj, {**obj, "client": "c" * 256}], T0)
    assert batch is not None and [e[5] for e in batch[1]] == [id_key("c" * 300), "c" * 256]


_ODD = [None, "unset", "", 1, "1", "eu"]


@pytest.mark.parametrize("which", ["segments", "confidence_drift", "regression"])
def test_segment_values_that_print_alike_share_one_series(which: str) -> None:
    """Segment values whose names are the same label (a row without a segment and the string
    ``"unset"``; the integer 1 and the string "1" given to ``observe``) had a slot each: two
    series with one label set, of which the store kept one, so that the segments' rows no longer
    added up to the window's (seen live: 1,250 of 1,750 regression rows). An empty string is no
    segment either (Prometheus reads an empty label as an absent one): it counts as ``unset``."""
    rng = np.random.default_rng(0)
    per = 250
    segs = [v for v in _ODD for _ in range(per)]
    n = len(segs)
    x = rng.normal(size=(n, 3))
    if which == "regression":
        config = {"output": {"kind": "regression"}, "detectors": [{"kind": "regression", "by_segment": True, "min_rows": 10}]}
        outputs, ref = x.sum(axis=1), None
        name = "monitor_regression_segment_rows_in_window"
    elif which == "confidence_drift":
        config = {"detectors": [{"kind": "confidence_drift", "by_segment": True, "min_rows": 10}]}
        outputs, ref = rng.dirichlet([2, 2, 2], n), _classifier_reference(rng)
        name = "monitor_segment_confidence_drift_distance"
    else:
        config = {"detectors": [{"kind": "segments", "min_rows": 10}]}
        outputs, ref = rng.dirichlet([2, 2, 2], n), None
        name = "monitor_segment_rows_in_window"
    mon = _monitor(config, reference=ref)
    mon.observe(x, outputs, segment=segs, timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    mon.close()
    series = _segment_series(text, name)
    dupes = [labels for labels, count in Counter(series).items() if count > 1]
    assert not dupes, f"the same series written twice: {dupes}"
    found = {dict(labels)["segment"] for labels in series}
    assert found == {"unset", "1", "eu"}, found
    if name.endswith("rows_in_window"):
        assert total(text, name) == n
        assert total(text, name, segment="unset") == 3 * per
        assert total(text, name, segment="1") == 2 * per


def test_segment_slots_learn_one_slot_per_name() -> None:
    """The shared slot map gives values printing alike one slot, and a saved map restores it."""
    from monitor.detectors._segment_slots import SegmentSlots

    slots = SegmentSlots(3)
    got = slots.assign(np.array(["eu", None, "unset", "", 7, "7", "us", "asia"], dtype=object)).tolist()
    assert got == [0, 1, 1, 1, 2, 2, 3, 3]
    assert slots.names == ("eu", "unset", "7", "other")
    assert slots.take_overflow() == 2
    again = SegmentSlots(3)
    again.load_state_dict(slots.state_dict())
    assert again.assign(np.array([None, "", "unset", 7, "eu"], dtype=object)).tolist() == [1, 1, 1, 2, 0]


@pytest.mark.parametrize("which", ["confidence_drift", "prediction_drift", "regression"])
def test_by_segment_writes_no_series_until_a_row_carries_a_segment(which: str) -> None:
    """``by_segment: true`` on a model whose rows carry no segment wrote every figure a second
    time under ``segment="unset"`` (the segments detector stopped doing so today), and
    ModelSegmentConfidenceDrift / ModelSegmentPredictionDrift then fired beside the whole
    model's alert for the same rows. Once a row carries a segment, ``unset`` is written too."""
    rng = np.random.default_rng(1)
    n = 400
    x = rng.normal(size=(n, 3))
    if which == "regression":
        config = {"output": {"kind": "regression"}, "detectors": [{"kind": "regression", "by_segment": True, "min_rows": 10}]}
        outputs, ref, prefix = x.sum(axis=1), None, "monitor_regression_segment_"
    else:
        config = {"detectors": [{"kind": which, "by_segment": True, "min_rows": 10}]}
        outputs, ref, prefix = rng.dirichlet([2, 2, 2], n), _classifier_reference(rng), "monitor_segment_"
    mon = _monitor(config, reference=ref)
    mon.observe(x, outputs, timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    written = sorted({fam.name for fam in text_string_to_metric_families(text) if fam.name.startswith(prefix) and fam.samples})
    assert written == [], written
    mon.observe(x[:50], outputs[:50], segment="eu", timestamp=T0 + 1)
    mon.flush()
    text = mon.metrics_text()
    segs = {s.labels.get("segment") for fam in text_string_to_metric_families(text) if fam.name.startswith(prefix)
            for s in fam.samples}
    assert {"unset", "eu"} <= segs, segs
    mon.close()


@pytest.mark.parametrize("kind", ["confidence_drift", "prediction_drift", "regression", "segments"])
@pytest.mark.parametrize("cap", [0, -2, 2.5])
def test_a_detector_segment_cap_below_one_is_refused_by_the_config(tmp_path: "object", kind: str, cap: object) -> None:
    """``segment_cap: 0`` on ``confidence_drift`` or ``prediction_drift`` (detectors that need the
    reference, which ``monitor config check`` does not build) passed the check with SUCCESS; then
    ``monitor serve`` never became ready (readyz: "segment_cap must be at least 1"). It is
    refused where the config is read, with its key and the fix, as ``segments.cap: 0`` is."""
    from click.testing import CliRunner

    from monitor.cli import main

    path = tmp_path / "monitor.yaml"  # type: ignore[operator]
    path.write_text(f"model: m\ndetectors:\n  - {{kind: {kind}, by_segment: true, segment_cap: {cap}}}\n"
                    if kind != "segments" else f"model: m\ndetectors:\n  - {{kind: segments, segment_cap: {cap}}}\n")
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code != 0, result.output
    assert f"detectors[0].segment_cap: must be an integer >= 1, got {cap}. Fix: write a whole number, at least 1" in result.output


def test_raising_segments_cap_keeps_the_checkpoint(tmp_path: "object") -> None:
    """An operator who raises ``segments.cap`` (MonitorSeriesCapReached's runbook points at it)
    and restarts lost the whole checkpoint: the segments detector, a default of every classifier,
    refused its windows' new width, so the file was moved aside as incompatible with every
    detector's windows, the label joins, the alert states and the counters (``increase()`` saw a
    reset). The per-segment figures now refill, as the per-segment regression and drift ones do,
    and everything else is restored."""
    import os

    rng = np.random.default_rng(0)
    path = os.path.join(str(tmp_path), "w.ckpt")

    def make(cap: int) -> Monitor:
        return _monitor({"segments": {"cap": cap}, "checkpoint": {"path": path},
                         "detectors": ["confidence", {"kind": "segments", "histograms": True, "temperature_rows": 100}]})

    mon = make(3)
    n = 1000
    mon.observe(rng.normal(size=(n, 3)), rng.dirichlet([2, 2, 2], n), segment=rng.choice(list("abcde"), n).tolist(),
                timestamp=T0)
    mon.flush()
    mon.save_checkpoint(final=True)
    mon.close()
    again = make(5)
    assert again.restore_checkpoint()
    assert again.restore_report is not None and again.restore_report.detectors_restored
    again.flush()
    text = again.metrics_text()
    assert total(text, "monitor_confidence_ratio_count") == n  # the whole model's state came back
    assert total(text, "monitor_segment_rows_in_window") == 0  # the segments refill
    again.observe(rng.normal(size=(10, 3)), rng.dirichlet([2, 2, 2], 10), segment="f", timestamp=T0 + 1)
    again.flush()
    assert total(again.metrics_text(), "monitor_segment_rows_in_window", segment="f") == 10
    again.close()
