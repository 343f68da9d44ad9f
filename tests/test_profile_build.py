"""Reference profiles: built from arrays and files, saved without pickle, loaded back exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from monitor.cli.reference import reference as reference_cli
from monitor.detectors.drift import FeatureDriftDetector
from monitor.profile import Profile, ProfileError, build_profile, load_reference, profile_of
from monitor.reference import Reference


def arrays(n: int = 2000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 4, n), rng.gamma(2.0, 1.0, n)])
    x[:40, 2] = np.nan
    x[7, 0] = np.inf
    cat = rng.choice(["a", "b", "c"], size=(n, 1)).astype(object)
    cat[:5, 0] = None
    return {"numeric": x, "numeric_names": ["x", "k", "g"], "categorical": cat, "categorical_names": ["city"],
            "scores": rng.dirichlet([1, 1], size=n), "labels": rng.integers(0, 2, n)}


def test_profile_summarises_exactly() -> None:
    a = arrays()
    p = Profile.from_arrays(**a, n_bins=10)
    x = p.feature("x")
    assert x.n == 2000 and x.n_inf == 1 and x.n_missing == 0 and x.counts.sum() == 1999
    k = p.feature("k")
    assert k.n_distinct == 4 and k.edges.tolist() == [1.0, 2.0, 3.0]  # one bin per value: exact for ties
    assert p.feature("g").n_missing == 40
    c = p.feature("city")
    assert set(c.categories) == {"a", "b", "c"} and c.n_missing == 5 and c.counts.sum() == 1995
    assert p.outputs is not None and p.outputs.predicted_counts.sum() == 2000
    assert p.label_counts is not None and p.label_counts.sum() == 2000
    assert p.pca is not None and p.pca.components.shape[1] == 3
    coarse = x.coarsen(4)
    assert coarse.counts.sum() == x.counts.sum() and coarse.counts.size <= 4


def test_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    p = Profile.from_arrays(**arrays())
    path = p.save(tmp_path / "ref.npz")
    with np.load(path, allow_pickle=False) as z:  # loadable without pickle
        assert "meta.json" in z.files
    q = Profile.load(path)
    for a, b in zip(p.numeric, q.numeric):
        assert a.name == b.name and np.array_equal(a.edges, b.edges) and np.array_equal(a.counts, b.counts)
        assert a.mean == pytest.approx(b.mean) and a.repeat_prob == pytest.approx(b.repeat_prob)
    assert q.categorical[0].categories == p.categorical[0].categories
    assert np.allclose(q.pca.components, p.pca.components)
    assert q.sample is not None and q.sample.categorical[:, 0].tolist().count(None) == p.sample.categorical[:, 0].tolist().count(None)
    ref = load_reference(path)
    assert profile_of(ref) is ref.profile and ref.numeric.shape[1] == 3
    det = FeatureDriftDetector(ref)  # detectors calibrate from a loaded profile
    assert det.channel_names == ("x", "k", "g", "city")


def test_untrusted_and_bad_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "evil.npz"
    np.savez(bad, **{"meta.json": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(ProfileError):
        Profile.load(bad)
    data = tmp_path / "data.npz"
    np.savez(data, X=np.zeros((10, 2)))
    with pytest.raises(ProfileError, match="data, not a profile"):
        Profile.load(data)
    newer = Profile.from_arrays(**arrays(200))
    newer.version = 99
    path = newer.save(tmp_path / "newer.npz")
    with pytest.raises(ProfileError, match="newer"):
        Profile.load(path)


def write_csv(path: Path, n: int = 3000, bad_row: int | None = None) -> None:
    rng = np.random.default_rng(1)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "age", "income", "city", "p_no", "p_yes", "y"])
        for i in range(n):
            age = "" if i % 100 == 0 else str(int(rng.integers(18, 90)))
            inc = "abc" if i == bad_row else f"{rng.gamma(2, 1000):.2f}"
            w.writerow([i, age, inc, rng.choice(["paris", "lyon"]), 0.4, 0.6, i % 2])


def test_csv_build_roles_and_sampling(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    write_csv(path)
    p = build_profile(path, output_columns=["p_no", "p_yes"], label_column="y", exclude=["id"], progress=False)
    assert p.numeric_names == ("age", "income") and p.categorical_names == ("city",)
    assert p.feature("age").n_missing == 30
    assert p.outputs.classes == ("p_no", "p_yes") and p.label_counts.tolist() == [1500, 1500]
    small = build_profile(path, exclude=["id"], max_rows=500, progress=False)
    assert small.n_rows == 3000 and small.feature("age").n_missing == 30  # exact counts
    assert small.feature("age").counts.sum() <= 500  # quantiles from the sample
    write_csv(tmp_path / "bad.csv", n=50, bad_row=17)
    with pytest.raises(ProfileError, match=r"column 'income', row 18"):
        build_profile(tmp_path / "bad.csv", categorical=["city"], progress=False)


def test_npy_npz_and_cli(tmp_path: Path) -> None:
    x = np.random.default_rng(2).normal(size=(1500, 4))
    np.save(tmp_path / "x.npy", x)
    p = build_profile(tmp_path / "x.npy", progress=False)
    assert p.numeric_names == ("f0", "f1", "f2", "f3") and p.n_rows == 1500
    np.savez(tmp_path / "d.npz", X=x, feature_names=np.array(["a", "b", "c", "d"]), scores=np.abs(x[:, 0]))
    p = build_profile(tmp_path / "d.npz", progress=False)
    assert p.numeric_names == ("a", "b", "c", "d") and p.outputs.value is not None
    runner = CliRunner()
    csv_path = tmp_path / "ref.csv"
    write_csv(csv_path)
    out = tmp_path / "prof.npz"
    res = runner.invoke(reference_cli, ["build", str(csv_path), "-o", str(out), "--exclude", "id",
                                        "--output-columns", "p_no,p_yes", "--label-column", "y"])
    assert res.exit_code == 0, res.output
    assert "3000 rows" in res.output and out.exists()
    res = runner.invoke(reference_cli, ["show", str(out)])
    assert res.exit_code == 0 and "income" in res.output and "city" in res.output
    res = runner.invoke(reference_cli, ["build", str(csv_path), "-o", str(out), "--label-column", "nope"])
    assert res.exit_code != 0 and "not in the header" in res.output


def test_profile_of_builds_once_per_reference() -> None:
    ref = Reference.from_arrays(np.random.default_rng(3).normal(size=(500, 2)))
    assert profile_of(ref) is profile_of(ref)
    with pytest.raises(ProfileError, match="does not exist"):
        build_profile("/nonexistent/file.csv", progress=False)


def test_unreadable_profile_files_do_not_advise_allow_pickle(tmp_path) -> None:
    """numpy refuses a pickled or non-array file with advice to pass allow_pickle=True; a profile
    from an untrusted path must never be loaded so, and the error says why instead."""
    from monitor.profile import Profile, ProfileError

    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"garbage, not a zip")
    pickled = tmp_path / "o.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
    for path in (garbage, pickled):
        with pytest.raises(ProfileError) as info:
            Profile.load(path)
        assert "allow_pickle" not in str(info.value) and "monitor reference build" in str(info.value)
