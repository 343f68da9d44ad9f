"""Seeded streams for the drift tests: a reference, null batches, and shifts with a known onset.

Feature set (8 columns): gamma-distributed positive features, a discrete feature with heavy ties
(0..4), a binary feature, and correlated pairs -- the kinds that make naive KS misbehave.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from monitor.batch import Batch

NAMES = ("income", "age", "score", "visits", "flag", "amount", "ratio", "count")


def sample(rng: np.random.Generator, n: int, label_shift: float = 0.0) -> np.ndarray:
    cls = (rng.random(n) < 0.5 + label_shift).astype(float)
    x = np.empty((n, 8))
    x[:, 0] = rng.gamma(3.0, 2.0, n) * (1 + 0.5 * cls)
    x[:, 1] = np.round(rng.normal(40, 10, n))  # integer ages: ties
    x[:, 2] = rng.normal(0, 1, n) + 0.8 * cls
    x[:, 3] = rng.integers(0, 5, n)  # heavy ties
    x[:, 4] = (rng.random(n) < 0.3).astype(float)  # binary
    x[:, 5] = x[:, 0] * rng.uniform(0.5, 1.5, n)  # correlated with income
    x[:, 6] = rng.beta(2, 5, n)
    x[:, 7] = rng.poisson(3, n)
    return x


Shift = Callable[[np.ndarray, np.random.Generator, np.ndarray], None]


def x10(col: int) -> Shift:
    def f(x: np.ndarray, rng: np.random.Generator, t: np.ndarray) -> None:
        x[:, col] *= 10

    return f


def scale(col: int, k: float) -> Shift:
    def f(x: np.ndarray, rng: np.random.Generator, t: np.ndarray) -> None:
        x[:, col] *= k

    return f


def stuck(col: int, value: float = 45.0) -> Shift:
    """The feature repeats one value (a sensor or a join stuck on a default)."""

    def f(x: np.ndarray, rng: np.random.Generator, t: np.ndarray) -> None:
        x[:, col] = value

    return f


def rising_missing(col: int, per_row: float = 1 / 2000) -> Shift:
    """Missing rate rising from 0 by ``per_row`` per row after onset (20% after 400 rows)."""

    def f(x: np.ndarray, rng: np.random.Generator, t: np.ndarray) -> None:
        rate = np.minimum(1.0, t * per_row)
        x[rng.random(x.shape[0]) < rate, col] = np.nan

    return f


def ramp(col: int, sd_per_row: float = 1 / 500) -> Shift:
    """Gradual drift: the feature moves by one reference sd every 500 rows."""

    def f(x: np.ndarray, rng: np.random.Generator, t: np.ndarray) -> None:
        x[:, col] += t * sd_per_row * 1.0

    return f


STREAM_SEED = 1234


def run(det, rng: np.random.Generator, *, onset: int, total: int, shift: Shift | None, batch: int = 50,
        ts0: float = 1.7e9, stop: bool = True) -> int | None:
    """Feed ``total`` rows (shift applied from ``onset``); return the detection delay or None.

    With a shift and ``stop``, feeding stops at the first alarm."""
    pos = 0
    delay = None
    while pos < total:
        x = sample(rng, batch)
        t = np.arange(pos, pos + batch) - onset
        if shift is not None and pos >= onset:
            shift(x, rng, t.astype(float))
        det.update(Batch.from_arrays(x, ts=ts0 + np.arange(pos, pos + batch) * 0.05, numeric_names=NAMES))
        pos += batch
        if det.drift_detected and delay is None:
            delay = pos - onset
            if shift is not None and stop:
                break
    return delay
