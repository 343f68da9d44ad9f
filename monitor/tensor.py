"""Images, audio and sequences among a model's inputs, monitored through numbers that describe each row.

An input of three or more dimensions (a batch of images ``(n, c, h, w)``, of spectrograms, of
token-embedding sequences) is ``n`` rows of one *tensor* feature: no column of it is a feature
(a pixel's position means nothing from one image to the next, and 150,528 columns per row are
no schema), so each row is described instead by a few numbers, its *descriptors* (as
Evidently's image statistics and whylogs' image features do), which the numeric drift and
data-quality machinery then watches as features named ``<feature>.<descriptor>``:

``mean``
    The row's mean value: brightness, loudness, a shifted normalisation.
``std``
    Its standard deviation: contrast, dynamic range; 0 for a blank row.
``min``, ``max``
    Its extremes: a clipped, rescaled or re-normalised input (0-255 sent where 0-1 was meant).
``at_min_share``, ``at_max_share``
    Share of its values equal to its min (max): saturation and clipping (an over-exposed image has
    much of it at its max, a blank one all of it at both).
``non_finite_share``
    Share of its values that are NaN or infinite; the other descriptors are read over the finite
    ones (a row of none has them missing).

Only the descriptors are kept, never the tensors: a batch's memory is that of 7 numbers per
row. This is pure computation (no intake, no detector): the worker calls it while building
batches, never the decorated function's thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DEFAULT_NAME", "DESCRIPTORS", "MIN_NDIM", "descriptor_names", "describe", "is_tensor"]

#: The descriptors every tensor feature has, in column order.
DESCRIPTORS = ("mean", "std", "min", "max", "at_min_share", "at_max_share", "non_finite_share")
#: The name of a tensor feature nothing names (the reference's, a configured one).
DEFAULT_NAME = "input"
#: Dimensions from which an array is rows of a tensor feature (axis 0 the rows), where a 2-D one
#: is rows of numeric features.
MIN_NDIM = 3
#: Values described in one pass: rows are read in chunks of at most this many values, so that
#: the float64 temporaries of a call of 256 images of 3 x 224 x 224 stay near 8 MB, not 300 MB.
CHUNK_VALUES = 1 << 20


def descriptor_names(feature: str) -> tuple[str, ...]:
    """The numeric features tensor feature ``feature`` is monitored as (``image.mean``...)."""
    return tuple(f"{feature}.{d}" for d in DESCRIPTORS)


def is_tensor(inputs: Any) -> bool:
    """Whether ``inputs`` (as the worker reads them: tensors already numpy) are rows of a tensor
    feature: a numpy array of numbers of :data:`MIN_NDIM` dimensions or more."""
    return (isinstance(inputs, np.ndarray) and inputs.ndim >= MIN_NDIM
            and inputs.dtype.kind in "biuf")


def describe(rows: np.ndarray) -> np.ndarray:
    """The descriptors of ``rows`` (axis 0 the rows, any shape after it), float64 ``(n, 7)``.

    Raises ``TypeError`` for values that are not numbers (complex ones included)."""
    arr = np.asarray(rows)
    if arr.dtype.kind == "b":
        arr = arr.view(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"tensor values must be numbers, got dtype {arr.dtype}")
    n = arr.shape[0] if arr.ndim else 1
    flat = arr.reshape(n, int(np.prod(arr.shape[1:], dtype=np.int64)))
    out = np.empty((n, len(DESCRIPTORS)), dtype=np.float64)
    size = flat.shape[1]
    if size == 0:
        out[:] = np.nan
        return out
    step = max(1, CHUNK_VALUES // size)
    for start in range(0, n, step):
        _describe_chunk(flat[start:start + step], out[start:start + step])
    return out


def _describe_chunk(x: np.ndarray, out: np.ndarray) -> None:
    size = x.shape[1]
    finite = None
    if x.dtype.kind == "f":
        ok = np.isfinite(x)
        if not ok.all():
            finite = ok
    if finite is None:
        lo, hi = x.min(axis=1), x.max(axis=1)
        out[:, 0] = x.mean(axis=1, dtype=np.float64)
        out[:, 1] = x.std(axis=1, dtype=np.float64)
        out[:, 2], out[:, 3] = lo, hi
        out[:, 4] = np.count_nonzero(x == lo[:, None], axis=1) / size
        out[:, 5] = np.count_nonzero(x == hi[:, None], axis=1) / size
        out[:, 6] = 0.0
        return
    count = np.count_nonzero(finite, axis=1)
    held = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(finite, x, np.inf).min(axis=1)
        hi = np.where(finite, x, -np.inf).max(axis=1)
        values = np.where(finite, x, 0.0).astype(np.float64, copy=False)
        mean = values.sum(axis=1) / count
        var = np.where(finite, values - mean[:, None], 0.0)
        out[:, 0] = mean
        out[:, 1] = np.sqrt((var * var).sum(axis=1) / count)
        out[:, 2], out[:, 3] = lo, hi
        out[:, 4] = np.count_nonzero(finite & (x == lo[:, None]), axis=1) / count
        out[:, 5] = np.count_nonzero(finite & (x == hi[:, None]), axis=1) / count
    out[~held, :6] = np.nan
    out[:, 6] = 1.0 - count / size
