"""Inverted index of a client's stored fingerprints: the hash family's lookup in O(1) per query.

The hash family's rule (see :mod:`.hashing`) is "a query is a hit when at least ``k`` earlier
queries of the client share at least ``t`` position-aligned fingerprints with it". Comparing a new
query with every stored one costs ``O(history)``; Blacklight instead keeps, per fingerprint, the
queries that hold it. This module does that in flat numpy arrays, so that one client's group of
new queries is looked up in a handful of vectorised passes and the memory is a fixed number of
bytes per stored query (no Python object per fingerprint):

* **Hash chains** (as in zlib's LZ77 matcher). Fingerprint ``f`` at segment ``j`` falls in bucket
  ``f mod B`` of segment ``j`` (``B``, a power of two >= the ring's capacity: at most one stored
  query per bucket on average). ``head[j, bucket]`` is the sequence number of the latest stored
  query whose segment-``j`` fingerprint falls in that bucket, and ``delta[position, j]`` links each
  stored query to the previous one in the same bucket (the gap between their sequence numbers).
  Walking a chain visits the bucket's queries newest first; a visited query counts as sharing
  segment ``j`` only if its stored fingerprint (read from the client's ring) equals the new one,
  so bucket collisions cost a step, never a false match. The near-duplicates of one group share
  most fingerprints: each distinct (segment, fingerprint) of the group is walked once.
* **Lazy deletion by sequence number.** Every stored query has a sequence number (``total`` counts
  them); the ring keeps the last ``filled`` of them, so a sequence number below
  ``total - filled`` has been overwritten. A chain ends at the first such number, and since a
  chain only ever runs from newer to older queries everything beyond it is gone too: eviction
  costs nothing, and the arrays never hold more than ``n_segments`` links per ring position.
* **Bounded work per fingerprint.** A walk takes at most ``bucket_cap`` steps (the most recent
  queries of the bucket). Beyond that an old match may be missed, which can only lower the
  count of sharing queries: the cap can cost sensitivity, never a false positive. With
  ``bucket_cap`` at least the number of stored queries in every visited bucket (always true when
  it is at least ``history``), the answer is exactly that of the full scan. A query's lookup
  costs at most ``n_segments x bucket_cap`` steps, and about ``n_segments`` for natural traffic
  (short chains), whatever the history.

Within the group of queries being processed (they may overwrite the oldest stored ones, yet each
still sees every query stored before the group, as the scan does), matches are found by direct
comparison (groups of up to 256 queries: exact, ``O(group)`` per query) or, for larger groups, by
sorting the group's fingerprints per segment, with the same cap.

The index is derived state: :meth:`FingerprintIndex.rebuild` makes it from the ring's stored
fingerprints (a checkpoint never holds it).
"""

from __future__ import annotations

import numpy as np

from monitor.stats.matmul import matmul

__all__ = ["FingerprintIndex", "group_close_counts", "close_from_pairs"]

_EMPTY = -1
#: largest (queries x matched keys x matched stored queries) product counted by a matrix product;
#: beyond, the (query, stored query) pairs are listed and sorted
_MATMUL_MNK = 1 << 22
#: largest group whose within-group matches are counted by direct comparison (exact, O(m) per query)
_DENSE_GROUP = 256


def _pow2_at_least(n: int) -> int:
    return 1 << max(3, int(n - 1).bit_length())


def _distinct(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``a`` and the index of each element among them (by sorting:
    ``np.unique`` is several times slower on the few thousand integers of a group)."""
    order = np.argsort(a)
    sa = a[order]
    first = np.empty(sa.size, dtype=bool)
    first[:1] = True
    np.not_equal(sa[1:], sa[:-1], out=first[1:])
    inverse = np.empty(a.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return sa[first], inverse


def close_from_pairs(rows: np.ndarray, others: np.ndarray, m: int, t: int) -> np.ndarray:
    """For each of ``m`` queries, how many distinct earlier queries it shares ``>= t`` fingerprints with.

    ``rows[i]`` and ``others[i]`` name one shared fingerprint (query, earlier query); a pair
    appears once per shared segment.

    Examples
    --------
    >>> close_from_pairs(np.array([0, 0, 0, 1]), np.array([5, 5, 6, 5]), m=2, t=2).tolist()
    [1, 0]
    """
    if rows.size == 0:
        return np.zeros(m, dtype=np.int64)
    others = others - others.min()
    width = int(others.max()) + 1
    key = rows.astype(np.int64) * width + others
    key.sort()  # a plain sort: np.unique (hash based) costs ten times more at these sizes
    if t > 1:
        key = key[np.flatnonzero(key[t - 1:] == key[: key.size - t + 1])]  # runs of >= t equal pairs (still sorted)
        if key.size == 0:
            return np.zeros(m, dtype=np.int64)
    first = np.empty(key.size, dtype=bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    return np.bincount(key[first] // width, minlength=m).astype(np.int64)


def group_close_counts(fps: np.ndarray, t: int, cap: int) -> np.ndarray:
    """For each query of a group, how many *earlier queries of the same group* share ``>= t``
    position-aligned fingerprints with it.

    Groups of up to 256 queries (the usual: ``flush_rows``) compare every pair: exact, and
    ``O(group)`` per query. Larger ones sort the group's (segment, fingerprint) keys once (stable:
    equal keys are adjacent and in arrival order), and each fingerprint is compared with at most
    the ``cap`` most recent earlier holders (the entries before it in its run).

    Examples
    --------
    >>> f = np.array([[1, 2, 3], [1, 2, 9], [1, 7, 3], [4, 5, 6]], dtype=np.uint32)
    >>> group_close_counts(f, t=2, cap=8).tolist()
    [0, 1, 1, 0]
    """
    m, s = fps.shape
    if m < 2 or s == 0 or t > s:
        return np.zeros(m, dtype=np.int64)
    if m <= _DENSE_GROUP:  # small group (the usual, ``flush_rows``): compare every pair, exact
        shared = (fps[:, None, :] == fps[None, :, :]).sum(axis=2, dtype=np.int32)
        return ((shared >= t) & np.tri(m, k=-1, dtype=bool)).sum(axis=1).astype(np.int64)
    key = (np.arange(s, dtype=np.int64)[:, None] << 32) | fps.T.astype(np.int64)  # (s, m), row-major: by segment
    key = key.ravel()
    order = np.argsort(key, kind="stable")
    sk = key[order]
    sr = order % m  # query index of each sorted entry (within a run: increasing)
    later, earlier = [], []
    for d in range(1, min(cap, m - 1) + 1):
        same = np.flatnonzero(sk[d:] == sk[:-d])
        if same.size == 0:
            break  # no run is longer than d
        later.append(sr[d:][same])
        earlier.append(sr[same])
    if not later:
        return np.zeros(m, dtype=np.int64)
    return close_from_pairs(np.concatenate(later), np.concatenate(earlier), m, t)


class FingerprintIndex:
    """Hash chains over one client's stored fingerprints (see the module docstring).

    Parameters
    ----------
    n_segments
        Fingerprints per query.
    history
        Ring size of the client: a stored query with sequence number ``s`` lives at ring
        position ``s % history`` (the ring fills positions 0, 1, ... and then wraps).
    bucket_cap
        Most steps a chain walk takes per fingerprint (the most recent queries of its bucket).

    Memory: ``2 * n_segments`` bytes per ring position for the links (gaps below ``history``:
    ``uint16`` while ``history`` < 65,536, ``int32`` beyond) plus ``4 * n_segments * B`` for the
    heads (``B`` the smallest power of two >= the ring's capacity, at least 8), both grown with the
    ring by :meth:`reserve`; :meth:`bytes_at_full` at a full ring.

    Examples
    --------
    >>> idx = FingerprintIndex(n_segments=2, history=4, bucket_cap=8)
    >>> ring = np.zeros((4, 2), dtype=np.uint32)
    >>> rows = np.array([[1, 2], [1, 3], [5, 6]], dtype=np.uint32)
    >>> _ = idx.reserve(4, ring, 0)
    >>> idx.insert(rows); ring[:3] = rows
    >>> idx.close_counts(np.array([[1, 2], [5, 3]], dtype=np.uint32), ring, filled=3, t=1).tolist()
    [2, 2]
    >>> idx.close_counts(np.array([[1, 2], [5, 3]], dtype=np.uint32), ring, filled=3, t=2).tolist()
    [1, 0]
    """

    #: head values are stored relative to ``base`` in int32; rebased before they could overflow
    REBASE_AT = 2**31 - 2

    def __init__(self, n_segments: int, history: int, bucket_cap: int) -> None:
        if bucket_cap < 1:
            raise ValueError(f"hash_bucket_cap must be >= 1, got {bucket_cap}")
        self.n_segments = int(n_segments)
        self.history = int(history)
        self.bucket_cap = int(bucket_cap)
        self.total = 0  # sequence number of the next stored query
        self.base = 0  # head entries hold ``seq - base``
        self.n_buckets = 8
        self.head = np.full((self.n_segments, self.n_buckets), _EMPTY, dtype=np.int32)
        self._link_dtype = np.uint16 if self.history < 2**16 else np.int32  # a gap is at most history
        self.delta = np.zeros((0, self.n_segments), dtype=self._link_dtype)  # (ring capacity, n_segments)
        self._seg = np.arange(self.n_segments, dtype=np.int64)

    @staticmethod
    def buckets_for(cap: int) -> int:
        """Buckets per segment for a ring of capacity ``cap`` (a power of two >= ``cap``, at least 8)."""
        return _pow2_at_least(cap)

    @staticmethod
    def bytes_at_full(n_segments: int, history: int) -> int:
        """Bytes of the index of a full ring (links and heads).

        Examples
        --------
        >>> FingerprintIndex.bytes_at_full(16, 1000)  # 16 x (2 x 1000 + 4 x 1024)
        97536
        """
        link = 2 if history < 2**16 else 4
        return int(n_segments * (link * history + 4 * _pow2_at_least(history)))

    @property
    def nbytes(self) -> int:
        return int(self.head.nbytes + self.delta.nbytes)

    def live_heads(self, filled: int) -> int:
        """Buckets whose chain starts at a stored query still in the ring (at most
        ``n_segments * filled``: each stored query heads at most one bucket per segment)."""
        lo = self.total - filled - self.base
        return int((self.head >= max(lo, 0)).sum()) if filled else 0

    # -- growth ------------------------------------------------------------------------------------
    def reserve(self, cap: int, stored: np.ndarray, filled: int) -> int:
        """Follow the ring's capacity ``cap`` (call after the ring grew, before :meth:`insert`);
        ``stored`` is the ring's fingerprint array and ``filled`` its rows before the new ones.
        Returns the bytes added."""
        before = self.nbytes
        if cap > self.delta.shape[0]:
            grown = np.zeros((cap, self.n_segments), dtype=self._link_dtype)
            grown[: self.delta.shape[0]] = self.delta
            self.delta = grown
        if _pow2_at_least(cap) > self.n_buckets:
            # more buckets: every chain changes, so relink the stored queries (the ring has not
            # wrapped while it grows: they are positions 0..filled-1, oldest first)
            self.n_buckets = _pow2_at_least(cap)
            self._relink(stored[:filled], self.total - filled)
        return self.nbytes - before

    def rebuild(self, stored: np.ndarray, filled: int, head: int, cap: int) -> None:
        """Make the index of a restored ring (``head``: position of the next row to write)."""
        self.n_buckets = _pow2_at_least(cap)
        self.delta = np.zeros((cap, self.n_segments), dtype=self._link_dtype)
        if filled < self.history:
            self._relink(stored[:filled], 0)
        else:
            order = (head + np.arange(self.history)) % self.history  # oldest first
            self._relink(stored[order], head)  # sequence numbers head .. head+history-1 keep their positions

    def _relink(self, rows: np.ndarray, first_seq: int) -> None:
        self.head = np.full((self.n_segments, self.n_buckets), _EMPTY, dtype=np.int32)
        self.base = first_seq
        self.total = first_seq
        if rows.shape[0]:
            self.insert(rows)

    # -- insert ------------------------------------------------------------------------------------
    def insert(self, rows: np.ndarray) -> None:
        """Store the fingerprints ``(m, n_segments)`` of the next ``m`` queries of the ring, in order
        (their positions must be reserved; ``m <= history``)."""
        m, s = rows.shape
        if m == 0:
            return
        if self.total + m - self.base > self.REBASE_AT:
            self._rebase(self.total - self.history)
        seq = self.total + np.arange(m, dtype=np.int64)
        key = (self._seg[None, :] * self.n_buckets + (rows & np.uint32(self.n_buckets - 1))).ravel()
        order = np.argsort(key, kind="stable")  # by bucket, arrival order within one
        ks = key[order]
        ss = seq[order // s]
        first = np.ones(ks.size, dtype=bool)
        first[1:] = ks[1:] != ks[:-1]
        prev = np.empty_like(ss)
        prev[1:] = ss[:-1]
        flat_head = self.head.reshape(-1)
        h = flat_head[ks[first]].astype(np.int64)
        prev[first] = np.where(h >= 0, h + self.base, -1)
        gap = ss - prev
        # no previous holder, or one ``history`` or more queries back (long gone): a link of
        # ``history`` always lands before the oldest stored query, so the walk stops there
        link = np.where((prev >= 0) & (gap < self.history), gap, self.history)
        self.delta.reshape(-1)[(ss % self.history) * s + ks // self.n_buckets] = link
        last = np.ones(ks.size, dtype=bool)
        last[:-1] = first[1:]
        flat_head[ks[last]] = (ss[last] - self.base).astype(np.int32)
        self.total += m

    def _rebase(self, new_base: int) -> None:
        """Shift the stored head values so that they fit int32 for another ~2**31 queries;
        heads older than ``new_base`` are gone from the ring and become empty."""
        new_base = max(new_base, self.base)
        absolute = self.head.astype(np.int64) + self.base
        self.head = np.where((self.head >= 0) & (absolute >= new_base), absolute - new_base, _EMPTY).astype(np.int32)
        self.base = new_base

    # -- lookup ------------------------------------------------------------------------------------
    def close_counts(self, q: np.ndarray, stored: np.ndarray, filled: int, t: int) -> np.ndarray:
        """For each query ``(m, n_segments)``, how many of the ``filled`` stored queries share at
        least ``t`` position-aligned fingerprints with it (call before inserting the queries).

        ``stored`` is the ring's fingerprint array (read at the visited positions to tell real
        matches from bucket collisions).
        """
        m, s = q.shape
        if filled == 0 or m == 0 or t > s:
            return np.zeros(m, dtype=np.int64)
        lo = self.total - filled  # oldest sequence number still in the ring
        # near-duplicates of a group share most fingerprints: walk each distinct (segment,
        # fingerprint) once, then hand its matches to every query holding it
        key = ((self._seg[None, :] << 32) | q.astype(np.int64)).ravel()  # entry e = query e // s, segment e % s
        ukey, uid = _distinct(key)
        uj = ukey >> 32
        uf = (ukey & 0xFFFFFFFF).astype(np.uint32)
        start = self.head[uj, (uf & np.uint32(self.n_buckets - 1)).astype(np.intp)]
        live = np.flatnonzero((start >= 0) & (start.astype(np.int64) + self.base >= lo))
        # walk state, one column per chain: sequence number, segment, distinct key, fingerprint
        walk = np.stack([start[live].astype(np.int64) + self.base, uj[live], live, uf[live].astype(np.int64)])
        fps_flat = stored.reshape(-1)
        delta_flat = self.delta.reshape(-1)
        hits: list[np.ndarray] = []
        for _ in range(self.bucket_cap):
            if walk.shape[1] == 0:
                break
            cur, jj, _, qf = walk
            flat = cur % self.history
            flat *= s
            flat += jj
            same = (fps_flat[flat] == qf).nonzero()[0]
            if same.size:
                hits.append(walk[:3, same])
            cur -= delta_flat[flat]  # in place: the next holder of each chain
            keep = (cur >= lo).nonzero()[0]
            if keep.size < cur.size:
                walk = walk[:, keep]
        if not hits:
            return np.zeros(m, dtype=np.int64)
        found = np.concatenate(hits, axis=1)
        ms, mu = found[0], found[2]
        # the distinct stored queries matched by the group (near-duplicates: few, the recent ones)
        seen, vid = _distinct(ms)
        matched = np.zeros(ukey.size, dtype=np.int64)
        matched[mu] = 1
        n_keys = int(matched.sum())
        compact = np.cumsum(matched) - 1  # index of each matched distinct key
        if m * n_keys * seen.size <= _MATMUL_MNK:
            # shared[i, v] = sum over keys of (query i holds key) x (key matched stored query v):
            # one small product of two 0/1 matrices instead of listing every (query, match) pair
            holds = np.zeros((m, n_keys), dtype=np.float32)
            entries = np.flatnonzero(matched[uid])
            holds[entries // s, compact[uid[entries]]] = 1.0
            hit = np.zeros((n_keys, seen.size), dtype=np.float32)
            hit[compact[mu], vid] = 1.0
            return (matmul(holds, hit) >= t).sum(axis=1).astype(np.int64)
        vid = vid[np.argsort(mu, kind="stable")]
        per_u = np.bincount(mu, minlength=ukey.size)
        u_start = np.cumsum(per_u) - per_u
        n_e = per_u[uid]  # matches of each (query, segment) entry
        entries = np.flatnonzero(n_e)
        n_e = n_e[entries]
        ends = np.cumsum(n_e)
        within = np.arange(int(ends[-1])) - np.repeat(ends - n_e, n_e)
        v = vid[np.repeat(u_start[uid[entries]], n_e) + within]
        return close_from_pairs(np.repeat(entries // s, n_e), v, m, t)
