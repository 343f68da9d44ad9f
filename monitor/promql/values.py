"""Columnar intermediate values used while evaluating an expression.

Why columnar: an instant vector is carried as a list of label sets plus one numpy array of values,
and a range vector as a shared timestamp axis plus 2-D value and validity arrays. Arithmetic,
comparisons, simple functions and range functions then run once per node as numpy operations
over all series, which is what keeps 50 rules over 10,000 series inside a few tens of
milliseconds. Conversion to the public :class:`~monitor.promql.types.Sample` /
:class:`~monitor.promql.types.Series` objects happens only at the very end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from monitor.promql.errors import EvalError
from monitor.promql.types import Labels

__all__ = ["IVec", "RVec", "empty_ivec", "check_unique"]


@dataclass
class IVec:
    """An instant vector: ``labels[i]`` has value ``values[i]``.

    ``ts`` holds the samples' own timestamps (ms) when the vector comes straight from a vector
    selector; ``timestamp()`` needs them. Every other operation leaves it ``None``.
    """

    labels: list[Labels]
    values: np.ndarray
    ts: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: np.ndarray | list[int]) -> IVec:
        """Return the sub-vector at positions ``idx`` (timestamps are kept)."""
        idx_arr = np.asarray(idx, dtype=np.int64)
        labs = self.labels
        return IVec([labs[i] for i in idx_arr.tolist()], self.values[idx_arr],
                    None if self.ts is None else self.ts[idx_arr])


@dataclass
class RVec:
    """A range vector on a shared time axis.

    ``vals[i, j]`` is the value of series ``labels[i]`` at ``ts[j]`` when ``mask[i, j]`` is true;
    cells with a false mask are absent (no sample, or a stale marker).
    """

    labels: list[Labels]
    ts: np.ndarray
    vals: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def empty_ivec() -> IVec:
    """Return an instant vector with no elements."""
    return IVec([], np.zeros(0, dtype=np.float64))


def check_unique(labels: list[Labels]) -> None:
    """Raise Prometheus's error when two elements of a result share a label set."""
    if len(labels) > 1 and len(set(labels)) != len(labels):
        raise EvalError("vector cannot contain metrics with the same labelset")
