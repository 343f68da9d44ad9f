"""On-call user study, session 31: a real sidecar paged a real Alertmanager through healthy, shifted,
confident-wrong, collapsed and probed streams; what the pages got wrong, as tests."""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.detectors.repetition import OutputRepeatDetector
from monitor.reference import Reference

W = np.array([[2.0, -1.0, 0.5, 0.0], [-1.0, 2.0, 0.0, 0.5], [-1.0, -1.0, -0.5, -0.5]])


def _softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = x @ W.T / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def test_saturated_probabilities_of_different_inputs_are_not_repeated_answers() -> None:
    # The sidecar's "shift" stream (x0 read x3 + 2) and "overconf" one (the same model at
    # temperature 0.15) both paged ModelOutputsRepeated, "canned, cached or memorised answers",
    # beside the drift and calibration alerts of the same cause: the softmax saturates, and
    # [1, 0, 0] to 1e-6 is the honest answer of thousands of different inputs. A cache or a
    # fallback serving one answer that is not saturated still counts.
    rng = np.random.default_rng(0)
    x_ref = rng.normal(size=(3000, 4))
    ref = Reference.from_arrays(x_ref, scores=_softmax(x_ref))
    det = OutputRepeatDetector(ref, window_s=1e6, min_rows=100)
    x = rng.normal(size=(2000, 4))
    x[:, 0] = x[:, 0] * 3 + 2
    confident = _softmax(x, temperature=0.15)
    assert (np.round(confident.max(axis=1), 6) == 1.0).mean() > 0.4  # the stream does saturate
    det.update(Batch.from_arrays(x, confident, ts=np.zeros(len(x))))
    assert det.repeat_ratio is not None and det.reference_ratio is not None
    assert det.repeat_ratio - det.reference_ratio < 0.1

    canned = OutputRepeatDetector(ref, window_s=1e6, min_rows=100)
    answers = _softmax(x)
    answers[::2] = [0.7, 0.2, 0.1]  # a fallback answer given to half of the inputs
    canned.update(Batch.from_arrays(x, answers, ts=np.zeros(len(x))))
    assert canned.repeat_ratio is not None and canned.repeat_ratio - canned.reference_ratio > 0.4


def test_confidence_drift_page_says_what_to_do_when_the_inputs_did_not_move() -> None:
    # The "overconf" and "collapse" streams kept their inputs (no ModelInputDrift, no data-quality
    # alert) and paged ModelConfidenceDrift, whose page said "the inputs probably moved away from
    # what the model knows" and whose runbook sent on-call to the input-drift dashboard only: a
    # dead end for a model that changed. Both now name that case and where to look.
    import yaml

    from monitor import runbooks
    from tests.conftest import REPO_ROOT

    rules = yaml.safe_load((REPO_ROOT / "rules" / "confidence.yml").read_text())["groups"][0]["rules"]
    description = next(r for r in rules if r.get("alert") == "ModelConfidenceDrift")["annotations"]["description"]
    steps = runbooks.RUNBOOKS["ModelConfidenceDrift"]
    for text in (description, steps):
        assert "the model itself changed" in text, text
    assert "ModelInputDrift" in steps and "deploy" in steps
