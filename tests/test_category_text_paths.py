"""One text per value on every path, live and in the reference (a review's three findings).

A categorical value (or a request id) is compared by its text; the same value read as different
text on two paths is an unseen category, a missing value or a failed label join on unchanged data:

1. a float32 value (1.1) read "1.1" as a numpy scalar (dict rows) but "1.100000023841858" once
   boxed to a Python float (a DataFrame's rows, an array's cells, a float32 column of a reference
   frame or file, JSON): one float now reads as float32's shortest text whenever float32 holds
   it exactly, whichever way it came;
2. an integer at or above 2**53 read through a float (a pandas column of int codes with a gap)
   is that float, not the integer: the same float must read alike on every path (a float32
   one did not), and nullable ``Int64`` columns keep such codes whole;
3. a CSV reference read "NA", "nan", "null", "None", "?" and "" as missing while live strings
   were categories: now empty text is missing on both sides and every other text a category.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor.batch import Batch
from monitor.core import Monitor
from monitor.events import request_id_text
from monitor.cell_values import categorical_text, category_text
from monitor.profile import PROFILE_VERSION, CategoricalProfile, Profile, build_profile
from monitor.reference import Reference, reference_state
from tests.test_categorical_whole_numbers import CONFIG, MIN_ROWS, T0, _monitor, _value

#: float32 codes that are no integers (their float64 text is long) and one that is
F32_CODES = np.array([1.1, 2.7, 0.3, 5.0], dtype=np.float32)


def _frame(codes: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"x": np.random.default_rng(0).normal(size=len(codes)), "code": codes})


def _send_every_way(mon: Monitor, codes: np.ndarray) -> None:
    """``codes`` (a typed array, NaN for a gap) sent in four shapes, a quarter each: a DataFrame
    (its rows box float32 to Python floats), numpy object rows (numpy scalars), dict rows of
    numpy scalars, and JSON numbers (a client's float32 written as float64)."""
    parts = np.array_split(np.arange(len(codes)), 4)
    for shape, idx in zip(("frame", "numpy", "dicts", "json"), parts):
        for k, chunk in enumerate(np.array_split(idx, max(1, len(idx) // 20))):
            part = codes[chunk]
            x = np.zeros(len(chunk))
            if shape == "frame":
                rows = pd.DataFrame({"x": x, "code": part})
            elif shape == "numpy":
                rows = np.empty((len(chunk), 2), dtype=object)
                rows[:, 0], rows[:, 1] = x, list(part)
            elif shape == "dicts":
                rows = [{"x": 0.0, "code": v} for v in part]
            else:
                rows = json.loads(json.dumps([{"x": 0.0, "code": None if v != v else float(v)} for v in part]))
            mon.observe(rows, np.tile([0.4, 0.6], (len(chunk), 1)), timestamp=T0 + chunk[0] + k)
    mon.flush()


# -- 1. float32 --------------------------------------------------------------------------------
def test_a_float32_reads_as_its_shortest_text_boxed_or_not() -> None:
    one = np.float32(1.1)
    boxed = float(one)  # what DataFrame.to_dict, ndarray.tolist / astype(object), pyarrow and JSON give
    assert repr(boxed) != str(one)  # the premise: float64's text of the float32 value is longer
    assert category_text(one) == category_text(boxed) == str(one)
    assert categorical_text(np.array([[1.1]], dtype=np.float32)).tolist() == [[str(one)]]
    assert request_id_text(one) == request_id_text(boxed) == str(one)
    # text written from either (pandas writes a float32 column as numpy's text, a float64 one as repr)
    assert category_text(str(one)) == category_text(repr(boxed)) == str(one)
    # float64 values that float32 does not hold keep float64's shortest text; other text is as sent
    for f in (1.1, 0.1 + 0.2, 7.5, float("inf")):
        assert category_text(f) == category_text(np.float64(f)) == repr(f)
    for kept in ("1.10", "01.1", "1.1000000238418580", "v1.100000023841858"):
        assert category_text(kept) == kept
    # a float holding a small whole number is that integer, float32 or not (request ids alike)
    assert category_text(np.float32(17.0)) == request_id_text(np.float32(17.0)) == request_id_text(17) == "17"


def _parquet(frame: pd.DataFrame, path: Path) -> Path:
    pytest.importorskip("pyarrow")
    frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("source", ["frame", "csv_float32", "csv_float64", "npz", "parquet"])
def test_float32_codes_live_meet_every_reference(source: str, tmp_path: Path) -> None:
    """float32 codes with gaps: a reference from a DataFrame, from a CSV pandas wrote from the
    float32 column (numpy's text, "1.1") or from it upcast to float64 (repr, "1.100000023841858"),
    from an .npz and a Parquet file (pyarrow boxes float32 to Python floats); live rows sent every
    way: no row unseen, the gaps missing."""
    rng = np.random.default_rng(1)
    ref_codes = rng.choice(F32_CODES, size=400)
    ref_codes[::10] = np.nan
    frame = _frame(ref_codes)
    if source == "frame":
        ref = Reference.from_arrays(frame, categorical_names=["code"])
    elif source == "npz":
        np.savez(tmp_path / "ref.npz", X=frame[["x"]].to_numpy(), feature_names=np.array(["x"]),
                 categorical=ref_codes[:, None], categorical_names=np.array(["code"]))
        ref = build_profile(tmp_path / "ref.npz", progress=False).to_reference()
    elif source == "parquet":
        ref = build_profile(_parquet(frame, tmp_path / "ref.parquet"), categorical=["code"], progress=False).to_reference()
    else:
        written = frame if source == "csv_float32" else frame.astype({"code": np.float64})
        written.to_csv(tmp_path / "ref.csv", index=False)
        ref = build_profile(tmp_path / "ref.csv", categorical=["code"], progress=False).to_reference()
    assert set(ref.categorical[:, 0]) - {None} == {category_text(c) for c in F32_CODES}
    live = rng.choice(F32_CODES, size=400)
    live[rng.random(400) < 0.1] = np.nan
    mon = _monitor(ref)
    _send_every_way(mon, live)
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="missing") == pytest.approx(np.isnan(live).mean())
    mon.close()


#: float32 whole codes from 10**6 up (and under 2**53), which numpy (and so pandas' to_csv, and
#: ``str``) writes in exponent form: "1e+06", "1.234567e+06", "1.6777216e+07"
F32_LARGE_WHOLE = np.array([1e6, 1234567.0, 16777216.0, 2.5e7, 1e10, 42.0], dtype=np.float32)


def test_float32_whole_codes_written_in_exponent_form_read_as_the_integer(tmp_path: Path) -> None:
    """A float32 column of whole codes of a million or more, written by pandas to a CSV reference
    (numpy's text, "1.234567e+06"), meets live codes sent as numbers (read "1234567") and as
    numpy's text: no row unseen. Text no float writes so ("1e6", "1.2345670e+06") is kept."""
    for v in F32_LARGE_WHOLE:
        assert category_text(str(v)) == category_text(v) == category_text(float(v)) == str(int(v))
    assert categorical_text(np.array([[str(v)] for v in F32_LARGE_WHOLE], dtype=object)).ravel().tolist() == \
        [str(int(v)) for v in F32_LARGE_WHOLE]
    for kept in ("1e6", "1.2345670e+06", "1E+06", "2e+06x", "1e+6"):
        assert category_text(kept) == kept
    rng = np.random.default_rng(4)
    ref_codes = rng.choice(F32_LARGE_WHOLE, size=400)
    ref_codes[::10] = np.nan
    _frame(ref_codes).to_csv(tmp_path / "ref.csv", index=False)
    ref = build_profile(tmp_path / "ref.csv", categorical=["code"], progress=False).to_reference()
    assert set(ref.categorical[:, 0]) - {None} == {str(int(v)) for v in F32_LARGE_WHOLE}
    mon = _monitor(ref)
    _send_every_way(mon, rng.choice(F32_LARGE_WHOLE, size=400))
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    mon.close()


def test_batch_from_arrays_reads_request_ids_as_the_intake_does() -> None:
    """A Batch built in code joins its labels as the intake's would: ids read by request_id_text
    (its categorical values stay as given: non-text ones are data quality's ``wrong_type``)."""
    ids = [5.0, np.float32(1.1), float(np.float32(1.1)), "r3", None, np.nan, 9, b"r9"]
    batch = Batch.from_arrays(np.zeros((len(ids), 1)), request_id=ids)
    assert batch.request_id.tolist() == [request_id_text(v) for v in ids] == ["5", "1.1", "1.1", "r3", None, None, "9", "r9"]


# -- 2. integers at and above 2**53 ------------------------------------------------------------
def test_a_whole_float_beyond_2_53_reads_alike_on_every_path(tmp_path: Path) -> None:
    """Above 2**53 a float cannot hold every integer, so one read through a float column keeps the
    float's text (never another integer's): the same float reads alike everywhere (float32 ones
    boxed or not, CSV text), and a nullable Int64 column keeps the integers themselves."""
    big = np.array([2**53 + 2, 2**60, 3 * 2**55], dtype=np.int64)
    for f in big.astype(np.float64):
        assert category_text(f) == category_text(float(f)) == category_text(repr(float(f))) == request_id_text(f)
        if float(np.float32(f)) == f:  # 2**60 and 3 * 2**55: float32 holds them, boxed or not
            assert category_text(np.float32(f)) == category_text(f) == category_text(str(np.float32(f)))
    f32 = np.float32(2.0 ** 60)
    assert category_text(f32) == category_text(float(f32)) == request_id_text(f32) == request_id_text(float(f32))
    # the documented cost: the integer and its float are two texts
    assert category_text(int(big[0])) != category_text(float(big[0]))
    # a reference of int codes with gaps (pandas: float64) written to CSV, live floats every way
    rng = np.random.default_rng(2)
    ref_codes = rng.choice(big, size=400).astype(np.float64)
    ref_codes[::9] = np.nan
    _frame(ref_codes).to_csv(tmp_path / "ref.csv", index=False)
    mon = _monitor(build_profile(tmp_path / "ref.csv", categorical=["code"], progress=False).to_reference())
    live = rng.choice(big, size=400).astype(np.float64)
    _send_every_way(mon, live)
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    mon.close()
    # nullable Int64 on both sides: the codes stay integers, gaps and all
    exact = pd.array([int(v) for v in rng.choice(big, size=200)] + [None] * 20, dtype="Int64")
    mon = _monitor(Reference.from_arrays(pd.DataFrame({"x": np.zeros(220), "code": exact}), categorical_names=["code"]))
    for i in range(0, 220, 20):
        mon.observe(pd.DataFrame({"x": np.zeros(20), "code": exact[i:i + 20]}), np.tile([0.4, 0.6], (20, 1)),
                    timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    mon.close()


def test_a_json_float_id_at_or_beyond_2_53_reads_as_the_python_intake_reads_it() -> None:
    """An id that passed through a float column (2**60, 1e20) reads alike sent as JSON (the HTTP
    intake, prediction or feedback) and to observe / feedback in Python: a label sent one way
    joins a prediction sent the other. Under 2**53 a JSON float id is still the integer."""
    from monitor.events import parse_event

    row = {"inputs": [[1.0]], "outputs": [[0.2, 0.8]]}
    for big in (2.0 ** 60, 1e20, -(2.0 ** 53), float(2**53 + 2)):
        sent = json.loads(json.dumps(big))
        prediction = parse_event({**row, "request_id": sent}, 0.0).event[6]
        feedback = parse_event({"type": "feedback", "request_id": sent, "label": 1}, 0.0).event[2][0]
        assert request_id_text(prediction) == request_id_text(feedback) == request_id_text(big) \
            == request_id_text(np.float64(big)), big
    assert parse_event({**row, "request_id": 17.0}, 0.0).event[6] == 17


# -- 3. missing text -------------------------------------------------------------------------------
TOKENS = np.array(["NA", "EU", "nan", "null", "None", "?", "", "AS", "n/a"], dtype=object)


@pytest.mark.parametrize("source", ["csv", "frame", "npz", "parquet"])
def test_na_like_text_is_a_category_on_both_sides_and_empty_text_missing(source: str, tmp_path: Path) -> None:
    """The same texts in the reference and live: "NA" (North America), "nan", "null"... are
    categories on both sides, empty text is missing on both (pandas writes a gap as an empty
    CSV field): no row unseen, and the window's missing share is the reference's."""
    rng = np.random.default_rng(3)
    ref_codes = rng.choice(TOKENS, size=450)
    frame = pd.DataFrame({"x": rng.normal(size=450), "code": ref_codes})
    if source == "csv":
        frame.to_csv(tmp_path / "ref.csv", index=False)
        ref = build_profile(tmp_path / "ref.csv", progress=False).to_reference()  # the column's type guessed
    elif source == "npz":
        np.savez(tmp_path / "ref.npz", X=frame[["x"]].to_numpy(), feature_names=np.array(["x"]),
                 categorical=ref_codes.astype(str)[:, None], categorical_names=np.array(["code"]))
        ref = build_profile(tmp_path / "ref.npz", progress=False).to_reference()
    elif source == "parquet":  # "" as text, not null
        ref = build_profile(_parquet(frame.astype({"code": object}), tmp_path / "ref.parquet"), progress=False).to_reference()
    else:
        ref = Reference.from_arrays(frame, categorical_names=["code"])
    assert ref.categorical_names == ("code",)
    assert set(ref.categorical[:, 0]) == (set(TOKENS) - {""}) | {None}
    mon = _monitor(ref)
    for i in range(0, 450, 30):
        part = ref_codes[i:i + 30]
        rows = pd.DataFrame({"x": np.zeros(30), "code": part}) if i % 60 else [{"x": 0.0, "code": v} for v in part]
        mon.observe(rows, np.tile([0.4, 0.6], (30, 1)), timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    missing = _value(mon, "monitor_data_invalid_ratio", feature="code", reason="missing")
    assert missing == pytest.approx(np.mean(ref_codes == "")) and missing > 0
    assert _value(mon, "monitor_data_reference_invalid_ratio", feature="code", reason="missing") == pytest.approx(missing)
    mon.close()


def test_empty_text_from_a_numpy_string_array_is_missing_as_any_empty_text() -> None:
    """Cells of a numpy string array are ``np.str_`` (a columnar dict of arrays sends them as they
    are): their empty text is missing like a Python str's and a CSV's empty field, not a category
    "" that no reference holds; other numpy text reads as Python text does."""
    cells = np.array(["", "7.0", "eu", "1e+06"])
    assert [category_text(v) for v in cells] == [category_text(str(v)) for v in cells] == [None, "7", "eu", "1000000"]
    assert categorical_text(np.array(list(cells), dtype=object)[:, None]).ravel().tolist() == [None, "7", "eu", "1000000"]
    rng = np.random.default_rng(5)
    codes = rng.choice(np.array(["eu", "us", ""]), size=300)
    mon = _monitor(Reference.from_arrays(pd.DataFrame({"x": np.zeros(300), "code": codes.astype(object)}),
                                         categorical_names=["code"]))
    for i in range(0, 300, 30):
        mon.observe({"x": np.zeros(30), "code": codes[i:i + 30]}, np.tile([0.4, 0.6], (30, 1)), timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="missing") == pytest.approx(np.mean(codes == ""))
    mon.close()


# -- profiles and checkpoints saved with the old text ------------------------------------------------
def _old_profile(path: Path) -> Profile:
    """A version-2 profile as a build from a float32 column wrote it ("1.100000023841858", "") ."""
    cells = np.array([["eu"]] * 6 + [[str(np.float32(1.1))]] * 4 + [[None]] * 2, dtype=object)
    fresh = Profile.from_arrays(np.zeros((12, 1)), numeric_names=["x"], categorical=cells, categorical_names=["code"])
    code = CategoricalProfile("code", ("eu", repr(float(np.float32(1.1))), ""), np.array([6.0, 3.0, 1.0]), 12, 2, 1,
                              n_beyond=1)
    old_cells = np.array([["eu"]] * 6 + [[repr(float(np.float32(1.1)))]] * 3 + [[""]] + [[None]] * 2, dtype=object)
    old = Profile(fresh.numeric, (code,), fresh.n_rows, sample=dataclasses.replace(fresh.sample, categorical=old_cells),
                  version=2)
    old.save(path)
    return old


def test_a_profile_saved_with_the_old_text_loads_with_todays(tmp_path: Path) -> None:
    _old_profile(tmp_path / "old.npz")
    loaded = Profile.load(tmp_path / "old.npz")
    assert loaded.version == 2 == PROFILE_VERSION  # read as today without a new format version
    code = loaded.feature("code")
    assert code.categories == ("eu", "1.1") and code.counts.tolist() == [6.0, 3.0]
    assert (code.n, code.n_missing) == (12, 3)  # the empty text joins the missing values
    assert set(loaded.sample.categorical[:, 0]) == {"eu", "1.1", None}
    mon = _monitor(loaded.to_reference())
    for i in range(MIN_ROWS):
        mon.observe({"x": 0.0, "code": np.float32(1.1) if i % 2 else "eu"}, [0.4, 0.6], timestamp=T0 + i)
    mon.flush()
    assert _value(mon, "monitor_data_invalid_ratio", feature="code", reason="unseen_category") == 0.0
    mon.close()


def test_a_checkpointed_reference_with_the_old_text_is_adopted_with_todays(tmp_path: Path) -> None:
    """Rows (``Reference.from_arrays``) and a profile, checkpointed with the old text, adopted by
    a monitor without a reference: categories read as today, the detectors' states set aside."""
    old_rows = Reference(np.zeros((4, 1)), np.array([[repr(float(np.float32(1.1)))], [""], ["eu"], [None]], dtype=object),
                         ("x",), ("code",))
    for ref in (old_rows, _old_profile(tmp_path / "old.npz").to_reference()):
        state = {**_monitor(ref).state_dict(), "reference": reference_state(ref)}
        mon = Monitor(model="cats", config=CONFIG, registry=CollectorRegistry(), live=False, start_worker=False)
        mon.load_state_dict(state)
        assert mon.restore_report.reference == "adopted"
        assert mon.restore_report.set_aside_reason == "reference_changed"
        assert set(mon.reference.categorical[:, 0]) == {"1.1", "eu", None}
        mon.close()
