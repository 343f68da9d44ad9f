"""``monitor_drift_top_feature``'s value is the feature's current score ratio while the alarm
lasts, also once its description froze (same labels): it kept the ratio of the last relabelling
(2.3 against a current 4.2 on a feature scaled ever more), which the alert text prints as
"x threshold"."""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.batch import Batch
from monitor.detectors.drift import FeatureDriftDetector
from monitor.reference import Reference

from tests import drift_streams as S


class _Writer:
    """The writer calls the drift detector makes, kept in a dict."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, tuple[str, ...]], float] = {}

    def set(self, name: str, value: float, labels: Any = ()) -> None:
        self.values[(name, tuple(labels))] = value

    def inc(self, *args: Any, **kwargs: Any) -> None:
        return None

    def remove(self, name: str, labels: Any = ()) -> None:
        self.values.pop((name, tuple(labels)), None)


def test_frozen_top_feature_exports_its_current_score() -> None:
    ref = Reference.from_arrays(S.sample(np.random.default_rng(0), 3000), numeric_names=S.NAMES)
    det = FeatureDriftDetector(ref)
    out = _Writer()
    rng = np.random.default_rng(3)
    for i in range(60):
        x = S.sample(rng, 50)
        if i >= 10:
            x[:, 0] *= 1.0 + 0.1 * i  # income scaled more and more
        det.update(Batch.from_arrays(x, ts=1.7e9 + np.arange(i * 50, (i + 1) * 50), numeric_names=S.NAMES))
        det.export(out)
    assert det.drift_detected and det._core.frozen
    feature, change, score = det.top_features[0]
    exported = {labels[2:4]: v for (name, labels), v in out.values.items() if name == "monitor_drift_top_feature"}
    assert exported[(feature, change)] == score
