"""On-call study, session 32: what the pages of a real sidecar through a real Alertmanager said
wrong or said twice (left open by session 31), as tests.

Rule tests run the same unit-test file through the real ``promtool test rules`` and through the
agent's own engine (``monitor rules test``).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_oncall_session7 import _run_unit_test


def test_accuracy_drop_says_how_many_points_from_what_to_what(tmp_path: Path) -> None:
    # The page read "Accuracy ... is 19% (percentage points) below the accuracy on the reference
    # data ... Window: 72% on 500 labels; reference: 91%": a drop of 19 points written as a
    # percentage, the two figures it is the difference of at the end, in the other order.
    _run_unit_test(tmp_path, "confidence.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_reference_accuracy_ratio{model="m"}'
                values: '0.91x40'
              - series: 'monitor_accuracy_ratio{model="m"}'
                values: '0.72x40'
              - series: 'monitor_labels_in_window{model="m"}'
                values: '500x40'
            alert_rule_test:
              - eval_time: 30m
                alertname: ModelAccuracyDrop
                exp_alerts:
                  - exp_labels: {severity: critical, model: m}
                    exp_annotations:
                      summary: "Model m accuracy dropped"
                      description: "Accuracy fell 19 percentage points, from 91% on the reference data to 72% on the labelled predictions of the window (500 labels), significant at z > 3."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelaccuracydrop"
    """)


def test_an_unknown_models_refusal_names_the_setting_that_lets_it_through(tmp_path: Path) -> None:
    # A multi-model server hosted a model the config does not monitor: every event of it was
    # refused 404 "no model named 'tokenizer' here; served: iris" and paged MonitorIntakeRefused;
    # the one setting that says "not monitored on purpose" (server.unmonitored_models) was named
    # only in the README. The answer now names it; a listed model is refused as unmonitored.
    from tests.sidecar_support import http, quiet_factory, start_sidecar

    iris = {"model": "iris", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]}}
    event = {"model": "tokenizer", "inputs": [[1.0, 2.0]], "outputs": [[0.5, 0.5]]}
    s = start_sidecar(iris, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        r = http("POST", s.url + "/v1/events", event)
        assert r.status == 404 and r.json()["reason"] == "unknown_model", r.body
        assert "server.unmonitored_models" in r.json()["error"], r.body
    finally:
        s.close()
    listed = start_sidecar({**iris, "server": {"unmonitored_models": ["tokenizer"]}}, tmp_path,
                           factory=quiet_factory(start_worker=False))
    try:
        r = http("POST", listed.url + "/v1/events", event)
        assert r.status == 404 and r.json()["reason"] == "unmonitored", r.body
    finally:
        listed.close()
