"""How long ``os.fork`` waits in a process whose monitor's worker is busy.

The before-fork hook (:func:`monitor.core._hold_for_fork`) takes each running monitor's lock so
that the child gets the detectors between two batches. Two threads keep the queue fed (2,000
events, then 1 ms, in a loop: the worker is behind, as under overload); the parent forks 20
times, 50 ms apart, and each child exits at once. Reported: the time ``os.fork()`` took in the
parent, median, min and max, with the default detectors and optionally the shipped core rules.

Run: ``.venv/bin/python benchmarks/bench_fork.py [--rules] [--forks 20]``
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", action="store_true", help="evaluate rules/core.yml in the agent as well")
    ap.add_argument("--forks", type=int, default=20)
    args = ap.parse_args()
    cfg: dict = {"queue": {"capacity": 100_000}}
    if args.rules:
        cfg["rules"] = {"files": [os.path.join(os.path.dirname(__file__), "..", "rules", "core.yml")]}
    mon = Monitor(model="bench", registry=CollectorRegistry(), config=cfg)
    stop = threading.Event()
    x, y = np.ones((1, 4)), np.array([[0.3, 0.7]])

    def feed() -> None:
        while not stop.is_set():
            for _ in range(2000):
                mon.observe(x, y)
            time.sleep(0.001)

    feeders = [threading.Thread(target=feed) for _ in range(2)]
    for t in feeders:
        t.start()
    time.sleep(1.0)
    waits = []
    for _ in range(args.forks):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        waits.append(time.perf_counter() - t0)
        os.waitpid(pid, 0)
        time.sleep(0.05)
    stop.set()
    for t in feeders:
        t.join()
    w = sorted(waits)
    print(f"os.fork() in the parent, {len(w)} forks{' (core rules)' if args.rules else ''}: median "
          f"{1000 * w[len(w) // 2]:.1f} ms, min {1000 * w[0]:.1f} ms, max {1000 * w[-1]:.1f} ms; queue at the end {len(mon.queue)}")
    mon.close()


if __name__ == "__main__":
    main()
