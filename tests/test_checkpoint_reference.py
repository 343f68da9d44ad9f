"""Checkpoint format 2: the reference travels in the checkpoint (with a fingerprint) and the metric
store's counters continue across clean restarts (a crash starts them at zero).

Restoring with the same reference restores everything; with the reference gone the monitor adopts
the checkpoint's and answers exactly as before; with a changed reference the old detector states
are set aside (reported) while alert states, the event clock and counters are kept; format 1
checkpoints still load; damaged ones are set aside, never a crash. Real files in ``tmp_path``.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitor import checkpoint
from monitor.checkpoint import encode_state
from monitor.core import NOT_CHECKPOINTED_COUNTERS, STATE_VERSION, Monitor
from monitor.profile import Profile, load_reference
from monitor.reference import Reference, reference_fingerprint, reference_from_state, reference_state
from monitor.store import MetricStore
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

CLASSES = ["setosa", "versicolor", "virginica"]
BASE = {"model": "iris", "features": ["a", "b", "c", "d"], "output": {"kind": "probabilities", "classes": CLASSES},
        "probing": {"client_id_salt": "fixed"}}  # else each probing detector draws its own salt
T0 = 1_700_000_000.0


def reference_arrays(seed: int, n: int = 600) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    p = rng.dirichlet(np.ones(3), size=n)
    return {"numeric": x, "numeric_names": ["a", "b", "c", "d"], "scores": p,
            "labels": rng.integers(0, 3, size=n), "classes": CLASSES}


def write_profile(path: Path, seed: int) -> Path:
    return Profile.from_arrays(**reference_arrays(seed)).save(path)


def monitor(tmp_path: Path, *, reference: Reference | None = None, ref_file: Path | None = None,
            rules: bool = False) -> Monitor:
    raw = dict(BASE)
    if ref_file is not None:
        raw["reference"] = {"path": str(ref_file)}
    if rules:
        (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
            {"alert": "AlwaysOn", "expr": "vector(1)", "for": "0s", "labels": {"severity": "info"}}]}]}))
        raw["rules"] = {"files": [str(tmp_path / "rules.yml")], "interval": "15s", "log": False}
    return Monitor(config=raw, reference=reference, registry=CollectorRegistry(), start_worker=False, live=False)


def feed(mon: Monitor, n: int, seed: int, start: float = T0) -> None:
    """Traffic shifted away from the reference, so that drift figures are non-trivial."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=0.7, size=(n, 4))
    p = rng.dirichlet([4.0, 1.0, 1.0], size=n)
    for i in range(0, n, 10):
        mon.observe(x[i : i + 10], p[i : i + 10], request_id=f"{seed}-{i}", client=f"c{i % 7}", timestamp=start + i)
    mon.flush()


def gauges(mon: Monitor, at: float) -> dict:
    """Every gauge the detectors export at event time ``at`` (the monitor's answers), by name and
    labels. Moving to ``at`` (a later window slot) makes every detector recompute its figures
    rather than keep values that are current to within its refresh tolerance, whose pacing is
    not part of the checkpoint."""
    mon.advance(at)
    mon.evaluate_rules(at) if mon.rules is not None else mon.pipeline.export(at)
    types = {fam.spec.name: fam.spec.type for fam in mon.store.snapshot()}
    return {(name, tuple(sorted(labels.items()))): value for name, labels, value in mon.store.samples()
            if types.get(name) == "gauge" and name not in PACED and not name.startswith("monitor_checkpoint_")}


#: Gauges whose re-export is paced by state outside the checkpoint (the drift detectors re-score
#: only every ``scales[-1]`` rows, counted from the process start), so a restored monitor exports a
#: fresher value sooner; the scores themselves are in the detector state compared separately.
PACED = {"monitor_queue_depth", "monitor_queue_capacity", "monitor_drift_score_ratio", "monitor_drift_feature_score_ratio"}


def detector_states(mon: Monitor) -> tuple:
    tree, arrays = encode_state(mon.state_dict()["detectors"])
    return tree, arrays


def same_detector_states(a: Monitor, b: Monitor) -> bool:
    ta, xa = detector_states(a)
    tb, xb = detector_states(b)
    return ta == tb and len(xa) == len(xb) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f") for x, y in zip(xa, xb))


def save(mon: Monitor, path: Path) -> None:
    checkpoint.save(path, mon.state_dict(final=True), model=mon.model, state_version=STATE_VERSION)


# -- the reference in the checkpoint -----------------------------------------------------------------
def test_fingerprints_survive_the_checkpoint_round_trip_and_tell_references_apart(tmp_path):
    in_code = Reference.from_arrays(**reference_arrays(1))
    from_profile = load_reference(write_profile(tmp_path / "ref.npz", 1))
    for ref in (in_code, from_profile):
        path = tmp_path / "r.ckpt"
        checkpoint.save(path, {"reference": reference_state(ref)}, model="m", state_version=STATE_VERSION)
        state, manifest = checkpoint.load(path)
        back = reference_from_state(state["reference"])
        assert reference_fingerprint(back) == reference_fingerprint(ref) == manifest["reference_fingerprint"]
        assert manifest["reference_stored"] is True
        assert np.array_equal(back.numeric, ref.numeric) and back.classes == ref.classes
        assert (back.profile is not None) == (ref is from_profile)  # a profile read from a file travels with it
    # a detector caching a derived profile on the rows does not change the identity
    before = reference_fingerprint(in_code)
    from monitor.profile import profile_of

    profile_of(in_code)
    assert reference_fingerprint(in_code) == before
    # any change of content does
    other = reference_arrays(1)
    other["numeric"] = other["numeric"].copy()
    other["numeric"][5, 2] += 1e-9
    assert reference_fingerprint(Reference.from_arrays(**other)) != before
    assert reference_fingerprint(load_reference(write_profile(tmp_path / "ref2.npz", 2))) != reference_fingerprint(from_profile)
    renamed = {**reference_arrays(1), "numeric_names": ["a", "b", "c", "e"]}
    assert reference_fingerprint(Reference.from_arrays(**renamed)) != before


def test_a_reference_too_large_for_checkpoints_is_fingerprinted_only():
    ref = Reference.from_arrays(**reference_arrays(1))
    state = reference_state(ref, max_bytes=1000)
    assert state["payload"] is None and "exceed the checkpoint limit" in state["omitted"]
    assert state["fingerprint"] == reference_fingerprint(ref)
    assert reference_from_state(state) is None


def test_same_reference_restores_everything_and_continues_identically(tmp_path):
    ref_file = write_profile(tmp_path / "ref.npz", 1)
    a = monitor(tmp_path, ref_file=ref_file)
    feed(a, 400, seed=10)
    save(a, tmp_path / "m.ckpt")
    b = monitor(tmp_path, ref_file=ref_file)
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    report = b.restore_report
    assert report.reference == "same" and report.detectors_restored and report.counters_restored
    assert same_detector_states(a, b)
    feed(a, 200, seed=11, start=T0 + 400)
    feed(b, 200, seed=11, start=T0 + 400)
    assert same_detector_states(a, b)
    assert gauges(a, T0 + 900) == gauges(b, T0 + 900) != {}


def test_reference_gone_the_monitor_adopts_the_checkpointed_one_and_answers_identically(tmp_path):
    ref_file = write_profile(tmp_path / "ref.npz", 1)
    a = monitor(tmp_path, ref_file=ref_file)
    feed(a, 400, seed=10)
    save(a, tmp_path / "m.ckpt")
    ref_file.unlink()  # the operator's volume lost the reference; the checkpoint still has it
    b = monitor(tmp_path)  # no reference: the default detectors that need one are not even built
    assert len(b.detectors) < len(a.detectors)
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert b.restore_report.reference == "adopted" and b.restore_report.detectors_restored
    assert reference_fingerprint(b.reference) == reference_fingerprint(a.reference)
    assert [type(d).__name__ for d in b.detectors] == [type(d).__name__ for d in a.detectors]
    assert b.pipeline.detectors == b.detectors
    assert same_detector_states(a, b)
    feed(a, 200, seed=11, start=T0 + 400)
    feed(b, 200, seed=11, start=T0 + 400)
    assert same_detector_states(a, b)
    answers = gauges(a, T0 + 900)
    assert answers == gauges(b, T0 + 900)
    assert any("drift" in name for name, _ in answers)
    # and its next checkpoint carries the same reference again: the file may come back any time
    save(b, tmp_path / "m2.ckpt")
    assert checkpoint.read_manifest(tmp_path / "m2.ckpt")["reference_fingerprint"] == reference_fingerprint(a.reference)


def test_changed_reference_sets_detector_states_aside_but_keeps_alerts_clock_and_counters(tmp_path, caplog):
    a = monitor(tmp_path, ref_file=write_profile(tmp_path / "old.npz", 1), rules=True)
    feed(a, 400, seed=10)
    a.evaluate_rules(T0 + 400)
    (alert,) = a.alerts()
    calls = a.store.value("monitor_calls")
    save(a, tmp_path / "m.ckpt")

    new_file = write_profile(tmp_path / "new.npz", 2)  # the operator shipped a new reference
    b = monitor(tmp_path, ref_file=new_file, rules=True)
    fresh = monitor(tmp_path, ref_file=new_file)
    with caplog.at_level(logging.WARNING, logger="monitor.checkpoint"):
        assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    report = b.restore_report
    assert (report.reference, report.detectors_restored, report.set_aside_reason) == ("changed", False, "reference_changed")
    assert "reference changed" in caplog.text
    assert b.store.value("monitor_checkpoint_failures", ("restore", "reference_changed")) == 1
    assert (tmp_path / "m.ckpt").exists()  # nothing was wrong with the file: it is not moved aside
    # the detectors are those of the new reference, untouched by the old state
    assert reference_fingerprint(b.reference) == reference_fingerprint(fresh.reference)
    assert same_detector_states(b, fresh)
    # ... while the alert, the event clock and the counters continue
    (kept,) = b.alerts()
    assert (kept.name, kept.active_at, str(kept.state)) == (alert.name, alert.active_at, str(alert.state))
    assert b.pipeline.clock == a.pipeline.clock
    assert b.store.value("monitor_calls") == calls
    fresh.close()


def test_a_monitor_without_reference_restores_detectors_passed_in_code_as_before(tmp_path):
    from monitor.config import parse_config
    from monitor.detectors.context import DetectorContext
    from monitor.detectors.registry import create

    cfg = parse_config(BASE).model()

    def dets():
        return [create("confidence", reference=None, params={}, context=DetectorContext(cfg.schema, cfg.output))]

    a = Monitor(config=BASE, registry=CollectorRegistry(), start_worker=False, live=False, detectors=dets())
    feed(a, 100, seed=3)
    save(a, tmp_path / "m.ckpt")
    b = Monitor(config=BASE, registry=CollectorRegistry(), start_worker=False, live=False, detectors=dets())
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert b.restore_report.reference == "same"
    assert same_detector_states(a, b)


def test_reference_omitted_and_none_configured_sets_detector_states_aside(tmp_path):
    a = monitor(tmp_path, reference=Reference.from_arrays(**reference_arrays(1)))
    feed(a, 200, seed=10)
    state = a.state_dict(final=True)
    state["reference"] = reference_state(a.reference, max_bytes=10)
    checkpoint.save(tmp_path / "m.ckpt", state, model="iris", state_version=STATE_VERSION)
    assert checkpoint.read_manifest(tmp_path / "m.ckpt")["reference_stored"] is False
    b = monitor(tmp_path)
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert (b.restore_report.reference, b.restore_report.set_aside_reason) == ("missing", "reference_missing")
    assert b.reference is None
    assert b.store.value("monitor_calls") == a.store.value("monitor_calls") == 20  # one call per batch of 10


# -- counters ------------------------------------------------------------------------------------------
def test_a_periodic_checkpoints_counters_start_at_zero_after_a_crash(tmp_path, caplog):
    """A periodic checkpoint is behind what Prometheus scraped before a crash: its counters,
    restored, would go down but not to zero, a reset whose new value ``increase()`` counts as
    new events. Only a final (shutdown) checkpoint's counters continue; the state itself is
    restored either way."""
    a = monitor(tmp_path, rules=True)
    feed(a, 300, seed=4)
    checkpoint.save(tmp_path / "m.ckpt", a.state_dict(), model=a.model, state_version=STATE_VERSION)  # periodic
    at_checkpoint = a.store.value("monitor_calls")
    feed(a, 100, seed=5)  # counted and scraped after the checkpoint, then the process is killed
    scraped = sample(a.metrics_text(), "monitor_calls_total", model="iris")
    assert scraped > at_checkpoint > 0

    b = monitor(tmp_path, rules=True)
    with caplog.at_level(logging.INFO, logger="monitor.checkpoint"):
        assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    report = b.restore_report
    assert report.detectors_restored and not report.counters_restored
    assert "counters start at zero" in caplog.text
    assert b.store.value("monitor_calls") is None and b.store.value("monitor_predictions") is None
    b.flush()
    assert b.store.value("monitor_calls") is None  # nothing new counted: zero, not 300 of 400
    # the same state written at shutdown continues them
    checkpoint.save(tmp_path / "final.ckpt", a.state_dict(final=True), model=a.model, state_version=STATE_VERSION)
    c = monitor(tmp_path, rules=True)
    assert checkpoint.restore(c, tmp_path / "final.ckpt") == (True, None)
    assert c.restore_report.counters_restored
    assert sample(c.metrics_text(), "monitor_calls_total", model="iris") == scraped


def test_counters_and_histograms_continue_and_gauges_are_not_carried(tmp_path):
    a = monitor(tmp_path, rules=True)
    feed(a, 300, seed=4)
    for k in range(3):
        a.evaluate_rules(T0 + 300 + 15 * k)
    a.store.inc("monitor_notifications", 5, labels=("webhook", "sent"))
    a.store.set("monitor_checkpoint_size_bytes", 123.0)  # a gauge: its owner sets it again
    before = {n: a.store.value(n) for n in ("monitor_calls", "monitor_predictions", "monitor_rule_evaluations")}
    exposed = sample(a.metrics_text(), "monitor_calls_total", model="iris")
    hist = a.store.value("monitor_rule_evaluation_seconds")
    state = a.store.counter_state(exclude=NOT_CHECKPOINTED_COUNTERS)
    assert "monitor_notifications" not in state["counters"]
    assert all(a.store._specs[n].type == "counter" for n in state["counters"])
    assert all(a.store._specs[n].type == "histogram" for n in state["histograms"])
    save(a, tmp_path / "m.ckpt")

    b = monitor(tmp_path, rules=True)
    b.store.inc("monitor_calls", 7)  # counted by the new process before the restore: kept
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert b.store.value("monitor_calls") == before["monitor_calls"] + 7
    assert b.store.value("monitor_predictions") == before["monitor_predictions"]
    assert b.store.value("monitor_rule_evaluations") == before["monitor_rule_evaluations"] >= 3
    h = b.store.value("monitor_rule_evaluation_seconds")
    assert (h.counts, h.sum, h.count) == (hist.counts, hist.sum, hist.count)
    assert b.store.value("monitor_notifications", ("webhook", "sent")) is None  # restarts with the notifier
    assert b.store.value("monitor_checkpoint_size_bytes") is None
    # a scrape after the restart sees the counter where the last one left it: no reset
    assert sample(b.metrics_text(), "monitor_calls_total", model="iris") == exposed + 7
    # and they go on counting from there
    b.evaluate_rules(T0 + 400)
    assert b.store.value("monitor_rule_evaluations") == before["monitor_rule_evaluations"] + 1
    assert b.store.value("monitor_rule_evaluation_seconds").count == hist.count + 1


def test_counter_families_that_no_longer_fit_the_catalog_are_skipped_whole():
    store = MetricStore("m")
    store.inc("monitor_calls", 3)
    store.inc("monitor_events_dropped", 2, labels=("queue_full",))
    store.observe("monitor_latency_seconds", [0.01, 0.2])
    state = store.counter_state()
    state["histograms"]["monitor_latency_seconds"]["buckets"][0] += 1.0  # bucket layout changed
    state["counters"]["monitor_events_dropped"][0][0] = ["queue_full", "extra"]  # label arity changed
    state["counters"]["monitor_no_longer_exists"] = [[[], 1.0]]
    state["counters"]["monitor_queue_depth"] = [[[], 4.0]]  # a gauge now
    state["counters"]["monitor_rows_rejected"] = [[["bad"], -1.0]]  # a negative counter is corrupt
    other = MetricStore("m")
    skipped = other.load_counter_state(json.loads(json.dumps(state)))
    assert skipped == sorted(["monitor_latency_seconds", "monitor_events_dropped", "monitor_no_longer_exists",
                              "monitor_queue_depth", "monitor_rows_rejected"])
    assert other.value("monitor_calls") == 3
    assert other.value("monitor_latency_seconds") is None and other.value("monitor_queue_depth") is None
    assert other.value("monitor_events_dropped", ("queue_full",)) is None


# -- old and damaged checkpoints --------------------------------------------------------------------
def _rewrite(path: Path, manifest_changes: dict | None = None, state_fn=None) -> None:
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"])
    manifest.update(manifest_changes or {})
    files["manifest.json"] = json.dumps(manifest).encode()
    if state_fn is not None:
        files["state.json"] = json.dumps(state_fn(json.loads(files["state.json"]))).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)


def test_a_format_1_checkpoint_still_loads_without_reference_and_counters(tmp_path):
    ref = Reference.from_arrays(**reference_arrays(1))
    a = monitor(tmp_path, reference=ref)
    feed(a, 300, seed=5)
    old = a.state_dict()
    del old["reference"], old["counters"]
    old["version"] = 1
    path = tmp_path / "m.ckpt"
    checkpoint.save(path, old, model="iris", state_version=1)
    _rewrite(path, {"format_version": 1})
    b = monitor(tmp_path, reference=ref)
    assert checkpoint.restore(b, path) == (True, None)
    report = b.restore_report
    assert (report.reference, report.detectors_restored, report.counters_restored, report.state_version) == ("unverified", True, False, 1)
    assert same_detector_states(a, b)
    assert b.store.value("monitor_calls") is None  # format 1 had no counters: they start again


@pytest.mark.parametrize("damage, reason", [
    ({"format_version": 3}, "version"),
    ({"state_version": STATE_VERSION + 1}, "version"),
])
def test_a_newer_checkpoint_is_set_aside_not_loaded(tmp_path, damage, reason):
    a = monitor(tmp_path, reference=Reference.from_arrays(**reference_arrays(1)))
    save(a, tmp_path / "m.ckpt")
    _rewrite(tmp_path / "m.ckpt", damage)
    b = monitor(tmp_path)
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (False, reason)
    assert len(list(tmp_path.glob(f"m.ckpt.{reason}-*"))) == 1 and not (tmp_path / "m.ckpt").exists()


def test_a_tampered_reference_is_refused_by_its_fingerprint_and_set_aside(tmp_path):
    ref_file = write_profile(tmp_path / "ref.npz", 1)
    a = monitor(tmp_path, ref_file=ref_file)
    feed(a, 100, seed=6)
    save(a, tmp_path / "m.ckpt")

    def tamper(state):
        state["reference"]["fingerprint"] = "sha256:" + "0" * 64
        return state

    _rewrite(tmp_path / "m.ckpt", state_fn=tamper)
    b = monitor(tmp_path)  # would adopt the checkpoint's reference, but it does not match its fingerprint
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (False, "incompatible")
    assert len(list(tmp_path.glob("m.ckpt.incompatible-*"))) == 1


# -- the sidecar ----------------------------------------------------------------------------------------
def test_sidecar_starts_on_the_checkpointed_reference_when_the_file_is_gone(tmp_path):
    ref_file = write_profile(tmp_path / "ref.npz", 1)
    raw = {**BASE, "reference": {"path": "ref.npz"}, "checkpoint": {"path": "state/{model}.ckpt", "interval": "1h"}}
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False))
    fingerprint = reference_fingerprint(s.sidecar.monitors["iris"].reference)
    n_detectors = len(s.sidecar.monitors["iris"].detectors)
    http("POST", s.url + "/v1/events", [{"inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3], "request_id": f"r{i}",
                                          "timestamp": T0 + i} for i in range(30)])
    s.flush()
    s.close()  # graceful: final checkpoint
    ref_file.unlink()
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False))
    try:
        mon = s.sidecar.monitors["iris"]
        assert http("GET", s.url + "/readyz").status == 200
        assert reference_fingerprint(mon.reference) == fingerprint and len(mon.detectors) == n_detectors
        assert mon.restore_report.reference == "adopted"
        status = http("GET", s.url + "/api/v1/status").json()["data"]["models"]["iris"]
        assert (status["reference_restore"], status["detector_state_set_aside"]) == ("adopted", None)
        text = s.metrics()
        assert sample(text, "monitor_checkpoint_restored", model="iris") == 1
        assert sample(text, "monitor_intake_events_accepted_total", model="iris", endpoint="events") == 30
    finally:
        s.close()
    # a new reference is shipped: the model starts on it, the old detector states are reported set aside
    write_profile(tmp_path / "ref.npz", 2)
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False))
    try:
        mon = s.sidecar.monitors["iris"]
        assert reference_fingerprint(mon.reference) != fingerprint and mon.restore_report.reference == "changed"
        status = http("GET", s.url + "/api/v1/status").json()["data"]["models"]["iris"]
        assert (status["reference_restore"], status["detector_state_set_aside"]) == ("changed", "reference_changed")
        text = s.metrics()
        assert sample(text, "monitor_checkpoint_failures_total", model="iris", operation="restore", reason="reference_changed") == 1
        assert sample(text, "monitor_intake_events_accepted_total", model="iris", endpoint="events") == 30
    finally:
        s.close()
    (tmp_path / "ref.npz").unlink()
    # without the file and without a usable checkpoint the model cannot start: reported, not a crash loop
    (tmp_path / "state" / "iris.ckpt").write_bytes(b"garbage")
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False), wait_ready=False)
    try:
        from tests.sidecar_support import wait_until

        assert wait_until(lambda: s.sidecar.load_error is not None)
        assert http("GET", s.url + "/readyz").status == 503
    finally:
        s.close()


def test_free_form_profile_metadata_does_not_break_checkpoints(tmp_path):
    ref = load_reference(write_profile(tmp_path / "ref.npz", 1))
    ref.profile.meta["built_from"] = tmp_path / "data.csv"  # not JSON: kept as text, not refused
    state = reference_state(ref)
    checkpoint.save(tmp_path / "r.ckpt", {"reference": state}, model="m", state_version=STATE_VERSION)
    back = reference_from_state(checkpoint.load(tmp_path / "r.ckpt")[0]["reference"])
    assert reference_fingerprint(back) == state["fingerprint"] == reference_fingerprint(ref)
    assert back.profile.meta["built_from"] == repr(tmp_path / "data.csv")


def test_a_restore_says_when_the_last_checkpoint_succeeded(tmp_path):
    """Helper D's walkthrough: the Agent dashboard's "Checkpoint age" panel (time() minus
    monitor_checkpoint_last_success_timestamp_seconds) was empty after every restart until the
    first periodic save, one checkpoint interval later. The restored file is the last checkpoint
    that succeeded: the gauge holds its creation time as soon as it is restored."""
    a = monitor(tmp_path)
    feed(a, 50, seed=3)
    info = checkpoint.save(tmp_path / "m.ckpt", a.state_dict(), model=a.model, state_version=STATE_VERSION)
    b = monitor(tmp_path)
    assert b.store.value("monitor_checkpoint_last_success_timestamp_seconds") is None
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert b.store.value("monitor_checkpoint_last_success_timestamp_seconds") == pytest.approx(info.created)
    assert sample(b.metrics_text(), "monitor_checkpoint_last_success_timestamp_seconds", model="iris") == pytest.approx(info.created)


def test_a_final_checkpoints_counters_are_restored_once(tmp_path):
    """The final review: a process that restored a final checkpoint and was killed before its
    first periodic save left the final file in place, and the next start restored the same
    counters again, below what had been scraped since (300 after 500: a reset to a non-zero
    value that increase() counts as 300 new events). Restoring a final checkpoint's counters
    rewrites it as a periodic one."""
    a = monitor(tmp_path)
    feed(a, 300, seed=4)
    checkpoint.save(tmp_path / "m.ckpt", a.state_dict(final=True), model=a.model, state_version=STATE_VERSION)
    b = monitor(tmp_path)
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert b.restore_report.counters_restored and b.store.value("monitor_calls") == a.store.value("monitor_calls")
    feed(b, 200, seed=5)  # counted, scraped, then kill -9 before any periodic save
    c = monitor(tmp_path)
    assert checkpoint.restore(c, tmp_path / "m.ckpt") == (True, None)
    assert c.restore_report.detectors_restored and not c.restore_report.counters_restored
    assert c.store.value("monitor_calls") is None


def categorical_profile() -> Profile:
    """A profile with a categorical feature, built the same in every run (its creation time fixed)."""
    x = (np.arange(60, dtype=np.float64).reshape(30, 2) % 7) / 7.0
    cat = np.array([["a"], ["b"], ["a"], ["c"], ["a"], ["d"]] * 5, dtype=object)
    p = np.tile([[0.25, 0.75], [0.6, 0.4], [0.9, 0.1]], (10, 1))
    prof = Profile.from_arrays(x, numeric_names=["x0", "x1"], categorical=cat, categorical_names=["city"], scores=p,
                               classes=["n", "y"])
    prof.meta = {"source": "test"}
    return prof


def test_a_profiles_fingerprint_is_the_one_versions_before_n_beyond_gave_it():
    """CategoricalProfile.n_beyond (recorded since the leave-one-out unseen rate) is a summary of
    the same rows, not part of the reference's identity: hashed, every profile with a categorical
    feature got a new fingerprint after the upgrade, so that the first restart set every
    detector's state aside as calibrated on another reference. The fingerprint below is the one
    the version before n_beyond gave this profile; since the profile's descriptive ``meta`` (source
    file name, build time) left the identity, it is this profile's legacy fingerprint, which a
    restore accepts as its own (the restore test below).

    The profile's PCA is left out: how the PCA is calibrated is part of the profile, and when it
    changed (fitted on one half, calibrated on the other) the same rows built another profile,
    whose fingerprint is rightly another. Without it, the value is the one the pinned profile had
    in the version whose full-profile fingerprint (25170ada...) matched the version before
    n_beyond."""
    import dataclasses

    from monitor.reference import legacy_reference_fingerprint

    prof = dataclasses.replace(categorical_profile(), pca=None)
    assert prof.categorical[0].n_beyond is not None  # recorded by this version
    assert legacy_reference_fingerprint(prof.to_reference()) == (
        "sha256:43950c1997778e2ef613b60fe9e167acf30e75051e4705cdc5dddff4379f9443")
    assert reference_fingerprint(prof.to_reference()) != legacy_reference_fingerprint(prof.to_reference())


def test_a_profile_saved_before_n_beyond_restores_a_checkpoint_written_with_one_built_after(tmp_path):
    """A profile file saved before n_beyond loads with it None; the same data profiled now has it:
    both are one reference to a checkpoint, whose detector states are then restored."""
    import dataclasses

    new = categorical_profile()
    old = dataclasses.replace(new, categorical=tuple(dataclasses.replace(c, n_beyond=None) for c in new.categorical))
    raw = {"model": "m", "features": ["x0", "x1", {"name": "city", "type": "categorical"}],
           "output": {"kind": "probabilities", "classes": ["n", "y"]}, "detectors": ["data_quality", "input_drift"]}
    first = Monitor(config=raw, reference=old.to_reference(), registry=CollectorRegistry(), start_worker=False, live=False)
    rows = [{"x0": 0.1 * i, "x1": 0.5, "city": "abcde"[i % 5]} for i in range(40)]
    first.observe(rows, np.tile([0.3, 0.7], (40, 1)), timestamp=T0)
    first.flush()
    first.save_checkpoint(tmp_path / "m.ckpt")
    first.close()
    same = Monitor(config=raw, reference=new.to_reference(), registry=CollectorRegistry(), start_worker=False, live=False)
    assert same.restore_checkpoint(tmp_path / "m.ckpt")
    assert same.restore_report.reference == "same" and same.restore_report.detectors_restored
    same.close()


def test_a_raw_reference_file_profiled_at_a_later_start_restores_the_detector_states(tmp_path, monkeypatch):
    """``reference.path`` naming a data file (a CSV) is profiled at every start, and the profile's
    ``meta`` held the time it was built ("created"), hashed into the fingerprint: a restart a
    second or more later read as another reference, and every detector's state was set aside at
    every restart. A profile built in memory has no build time; one saved with ``monitor reference
    build`` keeps its own (its fingerprint as before)."""
    import time

    arrays = reference_arrays(3)
    header = ",".join(arrays["numeric_names"])
    np.savetxt(tmp_path / "ref.csv", arrays["numeric"], delimiter=",", header=header, comments="")
    a = monitor(tmp_path, ref_file=tmp_path / "ref.csv")
    feed(a, 400, seed=10)
    save(a, tmp_path / "m.ckpt")
    real_gmtime = time.gmtime
    monkeypatch.setattr(time, "gmtime", lambda *secs: real_gmtime(86_400 * 365))  # the next start: another build time
    b = monitor(tmp_path, ref_file=tmp_path / "ref.csv")
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert b.restore_report.reference == "same" and b.restore_report.detectors_restored
    assert same_detector_states(a, b)
    saved = Profile.load(write_profile(tmp_path / "saved.npz", 3))
    assert "created" in saved.meta  # a saved profile keeps its build time


def test_a_renamed_reference_file_restores_the_detector_states(tmp_path):
    """The profile's ``meta`` (the file's base name, the PCA fit's, the build time) says where
    the reference came from, not what the detectors count against: renaming the file (a new
    ConfigMap key) set every detector's state aside at the next start; other content is still
    another reference."""
    arrays = reference_arrays(3)
    first_path = tmp_path / "ref_v1.csv"  # a data file: profiled at every start, its name in meta
    np.savetxt(first_path, arrays["numeric"], delimiter=",", header=",".join(arrays["numeric_names"]), comments="")
    a = monitor(tmp_path, ref_file=first_path)
    feed(a, 400, seed=10)
    save(a, tmp_path / "m.ckpt")
    renamed = tmp_path / "reference.csv"
    first_path.rename(renamed)
    b = monitor(tmp_path, ref_file=renamed)
    assert b.reference is not None and b.reference.profile is not None
    assert b.reference.profile.meta["source"] == "reference.csv"  # the name is still recorded
    assert checkpoint.restore(b, tmp_path / "m.ckpt") == (True, None)
    assert b.restore_report.reference == "same" and b.restore_report.detectors_restored
    assert same_detector_states(a, b)

    other_path = tmp_path / "other.csv"
    np.savetxt(other_path, reference_arrays(4)["numeric"], delimiter=",", header=",".join(arrays["numeric_names"]), comments="")
    other = monitor(tmp_path, ref_file=other_path)
    assert checkpoint.restore(other, tmp_path / "m.ckpt") == (True, None)
    assert other.restore_report.reference == "changed" and not other.restore_report.detectors_restored


def test_a_checkpoint_of_an_older_agent_whose_fingerprint_hashed_meta_still_restores(tmp_path):
    """Older agents hashed a profile's meta into the fingerprint: a saved profile's (its build
    time and source are in the file, the same at every load) checkpoint stores that legacy
    fingerprint, which is restored as the same reference and adopted by a monitor without one."""
    from monitor.reference import legacy_reference_fingerprint

    path = write_profile(tmp_path / "ref.npz", 3)
    a = monitor(tmp_path, ref_file=path)
    feed(a, 400, seed=10)
    state = a.state_dict(final=True)
    legacy = legacy_reference_fingerprint(a.reference)
    assert legacy is not None and legacy != state["reference"]["fingerprint"]  # meta is hashed in it
    state["reference"] = {**state["reference"], "fingerprint": legacy}
    checkpoint.save(tmp_path / "old.ckpt", state, model=a.model, state_version=STATE_VERSION)
    b = monitor(tmp_path, ref_file=path)
    assert checkpoint.restore(b, tmp_path / "old.ckpt") == (True, None)
    assert b.restore_report.reference == "same" and same_detector_states(a, b)
    c = monitor(tmp_path)  # no reference: the checkpoint's is adopted, its payload checked against that fingerprint
    assert checkpoint.restore(c, tmp_path / "old.ckpt") == (True, None)
    assert c.restore_report.reference == "adopted"
