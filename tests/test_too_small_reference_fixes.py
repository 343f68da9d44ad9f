"""Warnings about a reference too small for a detector name the settings that fix it, as an entry of
``detectors:`` to write, and the fix they give works.

Before, a default probing detector left out for a short reference said "list it in detectors: with
smaller windows" (which setting? PRADA's ``prada_window``, or ``prada: false``), and the repeated
outputs warning said ``horizon_rows: N`` without the entry it belongs to; neither said that a
``detectors:`` list replaces the defaults, so following them silently dropped every other default.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor.core import Monitor
from monitor.reference import Reference

CONFIG = {"features": ["a", "b", "c", "d"], "output": {"kind": "probabilities", "classes": ["x", "y", "z"]}}


def _reference(rows: int, features: int = 4) -> Reference:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, features))
    logits = x[:, :1] * np.array([2.0, 0.0, -2.0])
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Reference.from_arrays(x, scores=scores, numeric_names=CONFIG["features"][:features])


def _monitor(reference: Reference, **config: object) -> Monitor:
    features = {"features": list(reference.numeric_names)}
    return Monitor(model="small", config={**CONFIG, **features, **config}, reference=reference,
                   registry=CollectorRegistry(), live=False, start_worker=False)


def _said(caplog: pytest.LogCaptureFixture, start: str) -> list[str]:
    """The lines that start with ``start`` after the model's name (model 'small': ...)."""
    prefix = "model 'small': "
    return [m[len(prefix):] for m in (r.getMessage() for r in caplog.records) if m.startswith(prefix + start)]


def test_probing_left_out_of_the_defaults_says_to_list_it_as_it_is(caplog: pytest.LogCaptureFixture) -> None:
    ref = _reference(60)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(ref)
    (said,) = _said(caplog, "detector 'probing' is left out of the defaults")
    # listed as it is, it runs there without its model-stealing test (prada: auto, off under 1,000
    # rows), as the fix says: a smaller prada_window, the fix before, changed nothing
    assert "the reference has 60" in said and "as {kind: probing} (its model-stealing test stays off" in said, said
    assert "replaces the defaults" in said, said
    assert "probing" not in {d.kind for d in mon.detectors}
    mon.close()
    listed = _monitor(ref, detectors=[{"kind": "probing"}])  # the fix works
    assert [type(d).__name__ for d in listed.detectors] == ["ProbingDetector"]
    listed.close()
    for entry in ({"kind": "probing", "prada_window": 50}, {"kind": "probing", "prada": False}):
        fixed = _monitor(ref, detectors=[entry])
        assert [d.kind for d in fixed.detectors] == ["probing"]
        fixed.close()


def test_a_reference_too_short_for_probing_at_all_says_to_leave_it_out(caplog: pytest.LogCaptureFixture) -> None:
    # one feature: the multivariate detector, which needs 20 rows of two, is not a default then
    with caplog.at_level(logging.WARNING, logger="monitor"):
        _monitor(_reference(12, features=1)).close()
    (said,) = _said(caplog, "detector 'probing' is left out of the defaults")
    assert "prada_window" not in said and "{kind: probing" not in said and "leave it out" in said, said
    with pytest.raises(ValueError, match="at least 21"):  # listed anyway, it is refused: no entry to offer
        _monitor(_reference(12, features=1), detectors=[{"kind": "probing"}])


def test_the_repeated_outputs_warning_names_its_entry(caplog: pytest.LogCaptureFixture) -> None:
    ref = _reference(400)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(ref, detectors=[{"kind": "output_repeats"}])
    (said,) = _said(caplog, "output_repeats:")
    assert "{kind: output_repeats, horizon_rows: 200} in detectors:" in said and "replaces the defaults" in said, said
    assert mon.detectors[0].reference_ratio is None
    mon.close()
    fixed = _monitor(ref, detectors=[{"kind": "output_repeats", "horizon_rows": 200}])
    assert fixed.detectors[0].reference_ratio is not None
    fixed.close()


def test_a_one_row_reference_is_called_one_row_not_a_wrong_shape() -> None:
    """A one-row reference failed the start with "reference scores must be class probabilities
    (rows, classes), got shape (1, 3)", which is that layout; the error now says the rows."""
    with pytest.raises(ValueError, match=r"needs at least 2 reference rows with the model's outputs, the reference has 1") as err:
        _monitor(_reference(1))
    assert "must be class probabilities" not in str(err.value)
