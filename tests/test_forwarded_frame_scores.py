"""A DataFrame of probabilities named by class (AutoGluon's and H2O's ``predict_proba``), in
process and forwarded. In process the frame is read by its columns' names, in the order of
``output.classes``; a forwarding worker writes it as JSON writes a frame, rows keyed by class name,
and the sidecar refused every such row as ``non_numeric_output`` (found by helper s40a). Rows
keyed by class name are now read as the frame they came from, wherever they arrive (forwarded,
or posted so to ``/v1/events``), and rows keyed by different names are refused, named."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import pytest

from tests.sidecar_support import total
from tests.test_forwarded_parity_s38g import CLASSES, PROBS, Call, forwarded, in_process


def _calls(seed: int, config_classes: bool) -> list[Call]:
    """Calls answering frames of the classes in shuffled column orders (now and then a binary-like
    frame of one class, refused as some of the classes), with feedback."""
    rng = random.Random(seed)
    calls: list[Call] = []
    for i in range(30):
        n = rng.randint(1, 4)
        x = [[rng.uniform(-3, 3), rng.uniform(-3, 3)] for _ in range(n)]
        p = [[rng.random() + 0.01 for _ in CLASSES] for _ in range(n)]
        p = [[v / sum(row) for v in row] for row in p]
        columns = list(CLASSES)
        rng.shuffle(columns)
        frame = pd.DataFrame([[row[CLASSES.index(c)] for c in columns] for row in p], columns=columns)
        if rng.random() < 0.1 and config_classes:
            frame = frame[[columns[0]]]  # some of the classes only: refused in both, output_shape
        ids = [f"r{i}_{j}" for j in range(n)]
        calls.append(("observe", (x, frame), {"request_id": ids}))
        if rng.random() < 0.5:
            calls.append(("feedback", (ids[0], rng.choice(CLASSES)), {}))
    return calls


@pytest.mark.parametrize("config_classes", [True, False])
def test_a_frame_of_class_scores_is_read_by_name_forwarded_as_in_process(tmp_path, config_classes: bool) -> None:
    config: dict[str, Any] = PROBS if config_classes else {**PROBS, "output": {"kind": "probabilities"}}
    for seed in range(2):
        calls = _calls(500 + seed, config_classes)
        expected = in_process(config, calls)
        assert expected[("monitor_calls", ())] >= 25
        assert expected.get(("monitor_predictions", ()), 0) >= 40  # read, not refused
        folder = tmp_path / f"{config_classes}{seed}"
        folder.mkdir()
        got, exposition = forwarded(config, calls, folder)
        assert total(exposition, "monitor_intake_events_refused_total") == 0
        assert got == expected, seed


def test_rows_keyed_by_class_posted_to_the_sidecar_are_read_by_name(tmp_path) -> None:
    from tests.sidecar_support import http, sample, start_sidecar

    s = start_sidecar({**PROBS, "model": "m"}, tmp_path)
    try:
        body = [
            {"model": "m", "inputs": [[0.1, 0.2], [0.3, 0.4]],
             "outputs": [{"z": 0.1, "y": 0.7, "n": 0.2}, {"n": 0.6, "z": 0.3, "y": 0.1}]},
            {"model": "m", "inputs": [[0.5, 0.6]], "outputs": [{"n": 0.5, "y": 0.5}]},  # two of three classes: refused
        ]
        reply = http("POST", s.url + "/v1/events", body)
        assert reply.status in (200, 202), reply.body
        s.flush()
        text = s.metrics()
        assert sample(text, "monitor_predicted_class_total", model="m", **{"class": "y"}) == 1
        assert sample(text, "monitor_predicted_class_total", model="m", **{"class": "n"}) == 1
        assert sample(text, "monitor_rows_rejected_total", model="m", reason="output_shape") == 1
    finally:
        s.close()


def test_a_frame_of_integer_class_columns_is_read_by_name_forwarded_as_in_process(tmp_path) -> None:
    """AutoGluon's ``predict_proba`` for labels 1, 2, 3 (ratings; -1/1) answers columns named by those
    integers. In process they were read by position, the classes named "0".."2" (the column 3's
    class called "2", a label 3 no class of them), where forwarded, JSON keys "1".."3", they were
    learnt by name: now learnt by name in both, a label joined to its own column."""
    rng = random.Random(7)
    calls: list[Call] = []
    for i in range(40):
        p = [rng.random() + 0.01 for _ in range(3)]
        columns = [1, 2, 3] if i % 4 else [3, 1, 2]  # now and then in another order, read by name too
        frame = pd.DataFrame([[p[c - 1] / sum(p) for c in columns]], columns=columns)
        calls.append(("observe", ([[rng.uniform(-3, 3), rng.uniform(-3, 3)]], frame), {"request_id": [f"r{i}"]}))
        calls.append(("feedback", (f"r{i}", 1 + p.index(max(p))), {}))  # the truth: the class of the top column
    config = {"features": ["a", "b"], "output": {"kind": "probabilities"}}
    expected = in_process(config, calls)
    assert {k[1][0][1] for k in expected if k[0] == "monitor_predicted_class"} == {"1", "2", "3"}
    got, exposition = forwarded(config, calls, tmp_path)
    assert total(exposition, "monitor_intake_events_refused_total") == 0
    assert got == expected


def test_a_frame_of_bool_class_columns_is_read_by_name_forwarded_as_in_process(tmp_path) -> None:
    """A binary model of labels False/True answers columns named False and True: in process they
    were read by position (classes "0", "1"), forwarded learnt by name from JSON's keys "false" and
    "true": the same calls counted under other classes. The worker now writes a frame's labels by
    their ``str()``, as the in-process readers name columns, and bool columns are learnt by name in
    process too: classes "False" and "True" on both sides, a label True joined to its column."""
    rng = random.Random(11)
    calls: list[Call] = []
    for i in range(40):
        p = rng.random()
        columns = [False, True] if i % 3 else [True, False]
        frame = pd.DataFrame([[1 - p if c is False else p for c in columns]], columns=columns)
        calls.append(("observe", ([[rng.uniform(-3, 3), rng.uniform(-3, 3)]], frame), {"request_id": [f"r{i}"]}))
        calls.append(("feedback", (f"r{i}", p > 0.5), {}))
    config = {"features": ["a", "b"], "output": {"kind": "probabilities"}}
    expected = in_process(config, calls)
    assert {k[1][0][1] for k in expected if k[0] == "monitor_predicted_class"} == {"False", "True"}
    got, exposition = forwarded(config, calls, tmp_path)
    assert total(exposition, "monitor_intake_events_refused_total") == 0
    assert got == expected
