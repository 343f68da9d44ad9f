"""Evaluations caught up after a stall of the worker must not send firing alerts that arrive
expired. The agent's rule ticks follow event time and, live, the wall clock; when the worker
stalls (CPU throttling, a suspended container) the missed ticks run on its return, each at its
own time, and each sent what was due then with ``endsAt = ts + 4 x max(resend delay, interval)``
(Prometheus's ``validUntil``): after a stall of over 4 minutes those firing alerts reached
Alertmanager with ``endsAt`` already past, which it reads as resolved (a "resolved" notification
to on-call for an alert still firing). Live, the evaluator holds such alerts back; the first
evaluation recent enough sends them (its ``endsAt`` ahead of the clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.promql import Engine, SeriesStore
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.loader import load_rule_files


def _evaluator(tmp_path: Path, wall: list[float], sent: list[tuple[float, float | None, bool]],
               live: bool) -> RuleEvaluator:
    rules = tmp_path / "r.yml"
    rules.write_text("groups:\n- name: g\n  interval: 15s\n  rules:\n  - alert: A\n    expr: vector(1)\n")

    class Capture:
        def send(self, alerts: list) -> None:
            sent.extend((wall[0], a.ends_at, a.resolved) for a in alerts)

    engine = Engine()
    return RuleEvaluator(load_rule_files([str(rules)], engine=engine), engine=engine,
                         storage=SeriesStore(retention_s=3600.0), notifier=Capture(),
                         wall_clock=(lambda: wall[0]) if live else None)


@pytest.mark.parametrize("stall_s", [300.0, 900.0, 3600.0])
def test_no_firing_alert_is_sent_expired_after_a_stall(tmp_path: Path, stall_s: float) -> None:
    wall = [1_000.0]
    sent: list[tuple[float, float | None, bool]] = []
    evaluator = _evaluator(tmp_path, wall, sent, live=True)
    evaluator.evaluate(wall[0])
    assert len(sent) == 1  # fired at once (no for:), sent
    wall[0] += stall_s  # the worker was away; its return catches the missed ticks up
    evaluator.evaluate(wall[0])
    expired = [(at, ends) for at, ends, resolved in sent if not resolved and ends is not None and ends < at]
    assert expired == []
    assert len(sent) >= 2 and sent[-1][1] is not None and sent[-1][1] > wall[0]  # sent again, valid
    assert evaluator.evaluations == 1 + stall_s // 15  # every missed tick was still evaluated


def test_without_a_wall_clock_every_caught_up_send_stays(tmp_path: Path) -> None:
    """Event time only (a replay, tests): the sends are those of Prometheus at each instant."""
    wall = [1_000.0]
    sent: list[tuple[float, float | None, bool]] = []
    evaluator = _evaluator(tmp_path, wall, sent, live=False)
    evaluator.evaluate(wall[0])
    wall[0] += 900.0
    evaluator.evaluate(wall[0])
    # resent every 75 s of event time (the first tick 60 s or more after the last send)
    assert len(sent) == 1 + 900 // 75
    assert sum(1 for at, ends, _ in sent if ends is not None and ends < at) > 0
