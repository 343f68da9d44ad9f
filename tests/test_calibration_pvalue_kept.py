"""The resampled calibration p-value is not redrawn at every rule tick.

A rule tick recomputes every windowed figure; the p-value's draws cost 1-2 ms at 2,000 labels and
about 20 ms at 180,000, per segment and for the whole window, which at 256 events/s cost several
microseconds per event in the cost benchmark. It is kept until its window slides to a new slot or
its labels double (:class:`monitor.detectors._common.DearFigure`).
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.catalog import confidence as names
from monitor.detectors import calibration as calibration_module
from monitor.detectors._common import DearFigure
from monitor.detectors.calibration import CalibrationDetector
from monitor.store import MetricStore
from tests.test_calibration_detector import labeled


def test_a_dear_figure_is_kept_within_its_slot_and_ten_percent_of_labels() -> None:
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    dear = DearFigure()
    assert dear.get("eu", 100.0, 1000, compute) == 1
    assert dear.get("eu", 100.0, 2000, compute) == 1  # twice the labels: kept
    assert dear.get("us", 100.0, 1000, compute) == 2  # another key: its own figure
    assert dear.get("eu", 100.0, 2001, compute) == 3  # more than doubled: recomputed
    assert dear.get("eu", 110.0, 2001, compute) == 4  # a new slot: recomputed
    assert dear.get("eu", 110.0, 2001, compute) == 4
    assert DearFigure(growth=0.1).get("eu", 110.0, 900, compute) == 5


def test_the_calibration_detector_draws_once_across_rule_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    real = calibration_module.cal.debiased_l2_pvalue

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(calibration_module.cal, "debiased_l2_pvalue", counting)
    rng = np.random.default_rng(3)
    det = CalibrationDetector(window_s=1000.0, n_slots=10)
    det.update_labels(labeled(rng, 800, gap=0.1, t0=0.0, span=50.0))
    store = MetricStore("m")
    det.export(store)
    first = store.value(names.CALIBRATION_ERROR_PVALUE)
    for tick in range(5):  # rule ticks: every other figure recomputed, the p-value kept
        det.on_tick(float(tick))
        det.export(store)
    assert len(drawn) == 1 and store.value(names.CALIBRATION_ERROR_PVALUE) == first < 0.01
    det.update_labels(labeled(rng, 200, gap=0.1, t0=50.0, span=40.0))  # 25% more labels, same slot: kept
    det.on_tick(10.0)
    det.export(store)
    assert len(drawn) == 1
    det.update_labels(labeled(rng, 700, gap=0.1, t0=50.0, span=40.0))  # more than doubled: drawn again
    det.on_tick(11.0)
    det.export(store)
    assert len(drawn) == 2
