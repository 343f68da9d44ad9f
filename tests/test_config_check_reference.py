"""``monitor config check`` and an ``.npz`` reference: raw data is read and checked as the agent's
start reads it, but no longer profiled (binning, PCA: the whole build the agent does at start), and
what is wrong is told by the :class:`ProfileError` raised, not guessed from the exception's text
(a raw array's wrong shape was said as "cannot be read (ProfileError: ...). Fix: build it with
'monitor reference build'", a truncated archive as a BadZipFile, a single array saved as .npz as a
TypeError about context managers: the agent's start failed with those two as well)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from monitor import profile
from monitor.cli import main
from monitor.profile import ProfileError, check_npz_reference, load_reference


def _check(tmp_path: Path, ref: Path) -> tuple[int, str]:
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"model: m\nreference:\n  path: {ref}\n")
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Broken .npz references and a phrase of the fix each must be told."""
    rng = np.random.default_rng(0)
    out: dict[str, tuple[Path, str]] = {}
    p = folder / "names.npz"
    np.savez(p, X=rng.normal(size=(30, 3)), feature_names=np.array(["a", "b"]))
    out["names"] = (p, "'feature_names' has 2 names for the 3 columns of 'X'")
    p = folder / "flat.npz"
    np.savez(p, X=rng.normal(size=30))
    out["flat"] = (p, "'X' must be 2-D (rows, features)")
    p = folder / "empty.npz"
    np.savez(p, X=np.empty((0, 3)))
    out["empty"] = (p, "no data rows")
    p = folder / "truncated.npz"
    np.savez(p, X=rng.normal(size=(30, 3)))
    p.write_bytes(p.read_bytes()[:100])
    out["truncated"] = (p, "build a profile with 'monitor reference build'")
    p = folder / "single.npz"
    with open(p, "wb") as f:
        np.save(f, rng.normal(size=(30, 3)))
    out["single"] = (p, "rename it .npy or save it with numpy.savez(X=...)")
    p = folder / "text.npz"
    p.write_text("not an archive")
    out["text"] = (p, "build a profile with 'monitor reference build'")
    return out


@pytest.mark.parametrize("case", ["names", "flat", "empty", "truncated", "single", "text"])
def test_a_broken_npz_reference_is_told_as_the_agent_start_tells_it(tmp_path: Path, case: str) -> None:
    ref, fix = _bad_files(tmp_path)[case]
    with pytest.raises(ProfileError) as loading:
        load_reference(ref)
    with pytest.raises(ProfileError) as checking:
        check_npz_reference(ref)
    assert str(checking.value) == str(loading.value) and fix in str(loading.value), str(loading.value)
    code, output = _check(tmp_path, ref)
    assert code == 1 and f"FAILED: {tmp_path / 'monitor.yaml'}: model 'm': reference.path: {loading.value}" in output, output
    assert "cannot be read (" not in output, output  # the error's own words, not a wrapper around them


def test_raw_npz_data_is_checked_without_building_a_profile(tmp_path: Path, monkeypatch) -> None:
    ref = tmp_path / "raw.npz"
    rng = np.random.default_rng(1)
    np.savez(ref, X=rng.normal(size=(200, 3)), feature_names=np.array(["a", "b", "c"]),
             categorical=np.array([["x"], ["y"]] * 100), categorical_names=np.array(["k"]))
    assert load_reference(ref).profile.n_rows == 200  # what the agent loads

    def no_build(*_: object, **__: object) -> None:
        raise AssertionError("config check profiled the reference")

    monkeypatch.setattr(profile, "build_profile", no_build)
    monkeypatch.setattr(profile, "_fit_pca", no_build)
    code, output = _check(tmp_path, ref)
    assert code == 0 and "SUCCESS" in output, output


def test_a_saved_profile_is_loaded_by_the_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    saved = profile.Profile.from_arrays(rng.normal(size=(100, 3)), numeric_names=["a", "b", "c"]).save(tmp_path / "p.npz")
    assert _check(tmp_path, saved)[0] == 0
    raw = dict(np.load(saved, allow_pickle=False))
    raw["meta.json"] = np.frombuffer(b'{"format": "something else"}', dtype=np.uint8)
    np.savez(tmp_path / "other.npz", **raw)
    code, output = _check(tmp_path, tmp_path / "other.npz")
    assert code == 1 and "not a model-monitor profile; build one with 'monitor reference build'" in output, output
