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
``mean_c0``, ``std_c0``, ``mean_c1``...
    Each channel's mean and standard deviation, when the rows have a channel axis of 2 to
    :data:`MAX_CHANNELS` channels: a colour cast (a camera's white balance drifting, red up and
    blue down) keeps the overall brightness and is seen only there. The channel axis is the
    feature's ``channel_axis`` when configured, else recognised in rows of images: axis 1 of
    ``(n, c, h, w)`` or axis 3 of ``(n, h, w, c)`` when exactly one of them holds 3 or 4 values
    (:func:`find_channel_axis`).

Only the descriptors are kept, never the tensors: a batch's memory is that of 7 numbers per
row, and 2 more per channel. This is pure computation (no intake, no detector): the worker calls it while building
batches, never the decorated function's thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CHANNEL_DESCRIPTORS", "DEFAULT_NAME", "DESCRIPTORS", "MAX_CHANNELS", "MIN_NDIM", "NO_CHANNEL_AXIS",
           "ChannelError", "channels_in", "descriptor_names", "describe", "find_channel_axis", "is_tensor"]

#: The descriptors every tensor feature has, in column order.
DESCRIPTORS = ("mean", "std", "min", "max", "at_min_share", "at_max_share", "non_finite_share")
#: The descriptors each channel has, after :data:`DESCRIPTORS`: every channel's ``mean_c<i>``,
#: then every channel's ``std_c<i>``.
CHANNEL_DESCRIPTORS = ("mean", "std")
#: Channel counts an axis is recognised by without a configured ``channel_axis``: RGB, RGBA (one
#: channel needs no descriptors of its own: they would repeat the overall ones).
AUTO_CHANNELS = (3, 4)
#: The most channels described one by one (multispectral images have a dozen bands; an axis of
#: 64 is a feature map, whose 128 descriptors would drown the others in the drift tests).
MAX_CHANNELS = 16
#: A configured ``channel_axis`` saying the rows have none (axis 0 is the rows, never channels).
NO_CHANNEL_AXIS = 0
#: The name of a tensor feature nothing names (the reference's, a configured one).
DEFAULT_NAME = "input"
#: Dimensions from which an array is rows of a tensor feature (axis 0 the rows), where a 2-D one
#: is rows of numeric features.
MIN_NDIM = 3
#: Values described in one pass: rows are read in chunks of at most this many values, so that
#: the float64 temporaries of a call of 256 images of 3 x 224 x 224 stay near 8 MB, not 300 MB.
CHUNK_VALUES = 1 << 20


def descriptor_names(feature: str, channels: int = 0) -> tuple[str, ...]:
    """The numeric features tensor feature ``feature`` is monitored as (``image.mean``...), with
    ``channels`` channels described one by one (``image.mean_c0``...; 0 for none)."""
    per_channel = tuple(f"{feature}.{d}_c{i}" for d in CHANNEL_DESCRIPTORS for i in range(channels))
    return tuple(f"{feature}.{d}" for d in DESCRIPTORS) + per_channel


def channels_in(feature: str, names: "tuple[str, ...] | list[str]") -> int:
    """The channels tensor feature ``feature`` has descriptors of among ``names`` (a reference's
    numeric features): 0 when it has none (rows without a channel axis, or a reference built
    before channels were described)."""
    held = set(names)
    count = 0
    while f"{feature}.mean_c{count}" in held:
        count += 1
    return count


class ChannelError(ValueError):
    """Rows whose channel axis cannot be told, or whose channels are not the reference's;
    ``ambiguous`` when naming the axis is the fix."""

    def __init__(self, problem: str, ambiguous: bool = False) -> None:
        super().__init__(problem)
        self.ambiguous = ambiguous


def find_channel_axis(shape: tuple[int, ...], configured: int | None = None,
                      channels: int | None = None) -> tuple[int | None, int]:
    """The channel axis of rows of ``shape`` (axis 0 the rows) and how many channels to describe.

    Parameters
    ----------
    shape
        The call's array's shape.
    configured
        The feature's ``channel_axis``: an axis of that array (negative from its end), or
        :data:`NO_CHANNEL_AXIS`; None to recognise it: axis 1 of ``(n, c, h, w)`` or axis 3 of
        ``(n, h, w, c)``, whichever alone holds 3 or 4 values (an axis of 1 channel, or none of
        those sizes, or both, as ``(n, 3, 8, 4)``, gives no channel descriptors).
    channels
        The channels the feature was fixed with (the reference's; else the first rows'), None
        while unknown. With 0 nothing is described per channel, whatever the shape (a reference
        without channel descriptors has nothing to compare them with); with more, the rows must
        have that many, on the configured axis or on the one axis (1 or the last) of that size.

    Returns
    -------
    (axis, count)
        ``axis`` None and ``count`` 0 for no channel descriptors.

    Raises
    ------
    ChannelError
        The axis is not one of the rows', holds more than :data:`MAX_CHANNELS`, or another count
        than ``channels``; or two axes could hold the ``channels`` (``(n, 3, 8, 3)``), ``ambiguous``.
    """
    ndim = len(shape)
    if channels == 0:
        return None, 0
    if configured == NO_CHANNEL_AXIS:
        if channels:
            raise ChannelError(f"channel_axis is none, but the reference describes {channels} channels")
        return None, 0
    if configured is not None:
        axis = configured + ndim if configured < 0 else configured
        if not 1 <= axis < ndim:
            raise ChannelError(f"channel_axis {configured} is not an axis of rows of shape {tuple(shape)} (axis 0 is "
                               "the rows)")
        return _counted(shape, axis, channels)
    if channels is not None:
        found = sorted({a for a in (1, ndim - 1) if ndim >= 3 and shape[a] == channels})
        if len(found) == 1:
            return found[0], channels
        if not found:
            raise ChannelError(f"rows of shape {tuple(shape)} have no axis of {channels} channels (axis 1 or the last), "
                               f"as the reference's do")
        raise ChannelError(f"rows of shape {tuple(shape)} have {channels} values on axis 1 and on axis {ndim - 1}: either "
                           "could be the channels", ambiguous=True)
    if ndim != 4:
        return None, 0
    first, last = shape[1] in AUTO_CHANNELS, shape[3] in AUTO_CHANNELS
    if first != last:
        return _counted(shape, 1 if first else 3, None)
    return None, 0  # neither, or both (no image is 3 or 4 pixels wide): unless configured, no channels


def _counted(shape: tuple[int, ...], axis: int, channels: int | None) -> tuple[int | None, int]:
    count = int(shape[axis])
    if channels is not None and count != channels:
        raise ChannelError(f"rows of shape {tuple(shape)} have {count} channel(s) on axis {axis}, the reference's "
                           f"{channels}")
    if count > MAX_CHANNELS:
        raise ChannelError(f"axis {axis} of rows of shape {tuple(shape)} holds {count} values, more channels than the "
                           f"{MAX_CHANNELS} described one by one")
    return (axis, count) if count >= 2 else (None, 0)


def is_tensor(inputs: Any) -> bool:
    """Whether ``inputs`` (as the worker reads them: tensors already numpy) are rows of a tensor
    feature: a numpy array of numbers of :data:`MIN_NDIM` dimensions or more."""
    return (isinstance(inputs, np.ndarray) and inputs.ndim >= MIN_NDIM
            and inputs.dtype.kind in "biuf")


def describe(rows: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """The descriptors of ``rows`` (axis 0 the rows, any shape after it), float64 ``(n, 7)``, or
    ``(n, 7 + 2 c)`` with the ``c`` channels on ``channel_axis`` (an axis from 1, as
    :func:`find_channel_axis` gives it) described one by one.

    Rows are read in chunks of :data:`CHUNK_VALUES` values, each written once into a float64
    buffer, channel by channel, less a shift near each channel's mean (the mean of every
    :data:`SHIFT_STRIDE`-th value); each channel's sum and sum of squares are then one pass each,
    without temporaries. Reading each descriptor apart (numpy's ``mean`` and ``std``, each with
    float64 temporaries of the rows) cost 2 to 3 times as much. The shift keeps the sums of squares
    free of cancellation (their error grows with the squared distance of the shift from the
    mean, a fraction of the variance); the overall mean and std combine the channels' (the
    channels' variances plus their means' spread, Chan et al.'s parallel variance).

    Raises ``TypeError`` for values that are not numbers (complex ones included)."""
    arr = np.asarray(rows)
    if arr.dtype.kind == "b":
        arr = arr.view(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"tensor values must be numbers, got dtype {arr.dtype}")
    if not arr.ndim:
        arr = arr.reshape(1, 1)
    n = arr.shape[0]
    size = int(np.prod(arr.shape[1:], dtype=np.int64))
    channels = int(arr.shape[channel_axis]) if channel_axis else 0
    out = np.empty((n, len(DESCRIPTORS) + len(CHANNEL_DESCRIPTORS) * channels), dtype=np.float64)
    if size == 0:
        out[:] = np.nan
        return out
    c = max(channels, 1)  # rows without channels are rows of one
    before = int(np.prod(arr.shape[1:channel_axis], dtype=np.int64)) if channels else 1
    # (rows, channels, values before the channel axis, values after it): a view of the rows
    grouped = arr.reshape(n, before, c, size // (before * c)).transpose(0, 2, 1, 3)
    flat = arr.reshape(n, size)
    step = max(1, CHUNK_VALUES // size)
    buffer = np.empty(min(n, step) * size, dtype=np.float64)
    at = np.empty(min(n, step) * size, dtype=bool)
    for start in range(0, n, step):
        part = grouped[start:start + step]
        rows = part.shape[0]
        values = buffer[:rows * size].reshape(part.shape)
        _describe_chunk(part, flat[start:start + step], values, at[:rows * size].reshape(rows, size),
                        out[start:start + step], channels)
    return out


#: Every how many values a channel's shift is read (:func:`describe`): some 50 of an image of
#: 224 x 224, enough to bring the shift within a fraction of a standard deviation of the mean.
SHIFT_STRIDE = 997


def _describe_chunk(x: np.ndarray, flat: np.ndarray, values: np.ndarray, at: np.ndarray, out: np.ndarray,
                    channels: int) -> None:
    """The descriptors of rows ``x`` ``(rows, c, before, after)`` (``flat`` the same rows as
    ``(rows, size)``) into ``out``; ``values`` (float64) and ``at`` (bool) are buffers of their sizes."""
    rows, c = x.shape[:2]
    per_channel = x[0, 0].size
    size = c * per_channel
    # every SHIFT_STRIDE-th value along the longer of the two axes (a view: the rows may be a
    # transposed view of channels-last images, which a reshape would copy)
    sample = x[:, :, ::SHIFT_STRIDE] if x.shape[2] >= x.shape[3] else x[:, :, :, ::SHIFT_STRIDE]
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite values: found by their sums, below
        shift = sample.mean(axis=(2, 3), dtype=np.float64)
        np.subtract(x, shift[:, :, None, None], out=values, casting="unsafe")
        lines = values.reshape(rows * c, per_channel)
        sums = lines.sum(axis=1).reshape(rows, c)
    if not np.isfinite(sums).all():  # NaN or infinite values (or sums past 1e308)
        _describe_non_finite(x.reshape(rows, c, per_channel), out, channels)  # a copy when transposed: rare
        return
    # einsum's own loop, not BLAS: OpenBLAS would run a product this long on every core, its
    # threads spinning beside the model (see monitor.stats.matmul)
    squares = np.einsum("ij,ij->i", lines, lines).reshape(rows, c)
    offset = sums / per_channel
    means = shift + offset
    # each channel's squared deviations from its mean (the shifted sum of squares less the
    # shift's share; never below 0, which rounding could reach for a constant channel)
    deviations = np.maximum(squares - sums * offset, 0.0)
    mean = means.mean(axis=1)
    spread = ((means - mean[:, None]) ** 2).sum(axis=1) * per_channel
    out[:, 0] = mean
    out[:, 1] = np.sqrt((deviations.sum(axis=1) + spread) / size)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    out[:, 2], out[:, 3] = lo, hi
    for j, extreme in ((4, lo), (5, hi)):
        np.equal(flat, extreme[:, None], out=at)
        out[:, j] = [np.count_nonzero(line) for line in at]  # a row at a time: 5 times as fast as axis=1
    out[:, 4:6] /= size
    out[:, 6] = 0.0
    if channels:
        out[:, 7:7 + channels] = means
        out[:, 7 + channels:] = np.sqrt(deviations / per_channel)


def _describe_non_finite(x: np.ndarray, out: np.ndarray, channels: int) -> None:
    """:func:`_describe_chunk` of rows ``x`` ``(rows, c, values)`` holding NaN or infinite values:
    the descriptors of the finite ones (missing for a row, or a channel, of none), and their
    share. Rare, and read plainly (two passes, temporaries of the rows)."""
    rows, c, per_channel = x.shape
    size = c * per_channel
    finite = np.isfinite(x)
    kept = np.count_nonzero(finite, axis=2)  # (rows, c)
    count = kept.sum(axis=1)
    held = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(finite, x, 0.0).astype(np.float64, copy=False)
        means = values.sum(axis=2) / kept
        mean = values.sum(axis=(1, 2)) / count
        dev = np.where(finite, values - means[:, :, None], 0.0)
        squares = (dev * dev).sum(axis=2)
        # each channel's squared deviations plus its mean's distance from the row's (a channel of none adds none)
        spread = np.where(kept > 0, squares + (means - mean[:, None]) ** 2 * kept, 0.0).sum(axis=1)
        lo = np.where(finite, x, np.inf).min(axis=(1, 2))
        hi = np.where(finite, x, -np.inf).max(axis=(1, 2))
        out[:, 0] = mean
        out[:, 1] = np.sqrt(spread / count)
        out[:, 2], out[:, 3] = lo, hi
        out[:, 4] = np.count_nonzero(finite & (x == lo[:, None, None]), axis=(1, 2)) / count
        out[:, 5] = np.count_nonzero(finite & (x == hi[:, None, None]), axis=(1, 2)) / count
        if channels:
            out[:, 7:7 + channels] = means
            out[:, 7 + channels:] = np.sqrt(squares / kept)
    out[~held, :6] = np.nan
    out[:, 6] = 1.0 - count / size
