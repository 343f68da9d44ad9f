"""numpy's floating-point warnings of the monitor's own figures stay inside the monitor.

Values near the float limit (1e308 outputs, labels or features: a unit bug, an uninitialised
buffer) make the figures overflow (inf, an inf - inf NaN). numpy says so with a RuntimeWarning,
which printed to the user's stderr from whichever thread ran the monitor (the worker, a scrape,
``flush``), once per line of code, or raised where the process turns warnings into errors. The
figures say it themselves (inf, NaN, absent), and the pipeline's entry points run under
:func:`quiet_float_errors`; numpy keeps its error state per thread and restores it on the way
out, so the user's code keeps its own.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import numpy as np

__all__ = ["quiet_float_errors"]

_F = TypeVar("_F", bound=Callable[..., Any])


def quiet_float_errors(method: _F) -> _F:
    """``method`` with numpy's floating-point errors ignored while it runs.

    >>> @quiet_float_errors
    ... def square(x):
    ...     return x * x
    >>> float(square(np.float64(1e308)))
    inf
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
