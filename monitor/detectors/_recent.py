"""The most recent labelled rows, kept whole for the one figure that sums cannot give: the temperature.

Every other calibration figure is a sum over rows (counts, confidences, correct answers per bin),
kept in sliding-window slots. Fitting a temperature minimises a negative log-likelihood over the
rows themselves, so the detectors that export one keep the last ``capacity`` labelled rows (event
time, label, log-probabilities and, for per-segment fits, the row's segment slot) in a ring:
memory stays bounded whatever the traffic, and the fit uses the ring's rows inside the window.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from monitor.stats.calibration import fit_temperature

__all__ = ["RecentLabelled", "say_temperature_never_fitted"]

log = logging.getLogger("monitor")


def say_temperature_never_fitted(owner: str, temperature_rows: int, min_labels_calibration: int, metric: str) -> None:
    """Log, when the detector is built, that ``temperature_rows`` (the rows kept for the fit) is
    below ``min_labels_calibration`` (the rows the fit needs): the temperature is then never
    fitted and its metric never exported, with nothing else said, ``monitor config check``
    included (which builds the detectors and shows their warnings)."""
    if 0 < temperature_rows < min_labels_calibration:
        log.warning("%s: temperature_rows (%d) is below min_labels_calibration (%d): the temperature is fitted on at most "
                    "the last temperature_rows labelled rows and only from min_labels_calibration of them, so %s is "
                    "never exported. Fix: temperature_rows: %d or more, or a lower min_labels_calibration", owner,
                    temperature_rows, min_labels_calibration, metric, min_labels_calibration)


class RecentLabelled:
    """Ring of the last ``capacity`` labelled rows (0 keeps none)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self.ts = np.full(self.capacity, -np.inf)
        self.label = np.zeros(self.capacity, dtype=np.int64)
        self.group = np.zeros(self.capacity, dtype=np.int64)
        self.logp: np.ndarray | None = None
        self.pos = 0
        # last fit per key: (window start, rows fitted, temperature)
        self._fits: dict[int, tuple[float, int, float]] = {}

    def add(self, ts: np.ndarray, label: np.ndarray, logp: np.ndarray, group: np.ndarray | None = None) -> None:
        """Remember rows and their log-probabilities ``logp`` (the newest ``capacity`` of them when
        more come at once). A change in the number of classes starts the ring afresh: rows of
        another width cannot be fitted together."""
        cap = self.capacity
        if cap <= 0:
            return
        k = logp.shape[1]
        if self.logp is None or self.logp.shape[1] != k:
            self.logp = np.zeros((cap, k))
            self.ts[:] = -np.inf
            self._fits.clear()
        take = min(len(ts), cap)
        start = self.pos
        # contiguous unless the batch wraps around the end of the ring
        at: slice | np.ndarray = slice(start, start + take) if start + take <= cap else (start + np.arange(take)) % cap
        self.ts[at] = ts[-take:]
        self.label[at] = label[-take:]
        if group is not None:
            self.group[at] = group[-take:]
        # log-probabilities as the joiner kept them: clipping them (at log 1e-12, as before) cut an
        # over-confident model's logit gaps short, and its temperature came out too low
        self.logp[at] = logp[-take:]
        self.pos = int((start + take) % cap)

    def live(self, start: float) -> np.ndarray:
        """Mask of the rows at or after event time ``start`` (the window's)."""
        return self.ts >= start

    def temperature(self, rows: np.ndarray, start: float, key: int = 0) -> float:
        """Temperature fitted on the ring's ``rows`` (a mask), cached under ``key``: refitted only
        when the window slid (its ``start`` moved) or the number of rows changed by more than 20%
        since the last fit. A fit costs a few softmax passes over the rows; exports come after
        every drained batch, and a handful of new rows cannot move the temperature measurably."""
        assert self.logp is not None
        m = int(rows.sum())
        last = self._fits.get(key)
        if last is None or last[0] != start or abs(m - last[1]) > 0.2 * last[1]:
            last = self._fits[key] = (start, m, fit_temperature(self.logp[rows], self.label[rows]))
        return last[2]

    def state_dict(self, with_group: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = {"ring_ts": self.ts.copy(), "ring_label": self.label.copy(), "ring_pos": self.pos}
        if with_group:
            state["ring_group"] = self.group.copy()
        if self.logp is not None:
            state["ring_logp"] = self.logp.copy()
        # the last fits: restored without them, the first export refitted on the rows of the moment
        # and gave another temperature than the monitor that did not restart
        state["ring_fits"] = np.array([[key, *fit] for key, fit in sorted(self._fits.items())], dtype=np.float64).reshape(-1, 4)
        return state

    def load_state_dict(self, state: dict[str, Any], owner: str) -> None:
        if len(state["ring_ts"]) != self.capacity:
            raise ValueError(f"{owner} state was saved with another temperature_rows")
        self.ts = np.asarray(state["ring_ts"], dtype=np.float64).copy()
        self.label = np.asarray(state["ring_label"], dtype=np.int64).copy()
        self.pos = int(state["ring_pos"])
        if "ring_group" in state:
            self.group = np.asarray(state["ring_group"], dtype=np.int64).copy()
        self.logp = np.asarray(state["ring_logp"], dtype=np.float64).copy() if "ring_logp" in state else None
        self._fits.clear()
        if self.logp is not None:  # saved before the fits were kept: refitted at the first export
            for key, start, rows, temperature in np.asarray(state.get("ring_fits", np.empty((0, 4))), dtype=np.float64).reshape(-1, 4).tolist():
                self._fits[int(key)] = (start, int(rows), temperature)
