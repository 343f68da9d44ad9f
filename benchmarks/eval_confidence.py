"""Evaluation of the confidence, calibration and accuracy-estimation signals (issue 3).

On data scikit-learn ships (digits, breast_cancer, wine): train a model, keep a held-out
reference split, then stream the remaining rows (resampled) with injected shifts -- Gaussian noise
at several strengths on half of the rows, a knocked-out class, one corrupted feature -- and with
no shift. Prints, and writes as markdown to ``benchmarks/results/confidence.md``:

1. how soon each label-free signal detects each shift (events after onset until its condition
   first holds after it), and false alarms: every alarm on the unshifted streams and every alarm
   before the onset of the shifted ones (never a detection), with the thresholds of
   ``rules/confidence.yml`` (without their ``for:``); :func:`book_alarms` does the bookkeeping;
2. the absolute error of each accuracy estimator against the true accuracy of each window;
3. the bias of the calibration-error estimators against a large-sample truth at 100, 500 and
   2,000 labels;
4. the power of the over-confidence test at 500 labels, by how confident the model is;
5. the cost added to the worker per event at 10 classes, against the worker without them,
   measured in the same run.

Run: ``python benchmarks/eval_confidence.py`` (a few minutes; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from monitor.batch import Batch
from monitor.catalog import confidence as names
from monitor.detectors.registry import create
from monitor.reference import Reference
from monitor.stats import calibration as cal
from monitor.store import MetricStore

RESULTS = Path(__file__).resolve().parent / "results" / "confidence.md"
DATASETS = ("digits", "breast_cancer", "wine")
LABEL_FREE = ("confidence", "confidence_drift", "prediction_drift", "accuracy_estimation")


# -- data and model ---------------------------------------------------------------------------------
@dataclass
class Setup:
    name: str
    predict: Callable[[np.ndarray], np.ndarray]
    reference: Reference
    pool_x: np.ndarray
    pool_y: np.ndarray
    feature_sd: np.ndarray
    top_feature: int
    n_classes: int
    train_x: np.ndarray


def make_setup(name: str, seed: int = 0) -> Setup:
    """Train a standardised logistic regression on half of the data; a quarter is the reference,
    a quarter the pool the streams are drawn from."""
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=y)
    x_ref, x_pool, y_ref, y_pool = train_test_split(x_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x_tr, y_tr)
    coef = np.abs(model[-1].coef_).sum(axis=0)
    ref = Reference.from_arrays(x_ref, scores=model.predict_proba(x_ref), labels=y_ref)
    return Setup(name, model.predict_proba, ref, x_pool, y_pool, x_tr.std(axis=0) + 1e-12, int(np.argmax(coef)), len(np.unique(y)),
                 x_tr)


SHIFTS: dict[str, str] = {
    "none": "no shift",
    "noise_0.5": "Gaussian noise, 0.5 sd, on 50% of rows",
    "noise_1": "Gaussian noise, 1 sd, on 50% of rows",
    "noise_2": "Gaussian noise, 2 sd, on 50% of rows",
    "corrupt_feature": "most important feature replaced by random reference values",
    "knockout": "class 0 knocked out (label shift)",
}
COVARIATE = ("noise_0.5", "noise_1", "noise_2", "corrupt_feature")


def draw(setup: Setup, shift: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows drawn with replacement from the pool, shifted."""
    idx = np.arange(len(setup.pool_y))
    if shift == "knockout":
        idx = idx[setup.pool_y != 0]
    pick = rng.choice(idx, size=n, replace=True)
    x, y = setup.pool_x[pick].copy(), setup.pool_y[pick]
    if shift.startswith("noise_"):
        sd = float(shift.split("_")[1])
        rows = rng.random(n) < 0.5
        x[rows] += rng.normal(0.0, 1.0, (int(rows.sum()), x.shape[1])) * setup.feature_sd * sd
    elif shift == "corrupt_feature":
        j = setup.top_feature
        x[:, j] = rng.choice(setup.reference.numeric[:, j], size=n)
    return x, y


# -- 1. detection delay and false alarms --------------------------------------------------------------
def alarms(store: MetricStore) -> dict[str, bool]:
    """The conditions of rules/confidence.yml (without their `for:` durations)."""

    def v(name: str, labels: tuple[str, ...] | None = None) -> float | None:
        return store.value(name, labels)

    def both(p: float | None, d: float | None, pmax: float, dmin: float) -> bool:
        return p is not None and d is not None and p < pmax and d > dmin

    conf = any(both(v(names.CONFIDENCE_DRIFT_PVALUE, (s,)), v(names.CONFIDENCE_DRIFT_DISTANCE, (s,)), 1e-3, 0.1) for s in ("confidence", "entropy"))
    pred = both(v(names.PREDICTION_DRIFT_PVALUE), v(names.PREDICTION_DRIFT_DISTANCE), 1e-3, 0.1)
    ref_acc = v(names.REFERENCE_ACCURACY)
    rows = v(names.ESTIMATED_ACCURACY_ROWS)
    out: dict[str, bool] = {"confidence drift": conf, "prediction drift": pred}
    for est in ("atc", "cbpe"):
        e = v(names.ESTIMATED_ACCURACY, (est,))
        # ModelEstimatedAccuracyDrop: 5 points below and z > 3 over the estimate's rows, the variance
        # the larger of the reference accuracy's and the estimate's binomial variance
        out[f"accuracy drop ({est})"] = (ref_acc is not None and e is not None and rows is not None and ref_acc - e > 0.05
                                         and (ref_acc - e) / np.sqrt(max(ref_acc * (1 - ref_acc), e * (1 - e)) / rows) > 3)
    fam = store.snapshot()
    share = {tuple(k): val for f in fam if f.spec.name == names.TOP_CLASS_SHARE for k, val in f.series.items()}
    ref_share = {tuple(k): val for f in fam if f.spec.name == names.TOP_CLASS_SHARE_REFERENCE for k, val in f.series.items()}
    out["output collapse"] = any(share[k] - ref_share.get(k, 1.0) > 0.25 for k in share)
    return out


SIGNALS = ("confidence drift", "prediction drift", "accuracy drop (atc)", "accuracy drop (cbpe)", "output collapse")
#: signals whose condition no shipped rule tests (ModelEstimatedAccuracyDrop reads ATC's estimate only):
#: shown for comparison, as "not reached" rather than "not detected"
NO_RULE = frozenset({"accuracy drop (cbpe)"})


@dataclass(frozen=True)
class AlarmBook:
    """One signal's alarms on one stream, split at the shift's onset.

    An evaluation at clock ``t`` (events seen so far, 1 per second) is *after the onset* when it
    has seen at least one shifted event (``t > onset``); at or before it, its windows hold unshifted
    events only, so a condition holding there is a false alarm whatever the stream does later.

    Attributes
    ----------
    pre_alarms, pre_evaluations
        Evaluations before the onset at which the condition held, and all evaluations before it
        (every evaluation of an unshifted stream, whose onset is ``None``).
    post_alarms, post_evaluations
        The same after the onset.
    delay
        Events after the onset seen at the first alarm after it; ``None`` when none came (an
        alarm before the onset is never a detection, even when the condition goes on holding).
    """

    pre_alarms: int
    pre_evaluations: int
    post_alarms: int
    post_evaluations: int
    delay: int | None


def book_alarms(evaluations: list[int], alarms: list[int], onset: int | None) -> AlarmBook:
    """Split one signal's alarms at the onset (see :class:`AlarmBook`).

    Parameters
    ----------
    evaluations
        Clock of every evaluation of the stream (events seen when it was made).
    alarms
        Clock of the evaluations at which the signal's condition held (a subset of ``evaluations``).
    onset
        Events before the first shifted one; ``None`` for an unshifted stream (every alarm false).
    """
    unknown = sorted(set(alarms) - set(evaluations))
    if unknown:
        raise ValueError(f"alarms at clocks {unknown[:3]} match no evaluation: pass the clocks run_stream evaluated at")
    cut = float("inf") if onset is None else onset
    pre = [t for t in alarms if t <= cut]
    post = sorted(t for t in alarms if t > cut)
    n_pre = sum(1 for t in evaluations if t <= cut)
    return AlarmBook(pre_alarms=len(pre), pre_evaluations=n_pre, post_alarms=len(post),
                     post_evaluations=len(evaluations) - n_pre, delay=(post[0] - int(cut)) if post else None)


def delay_cell(books: list[AlarmBook], horizon: int, rule: bool = True) -> str:
    """Table cell for one signal over the seeds of one shifted stream: the median delay when most
    seeds detected, ``> horizon`` when only some did; alarms before the onset are appended, so that
    a delay that may only continue a false alarm is never read alone. A signal no shipped rule
    tests (``rule`` false) is "not reached", never "not detected": nothing would have alerted."""
    delays = np.array([np.inf if b.delay is None else float(b.delay) for b in books])
    found = int(np.isfinite(delays).sum())
    if found == 0:
        cell = "not detected" if rule else "not reached"
    elif 2 * found > len(books):
        cell = f"{np.median(delays):.0f} ({found}/{len(books)})"
    else:
        cell = f"> {horizon} ({found}/{len(books)})"
    pre = sum(b.pre_alarms for b in books)
    seeds_pre = sum(1 for b in books if b.pre_alarms)
    return cell + (f"; **{pre} alarm{'s' if pre > 1 else ''} before the onset** ({seeds_pre}/{len(books)} seeds)" if pre else "")


def false_alarm_cell(books: list[AlarmBook]) -> str:
    """Alarms over evaluations before the onset, summed over streams (all of an unshifted stream)."""
    return f"{sum(b.pre_alarms for b in books)} / {sum(b.pre_evaluations for b in books)}"


def run_stream(setup: Setup, shift: str, rng: np.random.Generator, *, warm: int, after: int, window: float,
               every: int) -> tuple[list[int], dict[str, list[int]]]:
    """Stream ``warm`` unshifted then ``after`` shifted events (1 per second), evaluating every
    ``every`` events from the first; return the clock of every evaluation (events seen) and, per
    signal, the clocks at which its condition held: before and after the onset alike (see
    :func:`book_alarms`, which splits them)."""
    dets = [create(k, reference=setup.reference, params={"window_s": window, "n_slots": 10}) for k in LABEL_FREE]
    store = MetricStore(setup.name)
    x0, _ = draw(setup, "none", warm, rng)
    x1, _ = draw(setup, shift, after, rng)
    probs = setup.predict(np.concatenate([x0, x1]))
    clocks: list[int] = []
    hits: dict[str, list[int]] = {s: [] for s in SIGNALS}
    for start in range(0, warm + after, every):
        p = probs[start:start + every]
        b = Batch.from_arrays(np.zeros((len(p), 1)), p, ts=np.arange(start, start + len(p), dtype=np.float64))
        for d in dets:
            d.update(b)
            d.advance(float(start + len(p)))
            d.export(store)
        clock = start + len(p)
        clocks.append(clock)
        for s, on in alarms(store).items():
            if on:
                hits[s].append(clock)
    return clocks, hits


DETECTION_SEEDS = (0, 1, 2, 3, 4)  # shifted streams (the first 3 with --quick)
FALSE_ALARM_SEEDS = (100, 101, 102, 103, 104)  # unshifted streams


def detection_tables(quick: bool) -> tuple[str, str]:
    seeds = DETECTION_SEEDS[:3] if quick else DETECTION_SEEDS
    fa_seeds = FALSE_ALARM_SEEDS[:3] if quick else FALSE_ALARM_SEEDS
    window, every, warm, after = 500.0, 25, 600, 2000
    rows: list[tuple[str, ...]] = []
    fa_rows: list[tuple[str, ...]] = []
    for ds in DATASETS:
        setup = make_setup(ds)
        before_onset: dict[str, list[AlarmBook]] = {s: [] for s in SIGNALS}
        for shift in SHIFTS:
            if shift == "none":
                continue
            books: dict[str, list[AlarmBook]] = {s: [] for s in SIGNALS}
            for seed in seeds:
                clocks, hits = run_stream(setup, shift, np.random.default_rng(seed), warm=warm, after=after, window=window, every=every)
                for s in SIGNALS:
                    books[s].append(book_alarms(clocks, hits[s], warm))
            if not before_onset[SIGNALS[0]]:
                # a seed's unshifted events are its generator's first draws, the same for every shift:
                # its evaluations before the onset are counted once, from the first shifted stream
                for s in SIGNALS:
                    before_onset[s] += books[s]
            rows.append((ds, SHIFTS[shift], *(delay_cell(books[s], after, s not in NO_RULE) for s in SIGNALS)))
        # false alarms: long unshifted streams, every evaluation of them (the first `warm` events too)
        n_long = 3000 if quick else 10_000
        unshifted: dict[str, list[AlarmBook]] = {s: [] for s in SIGNALS}
        for seed in fa_seeds:
            clocks, hits = run_stream(setup, "none", np.random.default_rng(seed), warm=warm, after=n_long, window=window, every=every)
            for s in SIGNALS:
                unshifted[s].append(book_alarms(clocks, hits[s], None))
        fa_rows.append((ds, f"unshifted: {len(fa_seeds)} x {warm + n_long:,} events", *(false_alarm_cell(unshifted[s]) for s in SIGNALS)))
        fa_rows.append((ds, f"shifted, before the onset: {len(seeds)} x {warm:,} events",
                        *(false_alarm_cell(before_onset[s]) for s in SIGNALS)))
    header = ("dataset", "shift", *(f"{s} (estimator, no shipped rule)" if s in NO_RULE else s for s in SIGNALS))
    delay_md = _table(rows, header)
    fa_md = _table(fa_rows, ("dataset", "streams", *header[2:]))
    return delay_md, fa_md


# -- 2. accuracy estimation error ------------------------------------------------------------------
def estimation_table(quick: bool) -> tuple[str, dict[str, dict[str, float]]]:
    seeds = 10 if quick else 40
    n = 500
    rows: list[tuple[str, ...]] = []
    summary: dict[str, dict[str, float]] = {}
    for ds in DATASETS:
        setup = make_setup(ds)
        cov_err: dict[str, list[float]] = {"cbpe": [], "atc": [], "bbse": []}
        for shift in SHIFTS:
            errs: dict[str, list[float]] = {"cbpe": [], "atc": [], "bbse": []}
            accs = []
            for seed in range(seeds):
                rng = np.random.default_rng(1000 + seed)
                x, y = draw(setup, shift, n, rng)
                p = setup.predict(x)
                det = create("accuracy_estimation", reference=setup.reference, params={"window_s": 1e9})
                det.update(Batch.from_arrays(np.zeros((n, 1)), p))
                true = float(np.mean(p.argmax(axis=1) == y))
                accs.append(true)
                for est, val in det.estimates().items():
                    errs[est].append(abs(val - true))
                    if shift in COVARIATE:
                        cov_err[est].append(abs(val - true))
            rows.append((ds, SHIFTS[shift], f"{np.mean(accs):.3f}", *(f"{np.mean(errs[e]):.3f}" for e in ("cbpe", "atc", "bbse"))))
        summary[ds] = {e: float(np.mean(v)) for e, v in cov_err.items()}
        rows.append((ds, "**mean over covariate shifts**", "", *(f"**{summary[ds][e]:.3f}**" for e in ("cbpe", "atc", "bbse"))))
    md = _table(rows, ("dataset", "shift", "true accuracy", "abs. error CBPE", "abs. error ATC-NE", "abs. error BBSE"))
    return md, summary


# -- 3. bias of calibration-error estimators -------------------------------------------------------
ECE_EW = "ECE (L1), 15 equal-width bins, plug-in"
L2_PLUGIN = "L2 CE, 15 equal-mass bins, plug-in"
L2_DEBIASED = "L2 CE, 15 equal-mass bins, debiased (Kumar 2019)"
BIAS_SEED = 7


def large_sample_truths(conf: np.ndarray, accuracy: np.ndarray, n_bins: int = cal.ECE_BINS) -> dict[str, float]:
    """What each estimator of :func:`ece_bias_table` converges to with unlimited labels: its own
    binned quantity on the population, computed from the true probability of a right answer
    (``accuracy``, no sampling of labels) on a very large sample of confidences ``conf``.

    The ECE's truth is the L1 gap on 15 equal-width bins; both L2 estimators target the L2 gap on
    15 equal-mass bins (Kumar et al. 2019's debiasing removes the plug-in's upward bias, it does
    not change the quantity), which is at most the unbinned L2 calibration error
    ``sqrt(E[(c - acc(c))^2])``, returned as ``"unbinned L2 CE"`` for reference.
    """
    c = np.asarray(conf, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    # the plug-in estimators given the true probability of a right answer in place of drawn labels
    # have no sampling error left in the labels: on this many rows they are the population's values
    l2_binned = cal.plugin_calibration_error(c, acc, n_bins)
    return {
        ECE_EW: cal.ece_equal_width(c, acc, n_bins),
        L2_PLUGIN: l2_binned,
        L2_DEBIASED: l2_binned,
        "unbinned L2 CE": float(np.sqrt(np.mean((c - acc) ** 2))),
    }


def ece_bias_table(quick: bool) -> str:
    """Confidences resampled from the digits model's reference outputs; correctness drawn from a
    known calibration curve (calibrated, or over-confident by temperature 2 on the logit scale).
    Each estimator's bias is taken against its own target (:func:`large_sample_truths`): an L2
    figure is never compared with the ECE's truth, nor a binned one with the unbinned error."""
    setup = make_setup("digits")
    conf_pool = setup.reference.scores.max(axis=1)
    reps = 200 if quick else 1000
    rows: list[tuple[str, ...]] = []

    def curves(c: np.ndarray, kind: str) -> np.ndarray:
        if kind == "calibrated":
            return c
        logit = np.log(c / np.maximum(1 - c, 1e-12))
        return 1.0 / (1.0 + np.exp(-logit / 2.0))  # true accuracy lower than confidence

    estimators: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        ECE_EW: cal.ece_equal_width,
        L2_PLUGIN: cal.plugin_calibration_error,
        L2_DEBIASED: cal.debiased_calibration_error,
    }
    rng = np.random.default_rng(BIAS_SEED)
    for kind in ("calibrated", "over-confident (T=2)"):
        big = rng.choice(conf_pool, size=2_000_000)
        truth = large_sample_truths(big, curves(big, kind))
        for est_name, fn in estimators.items():
            cells = []
            for n in (100, 500, 2000):
                vals = []
                for _ in range(reps):
                    c = rng.choice(conf_pool, size=n)
                    y = (rng.random(n) < curves(c, kind)).astype(np.float64)
                    vals.append(fn(c, y))
                vals_a = np.array(vals)
                cells.append(f"{vals_a.mean() - truth[est_name]:+.3f} (sd {vals_a.std():.3f})")
            target = "15-bin ECE" if est_name == ECE_EW else f"15-equal-mass-bin L2 CE (unbinned {truth['unbinned L2 CE']:.3f})"
            rows.append((kind, est_name, f"{truth[est_name]:.3f}: {target}", *cells))
    return _table(rows, ("model", "estimator", "its target on 2,000,000 rows", "bias at 100 labels", "bias at 500", "bias at 2,000"))


# -- 4. power of the over-confidence test ------------------------------------------------------------
POWER_SEED = 11


def power_table(quick: bool) -> str:
    """Power of the shipped test next to the best power any level-1% test can have, and next to
    the previous test (errors counted alike), on three kinds of over-confidence.

    The bound is the Neyman-Pearson likelihood-ratio test of "calibrated" against the one
    alternative simulated in its row ("right with probability confidence minus 0.05"): it knows the
    gap, which no monitor does, so no test can beat it. Its power is computed per window from the
    window's own confidences (normal approximation of the LR statistic, n = 500) and averaged.
    The two other alternatives have the same 5-point mean gap: a temperature (10 classes, the
    other nine sharing the rest equally, the truth ``softmax(z / T)`` of the model's logits ``z``)
    and a shift of the logit of the confidence (what counting errors alike is most powerful
    against). Both tests see the same windows.
    """
    from statistics import NormalDist

    reps = 1000 if quick else 4000
    gap_alt = 0.05
    z = NormalDist().inv_cdf(0.99)
    edges = cal.fine_confidence_edges()
    weights = cal.overconfidence_weights(edges)

    def temperature(c: np.ndarray, t: float) -> np.ndarray:
        return 1.0 / (1.0 + 9.0 * np.clip((1.0 - c) / (9.0 * c), 0.0, None) ** (1.0 / t))

    def logit_shift(c: np.ndarray, s: float) -> np.ndarray:
        return 1.0 / (1.0 + (1.0 - c) / c * np.exp(s))

    def five_points(truth: Callable[[np.ndarray, float], np.ndarray], sample: np.ndarray, hi: float) -> float:
        lo = 0.0 if truth is logit_shift else 1.0
        for _ in range(60):  # the parameter whose mean gap is 5 points, by bisection
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if float(np.mean(sample - truth(sample, mid))) < gap_alt else (lo, mid)
        return 0.5 * (lo + hi)

    rows: list[tuple[str, ...]] = []
    rng = np.random.default_rng(POWER_SEED)
    for a, b in ((3.0, 1.5), (6.0, 1.5), (12.0, 1.5), (20.0, 1.5), (40.0, 1.5)):
        mean_conf = 0.1 + 0.9 * a / (a + b)
        sample = 0.1 + 0.9 * rng.beta(a, b, 200_000)
        t_alt, s_alt = five_points(temperature, sample, 10.0), five_points(logit_shift, sample, 5.0)
        truths: dict[str, Callable[[np.ndarray], np.ndarray]] = {
            "calibrated": lambda c: c,
            "additive": lambda c: np.clip(c - gap_alt, 0.0, 1.0),
            "temperature": lambda c: temperature(c, t_alt),
            "logit": lambda c: logit_shift(c, s_alt),
        }
        shipped: dict[str, float] = {}
        flat: dict[str, float] = {}
        bound = []
        for kind, truth in truths.items():
            hits = hits_flat = 0
            runs = 5 * reps if kind == "calibrated" else reps  # false-alarm rates near 0.01 need more windows
            for _ in range(runs):
                c = 0.1 + 0.9 * rng.beta(a, b, 500)
                y = rng.random(500) < truth(c)
                hits += cal.weighted_overconfidence_pvalue(*cal.reliability_sums(c, y, edges), weights) < 0.01
                hits_flat += cal.overconfidence_pvalue(c.sum(), (c * c).sum(), (c**3).sum(), float(y.sum())) < 0.01
                if kind == "additive":
                    q = np.clip(c - gap_alt, 1e-9, 1 - 1e-9)
                    w = np.log(q / c) - np.log((1 - q) / (1 - c + 1e-12))  # LR weight of a right answer
                    m0, s0 = float((c * w).sum()), float(np.sqrt((c * (1 - c) * w * w).sum()))
                    m1, s1 = float((q * w).sum()), float(np.sqrt((q * (1 - q) * w * w).sum()))
                    # w < 0 (a right answer favours calibration): the LR test rejects when sum(y w) >= m0 + z s0
                    bound.append(1.0 - NormalDist(m1, s1).cdf(m0 + z * s0))
            shipped[kind], flat[kind] = hits / runs, hits_flat / runs
        rows.append((f"{mean_conf:.2f}", f"{shipped['calibrated']:.4f}", f"{shipped['additive']:.3f}", f"{np.mean(bound):.3f}",
                     f"{flat['calibrated']:.4f} / {flat['additive']:.3f}",
                     f"{shipped['temperature']:.3f} / {flat['temperature']:.3f} (T = {t_alt:.2f})",
                     f"{shipped['logit']:.3f} / {flat['logit']:.3f}"))
    return _table(rows, ("mean confidence", "flagged when calibrated (target <= 0.01)", "flagged with a 5-point gap (target >= 0.9)",
                         "best power any 1% test can have (Neyman-Pearson, knows the gap)",
                         "previous test (errors counted alike): calibrated / 5-point gap",
                         "5-point gap from a temperature: shipped / previous", "5-point gap from a logit shift: shipped / previous"))


# -- 5. cost per event ---------------------------------------------------------------------------------
def cost_table(quick: bool) -> tuple[str, str]:
    """Introduction and table of the cost section (see benchmarks/_confidence_cost.py)."""
    from _confidence_cost import cost_table as measure

    return measure(quick, ISSUE_DETECTORS, _table)


# -- 6. the shipped rule packs, end to end ----------------------------------------------------------
RULE_PACK_HOURS = (1.0, 2.0)  # unshifted, then shifted (event time, 1 event per second)
RULE_PACK_SEEDS = (0, 1)  # numpy default_rng of each stream (the first alone with --quick)
RULE_PACKS = ("confidence.yml", "core.yml")
ISSUE_DETECTORS = ("confidence", "confidence_drift", "prediction_drift", "accuracy_estimation", "calibration", "segments",
                   "output_repeats")


def can_have_series(expr: str, present: set[str]) -> bool:
    """Whether a PromQL expression can return a series when only the metric names in ``present``
    ever have one: ``or`` needs either side, ``unless`` its left side, ``absent()`` nothing, every
    other operator, aggregation and function all of its vector operands."""
    from monitor.promql import ast as A

    def can(n: A.Node) -> bool:
        if isinstance(n, A.VectorSel):
            return n.name in present
        if isinstance(n, A.MatrixSel):
            return n.vs.name in present
        if isinstance(n, (A.Paren, A.Unary, A.Subquery)):
            return can(n.expr)
        if isinstance(n, A.Binary):
            if n.op == "or":
                return can(n.lhs) or can(n.rhs)
            if n.op == "unless":
                return can(n.lhs)
            return can(n.lhs) and can(n.rhs)
        if isinstance(n, A.Aggregate):
            return can(n.expr)
        if isinstance(n, A.Call):
            return n.func in ("absent", "absent_over_time") or all(can(a) for a in n.args)
        return True  # number and string literals

    return can(A.parse_expr(expr))


def rules_that_cannot_fire(rules: list[tuple[str, str, float]], present: set[str], after_s: float) -> dict[str, str]:
    """Alert name -> why it cannot fire after the onset of these streams, for the rules
    ``(alert, expr, for_s)`` of the packs run: its expression needs a metric that no stream ever
    exported (``present``: every metric name the rule engine held at any point of any stream), or
    its ``for:`` is longer than the stream after the onset. Such a rule is neither silent nor a
    miss on these streams, and the tables say so."""
    from monitor.promql import ast as A

    out: dict[str, str] = {}
    for alert, expr, for_s in rules:
        if not can_have_series(expr, present):
            names = sorted({n.name if isinstance(n, A.VectorSel) else n.vs.name
                            for n in A.walk(A.parse_expr(expr)) if isinstance(n, (A.VectorSel, A.MatrixSel))} - present)
            out[alert] = f"needs {', '.join(f'`{m}`' for m in names)}"
        elif for_s > after_s:
            out[alert] = f"`for:` {for_s / 60:g} min, longer than the {after_s / 60:g} min after the onset"
    return out


@dataclass(frozen=True)
class AlertBook:
    """The alerts of one stream through the rule engine, split at the onset.

    Attributes
    ----------
    fired
        Alert name -> minutes from the onset to its first firing whose condition began to hold
        after the onset (its ``pending`` state, or the firing itself for a rule without ``for:``).
    early
        One name per firing whose condition already held before the onset: fired before it, or
        fired after it from a ``pending`` state entered before it (the ``for:`` ran out after the
        onset, but what set it off was unshifted data). These are false alarms, never detections.
    """

    fired: dict[str, float]
    early: list[str]


def book_transitions(transitions: list[tuple[str, tuple[tuple[str, str], ...], str, float]], onset: float) -> AlertBook:
    """Book the rule engine's transitions ``(alertname, labels, to_state, time)`` of one stream
    (see :class:`AlertBook`); each alert instance (name and labels) is followed on its own."""
    since: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    fired: dict[str, float] = {}
    early: list[str] = []
    for name, labels, to, at in sorted(transitions, key=lambda tr: tr[3]):
        key = (name, labels)
        if to == "pending":
            since[key] = at
        elif to == "firing":
            began = since.pop(key, at)
            if began < onset:
                early.append(name)
            else:
                fired.setdefault(name, (at - onset) / 60.0)
        elif to == "inactive":
            since.pop(key, None)
        else:
            raise ValueError(f"transition of {name} to {to!r}: the rule engine's states are pending, firing, inactive")
    return AlertBook(fired=fired, early=early)


def run_rule_packs(setup: Setup, shift: str, seed: int, *, label_delay_s: float = 60.0,
                   hours: tuple[float, float] = RULE_PACK_HOURS, packs: tuple[str, ...] = RULE_PACKS,
                   kinds: tuple[str, ...] | None = ISSUE_DETECTORS, seen: set[str] | None = None,
                   rules_run: list[tuple[str, str, float]] | None = None) -> tuple[dict[str, float], list[str], tuple[float, float]]:
    """Stream through a :class:`~monitor.Monitor` with the default detectors of this issue (or, with
    ``kinds`` None, every default detector but probing: see :data:`ALL_PACKS`) and
    the given shipped rule packs (by
    default those that watch the model's outputs, ``rules/confidence.yml`` and ``rules/core.yml``),
    ``for:`` durations as shipped, labels for every row ``label_delay_s`` later (delivered every
    10 s). Returns the alerts that fired from a condition that began after the onset (name ->
    minutes after it), the names of any whose condition held before it (:func:`book_transitions`),
    and the model's true accuracy before and after the onset. ``seen`` (if given) gets every metric
    name the rule engine held at any flush, ``rules_run`` the packs' alerting rules
    ``(alert, expr, for_s)``: see :func:`rules_that_cannot_fire`."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.config import MonitorConfig, RulesConfig
    from monitor.detectors.defaults import default_detectors
    from monitor.schema import OutputSpec, Schema

    rules_dir = Path(__file__).resolve().parent.parent / "rules"
    files = tuple(str(rules_dir / f) for f in packs)
    output = OutputSpec("probabilities")
    detectors = tuple(d for d in default_detectors(output, setup.reference)
                      if (d.kind in kinds if kinds is not None else d.kind != "probing"))
    cfg = MonitorConfig(model=setup.name, schema=Schema.numeric(setup.reference.numeric_names), output=output,
                        detectors=detectors, rules=RulesConfig(files=files, interval_s=30.0, log_alerts=False))
    mon = Monitor(config=cfg, reference=setup.reference, registry=CollectorRegistry(), start_worker=False, live=False)
    rng = np.random.default_rng(seed)
    warm, after = int(hours[0] * 3600), int(hours[1] * 3600)
    x0, y0 = draw(setup, "none", warm, rng)
    x1, y1 = draw(setup, shift, after, rng)
    x, y = np.concatenate([x0, x1]), np.concatenate([y0, y1])
    probs = setup.predict(x)
    right = probs.argmax(axis=1) == y
    accuracy = (float(right[:warm].mean()), float(right[warm:].mean()))
    t0 = 1_700_000_000.0
    onset = t0 + warm
    transitions: list[tuple[str, tuple[tuple[str, str], ...], str, float]] = []

    def listen(tr: object) -> None:
        d = tr.to_dict()  # type: ignore[attr-defined]
        transitions.append((str(d["alertname"]), tuple(sorted(d["labels"].items())), str(d["to"]), float(d["time"])))

    mon.transition_listeners.append(listen)
    delay = int(label_delay_s)
    try:
        for i in range(len(y)):
            mon.observe(x[i], probs[i], timestamp=t0 + i, request_id=str(i))
            if i % 10 == 9 and i >= delay:
                ids = range(i - delay - 9, i - delay + 1)
                mon.feedback([str(j) for j in ids], [int(y[j]) for j in ids], timestamp=t0 + i)
            if i % 500 == 499:
                mon.flush()
                if seen is not None and mon.rules is not None:
                    seen.update(mon.rules.storage.metric_names())
        mon.flush()
        if mon.rules is not None:
            if seen is not None:
                seen.update(mon.rules.storage.metric_names())
            if rules_run is not None:
                rules_run[:] = [(r.alert, r.expr, r.for_s) for g in mon.rules.groups for r in g.rules if hasattr(r, "alert")]
    finally:
        mon.close()
    book = book_transitions(transitions, onset)
    return book.fired, book.early, accuracy


#: every shipped pack but probing's: these streams resample a pool, so every query repeats an
#: earlier one exactly, which is what that pack is for (benchmarks/eval_probing.py evaluates it).
#: The PCA drift detector's directions are fitted on the training half (``pca_fit``), as a user with
#: a small reference would: fitted on the pool itself (ten fold PCAs, each calibrated on the fold
#: it was not fitted on), nine in ten of the stream's rows would meet a PCA fitted on them, which
#: reconstruct better than the rows it is calibrated on, and a shift would first have to make up
#: that difference.
ALL_PACKS = ("confidence.yml", "core.yml", "drift.yml", "data_quality.yml")


def pool_reference(setup: Setup) -> Setup:
    """The same model and streams with the pool itself as the reference: the unshifted streams are
    then draws from exactly the population the reference describes, as the input-drift and
    data-quality detectors assume (see :func:`rule_pack_table`)."""
    from dataclasses import replace

    ref = Reference.from_arrays(setup.pool_x, scores=setup.predict(setup.pool_x), labels=setup.pool_y,
                                pca_fit=setup.train_x)
    return replace(setup, reference=ref)


def rule_pack_table(quick: bool, *, all_packs: bool = False) -> tuple[str, int]:
    seeds = RULE_PACK_SEEDS[:1] if quick else RULE_PACK_SEEDS
    rows: list[tuple[str, ...]] = []
    false_alarms = 0
    unreachable: dict[tuple[str, str], list[str]] = {}
    packs, kinds = (ALL_PACKS, None) if all_packs else (RULE_PACKS, ISSUE_DETECTORS)
    for ds in DATASETS:
        setup = pool_reference(make_setup(ds)) if all_packs else make_setup(ds)
        seen: set[str] = set()
        rules_run: list[tuple[str, str, float]] = []
        for shift in SHIFTS:
            per_alert: dict[str, list[float]] = {}
            early_names: set[str] = set()
            drops: list[float] = []
            for seed in seeds:
                fired, early, (before, after) = run_rule_packs(setup, shift, seed, packs=packs, kinds=kinds, seen=seen,
                                                               rules_run=rules_run)
                drops.append(before - after)
                early_names |= set(early)
                false_alarms += len(early) + (len(fired) if shift == "none" else 0)
                for name, minutes in fired.items():
                    per_alert.setdefault(name, []).append(minutes)
            cell = ", ".join(f"{n} ({np.median(m):.0f} min, {len(m)}/{len(seeds)})" for n, m in sorted(per_alert.items(), key=lambda kv: np.median(kv[1])))
            rows.append((ds, SHIFTS[shift], f"{100 * np.mean(drops):+.1f}", cell or "none", ", ".join(sorted(early_names)) or "none"))
        for alert, why in rules_that_cannot_fire(rules_run, seen, RULE_PACK_HOURS[1] * 3600).items():
            unreachable.setdefault((alert, why), []).append(ds)
    table = _table(rows, ("dataset", "stream", "accuracy lost after the onset (points)",
                          "alerts firing after the onset (median minutes after it, seeds)",
                          "alerts whose condition held before the onset (false alarms)"))
    table += "\n\n" + unreachable_note(unreachable, len(DATASETS))
    return table, false_alarms


def unreachable_note(unreachable: dict[tuple[str, str], list[str]], n_datasets: int) -> str:
    """The sentence under a rule table naming the packs' rules that could not fire on its streams."""
    if not unreachable:
        return "Every rule of these packs could fire on these streams."
    items = [f"{alert} ({why}{'' if len(dss) == n_datasets else ': ' + ', '.join(dss)})"
             for (alert, why), dss in sorted(unreachable.items())]
    return ("Rules of these packs that **cannot fire** on these streams, so neither silent nor missed here (each "
            "needs a metric that no stream exported, or waits a `for:` longer than the stream after the onset): "
            + "; ".join(items) + ".")


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and shorter streams (smoke run)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="markdown output file")
    sections = ("detection", "estimation", "bias", "power", "cost", "rules", "all_rules")
    ap.add_argument("--only", choices=sections, action="append")
    args = ap.parse_args()
    only = set(args.only or sections)
    parts = [
        "# Confidence, calibration and accuracy estimation: evaluation",
        "",
        "Generated by `python benchmarks/eval_confidence.py`" + (" --quick" if args.quick else "") + ". "
        "Model: standardised logistic regression (scikit-learn defaults) trained on half of each dataset; "
        "a quarter is the reference, the streams resample the last quarter. Shifts: " +
        "; ".join(f"`{k}` = {v}" for k, v in SHIFTS.items()) + ".",
    ]
    t_start = time.time()
    if "detection" in only:
        delay_md, fa_md = detection_tables(args.quick)
        parts += ["", "## Detection delay of the label-free signals",
                  "",
                  "Events after the onset until the signal's rule condition first holds after it (median over seeds, "
                  "detected/seeds; \"> 2000\" when fewer than half of the seeds detected within the 2,000 shifted events), "
                  f"window 500 events, evaluated every 25 events; 600 unshifted events before the onset; seeds "
                  f"{', '.join(map(str, DETECTION_SEEDS[:3] if args.quick else DETECTION_SEEDS))} of numpy's default_rng. "
                  "An evaluation counts as after the onset once it has seen a shifted event; a condition holding "
                  "before that is a false alarm, never a detection, and is stated in the cell (and counted in the next "
                  "table) when it happened. The CBPE column is an estimator that no shipped rule tests "
                  "(ModelEstimatedAccuracyDrop reads ATC's estimate): it is shown for comparison, and \"not reached\" "
                  "there says its estimate never fell 5 points below the reference accuracy, not that an alert was missed.",
                  "", delay_md,
                  "", "## False alarms",
                  "", "Evaluations (every 25 events) at which a rule condition held, without the rules' `for:`, out of "
                  "all evaluations: every evaluation of the unshifted streams (their first 600 events included; seeds "
                  f"{', '.join(map(str, FALSE_ALARM_SEEDS[:3] if args.quick else FALSE_ALARM_SEEDS))}), and those of the "
                  "shifted streams of the previous table made before their onset (a seed's 600 unshifted events are the "
                  "same draws whatever the shift that follows, so they are counted once per seed; the delay table "
                  "repeats an alarm among them on every shift of that seed).",
                  "", fa_md]
    if "estimation" in only:
        est_md, summary = estimation_table(args.quick)
        ok = [ds for ds, s in summary.items() if min(s["cbpe"], s["atc"]) <= 0.05]
        parts += ["", "## Accuracy estimated without labels",
                  "", "Mean absolute error against the true accuracy of windows of 500 rows; "
                  f"{10 if args.quick else 40} windows per row, numpy default_rng(1000 + i) for window i.", "", est_md, "",
                  f"Target (within 5 points under the covariate shifts on at least 2 of 3 datasets, best of CBPE/ATC): "
                  f"{'met' if len(ok) >= 2 else 'NOT met'} ({', '.join(ok) or 'none'})."]
    if "bias" in only:
        parts += ["", "## Bias of the calibration-error estimators", "",
                  "Mean estimate minus the quantity that estimator targets, computed on 2,000,000 rows from the true "
                  "probability of a right answer (no labels drawn): the 15-bin equal-width ECE (an L1 gap) for the ECE, "
                  "the L2 gap on 15 equal-mass bins for both L2 estimators (the unbinned L2 calibration error, which "
                  "binning cannot exceed, in brackets). The ECE and the L2 figures are different quantities on "
                  "different scales: compare each estimator's bias with its own target only. Spread (sd) across "
                  f"{200 if args.quick else 1000} repetitions per cell; numpy default_rng({BIAS_SEED}).", "",
                  ece_bias_table(args.quick)]
    if "power" in only:
        parts += ["", "## Over-confidence test at 500 labels", "",
                  f"Share of windows with `monitor_overconfidence_pvalue < 0.01` (the default alert's test; numpy default_rng({POWER_SEED})); "
                  "confidences on [0.1, 1], right with probability confidence minus the gap (an additive gap: "
                  "the error rate of the most confident rows is multiplied most). The fourth column is "
                  "the power of the most powerful level-1% test against exactly this alternative (the "
                  "Neyman-Pearson likelihood-ratio test, which knows the gap and its shape: no monitor does), "
                  "computed per window and averaged: where it is below 0.9, no test reaches the target at 500 "
                  "labels. The shipped test counts the window's wrong answers weighted by confidence bin (an "
                  "error at 0.999 weighs 3.5 at 0.9; exact null distribution, "
                  "`monitor.stats.calibration.weighted_overconfidence_pvalue`); the previous one counted them "
                  "alike (the score test of a logit shift, Edgeworth-corrected). The last two columns give both "
                  "tests the same 5-point mean gap made differently: by a temperature (10 classes, the model's "
                  "logits divided by T give the truth) and by a shift of the confidence's logit, the alternative "
                  "against which counting errors alike is the most powerful test. Calibrated rates are over "
                  f"{5 * (1000 if args.quick else 4000):,} windows (Monte-Carlo standard error "
                  f"{np.sqrt(0.01 * 0.99 / (5 * (1000 if args.quick else 4000))):.4f} at 0.01), powers over "
                  f"{1000 if args.quick else 4000:,} (at most {0.5 / np.sqrt(1000 if args.quick else 4000):.3f}); "
                  "the bound uses a normal approximation of the likelihood ratio, so near 1 the simulated power "
                  "can exceed it by that approximation's error.", "",
                  power_table(args.quick)]
    if "rules" in only:
        table, false_alarms = rule_pack_table(args.quick)
        parts += ["", "## The shipped rule packs on these streams", "",
                  f"Each stream runs through a `Monitor` with this issue's default detectors and the packs that watch "
                  f"the model's outputs (`rules/{RULE_PACKS[0]}`, `rules/{RULE_PACKS[1]}`) with their shipped `for:` "
                  f"durations, evaluated every 30 s of event time (seeds {', '.join(map(str, RULE_PACK_SEEDS[:1] if args.quick else RULE_PACK_SEEDS))}): {RULE_PACK_HOURS[0]:g} h unshifted, then "
                  f"{RULE_PACK_HOURS[1]:g} h shifted (1 event per second), every row labelled 60 s later. Alerts that "
                  f"reached firing, with the minutes from the onset (the rules' `for:` included); an alert that fired "
                  f"before the onset, or after it from a `pending` state entered before it, is a false alarm (last "
                  f"column), never a detection. The input-drift and "
                  f"data-quality packs are left out here on purpose: these streams resample pools of 45 to 450 rows, "
                  f"and a window of thousands of draws from a few dozen rows is, correctly, not the population the "
                  f"reference was drawn from (benchmarks/eval_drift.py evaluates those detectors on their own streams; the "
                  f"next table runs them with the pool as the reference).",
                  "", table, "",
                  f"Alerts on the unshifted streams and before the onsets: **{false_alarms}**."]
    if "all_rules" in only:
        table, false_alarms = rule_pack_table(args.quick, all_packs=True)
        parts += ["", "## Every shipped pack, the pool as the reference", "",
                  f"The same streams through a `Monitor` with every default detector but probing (input drift, "
                  f"multivariate PCA drift, data quality and output repeats besides this issue's) and every shipped pack but "
                  f"probing's ({', '.join(f'`rules/{p}`' for p in ALL_PACKS)}), with one change: the reference is "
                  f"the pool the streams resample (its rows, the model's outputs on them and their labels) instead of "
                  f"the other held-out quarter, so that an unshifted window is drawn from exactly the population the "
                  f"reference describes, as the input detectors assume. The probing pack is left out because "
                  f"resampling makes every query an exact repeat of an earlier one, the pattern that pack is for "
                  f"(benchmarks/eval_probing.py evaluates it). The PCA drift detector takes its directions from the "
                  f"training half (`pca_fit`, `monitor reference build --pca-fit`), as a user with a reference of a "
                  f"few dozen rows would, and calibrates on every pool row: fitted on the pool itself (ten fold PCAs, each "
                  f"calibrated on the fold it was not fitted on), nine in ten of the stream's rows would meet a PCA fitted "
                  f"on them, which reconstruct better than the rows it calibrates on, so a shift would first have to make up that difference. Same timing as above.",
                  "", table, "",
                  f"Alerts on the unshifted streams and before the onsets: **{false_alarms}**."]
    if "cost" in only:
        intro, table = cost_table(args.quick)
        parts += ["", "## Cost in the worker", "", intro, "", table]
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    footer = (f"_Last run: {', '.join(sorted(only))}; run time {time.time() - t_start:.0f} s; load average at the end "
              f"{load:.1f} on {os.cpu_count()} cores (timings are inflated when the machine is shared)._")
    from _harness import machine

    text = _stamp_sections("\n".join(parts), f"_Section run {time.strftime('%Y-%m-%d')} on {machine()}, load average "
                                                f"{load:.1f} at the end of the run{' (--quick)' if args.quick else ''}._")
    if args.only and args.out.exists():
        text = _splice(args.out.read_text(), text)
    text = text.rstrip("\n") + "\n\n" + footer + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


#: what a section run before sections were dated says about itself
UNDATED = "_Section run: not recorded (before 2026-12-03; the file's git history tells when)._"


def _stamp_sections(text: str, stamp: str) -> str:
    """``text`` with ``stamp`` (when and where the run was) at the end of each ``## `` section:
    a results file spliced from several runs says which figures come from which machine."""
    head, *secs = text.split("\n## ")
    return "\n## ".join([head, *(sec.rstrip("\n") + "\n\n" + stamp + "\n" for sec in secs)])


def _splice(old: str, new: str) -> str:
    """The old results with the sections re-run now (same ``## `` titles) replaced in place; an old
    section without its run's stamp (:func:`_stamp_sections`) is marked :data:`UNDATED`."""
    def sections(text: str) -> tuple[str, dict[str, str]]:
        head, *rest = text.split("\n## ")
        return head, {r.split("\n", 1)[0]: r for r in rest}

    old_head, old_secs = sections("\n".join(ln for ln in old.splitlines() if not ln.startswith("_Last run") and not ln.startswith("_Run time")))
    _, new_secs = sections(new)
    old_secs = {title: body if "\n_Section run" in body else body.rstrip("\n") + "\n\n" + UNDATED + "\n"
                for title, body in old_secs.items()}
    merged: dict[str, str] = {}
    pending = list(new_secs)  # a section new to the file goes after the new section before it
    for title, body in old_secs.items():
        merged[title] = new_secs.get(title, body)
        if title in new_secs:
            i = pending.index(title)
            for fresh in pending[i + 1:]:
                if fresh in old_secs:
                    break
                merged[fresh] = new_secs[fresh]
    for title in pending:
        merged.setdefault(title, new_secs[title])
    return "\n## ".join([old_head.rstrip("\n") + "\n", *(body.rstrip("\n") + "\n" for body in merged.values())])


if __name__ == "__main__":
    main()
