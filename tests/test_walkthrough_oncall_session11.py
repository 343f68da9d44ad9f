"""On-call walkthrough, session 11: the shipped rule packs paged by a real sidecar through a real
Alertmanager and evaluated by a real Prometheus; what the on-call engineer found, as tests.

Rule tests run the same unit-test file through the real ``promtool test rules`` and through the
agent's own engine (``monitor rules test``).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_oncall_session7 import _run_unit_test

_ACCURACY_URL = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelaccuracydrop"


def test_accuracy_drop_needs_significance_on_the_window_labels(tmp_path: Path) -> None:
    # "quiet": a healthy model scored on 120 delayed labels an hour: its window accuracy sits at 0.69
    # against the reference's 0.75 (z = 0.06 / sqrt(0.75 * 0.25 / 120) = 1.5, the binomial noise of
    # 120 labels). The rule compared the difference with 0.05 alone and paged (critical) after
    # 15 minutes; simulated with Poisson labels at 100 to 300 an hour, that is one to two pages a
    # day on a healthy model. "broken": 0.62 on 300 labels (z = 5.2) still fires, and the
    # description gives the accuracy, the labels it rests on and the reference.
    _run_unit_test(tmp_path, "confidence.yml", f"""
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_reference_accuracy_ratio{{model="quiet"}}'
                values: '0.75x40'
              - series: 'monitor_accuracy_ratio{{model="quiet"}}'
                values: '0.69x40'
              - series: 'monitor_labels_in_window{{model="quiet"}}'
                values: '120x40'
              - series: 'monitor_reference_accuracy_ratio{{model="broken"}}'
                values: '0.75x40'
              - series: 'monitor_accuracy_ratio{{model="broken"}}'
                values: '0.62x40'
              - series: 'monitor_labels_in_window{{model="broken"}}'
                values: '300x40'
            alert_rule_test:
              - eval_time: 30m
                alertname: ModelAccuracyDrop
                exp_alerts:
                  - exp_labels: {{severity: critical, model: broken}}
                    exp_annotations:
                      summary: "Model broken accuracy dropped"
                      description: "Accuracy on the labelled predictions of the window is 13% (percentage points) below the accuracy on the reference data, significant at z > 3. Window: 62% on 300 labels; reference: 75%."
                      runbook_url: "{_ACCURACY_URL}"
    """)


def test_runbook_text_reads_adjacent_query_blocks_as_one_placeholder() -> None:
    # ModelAccuracyDrop's description splices three queried figures in a row; the README's runbook
    # read "data‹given in the alert›‹given in the alert›‹given in the alert›".
    from monitor.runbooks import readable

    text = readable('Below the reference. {{ with "a" | query }}{{ with first . }}Window: {{ value . }}{{ end }}{{ end }}'
                    '{{ with "b" | query }}{{ with first . }}\n on {{ value . }} labels{{ end }}{{ end }}; see {{ $labels.model }}.')
    assert text == "Below the reference. ‹given in the alert›; see ‹model›."
    assert readable("Done.{{ with \"a\" | query }}{{ . }}{{ end }}") == "Done. ‹given in the alert›"


def test_a_full_queue_counts_its_429s_under_the_model(tmp_path: Path) -> None:
    # The README: refusals are counted "under the model the events were for when the event says it".
    # A 429 for a full queue names its model in its own message, yet was counted under
    # model="_sidecar": an alert on back-pressure could not say (or route by) which model lost events.
    from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

    raw = {"model": "iris", "features": ["a", "b", "c", "d"], "queue": {"capacity": 5},
           "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        events = [{"inputs": [1.0, 1.0, 2.0, 3.0], "outputs": [0.2, 0.5, 0.3]}] * 4
        assert http("POST", s.url + "/v1/events", events).status == 202
        r = http("POST", s.url + "/v1/events", events[:2])
        assert r.status == 429 and r.json()["reason"] == "queue_full"
        text = s.metrics()
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="events", reason="queue_full") == 2
        assert sample(text, "monitor_intake_events_refused_total", model="_sidecar", endpoint="events", reason="queue_full") is None
    finally:
        s.close()
