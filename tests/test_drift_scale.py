"""Rank and rescaling score tests of input_drift: x1.3 found fast, no false alarms, honest null.

The bin-count bands alone need 1,000+ rows to see a feature multiplied by 1.3 (each quantile moves
a little); the linear score tests of :mod:`monitor.stats.score_tests`, sharing the same ERT, see it
within a few hundred. These tests state the bounds on seeded streams.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.drift import Channel, FeatureDriftDetector, channel_scores
from monitor.profile import numeric_profile
from monitor.reference import Reference
from monitor.stats.score_tests import bootstrap_null, cornish_fisher, feature_scores, linear_moments, predictive_sd

from tests import drift_streams as S


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.from_arrays(S.sample(np.random.default_rng(0), 3000), numeric_names=S.NAMES)


def rescaled_runs(ref: Reference, col: int, factor: float, seeds: range, *, onset: int = 3000, total: int = 6000,
                  **params: object) -> list[tuple[int | None, str | None]]:
    """Delay and top-ranked feature of ``input_drift`` on one seeded stream per seed, column ``col``
    multiplied by ``factor`` from ``onset``."""
    out = []
    for seed in seeds:
        det = FeatureDriftDetector(ref, **params)
        d = S.run(det, np.random.default_rng(seed), onset=onset, total=total, shift=S.scale(col, factor))
        out.append((d, det.top_features[0][0] if det.top_features else None))
    return out


def test_x13_on_a_positive_feature_is_found_within_500_rows_and_named(reference: Reference) -> None:
    """income (gamma, positive) x1.3 from row 3000: over 5 seeded streams every one is detected,
    median delay <= 500 rows, each <= 1,000, and the top feature is income described as scaled."""
    delays = []
    for seed in range(5):
        det = FeatureDriftDetector(reference)
        delay = S.run(det, np.random.default_rng(100 + seed), onset=3000, total=6000, shift=S.scale(0, 1.3))
        assert delay is not None, f"x1.3 not detected (seed {seed})"
        assert delay <= 1000, (seed, delay)
        delays.append(delay)
        feature, change, _ = det.top_features[0]
        assert feature == "income", det.top_features
        assert change.startswith("scaled x1.") or change.startswith("shifted +"), change
    assert np.median(delays) <= 500, delays


def test_score_tests_shorten_the_delay_of_a_rescale(reference: Reference) -> None:
    """The same x1.3 streams with the score tests off take longer (or are missed within 3,000 rows):
    the gain comes from the new statistics, not from a looser threshold."""
    with_scores, without = ([10**9 if d is None else d for d, _ in rescaled_runs(reference, 0, 1.3, range(200, 203), score_tests=on)]
                            for on in (True, False))
    assert sum(with_scores) < sum(without), (with_scores, without)


def test_spread_x13_of_a_centred_feature_is_detected(reference: Reference) -> None:
    """'score' (normal, mean 0.4, sd ~1) x1.3 is mostly a spread change: detected within 1,500 rows
    on each of 3 seeded streams, and named first."""
    for delay, top in rescaled_runs(reference, 2, 1.3, range(300, 303)):
        assert delay is not None and delay <= 1500, delay
        assert top == "score"


def test_no_false_alarm_with_score_tests_on_long_unshifted_streams(reference: Reference) -> None:
    """200,000 unshifted rows (ties, a binary feature, skewed features) at the default ERT of
    1,000,000: the union bound allows 0.2 alarms in expectation, the target is zero flagged tests."""
    det = FeatureDriftDetector(reference)
    assert det.thresholds.score_tests > 0
    for seed in (21, 22):
        det.reset()
        S.run(det, np.random.default_rng(seed), onset=0, total=100_000, shift=None, batch=1000)
        assert det._core.test.n_alarm_tests == 0


def test_tiny_reference_no_false_alarms_and_a_larger_rescale_still_found() -> None:
    """A reference of 89 rows (as wine's half): 60,000 unshifted rows raise no alarm, and x1.5 of
    the positive income feature is found within 3,000 rows on each of 3 seeded streams, named first.
    (x1.3 of this feature, sd/mean ~0.7, is at the limit of what 89 reference rows can tell from
    their own sampling noise at an ERT of 1,000,000; the benchmark's notes give the numbers.)"""
    ref = Reference.from_arrays(S.sample(np.random.default_rng(5), 89), numeric_names=S.NAMES)
    det = FeatureDriftDetector(ref)
    S.run(det, np.random.default_rng(6), onset=0, total=60_000, shift=None, batch=1000)
    assert det._core.test.n_alarm_tests == 0
    for delay, top in rescaled_runs(ref, 0, 1.5, range(400, 403), onset=1000, total=4000):
        assert delay is not None and delay <= 3000, delay
        assert top == "income"


def test_lower_ert_flags_stay_under_the_union_bound(reference: Reference) -> None:
    """At ERT=2,000 over 60,000 unshifted rows the bound allows 30 alarms in expectation (counts and
    scores together); the score tests take half and must not push the total over it."""
    det = FeatureDriftDetector(reference, ert=2_000)
    S.run(det, np.random.default_rng(31), onset=0, total=60_000, shift=None, batch=50)
    assert det._core.pending_alarms <= 30


def test_score_null_is_calibrated_on_seeded_windows() -> None:
    """Fresh references of 300 rows and independent windows of 300 rows from the same gamma law:
    over 40 references x 50 windows the standardised statistics (bootstrap-corrected) have mean
    within +-0.25 and sd within [0.8, 1.15], and at most 1% of them lie beyond 3 sd in a tested
    direction (a normal variable: 0.13% per tail)."""
    zs = []
    for k in range(40):
        rng = np.random.default_rng(1000 + k)
        ref = rng.gamma(2.0, 1.0, 300)
        det = FeatureDriftDetector(Reference.from_arrays(ref[:, None], numeric_names=("g",)))
        t = det.thresholds
        si = t.scales.index(300)
        x = rng.gamma(2.0, 1.0, 300 * 50)
        idx, _ = det._core.binner.bin(Batch.from_arrays(x[:, None], numeric_names=("g",), ts=np.arange(x.size) * 1.0))
        w = np.zeros((50, 1, t.ref_counts.shape[1]), dtype=np.int64)
        np.add.at(w, (np.repeat(np.arange(50), 300), 0, idx[:, 0]), 1)
        dev, _, _, sd = t._score_eval(w, si)
        zs.append((dev / sd)[:, 0, :])
    z = np.concatenate(zs)
    assert np.all(np.abs(z.mean(axis=0)) <= 0.25), z.mean(axis=0)
    assert np.all((z.std(axis=0) >= 0.8) & (z.std(axis=0) <= 1.15)), z.std(axis=0)
    beyond = np.concatenate([np.abs(z[:, 0]) > 3, z[:, 1] > 3, z[:, 2] > 3])
    assert beyond.mean() <= 0.01


def test_bootstrap_measures_the_bias_of_the_rescaling_scores() -> None:
    """Lognormal references of 89 rows: the rescaling scores are biased upwards (the reference
    fixes both the bins and the scores); the bootstrap's estimate, averaged over 30 references, is
    within 35% of the bias measured against the true law, and the rank score's is near zero."""
    rng = np.random.default_rng(3)
    truth = rng.lognormal(0.0, 1.0, 200_000)
    measured, estimated = [], []
    for _ in range(30):
        v = rng.lognormal(0.0, 1.0, 89)

        def build(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            c = Channel.numeric(numeric_profile("f", x, 20), 10)
            return c.edges, c.ref[:-1], feature_scores(c.ref[:-1], c.edges, c.fine)

        edges, r, sc = build(v)
        mean = linear_moments(r[None], sc[None]).mean[0]
        true_share = np.bincount(np.searchsorted(edges, truth, side="right"), minlength=r.size) / truth.size
        measured.append(true_share @ sc - mean)
        estimated.append(bootstrap_null(v, build, 89.0)[0])
    m, e = np.mean(measured, axis=0), np.mean(estimated, axis=0)
    assert m[1] > 0 and m[2] > 0, m
    assert np.all(np.abs(e[1:] - m[1:]) <= 0.35 * np.abs(m[1:])), (m, e)
    assert abs(e[0]) < 0.25 * max(abs(m[1]), abs(m[2])), (m, e)


def test_scores_are_bounded_and_only_on_ordered_value_bins(reference: Reference) -> None:
    """Rank scores lie in [-1/2, 1/2], likelihood-ratio scores in [-1, 4]; the binary feature
    (2 value bins) and the missing bins get none."""
    det = FeatureDriftDetector(reference)
    chans = det._core.channels
    scores, offset, ref_var = channel_scores(chans, det._core.binner.n_bins_max,
                                             samples={"income": reference.numeric[:, 0]})
    assert np.all(np.abs(scores[..., 0]) <= 0.5 + 1e-12)
    assert np.all((scores[..., 1:] >= -1.0) & (scores[..., 1:] <= 4.0 + 1e-12))
    flag = S.NAMES.index("flag")
    assert not scores[flag].any()
    for j, ch in enumerate(chans):
        assert not scores[j, ch.missing_bin].any()
    assert offset.shape == ref_var.shape == (len(chans), 3) and np.all(ref_var >= 0)


def test_thresholds_widen_with_skew_and_missing_rows(reference: Reference) -> None:
    """The skewness correction only ever raises a threshold, and a window with missing rows is
    held to a threshold at least as wide as a full window's."""
    z = np.array([5.0])
    assert np.all(cornish_fisher(z, np.array([0.3])) > 5.0) and float(cornish_fisher(z, np.array([-0.3]))[0]) == 5.0
    t = FeatureDriftDetector(reference).thresholds
    si = 0
    full = t._s_up[si][-1]
    half = t._s_up[si][0]
    act = np.isfinite(full)
    assert np.all(half[act] >= full[act])
    sd_full = predictive_sd(t._smom, float(t.scales[si]))
    sd_half = predictive_sd(t._smom, t.scales[si] / 2.0)
    assert np.all(sd_half >= sd_full)


def test_state_round_trip_with_score_tests(reference: Reference) -> None:
    """Score tests hold no state of their own: a restored detector flags at the same row."""
    rng = np.random.default_rng(77)
    a = FeatureDriftDetector(reference)
    S.run(a, rng, onset=10**9, total=2000, shift=None)
    b = FeatureDriftDetector(reference)
    b.load_state_dict(a.state_dict())
    rows = S.sample(np.random.default_rng(78), 1000)
    rows[:, 0] *= 1.3
    fa, fb = [], []
    for s in range(0, 1000, 50):
        batch = Batch.from_arrays(rows[s:s + 50], numeric_names=S.NAMES, ts=1.8e9 + np.arange(s, s + 50) * 0.05)
        a.update(batch)
        b.update(batch)
        fa.append(a.drift_detected)
        fb.append(b.drift_detected)
    assert fa == fb and any(fa)


def test_expected_ratio_separates_a_rescale_from_no_change(reference: Reference) -> None:
    """The power ceiling: on 200,000 fresh rows, income x1.3 sits well beyond the threshold in
    expectation (ratio >= 1.5 on an unbounded window) while unchanged rows sit well inside it (< 0.6:
    only the reference's own sampling error, about 3 of its standard deviations at most)."""
    det = FeatureDriftDetector(reference)
    t = det.thresholds
    x = S.sample(np.random.default_rng(55), 200_000)
    ratios = []
    for factor in (1.0, 1.3):
        y = x.copy()
        y[:, 0] *= factor
        idx, _ = det._core.binner.bin(Batch.from_arrays(y, numeric_names=S.NAMES, ts=np.arange(y.shape[0]) * 1.0))
        shares = np.stack([np.bincount(idx[:, j], minlength=t.ref_counts.shape[1])[: t.ref_counts.shape[1]]
                           for j in range(idx.shape[1])]).astype(float)
        ratios.append(float(t.expected_score_ratio(shares, 1e12)[0]))
    assert ratios[0] < 0.6 and ratios[1] >= 1.5, ratios


def test_score_tests_are_a_config_key(reference: Reference) -> None:
    """``score_tests: false`` in a monitor config turns them off (bins only, the whole ERT budget to
    the bin counts); the default is on for input_drift and off for output and PCA drift."""
    from monitor.detectors.registry import create

    off = create("input_drift", reference=reference, params={"score_tests": False})
    on = create("input_drift", reference=reference, params={})
    assert off.thresholds.score_tests == 0 and on.thresholds.score_tests > 0
    assert off.thresholds.alpha > on.thresholds.alpha
    pca = create("pca_drift", reference=reference, params={})
    assert pca.thresholds.score_tests == 0
