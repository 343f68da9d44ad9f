"""The start log's reason for leaving pca_drift out of the defaults on a small reference said
"without pca_fit half the rows fit its directions, half calibrate its errors": since the fold
calibration (each of ten folds scored by a PCA of the other nine, every row calibrating) that
describes a split the agent no longer makes, and an operator weighing a larger reference against
``pca_fit`` read the wrong trade. Stated: the message names pca_fit and input_drift, and describes
no half split."""

from __future__ import annotations

import numpy as np

from monitor.detectors.defaults import _too_small
from monitor.reference import Reference


def test_the_too_small_reason_describes_the_fold_calibration() -> None:
    reason = _too_small("pca_drift", Reference.from_arrays(np.random.default_rng(0).normal(size=(22, 4))))
    assert reason is not None and "needs at least 23 reference rows" in reason
    assert "pca_fit" in reason and "input_drift" in reason
    assert "half" not in reason, reason
