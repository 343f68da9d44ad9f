"""Prometheus-compatible alerting and recording rules evaluated inside the agent.

Rule files in Prometheus 2.x format are loaded (:mod:`monitor.rules.loader`), evaluated on the
agent's own metrics with Prometheus's alert state machine (:mod:`monitor.rules.alerting`,
:mod:`monitor.rules.evaluator`), delivered to Alertmanager, a webhook or the log
(:mod:`monitor.rules.notifier`), and unit-tested with promtool's test-file format
(:mod:`monitor.rules.unittest`). Submodules are imported on demand so ``import monitor`` stays
light.
"""

from __future__ import annotations

__all__: list[str] = []
