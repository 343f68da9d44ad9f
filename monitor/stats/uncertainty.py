"""Per-row uncertainty scores of a classifier's outputs: pure, vectorised functions.

Every function takes a whole batch (rows x classes) and returns one value per row, because the
worker calls them once per drained batch and a Python loop per row would cost more than the
model. Probabilities are assumed valid (rows in [0, 1] summing to one): the output decoder
(:mod:`monitor.outputs`) refuses the others before they reach here.

Examples
--------
>>> import numpy as np
>>> p = np.array([[0.7, 0.2, 0.1], [1/3, 1/3, 1/3]])
>>> top_two(p)[0].round(3).tolist(), top_two(p)[1].round(3).tolist()
([0.7, 0.333], [0.2, 0.333])
>>> normalized_entropy(p).round(3).tolist()
[0.73, 1.0]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "top_two",
    "normalized_entropy",
    "energy_score",
    "mutual_information",
    "top_class_variance",
    "log_probabilities",
]

_TINY = 1e-300


def log_probabilities(probs: np.ndarray) -> np.ndarray:
    """``log(probs)`` with a probability of exactly 0 kept finite (floored at 1e-300)."""
    return np.log(np.maximum(probs, _TINY))


#: Up to this many classes :func:`top_two` works column by column.
_COLUMN_WISE = 32
#: ... on batches of at least this many rows: the column pass costs two array operations per
#: class whatever the rows (about 20 us for 10 classes), a partition about 75 ns per row of 10
#: classes; they break even near 256 rows (measured on 4 to 2,048 rows of 10 classes).
_COLUMN_WISE_ROWS = 256


def top_two(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest and second-largest probability of each row.

    The margin (top-1 minus top-2) says how close the model was to answering otherwise; it
    separates "confident between two classes" from "confident in one", which max-probability
    alone cannot.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[1] == 1:
        return p[:, 0].copy(), np.zeros(p.shape[0])
    if p.shape[1] == 2:
        return p.max(axis=1), p.min(axis=1)
    if p.shape[1] <= _COLUMN_WISE and p.shape[0] >= _COLUMN_WISE_ROWS:
        # a running maximum and runner-up across the columns: elementwise passes over all the
        # rows at once, several times faster than partitioning each short row of a large batch
        # (both select the same two entries of each row: the figures do not depend on the path;
        # a zero's sign may differ between them when a row holds 0.0 and -0.0, which no
        # difference or comparison of the values can see)
        cols = np.ascontiguousarray(p.T)
        top, second = np.maximum(cols[0], cols[1]), np.minimum(cols[0], cols[1])
        for c in cols[2:]:
            np.maximum(second, np.minimum(top, c), out=second)
            np.maximum(top, c, out=top)
        if not np.isnan(top).any():  # NaN rows (refused upstream) keep partition's answer
            return top, second
    part = np.partition(p, p.shape[1] - 2, axis=1)
    return part[:, -1].copy(), part[:, -2].copy()


def normalized_entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row divided by ``log(k)``: 0 for a one-hot answer, 1 for uniform.

    Normalising makes one threshold meaningful whatever the number of classes.
    """
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[1]
    if k < 2:
        return np.zeros(p.shape[0])
    h = -(p * np.log(np.maximum(p, _TINY))).sum(axis=1)
    h /= np.log(k)
    # clipped to [0, 1] in place (np.clip's overhead exceeds the arithmetic on small batches)
    return np.minimum(np.maximum(h, 0.0, out=h), 1.0, out=h)


def energy_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Free energy ``-T * logsumexp(z / T)`` of each row of logits (Liu et al. 2020).

    Lower energy means more in-distribution; unlike max-softmax it keeps the logits' scale,
    which softmax throws away, so an input far from the training data (large or tiny logits)
    is visible even when its softmax looks ordinary.
    """
    with np.errstate(over="ignore"):  # logits of +-1e308: z - m overflows to -inf, whose exp is 0 (no warning to raise)
        z = np.asarray(logits, dtype=np.float64) / temperature
        m = z.max(axis=1)
        return -temperature * (m + np.log(np.exp(z - m[:, None]).sum(axis=1)))


def mutual_information(members: np.ndarray) -> np.ndarray:
    """Epistemic uncertainty of an ensemble / MC-dropout row, in nats (BALD, Houlsby et al. 2011).

    ``members`` is ``(n, samples, k)``. The mutual information between the prediction and the
    member is the entropy of the mean minus the mean entropy: zero when all members agree
    (whatever their own uncertainty), large when confident members disagree, which is what
    data outside the training distribution typically causes.
    """
    m = np.asarray(members, dtype=np.float64)
    mean = m.mean(axis=1)
    h_mean = -(mean * np.log(np.maximum(mean, _TINY))).sum(axis=1)
    h_members = -(m * np.log(np.maximum(m, _TINY))).sum(axis=2).mean(axis=1)
    return np.maximum(h_mean - h_members, 0.0)


def top_class_variance(members: np.ndarray) -> np.ndarray:
    """Variance across members of the probability given to the ensemble's predicted class."""
    m = np.asarray(members, dtype=np.float64)
    top = m.mean(axis=1).argmax(axis=1)
    chosen = np.take_along_axis(m, top[:, None, None], axis=2)[:, :, 0]
    return chosen.var(axis=1)
