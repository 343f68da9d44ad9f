"""rules/confidence.yml: valid for promtool, names only catalog metrics, fires on shifted seeded
streams and stays silent on unshifted ones (evaluated by the agent's own rule evaluator over the
metric store's samples, `for:` durations included)."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING, Callable

import numpy as np
import yaml
import pytest

from monitor import catalog
from monitor.batch import Batch, LabeledBatch
from monitor.detectors.registry import create
from monitor.reference import Reference
from tests.conftest import REPO_ROOT, require_binary

if TYPE_CHECKING:
    from monitor.promql import SeriesStore

RULES = REPO_ROOT / "rules" / "confidence.yml"
K = 10
HOUR = 3600.0


def test_promtool_accepts_the_rules() -> None:
    promtool = require_binary("promtool")
    res = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    written = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert written >= 14 and f"SUCCESS: {written} rules found" in res.stdout


def test_rules_name_only_catalog_metrics_and_carry_the_required_annotations() -> None:
    import yaml

    doc = yaml.safe_load(RULES.read_text())
    exposed = {n for spec in catalog.CATALOG.values() for n in spec.series_names()}
    for rule in doc["groups"][0]["rules"]:
        for name in re.findall(r"\bmonitor_[a-z_]+", rule["expr"]):
            assert name in exposed, f"{rule['alert']}: {name} is not a catalog metric"
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])


# -- seeded streams ---------------------------------------------------------------------------------
def outputs(rng: np.random.Generator, n: int, *, a: float = 20.0, prior: np.ndarray | None = None, gap: float = 0.0,
            collapse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated 10-class model (see tests/test_confidence_detectors.py), optionally
    over-confident by ``gap``, less confident (``a``), label-shifted (``prior``) or collapsed."""
    prior = np.full(K, 1.0 / K) if prior is None else prior
    y = rng.choice(K, size=n, p=prior)
    conf = 0.1 + 0.9 * rng.beta(a, 1.5, n)
    right = rng.random(n) < np.clip(conf - gap, 0.0, 1.0)
    pred = np.where(right, y, (y + rng.integers(1, K, n)) % K)
    if collapse:
        pred[:] = 3
    probs = np.repeat(((1.0 - conf) / (K - 1))[:, None], K, axis=1)
    probs[np.arange(n), pred] = conf
    return probs, y


def fired(stream: Callable[[np.random.Generator, float, int], tuple[np.ndarray, ...]],
          kinds: tuple[str, ...], reference: Reference, hours: float = 3.0, seed: int = 0,
          window_s: float = 1800.0) -> set[str]:
    """Run a stream (1 row/s, labels at once) through the detectors; scrape the store every 30 s
    of event time into the rule evaluator; return the names of alerts that reached firing.

    A stream returns (outputs, labels, segments) and optionally the input rows (else zeros)."""
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from monitor.store import MetricStore

    rng = np.random.default_rng(seed)
    dets = [create(k, reference=reference, params={"window_s": window_s}) for k in kinds]
    store = MetricStore("m")
    series = SeriesStore(retention_s=2 * HOUR)
    evaluator = RuleEvaluator.from_files([RULES], storage=series, default_interval_s=30.0)
    names: set[str] = set()
    step = 30
    for t0 in range(0, int(hours * HOUR), step):
        probs, y, seg, *inputs = stream(rng, float(t0), step)
        ts = t0 + np.arange(step, dtype=np.float64)
        b = Batch.from_arrays(inputs[0] if inputs else np.zeros((step, 1)), probs, ts=ts, segment=seg)
        lb = LabeledBatch(ts=ts, label_ts=ts, label=y, segment=seg, scores=probs,
                          predicted=None if probs.ndim == 1 else probs.argmax(axis=1))
        for d in dets:
            d.update(b)
            d.update_labels(lb)
            d.advance(float(t0 + step))
            d.export(store)
        now = float(t0 + step)
        series.append_scrape(now, [({**labels, "__name__": name}, value) for name, labels, value in store.samples()])
        evaluator.evaluate(now)
        names |= {a.name for a in evaluator.alerts() if a.state.name.lower() == "firing"}
    return names


CLASSIFIER = ("confidence_drift", "prediction_drift", "accuracy_estimation", "calibration", "segments")


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(42)
    probs, y = outputs(rng, 3000)
    return Reference.from_arrays(np.zeros((3000, 1)), scores=probs, labels=y, classes=[f"c{i}" for i in range(K)])


def segments(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array(["eu", "us", "apac"], dtype=object)[rng.integers(0, 3, n)]


def shifted(after: float = HOUR, **kw: object) -> Callable[[np.random.Generator, float, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    def stream(rng: np.random.Generator, t: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs, y = outputs(rng, n, **(kw if t >= after else {}))  # type: ignore[arg-type]
        return probs, y, segments(rng, n)

    return stream


def test_silent_on_the_unshifted_stream(reference: Reference) -> None:
    assert fired(shifted(), ("confidence", *CLASSIFIER), reference, hours=4.0) == set()


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ({"gap": 0.12}, {"ModelOverconfident", "ModelAccuracyDrop"}),
        ({"a": 4.0}, {"ModelConfidenceDrift", "ModelEstimatedAccuracyDrop", "ModelAccuracyDrop"}),
        ({"prior": np.r_[np.zeros(3), np.full(7, 1 / 7)]}, {"ModelPredictionDrift"}),
        ({"collapse": True}, {"ModelOutputCollapse", "ModelPredictionDrift"}),
    ],
    ids=["overconfident", "confidence-loss", "label-shift", "collapse"],
)
def test_fires_on_shifted_streams(reference: Reference, shift: dict, expected: set[str]) -> None:
    names = fired(shifted(**shift), CLASSIFIER, reference)
    assert expected <= names, f"expected {expected}, fired {names}"


def test_segment_gap_fires(reference: Reference) -> None:
    def stream(rng: np.random.Generator, t: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs, y = outputs(rng, n)
        seg = segments(rng, n)
        if t >= HOUR:  # segment "apac" starts getting 30% of its answers wrong
            bad = (seg == "apac") & (rng.random(n) < 0.3)
            y = np.where(bad, (probs.argmax(axis=1) + 1) % K, y)
        return probs, y, seg

    assert "ModelSegmentGap" in fired(stream, ("segments",), reference)


def test_regression_drift_fires_and_is_silent_unshifted() -> None:
    rng = np.random.default_rng(7)
    ref = Reference.from_arrays(np.zeros((3000, 1)), scores=rng.normal(10.0, 2.0, 3000))

    def stream(shift: float) -> Callable[[np.random.Generator, float, int], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        def gen(rng: np.random.Generator, t: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            pred = rng.normal(10.0 + (shift if t >= HOUR else 0.0), 2.0, n)
            return pred, pred + rng.normal(0.0, 1.0, n), np.full(n, None, dtype=object)

        return gen

    assert fired(stream(0.0), ("regression",), ref) == set()
    assert "RegressionPredictionDrift" in fired(stream(2.0), ("regression",), ref)


def test_repeated_outputs_fire_and_are_silent_unshifted() -> None:
    """A tree-like model whose outputs repeat legitimately (tests/test_confidence_repeats.py):
    silent over 3 hours unshifted; fires once half of its answers are canned (from hour 1)."""
    from tests.test_confidence_repeats import tree_model

    rng = np.random.default_rng(8)
    x = rng.random((5000, 4)) * 10
    ref = Reference.from_arrays(x, scores=tree_model(x, rng))

    def stream(memorised: float) -> Callable[[np.random.Generator, float, int], tuple[np.ndarray, ...]]:
        def gen(rng: np.random.Generator, t: float, n: int) -> tuple[np.ndarray, ...]:
            xs = rng.random((n, 4)) * 10
            probs = tree_model(xs, rng, memorised if t >= HOUR else 0.0)
            return probs, probs.argmax(axis=1), np.full(n, None, dtype=object), xs

        return gen

    assert fired(stream(0.0), ("output_repeats",), ref) == set()
    assert "ModelOutputsRepeated" in fired(stream(0.5), ("output_repeats",), ref)


def _quantile_reference(rng: np.random.Generator) -> Reference:
    x = rng.normal(10.0, 2.0, 3000)
    y = x + rng.normal(0.0, 1.0, 3000)
    return Reference.from_arrays(np.zeros((3000, 1)), scores=x, labels=y)


def test_regression_label_rules_fire_on_shifted_streams_and_are_silent_unshifted() -> None:
    """Quantile outputs (0.1, 0.5, 0.9) of a model whose noise is N(0, 1): silent over 3 hours
    while the noise stays; from hour 1 the noise doubles, so errors grow (MAE x2), the 0.1/0.9
    quantiles stop covering their levels (about 0.26/0.74) and the 80% interval covers ~48%."""
    from monitor.detectors.regression import RegressionDetector
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from monitor.store import MetricStore

    z = 1.2815515655446004  # standard normal 0.9 quantile
    levels = (0.1, 0.5, 0.9)

    def run(noise_after: float, seed: int) -> set[str]:
        rng = np.random.default_rng(seed)
        det = RegressionDetector(_quantile_reference(np.random.default_rng(3)), window_s=1800.0, quantiles=levels)
        store = MetricStore("m")
        series = SeriesStore(retention_s=2 * HOUR)
        evaluator = RuleEvaluator.from_files([RULES], storage=series, default_interval_s=30.0)
        names: set[str] = set()
        for t0 in range(0, int(3 * HOUR), 30):
            ts = t0 + np.arange(30, dtype=np.float64)
            mean = rng.normal(10.0, 2.0, 30)
            sd = noise_after if t0 >= HOUR else 1.0
            y = mean + rng.normal(0.0, sd, 30)
            q = np.stack([mean - z, mean, mean + z], axis=1)  # the quantiles of N(mean, 1)
            det.update(Batch.from_arrays(np.zeros((30, 1)), mean, ts=ts))
            det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=y, segment=None, scores=mean, intervals=q))
            det.advance(float(t0 + 30))
            det.export(store)
            now = float(t0 + 30)
            series.append_scrape(now, [({**lab, "__name__": n}, v) for n, lab, v in store.samples()])
            evaluator.evaluate(now)
            names |= {a.name for a in evaluator.alerts() if a.state.name.lower() == "firing"}
        return names

    regression_label_rules = {"RegressionErrorHigh", "RegressionQuantileMiscalibrated", "RegressionIntervalTooNarrow"}
    for seed in (0, 1):
        assert not run(1.0, seed) & regression_label_rules
        assert regression_label_rules <= run(2.0, seed)


def _rule(name: str) -> dict:
    doc = yaml.safe_load(RULES.read_text())
    return next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == name)


def _windows(mae: np.ndarray, rmse: np.ndarray, n: int, reference_mae: float, reference_rows: int) -> "SeriesStore":
    """One scrape at t=1000 holding each window's regression figures as a model of its own."""
    from monitor.promql import Labels, SeriesStore

    store = SeriesStore(retention_s=HOUR)
    samples = []
    for i in range(len(mae)):
        for metric, value in (("monitor_regression_mae", mae[i]), ("monitor_regression_rmse", rmse[i]),
                              ("monitor_regression_labels_in_window", float(n)),
                              ("monitor_regression_reference_mae", reference_mae),
                              ("monitor_regression_reference_mae_rows", float(reference_rows))):
            samples.append((Labels({"__name__": metric, "model": f"w{i}"}), float(value)))
    store.append_scrape(1000.0, samples)
    return store


@pytest.mark.parametrize("errors", ["student_t3", "lognormal"])
def test_regression_error_rule_ignores_one_large_error_of_a_heavy_tailed_model(errors: str) -> None:
    """RegressionErrorHigh's expression, evaluated by the agent's PromQL engine on 4,000 windows of
    a healthy model (errors as on the reference) and 4,000 of one whose errors doubled, each
    window a series of its own. Heavy-tailed errors: the bare "MAE above 1.5 x the reference's"
    flagged 1-2% of healthy windows of 50 labels (one large error); with its z condition the
    rule flags none of the 4,000 (bound: at most 0.1%), and still most doubled-error windows
    (bound: at least 50% at 50 labels, 90% at 200)."""
    from monitor.promql import Engine

    rng = np.random.default_rng(17)

    def draw(size: tuple[int, int]) -> np.ndarray:
        if errors == "student_t3":
            return rng.standard_t(3, size=size)
        return rng.lognormal(0.0, 1.0, size=size) - np.exp(0.5)

    reference_mae = float(np.abs(draw((1, 400_000))).mean())
    query = Engine().compile(_rule("RegressionErrorHigh")["expr"])
    bare = Engine().compile("monitor_regression_mae > 1.5 * monitor_regression_reference_mae")
    windows = 4_000
    for n, min_power in ((50, 0.5), (200, 0.9)):
        rates = {}
        for scale in (1.0, 2.0):
            e = draw((windows, n)) * scale
            mae, rmse = np.abs(e).mean(axis=1), np.sqrt((e * e).mean(axis=1))
            store = _windows(mae, rmse, n, reference_mae, 400_000)
            rates[scale] = (len(query.instant(store, 1000.0)) / windows, len(bare.instant(store, 1000.0)) / windows)
        assert rates[1.0][0] <= 0.001, (n, rates)
        assert rates[2.0][0] >= min_power, (n, rates)
        if n == 50:
            assert rates[1.0][1] >= 0.005, rates  # what the z condition is for: the bare bound did flag healthy windows


def test_regression_error_rule_fires_on_rare_huge_errors() -> None:
    """A failure made of rare huge errors (5% of predictions off by 100: MAE about 7 x the
    reference's) lifts its own standard error, and the z condition alone fired in none of the
    50-label windows; beyond 3 x the reference's MAE the rule asks for no z (bound: every window)."""
    from monitor.promql import Engine

    rng = np.random.default_rng(18)
    windows, n = 1_000, 50
    e = rng.normal(size=(windows, n))
    e[rng.random((windows, n)) < 0.05] += 100.0
    e[:, 0] += 100.0  # at least one in every window
    mae, rmse = np.abs(e).mean(axis=1), np.sqrt((e * e).mean(axis=1))
    store = _windows(mae, rmse, n, 0.8, 3000)
    assert len(Engine().compile(_rule("RegressionErrorHigh")["expr"]).instant(store, 1000.0)) == windows


def test_coverage_gap_z_statistic_matches_the_binomial_and_reference_mae_is_exported() -> None:
    from monitor.detectors.regression import RegressionDetector
    from monitor.store import MetricStore

    det = RegressionDetector(_quantile_reference(np.random.default_rng(3)), window_s=3600.0, quantiles=(0.2, 0.8), min_labels=10)
    n = 400
    ts = np.arange(n, dtype=np.float64)
    y = np.zeros(n)
    low = np.where(np.arange(n) < 60, 1.0, -1.0)  # 60 of 400 targets at or below the 0.2 quantile: 15%
    high = np.where(np.arange(n) < 280, 1.0, -1.0)  # 280 of 400 below the 0.8 quantile: 70%
    det.update(Batch.from_arrays(np.zeros((n, 1)), y, ts=ts))
    det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=y, segment=None, scores=y, intervals=np.stack([low, high], axis=1)))
    store = MetricStore("m")
    det.export(store)
    assert store.value("monitor_quantile_coverage_gap_ratio", ("0.2",)) == pytest.approx(-0.05)
    assert store.value("monitor_quantile_coverage_zscore", ("0.2",)) == pytest.approx(-0.05 / np.sqrt(0.2 * 0.8 / n))
    assert store.value("monitor_quantile_coverage_zscore", ("0.8",)) == pytest.approx(-0.1 / np.sqrt(0.2 * 0.8 / n))
    # the 0.2-0.8 interval claims 60%; a target is inside when low <= 0 <= high: rows 60..279 (55%)
    assert store.value("monitor_interval_coverage_gap_ratio") == pytest.approx(-0.05)
    assert store.value("monitor_interval_coverage_zscore") == pytest.approx(-0.05 / np.sqrt(0.6 * 0.4 / n))
    ref = _quantile_reference(np.random.default_rng(3))
    assert store.value("monitor_regression_reference_mae") == pytest.approx(np.abs(ref.scores - ref.labels).mean())
    with pytest.raises(ValueError, match="interval_level"):
        RegressionDetector(None, interval_level=90)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_rate_rule_fires_on_a_step_of_five_points(reference: Reference, seed: int) -> None:
    """Accuracy 0.94 -> 0.89 at the end of the first hour (1 label/s, the default 1-hour window):
    the error rate up by 80%, under ModelAccuracyDrop's 5-point reach on these seeds. The window
    just before holds the old rate for an hour after the step, so the contrast peaks an hour on;
    fires on each of three seeds."""
    assert "ModelErrorRateRose" in fired(shifted(gap=0.05), ("calibration",), reference, seed=seed, window_s=HOUR)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_error_rate_rule_is_silent_on_half_a_day_of_a_stationary_model(reference: Reference, seed: int) -> None:
    """ModelErrorRateRose compares two windows of the same stationary model: its condition holds
    in at most 1.4e-5 of independent window pairs (exact binomial sums, see the rule), and
    `for: 15m` asks more. Bound: it never fires in 12 hours of labelled traffic (1 label/s,
    30-minute windows), on each of three seeds."""
    assert "ModelErrorRateRose" not in fired(shifted(), ("calibration",), reference, hours=12.0, seed=seed)


def test_error_rate_rule_with_promtool_and_the_agent(tmp_path) -> None:
    """ModelErrorRateRose's PromQL and text, as real promtool and the agent's engine evaluate
    them: accuracy 0.90 against 0.95 in the window before, 1,800 labels each (z 5.0), fires 10
    minutes on, naming its own instance's figures where one model has several series; silent on
    200 labels (z 1.7), on a rise of a third (100,000 labels), on a rise of half a point (0.995 ->
    0.99 at 100,000 labels: z 11, under the one-point floor), and after a window without errors
    (1.0 on 100 labels, then 0.975 on 3,600: z 1.6 with the larger variance, 5.3 with each
    window's own)."""
    from click.testing import CliRunner

    from monitor.cli import main

    cases = {  # model: (previous accuracy, previous labels, accuracy, labels)
        "m": (0.95, 1800, 0.90, 1800), "few": (0.95, 200, 0.90, 200), "slight": (0.95, 100_000, 0.935, 100_000),
        "half_point": (0.995, 100_000, 0.99, 100_000), "no_errors": (1.0, 100, 0.975, 3600),
    }
    series = []

    def add(labels: str, prev: float, prev_n: int, acc: float, n: int) -> None:
        for name, value in (("monitor_accuracy_previous_window_ratio", prev), ("monitor_labels_in_previous_window", prev_n),
                            ("monitor_accuracy_ratio", acc), ("monitor_labels_in_window", n)):
            series.append({"series": f"{name}{{{labels}}}", "values": f"{value}x30"})

    for model, figures in cases.items():
        add(f'model="{model}"', *figures)
    for instance, acc in (("a", 0.90), ("b", 0.99)):  # one model scraped from two replicas
        add(f'model="multi",instance="{instance}"', 0.99, 1800, acc, 1800)
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelerrorraterose"

    def expected(model: str, before: str, **extra: str) -> dict:
        return {"exp_labels": {"severity": "warning", "model": model, **extra}, "exp_annotations": {
            "summary": f"Model {model} makes more errors than in the window before",
            "description": f"The error rate on the labelled predictions of the window is 10%, against {before} in the window "
                           "just before: up by half or more, significant at z > 4. Window: 1800 labels.",
            "runbook_url": url}}

    unit = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series, "alert_rule_test": [
            {"eval_time": "5m", "alertname": "ModelErrorRateRose", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "ModelErrorRateRose",
             "exp_alerts": [expected("m", "5%"), expected("multi", "1%", instance="a")]}]}]}
    test = tmp_path / "test.yml"
    test.write_text(yaml.safe_dump(unit, sort_keys=False))
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "promtool: " + result.stdout + result.stderr + test.read_text()
    agent = CliRunner().invoke(main, ["rules", "test", str(test)])
    assert agent.exit_code == 0, "monitor rules test: " + agent.output


def test_the_previous_window_is_the_window_before_and_survives_a_checkpoint(reference: Reference) -> None:
    """The calibration detector's previous-window figures are exactly those of the labels of the
    window before (here 200 right of 250, then 300 right of 300), and a detector restored from a
    checkpoint gives them at once: a restart no longer blinds ModelErrorRateRose for a window."""
    from monitor.store import MetricStore

    det = create("calibration", reference=reference, params={"window_s": HOUR})
    probs = np.tile(np.eye(K)[0] * 0.9 + 0.01, (1, 1))

    def labels(t0: float, n: int, right: int) -> None:
        ts = t0 + np.linspace(0.0, HOUR - 1.0, n)
        y = np.where(np.arange(n) < right, 0, 1)
        det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=y, segment=np.full(n, None, dtype=object),
                                       scores=np.repeat(probs, n, axis=0), predicted=np.zeros(n, dtype=np.int64)))

    labels(0.0, 250, 200)
    labels(HOUR, 300, 300)
    det.advance(2 * HOUR - 1.0)  # the windows end with the slot holding the clock: [1 h, 2 h) and [0, 1 h)
    restored = create("calibration", reference=reference, params={"window_s": HOUR})
    restored.load_state_dict(det.state_dict())
    for d in (det, restored):
        store = MetricStore("m")
        d.export(store)
        assert store.value("monitor_labels_in_previous_window") == 250
        assert store.value("monitor_accuracy_previous_window_ratio") == pytest.approx(0.8)
        assert store.value("monitor_labels_in_window") == 300
        assert store.value("monitor_accuracy_ratio") == pytest.approx(1.0)


def test_segment_error_gap_text_names_its_own_replicas_segments(tmp_path) -> None:
    """RegressionSegmentErrorGap's text queries the segments of its own series: with one model
    scraped from two replicas (instance x alerting, y not), it reads x's segments, in real
    promtool and in the agent's engine (whose own series have no instance, which instance=""
    matches: model m)."""
    from click.testing import CliRunner

    from monitor.cli import main

    series = []
    for labels, gap, z in (('model="m",high="apac",low="eu"', 2, 5), ('model="r",instance="x",high="us",low="eu"', 2, 5),
                           ('model="r",instance="y",high="apac",low="us"', 0.1, 0.5)):
        series += [{"series": f"monitor_regression_segment_max_mae_gap{{{labels}}}", "values": f"{gap}x40"},
                   {"series": f"monitor_regression_segment_max_mae_gap_zscore{{{labels}}}", "values": f"{z}x40"}]
    series += [{"series": 'monitor_regression_mae{model="m"}', "values": "1x40"},
               {"series": 'monitor_regression_mae{model="r",instance="x"}', "values": "1x40"},
               {"series": 'monitor_regression_mae{model="r",instance="y"}', "values": "1x40"}]
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#regressionsegmenterrorgap"

    def expected(model: str, high: str, low: str, **extra: str) -> dict:
        return {"exp_labels": {"severity": "warning", "model": model, **extra}, "exp_annotations": {
            "summary": f"Model {model} makes larger errors for one segment ({high})",
            "description": f"The mean absolute error of one segment exceeds that of another by 2 (target units) over the "
                           f"window (now segment {high} over segment {low}): more than a quarter of the whole window's MAE, "
                           "z > 4 (regression detector with by_segment: true).",
            "runbook_url": url}}

    unit = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series, "alert_rule_test": [
            {"eval_time": "35m", "alertname": "RegressionSegmentErrorGap",
             "exp_alerts": [expected("m", "apac", "eu"), expected("r", "us", "eu", instance="x")]}]}]}
    test = tmp_path / "test.yml"
    test.write_text(yaml.safe_dump(unit, sort_keys=False))
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, "promtool: " + result.stdout + result.stderr
    agent = CliRunner().invoke(main, ["rules", "test", str(test)])
    assert agent.exit_code == 0, "monitor rules test: " + agent.output


def test_segment_gap_text_names_its_own_replicas_segments(tmp_path) -> None:
    """ModelSegmentGap's text queries the segments of its own series, as RegressionSegmentErrorGap's
    does: with one model scraped from two replicas (instance a alerting, b not), it named b's pair
    when b's series came first. Real promtool and the agent's engine (whose own series have no
    instance, which instance="" matches: model m)."""
    from tests.test_oncall_session7 import _run_unit_test

    series = []
    for labels, gap, z in (('model="m",figure="accuracy",high="eu",low="us"', 0.2, 5),
                           ('model="r",figure="accuracy",instance="a:1",high="eu",low="us"', 0.2, 5),
                           ('model="r",figure="accuracy",instance="b:1",high="apac",low="latam"', 0.01, 0.5)):
        series += [{"series": f"monitor_segment_max_gap_ratio{{{labels}}}", "values": f"{gap}x40"},
                   {"series": f"monitor_segment_max_gap_zscore{{{labels}}}", "values": f"{z}x40"}]
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelsegmentgap"

    def expected(model: str, **extra: str) -> dict:
        return {"exp_labels": {"severity": "warning", "model": model, "figure": "accuracy", **extra}, "exp_annotations": {
            "summary": f"Model {model} treats segments differently (accuracy)",
            "description": "The accuracy of two segments differs by 20 percentage points over the window (z > 4): segment "
                           "eu above segment us now. The two segments widest apart may change while the gap lasts; the "
                           "Confidence dashboard's \"Largest gap between segments\" panel shows them over time.",
            "runbook_url": url}}

    _run_unit_test(tmp_path, "confidence.yml", yaml.safe_dump({"tests": [{
        "interval": "1m", "input_series": series, "alert_rule_test": [
            {"eval_time": "35m", "alertname": "ModelSegmentGap",
             "exp_alerts": [expected("m"), expected("r", instance="a:1")]}]}]}, sort_keys=False))
