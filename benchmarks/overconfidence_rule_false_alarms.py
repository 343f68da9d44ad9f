"""How often ModelOverconfident pages on a calibrated model.

The rule (``rules/confidence.yml``: the gap above 0.02 and its p-value under 0.01, ``for: 10m``)
keeps issue 3's operating point: a calibrated model's window is flagged in about 1% of
evaluations. How many pages that makes depends on how long a flagged episode lasts, which the
sliding window decides, not the level: this benchmark counts them. It replays calibrated labelled
streams (right with probability equal to their confidence, the calibration tests' stream) through
the calibration detector as it runs in the agent (1-hour window in 12 slots, an export every minute
of event time), scrapes its metrics into the agent's series store and evaluates the shipped rule
with the agent's own rule evaluator every minute, counting alerts (transitions to firing) and the
share of evaluations at which the expression held (before ``for:``).

Profiles as ``benchmarks/calibration_rule_false_alarms.py``'s: ``confident`` (0.1 + 0.9 Beta(20,
1.5), mean confidence 0.94) and ``spread`` (0.1 + 0.9 Beta(3, 1.5), mean 0.70).

Run: ``python benchmarks/overconfidence_rule_false_alarms.py [--hours 1000] [--rates 150,500,1000]
[--pvalue 0.001] [--out benchmarks/results/overconfidence_rule_false_alarms.md]`` (about 0.05 s per simulated hour).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the tests' stream generator
    sys.path.insert(0, str(ROOT))

from benchmarks.calibration_rule_false_alarms import HOUR, STEP, labels  # noqa: E402
from monitor.detectors.calibration import CalibrationDetector  # noqa: E402
from monitor.promql import SeriesStore  # noqa: E402
from monitor.rules.evaluator import RuleEvaluator  # noqa: E402
from monitor.store import MetricStore  # noqa: E402

ALERT = "ModelOverconfident"
PROFILES = ("confident", "spread")


#: the shipped rule's p-value term, which ``--pvalue`` replaces (the pack suggests 0.001 in a copy)
PVALUE_TERM = "monitor_overconfidence_pvalue < 0.01"


def rule_file(folder: Path, pvalue: float | None = None) -> tuple[Path, dict]:
    """The shipped rule alone, in a file of its own (its p-value bound replaced by ``pvalue``)."""
    rules = yaml.safe_load((ROOT / "rules" / "confidence.yml").read_text())["groups"][0]["rules"]
    rule = dict(next(r for r in rules if r.get("alert") == ALERT))
    if pvalue is not None:
        assert PVALUE_TERM in rule["expr"], f"{ALERT}'s expression no longer holds {PVALUE_TERM!r}"
        rule["expr"] = rule["expr"].replace(PVALUE_TERM, f"monitor_overconfidence_pvalue < {pvalue:g}")
    path = folder / "overconfidence_rule.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "bench", "interval": f"{STEP}s", "rules": [rule]}]}))
    return path, rule


def replay(rules: Path, hours: float, rate: float, profile: str, seed: int) -> tuple[int, float]:
    """Alerts over one calibrated stream (after its first hour) and the share of evaluations at
    which the expression held."""
    rng = np.random.default_rng(seed)
    det = CalibrationDetector(seed=seed)
    store = MetricStore("m")
    series = SeriesStore(retention_s=2 * HOUR)
    evaluator = RuleEvaluator.from_files([rules], storage=series, default_interval_s=float(STEP))
    alerts = held = ticks = 0
    state = "inactive"
    for t0 in range(0, int(hours * HOUR), STEP):
        n = int(rng.poisson(rate * STEP / HOUR))
        if n:
            det.update_labels(labels(rng, n, float(t0), profile, 0.0))
        now = float(t0 + STEP)
        det.advance(now)
        det.export(store)
        series.append_scrape(now, [({**lab, "__name__": name}, value) for name, lab, value in store.samples()])
        for tr in evaluator.evaluate(now):
            state = tr.to_state
            alerts += now > HOUR and tr.to_state == "firing"
        if now > HOUR:  # the first window filled
            ticks += 1
            held += state != "inactive"
    return alerts, held / max(ticks, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=1000.0, help="hours of calibrated traffic per row")
    parser.add_argument("--rates", default="150,500,1000", help="labels per hour, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pvalue", type=float, default=None, help="the p-value bound instead of the shipped 0.01")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    args = parser.parse_args()
    rates = tuple(float(r) for r in args.rates.split(","))
    seed = args.seed
    with tempfile.TemporaryDirectory() as tmp:
        rules, rule = rule_file(Path(tmp), args.pvalue)
        lines = [f"# {ALERT}: false alarms on a calibrated model", "",
                 "`benchmarks/overconfidence_rule_false_alarms.py`: the calibration detector's exports scraped every "
                 f"{STEP} s into the agent's series store, the shipped rule evaluated by its rule evaluator every "
                 f"{STEP} s (`{' '.join(rule['expr'].split())}`, `for: {rule['for']}`). {args.hours:,.0f} hours per row "
                 "after the first window, one stream each (numpy default_rng seeds from "
                 f"{args.seed}); an alert is a transition to firing; 'held' is the share of the minutely evaluations at "
                 "which the expression was true (the share of windows flagged, before `for:`). `confident` is "
                 "0.1 + 0.9 Beta(20, 1.5) (mean confidence 0.94), `spread` 0.1 + 0.9 Beta(3, 1.5) (mean 0.70).", "",
                 "| confidence profile | labels / h | alerts | hours per alert | held |",
                 "| --- | --- | --- | --- | --- |"]
        total = 0
        for profile in PROFILES:
            for rate in rates:
                t = time.perf_counter()
                alerts, held = replay(rules, args.hours + 1.0, rate, profile, seed)
                total += alerts
                per = f"{args.hours / alerts:,.0f}" if alerts else "-"
                lines.append(f"| {profile} | {rate:,.0f} | {alerts} | {per} | {held:.2%} |")
                print(lines[-1], f"({time.perf_counter() - t:.0f} s)", flush=True)
                seed += 1
        rows = len(PROFILES) * len(rates)
        every = f", one per {rows * args.hours / total:,.0f} hours of labelled traffic" if total else ""
        lines += ["", f"In all: {total} alerts in {rows * args.hours:,.0f} hours{every}.", ""]
    print("\n".join(lines))
    if args.out is not None:  # tests/test_overconfidence_false_alarm_figures_s34d.py reads the "In all" line
        args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
