"""A fitted estimator's bound method, decorated as it is, describes its own outputs.

``monitor.watch(clf.predict_proba)`` built a monitor whose score columns were named 0, 1, 2: the
labels of a model fitted on 1, 2, 3, fed back as they are, were joined to the column after their
class (the 3s skipped) and accuracy read near 0 for a good model; string classes were all skipped;
``monitor.watch(clf.predict)`` and ``monitor.watch(reg.predict)`` had every row refused. A monitor
the decorator creates now takes ``output.kind`` and ``output.classes`` from the estimator
(``classes_``, scikit-learn's own classifier/regressor test); one that exists keeps its config.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

import monitor
from monitor.core import get_monitor
from monitor.decorator import estimator_output

sklearn_linear = pytest.importorskip("sklearn.linear_model")


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 3))
    y = np.where(X[:, 0] > 0.5, 3, np.where(X[:, 0] < -0.5, 1, 2))
    return X, y


def test_integer_classes_fed_back_as_they_are_join_their_own_column() -> None:
    X, y = _data()
    clf = sklearn_linear.LogisticRegression().fit(X[:300], y[:300])
    name = "est-int-classes"
    row_id = lambda X: [f"{v:.15f}" for v in X[:, 1]]  # noqa: E731 - the rows' own ids, as a request would carry
    predict = monitor.watch(clf.predict_proba, model=name, request_id=row_id)
    mon = get_monitor(name)
    try:
        assert mon.config.output.kind == "probabilities" and mon.config.output.classes == ("1", "2", "3")
        for i in range(3):
            rows = slice(300 + 100 * i, 400 + 100 * i)
            predict(X[rows])
            mon.feedback(row_id(X[rows]), y[rows].tolist())  # 1, 2, 3 as the model was fitted
        mon.flush()
        true_accuracy = float((clf.predict(X[300:]) == y[300:]).mean())
        assert true_accuracy > 0.8
        assert mon.store.value("monitor_accuracy_ratio") == pytest.approx(true_accuracy)
        assert (mon.store.value("monitor_calibration_labels_skipped", labels=("unknown_class",)) or 0.0) == 0.0
    finally:
        mon.close()


def test_a_classifiers_predict_and_a_regressors_predict_are_read_as_they_answer() -> None:
    X, y = _data(1)
    clf = sklearn_linear.LogisticRegression().fit(X, np.array(["low", "mid", "high"])[y - 1])
    reg = sklearn_linear.LinearRegression().fit(X, X[:, 1] * 3.0)
    assert estimator_output(clf.predict) == {"kind": "labels", "classes": ["high", "low", "mid"]}
    assert estimator_output(clf.predict_log_proba) == {"kind": "logits", "classes": ["high", "low", "mid"]}
    assert estimator_output(reg.predict) == {"kind": "regression"}
    assert estimator_output(reg.score) is None and estimator_output(lambda x: x) is None
    labels, values = monitor.watch(clf.predict, model="est-labels"), monitor.watch(reg.predict, model="est-reg")
    try:
        for i in range(5):
            labels(X[i * 20:(i + 1) * 20])
            values(X[i * 20:(i + 1) * 20])
        for name in ("est-labels", "est-reg"):
            mon = get_monitor(name)
            mon.flush()
            assert mon.store.value("monitor_predictions") == 100.0, name  # every row read, none refused
        assert get_monitor("est-reg").config.output.kind == "regression"
    finally:
        get_monitor("est-labels").close()
        get_monitor("est-reg").close()


def test_a_monitor_that_exists_keeps_its_own_config() -> None:
    X, y = _data(2)
    clf = sklearn_linear.LogisticRegression().fit(X, y)
    mon = get_monitor("est-configured", config={"output": {"classes": ["a", "b", "c"]}},
                      registry=CollectorRegistry(auto_describe=False))
    try:
        monitor.watch(clf.predict_proba, model="est-configured")
        assert get_monitor("est-configured") is mon and mon.config.output.classes == ("a", "b", "c")
    finally:
        mon.close()


def test_boolean_classes_are_named_as_labels_read_them() -> None:
    X, _ = _data(3)
    clf = sklearn_linear.LogisticRegression().fit(X, X[:, 0] > 0)
    assert estimator_output(clf.predict_proba) == {"kind": "probabilities", "classes": ["False", "True"]}
