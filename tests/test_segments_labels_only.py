"""Segments of a model that returns labels only (``output.kind: labels``, scikit-learn's ``predict``).

Issue 3 asks that every accuracy figure can be sliced by segment and that the largest gap between
segments in positive-prediction rate (and, with labels, in accuracy) be exported. Such a model has
no confidence: before, the segments detector skipped its rows and labels, so it got neither.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.sidecar_support import sample

sklearn = pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

T0 = 1_700_000_000.0
NAMES = np.array(["malignant", "benign"])


def _monitor(config: dict) -> Monitor:
    return Monitor(model="labels-seg", config=config, registry=CollectorRegistry(), live=False, start_worker=False)


def _value(mon: Monitor, name: str, **labels: str) -> float | None:
    return sample(mon.metrics_text(), name, **labels)


@pytest.fixture(scope="module")
def stream() -> dict:
    """A fitted classifier and a live stream in two segments: ``web`` sees the inputs as they are,
    ``app`` sees them with strong noise on every feature (a broken client), so the model's answers
    there are worse and lean to one class."""
    x, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(3)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[:250], y[:250])
    live_x, live_y = x[250:], y[250:]
    segment = np.where(rng.random(len(live_y)) < 0.5, "web", "app")
    noisy = live_x + rng.normal(0.0, 1.5, live_x.shape) * live_x.std(axis=0)
    shown = np.where((segment == "app")[:, None], noisy, live_x)
    predicted = clf.predict(shown)
    return {"x": shown, "y": live_y, "segment": segment, "predicted": predicted}


def _feed(mon: Monitor, s: dict, batch: int = 7) -> None:
    n = len(s["y"])
    for i in range(0, n, batch):
        sl = slice(i, i + batch)
        ids = [f"r{j}" for j in range(i, min(i + batch, n))]
        mon.observe(s["x"][sl], NAMES[s["predicted"][sl]], request_id=ids, segment=list(s["segment"][sl]),
                    timestamp=T0 + i)
        mon.feedback(ids, NAMES[s["y"][sl]], timestamp=T0 + i + 1)
    mon.flush()


def test_accuracy_and_positive_rate_per_segment_and_their_gaps(stream: dict) -> None:
    config = {"output": {"kind": "labels", "classes": list(NAMES)},
              "detectors": [{"kind": "segments", "min_rows": 50, "min_labels": 50}, {"kind": "calibration"}]}
    mon = _monitor(config)
    _feed(mon, stream)
    seg, y, pred = stream["segment"], stream["y"], stream["predicted"]
    accuracy, positive = {}, {}
    for name in ("web", "app"):
        m = seg == name
        accuracy[name] = float(np.mean(pred[m] == y[m]))
        positive[name] = float(np.mean(pred[m] == 1))  # class 1 = "benign", the second configured class
        assert _value(mon, "monitor_segment_rows_in_window", segment=name) == m.sum()
        assert _value(mon, "monitor_segment_labels_in_window", segment=name) == m.sum()
        assert _value(mon, "monitor_segment_accuracy_ratio", segment=name) == pytest.approx(accuracy[name])
        assert _value(mon, "monitor_segment_positive_rate_ratio", segment=name) == pytest.approx(positive[name])
    assert accuracy["web"] - accuracy["app"] > 0.1  # the noisy segment is really worse
    assert _value(mon, "monitor_segment_max_gap_ratio", figure="accuracy", high="web", low="app") == \
        pytest.approx(accuracy["web"] - accuracy["app"])
    hi, lo = sorted(positive, key=positive.get, reverse=True)
    assert _value(mon, "monitor_segment_max_gap_ratio", figure="positive_rate", high=hi, low=lo) == \
        pytest.approx(positive[hi] - positive[lo])
    assert _value(mon, "monitor_segment_max_gap_zscore", figure="accuracy") > 2.0
    # no confidence: its figures are absent, not 0
    for figure in ("monitor_segment_confidence_mean_ratio", "monitor_segment_abstain_ratio",
                   "monitor_segment_overconfidence_gap_ratio", "monitor_segment_brier_score",
                   "monitor_segment_log_loss", "monitor_segment_calibration_error_ratio"):
        assert _value(mon, figure) is None, figure
    assert _value(mon, "monitor_segment_max_gap_ratio", figure="confidence") is None
    # the whole window's accuracy agrees with the segments'
    assert _value(mon, "monitor_accuracy_ratio") == pytest.approx(float(np.mean(pred == y)))

    state = mon.state_dict()
    again = _monitor(config)
    again.load_state_dict(state)
    again.flush()
    for name in ("web", "app"):
        assert _value(again, "monitor_segment_accuracy_ratio", segment=name) == pytest.approx(accuracy[name])
    assert _value(again, "monitor_segment_confidence_mean_ratio") is None
    mon.close()
    again.close()


def test_learned_class_names_take_the_class_named_1_as_positive(stream: dict) -> None:
    """Without ``output.classes`` the names are learned in the order first answered: a stream
    whose first answer is ``1`` learns ``["1", "0"]``, and the positive rate is still that of 1."""
    s = dict(stream)
    first = int(np.flatnonzero(s["predicted"] == 1)[0])
    order = np.r_[first, np.delete(np.arange(len(s["y"])), first)]
    s = {k: v[order] for k, v in s.items()}
    mon = _monitor({"output": {"kind": "labels"}, "detectors": [{"kind": "segments", "min_rows": 50}]})
    n = len(s["y"])
    for i in range(0, n, 7):
        sl = slice(i, i + 7)
        mon.observe(s["x"][sl], s["predicted"][sl], segment=list(s["segment"][sl]), timestamp=T0 + i)
    mon.flush()
    for name in ("web", "app"):
        m = s["segment"] == name
        assert _value(mon, "monitor_segment_positive_rate_ratio", segment=name) == \
            pytest.approx(float(np.mean(s["predicted"][m] == 1)))
    mon.close()


def test_a_scored_model_keeps_its_confidence_figures_after_an_old_checkpoint(stream: dict) -> None:
    """A state saved before labels-only models were handled has no ``scored`` flag: the model
    then had probabilities, and its confidence figures stay."""
    from monitor.detectors.segments import SegmentDetector
    from monitor.batch import Batch

    det = SegmentDetector(min_rows=5)
    rng = np.random.default_rng(0)
    p = rng.dirichlet([2.0, 2.0], size=40)
    det.update(Batch.from_arrays(np.zeros((40, 1)), p, ts=T0, segment=["a", "b"] * 20))
    before = det.gaps()["confidence"]
    assert before is not None
    state = det.state_dict()
    state.pop("scored")
    fresh = SegmentDetector(min_rows=5)
    fresh.load_state_dict(state)
    assert fresh.gaps()["confidence"] == pytest.approx(before)


@pytest.mark.parametrize(("names", "positive"), [(("no", "yes"), "yes"), (("spam", "ham"), "spam"),
                                                 (("10", "2"), "10"), (("True", "False"), "True")])
@pytest.mark.parametrize("first", [0, 1])
def test_learned_binary_names_take_the_greater_as_positive_whatever_came_first(names: tuple[str, str], positive: str,
                                                                               first: int) -> None:
    """Without ``output.classes`` the positive class of learned names is the greater, as
    scikit-learn orders ``classes_`` (numerically for numbers), not whichever the model happened
    to answer second: the same traffic gives the same positive rate in either order of arrival."""
    rng = np.random.default_rng(7)
    answers = np.array(names, dtype=object)[(rng.random(400) < 0.3).astype(int)]
    answers[0] = names[first]
    segment = np.where(rng.random(400) < 0.5, "web", "app")
    mon = _monitor({"output": {"kind": "labels"}, "detectors": [{"kind": "segments", "min_rows": 50}]})
    for i in range(0, 400, 8):
        mon.observe(np.zeros((8, 2)), list(answers[i:i + 8]), segment=list(segment[i:i + 8]), timestamp=T0 + i)
    mon.flush()
    for name in ("web", "app"):
        m = segment == name
        assert _value(mon, "monitor_segment_positive_rate_ratio", segment=name) == \
            pytest.approx(float(np.mean(answers[m] == positive)))
    mon.close()


def test_configured_binary_classes_keep_the_second_as_positive() -> None:
    """With ``output.classes`` the user's order decides, as for a scored model's second column:
    ``[yes, no]`` makes ``no`` positive even though ``yes`` sorts after it."""
    rng = np.random.default_rng(8)
    answers = np.array(["yes", "no"], dtype=object)[(rng.random(200) < 0.3).astype(int)]
    mon = _monitor({"output": {"kind": "labels", "classes": ["yes", "no"]},
                    "detectors": [{"kind": "segments", "min_rows": 50}]})
    for i in range(0, 200, 8):
        mon.observe(np.zeros((8, 2)), list(answers[i:i + 8]), segment="web", timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_segment_positive_rate_ratio", segment="web") == pytest.approx(float(np.mean(answers == "no")))
    mon.close()
