"""Per segment: the over-confidence gap's interval, and the uncertainty figures beyond the
probabilities (energy of logits, an ensemble's disagreement), as mean gauges and opt-in histograms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from monitor.batch import Batch, LabeledBatch
from monitor.catalog import confidence as names
from monitor.detectors.calibration import CalibrationDetector
from monitor.detectors.confidence import ConfidenceDetector
from monitor.detectors.registry import create
from monitor.detectors.segments import SegmentDetector
from monitor.outputs import ClassIndex, decode_outputs
from monitor.schema import OutputSpec
from monitor.stats import uncertainty as unc
from monitor.store import MetricStore


def labelled(rng: np.random.Generator, n: int, segments: dict[str, float], k: int = 4, t0: float = 0.0) -> LabeledBatch:
    """``n`` labelled rows per segment whose model is over-confident by ``gap`` in that segment:
    the label is the predicted class with probability ``confidence - gap`` (0 is calibrated)."""
    scores, labels, segs = [], [], []
    for name, gap in segments.items():
        logits = rng.normal(size=(n, k)) * 2.0
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        top = p.argmax(axis=1)
        right = rng.random(n) < np.clip(p.max(axis=1) - gap, 0.0, 1.0)
        wrong = (top + rng.integers(1, k, size=n)) % k
        labels.append(np.where(right, top, wrong))
        scores.append(p)
        segs += [name] * n
    s = np.vstack(scores)
    ts = t0 + np.arange(len(segs)) * 0.01
    return LabeledBatch(ts=ts, label_ts=ts + 1.0, label=np.concatenate(labels), segment=np.array(segs, dtype=object),
                        scores=s, predicted=s.argmax(axis=1))


def _exported(det: object) -> MetricStore:
    """A fresh store holding what ``det`` exports now."""
    store = MetricStore("m")
    det.export(store)  # type: ignore[attr-defined]
    return store


def _calibration_alone(lab: LabeledBatch, rows: np.ndarray, **params: int) -> MetricStore:
    """The whole-window calibration detector's figures on ``rows`` of ``lab`` alone."""
    alone = CalibrationDetector(window_s=1e6, **params)
    alone.update_labels(LabeledBatch(ts=lab.ts[rows], label_ts=lab.label_ts[rows], label=lab.label[rows], segment=lab.segment[rows],
                                     scores=lab.scores[rows], predicted=lab.predicted[rows]))
    return _exported(alone)


def test_segment_gap_interval_is_the_calibration_detectors_interval_on_the_segments_rows() -> None:
    rng = np.random.default_rng(5)
    lab = labelled(rng, 600, {"calm": 0.0, "bold": 0.12})
    det = SegmentDetector(window_s=1e6, min_labels=50)
    det.update_labels(lab)
    store = _exported(det)
    for seg in ("calm", "bold"):
        m = lab.segment == seg
        whole = _calibration_alone(lab, m, min_labels=50)
        for mine, theirs in ((names.SEGMENT_GAP_LOWER, names.GAP_LOWER), (names.SEGMENT_GAP_UPPER, names.GAP_UPPER)):
            assert store.value(mine, (seg,)) == pytest.approx(whole.value(theirs), abs=1e-12)
    # the over-confident segment's interval lies above 0; the calibrated one's covers 0
    assert store.value(names.SEGMENT_GAP_LOWER, ("bold",)) > 0.0
    assert store.value(names.SEGMENT_GAP_LOWER, ("calm",)) < 0.0 < store.value(names.SEGMENT_GAP_UPPER, ("calm",))


def test_segment_gap_interval_false_alarms_and_power_seeded() -> None:
    """180 calibrated segments of 300 labels each (the metric's cardinality limit is 200 series):
    the 98% interval's lower bound is above 0 (a one-sided 1% test) in at most 4 of them (expected
    1.8: binomial(180, 0.01) exceeds 4 with probability ~0.04, and the seed is fixed); 20 segments
    over-confident by 10 points with 300 labels (power ~0.9 per segment): the lower bound is above 0
    in at least 16 of them (17 to 20 in seeds 11-20)."""
    rng = np.random.default_rng(11)
    calm = labelled(rng, 300, {f"c{i}": 0.0 for i in range(180)})
    det = SegmentDetector(window_s=1e6, segment_cap=180, min_labels=50)
    det.update_labels(calm)
    store = _exported(det)
    lower = [store.value(names.SEGMENT_GAP_LOWER, (f"c{i}",)) for i in range(180)]
    assert all(v is not None for v in lower)
    assert sum(v > 0 for v in lower) <= 4
    bold = labelled(rng, 300, {f"b{i}": 0.10 for i in range(20)})
    det = SegmentDetector(window_s=1e6, segment_cap=20, min_labels=50)
    det.update_labels(bold)
    store = _exported(det)
    assert sum(store.value(names.SEGMENT_GAP_LOWER, (f"b{i}",)) > 0 for i in range(20)) >= 16


def test_segment_gap_interval_absent_below_min_labels_and_survives_a_checkpoint() -> None:
    rng = np.random.default_rng(6)
    lab = labelled(rng, 120, {"big": 0.0})
    few = labelled(rng, 30, {"small": 0.0}, t0=50.0)
    det = SegmentDetector(window_s=1e6, min_labels=50)
    det.update_labels(lab)
    det.update_labels(few)
    store = _exported(det)
    assert store.value(names.SEGMENT_GAP_LOWER, ("big",)) is not None
    assert store.value(names.SEGMENT_GAP_LOWER, ("small",)) is None and store.value(names.SEGMENT_GAP_UPPER, ("small",)) is None
    clone = create("segments", params={"window_s": 1e6, "min_labels": 50})
    clone.load_state_dict(det.state_dict())
    again = _exported(clone)
    assert again.value(names.SEGMENT_GAP_LOWER, ("big",)) == store.value(names.SEGMENT_GAP_LOWER, ("big",))
    # a state saved before the interval's window existed loads; the interval is absent until labels refill it
    old = det.state_dict()
    old["windows"] = {k: v for k, v in old["windows"].items() if k not in ("label_terms", "uncertainty")}
    older = create("segments", params={"window_s": 1e6, "min_labels": 50})
    older.load_state_dict(old)
    refill = _exported(older)
    assert refill.value(names.SEGMENT_GAP, ("big",)) is not None and refill.value(names.SEGMENT_GAP_LOWER, ("big",)) is None


def _logit_batch(rng: np.random.Generator, scale: dict[str, float], n: int) -> tuple[Batch, np.ndarray]:
    logits, segs = [], []
    for name, s in scale.items():
        logits.append(rng.normal(size=(n, 3)) * s)
        segs += [name] * n
    z = np.vstack(logits)
    dec = decode_outputs(z, OutputSpec("logits"), ClassIndex())
    batch = Batch.from_arrays(np.zeros((len(segs), 1)), dec.scores, predicted=dec.predicted, logits=dec.logits,
                              ts=np.arange(len(segs), dtype=float), segment=np.array(segs, dtype=object))
    return batch, dec.logits


def test_segment_energy_mean_and_histogram_are_each_segments_own() -> None:
    rng = np.random.default_rng(7)
    batch, logits = _logit_batch(rng, {"near": 1.0, "far": 6.0, "few": 1.0}, 150)
    batch2, _ = _logit_batch(rng, {"near": 1.0}, 0)  # no rows: nothing changes
    det = SegmentDetector(window_s=1e6, min_rows=100, histograms=True)
    whole = ConfidenceDetector(flush_s=0)
    det.update(batch)
    whole.update(batch)
    det.update(batch2) if len(batch2) else None
    store, theirs = MetricStore("m"), MetricStore("m")
    det.export(store)
    whole.export(theirs)
    energy = unc.energy_score(logits)
    for seg in ("near", "far", "few"):
        m = batch.segment == seg
        assert store.value(names.SEGMENT_ENERGY, (seg,)) == pytest.approx(energy[m].mean())
    # larger logits: lower energy (more familiar by the score's convention)
    assert store.value(names.SEGMENT_ENERGY, ("far",)) < store.value(names.SEGMENT_ENERGY, ("near",))

    def buckets(s: MetricStore, name: str, segment: str | None = None) -> dict[str, float]:
        return {labels["le"]: v for n, labels, v in s.samples()
                if n == name + "_bucket" and (segment is None or labels.get("segment") == segment)}

    per_segment = [buckets(store, names.SEGMENT_ENERGY_HISTOGRAM, s) for s in ("near", "far", "few")]
    summed = {le: sum(b[le] for b in per_segment) for le in per_segment[0]}
    assert summed == buckets(theirs, names.ENERGY) and summed["+Inf"] == 450
    # probabilities without logits or members: no energy or ensemble series at all
    plain = SegmentDetector(window_s=1e6, min_rows=100, histograms=True)
    plain.update(Batch.from_arrays(np.zeros((200, 1)), batch.scores[:200], ts=np.arange(200.0), segment=batch.segment[:200]))
    none = _exported(plain)
    got = {n for n, _, _ in none.samples()}
    assert not any(n.startswith((names.SEGMENT_ENERGY, names.SEGMENT_MUTUAL_INFORMATION, names.SEGMENT_TOP_CLASS_VARIANCE,
                                 names.SEGMENT_ENERGY_HISTOGRAM, names.SEGMENT_MI_HISTOGRAM)) for n in got)


def test_segment_ensemble_disagreement_means_and_min_rows() -> None:
    """Segment "split" has members that disagree (mutual information high), "agree" members that
    are the same model; each segment's mean equals the figure computed on its rows."""
    rng = np.random.default_rng(8)
    n = 200
    base = rng.dirichlet(np.ones(3), size=n)
    agree = np.repeat(base[:, None, :], 5, axis=1)
    split = rng.dirichlet(np.ones(3) * 0.3, size=(n, 5))
    members = np.concatenate([agree, split, split[:40]])
    segs = np.array(["agree"] * n + ["split"] * n + ["tiny"] * 40, dtype=object)
    dec = decode_outputs(members, OutputSpec("probabilities", samples_axis=True), ClassIndex())
    batch = Batch.from_arrays(np.zeros((len(segs), 1)), dec.scores, predicted=dec.predicted, members=dec.members,
                              ts=np.arange(len(segs), dtype=float), segment=segs)
    det = SegmentDetector(window_s=1e6, min_rows=100)
    det.update(batch)
    store = _exported(det)
    mi, var = unc.mutual_information(dec.members), unc.top_class_variance(dec.members)
    for seg in ("agree", "split"):
        m = segs == seg
        assert store.value(names.SEGMENT_MUTUAL_INFORMATION, (seg,)) == pytest.approx(mi[m].mean())
        assert store.value(names.SEGMENT_TOP_CLASS_VARIANCE, (seg,)) == pytest.approx(var[m].mean())
    assert store.value(names.SEGMENT_MUTUAL_INFORMATION, ("agree",)) == pytest.approx(0.0, abs=1e-9)
    assert store.value(names.SEGMENT_MUTUAL_INFORMATION, ("split",)) > 0.2
    assert store.value(names.SEGMENT_MUTUAL_INFORMATION, ("tiny",)) is None  # 40 rows < min_rows
    assert store.value(names.SEGMENT_ENERGY, ("agree",)) is None  # probabilities: no energy
    # the means and the flag that they exist survive a checkpoint
    clone = create("segments", params={"window_s": 1e6, "min_rows": 100})
    clone.load_state_dict(det.state_dict())
    again = _exported(clone)
    assert again.value(names.SEGMENT_MUTUAL_INFORMATION, ("split",)) == store.value(names.SEGMENT_MUTUAL_INFORMATION, ("split",))


def test_histogram_state_saved_in_the_earlier_layout_still_loads() -> None:
    """States saved before the energy and ensemble histograms kept the first three histograms as
    ``hist_counts`` / ``hist_sums`` arrays: their unexported observations are not lost."""
    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.ones(3), size=300)
    seg = np.array(["a", "b"] * 150, dtype=object)
    det = SegmentDetector(window_s=1e6, histograms=True)
    det.update(Batch.from_arrays(np.zeros((300, 1)), probs, ts=np.arange(300.0), segment=seg))
    state = det.state_dict()
    hist = state.pop("histograms")
    order = (names.SEGMENT_CONFIDENCE_HISTOGRAM, names.SEGMENT_MARGIN_HISTOGRAM, names.SEGMENT_ENTROPY_HISTOGRAM)
    state["hist_counts"] = [hist[n]["counts"] for n in order]
    state["hist_sums"] = np.stack([hist[n]["sums"] for n in order])
    clone = create("segments", params={"window_s": 1e6, "histograms": True})
    clone.load_state_dict(state)
    store = _exported(clone)
    got = {labels["segment"]: v for n, labels, v in store.samples()
           if n == names.SEGMENT_CONFIDENCE_HISTOGRAM + "_bucket" and labels["le"] == "+Inf"}
    assert got == {"a": 150.0, "b": 150.0}
    other_cap = SegmentDetector(window_s=1e6, histograms=True, segment_cap=5)
    other_cap.load_state_dict(state)  # saved with another segment_cap: the per-segment figures refill
    store = _exported(other_cap)
    assert not [n for n, _, _ in store.samples() if n.startswith("monitor_segment_")]


def _segment_alerts(shift: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]], seed: int) -> set[tuple[str, str]]:
    """(alert, segment) pairs that reached firing over 3 hours of a calibrated 10-class model
    (1 row/s, labels at once, three segments, a 30-minute window, scraped and evaluated every
    30 s with rules/confidence.yml) whose segment "apac" gets the outputs and labels of
    ``shift`` from the second hour on."""
    from monitor.promql import SeriesStore
    from monitor.reference import Reference
    from monitor.rules.evaluator import RuleEvaluator
    from tests.test_confidence_rules import HOUR, K, RULES, outputs, segments

    rng = np.random.default_rng(42)
    probs, y = outputs(rng, 3000)
    reference = Reference.from_arrays(np.zeros((3000, 1)), scores=probs, labels=y, classes=[f"c{i}" for i in range(K)])
    det = create("segments", reference=reference, params={"window_s": 1800.0})
    store = MetricStore("m")
    series = SeriesStore(retention_s=2 * HOUR)
    evaluator = RuleEvaluator.from_files([RULES], storage=series, default_interval_s=30.0)
    firing: set[tuple[str, str]] = set()
    rng = np.random.default_rng(seed)
    for t0 in range(0, int(3 * HOUR), 30):
        probs, y = outputs(rng, 30)
        seg = segments(rng, 30)
        if t0 >= HOUR:
            bad_probs, bad_y = shift(rng, 30)
            apac = seg == "apac"
            probs[apac], y[apac] = bad_probs[apac], bad_y[apac]
        ts = t0 + np.arange(30, dtype=np.float64)
        det.update(Batch.from_arrays(np.zeros((30, 1)), probs, ts=ts, segment=seg))
        det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=y, segment=seg, scores=probs, predicted=probs.argmax(axis=1)))
        det.advance(float(t0 + 30))
        det.export(store)
        now = float(t0 + 30)
        series.append_scrape(now, [({**labels, "__name__": name}, value) for name, labels, value in store.samples()])
        evaluator.evaluate(now)
        firing |= {(a.name, a.labels.get("segment", "")) for a in evaluator.alerts() if a.state.name.lower() == "firing"}
    return firing


def test_segment_overconfident_rule_fires_on_one_segment_and_names_it() -> None:
    """One segment of three (a third of the traffic) becomes over-confident by 12 points after an
    hour: ModelSegmentOverconfident fires for that segment (and no other). The unshifted stream's
    silence over 4 hours is tested for every rule of the pack in tests/test_confidence_rules.py."""
    from tests.test_confidence_rules import outputs

    firing = _segment_alerts(lambda rng, n: outputs(rng, n, gap=0.12), seed=0)
    assert ("ModelSegmentOverconfident", "apac") in firing
    assert {s for name, s in firing if name == "ModelSegmentOverconfident"} == {"apac"}


def test_segment_calibration_rule_fires_on_one_segment_and_names_it() -> None:
    """One segment of three becomes miscalibrated both ways after an hour (its confidences
    above 0.8 over-confident by 25 points, those below under-confident by 25: the mean gap is
    small, the calibration error is not): ModelSegmentCalibrationErrorHigh fires for that
    segment and no other within the next two hours. Its silence on the unshifted stream over 4
    hours is tested with every rule of the pack (tests/test_confidence_rules.py)."""
    from tests.test_confidence_rules import K

    def miscalibrated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, K, n)
        conf = rng.uniform(0.55, 0.99, n)
        right = rng.random(n) < np.clip(np.where(conf > 0.8, conf - 0.25, conf + 0.25), 0.0, 1.0)
        pred = np.where(right, y, (y + rng.integers(1, K, n)) % K)
        probs = np.repeat(((1.0 - conf) / (K - 1))[:, None], K, axis=1)
        probs[np.arange(n), pred] = conf
        return probs, y

    firing = _segment_alerts(miscalibrated, seed=1)
    assert {s for name, s in firing if name == "ModelSegmentCalibrationErrorHigh"} == {"apac"}


def test_no_segment_series_until_a_row_carries_a_segment() -> None:
    """A model whose rows carry no segment got every per-segment figure again under
    segment="unset", repeating the whole model's; none is written until a segment comes, and
    then the rows without one appear as "unset" beside it."""
    rng = np.random.default_rng(10)
    probs = rng.dirichlet(np.ones(3), size=400)
    det = SegmentDetector(window_s=1e6, min_rows=100, histograms=True)
    det.update(Batch.from_arrays(np.zeros((400, 1)), probs, ts=np.arange(400.0)))
    store = _exported(det)
    assert not [n for n, _, _ in store.samples() if n.startswith("monitor_segment")]
    seg = np.array(["eu"] * 200 + [None] * 200, dtype=object)
    det.update(Batch.from_arrays(np.zeros((400, 1)), probs, ts=400.0 + np.arange(400.0), segment=seg))
    det.export(store)
    assert store.value(names.SEGMENT_ROWS, ("eu",)) == 200 and store.value(names.SEGMENT_ROWS, ("unset",)) == 600
    counts = {labels["segment"]: v for n, labels, v in store.samples()
              if n == names.SEGMENT_CONFIDENCE_HISTOGRAM + "_bucket" and labels["le"] == "+Inf"}
    assert counts == {"eu": 200.0, "unset": 200.0}  # the histograms start when the segments do


def test_other_segment_series_do_not_keep_stale_values_when_its_rows_leave_the_window() -> None:
    """Found by the drift-per-segment helper: with cap 1, ``other`` was listed only while it had
    rows, so when they left the window its series kept their last values (rows 150 forever)."""
    rng = np.random.default_rng(12)
    probs = rng.dirichlet(np.ones(3), size=300)
    det = SegmentDetector(window_s=100.0, n_slots=4, segment_cap=1, min_rows=100)
    seg = np.array(["a"] * 150 + ["b"] * 150, dtype=object)
    det.update(Batch.from_arrays(np.zeros((300, 1)), probs, ts=np.linspace(0.0, 10.0, 300), segment=seg))
    store = _exported(det)
    assert store.value(names.SEGMENT_ROWS, ("other",)) == 150 and store.value(names.SEGMENT_CONFIDENCE, ("other",)) is not None
    det.update(Batch.from_arrays(np.zeros((300, 1)), probs, ts=np.linspace(200.0, 210.0, 300), segment=np.array(["a"] * 300, dtype=object)))
    det.advance(210.0)
    det.export(store)
    assert store.value(names.SEGMENT_ROWS, ("a",)) == 300
    assert store.value(names.SEGMENT_ROWS, ("other",)) == 0 and store.value(names.SEGMENT_CONFIDENCE, ("other",)) is None


def test_segment_equal_mass_calibration_error_is_the_calibration_detectors_on_the_segments_rows() -> None:
    """The issue's primary estimator (debiased L2 on equal-mass bins, Kumar et al. 2019) per
    segment: each segment groups the same fine confidence grid into its own equal-mass bins, so
    its value equals the whole-window estimator run on that segment's rows alone; absent below
    min_labels_calibration; larger for the over-confident segment."""
    rng = np.random.default_rng(13)
    lab = labelled(rng, 1500, {"calm": 0.0, "bold": 0.15})
    few = labelled(rng, 120, {"few": 0.0}, t0=100.0)
    det = SegmentDetector(window_s=1e6, min_labels_calibration=200)
    det.update_labels(lab)
    det.update_labels(few)
    store = _exported(det)
    for seg in ("calm", "bold"):
        m = lab.segment == seg
        whole = _calibration_alone(lab, m, min_labels_calibration=200)
        key = (seg, "debiased_l2_equal_mass")
        assert store.value(names.SEGMENT_CALIBRATION_ERROR, key) == pytest.approx(
            whole.value(names.CALIBRATION_ERROR, ("debiased_l2_equal_mass",)), abs=1e-12)
    assert store.value(names.SEGMENT_CALIBRATION_ERROR, ("bold", "debiased_l2_equal_mass")) > \
        store.value(names.SEGMENT_CALIBRATION_ERROR, ("calm", "debiased_l2_equal_mass")) + 0.05
    assert store.value(names.SEGMENT_CALIBRATION_ERROR, ("few", "debiased_l2_equal_mass")) is None


def test_segments_arriving_after_unset_rows_with_cap_one_are_written() -> None:
    """With ``segment_cap: 1`` and a first row without a segment, "unset" takes the only slot and
    every later segment overflows into "other": the per-segment series must still start (found by
    the walkthrough: the detector looked for a learned name other than unset)."""
    rng = np.random.default_rng(14)
    probs = rng.dirichlet(np.ones(3), size=300)
    det = SegmentDetector(window_s=1e6, segment_cap=1, min_rows=100)
    seg = np.array([None] * 150 + ["eu"] * 150, dtype=object)
    det.update(Batch.from_arrays(np.zeros((300, 1)), probs, ts=np.arange(300.0), segment=seg))
    store = _exported(det)
    assert store.value(names.SEGMENT_ROWS, ("unset",)) == 150 and store.value(names.SEGMENT_ROWS, ("other",)) == 150


def test_a_segment_named_other_takes_the_overflow_rather_than_hiding_it() -> None:
    """Found by the walkthrough: with cap 2, 200 rows of the value "other" and 400 overflowed
    rows wrote two series under segment="other"; the store kept one (200 rows unseen)."""
    rng = np.random.default_rng(15)
    probs = rng.dirichlet(np.ones(3), size=800)
    seg = np.array(["other"] * 200 + ["eu"] * 200 + ["us"] * 200 + ["asia"] * 200, dtype=object)
    det = SegmentDetector(window_s=1e6, segment_cap=2, min_rows=100)
    det.update(Batch.from_arrays(np.zeros((800, 1)), probs, ts=np.arange(800.0), segment=seg))
    store = _exported(det)
    assert store.value(names.SEGMENT_ROWS, ("other",)) == 600 and store.value(names.SEGMENT_ROWS, ("eu",)) == 200
    assert sum(v for n, _, v in store.samples() if n == names.SEGMENT_ROWS) == 800
    assert store.value(names.SEGMENT_CONFIDENCE, ("other",)) == pytest.approx(probs[np.isin(seg, ["other", "us", "asia"])].max(axis=1).mean())


def test_a_segment_named_other_holds_the_overflow_in_the_drift_and_regression_detectors_too() -> None:
    """The per-segment drift counts and regression sums name their columns from the same slots:
    with a learned segment named "other" the overflow slot stays empty and is not written (it
    would have removed, or overwritten, the real "other" series)."""
    from monitor.detectors.confidence_drift import ConfidenceDriftDetector
    from monitor.detectors.regression import RegressionDetector
    from monitor.reference import Reference

    rng = np.random.default_rng(16)
    ref_p = rng.dirichlet(np.ones(3), size=2000)
    reference = Reference.from_arrays(np.zeros((2000, 1)), scores=ref_p, labels=ref_p.argmax(axis=1))
    seg = np.array(["other"] * 200 + ["eu"] * 200 + ["us"] * 200 + ["asia"] * 200, dtype=object)
    probs = rng.dirichlet(np.ones(3), size=800)
    drift = ConfidenceDriftDetector(reference, window_s=1e6, min_rows=100, by_segment=True, segment_cap=2)
    drift.update(Batch.from_arrays(np.zeros((800, 1)), probs, ts=np.arange(800.0), segment=seg))
    store = _exported(drift)
    others = [v for n, labels, v in store.samples()
              if n == names.SEGMENT_CONFIDENCE_DRIFT_PVALUE and labels["segment"] == "other" and labels["score"] == "confidence"]
    assert len(others) == 1 and others[0] is not None
    reg = RegressionDetector(window_s=1e6, min_rows=10, min_labels=10, by_segment=True, segment_cap=2)
    pred = rng.normal(size=800)
    reg.update(Batch.from_arrays(np.zeros((800, 1)), pred, ts=np.arange(800.0), segment=seg))
    store = _exported(reg)
    rows = {labels["segment"]: v for n, labels, v in store.samples() if n == names.REGRESSION_SEGMENT_ROWS}
    assert rows == {"other": 600.0, "eu": 200.0}


def test_nan_segment_values_are_unset_and_do_not_grow_the_slot_index() -> None:
    """Found by the final review: each NaN float is a new dict key (NaN != NaN), so a float column
    with missing values grew the slot index by one entry per row, forever, and NaN became a
    segment "nan". NaN is a missing segment: ``unset``."""
    from monitor.detectors._segment_slots import SegmentSlots

    slots = SegmentSlots(5)
    for _ in range(100):
        values = np.array([1.0, float("nan"), 2.0] * 100, dtype=object)
        got = slots.assign(values)
    assert slots.names == ("1.0", "unset", "2.0", "other")
    assert got[1] == got[4] == 1 and len(slots._index) <= 8


def test_segment_calibration_error_pvalue_separates_a_miscalibrated_segment() -> None:
    """Per segment, the equal-mass error's p-value (consistency resampling on the segment's fine
    bins): 1/2000 for the segment 15 points over-confident, above 0.01 for the calibrated one on
    this seed, absent with the error below min_labels_calibration."""
    rng = np.random.default_rng(13)
    lab = labelled(rng, 1500, {"calm": 0.0, "bold": 0.15})
    few = labelled(rng, 120, {"few": 0.0}, t0=100.0)
    det = SegmentDetector(window_s=1e6, min_labels_calibration=200, seed=1)
    det.update_labels(lab)
    det.update_labels(few)
    store = _exported(det)
    assert store.value(names.SEGMENT_CALIBRATION_ERROR_PVALUE, ("bold",)) == pytest.approx(1.0 / 2000.0)
    assert store.value(names.SEGMENT_CALIBRATION_ERROR_PVALUE, ("calm",)) > 0.01
    assert store.value(names.SEGMENT_CALIBRATION_ERROR_PVALUE, ("few",)) is None
