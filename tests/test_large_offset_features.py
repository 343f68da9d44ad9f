"""A feature whose spread is tiny beside its distance from zero (a Unix timestamp over an hour:
sd 900 s around 1.7e9, 5e-7 of its mean) is a varying feature. The rounding floor meant for a
window's running sums (1e-6 of the mean) was applied to the reference's two-pass sd too, so such
a feature was read as a constant: its windowed shift read 0 or infinite sds, its scale ratio 1 or
infinite, and the PCA of pca_drift left it unscaled (raw seconds beside standardised columns)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from monitor.batch import Batch
from monitor.detectors.registry import create
from monitor.profile import Profile
from monitor.reference import Reference
from monitor.stats.univariate import mean_shift_sd, scale_ratio
from monitor.store import MetricStore

T0 = 1.7e9
NAMES = ("when", "a", "b")


def _rows(rng: np.random.Generator, n: int, shift_sd: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, 3))
    x[:, 0] = T0 + 900.0 * (x[:, 0] + shift_sd)
    x[:, 2] = 0.5 * x[:, 1] + 0.5 * x[:, 2]
    return x


def _effects(ref: Reference, live: Callable[[int], np.ndarray], names: tuple[str, ...]) -> dict[tuple[str, str], float]:
    """input_drift's effect sizes after 20 batches of 200 live rows."""
    det = create("input_drift", reference=ref, params={})
    store, t = MetricStore("m"), 1000.0
    for _ in range(20):
        b = Batch.from_arrays(live(200), scores=np.full((200, 2), 0.5), ts=t + np.arange(200) * 0.05, numeric_names=names)
        t += 10
        det.advance(t)
        det.update(b)
        det.on_tick(t)
        det.export(store)
    return {(lab["feature"], lab["measure"]): v for name, lab, v in store.samples() if name == "monitor_drift_feature_effect"}


def test_effect_sizes_of_a_large_offset_feature() -> None:
    assert mean_shift_sd(T0, 900.0, T0 + 1800.0) == 2.0  # was inf
    assert mean_shift_sd(T0, 900.0, T0 + 900.0) == 1.0  # was 0
    assert scale_ratio(900.0, 1800.0, mean=T0) == 2.0  # was inf
    assert scale_ratio(900.0, 450.0, mean=T0) == 0.5  # was 1
    # a constant reference is still one, however far from zero
    x = np.full(1000, T0 + 0.1)
    assert mean_shift_sd(float(x.mean()), float(x.std()), T0 + 0.1) == 0.0
    assert scale_ratio(float(x.std()), 0.0, mean=T0) == 1.0


def test_the_windowed_shift_of_a_large_offset_feature_is_measured_in_its_sds() -> None:
    rng = np.random.default_rng(5)
    ref = Reference.from_arrays(_rows(rng, 3000), numeric_names=NAMES, scores=np.full((3000, 2), 0.5))
    eff = _effects(ref, lambda n: _rows(rng, n, shift_sd=1.0), NAMES)
    # 4,000 rows shifted by 1 sd: the estimate within 5 of its standard errors (1/sqrt(4000))
    assert abs(eff[("when", "mean_shift_sd")] - 1.0) < 5 / np.sqrt(4000)  # read infinite before
    assert abs(eff[("when", "scale_ratio")] - 1.0) < 0.05


def test_the_pca_scales_a_large_offset_feature_by_its_sd() -> None:
    rng = np.random.default_rng(6)
    x = _rows(rng, 2000)
    profile = Profile.from_arrays(x, numeric_names=NAMES)
    pca = profile.pca
    assert pca is not None
    assert abs(pca.scale[0] / 900.0 - 1.0) < 0.05  # was 1: raw seconds, the first component by itself
    # the sd of the half of the rows the directions are fitted on (the other half calibrates)
    np.testing.assert_allclose(pca.scale[1:], x[:, 1:].std(axis=0), rtol=0.1)


def test_a_spread_running_sums_cannot_resolve_gives_no_scale_ratio() -> None:
    """sd 50 around 1.7e9 (3e-8 of the mean): the window's sd from running sums is rounding noise
    there (it read 1.26 for an unchanged sd, 0 for an sd of 0.5: "stuck"); the ratio is absent,
    the shift (from the mean, which running sums keep) still measured."""
    assert np.isnan(scale_ratio(50.0, 63.0, mean=T0))
    assert np.isnan(scale_ratio(0.5, 0.0, mean=T0))
    assert scale_ratio(2.0, 0.0, mean=10.0) == 0.0  # a stuck feature near zero is still read as stuck
    rng = np.random.default_rng(8)

    def rows(n: int, shift_sd: float = 0.0) -> np.ndarray:
        x = rng.normal(size=(n, 2))
        x[:, 0] = T0 + 50.0 * (x[:, 0] + shift_sd)
        return x

    ref = Reference.from_arrays(rows(3000), numeric_names=NAMES[:2], scores=np.full((3000, 2), 0.5))
    eff = _effects(ref, lambda n: rows(n, shift_sd=2.0), NAMES[:2])
    assert ("when", "scale_ratio") not in eff
    assert abs(eff[("when", "mean_shift_sd")] - 2.0) < 5 / np.sqrt(4000)


def test_an_unchanged_large_offset_feature_reads_no_drift() -> None:
    """The numeric channels' edges are lowered a hair for values that reach the monitor a few
    units of the 8th digit below them (float32 against float64): by a millionth of their size,
    1,700 s at 1.7e9, two sds of this feature, so that unchanged traffic read p 0 and
    monitor_drift_detected 1 on every seed. The lowering is bounded by a thousandth of the bin."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        ref = Reference.from_arrays(_rows(rng, 3000), numeric_names=NAMES, scores=np.full((3000, 2), 0.5))
        det = create("input_drift", reference=ref, params={})
        store, t = MetricStore("m"), 1000.0
        for _ in range(20):
            b = Batch.from_arrays(_rows(rng, 200), scores=np.full((200, 2), 0.5), ts=t + np.arange(200) * 0.05,
                                  numeric_names=NAMES)
            t += 10
            det.advance(t)
            det.update(b)
            det.on_tick(t)
            det.export(store)
        assert store.value("monitor_drift_feature_pvalue", ("input_drift", "when", "ks")) > 0.01, seed
        assert store.value("monitor_drift_detected", ("input_drift",)) == 0.0, seed
