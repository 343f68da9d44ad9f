"""input_drift against references whose profile does not bin every value: infinite values (a
ratio over a zero denominator) and categorical features with more categories than the profile
keeps. Live traffic drawn like the reference must raise no alarm (default ERT 1,000,000: about
0.02 expected in 20,000 rows), and a real change must still be found."""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.detectors.drift import FeatureDriftDetector
from monitor.reference import Reference

ROWS, BATCH = 20_000, 500


def _ratio_features(rng: np.random.Generator, n: int) -> np.ndarray:
    """An amount and amount / count, inf where the Poisson count is 0 (about 5% of rows)."""
    a = rng.gamma(2.0, 1.0, n)
    b = rng.poisson(3.0, n).astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.c_[a, a / b]


def test_reference_share_of_inf_is_not_drift() -> None:
    """Before the fix the reference's infinite values were in no bin while live ones went to the
    top value bin: 30 flagged tests and a window KS p-value of 5e-5 on an unshifted stream."""
    ref = Reference.from_arrays(_ratio_features(np.random.default_rng(0), 3000), numeric_names=("amount", "ratio"))
    assert np.isinf(ref.numeric[:, 1]).mean() > 0.03
    det = FeatureDriftDetector(ref)
    rng = np.random.default_rng(1)
    for i in range(ROWS // BATCH):
        det.update(Batch.from_arrays(_ratio_features(rng, BATCH), ts=1.7e9 + np.arange(i * BATCH, (i + 1) * BATCH) * 0.05,
                                     numeric_names=("amount", "ratio")))
    assert det._core.test.n_alarm_tests == 0
    st = det.window_figures()["stats"][1]
    assert st.pvalue > 1e-3 and abs(st.mean_shift_sd) < 0.1


def test_inf_flood_is_still_found() -> None:
    """A feature turning infinite in a third of the rows is found (in the missing bin)."""
    ref = Reference.from_arrays(_ratio_features(np.random.default_rng(0), 3000), numeric_names=("amount", "ratio"))
    det = FeatureDriftDetector(ref)
    rng = np.random.default_rng(2)
    for i in range(10):
        x = _ratio_features(rng, BATCH)
        x[rng.random(BATCH) < 0.33, 0] = np.inf
        det.update(Batch.from_arrays(x, ts=1.7e9 + np.arange(i * BATCH, (i + 1) * BATCH) * 0.05, numeric_names=("amount", "ratio")))
    assert det.drift_detected and det.top_features[0][0] == "amount"


K = 3000
_W = 1.0 / np.arange(1, K + 1) ** 0.7
_W /= _W.sum()
_ZIPS = np.array([f"z{i}" for i in range(K)], dtype=object)


def _zip_reference() -> Reference:
    rng = np.random.default_rng(0)
    n = 20_000
    return Reference.from_arrays(rng.normal(size=(n, 1)), numeric_names=("x",),
                                 categorical=_ZIPS[rng.choice(K, n, p=_W)][:, None], categorical_names=("zip",))


def _run_zips(det: FeatureDriftDetector, rng: np.random.Generator, new_share: float = 0.0) -> None:
    for i in range(ROWS // BATCH):
        c = _ZIPS[rng.choice(K, BATCH, p=_W)][:, None]
        c[rng.random(BATCH) < new_share, 0] = "brand-new"
        det.update(Batch.from_arrays(rng.normal(size=(BATCH, 1)), ts=1.7e9 + np.arange(i * BATCH, (i + 1) * BATCH) * 0.05,
                                     numeric_names=("x",), categorical=c, categorical_names=("zip",)))


def test_categories_beyond_the_profile_cap_are_not_unseen() -> None:
    """3,000 zip codes, of which the profile keeps 1,000: before the fix the rows of the other
    2,000 (27% of the reference, counted as "other" there) were read as unseen live, and an
    unshifted stream raised 1,175 flagged tests ("unseen categories 35%")."""
    ref = _zip_reference()
    det = FeatureDriftDetector(ref)
    assert det.profile.categorical[0].n_other > 0
    _run_zips(det, np.random.default_rng(1))
    assert det._core.test.n_alarm_tests == 0
    fig = det.window_figures()
    assert fig["drifted"] == 0 and fig["stats"][1].js < 0.05


def test_new_category_flood_in_a_capped_feature_is_still_found() -> None:
    """Half the rows turning into one new code moves the "other" bin (84% -> 91%): found and named.
    (A capped feature has no unseen bin left, so a flood has to move "other" or the top codes.)"""
    ref = _zip_reference()
    det = FeatureDriftDetector(ref)
    _run_zips(det, np.random.default_rng(3), new_share=0.5)
    assert det.drift_detected and det.top_features[0][0] == "zip"
