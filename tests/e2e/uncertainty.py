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
  per row (``output.samples_axis``);
* ``multilabel``: three logistic regressions on the classifier's inputs (the diagnosis, and each of
  two features above its median), answering one independent probability per label, with a
  reference profile of held-out answers (the label drift figures) and 0/1 truth rows as feedback.

The targets and labels come back as feedback events right after each prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["QUANTILES", "KINDS", "model_names", "UncertaintyModels", "train_uncertainty_models"]

QUANTILES = (0.05, 0.5, 0.95)
KINDS = ("regression", "logits", "ensemble", "multilabel")
#: the multi-label model's labels, in column order
MULTILABELS = ("malignant", "large_radius", "rough_texture")


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
    taggers: tuple[Any, ...]
    multilabel_reference_path: Path
    multilabel_truth: np.ndarray

    @property
    def names(self) -> dict[str, str]:
        return model_names(self.prefix)

    def quantiles(self, X: np.ndarray) -> np.ndarray:
        mean = self.regressor.predict(X)
        return np.stack([mean + _Z[q] * self.residual_sd for q in QUANTILES], axis=1)

    def tags(self, X: np.ndarray) -> np.ndarray:
        """The multi-label model's probabilities, one column per label of :data:`MULTILABELS`."""
        return np.column_stack([t.predict_proba(X)[:, 1] for t in self.taggers])

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
            {"model": self.names["multilabel"], "features": clf_features,
             "output": {"kind": "multilabel", "classes": list(MULTILABELS)},
             "reference": {"path": str(self.multilabel_reference_path)},
             "detectors": [{"kind": "multilabel", "min_rows": 10, "min_labels": 10, "min_positives": 2}]},
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
            {"model": names["multilabel"], "timestamp": now, "inputs": x_clf.tolist(),
             "outputs": self.tags(x_clf[None, :])[0].tolist(), "request_id": rid},
            {"type": "feedback", "model": names["multilabel"], "timestamp": now, "request_ids": [rid],
             "labels": [self.truth_of(x_clf).tolist()]},
        ]

    def truth_of(self, x_clf: np.ndarray) -> np.ndarray:
        """A 0/1 truth row for the classifier row ``x_clf``: its labels as the taggers were trained
        on them (the diagnosis drawn from the classifier's own probability)."""
        world = self.world
        malignant = float(self.rng.random() < world.model.predict_proba(x_clf[None, :])[0][0])
        cut = self.multilabel_truth
        return np.array([malignant, float(x_clf[world.names.index("mean radius")] > cut[0]),
                         float(x_clf[world.names.index("mean texture")] > cut[1])])


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
    # the multi-label model: one logistic regression per label on the classifier's inputs
    cuts = np.array([np.median(X[:, world.names.index("mean radius")]), np.median(X[:, world.names.index("mean texture")])])
    targets = np.column_stack([y == 0, X[:, world.names.index("mean radius")] > cuts[0],
                               X[:, world.names.index("mean texture")] > cuts[1]]).astype(int)
    taggers = tuple(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, targets[:, j])
                    for j in range(targets.shape[1]))
    tag_scores = np.column_stack([t.predict_proba(world.X_test)[:, 1] for t in taggers])
    tag_reference = Reference.from_arrays(world.X_test, numeric_names=world.names, scores=tag_scores,
                                          classes=MULTILABELS)
    tag_path = profile_of(tag_reference).save(workdir / "multilabel-reference.npz")
    return UncertaintyModels(prefix, regressor, residual_sd, X_rest, y_rest, features, logit_model, tuple(members),
                             world, Path(reference_path), np.random.default_rng(seed + 1), taggers, Path(tag_path),
                             cuts)
