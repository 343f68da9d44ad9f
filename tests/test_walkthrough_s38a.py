"""Defects found by session 38's new-user walkthrough (helper s38a): an ML engineer following the
README's quick start with scikit-learn models, a platform engineer running the sidecar in front
of a small model server, an on-call engineer with the shipped rule packs and a real Alertmanager.
Each test fails without its fix."""

from __future__ import annotations

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
