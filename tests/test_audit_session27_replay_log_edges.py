"""Audit (session 27, s27f) of ``monitor replay`` on logs as they come from elsewhere.

* A log written with a byte-order mark (PowerShell's ``Out-File -Encoding utf8``, Excel and other
  Windows tools put one before the first line) lost its first event: the line was refused as
  ``invalid_json`` ("Unexpected UTF-8 BOM"). The mark is not part of the event: it is skipped.
"""

from __future__ import annotations

import json
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

