"""``output.classes`` of one name for a model of scores (probabilities or logits).

A model's one score column is P(positive) of a binary model, read as the columns [negative,
positive]; the one name given took the negative column and the positive one was learned as "1".
Every row the model scored as that class was counted as the other one (the predicted classes,
the positive rate per segment), and labels naming it joined as the other class (accuracy read as
one minus the model's). Such a config is refused with the fix; labels-only and multi-label
models, for which one name is a class or a label, are not."""

from __future__ import annotations

import numpy as np
import pytest

from monitor import Monitor
from monitor.config import ConfigError, parse_config


@pytest.mark.parametrize("kind", ["probabilities", "logits"])
def test_one_class_for_scores_is_refused_with_the_fix(kind: str) -> None:
    with pytest.raises(ConfigError, match=r"output\.classes: names one class \('spam'\).*classes: \[not_spam, spam\]"):
        parse_config({"model": "m", "output": {"kind": kind, "classes": ["spam"]}})


def test_two_classes_read_one_column_as_the_second() -> None:
    mon = Monitor(config={"model": "m", "output": {"classes": ["ham", "spam"]}, "detectors": ["confidence"]},
                  start_worker=False, clock=lambda: 1000.0)
    mon.observe(np.zeros((3, 2)), np.array([0.9, 0.1, 0.8]), timestamp=1000.0)
    mon.flush()
    assert mon.store.value("monitor_predicted_class", ("spam",)) == 2.0
    assert mon.store.value("monitor_predicted_class", ("ham",)) == 1.0
    mon.close()


@pytest.mark.parametrize("kind", ["labels", "multilabel"])
def test_one_class_or_label_is_kept_where_it_names_one(kind: str) -> None:
    assert parse_config({"model": "m", "output": {"kind": kind, "classes": ["spam"]}}).model().output.classes == ("spam",)


def test_a_one_class_estimator_is_still_watched() -> None:
    """A classifier fitted on one class (``classes_`` of one name, ``predict_proba`` of one column):
    the decorator's monitor falls back to the learned column names rather than failing the call."""
    import monitor

    class OneClass:
        classes_ = np.array(["spam"])

        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return np.ones((len(X), 1))

    clf = OneClass()
    watched = monitor.watch(clf.predict_proba, model="one-class-s43")
    assert watched(np.zeros((2, 2))).shape == (2, 1)
    mon = monitor.get_monitor("one-class-s43")
    assert mon.config.output.classes == ()
    mon.close()
