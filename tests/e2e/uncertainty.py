"""The sidecar's non-probability models of the end-to-end test: a regression model that returns
quantiles, a classifier that returns logits and a bootstrap ensemble that returns every member's
probabilities, so that the regression, quantile-coverage, energy and ensemble panels have data.

All three are real scikit-learn models fitted here; their events go to the sidecar over
``POST /v1/events`` with the rest of the traffic copy (see :class:`tests.e2e.traffic.Traffic`).

* ``regression``: a linear regression on scikit-learn's diabetes data whose quantiles are the
  prediction plus Gaussian quantiles of the training residuals (levels 0.05, 0.5, 0.95), with a
  reference profile of held-out predictions saved to disk for the sidecar (drift figures);
* ``logits``: the world's breast-cancer classifier answering with its decision function;
* ``ensemble``: five logistic regressions fitted on bootstrap samples, answering ``(samples, k)``
  per row (``output.samples_axis``).

The targets and labels come back as feedback events right after each prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["QUANTILES", "KINDS", "model_names", "UncertaintyModels", "train_uncertainty_models"]

QUANTILES = (0.05, 0.5, 0.95)
KINDS = ("regression", "logits", "ensemble")


def model_names(prefix: str) -> dict[str, str]:
    """Sidecar model name of each kind: ``<prefix>-<kind>``."""
    return {k: f"{prefix}-{k}" for k in KINDS}

_Z = {0.05: -1.6448536269514722, 0.5: 0.0, 0.95: 1.6448536269514722}


@dataclass
class UncertaintyModels:
    """The three models, their held-out pools and their sidecar model configs."""

    prefix: str
    regressor: Any
    residual_sd: float
    X_reg: np.ndarray
    y_reg: np.ndarray
    reg_features: tuple[str, ...]
    logit_model: Any
    members: tuple[Any, ...]
    world: Any
    reference_path: Path
    rng: np.random.Generator

    @property
    def names(self) -> dict[str, str]:
        return model_names(self.prefix)

    def quantiles(self, X: np.ndarray) -> np.ndarray:
        mean = self.regressor.predict(X)
        return np.stack([mean + _Z[q] * self.residual_sd for q in QUANTILES], axis=1)

    def sidecar_models(self) -> list[dict[str, Any]]:
        """Model entries of the sidecar's ``models:`` list (window and checkpoint come from the top)."""
        clf_features = [{"name": n, "kind": "numeric"} for n in self.world.names]
        classes = list(self.world.classes)
        return [
            {"model": self.names["regression"], "features": [{"name": n, "kind": "numeric"} for n in self.reg_features],
             "output": {"kind": "regression", "quantiles": list(QUANTILES)},
             "reference": {"path": str(self.reference_path)},
             "detectors": [{"kind": "regression", "by_segment": True}]},
            {"model": self.names["logits"], "features": clf_features, "output": {"kind": "logits", "classes": classes},
             "detectors": [{"kind": "confidence"}, {"kind": "segments", "histograms": True}]},
            {"model": self.names["ensemble"], "features": clf_features,
             "output": {"kind": "probabilities", "classes": classes, "samples_axis": True},
             "detectors": [{"kind": "confidence"}, {"kind": "segments"}]},
        ]

    def events(self, x_clf: np.ndarray, now: float, rid: str) -> list[dict[str, Any]]:
        """One prediction of each model (the classifier row ``x_clf`` and a held-out diabetes row)
        and the regression target as feedback. Draws from its own generator, so that adding these
        models leaves the app's traffic stream (and the alerts it drives) unchanged."""
        i = int(self.rng.integers(len(self.X_reg)))
        x_reg = self.X_reg[i]
        names = self.names
        logits = self.logit_model.decision_function(x_clf[None, :])
        member_p = np.stack([m.predict_proba(x_clf[None, :])[0] for m in self.members])
        segment = "eu" if self.rng.random() < 0.5 else "us"
        return [
            {"model": names["regression"], "timestamp": now, "inputs": x_reg.tolist(),
             "outputs": self.quantiles(x_reg[None, :])[0].tolist(), "request_id": rid, "segment": segment},
            {"type": "feedback", "model": names["regression"], "timestamp": now, "request_ids": [rid],
             "labels": [float(self.y_reg[i])]},
            {"model": names["logits"], "timestamp": now, "inputs": x_clf.tolist(), "outputs": logits.tolist(),
             "request_id": rid, "segment": segment},
            {"model": names["ensemble"], "timestamp": now, "inputs": x_clf.tolist(), "outputs": member_p.tolist(),
             "request_id": rid, "segment": segment},
        ]


def train_uncertainty_models(world: Any, workdir: Path, prefix: str = "sidecar", seed: int = 0) -> UncertaintyModels:
    """Fit the three models and save the regression reference profile under ``workdir``."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from monitor.profile import profile_of
    from monitor.reference import Reference

    data = load_diabetes()
    features = tuple(str(n) for n in data.feature_names)
    X_train, X_rest, y_train, y_rest = train_test_split(data.data, data.target, test_size=0.5, random_state=seed)
    regressor = LinearRegression().fit(X_train, y_train)
    residual_sd = float(np.std(y_train - regressor.predict(X_train), ddof=1))
    reference = Reference.from_arrays(X_rest, numeric_names=features, scores=regressor.predict(X_rest), labels=y_rest)
    workdir.mkdir(parents=True, exist_ok=True)
    reference_path = profile_of(reference).save(workdir / "regression-reference.npz")

    logit_model = world.model
    rng = np.random.default_rng(seed)
    X, y = world.X_test, world.y_test
    members = []
    for _ in range(5):
        idx = rng.integers(0, len(X), size=len(X))
        members.append(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5)).fit(X[idx], y[idx]))
    return UncertaintyModels(prefix, regressor, residual_sd, X_rest, y_rest, features, logit_model, tuple(members),
                             world, Path(reference_path), np.random.default_rng(seed + 1))
