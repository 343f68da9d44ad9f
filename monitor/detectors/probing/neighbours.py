"""Nearest-neighbour similarity in the spirit of Chen, Carlini & Wagner (2020), "Stateful Detection
of Black-Box Adversarial Attacks".

Every query is mapped to a small *sketch*: its features standardised with the reference's scales
and projected on the reference's top principal axes (or a user-supplied embedding, e.g. the
model's penultimate layer, treated the same way). A query-based attack probes one neighbourhood
hundreds of times, so the distance from each of its queries to its ``k`` nearest earlier queries
of the same client collapses, while natural traffic keeps the spacing the reference shows. The
threshold ``tau`` is the ``query_fpr`` quantile of the statistic on the reference
(leave-one-out), so at most ``query_fpr`` of natural queries would be hits.

Two statistics are offered. ``"mean"`` is Chen et al.'s mean distance to the ``k`` nearest.
``"kth"`` (the default) is the distance to the ``k``-th nearest, i.e. "at least ``k`` earlier
queries closer than ``tau``". The mean lets a handful of noisy resubmissions of one item pull the
statistic under the threshold (on the evaluation's digits traffic, every client that resubmitted
items 2-6 times with sensor noise was flagged at ``k = 10``); with the ``k``-th distance, a client
that resubmits an item fewer than ``k`` times can never be a hit on account of the copies, which is
the hardest benign case, and attacks, whose queries sit orders of magnitude closer than natural
neighbours, are hits either way.

With the ``k``-th distance, each query also joins a *copy cluster*: that of its nearest earlier
query when it lies within the near-duplicate radius, a new one otherwise; the count within ``tau``
takes the query's own cluster in full and every other cluster once (:func:`copy_aware_counts`). A
probe is one cluster (each step within the radius of the last), so its density is counted as
before; a benign client that resubmits *every* item a few times filled its neighbourhoods with
clusters of copies (2.8% of its queries hits where fresh rows give 0.15%, flagged once its history
filled) and now sees its neighbouring items once each.

The projection keeps the per-query cost independent of the input width (distances cost
``history x dim`` multiply-adds) and the memory at ``4 * dim`` bytes per stored query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.stats.matmul import matmul
from monitor.stats.univariate import column_moments

__all__ = ["STATISTICS", "Z_LIMIT", "Sketcher", "KnnCalibration", "calibrate_knn", "GroupNeighbours", "group_neighbours", "pairwise_sq",
           "row_counts", "copy_clusters", "copy_aware_counts", "copy_aware_mean"]


#: kNN statistics: distance to the k-th nearest earlier query, or mean distance to the k nearest
STATISTICS = ("kth", "mean")
#: largest standardised value a sketch is made of (reference scales): far out of distribution, and
#: its squares still finite in float32 whatever the sketch width
Z_LIMIT = 1e6


class Sketcher:
    """Standardise with the reference's scales, then project on its top principal axes.

    Parameters
    ----------
    rows
        Reference rows ``(n, d)`` (NaN allowed: it becomes the mean).
    dim
        Sketch width; ``dim >= d`` keeps all standardised features (no projection).
    std_floor
        Scales below ``std_floor x`` the median non-zero standard deviation are raised to it, so
        that a feature that never moves in the reference (a blank pixel, a constant flag) does not
        turn every tiny change into a huge distance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(200, 6)) * [1, 2, 3, 4, 5, 6]
    >>> sk = Sketcher(ref, dim=3)
    >>> sk.project(sk.standardise(ref[:2])).shape
    (2, 3)
    """

    def __init__(self, rows: np.ndarray, dim: int = 16, std_floor: float = 0.1) -> None:
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"reference rows must be (n >= 2, d), got shape {x.shape}")
        # overflow-free (values beyond ~1e154 made the scale inf, the sketches inf and the SVD hang)
        mean, std = column_moments(x)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std), std, 0.0)
        positive = std[std > 0]
        floor = float(std_floor) * (float(np.median(positive)) if positive.size else 1.0)
        self.mean = mean
        self.scale = np.maximum(std, floor if floor > 0 else 1.0)
        self.n_features = x.shape[1]
        z = self.standardise(x)
        if dim >= self.n_features:
            self.components = None
            self.dim = self.n_features
        else:
            centred = z - z.mean(axis=0)
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            self.components = np.ascontiguousarray(vt[:dim].T.astype(np.float32))
            self.dim = int(dim)

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """Standardised rows; NaN becomes 0 (the reference mean), infinities and values beyond
        :data:`Z_LIMIT` reference scales are clipped to it.

        Why clip finite values too: one beyond float32's range (1e39 scales) became an infinite
        sketch, and every later distance to it NaN, which ``argmin`` returns first: the client's
        nearest stored query was that one for about half of its later queries, so exact retries
        went unrecognised (counted as distinct near-duplicates) and label flips, PRADA's distances
        and campaign candidates lost their nearest neighbour."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        z = np.nan_to_num(z, nan=0.0, posinf=Z_LIMIT, neginf=-Z_LIMIT)
        np.clip(z, -Z_LIMIT, Z_LIMIT, out=z)
        return z

    def project(self, z: np.ndarray) -> np.ndarray:
        """Sketches ``(n, dim)`` float32 of standardised rows."""
        z32 = z.astype(np.float32)
        return z32 if self.components is None else matmul(z32, self.components)


def pairwise_sq(a: np.ndarray, a_norm: np.ndarray, b: np.ndarray, b_norm: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(len(a), len(b))`` from precomputed squared norms (clamped at 0)."""
    d2 = a_norm[:, None] + b_norm[None, :] - 2.0 * matmul(a, b.T)
    np.maximum(d2, 0.0, out=d2)
    return d2


@dataclass(frozen=True)
class KnnCalibration:
    """Thresholds learned from the reference sketches.

    Attributes
    ----------
    tau
        Value of the statistic (mean or ``k``-th nearest distance) below which a query is a hit
        (the ``query_fpr`` quantile on the reference, leave-one-out).
    near
        Near-duplicate radius: a pair closer than this is closer than all but ``query_fpr`` of
        natural nearest-neighbour pairs (used for label flips and to keep resubmissions out of
        PRADA's distance set).
    ref_rows
        Reference rows used.
    """

    tau: float
    near: float
    ref_rows: int


def calibrate_knn(sketches: np.ndarray, k: int, query_fpr: float, rng: np.random.Generator, max_rows: int = 2000,
                  statistic: str = "kth", history: int | None = None) -> KnnCalibration:
    """Leave-one-out kNN statistics of the reference (subsampled to ``max_rows``, seeded).

    Leave-one-out on ``n`` rows calibrates ``tau`` for a client with ``n - 1`` stored queries. A
    client stores up to ``history``: when that is more, its natural queries are denser than the
    reference's by ``history / (n - 1)``, and its ``k``-th neighbour falls below a ``tau`` set at
    ``k`` far more often than ``query_fpr`` (a 150-row reference flagged clients sending fresh
    natural rows after ~600 queries). The expected count of neighbours within a radius grows with
    the rows stored, so ``k`` neighbours among ``history`` stored queries correspond to
    ``k (n - 1) / history`` among the reference's: ``tau`` is taken at that order (rounded down,
    at least 1: conservative, a smaller radius). ``near`` (one neighbour) is left as it is.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"knn_statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")
    s = np.asarray(sketches, dtype=np.float32)
    if s.shape[0] > max_rows:
        s = s[rng.choice(s.shape[0], max_rows, replace=False)]
    n = s.shape[0]
    if n <= k:
        raise ValueError(f"the reference has {n} rows; the nearest-neighbour detector needs more than k={k}")
    # the neighbour order at which a reference row is as dense as a client at full history
    order = k if history is None or history <= n - 1 else max(1, int(k * (n - 1) // int(history)))
    norm = (s * s).sum(axis=1)
    knn = np.empty(n)
    nn1 = np.empty(n)
    for start in range(0, n, 512):
        d2 = pairwise_sq(s[start:start + 512], norm[start:start + 512], s, norm).astype(np.float64)
        idx = np.arange(start, min(start + 512, n))
        d2[idx - start, idx] = np.inf
        part = np.sort(np.sqrt(np.partition(d2, k - 1, axis=1)[:, :k]), axis=1)[:, :order]
        knn[start:start + 512] = part.mean(axis=1) if statistic == "mean" else part[:, -1]
        nn1[start:start + 512] = part[:, 0]
    return KnnCalibration(tau=float(np.quantile(knn, query_fpr)), near=float(np.quantile(nn1, query_fpr)), ref_rows=n)


@dataclass
class GroupNeighbours:
    """Neighbours of a group of new queries among a client's earlier ones."""

    dmin: np.ndarray  #: distance to the nearest earlier query (inf when there is none)
    nearest: np.ndarray  #: its index in ``stored`` rows, or ``len(stored) + j`` for group row ``j``
    hit: np.ndarray  #: the kNN statistic is below tau (at least k earlier queries within tau, or mean of the k nearest below it)
    #: the mean kNN distance (``statistic="mean"`` only; copies counted once, :func:`copy_aware_mean`;
    #: inf where it cannot be below tau, NaN otherwise)
    knn: np.ndarray
    repeat: np.ndarray  #: exact repeats (of a stored query or an earlier group row); excluded from the rest
    #: the copy cluster of each row (``near`` given): that of its nearest earlier query when it lies
    #: within ``near``, a new one otherwise (see :func:`copy_clusters`); None without ``near``
    cluster: np.ndarray | None = None
    next_cluster: int = 0  #: the first cluster number not given out (the caller keeps it for its next group)


def group_neighbours(x: np.ndarray, x_norm: np.ndarray, stored_t: np.ndarray, stored_norm: np.ndarray, k: int, tau: float,
                     statistic: str = "kth", exact: np.ndarray | None = None, stored_exact: np.ndarray | None = None,
                     near: float | None = None, stored_cluster: np.ndarray | None = None,
                     next_cluster: int = 0) -> GroupNeighbours:
    """Nearest and k-nearest earlier queries of each row of a group, in one matrix product.

    Row ``i`` of the group sees every stored row (``stored_t`` holds them column-wise,
    ``(dim, f)``) and the group rows before it. For the ``k``-th distance, a hit is "at least
    ``k`` earlier queries within ``tau``": one comparison and one sum, no sort. The mean kNN
    distance is computed only where it can be below ``tau`` (the nearest earlier query is closer
    than ``tau``), which keeps natural traffic at one matrix product and one ``argmin`` per group.

    With ``exact`` hashes, exact repeats are recognised (a group row whose hash equals an earlier
    group row's, or the hash of the stored query nearest to it at distance 0) and kept out of
    every other row's neighbours, without a separate scan of the stored hashes.

    With ``near`` (and the stored queries' ``stored_cluster``), each row is put in a copy cluster
    (:func:`copy_clusters`) and the ``k``-th statistic counts copies once: a hit needs ``k``
    earlier queries within ``tau`` among the row's own cluster and one per other cluster
    (:func:`copy_aware_counts`). Counted only where the plain count reaches ``k`` (never more).

    Examples
    --------
    >>> st = np.array([[0.0, 0.0], [10.0, 0.0]], dtype=np.float32)
    >>> x = np.array([[0.1, 0.0], [0.2, 0.0]], dtype=np.float32)
    >>> g = group_neighbours(x, (x * x).sum(1), st.T, (st * st).sum(1), k=2, tau=1.0, statistic="mean")
    >>> g.nearest.tolist(), np.round(g.dmin, 3).tolist(), np.round(g.knn, 3).tolist(), g.hit.tolist()
    ([0, 2], [0.1, 0.1], [5.0, 0.15], [False, True])
    >>> group_neighbours(x, (x * x).sum(1), st.T, (st * st).sum(1), k=2, tau=1.0).hit.tolist()
    [False, True]
    """
    m, f = x.shape[0], stored_t.shape[1]
    rows = np.arange(m)
    repeat = np.zeros(m, dtype=bool)
    if exact is not None and m > 1:  # repeats of an earlier row of the group (stable sort keeps the first)
        order = np.argsort(exact, kind="stable")
        repeat[order[1:]] = exact[order[1:]] == exact[order[:-1]]
    # squared distances are |x|^2 + |s|^2 - 2 x.s; the |x|^2 term is constant along a row, so the
    # stored block keeps g = |s|^2 - 2 x.s (argmin unchanged) and compares with tau^2 - |x|^2
    stored = None
    if f:
        stored = matmul(x * np.float32(-2.0), stored_t)
        stored += stored_norm
        nn_s = stored.argmin(axis=1)
        d_s = stored[rows, nn_s] + x_norm
        if exact is not None and stored_exact is not None:
            repeat |= (d_s <= 1e-5 * (x_norm + 1.0)) & (stored_exact[nn_s] == exact)
    inner = matmul(x * np.float32(-2.0), x.T)
    # the group rows each row is compared with: all, or (the k-th statistic, with repeats) only
    # the non-repeat ones -- a retried batch makes most rows repeats, and every later pass then
    # reads the non-repeat columns only (their values are the same elements of the same product)
    cols = np.flatnonzero(~repeat) if statistic == "kth" and repeat.any() else None
    if cols is None:
        inner += x_norm
        inner += x_norm[:, None]
        # earlier, non-repeat rows of the group only: the diagonal and above, and repeats' columns, out
        np.copyto(inner, np.inf, where=_upper(m))
        if repeat.any():
            inner[:, repeat] = np.inf
    else:
        inner = inner[:, cols]
        inner += x_norm[cols]
        inner += x_norm[:, None]
        np.copyto(inner, np.inf, where=cols[None, :] >= rows[:, None])
    if inner.shape[1]:
        nearest = inner.argmin(axis=1)
        d2min = inner[rows, nearest]
        if cols is not None:  # back to group rows; a row with none earlier: 0, as argmin over all infinities
            nearest = np.where(d2min == np.inf, 0, cols[nearest])
    else:  # every row of the group a repeat
        nearest = np.zeros(m, dtype=np.intp)
        d2min = np.full(m, np.inf, dtype=inner.dtype)
    if stored is not None:
        closer = d_s <= d2min
        nearest = np.where(closer, nn_s, f + nearest)
        d2min = np.where(closer, d_s, d2min)
    dmin = np.sqrt(np.maximum(d2min, 0.0).astype(np.float64))
    cluster = None
    if near is not None:
        if stored_cluster is None:  # every stored query a cluster of its own
            stored_ids, next_cluster = next_cluster + np.arange(f, dtype=np.int64), next_cluster + f
        else:
            stored_ids = np.asarray(stored_cluster, dtype=np.int64)[:f]
        cluster, next_cluster = copy_clusters(dmin, nearest, f, near, stored_ids, next_cluster, repeat)
    tau2 = np.float32(tau) ** 2
    if statistic == "kth":
        close = row_counts(inner < tau2, m + f)
        if stored is not None and cols is not None and 4 * cols.size < 3 * m:  # only the rows that can be hits
            part = np.zeros(m, dtype=close.dtype)
            part[cols] = row_counts(stored[cols] < (tau2 - x_norm[cols])[:, None], m + f)
            close = close + part
        elif stored is not None:
            close = close + row_counts(stored < (tau2 - x_norm)[:, None], m + f)
        hit = (close >= k) & ~repeat
        if cluster is not None and hit.any():
            rows_hit = np.flatnonzero(hit)
            within = inner[rows_hit] < tau2
            group_ids = cluster if cols is None else cluster[cols]
            if stored is not None:
                within = np.concatenate([stored[rows_hit] < (tau2 - x_norm[rows_hit])[:, None], within], axis=1)
                group_ids = np.concatenate([stored_ids, group_ids])
            joined = dmin[rows_hit] < near
            hit[rows_hit] = copy_aware_counts(within, group_ids, np.where(joined, cluster[rows_hit], -1), k) >= k
        return GroupNeighbours(dmin=dmin, nearest=nearest, hit=hit, knn=np.full(m, np.nan), repeat=repeat,
                               cluster=cluster, next_cluster=next_cluster)
    knn = np.full(m, np.inf)
    cand = (dmin < tau) & (f + rows - np.cumsum(repeat) >= k) & ~repeat
    if cand.any():
        both = inner[cand] if stored is None else np.concatenate([stored[cand] + x_norm[cand, None], inner[cand]], axis=1)
        if cluster is None:
            part = np.maximum(np.partition(both, k - 1, axis=1)[:, :k], 0.0).astype(np.float64)
            knn[cand] = np.sqrt(part).mean(axis=1)
        else:
            ids = cluster if stored is None else np.concatenate([stored_ids, cluster])
            rows_c = np.flatnonzero(cand)
            own = np.where(dmin[rows_c] < near, cluster[rows_c], -1)
            knn[cand] = copy_aware_mean(both, ids, own, k)
    return GroupNeighbours(dmin=dmin, nearest=nearest, hit=knn < tau, knn=knn, repeat=repeat, cluster=cluster,
                           next_cluster=next_cluster)


def row_counts(mask: np.ndarray, bound: int) -> np.ndarray:
    """``np.count_nonzero(mask, axis=1)`` of a C-contiguous 2-D boolean mask, the same integers in
    an unsigned type that holds ``bound`` (the largest sum the caller adds up from such counts).

    Why: ``count_nonzero`` along an axis casts the booleans to ``intp`` and sums them through a
    buffered cast; summing the bytes as ``uint8`` into a ``uint16`` accumulator is about 4x faster,
    and the mask of the stored queries within ``tau`` (a row per new query, a column per stored
    one, ``history`` wide) is counted for every query the probing detector analyses.

    >>> row_counts(np.array([[True, False, True], [False, False, False]]), 6).tolist()
    [2, 0]
    """
    if bound < 1 << 16 and mask.dtype == np.bool_ and mask.ndim == 2 and mask.flags.c_contiguous:
        return mask.view(np.uint8).sum(axis=1, dtype=np.uint16)
    return np.count_nonzero(mask, axis=1)


def copy_clusters(dmin: np.ndarray, nearest: np.ndarray, f: int, near: float, stored_cluster: np.ndarray,
                  next_cluster: int, repeat: np.ndarray) -> tuple[np.ndarray, int]:
    """The copy cluster of each row of a group: its nearest earlier query's when that lies within
    ``near`` (a resubmission of one item, or the next step of a probe), a new number otherwise.

    Why: a client that sends each item a few times with noise stores clusters of copies, and its
    items' neighbourhoods hold several copies of each neighbouring item: counted one by one, a
    client resubmitting items up to six times had 2.8% of its queries with ``k`` = 10 neighbours
    within ``tau`` (0.15% for the same volume of fresh rows) and was flagged once its history
    filled. Clusters let the hit test count each neighbouring item once (:func:`copy_aware_counts`).

    Rows linked to an earlier row of the group take that row's cluster, followed to the row that
    is not (pointer jumping: every link points to an earlier row). Exact repeats take their
    original's (they are not stored). Returns the clusters (int64) and the next free number.

    >>> dmin = np.array([0.1, 5.0, 0.2, 0.1])
    >>> nearest = np.array([0, 2, 3, 4])            # stored 0; none near; group rows 1 and 2
    >>> c, nxt = copy_clusters(dmin, nearest, 2, 1.0, np.array([7, 8]), 9, np.zeros(4, bool))
    >>> c.tolist(), nxt
    ([7, 9, 9, 9], 10)
    """
    m = dmin.shape[0]
    joined = dmin < near
    in_group = joined & (nearest >= f)
    fresh = ~joined & ~repeat
    cluster = np.full(m, -1, dtype=np.int64)
    cluster[fresh] = next_cluster + np.arange(int(fresh.sum()))
    linked = joined & ~in_group
    cluster[linked] = stored_cluster[nearest[linked]]
    if in_group.any():
        parent = np.arange(m)
        parent[in_group] = nearest[in_group] - f
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
        cluster[in_group] = cluster[parent[in_group]]
    return cluster, next_cluster + int(fresh.sum())


def copy_aware_counts(within: np.ndarray, ids: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Earlier queries within ``tau`` of each row (``within``, a row per query, a column per
    earlier query of cluster ``ids``), counting the row's ``own`` cluster in full and every other
    cluster once (``own`` -1: the row starts a cluster of its own).

    Why not once for the row's own cluster too: a probe (hundreds of steps around one point, each
    within ``near`` of the last) is one cluster, and its density is what the hit test is for. A
    benign client's own copies of an item stay under ``k`` (see :class:`.detector.ProbingDetector`'s
    ``k``); its neighbouring items count once however often they were sent. The count is exact up
    to ``k`` (the distinct clusters are counted only where the row's own cluster falls short).

    >>> within = np.array([[True, True, True, False], [True, True, True, True]])
    >>> copy_aware_counts(within, np.array([3, 3, 4, 4]), np.array([3, -1]), 3).tolist()
    [3, 2]
    """
    own_count = ((ids[None, :] == own[:, None]) & within).sum(axis=1)
    out = own_count.astype(np.int64)
    short = np.flatnonzero(own_count < k)
    if short.size:
        others = np.where(within[short] & (ids[None, :] != own[short, None]), ids[None, :], -2)
        others.sort(axis=1)
        distinct = ((others[:, 1:] != others[:, :-1]) & (others[:, 1:] != -2)).sum(axis=1) + (others[:, 0] != -2)
        out[short] += distinct
    return out


def copy_aware_mean(d2: np.ndarray, ids: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Mean distance from each row to its ``k`` nearest earlier queries (``d2``: squared
    distances, a row per query, a column per earlier query of cluster ``ids``), taking the row's
    ``own`` cluster in full and only the nearest member of every other cluster; inf where fewer
    than ``k`` such queries exist.

    Why: the mean kNN statistic, like the ``k``-th one (:func:`copy_aware_counts`), must not let a
    benign client's resubmitted items fill a query's neighbourhood: counted one by one, clients
    sending every item 1-6 times with noise were flagged (7 of 20 busy ones of
    tests/test_probing_busy_benign_s33f.py), where the nearest copy of each stands for the item.
    The nearest ``4 k`` columns are sorted first; only rows with fewer than ``k`` distinct items
    among them read all.

    >>> d2 = np.array([[1.0, 1.0, 4.0, 9.0], [1.0, 1.0, 4.0, 9.0]])
    >>> copy_aware_mean(d2, np.array([3, 3, 4, 5]), np.array([-1, 3]), 2).tolist()
    [1.5, 1.0]
    """
    c, w = d2.shape
    out = np.full(c, np.inf)
    if c == 0 or w == 0:
        return out
    todo = np.arange(c)
    width = min(w, 4 * k)
    while todo.size:
        sub = d2[todo]
        if width < w:
            idx = np.argpartition(sub, width - 1, axis=1)[:, :width]
            idx = np.take_along_axis(idx, np.argsort(np.take_along_axis(sub, idx, axis=1), axis=1), axis=1)
        else:
            idx = np.argsort(sub, axis=1)
        vals = np.take_along_axis(sub, idx, axis=1).astype(np.float64)
        sid = ids[idx]
        keep = ((sid == own[todo, None]) | _first_of_each(sid)) & np.isfinite(vals)
        keep &= np.cumsum(keep, axis=1) <= k
        enough = keep.sum(axis=1) == k
        dist = np.sqrt(np.maximum(vals, 0.0), where=keep, out=np.zeros_like(vals))
        out[todo[enough]] = dist[enough].sum(axis=1) / k
        todo = todo[~enough] if width < w else todo[:0]
        width = w
    return out


def _first_of_each(ids: np.ndarray) -> np.ndarray:
    """Mask of the first occurrence, along each row, of every value of the 2-D ``ids``."""
    order = np.argsort(ids, axis=1, kind="stable")
    s = np.take_along_axis(ids, order, axis=1)
    first = np.ones(s.shape, dtype=bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    out = np.empty_like(first)
    np.put_along_axis(out, order, first, axis=1)
    return out


#: the diagonal-and-above mask of the largest group seen (up to ``_UPPER_MAX`` rows, 4 MB): a group's
#: mask is its top-left corner (building one per group, an ``m x m`` pass, cost as much as the product)
_UPPER_MAX = 2048
_UPPER = np.ones((0, 0), dtype=bool)


def _upper(m: int) -> np.ndarray:
    """Boolean ``(m, m)`` mask of the diagonal and above (``~np.tri(m, k=-1)``), a cached view."""
    global _UPPER
    if m > _UPPER_MAX:
        return ~np.tri(m, k=-1, dtype=bool)
    if m > _UPPER.shape[0]:
        _UPPER = ~np.tri(min(max(m, 2 * _UPPER.shape[0], 64), _UPPER_MAX), k=-1, dtype=bool)
        _UPPER.flags.writeable = False
    return _UPPER[:m, :m]
