"""Input and output forms the worker reads, and what it refuses (counted by reason)."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex
from monitor.schema import Feature, OutputSpec, Schema


def ev(inputs, outputs, ts=0.0, rid=None, client=None, segment=None):
    return (PREDICTION, ts, inputs, outputs, None, client, rid, segment, None)


def test_dict_rows_columnar_dicts_and_list_of_dicts():
    b = BatchBuilder(Schema((Feature("age"), Feature("country", "categorical"))), OutputSpec())
    r = b.build([
        ev({"age": 30, "country": "fr"}, [0.1, 0.9]),
        ev([{"age": 40, "country": "de"}, {"age": None, "country": None}], [[0.5, 0.5], [0.2, 0.8]]),
        ev({"age": [1, 2], "country": ["it", "es"]}, [[0.3, 0.7], [0.6, 0.4]]),
    ])
    batch = r.batch
    assert batch.numeric[:, 0].tolist()[:2] == [30.0, 40.0] and np.isnan(batch.numeric[2, 0])
    assert batch.categorical[:, 0].tolist() == ["fr", "de", None, "it", "es"]
    assert batch.predicted.tolist() == [1, 0, 1, 1, 0]
    assert r.rows_per_event == [1, 2, 2] and r.rejected == {}


def test_schema_learned_from_dict_keys_and_value_types():
    b = BatchBuilder(None, OutputSpec())
    b.build([ev({"amount": 3.5, "country": "fr"}, [0.2, 0.8])])
    assert b.schema.numeric_names == ("amount",) and b.schema.categorical_names == ("country",)


def test_pandas_dataframe_when_pandas_is_installed():
    pd = pytest.importorskip("pandas")
    b = BatchBuilder(None, OutputSpec())
    df = pd.DataFrame({"a": [1.0, 2.0], "c": ["x", "y"]})
    r = b.build([ev(df, np.array([[0.1, 0.9], [0.8, 0.2]]))])
    assert r.batch.numeric[:, 0].tolist() == [1.0, 2.0] and r.batch.categorical[:, 0].tolist() == ["x", "y"]


def test_logits_become_probabilities_and_one_column_is_binary():
    b = BatchBuilder(None, OutputSpec("logits"))
    r = b.build([ev([1.0], [2.0, 0.0, -1.0]), ev([1.0], [0.0, 0.0, 0.0])])
    p = r.batch.scores
    assert np.allclose(p.sum(axis=1), 1.0) and p[0].argmax() == 0 and np.allclose(p[1], 1 / 3)
    assert r.batch.logits is not None
    b1 = BatchBuilder(None, OutputSpec("probabilities"))
    r1 = b1.build([ev(np.ones((3, 2)), np.array([0.9, 0.2, 0.5]))])
    assert r1.batch.scores.shape == (3, 2) and r1.batch.predicted.tolist() == [1, 0, 0]


def test_labels_output_learns_class_names():
    b = BatchBuilder(None, OutputSpec("labels", ("cat",)))
    r = b.build([ev(np.ones((3, 2)), np.array(["dog", "cat", "dog"], dtype=object))])
    assert r.batch.predicted.tolist() == [1, 0, 1] and r.batch.classes == ("cat", "dog")
    assert r.batch.scores is None


def test_regression_with_intervals():
    b = BatchBuilder(None, OutputSpec("regression"))
    r = b.build([ev(np.ones((2, 2)), np.array([[1.0, 0.5, 1.5], [2.0, 1.0, 3.0]]))])
    assert r.batch.scores.tolist() == [1.0, 2.0] and r.batch.intervals.tolist() == [[0.5, 1.5], [1.0, 3.0]]
    assert r.batch.predicted is None


def test_ensemble_members():
    b = BatchBuilder(None, OutputSpec("probabilities", samples_axis=True))
    members = np.array([[[0.9, 0.1], [0.7, 0.3], [0.8, 0.2]]])  # 1 row, 3 members, 2 classes
    r = b.build([ev(np.ones((1, 2)), members)])
    assert r.batch.members.shape == (1, 3, 2) and np.allclose(r.batch.scores, [[0.8, 0.2]])


@pytest.mark.parametrize(
    "inputs, outputs, reason",
    [
        (np.ones(3), np.array([0.5, 0.5]), "wrong_shape"),
        ("not a row", np.array([0.5, 0.5]), "wrong_type"),
        ([1.0, 2.0], [0.5, float("nan")], "nan_output"),
        ([1.0, 2.0], [0.5, 0.7], "probabilities_not_normalised"),
        ([1.0, 2.0], [1.5, -0.5], "probability_out_of_range"),
        ([[1.0, 2.0], [1.0, 2.0]], [[0.5, 0.5]], "rows_mismatch"),
        ([1.0, 2.0], ["a", "b"], "non_numeric_output"),
    ],
)
def test_unreadable_rows_are_refused_with_a_reason(inputs, outputs, reason):
    b = BatchBuilder(Schema.numeric(["a", "b"]), OutputSpec())
    r = b.build([ev(inputs, outputs), ev([1.0, 2.0], [0.25, 0.75])])
    assert reason in r.rejected
    assert len(r.batch) == 1  # the good event still goes through


def test_scalar_request_id_on_a_batch_call_addresses_rows():
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev(np.ones((2, 2)), np.full((2, 2), 0.5), rid="req"), ev(np.ones((2, 2)), np.full((2, 2), 0.5), rid=["x", "y"])])
    assert r.batch.request_id.tolist() == ["req/0", "req/1", "x", "y"]


def test_out_of_order_events_are_sorted_by_event_time():
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev([1.0], [0.1, 0.9], ts=5.0, rid="late"), ev([2.0], [0.9, 0.1], ts=1.0, rid="early")])
    assert r.batch.ts.tolist() == [1.0, 5.0] and r.batch.request_id.tolist() == ["early", "late"]


def test_label_joiner_is_bounded_counts_outcomes_and_round_trips():
    b = BatchBuilder(None, OutputSpec())
    joiner = LabelJoiner(capacity=3, ttl_s=100.0)
    batch = b.build([ev([float(i)], [0.2, 0.8], ts=float(i), rid=f"r{i}") for i in range(5)]).batch
    joiner.remember(batch)
    assert len(joiner) == 3 and joiner.evicted == 2  # r0 and r1 forgotten
    restored = LabelJoiner(capacity=3, ttl_s=100.0)
    restored.load_state_dict(joiner.state_dict())
    classes = ClassIndex(("0", "1"))
    for j in (joiner, restored):
        labeled, outcome = j.join(10.0, ["r0", "r3", "r4", "r4", "zz"], [1, 1, 0, 0, 1], classes, regression=False)
        # r0 was forgotten and r4 labelled already: unknown at once; zz's prediction may still come
        assert outcome == {"joined": 2, "unknown_id": 2, "invalid": 0, "expired": 0} and j.early_held == 1
        assert labeled.label.tolist() == [1, 0] and labeled.ts.tolist() == [3.0, 4.0]
        assert np.allclose(labeled.scores, [[0.2, 0.8], [0.2, 0.8]])
    late = LabelJoiner(capacity=10, ttl_s=5.0)
    late.remember(batch)
    _, outcome = late.join(100.0, ["r1"], [1], classes, regression=False)
    assert outcome["expired"] == 1


@pytest.mark.parametrize(
    "spec, bad, reason",
    [
        (OutputSpec("regression"), [[3.0, 4.0, 2.0]], "reversed_interval"),  # (value, lower, upper) with lower > upper
        (OutputSpec("regression"), [[3.0, float("nan"), 4.0]], "nan_output"),  # an interval bound missing
        (OutputSpec("regression", quantiles=(0.05, 0.5, 0.95)), [[2.0, 3.0, float("inf")]], "nan_output"),
    ],
)
def test_regression_intervals_that_cannot_be_intervals_are_refused(spec, bad, reason):
    """A reversed (value, lower, upper) row used to count as a miss of the coverage with a
    negative width, a NaN bound as a miss; both are refused with a reason. Quantile columns that
    cross are kept (quantile regression produces them), rearranged: only non-finite ones are refused."""
    b = BatchBuilder(None, spec)
    r = b.build([ev(np.ones((1, 1)), np.array(bad)), ev(np.ones((1, 1)), np.array([[3.0, 2.0, 4.0]]))])
    assert r.rejected == {reason: 1}
    assert len(r.batch) == 1 and r.batch.intervals.tolist() == ([[2.0, 3.0, 4.0]] if spec.quantiles else [[2.0, 4.0]])
    crossing = b.build([ev(np.ones((1, 1)), np.array([[3.0, 2.0, 1.0]]))])
    assert (crossing.rejected == {"reversed_interval": 1}) == (not spec.quantiles)


def test_crossing_quantiles_are_rearranged_into_order():
    """Quantile regression fits each level apart, so a row's 0.05 quantile can come out above its
    0.95 one. Read as given, such a row's interval had a negative width (pulling the mean width
    down) and covered no target, and its median came from the wrong column. Sorting each row
    (monotone rearrangement) gives an ordered set of quantiles with the same values."""
    spec = OutputSpec("regression", quantiles=(0.05, 0.5, 0.95))
    r = BatchBuilder(None, spec).build([ev(np.ones((2, 1)), np.array([[5.0, 1.0, 3.0], [1.0, 2.0, 3.0]]))])
    assert r.rejected == {}
    assert r.batch.intervals.tolist() == [[1.0, 3.0, 5.0], [1.0, 2.0, 3.0]]
    assert r.batch.scores.tolist() == [3.0, 2.0]  # the middle value, not the 0.5 column's 1.0
    no_median = OutputSpec("regression", quantiles=(0.1, 0.9))
    r = BatchBuilder(None, no_median).build([ev(np.ones((1, 1)), np.array([[4.0, 2.0]]))])
    assert r.batch.intervals.tolist() == [[2.0, 4.0]] and r.batch.scores.tolist() == [3.0]


@pytest.mark.parametrize("empty", [[], np.zeros(0), [[]], {}, ()], ids=["list", "array", "empty_row", "dict", "tuple"])
def test_an_empty_first_batch_does_not_become_the_learned_schema(empty):
    """A first call with no rows (a health check's ``predict([])``) gave a schema of no feature
    when none is configured, and every later row was refused as wrong_shape for good: the schema
    is learnt from the first event that has a feature."""
    builder = BatchBuilder(None, OutputSpec(kind="probabilities"))
    first = builder.build([(PREDICTION, 1.0, empty, [], None, None, None, None, None)])
    assert first.batch is None and builder.schema is None
    later = builder.build([(PREDICTION, 2.0, [[1.0, 2.0]], [[0.3, 0.7]], None, None, None, None, None)])
    assert later.rejected == {} and later.batch is not None and len(later.batch) == 1
    assert builder.schema.names == ("f0", "f1")
