"""Bad input at the entry points (session 35, helper s35a): each test failed before its fix.
The standard: a clear error naming the field and the fix, counted when refused, never a crash
of the agent or a change to the user's predict."""

from __future__ import annotations

import json
import re
from pathlib import Path

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from tests.sidecar_support import http, sample, start_sidecar
from tests.test_proxy import IRIS

__all__: list[str] = []

_ROW = [5.1, 3.5, 1.4, 0.2]


def test_null_outputs_are_refused_at_intake_naming_the_field(tmp_path: Path) -> None:
    """``"outputs": null`` was accepted (202) and only counted later in the worker, so the
    sender never learnt it; it is now a 400 naming ``outputs`` and the fix, counted in
    ``monitor_intake_events_refused_total{reason="missing_outputs"}`` like an event without
    outputs, on the one-event path and on the batch path of events with the same keys; nothing
    of a refused batch is enqueued. A model whose outputs are not read still takes null."""
    none_model = {"model": "unread", "features": ["a", "b", "c", "d"], "output": {"kind": "none"}}
    s = start_sidecar({"models": [IRIS, none_model]}, tmp_path)
    try:
        r = http("POST", s.url + "/v1/events", {"model": "iris", "inputs": [_ROW] * 20, "outputs": None})
        assert r.status == 400, r.body
        assert (r.json()["field"], r.json()["reason"]) == ("outputs", "missing_outputs"), r.body
        assert "is null" in r.json()["error"] and "one per input row" in r.json()["error"], r.body
        batch = [{"model": "iris", "inputs": [_ROW], "outputs": out} for out in ([[0.8, 0.1, 0.1]], None, [[0.8, 0.1, 0.1]])]
        r = http("POST", s.url + "/v1/events", "\n".join(map(json.dumps, batch)), {"Content-Type": "application/x-ndjson"})
        assert r.status == 400 and [d["index"] for d in r.json()["errors"]] == [1], r.body
        r = http("POST", s.url + "/v1/events", {"model": "unread", "inputs": [_ROW], "outputs": None})
        assert r.status == 202, r.body
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="missing_outputs") == 2
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="batch_refused") == 2
        assert not sample(text, "monitor_intake_events_accepted_total", model="iris", endpoint="events")
        assert sample(text, "monitor_intake_events_accepted_total", model="unread", endpoint="events") == 1
    finally:
        s.close()


@pytest.mark.parametrize("given", [np.array("abc"), np.array(3.0), "abc", 5])
@pytest.mark.parametrize("argument", ["text", "categorical"])
def test_a_reference_of_one_value_says_it_needs_rows(argument: str, given: object) -> None:
    """``Reference.from_arrays(text=np.array("abc"), ...)`` (a 0-d array, no numeric) raised a
    bare ``TypeError: len() of unsized object``; it is now the ValueError the other shape errors
    give, naming the argument and the fix."""
    with pytest.raises(ValueError, match=rf"reference {argument} must be \(rows, .*Fix: pass a list or array"):
        Reference.from_arrays(**{argument: given, f"{argument}_names": ["p"]})


def test_an_unreadable_latency_loses_only_itself(caplog: pytest.LogCaptureFixture) -> None:
    """``observe(latency_s="fast")`` failed the worker's whole drain: every call queued with it
    were lost as internal_error; an infinite latency made ``monitor_latency_seconds_sum``
    infinite for good, a negative one lowered it. Each such latency is now left out, counted
    once per call in ``monitor_row_arguments_dropped_total{argument="latency_s"}`` and said once
    with the fix; the calls' rows are processed, the valid latencies observed."""
    mon = Monitor(model="lat", config={"features": ["a", "b", "c"], "output": {"classes": ["n", "y"]}},
                  registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        x, p = np.ones((2, 3)), np.full((2, 2), 0.5)
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for latency in (0.1, "fast", 0.2, float("inf"), -1.0, float("nan"), [1, 2], 0.3):
                assert mon.observe(x, p, latency_s=latency)
            mon.observe_error("ValueError", latency_s="slow")
            mon.flush()
        value = mon.store.value
        assert value("monitor_predictions") == 16 and not value("monitor_events_dropped", {"reason": "internal_error"})
        assert value("monitor_row_arguments_dropped", {"argument": "latency_s"}) == 6
        text = mon.metrics_text()
        assert 'monitor_latency_seconds_count{model="lat"} 3.0' in text, text
        assert 'monitor_latency_seconds_sum{model="lat"} 0.6' in text, text
        (line,) = [r.getMessage() for r in caplog.records if "latency_s:" in r.getMessage()]
        assert "'fast'" in line and "Fix: pass latency_s as seconds" in line, line
    finally:
        mon.close()


def test_an_infinite_latency_is_refused_at_intake(tmp_path: Path) -> None:
    """``"latency_s": Infinity`` (or ``1e400``, which JSON reads as infinity) was accepted over
    HTTP while NaN was refused; it is now a 400 naming ``latency_s``, on the one-event, batch and
    general (error event) paths alike."""
    s = start_sidecar(IRIS, tmp_path)
    try:
        one = '{"inputs": [[1, 2, 3, 4]], "outputs": [[0.8, 0.1, 0.1]], "latency_s": %s}'
        bodies = [one % "Infinity", one % "1e400", "[%s, %s]" % (one % "1e400", one % "1e400"),
                  '{"type": "error", "latency_s": Infinity}']
        for body in bodies:
            r = http("POST", s.url + "/v1/events", body, {"Content-Type": "application/json"})
            assert r.status == 400 and (r.json()["field"], r.json()["reason"]) == ("latency_s", "bad_latency"), r.body
            assert "finite" in r.json()["error"], r.body
        assert sample(s.metrics(), "monitor_intake_events_refused_total", model="iris", endpoint="events",
                      reason="bad_latency") == 5
    finally:
        s.close()


def test_an_integer_of_thousands_of_digits_is_said_to_be_too_large(tmp_path: Path) -> None:
    """An integer of more than 4,300 digits (json's limit for reading one) was answered "is not
    UTF-8 JSON" for a UTF-8 body; it is now the refusal of any integer past a float's range,
    ``number_too_large``, in a JSON body and in an NDJSON line alike (both counted)."""
    s = start_sidecar(IRIS, tmp_path)
    try:
        event = '{"inputs": [[%s, 2, 3, 4]], "outputs": [[0.8, 0.1, 0.1]]}' % ("9" * 5000)
        ok = json.dumps({"inputs": [_ROW], "outputs": [[0.8, 0.1, 0.1]]})
        for body, ctype, field in ((event, "application/json", "body"),
                                   (ok + "\n" + event, "application/x-ndjson", "line 2")):
            r = http("POST", s.url + "/v1/events", body, {"Content-Type": ctype})
            assert r.status == 400 and (r.json()["field"], r.json()["reason"]) == (field, "number_too_large"), r.body
            assert "beyond the range of a 64-bit float" in r.json()["error"], r.body
        assert sample(s.metrics(), "monitor_intake_events_refused_total", model="_sidecar", endpoint="events",
                      reason="number_too_large") == 3
    finally:
        s.close()


@pytest.mark.parametrize("empty", [[], (), np.empty((0, 4))], ids=["list", "tuple", "array"])
def test_an_empty_call_of_a_three_class_model_is_no_row(empty: object, tmp_path: Path) -> None:
    """A call on no rows answered with an empty list (``predict([])`` returning ``[]``, a JSON
    event ``"inputs": [], "outputs": []``) was refused as ``output_shape`` ("outputs have 1
    columns per row; this model's have 3"), a row never sent, for any model of three classes or
    more (session 24's fix held for one or two); it is no row now."""
    mon = Monitor(model="e3", config=IRIS, registry=CollectorRegistry(auto_describe=False), start_worker=False, live=False)
    try:
        mon.observe([_ROW], [[0.8, 0.1, 0.1]])
        mon.observe(empty, [])
        mon.observe(empty, ())
        mon.flush()
        assert mon.store.value("monitor_predictions") == 1 and mon.store.value("monitor_calls") == 3
        assert not mon.store.value("monitor_rows_rejected", {"reason": "output_shape"})
    finally:
        mon.close()
    s = start_sidecar(IRIS, tmp_path)
    try:
        r = http("POST", s.url + "/v1/events", {"inputs": [], "outputs": []})
        assert r.status == 202, r.body
        s.flush()
        assert not sample(s.metrics(), "monitor_rows_rejected_total", model="iris", reason="output_shape")
    finally:
        s.close()


def test_complex_numbers_are_refused_not_cast_to_their_real_parts(caplog: pytest.LogCaptureFixture) -> None:
    """Complex inputs, outputs or embeddings (numpy arrays of complex dtype) were read as their
    real parts, numpy's ComplexWarning on stderr the only sign. They are now refused, each with
    a fix of its own, and counted: inputs as wrong_type (arrays of one or several calls, a dict
    of columns), outputs as non_numeric_output, an embedding as a dropped argument; predict's
    answer is its own."""
    mon = Monitor(model="cx", config={"features": ["a", "b", "c"], "output": {"classes": ["n", "y"]}},
                  registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        out = np.full((2, 2), 0.5)

        @mon.watch
        def predict(x: object) -> np.ndarray:
            return out

        real, cx = np.ones((2, 3)), np.ones((2, 3)) + 1j
        with caplog.at_level(logging.WARNING, logger="monitor"):
            assert predict(cx) is out and predict(cx) is out
            mon.flush()  # two calls of arrays alone in one drain: the stacked path
            mon.observe({"a": cx[:, 0], "b": [1.0, 2.0], "c": [1.0, 2.0]}, out)
            mon.observe(real, out.astype(complex))
            mon.observe(real, out, embedding=np.ones((2, 4), dtype=complex))
            mon.flush()
        value = mon.store.value
        assert value("monitor_rows_rejected", {"reason": "wrong_type"}) == 6
        assert value("monitor_rows_rejected", {"reason": "non_numeric_output"}) == 2
        assert value("monitor_row_arguments_dropped", {"argument": "embedding"}) == 2
        assert value("monitor_predictions") == 2  # the last call, without its embedding
        said = " ".join(r.getMessage() for r in caplog.records)
        assert "inputs are complex numbers (complex128)" in said and "x.real, x.imag" in said, said
        assert "outputs are complex numbers (complex128)" in said and "outputs=lambda out: out.real" in said, said
    finally:
        mon.close()


@pytest.mark.parametrize(("arguments", "said"), [
    ({"scores": np.array(0.5)}, r"reference scores is one value \(0.5\); give one per reference row \(50\)"),
    ({"labels": np.array(1)}, r"reference labels is one value \(1\); give one per reference row"),
    ({"scores": np.array([["a", "b"]] * 50)}, r"reference scores must hold numbers only .*Fix: give the model's scores"),
    ({"embedding": np.array([["a"]] * 50)}, r"reference embedding must hold numbers only"),
    ({"scores": np.full((50, 2), 0.5, dtype=complex)}, r"reference scores are complex numbers \(complex128\).*Fix:"),
    ({"numeric": np.ones((50, 3), dtype=complex)}, r"reference numeric are complex numbers \(complex128\).*Fix:"),
    ({"numeric_names": ["a", "a", "b"]}, r"numeric_names and categorical_names hold 'a' twice\. Fix:"),
])
def test_reference_arguments_of_the_wrong_form_are_named(arguments: dict[str, object], said: str) -> None:
    """``Reference.from_arrays`` arguments of the wrong form raised a bare IndexError (a single
    score or label), a ValueError naming no argument (text among the scores or the embedding), or
    were taken: complex numbers as their real parts, a
    feature name given twice. Each is now a ValueError naming the argument and the fix."""
    given = {"numeric": np.random.default_rng(7).normal(size=(50, 3)), **arguments}
    with pytest.raises(ValueError, match=said):
        Reference.from_arrays(**given)


def test_a_reference_frame_with_two_columns_of_one_name_is_named() -> None:
    """A DataFrame with two columns of one name raised AttributeError ('DataFrame' object has no
    attribute 'dtype'); feature names that are not text (``numeric_names=[1, 2]``) are read as
    text, as a DataFrame's are (they raised AttributeError inside ``Monitor(reference=...)``)."""
    import pandas as pd

    frame = pd.DataFrame(np.ones((20, 2)), columns=["a", "a"])
    with pytest.raises(ValueError, match=r"DataFrame's columns hold 'a' twice\. Fix: give each column its own name"):
        Reference.from_arrays(frame)
    ref = Reference.from_arrays(np.random.default_rng(8).normal(size=(200, 2)), numeric_names=[1, 2])
    assert ref.numeric_names == ("1", "2")
    Monitor(model="names", reference=ref, config={"output": {"kind": "none"}}, registry=CollectorRegistry(),
            start_worker=False, live=False).close()


_RULE = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: {expr}\n        annotations: {{summary: \"{summary}\"}}\n"


@pytest.mark.parametrize(("text", "said"), [
    (_RULE.format(expr="up" + " + up" * 20_000, summary="x"), "could not parse expression: PromQL expression nested too deeply"),
    (_RULE.format(expr="(" * 3000 + "up" + ")" * 3000, summary="x"), "PromQL expression nested too deeply"),
    (_RULE.format(expr="up", summary="{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}"), "template: __alert_A: nested too deeply"),
    ("groups: " + "[" * 5000 + "]" * 5000 + "\n", "yaml: nested too deeply"),
    ("groups: &a [*a]\n", "an alias (*name) inside the node it names"),
    ("".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefg", "bcdefgh"))
     .replace("b: &b [*a", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a", 1) + "groups: []\n",
     "expands to more than 1,000,000 nodes"),
], ids=["long_chain", "deep_parentheses", "deep_template", "deep_yaml", "recursive_alias", "alias_bomb"])
def test_a_rule_file_too_deep_or_too_large_is_a_rule_error(tmp_path: Path, text: str, said: str) -> None:
    """A rule expression of 5,000 or more operators (``up + up + ...``) or parentheses killed the
    process with a segmentation fault (the PromQL parser's stack), a few hundred raised
    RecursionError out of the loader, as did thousands of nested YAML lists, a template nested
    thousands deep and an alias inside the node it names; nine aliases of nine, eight deep, hung
    the loader. Each is now an error of the file, with the rest of the rules kept, as any other."""
    import subprocess
    import sys

    path = tmp_path / "rules.yml"
    path.write_text(text)
    done = subprocess.run([sys.executable, "-m", "monitor", "rules", "check", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stderr[-500:])
    assert said in done.stdout + done.stderr and "Traceback" not in done.stderr, done.stdout + done.stderr[-500:]


@pytest.mark.parametrize(("text", "said"), [
    ("model: iris\nwindow: .inf\n", "window: must be a duration, got inf"),
    ("model: iris\nwindow: " + "9" * 400 + "s\n", "window: must be a duration"),
    ("model: iris\nqueue: {capacity: " + "9" * 400 + "}\n", "queue.capacity: must be at most 9223372036854775807"),
    ("model: iris\nx: " + "[" * 5000 + "]" * 5000 + "\n", "invalid YAML: nested too deeply"),
], ids=["infinite_window", "window_past_float", "capacity_past_int64", "deep_yaml"])
def test_a_config_past_every_range_is_a_config_error(tmp_path: Path, text: str, said: str) -> None:
    """``window: .inf`` passed ``config check`` and then every windowed detector failed at each
    batch; a queue capacity of 400 digits passed it and raised OverflowError in ``Monitor()``;
    thousands of nested YAML lists raised RecursionError. Each is now a ConfigError naming the
    key (or the YAML) and the fix."""
    from monitor.config import ConfigError, load_config

    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(path)
