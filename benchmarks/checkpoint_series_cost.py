"""What the rules' sample history adds to a checkpoint: size on disk and CPU of writing and
restoring it, against the same checkpoint without it, for a monitor as deployed.

The monitor runs every default detector but probing and every shipped rule pack but probing's
(as the every-pack configuration of ``eval_confidence.py``), on one of its streams (digits,
unshifted, 1 event per second, every row labelled a minute later, four segments), for an hour of
event time with rules evaluated every 15 s: the agent's series store then holds an hour of every
series the monitor exports. Each figure is the median of ``--reps`` runs.

Run: ``python benchmarks/checkpoint_series_cost.py`` (about a minute; ``--write`` also writes
``benchmarks/results/checkpoint_series_cost.md``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _confidence_cost import write_report  # noqa: E402
from _harness import table  # noqa: E402
from eval_confidence import ALL_PACKS, draw, make_setup, pool_reference  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "checkpoint_series_cost.md"
T0 = 1_700_000_000.0


def monitor_after(seconds: int, dataset: str) -> object:
    """A monitor fed ``seconds`` of the dataset's unshifted stream, rules evaluated every 15 s."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.config import MonitorConfig, RulesConfig
    from monitor.detectors.defaults import default_detectors
    from monitor.schema import OutputSpec, Schema

    setup = pool_reference(make_setup(dataset))
    output = OutputSpec("probabilities")
    rules = tuple(str(Path(__file__).resolve().parent.parent / "rules" / f) for f in ALL_PACKS)
    cfg = MonitorConfig(model="m", schema=Schema.numeric(setup.reference.numeric_names), output=output,
                        detectors=tuple(d for d in default_detectors(output, setup.reference) if d.kind != "probing"),
                        rules=RulesConfig(files=rules, interval_s=15.0, log_alerts=False))
    mon = Monitor(config=cfg, reference=setup.reference, registry=CollectorRegistry(), start_worker=False, live=False)
    x, y = draw(setup, "none", seconds, np.random.default_rng(0))
    p = setup.predict(x)
    for i in range(seconds):
        mon.observe(x[i], p[i], timestamp=T0 + i, request_id=str(i), segment=f"s{i % 4}")
        if i % 10 == 9 and i >= 60:
            ids = range(i - 69, i - 59)
            mon.feedback([str(j) for j in ids], [int(y[j]) for j in ids], timestamp=T0 + i)
        if i % 500 == 499:
            mon.flush()
    mon.flush()
    return mon, cfg, setup


def measure(mon: object, cfg: object, setup: object, with_history: bool, folder: Path) -> tuple[float, float, float]:
    """Size (bytes), CPU of state + write (s) and CPU of read + restore (s) of one checkpoint."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor, checkpoint

    path = folder / f"m-{with_history}.ckpt"
    c0 = time.process_time()
    state = mon.state_dict()  # type: ignore[attr-defined]
    if not with_history:
        state["series"] = None
    info = checkpoint.save(path, state, model="m", state_version=state["version"])
    written = time.process_time() - c0
    fresh = Monitor(config=cfg, reference=setup.reference, registry=CollectorRegistry(), start_worker=False, live=False)  # type: ignore[attr-defined]
    c0 = time.process_time()
    assert checkpoint.restore(fresh, path) == (True, None)
    restored = time.process_time() - c0
    fresh.close()
    return float(info.size_bytes), written, restored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="digits", choices=("digits", "breast_cancer", "wine"))
    ap.add_argument("--seconds", type=int, default=3600, help="event time fed before the checkpoint")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--write", action="store_true", help=f"also write {RESULTS.relative_to(RESULTS.parents[2])}")
    args = ap.parse_args()
    started = time.monotonic()
    mon, cfg, setup = monitor_after(args.seconds, args.dataset)
    stats = mon._series_store.stats()  # type: ignore[attr-defined]
    mon.state_dict()  # the reference's checkpoint tree is computed once, on the first call: not measured
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = {h: [measure(mon, cfg, setup, h, Path(tmp)) for _ in range(args.reps)] for h in (False, True)}
    med = {h: [statistics.median(r[i] for r in runs[h]) for i in range(3)] for h in runs}
    for h, name in ((False, "without the history"), (True, "with the history")):
        size, written, restored = med[h]
        rows.append((name, f"{size / 1e6:.2f}", f"{written * 1e3:.0f}", f"{restored * 1e3:.0f}"))
    add = [med[True][i] - med[False][i] for i in range(3)]
    rows.append(("added by the history", f"{add[0] / 1e6:.2f}", f"{add[1] * 1e3:.0f}", f"{add[2] * 1e3:.0f}"))
    mon.close()  # type: ignore[attr-defined]
    body = (f"{args.dataset}, {args.seconds:,} s of event time: the series store holds {stats.series:,} series x "
            f"{stats.timestamps:,} timestamps ({stats.samples:,} samples). Median of {args.reps} runs; CPU time.\n\n"
            + table(rows, ("checkpoint", "size (MB)", "state + write (ms CPU)", "read + restore (ms CPU)")))
    print(body)
    if args.write:
        write_report(RESULTS, "What the rules' sample history adds to a checkpoint",
                     "Generated by `python benchmarks/checkpoint_series_cost.py --write` (see its docstring). At the default "
                     "`checkpoint.interval` (60 s) the write is paid once a minute; the restore once per start.",
                     [body], started)


if __name__ == "__main__":
    main()
