"""Counters whose label values are known in advance are exported at 0 from the start.

A labelled counter created at its first increment is born at 1, and Prometheus' ``increase()``
reads 0 for that first event (no earlier sample to grow from): ``increase(x[10m]) > 0`` missed a
one-off detector failure or internal error, in a real Prometheus and in the agent alike, and
MonitorCheckpointFailing counted one failure less than there were. Prometheus' instrumentation
guidance is to initialise the series whose label values are known; where they are not
(``monitor_series_refused_total{metric}``), the rule counts the series' birth.

Each check runs on what the agent really exports: the rules evaluated by the agent itself, and
the exposition scraped minute by minute and handed to the real ``promtool test rules``.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml
from prometheus_client import CollectorRegistry

from monitor import Monitor, checkpoint
from monitor.detectors.base import Detector
from monitor.forwarding import FORWARD_DROP_REASONS
from monitor.pipeline import INTERNAL_ERROR_STAGES
from monitor.queue import SHED_REASONS
from monitor.server.forward import ForwardReceiver
from monitor.server.settings import ForwardSettings
from monitor.store import MetricStore
from tests.conftest import REPO_ROOT, require_binary
from tests.sidecar_support import quiet_factory, start_sidecar
from tests.test_oncall_session7 import _run_unit_test

T0 = 1_700_000_000.0
CORE = REPO_ROOT / "rules" / "core.yml"
_URL = "https://github.com/model-monitor/model-monitor/blob/main/README.md#"


class _FailsOnce(Detector):
    """Raises in its ``fail_at``-th update only (a one-off bug, e.g. an input it did not expect)."""

    kind = "fails_once"

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.calls = 0
        super().__init__()

    def _reset(self) -> None:
        pass

    def update(self, batch: Any) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("a one-off failure")

    def export(self, out: Any) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _samples(text: str, name: str) -> dict[str, float]:
    """``{series: value}`` of one family in an exposition text, as promtool input series."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


def test_a_one_off_detector_failure_fires_in_the_agent_and_in_prometheus(tmp_path: Path) -> None:
    """One event a minute for 20 minutes; the detector fails once, at minute 15. The agent's
    own rule evaluation fires MonitorDetectorFailing, and so does promtool on the series the
    agent exposed at each minute (what a Prometheus scraping it every minute stores)."""
    mon = Monitor(model="m", config={"rules": {"packs": ["core"], "interval": "15s", "log": False},
                                     "queue": {"batch_min": 1}},
                  registry=CollectorRegistry(), live=False, start_worker=False, detectors=[_FailsOnce(fail_at=16)])
    fired: set[tuple[str, str]] = set()
    scraped: list[dict[str, float]] = []
    try:
        for minute in range(21):
            mon.observe(np.zeros((1, 2)), np.array([[0.3, 0.7]]), timestamp=T0 + 60 * minute)
            mon.flush()
            fired |= {(a.name, a.state.value) for a in mon.alerts()}
            scraped.append(_samples(mon.metrics_text(), "monitor_detector_errors_total"))
    finally:
        mon.close()
    assert scraped[-1] == {'monitor_detector_errors_total{detector="fails_once",model="m"}': 1.0}
    assert ("MonitorDetectorFailing", "firing") in fired

    (series,) = scraped[-1]
    values = " ".join("_" if series not in s else f"{s[series]:g}" for s in scraped)
    unit = {"rule_files": [str(CORE)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": series, "values": values}],
        "alert_rule_test": [
            {"eval_time": "18m", "alertname": "MonitorDetectorFailing", "exp_alerts": [{
                "exp_labels": {"severity": "warning", "model": "m", "detector": "fails_once"},
                "exp_annotations": {
                    "summary": "Detector fails_once of m is failing.",
                    "description": "The detector raised 1 times in 10 minutes; its metrics are stale or absent.",
                    "runbook_url": _URL + "monitordetectorfailing"}}]},
            {"eval_time": "14m", "alertname": "MonitorDetectorFailing", "exp_alerts": []}]}]}
    test = tmp_path / "test.yml"
    test.write_text(yaml.safe_dump(unit, sort_keys=False))
    result = subprocess.run([require_binary("promtool"), "test", "rules", str(test)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, "promtool: " + result.stdout + result.stderr + test.read_text()


def test_a_fresh_monitor_exports_every_known_reason_stage_and_detector_at_zero() -> None:
    mon = Monitor(model="m", registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        text = mon.metrics_text()
        kinds = {getattr(d, "name", None) or d.kind for d in mon.detectors}
    finally:
        mon.close()
    assert kinds  # the default detectors
    assert _samples(text, "monitor_detector_errors_total") == {
        f'monitor_detector_errors_total{{detector="{k}",model="m"}}': 0.0 for k in kinds}
    assert _samples(text, "monitor_internal_errors_total") == {
        f'monitor_internal_errors_total{{model="m",stage="{s}"}}': 0.0 for s in INTERNAL_ERROR_STAGES}
    assert _samples(text, "monitor_events_dropped_total") == {
        f'monitor_events_dropped_total{{model="m",reason="{r}"}}': 0.0 for r in SHED_REASONS}


def test_the_forward_receiver_exports_every_drop_reason_at_zero() -> None:
    store = MetricStore("_sidecar")
    ForwardReceiver(SimpleNamespace(store=store), ForwardSettings())  # type: ignore[arg-type]
    assert {labels: v for name, labels, v in _family(store, "monitor_forward_events_dropped_total")} == {
        (("model", "_sidecar"), ("reason", r)): 0.0 for r in FORWARD_DROP_REASONS}
    assert store.value("monitor_internal_errors", ("forward",)) == 0.0


def _family(store: MetricStore, name: str) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return [(n, tuple(sorted(labels.items())), v) for n, labels, v in store.samples() if n == name]


def test_a_sidecar_with_checkpoints_exports_every_save_failure_reason_at_zero(tmp_path: Path) -> None:
    s = start_sidecar({"model": "iris", "checkpoint": {"path": str(tmp_path / "iris.ckpt"), "interval": "1h"}},
                      tmp_path, factory=quiet_factory(start_worker=False))
    try:
        got = _samples(s.metrics(), "monitor_checkpoint_failures_total")
    finally:
        s.close()
    assert got == {f'monitor_checkpoint_failures_total{{model="iris",operation="save",reason="{r}"}}': 0.0
                   for r in checkpoint.SAVE_FAILURE_REASONS}


def test_an_unexpected_save_failure_is_counted_under_a_reason_exported_at_zero(tmp_path: Path, monkeypatch) -> None:
    """A save that fails with an exception other than :class:`CheckpointError` (a detector's
    state_dict with a bug) was counted under its exception type's name: a label value born at 1,
    whose first failure MonitorCheckpointFailing's ``increase()`` never saw. It is now counted as
    ``unexpected`` (exported at 0 from the start), the type going to the log."""
    from monitor.server import keys as K

    s = start_sidecar({"model": "iris", "checkpoint": {"path": str(tmp_path / "iris.ckpt"), "interval": "1h"}},
                      tmp_path, factory=quiet_factory(start_worker=False))
    try:
        series = 'monitor_checkpoint_failures_total{model="iris",operation="save",reason="unexpected"}'
        assert _samples(s.metrics(), "monitor_checkpoint_failures_total")[series] == 0.0
        mon = s.sidecar.monitors["iris"]

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError("a detector's state_dict divided by zero")

        monkeypatch.setattr(mon, "save_checkpoint", broken)
        assert s.server.app[K.CHECKPOINTER].save("iris") is False
        got = _samples(s.metrics(), "monitor_checkpoint_failures_total")
    finally:
        s.close()
    assert got[series] == 1.0
    assert set(got) == {f'monitor_checkpoint_failures_total{{model="iris",operation="save",reason="{r}"}}'
                        for r in checkpoint.SAVE_FAILURE_REASONS}


def _literals(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_the_lists_name_every_reason_and_stage_the_code_counts() -> None:
    """The lists exported at 0 are complete: every literal reason passed to a queue's ``drop``,
    a forwarding worker's ``_count_drop``, the store's ``monitor_events_dropped`` and
    ``monitor_internal_errors`` (the model's stages; ``forward`` is the sidecar's receiver's), and
    every reason :func:`monitor.checkpoint.save` raises with."""
    shed: set[str] = set()
    forward: set[str] = set()
    stages: set[str] = set()
    save: set[str] = set()
    for path in sorted((REPO_ROOT / "monitor").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and path.name == "checkpoint.py" and node.name in ("save", "encode_state"):
                for call in ast.walk(node):
                    if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "CheckpointError":
                        save |= _literals(call.args[0])
            if isinstance(node, ast.Subscript) and getattr(node.value, "attr", None) == "_dropped":
                shed |= _literals(node.slice)
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            method, first = node.func.attr, node.args[0]
            if method == "drop":
                shed |= _literals(first) | ({"extractor_error"} if getattr(first, "id", None) == "EXTRACTOR_ERROR" else set())
            elif method == "_count_drop":
                forward |= _literals(first)
            elif method == "inc" and isinstance(first, ast.Constant):
                labels = next((k.value for k in node.keywords if k.arg == "labels"), None)
                if first.value == "monitor_events_dropped":
                    shed |= _literals(labels) if labels is not None else set()
                elif first.value == "monitor_internal_errors" and labels is not None:
                    stages |= _literals(labels) if path.name != "forward.py" else set()
    assert {"queue_full", "closed", "extractor_error", "invalid_timestamp"} <= shed  # the scan finds them
    assert shed <= set(SHED_REASONS), shed - set(SHED_REASONS)
    assert forward and forward | shed <= set(FORWARD_DROP_REASONS), forward - set(FORWARD_DROP_REASONS)
    assert stages and stages <= set(INTERNAL_ERROR_STAGES), stages - set(INTERNAL_ERROR_STAGES)
    assert save and save <= set(checkpoint.SAVE_FAILURE_REASONS), save - set(checkpoint.SAVE_FAILURE_REASONS)


def test_series_cap_reached_fires_on_the_first_refusal_of_a_metric(tmp_path: Path) -> None:
    """``monitor_series_refused_total{metric}`` is born at the first refusal (which metric
    reaches its cap is not known in advance): a single refusal fires MonitorSeriesCapReached. A
    series that only moved to another instance label (a rescheduled replica, its counters
    restored from a checkpoint) and one that no longer grows stay silent."""
    desc = ("New label combinations of {m} are refused to bound memory and scrape size; a label has more distinct "
            "values than expected.")
    _run_unit_test(tmp_path, "core.yml", f"""
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_series_refused_total{{model="m",metric="monitor_segment_rows_in_window",instance="a:1"}}'
                values: '_x69 1x70'
              - series: 'monitor_series_refused_total{{model="m",metric="monitor_errors",instance="a:1"}}'
                values: '4x70'
              - series: 'monitor_series_refused_total{{model="m",metric="monitor_errors",instance="b:1"}}'
                values: '_x71 4x70'
              - series: 'monitor_series_refused_total{{model="r",metric="monitor_errors",instance="a:1"}}'
                values: '2x140'
            alert_rule_test:
              - eval_time: 65m
                alertname: MonitorSeriesCapReached
                exp_alerts: []
              - eval_time: 75m
                alertname: MonitorSeriesCapReached
                exp_alerts:
                  - exp_labels: {{severity: info, model: m, metric: monitor_segment_rows_in_window}}
                    exp_annotations:
                      summary: "Metric monitor_segment_rows_in_window of m reached its series cap."
                      description: "{desc.format(m="monitor_segment_rows_in_window")}"
                      runbook_url: "{_URL}monitorseriescapreached"
              - eval_time: 135m
                alertname: MonitorSeriesCapReached
                exp_alerts: []
    """)
