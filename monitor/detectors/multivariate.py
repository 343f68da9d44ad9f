"""Multivariate drift: PCA reconstruction error against the reference (as NannyML's data
reconstruction drift).

A change in how features relate to each other -- correlations broken by a bad join, noise added
to every feature of some rows -- can leave each feature's marginal distribution almost intact. A
PCA fitted on the standardised reference features keeps the directions that explain
``PCA_VARIANCE`` of the variance; rows that do not follow the reference's correlation structure
reconstruct badly. The per-row reconstruction error is then one more channel for the same
ERT-calibrated sequential test as the features (its reference distribution is made of errors of
rows the scoring PCA was *not* fitted on, so it is not biased low, under the very PCAs live rows
meet, so that both are draws of one distribution: each of ten folds of the reference scored by
the PCA of the other nine, and each live row by one of those ten PCAs drawn at random, or, when
the directions come from other rows such as the training set (``pca_fit``), every reference
row's error and every live row's under that one PCA), and the window's mean error is
exported as ``monitor_drift_statistic{detector="pca_drift"}`` with the threshold
``reference mean + 3 sd * sqrt(1 / window rows + 1 / reference rows)``: the reference's mean is
itself an estimate, and with a reference of a few dozen rows its error dwarfs the window's, so a
threshold of ``3 sd / sqrt(window rows)`` alone was crossed by healthy traffic drawn from the
reference's population (a 45-row reference: about a third of the time) while the detector stayed
silent, and the dashboard's panel said drift where there was none. The test is one-sided, its alarm and its windowed
count of drifted channels alike: rows that reconstruct *better* than the reference (rows the PCA
was fitted on, or more tightly correlated than ever) are not drift.

``space: embedding`` watches the embedding given with each prediction (a layer's activations, a
sentence embedding: ``embedding=`` of the decorator, ``Monitor.observe`` and
``Reference.from_arrays``) instead of the numeric inputs, under the ``detector`` label
``pca_drift_embedding``. Its channels are the reconstruction error and the coordinates along
the first :data:`EMBEDDING_COMPONENTS` directions (as Evidently's share of drifted components):
a text model's topics moving shift embeddings *along* the directions that carry their variance,
where they reconstruct as well as ever. Directions are fitted on half of the reference's
embeddings and the other half calibrates (:func:`monitor.profile.fit_embedding_pca`), and every
channel is two-sided: rows collapsing into fewer directions (one query repeated) are drift too.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.detectors._common import check_generator_state
from monitor.detectors.drift import BinnedDriftDetector, Channel, FeatureBinner, _need_reference, _params
from monitor.profile import (PCA_CROSS_FITTED_ADVICE, PCAProfile, Profile, fit_embedding_pca, numeric_profile,
                             pca_absent_reason, pca_calibration)

if TYPE_CHECKING:
    from monitor.batch import Batch
    from monitor.detectors.context import DetectorContext
    from monitor.reference import Reference
    from monitor.store import MetricWriter

__all__ = ["PCADriftDetector", "PCABinner", "EmbeddingBinner", "EMBEDDING_COMPONENTS"]

log = logging.getLogger("monitor")

#: Directions whose coordinates the embedding space watches besides the reconstruction error:
#: the ERT is shared among the channels (Bonferroni), so each one more costs the others power.
EMBEDDING_COMPONENTS = 10


class PCABinner:
    """Reconstruction error of each row, binned on the reference's held-out error quantiles.

    Each row is scored as the calibration rows were (:meth:`PCAProfile.calibrated_error`): by a
    fold PCA drawn from this binner's own generator, seeded, so that a run is repeatable, and
    drawn rather than taken in turn, so that rows arriving in a fixed order (a batch of one row
    per sensor) do not meet the same fold each time."""

    def __init__(self, pca: PCAProfile, channel: Channel, seed: int = 0) -> None:
        self.pca = pca
        self.channels = [channel]
        self.n_bins_max = channel.n_bins
        self.seed = seed
        self._cols: dict[tuple[str, ...], np.ndarray | None] = {}
        self.reset()

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    @property
    def rng_state(self) -> dict[str, Any]:
        """The fold draws' generator state (numpy's ``bit_generator.state``: JSON-safe)."""
        return self._rng.bit_generator.state

    @rng_state.setter
    def rng_state(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state

    def check_rng_state(self, state: Any, kind: str) -> None:
        """``ValueError`` naming the field when ``state`` is not a state of this generator."""
        check_generator_state(self._rng, state, f"{kind}: the saved fold draws (fold_draws)",
                              "drop 'fold_draws' from the detector's state (the draws then start again from the seed)")

    def ref_matrix(self) -> np.ndarray:
        return self.channels[0].ref[None, :].astype(np.float64)

    def _columns(self, names: tuple[str, ...]) -> np.ndarray | None:
        if names not in self._cols:
            pos = {n: i for i, n in enumerate(names)}
            missing = [n for n in self.pca.names if n not in pos]
            self._cols[names] = None if missing else np.array([pos[n] for n in self.pca.names], dtype=np.int64)
        return self._cols[names]

    def bin(self, batch: "Batch") -> tuple[np.ndarray, np.ndarray] | None:
        cols = self._columns(tuple(batch.numeric_names))
        if cols is None:
            return None
        err = self.pca.calibrated_error(batch.numeric[:, cols], self._rng)
        return self.channels[0].bin_numeric(err)[:, None], err[:, None]


class EmbeddingBinner(FeatureBinner):
    """A batch's embeddings as the channels of the embedding space: reconstruction error, then
    the coordinates along the first directions, binned as numeric features are."""

    def __init__(self, pca: PCAProfile, channels: list[Channel]) -> None:
        super().__init__(channels)
        self.pca = pca

    def bin(self, batch: "Batch") -> tuple[np.ndarray, np.ndarray]:
        emb = np.asarray(batch.embedding, dtype=np.float64)
        cols = np.column_stack([self.pca.transform_error(emb), self.pca.transform_scores(emb, len(self.channels) - 1)])
        return super().bin(dataclasses.replace(batch, numeric=cols, numeric_names=self.names,
                                               categorical=np.empty((len(batch), 0), dtype=object), categorical_names=()))


class PCADriftDetector(BinnedDriftDetector):
    """Multivariate drift by PCA reconstruction error (kind ``pca_drift``); sequential parameters as
    :class:`~monitor.detectors.drift.FeatureDriftDetector`. Needs at least two numeric features
    in 23 reference rows (20 with ``pca_fit``: :func:`monitor.profile.pca_min_rows`), or, with
    ``space: embedding``, reference embeddings of at least two values in 40 rows
    (:func:`monitor.profile.embedding_pca_min_rows`).

    Parameters
    ----------
    space
        ``"input"`` (default): the numeric features. ``"embedding"``: the embedding given with
        each prediction, calibrated on ``reference.embedding`` (see the module docstring); rows
        without one, or of another width than the reference's, are left out, said once in the log.
    """

    kind = "pca_drift"

    def __init__(self, reference: "Reference | Profile", *, space: str = "input", **params: Any) -> None:
        if space not in ("input", "embedding"):
            raise ValueError(f"space must be 'input' or 'embedding', not {space!r}")
        self.space = space
        emb = getattr(reference, "embedding", None) if space == "embedding" else None
        if space == "embedding" and emb is None:
            raise ValueError("detector 'pca_drift' with space: embedding needs reference embeddings: build the reference "
                             "with them (Reference.from_arrays(..., embedding=...), one row per reference row), or use "
                             "space: input")
        self._reference_embedding = emb
        self._pca_fit = getattr(reference, "pca_basis", None) is not None
        self._unread = 0  # live rows left out: no embedding, or of another width
        self._unread_exported = 0  # of them, those added to the counter
        params.setdefault("name", None)
        if space == "embedding":
            params["name"] = params["name"] or "pca_drift_embedding"
        super().__init__(reference, **params)

    @classmethod
    def from_config(cls, reference: "Reference | None" = None, context: "DetectorContext | None" = None,
                    **params: Any) -> "PCADriftDetector":
        # the reference itself, not its profile: the embedding space reads reference.embedding
        _need_reference(cls.kind, reference)
        return cls(reference, **_params(cls, context, params))  # type: ignore[arg-type]

    @property
    def upward(self) -> bool:  # type: ignore[override]
        """One-sided in the input space: only rows reconstructing *worse* than the reference are
        drift (errors that fall, e.g. on rows the PCA was fitted on, are not), for the alarm and
        the windowed count alike. Two-sided in the embedding space (see the module docstring)."""
        return self.space == "input"

    def _channels(self, profile: Profile) -> tuple[list[Channel], Any]:
        if self.space == "embedding":
            return self._embedding_channels()
        pca = profile.pca
        if pca is None:
            raise ValueError(f"detector 'pca_drift': {pca_absent_reason(profile, self._pca_fit)}")
        if pca_calibration(profile) == "cross_fitted":
            log.warning("detector %r: in the reference profile, %s", self.name, PCA_CROSS_FITTED_ADVICE)
        chan = Channel.numeric(pca.error, self.n_bins)
        chan.name = "reconstruction_error"
        return [chan], PCABinner(pca, chan)

    def _embedding_channels(self) -> tuple[list[Channel], Any]:
        try:
            pca, calibration = fit_embedding_pca(self._reference_embedding, self.n_bins)
        except ValueError as err:
            raise ValueError(f"detector 'pca_drift' with space: embedding: {err}. Fix: a reference with more rows and "
                             "their embeddings, or use space: input") from None
        self.embedding_width = pca.components.shape[1]
        m = min(EMBEDDING_COMPONENTS, pca.components.shape[0])
        chans = [Channel.numeric(pca.error, self.n_bins)]
        chans[0].name = "reconstruction_error"
        scores = pca.transform_scores(calibration, m)
        chans += [Channel.numeric(numeric_profile(f"component_{i + 1}", scores[:, i], self.n_bins), self.n_bins)
                  for i in range(m)]
        return chans, EmbeddingBinner(pca, chans)

    def _reset(self) -> None:
        super()._reset()
        if isinstance(self._core.binner, PCABinner):
            self._core.binner.reset()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        binner = self._core.binner
        if isinstance(binner, PCABinner) and binner.pca.folds:
            # which fold PCA each coming row meets: restored from the seed instead, a restarted
            # agent scored its rows under other folds than an uninterrupted one, and its tests
            # (and alarms) could differ from there on
            state["fold_draws"] = binner.rng_state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        binner = self._core.binner
        saved = state.get("fold_draws")
        if saved is not None and isinstance(binner, PCABinner):
            binner.check_rng_state(saved, self.kind)
        self._check_calibration(state)
        super().load_state_dict(state)
        if saved is not None and isinstance(binner, PCABinner):
            binner.rng_state = saved

    def _check_calibration(self, state: dict[str, Any]) -> None:
        """``ValueError`` when the state was counted under the PCA's former calibration, or, saved
        with the reconstruction error's edges alone (``error_edges``), on other edges.

        Every channel's edges (``numeric_edges``) are checked by the drift core
        (:meth:`~monitor.detectors.drift.DriftCore.check_edges`). States saved before it recorded
        them, from the fold PCAs on, hold ``error_edges``: checked here the same way. States
        older still, counted before the fold PCAs (no fold draws), were binned on the half
        split's edges: a reference read from rows keeps its fingerprint across that upgrade."""
        if "numeric_edges" in state:
            return
        legacy = state.get("error_edges")
        if legacy is not None:
            name = self._core.channels[0].name
            self._core.check_edges({name: legacy}, key="error_edges", only=(name,))
            return
        binner = self._core.binner
        if isinstance(binner, PCABinner) and binner.pca.folds and "fold_draws" not in state:
            raise ValueError("the saved state was counted under the PCA's former calibration (before its fold PCAs): "
                             "its reconstruction errors were binned on other edges; the detector starts empty and "
                             "refills over one window")

    def update(self, batch: "Batch") -> None:
        if self.space == "embedding" and len(batch):
            batch = self._with_embedding(batch)
        super().update(batch)

    def _with_embedding(self, batch: "Batch") -> "Batch":
        """The rows with a finite embedding of the reference's width; the others are counted and
        said once (they cannot be compared: an embedding of another layer or model)."""
        emb = batch.embedding
        width = None if emb is None else int(np.shape(emb)[1])
        finite = None if width != self.embedding_width else np.isfinite(np.asarray(emb, dtype=np.float64))
        keep = np.zeros(len(batch), dtype=bool) if finite is None else finite.all(axis=1)
        if keep.all():
            return batch
        if not self._unread:
            why = ("came without an embedding" if width is None else
                   f"have embeddings of {width} values, the reference's have {self.embedding_width}"
                   if finite is None else self._why_not_finite(finite[~keep]))
            log.warning("detector %r (pca_drift, space: embedding): %d of %d rows %s and are not compared (counted in "
                        "monitor_drift_rows_unread_total). Fix: give "
                        "each prediction the embedding of the same layer the reference's were taken from "
                        "(watch(embedding=...), Monitor.observe(..., embedding=...), or the event's \"embedding\")",
                        self.name, int((~keep).sum()), len(batch), why)
        self._unread += int((~keep).sum())
        return batch.rows(np.flatnonzero(keep))

    @staticmethod
    def _why_not_finite(finite: np.ndarray) -> str:
        """What is wrong with embedding rows of the reference's width that are not all finite:
        rows of none at all are those of calls that gave no (usable) embedding, merged into one
        batch with calls that gave one, not non-finite values sent."""
        absent = int((~finite.any(axis=1)).sum())
        if absent == finite.shape[0]:
            return "came without an embedding (or one dropped at intake: monitor_row_arguments_dropped_total)"
        if absent == 0:
            return "have non-finite embedding values"
        return (f"came without an embedding ({absent} of them; or one dropped at intake) or have non-finite "
                "embedding values")

    def export(self, out: "MetricWriter") -> None:
        super().export(out)
        if self.space == "embedding":  # born at 0: a first skipped batch reads as an increase
            # added, not set: a clean restart restores the counter while this detector counts from 0
            out.inc("monitor_drift_rows_unread", float(self._unread - self._unread_exported), (self.name,))
            self._unread_exported = self._unread
        # from the window as it stands, not the figures cached for the slot (their tests are
        # recomputed once a slot): a scrape later in the slot divided the running total by the
        # rows of the slot's first scrape, two or more times the true mean
        core, ch = self._core, self._core.channels[0]
        d, b = core._d, core._b
        tot = core.window_total()
        n_cur = float(tot[: ch.n_bins - 1].sum())  # finite errors (the last bin: missing and inf)
        if n_cur <= 0 or n_cur < core.min_rows:
            out.remove("monitor_drift_statistic", (self.name,))
            out.remove("monitor_drift_statistic_threshold", (self.name,))
            return
        out.set("monitor_drift_statistic", float(tot[2 * d * b] / n_cur), (self.name,))
        n_ref = float(ch.ref[:-1].sum())
        spread = np.sqrt(1.0 / n_cur + (1.0 / n_ref if n_ref > 0 else 0.0))
        out.set("monitor_drift_statistic_threshold", ch.mean + 3.0 * ch.sd * spread, (self.name,))
