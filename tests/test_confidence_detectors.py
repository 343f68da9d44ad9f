"""Label-free confidence detectors on seeded streams: distributions, drift, label shift, diversity,
accuracy estimation; with stated false-alarm and detection bounds."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.registry import KINDS, create
from monitor.outputs import ClassIndex, decode_outputs
from monitor.reference import Reference
from monitor.schema import OutputSpec
from monitor.stats import uncertainty as unc
from monitor.store import MetricStore

K = 10


def model_outputs(rng: np.random.Generator, n: int, *, a: float = 20.0, b: float = 1.5, prior: np.ndarray | None = None,
                  acc_of_class: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a calibrated 10-class model and the true labels.

    Each row's true class is drawn from ``prior``; the model predicts it with probability equal to
    its confidence (drawn on [1/K, 1] from Beta(a, b)), else a random other class. Lower ``a``
    means a less confident (and, being calibrated, less accurate) model: a covariate shift that
    keeps calibration. ``prior`` changes the class mix only: label shift.
    """
    prior = np.full(K, 1.0 / K) if prior is None else prior
    y = rng.choice(K, size=n, p=prior)
    conf = 1.0 / K + (1.0 - 1.0 / K) * rng.beta(a, b, n)
    right = rng.random(n) < conf
    pred = np.where(right, y, (y + rng.integers(1, K, n)) % K)
    probs = np.repeat(((1.0 - conf) / (K - 1))[:, None], K, axis=1)
    probs[np.arange(n), pred] = conf
    return probs, y


def reference(rng: np.random.Generator, n: int = 2000) -> Reference:
    probs, y = model_outputs(rng, n)
    return Reference.from_arrays(np.zeros((n, 1)), scores=probs, labels=y, classes=[f"c{i}" for i in range(K)])


def batch(probs: np.ndarray, t0: float = 0.0) -> Batch:
    n = probs.shape[0]
    return Batch.from_arrays(np.zeros((n, 1)), probs, ts=t0 + np.arange(n) * 0.1)


def test_kinds_are_registered_and_need_their_reference() -> None:
    for kind in ("confidence", "confidence_drift", "prediction_drift", "accuracy_estimation", "calibration", "segments", "regression"):
        assert kind in KINDS
    with pytest.raises(ValueError, match="confidence_drift.*reference"):
        create("confidence_drift")
    no_labels = Reference.from_arrays(np.zeros((5, 1)), scores=np.full((5, 2), 0.5))
    with pytest.raises(ValueError, match="accuracy_estimation.*labels"):
        create("accuracy_estimation", reference=no_labels)
    with pytest.raises(ValueError, match="abstain_threshold"):
        create("confidence", params={"abstain_threshold": 2.0})


def test_confidence_histograms_and_window_figures() -> None:
    rng = np.random.default_rng(0)
    probs, _ = model_outputs(rng, 1000, a=3, b=2)
    det = create("confidence", params={"abstain_threshold": 0.5, "window_s": 1e6})
    det.update(batch(probs[:600]))
    det.update(batch(probs[600:], t0=60.0))
    store = MetricStore("m")
    det.export(store)
    conf = probs.max(axis=1)
    h = store.value(names.CONFIDENCE)
    assert h.count == 1000 and h.sum == pytest.approx(conf.sum())
    expected = np.bincount(np.searchsorted(names.CONFIDENCE_BUCKETS, conf, side="left"), minlength=len(names.CONFIDENCE_BUCKETS) + 1)
    assert h.counts == expected.tolist()
    assert store.value(names.ENTROPY).sum == pytest.approx(unc.normalized_entropy(probs).sum())
    assert store.value(names.ABSTAIN) == pytest.approx(np.mean(conf < 0.5))
    assert store.value(names.CONFIDENCE_MEAN) == pytest.approx(conf.mean())
    # flushing twice does not double count
    det.export(store)
    assert store.value(names.CONFIDENCE).count == 1000
    # state round trip keeps the window
    clone = create("confidence", params={"window_s": 1e6})
    clone.load_state_dict(det.state_dict())
    assert clone.abstain_rate == det.abstain_rate and clone.rows_in_window == 1000


def test_binary_one_column_logits_and_ensembles() -> None:
    det = create("confidence", params={"min_rows": 1})
    store = MetricStore("m")
    # binary model returning P(positive) as one column
    one = decode_outputs(np.array([0.9, 0.2, 0.6]), OutputSpec("probabilities"), ClassIndex())
    det.update(Batch.from_arrays(np.zeros((3, 1)), one.scores, predicted=one.predicted))
    # logits: the energy score is exported
    z = np.array([[2.0, -1.0, 0.0], [10.0, 0.0, 0.0]])
    lg = decode_outputs(z, OutputSpec("logits"), ClassIndex())
    det.update(Batch.from_arrays(np.zeros((2, 1)), lg.scores, predicted=lg.predicted, logits=lg.logits))
    # ensemble members (n, samples, k): mutual information and top-class variance
    members = np.array([[[0.9, 0.1], [0.1, 0.9], [0.9, 0.1]], [[0.8, 0.2], [0.8, 0.2], [0.8, 0.2]]])
    ens = decode_outputs(members, OutputSpec("probabilities", samples_axis=True), ClassIndex())
    det.update(Batch.from_arrays(np.zeros((2, 1)), ens.scores, predicted=ens.predicted, members=ens.members))
    det.export(store)
    assert store.value(names.CONFIDENCE).count == 7
    assert store.value(names.CONFIDENCE).sum == pytest.approx(0.9 + 0.8 + 0.6 + lg.scores.max(axis=1).sum() + ens.scores.max(axis=1).sum())
    energy = store.value(names.ENERGY)
    assert energy.count == 2 and energy.sum == pytest.approx(unc.energy_score(z).sum())
    mi = store.value(names.MUTUAL_INFORMATION)
    assert mi.count == 2 and mi.sum == pytest.approx(unc.mutual_information(members).sum())
    assert store.value(names.TOP_CLASS_VARIANCE).count == 2


def _alarm(store: MetricStore, pname: str, dname: str, labels: tuple[str, ...] | None, p: float, d: float) -> bool:
    pv, dv = store.value(pname, labels), store.value(dname, labels)
    return pv is not None and dv is not None and pv < p and dv > d


def test_confidence_drift_false_alarms_and_detection() -> None:
    """Default rule (KS p < 0.001 and distance > 0.1) on windows of 500 rows: unshifted windows
    flagged in <= 1% of 200 seeded windows, a loss of confidence (Beta(20,1.5) -> Beta(6,1.5))
    in >= 95% of 100."""
    rng = np.random.default_rng(1)
    ref = reference(rng)

    def rate(a: float, windows: int) -> float:
        hits = 0
        for _ in range(windows):
            det = create("confidence_drift", reference=ref, params={"window_s": 1e6})
            det.update(batch(model_outputs(rng, 500, a=a)[0]))
            store = MetricStore("m")
            det.export(store)
            hits += any(_alarm(store, names.CONFIDENCE_DRIFT_PVALUE, names.CONFIDENCE_DRIFT_DISTANCE, (s,), 1e-3, 0.1)
                        for s in ("confidence", "entropy"))
        return hits / windows

    assert rate(20.0, 200) <= 0.01
    assert rate(6.0, 100) >= 0.95


def test_confidence_drift_is_absent_below_min_rows_and_round_trips() -> None:
    rng = np.random.default_rng(2)
    ref = reference(rng)
    det = create("confidence_drift", reference=ref, params={"min_rows": 300, "window_s": 1e6})
    det.update(batch(model_outputs(rng, 200)[0]))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.CONFIDENCE_DRIFT_PVALUE, ("confidence",)) is None
    det.update(batch(model_outputs(rng, 200)[0], t0=100.0))
    clone = create("confidence_drift", reference=ref, params={"min_rows": 300, "window_s": 1e6})
    clone.load_state_dict(det.state_dict())
    assert clone.results()["entropy"] == det.results()["entropy"] is not None


def test_prediction_drift_label_shift_and_collapse() -> None:
    rng = np.random.default_rng(3)
    ref = reference(rng, 3000)
    # knocked-out class 0 (label shift)
    prior = np.full(K, 1.0 / (K - 1))
    prior[0] = 0.0
    det = create("prediction_drift", reference=ref, params={"window_s": 1e6})
    det.update(batch(model_outputs(rng, 2000, prior=prior)[0]))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.PREDICTION_DRIFT_PVALUE) < 1e-6
    assert store.value(names.LABEL_SHIFT_WEIGHT, ("c0",)) < 0.15
    assert store.value(names.LABEL_SHIFT_WEIGHT, ("c1",)) == pytest.approx(K / (K - 1), abs=0.2)
    # collapse onto one answer: diversity falls, the top class is named with its reference share
    probs = np.zeros((1000, K))
    probs[:, 3] = 0.9
    probs[:, 4] = 0.1
    det = create("prediction_drift", reference=ref, params={"window_s": 1e6})
    det.update(batch(probs))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.OUTPUT_ENTROPY) == pytest.approx(0.0)
    assert store.value(names.OUTPUT_ENTROPY_REFERENCE) > 0.95
    assert store.value(names.TOP_CLASS_SHARE, ("c3",)) == 1.0
    assert store.value(names.TOP_CLASS_SHARE_REFERENCE, ("c3",)) == pytest.approx(0.1, abs=0.03)
    assert store.value(names.PREDICTION_DRIFT_DISTANCE) > 0.5


def test_prediction_drift_false_alarms() -> None:
    """Unshifted windows of 1000 rows: the default rule (p < 0.001, JS > 0.1) fires in none of 100."""
    rng = np.random.default_rng(4)
    ref = reference(rng, 3000)
    hits = 0
    for _ in range(100):
        det = create("prediction_drift", reference=ref, params={"window_s": 1e6})
        det.update(batch(model_outputs(rng, 1000)[0]))
        store = MetricStore("m")
        det.export(store)
        hits += _alarm(store, names.PREDICTION_DRIFT_PVALUE, names.PREDICTION_DRIFT_DISTANCE, None, 1e-3, 0.1)
    assert hits == 0


def test_accuracy_estimators_track_the_true_accuracy() -> None:
    """CBPE within 3 points when confidence and accuracy fall together (calibration kept, where
    ATC's assumption fails); CBPE and ATC within 5 points when 30% of rows become near-uniform
    guesses (the noisy-rows shift); BBSE within 3 points under label shift with classes of
    unequal accuracy."""
    rng = np.random.default_rng(5)
    ref = reference(rng, 4000)
    det = create("accuracy_estimation", reference=ref, params={"window_s": 1e6})
    probs, y = model_outputs(rng, 3000, a=5.0, b=2.0)
    det.update(batch(probs))
    true = float(np.mean(probs.argmax(axis=1) == y))
    assert true < 0.8  # a real drop from the reference (~0.94)
    assert det.estimates()["cbpe"] == pytest.approx(true, abs=0.03)

    det = create("accuracy_estimation", reference=ref, params={"window_s": 1e6})
    probs, y = model_outputs(rng, 3000)
    noisy = rng.random(3000) < 0.3
    guess, _ = model_outputs(rng, int(noisy.sum()), a=1.0, b=30.0)
    probs[noisy] = guess  # near-uniform outputs, right ~ at their confidence (as noise makes them)
    y[noisy] = np.where(rng.random(int(noisy.sum())) < guess.max(axis=1), guess.argmax(axis=1),
                        (guess.argmax(axis=1) + rng.integers(1, K, int(noisy.sum()))) % K)
    det.update(batch(probs))
    est = det.estimates()
    true = float(np.mean(probs.argmax(axis=1) == y))
    assert true < 0.75
    assert est["cbpe"] == pytest.approx(true, abs=0.05)
    assert est["atc"] == pytest.approx(true, abs=0.05)
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.REFERENCE_ACCURACY) == pytest.approx(det.reference_accuracy)
    assert store.value(names.ESTIMATED_ACCURACY, ("atc",)) == pytest.approx(est["atc"])

    # label shift: a model that is good on classes 0-4 and poor on 5-9, traffic moves to 5-9
    def skewed(n: int, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, labels = model_outputs(rng, n, prior=prior)
        weak = labels >= 5
        p2, _ = model_outputs(rng, int(weak.sum()), a=2.0, b=2.0)
        y2 = labels[weak]
        pred = np.where(rng.random(len(y2)) < p2.max(axis=1), y2, (y2 + rng.integers(1, K, len(y2))) % K)
        q = np.repeat(((1 - p2.max(axis=1)) / (K - 1))[:, None], K, axis=1)
        q[np.arange(len(y2)), pred] = p2.max(axis=1)
        p[weak] = q
        return p, labels

    uniform = np.full(K, 1.0 / K)
    rp, ry = skewed(6000, uniform)
    ref2 = Reference.from_arrays(np.zeros((6000, 1)), scores=rp, labels=ry)
    shifted = np.array([0.02] * 5 + [0.18] * 5)
    cp, cy = skewed(4000, shifted)
    det = create("accuracy_estimation", reference=ref2, params={"window_s": 1e6})
    det.update(batch(cp))
    true = float(np.mean(cp.argmax(axis=1) == cy))
    assert det.estimates()["bbse"] == pytest.approx(true, abs=0.03)


def test_accuracy_estimation_round_trip_and_minimum() -> None:
    rng = np.random.default_rng(6)
    ref = reference(rng)
    det = create("accuracy_estimation", reference=ref, params={"min_rows": 100, "window_s": 1e6})
    det.update(batch(model_outputs(rng, 50)[0]))
    assert det.estimates() == {"cbpe": None, "atc": None, "bbse": None}
    det.update(batch(model_outputs(rng, 100)[0], t0=10.0))
    clone = create("accuracy_estimation", reference=ref, params={"min_rows": 100, "window_s": 1e6})
    clone.load_state_dict(det.state_dict())
    assert clone.estimates() == det.estimates()


def test_prediction_drift_round_trip_and_minimum() -> None:
    rng = np.random.default_rng(7)
    ref = reference(rng)
    det = create("prediction_drift", reference=ref, params={"min_rows": 300, "window_s": 1e6})
    det.update(batch(model_outputs(rng, 200)[0]))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.PREDICTION_DRIFT_PVALUE) is None and store.value(names.LABEL_SHIFT_WEIGHT, ("c0",)) is None
    det.update(batch(model_outputs(rng, 200)[0], t0=30.0))
    clone = create("prediction_drift", reference=ref, params={"min_rows": 300, "window_s": 1e6})
    clone.load_state_dict(det.state_dict())
    assert clone.window_counts.tolist() == det.window_counts.tolist()
    assert clone.label_shift_weights() == pytest.approx(det.label_shift_weights())


def test_ensemble_logits_get_the_energy_of_their_mean_logits() -> None:
    """``output: {kind: logits, samples_axis: true}``: the mutual information was exported but no
    energy score (the decoder dropped the logits of ensembles)."""
    z = np.array([[[2.0, -1.0, 0.0], [4.0, 1.0, 0.0]], [[0.5, 0.5, 0.4], [0.1, 0.2, 0.3]]])
    dec = decode_outputs(z, OutputSpec("logits", samples_axis=True), ClassIndex())
    np.testing.assert_allclose(dec.logits, z.mean(axis=1))
    det = create("confidence", params={"min_rows": 1})
    det.update(Batch.from_arrays(np.zeros((2, 1)), dec.scores, predicted=dec.predicted, logits=dec.logits, members=dec.members))
    store = MetricStore("m")
    det.export(store)
    energy = store.value(names.ENERGY)
    assert energy.count == 2 and energy.sum == pytest.approx(unc.energy_score(z.mean(axis=1)).sum())
    assert store.value(names.MUTUAL_INFORMATION).count == 2
    # one logit per member (binary): the mean logit against a zero column, as for one model
    one = decode_outputs(np.array([[[1.0], [3.0]]]), OutputSpec("logits", samples_axis=True), ClassIndex())
    np.testing.assert_allclose(one.logits, [[0.0, 2.0]])
