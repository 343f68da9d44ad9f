"""Parquet reference data reads as the same data written to CSV reads.

pyarrow is a dev extra so that CI runs the Parquet reader (it was skipped before, no other test
read Parquet). The frame below holds every kind of column a reference has: floats with gaps,
nullable integers, text with empty and "NA" cells, a pandas categorical, outputs and labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

from monitor.cli.reference import reference as reference_cli  # noqa: E402
from monitor.profile import Profile, ProfileError, build_profile, load_reference, read_table  # noqa: E402
from monitor.reference import reference_fingerprint  # noqa: E402

CLASSES = ["no", "yes"]


def _frame(n: int = 600, seed: int = 3) -> "pd.DataFrame":
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    x[rng.random(n) < 0.05] = np.nan
    k = pd.array(rng.integers(0, 5, n), dtype="Int64")
    k[rng.random(n) < 0.05] = pd.NA
    city = rng.choice(["Oslo", "NA", "Lima", ""], size=n).astype(object)  # "NA" a category, "" missing
    city[rng.random(n) < 0.05] = None
    p1 = rng.beta(2.0, 2.0, n)
    return pd.DataFrame({"x": x, "k": k, "city": city, "plan": pd.Categorical(rng.choice(["a", "b"], n)),
                         "no": 1.0 - p1, "yes": p1, "y": np.where(rng.random(n) < p1, "yes", "no")})


def _profiles(tmp_path: Path, **kw: object) -> tuple[Profile, Profile]:
    frame = _frame()
    frame.to_csv(tmp_path / "ref.csv", index=False)
    frame.to_parquet(tmp_path / "ref.parquet", index=False)
    args = dict(output_columns=["no", "yes"], label_column="y", classes=CLASSES, progress=False, **kw)
    return build_profile(tmp_path / "ref.csv", **args), build_profile(tmp_path / "ref.parquet", **args)


def test_parquet_and_csv_profiles_of_one_frame_agree(tmp_path: Path) -> None:
    from_csv, from_parquet = _profiles(tmp_path)
    assert from_parquet.numeric_names == from_csv.numeric_names == ("x", "k")
    assert from_parquet.categorical_names == from_csv.categorical_names == ("city", "plan")
    for name in ("x", "k"):
        a, b = from_csv.feature(name), from_parquet.feature(name)
        assert (a.n, a.n_missing) == (b.n, b.n_missing) and a.n_missing > 0
        np.testing.assert_array_equal(a.edges, b.edges)
        np.testing.assert_array_equal(a.counts, b.counts)
    for name in ("city", "plan"):
        a, b = from_csv.feature(name), from_parquet.feature(name)
        assert a.categories == b.categories and a.n_missing == b.n_missing
        np.testing.assert_array_equal(a.counts, b.counts)
    city = from_parquet.feature("city")
    assert "NA" in city.categories and "" not in city.categories and city.n_missing > 30  # gaps and nulls missing
    assert from_parquet.outputs is not None and from_csv.outputs is not None
    np.testing.assert_array_equal(from_parquet.outputs.predicted_counts, from_csv.outputs.predicted_counts)
    # the same reference for the agent: a restart on the other file keeps the detectors' states
    assert reference_fingerprint(from_parquet.to_reference()) == reference_fingerprint(from_csv.to_reference())


def test_parquet_read_in_chunks_reads_every_row_once(tmp_path: Path) -> None:
    frame = _frame(n=257)
    frame.to_parquet(tmp_path / "ref.parquet", index=False)
    whole = list(read_table(tmp_path / "ref.parquet", output_columns=["no", "yes"], label_column="y", progress=False)[2])
    small = list(read_table(tmp_path / "ref.parquet", output_columns=["no", "yes"], label_column="y", chunk_rows=50,
                            progress=False)[2])
    assert len(whole) == 1 and len(small) == 6
    np.testing.assert_array_equal(np.concatenate([t.numeric for t in small]), whole[0].numeric)
    np.testing.assert_array_equal(np.concatenate([t.categorical for t in small]), whole[0].categorical)
    np.testing.assert_array_equal(np.concatenate([t.scores for t in small]), whole[0].scores)
    assert np.concatenate([t.labels for t in small]).tolist() == frame["y"].tolist()


def test_parquet_text_read_as_numbers_names_column_row_and_fix(tmp_path: Path) -> None:
    """A text column left numeric (``categorical`` names the others) is read value by value, as
    a CSV field: numbers written as text are numbers, anything else is refused with its row
    (numpy's bare "could not convert string to float" before, with no column named)."""
    frame = pd.DataFrame({"code": ["1.5", "2", "", None, "7"] * 20, "city": ["a", "b", "c", "d", "e"] * 20})
    frame.to_parquet(tmp_path / "ok.parquet", index=False)
    p = build_profile(tmp_path / "ok.parquet", categorical=["city"], progress=False)
    code = p.feature("code")
    assert p.numeric_names == ("code",) and code.n_missing == 40 and code.max == 7.0
    frame.loc[63, "code"] = "seven"
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(ProfileError, match=r"column 'code', row 64: 'seven' is not a number.*--categorical code"):
        list(read_table(tmp_path / "bad.parquet", categorical=["city"], chunk_rows=50, progress=False)[2])


def test_cli_builds_a_profile_from_parquet(tmp_path: Path) -> None:
    _frame().to_parquet(tmp_path / "ref.parquet", index=False)
    out = tmp_path / "ref.npz"
    res = CliRunner().invoke(reference_cli, ["build", str(tmp_path / "ref.parquet"), "-o", str(out), "--output-columns",
                                             "no,yes", "--label-column", "y", "--classes", "no,yes"])
    assert res.exit_code == 0, res.output
    ref = load_reference(out)
    assert ref.numeric_names == ("x", "k") and ref.categorical_names == ("city", "plan")
    assert ref.scores is not None and ref.scores.shape[1] == 2 and set(ref.labels.tolist()) == set(CLASSES)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_regression_targets_are_kept_whole_numbers_are_class_indices(tmp_path: Path, suffix: str) -> None:
    """A regression model's targets in a label column keep their values (a CSV reference cut them
    to integers, so the reference MAE RegressionErrorHigh compares with was measured against
    truncated targets); whole numbers are class indices; missing targets are NaN; text names."""
    from monitor.detectors.regression import RegressionDetector

    rng = np.random.default_rng(11)
    y = rng.normal(0.0, 0.4, 400)
    pred = y + rng.normal(0.0, 0.1, 400)
    frame = pd.DataFrame({"x": rng.normal(size=400), "pred": pred, "y": y, "k": rng.integers(0, 3, 400),
                          "name": rng.choice(["a", "b"], 400)})
    frame.loc[5, "y"] = np.nan
    path = tmp_path / f"ref.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
    ref = build_profile(path, output_columns=["pred"], label_column="y", exclude=["k", "name"], progress=False).to_reference()
    np.testing.assert_array_equal(ref.labels, frame["y"].to_numpy())  # NaN where the target is missing
    det = RegressionDetector(ref)
    truth = float(np.nanmean(np.abs(pred - frame["y"].to_numpy())))
    assert det._ref_mae == pytest.approx(truth, rel=1e-12)  # 0.084; targets cut to integers give 0.30
    codes = build_profile(path, output_columns=["pred"], label_column="k", exclude=["y", "name"], progress=False)
    assert codes.to_reference().labels.dtype == np.int64 and codes.label_counts is not None
    names = build_profile(path, output_columns=["pred"], label_column="name", exclude=["y", "k"], progress=False)
    assert names.to_reference().labels.dtype == object and set(names.to_reference().labels.tolist()) == {"a", "b"}


def test_parquet_durations_are_seconds_and_points_in_time_left_out(tmp_path: Path, caplog) -> None:
    """As a reference DataFrame and live inputs are read (tests/test_temporal_inputs.py): a
    duration column was a categorical of unique texts, a timestamp or date column one too."""
    import logging

    n = 100
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "ts": pd.date_range("2026-01-01", periods=n, freq="min"),
                          "day": pd.Series(pd.date_range("2026-01-01", periods=n, freq="D")).dt.date,
                          "wait": pd.to_timedelta(np.arange(n) * 1.5, unit="s")})
    frame.loc[3, "wait"] = pd.NaT
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        p = build_profile(tmp_path / "t.parquet", progress=False)
    assert p.numeric_names == ("x", "wait") and p.categorical_names == ()
    wait = p.feature("wait")
    assert wait.n_missing == 1 and wait.max == 148.5
    assert any("'ts', 'day'" in r.getMessage() and "Fix:" in r.getMessage() for r in caplog.records)
    named = build_profile(tmp_path / "t.parquet", categorical=["ts"], progress=False)  # named: kept, as text
    assert named.categorical_names == ("ts",) and named.numeric_names == ("x", "wait")
