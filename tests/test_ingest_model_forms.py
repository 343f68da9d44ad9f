"""Inputs and outputs as ML code hands them over beyond numpy rows (pandas outputs named by class,
dict rows with keys missing, structured arrays, columns as pandas Series, ragged text outputs):
read as the user means them, or refused under the reason that names what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder
from monitor.schema import Feature, OutputSpec, Schema

pd = pytest.importorskip("pandas")


def ev(inputs, outputs, ts=0.0):
    return (PREDICTION, ts, inputs, outputs, None, None, None, None, None)


def test_dataframe_outputs_are_read_by_class_name_not_column_position():
    # AutoGluon's and H2O's predict_proba answer a DataFrame whose columns are the class names, in
    # an order of their own: read by position, P(spam) = 0.9 was monitored as P(ham), every row
    # predicted the wrong class and labelled accuracy read 0 instead of 1
    b = BatchBuilder(None, OutputSpec("probabilities", ("ham", "spam")))
    out = pd.DataFrame({"spam": [0.9, 0.2], "ham": [0.1, 0.8]})
    r = b.build([ev(np.ones((2, 2)), out)])
    assert r.rejected == {}
    assert r.batch.predicted.tolist() == [1, 0]
    assert r.batch.scores.tolist() == [[0.1, 0.9], [0.8, 0.2]]


def test_dataframe_outputs_name_the_classes_of_a_model_configured_without_them():
    b = BatchBuilder(None, OutputSpec("probabilities"))
    b.build([ev(np.ones((1, 2)), pd.DataFrame({"ham": [0.3], "spam": [0.7]}))])
    r = b.build([ev(np.ones((1, 2)), pd.DataFrame({"spam": [0.6], "ham": [0.4]}))])
    assert b.classes.names == ["ham", "spam"]
    assert r.batch.scores.tolist() == [[0.4, 0.6]]


def test_dataframe_outputs_of_some_classes_only_are_refused_naming_them():
    # one column named as the first class of a binary model is P(ham): read as P(positive) it was
    # the other class's probability
    b = BatchBuilder(None, OutputSpec("probabilities", ("ham", "spam")))
    r = b.build([ev(np.ones((2, 2)), pd.DataFrame({"ham": [0.9, 0.2]}))])
    assert r.batch is None and r.rejected == {"output_shape": 2}
    assert "'ham'" in r.details["output_shape"] and "output.classes" in r.details["output_shape"]


def test_dataframe_outputs_with_other_column_names_stay_positional():
    b = BatchBuilder(None, OutputSpec("probabilities", ("ham", "spam")))
    r = b.build([ev(np.ones((1, 2)), pd.DataFrame({"p0": [0.3], "p1": [0.7]}))])
    assert r.rejected == {} and r.batch.scores.tolist() == [[0.3, 0.7]]


def test_a_key_first_sent_as_null_is_not_learned_as_numeric_for_good():
    # JSON rows whose optional text field is null in the first request: learned numeric from that
    # None, every later row with text in it was refused as wrong_type (its inputs and outputs lost)
    b = BatchBuilder(None, OutputSpec())
    b.build([ev({"age": 3.0, "city": None}, [0.2, 0.8])])
    r = b.build([ev({"age": 4.0, "city": "paris"}, [0.2, 0.8])])
    assert r.rejected == {} and r.batch.categorical[:, 0].tolist() == ["paris"]


def test_a_key_null_in_the_first_row_is_learned_from_the_rows_after_it():
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev([{"age": 3.0, "city": None}, {"age": None, "city": "lyon"}], [[0.2, 0.8], [0.5, 0.5]])])
    assert b.schema.numeric_names == ("age",) and b.schema.categorical_names == ("city",)
    assert r.rejected == {} and r.batch.categorical[:, 0].tolist() == [None, "lyon"]
    c = BatchBuilder(None, OutputSpec())
    c.build([ev({"age": [None, 4.0], "city": [None, "lyon"]}, [[0.2, 0.8], [0.5, 0.5]])])
    assert c.schema.numeric_names == ("age",) and c.schema.categorical_names == ("city",)


def test_keys_missing_from_the_first_dict_row_are_learned_too():
    # the schema was learned from the first row alone: a key absent from it was never monitored,
    # in that call or any later one, and nothing said so
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev([{"age": 31.0}, {"age": 30.0, "income": 1e4, "city": "a"}], [[0.2, 0.8], [0.5, 0.5]])])
    assert b.schema.names == ("age", "income", "city")
    assert np.isnan(r.batch.numeric[0, 1]) and r.batch.numeric[1, 1] == 1e4


def test_a_key_first_sent_as_null_keeps_the_references_kind():
    b = BatchBuilder(None, OutputSpec(), reference_names=("age", "city"), reference_categorical=("city",))
    b.build([ev({"age": None, "city": None}, [0.2, 0.8])])
    assert b.schema.numeric_names == ("age",) and b.schema.categorical_names == ("city",)


def test_one_row_events_learn_a_key_from_the_events_after_the_first():
    # JSON events of one dict row each: a key null in the first was learned without its kind
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev({"age": None, "city": "x"}, [0.2, 0.8]), ev({"age": 2.0, "city": "y", "plan": "pro"}, [0.5, 0.5])])
    assert b.schema.numeric_names == ("age",) and b.schema.categorical_names == ("city", "plan")
    assert r.rejected == {} and r.batch.numeric[1, 0] == 2.0


def _records(n: int) -> np.ndarray:
    st = np.zeros(n, dtype=[("age", "f8"), ("income", "f4"), ("visits", "i4")])
    st["age"], st["income"], st["visits"] = np.arange(n) + 30.0, 1e4, np.arange(n)
    return st


def test_structured_arrays_are_rows_read_by_field_name():
    # a structured (or record) array was refused as wrong_type, "inputs must be numeric rows", and
    # counted as one row whatever its length
    b = BatchBuilder(Schema((Feature("visits"), Feature("age"))), OutputSpec())
    r = b.build([ev(_records(3), np.full((3, 2), 0.5)), ev(_records(2).view(np.recarray), np.full((2, 2), 0.5))])
    assert r.rejected == {} and r.rows_per_event == [3, 2]
    assert r.batch.numeric.tolist() == [[0.0, 30.0], [1.0, 31.0], [2.0, 32.0], [0.0, 30.0], [1.0, 31.0]]
    learned = BatchBuilder(None, OutputSpec())
    learned.build([ev(_records(3), np.full((3, 2), 0.5))])
    assert learned.schema.numeric_names == ("age", "income", "visits")


def test_a_refused_structured_array_counts_its_rows():
    b = BatchBuilder(Schema((Feature("age"),)), OutputSpec())
    r = b.build([ev(_records(5), np.full((4, 2), 0.5))])
    assert r.rejected == {"rows_mismatch": 5}



def test_a_dict_of_pandas_series_is_columns():
    # df.to_dict("series"), or columns picked one by one: each column was read as one value, the
    # call refused as wrong_type (counted as one row) with the whole Series printed in the log
    b = BatchBuilder(Schema((Feature("age"), Feature("city", "categorical"))), OutputSpec())
    cols = {"age": pd.Series([1.0, None, 3.0], index=[7, 8, 9]), "city": pd.Series(["a", "b", None], dtype="string")}
    r = b.build([ev(cols, np.full((3, 2), 0.5))])
    assert r.rejected == {} and r.rows_per_event == [3]
    assert r.batch.numeric[[0, 2], 0].tolist() == [1.0, 3.0] and np.isnan(r.batch.numeric[1, 0])
    assert r.batch.categorical[:, 0].tolist() == ["a", "b", None]


def test_labels_that_are_lists_or_objects_are_refused_not_learned_as_classes():
    # output.kind: labels with a token classifier's label per token, or a Hugging Face pipeline's
    # {"label": ..., "score": ...} per row: each row's repr ("['O', 'B-PER']", "{'label': ...}")
    # was learned as a class name, until the class cap refused every row
    b = BatchBuilder(None, OutputSpec("labels"))
    r = b.build([ev(["a b c", "d e"], [["O", "B-PER", "I-PER"], ["O", "B-PER"]]),
                 ev(["good", "bad"], [{"label": "POSITIVE", "score": 0.99}, {"label": "NEGATIVE", "score": 0.7}]),
                 ev(["fine"], ["POSITIVE"])])
    assert b.classes.names == ["POSITIVE"]
    assert r.rejected == {"output_shape": 4} and r.batch.predicted.tolist() == [0]
    assert "a list (['O', 'B-PER', 'I-PER'])" in r.details["output_shape"]
    objects = BatchBuilder(None, OutputSpec("labels")).build([ev(["good"], [{"label": "POSITIVE", "score": 0.99}])])
    assert objects.rejected == {"output_shape": 1} and "[o['label'] for o in out]" in objects.details["output_shape"]


def test_rows_of_text_are_non_numeric_outputs_whatever_their_lengths():
    # a token classifier's labels per token under output.kind: probabilities: refused as
    # output_shape ("every row needs one score per class") when the rows' lengths differed and as
    # non_numeric_output when they happened to be equal, one kind of output under two reasons
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev(["a b c", "d e"], [["O", "B-PER", "I-PER"], ["O", "B-PER"]]),
                 ev(["a b", "d e"], [["O", "O"], ["O", "B-PER"]])])
    assert r.rejected == {"non_numeric_output": 4}
    assert "['O', 'B-PER', 'I-PER']" in r.details["non_numeric_output"]


def test_generated_text_is_said_to_be_text():
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev(["write a poem"], ["Roses are red, violets are blue"])])
    assert r.rejected == {"non_numeric_output": 1}
    assert "'Roses are red, violets are blue'" in r.details["non_numeric_output"]


def test_a_dataframe_row_as_a_series_is_read_by_feature_name():
    # predict(df.iloc[i]): one row as a Series indexed by the feature names was read by position,
    # so that columns in another order than the reference's were monitored as other features
    # (out of range on every row, input drift on unchanged traffic)
    b = BatchBuilder(None, OutputSpec(), reference_names=("a", "b", "c"))
    row = pd.DataFrame({"c": [-50.0], "b": [100.0], "a": [0.5]}).iloc[0]
    r = b.build([ev(row, [0.3, 0.7]), ev(row, [0.3, 0.7])])
    assert b.schema.names == ("c", "b", "a") or b.schema.names == ("a", "b", "c")
    got = dict(zip(b.schema.names, r.batch.numeric[0].tolist()))
    assert got == {"a": 0.5, "b": 100.0, "c": -50.0} and r.rejected == {}


def test_a_series_row_of_mixed_values_is_learned_by_name():
    # a row of a number and a category (an object Series): learned as f0, f1 and refused as wrong_type
    b = BatchBuilder(None, OutputSpec())
    row = pd.DataFrame({"age": [41.0], "city": ["x"]}).iloc[0]
    r = b.build([ev(row, [0.3, 0.7])])
    assert b.schema.numeric_names == ("age",) and b.schema.categorical_names == ("city",)
    assert r.rejected == {} and r.batch.categorical[0, 0] == "x"


def test_a_series_of_texts_stays_rows_of_one_text_feature():
    b = BatchBuilder(None, OutputSpec())
    texts = pd.Series(["great movie", "terrible plot twist"], index=["id-1", "id-2"])
    r = b.build([ev(texts, np.full((2, 2), 0.5))])
    assert b.schema.text_names == ("text",) and len(r.batch) == 2


def test_columns_of_different_lengths_are_named_with_their_lengths():
    # said only "columns of a columnar input have different lengths", with the fix "check the
    # features in the config": neither which column nor that the config was not the matter
    b = BatchBuilder(Schema((Feature("age"), Feature("income"))), OutputSpec())
    r = b.build([ev({"age": [1.0, 2.0], "income": [1.0]}, np.full((2, 2), 0.5))])
    assert r.rejected == {"wrong_shape": 2}
    assert "'income' has 1" in r.details["wrong_shape"] and "'age' has 2" in r.details["wrong_shape"]


def test_a_value_for_every_row_among_columns_is_broadcast_as_pandas_does():
    # {"age": [1, 2], "income": 5.0} raised TypeError out of the batch builder (the event lost as
    # the monitor's own internal error, MonitorInternalErrors paging), and {"age": [1, 2],
    # "city": "fr"} read the text's characters as the rows' cities ("f", "r")
    b = BatchBuilder(Schema((Feature("age"), Feature("income"), Feature("city", "categorical"))), OutputSpec())
    r = b.build([ev({"age": [1.0, 2.0], "income": 5.0, "city": "fr"}, np.full((2, 2), 0.5))])
    assert r.rejected == {}
    assert r.batch.numeric.tolist() == [[1.0, 5.0], [2.0, 5.0]] and r.batch.categorical[:, 0].tolist() == ["fr", "fr"]


def test_a_dataframe_of_integer_column_labels_is_read_not_counted_missing():
    # pd.DataFrame(X) without column names: the features were learned as "0", "1" while the rows
    # were looked up under the integers 0 and 1, so every value counted as missing, and the log
    # said the rows carried keys "that are no configured feature"
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev(pd.DataFrame(np.array([[1.0, 2.0], [3.0, 4.0]])), np.full((2, 2), 0.5))])
    assert b.schema.names == ("0", "1")
    assert r.rejected == {} and r.batch.numeric.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert b.renamed_keys is None
    r = b.build([ev({0: 5.0, 1: 6.0}, [0.5, 0.5])])
    assert r.batch.numeric.tolist() == [[5.0, 6.0]]


def test_unreadable_first_calls_count_their_rows():
    # calls whose inputs no schema could be learned from (a scipy sparse matrix, an object array
    # of dicts) were counted one row each in monitor_rows_rejected, whatever their rows
    sparse = pytest.importorskip("scipy.sparse")
    b = BatchBuilder(None, OutputSpec())
    r = b.build([ev(sparse.random(3, 5, density=0.5, format="csr", random_state=1), np.full((3, 2), 0.5)),
                 ev(np.ones((4, 2)), np.full((4, 2), 0.5))])
    assert r.rejected == {"wrong_type": 3} and len(r.batch) == 4
    assert "csr_matrix" in r.details["wrong_type"]


def test_a_dataframe_with_a_repeated_column_name_keeps_both_columns(caplog):
    """Read by name, a repeated column was one feature holding the last column's values (the first
    lost without a word), the learned schema named the feature twice, and pandas warned from the
    worker at every call."""
    import logging
    import warnings

    b = BatchBuilder(None, OutputSpec("probabilities"))
    df = pd.DataFrame([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], columns=["a", "b", "a"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' "columns are not unique" UserWarning fails the test
        with caplog.at_level(logging.WARNING, logger="monitor"):
            r = b.build([ev(df, np.tile([[0.3, 0.7]], (2, 1)))])
    assert r.rejected == {}
    assert [f.name for f in b.schema.features] == ["a", "b", "a.1"]
    assert r.batch.numeric.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert any("not unique ('a' more than once)" in rec.getMessage() for rec in caplog.records)
