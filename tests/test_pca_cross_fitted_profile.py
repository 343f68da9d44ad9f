"""A profile saved before the PCA was fitted on half the reference and calibrated on the other
half holds the former calibration: the errors of every row, each scored by a PCA of the other
four fifths, while live rows meet the PCA of every row; with near-duplicate features healthy
streams alarmed (tests/test_pca_drift_near_duplicates.py). Such a profile kept running on it,
and ``monitor reference show`` said its PCA was "fitted on half the reference, its errors
calibrated on the other half". It is now told by what it holds (its calibration errors number
the rows the PCA read, not half), said at start and by ``reference show`` with the fix
(``monitor reference build``); the profile is not changed, so its checkpoint fingerprint stays.
Profiles built since hold the fold PCAs themselves (``"folds"``); those of the half split
(``"half"``) are sound and run as they are."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.detectors.multivariate import PCADriftDetector
from monitor.profile import (PCAProfile, Profile, _directions, _kept, _residual_norm, _standardise, load_reference,
                             numeric_profile, pca_calibration)
from monitor.reference import Reference, reference_fingerprint


def _rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return np.column_stack([x, x + 1e-3 * rng.normal(size=(n, 2))])  # near-duplicates


def _cross_fitted(profile: Profile, x: np.ndarray) -> Profile:
    """``profile`` with its PCA calibrated as profiles were built before the half split: the
    directions of every row, each fifth's errors under the other four fifths' PCA."""
    names = profile.pca.names
    mean, scale, z = _standardise(x)
    n, d = z.shape
    var, vec = _directions(n, z.sum(axis=0), z.T @ z)
    k, explained = _kept(var, n, d, 0.9)
    errors = []
    for part in np.array_split(np.random.default_rng(0).permutation(n), 5):
        rest = np.setdiff1d(np.arange(n), part)
        _, fold = _directions(rest.size, z[rest].sum(axis=0), z[rest].T @ z[rest])
        errors.append(_residual_norm(z[part], fold[:k]))
    pca = PCAProfile(names, mean, scale, vec[:k], explained, numeric_profile("reconstruction_error", np.concatenate(errors)))
    return dataclasses.replace(profile, pca=pca)


@pytest.fixture()
def old_profile(tmp_path: Path) -> Path:
    x = _rows(400)
    return _cross_fitted(Profile.from_reference(Reference.from_arrays(x)), x).save(tmp_path / "old.npz")


def _half(profile: Profile, x: np.ndarray) -> Profile:
    """``profile`` with its PCA calibrated as profiles were built between the half split and the
    fold PCAs: directions of a random half, the other half's errors under them."""
    order = np.random.default_rng(0).permutation(len(x))
    fit, rest = x[order[: len(x) // 2]], x[order[len(x) // 2:]]
    mean, scale, z = _standardise(fit)
    n, d = z.shape
    var, vec = _directions(n, z.sum(axis=0), z.T @ z)
    k, explained = _kept(var, n, d, 0.9)
    errors = _residual_norm((rest - mean) / scale, vec[:k])
    pca = PCAProfile(profile.pca.names, mean, scale, vec[:k], explained, numeric_profile("reconstruction_error", errors))
    return dataclasses.replace(profile, pca=pca)


@pytest.mark.parametrize("rows", [40, 41, 400])
def test_profiles_built_now_read_as_fold_calibrated(rows: int) -> None:
    assert pca_calibration(Profile.from_reference(Reference.from_arrays(_rows(rows)))) == "folds"
    x = _rows(rows)
    assert pca_calibration(_half(Profile.from_reference(Reference.from_arrays(x)), x)) == "half"
    fit = Reference.from_arrays(_rows(rows), pca_fit=_rows(500, seed=1))
    assert pca_calibration(Profile.from_reference(fit)) == "pca_fit"


def test_reference_show_says_the_calibration_is_the_former_one_and_the_fix(old_profile: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["reference", "show", str(old_profile)])
    assert res.exit_code == 0, res.output
    assert "fitted on half the reference" not in res.output
    assert "calibrated the former way" in res.output and "rebuild the profile with 'monitor reference build'" in res.output
    assert json.loads(CliRunner().invoke(main, ["reference", "show", str(old_profile), "--json"]).stdout)[
        "pca_calibration"] == "cross_fitted"
    new = Profile.from_reference(Reference.from_arrays(_rows(400))).save(tmp_path / "new.npz")
    res = CliRunner().invoke(main, ["reference", "show", str(new)])
    assert "its errors calibrated on 10 folds, each under a PCA of the other folds" in res.output, res.output
    shown = json.loads(CliRunner().invoke(main, ["reference", "show", str(new), "--json"]).stdout)
    folds = Profile.load(new).pca.folds
    assert shown["pca_fold_components"] == [f.components.shape[0] for f in folds] and len(folds) == 10
    counts = sorted({f.components.shape[0] for f in folds})
    assert (f"keeping {counts[0]} components" if len(counts) == 1 else f"keeping {counts[0]} to {counts[-1]} components") \
        in res.output, res.output
    assert "former way" not in res.output
    x = _rows(400)
    half = _half(Profile.from_reference(Reference.from_arrays(x)), x).save(tmp_path / "half.npz")
    res = CliRunner().invoke(main, ["reference", "show", str(half)])
    assert "fitted on half the reference, its errors calibrated on the other half (sound;" in res.output, res.output


def test_the_start_log_says_so_and_the_fingerprint_stays(old_profile: Path, caplog: pytest.LogCaptureFixture) -> None:
    ref = load_reference(old_profile)
    before = reference_fingerprint(ref)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        PCADriftDetector(ref)
    lines = [r.getMessage() for r in caplog.records if "calibrated the former way" in r.getMessage()]
    assert len(lines) == 1 and "'monitor reference build'" in lines[0], [r.getMessage() for r in caplog.records]
    assert reference_fingerprint(ref) == before == reference_fingerprint(load_reference(old_profile))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        PCADriftDetector(Reference.from_arrays(_rows(400)))
    assert not [r for r in caplog.records if "former way" in r.getMessage()]
