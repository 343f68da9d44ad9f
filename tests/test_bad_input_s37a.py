"""Bad input at the entry points, the fixes of session 36's helper s36a redone on top of the reading
of unreadable numeric values (session 37, helper s37a): each test failed before its fix. The
standard: a clear error naming the field and the fix, counted when refused, never a crash of the
agent, a change to the user's predict or data silently lost."""

from __future__ import annotations

import logging
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from tests.sidecar_support import http, sample, start_sidecar

__all__: list[str] = []


def _monitor(config: dict, model: str = "m") -> Monitor:
    return Monitor(model=model, config=config, registry=CollectorRegistry(), start_worker=False, live=False)


def test_masked_entries_of_a_masked_array_are_read_as_missing() -> None:
    """A numpy masked array was read without its mask (``np.asarray`` keeps the data alone): the
    masked entries were monitored as the values they hid (a fill value of 1e20 read as a real
    input, or as a reference row's value), and the quality detector counted nothing missing. They
    are now missing (NaN), in inputs (arrays, a dict of columns), outputs and the reference alike."""
    mon = _monitor({"features": ["a", "b", "c"], "output": {"classes": ["n", "y"]}})
    try:
        x = np.ma.masked_array(np.full((4, 3), 1.0), mask=[[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]], fill_value=1e20)
        mon.observe(x, np.full((4, 2), 0.5))
        mon.observe(np.ma.masked_array(np.ones((2, 3), dtype=int), mask=[[0, 0, 1], [0, 0, 0]]), np.full((2, 2), 0.5))
        mon.observe({"a": np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "b": [1.0, 1.0], "c": [1.0, 1.0]}, np.full((2, 2), 0.5))
        mon.observe(np.ones((2, 3)), np.ma.masked_array(np.full((2, 2), 0.5), mask=[[1, 1], [0, 0]]))
        mon.flush()
        value = mon.store.value
        assert value("monitor_predictions") == 9 and value("monitor_rows_rejected", {"reason": "nan_output"}) == 1
        missing = {f: value("monitor_data_invalid_rows", {"feature": f, "reason": "missing"}) for f in "abc"}
        assert missing == {"a": 3.0, "b": 1.0, "c": 1.0}, missing
        assert not value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"})  # masked is missing, not wrong
    finally:
        mon.close()
    rows = np.random.default_rng(3).normal(size=(50, 2))
    ref = Reference.from_arrays(np.ma.masked_array(rows, mask=np.c_[np.arange(50) < 5, np.zeros(50, bool)]),
                                numeric_names=["a", "b"])
    assert np.isnan(ref.numeric[:5, 0]).all() and np.isfinite(ref.numeric[5:]).all()


class _Rows:
    """A detector that keeps the numeric rows of each batch it is given (what the detectors read)."""

    kind, name, deferrable = "rows", "rows", False

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def update(self, batch: object) -> None:
        self.seen.append(batch.numeric.copy())  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return lambda *a, **k: None


def test_numpy_times_are_read_as_seconds_or_refused(caplog: pytest.LogCaptureFixture) -> None:
    """``datetime64`` and ``timedelta64`` arrays (and such values in dict rows and list rows) were
    cast to float64 as counts of their unit: a duration of 1 s was 1e9 as ``[ns]``, a date of
    1970-01-02 was 1 as ``[D]``, where :mod:`monitor.temporal` reads a duration as seconds and a
    point in time under a configured feature as seconds since 1970 UTC (as in DataFrames and dict
    rows of ``datetime``). They are now read so, on every path (arrays, dict rows, list rows,
    one-row list events, a schema with a categorical feature, the reference); a schema is not
    learned from points in time (left out of learned features, as a DataFrame's column of them
    is): refused with the fix."""
    mon = _monitor({"features": ["a", "b"], "output": {"classes": ["n", "y"]}})
    rows = _Rows()
    mon.pipeline.detectors.append(rows)
    try:
        p = np.full((2, 2), 0.5)
        mon.observe(np.array([[1, 2], [3, 4]], dtype="timedelta64[s]").astype("timedelta64[ns]"), p)
        mon.observe(np.array([["1970-01-02", "1970-01-03"], ["NaT", "1970-01-01"]], dtype="datetime64[D]"), p)
        mon.flush()
        mon.observe({"a": np.timedelta64(90, "m"), "b": np.datetime64("1970-01-01T00:00:10")}, p[:1])
        mon.observe({"a": np.timedelta64(2, "ns"), "b": 1.5}, p[:1])
        mon.flush()
        mon.observe([[np.timedelta64(2, "s"), np.timedelta64(1, "ms")]], p[:1])
        mon.observe([[np.timedelta64(3, "ms"), 7.0], [1.0, 2.0]], p)
        mon.flush()
        mon.observe([np.timedelta64(4, "ms"), np.timedelta64(5, "ms")], p[:1])  # one row: the stacked path of list rows
        mon.observe([np.timedelta64(6, "ms"), np.timedelta64(7, "ms")], p[:1])
        mon.flush()
        np.testing.assert_allclose(np.concatenate(rows.seen), [
            [1, 2], [3, 4], [86400, 172800], [np.nan, 0], [5400, 10], [2e-9, 1.5], [2, 0.001], [0.003, 7], [1, 2],
            [0.004, 0.005], [0.006, 0.007]])
        assert mon.store.value("monitor_predictions") == 11
    finally:
        mon.close()
    cat = _monitor({"features": ["a", {"name": "c", "kind": "categorical"}], "output": {"classes": ["n", "y"]}})
    rows = _Rows()
    cat.pipeline.detectors.append(rows)
    try:
        cat.observe([[np.timedelta64(1500, "ms"), "x"]], [[0.5, 0.5]])
        cat.flush()
        np.testing.assert_allclose(np.concatenate(rows.seen), [[1.5]])
    finally:
        cat.close()
    ref = Reference.from_arrays(np.array([[1, 2], [3, 4]], dtype="timedelta64[ms]"), numeric_names=["a", "b"])
    np.testing.assert_allclose(ref.numeric, [[0.001, 0.002], [0.003, 0.004]])
    learner = _monitor({"output": {"classes": ["n", "y"]}}, model="learn")
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            learner.observe(np.array([["2024-01-01", "2024-01-02"]], dtype="datetime64[ns]"), [[0.5, 0.5]])
            learner.flush()
        assert learner.store.value("monitor_rows_rejected", {"reason": "wrong_type"}) == 1
        said = " ".join(r.getMessage() for r in caplog.records)
        assert "inputs are points in time (datetime64[ns])" in said and "the age in days" in said, said
    finally:
        learner.close()


@pytest.mark.parametrize("column", [np.full(60, np.inf), np.r_[np.full(30, np.nan), np.full(30, -np.inf)]],
                         ids=["infinite", "nan_and_infinite"])
@pytest.mark.parametrize("frame", [False, True], ids=["array", "dataframe"])
def test_a_reference_column_without_a_finite_value_is_named(column: np.ndarray, frame: bool) -> None:
    """A reference numeric column infinite in every row (or NaN and infinite only) was taken
    without a word: it has no distribution, no drift figure of that feature was exported at all.
    It is now a ValueError naming the column and the fix. A column of one finite value, one
    missing (NaN) in every row (a feature the reference never has) and an empty reference are
    still taken."""
    import pandas as pd

    rng = np.random.default_rng(5)
    rows = np.c_[rng.normal(size=60), column, rng.normal(size=60)]
    given: object = pd.DataFrame(rows, columns=["a", "b", "c"]) if frame else rows
    with pytest.raises(ValueError, match=r"column\(s\) 'b' hold no finite value .* in all 60 rows.*Fix: give reference "
                                         r"rows where it has values"):
        Reference.from_arrays(given, numeric_names=None if frame else ["a", "b", "c"])
    one = column.copy()
    one[7] = 1.5
    Reference.from_arrays(np.c_[rows[:, 0], one], numeric_names=["a", "b"])
    ref = Reference.from_arrays(np.c_[rows[:, 0], np.full(60, np.nan)], numeric_names=["a", "b"])
    assert np.isnan(ref.numeric[:, 1]).all()
    Reference.from_arrays(np.empty((0, 3)), numeric_names=["a", "b", "c"])


_IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
         "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def test_inputs_none_are_named_as_such(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``observe(None, outputs)`` (a decorated function whose argument, or ``inputs=`` extractor,
    gave None) was refused as "expected rows of 4 features, got shape ()" (or, before a schema
    was learnt, "the inputs are NoneType"), which named neither the None nor the fix; a JSON
    event's ``"inputs": null`` was accepted (202) and then refused so in the worker. The
    message now says the inputs are None and the fix; over HTTP it is a 400 naming ``inputs``,
    counted ``missing_inputs`` as an event without inputs is."""
    for config in (_IRIS, {"output": _IRIS["output"]}):  # a configured schema, and one to learn
        mon = _monitor(config)
        try:
            with caplog.at_level(logging.WARNING, logger="monitor"):
                mon.observe(None, [[0.8, 0.1, 0.1]])
                mon.flush()
            line = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()][-1]
            assert "inputs are None: the call gave no rows" in line and "Fix: pass the rows" in line, line
            assert "shape ()" not in line and "NoneType" not in line, line
            assert sum(mon.store.value("monitor_rows_rejected", {"reason": r}) or 0 for r in ("wrong_shape", "wrong_type")) == 1
        finally:
            mon.close()
    s = start_sidecar(_IRIS, tmp_path)
    try:
        one = {"inputs": None, "outputs": [[0.8, 0.1, 0.1]]}
        for body in (one, [one, one], [{"inputs": [[5.1, 3.5, 1.4, 0.2]], "outputs": [[0.8, 0.1, 0.1]]}, one]):
            r = http("POST", s.url + "/v1/events", body)
            assert r.status == 400, r.body
            error = r.json()["errors"][-1] if "errors" in r.json() else r.json()
            assert (error["field"], error["reason"]) == ("inputs", "missing_inputs"), r.body
            assert "is null. Fix: send the rows" in error["error"], r.body
        assert sample(s.metrics(), "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="missing_inputs") == 4
    finally:
        s.close()


@pytest.mark.parametrize(("outputs", "said"), [
    ([[None, 0.1, 0.1]], "outputs hold missing values (None, JSON null), e.g. [None, 0.1, 0.1]"),
    ([[0.8, 0.1, 0.1], [0.5, None, 0.5]], "outputs hold missing values (None, JSON null), e.g. [0.5, None, 0.5]"),
    (np.array([[np.nan, 0.5, 0.5]]), "outputs hold NaN or infinite values, e.g. array([nan, 0.5, 0.5])"),
], ids=["none_one_row", "none_second_row", "nan"])
def test_a_missing_output_is_said_as_such(outputs: object, said: str, caplog: pytest.LogCaptureFixture) -> None:
    """Outputs holding None (``[[None, 0.5]]``, JSON null among the scores) were refused as
    nan_output with "the model returned NaN or infinite values for these rows", which the model
    had not: the log now shows the row as given, says it holds missing values, and the fix
    names both."""
    mon = _monitor(_IRIS)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe([[5.1, 3.5, 1.4, 0.2]] * len(outputs), outputs)  # type: ignore[arg-type]
            mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "nan_output"}) == 1
        (line,) = [r.getMessage() for r in caplog.records if "nan_output" in r.getMessage()]
        assert f"refused (nan_output): {said}. Fix: return a finite number" in line, line
        assert "None or JSON null" in line, line
    finally:
        mon.close()


def test_a_logit_of_minus_infinity_is_not_the_row_said_refused(caplog: pytest.LogCaptureFixture) -> None:
    """Logits with a masked class (-inf) are read, not refused: the nan_output line names the row
    that was refused (the NaN one), not the first row holding a non-finite value."""
    mon = _monitor({**_IRIS, "output": {**_IRIS["output"], "kind": "logits"}})
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe([[5.1, 3.5, 1.4, 0.2]] * 2, np.array([[2.0, -np.inf, 0.5], [np.nan, 1.0, 0.5]]))
            mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "nan_output"}) == 1
        assert mon.store.value("monitor_predictions") == 1
        (line,) = [r.getMessage() for r in caplog.records if "nan_output" in r.getMessage()]
        assert "e.g. array([nan, 1. , 0.5])" in line, line
    finally:
        mon.close()


@pytest.mark.parametrize(("body", "ctype", "said"), [
    ("<event><inputs>1</inputs></event>", "application/xml", "body: is XML or HTML ('<event><inputs>1</inputs></eve'...), not JSON"),
    ("<event/>", "application/json", "body: is XML or HTML ('<event/>'), not JSON"),
    ("inputs=1&outputs=2", "application/x-www-form-urlencoded",
     "body: is a URL-encoded form ('inputs=1&outputs=2': curl -d key=value, requests' data=), not JSON"),
    ("inputs=1&outputs=2", "application/json", "body: is a URL-encoded form ('inputs=1&outputs=2'"),
    ("hello", "application/json", "body: is not valid JSON (Expecting value at line 1 column 1; it starts with 'hello')"),
], ids=["xml", "xml_as_json", "form", "form_as_json", "text"])
def test_a_body_that_is_no_json_is_named(body: str, ctype: str, said: str, tmp_path: Path) -> None:
    """An XML or form body posted to /v1/events was answered "is not valid JSON (Expecting value at
    line 1 column 1)": the answer now says what the body is (XML or HTML, a URL-encoded form), what
    it starts with, and how to send an event (to /v1/feedback alike; an NDJSON line too)."""
    s = start_sidecar(_IRIS, tmp_path)
    try:
        for path in ("/v1/events", "/v1/feedback"):
            r = http("POST", s.url + path, body, {"Content-Type": ctype})
            assert r.status == 400 and r.json()["reason"] == "bad_json", r.body
            text = f"{r.json()['field']}: {r.json()['error']}"
            assert said in text and "Fix: send one event as a JSON object" in text, text
        r = http("POST", s.url + "/v1/events", "hello\n", {"Content-Type": "application/x-ndjson"})
        assert "line 1: is not valid JSON (Expecting value; it starts with 'hello')" in \
            f"{r.json()['field']}: {r.json()['error']}", r.body
        # counted as before, under the sidecar's own model (a body that is no JSON names none)
        assert sample(s.metrics(), "monitor_intake_events_refused_total", model="_sidecar", endpoint="events",
                      reason="bad_json") == 2
    finally:
        s.close()


@pytest.mark.parametrize(("content", "said"), [
    (b"hello, this is not numpy\n", "is not an .npz (a zip archive of arrays, as numpy.savez writes): it starts with the "
                                    "text 'hello, this is not numpy\\n'"),
    (b"a,b\n1,2\n", "it starts with the text 'a,b\\n1,2\\n'"),
    (pickle.dumps({"X": [1, 2]}), "is a Python pickle, not an .npz"),
    (b"", "is empty, not an .npz"),
], ids=["text", "csv", "pickle", "empty"])
def test_a_file_that_is_no_npz_is_named(content: bytes, said: str, tmp_path: Path) -> None:
    """A file named .npz that is no zip archive (text, a CSV, a pickle, an empty file) was refused
    as holding "pickled objects, or no arrays at all" with the advice to store strings as
    fixed-width arrays (``monitor reference build``), or by ``config check`` with numpy's own
    advice to load it unsafely with ``allow_pickle=``: numpy reads any file that is neither .npz
    nor .npy as a pickle. Each reader now says what the file is, what it starts with, and the fix."""
    from monitor.profile import Profile, ProfileError

    path = tmp_path / "ref.npz"
    path.write_bytes(content)
    with pytest.raises(ProfileError, match=re.escape(said) + r".*Fix: build a profile"):
        Profile.load(path)
    (tmp_path / "monitor.yaml").write_text("model: m\nreference:\n  path: ref.npz\n")
    done = subprocess.run([sys.executable, "-m", "monitor", "config", "check", str(tmp_path / "monitor.yaml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and said in done.stderr and "allow_pickle" not in done.stderr, done.stderr
    done = subprocess.run([sys.executable, "-m", "monitor", "reference", "build", str(path), "-o", str(tmp_path / "p.npz")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and said in done.stderr and "Fix: save the reference data" in done.stderr, done.stderr
    assert "pickled objects" not in done.stderr, done.stderr


_BOMB_ITEMS = ["&a [x, x, x, x, x, x, x, x, x]"] + [f"&{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefg", "bcdefgh")]
_ALIAS_BOMB = "model: iris\nfeatures: [" + ", ".join(_BOMB_ITEMS) + "]\n"


@pytest.mark.parametrize(("text", "said"), [
    (_ALIAS_BOMB, "expands to more than 1,000,000 nodes through its aliases"),
    ("model: iris\nfeatures: &a [*a]\n", "an alias (*name) inside the node it names repeats for ever"),
], ids=["alias_bomb", "recursive_alias"])
def test_a_monitor_yaml_of_aliases_without_end_is_refused_before_it_is_walked(tmp_path: Path, text: str, said: str) -> None:
    """Nine aliases of nine, eight deep, in monitor.yaml: PyYAML shares an alias's value, but the
    config's checks walked all 43 million paths (15 s of config check, of a start or of a reload,
    then an error about features[0]); an alias inside the node it names was walked until Python's
    recursion limit (a bare RecursionError out of load_config). Both are now refused as the file's
    YAML, counted without expanding."""
    from monitor.config import ConfigError, load_config

    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(path)


def test_an_alias_bomb_reloaded_is_the_configs_failure(tmp_path: Path) -> None:
    """``POST /-/reload`` of a monitor.yaml turned into an alias bomb: refused as the config's YAML
    (the config in force stays, the failure counted), the rule files reloaded, without walking
    the 43 million paths first."""
    import yaml

    from tests.sidecar_support import quiet_factory

    rules = "groups:\n  - name: g\n    rules:\n      - alert: On\n        expr: vector(1)\n"
    (tmp_path / "rules.yml").write_text(rules)
    raw = {**_IRIS, "rules": {"files": ["rules.yml"], "interval": "15s"}}
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(raw))
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(start_worker=False))
    s.sidecar.config_path = config
    try:
        config.write_text(_ALIAS_BOMB)
        (tmp_path / "rules.yml").write_text(rules + "      - alert: Two\n        expr: vector(2)\n")
        r = http("POST", s.url + "/-/reload", timeout=120)
        body = r.json()
        assert r.status == 200 and body["data"]["rules"] == {"iris": 2}, body
        [warning] = body["warnings"]
        assert "expands to more than 1,000,000 nodes" in warning and "stays in force" in warning, warning
        assert sample(s.metrics(), "monitor_config_reloads_total", model="_sidecar", outcome="failure") == 1
    finally:
        s.close()


@pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning")
def test_complex_values_in_rows_are_unreadable_values_not_their_real_parts(caplog: pytest.LogCaptureFixture) -> None:
    """Complex arrays are refused (session 35), but a complex *value* in a dict row
    (``{"a": np.complex128(1+2j)}``, complex64 alike) or in list rows (``[[np.complex128(1+2j),
    1.0, 2.0]]``, one row or several; a schema with a categorical feature) was read as its real
    part, numpy's ComplexWarning the only sign (an error under a warnings-as-errors filter: the
    drain lost as internal_error). Such a value is now read as a numeric value that is no number
    ("N/A"): missing in its row, which is monitored, counted wrong_type for its feature by data
    quality and said once with the complex numbers' fix; a call of which no value is a real number
    is refused whole, with that fix, as a call of texts is."""
    mon = _monitor({"features": ["a", "b", "c"], "output": {"classes": ["n", "y"]}})
    rows = _Rows()
    mon.pipeline.detectors.append(rows)
    try:
        p1, p2 = [[0.5, 0.5]], [[0.5, 0.5]] * 2
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe({"a": np.complex128(1 + 2j), "b": 1.0, "c": 2.0}, p1)
            mon.flush()
            mon.observe({"a": np.complex64(1 + 0j), "b": 1.0, "c": 2.0}, p1)
            mon.observe({"a": 1 + 2j, "b": 1.0, "c": 2.0}, p1)
            mon.flush()
            mon.observe([np.complex128(1 + 2j), 1.0, 2.0], p1)  # one row: the stacked path of list rows
            mon.observe([np.complex64(3 + 1j), 4.0, 5.0], p1)
            mon.flush()
            mon.observe([[np.complex128(1 + 2j), 1.0, 2.0], [1.0, 1.0, None]], p2)
            mon.observe({"a": [np.complex64(1 + 1j), 6.0], "b": [1.0, 1.0], "c": [2.0, 2.0]}, p2)  # a dict of lists
            mon.flush()
            mon.observe([[np.complex128(1 + 2j), 1j, 2j]], p1)  # no real number at all: refused whole
            mon.observe(np.array([[1 + 2j, 1, 2]]), p1)  # a complex array: refused whole, as before
            mon.flush()
        value = mon.store.value
        assert value("monitor_predictions") == 9, mon.metrics_text()
        assert value("monitor_rows_rejected", {"reason": "wrong_type"}) == 2
        assert not value("monitor_rows_rejected", {"reason": "internal_error"})
        assert value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 7
        assert not value("monitor_data_invalid_rows", {"feature": "b", "reason": "wrong_type"})
        np.testing.assert_array_equal(np.concatenate(rows.seen), [
            [np.nan, 1, 2], [np.nan, 1, 2], [np.nan, 1, 2], [np.nan, 1, 2], [np.nan, 4, 5],
            [np.nan, 1, 2], [1, 1, np.nan], [np.nan, 1, 2], [6, 1, 2]])
        said = [r.getMessage() for r in caplog.records]
        note = [m for m in said if "holds complex numbers" in m]
        assert len(note) == 1 and "feature 'a'" in note[0] and "wrong_type" in note[0] and "x.real, x.imag" in note[0], said
        assert any("inputs hold complex numbers" in m and "and no real one" in m and "x.real, x.imag" in m for m in said), said
    finally:
        mon.close()
    cat = _monitor({"features": ["a", {"name": "c", "kind": "categorical"}], "output": {"classes": ["n", "y"]}})
    try:
        cat.observe([[np.complex64(1 + 1j), "x"], [2.5, "y"]], [[0.5, 0.5]] * 2)
        cat.flush()
        assert cat.store.value("monitor_predictions") == 2
        assert cat.store.value("monitor_data_invalid_rows", {"feature": "a", "reason": "wrong_type"}) == 1
    finally:
        cat.close()
