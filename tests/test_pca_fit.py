"""The multivariate drift detector's PCA fitted on other rows (``pca_fit``, typically the training
set), its errors calibrated on every reference row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from monitor.batch import Batch
from monitor.cli import main
from monitor.detectors.multivariate import PCADriftDetector
from monitor.profile import Profile, fit_pca_basis, profile_of
from monitor.reference import Reference, reference_fingerprint, reference_from_state, reference_state

LOADINGS = np.random.default_rng(20).normal(size=(3, 12))  # twelve features, three factors


def rows(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(size=(n, 3)) @ LOADINGS + 0.4 * rng.normal(size=(n, 12))


def test_directions_come_from_the_fit_rows_and_every_reference_row_calibrates() -> None:
    ref_rows, train = rows(np.random.default_rng(1), 80), rows(np.random.default_rng(2), 5000)
    pca = profile_of(Reference.from_arrays(ref_rows, pca_fit=train)).pca
    basis = fit_pca_basis(train, [f"f{i}" for i in range(12)])
    assert pca is not None and basis is not None and basis.rows == 5000
    np.testing.assert_allclose(pca.mean, train.mean(axis=0))
    np.testing.assert_allclose(pca.components, basis.components)
    assert pca.components.shape[0] == 3  # three factors hold 90% of this variance
    errors = pca.transform_error(ref_rows)
    assert pca.error.n == 80
    assert pca.error.mean == pytest.approx(errors.mean())


def test_resampled_reference_rows_meet_their_own_calibration() -> None:
    """A stream that replays reference-like rows (here the reference's own rows, as a benchmark
    that resamples a small pool does) meets exactly the errors the PCA is calibrated on when the
    directions come from other rows. Fitted on the reference itself, the half of those rows the
    directions were fitted on reconstruct below the other half's calibration, which a shift must
    first make up."""
    ref_rows, train = rows(np.random.default_rng(3), 80), rows(np.random.default_rng(4), 5000)
    with_fit = profile_of(Reference.from_arrays(ref_rows, pca_fit=train)).pca
    own = profile_of(Reference.from_arrays(ref_rows)).pca
    assert with_fit is not None and own is not None
    assert with_fit.transform_error(ref_rows).mean() == pytest.approx(with_fit.error.mean, rel=1e-9)
    # the calibration half meets its own errors, so the mean is below them by the fitted half's
    # shortfall (3% here; 5% when every row was fitted on and cross-fitted errors calibrated)
    assert own.transform_error(ref_rows).mean() < 0.99 * own.error.mean


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_small_reference_with_training_directions_is_silent_then_detects(seed: int) -> None:
    """Bounds, five seeds, an 80-row reference and 5,000 training rows: no alarm on 20,000
    unshifted rows, fresh or resampled from the reference; Gaussian noise of 0.5 sd on half the
    rows found within 300 rows of the onset (100 on every seed when measured)."""
    ref_rows, train = rows(np.random.default_rng(100 + seed), 80), rows(np.random.default_rng(200 + seed), 5000)
    sd = train.std(axis=0)
    for resample in (False, True):
        det = PCADriftDetector(Reference.from_arrays(ref_rows, pca_fit=train))
        rng = np.random.default_rng(seed)

        def draw(n: int) -> np.ndarray:
            return ref_rows[rng.integers(0, 80, n)] if resample else rows(rng, n)

        for s in range(0, 20_000, 200):
            det.update(Batch.from_arrays(draw(200), ts=s + np.arange(200.0)))
            assert not det.drift_detected, (resample, s)
        seen = 0
        while seen < 300 and not det.drift_detected:
            x = draw(50)
            hit = rng.random(50) < 0.5
            x[hit] += 0.5 * sd * rng.normal(size=(int(hit.sum()), 12))
            det.update(Batch.from_arrays(x, ts=20_000 + seen + np.arange(50.0)))
            seen += 50
        assert det.drift_detected, resample


def test_the_basis_is_part_of_the_reference_identity_and_checkpoint() -> None:
    ref_rows, train = rows(np.random.default_rng(5), 60), rows(np.random.default_rng(6), 1000)
    plain, fitted = Reference.from_arrays(ref_rows), Reference.from_arrays(ref_rows, pca_fit=train)
    assert reference_fingerprint(plain) != reference_fingerprint(fitted)
    back = reference_from_state(reference_state(fitted))
    assert back is not None and reference_fingerprint(back) == reference_fingerprint(fitted)
    np.testing.assert_array_equal(profile_of(back).pca.components, profile_of(fitted).pca.components)


def test_bad_fit_rows_are_refused_naming_pca_fit() -> None:
    import pandas as pd

    ref_rows = rows(np.random.default_rng(7), 60)
    with pytest.raises(ValueError, match=r"pca_fit must be \(rows, 12"):
        Reference.from_arrays(ref_rows, pca_fit=np.zeros((100, 11)))
    with pytest.raises(ValueError, match="pca_fit has 10 rows.*at least 20"):
        Reference.from_arrays(ref_rows, pca_fit=rows(np.random.default_rng(8), 10))
    frame = pd.DataFrame(ref_rows, columns=[f"c{i}" for i in range(12)])
    train = pd.DataFrame(rows(np.random.default_rng(9), 500), columns=[f"c{i}" for i in range(12)])
    with pytest.raises(ValueError, match="pca_fit lacks the numeric feature.*c3"):
        Reference.from_arrays(frame, pca_fit=train.drop(columns=["c3"]))
    # by name, in any column order, extra columns ignored
    shuffled = train[list(reversed(train.columns))].assign(label=1)
    pca = profile_of(Reference.from_arrays(frame, pca_fit=shuffled)).pca
    np.testing.assert_allclose(pca.mean, train.to_numpy().mean(axis=0))


def _csv(path: Path, x: np.ndarray, extra: str = "") -> Path:
    names = [f"f{i}" for i in range(x.shape[1])]
    lines = [",".join(names) + ("," + extra if extra else "")]
    lines += [",".join(f"{v:.6f}" for v in row) + (",1" if extra else "") for row in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_builds_a_profile_whose_pca_comes_from_the_training_file(tmp_path: Path) -> None:
    ref_rows, train = rows(np.random.default_rng(10), 100), rows(np.random.default_rng(11), 3000)
    ref_csv, train_csv = _csv(tmp_path / "ref.csv", ref_rows), _csv(tmp_path / "train.csv", train, extra="label")
    out = tmp_path / "ref.npz"
    res = CliRunner().invoke(main, ["reference", "build", str(ref_csv), "-o", str(out), "--pca-fit", str(train_csv),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert "PCA keeping 3 components fitted on 3000 rows of train.csv" in res.output
    prof = Profile.load(out)
    assert prof.pca is not None and prof.pca.error.n == 100
    np.testing.assert_allclose(prof.pca.mean, train.mean(axis=0), atol=1e-5)
    assert prof.meta["pca_fit_rows"] == 3000 and prof.meta["pca_fit_source"] == "train.csv"
    shown = CliRunner().invoke(main, ["reference", "show", str(out)])
    assert "PCA (multivariate drift): 3 components" in shown.output
    assert "fitted on 3000 rows of train.csv, its errors calibrated on the reference" in shown.output

    short = _csv(tmp_path / "short.csv", train[:, :11])
    res = CliRunner().invoke(main, ["reference", "build", str(ref_csv), "-o", str(out), "--pca-fit", str(short),
                                    "--quiet"])
    assert res.exit_code == 1
    assert "--pca-fit short.csv lacks the numeric feature(s) f11" in res.output


def _config(tmp_path: Path, reference: str) -> Path:
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"model: m\nreference:\n{reference}")
    return cfg


def test_the_config_key_fits_the_pca_of_raw_reference_data(tmp_path: Path) -> None:
    """``reference.pca_fit`` in monitor.yaml, relative to the file's folder, for raw reference data
    (the sidecar profiles it at start); ``monitor config check`` accepts it."""
    from monitor.config import load_config
    from monitor.core import Monitor

    ref_rows, train = rows(np.random.default_rng(12), 100), rows(np.random.default_rng(13), 2000)
    _csv(tmp_path / "ref.csv", ref_rows)
    _csv(tmp_path / "train.csv", train)
    cfg = _config(tmp_path, "  path: ref.csv\n  pca_fit: train.csv\n")
    assert CliRunner().invoke(main, ["config", "check", str(cfg)]).exit_code == 0
    loaded = load_config(cfg).model()
    assert loaded.reference.pca_fit == str(tmp_path / "train.csv")
    mon = Monitor(config=loaded, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        pca = profile_of(mon.reference).pca
        assert pca is not None and pca.error.n == 100
        np.testing.assert_allclose(pca.mean, train.mean(axis=0), atol=1e-5)
    finally:
        mon.close()


def test_the_config_key_is_refused_where_it_cannot_apply(tmp_path: Path) -> None:
    from monitor.config import ConfigError, load_config
    from monitor.core import Monitor
    from monitor.profile import ProfileError

    ref_rows, train = rows(np.random.default_rng(14), 100), rows(np.random.default_rng(15), 2000)
    _csv(tmp_path / "train.csv", train)
    with pytest.raises(ConfigError, match="reference.pca_fit.*needs reference.path"):
        load_config(_config(tmp_path, "  pca_fit: train.csv\n"))
    # a saved profile carries its own PCA: told at the check and at the start, with the rebuild
    Profile.from_arrays(ref_rows, numeric_names=[f"f{i}" for i in range(12)]).save(tmp_path / "ref.npz")
    cfg = _config(tmp_path, "  path: ref.npz\n  pca_fit: train.csv\n")
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1 and "ref.npz is a saved profile" in res.output and "--pca-fit" in res.output, res.output
    with pytest.raises(ProfileError, match="saved profile"):
        Monitor(config=load_config(cfg).model(), registry=CollectorRegistry(), start_worker=False, live=False)
    res = CliRunner().invoke(main, ["config", "check", str(_config(tmp_path, "  path: ref.npz\n  pca_fit: nope.csv\n"))])
    assert res.exit_code == 1 and "reference.pca_fit:" in res.output and "nope.csv does not exist" in res.output, res.output


def test_a_column_without_spread_in_the_fit_rows_is_scaled_by_the_reference() -> None:
    """A feature added since the training set was cut (all missing there), in units of thousands:
    standardised by the fit rows' defaults (mean 0, sd 1) its raw values swamped every other
    column's error, and 0.5-sd noise on the other eleven went unseen after 5,000 rows (review).
    Bound: found within 300 rows, as with complete training rows."""
    rng = np.random.default_rng(30)
    ref_rows, train = rows(rng, 300), rows(rng, 5000)
    ref_rows[:, 11] = 1000.0 + 50.0 * rng.normal(size=300)
    train[:, 11] = np.nan
    basis_ref = Reference.from_arrays(ref_rows, pca_fit=train)
    assert basis_ref.pca_basis.flat.tolist() == [False] * 11 + [True]
    pca = profile_of(basis_ref).pca
    assert pca.error.mean < 5.0  # standardised: errors of a few units, not of a thousand
    det = PCADriftDetector(basis_ref)
    sd = ref_rows.std(axis=0)
    for s in range(0, 5000, 250):
        x = rows(rng, 250)
        x[:, 11] = 1000.0 + 50.0 * rng.normal(size=250)
        det.update(Batch.from_arrays(x, ts=s + np.arange(250.0)))
    assert not det.drift_detected
    seen = 0
    while seen < 300 and not det.drift_detected:
        x = rows(rng, 50)
        x[:, 11] = 1000.0 + 50.0 * rng.normal(size=50)
        hit = rng.random(50) < 0.5
        x[hit, :11] += 0.5 * sd[:11] * rng.normal(size=(int(hit.sum()), 11))
        det.update(Batch.from_arrays(x, ts=5000 + seen + np.arange(50.0)))
        seen += 50
    assert det.drift_detected


def test_a_basis_is_aligned_by_name_or_refused() -> None:
    import dataclasses

    ref_rows, train = rows(np.random.default_rng(31), 60), rows(np.random.default_rng(32), 1000)
    names = [f"f{i}" for i in range(12)]
    basis = fit_pca_basis(train[:, ::-1], names[::-1])
    ref = Reference.from_arrays(ref_rows)
    aligned = dataclasses.replace(ref, pca_basis=basis)
    assert aligned.pca_basis.names == tuple(names)
    np.testing.assert_allclose(aligned.pca_basis.mean, train.mean(axis=0))
    with pytest.raises(ValueError, match="pca_basis was fitted on the features f11, f10.*Fix"):
        dataclasses.replace(ref, numeric=ref_rows[:, :4], numeric_names=tuple(names[:4]), pca_basis=basis)


def test_replacing_the_basis_drops_a_profile_derived_without_it() -> None:
    """A profile cached before the basis was set would keep the reference's own PCA while the
    fingerprint said otherwise (a restart, deriving it afresh, then restored states calibrated on
    another PCA). A profile read from a file carries its PCA: a basis on it is refused."""
    import dataclasses

    ref_rows, train = rows(np.random.default_rng(33), 80), rows(np.random.default_rng(34), 1000)
    ref = Reference.from_arrays(ref_rows)
    own = profile_of(ref).pca
    fitted = dataclasses.replace(ref, pca_basis=fit_pca_basis(train, [f"f{i}" for i in range(12)]))
    pca = profile_of(fitted).pca
    assert not np.array_equal(pca.components, own.components)
    np.testing.assert_array_equal(pca.components, fitted.pca_basis.components)
    saved = Profile.from_arrays(ref_rows, numeric_names=[f"f{i}" for i in range(12)]).to_reference()
    with pytest.raises(ValueError, match="saved profile.*--pca-fit"):
        dataclasses.replace(saved, pca_basis=fitted.pca_basis)


def test_the_fingerprint_names_the_fit_rows_not_the_float_results() -> None:
    """Eigenvectors may differ in their last bits on another CPU; the fingerprint hashes the rows
    the basis was fitted on, so a restart elsewhere still recognises its reference."""
    import dataclasses

    ref_rows, train = rows(np.random.default_rng(35), 60), rows(np.random.default_rng(36), 1000)
    fitted = Reference.from_arrays(ref_rows, pca_fit=train)
    other_bits = dataclasses.replace(fitted.pca_basis, components=fitted.pca_basis.components * (1 + 1e-15))
    again = Reference.from_arrays(ref_rows)
    again.pca_basis = other_bits
    assert reference_fingerprint(again) == reference_fingerprint(fitted)
    other_rows = Reference.from_arrays(ref_rows, pca_fit=train[:-1])
    assert reference_fingerprint(other_rows) != reference_fingerprint(fitted)


def test_integer_column_labels_are_matched_as_the_reference_names_them() -> None:
    import pandas as pd

    ref_rows, train = rows(np.random.default_rng(37), 60), rows(np.random.default_rng(38), 500)
    ref = Reference.from_arrays(pd.DataFrame(ref_rows), pca_fit=pd.DataFrame(train))
    assert ref.numeric_names == tuple(str(i) for i in range(12))
    np.testing.assert_allclose(profile_of(ref).pca.mean, train.mean(axis=0))
