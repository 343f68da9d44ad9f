"""Whole-number floats as categorical values: 7.0 is the category "7" on every path.

A pandas column of integer codes becomes float64 as soon as one value is missing, so a decorated
predict (or a JSON client) sends 7.0 where the reference, read from ints or a CSV, holds "7". Read
as the text "7.0", every such row was an unseen category and the data-quality and drift alerts
fired on unchanged traffic. These tests send the same codes down each path (decorator with a
DataFrame, numpy rows, dict rows, HTTP JSON events) against references built from ints, a CSV and
an .npz, and load a profile saved before the fix.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor.core import Monitor
from monitor.cell_values import categorical_text, category_text, number_as_text
from monitor.profile import PROFILE_VERSION, CategoricalProfile, Profile, build_profile, canonical_categories
from monitor.reference import Reference, reference_state
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

T0 = 1_700_000_000.0
MIN_ROWS = 100  # the data-quality detector's ratios are absent below its min_rows
CODES = np.array([3, 7, 11, 42])
CONFIG = {"features": [{"name": "x"}, {"name": "code", "kind": "categorical"}], "detectors": [{"kind": "data_quality"}],
          "output": {"kind": "probabilities", "classes": ["a", "b"]}}


def _codes(seed: int, n: int, missing: float = 0.0) -> np.ndarray:
    """Integer codes drawn from CODES, as float64 with NaN gaps when ``missing`` (pandas' column)."""
    rng = np.random.default_rng(seed)
    codes = rng.choice(CODES, size=n).astype(np.float64)
    codes[rng.random(n) < missing] = np.nan
    return codes


def _reference_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "code": rng.choice(CODES, size=n)})  # int64 codes


def _value(mon: Monitor, name: str, **labels: str) -> float | None:
    for line in mon.metrics_text().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line.rpartition(" ")[0] for k, v in labels.items()):
            return float(line.rpartition(" ")[2])
    return None


def _monitor(reference: Reference) -> Monitor:
    return Monitor(model="cats", config=CONFIG, reference=reference, registry=CollectorRegistry(), live=False,
                   start_worker=False)


# -- the canonical text ----------------------------------------------------------------------------
def test_numbers_read_as_one_text_whatever_their_type() -> None:
    for seven in (7, 7.0, np.int64(7), np.float64(7.0), np.float32(7.0), np.int32(7)):
        assert category_text(seven) == category_text(7) == "7"
    assert category_text(-0.0) == category_text(0) == "0"
    assert category_text(7.5) == "7.5" and category_text(np.float64(7.5)) == "7.5"
    # booleans were "True"/"False" before and stay apart from 1 and 0
    assert category_text(True) == "True" and category_text(np.bool_(False)) == "False"
    assert category_text(True) != category_text(1.0)
    for gap in (None, float("nan"), np.float64("nan"), pd.NA, pd.NaT):
        assert category_text(gap) is None
    assert category_text(float("inf")) == "inf"  # not a whole number: its own text
    # text written from a whole float is that integer on every path (a CSV's "2.0" meets a live
    # "2.0" string, a version or a code alike); other text is kept as sent
    assert category_text("7.0") == "7" and category_text("07") == "07" and category_text("2.10") == "2.10"
    assert category_text(b"eu") == "eu"  # bytes decoded, as the array path read them already


def test_text_written_from_a_float_reads_as_the_integer() -> None:
    for written, code in (("7.0", "7"), ("-3.00", "-3"), ("0.0", "0"), ("-0.0", "0")):
        assert number_as_text(written) == code == category_text(written)
    for kept in ("7", "7.5", "07.0", "1e+16", "+7.0", "7.", "70", "abc"):
        assert number_as_text(kept) == kept == category_text(kept)
    # empty text is kept as text, and is a missing value (tests/test_category_text_paths.py)
    assert number_as_text("") == "" and category_text("") is None
    cells = np.array([["7.0", 7.0], [None, np.nan]], dtype=object)
    assert categorical_text(cells).tolist() == [["7", "7"], [None, None]]
    text_only = np.array([["7.0", "70"], [None, "eu"]], dtype=object)  # the all-text fast path
    assert categorical_text(text_only).tolist() == [["7", "70"], [None, "eu"]]


# -- decorator / in-code path ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["dataframe", "numpy", "dicts"])
def test_float_codes_live_are_the_reference_integer_codes(shape: str) -> None:
    """Reference from an int64 column; live codes as float64 with 10% gaps, sent as a DataFrame,
    as numpy rows and as dict rows: no row is an unseen category, the gaps are missing."""
    ref = Reference.from_arrays(_reference_frame(), categorical_names=["code"])
    assert set(ref.categorical[:, 0]) == {str(c) for c in CODES}
    mon = _monitor(ref)
    n = 600
    codes = _codes(1, n, missing=0.1)
    x = np.random.default_rng(2).normal(size=n)
    for i in range(0, n, 20):
        part = slice(i, i + 20)
        if shape == "dataframe":
            rows = pd.DataFrame({"x": x[part], "code": codes[part]})
        elif shape == "numpy":
            rows = np.column_stack([x[part], codes[part]])
        else:
            rows = [{"x": a, "code": b} for a, b in zip(x[part].tolist(), codes[part].tolist())]
        mon.observe(rows, np.tile([0.4, 0.6], (20, 1)), timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="missing") == pytest.approx(
        np.isnan(codes).mean())
    mon.close()


def test_reference_of_float_codes_meets_live_integer_codes() -> None:
    """The other way round: a reference DataFrame whose code column is float64 with gaps."""
    frame = _reference_frame()
    frame["code"] = frame["code"].astype(np.float64)
    frame.loc[frame.index[::9], "code"] = np.nan
    ref = Reference.from_arrays(frame, categorical_names=["code"])
    assert set(ref.categorical[:, 0]) == {str(c) for c in CODES} | {None}
    mon = _monitor(ref)
    for i in range(MIN_ROWS):
        mon.observe({"x": 0.1, "code": int(CODES[i % 4])}, [0.4, 0.6], timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    mon.close()


def test_a_half_code_stays_unseen() -> None:
    """7.5 is no integer code: it stays "7.5", an unseen category (what the alert is for)."""
    mon = _monitor(Reference.from_arrays(_reference_frame(), categorical_names=["code"]))
    for i in range(MIN_ROWS):
        mon.observe({"x": 0.0, "code": 7.5 if i % 4 == 0 else 7.0}, [0.4, 0.6], timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == pytest.approx(0.25)
    mon.close()


# -- reference files -------------------------------------------------------------------------------
def test_csv_and_npz_references_hold_the_integer_codes(tmp_path: Path) -> None:
    """``monitor reference build`` from a CSV of ints, a CSV written by pandas from a float column
    ("7.0", "" for a gap) and an .npz of float codes: the same categories, "7" not "7.0"."""
    frame = _reference_frame()
    frame.to_csv(tmp_path / "ints.csv", index=False)
    floats = frame.assign(code=frame["code"].astype(np.float64))
    floats.loc[floats.index[::9], "code"] = np.nan
    floats.to_csv(tmp_path / "floats.csv", index=False)
    assert "7.0" in (tmp_path / "floats.csv").read_text()
    np.savez(tmp_path / "floats.npz", X=floats[["x"]].to_numpy(), feature_names=np.array(["x"]),
             categorical=floats[["code"]].to_numpy(), categorical_names=np.array(["code"]))
    expected = {str(c) for c in CODES}
    for name in ("ints.csv", "floats.csv", "floats.npz"):
        prof = build_profile(tmp_path / name, categorical=["code"] if name.endswith(".csv") else None, progress=False)
        assert set(prof.feature("code").categories) == expected, name
        assert set(prof.sample.categorical[:, 0]) <= expected | {None}, name
    assert build_profile(tmp_path / "floats.csv", categorical=["code"], progress=False).feature("code").n_missing == \
        len(floats.index[::9])


# -- HTTP intake -----------------------------------------------------------------------------------
def test_json_events_with_float_codes_against_a_csv_reference(tmp_path: Path) -> None:
    """JSON numbers 7.0 (json.dumps of a float column) and 7, posted to /v1/events, against a
    profile built from a CSV of integer codes: every row a seen category."""
    _reference_frame().to_csv(tmp_path / "ref.csv", index=False)
    build_profile(tmp_path / "ref.csv", categorical=["code"], progress=False).save(tmp_path / "ref.npz")
    raw = {"model": "cats", **CONFIG, "reference": {"path": str(tmp_path / "ref.npz")}}
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(live=False))
    try:
        codes = _codes(3, MIN_ROWS)
        body = [{"inputs": {"x": 0.5, "code": c if i % 2 else int(c)}, "outputs": [0.3, 0.7], "timestamp": T0 + i}
                for i, c in enumerate(codes.tolist())]
        assert '"code": 7.0' in json.dumps(body) or '"code": 3.0' in json.dumps(body)
        assert http("POST", s.url + "/v1/events", body).status in (200, 202)
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_data_invalid_ratio", model="cats", feature="code", reason="unseen_category") == 0.0
        assert sample(text, "monitor_data_invalid_ratio", model="cats", feature="code", reason="missing") == 0.0
    finally:
        s.close()


# -- profiles saved before the fix -----------------------------------------------------------------
def _old_profile(path: Path) -> Profile:
    """A profile as version 1 wrote it from a float column of codes: categories "7.0", "3.0", and
    both "7" and "7.0" (one chunk of ints, one of floats), one singleton each of "11.0" and "11"."""
    cells = np.array([["7.0"]] * 5 + [["7"]] * 3 + [["3.0"]] * 2 + [["11.0"], ["11"]], dtype=object)
    fresh = Profile.from_arrays(np.zeros((12, 1)), numeric_names=["x"], categorical=cells, categorical_names=["code"])
    # a build now reads "7.0" as "7": the categories and sample as version 1 kept them, by hand
    code = CategoricalProfile("code", ("7.0", "7", "3.0", "11", "11.0"), np.array([5.0, 3.0, 2.0, 1.0, 1.0]), 12, 0, 2,
                              n_beyond=2)
    sample = dataclasses.replace(fresh.sample, categorical=cells.copy())
    old = Profile(fresh.numeric, (code,), fresh.n_rows, sample=sample, version=1)
    old.save(path)
    return old


def test_an_old_profile_reads_with_its_categories_merged(tmp_path: Path) -> None:
    saved = _old_profile(tmp_path / "old.npz")
    assert json.loads(np.load(tmp_path / "old.npz")["meta.json"].tobytes())["version"] == 1 < PROFILE_VERSION
    loaded = Profile.load(tmp_path / "old.npz")
    code = loaded.feature("code")
    before = saved.feature("code")
    assert code.categories == ("7", "11", "3")  # most frequent first, ties by name, as a build sorts them
    assert code.counts.tolist() == [8.0, 2.0, 2.0] and code.counts.sum() == before.counts.sum()
    assert before.n_singletons == 2 and code.n_singletons == 0 and code.n_beyond == 0
    assert (code.n, code.n_missing) == (before.n, before.n_missing)
    assert set(loaded.sample.categorical[:, 0]) == {"7", "3", "11"}
    # live 7.0 and 7 are both the reference's most frequent category
    mon = _monitor(loaded.to_reference())
    for i in range(MIN_ROWS):
        mon.observe({"x": 0.0, "code": 7.0 if i % 2 else 7}, [0.4, 0.6], timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    mon.close()


def test_a_current_profile_holds_canonical_categories_and_loads_them_as_saved(tmp_path: Path) -> None:
    """Text "7.0" is the category "7" when a profile is built (as live text "7.0" reads), and a
    version-2 profile is loaded as saved (canonical already: nothing to merge)."""
    prof = Profile.from_arrays(np.zeros((4, 1)), categorical=np.array([["7.0"], ["7"], ["7"], ["a"]], dtype=object),
                               categorical_names=["code"])
    assert prof.version == PROFILE_VERSION
    assert dict(zip(prof.feature("code").categories, prof.feature("code").counts.tolist())) == {"7": 3.0, "a": 1.0}
    loaded = Profile.load(prof.save(tmp_path / "new.npz"))
    assert loaded.feature("code").categories == ("7", "a")
    unchanged = CategoricalProfile("code", ("7", "a"), np.array([3.0, 1.0]), 4, 0, 1)
    assert canonical_categories(unchanged) is unchanged


def test_a_checkpointed_old_profile_is_adopted_with_canonical_categories(tmp_path: Path) -> None:
    """A checkpoint holding a version-1 profile (its file gone): adopted with "7", and the
    detectors' states, counted on "7.0", set aside."""
    old = _old_profile(tmp_path / "old.npz")
    ref = old.to_reference()
    mon = Monitor(model="cats", config=CONFIG, registry=CollectorRegistry(), live=False, start_worker=False)
    state = {**_monitor(ref).state_dict(), "reference": reference_state(ref)}
    mon.load_state_dict(state)
    assert mon.restore_report.reference == "adopted"
    assert mon.restore_report.set_aside_reason == "reference_changed"
    assert mon.reference.profile.feature("code").categories == ("7", "11", "3")
    for i in range(MIN_ROWS):
        mon.observe({"x": 0.0, "code": 7.0}, [0.4, 0.6], timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    mon.close()


def test_the_format_version_leaves_the_fingerprint_as_it_was(tmp_path: Path) -> None:
    """A profile whose categories needed nothing has the fingerprint it had before version 2,
    saved as version 1 or rebuilt now: a checkpoint written before the upgrade keeps its detector
    states (a raw reference.path is profiled again at every start)."""
    import dataclasses

    from monitor.reference import reference_fingerprint

    prof = Profile.from_arrays(np.arange(8.0)[:, None], categorical=np.array([["a"], ["b"]] * 4, dtype=object),
                               categorical_names=["city"])
    old = dataclasses.replace(prof, version=1)
    new_file, old_file = Profile.load(prof.save(tmp_path / "new.npz")), Profile.load(old.save(tmp_path / "old.npz"))
    assert (new_file.version, old_file.version) == (PROFILE_VERSION, 1)
    assert reference_fingerprint(new_file.to_reference()) == reference_fingerprint(old_file.to_reference())
    assert reference_fingerprint(prof.to_reference()) == reference_fingerprint(old.to_reference())
