"""Data quality per feature: missing, non-finite, out-of-range, unseen and wrongly typed values,
and stuck features, each against what the reference makes normal.

Reasons (label ``reason``) and their reference expectation (``monitor_data_reference_invalid_ratio``):

* ``missing`` -- NaN / None; expected: the reference's missing rate.
* ``inf`` -- +-inf in a numeric feature; expected: the reference's rate.
* ``out_of_range`` -- finite but outside ``[min, max]`` of the reference widened by
  ``range_margin`` times its range. A new exchangeable value falls outside the range of ``n``
  reference values with probability ``2 / (n + 1)`` on average over references, but for the one
  reference at hand that probability is itself random, Beta(2, n - 1): with 50 rows it is above
  15% for one reference in a hundred. The expectation exported is therefore the 99.9% quantile of
  that Beta (``2 / (n + 1)`` x about 4.6), so that a small reference does not page for values it
  merely never happened to see; for discrete features it is an upper bound anyway.
* ``unseen_category`` -- a categorical value absent from the reference; expected: the Good-Turing
  rate (reference categories seen once / rows where the feature is present). Live, too, this one
  share is over the rows where the feature is present (not missing), so that "8% unseen" means 8%
  of the values sent, whatever share of rows lacks the feature: over all rows, a feature missing
  in 40% of rows read its unseen share 40% low against the reference's, and a rise of 5 points
  among its values was reported in 3 of 10 seeded replays, late. It is absent below ``min_rows``
  such rows (its noise is that of a share of them), and the rules take both sides' present rows
  from the missing shares.
* ``wrong_type`` -- a numeric feature's value that is no number (``"N/A"``, a list: the intake
  reads it as NaN and marks it, :attr:`Batch.numeric_unreadable`, so it is not counted missing),
  or a categorical value that is not a string, in a :class:`Batch` built in code.
  The agent's intake reads every categorical value as its text, as the reference is read, so a
  code sent as a number (``7``) is *seen* when the reference holds that text and an
  ``unseen_category`` otherwise; ``7`` and ``7.0`` (or ``true`` and ``True``) are different texts.

Ratios are over the event-time window's rows (``unseen_category``: its rows with a value) and
absent (not zero) below ``min_rows`` of them. Counters of bad values since start are exported
too. Rows that cannot be read at all never reach detectors: the worker counts them in
``monitor_rows_rejected{reason}``.

Stuck features: the run of consecutive identical values is tracked per numeric feature, and per
categorical one with ``stuck_categorical: true`` (see the parameter). Under the reference, a run
of ``L`` equal values has probability about ``q^(L-1)`` with ``q`` the reference probability that
two values are equal (for a categorical feature ``sum p_c^2`` over its category frequencies); the
threshold is the smallest ``L`` with ``features x q^(L-1) <= 1 / ert`` (at least
``min_stuck_run``), so a binary feature is not "stuck" after three equal values while a continuous
one is after a handful. Missing values break a run (they are counted as missing instead).

Works without a reference too: then only missing / inf / wrong-type ratios are exported (no
out-of-range or unseen ratio of 0, as if checked). Likewise a reference feature that has no
finite (numeric) or present (categorical) value gives no range, categories or run threshold to
judge by: its out-of-range / unseen ratios are absent and it is never "stuck".

Counts are kept per feature *name*: batches may list the features in another order or leave
some out (a schema learnt again after a restart), and a saved state is refused, with the
difference named, when it was made for other ``features`` or against a reference that gives
its features other reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from monitor.detectors.base import Detector
from monitor.profile import Profile, profile_of
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["DataQualityDetector", "REASONS", "out_of_range_bound", "stuck_threshold"]

REASONS = ("missing", "inf", "out_of_range", "unseen_category", "wrong_type")
_NUM_REASONS = ("missing", "inf", "out_of_range", "wrong_type")
_CAT_REASONS = ("missing", "unseen_category", "wrong_type")


def out_of_range_bound(n: int, quantile: float = 0.999) -> float:
    """Upper ``quantile`` of the probability that a new value falls outside the range of ``n``
    exchangeable reference values (that probability is Beta(2, n - 1) over references).

    >>> round(out_of_range_bound(4000) * 4001, 1)  # about 4.6 times the mean 2 / (n + 1)
    9.2
    """
    if n < 2:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(quantile, 2, n - 1))


def stuck_threshold(repeat_prob: float, n_features: int, ert: float, floor: int = 5) -> int:
    """Shortest run of equal values that is implausible under the reference at this ERT.

    >>> stuck_threshold(0.0, 10, 1e6)
    5
    >>> stuck_threshold(0.58, 8, 1e6) > 25
    True
    """
    q = float(repeat_prob)
    if q <= 0.0:
        return floor
    if q >= 1.0:
        return 2**62  # a constant reference feature cannot become stuck
    need = np.log(1.0 / (ert * max(n_features, 1))) / np.log(q)
    return int(max(floor, 1 + np.ceil(need)))


class DataQualityDetector(Detector):
    """Per-feature data quality against the reference (kind ``data_quality``).

    Parameters
    ----------
    reference
        Reference or profile (optional; without it only missing / inf / wrong-type are tracked).
    window_s, n_slots
        Event-time window of the ratios.
    min_rows
        Minimum rows in the window before ratios are exported.
    range_margin
        Widening of the reference range, as a share of it, before values count as out of range.
    ert
        Rows between false "stuck" alarms on reference-like data (sets the run-length thresholds).
    min_stuck_run
        Floor of the run-length threshold.
    stuck_categorical
        Also watch categorical features for stuck values. Off by default: the threshold assumes
        consecutive rows are independent, and categorical traffic often is not (one client
        scoring a batch of rows from one country repeats it legitimately).
    features
        Subset of features (default: all).
    """

    kind = "data_quality"

    def __init__(
        self,
        reference: "Reference | Profile | None" = None,
        *,
        window_s: float = 3600.0,
        n_slots: int = 12,
        min_rows: int = 100,
        range_margin: float = 0.0,
        ert: float = 1_000_000.0,
        min_stuck_run: int = 5,
        stuck_categorical: bool = False,
        features: Sequence[str] | None = None,
    ) -> None:
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.min_rows = int(min_rows)
        self.range_margin = float(range_margin)
        self.ert = float(ert)
        self.min_stuck_run = int(min_stuck_run)
        self.stuck_categorical = bool(stuck_categorical)
        self.features = None if features is None else tuple(features)
        self.profile: Profile | None = None if reference is None else profile_of(reference)
        self._setup_reference()
        self._reset()

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None,
                    **params: Any) -> "DataQualityDetector":
        from monitor.detectors._common import config_params

        return cls(reference, **config_params(cls, context, params, window_s="window_s"))

    def _setup_reference(self) -> None:
        p = self.profile
        self._num_ref: dict[str, Any] = {}
        self._cat_ref: dict[str, Any] = {}
        if p is None:
            return
        wanted = None if self.features is None else set(self.features)
        watched = (*p.numeric, *p.categorical) if self.stuck_categorical else p.numeric
        n_checked = sum(1 for f in watched if wanted is None or f.name in wanted)  # the union bound's count
        for f in p.numeric:
            if wanted is not None and f.name not in wanted:
                continue
            expected = {"missing": f.missing_ratio, "inf": f.inf_ratio, "wrong_type": 0.0}
            ref: dict[str, Any] = {"lo": None, "hi": None, "expected": expected, "stuck_after": None}
            if f.n_finite:  # a feature the reference never saw finite has no range nor run length to judge by
                span = (f.max - f.min) if np.isfinite(f.max - f.min) else 0.0
                ref["lo"], ref["hi"] = f.min - self.range_margin * span, f.max + self.range_margin * span
                expected["out_of_range"] = out_of_range_bound(f.n_finite)
                ref["stuck_after"] = stuck_threshold(f.repeat_prob, n_checked, self.ert, self.min_stuck_run)
            self._num_ref[f.name] = ref
        for c in p.categorical:
            if wanted is not None and c.name not in wanted:
                continue
            present = c.n > c.n_missing  # else: no category to compare with, nor run length to judge by
            expected = {"missing": c.missing_ratio, "wrong_type": 0.0}
            if present:
                expected["unseen_category"] = c.unseen_ratio
            self._cat_ref[c.name] = {"known": set(c.categories) if present else None, "expected": expected,
                                     "stuck_after": (stuck_threshold(_categorical_repeat_prob(c), n_checked, self.ert,
                                                                     self.min_stuck_run)
                                                     if self.stuck_categorical and present else None)}

    def _reasons(self, name: str, numeric: bool) -> tuple[str, ...]:
        """The reasons counted for a feature: out-of-range values and unseen categories only
        against a reference that saw the feature (without one they would be exported as a
        ratio of 0, as if checked)."""
        if numeric:
            ref = self._num_ref.get(name)
            return _NUM_REASONS if ref is not None and ref["lo"] is not None else ("missing", "inf", "wrong_type")
        ref = self._cat_ref.get(name)
        return _CAT_REASONS if ref is not None and ref["known"] is not None else ("missing", "wrong_type")

    def _reset(self) -> None:
        self._seen: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # the last batch's feature names
        self._window: SlidingWindow | None = None
        self._pending: dict[tuple[str, str], float] = {}
        self._run: dict[str, int] = {}
        self._last: dict[str, Any] = {}
        self._layout: dict[tuple[str, str], int] = {}  # (feature, reason) -> column of the window (0: rows)

    def _ensure_layout(self, batch: "Batch") -> None:
        """Give every (feature, reason) of the batch a column of the window, by name.

        Columns are only ever added (the window widened, its counts kept), never renumbered:
        a batch whose features come in another order, or without some of them (a schema learnt
        again after a restart from an event that lacked a field or listed it elsewhere), used to
        rebuild the layout and empty the window."""
        names = (tuple(batch.numeric_names), tuple(batch.categorical_names))
        if names == self._seen and self._window is not None:
            return
        wanted = None if self.features is None else set(self.features)
        for group, numeric in ((names[0], True), (names[1], False)):
            for n in group:
                if wanted is None or n in wanted:
                    for r in self._reasons(n, numeric):
                        self._layout.setdefault((n, r), len(self._layout) + 1)
        self._seen = names
        width = len(self._layout) + 1  # slot 0: rows
        if self._window is None:
            self._window = SlidingWindow(self.window_s, (width,), self.n_slots)
        elif self._window.shape[0] < width:
            state = self._window.state_dict()
            data = np.zeros((self.n_slots, width))
            data[:, :self._window.shape[0]] = state["data"]
            self._window = SlidingWindow(self.window_s, (width,), self.n_slots)
            self._window.load_state_dict({**state, "data": data})

    # -- update ----------------------------------------------------------------------------------------
    def update(self, batch: "Batch") -> None:
        n = len(batch)
        if n == 0:
            return
        self._ensure_layout(batch)
        assert self._window is not None
        ts = np.asarray(batch.ts, dtype=np.float64)
        wanted = None if self.features is None else set(self.features)
        num_cols = [(j, name) for j, name in enumerate(batch.numeric_names) if wanted is None or name in wanted]
        cols = [j for j, _ in num_cols]
        v = batch.numeric[:, cols] if num_cols else None
        unread = batch.numeric_unreadable
        unread = unread[:, cols] if unread is not None and num_cols else None
        slot_s = self.window_s / self.n_slots
        slots = np.floor(ts / slot_s)
        if slots.min() == slots.max():
            counts = self._counts(batch, v, unread, num_cols, None)
            self._window.add(np.array([ts.max()]), None, counts[None, :])
        else:  # a batch across a slot edge (rare): each slot gets its own rows' counts
            uniq, which = np.unique(slots, return_inverse=True)
            per_slot = np.array([self._counts(batch, v, unread, num_cols, which == k) for k in range(uniq.size)])
            self._window.add((uniq + 0.5) * slot_s, None, per_slot)
            counts = per_slot.sum(axis=0)
        if v is not None:
            self._track_runs(v, [name for _, name in num_cols])
        if self.stuck_categorical:
            for j, name in enumerate(batch.categorical_names):
                if wanted is None or name in wanted:
                    col = batch.categorical[:, j]
                    self._track_category_run(col, np.fromiter((x is None for x in col), dtype=bool, count=n), name)
        for key, pos in self._layout.items():
            if counts[pos]:
                self._pending[key] = self._pending.get(key, 0.0) + float(counts[pos])

    def _counts(self, batch: "Batch", v: np.ndarray | None, unread: np.ndarray | None,
                num_cols: list[tuple[int, str]], rows: np.ndarray | None) -> np.ndarray:
        """Window row for the batch's ``rows`` (all when None): rows, then bad values per column.

        ``v`` and ``unread`` are the watched numeric columns' values and unreadable-value mask."""
        counts = np.zeros(len(self._layout) + 1)
        counts[0] = len(batch) if rows is None else int(rows.sum())
        layout = self._layout
        if v is not None:
            if rows is not None:
                v = v[rows]
                unread = None if unread is None else unread[rows]
            miss_c = np.isnan(v).sum(axis=0)
            wrong_c = np.zeros(len(num_cols)) if unread is None else unread.sum(axis=0)
            miss_c = miss_c - wrong_c  # NaN where the value was no number: wrong_type, not missing
            inf_c = np.isinf(v).sum(axis=0)
            refs = [self._num_ref.get(name, {}) for _, name in num_cols]
            lo = np.array([np.nan if r.get("lo") is None else r["lo"] for r in refs])
            hi = np.array([np.nan if r.get("hi") is None else r["hi"] for r in refs])
            with np.errstate(invalid="ignore"):
                oor_c = (np.isfinite(v) & ((v < lo) | (v > hi))).sum(axis=0)
            for k, (_, name) in enumerate(num_cols):
                counts[layout[(name, "missing")]] = miss_c[k]
                counts[layout[(name, "inf")]] = inf_c[k]
                counts[layout[(name, "wrong_type")]] = wrong_c[k]
                pos = layout.get((name, "out_of_range"))
                if pos is not None:
                    counts[pos] = oor_c[k]
        wanted = None if self.features is None else set(self.features)
        cats = batch.categorical if rows is None else batch.categorical[rows]
        for j, name in enumerate(batch.categorical_names):
            if wanted is not None and name not in wanted:
                continue
            col = cats[:, j]
            m = col.shape[0]
            is_none = np.fromiter((x is None for x in col), dtype=bool, count=m)
            is_str = np.fromiter((isinstance(x, str) for x in col), dtype=bool, count=m)
            counts[layout[(name, "missing")]] = is_none.sum()
            counts[layout[(name, "wrong_type")]] = (~is_none & ~is_str).sum()
            pos = layout.get((name, "unseen_category"))
            if pos is not None and is_str.any():
                known = self._cat_ref[name]["known"]
                vals, cnt = np.unique(col[is_str].astype(str), return_counts=True)
                counts[pos] = sum(c for v_, c in zip(vals.tolist(), cnt.tolist()) if v_ not in known)
        return counts

    def _track_runs(self, v: np.ndarray, names: list[str]) -> None:
        """Length of the current run of identical values per column, carried across batches."""
        n, d = v.shape
        prev = np.array([self._last.get(nm, np.nan) for nm in names])
        carried = np.array([self._run.get(nm, 0) for nm in names], dtype=np.int64)
        same = np.empty((n, d), dtype=bool)
        same[0] = v[0] == prev
        same[1:] = v[1:] == v[:-1]
        rows = np.arange(n)[:, None]
        last_break = np.maximum.accumulate(np.where(same, -1, rows), axis=0)  # last row that started a run
        run = rows - last_break + 1  # rows since the last break (that row included)
        never_broke = last_break < 0  # run continues from the previous batch
        run = np.where(never_broke, rows + 1 + carried[None, :], run)
        for k, nm in enumerate(names):
            self._run[nm] = int(run[-1, k])
            self._last[nm] = float(v[-1, k])

    def _track_category_run(self, col: np.ndarray, is_none: np.ndarray, name: str) -> None:
        """The same run length for a categorical column (object values compared with ``==``)."""
        n = len(col)
        if is_none[-1]:
            self._run[name], self._last[name] = 0, None
            return
        prev = self._last.get(name)
        same = np.empty(n, dtype=bool)
        same[0] = prev is not None and bool(col[0] == prev)
        if n > 1:
            same[1:] = (col[1:] == col[:-1]) & ~is_none[1:] & ~is_none[:-1]
        breaks = np.flatnonzero(~same)
        self._run[name] = self._run.get(name, 0) + n if breaks.size == 0 else n - int(breaks[-1])
        self._last[name] = col[-1]

    def advance(self, now: float) -> None:
        if self._window is not None:
            self._window.advance(now)

    # -- results -------------------------------------------------------------------------------------
    @property
    def rows_in_window(self) -> int:
        return int(self._window.total()[0]) if self._window is not None else 0

    def ratio(self, feature: str, reason: str) -> float | None:
        """Window share of rows with a bad value (``unseen_category``: of the rows where the
        feature is present), or None below ``min_rows`` such rows / unknown feature."""
        if self._window is None or (feature, reason) not in self._layout:
            return None
        return self._share(self._window.total(), feature, reason)

    def _share(self, tot: np.ndarray, feature: str, reason: str) -> float | None:
        """The share exported for ``(feature, reason)`` from the window's totals ``tot``.

        An unseen category is judged among present values, as the reference's Good-Turing rate
        is (:attr:`CategoricalProfile.unseen_ratio`); over all rows, missing values would dilute
        it and hide a rise among the values actually sent."""
        base = tot[0]
        missing = self._layout.get((feature, "missing")) if reason == "unseen_category" else None
        if missing is not None:  # (always there: a feature's reasons get their columns together)
            base = base - tot[missing]
        # at least one row whatever min_rows (0 is accepted): a window whose rows all lack the
        # feature has no share of present values, and 0 / 0 exported NaN
        if base < max(self.min_rows, 1):
            return None
        return float(tot[self._layout[(feature, reason)]] / base)

    def _stuck_after(self, feature: str) -> int | None:
        ref = self._num_ref.get(feature) or self._cat_ref.get(feature)
        return None if ref is None else ref["stuck_after"]

    def stuck(self, feature: str) -> bool:
        after = self._stuck_after(feature)
        return after is not None and self._run.get(feature, 0) >= after

    def export(self, out: "MetricWriter") -> None:
        if self._window is None:
            return
        tot = self._window.total()
        rows = tot[0]
        out.set("monitor_data_window_rows", float(rows))
        if self.profile is not None:
            out.set("monitor_data_reference_rows", float(self.profile.n_rows))
        # one bulk write per metric (hundreds of series per drained batch; see MetricStore.set_many)
        ratios: list[tuple[tuple[str, str], float]] = []
        expected: list[tuple[tuple[str, str], float]] = []
        added: list[tuple[tuple[str, str], float]] = []
        for (name, reason), pos in self._layout.items():
            labels = (name, reason)
            share = self._share(tot, name, reason)
            if share is not None:
                ratios.append((labels, share))
            else:
                out.remove("monitor_data_invalid_ratio", labels)
            exp = (self._num_ref.get(name) or self._cat_ref.get(name) or {}).get("expected", {})
            if reason in exp:
                expected.append((labels, float(exp[reason])))
            added.append((labels, self._pending.pop(labels, 0.0)))
        out.inc_many("monitor_data_invalid_rows", added)
        out.set_many("monitor_data_invalid_ratio", ratios)
        out.set_many("monitor_data_reference_invalid_ratio", expected)
        out.set_many("monitor_data_stuck_run_rows", [((name,), float(run)) for name, run in self._run.items()])
        out.set_many("monitor_data_stuck", [((name,), 1.0 if self.stuck(name) else 0.0)
                                            for name in self._run if self._stuck_after(name) is not None])

    # -- state ---------------------------------------------------------------------------------------
    #: 2: the configured ``features`` are saved and checked, the layout grows by name.
    state_version = 2

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": self.state_version,
            "features": None if self.features is None else list(self.features),
            "layout": [[a, b, int(p)] for (a, b), p in self._layout.items()],
            "window": self._window.state_dict() if self._window is not None else None,
            "pending": [[a, b, v] for (a, b), v in self._pending.items()],
            "run": dict(self._run), "last": dict(self._last),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a saved state; one saved for other features, or whose counts do not fit this
        detector's reference, is refused (``ValueError`` naming the difference: the checkpoint
        restore then starts this detector empty, and it refills over one window) rather than
        applied to the wrong columns."""
        if int(state.get("version", -1)) != self.state_version:
            raise ValueError(f"{self.kind}: the state was saved by another version of the detector "
                             f"({state.get('version')}, this one reads {self.state_version})")
        saved = state.get("features")
        mine = None if self.features is None else list(self.features)
        if (saved is None) != (mine is None) or (saved is not None and set(saved) != set(mine or ())):
            raise ValueError(f"{self.kind}: the state was saved watching features {saved or 'all'}, this detector "
                             f"watches {mine or 'all'} (features changed in the configuration)")
        layout = {(str(a), str(b)): int(p) for a, b, p in state["layout"]}
        if sorted(layout.values()) != list(range(1, len(layout) + 1)):
            raise ValueError(f"{self.kind}: the state's columns are not numbered 1..{len(layout)}")
        for name, reason in layout:
            numeric = reason in ("inf", "out_of_range") or (reason in ("missing", "wrong_type") and name in self._num_ref)
            if reason not in REASONS or reason not in self._reasons(name, numeric):
                raise ValueError(f"{self.kind}: the state counts {reason!r} for feature {name!r}, which this detector "
                                 "does not (saved against another reference, or other features)")
        self._reset()
        self._layout = layout
        if state["window"] is not None:
            self._window = SlidingWindow(self.window_s, (len(self._layout) + 1,), self.n_slots)
            self._window.load_state_dict(state["window"])
        self._pending = {(a, b): float(v) for a, b, v in state["pending"]}
        self._run = {k: int(v) for k, v in state["run"].items()}
        self._last = {k: v if v is None or isinstance(v, str) else float(v) for k, v in state["last"].items()}


def _categorical_repeat_prob(profile: Any) -> float:
    """Probability that two independent present values of a categorical feature are equal.

    Rows beyond the profile's category cap (``n_other``) fell in categories rarer than the least
    frequent one kept, so they add at most ``share_other x share_least``; that bound is added,
    erring towards a longer run before "stuck" (fewer false alarms).
    """
    counts = np.asarray(profile.counts, dtype=np.float64)
    present = float(profile.n - profile.n_missing)
    if present <= 0 or counts.size == 0:
        return 0.0
    p = counts / present
    other = profile.n_other / present * float(p.min())
    return float(min(np.sum(p * p) + other, 1.0))
