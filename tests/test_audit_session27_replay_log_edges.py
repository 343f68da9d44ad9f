"""Audit (session 27, s27f) of ``monitor replay`` on logs as they come from elsewhere.

* A log written with a byte-order mark (PowerShell's ``Out-File -Encoding utf8``, Excel and other
  Windows tools put one before the first line) lost its first event: the line was refused as
  ``invalid_json`` ("Unexpected UTF-8 BOM"). The mark is not part of the event: it is skipped.
* Rows the model's config refuses (inputs of another width, outputs of other classes) were
  counted only in the replay's own ``monitor_rows_rejected_total``, which nothing shows: the
  summary said "replayed 3,656 events ... no alert fired" with exit 0 when every prediction had
  been refused, and a backtest of the user's own rules (``--rules``) read as "these rules stay
  quiet on this traffic". The summary now says how many rows were refused, by reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main
from monitor.config import parse_config
from monitor.replay import replay

CONFIG = {"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
          "rules": {"files": [], "interval": "15s"}}


def _lines(n: int, width: int = 2, t0: float = 1_700_000_000.0) -> list[str]:
    return [json.dumps({"timestamp": t0 + i, "inputs": [float(i % 3)] * width, "outputs": [0.3, 0.7]}) for i in range(n)]


def test_a_byte_order_mark_before_the_first_line_is_not_an_event_lost():
    cfg = parse_config(CONFIG).model()
    lines = _lines(10)
    for first in ("\ufeff" + lines[0], ("\ufeff" + lines[0]).encode("utf-8")):
        summary = replay(cfg, [first, *lines[1:]])
        assert summary.events == 10 and not summary.refused, summary.lines()
    # elsewhere it is no mark: a line that starts with one further down is refused as before
    summary = replay(cfg, [lines[0], "\ufeff" + lines[1], *lines[2:]])
    assert summary.events == 9 and summary.refused["invalid_json"] == 1


def test_rows_the_config_refuses_are_in_the_summary(tmp_path: Path):
    cfg = parse_config(CONFIG).model()
    summary = replay(cfg, _lines(5) + _lines(7, width=3, t0=1_700_000_010.0))
    assert summary.events == 12
    assert summary.rows_rejected == {"wrong_shape": 7}
    text = "\n".join(summary.lines())
    assert "rows refused by the config: wrong_shape=7" in text and "monitor_rows_rejected_total" in text, text
    clean = replay(cfg, _lines(5))
    assert not clean.rows_rejected and "rows refused" not in "\n".join(clean.lines())

    # the command line shows it too
    (tmp_path / "rules.yml").write_text("groups: [{name: g, rules: [{alert: Never, expr: vector(1) < 0}]}]\n")
    (tmp_path / "monitor.yaml").write_text(json.dumps({**CONFIG, "rules": {"files": ["rules.yml"], "interval": "15s"}}))
    (tmp_path / "events.ndjson").write_text("\n".join(_lines(20, width=3)) + "\n")
    res = CliRunner().invoke(main, ["replay", str(tmp_path / "events.ndjson"), "--config", str(tmp_path / "monitor.yaml"),
                                    "--out", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 0, res.output
    assert "rows refused by the config: wrong_shape=20" in res.output, res.output
