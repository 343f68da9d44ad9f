"""``Monitor.close(timeout)`` gives alert delivery no more than ``timeout``.

The notifier was flushed for ``timeout`` and then closed with its own default of 5 s: with an
Alertmanager that accepts connections and never answers, ``close(2.0)`` (what every monitor gets
at interpreter exit) took 7.0 s, and the sidecar's shutdown overran ``server.shutdown_timeout`` by
as much. Checked on the argument the notifier's ``close`` gets (no timed assertion).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import MonitorConfig, RulesConfig


def test_the_notifier_is_closed_within_what_is_left_of_the_timeout(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: vector(1)\n")
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=15.0, log_alerts=True))
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    notifier = mon.notifier
    assert notifier is not None
    given: list[float] = []
    close = notifier.close

    def spy(timeout_s: float = 5.0) -> None:
        given.append(timeout_s)
        close(timeout_s)

    notifier.close = spy  # type: ignore[method-assign]
    mon.close(2.0)
    assert len(given) == 1 and 0.0 <= given[0] <= 2.0
