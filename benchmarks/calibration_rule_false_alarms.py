"""How often ModelCalibrationErrorHigh pages on a calibrated model, with and without its p-value.

The rule used to be ``monitor_calibration_error_ratio{estimator="debiased_l2_equal_mass"} > 0.1``
for 30 minutes: at a few hundred labels an hour, a calibrated model's debiased error crosses 0.1
now and then by chance. It now also needs ``monitor_calibration_error_pvalue < 0.01`` (consistency
resampling, :func:`monitor.stats.calibration.debiased_l2_pvalue`). This benchmark replays labelled
streams through the calibration detector as it runs in the agent (1-hour window in 12 slots,
``refresh`` 0.05, an export every minute of event time), scrapes its metrics into the agent's
series store and evaluates both expressions with the agent's own rule evaluator (``for: 30m``,
evaluated every minute), counting alerts (transitions to firing):

* **false alarms**: a calibrated model (right with probability equal to its confidence), at a
  few label rates, for three confidence profiles: ``confident`` (0.1 + 0.9 Beta(20, 1.5), mean
  0.94, the tests' model), ``spread`` (0.1 + 0.9 Beta(3, 1.5), mean 0.70, the two-sided audit
  stream's) and ``wide`` (0.1 + 0.9 Beta(1.5, 1.5), mean 0.55), whose errors are noisier: alerts,
  and the share of evaluations at which each expression held (the share of windows flagged);
* **power**: the same model right 5, 10 or 15 points less often than it is confident, in
  independent 4-hour runs (confident and spread profiles): the share of runs that alert and the median time to the first alert;
* **cost**: milliseconds per recompute of the p-value (alone, and the detector's figures with
  it) at 500 and 2,000 labels in the window, calibrated and miscalibrated (a miscalibrated
  window makes every draw: the worst case).

Run: ``python benchmarks/calibration_rule_false_alarms.py [--hours 1000] [--out benchmarks/results/calibration_rule_false_alarms.md]``
(about 0.15 s per simulated hour: an hour's run at the defaults).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tests' stream generator
    sys.path.insert(0, str(ROOT))

from monitor.batch import LabeledBatch  # noqa: E402
from monitor.detectors.calibration import CalibrationDetector  # noqa: E402
from monitor.promql import SeriesStore  # noqa: E402
from monitor.rules.evaluator import RuleEvaluator  # noqa: E402
from monitor.stats import calibration as cal  # noqa: E402
from monitor.store import MetricStore  # noqa: E402
from tests.test_calibration_detector import labeled  # noqa: E402

K = 10
STEP = 60  # seconds of event time between exports, scrapes and rule evaluations (Prometheus's default interval)
HOUR = 3600.0
OLD = 'monitor_calibration_error_ratio{estimator="debiased_l2_equal_mass"} > 0.1'
PROFILES = {"confident": (20.0, 1.5), "spread": (3.0, 1.5), "wide": (1.5, 1.5)}
POWER_PROFILES = ("confident", "spread")  # cost and power; false alarms on every profile
FALSE_ALARM_PROFILES = tuple(PROFILES)
GAPS = (0.05, 0.10, 0.15)  # miscalibrations of the power runs (points of accuracy below confidence)


def shipped_rule() -> dict:
    rules = yaml.safe_load((ROOT / "rules" / "confidence.yml").read_text())["groups"][0]["rules"]
    return next(r for r in rules if r.get("alert") == "ModelCalibrationErrorHigh")


def rule_file(folder: Path) -> Path:
    """The shipped rule (``new``) and its expression before this change (``old``), same ``for:``."""
    rule = shipped_rule()
    rules = [{"alert": name, "expr": expr, "for": rule["for"]} for name, expr in (("old", OLD), ("new", rule["expr"]))]
    path = folder / "calibration_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "bench", "interval": f"{STEP}s", "rules": rules}]}))
    return path


def labels(rng: np.random.Generator, n: int, t0: float, profile: str, gap: float) -> LabeledBatch:
    """``n`` labelled predictions over one step, right with probability ``confidence - gap``
    (the calibration tests' stream, labelled 5 s after each prediction)."""
    a, b = PROFILES[profile]
    return labeled(rng, n, gap=gap, k=K, t0=t0, span=STEP, a=a, b=b)


def replay(rules: Path, hours: float, rate: float, profile: str, gap: float, seed: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Alert times (hours from the start) of each expression over one stream, and the share of
    rule evaluations at which the expression held (its alert pending or firing): the share of
    windows flagged, issue 3's criterion."""
    rng = np.random.default_rng(seed)
    det = CalibrationDetector(seed=seed)
    store = MetricStore("m")
    series = SeriesStore(retention_s=2 * HOUR)
    evaluator = RuleEvaluator.from_files([rules], storage=series, default_interval_s=float(STEP))
    fired: dict[str, list[float]] = {"old": [], "new": []}
    state = {"old": "inactive", "new": "inactive"}
    held = {"old": 0, "new": 0}
    ticks = 0
    for t0 in range(0, int(hours * HOUR), STEP):
        n = int(rng.poisson(rate * STEP / HOUR))
        if n:
            det.update_labels(labels(rng, n, float(t0), profile, gap))
        now = float(t0 + STEP)
        det.advance(now)
        det.export(store)
        series.append_scrape(now, [({**lab, "__name__": name}, value) for name, lab, value in store.samples()])
        for tr in evaluator.evaluate(now):
            state[tr.alertname] = tr.to_state
            if tr.to_state == "firing":
                fired[tr.alertname].append(now / HOUR)
        if now > HOUR:  # the first window filled
            ticks += 1
            for k in held:
                held[k] += state[k] != "inactive"
    return fired, {k: v / max(ticks, 1) for k, v in held.items()}


def false_alarms(rules: Path, hours: float, rates: tuple[float, ...], seed: int) -> list[str]:
    out = ["## False alarms on a calibrated model", "",
           f"{hours:,.0f} hours per row (after the first window), one stream each; an alert is a transition to firing; "
           "'held' is the share of the minutely evaluations at which the expression was true (the share of windows "
           "flagged, before `for:`). `wide` is 0.1 + 0.9 Beta(1.5, 1.5) (mean confidence 0.55).", "",
           "| confidence profile | labels / h | old rule: alerts | per 1,000 h | held | new rule: alerts | per 1,000 h | held |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for profile in FALSE_ALARM_PROFILES:
        for rate in rates:
            t = time.perf_counter()
            fired, held = replay(rules, hours + 1.0, rate, profile, 0.0, seed)
            cells = [f"{len(fired[k])} | {1000 * len(fired[k]) / hours:.2f} | {held[k]:.2%}" for k in ("old", "new")]
            out.append(f"| {profile} | {rate:,.0f} | {cells[0]} | {cells[1]} |")
            print(out[-1], f"({time.perf_counter() - t:.0f} s)", flush=True)
            seed += 1
    return out


def power(rules: Path, runs: int, rates: tuple[float, ...], seed: int) -> list[str]:
    out = ["## Power on a miscalibrated model", "",
           f"{runs} independent 4-hour runs per row, miscalibrated from the start (the first window fills in "
           "the first hour); share of runs with an alert, and the median time to the first (hours).", "",
           "| confidence profile | labels / h | gap | old rule: runs alerting | median first alert | new rule: runs alerting | median first alert |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for profile in POWER_PROFILES:
        for rate in rates:
            for gap in GAPS:
                first: dict[str, list[float]] = {"old": [], "new": []}
                for r in range(runs):
                    fired, _ = replay(rules, 4.0, rate, profile, gap, seed + r)
                    for k in first:
                        if fired[k]:
                            first[k].append(fired[k][0])
                cells = [f"{len(first[k])}/{runs} | {statistics.median(first[k]):.2f}" if first[k] else f"0/{runs} | -" for k in ("old", "new")]
                out.append(f"| {profile} | {rate:,.0f} | {gap:.2f} | {cells[0]} | {cells[1]} |")
                print(out[-1], flush=True)
            seed += runs
    return out


def cost(repeats: int, seed: int) -> list[str]:
    """Milliseconds per recompute: the detector's figures (with the p-value) and the p-value alone."""
    out = ["## Cost of a recompute", "",
           f"Median over {repeats} windows (each new) of N labels: `CalibrationDetector.figures()` (every figure: "
           "the p-value, the over-confidence test, the temperature fit...) after the window slid to a new slot, "
           "which draws the p-value again, and at the rule tick that follows, which keeps it (`DearFigure`); and "
           "`debiased_l2_pvalue` alone on the same rows. A calibrated window stops after 10 draws at or above its "
           "error; a miscalibrated one makes all 1,999 (the worst case). Machine: 2 cores shared with CI; times "
           "moved up to 2x between runs, the share less.", "",
           "| confidence profile | labels in the window | gap | draws (median) | figures after a slide, ms "
           "| figures at a tick, ms | p-value alone, ms | share of the slide's |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    rng = np.random.default_rng(seed)
    edges = cal.fine_confidence_edges()
    for profile in POWER_PROFILES:
        for n in (500, 2000):
            for gap in (0.0, 0.10):
                slid, kept, alone, draws = [], [], [], []
                for i in range(repeats):
                    batch = labels(rng, n, 0.0, profile, gap)
                    det = CalibrationDetector(window_s=1e6)
                    det.update_labels(batch)
                    det.figures()  # the rows folded into the window once (not what is measured)
                    det.advance(3 * det.window_s / det.n_slots)  # a new slot; every label stays in the window
                    t = time.perf_counter()
                    det.figures()
                    slid.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    det.figures()
                    kept.append(time.perf_counter() - t)
                    assert batch.scores is not None and batch.predicted is not None
                    sums = cal.reliability_sums(batch.scores.max(axis=1), (batch.predicted == batch.label).astype(np.float64), edges)
                    draw_rng = np.random.default_rng(i)
                    t = time.perf_counter()
                    r = cal.debiased_l2_pvalue(*sums, draw_rng)
                    alone.append(time.perf_counter() - t)
                    draws.append(r.draws)
                f, k, a = statistics.median(slid), statistics.median(kept), statistics.median(alone)
                out.append(f"| {profile} | {n:,} | {gap:.2f} | {statistics.median(draws):.0f} | {1e3 * f:.2f} | {1e3 * k:.2f} "
                           f"| {1e3 * a:.2f} | {a / f:.0%} |")
                print(out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=1000.0, help="hours of calibrated traffic per row")
    parser.add_argument("--runs", type=int, default=20, help="4-hour runs per power row")
    parser.add_argument("--rates", default="240,1000", help="labels per hour, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sections", default="cost,power,false_alarms", help="which tables, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    rates = tuple(float(r) for r in args.rates.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        rules = rule_file(Path(tmp))
        lines = ["# ModelCalibrationErrorHigh: false alarms, power and cost", "",
                 "`benchmarks/calibration_rule_false_alarms.py`: the calibration detector's exports scraped every "
                 f"{STEP} s into the agent's series store, both expressions evaluated by its rule evaluator "
                 f"(`for: {shipped_rule()['for']}`). Old: `{OLD}`; new: `{' '.join(shipped_rule()['expr'].split())}`.", ""]
        if "cost" in sections:
            lines += cost(21, args.seed) + [""]
        if "power" in sections:
            lines += power(rules, args.runs, rates, args.seed + 1000) + [""]
        if "false_alarms" in sections:
            lines += false_alarms(rules, args.hours, rates, args.seed + 5000)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
