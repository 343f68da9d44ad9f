"""Out-of-distribution score of each query against the reference.

Model-stealing clients that synthesise or draw random queries send inputs unlike anything real;
so do the first steps of several evasion attacks (random starting points). A per-input score
flags them. The built-in score is the Mahalanobis distance of the standardised features under a
shrunk covariance of the reference (cheap: one matrix product per batch). Its threshold is the
``1 - ood_fpr`` quantile of the score on *held-out* reference rows: the covariance is fitted on
one half of the reference (seeded split) and the threshold read on the other, so that the stated
false-positive rate is not flattered by scoring rows the model was fitted on.

The alibi-detect outlier detectors are an optional backend (``ood_backend="alibi:IForest"``,
any ``alibi_detect.od`` class with ``fit`` and ``score``, or ``predict(..., return_instance_score=True)``),
imported only when configured; the threshold is read the same way, by us, on held-out rows.
(alibi's ``Mahalanobis`` is an *online* detector that keeps learning from what it scores; prefer
the built-in score or ``IForest``.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from monitor.stats.matmul import matmul

__all__ = ["OODScorer", "MahalanobisScorer", "AlibiScorer", "OODModel", "fit_ood"]


class OODScorer(Protocol):
    """Anything that scores standardised rows, higher meaning less like the reference."""

    def score(self, z: np.ndarray) -> np.ndarray: ...


class MahalanobisScorer:
    """Mahalanobis distance under a covariance shrunk towards a scaled identity.

    Parameters
    ----------
    z
        Standardised reference rows to fit on.
    shrinkage
        Weight of the identity target (``(1 - s) * cov + s * mean_variance * I``): keeps the
        inverse finite when features are collinear or constant, and the score stable with few rows.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> sc = MahalanobisScorer(rng.normal(size=(500, 4)))
    >>> near, far = sc.score(np.array([[0.0, 0, 0, 0], [6.0, 6, 6, 6]]))
    >>> bool(near < 1.0 < 10.0 < far)
    True
    """

    def __init__(self, z: np.ndarray, shrinkage: float = 0.1) -> None:
        if not 0.0 < shrinkage <= 1.0:
            raise ValueError(f"ood_shrinkage must be in (0, 1], got {shrinkage}")
        z = np.asarray(z, dtype=np.float64)
        self.mean = z.mean(axis=0)
        d = z.shape[1]
        cov = np.cov(z, rowvar=False).reshape(d, d) if z.shape[0] > 1 else np.zeros((d, d))
        avg = float(np.trace(cov) / d) if d else 1.0
        target = avg if avg > 0 else 1.0
        reg = (1.0 - shrinkage) * cov + shrinkage * target * np.eye(d)
        chol = np.linalg.cholesky(reg)
        # whiten: w = (z - mean) @ W with W = inv(L).T, so that |w|^2 is the squared distance
        self.whiten = np.linalg.inv(chol).T

    def score(self, z: np.ndarray) -> np.ndarray:
        w = matmul(np.asarray(z, dtype=np.float64) - self.mean, self.whiten)
        return np.sqrt(np.einsum("ij,ij->i", w, w))


class AlibiScorer:
    """An ``alibi_detect.od`` outlier detector used as the per-input score (optional extra).

    Raises
    ------
    ImportError
        When alibi-detect is not installed, naming the extra that installs it.
    """

    def __init__(self, name: str, z: np.ndarray, **kwargs: Any) -> None:
        try:
            import alibi_detect.od as od  # noqa: PLC0415 - optional backend, imported only when configured
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"ood_backend='alibi:{name}' needs alibi-detect, which is not installed: "
                "pip install 'model-monitor[alibi]' (or use the built-in ood_backend='mahalanobis')"
            ) from exc
        cls = getattr(od, name, None)
        if cls is None:
            raise ValueError(f"ood_backend='alibi:{name}': alibi_detect.od has no detector {name!r} (try IForest or Mahalanobis)")
        self.detector = cls(**kwargs)
        fit = getattr(self.detector, "fit", None)
        if fit is not None:
            fit(np.asarray(z, dtype=np.float32))

    def score(self, z: np.ndarray) -> np.ndarray:
        """Instance scores: ``score()`` where the detector has one (its ``predict`` needs alibi's own
        threshold, which we do not use), else ``predict(..., return_instance_score=True)``."""
        x = np.asarray(z, dtype=np.float32)
        fn = getattr(self.detector, "score", None)
        if fn is not None:
            out = fn(x)
            if isinstance(out, tuple):  # (feature scores, instance scores) for some detectors
                out = out[-1]
            return np.asarray(out, dtype=np.float64).ravel()
        out = self.detector.predict(x, return_instance_score=True)
        return np.asarray(out["data"]["instance_score"], dtype=np.float64).ravel()


@dataclass
class OODModel:
    """A scorer with its threshold at the stated false-positive rate."""

    scorer: Any
    threshold: float
    fpr: float
    held_out_rows: int

    def flags(self, z: np.ndarray) -> np.ndarray:
        """True where a standardised row is out of distribution."""
        return self.scorer.score(z) > self.threshold


def fit_ood(z: np.ndarray, fpr: float, rng: np.random.Generator, backend: str = "mahalanobis",
            shrinkage: float = 0.1, backend_params: dict[str, Any] | None = None) -> OODModel:
    """Fit the scorer on half of the standardised reference rows, threshold on the other half.

    Parameters
    ----------
    backend
        ``"mahalanobis"`` (built in) or ``"alibi:<DetectorName>"``.
    """
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    if n < 4:
        raise ValueError(f"the OOD score needs a reference of at least 4 rows, got {n}")
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"ood_fpr must be in (0, 1), got {fpr}")
    perm = rng.permutation(n)
    fit_rows, held = z[perm[: n // 2]], z[perm[n // 2:]]
    if backend == "mahalanobis":
        scorer: Any = MahalanobisScorer(fit_rows, shrinkage=shrinkage)
    elif backend.startswith("alibi:"):
        scorer = AlibiScorer(backend.split(":", 1)[1], fit_rows, **(backend_params or {}))
    else:
        raise ValueError(f"ood_backend must be 'mahalanobis' or 'alibi:<Detector>' (e.g. 'alibi:IForest'), got {backend!r}")
    scores = scorer.score(held)
    threshold = float(np.quantile(scores, 1.0 - fpr, method="higher"))
    return OODModel(scorer=scorer, threshold=threshold, fpr=float(fpr), held_out_rows=int(held.shape[0]))
