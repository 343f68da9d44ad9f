"""Pure calibration statistics (monitor.stats.calibration, monitor.stats.uncertainty) on seeded samples."""

from __future__ import annotations

import math
import numpy as np
import pytest

from monitor.stats import calibration as cal
from monitor.stats import uncertainty as unc


def calibrated_sample(rng: np.random.Generator, n: int, a: float = 20.0, b: float = 1.5, k: int = 10, gap: float = 0.0):
    """Top-label confidences on [1/k, 1] and correctness drawn with P(right) = conf - gap."""
    conf = 1.0 / k + (1.0 - 1.0 / k) * rng.beta(a, b, n)
    correct = (rng.random(n) < np.clip(conf - gap, 0.0, 1.0)).astype(np.float64)
    return conf, correct


def test_binned_estimators_match_the_sample_versions() -> None:
    rng = np.random.default_rng(1)
    conf, correct = calibrated_sample(rng, 5000, gap=0.05)
    edges = cal.fine_confidence_edges()
    sums = cal.reliability_sums(conf, correct, edges)
    coarse = cal.merge_bins(cal.equal_width_groups(edges), *sums)
    # the fine grid nests the 15 equal-width bins, so the ECE is identical
    assert cal.ece_from_sums(*coarse) == pytest.approx(cal.ece_equal_width(conf, correct), abs=1e-12)
    assert cal.mce_from_sums(*coarse) == pytest.approx(cal.max_calibration_error(conf, correct), abs=1e-12)
    # equal-mass from fine bins approximates equal-mass on the sample
    merged = cal.merge_bins(cal.equal_mass_groups(sums[0]), *sums)
    assert cal.debiased_l2_from_sums(*merged) == pytest.approx(cal.debiased_calibration_error(conf, correct), abs=0.01)
    assert sums[0].sum() == 5000


def test_equal_mass_groups_are_contiguous_and_balanced() -> None:
    count = np.ones(150)
    g = cal.equal_mass_groups(count, 15)
    assert (np.diff(g) >= 0).all() and g.max() == 14
    assert np.bincount(g).tolist() == [10] * 15


def test_debiased_estimator_removes_the_small_sample_bias() -> None:
    # calibrated model: true L2 calibration error is 0; the plug-in estimate is biased upwards
    rng = np.random.default_rng(2)
    plugin, debiased = [], []
    for _ in range(300):
        conf, correct = calibrated_sample(rng, 200, a=5, b=2)
        plugin.append(cal.plugin_calibration_error(conf, correct) ** 2)
        debiased.append(cal.debiased_l2_from_sums(*cal._equal_mass_sums(conf, correct, 15)))
    # the mean squared plug-in error is the binomial variance (about acc(1-acc)/n_b = 0.01)
    assert np.mean(plugin) > 0.005
    # the debiased estimate (clipped at 0, hence >= 0) is much closer to the truth
    assert np.mean(np.square(debiased)) < 0.25 * np.mean(plugin)


def test_ece_detects_a_known_gap() -> None:
    rng = np.random.default_rng(3)
    conf, correct = calibrated_sample(rng, 200_000, gap=0.08)
    assert cal.ece_equal_width(conf, correct) == pytest.approx(0.08, abs=0.01)
    assert cal.debiased_calibration_error(conf, correct) == pytest.approx(0.08, abs=0.01)


def test_overconfidence_pvalue_holds_its_false_alarm_rate_and_has_power() -> None:
    """Target of issue 3: 500 labels, a 5-point gap flagged with power >= 0.9, a calibrated model
    flagged in <= 1% of windows. Stated for a model whose mean confidence is about 0.94 (the
    power depends on it: see benchmarks/results/confidence.md)."""
    rng = np.random.default_rng(4)

    def flagged(gap: float, windows: int) -> float:
        hits = 0
        for _ in range(windows):
            conf, correct = calibrated_sample(rng, 500, gap=gap)
            p = cal.overconfidence_pvalue(conf.sum(), (conf**2).sum(), (conf**3).sum(), correct.sum())
            hits += p < 0.01
        return hits / windows

    assert flagged(0.0, 2000) <= 0.01
    assert flagged(0.05, 1000) >= 0.9


# -- the weighted over-confidence test (what the detector exports) ------------------------------
def _confidences(rng: np.random.Generator, profile: str, n: int) -> np.ndarray:
    """Top-label confidence profiles, from a weak model to one whose answers sit at 0.999+."""
    if profile == "weak":  # mean 0.70
        return 0.1 + 0.9 * rng.beta(3.0, 1.5, n)
    if profile == "strong":  # mean 0.94
        return 0.1 + 0.9 * rng.beta(20.0, 1.5, n)
    if profile == "near_certain":  # every answer between 0.99 and 0.999
        return 1.0 - 10.0 ** rng.uniform(-3.0, -2.0, n)
    if profile == "mostly_certain":  # 70% between 0.999 and 0.99999, the rest spread out
        top = rng.random(n) < 0.7
        return np.where(top, 1.0 - 10.0 ** rng.uniform(-5.0, -3.0, n), 0.1 + 0.9 * rng.beta(3.0, 1.5, n))
    assert profile == "unsure"  # a many-class model that is never sure
    return rng.uniform(0.1, 0.5, n)


def _binomial_tail_by_convolution(n: list[int], q: list[float], w: list[int]) -> np.ndarray:
    """P(sum_b w_b E_b >= t) for every t, E_b ~ Binomial(n_b, q_b): direct convolution, no FFT."""
    from scipy.stats import binom

    pmf = np.array([1.0])
    for nb, qb, wb in zip(n, q, w):
        part = np.zeros(nb * wb + 1)
        part[:: wb] = binom.pmf(np.arange(nb + 1), nb, qb)
        pmf = np.convolve(pmf, part)
    return pmf[::-1].cumsum()[::-1]


def test_weighted_pvalue_is_the_exact_tail_of_the_weighted_error_count() -> None:
    n, q, w = [6, 3, 40, 9], [0.3, 0.05, 0.5, 0.001], [1, 7, 3, 32]
    tail = _binomial_tail_by_convolution(n, q, w)
    count = np.array(n, dtype=np.float64)
    sum_conf = count * (1.0 - np.array(q))
    for t in range(0, len(tail), 5):
        # observed errors spread over the bins so that sum w E = t (bin 2 first, then bin 0)
        e2 = min(t // 3, n[2])
        e0 = t - 3 * e2
        if e0 > n[0]:
            continue
        errors = np.array([e0, 0, e2, 0], dtype=np.float64)
        p = cal.weighted_overconfidence_pvalue(count, sum_conf, count - errors, np.array(w))
        assert p == pytest.approx(tail[t], abs=1e-9)
    # with every weight 1 the test counts errors: the Edgeworth score test agrees to its accuracy
    rng = np.random.default_rng(20)
    conf = _confidences(rng, "strong", 500)
    correct = (rng.random(500) < conf - 0.02).astype(np.float64)
    sums = cal.reliability_sums(conf, correct, cal.fine_confidence_edges())
    flat = cal.weighted_overconfidence_pvalue(*sums, np.ones(len(sums[0]), dtype=np.int64))
    score = cal.overconfidence_pvalue(conf.sum(), (conf**2).sum(), (conf**3).sum(), correct.sum())
    assert flat == pytest.approx(score, abs=0.005)


def test_weighted_pvalue_beyond_the_exact_range_is_a_bound_not_zero() -> None:
    """Past mean + 6 sd + 9 max w (the FFT's range) the p-value is Chernoff's bound: above the
    exact tail, under 3e-6, and 0 only past every error's weight; every answer wrong gives the
    exact prod q^n."""
    n, q, w = [300, 50], [0.05, 0.002], [1, 20]
    tail = _binomial_tail_by_convolution(n, q, w)
    count = np.array(n, dtype=np.float64)
    sum_conf = count * (1.0 - np.array(q))
    mean = float(np.dot(w, np.multiply(n, q)))
    reach = mean + 6.0 * math.sqrt(float(np.dot(np.square(w), np.multiply(n, np.multiply(q, 1.0 - np.array(q)))))) + 9.0 * 20
    for errors in ([0.0, 13.0], [0.0, 15.0], [20.0, 19.0], [0.0, 50.0]):
        t = int(np.dot(w, errors))
        assert t > reach
        p = cal.weighted_overconfidence_pvalue(count, sum_conf, count - np.array(errors), np.array(w))
        assert 0.0 < p < 3e-6 and p >= tail[t], (t, p, tail[t])
    small = np.array([30.0, 5.0])
    everything = cal.weighted_overconfidence_pvalue(small, small * (1.0 - np.array(q)), np.zeros(2), np.array(w))
    assert everything == pytest.approx(0.05**30 * 0.002**5, rel=1e-9) and everything > 0.0


def test_weighted_pvalue_edge_cases() -> None:
    w = np.array([1, 32])
    assert np.isnan(cal.weighted_overconfidence_pvalue(np.zeros(2), np.zeros(2), np.zeros(2), w))
    # confidence exactly 1 cannot be wrong under calibration: right answers are unremarkable...
    assert cal.weighted_overconfidence_pvalue(np.array([0.0, 50.0]), np.array([0.0, 50.0]), np.array([0.0, 50.0]), w) == 1.0
    # ...and one wrong answer refutes it
    assert cal.weighted_overconfidence_pvalue(np.array([0.0, 50.0]), np.array([0.0, 50.0]), np.array([0.0, 49.0]), w) == 0.0
    with pytest.raises(ValueError, match="design_gap"):
        cal.overconfidence_weights(cal.fine_confidence_edges(), design_gap=0.7)
    with pytest.raises(ValueError, match="tilt"):
        cal.overconfidence_weights(cal.fine_confidence_edges(), tilt=-1.0)


def _null_terms(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, error rate and weight of the bins that can err under calibration."""
    edges = cal.fine_confidence_edges()
    count, sum_conf, _ = cal.reliability_sums(conf, np.ones_like(conf), edges)
    live = count > 0
    n, q = count[live], 1.0 - sum_conf[live] / count[live]
    w = cal.overconfidence_weights(edges)[live]
    return n[q > 0], q[q > 0], w[q > 0]


def test_large_windows_use_an_accurate_saddlepoint_unless_lumpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond 2,048 lattice points the saddlepoint replaces the FFT: against the FFT forced to
    run, relative error below 1e-3 wherever the exact tail is in (0.002, 0.05); on a lumpy sum
    (400,000 answers at 0.9999+, about 16 expected errors at weights 31 and 32) the FFT stays."""
    rng = np.random.default_rng(21)
    for profile, rows in (("weak", 20_000), ("strong", 60_000), ("near_certain", 100_000), ("mostly_certain", 40_000)):
        n, q, w = _null_terms(_confidences(rng, profile, rows))
        assert cal._lattice_upper(0, n, q, w, cal._MAX_LATTICE) is None and cal._smooth(n, q, w), profile
        mean, sd = float(w @ (n * q)), float(np.sqrt(w * w @ (n * q * (1 - q))))
        checked = 0
        for t in range(int(mean + 2.0 * sd), int(mean + 3.0 * sd), max(int(sd) // 20, 1)):
            exact = cal._lattice_upper(t, n, q, w, 1 << 18)
            if exact is not None and 0.002 < exact < 0.05:
                assert cal._saddlepoint_upper(t, n, q, w) == pytest.approx(exact, rel=1e-3), (profile, t)
                checked += 1
        assert checked >= 10
    n, q, w = _null_terms(1.0 - 10.0 ** rng.uniform(-5.0, -4.0, 400_000))
    assert not cal._smooth(n, q, w)
    # the public function then takes the FFT path: the saddlepoint is never called
    monkeypatch.setattr(cal, "_saddlepoint_upper", lambda *a: pytest.fail("saddlepoint used on a lumpy sum"))
    for _ in range(5):
        errors = rng.binomial(n.astype(np.int64), q).astype(np.float64)
        t = int(w @ errors)
        exact = cal._lattice_upper(t, n, q, w, 1 << 18)
        assert exact is not None
        assert cal.weighted_overconfidence_pvalue(n, n * (1 - q), n - errors, w) == pytest.approx(exact, abs=1e-9)


@pytest.mark.parametrize("profile", ["weak", "strong", "near_certain", "mostly_certain", "unsure"])
def test_weighted_pvalue_holds_its_false_alarm_rate(profile: str) -> None:
    """Calibrated models flagged in at most 1% of 500-label windows (plus 3 Monte-Carlo standard
    errors: 0.0177 on 1,500 windows), whatever the confidences, including answers at 0.999+
    where the weights are 4 to 6 times those of the middle confidences."""
    rng = np.random.default_rng(22)
    windows = 1500
    hits = 0
    for _ in range(windows):
        conf = _confidences(rng, profile, 500)
        hits += cal.binned_overconfidence_pvalue(conf, (rng.random(500) < conf).astype(np.float64)) < 0.01
    assert hits / windows <= 0.01 + 3.0 * np.sqrt(0.01 * 0.99 / windows)


def test_weighted_pvalue_gains_on_an_additive_gap_and_keeps_the_logit_shift() -> None:
    """Against the flat score test, 1,000 paired windows of 500 labels, model of mean confidence
    0.82: right with probability ``c - 0.05`` (an additive gap, errors multiplied most at high
    confidence) is flagged at least 3 points more often (measured: +8), and right with
    probability ``sigmoid(logit(c) - 0.347)`` (a logit shift of the same 5-point mean gap, what
    the flat test is most powerful against) at most 3 points less often (measured: +1); the
    issue's target holds at mean confidence 0.94 (power >= 0.9 on the 5-point additive gap)."""
    rng = np.random.default_rng(23)
    edges = cal.fine_confidence_edges()
    weights = cal.overconfidence_weights(edges)

    def power(a: float, truth, windows: int) -> tuple[float, float]:
        new = flat = 0
        for _ in range(windows):
            conf = 0.1 + 0.9 * rng.beta(a, 1.5, 500)
            correct = (rng.random(500) < truth(conf)).astype(np.float64)
            new += cal.weighted_overconfidence_pvalue(*cal.reliability_sums(conf, correct, edges), weights) < 0.01
            flat += cal.overconfidence_pvalue(conf.sum(), (conf**2).sum(), (conf**3).sum(), correct.sum()) < 0.01
        return new / windows, flat / windows

    new, flat = power(6.0, lambda c: c - 0.05, 1000)
    assert new >= flat + 0.03
    new, flat = power(6.0, lambda c: 1.0 / (1.0 + (1.0 - c) / c * np.exp(0.347)), 1000)
    assert new >= flat - 0.03
    new, _ = power(20.0, lambda c: c - 0.05, 500)
    assert new >= 0.9


def test_overconfidence_interval_covers_the_true_gap() -> None:
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(500):
        conf, correct = calibrated_sample(rng, 500, gap=0.05)
        d = conf - correct
        iv = cal.overconfidence_interval(500, float(d.sum()), float((d * d).sum()), level=0.9)
        covered += iv.lower <= 0.05 <= iv.upper
    assert 0.86 <= covered / 500 <= 0.94
    nan = cal.overconfidence_interval(1, 0.1, 0.01)
    assert np.isnan(nan.gap)


def test_temperature_fit_recovers_the_distortion() -> None:
    rng = np.random.default_rng(6)
    logits = rng.normal(0.0, 2.0, (20_000, 5))
    # labels drawn from softmax(logits / 2): the model's softmax(logits) is over-confident, T = 2
    p_true = np.exp(logits / 2.0)
    p_true /= p_true.sum(axis=1, keepdims=True)
    labels = (p_true.cumsum(axis=1) > rng.random((20_000, 1))).argmax(axis=1)
    assert cal.fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.05)
    # log-probabilities work as logits (softmax is shift invariant)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert cal.fit_temperature(logp, labels) == pytest.approx(cal.fit_temperature(logits, labels), rel=1e-3)


def _labelled_at(rng: np.random.Generator, n: int, k: int, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    logits = rng.normal(0.0, 2.0, (n, k))
    p_true = np.exp(logits / temperature)
    p_true /= p_true.sum(axis=1, keepdims=True)
    return logits, (p_true.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)


def test_a_masked_class_takes_no_part_in_the_temperature_fit() -> None:
    """A class masked with a logit of -inf has probability 0 at every temperature: the fit is
    the one without that column (before: NaN gradients walked T to its lower bound, 0.05)."""
    logits, labels = _labelled_at(np.random.default_rng(11), 400, 3, 2.0)
    expected = cal.fit_temperature(logits, labels)
    assert 1.5 < expected < 3.0
    masked = np.column_stack([logits, np.full(400, -np.inf)])
    assert cal.fit_temperature(masked, labels) == pytest.approx(expected, rel=1e-6)
    logp = masked - np.log(np.exp(logits).sum(axis=1, keepdims=True))  # the joiner's log_softmax keeps the -inf
    assert cal.fit_temperature(logp, labels) == pytest.approx(expected, rel=1e-6)


def test_a_true_class_of_probability_zero_does_not_pin_the_temperature() -> None:
    """A one-hot wrong answer (a tree, a kNN, a saturated float32 softmax) gives the true class
    probability 0, floored at 1e-300 before its log: read as a finite logit of -690 it pinned T
    at the upper bound, 20. Its likelihood is 0 at every T: the fit is the one without it."""
    rng = np.random.default_rng(12)
    logits, labels = _labelled_at(rng, 400, 3, 1.0)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[0] = np.eye(3)[(labels[0] + 1) % 3]  # confidently wrong, probability 0 on the true class
    logp = unc.log_probabilities(probs)
    expected = cal.fit_temperature(logp[1:], labels[1:])
    assert 0.7 < expected < 1.5
    assert cal.fit_temperature(logp, labels) == pytest.approx(expected, rel=1e-6)
    probs[1] = np.eye(3)[labels[1]]  # one-hot and right: its zeros are masked classes, the row still counts
    logp = unc.log_probabilities(probs)
    rows = np.r_[1:400]
    assert cal.fit_temperature(logp, labels) == pytest.approx(cal.fit_temperature(logp[rows], labels[rows]), rel=1e-6)
    assert np.isnan(cal.fit_temperature(logp[:1], labels[:1]))  # nothing to fit on


def test_proper_scores() -> None:
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    y = np.array([0, 1, 0])
    assert cal.brier_terms(p, y).tolist() == pytest.approx([0.0, 0.5, 2.0])
    ll = cal.log_loss_terms(p, y)
    assert ll[0] == pytest.approx(0.0) and ll[1] == pytest.approx(np.log(2)) and ll[2] == pytest.approx(-np.log(1e-15))


def test_isotonic_bins_are_monotone_and_fill_gaps() -> None:
    count = np.array([0, 10, 10, 0, 10, 10, 0])
    right = np.array([0, 6, 4, 0, 9, 7, 0])
    fitted = cal.isotonic_bins(count, right)
    assert (np.diff(fitted) >= -1e-12).all()
    assert fitted[0] == fitted[1] == pytest.approx(0.5)  # 6/10 and 4/10 pooled
    assert fitted[3] == fitted[2] and fitted[-1] == fitted[-2]
    assert np.isnan(cal.isotonic_bins(np.zeros(3), np.zeros(3))).all()


def test_atc_threshold_reproduces_reference_accuracy() -> None:
    rng = np.random.default_rng(7)
    conf, correct = calibrated_sample(rng, 10_000)
    t = cal.atc_threshold(conf, correct)
    assert np.mean(conf > t) == pytest.approx(correct.mean(), abs=0.002)


def test_bbse_recovers_known_class_weights() -> None:
    rng = np.random.default_rng(8)
    k = 4
    # a confusion matrix P(pred = i | y = j) with 80% on the diagonal
    cond = np.full((k, k), 0.2 / (k - 1)) + np.eye(k) * (0.8 - 0.2 / (k - 1))
    prior_ref = np.full(k, 1.0 / k)
    joint = cond * prior_ref
    prior_new = np.array([0.55, 0.15, 0.15, 0.15])
    pred = np.array([rng.choice(k, p=cond[:, y]) for y in rng.choice(k, size=20_000, p=prior_new)])
    freq = np.bincount(pred, minlength=k) / len(pred)
    w = cal.bbse_weights(joint, freq)
    assert w == pytest.approx(prior_new / prior_ref, abs=0.08)
    assert cal.label_shift_accuracy(joint, w) == pytest.approx(0.8, abs=0.01)
    # knocked-out class: its weight goes to 0 (non-negative solution; the ridge towards no shift
    # leaves 3e-5 of it, with singular values of about 0.15 here)
    freq0 = cond[:, 1:] @ np.full(k - 1, 1.0 / (k - 1))
    assert cal.bbse_weights(joint, freq0)[0] == pytest.approx(0.0, abs=1e-4)


def test_bbse_weights_settle_what_a_singular_confusion_matrix_cannot_tell_at_no_shift() -> None:
    """A model that cannot tell classes 1 and 2 apart (it predicts each with probability 1/2
    whatever the truth) and a window with the reference's own mix: plain least squares gave
    weights [1, 2, 0] (class 2 "vanished", class 1 doubled) for no shift at all."""
    joint = np.array([[0.30, 0.0, 0.0], [0.0, 0.175, 0.175], [0.0, 0.175, 0.175]])
    w = cal.bbse_weights(joint, joint.sum(axis=1))
    assert w == pytest.approx(np.ones(3), abs=1e-6)
    shifted = joint[:, 0] * 0.5 / 0.3 + joint[:, 1:].sum(axis=1) * 0.5 / 0.7  # class 0's share 0.3 -> 0.5
    w = cal.bbse_weights(joint, shifted)
    assert w[0] == pytest.approx(0.5 / 0.3, rel=1e-3) and w[1] == pytest.approx(w[2], rel=1e-6)


def test_bbse_ridge_leaves_a_rare_class_weight_where_the_data_put_it() -> None:
    """A ridge of one absolute weight shrank a 0.2%-prior class's x5 shift to x4 (its confusion
    column is about 1e-3); scaled by each column's norm it costs nothing measurable."""
    k = 10
    prior = np.full(k, 0.998 / (k - 1))
    prior[0] = 0.002
    cond = np.full((k, k), 0.1 / (k - 1)) + np.eye(k) * (0.9 - 0.1 / (k - 1))
    joint = cond * prior
    w = np.ones(k)
    w[0] = 5.0
    w[1:] = (1.0 - 5.0 * prior[0]) / (1.0 - prior[0])
    got = cal.bbse_weights(joint, joint @ w)
    assert got == pytest.approx(w, rel=1e-3)
    binary = np.array([[0.99, 0.2], [0.01, 0.8]]) * np.array([0.995, 0.005])  # fraud at 0.5%, then 2.5%
    shift = np.array([0.975 / 0.995, 5.0])
    assert cal.bbse_weights(binary, binary @ shift) == pytest.approx(shift, rel=1e-3)


def test_uncertainty_scores() -> None:
    p = np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    top, second = unc.top_two(p)
    assert top.tolist() == pytest.approx([0.7, 1 / 3, 1.0]) and second.tolist() == pytest.approx([0.2, 1 / 3, 0.0])
    h = unc.normalized_entropy(p)
    assert h[1] == pytest.approx(1.0) and h[2] == pytest.approx(0.0)
    z = np.array([[0.0, 0.0], [10.0, 0.0]])
    assert unc.energy_score(z).tolist() == pytest.approx([-np.log(2), -(10 + np.log1p(np.exp(-10)))])
    agree = np.tile(np.array([[0.9, 0.1]]), (1, 5, 1))
    disagree = np.array([[[0.99, 0.01], [0.01, 0.99]] * 2 + [[0.99, 0.01]]])
    mi = unc.mutual_information(np.concatenate([agree, disagree]))
    assert mi[0] == pytest.approx(0.0, abs=1e-12) and mi[1] > 0.4
    var = unc.top_class_variance(np.concatenate([agree, disagree]))
    assert var[0] == pytest.approx(0.0) and var[1] > 0.2


def test_weighted_pvalue_of_non_finite_sums_is_nan_not_a_false_alarm() -> None:
    """A bin whose sums are not finite says nothing: it must not drop out of the null while its
    errors stay in the statistic (which made a calibrated window look significant), nor raise."""
    w = np.array([1, 32])
    count = np.array([1000.0, 100.0])
    # bin 0 at 0.5 with its 500 expected errors, bin 1 at 0.9 with its 10: calibrated
    sum_conf, sum_correct = np.array([500.0, 90.0]), np.array([500.0, 90.0])
    assert cal.weighted_overconfidence_pvalue(count, sum_conf, sum_correct, w) > 0.3
    assert np.isnan(cal.weighted_overconfidence_pvalue(count, np.array([np.nan, 90.0]), sum_correct, w))
    assert np.isnan(cal.weighted_overconfidence_pvalue(count, sum_conf, np.array([np.nan, 90.0]), w))
    assert np.isnan(cal.weighted_overconfidence_pvalue(np.array([np.inf, 100.0]), sum_conf, sum_correct, w))


def _reference_ece_and_debiased(count, s_conf, s_corr) -> tuple[float, float]:
    """The two estimators written out bin by bin, as the papers state them (Guo et al. 2017;
    Kumar et al. 2019; a bin of one row, which the paper leaves undefined, subtracts its
    confidence's Bernoulli variance): the reference the vectorised rows are checked against."""
    total = sum(count)
    if total == 0:
        return float("nan"), float("nan")
    ece = sq = 0.0
    for n, c, k in zip(count, s_conf, s_corr):
        if n == 0:
            continue
        conf, acc = c / n, k / n
        ece += abs(c - k) / total
        var = acc * (1 - acc) / (n - 1) if n >= 2 else conf * (1 - conf)
        sq += n / total * ((conf - acc) ** 2 - var)
    return ece, math.sqrt(max(sq, 0.0))


def test_row_estimators_give_each_groups_value() -> None:
    """The segment detector computes every segment's ECE and debiased L2 error in one pass (a
    whole window's value is one such row, so the two agree by construction): each row's value is
    the estimator's, including empty groups, bins of one row and groups without rows."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        count = rng.integers(0, 30, size=(6, 15)).astype(np.float64) * (rng.random((6, 15)) < 0.6)
        count[0] = 0.0
        count[1, :] = np.minimum(count[1], 1.0)
        s_conf = count * rng.random((6, 15))
        s_corr = np.floor(count * rng.random((6, 15)))
        ece, debiased = cal.ece_rows(count, s_conf, s_corr), cal.debiased_l2_rows(count, s_conf, s_corr)
        for i in range(6):
            want = _reference_ece_and_debiased(count[i].tolist(), s_conf[i].tolist(), s_corr[i].tolist())
            for got, ref in zip((ece[i], debiased[i]), want):
                if math.isnan(ref):
                    assert np.isnan(got)
                else:
                    assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)
    assert np.isnan(cal.ece_rows(np.zeros((1, 15)), np.zeros((1, 15)), np.zeros((1, 15)))[0])


def test_mce_rows_give_each_groups_mce() -> None:
    rng = np.random.default_rng(8)
    for _ in range(200):
        count = rng.integers(0, 30, size=(5, 15)).astype(np.float64) * (rng.random((5, 15)) < 0.6)
        count[0] = 0.0
        s_conf, s_corr = count * rng.random((5, 15)), np.floor(count * rng.random((5, 15)))
        for min_count in (1, 10):
            got = cal.mce_rows(count, s_conf, s_corr, min_count=min_count)
            for i in range(5):
                want = cal.mce_from_sums(count[i], s_conf[i], s_corr[i], min_count=min_count)
                assert (np.isnan(got[i]) and np.isnan(want)) or got[i] == pytest.approx(want, rel=1e-12)


def test_equal_mass_rows_are_each_rows_own_groups_and_sums() -> None:
    """Every row of :func:`equal_mass_rows` (all statistics summed in one bincount) is that row's
    :func:`equal_mass_groups` merged by :func:`merge_bins`, to the last bit; a row without
    counts comes out as zeros, and no rows as empty blocks."""
    rng = np.random.default_rng(9)
    for _ in range(100):
        count = rng.integers(0, 40, size=(5, 132)).astype(np.float64) * (rng.random((5, 132)) < 0.5)
        count[0] = 0.0
        s_conf, s_corr = count * rng.random((5, 132)), np.floor(count * rng.random((5, 132)))
        got = cal.equal_mass_rows(count, s_conf, s_corr)
        for i in range(1, 5):
            groups = cal.equal_mass_groups(count[i])
            for g, want in zip(got, cal.merge_bins(groups, count[i], s_conf[i], s_corr[i])):
                assert np.array_equal(g[i, :len(want)], want) and not g[i, len(want):].any()
        assert all(not g[0].any() for g in got)
    assert [g.shape for g in cal.equal_mass_rows(np.zeros((0, 132)), np.zeros((0, 132)))] == [(0, 15), (0, 15)]


@pytest.mark.parametrize("k", [3, 10, 32, 40])
def test_top_two_is_exactly_the_two_largest_of_each_row(k: int) -> None:
    """Up to 32 classes the top two are found column by column; the values must be exactly the
    largest and second-largest entries of each row (ties included: then both are equal)."""
    from monitor.stats.uncertainty import top_two

    rng = np.random.default_rng(k)
    for trial in range(30):
        p = rng.dirichlet(np.ones(k) * 0.3, size=int(rng.integers(1, 2000)))
        if trial % 2:
            p = np.round(p, 1)  # many ties
        top, second = top_two(p)
        ordered = np.sort(p, axis=1)
        assert np.array_equal(top, ordered[:, -1]) and np.array_equal(second, ordered[:, -2])


def test_top_two_is_the_same_on_small_and_large_batches() -> None:
    """Small batches (below 256 rows) are partitioned, large ones scanned column by column: the
    same rows give the same two values either way, one-hot rows and ties included, so that a
    detector's figures do not depend on how the rows were batched."""
    from monitor.stats.uncertainty import top_two

    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(10) * 0.3, size=1024)
    p[::7] = np.round(p[::7], 1)  # ties
    p[::11] = np.eye(10)[rng.integers(0, 10, len(p[::11]))]  # one-hot rows: the runner-up is 0
    top, second = top_two(p)
    parts = [top_two(p[i:i + 50]) for i in range(0, len(p), 50)]
    assert np.array_equal(top, np.concatenate([a for a, _ in parts]))
    assert np.array_equal(second, np.concatenate([b for _, b in parts]))


def test_debiased_l2_subtracts_a_one_row_bins_noise() -> None:
    """A bin holding one row: its squared distance (conf - answer)^2 is, for a calibrated model,
    pure Bernoulli noise of expectation conf (1 - conf); that is what is subtracted (the bin's
    accuracy variance cannot be estimated from one answer). Here every other bin is exactly
    calibrated, so the estimate is 0; counting the lone row's plug-in term gave sqrt(0.25 / 101)."""
    from monitor.stats import calibration as cal

    count = np.array([100.0, 1.0])
    sum_conf = np.array([80.0, 0.5])
    sum_correct = np.array([80.0, 1.0])
    assert cal.debiased_l2_from_sums(count, sum_conf, sum_correct) < 0.02
    assert cal.debiased_l2_rows(count[None, :], sum_conf[None, :], sum_correct[None, :])[0] < 0.02


def test_bbse_weight_of_a_class_the_labelled_reference_never_holds_is_zero() -> None:
    """A class no labelled reference row holds has an all-zero confusion column: the window says
    nothing of it, so its weight is 0 and the others are those solved without it (the zero used to
    rest on nnls never moving a column that cannot change the residual)."""
    rng = np.random.default_rng(11)
    k = 5
    for _ in range(200):
        joint = rng.dirichlet(np.ones(k * k)).reshape(k, k) + np.eye(k) * rng.uniform(0.2, 1.0)
        missing = rng.choice(k, size=int(rng.integers(1, k - 1)), replace=False)
        joint[:, missing] = 0.0
        joint /= joint.sum()
        kept = np.setdiff1d(np.arange(k), missing)
        w_true = rng.uniform(0.3, 3.0, size=k)
        freq = joint @ w_true
        freq /= freq.sum()
        w = cal.bbse_weights(joint, freq)
        assert np.isfinite(w).all() and (w[missing] == 0.0).all()
        alone = cal.bbse_weights(joint[:, kept], freq)
        assert w[kept] == pytest.approx(alone, rel=1e-9, abs=1e-12)
