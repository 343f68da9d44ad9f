"""Review: ``monitor reference build`` on messy reference files refuses them with a clear error
naming the field and the fix (a ClickException, exit code 1), never a numpy/csv traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from monitor.cli import main


def build(tmp_path: Path, data: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["reference", "build", str(data), "-o", str(tmp_path / "p.npz"), "--quiet", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(("arrays", "needle"), [
    ({"X": np.zeros((5, 2)), "categorical": np.array([["a"], ["b"], ["a"], ["c"], ["a"]], dtype=object)},
     "'categorical' cannot be read without pickle"),
    ({"X": np.zeros((5, 2)), "feature_names": np.array(["a"])}, "'feature_names' has 1 names for the 2 columns"),
    ({"X": np.zeros((5, 2)), "feature_names": np.array(["a", "b", "c"])}, "'feature_names' has 3 names"),
    ({"X": np.zeros((5, 2)), "categorical": np.array(["a", "b", "a", "c", "a"])}, "'categorical' must be 2-D with 5 rows"),
    ({"X": np.zeros((5, 2)), "categorical": np.array([["a"], ["b"]])}, "'categorical' must be 2-D with 5 rows"),
    ({"X": np.zeros((5, 2)), "categorical": np.array([["a"]] * 5), "categorical_names": np.array(["u", "v"])},
     "'categorical_names' has 2 names for the 1 columns"),
    ({"X": np.zeros((5, 2)), "scores": np.zeros((3, 2))}, "'scores' must have 5 rows"),
    ({"X": np.zeros((5, 2)), "labels": np.zeros(4, dtype=int)}, "'labels' must have 5 rows"),
    ({"X": np.array([["a", "b"]])}, "'X' must hold numbers"),
])
def test_npz_with_wrong_keys_or_shapes_is_refused_naming_the_key(tmp_path: Path, arrays: dict, needle: str) -> None:
    code, out = build(tmp_path, npz(tmp_path / "ref.npz", **arrays))
    assert code == 1 and needle in out, out


def test_npy_of_objects_or_garbage_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    code, out = build(tmp_path, tmp_path / "obj.npy")
    assert code == 1 and "numeric .npy" in out, out
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    code, out = build(tmp_path, tmp_path / "junk.npy")
    assert code == 1 and "junk.npy" in out, out
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    code, out = build(tmp_path, tmp_path / "s.npy")
    assert code == 1 and "2-D numeric array" in out, out


@pytest.mark.parametrize(("content", "needle"), [
    (b"", "must be a header"),
    (b"a,a,b\n1,2,3\n", "'a' appears twice"),
    (b"a,b,\n1,2,\n", "column 3 has no name"),
    (b"a,b\n1,caf\xe9\n", "data row 1: not UTF-8"),
    (b"\xe9,b\n1,2\n", "the header: not UTF-8"),
])
def test_csv_header_and_encoding_problems_are_refused(tmp_path: Path, content: bytes, needle: str) -> None:
    (tmp_path / "ref.csv").write_bytes(content)
    code, out = build(tmp_path, tmp_path / "ref.csv")
    assert code == 1 and needle in out, out


def test_csv_label_column_with_infinite_value_builds(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("a,y\n1,inf\n2,1\n3,0\n")
    code, out = build(tmp_path, tmp_path / "ref.csv", "--label-column", "y")
    assert code == 0 and "3 rows" in out, out


def test_csv_with_bom_quoted_commas_and_missing_values_builds(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_bytes('\ufeffa,b,c\n1,"x,y",\n2,"z",3\n,NA,4\n'.encode())
    code, out = build(tmp_path, tmp_path / "ref.csv")
    assert code == 0, out
    from monitor.profile import Profile

    prof = Profile.load(tmp_path / "p.npz")
    assert prof.numeric_names == ("a", "c") and prof.categorical_names == ("b",)
    assert set(prof.feature("b").categories) == {"x,y", "z"}  # type: ignore[union-attr]
    assert prof.feature("a").n_missing == 1 and prof.feature("c").n_missing == 1  # type: ignore[union-attr]
