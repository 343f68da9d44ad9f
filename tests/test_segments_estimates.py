"""Per segment: mean margin and entropy, the accuracy estimated without labels (the whole window's
CBPE and ATC estimators, fitted on the labelled reference, applied to the segment's rows), and the
MCE with labels (issue 3 item 4: "every confidence and accuracy figure can be sliced by segment").

Seeded stream of a real scikit-learn model on digits: segment ``clean`` sees the held-out rows as
they are, segment ``noisy`` the same kind of rows dimmed and noisy (a broken camera): its accuracy
falls, and its estimates fall with it, without labels (by how much each estimator errs under
which shift is benchmarks/eval_confidence.py's subject; here each segment's estimate must be exactly
the whole window's estimator on that segment's rows).
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.store import MetricStore
from monitor.detectors._common import _features
from monitor.detectors._label_free import LabelFreeEstimators
from monitor.detectors.segments import MCE_MIN_BIN, SegmentDetector
from monitor.stats import calibration as cal
from monitor.stats.uncertainty import normalized_entropy, top_two
from tests.sidecar_support import sample

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def digits() -> dict:
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(11)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    clf = LogisticRegression(max_iter=3000).fit(x[:700], y[:700])
    ref = Reference.from_arrays(x[700:1100], scores=clf.predict_proba(x[700:1100]), labels=y[700:1100])
    live_x, live_y = x[1100:], y[1100:]
    seg = np.where(rng.random(len(live_y)) < 0.5, "clean", "noisy")
    shown = np.where((seg == "noisy")[:, None], live_x * 0.25 + rng.normal(0.0, 1.0, live_x.shape), live_x)
    return {"clf": clf, "ref": ref, "x": shown, "y": live_y, "seg": seg, "p": clf.predict_proba(shown)}


def test_estimated_accuracy_margin_entropy_and_mce_per_segment(digits: dict) -> None:
    config = {"detectors": [{"kind": "segments", "min_rows": 50, "min_labels": 50, "min_labels_calibration": 100},
                            {"kind": "accuracy_estimation"}]}
    mon = Monitor(model="seg", config=config, reference=digits["ref"], registry=CollectorRegistry(), live=False, start_worker=False)
    x, y, seg, p = digits["x"], digits["y"], digits["seg"], digits["p"]
    for i in range(0, len(y), 13):
        ids = [f"r{j}" for j in range(i, min(i + 13, len(y)))]
        mon.observe(x[i:i + 13], p[i:i + 13], request_id=ids, segment=list(seg[i:i + 13]), timestamp=T0 + i)
        mon.feedback(ids, y[i:i + 13], timestamp=T0 + i + 1)
    mon.flush()
    text = mon.metrics_text()
    conf, second = top_two(p)
    entropy = normalized_entropy(p)
    correct = (p.argmax(axis=1) == y).astype(float)
    truth = {}
    for name in ("clean", "noisy"):
        m = seg == name
        truth[name] = correct[m].mean()
        assert sample(text, "monitor_segment_margin_mean_ratio", segment=name) == pytest.approx((conf - second)[m].mean())
        assert sample(text, "monitor_segment_entropy_mean_ratio", segment=name) == pytest.approx(entropy[m].mean())
        # exactly the whole window's estimators on the segment's rows
        fitted = LabelFreeEstimators.fit(digits["ref"].scores, digits["ref"].labels)
        feats = _features(p[m], None)
        assert sample(text, "monitor_segment_estimated_accuracy_ratio", segment=name, estimator="cbpe") == pytest.approx(
            fitted.cbpe_rows(feats.conf).mean())
        atc = sample(text, "monitor_segment_estimated_accuracy_ratio", segment=name, estimator="atc")
        assert atc == pytest.approx(fitted.atc_rows(feats).mean())
        count, sconf, scorr = cal.reliability_sums(conf[m], correct[m], np.linspace(0.0, 1.0, cal.ECE_BINS + 1))
        assert sample(text, "monitor_segment_max_calibration_error_ratio", segment=name) == pytest.approx(
            cal.mce_from_sums(count, sconf, scorr, min_count=MCE_MIN_BIN))
    assert truth["clean"] - truth["noisy"] > 0.05  # the dimming really hurts
    for est in ("cbpe", "atc"):  # and both estimators see the noisy segment as the worse one, without labels
        assert sample(text, "monitor_segment_estimated_accuracy_ratio", segment="noisy", estimator=est) < \
            sample(text, "monitor_segment_estimated_accuracy_ratio", segment="clean", estimator=est)
    atc = {s: sample(text, "monitor_segment_estimated_accuracy_ratio", segment=s, estimator="atc") for s in ("clean", "noisy")}
    gap = sample(text, "monitor_segment_max_gap_ratio", figure="estimated_accuracy", high="clean", low="noisy")
    assert gap == pytest.approx(atc["clean"] - atc["noisy"])
    assert sample(text, "monitor_segment_max_gap_zscore", figure="estimated_accuracy") > 4
    # the whole window's estimate is the row-weighted mean of the segments' (same estimator, same rows)
    rows = {s: sample(text, "monitor_segment_rows_in_window", segment=s) for s in ("clean", "noisy")}
    whole = sum(atc[s] * rows[s] for s in rows) / sum(rows.values())
    assert sample(text, "monitor_estimated_accuracy_ratio", estimator="atc") == pytest.approx(whole)
    mon.close()


def test_without_a_labelled_reference_no_estimate_and_old_states_load(digits: dict) -> None:
    det = SegmentDetector(min_rows=10)  # no reference: no estimates, the rest as before
    p, seg = digits["p"][:200], digits["seg"][:200]
    det.update(Batch.from_arrays(np.zeros((200, 1)), p, ts=T0, segment=list(seg)))
    assert det.gaps()["estimated_accuracy"] is None and det.gaps()["confidence"] is not None
    with_ref = SegmentDetector(digits["ref"], min_rows=10)
    with_ref.update(Batch.from_arrays(np.zeros((200, 1)), p, ts=T0, segment=list(seg)))
    state = with_ref.state_dict()
    del state["windows"]["extra"]  # saved before these figures existed
    old = SegmentDetector(digits["ref"], min_rows=10)
    old.load_state_dict(state)
    assert old.gaps()["confidence"] == pytest.approx(with_ref.gaps()["confidence"])
    assert old.gaps()["estimated_accuracy"] is None  # nothing yet in the new window: absent, refills


def test_outputs_of_another_width_than_the_reference_are_an_error_not_an_estimate_of_zero(digits: dict) -> None:
    det = SegmentDetector(digits["ref"], min_rows=1)  # the reference has 10 classes
    p = np.full((5, 3), 1.0 / 3)
    with pytest.raises(ValueError, match="outputs have 3 columns, the reference's probabilities 10: rebuild the reference"):
        det.update(Batch.from_arrays(np.zeros((5, 1)), p, ts=T0, segment="a"))
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.SEGMENT_ROWS, ("a",)) == 0.0  # nothing half-added
