"""Audit (session 27, s27f): ``monitor replay`` on a log that is not in time order.

Events are read 5,000 at a time, sorted within each read and evaluated at every rule tick; an
event further down the log whose time lies before ticks already evaluated was seen late, silently.
A common way to build a backtest log does exactly that: a prediction log and a label log
concatenated (``cat predictions.ndjson labels.ndjson``). On 1.5 h of traffic whose second half
is over-confident, ModelOverconfident, ModelCalibrationErrorHigh and ModelAccuracyDrop fired
on the log in time order and never on the concatenated one, and the summary read the same but
for the alerts. The summary now counts the events that came after rule evaluations past their
time, by type, names the first one's line and says how to fix the log (sort it by timestamp).
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main
from monitor.config import parse_config
from monitor.replay import replay

CONFIG = {"model": "m", "features": ["a"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
          "rules": {"files": [], "interval": "15s"}}
T0 = 1_700_000_000.0


def _predictions(n: int) -> list[str]:
    return [json.dumps({"timestamp": T0 + i, "inputs": [float(i % 3)], "outputs": [0.3, 0.7], "request_id": f"r{i}"})
            for i in range(n)]


def _labels(n: int) -> list[str]:
    return [json.dumps({"type": "feedback", "timestamp": T0 + i + 60, "request_ids": [f"r{i}"], "labels": ["y"]})
            for i in range(n)]


def _config(tmp_path: Path):
    (tmp_path / "rules.yml").write_text("groups: [{name: g, rules: [{alert: Never, expr: vector(1) < 0}]}]\n")
    return parse_config({**CONFIG, "rules": {"files": [str(tmp_path / "rules.yml")], "interval": "15s"}}).model()


def test_a_prediction_log_and_a_label_log_concatenated_is_said_to_be_out_of_order(tmp_path: Path):
    cfg = _config(tmp_path)
    merged = sorted(_predictions(600) + _labels(600), key=lambda line: json.loads(line)["timestamp"])
    in_order = replay(cfg, merged, chunk=100)
    assert not in_order.late and "time order" not in "\n".join(in_order.lines())

    concatenated = replay(cfg, _predictions(600) + _labels(600), chunk=100)
    assert concatenated.late["feedback"] > 500, concatenated.late
    text = "\n".join(concatenated.lines())
    assert "not in time order" in text and "feedback" in text and "line 601" in text and "sort" in text, text


def test_disorder_within_one_read_is_no_lateness(tmp_path: Path):
    cfg = _config(tmp_path)
    lines = _predictions(300)
    shuffled = lines[100:200] + lines[:100] + lines[200:]
    summary = replay(cfg, shuffled, chunk=5000)
    assert not summary.late


def test_the_command_line_says_it(tmp_path: Path):
    (tmp_path / "rules.yml").write_text("groups: [{name: g, rules: [{alert: Never, expr: vector(1) < 0}]}]\n")
    (tmp_path / "monitor.yaml").write_text(json.dumps({**CONFIG, "rules": {"files": ["rules.yml"], "interval": "15s"}}))
    (tmp_path / "events.ndjson").write_text("\n".join(_predictions(6000) + _labels(10)) + "\n")
    res = CliRunner().invoke(main, ["replay", str(tmp_path / "events.ndjson"), "--config", str(tmp_path / "monitor.yaml"),
                                    "--out", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 0, res.output
    assert "10 events (feedback=10) came after rule evaluations past their time" in res.output, res.output
