"""Boundary probing: queries that sit on the decision boundary, and labels that flip between
near-duplicates.

Decision-based attacks (HopSkipJump, Boundary) walk along the boundary: most of their queries have
a tiny margin (top-1 minus top-2 probability) and, between two almost identical queries, the
predicted label keeps changing. Natural traffic shows both rarely, and the reference says how
rarely: the small-margin threshold is the ``margin_quantile`` quantile of the reference margins
(so a natural query is "small-margin" with that probability), and the natural flip rate is the
share of label disagreements among the closest natural pairs of the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.stats.uncertainty import top_two

__all__ = ["margins", "BoundaryCalibration", "calibrate_boundary"]


def margins(scores: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability of each row (``|2p - 1|`` for one-column binary outputs).

    Examples
    --------
    >>> margins(np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])).round(2).tolist()
    [0.5, 0.05]
    >>> margins(np.array([[0.9], [0.45]])).round(2).tolist()
    [0.8, 0.1]
    """
    p = np.asarray(scores, dtype=np.float64)
    if p.ndim == 1 or p.shape[1] == 1:
        return np.abs(2.0 * p.reshape(-1) - 1.0)
    first, second = top_two(p)
    return first - second


@dataclass(frozen=True)
class BoundaryCalibration:
    """What the reference shows.

    Attributes
    ----------
    small_margin
        Margin below which a query counts as on the boundary.
    small_rate
        Share of reference rows below it (about ``margin_quantile``).
    flip_rate
        Share of label disagreements among the closest ``close_share`` of natural
        nearest-neighbour pairs, floored at ``flip_floor`` (a reference with no close pair
        disagreeing must not make every flip a surprise).
    """

    small_margin: float
    small_rate: float
    flip_rate: float


def calibrate_boundary(scores: np.ndarray, nn_distance: np.ndarray, nn_same_label: np.ndarray,
                       margin_quantile: float = 0.05, close_share: float = 0.1, flip_floor: float = 0.02) -> BoundaryCalibration:
    """Thresholds from the reference outputs and its nearest-neighbour pairs.

    Parameters
    ----------
    scores
        Reference probabilities.
    nn_distance, nn_same_label
        For each reference row: distance to its nearest other reference row, and whether the
        model predicted the same label for both.
    """
    if not 0.0 < margin_quantile < 1.0:
        raise ValueError(f"margin_quantile must be in (0, 1), got {margin_quantile}")
    m = margins(scores)
    small = float(np.quantile(m, margin_quantile))
    rate = float(np.mean(m < small)) if small > 0 else 0.0
    rate = max(rate, margin_quantile / 2)  # ties at 0 (hard labels) must not make the null rate vanish
    order = np.argsort(nn_distance, kind="stable")
    close = order[: max(1, int(round(close_share * order.size)))]
    flip = float(np.mean(~nn_same_label[close])) if close.size else 0.0
    return BoundaryCalibration(small_margin=small, small_rate=rate, flip_rate=max(flip, flip_floor))
