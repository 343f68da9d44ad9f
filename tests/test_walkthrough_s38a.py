"""Defects found by session 38's new-user walkthrough (helper s38a): an ML engineer following the
README's quick start with scikit-learn models, a platform engineer running the sidecar in front
of a small model server, an on-call engineer with the shipped rule packs and a real Alertmanager.
Each test fails without its fix."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.config import ConfigError


def _monitor(config: dict, **kwargs: object) -> Monitor:
    return Monitor(model="wt38", config=config, registry=CollectorRegistry(), live=False, start_worker=False, **kwargs)


def _regressor_reference(labels: bool) -> Reference:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = x @ np.array([50.0, 20.0, 10.0]) + 150.0
    return Reference.from_arrays(x, numeric_names=["a", "b", "c"], scores=y + rng.normal(size=300),
                                 labels=y if labels else None)


@pytest.mark.parametrize("labels", [False, True])
def test_a_regressors_reference_under_the_default_kind_is_refused_naming_output_kind_regression(labels: bool) -> None:
    """The README's quick start: ``get_monitor(name, reference=ref)`` before decorating a
    regressor's ``predict`` keeps the default ``output.kind`` (probabilities). The reference's one
    column of values was clipped into [0, 1] before the detectors saw it: without labels the
    monitor started on a reference of rows [0, 1] without a word, with labels it was refused for
    them ("class indices in 0..1 ... got labels from 31 to 336"), never naming the kind."""
    with pytest.raises(ConfigError, match=r"not class probabilities: 300 row\(s\).*row 0: 1\d\d\.\d, one column.*"
                                          r"output\.kind: regression for a regression model's values"):
        _monitor({}, reference=_regressor_reference(labels))
    mon = _monitor({"output": {"kind": "regression"}}, reference=_regressor_reference(labels))
    assert "regression" in [d.kind for d in mon.detectors]
    mon.close()


def test_logits_under_the_default_kind_are_shown_as_given_in_the_refusal() -> None:
    """Raw logits given as a probabilities reference are refused (naming output.kind: logits),
    with the row as the user gave it: the refusal showed the clipped row ([0.69, 0, 0.46]) of a
    row of logits holding a negative score."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3)) * 3
    ref = Reference.from_arrays(rng.normal(size=(300, 3)), numeric_names=["a", "b", "c"], scores=z, labels=z.argmax(axis=1))
    shown = ", ".join(f"{v:.4g}" for v in z[0])
    with pytest.raises(ConfigError, match=rf"row 0: \[{shown}\], sum .*set output\.kind: logits"):
        _monitor({}, reference=ref)


def _said(caplog: pytest.LogCaptureFixture, part: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if part in r.getMessage()]


def test_labels_for_a_model_whose_predictions_carry_no_request_id_are_said_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """The quick start's decorator without ``request_id=`` and then ``feedback(ids, labels)``: each
    label was held for its prediction for labels.early_wait (10 minutes), then counted unknown_id,
    and nothing anywhere said that no prediction could ever be joined. It is said once, at the
    first label, naming request_id= as the fix."""
    mon = _monitor({"features": ["a"], "output": {"kind": "regression"}})
    try:
        mon.observe([[1.0], [2.0], [3.0]], [0.1, 0.2, 0.3], timestamp=1000.0)
        mon.flush()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback(["r-17", "r-18"], [1.0, 2.0], timestamp=1001.0)
            mon.flush()
            mon.feedback(["r-19"], [1.0], timestamp=1002.0)
            mon.flush()
        said = _said(caplog, "carried a request id")
        assert len(said) == 1, said
        assert "request id 'r-17'" in said[0] and "none of the 3 prediction row(s)" in said[0], said
        assert 'Fix: give the predictions the ids their labels are sent with: watch(..., request_id="request_id")' in said[0]
        assert mon.store.value("monitor_labels_early") == 3  # still held, as before: they may yet come
    finally:
        mon.close()


def test_a_label_whose_prediction_never_came_and_a_label_sent_twice_are_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """A label sent for an id no prediction had (a typo, another model's id) waited labels.early_wait
    and was counted unknown_id without a word, as was a second label for an id labelled already
    (a re-sent labelling batch). Each is said once, with its id and the fix."""
    mon = _monitor({"features": ["a"], "output": {"kind": "regression"}, "labels": {"early_wait": "60s"}})
    try:
        mon.observe([[1.0], [2.0]], [0.1, 0.2], request_id=["a", "b"], timestamp=1000.0)
        mon.flush()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback(["a", "typo"], [1.0, 2.0], timestamp=1001.0)
            mon.feedback(["a"], [1.5], timestamp=1002.0)  # labelled already: unknown_id at once
            mon.flush()
            assert mon.store.value("monitor_feedback_labels", {"outcome": "unknown_id"}) == 1
            assert _said(caplog, "carried a request id") == []  # predictions do carry ids here
            twice = _said(caplog, "a second label came")
            assert len(twice) == 1 and "request id 'a'" in twice[0] and "Fix: send each label once" in twice[0], twice
            assert _said(caplog, "none came") == []  # "typo" still waits
            for k in range(40):  # event time moves on (no agent clock: the median of the latest events)
                mon.observe([[1.0]], [0.1], request_id=f"later-{k}", timestamp=1100.0 + k)
            mon.feedback(["b"], [2.0], timestamp=1140.0)
            mon.flush()
        assert mon.store.value("monitor_feedback_labels", {"outcome": "unknown_id"}) == 2  # "typo", after its wait
        gone = _said(caplog, "none came")
        assert len(gone) == 1 and "request id 'typo' waited 60 s" in gone[0] and "Fix: send each label with" in gone[0], gone
    finally:
        mon.close()
