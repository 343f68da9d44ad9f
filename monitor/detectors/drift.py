"""Input drift per feature: a sequential alarm with a calibrated false-alarm rate, windowed tests
with p-values and effect sizes, and an explanation naming the features that drive each alarm.

Two views of the same binned stream:

* **Sequential alarm** (:class:`monitor.stats.sequential.BinnedSequentialTest`): every ``step``
  rows, windows of the last ``scales`` rows are tested bin by bin against the reference, with
  thresholds set from ``ert`` (expected rows between false alarms, default 1,000,000) and corrected
  across features (``correction``). An alarm also needs a bin share to move by ``min_effect``.
  This is what rules alert on (``monitor_drift_detected``). For numeric features of ``input_drift``
  the same windows also get linear score tests (:mod:`monitor.stats.score_tests`: a rank location
  test and likelihood-ratio scores against the feature being rescaled), which take half of the
  ERT budget and catch changes that move every quantile a little (a x1.3 unit change) far sooner
  than the per-bin bands; ``monitor_drift_feature_score_ratio`` is the larger of both ratios.
* **Windowed figures** over the event-time window (``window_s``): per feature, the KS p-value
  (numeric; tie-exact on the bins) or chi-squared p-value (categorical), and PSI, Jensen-Shannon,
  normalised Wasserstein, mean shift and scale ratio. ``monitor_drift_features_drifted`` counts
  features significant after correction at ``alpha`` *and* with a Jensen-Shannon distance of at
  least ``min_js``: large windows never turn trivial differences into drift.

On an alarm the flagged features are ranked by how much their whole distribution moved in the
alarm window (standardised chi-squared of its bins against the reference, or the score tests'
ratio when larger: ``SequentialResult.strength``), not by how far beyond its threshold each is
(the exported value, so that rank 1 may show a lower value than rank 2), and each
gets a plain description of what changed, computed from the alarm window's moments: ``scaled x10``,
``shifted +1.5 sd``, ``stuck at 3``, ``missing 35%``, ``unseen categories 12%``... exported as
``monitor_drift_top_feature{rank, feature, change, since}`` (top ``top_k`` only).
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from monitor.detectors.base import Detector
from monitor.profile import CategoricalProfile, NumericProfile, Profile, numeric_profile, profile_of
from monitor.stats.multiple_testing import CORRECTIONS, reject
from monitor.stats.score_tests import DEFAULT_FACTOR, SCORE_TAILS, bootstrap_null, feature_scores
from monitor.stats.sequential import BinnedSequentialTest, moment_values
from monitor.stats.univariate import chi2_draws, compare_counts, running_sd_resolves, tie_tolerant
from monitor.windows import SlidingWindow

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["Channel", "RecentValues", "FeatureBinner", "DriftCore", "BinnedDriftDetector", "FeatureDriftDetector", "channels_from_profile", "edge_counts", "channel_scores", "describe_change", "resolve_ert", "DEFAULT_ERT", "rank_label"]

#: Default expected run time (rows between false alarms on undrifted data).
DEFAULT_ERT = 1_000_000.0
#: Reference rows per feature resampled to measure the score tests' bias (calibration cost bound).
BOOTSTRAP_ROWS = 2000
#: Exact (tie-aware) KS p-values of the windowed figures only below this work budget; above it the
#: asymptotic (conservative with ties) p-value keeps a refresh under a few milliseconds per feature.
WINDOW_EXACT_BUDGET = 200_000


# -- channels: how each feature is binned ----------------------------------------------------------
#: Share of a categorical feature's reference rows that choose which of its categories get bins of
#: their own when it has more than ``max_categories`` (see :meth:`Channel.categorical`).
CATEGORY_SELECTION_SHARE = 0.5
#: Bins the other categories of such a feature are hashed into.
RARE_BUCKETS = 8


def rare_bucket(category: str) -> int:
    """The bin, among :data:`RARE_BUCKETS`, of a category without one of its own: a hash of its
    text, the same in every process (``hash()`` of a str is salted per process)."""
    return zlib.crc32(category.encode("utf-8")) % RARE_BUCKETS


class RecentValues:
    """The live values of a categorical feature that have no bin of their own (its "other" bin,
    the hash buckets of its rare categories, the unseen bin), the most frequent of the recent
    rows: what names the value behind a change of such a bin ("'other (5 of 8)' 12% -> 29%, most
    often 'acme-17' (20% of the last 300 rows)"), where the bin alone told on-call nothing to act on.

    Bounded: at most :attr:`CAPACITY` values (a new one takes the place of the lightest when it
    is heavier), :attr:`PER_BATCH` candidates a batch (its most frequent: a value seen once in a
    batch of ids is no news), counts halved every :attr:`HALF_LIFE_ROWS` rows. The value's share is
    counted over the last rows of the alarm's window, from the candidates' counts in the last
    chunks of :attr:`CHUNK_ROWS` rows (at most :attr:`BATCHES_KEPT` chunks, :attr:`ROWS_KEPT`
    rows): read from the decayed counts, a value grown to a fifth of the rows read 2% of them at
    an alarm 100 rows after the onset (the rows before it, thousands in the half-life, diluted
    it). Not checkpointed: after a restart the explanation names no value until traffic has come
    again.
    """

    CAPACITY = 32
    PER_BATCH = 8
    HALF_LIFE_ROWS = 2_000.0
    BATCHES_KEPT = 1_000  # chunks
    ROWS_KEPT = 5_000
    CHUNK_ROWS = 100  # a large batch is kept in chunks of this many rows

    __slots__ = ("counts", "batches", "kept_rows")

    def __init__(self) -> None:
        self.counts: dict[str, list[float]] = {}  # value -> [bin, weight]
        self.batches: deque[tuple[int, dict[str, int]]] = deque()  # newest last: (rows, candidate -> count)
        self.kept_rows = 0  # the rows of self.batches

    def add(self, values: list[str], bins: list[int], counts: list[int], rows: int,
            chunks: list[tuple[int, dict[str, int]]]) -> None:
        """Count a batch of ``rows`` rows whose candidate ``values`` (of ``bins``) came ``counts``
        times, in ``chunks`` of its rows in order (rows, value -> count)."""
        kept = self.counts
        decay = 0.5 ** (rows / self.HALF_LIFE_ROWS)
        for entry in kept.values():
            entry[1] *= decay
        for value, b, c in zip(values, bins, counts):
            entry = kept.get(value)
            if entry is not None:
                entry[0], entry[1] = b, entry[1] + c
                continue
            if len(kept) >= self.CAPACITY:
                lightest = min(kept, key=lambda k: kept[k][1])
                if kept[lightest][1] >= c:
                    continue
                del kept[lightest]
            kept[value] = [b, float(c)]
        self.batches.extend(chunks)
        self.kept_rows += rows  # the chunks hold the batch's rows
        while len(self.batches) > self.BATCHES_KEPT or self.kept_rows - self.batches[0][0] >= self.ROWS_KEPT:
            self.kept_rows -= self.batches.popleft()[0]

    def most_often(self, b: int, rows: float = 0.0) -> tuple[str, float, int] | None:
        """The heaviest recent value of bin ``b``, its share of the last ``rows`` rows (whole
        batches, newest first, until they hold ``rows``; all kept when 0) and those rows, if any."""
        best, weight = None, 0.0
        for value, (vb, w) in self.counts.items():
            if vb == b and w > weight:
                best, weight = value, w
        if best is None:
            return None
        seen = covered = 0
        for n, values in reversed(self.batches):
            if rows and covered >= rows:
                break
            covered += n
            seen += values.get(best, 0)
        return (best, seen / covered, covered) if covered else None


@dataclass
class Channel:
    """One monitored stream (a feature or a model output) and its reference bins.

    Numeric bins: ``len(edges) + 1`` value bins then one for missing values, which also holds the
    infinite ones: the profile's value bins count finite values only and its ``n_inf`` goes to
    this bin (binned by value, a reference's usual share of inf read as drift in the top bin).
    Categorical bins: the ``categories`` (most frequent reference ones), one for the other
    reference categories, one for missing values, one for values never seen in the reference
    (reference pseudo-count: the number of singletons, the Good-Turing estimate of the unseen
    rate). When the profile kept only its most frequent categories (``n_other`` rows beyond its
    cap), a live value outside them may be a reference category as well as a new one, so every
    such value goes to the "other" bin (``capped``), whose reference count holds the rows
    beyond the cap, and the unseen bin stays empty: read as unseen, the rows of categories the
    profile dropped raised false alarms on unchanged traffic.
    """

    name: str
    kind: str  # "numeric" or "categorical"
    ref: np.ndarray  # reference count per bin
    edges: np.ndarray | None = None
    positions: np.ndarray | None = None  # reference mean value per value bin
    mean: float = float("nan")
    sd: float = float("nan")
    categories: tuple[str, ...] = ()
    lookup: dict[str, int] | None = None  # every reference category -> bin
    fine: NumericProfile | None = None  # the reference profile at its own (finer) resolution
    capped: bool = False  # categorical: the profile dropped categories, so none is known unseen
    chosen_on_half: bool = False  # categorical: its binned categories chosen on half the reference's rows
    #: categorical: the recent live values without a bin of their own (live state, not reference)
    recent: RecentValues | None = field(default=None, compare=False, repr=False)

    def most_often(self, b: int, rows: float = 0.0) -> str:
        """", most often 'value' (its share of the last ``rows`` rows)" for a categorical bin that
        holds values of no bin of their own."""
        found = None if self.recent is None or b < len(self.categories) else self.recent.most_often(b, rows)
        if found is None:
            return ""
        value, share, covered = found
        return (f", most often '{value[:40]}{'...' if len(value) > 40 else ''}' ({share * 100:.0f}% of the last "
                f"{covered:,} rows)")

    @property
    def n_bins(self) -> int:
        return int(self.ref.size)

    @property
    def missing_bin(self) -> int:
        return self.n_bins - 1 if self.kind == "numeric" else self.n_bins - 2

    @property
    def unseen_bin(self) -> int:
        return self.n_bins - 1 if self.kind == "categorical" else -1

    def bin_label(self, b: int) -> str:
        if b == self.missing_bin:
            return "missing"
        if b == self.unseen_bin:
            return "unseen"
        if self.kind == "categorical":
            if b < len(self.categories):
                return self.categories[b]
            if self.chosen_on_half:  # the rare categories' hash buckets
                return f"other ({b - len(self.categories) + 1} of {RARE_BUCKETS})"
            return "other"
        e = self.edges if self.edges is not None else np.empty(0)
        if b == 0:
            return f"< {e[0]:.4g}" if e.size else "all"
        if b >= e.size:
            return f">= {e[-1]:.4g}"
        return f"[{e[b - 1]:.4g}, {e[b]:.4g})"

    @classmethod
    def numeric(cls, p: NumericProfile, n_bins: int) -> "Channel":
        c = p.coarsen(n_bins)
        ref = np.concatenate([c.counts, [float(c.n_missing + c.n_inf)]])
        # edges sit on reference values: one a millionth below counts as on it (a tree's leaf value
        # served in float32 against a float64 reference, see monitor.stats.univariate.tie_tolerant)
        return cls(p.name, "numeric", ref, tie_tolerant(c.edges), c.positions, p.mean, p.std, fine=p)

    @classmethod
    def categorical(cls, p: CategoricalProfile, max_categories: int) -> "Channel":
        """Bins of a categorical feature. With more categories than ``max_categories``, which ones
        get a bin of their own is chosen on a random half of the reference's rows (a binomial
        thinning of each count, seeded by the feature's name) and the bins' expected counts come
        from the other half: chosen and counted on the same rows, the kept categories were those
        whose counts came out high (a winner's curse), so live traffic read as short of them:
        200 equally common categories, 2,000 reference rows, 40,000 unchanged live rows:
        ModelInputDrift on every seed. The thinning costs those features half their reference
        rows in the tests' noise; a feature with at most ``max_categories`` keeps all of them."""
        capped = p.n_other > 0
        counts = np.asarray(p.counts, dtype=np.int64)
        if len(p.categories) <= max_categories:
            unseen = 0.0 if capped else float(p.n_singletons)
            ref = np.concatenate([counts.astype(np.float64), [float(p.n_other), float(p.n_missing), unseen]])
            lookup = {c: i for i, c in enumerate(p.categories)}
            return cls(p.name, "categorical", ref, categories=tuple(p.categories), lookup=lookup, capped=capped)
        rng = np.random.default_rng(zlib.crc32(p.name.encode("utf-8")))
        chosen_on = rng.binomial(counts, CATEGORY_SELECTION_SHARE)
        kept = np.argsort(-chosen_on, kind="stable")[:max_categories]
        expected = counts - chosen_on

        def other_half(n: int) -> float:
            return float(n - rng.binomial(n, CATEGORY_SELECTION_SHARE))

        top = tuple(p.categories[i] for i in kept.tolist())
        position = {c: i for i, c in enumerate(top)}
        # the other categories in RARE_BUCKETS bins by a hash of their text (independent of their
        # counts, so no winner's curse): in one bin, a change among them (one of 180 rare values
        # growing to a fifth of traffic) barely moved its share and was not detected
        bucket_of = np.array([rare_bucket(c) for c in p.categories], dtype=np.int64)
        lookup = {c: position.get(c, len(top) + int(b)) for c, b in zip(p.categories, bucket_of)}
        rare = np.ones(len(p.categories), dtype=bool)
        rare[kept] = False
        buckets = np.bincount(bucket_of[rare], weights=expected[rare].astype(np.float64), minlength=RARE_BUCKETS)
        buckets += other_half(p.n_other) / RARE_BUCKETS  # rows beyond the profile's cap: names unknown, spread evenly
        unseen = 0.0
        if not capped and p.n_singletons:
            # the Good-Turing share of present values never seen (singletons over present rows), taken
            # out of the rare categories' bins, whose observed share it is part of: added on top, a
            # feature of unique values (ids, timestamps) expected half its live values unseen and
            # read all of them unseen as drift
            present = float(expected.sum())  # the held half's present values (not capped: none beyond)
            unseen = float(np.rint(p.n_singletons / max(p.n - p.n_missing, 1) * present))
            total = float(buckets.sum())
            buckets *= max(total - unseen, 0.0) / total if total > 0 else 0.0
        ref = np.concatenate([expected[kept].astype(np.float64), buckets, [other_half(p.n_missing), unseen]])
        return cls(p.name, "categorical", ref, categories=top, lookup=lookup, capped=capped, chosen_on_half=True)

    def bin_numeric(self, v: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.edges, v, side="right")
        bad = ~np.isfinite(v)  # NaN and +-inf: the missing bin, as in the reference counts
        if bad.any():
            idx[bad] = self.missing_bin
        return idx

    def bin_categorical(self, col: np.ndarray) -> np.ndarray:
        out = np.full(col.shape[0], self.unseen_bin, dtype=np.int64)
        missing = np.fromiter((v is None for v in col), dtype=bool, count=col.shape[0])
        out[missing] = self.missing_bin
        present = ~missing
        if present.any():
            vals, inv = np.unique(np.asarray([str(v) for v in col[present]], dtype=object).astype(str), return_inverse=True)
            lk = self.lookup or {}
            if self.capped and self.chosen_on_half:  # beyond the profile's cap: the bucket its text hashes to
                base = len(self.categories)
                mapped = np.asarray([lk.get(v, base + rare_bucket(v)) for v in vals.tolist()], dtype=np.int64)
            else:
                absent = len(self.categories) if self.capped else self.unseen_bin
                mapped = np.asarray([lk.get(v, absent) for v in vals.tolist()], dtype=np.int64)
            out[present] = mapped[inv]
            outside = mapped >= len(self.categories)  # other, rare buckets, unseen
            if outside.any():
                self._note_recent(vals, inv, mapped, outside)
        return out

    def _note_recent(self, vals: np.ndarray, inv: np.ndarray, mapped: np.ndarray, outside: np.ndarray) -> None:
        per = np.bincount(inv.ravel(), minlength=vals.size)
        cand = np.flatnonzero(outside)
        keep = RecentValues.PER_BATCH
        if cand.size > keep:
            cand = cand[np.argpartition(-per[cand], keep - 1)[:keep]]
        if self.recent is None:
            self.recent = RecentValues()
        # the candidates' counts per chunk of rows, in order: a value's share of the last rows
        # explained is read from them (a drain of thousands of rows holds the onset and the rows before)
        flat = inv.ravel()
        step = RecentValues.CHUNK_ROWS
        n_chunks = -(-flat.size // step)
        slot = np.full(vals.size, -1, dtype=np.int64)
        slot[cand] = np.arange(cand.size)
        at = slot[flat]
        sel = at >= 0
        grid = np.bincount(np.flatnonzero(sel) // step * cand.size + at[sel],
                           minlength=n_chunks * cand.size).reshape(n_chunks, cand.size)
        names = vals[cand].tolist()
        chunks = [(min(step, flat.size - i * step), {names[j]: int(row[j]) for j in np.flatnonzero(row).tolist()})
                  for i, row in enumerate(grid)]
        self.recent.add(names, mapped[cand].tolist(), per[cand].tolist(), int(inv.size), chunks)


class FeatureBinner:
    """Turns a batch's feature columns into bin indices ``(n, channels)`` and values ``(n, channels)``."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.channels = list(channels)
        self.names = tuple(c.name for c in channels)
        self.n_bins_max = max((c.n_bins for c in channels), default=1)
        self._maps: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, int]]] = {}

    def ref_matrix(self) -> np.ndarray:
        """Reference counts ``(channels, max bins)`` padded with -1."""
        m = np.full((len(self.channels), self.n_bins_max), -1.0)
        for i, c in enumerate(self.channels):
            m[i, : c.n_bins] = c.ref
        return m

    def _map(self, batch: "Batch") -> list[tuple[str, int]]:
        key = (tuple(batch.numeric_names), tuple(batch.categorical_names))
        m = self._maps.get(key)
        if m is None:
            num = {n: i for i, n in enumerate(batch.numeric_names)}
            cat = {n: i for i, n in enumerate(batch.categorical_names)}
            m = []
            for c in self.channels:
                if c.kind == "numeric" and c.name in num:
                    m.append(("num", num[c.name]))
                elif c.kind == "categorical" and c.name in cat:
                    m.append(("cat", cat[c.name]))
                else:
                    m.append(("absent", -1))
            if len(self._maps) > 16:
                self._maps.clear()
            self._maps[key] = m
        return m

    def _numeric_plan(self, mapping: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Channel ids, batch columns, padded edge matrix and missing bins of the numeric channels."""
        key = tuple(mapping)
        plan = getattr(self, "_plan", None)
        if plan is not None and plan[0] == key:
            return plan[1]
        chans = np.array([j for j, (src, _) in enumerate(mapping) if src == "num"], dtype=np.int64)
        cols = np.array([col for src, col in mapping if src == "num"], dtype=np.int64)
        width = max((self.channels[j].edges.size for j in chans.tolist()), default=0)
        edges = np.full((chans.size, max(width, 1)), np.inf)
        for i, j in enumerate(chans.tolist()):
            e = self.channels[j].edges
            edges[i, : e.size] = e
        missing = np.array([self.channels[j].missing_bin for j in chans.tolist()], dtype=np.int64)
        self._plan = (key, (chans, cols, edges, missing))
        return self._plan[1]

    def bin(self, batch: "Batch") -> tuple[np.ndarray, np.ndarray]:
        """Bin indices ``(n, channels)`` (-1 where the batch lacks the feature) and numeric values.

        All numeric channels are binned in one vectorised comparison against a padded matrix of
        edges (``x >= edge`` counts, the same as ``searchsorted(side="right")``).
        """
        n = len(batch)
        d = len(self.channels)
        mapping = self._map(batch)
        chans, cols, edges, missing = self._numeric_plan(mapping)
        if chans.size == d:
            v = batch.numeric[:, cols] if not (cols.size == batch.numeric.shape[1] and (cols == np.arange(cols.size)).all()) else batch.numeric
            vals = np.asarray(v, dtype=np.float64)
            idx = edge_counts(vals, edges)
            bad = ~np.isfinite(vals)  # NaN and +-inf go to the missing bin (see Channel)
            if bad.any():
                idx = np.where(bad, missing[None, :], idx)
            return idx, vals
        idx = np.full((n, d), -1, dtype=np.int64)
        vals = np.full((n, d), np.nan)
        if chans.size:
            v = np.asarray(batch.numeric[:, cols], dtype=np.float64)
            ix = edge_counts(v, edges)
            idx[:, chans] = np.where(np.isfinite(v), ix, missing[None, :])
            vals[:, chans] = v
        for j, (src, col) in enumerate(mapping):
            if src == "cat":
                idx[:, j] = self.channels[j].bin_categorical(batch.categorical[:, col])
        return idx, vals


def edge_counts(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``(v[:, :, None] >= edges[None]).sum(axis=2)`` as int64: per value, the edges of its column
    at or below it (``edges`` one row per column, padded with ``inf``), i.e. its bin.

    Why: summing an ``(n, d, width)`` boolean array along its short last axis casts it through a
    buffer; one comparison per edge column added into a ``uint8`` count (``width`` is at most a
    few dozen) is the same integers at about a quarter of the time, with no ``(n, d, width)``
    temporary, for every row every drift detector bins.

    >>> edge_counts(np.array([[0.5, 3.0], [-1.0, np.nan]]), np.array([[0.0, 1.0], [2.0, np.inf]])).tolist()
    [[1, 1], [0, 0]]
    """
    width = edges.shape[1]
    out = np.zeros(v.shape, dtype=np.uint8 if width < 256 else np.int64)
    for k in range(width):
        out += v >= edges[:, k]
    return out.astype(np.int64, copy=False)


def channels_from_profile(profile: Profile, *, n_bins: int = 10, max_categories: int = 20,
                          features: Sequence[str] | None = None) -> list[Channel]:
    chans: list[Channel] = []
    wanted = None if features is None else set(features)
    if wanted is not None:
        known = set(profile.numeric_names) | set(profile.categorical_names)
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"features {unknown} are not in the reference; it has {sorted(known)}")
    for p in profile.numeric:
        if wanted is None or p.name in wanted:
            if p.counts.sum() + p.n_missing > 0:
                chans.append(Channel.numeric(p, n_bins))
    for c in profile.categorical:
        if wanted is None or c.name in wanted:
            chans.append(Channel.categorical(c, max_categories))
    if not chans:
        raise ValueError("no feature to monitor: the reference has no usable feature")
    return chans


def channel_scores(channels: Sequence[Channel], n_bins_max: int, factor: float = DEFAULT_FACTOR,
                   samples: dict[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin scores ``(channels, n_bins_max, 3)`` of the rank and rescaling tests
    (:mod:`monitor.stats.score_tests`) over each numeric channel's value bins, zero elsewhere
    (categorical channels, the missing bin), where no score test applies; and the bootstrap
    corrections of their null ``(channels, 3)`` (bias, reference variance) from the reference rows
    in ``samples`` (feature name -> values; a feature without rows is resampled from its profile)."""
    k = len(SCORE_TAILS)
    out = np.zeros((len(channels), n_bins_max, k))
    offset = np.zeros((len(channels), k))
    ref_var = np.zeros((len(channels), k))
    for j, ch in enumerate(channels):
        if ch.kind != "numeric" or ch.fine is None or ch.edges is None:
            continue
        vb = ch.n_bins - 1
        if vb < 3:
            continue
        out[j, :vb] = feature_scores(ch.ref[:vb], ch.edges, ch.fine, factor)
        values = (samples or {}).get(ch.name)
        if values is None or np.isfinite(values).sum() < 20:
            values = _profile_draws(ch.fine, int(min(ch.ref[:vb].sum(), BOOTSTRAP_ROWS)))
        elif values.size > BOOTSTRAP_ROWS:  # bias and variance scale as 1 / rows: a subsample measures them
            values = values[np.random.default_rng(j).choice(values.size, BOOTSTRAP_ROWS, replace=False)]
        fine_bins = int(ch.fine.counts.size)
        coarse = vb

        def build(v: np.ndarray, name: str = ch.name) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            c = Channel.numeric(numeric_profile(name, v, max(fine_bins, coarse + 1)), coarse)
            return c.edges, c.ref[:-1], feature_scores(c.ref[:-1], c.edges, c.fine, factor)

        offset[j], ref_var[j] = bootstrap_null(values, build, float(ch.ref[:vb].sum()), seed=j)
    return out, offset, ref_var


def _profile_draws(fine: NumericProfile, n: int) -> np.ndarray:
    """``n`` values spread over a profile's bins in proportion to their counts (evenly within each
    bin; atoms for a feature with few distinct values): stand-in reference rows for the bootstrap
    when the profile kept none."""
    counts = np.asarray(fine.counts, dtype=np.float64)
    k = np.floor(counts / max(counts.sum(), 1.0) * n + 0.5).astype(np.int64)
    if int(fine.n_distinct) <= counts.size:
        with np.errstate(invalid="ignore", divide="ignore"):
            pos = np.where(counts > 0, np.asarray(fine.sums) / np.maximum(counts, 1.0), 0.0)
        return np.repeat(pos, k)
    lo = np.concatenate([[float(fine.min)], fine.edges])
    hi = np.concatenate([fine.edges, [float(fine.max)]])
    parts = [a + (b - a) * (np.arange(c) + 0.5) / max(c, 1) for a, b, c in zip(lo, hi, k.tolist()) if c > 0]
    return np.concatenate(parts) if parts else np.zeros(0)


# -- explanation -----------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 100 else f"{x:.3g}"


def describe_change(ch: Channel, counts: np.ndarray, moments: np.ndarray | None) -> str:
    """A few words saying what changed in ``ch`` between the reference and a window.

    >>> c = Channel("income", "numeric", np.array([50.0, 50.0, 0.0]), np.array([1.0]), mean=1.0, sd=0.5)
    >>> describe_change(c, np.array([0.0, 100.0, 0.0]), np.array([100.0, 1000.0, 12500.0]))
    'scaled x10'
    >>> never = Channel("income", "numeric", np.array([0.0, 0.0, 80.0]), np.array([1.0]))  # always missing
    >>> describe_change(never, np.array([60.0, 40.0, 0.0]), np.array([100.0, 80.0, 100.0]))
    'missing 100% -> 0%'
    """
    counts = np.asarray(counts, dtype=np.float64)[: ch.n_bins]
    n = counts.sum()
    if n <= 0:
        return "no data"
    ref = ch.ref
    p = ref / max(ref.sum(), 1.0)
    q = counts / n
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(q - p) / np.sqrt(np.maximum(p * (1 - p), 1e-4) / n)
    top = int(np.nanargmax(z))
    if top == ch.missing_bin and q[top] > p[top]:
        return f"missing {q[top] * 100:.0f}%"
    mb = ch.missing_bin
    if top == mb or ch.kind == "numeric" and ref[:mb].sum() == 0 and q[mb] < p[mb]:
        # the missing share fell: values where the reference had few or none (a reference that
        # held none has no sd to measure them by: they read "scaled xinf")
        return f"missing {p[mb] * 100:.0f}% -> {q[mb] * 100:.0f}%"
    if ch.kind == "categorical":
        if top == ch.unseen_bin:
            return f"unseen categories {q[top] * 100:.0f}%{ch.most_often(top, n)}"
        return f"'{ch.bin_label(top)}' {p[top] * 100:.0f}% -> {q[top] * 100:.0f}%{ch.most_often(top, n)}"
    if moments is None or moments[0] < 2:
        return f"bin {ch.bin_label(top)} {p[top] * 100:.0f}% -> {q[top] * 100:.0f}%"
    m = moments[1] / moments[0]
    sd = float(np.sqrt(max(moments[2] / moments[0] - m * m, 0.0)))
    rsd = ch.sd if ch.sd > 0 else 0.0
    # the window's sd from running sums: under running_sd_resolves, beside a reference sd that is
    # under it too (a feature far from zero with a tiny spread), it is rounding noise, not a scale
    scaled = rsd == 0 or running_sd_resolves(sd, m) or running_sd_resolves(rsd, ch.mean)
    if sd <= 1e-9 * max(abs(m), 1.0) and rsd > 0 and scaled:
        return f"stuck at {_fmt(m)}"
    ratio = sd / rsd if rsd > 0 else float("inf")
    shift = (m - ch.mean) / rsd if rsd > 0 else 0.0
    if scaled and (ratio > 1.12 or ratio < 0.89):
        mean_ratio = m / ch.mean if abs(ch.mean) > 0.25 * rsd else None
        if mean_ratio is None and abs(shift) < 0.5 or mean_ratio is not None and abs(np.log(max(mean_ratio, 1e-12) / ratio)) < 0.15:
            return f"scaled x{_fmt(ratio)}"
        if abs(shift) < 0.25:
            return f"spread x{_fmt(ratio)}"
    if abs(shift) >= 0.1:
        return f"shifted {shift:+.2g} sd"
    return f"bin {ch.bin_label(top)} {p[top] * 100:.0f}% -> {q[top] * 100:.0f}%"


# -- the shared core --------------------------------------------------------------------------------
class DriftCore:
    """Sequential alarm + windowed figures over a set of channels; used by every drift detector.

    Holds no reference to a batch: callers pass bin indices, values and event times.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        name: str,
        ert: float,
        step: int,
        scales: Sequence[int],
        correction: str,
        min_effect: float,
        top_k: int,
        window_s: float,
        n_slots: int,
        alpha: float,
        min_js: float,
        min_rows: int,
        clear_after: int | None,
        windowed: bool = True,
        binner: Any = None,
        upward: bool = False,
        score_tests: bool = False,
        score_share: float = 0.5,
        samples: dict[str, np.ndarray] | None = None,
    ) -> None:
        if correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}")
        self.binner = binner if binner is not None else FeatureBinner(channels)
        #: one-sided: a numeric channel is drifted, for the sequential alarm and over the window
        #: alike, only when its mean rose above the reference's (the PCA detector's reconstruction
        #: error: errors that fall are no drift); categorical channels have no direction
        self.upward = bool(upward)
        self.channels = self.binner.channels
        self.name = name
        self.top_k = int(top_k)
        self.alpha = float(alpha)
        self.min_js = float(min_js)
        self.min_rows = int(min_rows)
        self.correction = correction
        self.windowed = windowed
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        seq_correction = "fdr" if correction == "fdr" else "bonferroni"
        ordered = [c.n_bins - 1 if c.kind == "numeric" else 0 for c in self.binner.channels]
        scores = offset = ref_var = None
        if score_tests:
            scores, offset, ref_var = channel_scores(self.binner.channels, self.binner.n_bins_max, samples=samples)
        self.test = BinnedSequentialTest(self.binner.ref_matrix(), ordered=ordered, ert=ert, step=step, scales=scales,
                                         correction=seq_correction, min_effect=min_effect, scores=scores,
                                         score_tails=SCORE_TAILS if scores is not None else None, score_share=score_share,
                                         score_offset=offset, score_ref_var=ref_var)
        self.clear_after = int(clear_after) if clear_after is not None else int(max(scales))
        d, b = len(self.channels), self.binner.n_bins_max
        self._d, self._b = d, b
        self._dim = 2 * d * b + 2 * d
        self.reset()

    def reset(self) -> None:
        self.test._reset()
        self.window = SlidingWindow(self.window_s, (self._dim,), self.n_slots)
        self._pend = np.zeros(self._dim)
        self._pend_slot: int | None = None
        ring = self.test._k_max + 2
        self._block_ts = np.full(ring, np.nan)
        self.in_alarm = False
        self.pending_alarms = 0
        self.onset_ts = float("nan")
        self.since = ""
        self.last_flag_event = -(10**18)
        self.top: list[tuple[str, str, float]] = []
        self.top_dirty = True
        self.frozen = False
        self.alarm_event = 0
        self._index = {c.name: j for j, c in enumerate(self.channels)}
        for c in self.channels:
            c.recent = None
        self.figures: dict[str, Any] | None = None
        self._figures_at = float("-inf")
        self._exported_figures = None
        self._scored_at = -(10**18)
        self._scored_alarm = False
        self.now = float("-inf")

    # -- updating --------------------------------------------------------------------------------
    def update(self, ts: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> None:
        n = idx.shape[0]
        if n == 0:
            return
        t = self.test
        step = t.step
        g0 = t.n_seen
        flagged = t.update(idx, vals)
        if self.upward and flagged.any() and t.last is not None:
            flagged = flagged & self._rose(t.last)
        if flagged.any() and t.last is not None:
            last = t.last
            self.last_flag_event = last.event
            if not self.in_alarm:
                # the alarm dates from the batch's first flagged test, not its last: a batch of
                # thousands of rows put the onset (and the "since" label) at its end otherwise
                first = t.first if t.first is not None and (not self.upward or self._rose(t.first).any()) else last
                self.in_alarm = True
                self.frozen = False
                self.alarm_event = first.event
                self.pending_alarms += 1
                self.onset_ts = self._event_ts(max(first.event - first.scale, 0), g0, ts)
                self.since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.onset_ts)) if np.isfinite(self.onset_ts) else ""
            self._explain(last)
        elif self.in_alarm and t.n_seen - self.last_flag_event >= self.clear_after:
            self.in_alarm = False
            self.top = []
            self.top_dirty = True
        pos = g0 + np.arange(n)
        starts = np.flatnonzero(pos % step == 0)
        if starts.size:
            self._block_ts[(pos[starts] // step) % self._block_ts.size] = ts[starts]
        if self.windowed:
            self._accumulate(ts, idx, vals)
        self.now = max(self.now, float(ts.max()))

    def _event_ts(self, position: int, g0: int, ts: np.ndarray) -> float:
        """Event time of the row at stream ``position`` (a block start): from ``ts`` when it is in
        the batch that starts at ``g0``, else from the ring of earlier block starts (read before
        the batch's own are written), else the batch's first time."""
        if position >= g0:
            return float(ts[position - g0])
        block, size = position // self.test.step, self._block_ts.size
        newest = (g0 - 1) // self.test.step  # the newest block start written so far
        if block > newest - size:
            return float(self._block_ts[block % size])
        return float(ts[0])

    def _rose(self, result: Any) -> np.ndarray:
        """Which channels may alarm under :attr:`upward`: the numeric ones whose mean over the
        test's window (its finite count and sum) lies above the reference mean, and those without
        a direction (categorical, or no finite value in the window)."""
        rose = np.ones(len(self.channels), dtype=bool)
        m = result.moments
        if m is None:
            return rose
        for j, ch in enumerate(self.channels):
            if ch.kind == "numeric" and m[j, 0] > 0:
                rose[j] = m[j, 1] / m[j, 0] > ch.mean
        return rose

    def _explain(self, last: Any) -> None:
        """Rank flagged channels and describe them; descriptions freeze once a flagged window lies
        wholly after the alarm (pure post-change data), so that labels do not churn."""
        key = last.strength if last.strength is not None else last.score
        order = np.argsort(-np.where(last.flagged, key, -np.inf), kind="stable")
        pure = last.event - last.scale >= self.alarm_event
        if self.frozen and self.top:
            described = {f: c for f, c, _ in self.top}
            self.top = [(f, described[f], float(last.score[self._index[f]])) for f, _, _ in self.top]
            return
        top = []
        for j in order[: self.top_k].tolist():
            if not last.flagged[j]:
                continue
            ch = self.channels[j]
            mom = last.moments[j] if last.moments is not None else None
            top.append((ch.name, describe_change(ch, last.counts[j], mom), float(last.score[j])))
        if not top:
            return
        if [(a, b) for a, b, _ in top] != [(a, b) for a, b, _ in self.top]:
            self.top_dirty = True
        self.top = top
        self.frozen = pure

    def _accumulate(self, ts: np.ndarray, idx: np.ndarray, vals: np.ndarray) -> None:
        """Add counts, per-bin value sums and moments to the event-time window, per time slot."""
        slot_s = self.window.window_s / self.window.n_slots
        slots = np.floor(ts / slot_s).astype(np.int64)
        if slots[0] == slots[-1] and (slots.size < 3 or (np.diff(slots) == 0).all()):
            bounds = [0, ts.size]
        else:
            order_ok = (np.diff(slots) >= 0).all()
            if not order_ok:  # rare: out-of-order rows; group them by slot
                o = np.argsort(slots, kind="stable")
                ts, idx, vals, slots = ts[o], idx[o], vals[o], slots[o]
            bounds = [0, *np.flatnonzero(np.diff(slots)).__add__(1).tolist(), ts.size]
        d, b = self._d, self._b
        base = np.arange(d) * b
        for s0, s1 in zip(bounds[:-1], bounds[1:]):
            ix, vx = idx[s0:s1], vals[s0:s1]
            ok = ix >= 0
            fin = np.isfinite(vx)
            flat = base + ix
            agg = np.empty(self._dim)
            agg[: d * b] = np.bincount(flat[ok], minlength=d * b)
            good = ok & fin
            agg[d * b: 2 * d * b] = np.bincount(flat[good], weights=vx[good], minlength=d * b)
            vz = moment_values(vx)[1]
            agg[2 * d * b: 2 * d * b + d] = vz.sum(axis=0)
            agg[2 * d * b + d:] = (vz * vz).sum(axis=0)
            slot = int(slots[s0])
            if slot != self._pend_slot:  # batches of one slot are summed here, added to the window once
                self._flush()
                self._pend_slot = slot
            self._pend += agg

    def window_total(self) -> np.ndarray:
        """Statistics over the event-time window, including the slot still being summed."""
        return self.window.total() + (self._pend if self._pend_slot is not None else 0.0)

    def _flush(self) -> None:
        """Move the pending slot's statistics into the event-time window."""
        if self._pend_slot is not None and self._pend.any():
            slot_s = self.window.window_s / self.window.n_slots
            self.window.add(np.array([(self._pend_slot + 0.5) * slot_s]), None, self._pend[None, :])
        self._pend = np.zeros(self._dim)
        self._pend_slot = None

    def advance(self, now: float) -> None:
        slot_s = self.window.window_s / self.window.n_slots
        if self._pend_slot is not None and np.floor(now / slot_s) != self._pend_slot:
            self._flush()
        self.window.advance(now)
        self.now = max(self.now, now)

    # -- windowed figures --------------------------------------------------------------------------
    def figures_stale(self) -> None:
        """Drop the per-slot cache: the next :meth:`compute_figures` recomputes."""
        self._figures_at = float("-inf")

    def compute_figures(self) -> dict[str, Any]:
        """Per-channel tests and distances over the event-time window (cached per window slot)."""
        slot_s = self.window.window_s / self.window.n_slots
        if self.figures is not None and self.now - self._figures_at < slot_s:
            return self.figures
        d, b = self._d, self._b
        tot = self.window_total()
        counts = tot[: d * b].reshape(d, b)
        sums = tot[d * b: 2 * d * b].reshape(d, b)
        s1, s2 = tot[2 * d * b: 2 * d * b + d], tot[2 * d * b + d:]
        rows = int(counts[0].sum()) if d else 0
        per: list[Any] = []
        pvals = np.ones(d)
        # features whose test can see a change: a numeric feature constant in the reference has one
        # value bin, which every live value falls in (KS 0, p 1, JS and PSI 0 whatever arrives), so
        # its test figures are absent and it is left out of the correction; its effect sizes stay
        # (values off the constant are data quality's out-of-range share)
        tested = np.zeros(d, dtype=bool)
        for j, ch in enumerate(self.channels):
            c = counts[j, : ch.n_bins]
            if ch.kind == "numeric":
                vb = ch.n_bins - 1  # value bins only (missing is data quality's business)
                cv = c[:vb]
                nf = cv.sum()
                if nf < self.min_rows:
                    per.append(None)
                    continue
                with np.errstate(invalid="ignore", divide="ignore"):
                    cur_pos = sums[j, :vb] / cv
                mean = s1[j] / nf
                sd = float(np.sqrt(max(s2[j] / nf - mean * mean, 0.0)))
                st = compare_counts(ch.ref[:vb], cv, ordered=True, ref_positions=ch.positions, cur_positions=cur_pos,
                                    ref_moments=(ch.mean, ch.sd), cur_moments=(mean, sd), exact_budget=WINDOW_EXACT_BUDGET)
            else:
                if c.sum() < self.min_rows:
                    per.append(None)
                    continue
                # with few rows a category's expected count is small and the asymptotic p-value
                # too small (21 Zipf categories, 100 rows a window: 4x the nominal rate at 0.001)
                st = compare_counts(ch.ref, c, ordered=False, chi2_draws=chi2_draws(self.alpha, d), chi2_seed=j)
            per.append(st)
            pvals[j] = st.pvalue
            tested[j] = ch.kind != "numeric" or ch.n_bins - 1 >= 2
        drifted = 0
        counted_by_channel = np.zeros(len(self.channels), dtype=bool)  # one of the `drifted` (only where tested)
        if tested.any():
            rej = reject(pvals[tested], self.alpha, self.correction)
            js = np.array([s.js for s, t in zip(per, tested) if t])
            counted = rej & (js >= self.min_js)
            if self.upward:
                counted &= np.array([ch.kind != "numeric" or s.mean_shift_sd > 0
                                     for ch, s, t in zip(self.channels, per, tested) if t], dtype=bool)
            counted_by_channel[tested] = counted
            drifted = int(counted.sum())
        self.figures = {"rows": rows, "stats": per, "tested": tested, "counted": counted_by_channel,
                        "drifted": drifted if tested.any() else None}
        self._figures_at = self.now
        return self.figures

    # -- export ------------------------------------------------------------------------------------
    def export(self, out: "MetricWriter") -> None:
        det = self.name
        out.set("monitor_drift_detected", 1.0 if self.in_alarm else 0.0, (det,))
        if self.pending_alarms:
            out.inc("monitor_drift_alarms", float(self.pending_alarms), (det,))
            self.pending_alarms = 0
        else:
            out.inc("monitor_drift_alarms", 0.0, (det,))
        out.set("monitor_drift_ert_events", self.test.ert, (det,))
        if self.test.n_seen >= self.test.scales[0] and (
                self.test.n_seen - self._scored_at >= self.test.scales[-1] or self.in_alarm != self._scored_alarm):
            self._scored_at = self.test.n_seen
            self._scored_alarm = self.in_alarm
            score = self.test.scores()
            out.set("monitor_drift_score_ratio", float(score.max()) if score.size else 0.0, (det,))
            for j, ch in enumerate(self.channels):
                out.set("monitor_drift_feature_score_ratio", float(score[j]), (det, ch.name))
        if self.in_alarm and np.isfinite(self.onset_ts):
            out.set("monitor_drift_onset_timestamp_seconds", self.onset_ts, (det,))
        else:
            out.remove("monitor_drift_onset_timestamp_seconds", (det,))
        if self.top_dirty:
            _clear_detector(out, "monitor_drift_top_feature", det, getattr(self, "_written_top", []))
            written = []
            for rank, (feat, change, score) in enumerate(self.top if self.in_alarm else [], start=1):
                labels = (det, rank_label(rank, self.top_k), feat, change, self.since)
                out.set("monitor_drift_top_feature", score, labels)
                written.append(labels)
            self._written_top = written
            self.top_dirty = False
        elif self.in_alarm and self.top:
            # same features and words (a frozen description), newer score ratios: written too, or
            # the series kept the ratio of the last relabelling (and a restored monitor, which
            # writes its top afresh, exported other values than the one that ran on)
            for labels, (_, _, score) in zip(getattr(self, "_written_top", []), self.top):
                out.set("monitor_drift_top_feature", score, labels)
        if not self.windowed:
            return
        fig = self.compute_figures()
        if fig is getattr(self, "_exported_figures", None):
            return
        self._exported_figures = fig
        out.set("monitor_drift_window_rows", float(fig["rows"]), (det,))
        if fig["drifted"] is None:
            out.remove("monitor_drift_features_drifted", (det,))
        else:
            out.set("monitor_drift_features_drifted", float(fig["drifted"]), (det,))
        for ch, st, tested, counted in zip(self.channels, fig["stats"], fig["tested"], fig["counted"]):
            test = "ks" if ch.kind == "numeric" else "chi2"
            # which features ModelFeaturesDriftedOverWindow counted: the correction and the minimum
            # effect are the detector's, not to be redone in a rule from the p-values and distances
            _put(out, "monitor_drift_feature_drifted", float(counted) if tested else None, (det, ch.name))
            measures = {"js": None, "psi": None, "wasserstein": None, "mean_shift_sd": None, "scale_ratio": None}
            p = None
            if st is not None:
                p = st.pvalue if tested else None
                measures = {"js": st.js if tested else None, "psi": st.psi if tested else None,
                            "wasserstein": st.wasserstein, "mean_shift_sd": st.mean_shift_sd, "scale_ratio": st.scale_ratio}
            _put(out, "monitor_drift_feature_pvalue", p, (det, ch.name, test))
            for m, v in measures.items():
                if ch.kind == "categorical" and m not in ("js", "psi"):
                    continue
                _put(out, "monitor_drift_feature_effect", v, (det, ch.name, m))

    # -- persistence -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._flush()
        return {
            "test": self.test.state_dict(), "window": self.window.state_dict(), "block_ts": self._block_ts.copy(),
            "in_alarm": self.in_alarm, "pending_alarms": int(self.pending_alarms), "onset_ts": self.onset_ts, "since": self.since,
            "last_flag_event": int(self.last_flag_event), "now": self.now,
            "top": [[a, b, c] for a, b, c in self.top], "frozen": self.frozen, "alarm_event": int(self.alarm_event),
            "category_bins": self._category_bins(), "numeric_edges": self._numeric_edges(),
        }

    def _category_bins(self) -> dict[str, list[str]]:
        """Which category each categorical channel's bins hold: counts saved under another choice
        (an older agent's, or another reference's) are other bins' counts."""
        return {ch.name: list(ch.categories) + ([f"#buckets={RARE_BUCKETS}"] if ch.chosen_on_half else [])
                for ch in self.channels if ch.kind == "categorical"}

    def _numeric_edges(self) -> dict[str, list[float]]:
        """Each numeric channel's bin edges (at most ``n_bins - 1`` floats a channel): what its counts
        were binned on (see :meth:`check_edges`)."""
        return {ch.name: [float(e) for e in (ch.edges if ch.edges is not None else ())]
                for ch in self.channels if ch.kind == "numeric"}

    def check_edges(self, saved: Any, key: str = "numeric_edges", only: Sequence[str] | None = None) -> None:
        """``ValueError`` when a saved state's numeric counts were binned on other edges than this
        core's channels: a reference keeps its fingerprint when its bins change under it (an
        upgrade changing how quantile edges are taken or lowered, the PCA's calibration, the
        profile's finer bins coarsened another way), and the saved window's counts, restored as
        they are, would be read as other bins' (healthy rows then look drifted, or drifted ones
        healthy, until the window turns over).

        ``saved`` maps each numeric channel's name to its edges (``key`` names it in the messages);
        ``only``: the channels it holds edges of (default every numeric channel: a channel missing
        on either side was not binned on these edges). Compared to 1e-9 relative with no absolute
        slack, not exactly: edges computed from rows (the PCA's reconstruction errors, through its
        eigenvectors) may differ in their last bits on another CPU or BLAS, and a restart there
        would lose its window for nothing, while any change of binning moves an edge far more
        (:func:`~monitor.stats.univariate.tie_tolerant`'s lowering alone is 1e-6 of it); an
        absolute slack would be in each feature's own units, and an edge at 0 must stay at 0."""
        current = self._numeric_edges()
        if only is not None:
            current = {n: current[n] for n in only}
        if not isinstance(saved, dict):
            raise ValueError(f"{key} must map each numeric channel's name to its bin edges, got {type(saved).__name__}. "
                             f"Fix: drop {key!r} from the detector's state (then restored unchecked)")
        moved = []
        for name in [*current, *(n for n in saved if n not in current)]:  # in the channels' order
            if name not in current or name not in saved:
                moved.append(str(name))
                continue
            try:
                old = np.asarray(saved[name], dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{key}: the edges of {name!r} must be a list of numbers, got {saved[name]!r}. Fix: drop "
                                 f"{key!r} from the detector's state (then restored unchecked)") from None
            new = np.asarray(current[name], dtype=np.float64)
            if old.shape != new.shape or not np.allclose(old, new, rtol=1e-9, atol=0.0):
                moved.append(str(name))
        if moved:
            more = f" and {len(moved) - 5} more" if len(moved) > 5 else ""
            raise ValueError(f"the saved state's counts of {', '.join(moved[:5])}{more} were binned on other edges than "
                             "this detector's (its reference's bins changed since the state was saved: another n_bins, an "
                             "upgrade binning the same reference otherwise, or the PCA's calibration): they would be read "
                             "as other bins'. Nothing to fix: the detector starts empty and refills over one window")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("category_bins")
        if saved is None:  # saved before it was recorded: the most frequent categories then, as still
            saved = {ch.name: list(ch.categories) for ch in self.channels  # for those not chosen on half
                     if ch.kind == "categorical" and not ch.chosen_on_half}
        if saved != self._category_bins():
            changed = sorted(n for n, cats in self._category_bins().items() if saved.get(n) != cats)
            raise ValueError(f"the categories binned apart for {', '.join(changed) or 'some feature'} are not the "
                             "saved state's (chosen anew on half the reference's rows, or another reference): its "
                             "counts would be read as other categories'")
        if "numeric_edges" in state:  # a state saved before they were recorded is restored as it was
            self.check_edges(state["numeric_edges"])
        self.reset()
        self.test.load_state_dict(state["test"])
        self.window.load_state_dict(state["window"])
        self._block_ts = np.asarray(state["block_ts"], dtype=np.float64).copy()
        self.in_alarm = bool(state["in_alarm"])
        self.pending_alarms = int(state.get("pending_alarms", 0))
        self.onset_ts = float(state["onset_ts"])
        self.since = str(state["since"])
        self.last_flag_event = int(state["last_flag_event"])
        self.now = float(state["now"])
        self.top = [(str(a), str(b), float(c)) for a, b, c in state["top"]]
        self.frozen = bool(state.get("frozen", False))
        self.alarm_event = int(state.get("alarm_event", 0))
        self.top_dirty = True


def _put(out: "MetricWriter", name: str, value: float | None, labels: tuple[str, ...]) -> None:
    if value is None or not np.isfinite(value):
        out.remove(name, labels)
    else:
        out.set(name, float(value), labels)


def rank_label(rank: int, top_k: int) -> str:
    """The ``rank`` label of ``monitor_drift_top_feature``: as many digits as ``top_k`` has.

    Why: ModelInputDrift lists the features with ``sortByLabel "rank"``, which sorts text: with
    10 or more ranks, "10" came between "1" and "2" on the page. ``top_k`` below 10 keeps "1", "2"..."""
    return f"{rank:0{len(str(max(int(top_k), 1)))}d}"


def _clear_detector(out: "MetricWriter", name: str, det: str, written: list[tuple[str, ...]]) -> None:
    """Remove the series this detector wrote last time (other detectors' top-k stay)."""
    for labels in written:
        out.remove(name, labels)


def _sample_columns(profile: Profile) -> dict[str, np.ndarray]:
    """The profile's kept reference rows, per numeric feature (empty when it kept none)."""
    s = profile.sample
    if s is None or s.numeric is None or len(s.numeric_names) == 0 or s.numeric.shape[0] == 0:
        return {}
    num = np.asarray(s.numeric, dtype=np.float64)
    return {n: num[:, i] for i, n in enumerate(s.numeric_names)}


def _params(cls: type, context: "DetectorContext | None", params: dict[str, Any]) -> dict[str, Any]:
    from monitor.detectors._common import config_params

    return config_params(cls, context, params, window_s="window_s")


def _need_reference(kind: str, reference: Any) -> Profile:
    if reference is None:
        raise ValueError(
            f"detector {kind!r} needs reference data: set reference.path in monitor.yaml (a profile built with "
            "'monitor reference build', or a CSV/.npz), or pass reference=Reference.from_arrays(...) to Monitor"
        )
    return profile_of(reference)


# -- the detectors ------------------------------------------------------------------------------------
class BinnedDriftDetector(Detector):
    """Shared body of the drift detectors over binned channels (inputs, outputs, PCA error).

    Subclasses build their channels and binner in :meth:`_channels`; everything else (sequential
    alarm, windowed figures, explanation, export, state) is the same. Parameters are documented on
    :class:`FeatureDriftDetector`.
    """

    kind = ""
    #: Whether the rank and rescaling score tests run when ``score_tests`` is not given.
    score_tests_default = False
    #: One-sided: only channels whose mean rose are drift (:attr:`DriftCore.upward`).
    upward = False

    def __init__(
        self,
        reference: "Reference | Profile",
        *,
        ert: float | None = None,
        alarms_per_day: float | None = None,
        events_per_day: float | None = None,
        step: int = 50,
        scales: Sequence[int] = (100, 300, 1000),
        correction: str = "bonferroni",
        min_effect: float = 0.02,
        n_bins: int = 10,
        max_categories: int = 20,
        top_k: int = 3,
        features: Sequence[str] | None = None,
        window_s: float = 3600.0,
        n_slots: int = 12,
        alpha: float = 0.01,
        min_js: float = 0.1,
        min_rows: int = 100,
        clear_after: int | None = None,
        name: str | None = None,
        score_tests: bool | None = None,
    ) -> None:
        self.ert = resolve_ert(ert, alarms_per_day, events_per_day)
        self.alarms_per_day = alarms_per_day
        self.events_per_day = events_per_day
        self.step = int(step)
        self.scales = tuple(int(s) for s in scales)
        self.correction = correction
        self.min_effect = float(min_effect)
        self.n_bins = int(n_bins)
        self.max_categories = int(max_categories)
        self.top_k = int(top_k)
        self.features = None if features is None else tuple(features)
        self.window_s = float(window_s)
        self.n_slots = int(n_slots)
        self.alpha = float(alpha)
        self.min_js = float(min_js)
        self.min_rows = int(min_rows)
        self.clear_after = clear_after
        self.name = name or self.kind
        self.score_tests = self.score_tests_default if score_tests is None else bool(score_tests)
        self.profile = _need_reference(self.kind, reference)
        channels, binner = self._channels(self.profile)
        self._core = DriftCore(
            channels, name=self.name, ert=self.ert, step=self.step, scales=self.scales, correction=self.correction,
            min_effect=self.min_effect, top_k=self.top_k, window_s=self.window_s, n_slots=self.n_slots,
            alpha=self.alpha, min_js=self.min_js, min_rows=self.min_rows, clear_after=self.clear_after, binner=binner,
            upward=self.upward, score_tests=self.score_tests, samples=_sample_columns(self.profile) if self.score_tests else None)

    def _channels(self, profile: Profile) -> tuple[list[Channel], Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None,
                    **params: Any) -> "BinnedDriftDetector":
        return cls(_need_reference(cls.kind, reference), **_params(cls, context, params))

    def _reset(self) -> None:
        self._core.reset()

    # read-only results
    @property
    def drift_detected(self) -> bool:
        """True while the sequential test is in alarm."""
        return self._core.in_alarm

    @property
    def top_features(self) -> list[tuple[str, str, float]]:
        """``(feature, change, score ratio)`` of the current alarm, strongest first."""
        return list(self._core.top) if self._core.in_alarm else []

    @property
    def onset_ts(self) -> float:
        return self._core.onset_ts

    @property
    def rows_seen(self) -> int:
        return self._core.test.n_seen

    @property
    def thresholds(self) -> BinnedSequentialTest:
        """The calibrated sequential test (bands per scale, per-test alpha)."""
        return self._core.test

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._core.channels)

    def window_figures(self) -> dict[str, Any]:
        """Windowed tests and distances per channel (``{"rows", "stats", "drifted"}``)."""
        return self._core.compute_figures()

    def update(self, batch: "Batch") -> None:
        if len(batch) == 0:
            return
        binned = self._core.binner.bin(batch)
        if binned is None:
            return
        idx, vals = binned
        self._core.update(np.asarray(batch.ts, dtype=np.float64), idx, vals)

    def advance(self, now: float) -> None:
        self._core.advance(now)

    def on_tick(self, now: float) -> None:
        """Recompute the windowed figures at the next export (see :meth:`Detector.on_tick`)."""
        self._core.figures_stale()

    def export(self, out: "MetricWriter") -> None:
        self._core.export(out)

    def state_dict(self) -> dict[str, Any]:
        return {"version": self.state_version, **self._core.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state.get("version", -1)) != self.state_version:
            raise ValueError(f"{self.kind}: state version {state.get('version')} is not {self.state_version}")
        self._core.load_state_dict(state)


class FeatureDriftDetector(BinnedDriftDetector):
    """Input drift of every feature (kind ``input_drift``).

    Parameters
    ----------
    reference
        :class:`~monitor.reference.Reference` or :class:`~monitor.profile.Profile` (required).
    ert
        Expected rows between false alarms on undrifted traffic (default 1,000,000: ten times the
        100,000 an ERT is usually quoted at, because the union bound is only a bound and a single
        5-sigma window on a binary feature must not page anyone). Or give ``alarms_per_day`` with
        ``events_per_day`` instead.
    step, scales
        Test every ``step`` rows over windows of the last ``scales`` rows.
    correction
        Across features: ``bonferroni`` (default) or ``fdr`` (Benjamini-Hochberg).
    min_effect
        Minimum change of a bin's share of rows for a sequential alarm (absolute, default 0.02).
    n_bins, max_categories
        Reference-quantile bins per numeric feature; categories kept per categorical feature.
    top_k
        Features named per alarm.
    features
        Subset of features to monitor (default: all in the reference).
    window_s, n_slots, alpha, min_js, min_rows
        Event-time window of the windowed figures; their significance (after ``correction``),
        minimum Jensen-Shannon distance, and minimum rows per feature.
    clear_after
        Rows without a flagged test before the alarm clears (default: the longest scale).
    name
        Value of the ``detector`` label.
    score_tests
        Also test each numeric feature's windows with linear score statistics (default on): a rank
        location test and likelihood-ratio scores against the feature being rescaled by x1.25 or
        /1.25 (:mod:`monitor.stats.score_tests`). They take half of the ``ert`` budget (the union
        bound still holds) and catch what moves every quantile a little, such as a x1.3 unit change,
        hundreds of rows sooner than the per-bin bands.
    """

    kind = "input_drift"
    score_tests_default = True

    def _channels(self, profile: Profile) -> tuple[list[Channel], Any]:
        chans = channels_from_profile(profile, n_bins=self.n_bins, max_categories=self.max_categories,
                                      features=self.features)
        return chans, FeatureBinner(chans)


def resolve_ert(ert: float | None, alarms_per_day: float | None, events_per_day: float | None) -> float:
    """ERT in events from either ``ert`` or a false-alarm rate per day at a traffic rate.

    >>> resolve_ert(None, 0.1, 50_000)
    500000.0
    """
    if ert is not None and alarms_per_day is not None:
        raise ValueError("give either ert or alarms_per_day (with events_per_day), not both")
    if alarms_per_day is not None:
        if events_per_day is None or events_per_day <= 0 or alarms_per_day <= 0:
            raise ValueError(f"alarms_per_day needs events_per_day > 0 (rows per day) and a rate > 0, got events_per_day="
                             f"{events_per_day}, alarms_per_day={alarms_per_day}. Fix: give events_per_day: the rows the "
                             "model sees per day beside alarms_per_day (the ERT is their ratio), or ert: rows between false alarms")
        return float(events_per_day) / float(alarms_per_day)
    value = DEFAULT_ERT if ert is None else float(ert)
    if value < 1000:
        raise ValueError(f"ert={value}: an expected run time under 1,000 rows means constant false alarms; use >= 1,000")
    return value
