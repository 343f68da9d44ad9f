"""Outputs at the edges of their shapes, found by a review of the ensemble and regression paths.

* An ensemble call with no member (or any output with an empty axis) was accepted: the mean of
  no member is NaN, which made the cumulative confidence sum NaN for good and was counted as
  class 0; an empty class axis raised inside the conversion (an internal error, which pages).
* A drain holding outputs of two valid widths (a binary model's one and two columns, ensembles of
  5 and 7 members, regression values with and without intervals) refused the minority: the
  figures depended on which events shared a drain.
* A prediction without an interval, in a slot of the label ring that an earlier prediction with
  one had held, joined its label with that old interval.
* Configurations that cannot be read (``samples_axis`` with labels or regression, quantile levels
  all on one side of 0.5) were accepted, and quantiles without 0.5 took the upper middle column as
  the prediction.
* Ensemble logits with a masked class (-inf in every member) had the energy of a logit of 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from scipy.special import logsumexp

from monitor import Monitor, Reference
from monitor.batch import Batch
from monitor.config import ConfigError, parse_config
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex, decode_outputs
from monitor.schema import OutputSpec

T0 = 1_700_000_000.0


def _monitor(output: dict, detectors: list | None = None, **kw: object) -> Monitor:
    config = {"output": output, "detectors": detectors or ["confidence", "calibration"], **kw}
    return Monitor("m", config=config, registry=CollectorRegistry(), live=False, start_worker=False)


@pytest.mark.parametrize(("kind", "samples_axis", "shape"), [
    ("probabilities", True, (2, 0, 3)), ("probabilities", True, (2, 4, 0)), ("logits", True, (2, 0, 3)),
    ("probabilities", False, (2, 0)), ("logits", False, (2, 0)), ("labels", False, (2, 0)), ("regression", False, (2, 0))])
def test_an_empty_axis_is_refused_as_output_shape(kind: str, samples_axis: bool, shape: tuple[int, ...]) -> None:
    dec = decode_outputs(np.empty(shape), OutputSpec(kind, samples_axis=samples_axis), ClassIndex())
    assert dec.reasons == {"output_shape": 2} and not dec.valid.any()
    assert "empty axis" in dec.details["output_shape"]


def test_an_ensemble_call_without_members_leaves_the_figures_intact() -> None:
    rng = np.random.default_rng(0)
    mon = _monitor({"kind": "probabilities", "samples_axis": True})
    mon.observe(np.zeros((2, 1)), np.empty((2, 0, 3)), timestamp=T0)
    mon.flush()  # a drain of its own
    members = rng.dirichlet(np.ones(3), size=(300, 5))
    mon.observe(np.zeros((300, 1)), members, timestamp=T0 + 1)
    mon.flush()
    assert mon.store.value("monitor_rows_rejected", ("output_shape",)) == 2
    assert mon.store.value("monitor_internal_errors", ("ingest",)) in (None, 0.0)
    assert mon.store.value("monitor_confidence_mean_ratio") == pytest.approx(members.mean(axis=1).max(axis=1).mean())
    assert mon.store.value("monitor_predictions") == 300
    mon.close()


@pytest.mark.parametrize(("first", "second", "output"), [
    ([[0.3]] * 3, [[0.6, 0.4]] * 3, {"kind": "probabilities", "classes": ["n", "y"]}),
    ([0.3, 0.2, 0.1], [[0.6, 0.4]] * 3, {"kind": "probabilities"}),
    (np.full((3, 5, 2), 0.5), np.full((3, 7, 2), 0.5), {"kind": "probabilities", "samples_axis": True}),
    ([1.0, 2.0, 3.0], [[1.0, 0.0, 2.0]] * 3, {"kind": "regression"}),
])
def test_a_drain_of_two_valid_widths_keeps_every_row(first: object, second: object, output: dict) -> None:
    mon = _monitor(output, ["confidence"] if output["kind"] != "regression" else ["regression"])
    mon.observe(np.zeros((3, 1)), first, timestamp=T0)
    mon.observe(np.zeros((3, 1)), second, timestamp=T0 + 1)
    mon.observe(np.zeros((3, 1)), first, timestamp=T0 + 2)
    mon.flush()  # one drain: the three calls are converted together
    assert mon.store.value("monitor_predictions") == 9
    assert mon.store.value("monitor_rows_rejected", ("output_shape",)) is None
    mon.close()


def test_a_width_learned_from_two_columns_accepts_one_and_refuses_three() -> None:
    mon = _monitor({"kind": "probabilities"}, ["confidence"])
    mon.observe(np.zeros((2, 1)), [[0.6, 0.4]] * 2, timestamp=T0)
    mon.flush()
    mon.observe(np.zeros((2, 1)), [[0.3]] * 2, timestamp=T0 + 1)
    mon.observe(np.zeros((2, 1)), [[0.3, 0.3, 0.4]] * 2, timestamp=T0 + 2)
    mon.flush()
    assert mon.store.value("monitor_predictions") == 4
    assert mon.store.value("monitor_rows_rejected", ("output_shape",)) == 2
    mon.close()


def test_a_reused_label_slot_does_not_lend_its_old_interval() -> None:
    joiner = LabelJoiner(capacity=2)
    with_interval = Batch.from_arrays(np.zeros((2, 1)), np.array([0.0, 0.0]), request_id=["a", "b"])
    with_interval.intervals = np.array([[-10.0, 10.0], [-10.0, 10.0]])
    joiner.remember(with_interval)
    joiner.remember(Batch.from_arrays(np.zeros((2, 1)), np.array([1.0, 2.0]), request_id=["c", "d"]))
    labeled, counts = joiner.join(5.0, ["c", "d"], [1.0, 2.0], ClassIndex(), regression=True)
    assert counts["joined"] == 2 and labeled is not None
    assert np.isnan(labeled.intervals).all()


def test_coverage_is_absent_for_predictions_without_intervals_after_the_ring_wrapped() -> None:
    mon = _monitor({"kind": "regression"}, [{"kind": "regression", "min_labels": 10}], labels={"pending": 20})
    ids = [f"a{i}" for i in range(20)]
    mon.observe(np.zeros((20, 1)), np.tile([0.0, -10.0, 10.0], (20, 1)), request_id=ids, timestamp=T0)
    mon.flush()  # a drain of its own
    ids2 = [f"b{i}" for i in range(20)]
    mon.observe(np.zeros((20, 1)), np.zeros(20), request_id=ids2, timestamp=T0 + 1)
    mon.flush()
    mon.feedback(ids2, [0.5] * 20, timestamp=T0 + 2)
    mon.flush()
    assert mon.store.value("monitor_regression_mae") == pytest.approx(0.5)
    assert mon.store.value("monitor_interval_coverage_ratio") is None
    mon.close()


@pytest.mark.parametrize(("output", "key", "message"), [
    ({"kind": "labels", "samples_axis": True}, "output.samples_axis", "probabilities or logits"),
    ({"kind": "regression", "samples_axis": True}, "output.samples_axis", "probabilities or logits"),
    ({"kind": "regression", "quantiles": [0.1, 0.3]}, "output.quantiles", "give no prediction"),
])
def test_configurations_that_cannot_be_read_are_refused(output: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=key) as info:
        parse_config({"model": "m", "output": output})
    assert info.match(message)


def test_quantiles_without_the_median_predict_between_the_levels_around_it() -> None:
    dec = decode_outputs(np.array([[1.0, 3.0], [0.0, 10.0]]), OutputSpec("regression", quantiles=(0.1, 0.9)), ClassIndex())
    assert dec.scores.tolist() == [2.0, 5.0]


def test_a_reference_of_the_wrong_quantile_width_is_refused() -> None:
    rng = np.random.default_rng(1)
    ref = Reference.from_arrays(rng.normal(size=(100, 2)), scores=rng.normal(size=(100, 2)), labels=rng.normal(size=100))
    with pytest.raises(ConfigError, match="reference scores have 2 columns"):
        Monitor("m", config={"output": {"kind": "regression", "quantiles": [0.05, 0.5, 0.95]}, "detectors": ["regression"]},
                reference=ref, registry=CollectorRegistry(), live=False, start_worker=False)


def test_ensemble_logits_with_a_masked_class_keep_its_minus_infinity_in_the_energy() -> None:
    z = np.array([[[2.0, 1.0, -np.inf], [1.0, 3.0, -np.inf]]])
    dec = decode_outputs(z, OutputSpec("logits", samples_axis=True), ClassIndex())
    assert dec.valid.all()
    mean = np.array([[1.5, 2.0, -np.inf]])
    assert dec.logits.tolist() == mean.tolist()
    energy = -logsumexp(dec.logits, axis=1)
    assert energy == pytest.approx(-logsumexp([1.5, 2.0]))


def test_ragged_members_are_refused_as_a_shape_not_as_text() -> None:
    """Members of different class counts were refused as ``non_numeric_output``, whose fix says to
    set ``output.kind: labels``: the wrong fix for an ensemble whose members disagree on classes."""
    mon = _monitor({"kind": "probabilities", "samples_axis": True}, ["confidence"])
    mon.observe(np.zeros((1, 1)), [[[0.5, 0.5], [0.2, 0.3, 0.5]]], timestamp=T0)
    mon.observe(np.zeros((1, 1)), [[["a", "b"], ["c", "d"]]], timestamp=T0 + 1)
    mon.flush()
    assert mon.store.value("monitor_rows_rejected", ("output_shape",)) == 1
    assert mon.store.value("monitor_rows_rejected", ("non_numeric_output",)) == 1
    mon.close()


@pytest.mark.parametrize("samples_axis", [True, False])
def test_reference_scores_live_traffic_would_refuse_are_refused(samples_axis: bool) -> None:
    """A reference member of [1.5, -0.5, 0] (or a row that does not sum to one) was kept, though
    the same row live is refused: one such row in 300 moved ATC's estimate by 6 points."""
    rng = np.random.default_rng(13)
    scores = rng.dirichlet(np.ones(3), size=(300, 5) if samples_axis else 300)
    bad = scores.copy()
    if samples_axis:
        bad[4, 0], bad[4, 1] = [1.5, -0.5, 0.0], [-0.5, 1.5, 0.0]  # their mean is a fine row
    else:
        bad[4] = [0.6, 0.6, 0.6]
    config = {"output": {"kind": "probabilities", "samples_axis": samples_axis, "classes": ["a", "b", "c"]},
              "detectors": ["accuracy_estimation"]}
    x, y = rng.normal(size=(300, 2)), rng.integers(0, 3, 300)
    good = Monitor("m", config=config, reference=Reference.from_arrays(x, scores=scores, labels=y, classes=["a", "b", "c"]),
                   registry=CollectorRegistry(), live=False, start_worker=False)
    good.close()
    with pytest.raises(ConfigError, match="reference.path") as info:
        Monitor("m", config=config, reference=Reference.from_arrays(x, scores=bad, labels=y, classes=["a", "b", "c"]),
                registry=CollectorRegistry(), live=False, start_worker=False)
    assert info.match("1 rows the monitor would refuse live") and info.match("row 4")


def test_plain_logits_with_a_masked_class_are_read_as_ensembles_are() -> None:
    """-inf in a plain logit row was refused as nan_output, while an ensemble's members with the
    same masked class were read: a masked class is probability 0. NaN, +inf and a row with every
    class masked are still refused."""
    z = np.array([[2.0, 1.0, -np.inf], [np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf]])
    dec = decode_outputs(z, OutputSpec("logits"), ClassIndex())
    assert dec.valid.tolist() == [True, False, False, False]
    assert dec.reasons == {"nan_output": 3}
    e = np.exp([2.0, 1.0])
    assert dec.scores[0].tolist() == pytest.approx([e[0] / e.sum(), e[1] / e.sum(), 0.0])
    assert -logsumexp(dec.logits[0]) == pytest.approx(-logsumexp([2.0, 1.0]))
    one_column = decode_outputs(np.array([[-np.inf]]), OutputSpec("logits"), ClassIndex())
    assert one_column.valid.all() and one_column.scores.tolist() == [[1.0, 0.0]]


def test_regression_labels_given_as_a_column_vector_join() -> None:
    """Targets shaped ``(n, 1)`` (as many regressors take and return them) were read as one list
    per label and every one counted invalid."""
    mon = _monitor({"kind": "regression"}, [{"kind": "regression", "min_labels": 5}])
    ids = [f"r{i}" for i in range(10)]
    mon.observe(np.zeros((10, 1)), np.arange(10.0), request_id=ids, timestamp=T0)
    mon.flush()
    mon.feedback(ids, (np.arange(10.0) + 0.5).reshape(-1, 1), timestamp=T0 + 1)
    mon.flush()
    assert mon.store.value("monitor_feedback_labels", ("joined",)) == 10
    assert mon.store.value("monitor_regression_mae") == pytest.approx(0.5)
    mon.close()
