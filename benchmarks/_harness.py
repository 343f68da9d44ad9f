"""Tiny helpers shared by the benchmark scripts: repeated timing with medians, RSS, tables."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

__all__ = ["machine", "per_call_ns", "per_call_samples_ns", "rss_mib", "table"]


def per_call_ns(fn: Callable[[], object], n: int = 200_000, repeats: int = 7) -> float:
    """Median over ``repeats`` runs of the mean cost of one call, in nanoseconds."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(runs)


def per_call_samples_ns(fn: Callable[[], object], n: int = 100_000) -> list[int]:
    """Cost of each of ``n`` calls, timed one by one (includes ~40 ns of timer overhead)."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def rss_mib() -> float:
    """Resident set size of this process in MiB (Linux)."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    """The CPU model and core count, stated in results files: figures from different machines
    differ (speed, and the BLAS kernels' last bits), so each file says which one it comes from."""
    from pathlib import Path

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = "an unknown CPU"
    return f"{model}, {os.cpu_count()} cores"
