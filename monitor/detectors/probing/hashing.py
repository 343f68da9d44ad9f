"""Hash-based near-duplicate detection in the spirit of Blacklight (Li et al., USENIX Security 2022).

Each input is standardised with the reference's feature scales, quantised on a grid (``step``
reference standard deviations, with a random offset per feature so that grid lines do not fall
on typical values), and cut into overlapping segments of ``window`` features taken in a seeded
random order. Each segment is hashed into a 32-bit fingerprint, position-aligned (segment ``j``
of one query is only compared with segment ``j`` of another; Blacklight's unaligned matching makes
blank regions of unrelated inputs collide). Two queries are near-duplicates when they share at
least ``min_shared`` fingerprints; a query is a hit when at least ``k`` earlier queries of the same
client are its near-duplicates. ``min_shared`` is calibrated on the reference so that at most
``query_fpr`` of reference rows would be hits against the rest of the reference.

Also here: the exact-repeat hash (retries, cache-like look-ups), which must be counted apart and
kept out of every similarity state.

Memory is ``4 * n_segments`` bytes per stored query in the client's ring. Finding the stored
queries that share a new query's fingerprints goes through a per-client inverted index
(:mod:`.fpindex`: bounded work per fingerprint, whatever the history); :func:`shared_counts`, the
brute-force comparison, calibrates ``min_shared`` on the reference and is the index's reference
(``hash_lookup: scan``).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

__all__ = ["exact_hash", "Fingerprinter", "shared_counts"]

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_S32 = np.uint64(32)


def _mix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, vectorised (uint64 arithmetic wraps)."""
    h = h ^ (h >> _S33)
    h = h * _M1
    h = h ^ (h >> _S33)
    h = h * _M2
    return h ^ (h >> _S33)


def _odd_multipliers(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(1, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def exact_hash(numeric: np.ndarray, categorical: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """A 32-bit hash of each row's exact content, to recognise retries.

    Two rows get the same hash when every numeric value has the same bits (``-0.0`` counts as
    ``0.0``) and every categorical value is the same string; different rows collide with
    probability ``2**-32``.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0000001]])
    >>> h = exact_hash(x)
    >>> bool(h[0] == h[1]), bool(h[0] == h[2])
    (True, False)
    """
    num = np.ascontiguousarray(np.asarray(numeric, dtype=np.float64) + 0.0)
    n, d = num.shape
    mult = _odd_multipliers(max(d, 1) + 1, seed)
    with np.errstate(over="ignore"):
        if d:
            h = (num.view(np.uint64) * mult[None, :d]).sum(axis=1, dtype=np.uint64)
        else:
            h = np.zeros(n, dtype=np.uint64)
        if categorical is not None and categorical.size:
            extra = np.fromiter(
                (zlib.crc32("\x1f".join("\x00" if v is None else str(v) for v in row).encode("utf-8", "surrogatepass"))
                 for row in categorical.tolist()),
                dtype=np.uint64, count=n,
            )
            h = h + extra * mult[d]
        return (_mix(h) >> _S32).astype(np.uint32)


class Fingerprinter:
    """Quantise standardised rows and hash overlapping feature segments into fingerprints.

    Parameters
    ----------
    n_features
        Width of the (standardised) rows it will see.
    step
        Quantisation step in reference standard deviations: rows whose features all stay within
        the same cells of a segment share that segment's fingerprint.
    window
        Features per segment (capped at ``n_features``).
    stride
        Start offset between consecutive segments (default ``window // 2``: overlapping, as in
        Blacklight's sliding window); the order of features is a seeded permutation, wrapping.
    seed
        Seeds the permutation, the grid offsets and the hash multipliers.

    Examples
    --------
    >>> fp = Fingerprinter(8, step=0.5, window=4, seed=1)
    >>> z = np.zeros((3, 8)); z[1] += 0.01; z[2] += 3.0
    >>> f = fp.transform(z)
    >>> f.shape, int((f[0] == f[1]).sum()), int((f[0] == f[2]).sum())
    ((3, 4), 4, 0)
    """

    def __init__(self, n_features: int, step: float = 0.5, window: int = 8, stride: int | None = None, seed: int = 0) -> None:
        if n_features < 1:
            raise ValueError("the hash family needs at least one numeric feature (or an embedding)")
        if step <= 0:
            raise ValueError(f"hash_step must be > 0 (reference standard deviations), got {step}")
        self.n_features = int(n_features)
        self.window = max(1, min(int(window), self.n_features))
        self.stride = max(1, int(stride) if stride is not None else self.window // 2 or 1)
        self.step = float(step)
        rng = np.random.default_rng(seed)
        self._perm = rng.permutation(self.n_features)
        self._offset = rng.uniform(0.0, 1.0, self.n_features)
        self.n_segments = -(-self.n_features // self.stride)
        self._starts = np.arange(self.n_segments) * self.stride
        cols = (self._starts[:, None] + np.arange(self.window)[None, :]) % self.n_features
        self._cols = self._perm[cols]  # (n_segments, window) feature index of each segment slot
        self._mult = _odd_multipliers(self.window, seed + 1)
        self._salt = _odd_multipliers(self.n_segments, seed + 2)

    def transform(self, z: np.ndarray) -> np.ndarray:
        """Fingerprints ``(n, n_segments)`` uint32 of standardised rows ``z`` ``(n, n_features)``."""
        q = np.floor(np.clip(z / self.step + self._offset, -2.0**40, 2.0**40)).astype(np.int64).view(np.uint64)
        seg = q[:, self._cols]  # (n, n_segments, window)
        with np.errstate(over="ignore"):
            h = (seg * self._mult).sum(axis=2, dtype=np.uint64) + self._salt
            return (_mix(h) >> _S32).astype(np.uint32)

    def calibrate(self, fps: np.ndarray, k: int, query_fpr: float) -> int:
        """Smallest number of shared fingerprints that makes at most ``query_fpr`` of reference rows
        hits (at least ``k`` other reference rows sharing that many). ``n_segments + 1`` (never a
        hit) when even identical-looking reference rows are too common."""
        n = fps.shape[0]
        if n <= k:
            raise ValueError(f"the reference has {n} rows; the hash family needs more than k={k} to calibrate")
        kth = np.empty(n, dtype=np.int64)
        for start in range(0, n, 256):
            shared = shared_counts(fps[start:start + 256], fps)
            idx = np.arange(start, min(start + 256, n))
            shared[idx - start, idx] = -1  # not itself
            kth[start:start + 256] = -np.partition(-shared, k - 1, axis=1)[:, k - 1]
        for t in range(1, self.n_segments + 1):
            if np.mean(kth >= t) <= query_fpr:
                return t
        return self.n_segments + 1

    def state_dict(self) -> dict[str, Any]:  # derived from the hyperparameters: nothing to save
        return {}


def shared_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Number of position-aligned fingerprints each row of ``a`` shares with each row of ``b``.

    Examples
    --------
    >>> a = np.array([[1, 2, 3]], dtype=np.uint32); b = np.array([[1, 2, 9], [0, 0, 0]], dtype=np.uint32)
    >>> shared_counts(a, b).tolist()
    [[2, 0]]
    """
    return (a[:, None, :] == b[None, :, :]).sum(axis=2, dtype=np.int64)
