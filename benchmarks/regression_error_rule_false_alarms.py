"""How often RegressionErrorHigh pages a healthy model against a small labelled reference, and its power.

The rule holds the window's MAE against the reference MAE (``monitor_regression_reference_mae``,
measured on the labelled reference rows). Before this change it took that MAE as exact: its z
used the window's standard error alone, sqrt((RMSE^2 - MAE^2) / labels). On a small reference with
heavy-tailed errors the reference MAE reads low by chance, and a healthy model then pages for as
long as that reference is used (the reference's part of the difference does not move, so ``for:``
does not rescue it). The rule now adds the reference's standard error over its labelled rows
(``monitor_regression_reference_mae_rows``): CV x scale / sqrt(rows), the coefficient of variation
of |error| (sd / MAE) from the window's many rows, and as the scale the logarithmic mean of the two
MAEs, L = (MAE - ref) / ln(MAE / ref); and it asks the bare "MAE above 3 x the reference's" only of
a reference of 20 labelled rows or more.

For each reference draw: a reference of ``n`` labelled rows and a window of ``--labels`` labelled
rows of the same model (errors normal, t(3) or t(2.5): a page is a false one) or of one whose
errors grew by a factor (the share paged is the power); the window's figures as the regression
detector exports them (MAE, RMSE, labels; checked against the detector once per run), each draw
a series of its own in the agent's series store, and the expressions evaluated at one instant
by the agent's PromQL engine:

* ``before``: the expression before this change (the reference MAE as exact);
* ``ref scale``: the reference's term with the reference MAE as its scale, CV x ref / sqrt(rows)
  (the design first proposed: the reference MAE is low exactly when it reads low, so its standard
  error is too);
* ``window scale``: the window's sd for the reference too, sd / sqrt(rows) (under a real rise the
  window's sd grows with it, and the power goes);
* ``shipped``: the rule as in ``rules/confidence.yml``.

Run: ``python benchmarks/regression_error_rule_false_alarms.py [--draws 20000] [--write]``
(about a minute at the defaults).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.batch import Batch, LabeledBatch  # noqa: E402
from monitor.detectors.regression import RegressionDetector  # noqa: E402
from monitor.promql import Engine, Labels, SeriesStore  # noqa: E402
from monitor.reference import Reference  # noqa: E402
from monitor.store import MetricStore  # noqa: E402

RULES = ROOT / "rules" / "confidence.yml"
OUT = ROOT / "benchmarks" / "results" / "regression_error_rule_false_alarms.md"
MAE, RMSE = "monitor_regression_mae", "monitor_regression_rmse"
N, REF, ROWS = "monitor_regression_labels_in_window", "monitor_regression_reference_mae", "monitor_regression_reference_mae_rows"
_VAR = f"clamp_min({RMSE} ^ 2 - {MAE} ^ 2, 1e-300)"
_Z = f"({MAE} - {REF}) / sqrt({_VAR} * (1 / {N} + {{ref_term}})) > 3"
_BARE = f"{MAE} > 3 * {REF}"
#: The expression before this change, and the two other scales of the reference's term.
VARIANTS = {
    "before": f"({MAE} > 1.5 * {REF} and ({MAE} - {REF}) / sqrt({_VAR} / {N}) > 3) or {_BARE}",
    "ref scale": f"({MAE} > 1.5 * {REF} and {_Z.format(ref_term=f'({REF} / {MAE}) ^ 2 / {ROWS}')}) or {_BARE}",
    "window scale": f"({MAE} > 1.5 * {REF} and {_Z.format(ref_term=f'1 / {ROWS}')}) or {_BARE}",
}
ERRORS = {
    "normal": lambda rng, size: rng.normal(size=size),
    "t(3)": lambda rng, size: rng.standard_t(3.0, size=size),
    "t(2.5)": lambda rng, size: rng.standard_t(2.5, size=size),
}
CHUNK = 2000  # draws evaluated at a time (one series each)


def shipped_expression() -> str:
    rule = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]
                if r.get("alert") == "RegressionErrorHigh")
    assert ROWS in rule["expr"], "the shipped rule no longer counts the labelled reference rows"
    return rule["expr"]


def window_figures(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``errors`` (one window each): MAE and RMSE, as the regression detector exports them."""
    return np.abs(errors).mean(axis=1), np.sqrt((errors * errors).mean(axis=1))


def check_against_the_detector(rng: np.random.Generator, n_ref: int, labels: int) -> None:
    """One reference and window through the regression detector: its exports are the figures used here."""
    x = rng.normal(10.0, 2.0, n_ref)
    e_ref = rng.standard_t(3.0, n_ref)
    det = RegressionDetector(Reference.from_arrays(np.zeros((n_ref, 1)), scores=x, labels=x - e_ref), min_labels=50)
    p = rng.normal(10.0, 2.0, labels)
    e = rng.standard_t(3.0, labels)
    ts = np.linspace(0.0, 3000.0, labels)
    det.update(Batch.from_arrays(np.zeros((labels, 1)), p, ts=ts))
    det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=p - e, segment=None, scores=p))
    det.advance(3000.0)
    store = MetricStore("m")
    det.export(store)
    mae, rmse = window_figures(e[None, :])
    want = {MAE: mae[0], RMSE: rmse[0], N: labels, REF: float(np.abs(e_ref).mean()), ROWS: n_ref}
    for name, value in want.items():
        got = store.value(name)
        assert got is not None and np.isclose(got, value), (name, got, value)


def share_paged(queries: dict[str, object], rng: np.random.Generator, errors: str, n_ref: int, labels: int,
                scale: float, draws: int) -> dict[str, float]:
    """Share of ``draws`` (reference, window) pairs on which each expression holds."""
    draw = ERRORS[errors]
    paged = dict.fromkeys(queries, 0)
    for start in range(0, draws, CHUNK):
        k = min(CHUNK, draws - start)
        reference_mae = np.abs(draw(rng, (k, n_ref))).mean(axis=1)
        mae, rmse = window_figures(draw(rng, (k, labels)) * scale)
        store = SeriesStore(retention_s=3600.0)
        samples = []
        for i in range(k):
            for name, value in ((MAE, mae[i]), (RMSE, rmse[i]), (N, labels), (REF, reference_mae[i]), (ROWS, n_ref)):
                samples.append((Labels({"__name__": name, "model": f"w{i}"}), float(value)))
        store.append_scrape(1000.0, samples)
        for name, query in queries.items():
            paged[name] += len(query.instant(store, 1000.0))  # type: ignore[attr-defined]
    return {name: count / draws for name, count in paged.items()}


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=20000, help="references per row of the false-alarm table")
    parser.add_argument("--power-draws", type=int, default=4000, help="references per row of the power table")
    parser.add_argument("--labels", type=int, default=1000, help="labelled rows in the window")
    parser.add_argument("--sizes", default="30,50,100,500", help="labelled reference rows (false alarms)")
    parser.add_argument("--small-sizes", default="5,10,20", help="tiny references (false alarms, the bare 3x clause)")
    parser.add_argument("--power-sizes", default="50,500", help="labelled reference rows (power)")
    parser.add_argument("--scales", default="1.5,1.8,2", help="factors the errors grew by (power)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help=f"also write {OUT.relative_to(ROOT)}")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.process_time()
    check_against_the_detector(rng, 30, args.labels)
    engine = Engine()
    expressions = {**VARIANTS, "shipped": shipped_expression()}
    queries = {name: engine.compile(expr) for name, expr in expressions.items()}
    cols = list(queries)
    head = "| errors | labelled reference rows | " + " | ".join(cols) + " |"
    rule = "|---|---|" + "---|" * len(cols)
    lines = ["# RegressionErrorHigh against a small labelled reference", "",
             f"`benchmarks/regression_error_rule_false_alarms.py` (seed {args.seed}): per draw a labelled reference "
             f"and a window of {args.labels} labels of the same model, the window's figures as the regression detector "
             "exports them, each expression evaluated by the agent's PromQL engine (one instant: a reference that "
             "makes it hold does so for as long as it is used). Columns: `before` took the reference MAE as exact; "
             "`ref scale` and `window scale` add the reference's standard error with the reference MAE, respectively "
             "the window's MAE, as its scale; `shipped` (rules/confidence.yml) with the logarithmic mean of the two, and "
             "the bare 3x clause only from 20 labelled reference rows.", "",
             f"## Healthy model: share of references whose window pages ({args.draws} references a row)", "",
             head, rule]
    sizes = [int(s) for s in args.sizes.split(",")] + [int(s) for s in args.small_sizes.split(",") if s]
    for errors in ERRORS:
        for n_ref in sorted(sizes):
            share = share_paged(queries, rng, errors, n_ref, args.labels, 1.0, args.draws)
            lines.append(f"| {errors} | {n_ref} | " + " | ".join(_pct(share[c]) for c in cols) + " |")
            print(lines[-1], file=sys.stderr, flush=True)
    lines += ["", f"## Errors grown by a factor: share of references whose window pages ({args.power_draws} references a row)",
              "", "| errors | labelled reference rows | factor | " + " | ".join(cols) + " |", rule + "---|"]
    for errors in ERRORS:
        for n_ref in (int(s) for s in args.power_sizes.split(",")):
            for scale in (float(s) for s in args.scales.split(",")):
                share = share_paged(queries, rng, errors, n_ref, args.labels, scale, args.power_draws)
                lines.append(f"| {errors} | {n_ref} | {scale:g}x | " + " | ".join(_pct(share[c]) for c in cols) + " |")
                print(lines[-1], file=sys.stderr, flush=True)
    lines += ["", "A factor of 1.5 puts the window's MAE at the rule's 1.5 x bound: about half the windows are above it "
              "whatever the z. A z > 3 is one-sided p < 0.0014 (0.14%).", "",
              "Expressions:", ""] + [f"- `{name}`: `{' '.join(expr.split())}`" for name, expr in expressions.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"({time.process_time() - started:.0f} s of CPU)", file=sys.stderr)
    if args.write:
        OUT.write_text(text)


if __name__ == "__main__":
    main()
