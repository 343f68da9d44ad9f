"""Label-free signals per segment (``by_segment: true`` on confidence_drift and prediction_drift):
each segment's window against the whole reference, on seeded streams with stated bounds; absent
below ``min_rows``; checkpoints; config; the public path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.confidence_drift import ConfidenceDriftDetector
from monitor.detectors.prediction_drift import PredictionDriftDetector
from monitor.reference import Reference
from monitor.store import MetricStore
from tests.sidecar_support import sample
from tests.test_confidence_rules import K, outputs

T0 = 1_700_000_000.0
SEGMENTS = np.array(["eu", "us", "apac"], dtype=object)
CLASSES = [f"c{i}" for i in range(K)]


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(42)
    probs, y = outputs(rng, 3000)
    return Reference.from_arrays(np.zeros((3000, 1)), scores=probs, labels=y, classes=CLASSES)


def tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    """The same model's probabilities at another temperature (above 1: less confident)."""
    z = np.log(probs) / temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def window(rng: np.random.Generator, n: int = 1200, *, temperature: float = 1.0, prior: np.ndarray | None = None,
           collapse: bool = False) -> Batch:
    """One window of rows spread over eu, us and apac; the shift (if any) on apac's rows only."""
    seg = SEGMENTS[rng.integers(0, 3, n)]
    probs, _ = outputs(rng, n)
    apac = seg == "apac"
    if temperature != 1.0:
        probs[apac] = tempered(probs[apac], temperature)
    if prior is not None or collapse:
        shifted, _ = outputs(rng, int(apac.sum()), prior=prior, collapse=collapse)
        probs[apac] = shifted
    return Batch.from_arrays(np.zeros((n, 1)), probs, ts=T0 + np.arange(n) * 0.5, segment=seg)


def confidence_drift(reference: Reference, **kw: Any) -> ConfidenceDriftDetector:
    return ConfidenceDriftDetector(reference, window_s=3600.0, min_rows=200, by_segment=True, segment_cap=5, **kw)


def prediction_drift(reference: Reference, **kw: Any) -> PredictionDriftDetector:
    return PredictionDriftDetector(reference, window_s=3600.0, min_rows=200, by_segment=True, segment_cap=5, **kw)


def confidence_pvalues(reference: Reference, batch: Batch, score: str = "confidence") -> dict[str, float | None]:
    """Each segment's p-value for one window (a fresh detector: windows are independent)."""
    det = confidence_drift(reference)
    det.update(batch)
    return {s: None if r[score] is None else r[score].pvalue for s, r in det.segment_results().items()}


def figures_by_segment(det: PredictionDriftDetector, batch: Batch) -> dict[str, Any]:
    det.update(batch)
    return det.segment_figures()


# -- seeded streams ---------------------------------------------------------------------------------
def test_a_segment_whose_confidences_shift_is_flagged_and_the_others_stay_quiet(reference: Reference) -> None:
    """Over 200 seeded windows of 1,200 rows (about 400 per segment), apac's rows at temperature
    1.3 (less confident), eu and us unchanged. Measured (seed 1, 300 windows): apac below the
    Bonferroni level 0.001 / 3 in every window; eu and us below 0.05 in 1.3-2% of windows (the
    asymptotic KS on binned data is conservative), below 0.001 / 3 in none. Asserted: apac
    flagged in at least 195 of 200 windows; eu and us at most at the nominal 5% at p < 0.05
    and in at most 2 of 400 at the Bonferroni level."""
    rng = np.random.default_rng(1)
    flagged, quiet_tests, quiet_05, quiet_bonferroni = 0, 0, 0, 0
    for _ in range(200):
        p = confidence_pvalues(reference, window(rng, temperature=1.3))
        assert p["other"] is None  # no rows beyond the cap: absent, not 1 or 0
        flagged += p["apac"] is not None and p["apac"] < 0.001 / 3
        for s in ("eu", "us"):
            assert p[s] is not None
            quiet_tests += 1
            quiet_05 += p[s] < 0.05
            quiet_bonferroni += p[s] < 0.001 / 3
    assert flagged >= 195, flagged
    assert quiet_tests == 400 and quiet_05 <= 20 and quiet_bonferroni <= 2, (quiet_05, quiet_bonferroni)


def test_a_shift_confined_to_a_small_segment_is_seen_per_segment_only(reference: Reference) -> None:
    """Why slice: a segment with 8% of the traffic at temperature 1.3, 50 seeded windows of 4,000
    rows. The whole window's KS distance stays under ModelConfidenceDrift's 0.1 (measured at most
    0.063), the segment's is far above it (at least 0.49) with p < 0.001 / 3 in every window."""
    rng = np.random.default_rng(11)
    for _ in range(50):
        n = 4000
        seg = np.array(["eu", "us", "rare"], dtype=object)[rng.choice(3, n, p=[0.46, 0.46, 0.08])]
        probs, _ = outputs(rng, n)
        rare = seg == "rare"
        probs[rare] = tempered(probs[rare], 1.3)
        det = confidence_drift(reference)
        det.update(Batch.from_arrays(np.zeros((n, 1)), probs, ts=T0 + np.arange(n) * 0.5, segment=seg))
        whole, alone = det.results()["confidence"], det.segment_results()["rare"]["confidence"]
        assert whole is not None and alone is not None
        assert whole.statistic < 0.1 and alone.statistic > 0.3 and alone.pvalue < 0.001 / 3, (whole, alone)


def test_entropy_is_tested_per_segment_too(reference: Reference) -> None:
    """The entropy score has its own per-segment test (the same shift moves it: apac is flagged
    in each of 20 windows, eu never below the Bonferroni level)."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = confidence_pvalues(reference, window(rng, temperature=1.3), score="entropy")
        assert p["apac"] is not None and p["apac"] < 0.001 / 3
        assert p["eu"] is not None and p["eu"] >= 0.001 / 3


def test_predicted_class_frequencies_shifted_in_one_segment(reference: Reference) -> None:
    """apac's predicted classes follow a prior of 0.06 on classes 0-4 and 0.14 on 5-9 (a JS
    distance of ~0.17 against ~0.065 for noise at ~400 rows); 200 seeded windows. Measured
    (seed 2, 300 windows): apac below 0.001 / 3 in 98.7%; eu and us below 0.05 in 3.7-4.7%
    (the chi-squared test is close to its level), below 0.001 / 3 in 1 of 600. Asserted: apac
    flagged in at least 185 of 200; eu and us below 0.05 in at most 7% of 400 tests, below the
    Bonferroni level in at most 3."""
    rng = np.random.default_rng(2)
    prior = np.r_[np.full(5, 0.06), np.full(5, 0.14)]
    flagged, quiet_05, quiet_bonferroni, distances = 0, 0, 0, []
    for _ in range(200):
        f = figures_by_segment(prediction_drift(reference), window(rng, prior=prior))
        flagged += f["apac"].pvalue < 0.001 / 3
        distances.append((f["apac"].distance, f["eu"].distance))
        for s in ("eu", "us"):
            quiet_05 += f[s].pvalue < 0.05
            quiet_bonferroni += f[s].pvalue < 0.001 / 3
    assert flagged >= 185, flagged
    assert quiet_05 <= 28 and quiet_bonferroni <= 3, (quiet_05, quiet_bonferroni)
    shifted, unshifted = np.mean(distances, axis=0)
    assert shifted > 2 * unshifted, (shifted, unshifted)


def test_output_diversity_collapse_in_one_segment(reference: Reference) -> None:
    """apac's model answers c3 to every row: its diversity is 0 and its top-class share 1 for c3,
    next to the reference's share of c3; eu and us keep a diversity near the reference's
    (above 0.95 in each of 50 windows, as the whole reference's is ~0.99)."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        f = figures_by_segment(prediction_drift(reference), window(rng, collapse=True))
        apac = f["apac"]
        assert apac.diversity == 0.0 and apac.top_class == "c3" and apac.top_share == 1.0
        assert 0.05 < apac.top_share_reference < 0.15  # c3 is one of 10 near-equally predicted classes
        assert apac.pvalue < 1e-12
        for s in ("eu", "us"):
            assert f[s].diversity > 0.95 and f[s].top_share < 0.25


def test_figures_are_absent_below_min_rows_and_leave_with_the_rows(reference: Reference) -> None:
    """A segment with fewer than min_rows rows in the window has no series (not 0, not 1); once
    it has enough it has them; once its rows have left the window they are removed again."""
    rng = np.random.default_rng(5)
    conf, pred = confidence_drift(reference, refresh=0.0), prediction_drift(reference, refresh=0.0)
    store = MetricStore("m")
    n_small = 150  # below min_rows = 200
    probs, _ = outputs(rng, 600 + n_small)
    seg = np.array(["eu"] * 600 + ["tiny"] * n_small, dtype=object)
    batch = Batch.from_arrays(np.zeros((len(seg), 1)), probs, ts=T0 + np.arange(len(seg)) * 0.1, segment=seg)
    for d in (conf, pred):
        d.update(batch)
        d.advance(T0 + 100.0)
        d.export(store)
    for name, labels in ((names.SEGMENT_CONFIDENCE_DRIFT_PVALUE, ("{s}", "confidence")), (names.SEGMENT_CONFIDENCE_DRIFT_DISTANCE, ("{s}", "entropy")),
                         (names.SEGMENT_PREDICTION_DRIFT_PVALUE, ("{s}",)), (names.SEGMENT_PREDICTION_DRIFT_DISTANCE, ("{s}",)),
                         (names.SEGMENT_OUTPUT_ENTROPY, ("{s}",))):
        assert store.value(name, tuple(x.format(s="eu") for x in labels)) is not None, name
        assert store.value(name, tuple(x.format(s="tiny") for x in labels)) is None, name
    shares = {labels["segment"] for name, labels, _ in store.samples() if name == names.SEGMENT_TOP_CLASS_SHARE}
    assert shares == {"eu"}
    # more rows of "tiny": now it has its figures
    more, _ = outputs(rng, 100)
    b2 = Batch.from_arrays(np.zeros((100, 1)), more, ts=T0 + 80.0 + np.arange(100) * 0.1, segment=np.array(["tiny"] * 100, dtype=object))
    for d in (conf, pred):
        d.update(b2)
        d.export(store)
    assert store.value(names.SEGMENT_CONFIDENCE_DRIFT_PVALUE, ("tiny", "confidence")) is not None
    assert store.value(names.SEGMENT_OUTPUT_ENTROPY, ("tiny",)) is not None
    # two windows later every row has left: every segment's figures are gone
    for d in (conf, pred):
        d.advance(T0 + 3 * 3600.0)
        d.export(store)
    left = {name for name, _, _ in store.samples() if name.startswith("monitor_segment_")}
    assert left == set(), left


def test_others_figures_leave_with_its_rows(reference: Reference) -> None:
    """``other`` (values beyond the cap) is written or removed at every export like the learned
    segments: once its rows have left the window while a learned segment still has rows, its
    series are gone (not kept at their last values)."""
    rng = np.random.default_rng(12)
    store = MetricStore("m")
    dets = [ConfidenceDriftDetector(reference, window_s=600.0, min_rows=50, refresh=0.0, by_segment=True, segment_cap=1),
            PredictionDriftDetector(reference, window_s=600.0, min_rows=50, refresh=0.0, by_segment=True, segment_cap=1)]

    def feed(t0: float, segs: list[str]) -> None:
        probs, _ = outputs(rng, len(segs))
        batch = Batch.from_arrays(np.zeros((len(segs), 1)), probs, ts=t0 + np.arange(len(segs)) * 0.01,
                                  segment=np.array(segs, dtype=object))
        for d in dets:
            d.update(batch)
            d.advance(t0 + len(segs) * 0.01)
            d.export(store)

    def segments_of(name: str) -> set[str]:
        return {labels["segment"] for n, labels, _ in store.samples() if n == name}

    feed(0.0, ["a"] * 100 + ["b"] * 100 + ["c"] * 100)  # b and c beyond the cap of 1: "other"
    for name in (names.SEGMENT_CONFIDENCE_DRIFT_PVALUE, names.SEGMENT_PREDICTION_DRIFT_PVALUE, names.SEGMENT_TOP_CLASS_SHARE):
        assert segments_of(name) == {"a", "other"}, name
    feed(2000.0, ["a"] * 100)
    for name in (names.SEGMENT_CONFIDENCE_DRIFT_PVALUE, names.SEGMENT_CONFIDENCE_DRIFT_DISTANCE, names.SEGMENT_PREDICTION_DRIFT_PVALUE,
                 names.SEGMENT_PREDICTION_DRIFT_DISTANCE, names.SEGMENT_OUTPUT_ENTROPY, names.SEGMENT_TOP_CLASS_SHARE,
                 names.SEGMENT_TOP_CLASS_SHARE_REFERENCE):
        assert segments_of(name) == {"a"}, name


def test_the_per_segment_figures_are_the_one_sample_functions_on_each_segments_counts(reference: Reference) -> None:
    """The tests run for every segment in one array operation; each equals the univariate
    function applied to that segment's window counts alone (KS asymptotic, chi-squared, JS
    distance, diversity), on a window where one segment is shifted and one is tiny (absent)."""
    from monitor.detectors.prediction_drift import class_distribution_entropy
    from monitor.stats import univariate as uni

    rng = np.random.default_rng(10)
    batch = window(rng, temperature=1.3)
    conf, pred = confidence_drift(reference), prediction_drift(reference)
    conf.update(batch)
    pred.update(batch)
    totals = conf._segments.totals()
    for i, (seg, by_score) in enumerate(conf.segment_results().items()):
        for score in ("confidence", "entropy"):
            lo = conf._offset[score]
            want = uni.ks_binned(conf._ref[score], totals[i, lo:lo + conf._nb[score]], exact_budget=0)
            got = by_score[score]
            assert (got is None) == (seg == "other") and (got is None or (got.statistic, got.pvalue) == (want.statistic, want.pvalue))
    counts = pred._segments.totals()
    figures = pred.segment_figures()
    draws = pred.draws(sum(f is not None for f in figures.values()))  # the Monte-Carlo test's, for sparse tables
    for i, (seg, f) in enumerate(figures.items()):
        if seg == "other":
            assert f is None
            continue
        cur = counts[i]
        assert f.rows == cur.sum() and f.top_class == CLASSES[int(cur.argmax())]
        assert np.allclose([f.pvalue, f.distance, f.diversity],
                           [uni.chi2_test(pred._ref_counts, cur, draws=draws, seed=pred.seed).pvalue, uni.js_distance(pred._ref_counts, cur),
                            class_distribution_entropy(cur)], rtol=1e-12, atol=0.0)


# -- checkpoints --------------------------------------------------------------------------------------
def test_state_round_trip_gives_the_same_figures(reference: Reference) -> None:
    rng = np.random.default_rng(6)
    batch = window(rng, temperature=1.3, prior=None)
    for make, read in ((confidence_drift, lambda d: d.segment_results()), (prediction_drift, lambda d: d.segment_figures())):
        det = make(reference)
        det.update(batch)
        clone = make(reference)
        clone.load_state_dict(det.state_dict())
        assert read(clone) == read(det) and set(read(det)) == {"eu", "us", "apac", "other"}
        more = window(rng)  # and both keep counting the same way (slots restored in the same order)
        det.update(more)
        clone.update(more)
        assert read(clone) == read(det)


def test_a_state_saved_before_by_segment_loads_and_the_segments_refill(reference: Reference) -> None:
    """A state saved without per-segment counts (before this option existed, or with it off: the
    saved layout is the same, ``{"windows": {"main": ...}}``) restores the whole window's figures;
    the segments' are absent until their rows come again. One saved with another segment cap
    does the same instead of failing the restore."""
    rng = np.random.default_rng(7)
    batch = window(rng, temperature=1.3)
    for make, kind in ((ConfidenceDriftDetector, "confidence"), (PredictionDriftDetector, "prediction")):
        old = make(reference, window_s=3600.0, min_rows=200)
        old.update(batch)
        state = old.state_dict()
        assert set(state) == {"windows"} and set(state["windows"]) == {"main"}
        new = make(reference, window_s=3600.0, min_rows=200, by_segment=True, segment_cap=5)
        new.load_state_dict(state)
        if kind == "confidence":
            assert new.results() == old.results()
            assert all(r["confidence"] is None for r in new.segment_results().values())
        else:
            assert np.array_equal(new.window_counts, old.window_counts)
            assert all(f is None for f in new.segment_figures().values())
        new.update(batch)  # the segments refill from the rows that come next
        other_cap = make(reference, window_s=3600.0, min_rows=200, by_segment=True, segment_cap=2)
        other_cap.load_state_dict(new.state_dict())
        figures = other_cap.segment_results() if kind == "confidence" else other_cap.segment_figures()
        assert set(figures) == {"other"}  # nothing learned: the saved slots did not fit this cap
        # a state saved with segments loads into a detector without them (the part is ignored)
        plain = make(reference, window_s=3600.0, min_rows=200)
        plain.load_state_dict(new.state_dict())


def test_a_monitor_checkpoint_from_before_the_option_restores(reference: Reference, tmp_path: Any) -> None:
    """Through the public path: a monitor that ran without ``by_segment`` saves a checkpoint; a
    monitor configured with it restores that checkpoint (same reference), its whole-window
    figures as they were, and its per-segment figures once rows come."""
    rng = np.random.default_rng(8)
    before = _monitor(reference, by_segment=False)
    probs, _ = outputs(rng, 900)
    seg = SEGMENTS[rng.integers(0, 3, 900)].tolist()
    before.observe(np.zeros((900, 1)), probs, segment=seg, timestamp=T0)
    before.flush()
    text = before.metrics_text()
    path = tmp_path / "state.ckpt"
    before.save_checkpoint(path)
    before.close()
    after = _monitor(reference, by_segment=True)
    assert after.restore_checkpoint(path)
    assert after.restore_report is not None and after.restore_report.detectors_restored, after.restore_report
    after.flush()
    restored = after.metrics_text()
    for name in ("monitor_confidence_drift_pvalue", "monitor_prediction_drift_pvalue"):
        assert sample(restored, name, **({"score": "confidence"} if "confidence" in name else {})) == \
            sample(text, name, **({"score": "confidence"} if "confidence" in name else {}))
    assert sample(restored, "monitor_segment_prediction_drift_pvalue", segment="eu") is None
    after.observe(np.zeros((900, 1)), probs, segment=seg, timestamp=T0 + 10)
    after.flush()
    text = after.metrics_text()
    assert sample(text, "monitor_segment_prediction_drift_pvalue", segment="eu") is not None
    # and the per-segment state goes through the checkpoint file format (arrays and JSON) and back
    after.save_checkpoint(path)
    after.close()
    again = _monitor(reference, by_segment=True)
    assert again.restore_checkpoint(path) and again.restore_report is not None and again.restore_report.detectors_restored
    again.flush()
    restored = again.metrics_text()
    again.close()
    for s in ("eu", "us", "apac"):
        for metric, labels in (("monitor_segment_prediction_drift_pvalue", {}), ("monitor_segment_confidence_drift_distance", {"score": "entropy"})):
            value = sample(text, metric, segment=s, **labels)
            assert value is not None and sample(restored, metric, segment=s, **labels) == value, (metric, s)


# -- config and the public path -------------------------------------------------------------------------
def _config(by_segment: Any, cap: int = 3) -> dict[str, Any]:
    return {"segments": {"cap": cap}, "output": {"kind": "probabilities", "classes": CLASSES},
            "detectors": [{"kind": "confidence_drift", "by_segment": by_segment},
                          {"kind": "prediction_drift", "by_segment": by_segment}, {"kind": "segments"}]}


def _monitor(reference: Reference, by_segment: Any = True, cap: int = 3) -> Monitor:
    return Monitor(model="segdrift", config=_config(by_segment, cap), reference=reference, registry=CollectorRegistry(),
                   live=False, start_worker=False)


@pytest.mark.parametrize("value", ["yes", 1, [True]])
def test_config_refuses_a_by_segment_that_is_not_true_or_false(value: Any) -> None:
    from monitor.config import ConfigError, parse_config

    for i, kind in enumerate(("confidence_drift", "prediction_drift")):
        raw = _config(True)
        raw["detectors"][i]["by_segment"] = value
        with pytest.raises(ConfigError) as err:
            parse_config({"model": "m", **raw})
        assert f"detectors[{i}].by_segment" in str(err.value) and "write true or false" in str(err.value), str(err.value)


def test_config_accepts_by_segment_and_takes_the_monitors_segment_cap(reference: Reference) -> None:
    mon = _monitor(reference, by_segment=True, cap=7)
    conf, pred, _ = mon.detectors
    assert (conf.by_segment, conf.segment_cap, pred.by_segment, pred.segment_cap) == (True, 7, True, 7)
    mon.close()
    off = _monitor(reference, by_segment=False)
    assert not any(getattr(d, "by_segment", False) for d in off.detectors)
    off.close()


def test_public_path_exports_each_segments_figures_and_counts_overflow_once(reference: Reference) -> None:
    """A Monitor configured with by_segment on both detectors and a cap of 2: observe rows of
    three segments, read metrics_text(). The two learned segments and ``other`` have their
    figures; the overflow counter (the segments detector's) equals other's rows, not twice them;
    apac (shifted to temperature 1.5) is the one with a small p-value."""
    rng = np.random.default_rng(9)
    mon = _monitor(reference, by_segment=True, cap=2)
    n = 1500
    seg = np.array(["eu", "us"] * 10 + list(SEGMENTS[rng.integers(0, 3, n - 20)]), dtype=object)
    probs, _ = outputs(rng, n)
    apac = seg == "apac"
    probs[apac] = tempered(probs[apac], 1.5)
    mon.observe(np.zeros((n, 1)), probs, segment=seg.tolist(), timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    mon.close()
    other_rows = sample(text, "monitor_segment_rows_in_window", segment="other")
    assert other_rows == float(apac.sum())
    assert sample(text, "monitor_segment_overflow_rows_total") == other_rows
    for s in ("eu", "us", "other"):
        for metric in ("monitor_segment_prediction_drift_pvalue", "monitor_segment_prediction_drift_distance",
                       "monitor_segment_output_diversity_ratio"):
            assert sample(text, metric, segment=s) is not None, (metric, s)
        for score in ("confidence", "entropy"):
            assert sample(text, "monitor_segment_confidence_drift_distance", segment=s, score=score) is not None
    p = {s: sample(text, "monitor_segment_confidence_drift_pvalue", segment=s, score="confidence") for s in ("eu", "us", "other")}
    assert p["other"] < 0.001 / 3 and p["eu"] > 0.001 / 3 and p["us"] > 0.001 / 3, p


# -- the shipped rules ----------------------------------------------------------------------------------
def segment_stream(after: float = 3600.0, **shift: Any) -> Any:
    """1 row/s over eu, us and apac (the stream of tests/test_confidence_rules.py); from ``after``
    on, apac's rows at another temperature or prior."""
    temperature = float(shift.pop("temperature", 1.0))

    def stream(rng: np.random.Generator, t: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        seg = SEGMENTS[rng.integers(0, 3, n)]
        probs, y = outputs(rng, n)
        apac = seg == "apac"
        if t >= after and apac.any():
            if temperature != 1.0:
                probs[apac] = tempered(probs[apac], temperature)
            if shift:
                probs[apac], y[apac] = outputs(rng, int(apac.sum()), **shift)
        return probs, y, seg

    return stream


@pytest.fixture()
def by_segment_fired(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests/test_confidence_rules.py's ``fired``, its detectors built with ``by_segment: true``;
    returns the firing alerts as (name, segment label or None) pairs."""
    from monitor.detectors.registry import create
    from monitor.rules.evaluator import RuleEvaluator
    from tests import test_confidence_rules as rules

    firing: set[tuple[str, str | None]] = set()
    alerts = RuleEvaluator.alerts

    def recorded(self: RuleEvaluator) -> Any:
        found = alerts(self)
        firing.update((a.name, a.labels.get("segment")) for a in found if a.state.name.lower() == "firing")
        return found

    monkeypatch.setattr(RuleEvaluator, "alerts", recorded)
    monkeypatch.setattr(rules, "create", lambda kind, reference, params: create(kind, reference=reference, params={**params, "by_segment": True}))

    def run(*args: Any, **kw: Any) -> set[tuple[str, str | None]]:
        firing.clear()
        names_ = rules.fired(*args, **kw)
        assert names_ == {name for name, _ in firing}
        return set(firing)

    return run


KINDS = ("confidence_drift", "prediction_drift")


def test_segment_rules_are_silent_on_the_unshifted_stream(reference: Reference, by_segment_fired: Any) -> None:
    """4 hours, 3 segments of ~600 rows per 30-minute window each, nothing shifted: no alert."""
    assert by_segment_fired(segment_stream(), KINDS, reference, hours=4.0) == set()


@pytest.mark.parametrize(("shift", "alert"), [
    ({"temperature": 1.5}, "ModelSegmentConfidenceDrift"),
    ({"prior": np.r_[np.zeros(3), np.full(7, 1 / 7)]}, "ModelSegmentPredictionDrift"),
    ({"collapse": True}, "ModelSegmentPredictionDrift"),
], ids=["temperature", "label-shift", "collapse"])
def test_segment_rules_fire_on_a_seeded_drifted_segment(reference: Reference, by_segment_fired: Any, shift: dict, alert: str) -> None:
    """apac alone shifts after an hour (a third of the traffic): the per-segment rule fires for
    apac and for no other segment."""
    fired = by_segment_fired(segment_stream(**shift), KINDS, reference, hours=3.0)
    assert {seg for name, seg in fired if name == alert} == {"apac"}, fired


def test_segment_rules_divide_alpha_by_the_segments_tested_in_promtool_and_the_agent(tmp_path: Any) -> None:
    """The rules' Bonferroni correction, checked with the real ``promtool test rules`` and the
    agent's engine on one unit-test file. Model m has four segments with a p-value per score:
    apac (p 1e-4 < 0.001 / 4, distance 0.3) fires; eu (p 5e-4: below 0.001 but not below
    0.001 / 4) does not; us (p 1e-9 but distance 0.05, noise-sized) does not. Model n has one
    segment tested, so its p 5e-4 is below 0.001 / 1 and fires: the count is per model."""
    import yaml

    from tests.test_oncall_session7 import _run_unit_test

    conf_desc = ("The distribution of the model's confidence (Kolmogorov-Smirnov distance 0.30) on segment {s} over the window "
                 "differs from the whole reference's (p < 0.001 divided by the tests made: segments times scores). The reference "
                 "is not sliced by segment: a segment that always differed from the population fires from its first full window "
                 "(a standing difference, not a change).")
    pred_desc = ("The predicted-class distribution of segment {s} over the window differs from the whole reference's "
                 "(Jensen-Shannon distance 0.30, p < 0.001 divided by the segments tested): label shift, a change of inputs or "
                 "a model collapsing onto few answers for that segment (monitor_segment_output_top_class_share_ratio says "
                 "which). The reference is not sliced by segment: a segment whose class mix always differed fires from its "
                 "first full window.")
    rules = {"ModelSegmentConfidenceDrift": ("confidence_drift", {"score": "confidence"}, conf_desc,
                                             "Model {m}: the distribution of its confidence on segment {s} differs from the reference"),
             "ModelSegmentPredictionDrift": ("prediction_drift", {}, pred_desc,
                                             "Model {m} predicts classes in different proportions on segment {s}")}
    series, alert_tests = [], []
    for alert, (metric, extra, desc, summary) in rules.items():
        for model, seg, p, d in (("m", "apac", 1e-4, 0.3), ("m", "eu", 5e-4, 0.3), ("m", "us", 1e-9, 0.05),
                                 ("m", "other", 0.5, 0.02), ("n", "eu", 5e-4, 0.3)):
            labels = ",".join(f'{k}="{v}"' for k, v in {"model": model, "segment": seg, **extra}.items())
            series += [{"series": f"monitor_segment_{metric}_pvalue{{{labels}}}", "values": f"{p!r}x30"},
                       {"series": f"monitor_segment_{metric}_distance{{{labels}}}", "values": f"{d!r}x30"}]
        # one alert per model and segment: the scores are named in the texts, not in a label
        fired = [{"exp_labels": {"severity": "warning", "model": m, "segment": s},
                  "exp_annotations": {"summary": summary.format(m=m, s=s), "description": desc.format(s=s),
                                      "runbook_url": f"https://github.com/model-monitor/model-monitor/blob/main/README.md#{alert.lower()}"}}
                 for m, s in (("m", "apac"), ("n", "eu"))]
        alert_tests += [{"eval_time": "20m", "alertname": alert, "exp_alerts": fired},
                        {"eval_time": "10m", "alertname": alert, "exp_alerts": []}]  # before `for: 15m`
    doc = {"tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alert_tests}]}
    _run_unit_test(tmp_path, "confidence.yml", yaml.safe_dump(doc, sort_keys=False, width=1000))


def test_segment_confidence_drift_rule_divides_by_segments_times_scores(tmp_path) -> None:
    """Found by the final review: the divisor counted the segments per score, so each segment was
    tested twice (confidence, entropy) at 0.001 / segments. Two segments and two scores are four
    tests: apac's confidence p 3e-4 is below 0.001 / 2 but not below 0.001 / 4, so it stays silent;
    at 2e-4 it fires (promtool and the agent's evaluator, as the test above)."""
    import yaml

    from tests.test_oncall_session7 import _run_unit_test

    def series(p_apac: float) -> list[dict]:
        out = []
        for seg in ("apac", "eu"):
            for score in ("confidence", "entropy"):
                p = p_apac if (seg, score) == ("apac", "confidence") else 0.5
                labels = f'model="m",segment="{seg}",score="{score}"'
                out += [{"series": f"monitor_segment_confidence_drift_pvalue{{{labels}}}", "values": f"{p!r}x30"},
                        {"series": f"monitor_segment_confidence_drift_distance{{{labels}}}", "values": "0.3x30"}]
        return out

    desc = ("The distribution of the model's confidence (Kolmogorov-Smirnov distance 0.30) on segment apac over the window "
            "differs from the whole reference's (p < 0.001 divided by the tests made: segments times scores). The reference "
            "is not sliced by segment: a segment that always differed from the population fires from its first full window "
            "(a standing difference, not a change).")
    fired = [{"exp_labels": {"severity": "warning", "model": "m", "segment": "apac"},
              "exp_annotations": {"summary": "Model m: the distribution of its confidence on segment apac differs from the reference", "description": desc,
                                  "runbook_url": "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelsegmentconfidencedrift"}}]
    doc = {"tests": [
        {"interval": "1m", "input_series": series(3e-4),
         "alert_rule_test": [{"eval_time": "20m", "alertname": "ModelSegmentConfidenceDrift", "exp_alerts": []}]},
        {"interval": "1m", "input_series": series(2e-4),
         "alert_rule_test": [{"eval_time": "20m", "alertname": "ModelSegmentConfidenceDrift", "exp_alerts": fired}]},
    ]}
    _run_unit_test(tmp_path, "confidence.yml", yaml.safe_dump(doc, sort_keys=False, width=1000))


@pytest.mark.parametrize("with_segments", [True, False])
def test_overflow_is_counted_once_with_or_without_the_segments_detector(reference: Reference, with_segments: bool) -> None:
    """Found by the final review: with only confidence_drift / prediction_drift listed (by_segment
    on, no segments detector), ~600 rows went to segment="other" and the overflow counter stayed
    absent: nothing counted them. Now the first detector slicing by segment counts them when the
    segments detector does not run; with it, it alone does (never twice)."""
    rng = np.random.default_rng(10)
    raw = _config(True, cap=2)
    if not with_segments:
        raw["detectors"] = raw["detectors"][:2]
    mon = Monitor(model="segdrift", config=raw, reference=reference, registry=CollectorRegistry(), live=False, start_worker=False)
    n = 1000
    seg = np.array(["eu", "us", "apac", "latam", "emea"], dtype=object)[np.arange(n) % 5]
    probs, _ = outputs(rng, n)
    mon.observe(np.zeros((n, 1)), probs, segment=seg.tolist(), timestamp=T0)
    mon.flush()
    text = mon.metrics_text()
    mon.close()
    assert sample(text, "monitor_segment_overflow_rows_total") == 600
