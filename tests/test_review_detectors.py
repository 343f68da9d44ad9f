"""Review: detectors on valid but unusual data export right numbers (no round-off turned into
huge effect sizes) and never raise."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.stats.univariate import compare_counts, mean_shift_sd, scale_ratio
from monitor.store import MetricStore

NAMES = ("f0", "f1", "f2")
CLASSES = ("a", "b", "c")


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 3))
    x[:, 1] = 0.1 + 0.2  # a constant feature whose value is not exact in binary (0.30000000000000004)
    return x


def _scores(n: int) -> np.ndarray:
    return np.tile([0.7, 0.2, 0.1], (n, 1))  # the model always predicts 'a' with 0.7


def _effects(kind: str, seed: int = 0) -> dict[tuple[str, str], float]:
    rng = np.random.default_rng(seed)
    ref = Reference.from_arrays(_rows(rng, 2000), numeric_names=NAMES, scores=_scores(2000), classes=CLASSES)
    det = create(kind, reference=ref, params={})
    store, t = MetricStore("m"), 1000.0
    for _ in range(30):
        b = Batch.from_arrays(_rows(rng, 200), scores=_scores(200), ts=t + np.arange(200) * 0.05,
                              numeric_names=NAMES, classes=CLASSES)
        t += 10
        det.advance(t)
        det.update(b)
        det.on_tick(t)
        det.export(store)
    return {(lab["feature"], lab["measure"]): v for name, lab, v in store.samples()
            if name == "monitor_drift_feature_effect"}


@pytest.mark.parametrize(("kind", "feature"), [("input_drift", "f1"), ("output_drift", "max_score")])
def test_unchanged_constant_feature_has_null_effects(kind: str, feature: str) -> None:
    """Reference and live both constant at the same value: no shift, no rescale, no distance
    (before the fix: mean_shift_sd -5.7, scale_ratio 1.4e8, wasserstein 7.3 for input_drift)."""
    eff = _effects(kind)
    assert eff[(feature, "mean_shift_sd")] == 0.0
    assert eff[(feature, "scale_ratio")] == 1.0
    assert eff[(feature, "wasserstein")] == 0.0


def test_effect_sizes_treat_roundoff_sd_as_constant() -> None:
    x = np.full(1000, 0.1 + 0.2)
    ref_mean, ref_sd = float(x.mean()), float(x.std())
    assert ref_sd > 0  # the premise: float arithmetic does not give exactly 0
    assert mean_shift_sd(ref_mean, ref_sd, 0.30000000000000004) == 0.0
    assert mean_shift_sd(ref_mean, ref_sd, 0.4) == np.inf
    assert scale_ratio(ref_sd, 3e-9, mean=ref_mean) == 1.0
    assert scale_ratio(ref_sd, 0.1, mean=ref_mean) == np.inf
    # genuine spread is untouched
    assert mean_shift_sd(10.0, 2.0, 13.0) == 1.5
    assert scale_ratio(2.0, 4.0, mean=10.0) == 2.0
    st = compare_counts(np.array([10.0, 0.0]), np.array([5.0, 0.0]), ref_positions=np.array([ref_mean, np.nan]),
                        cur_positions=np.array([0.30000000000000004, np.nan]), ref_moments=(ref_mean, ref_sd),
                        cur_moments=(0.30000000000000004, 1e-9))
    assert (st.wasserstein, st.mean_shift_sd, st.scale_ratio) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("variant", ["constant", "collinear", "two_columns_one_constant"])
def test_pca_reference_errors_are_not_rounding_noise_on_rank_deficient_references(variant: str, tmp_path) -> None:
    """A constant or exactly collinear feature lowers the rank: the PCA kept every direction and the
    held-out reference errors were ~1e-16, so live data drifting on that feature exported effects of
    1e16. At most rank - 1 components are kept now; the profile still saves and loads."""
    from monitor.profile import Profile

    rng = np.random.default_rng(3)
    a = rng.normal(size=(500, 2))
    x = {"constant": np.c_[a, np.full(500, 0.3)], "collinear": np.c_[a, 0.9 * a[:, :1]],
         "two_columns_one_constant": np.c_[a[:, 0], np.full(500, 0.3)]}[variant]
    prof = Profile.from_arrays(x, numeric_names=[f"f{i}" for i in range(x.shape[1])])
    assert prof.pca is not None
    assert prof.pca.error.std > 0.1 and prof.pca.error.mean > 0.1
    back = Profile.load(prof.save(tmp_path / "p.npz")).pca
    assert back is not None and back.components.shape == prof.pca.components.shape
    live = x[:200].copy()
    live[:, -1] = rng.normal(size=200)  # the degenerate direction now varies: a real, finite change
    err = prof.pca.transform_error(live)
    assert np.all(np.isfinite(err)) and float(err.mean()) / prof.pca.error.mean < 100


def _run_bounded(code: str, hang: str) -> None:
    """Run ``code`` in a fresh interpreter that must print ``ok``; a hang fails with ``hang``
    (a bound on a hang, not a speed assertion)."""
    import subprocess
    import sys

    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail(hang)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_reference_with_values_near_float_max_does_not_hang_pca() -> None:
    """Values beyond ~1e154 overflowed the standard deviation, the standardised matrix became
    non-finite and LAPACK's SVD never returned: the monitor hung at startup. A subprocess bounds
    the hang so that the test fails instead of blocking the run (not a speed assertion)."""
    code = (
        "import numpy as np, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from monitor.profile import Profile\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.normal(size=(300, 3)); x[:, 0] *= 1e307\n"
        "p = Profile.from_arrays(x, numeric_names=['a', 'b', 'c'])\n"
        "assert np.all(np.isfinite(p.pca.scale)) and p.pca.scale[0] > 1e306, p.pca.scale\n"
        "assert np.all(np.isfinite(p.pca.components))\n"
        "print('ok')\n"
    )
    _run_bounded(code, "PCA on a reference with values near 1e308 did not return (LAPACK SVD on a non-finite matrix)")


@pytest.mark.parametrize("n_features", [3, 20])
def test_probing_calibrates_on_a_reference_with_values_near_float_max(n_features: int) -> None:
    """The probing sketcher standardised with ``np.nanstd``, which overflows beyond ~1e154: the
    scale became inf, the float32 sketches inf, and calibration failed with a misleading "too many
    near-duplicate rows" (3 features) or LAPACK's SVD never returned (more features than the
    sketch width). Run in a subprocess so that a hang fails the test instead of blocking the run."""
    code = (
        "import numpy as np, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from monitor.reference import Reference\n"
        "from monitor.detectors.registry import create\n"
        "rng = np.random.default_rng(0)\n"
        f"x = rng.normal(size=(300, {n_features})); x[:, 0] *= 1e307\n"
        "ref = Reference.from_arrays(x, scores=rng.dirichlet([1, 1], 300))\n"
        "det = create('probing', reference=ref, params={})\n"
        "sk = det._sketcher\n"
        "assert np.all(np.isfinite(sk.scale)) and sk.scale[0] > 1e306, sk.scale[:3]\n"
        "print('ok')\n"
    )
    _run_bounded(code, "probing calibration on values near 1e308 did not return")


def test_column_moments_do_not_overflow() -> None:
    from monitor.stats.univariate import column_moments

    x = np.array([[1e307, 1.0, np.nan], [-1e307, 3.0, np.nan], [np.inf, np.nan, np.nan]])
    mean, sd = column_moments(x)
    assert mean[0] == 0.0 and sd[0] == pytest.approx(1e307) and (mean[1], sd[1]) == (2.0, 1.0)
    assert np.isnan(mean[2]) and np.isnan(sd[2])


def test_numeric_profile_moments_of_values_near_float_max_are_finite() -> None:
    """``finite.mean()``/``std()`` overflowed to inf for values beyond ~1e154 (the sum of 1e308s
    too), so the drift effects of such a feature were computed against an infinite sd."""
    from monitor.profile import numeric_profile

    f = numeric_profile("x", np.array([1e308, -1e308, 1e308, -1e308]))
    assert (f.mean, f.std) == (0.0, pytest.approx(1e308))
    g = numeric_profile("y", np.array([1.0, 2.0, 3.0, np.nan]))
    assert (g.mean, g.std) == (2.0, pytest.approx(np.std([1.0, 2.0, 3.0])))
