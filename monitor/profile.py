"""Reference profiles: the compact, versioned, pickle-free summary the drift detectors calibrate on.

A profile holds, per feature, what the detectors need and nothing else: the type, quantile bin
edges with the reference counts and value sums per bin, missing and non-finite counts, the range,
mean and standard deviation, the probability that two values are equal (for the stuck-feature
detector), category frequencies with the number of singletons (for the Good-Turing rate of unseen
categories); for the multivariate detector the PCAs of ten folds of the rows (each fitted on
the other folds) with each fold's reconstruction errors under its PCA, or a PCA fitted on other
rows (the training set: :class:`PCABasis`) with every row's error; for output drift the predicted-class counts and the max-score
(or regression value) distribution; label counts; and a bounded random sample of rows, so that
detectors that need rows (the confidence estimators, the alibi-detect backend) still work from a
profile.

It is saved as one ``.npz`` file (``numpy.savez_compressed``) whose arrays are plain numbers or
fixed-width strings and whose metadata is JSON stored as bytes: it is read with
``allow_pickle=False``, so loading a profile from an untrusted path cannot run code.

Exactness: counts, missing/non-finite counts, ranges, moments and categories are exact over every
row read. Quantile edges, bin counts and the PCA come from a uniform random sample of at most
``max_rows`` rows (all rows when the file is smaller): with the default 1,000,000 that is exact for
most reference sets; bin counts are then those of the sample, consistently, which is what the
detectors' calibration accounts for.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = Profile.from_arrays(rng.normal(size=(500, 2)), numeric_names=["a", "b"], n_bins=10)
>>> float(p.feature("a").counts.sum()), len(p.feature("a").edges)
(500.0, 9)
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import os
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Sequence

import numpy as np

from monitor.cell_values import categorical_text, number_as_text
from monitor.reference import Reference
from monitor.stats.matmul import SINGLE_THREAD_MN, matmul
from monitor.stats.univariate import REFERENCE_ROUNDOFF_REL, bin_index, column_moments, quantile_edges

__all__ = [
    "PROFILE_VERSION",
    "canonical_categories",
    "canonical_profile",
    "NumericProfile",
    "CategoricalProfile",
    "rows_beyond_cap",
    "PCAFold",
    "PCAProfile",
    "PCABasis",
    "fit_embedding_pca",
    "fit_pca_basis",
    "pca_min_rows",
    "embedding_pca_min_rows",
    "pca_absent_reason",
    "pca_calibration",
    "PCA_CROSS_FITTED_ADVICE",
    "OutputProfile",
    "Profile",
    "ProfileError",
    "profile_of",
    "load_reference",
    "check_npz_reference",
    "check_column_roles_target",
    "check_pca_fit_columns",
    "check_pca_fit_target",
    "is_profile",
    "read_table",
    "Table",
    "Progress",
    "build_profile",
    "numeric_profile",
]

#: 2: categories are canonical text (a float code 7.0 is "7", as live values are read; see
#: :func:`monitor.cell_values.category_text`). Every profile, of version 1 or 2, is read with its
#: categories as live values read today (:func:`canonical_categories`: since, a float32 category
#: is also float32's shortest text, "1.1", and empty text is missing), without a new version, so
#: that an agent rolled back still reads the profiles built since.
PROFILE_VERSION = 2
#: Bins stored per numeric feature; detectors merge them into fewer (see :meth:`NumericProfile.coarsen`).
DEFAULT_BINS = 20
#: Share of variance the PCA keeps. NannyML's default is 0.65; with it the few components kept are
#: the broad directions many features share, and a feature whose link to the others is broken (a
#: bad join, a column filled from another row) barely changes the error: on eval_drift's datasets,
#: streams of rows outside the reference, such decorrelations were found in 23 of 72 at 0.65 and
#: 52 of 72 at 0.9, with 4 and 0 false alarms on 360,000 unshifted rows
#: (benchmarks/pca_variance_study.py, 2026-12-06, the fold calibration).
PCA_VARIANCE = 0.9
#: Folds of the reference's rows when no other rows (``pca_fit``) give the PCA's directions: each
#: fold's errors are scored by a PCA of the other folds, and each live row by one of those PCAs
#: drawn at random (see :class:`PCAProfile`). Ten: each PCA sees 90% of the rows and every row
#: calibrates; on eval_drift's streams a bad join was found in 5 of 9 (4 with five folds, 0 with a
#: half/half split), with no false alarm on 180,000 unshifted rows either way.
PCA_FOLDS = 10
#: Floats a batch's rows may gather of their fold PCAs' directions (2 MB) for
#: :meth:`PCAProfile.calibrated_error` to score them in a few calls; larger batches are scored
#: one fold's rows at a time.
PCA_GATHER_FLOATS = 1 << 18
#: Floats the fold PCAs' directions may hold together (32 MB): beyond it, fewer folds (at least
#: two), so that a reference of a thousand features does not hold ten copies of a large basis.
PCA_FOLD_FLOATS = 4_000_000
#: Rows the PCA is fitted on at most (a uniform sample of the profile's rows).
PCA_MAX_ROWS = 50_000
#: Rows a PCA's directions are fitted on at least, and rows its errors are calibrated on at
#: least (its components and its error distribution are noise below): a reference without
#: ``pca_fit`` needs enough rows for each fold PCA to be fitted on as many (:func:`pca_min_rows`,
#: 23), the embedding space twice as many (it splits its rows in two:
#: :func:`embedding_pca_min_rows`).
PCA_MIN_ROWS = 20
#: What numpy raises for an .npz that is not a whole zip archive of arrays (a truncated or damaged
#: file: the zip module's and zlib's own errors are neither OSError nor ValueError)
_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
#: Largest integer label kept as a class index in the profile's label counts.
MAX_LABEL_INDEX = 100_000
#: Text a CSV's *numeric* column holds for a missing value (case and spaces aside). A categorical
#: column's only missing text is the empty field, as live (:func:`monitor.cell_values.category_text`):
#: "NA" (North America), "nan" or "null" there are categories, on both sides.
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})


class ProfileError(ValueError):
    """A profile or reference file cannot be built or read; the message names the field and the fix."""


# -- per-feature summaries ------------------------------------------------------------------------
@dataclass
class NumericProfile:
    """One numeric feature (or a numeric model output).

    ``edges`` are inner bin edges (``len(edges) + 1`` bins, see
    :func:`monitor.stats.univariate.bin_index`); ``counts`` and ``sums`` are the finite values'
    count and sum per bin; ``n`` counts every row, including missing (NaN/None) and +-inf ones.
    ``repeat_prob`` is the probability that two independent finite values are equal.
    """

    name: str
    edges: np.ndarray
    counts: np.ndarray
    sums: np.ndarray
    n: int
    n_missing: int
    n_inf: int
    min: float
    max: float
    mean: float
    std: float
    repeat_prob: float
    n_distinct: int

    @property
    def n_finite(self) -> int:
        return int(self.counts.sum())

    @property
    def missing_ratio(self) -> float:
        return self.n_missing / self.n if self.n else 0.0

    @property
    def inf_ratio(self) -> float:
        return self.n_inf / self.n if self.n else 0.0

    @property
    def positions(self) -> np.ndarray:
        """Mean value of each bin (NaN for empty bins), the atoms of binned Wasserstein."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums / self.counts

    def coarsen(self, n_bins: int) -> "NumericProfile":
        """The same feature with at most ``n_bins`` bins of near-equal reference mass.

        Merging adjacent bins keeps the bins aligned to data values (ties are still never split).
        """
        nb = self.counts.size
        if nb <= n_bins:
            return self
        cum = np.cumsum(self.counts) / max(self.counts.sum(), 1.0)
        # last fine bin of each coarse bin: where cumulative mass first reaches k / n_bins
        cuts = np.unique(np.searchsorted(cum, np.arange(1, n_bins) / n_bins - 1e-12))
        cuts = cuts[cuts < nb - 1]
        groups = np.zeros(nb, dtype=np.int64)
        groups[cuts + 1] = 1
        groups = np.cumsum(groups)
        k = int(groups[-1]) + 1
        return NumericProfile(
            self.name, self.edges[cuts], np.bincount(groups, self.counts, k), np.bincount(groups, self.sums, k),
            self.n, self.n_missing, self.n_inf, self.min, self.max, self.mean, self.std, self.repeat_prob, self.n_distinct,
        )


@dataclass
class CategoricalProfile:
    """One categorical feature: reference categories (most frequent first, capped) and counts.

    ``n_singletons`` (categories seen once) gives the Good-Turing estimate of how often a value
    never seen in the reference should still appear among present values:
    ``n_singletons / (n - n_missing)`` (the data-quality detector's live share has that base too).

    ``n_beyond`` (None in profiles saved before it was recorded) is that estimate for a capped
    profile, whose live values may also fall among the categories it dropped: the reference rows
    whose category, with that row left out, would be unseen or beyond the cap
    (:func:`rows_beyond_cap`). ``n_singletons + n_other`` is biased low there: the categories
    kept are those whose counts came out high, so the rows beyond them are fewer than the live
    share beyond them (3,000 zip codes, 20,000 rows: 28.6% against 32.8% live, enough for
    ModelFeatureOutOfRange to fire on unchanged traffic).
    """

    name: str
    categories: tuple[str, ...]
    counts: np.ndarray
    n: int
    n_missing: int
    n_singletons: int
    n_other: int = 0  # rows whose category fell beyond the cap
    n_beyond: int | None = None  # leave-one-out rows outside the kept categories (see above)

    @property
    def missing_ratio(self) -> float:
        return self.n_missing / self.n if self.n else 0.0

    @property
    def unseen_ratio(self) -> float:
        """Estimate of the share of future values outside the profile's categories: Good-Turing's
        (singletons) when it kept every category, the leave-one-out ``n_beyond`` when it has it."""
        present = self.n - self.n_missing
        if not present:
            return 0.0
        if self.n_beyond is not None:
            return self.n_beyond / present
        return (self.n_singletons + self.n_other) / present


def rows_beyond_cap(items: Sequence[tuple[str, int]], cap: int) -> int:
    """Reference rows whose category falls outside the ``cap`` most frequent ones (ties by name,
    as the profile keeps them) once that row is left out: the leave-one-out estimate of how many
    of ``n`` future values fall outside the kept categories. A category seen once becomes unseen,
    one beyond the cap stays beyond it, and a kept category at the cut drops out when one row
    fewer puts ``cap`` others ahead of it. Without a cap reached this is the number of
    singletons (Good-Turing's estimate).

    ``items``: ``(category, count)`` sorted by count descending, then name.

    >>> rows_beyond_cap([("a", 5), ("b", 2), ("c", 2), ("d", 1)], 10)
    1
    >>> rows_beyond_cap([("a", 5), ("b", 2), ("c", 2), ("d", 1)], 2)  # c and d beyond; b with one row fewer behind a and c
    5
    """
    import bisect

    counts = np.asarray([c for _, c in items], dtype=np.int64)
    beyond = int(counts[cap:].sum())
    kept = items[:cap]
    ahead = -counts  # ascending, for "how many have count >= c"
    names_by_count: dict[int, list[str]] = {}
    for name, c in items:
        names_by_count.setdefault(c, []).append(name)  # names ascending within a count
    for name, c in kept:
        if c <= 1:
            beyond += c
            continue
        others = int(np.searchsorted(ahead, -c, side="right")) - 1  # count >= c, itself left out
        if others >= cap:
            beyond += c
            continue
        tied = names_by_count.get(c - 1, [])
        if others + bisect.bisect_left(tied, name) >= cap:
            beyond += c
    return beyond


@dataclass
class PCAFold:
    """One of a :class:`PCAProfile`'s fold PCAs: fitted on the other folds' rows, standardisation
    included."""

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (k, d); k may differ between folds (each keeps its own share)

    def error(self, x: np.ndarray) -> np.ndarray:
        return _errors(x, self.mean, self.scale, self.components)


@dataclass
class PCAProfile:
    """PCA of the standardised numeric features (NannyML's data reconstruction drift).

    The detector's test assumes that the calibration rows' errors and the live rows' are draws of
    one distribution. Without other rows to fit on, the reference's rows are cut into
    :data:`PCA_FOLDS` random folds; each fold's errors (``error``) are scored by a PCA of the
    other folds (``folds``), and each live row by one of those PCAs drawn at random
    (:meth:`calibrated_error`): a row no PCA was fitted on meets a uniformly drawn fold PCA on
    either side, so both are draws of the same mixture, every reference row calibrates and each
    PCA sees 90% of them. Two calibrations before this one broke that assumption or paid for it:
    live rows scored by a PCA of *every* row while the calibration came from the fold PCAs met
    a PCA the calibration never did, and where the share of variance kept cut between two
    near-equal variances (near-duplicate features; an image's channel means beside its overall
    mean) each fit kept another mix of the two directions, so healthy streams alarmed (26 of 160);
    directions fitted on one half and the other half's errors kept the assumption with half the
    rows on each side, and a bad join was no longer found on eval_drift's references (0 of 9).

    ``mean``, ``scale``, ``components`` and ``explained`` are a PCA of every row (without folds,
    the one live rows meet: directions fitted on other rows, :class:`PCABasis`, with every
    reference row's error): what ``monitor reference show`` describes and :meth:`transform_error`
    reads.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (k, d)
    explained: float
    error: NumericProfile
    folds: tuple[PCAFold, ...] = ()

    def transform_error(self, x: np.ndarray) -> np.ndarray:
        """Reconstruction error of each row under the PCA of every row (missing / non-finite
        values imputed with the mean). With ``folds``, not the detector's calibration: rows the
        PCA was fitted on reconstruct better than ``error`` says (see :meth:`calibrated_error`)."""
        return _errors(x, self.mean, self.scale, self.components)

    def calibrated_error(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Reconstruction error of each row as ``error`` was calibrated: under a fold PCA drawn
        from ``rng`` for each row (the detector's own generator), or under the one PCA when
        there are no folds."""
        if not self.folds:
            return self.transform_error(x)
        x = np.asarray(x, dtype=np.float64)
        which = rng.integers(0, len(self.folds), x.shape[0])
        mean, scale, components = self._stacked()
        if x.shape[0] * components[0].size <= PCA_GATHER_FLOATS and components[0].size <= SINGLE_THREAD_MN:
            # each row with its own fold's standardisation and directions gathered beside it (the
            # directions padded with zero rows to the widest fold's, which project onto nothing):
            # a few calls for the batch, where one product per fold cost ten times one PCA's
            # product on a batch of 50 rows (each row's products are matrix-vector ones small
            # enough for one BLAS thread, see monitor.stats.matmul)
            with np.errstate(invalid="ignore", over="ignore"):
                z = (x - mean[which]) / scale[which]
            z[~np.isfinite(z)] = 0.0
            rows = components[which]
            along = np.matmul(rows, z[:, :, None])
            r = z - np.matmul(along.transpose(0, 2, 1), rows)[:, 0, :]
            return np.sqrt(np.einsum("ij,ij->i", r, r))
        order = np.argsort(which, kind="stable")  # large batches: one slice of rows per fold
        bounds = np.searchsorted(which[order], np.arange(len(self.folds) + 1))
        xs = x[order]
        out = np.empty(x.shape[0], dtype=np.float64)
        for j in np.flatnonzero(np.diff(bounds)):
            a, b = bounds[j], bounds[j + 1]
            out[order[a:b]] = self.folds[j].error(xs[a:b])
        return out

    def _stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The folds' means and scales ``(folds, d)`` and directions ``(folds, widest k, d)``,
        built once."""
        stacked = self.__dict__.get("_stacked_folds")
        if stacked is None:
            width = max(f.components.shape[0] for f in self.folds)
            comps = np.zeros((len(self.folds), width, len(self.names)))
            for j, f in enumerate(self.folds):
                comps[j, : f.components.shape[0]] = f.components
            stacked = (np.stack([f.mean for f in self.folds]), np.stack([f.scale for f in self.folds]), comps)
            self.__dict__["_stacked_folds"] = stacked
        return stacked

    def transform_scores(self, x: np.ndarray, components: int) -> np.ndarray:
        """``(rows, components)``: each row's coordinates along the first ``components``
        directions (standardised as :meth:`transform_error` does). The embedding drift detector
        watches them: a shift *within* the kept directions reconstructs as well as ever."""
        return matmul(_standardised(x, self.mean, self.scale), self.components[:components].T)


def _standardised(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Rows standardised by ``mean`` and ``scale``, missing and non-finite values at the mean."""
    with np.errstate(invalid="ignore", over="ignore"):
        z = (np.asarray(x, dtype=np.float64) - mean) / scale
    return np.where(np.isfinite(z), z, 0.0)


def _errors(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Reconstruction error of each row standardised by ``mean`` and ``scale`` (missing and
    non-finite values at the mean)."""
    return _residual_norm(_standardised(x, mean, scale), components)


def _residual_norm(z: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Per row of standardised ``z``, the norm of what ``components`` (orthonormal rows) leave out."""
    proj = matmul(matmul(z, components.T), components)
    return np.sqrt(((z - proj) ** 2).sum(axis=1))


@dataclass
class OutputProfile:
    """The model's outputs on the reference rows."""

    classes: tuple[str, ...] = ()
    predicted_counts: np.ndarray | None = None
    max_score: NumericProfile | None = None
    value: NumericProfile | None = None  # regression outputs


# -- the profile -----------------------------------------------------------------------------------
@dataclass
class Profile:
    """Everything the drift and data-quality detectors calibrate on (see the module docstring)."""

    numeric: tuple[NumericProfile, ...]
    categorical: tuple[CategoricalProfile, ...] = ()
    n_rows: int = 0
    outputs: OutputProfile | None = None
    label_counts: np.ndarray | None = None
    pca: PCAProfile | None = None
    sample: Reference | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = PROFILE_VERSION
    #: Text feature -> the words its live texts are read against (:mod:`monitor.text`); the
    #: feature's descriptors (``review.length``...) are among :attr:`numeric`. Without it a profile
    #: built from a file with a free-text column gave no live text its ``oov_share``, and its
    #: reference read the descriptors as numeric features no live row has.
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: The tensor features (images, audio: :mod:`monitor.tensor`), whose descriptors
    #: (``input.mean``...) are among :attr:`numeric`. Without them a saved profile of an image
    #: reference read its descriptors as plain numeric features, and every live batch of images
    #: was refused as wrong_shape ("expected rows of 7 features").
    tensor_names: tuple[str, ...] = ()

    @property
    def numeric_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.numeric)

    @property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.categorical)

    def feature(self, name: str) -> NumericProfile | CategoricalProfile:
        for f in (*self.numeric, *self.categorical):
            if f.name == name:
                return f
        raise KeyError(f"feature {name!r} is not in the profile; it has {', '.join(self.numeric_names + self.categorical_names)}")

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        numeric: np.ndarray,
        *,
        numeric_names: Sequence[str] | None = None,
        categorical: np.ndarray | None = None,
        categorical_names: Sequence[str] = (),
        scores: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        classes: Sequence[str] = (),
        n_bins: int = DEFAULT_BINS,
        keep_rows: int = 5000,
        seed: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> "Profile":
        """Profile in-memory arrays (validated like :meth:`Reference.from_arrays`)."""
        ref = Reference.from_arrays(numeric, numeric_names=numeric_names, categorical=categorical,
                                    categorical_names=categorical_names, scores=scores, labels=labels, classes=classes)
        return cls.from_reference(ref, n_bins=n_bins, keep_rows=keep_rows, seed=seed, meta=meta)

    @classmethod
    def from_reference(
        cls, reference: Reference, *, n_bins: int = DEFAULT_BINS, keep_rows: int = 5000, seed: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> "Profile":
        """Profile every row of ``reference``."""
        b = _Builder(reference.numeric_names, reference.categorical_names, n_bins=n_bins, max_rows=max(len(reference), 1),
                     seed=seed)
        b.add(reference.numeric, reference.categorical, reference.scores, reference.labels)
        profile = b.finish(classes=reference.classes, keep_rows=keep_rows, meta=meta, pca_basis=reference.pca_basis,
                           vocabularies=reference.vocabularies, pca_names=reference.pca_names)
        if reference.tensor_names:
            profile = dataclasses.replace(profile, tensor_names=tuple(reference.tensor_names))
        return profile

    def to_reference(self) -> Reference:
        """A :class:`Reference` of the kept sample rows, carrying this profile (exact statistics)
        and its text features' vocabularies."""
        vocabularies = {str(k): tuple(v) for k, v in self.vocabularies.items()}
        if self.sample is not None:
            s = self.sample
            ref = Reference(s.numeric, s.categorical, s.numeric_names, s.categorical_names, s.scores, s.labels, s.classes,
                            vocabularies=vocabularies, tensor_names=tuple(self.tensor_names))
        else:
            ref = Reference(np.empty((0, len(self.numeric))), np.empty((0, len(self.categorical)), dtype=object),
                            self.numeric_names, self.categorical_names,
                            classes=self.outputs.classes if self.outputs else (), vocabularies=vocabularies,
                            tensor_names=tuple(self.tensor_names))
        ref.profile = self
        return ref

    # -- saving and loading --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write one ``.npz`` (arrays + JSON metadata as bytes); no pickle. Atomic: a failed write
        (:class:`ProfileError` naming the file) leaves an existing profile at ``path`` as it was."""
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {"format": "model-monitor-profile", "version": self.version, "n_rows": self.n_rows,
                                "meta": self.meta, "numeric": [], "categorical": []}
        for i, f in enumerate(self.numeric):
            meta["numeric"].append(_numeric_meta(f))
            _numeric_arrays(arrays, f"num{i}", f)
        for i, c in enumerate(self.categorical):
            meta["categorical"].append({"name": c.name, "n": c.n, "n_missing": c.n_missing,
                                        "n_singletons": c.n_singletons, "n_other": c.n_other,
                                        **({} if c.n_beyond is None else {"n_beyond": int(c.n_beyond)})})
            arrays[f"cat{i}.categories"] = np.asarray(c.categories, dtype=np.str_)
            arrays[f"cat{i}.counts"] = c.counts
        if self.outputs is not None:
            o = self.outputs
            meta["outputs"] = {"classes": list(o.classes)}
            if o.predicted_counts is not None:
                arrays["out.predicted_counts"] = o.predicted_counts
            for key, nf in (("max_score", o.max_score), ("value", o.value)):
                if nf is not None:
                    meta["outputs"][key] = _numeric_meta(nf)
                    _numeric_arrays(arrays, f"out.{key}", nf)
        if self.label_counts is not None:
            arrays["labels.counts"] = self.label_counts
        if self.pca is not None:
            meta["pca"] = {"names": list(self.pca.names), "explained": self.pca.explained, "error": _numeric_meta(self.pca.error)}
            arrays["pca.mean"], arrays["pca.scale"], arrays["pca.components"] = self.pca.mean, self.pca.scale, self.pca.components
            _numeric_arrays(arrays, "pca.error", self.pca.error)
            if self.pca.folds:
                meta["pca"]["folds"] = len(self.pca.folds)
            for j, fold in enumerate(self.pca.folds):
                for key in ("mean", "scale", "components"):
                    arrays[f"pca.fold{j}.{key}"] = getattr(fold, key)
        if self.sample is not None:
            s = self.sample
            meta["sample"] = {"classes": list(s.classes), "has_scores": s.scores is not None, "has_labels": s.labels is not None}
            arrays["sample.numeric"] = s.numeric
            cat = np.asarray(s.categorical, dtype=object)
            arrays["sample.categorical"] = np.where(cat == None, "", cat).astype(np.str_) if cat.size else np.empty(cat.shape, np.str_)  # noqa: E711
            arrays["sample.categorical_missing"] = (cat == None) if cat.size else np.zeros(cat.shape, bool)  # noqa: E711
            if s.scores is not None:
                arrays["sample.scores"] = s.scores
            if s.labels is not None:
                lab = np.asarray(s.labels)
                arrays["sample.labels"] = lab.astype(np.str_) if lab.dtype == object else lab
        if self.vocabularies:  # only then: a profile without text is written as before
            meta["vocabularies"] = {str(k): list(v) for k, v in self.vocabularies.items()}
        if self.tensor_names:  # likewise
            meta["tensor_names"] = list(self.tensor_names)
        arrays["meta.json"] = np.frombuffer(json.dumps(meta, allow_nan=True).encode(), dtype=np.uint8)
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        from monitor.atomic_file import OutputFileError, atomic_output

        # whole or not at all: written in place, a failed write left a cut profile where the good
        # one was, which the agent's next start refused
        try:
            with atomic_output(path, "wb", make_parents=True) as fh:
                np.savez_compressed(fh, **arrays)
        except OutputFileError as err:
            raise ProfileError(str(err)) from None
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Profile":
        """Read a profile written by :meth:`save` (``allow_pickle=False``: safe on untrusted paths)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except _NPZ_ERRORS as err:
            _refuse_no_npz(path, "build a profile with 'monitor reference build' (DATA -o PROFILE.npz)")
            raise ProfileError(f"{path}: not a readable .npz profile ({_without_pickle_advice(err)}); build one with "
                               "'monitor reference build'") from None
        if "meta.json" not in arrays:
            raise ProfileError(f"{path}: an .npz without meta.json is data, not a profile; build one with 'monitor reference build'")
        try:
            return cls._decode(path, arrays)
        except ProfileError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:  # incl. JSON and UTF-8 errors
            raise ProfileError(f"{path}: damaged profile ({type(err).__name__}: {err}); rebuild it with "
                               "'monitor reference build'") from None

    @classmethod
    def _decode(cls, path: str | Path, arrays: dict[str, np.ndarray]) -> "Profile":
        meta = json.loads(arrays["meta.json"].tobytes().decode())
        if meta.get("format") != "model-monitor-profile":
            raise ProfileError(f"{path}: not a model-monitor profile; build one with 'monitor reference build'")
        if int(meta.get("version", -1)) > PROFILE_VERSION:
            raise ProfileError(f"{path}: profile version {meta.get('version')} is newer than this monitor reads "
                               f"({PROFILE_VERSION}); upgrade model-monitor or rebuild the profile")
        numeric = tuple(_numeric_from(m, arrays, f"num{i}") for i, m in enumerate(meta["numeric"]))
        categorical = tuple(
            CategoricalProfile(m["name"], tuple(str(c) for c in arrays[f"cat{i}.categories"]), arrays[f"cat{i}.counts"].astype(np.float64),
                               int(m["n"]), int(m["n_missing"]), int(m["n_singletons"]), int(m.get("n_other", 0)),
                               None if m.get("n_beyond") is None else int(m["n_beyond"]))
            for i, m in enumerate(meta["categorical"])
        )
        outputs = None
        if "outputs" in meta:
            om = meta["outputs"]
            outputs = OutputProfile(
                tuple(om.get("classes", ())), arrays.get("out.predicted_counts"),
                _numeric_from(om["max_score"], arrays, "out.max_score") if "max_score" in om else None,
                _numeric_from(om["value"], arrays, "out.value") if "value" in om else None,
            )
        pca = None
        if "pca" in meta:
            pm = meta["pca"]
            width = len(pm["names"])
            pca = PCAProfile(tuple(pm["names"]), *_pca_arrays(arrays, "pca", width),
                             float(pm["explained"]), _numeric_from(pm["error"], arrays, "pca.error"),
                             tuple(PCAFold(*_pca_arrays(arrays, f"pca.fold{j}", width))
                                   for j in range(int(pm.get("folds", 0)))))
        sample = None
        if "sample" in meta:
            sm = meta["sample"]
            cat = arrays["sample.categorical"].astype(object)
            cat[arrays["sample.categorical_missing"]] = None
            sample = Reference(arrays["sample.numeric"], cat, tuple(f.name for f in numeric), tuple(c.name for c in categorical),
                               arrays.get("sample.scores") if sm.get("has_scores") else None,
                               arrays.get("sample.labels") if sm.get("has_labels") else None, tuple(sm.get("classes", ())))
        vocabularies = _vocabularies_from(path, meta.get("vocabularies", {}), tuple(f.name for f in numeric))
        tensors = _tensor_names_from(path, meta.get("tensor_names", []), tuple(f.name for f in numeric))
        if sample is not None and tensors:
            sample = dataclasses.replace(sample, tensor_names=tensors)
        return canonical_profile(cls(numeric, categorical, int(meta["n_rows"]), outputs, arrays.get("labels.counts"), pca,
                                     sample, dict(meta.get("meta", {})), int(meta["version"]), vocabularies, tensors))


def _pca_arrays(arrays: dict[str, np.ndarray], prefix: str, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A saved PCA's ``mean``, ``scale`` and ``components``, checked against its ``width``
    features: of another shape (a damaged file), they loaded and the detector failed on the
    first batch it scored. ``ValueError`` naming the array otherwise."""
    mean, scale, comps = (arrays[f"{prefix}.{key}"] for key in ("mean", "scale", "components"))
    for key, arr, shape in (("mean", mean, (width,)), ("scale", scale, (width,))):
        if arr.shape != shape:
            raise ValueError(f"{prefix}.{key} has shape {arr.shape}, not ({width},)")
    if comps.ndim != 2 or comps.shape[1] != width or comps.shape[0] > width:
        raise ValueError(f"{prefix}.components has shape {comps.shape}, not (at most {width}, {width})")
    return mean, scale, comps


def _tensor_names_from(path: str | Path, saved: Any, numeric_names: tuple[str, ...]) -> tuple[str, ...]:
    """The tensor features a profile saved, checked: names whose descriptors (each channel's too)
    are among the numeric features (else the reference would name a tensor feature no detector
    finds, or live rows would have columns it lacks)."""
    from monitor.derived import TensorDerived
    from monitor.tensor import channels_in

    if not isinstance(saved, list) or not all(isinstance(n, str) for n in saved):
        raise ProfileError(f"{path}: damaged profile (its tensor_names are not a list of names); rebuild it from "
                           "the reference (Profile.from_reference(ref).save(path))")
    for name in saved:
        absent = [n for n in TensorDerived(name, channels_in(name, numeric_names)).columns if n not in numeric_names]
        if absent:
            raise ProfileError(f"{path}: damaged profile (tensor feature {name!r} without its descriptors "
                               f"{', '.join(absent)}); rebuild it from the reference (Profile.from_reference(ref).save(path))")
    return tuple(saved)


def _vocabularies_from(path: str | Path, saved: Any, numeric_names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The text features' vocabularies a profile saved, checked: each a list of words, and the
    feature's descriptors among the numeric features (else the reference would name a text feature
    whose descriptors no detector finds)."""
    from monitor.derived import TextDerived

    if not isinstance(saved, dict) or not all(isinstance(v, list) and all(isinstance(w, str) for w in v)
                                              for v in saved.values()):
        raise ProfileError(f"{path}: damaged profile (its vocabularies are not lists of words); rebuild it with "
                           "'monitor reference build'")
    for name in saved:
        absent = [n for n in TextDerived(name, frozenset(saved[name])).columns if n not in numeric_names]
        if absent:
            raise ProfileError(f"{path}: damaged profile (text feature {name!r} without its descriptors "
                               f"{', '.join(absent)}); rebuild it with 'monitor reference build'")
    return {str(k): tuple(v) for k, v in saved.items()}


def canonical_profile(profile: Profile) -> Profile:
    """``profile`` with its categories (and its sample's) as a build writes them today, when it
    was saved otherwise (see :func:`canonical_categories`); the profile itself when nothing
    changes (a build since, or categories that needed nothing). Its ``version`` stays the one it
    was saved with (it says how the file was written). The reference's fingerprint is that of
    the categories read: unchanged for a profile whose categories needed nothing, another one (a
    checkpoint's detector states, counted on the old categories, set aside) for one whose
    categories changed."""
    categorical = tuple(canonical_categories(c) for c in profile.categorical)
    if all(a is b for a, b in zip(categorical, profile.categorical)):
        return profile
    sample = profile.sample
    if sample is not None and sample.categorical.size:
        sample = dataclasses.replace(sample, categorical=categorical_text(sample.categorical))
    return dataclasses.replace(profile, categorical=categorical, sample=sample)


def canonical_categories(c: CategoricalProfile) -> CategoricalProfile:
    """``c`` with its categories as a build makes them today: a category written from
    a float (``"7.0"``, from a float column of codes; ``"1.100000023841858"``, a float32 1.1 read
    as a Python float) becomes its text as live values read (``"7"``, ``"1.1"``: see
    :func:`monitor.cell_values.number_as_text`), its count merged with that category's when the
    profile holds both, and the categories re-sorted (most frequent first, ties by name, as they
    are built); the empty category's count joins the missing values. Without it a profile saved
    before kept ``"7.0"`` while live values ``7.0`` now read ``"7"``: every such row unseen.

    The singletons are recounted among the categories kept (``n_beyond`` too when none was
    dropped); a capped profile's ``n_beyond`` is kept as saved, its dropped categories unknown.
    Categories a CSV reference read as missing before ("NA", "nan", "null", "none", "?", live
    categories all along) cannot be told apart among its missing values: such a profile is to
    be built again."""
    merged: dict[str, float] = {}
    n_missing = c.n_missing
    for name, count in zip(c.categories, c.counts.tolist()):
        key = number_as_text(name)
        if not key:
            n_missing += int(count)
            continue
        merged[key] = merged.get(key, 0.0) + count
    if tuple(merged) == tuple(c.categories):
        return c
    items = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    counts = np.asarray([v for _, v in items], dtype=np.float64)
    singletons = c.n_singletons - int((c.counts == 1).sum()) + int((counts == 1).sum())
    n_beyond = c.n_beyond
    if n_beyond is not None and not c.n_other:
        n_beyond = rows_beyond_cap([(k, int(v)) for k, v in items], len(items))
    return CategoricalProfile(c.name, tuple(k for k, _ in items), counts, c.n, n_missing, singletons, c.n_other, n_beyond)


def _not_npz(path: str | Path) -> str | None:
    """What the file at ``path`` is when it is neither an .npz (a zip archive) nor an .npy, said
    with its first bytes, or None (it is one of them, or cannot be opened). numpy tries any other
    file as a pickle, so that a text file, a CSV or a file of another format named .npz was refused
    "it holds pickled objects" (or, by ``config check``, with numpy's advice to load it unsafely)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(40)
    except (OSError, TypeError):
        return None
    if head.startswith((b"PK", b"\x93NUMPY")):
        return None
    if head[:1] == b"\x80":
        return "is a Python pickle, not an .npz (a zip archive of arrays): pickles are never loaded, as they may run code"
    if not head:
        return "is empty, not an .npz (a zip archive of arrays, as numpy.savez writes)"
    try:
        start, kind = repr(head.decode("utf-8")[:30]), "text"
    except UnicodeDecodeError:
        start, kind = repr(head[:16]), "bytes"
    return f"is not an .npz (a zip archive of arrays, as numpy.savez writes): it starts with the {kind} {start}"


def _refuse_no_npz(path: str | Path, fix: str) -> None:
    """Raise the :class:`ProfileError` of a file that is no .npz nor .npy (:func:`_not_npz`), with
    ``fix``; nothing for any other file (numpy's own reason is said then)."""
    other = _not_npz(path)
    if other is not None:
        raise ProfileError(f"{path}: {other}. Fix: {fix}") from None


def _without_pickle_advice(err: Exception) -> str:
    """numpy's reason for refusing a file, without its advice to pass ``allow_pickle=True``: a
    file that is not plain arrays may hold code, and is never loaded so here."""
    text = str(err)
    if "allow_pickle" in text or "pickled" in text:
        return "it holds pickled objects, or no arrays at all: such files are never loaded, as they may run code"
    return text


def _numeric_meta(f: NumericProfile) -> dict[str, Any]:
    return {"name": f.name, "n": f.n, "n_missing": f.n_missing, "n_inf": f.n_inf, "min": f.min, "max": f.max,
            "mean": f.mean, "std": f.std, "repeat_prob": f.repeat_prob, "n_distinct": f.n_distinct}


def _numeric_arrays(arrays: dict[str, np.ndarray], prefix: str, f: NumericProfile) -> None:
    arrays[f"{prefix}.edges"], arrays[f"{prefix}.counts"], arrays[f"{prefix}.sums"] = f.edges, f.counts, f.sums


def _numeric_from(m: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str) -> NumericProfile:
    return NumericProfile(m["name"], arrays[f"{prefix}.edges"].astype(np.float64), arrays[f"{prefix}.counts"].astype(np.float64),
                          arrays[f"{prefix}.sums"].astype(np.float64), int(m["n"]), int(m["n_missing"]), int(m["n_inf"]),
                          float(m["min"]), float(m["max"]), float(m["mean"]), float(m["std"]), float(m["repeat_prob"]),
                          int(m["n_distinct"]))


def numeric_profile(name: str, values: np.ndarray, n_bins: int = DEFAULT_BINS, *, n: int | None = None,
                    n_missing: int | None = None, n_inf: int | None = None) -> NumericProfile:
    """Summarise one numeric column (``n``/``n_missing``/``n_inf`` override the counts when the
    values are a sample of a larger stream whose exact counts are known)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    edges = quantile_edges(finite, n_bins) if finite.size else np.empty(0)
    idx = bin_index(finite, edges)
    nb = edges.size + 1
    uniq, cnt = np.unique(finite, return_counts=True)
    share = cnt / max(finite.size, 1)
    mean, sd = float("nan"), float("nan")
    if finite.size:
        with np.errstate(over="ignore"):
            mean, sd = float(finite.mean()), float(finite.std())
        if not (np.isfinite(mean) and np.isfinite(sd)):  # beyond ~1e154 the sums overflow
            mean, sd = (float(m[0]) for m in column_moments(finite[:, None]))
    return NumericProfile(
        name, edges, np.bincount(idx, minlength=nb).astype(np.float64), np.bincount(idx, weights=finite, minlength=nb),
        int(v.size if n is None else n), int(np.isnan(v).sum() if n_missing is None else n_missing),
        int(np.isinf(v).sum() if n_inf is None else n_inf),
        float(finite.min()) if finite.size else float("nan"), float(finite.max()) if finite.size else float("nan"),
        mean, sd,
        float(np.sum(share**2)) if finite.size else 0.0, int(uniq.size),
    )


@dataclass
class PCABasis:
    """A PCA fitted on rows other than the reference's -- typically the training set -- for the
    multivariate drift detector.

    A held-out reference of a few hundred rows gives the detector two handicaps when its PCA is
    fitted on the reference itself: few rows to find the directions in (90% of them per fold PCA),
    and a calibration that mixes ten PCAs, which live rows must then meet too, each drawn at random.
    Directions fitted on the (large) training set, with *every* reference row's error under exactly
    those directions as the calibration (a uniform sample of :data:`PCA_MAX_ROWS` rows of a larger
    reference), remove both; live rows meet the one PCA the calibration was scored with, and the training rows, which the model has seen, never
    calibrate anything (they only choose the directions).
    """

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (k, d)
    explained: float
    rows: int  # rows the directions were fitted on
    #: Columns without spread in the fit rows (all missing, or constant: a feature added since
    #: the training set was cut): standardised by the reference's own moments instead, or their
    #: raw units would swamp every other column's error.
    flat: np.ndarray
    #: sha256 of the fit rows (as sampled), names and share of variance: what identifies the
    #: basis in a reference's fingerprint. Its float results (eigenvectors) may differ in their
    #: last bits on another CPU, which a restart there would read as another reference.
    digest: str

    def aligned(self, names: Sequence[str]) -> "PCABasis":
        """This basis with its columns in the order of ``names``; ``ValueError`` naming both
        lists when they are not the same features."""
        names = tuple(names)
        if names == self.names:
            return self
        if sorted(names) != sorted(self.names):
            raise ValueError(f"reference pca_basis was fitted on the features {', '.join(self.names)}; the reference's "
                             f"numeric features are {', '.join(names) or 'none'}. Fix: fit it (pca_fit=) on rows with "
                             "exactly the reference's numeric features")
        pos = np.array([self.names.index(n) for n in names], dtype=np.int64)
        return PCABasis(names, self.mean[pos], self.scale[pos], self.components[:, pos], self.explained, self.rows,
                        self.flat[pos], self.digest)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, scale, z)``: column moments that ignore missing and non-finite values (a non-finite
    matrix makes LAPACK loop for ever: a hang at startup), and the rows standardised by them,
    missing values at the mean."""
    x = np.where(np.isfinite(x), x, np.nan)
    mean, scale = column_moments(x)
    with np.errstate(all="ignore"):
        mean = np.where(np.isfinite(mean), mean, 0.0)
        # an sd within rounding error of the mean is a constant column (not a tiny unit)
        scale = np.where(np.isfinite(scale) & (scale > REFERENCE_ROUNDOFF_REL * np.abs(mean)) & (scale > 0), scale, 1.0)
        z = (x - mean) / scale
    return mean, scale, np.where(np.isfinite(z), z, 0.0)


def _directions(count: int, col_sum: np.ndarray, scatter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variances (descending) and principal directions (rows) of rows given by their sum and scatter."""
    mu = col_sum / count
    cov = (scatter - count * np.outer(mu, mu)) / max(count - 1, 1)
    var, vec = np.linalg.eigh((cov + cov.T) / 2)
    return np.clip(var[::-1], 0.0, None), vec[:, ::-1].T.copy()


def _kept(var: np.ndarray, n: int, d: int, variance: float) -> tuple[int, float]:
    """Components kept, and the share of variance they explain."""
    ratio = np.cumsum(var) / max(float(var.sum()), 1e-300)
    # At most rank - 1 components: keeping every direction the data spans (a constant, empty or
    # exactly collinear feature lowers the rank) leaves reference errors of pure rounding (~1e-16),
    # against which any live variation is an effect of 1e16.
    rank = int(np.sum(var > (var[0] if var.size else 0.0) * max(n, d) * np.finfo(np.float64).eps))
    k = int(min(np.searchsorted(ratio, variance) + 1, d - 1, max(rank - 1, 0)))
    return k, float(ratio[k - 1]) if k else 0.0


def fit_pca_basis(x: np.ndarray, names: Sequence[str], *, variance: float | None = None, seed: int = 0,
                  digest: bool = True) -> PCABasis | None:
    """The PCA directions of ``x`` (e.g. the training rows), keeping ``variance`` of the variance
    (:data:`PCA_VARIANCE` when None), on a uniform sample of at most :data:`PCA_MAX_ROWS` rows. None
    when ``x`` has fewer than 20 rows or 2 columns (no PCA to speak of). ``digest``: hash the rows
    into :attr:`PCABasis.digest` (False: left empty, for a basis that identifies no reference;
    hashing up to :data:`PCA_MAX_ROWS` rows costs a pass over them)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2 or x.shape[0] < PCA_MIN_ROWS:
        return None
    if x.shape[0] > PCA_MAX_ROWS:
        x = x[np.random.default_rng(seed).choice(x.shape[0], PCA_MAX_ROWS, replace=False)]
    return _basis(x, names, variance, digest=digest)


def _basis(x: np.ndarray, names: Sequence[str], variance: float | None = None, *, digest: bool = True) -> PCABasis:
    """:func:`fit_pca_basis` of every row of ``x``, however few. ``digest``: hash the rows for
    :attr:`PCABasis.digest` (only a basis that identifies a reference needs it; the profile's own
    PCA of every row does not, and hashing 50,000 rows costs a pass over them)."""
    variance = PCA_VARIANCE if variance is None else variance
    x = np.ascontiguousarray(x, dtype=np.float64)
    hexdigest = ""
    if digest:
        import hashlib

        h = hashlib.sha256(json.dumps([list(map(str, names)), float(variance), list(x.shape)]).encode())
        h.update(x.tobytes())
        hexdigest = "sha256:" + h.hexdigest()
    mean, scale, z = _standardise(x)
    n, d = z.shape
    var, vec = _directions(n, z.sum(axis=0), matmul(z.T, z))
    k, explained = _kept(var, n, d, variance)
    return PCABasis(tuple(names), mean, scale, vec[:k], explained, n, ~(z != 0).any(axis=0), hexdigest)


def pca_min_rows(pca_fit: bool) -> int:
    """Reference rows the multivariate drift detector's PCA needs: :data:`PCA_MIN_ROWS` with other
    rows (``pca_fit``) to fit its directions on; without, the fewest rows whose every fold PCA
    (the other :data:`PCA_FOLDS` - 1 folds' rows, the largest fold left out) is fitted on
    :data:`PCA_MIN_ROWS` rows: 23, every row calibrating.

    Measured (benchmarks/pca_small_reference.py, 2026-12-06): noise of one sd added to 65% of
    the rows of 8 correlated features from row 1,000, found within 4,000 rows in 77, 78, 86, 91
    and 95 of 100 streams at 20, 21, 22, 23 and 25 reference rows, where the half split this
    bound was first set under (directions from one half, the other half's errors) found it in
    79 of 100 at 40 rows (the former bound) and 5, 16 and 37 at 20, 25 and 30; no false alarm
    on healthy streams at any size from 10 rows, either way (80 seeded streams of 20,000 rows,
    2 to 16 features, per size: 1.6 expected at the default ERT). At 20 and 21 rows the fold PCAs,
    fitted on 18 and 19 rows, see no better than the half split at 40; from 23 on, clearly
    better. A detector that runs and cannot see reads as "no drift"."""
    if pca_fit:
        return PCA_MIN_ROWS
    return PCA_MIN_ROWS + -(-PCA_MIN_ROWS // (PCA_FOLDS - 1))


def embedding_pca_min_rows() -> int:
    """Reference embeddings ``pca_drift`` with ``space: embedding`` needs: :data:`PCA_MIN_ROWS`
    for each half (:func:`fit_embedding_pca` fits the directions on one half and calibrates on
    the other)."""
    return 2 * PCA_MIN_ROWS


def pca_absent_reason(profile: "Profile", pca_fit: bool = False) -> str:
    """Why ``profile`` has no PCA (so that ``pca_drift`` is off), with the fix: a sentence for the
    log, the detector's error and ``monitor reference show``."""
    rows = int(profile.meta.get("rows_sampled", profile.n_rows))
    need = pca_min_rows(pca_fit)
    numeric = len(profile.numeric)
    if numeric < 2:
        return (f"pca_drift needs at least 2 numeric features, the reference has {numeric}; nothing to do if the model "
                "has one numeric input: input_drift still watches it")
    split = "" if pca_fit else (f", for each of its {PCA_FOLDS} fold PCAs to be fitted on {PCA_MIN_ROWS} rows and to "
                                f"calibrate its errors on rows it was not fitted on (or {PCA_MIN_ROWS} with pca_fit: the "
                                "training rows give the directions)")
    return (f"pca_drift needs at least {need} reference rows{split}; the reference has {rows}. Fix: a larger held-out "
            "reference, or leave pca_drift out: input_drift still watches each feature")


def pca_calibration(profile: "Profile") -> str | None:
    """How ``profile``'s PCA errors were calibrated, told from what it holds (no field records
    it: a profile that is not rebuilt keeps its checkpoint fingerprint): ``"pca_fit"`` (directions
    from other rows, every row's error), ``"folds"`` (each fold's errors under a PCA of the other
    folds, live rows under one of them drawn at random: see :class:`PCAProfile`), ``"half"``
    (directions from a random half, the other half's errors: profiles built between 2026-12-05 and
    the folds; sound, with half the rows on each side), or ``"cross_fitted"``: profiles built
    before the half split hold the errors of *every* row the PCA read, each scored by a PCA of the
    other folds (5-fold, and 2-fold before that), and no fold PCAs, so live rows met the PCA of
    every row, which the calibration never did; where the variance kept cut between near-equal
    directions (near-duplicate features) healthy streams alarmed. None without a PCA."""
    pca = profile.pca
    if pca is None:
        return None
    if "pca_fit_rows" in profile.meta:
        return "pca_fit"
    if pca.folds:
        return "folds"
    read = min(int(profile.meta.get("rows_sampled", profile.n_rows)), PCA_MAX_ROWS)
    return "cross_fitted" if read >= 2 and pca.error.n >= read else "half"


#: What the log and ``monitor reference show`` say of a profile whose PCA is ``cross_fitted``.
PCA_CROSS_FITTED_ADVICE = (
    "the PCA's errors are calibrated the former way (each fold of the rows scored by a PCA of the other folds, "
    "as earlier agents built profiles, while live rows meet the PCA of every row), a calibration live rows never "
    "meet: where features are near-duplicates it false-alarms on healthy traffic. Fix: rebuild the profile with "
    "'monitor reference build' (live rows then meet the fold PCAs the calibration was scored with); until then "
    "pca_drift runs on the former calibration")


def _fit_pca(x: np.ndarray, names: tuple[str, ...], n_bins: int, rng: np.random.Generator, variance: float | None = None,
             basis: PCABasis | None = None) -> PCAProfile | None:
    """``variance``: the share of variance kept, :data:`PCA_VARIANCE` (read at the call) when None.
    With a ``basis`` (directions fitted elsewhere), every row of ``x`` (up to :data:`PCA_MAX_ROWS`,
    sampled beyond) is scored by it; without, by the PCA of the other folds (:func:`_fold_count`
    random folds; see :class:`PCAProfile`). None below :func:`pca_min_rows` rows."""
    if x.shape[1] < 2 or x.shape[0] < pca_min_rows(basis is not None):
        return None
    if x.shape[0] > PCA_MAX_ROWS:
        x = x[rng.choice(x.shape[0], PCA_MAX_ROWS, replace=False)]
    if basis is not None:
        basis = basis.aligned(names)
        mean, scale = _flat_standardisation(basis, *_standardise(x)[:2])
        return PCAProfile(names, mean, scale, basis.components, basis.explained,
                          numeric_profile("reconstruction_error", _errors(x, mean, scale, basis.components), n_bins))
    whole = _basis(x, names, variance, digest=False)
    parts = np.array_split(rng.permutation(x.shape[0]), _fold_count(whole.components.shape))
    folds = _fold_pcas(x, parts, whole, PCA_VARIANCE if variance is None else variance)
    errors = [fold.error(x[rows]) for fold, rows in zip(folds, parts)]
    return PCAProfile(names, whole.mean, whole.scale, whole.components, whole.explained,
                      numeric_profile("reconstruction_error", np.concatenate(errors), n_bins), tuple(folds))


def _fold_pcas(x: np.ndarray, parts: list[np.ndarray], whole: PCABasis, variance: float) -> list[PCAFold]:
    """For each fold of ``parts`` (row indices of ``x``), the PCA of the other folds' rows, as
    :func:`_basis` of those rows would fit it (their own standardisation, missing values at their
    mean), from one pass over the rows: each fold's sums and scatter products, taken in the
    standardisation of every row (``whole``'s, so that a feature far from zero loses nothing to
    cancellation), the other folds' being the total less the fold's. Fitting each fold's PCA on
    its rows instead cost ten passes: three minutes for a reference of 50,000 rows of 300
    features, where one PCA took fifteen seconds.

    A column without spread in the other folds (present, or off its usual value, in this fold's
    rows only) is standardised by every row's moments, as the fold PCAs that saw those rows
    scale it, and carries no direction: its own moments in this fold's rows fitted it to the rows
    it calibrates (a column missing in all of them took mean 0 and scale 1, and live rows meeting
    the fold were scored on its raw values)."""
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore", over="ignore"):
        u = np.where(finite, (x - whole.mean) / whole.scale, 0.0)
    present = finite.astype(np.float64)
    gaps = not finite.all()
    sums = []
    for rows in parts:
        uu, oo = u[rows], present[rows]
        sums.append((matmul(uu.T, uu), matmul(uu.T, oo) if gaps else None, matmul(oo.T, oo) if gaps else None,
                     uu.sum(axis=0), (uu * uu).sum(axis=0), oo.sum(axis=0),
                     np.where(finite[rows], u[rows], np.inf).min(axis=0), np.where(finite[rows], u[rows], -np.inf).max(axis=0)))
    total = [None if sums[0][i] is None else sum(part[i] for part in sums) for i in range(6)]
    d = x.shape[1]
    folds = []
    for j, rows in enumerate(parts):
        n = x.shape[0] - len(rows)
        scatter, cross, both, s1, s2, count = (None if t is None else t - p for t, p in zip(total, sums[j][:6]))
        lows = np.min([part[6] for i, part in enumerate(sums) if i != j], axis=0)
        highs = np.max([part[7] for i, part in enumerate(sums) if i != j], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(count > 0, s1 / count, 0.0)  # in the standardisation of every row
            sd = np.sqrt(np.clip(np.where(count > 0, s2 / count, 0.0) - m * m, 0.0, None))
            mean, scale = whole.mean + whole.scale * m, whole.scale * sd  # as _standardise's would be
            scale = np.where(np.isfinite(scale) & (scale > REFERENCE_ROUNDOFF_REL * np.abs(mean)) & (scale > 0), scale, 1.0)
        flat = ~(highs > lows)  # constant or missing in every row of the other folds
        if gaps:
            centred = scatter - cross * m[None, :] - cross.T * m[:, None] + both * np.outer(m, m)
        else:
            centred = scatter - np.outer(s1, m) - np.outer(m, s1) + n * np.outer(m, m)
        ratio = np.where(flat, 0.0, whole.scale / scale)  # standardisation of every row -> the fold's
        var, vec = _directions(n, ratio * (s1 - m * count), centred * np.outer(ratio, ratio))
        k, _ = _kept(var, n, d, variance)
        folds.append(PCAFold(np.where(flat, whole.mean, mean), np.where(flat, whole.scale, scale), vec[:k]))
    return folds


def _fold_count(shape: tuple[int, ...]) -> int:
    """:data:`PCA_FOLDS`, or fewer (two at least) where that many bases of ``shape`` (the PCA of
    every row's) would hold more than :data:`PCA_FOLD_FLOATS` floats."""
    size = max(int(np.prod(shape)), 1)
    return int(min(PCA_FOLDS, max(2, PCA_FOLD_FLOATS // size)))


def _flat_standardisation(basis: PCABasis, mean: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``basis``'s mean and scale, with ``mean`` and ``scale`` (the reference rows' moments) for
    the columns that had no spread in its fit rows (see :attr:`PCABasis.flat`)."""
    return np.where(basis.flat, mean, basis.mean), np.where(basis.flat, scale, basis.scale)


def fit_embedding_pca(embedding: np.ndarray, n_bins: int, *, seed: int = 0) -> tuple[PCAProfile, np.ndarray]:
    """A PCA of reference embeddings for the embedding drift detector, and the rows it is
    calibrated on.

    The directions come from a random half of the rows and the other half calibrates (its
    reconstruction errors, and what the caller derives from the returned rows): live rows, which
    no PCA was fitted on, then meet exactly the PCA the calibration rows met. Why not the input
    PCA's cross-fitting: the detector also watches coordinates along the directions, and those
    of the rows a PCA was fitted on spread wider than anyone else's (64 isotropic dimensions,
    2,000 rows: the first direction's variance reads 1.37 instead of 1), which unchanged
    traffic would read as drift; coordinates under each fold's own PCA are not comparable
    either. ``ValueError`` when there are fewer than :func:`embedding_pca_min_rows` rows or 2
    columns.
    """
    emb = np.asarray(embedding, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] < 2 or emb.shape[0] < embedding_pca_min_rows():
        raise ValueError(f"an embedding PCA needs at least {embedding_pca_min_rows()} rows of at least 2 values, the reference "
                         f"embedding has shape {emb.shape}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(emb.shape[0])[: 2 * PCA_MAX_ROWS]
    half = order.size // 2
    names = tuple(f"e{i}" for i in range(emb.shape[1]))
    # without the digest: this basis is part of no reference's fingerprint. The half holds
    # PCA_MIN_ROWS to PCA_MAX_ROWS rows of 2 columns or more: neither refused nor sampled
    basis = fit_pca_basis(emb[order[:half]], names, digest=False)
    assert basis is not None
    if basis.components.shape[0] == 0:
        raise ValueError("the reference embedding has no direction of variation to fit a PCA on (its columns are "
                         "constant or collinear)")
    calibration = emb[order[half:]]
    pca = _fit_pca(calibration, names, n_bins, rng, basis=basis)
    assert pca is not None  # >= PCA_MIN_ROWS rows of >= 2 columns
    return pca, calibration


# -- streaming builder ------------------------------------------------------------------------------
class _Builder:
    """One pass over chunks: exact counts plus a bounded uniform sample (random-priority reservoir)."""

    def __init__(self, numeric_names: Sequence[str], categorical_names: Sequence[str], *, n_bins: int = DEFAULT_BINS,
                 max_rows: int = 1_000_000, max_categories: int = 1000, seed: int = 0) -> None:
        self.numeric_names = tuple(numeric_names)
        self.categorical_names = tuple(categorical_names)
        self.n_bins = n_bins
        self.max_rows = max_rows
        self.max_categories = max_categories
        self.rng = np.random.default_rng(seed)
        d = len(self.numeric_names)
        self.n = 0
        self.n_missing = np.zeros(d, dtype=np.int64)
        self.n_inf = np.zeros(d, dtype=np.int64)
        self.cat_counts: list[dict[str, int]] = [{} for _ in self.categorical_names]
        self.cat_missing = np.zeros(len(self.categorical_names), dtype=np.int64)
        self._keys = np.empty(0)
        self._rows: dict[str, np.ndarray | None] = {"numeric": None, "categorical": None, "scores": None, "labels": None}

    def add(self, numeric: np.ndarray, categorical: np.ndarray | None, scores: np.ndarray | None, labels: np.ndarray | None) -> None:
        num = np.asarray(numeric, dtype=np.float64)
        m = num.shape[0]
        cat = np.empty((m, 0), dtype=object) if categorical is None else np.asarray(categorical, dtype=object)
        self.n += m
        self.n_missing += np.isnan(num).sum(axis=0)
        self.n_inf += np.isinf(num).sum(axis=0)
        if cat.size:  # each value by the text live values are compared by (a float code 7.0 is "7")
            cat = categorical_text(cat)
        for j, counts in enumerate(self.cat_counts):
            col = cat[:, j]
            miss = np.array([v is None for v in col], dtype=bool)
            self.cat_missing[j] += int(miss.sum())
            vals, cnt = np.unique(col[~miss].astype(str), return_counts=True)
            for v, c in zip(vals.tolist(), cnt.tolist()):
                counts[v] = counts.get(v, 0) + c
        keys = self.rng.random(m)
        parts = {"numeric": num, "categorical": cat, "scores": scores, "labels": labels}
        all_keys = np.concatenate([self._keys, keys])
        keep = np.argsort(all_keys, kind="stable")[: self.max_rows] if all_keys.size > self.max_rows else None
        for name, arr in parts.items():
            if arr is None:
                continue
            a = np.asarray(arr)
            old = self._rows[name]
            merged = a if old is None else np.concatenate([old, a])
            self._rows[name] = merged if keep is None else merged[keep]
        self._keys = all_keys if keep is None else all_keys[keep]

    def finish(self, *, classes: Sequence[str] = (), keep_rows: int = 5000, meta: dict[str, Any] | None = None,
               pca_basis: PCABasis | None = None, vocabularies: dict[str, tuple[str, ...]] | None = None,
               pca_names: Sequence[str] | None = None) -> Profile:
        """The profile of the rows added; ``pca_names``: the numeric features the PCA reads (all
        when None; :attr:`Reference.pca_names`)."""
        d = len(self.numeric_names)
        num = self._rows["numeric"] if self._rows["numeric"] is not None else np.empty((0, d))
        cat = self._rows["categorical"] if self._rows["categorical"] is not None else np.empty((0, len(self.categorical_names)), dtype=object)
        scores, labels = self._rows["scores"], self._rows["labels"]
        numeric = tuple(
            numeric_profile(name, num[:, j], self.n_bins, n=self.n, n_missing=int(self.n_missing[j]), n_inf=int(self.n_inf[j]))
            for j, name in enumerate(self.numeric_names)
        )
        categorical = []
        for j, name in enumerate(self.categorical_names):
            items = sorted(self.cat_counts[j].items(), key=lambda kv: (-kv[1], kv[0]))
            kept, rest = items[: self.max_categories], items[self.max_categories:]
            categorical.append(CategoricalProfile(
                name, tuple(k for k, _ in kept), np.asarray([c for _, c in kept], dtype=np.float64), self.n,
                int(self.cat_missing[j]), sum(1 for _, c in items if c == 1), sum(c for _, c in rest),
                rows_beyond_cap(items, self.max_categories)))
        outputs = None
        if scores is not None:
            sc = np.asarray(scores, dtype=np.float64)
            if sc.ndim == 2 and sc.shape[1] >= 2:
                k = sc.shape[1]
                # rows with a missing output have no prediction (argmax would count them as the
                # class whose column is NaN, or class 0)
                pred = sc[np.isfinite(sc).all(axis=1)].argmax(axis=1)
                outputs = OutputProfile(tuple(str(c) for c in classes) or tuple(str(i) for i in range(k)),
                                        np.bincount(pred, minlength=k).astype(np.float64),
                                        numeric_profile("max_score", sc.max(axis=1), self.n_bins))
            elif sc.ndim == 2 and sc.shape[1] == 1 or sc.ndim == 1:
                outputs = OutputProfile(tuple(str(c) for c in classes), value=numeric_profile("value", sc.ravel(), self.n_bins))
        label_counts = None
        if labels is not None:
            lab = np.asarray(labels)
            # class indices only: a column of large integers (ids, years, codes) would make
            # bincount allocate max(label) counts (1e12 labels: a MemoryError after minutes)
            if lab.dtype.kind in "iu" and lab.size and lab.min() >= 0 and lab.max() < MAX_LABEL_INDEX:
                label_counts = np.bincount(lab.astype(np.int64)).astype(np.float64)
        read = tuple(self.numeric_names) if pca_names is None else tuple(pca_names)
        pca_x = num if read == tuple(self.numeric_names) else num[:, [self.numeric_names.index(n) for n in read]]
        pca = _fit_pca(pca_x, read, self.n_bins, self.rng, basis=pca_basis) if len(read) >= 2 else None
        take = self.rng.permutation(num.shape[0])[:keep_rows] if keep_rows > 0 else np.empty(0, dtype=np.int64)
        take.sort()
        sample = None
        if take.size:
            sample = Reference(num[take], cat[take], self.numeric_names, self.categorical_names,
                               None if scores is None else np.asarray(scores)[take],
                               None if labels is None else np.asarray(labels)[take], tuple(str(c) for c in classes))
        info = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rows_read": self.n,
                "rows_sampled": int(num.shape[0]), "n_bins": self.n_bins, **(meta or {})}
        if pca is not None and pca_basis is not None:
            info["pca_fit_rows"] = pca_basis.rows
        return Profile(numeric, tuple(categorical), self.n, outputs, label_counts, pca, sample, info,
                       vocabularies={str(k): tuple(v) for k, v in (vocabularies or {}).items()})


def profile_of(reference: "Reference | Profile", n_bins: int = DEFAULT_BINS) -> Profile:
    """The profile of a reference: the one it was loaded with, else built once and cached on it."""
    if isinstance(reference, Profile):
        return reference
    cached = getattr(reference, "profile", None)
    if isinstance(cached, Profile):
        return cached
    prof = Profile.from_reference(reference, n_bins=n_bins)
    reference.profile = prof
    return prof


# -- reading files ---------------------------------------------------------------------------------
class Progress:
    """A dependency-free progress bar on stderr, redrawn at most 10 times a second on a terminal;
    written once, when done, to anything else (a CI log, a file: the redraws, each after a carriage
    return, ran together there, and the 100% line came twice)."""

    def __init__(self, total: float, label: str = "", enabled: bool = True, stream: Any = None) -> None:
        self.total = max(float(total), 1.0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.done = 0.0
        self._last = 0.0
        self._drawn = -1.0  # the fraction last drawn
        try:
            self._terminal = bool(self.stream.isatty())
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            self._terminal = False

    def update(self, done: float) -> None:
        self.done = done
        now = time.monotonic()
        if self.enabled and self._terminal and (now - self._last > 0.1 or done >= self.total):
            self._last = now
            self._draw(min(1.0, done / self.total))

    def _draw(self, frac: float) -> None:
        bar = "#" * int(frac * 30)
        self.stream.write(f"{chr(13) if self._terminal else ''}{self.label} [{bar:<30}] {frac * 100:5.1f}%")
        self.stream.flush()
        self._drawn = frac

    def close(self) -> None:
        if self.enabled:
            if self._drawn < 1.0:
                self._draw(1.0)
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class Table:
    """A chunk of reference data split by role."""

    numeric: np.ndarray
    categorical: np.ndarray
    scores: np.ndarray | None
    labels: np.ndarray | None
    #: Text feature -> its vocabulary, the whole file's (the same in every chunk); its
    #: descriptors are the last numeric columns.
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _parse_numeric(values: list[str], column: str, first_row: int) -> np.ndarray:
    out = np.empty(len(values))
    for i, v in enumerate(values):
        s = v.strip()
        if s.lower() in MISSING_TOKENS:
            out[i] = np.nan
            continue
        try:
            out[i] = float(s)
        except ValueError:
            raise ProfileError(
                f"column {column!r}, row {first_row + i + 1}: {v!r} is not a number; declare the column categorical "
                f"(--categorical {column}) or clean the value") from None
    return out


def _label_values(values: Sequence[Any]) -> np.ndarray:
    """A label column of a CSV (text) or Parquet file: class indices, target values or class names.

    Whole numbers (below 2**53) are class indices (int64); other numbers are kept as they are
    (a regression model's targets), missing cells (the CSV missing tokens, nulls) NaN; any
    other text makes the whole column names (object, a missing cell ``""``). Labels were read
    ``int(float(v))`` before, which cut every regression target to an integer: a CSV reference's
    MAE (``monitor_regression_reference_mae``, the baseline RegressionErrorHigh compares
    with) was measured against truncated targets.
    """
    out = np.empty(len(values))
    for i, v in enumerate(values):
        text = v.strip() if isinstance(v, str) else v
        if text is None or (isinstance(text, str) and text.lower() in MISSING_TOKENS):
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except (TypeError, ValueError):
            return np.asarray(["" if v is None else v for v in values], dtype=object)
    finite = np.isfinite(out)
    if finite.all() and np.all(out == np.round(out)) and np.all(np.abs(out) < 2.0**53):
        return out.astype(np.int64)
    return out


def read_table(
    path: str | Path,
    *,
    output_columns: Sequence[str] = (),
    label_column: str | None = None,
    categorical: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    chunk_rows: int = 50_000,
    progress: bool = True,
    unnamed_as: Sequence[str] = (),
    text: Sequence[str] | None = None,
    head_vocabulary: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...], Iterator[Table]]:
    """Open CSV, Parquet (when pyarrow is installed), ``.npy`` or ``.npz`` reference data.

    Returns ``(numeric_names, categorical_names, chunks)``. In CSV/Parquet, ``output_columns``
    hold the model's outputs (class probabilities in class order, or one regression value),
    ``label_column`` the ground truth, ``exclude`` ids and the like; columns whose first chunk
    does not parse as numbers are categorical unless ``categorical`` lists them explicitly.
    Columns of free text (:func:`monitor.text.is_free_text` on the first rows; ``text`` names
    them instead, ``[]`` none) are text features: each is read as its descriptors
    (``review.length``... ``review.oov_share``, the last numeric columns), against a vocabulary of
    the whole column (a first pass over the file counts its words; with ``head_vocabulary``, for a
    check of the first rows, the first chunk's), given in every chunk's ``vocabularies``.
    A ``.npy`` is a numeric matrix; an ``.npz`` has ``X`` (or ``numeric``), optionally
    ``feature_names``, ``categorical`` + ``categorical_names`` (strings), ``scores`` and ``labels``.
    Their columns are named ``f0, f1, ...`` unless ``unnamed_as`` gives as many names: the
    config's ``features``, in the order array inputs are read live, so that the detectors that
    read features by name meet them (a file with names keeps its own).
    """
    path = Path(path)
    if not path.exists():
        raise ProfileError(f"reference data {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv" or suffix == ".txt" or suffix == ".tsv":
        return _read_csv(path, output_columns, label_column, categorical, exclude, chunk_rows, progress, text,
                         head_vocabulary)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path, output_columns, label_column, categorical, exclude, chunk_rows, progress, text,
                             head_vocabulary)
    if text:
        raise ProfileError(f"--text / reference.text ({', '.join(text)}): {path.name} is an array file, whose columns "
                           "hold numbers and categories, not free text. Fix: give the reference as CSV or Parquet with "
                           "its text columns, or leave --text out")
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as err:
            raise ProfileError(f"{path}: not a readable numeric .npy ({_without_pickle_advice(err)}); save a 2-D float array "
                               "(numpy.save without object dtype)") from None
        if arr.ndim != 2 or arr.dtype.kind not in "biuf":
            raise ProfileError(f"{path}: a .npy reference must be a 2-D numeric array (rows, features), "
                               f"got shape {arr.shape} dtype {arr.dtype}")
        names = _positional(arr.shape[1], (), unnamed_as)

        def gen_npy() -> Iterator[Table]:
            bar = Progress(arr.shape[0], f"reading {path.name}", progress)
            for s in range(0, arr.shape[0], chunk_rows):
                chunk = np.asarray(arr[s:s + chunk_rows], dtype=np.float64)
                yield Table(chunk, np.empty((chunk.shape[0], 0), dtype=object), None, None)
                bar.update(s + chunk.shape[0])
            bar.close()

        return names, (), gen_npy()
    if suffix == ".npz":
        x, names, cat, cnames, scores, labels = _read_npz(path)
        if not cnames:
            names = _positional(x.shape[1], names, unnamed_as)

        def gen_npz() -> Iterator[Table]:
            bar = Progress(x.shape[0], f"reading {path.name}", progress)
            for s in range(0, x.shape[0], chunk_rows):
                e = s + chunk_rows
                yield Table(x[s:e], cat[s:e], None if scores is None else scores[s:e], None if labels is None else labels[s:e])
                bar.update(min(e, x.shape[0]))
            bar.close()

        return names, cnames, gen_npz()
    raise ProfileError(f"{path}: unsupported reference format {suffix!r}; use .csv, .parquet, .npy or .npz")


def _positional(n_columns: int, names: tuple[str, ...], unnamed_as: Sequence[str]) -> tuple[str, ...]:
    """Names of the numeric columns of an array file: its own (``names``), else ``unnamed_as``
    when as many, else ``f0, f1, ...``."""
    default = tuple(f"f{i}" for i in range(n_columns))
    if names and names != default:
        return names
    if len(unnamed_as) == n_columns and len(set(unnamed_as)) == n_columns:
        return tuple(unnamed_as)
    return default


def _read_npz(path: Path, tensor: bool = False
              ) -> tuple[np.ndarray, tuple[str, ...], np.ndarray, tuple[str, ...], np.ndarray | None, np.ndarray | None]:
    """The arrays of an ``.npz`` reference, checked against each other so that a wrong shape or an
    object array is refused with the key and the fix, not a numpy traceback deep in the builder.
    With ``tensor``, an ``X`` of 3 or more dimensions (images) is taken, as it is (its dtype kept:
    a float64 copy of a file of images would be 8 times its size)."""
    try:
        z = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as err:
        _refuse_no_npz(path, "save the reference data with numpy.savez(path, X=..., ...), or give it as CSV")
        reason = _without_pickle_advice(err)
        if reason != str(err):  # numpy refused pickled objects
            raise ProfileError(f"{path}: cannot read without pickle ({reason}); store strings as fixed-width unicode "
                               "arrays (numpy.asarray(values, dtype=str))") from None
        # a file cut short or no archive at all: the pickle advice sent the user after strings
        raise ProfileError(f"{path}: not a readable .npz ({err}); it may be cut short or not an .npz at all. Fix: save "
                           "the reference data again with numpy.savez(path, X=..., ...), or give it as CSV") from None
    if not hasattr(z, "files"):
        raise ProfileError(f"{path}: is a single array, not an .npz archive; rename it .npy or save it with numpy.savez(X=...)")
    if "meta.json" in z.files:
        z.close()
        # was "needs an array 'X'; it has num0.edges, num0.counts, ..." (the profile's own arrays)
        raise ProfileError(f"{path}: is a saved profile, not data: it keeps summaries, not the rows read here. Fix: give "
                           "the data it was built from (a profile is named in reference.path as it is)")
    with z:
        def get(key: str) -> np.ndarray:
            try:
                return np.asarray(z[key])
            except (ValueError, OSError) as err:
                raise ProfileError(f"{path}: array {key!r} cannot be read without pickle ({err}); store strings as "
                                   "fixed-width unicode arrays (numpy.asarray(values, dtype=str))") from None

        key = "X" if "X" in z.files else "numeric" if "numeric" in z.files else None
        if key is None:
            raise ProfileError(f"{path}: an .npz reference needs an array 'X' (or 'numeric'); it has {', '.join(z.files)}")
        raw = get(key)
        if raw.ndim != 2 and not (tensor and raw.ndim >= 3):
            raise ProfileError(f"{path}: '{key}' must be 2-D (rows, features), got shape {raw.shape}")
        try:
            if raw.ndim != 2 and raw.dtype.kind not in "biuf":
                raise TypeError(raw.dtype)
            x = raw if raw.ndim != 2 else raw.astype(np.float64)
        except (ValueError, TypeError):
            raise ProfileError(f"{path}: '{key}' must hold numbers, got dtype {raw.dtype}; put string columns in "
                               "'categorical' (with 'categorical_names')") from None
        n = x.shape[0]
        width = x.shape[1] if x.ndim == 2 else 1  # a tensor is one feature
        names = tuple(str(s) for s in get("feature_names").ravel()) if "feature_names" in z.files else tuple(f"f{i}" for i in range(width)) if x.ndim == 2 else ()
        if len(names) != width and (x.ndim == 2 or names):
            raise ProfileError(f"{path}: 'feature_names' has {len(names)} names for the {x.shape[1]} columns of '{key}'")
        cat = get("categorical").astype(object) if "categorical" in z.files else np.empty((n, 0), dtype=object)
        if cat.ndim != 2 or cat.shape[0] != n:
            raise ProfileError(f"{path}: 'categorical' must be 2-D with {n} rows like '{key}', got shape {cat.shape}")
        cnames = tuple(str(s) for s in get("categorical_names").ravel()) if "categorical_names" in z.files else tuple(f"c{i}" for i in range(cat.shape[1]))
        if len(cnames) != cat.shape[1]:
            raise ProfileError(f"{path}: 'categorical_names' has {len(cnames)} names for the {cat.shape[1]} columns of 'categorical'")
        scores = labels = None
        if "scores" in z.files:
            try:
                scores = get("scores").astype(np.float64)
            except (ValueError, TypeError):
                raise ProfileError(f"{path}: 'scores' must hold numbers (the model's outputs)") from None
        if "labels" in z.files:
            labels = get("labels")
        for k, a in (("scores", scores), ("labels", labels)):
            if a is not None and (a.ndim == 0 or a.shape[0] != n):
                raise ProfileError(f"{path}: '{k}' must have {n} rows like '{key}', got shape {a.shape}")
    if cat.size:  # float codes (7.0), or their text ("7.0"), are the code 7; empty text is missing
        cat = categorical_text(cat)
    return x, names, cat, cnames, scores, labels


def _roles(header: Sequence[str], output_columns: Sequence[str], label_column: str | None, exclude: Sequence[str],
           source: str = "") -> list[str]:
    roles = ([("output column", "--output-columns / reference.output_columns", c) for c in output_columns]
             + ([("label column", "--label-column / reference.label_column", label_column)] if label_column else [])
             + [("excluded column", "--exclude / reference.exclude", c) for c in exclude])
    for role, option, name in roles:
        if name not in header:
            close = difflib.get_close_matches(name, header, n=1)
            raise ProfileError(f"{role} {name!r} is not in the header of {source or 'the reference data'} ({', '.join(header)}). "
                               f"Fix: name a column of that header in {option}"
                               + (f" (did you mean {close[0]!r}?)" if close else ""))
    skip = set(output_columns) | set(exclude) | ({label_column} if label_column else set())
    return [h for h in header if h not in skip]


def _split(columns: dict[str, list[str]], feats: list[str], cat_names: set[str], output_columns: Sequence[str],
           label_column: str | None, row0: int) -> Table:
    num_names = [f for f in feats if f not in cat_names]
    n = len(next(iter(columns.values()))) if columns else 0
    num = np.column_stack([_parse_numeric(columns[f], f, row0) for f in num_names]) if num_names else np.empty((n, 0))
    if cat_names:
        cat = np.empty((n, len(cat_names)), dtype=object)
        for j, f in enumerate([f for f in feats if f in cat_names]):
            # as live text reads: an empty field is missing (pandas writes a gap so), "NA" or "nan"
            # a category; and a CSV keeps no types: "7.0" (a float column of codes) is the code 7
            cat[:, j] = categorical_text(np.asarray(columns[f], dtype=object))
    else:
        cat = np.empty((n, 0), dtype=object)
    scores = np.column_stack([_parse_numeric(columns[c], c, row0) for c in output_columns]) if output_columns else None
    labels = _label_values(columns[label_column]) if label_column else None
    return Table(num, cat, scores, labels)


def _decode(line: bytes, path: Path, where: str, encoding: str = "utf-8") -> str:
    try:
        return line.decode(encoding)
    except UnicodeDecodeError as err:
        raise ProfileError(f"{path.name}, {where}: not UTF-8 ({err.reason} at byte {err.start}); re-save the file "
                           "as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None


def _guess_categorical(columns: dict[str, list[str]], feats: list[str]) -> set[str]:
    out = set()
    for f in feats:
        for v in columns[f][:1000]:
            s = v.strip()
            if s.lower() in MISSING_TOKENS:
                continue
            try:
                float(s)
            except ValueError:
                out.add(f)
                break
    return out


def _without_time_text(feats: list[str], categorical: Sequence[str] | None, head: Callable[[str], list[Any]],
                       source: str) -> list[str]:
    """The features but those of ISO 8601 text (dates, date-times: a CSV or a Parquet string column
    has no type for time), left out and said once as points in time are (:mod:`monitor.temporal`);
    a column named categorical stays. Learned as a categorical, a date column raised input drift
    for ever once today's date was not among the reference's."""
    from monitor.temporal import is_point_in_time_text, left_out_message

    times = [f for f in feats if f not in (categorical or ()) and is_point_in_time_text(head(f))]
    if not times:
        return feats
    import logging

    logging.getLogger("monitor").warning(left_out_message(times, f"{source}: column(s)"))
    return [f for f in feats if f not in times]


def _read_csv(path: Path, output_columns: Sequence[str], label_column: str | None, categorical: Sequence[str] | None,
              exclude: Sequence[str], chunk_rows: int, progress: bool, text: Sequence[str] | None = None,
              head_vocabulary: bool = False) -> tuple[tuple[str, ...], tuple[str, ...], Iterator[Table]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, "rb") as fb:
        first = _decode(fb.readline(), path, "the header", "utf-8-sig")
    header = next(csv.reader([first], delimiter=delimiter), [])
    if not header:
        raise ProfileError(f"{path.name}: the first line must be a header naming the columns; the file starts with an empty line")
    for i, h in enumerate(header):
        if not h.strip():
            raise ProfileError(f"{path.name}: header column {i + 1} has no name; name it, or remove the trailing "
                               f"{'tab' if delimiter == chr(9) else 'comma'} from every line")
        if header.index(h) != i:
            raise ProfileError(f"{path.name}: header column {h!r} appears twice (columns {header.index(h) + 1} and "
                               f"{i + 1}); rename one of them")
    feats = _roles(header, output_columns, label_column, exclude, path.name)
    # type guess from the first chunk
    with open(path, "r", encoding="utf-8-sig", errors="replace", newline="") as f:
        rd = csv.reader(f, delimiter=delimiter)
        next(rd)
        head_rows = [r for _, r in zip(range(1000), rd)]
    cols0 = {h: [r[i] if i < len(r) else "" for r in head_rows] for i, h in enumerate(header)}
    feats = _without_time_text(feats, (*(categorical or ()), *(text or ())), lambda f: cols0[f], path.name)
    texts = _text_features(feats, _guess_categorical(cols0, feats), categorical, text,
                           lambda f: _csv_texts(cols0[f]), path.name)
    cat_names = (set(categorical) if categorical is not None else _guess_categorical(cols0, feats)) - set(texts)
    for c in cat_names:
        if c not in feats:
            raise ProfileError(f"categorical column {c!r} is not an input column of {path.name}")
    feats = [f for f in feats if f not in texts]
    num_names = tuple(f for f in feats if f not in cat_names)
    cnames = tuple(f for f in feats if f in cat_names)
    size = os.path.getsize(path)

    def chunks(label: str) -> Iterator[tuple[int, dict[str, list[str]]]]:
        bar = Progress(size, label, progress)
        with open(path, "rb") as fb:
            fb.readline()
            done = len(first.encode())
            row0 = 0
            while True:
                lines = []
                quotes = 0  # an odd count: the chunk ends inside a quoted field ("" keeps the parity)
                while len(lines) < chunk_rows or quotes % 2:
                    line = fb.readline()
                    if not line:
                        break
                    done += len(line)
                    if line.strip() or quotes % 2:
                        lines.append(_decode(line, path, f"data row {row0 + len(lines) + 1}"))
                        quotes += line.count(b'"')
                if not lines:
                    break
                rows = list(csv.reader(io.StringIO("".join(lines)), delimiter=delimiter))
                for i, r in enumerate(rows):
                    if len(r) != len(header):
                        raise ProfileError(f"{path.name} row {row0 + i + 1}: {len(r)} fields, the header has {len(header)}")
                yield row0, {h: [r[i] for r in rows] for i, h in enumerate(header)}
                row0 += len(rows)
                bar.update(done)
        bar.close()

    def gen() -> Iterator[Table]:
        words = _reference_words(texts, head_vocabulary, lambda: (
            {t: _csv_texts(columns[t]) for t in texts} for _, columns in chunks(f"counting words in {path.name}")))
        for row0, columns in chunks(f"reading {path.name}"):
            table = _split(columns, feats, cat_names, output_columns, label_column, row0)
            yield _with_descriptors(table, words, {t: _csv_texts(columns[t]) for t in texts})

    return num_names + _descriptor_columns(texts, num_names, cnames, path.name), cnames, gen()


def _csv_texts(values: list[str]) -> list[str | None]:
    """A CSV column of free text: an empty field is a missing text, as it is a missing category."""
    return [v if v else None for v in values]


def _text_features(feats: Sequence[str], candidates: Collection[str], categorical: Sequence[str] | None,
                   text: Sequence[str] | None, head: Callable[[str], list[Any]], source: str) -> list[str]:
    """The features of a CSV / Parquet file read as free text: those ``text`` names (``--text`` /
    ``reference.text``), else the ``candidates`` (columns holding text) not named categorical whose
    first values are free text (:func:`monitor.text.is_free_text`), said once with the override.
    Read as categories, nearly every value of such a column was an unseen category, live and in
    the reference alike: nothing about the text was monitored."""
    named = set(categorical or ())
    if text is not None:
        for t in text:
            if t not in feats:
                raise ProfileError(f"text column {t!r} is not an input column of {source} ({', '.join(feats)}). Fix: "
                                   "name free-text input columns in --text / reference.text")
            if t in named:
                raise ProfileError(f"column {t!r} is named both categorical and text. Fix: list it under one of "
                                   "--categorical / reference.categorical and --text / reference.text")
        return list(dict.fromkeys(text))
    from monitor.derived import TextDerived
    from monitor.text import is_free_text

    found = [f for f in feats if f in candidates and f not in named and is_free_text(head(f))]
    if found:
        import logging

        logging.getLogger("monitor").warning(
            "%s: column(s) %s hold free text: monitored through numbers describing each text (%s), not as categories. "
            "Fix: to read one as categories, list it in --categorical / reference.categorical; --text '' / "
            "reference.text: [] reads none as text", source, ", ".join(map(repr, found)),
            ", ".join(TextDerived(found[0], frozenset()).columns))
    return found


def _descriptor_columns(texts: Sequence[str], num_names: Sequence[str], cat_names: Sequence[str],
                        source: str) -> tuple[str, ...]:
    """The numeric columns the text features ``texts`` are profiled as (each one's descriptors, in
    order), refused when one is already a column of the file."""
    from monitor.derived import TextDerived

    taken = set(num_names) | set(cat_names)
    out: tuple[str, ...] = ()
    for t in texts:
        columns = TextDerived(t, frozenset()).columns  # a reference fixes a vocabulary: oov_share too
        clash = [n for n in columns if n in taken]
        if clash:
            raise ProfileError(f"{source}: text column {t!r} is profiled as {', '.join(columns)}, and "
                               f"{', '.join(clash)} is a column of the file already. Fix: rename that column, or list "
                               f"{t!r} in --categorical / reference.categorical")
        out += columns
    return out


def _reference_words(texts: Sequence[str], head_vocabulary: bool,
                     chunks: Callable[[], Iterator[dict[str, list[Any]]]]) -> Any:
    """The text features' word counts (:class:`monitor.text.ReferenceWords`): counted over every
    chunk ``chunks()`` yields (a first pass over the file: a vocabulary is the whole column's),
    or, with ``head_vocabulary`` (a check of the first rows), left to the first chunk read."""
    if not texts:
        return None
    from monitor.text import ReferenceWords

    words = ReferenceWords(texts)
    if not head_vocabulary:
        for columns in chunks():
            for t in texts:
                words.add(t, columns[t])
        words.finish()
    return words


def _with_descriptors(table: Table, words: Any, texts: dict[str, list[Any]]) -> Table:
    """``table`` with the descriptors of each text feature's ``texts`` after its numeric columns,
    and the features' vocabularies."""
    if words is None:
        return table
    if not words.finished:  # head_vocabulary: the first chunk's words
        for t, values in texts.items():
            words.add(t, values)
        words.finish()
    num = np.hstack([table.numeric, *(words.describe(t, values) for t, values in texts.items())])
    return dataclasses.replace(table, numeric=num, vocabularies=words.vocabularies)


def _read_parquet(path: Path, output_columns: Sequence[str], label_column: str | None, categorical: Sequence[str] | None,
                  exclude: Sequence[str], chunk_rows: int, progress: bool, text: Sequence[str] | None = None,
                  head_vocabulary: bool = False) -> tuple[tuple[str, ...], tuple[str, ...], Iterator[Table]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ProfileError(f"{path.name}: reading Parquet needs pyarrow (pip install pyarrow), or convert the file to CSV/.npz") from None
    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError: a file cut short, or not Parquet
        raise ProfileError(f"{path}: not a readable Parquet file ({str(err)[:200].rstrip('.')}). Fix: copy or write it again "
                           "(pandas.DataFrame.to_parquet), or give the reference as CSV") from None
    header = list(pf.schema_arrow.names)
    feats = _roles(header, output_columns, label_column, exclude, path.name)
    types = {f.name: f.type for f in pf.schema_arrow}
    import pyarrow as pa

    # points in time are left out unless named categorical, durations are seconds (monitor.temporal)
    times = [f for f in feats if (pa.types.is_timestamp(types[f]) or pa.types.is_date(types[f]))
             and f not in (categorical or ())]
    if times:
        import logging

        from monitor.temporal import left_out_message

        logging.getLogger("monitor").warning(left_out_message(times, f"{path.name}: column(s)"))
        feats = [f for f in feats if f not in times]
    strings = [f for f in feats if pa.types.is_string(types[f]) or pa.types.is_large_string(types[f])]
    texts: list[str] = []
    if strings and pf.metadata.num_rows:
        from monitor.temporal import TEXT_SAMPLE

        head = next(pf.iter_batches(batch_size=TEXT_SAMPLE, columns=strings))
        feats = _without_time_text(feats, [f for f in feats if f not in strings] + list(categorical or ()) + list(text or ()),
                                   lambda f: head.column(f).to_pylist(), path.name)
        texts = _text_features(feats, strings, categorical, text, lambda f: head.column(f).to_pylist(), path.name)
    elif text:
        texts = _text_features(feats, (), categorical, text, list, path.name)
    feats = [f for f in feats if f not in texts]
    if categorical is None:
        cat_names = {f for f in feats if not (pa.types.is_integer(types[f]) or pa.types.is_floating(types[f])
                                              or pa.types.is_boolean(types[f]) or pa.types.is_duration(types[f]))}
    else:
        cat_names = set(categorical)
    num_names = tuple(f for f in feats if f not in cat_names)
    cnames = tuple(f for f in feats if f in cat_names)

    def word_chunks() -> Iterator[dict[str, list[Any]]]:
        bar = Progress(pf.metadata.num_rows, f"counting words in {path.name}", progress)
        done = 0
        for rb in pf.iter_batches(batch_size=chunk_rows, columns=texts):
            yield {t: rb.column(t).to_pylist() for t in texts}
            done += rb.num_rows
            bar.update(done)
        bar.close()

    def gen() -> Iterator[Table]:
        words = _reference_words(texts, head_vocabulary, word_chunks)
        bar = Progress(pf.metadata.num_rows, f"reading {path.name}", progress)
        done = 0
        for rb in pf.iter_batches(batch_size=chunk_rows):
            n = rb.num_rows
            num = np.column_stack([_parquet_numbers(rb, f, done) for f in num_names]) if num_names else np.empty((n, 0))
            cat = np.empty((n, len(cnames)), dtype=object)
            for j, f in enumerate(cnames):
                cat[:, j] = categorical_text(np.asarray(rb.column(f).to_pylist() + [None], dtype=object)[:-1])
            scores = np.column_stack([_parquet_numbers(rb, c, done) for c in output_columns]) if output_columns else None
            # a boolean label reads as its text, as a CSV's "True" does
            labels = (_label_values([str(v) if isinstance(v, bool) else v for v in rb.column(label_column).to_pylist()])
                      if label_column else None)
            yield _with_descriptors(Table(num, cat, scores, labels), words, {t: rb.column(t).to_pylist() for t in texts})
            done += n
            bar.update(done)
        bar.close()

    return num_names + _descriptor_columns(texts, num_names, cnames, path.name), cnames, gen()


def _parquet_numbers(rb: Any, column: str, first_row: int) -> np.ndarray:
    """A Parquet column read as numbers: numeric and boolean columns as they are (nulls NaN), any
    other (text, say, when ``categorical`` leaves a text column numeric) value by value as a CSV
    field is, so that a value that is not a number is refused naming its column, row and fix, as
    the CSV reader refuses it (a bare ``ValueError`` from numpy before)."""
    import pyarrow as pa

    col = rb.column(column)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type) or pa.types.is_null(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_duration(col.type):  # seconds, as live durations are read (monitor.temporal)
        return col.to_numpy(zero_copy_only=False) / np.timedelta64(1, "s")
    return _parse_numeric(["" if v is None else str(v) for v in col.to_pylist()], column, first_row)


def build_profile(
    path: str | Path,
    *,
    output_columns: Sequence[str] = (),
    label_column: str | None = None,
    categorical: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    classes: Sequence[str] = (),
    n_bins: int = DEFAULT_BINS,
    max_rows: int = 1_000_000,
    keep_rows: int = 5000,
    seed: int = 0,
    progress: bool = True,
    pca_fit: str | Path | None = None,
    unnamed_as: Sequence[str] = (),
    text: Sequence[str] | None = None,
    channel_axis: int | None = None,
) -> Profile:
    """Stream a reference file into a :class:`Profile` (see :func:`read_table` for the formats).

    An ``.npy``, or an ``.npz``'s ``X``, of 3 or more dimensions is rows of one tensor feature
    (images, audio: :func:`monitor.tensor_reference.tensor_profile`, ``channel_axis`` its
    channels' axis when the shape does not tell).

    ``pca_fit``: a second file (typically the training set, same formats) whose rows the
    multivariate drift detector's PCA is fitted on; only its columns named as the reference's
    numeric features are read (see :class:`PCABasis`). ``unnamed_as``: names for the columns of
    an array file that has none (see :func:`read_table`), the ``pca_fit`` file's included.
    ``text``: the free-text columns of a CSV / Parquet file (None: found, see :func:`read_table`).
    """
    if classes and len(output_columns) > 1 and len(classes) != len(output_columns):
        # the detectors name the score columns after the classes, in order: a list of another
        # length would name some columns wrongly or not at all
        raise ProfileError(f"--classes names {len(classes)} classes ({', '.join(classes)}) for {len(output_columns)} "
                           f"output columns ({', '.join(output_columns)}). Fix: name one class per output column, "
                           "in the same order")
    if len(set(classes)) != len(tuple(classes)):
        raise ProfileError(f"--classes names a class twice ({', '.join(classes)}). Fix: give each class once")
    from monitor.tensor_reference import holds_tensor, tensor_profile

    if holds_tensor(path):
        return tensor_profile(path, roles={"--output-columns": output_columns, "--label-column": label_column,
                                           "--categorical": categorical, "--exclude": exclude, "--text": text},
                              classes=classes, n_bins=n_bins, keep_rows=keep_rows, seed=seed, pca_fit=pca_fit,
                              unnamed_as=unnamed_as, channel_axis=channel_axis)
    num_names, cat_names, chunks = read_table(path, output_columns=output_columns, label_column=label_column,
                                              categorical=categorical, exclude=exclude, progress=progress,
                                              unnamed_as=unnamed_as, text=text)
    if not (num_names or cat_names or output_columns or label_column):
        # a profile of nothing was written and passed as a reference, every detector then left out
        raise ProfileError(f"{Path(path).name}: no column left to profile (every one excluded). Fix: exclude only ids "
                           "and the like (--exclude / reference.exclude), keeping the model's input features, or name "
                           "its outputs (--output-columns) and labels (--label-column)")
    b = _Builder(num_names, cat_names, n_bins=n_bins, max_rows=max_rows, seed=seed)
    vocabularies: dict[str, tuple[str, ...]] = {}
    for t in chunks:
        b.add(t.numeric, t.categorical, t.scores, t.labels)
        vocabularies = t.vocabularies
    if b.n == 0:
        raise ProfileError(f"{path}: no data rows")
    names = tuple(classes) or (tuple(output_columns) if len(output_columns) > 1 else ())
    meta: dict[str, Any] = {"source": Path(path).name}
    basis = None
    if pca_fit is not None:
        basis = _read_pca_basis(pca_fit, num_names, seed=seed, progress=progress)
        meta["pca_fit_source"] = Path(pca_fit).name
    return b.finish(classes=names, keep_rows=keep_rows, meta=meta, pca_basis=basis, vocabularies=vocabularies)


def _read_pca_basis(path: str | Path, names: tuple[str, ...], *, seed: int, progress: bool) -> PCABasis:
    """The PCA directions of the columns ``names`` of a file, on a uniform sample of at most
    :data:`PCA_MAX_ROWS` rows (random priorities, one pass: a training set of any length)."""
    file_names, text_names, chunks = read_table(path, progress=progress, unnamed_as=names)
    _check_pca_fit_names(path, names, file_names, text_names)
    cols = np.array([file_names.index(n) for n in names], dtype=np.int64)
    rng = np.random.default_rng(seed)
    kept, keys = np.empty((0, len(names))), np.empty(0)
    for t in chunks:
        kept = np.concatenate([kept, t.numeric[:, cols]])
        keys = np.concatenate([keys, rng.random(t.numeric.shape[0])])
        if keys.size > PCA_MAX_ROWS:
            top = np.argpartition(keys, PCA_MAX_ROWS)[:PCA_MAX_ROWS]
            kept, keys = kept[top], keys[top]
    basis = fit_pca_basis(kept, names, seed=seed)
    if basis is None:
        raise ProfileError(f"--pca-fit {Path(path).name} has {kept.shape[0]} rows: a PCA needs at least 20. Fix: give "
                           "it more rows (the training set), or leave --pca-fit out")
    return basis


def check_pca_fit_columns(path: str | Path, names: Sequence[str]) -> None:
    """Raise the :class:`ProfileError` that fitting the PCA on the file at ``path`` would raise for
    its columns, given the reference's numeric feature ``names``, from its header and first rows
    alone (``monitor config check``: the fit itself reads the whole file)."""
    file_names, text_names, _chunks = read_table(path, progress=False)
    _check_pca_fit_names(path, names, file_names, text_names)


def _check_pca_fit_names(path: str | Path, names: Sequence[str], file_names: Sequence[str], text_names: Sequence[str]) -> None:
    missing = [n for n in names if n not in file_names]
    if missing:
        text = [n for n in missing if n in text_names]
        raise ProfileError(f"--pca-fit {Path(path).name} lacks the numeric feature(s) {', '.join(missing)} of the "
                           "reference" + (f" ({', '.join(text)} read as text there)" if text else "")
                           + ". Fix: give it every feature column of the reference data (the training set's "
                           "features, say), under the same names, holding numbers; a reference whose model outputs "
                           "or labels are columns of it names them (reference.output_columns, reference.label_column "
                           "or --output-columns, --label-column), else they are read as features")
    if len(names) < 2:
        raise ProfileError("--pca-fit: the reference has fewer than 2 numeric features, so there is no PCA to fit. "
                           "Fix: leave --pca-fit out")


def load_reference(path: str | Path, *, pca_fit: str | Path | None = None, output_columns: Sequence[str] = (),
                   label_column: str | None = None, exclude: Sequence[str] = (),
                   categorical: Sequence[str] | None = None, classes: Sequence[str] = (),
                   unnamed_as: Sequence[str] = (), text: Sequence[str] | None = None,
                   channel_axis: int | None = None) -> Reference:
    """A :class:`Reference` from a saved profile, or from raw reference data (profiled in memory,
    the PCA's directions from ``pca_fit`` when given; the column roles of a CSV / Parquet file as
    :func:`read_table` takes them, its output columns named ``classes`` when there are as many,
    the columns of an array file without names named ``unnamed_as`` when as many; rows of images
    described per channel on ``channel_axis``, the tensor feature's, as the agent describes its calls).

    This is what ``reference.path`` (and ``reference.pca_fit``, ``reference.output_columns`` ...)
    in ``monitor.yaml`` point at.
    """
    p = Path(path)
    if pca_fit is not None:
        check_pca_fit_target(p)
    check_column_roles_target(p, output_columns=output_columns, label_column=label_column, exclude=exclude,
                              categorical=categorical, text=text)
    if p.suffix.lower() == ".npz" and is_profile(p):
        return Profile.load(p).to_reference()
    # classes name the output columns as the config's output.classes does (the columns' own names
    # otherwise); a count that differs is the caller's to tell against its scores
    names = tuple(classes) if len(output_columns) > 1 and len(classes) == len(output_columns) else ()
    # profiled again at every start, with a new build time in its meta: the reference's
    # fingerprint leaves meta out (monitor.reference._DESCRIPTIVE), so a restart is the same reference
    return build_profile(p, progress=False, pca_fit=pca_fit, output_columns=output_columns, label_column=label_column,
                         exclude=exclude, categorical=categorical, classes=names, unnamed_as=unnamed_as,
                         text=text, channel_axis=channel_axis).to_reference()


def check_column_roles_target(path: str | Path, *, output_columns: Sequence[str] = (), label_column: str | None = None,
                              exclude: Sequence[str] = (), categorical: Sequence[str] | None = None,
                              text: Sequence[str] | None = None, options: bool = False) -> None:
    """Raise :class:`ProfileError` when column roles (``reference.label_column`` ...) are given
    for a reference that has no named columns to give them to: a saved profile took its roles
    when it was built, an ``.npz`` names its ``scores`` and ``labels`` arrays, a ``.npy`` is
    features only. Said alike at the agent's start and in ``monitor config check``; with
    ``options``, in the words of ``monitor reference build`` (``--label-column`` ...), which read
    them as nothing there (the profile written without outputs or labels, the columns named kept
    as features)."""
    given = (("output_columns", bool(output_columns)), ("label_column", label_column is not None),
             ("exclude", bool(exclude)), ("categorical", categorical is not None), ("text", text is not None))
    keys = [("--" + key.replace("_", "-")) if options else f"reference.{key}" for key, on in given if on]
    if not keys:
        return
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv", ".parquet", ".pq"):
        return
    if suffix == ".npz" and is_profile(p):
        what, fix = ("a saved profile, whose columns were given their roles when it was built",
                     "rebuild it with 'monitor reference build ... --output-columns ... --label-column ...', and remove")
    elif suffix == ".npz":
        what, fix = ("an .npz, whose arrays name their roles (X, scores, labels)", "put the outputs in 'scores' and the "
                     "labels in 'labels', and remove")
    else:
        what, fix = (f"a {suffix or 'file without suffix'}, which has no named columns",
                     "use a CSV or Parquet file, or an .npz whose arrays name their roles (numpy.savez(path, X=rows, "
                     "scores=outputs, labels=labels)), or remove")
    raise ProfileError(f"{keys[0]}: {p.name} is {what}. Fix: {fix} {', '.join(keys)}")


def check_pca_fit_target(path: str | Path) -> None:
    """Raise :class:`ProfileError` when ``reference.pca_fit`` cannot apply to the reference at
    ``path``: a saved profile's PCA was fitted when it was built (the agent's start and
    ``monitor config check`` say so in the same words)."""
    p = Path(path)
    if p.suffix.lower() == ".npz" and is_profile(p):
        raise ProfileError(f"reference.pca_fit: {p.name} is a saved profile, whose PCA was fitted when it was built. Fix: "
                           "rebuild it with 'monitor reference build ... --pca-fit TRAINING_DATA', and remove pca_fit "
                           "(or point reference.path at the raw reference data)")


def check_npz_reference(path: str | Path) -> None:
    """Raise the :class:`ProfileError` that :func:`load_reference` raises for the ``.npz`` at
    ``path``, without profiling raw data (``monitor config check``): a saved profile is loaded (in
    moments); raw data is read and its arrays checked against each other, which is all that the
    profile builder refuses but for an archive without rows."""
    p = Path(path)
    if is_profile(p):
        Profile.load(p)
        return
    x = _read_npz(p, tensor=True)[0]  # an X of images is profiled as rows of a tensor feature
    if x.shape[0] == 0:
        raise ProfileError(f"{p}: no data rows")


def is_profile(p: Path) -> bool:
    """Whether the ``.npz`` at ``p`` is a saved profile (else raw data: a single array saved as
    ``.npz`` too, which :func:`_read_npz` refuses with its fix); :class:`ProfileError` when it is
    no readable ``.npz`` at all."""
    try:
        z = np.load(p, allow_pickle=False)
        if not hasattr(z, "files"):
            return False
        with z:
            return "meta.json" in z.files
    except _NPZ_ERRORS as err:
        _refuse_no_npz(p, "build a profile with 'monitor reference build', or save the reference data with "
                          "numpy.savez(path, X=..., ...)")
        raise ProfileError(f"{p}: not a readable .npz ({_without_pickle_advice(err)}); build a profile with 'monitor "
                           "reference build'") from None
