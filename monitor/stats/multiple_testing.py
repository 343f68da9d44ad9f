"""Corrections for testing many features at once.

With 32 features each tested at 5%, some feature "drifts" in four windows out of five on
perfectly stable traffic. Two corrections are offered: Bonferroni (family-wise error, simple and
valid under any dependence) and Benjamini-Hochberg (false discovery rate; same guarantee as
Bonferroni when nothing drifts, more power when several features drift together).

>>> bonferroni([0.01, 0.02, 0.5], alpha=0.05).tolist()
[True, False, False]
>>> benjamini_hochberg([0.01, 0.02, 0.5], alpha=0.05).tolist()
[True, True, False]
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["CORRECTIONS", "bonferroni", "holm", "benjamini_hochberg", "adjust", "reject"]

#: Accepted names of the ``correction`` parameter.
CORRECTIONS = ("bonferroni", "holm", "fdr", "none")


def _p(pvalues: "Sequence[float] | np.ndarray") -> np.ndarray:
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    return np.where(np.isnan(p), 1.0, p)


def bonferroni(pvalues: "Sequence[float] | np.ndarray", alpha: float = 0.05) -> np.ndarray:
    """Reject where ``p <= alpha / m`` (family-wise error <= alpha under any dependence)."""
    p = _p(pvalues)
    return p <= alpha / max(p.size, 1)


def holm(pvalues: "Sequence[float] | np.ndarray", alpha: float = 0.05) -> np.ndarray:
    """Holm's step-down: the same guarantee as Bonferroni, never fewer rejections."""
    p = _p(pvalues)
    m = p.size
    order = np.argsort(p, kind="stable")
    ok = p[order] <= alpha / (m - np.arange(m))
    n_rej = m if ok.all() else int(np.argmin(ok))
    out = np.zeros(m, dtype=bool)
    out[order[:n_rej]] = True
    return out


def benjamini_hochberg(pvalues: "Sequence[float] | np.ndarray", alpha: float = 0.05) -> np.ndarray:
    """Benjamini-Hochberg step-up (false discovery rate <= alpha under independence / PRDS)."""
    p = _p(pvalues)
    m = p.size
    order = np.argsort(p, kind="stable")
    ok = np.flatnonzero(p[order] <= alpha * np.arange(1, m + 1) / max(m, 1))
    out = np.zeros(m, dtype=bool)
    if ok.size:
        out[order[: ok[-1] + 1]] = True
    return out


def adjust(pvalues: "Sequence[float] | np.ndarray", method: str = "bonferroni") -> np.ndarray:
    """Adjusted p-values (compare them with alpha directly), for export next to the raw ones."""
    p = _p(pvalues)
    m = p.size
    if m == 0 or method == "none":
        return p.copy()
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "bonferroni":
        adj = np.minimum(1.0, ps * m)
    elif method == "holm":
        adj = np.minimum(1.0, np.maximum.accumulate(ps * (m - np.arange(m))))
    elif method == "fdr":
        adj = np.minimum(1.0, np.minimum.accumulate((ps * m / np.arange(1, m + 1))[::-1])[::-1])
    else:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {method!r}")
    out = np.empty(m)
    out[order] = adj
    return out


def reject(pvalues: "Sequence[float] | np.ndarray", alpha: float, method: str = "bonferroni") -> np.ndarray:
    """Which hypotheses to reject at level ``alpha`` under ``method`` (see :data:`CORRECTIONS`)."""
    if method == "bonferroni":
        return bonferroni(pvalues, alpha)
    if method == "holm":
        return holm(pvalues, alpha)
    if method == "fdr":
        return benjamini_hochberg(pvalues, alpha)
    if method == "none":
        return _p(pvalues) <= alpha
    raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, not {method!r}")
