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
              - series: 'monitor_reference_accuracy_rows{{model="quiet"}}'
                values: '2000x40'
              - series: 'monitor_reference_accuracy_ratio{{model="broken"}}'
                values: '0.75x40'
              - series: 'monitor_accuracy_ratio{{model="broken"}}'
                values: '0.62x40'
              - series: 'monitor_labels_in_window{{model="broken"}}'
                values: '300x40'
              - series: 'monitor_reference_accuracy_rows{{model="broken"}}'
                values: '2000x40'
            alert_rule_test:
              - eval_time: 30m
                alertname: ModelAccuracyDrop
                exp_alerts:
                  - exp_labels: {{severity: critical, model: broken}}
                    exp_annotations:
                      summary: "Model broken accuracy dropped 13 percentage points"
                      description: "Accuracy fell 13 percentage points, from 75% on the reference data to 62% on the labelled predictions of the window (300 labels), significant at z > 3."
                      runbook_url: "{_ACCURACY_URL}"
    """)


def test_accuracy_drop_against_a_perfect_reference_still_needs_significance(tmp_path: Path) -> None:
    # The final review: with the reference at 100% the variance under it is 0 and z infinite, so
    # "perfect" (0.90 on 50 labels, z = 2.4 under the window's own variance) paged as "significant
    # at z > 3"; the larger of the two variances is used now. "busy" (2,000,000 labels) renders
    # its label count as a number, not 2e+06.
    _run_unit_test(tmp_path, "confidence.yml", f"""
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_reference_accuracy_ratio{{model="perfect"}}'
                values: '1x40'
              - series: 'monitor_accuracy_ratio{{model="perfect"}}'
                values: '0.9x40'
              - series: 'monitor_labels_in_window{{model="perfect"}}'
                values: '50x40'
              - series: 'monitor_reference_accuracy_rows{{model="perfect"}}'
                values: '2000x40'
              - series: 'monitor_reference_accuracy_ratio{{model="busy"}}'
                values: '0.9x40'
              - series: 'monitor_accuracy_ratio{{model="busy"}}'
                values: '0.8x40'
              - series: 'monitor_labels_in_window{{model="busy"}}'
                values: '2000000x40'
              - series: 'monitor_reference_accuracy_rows{{model="busy"}}'
                values: '2000x40'
            alert_rule_test:
              - eval_time: 30m
                alertname: ModelAccuracyDrop
                exp_alerts:
                  - exp_labels: {{severity: critical, model: busy}}
                    exp_annotations:
                      summary: "Model busy accuracy dropped 10 percentage points"
                      description: "Accuracy fell 10 percentage points, from 90% on the reference data to 80% on the labelled predictions of the window (2000000 labels), significant at z > 3."
                      runbook_url: "{_ACCURACY_URL}"
    """)


def test_runbook_text_reads_adjacent_query_blocks_as_one_placeholder() -> None:
    # ModelAccuracyDrop's description splices three queried figures in a row; the README's runbook
    # read "data‹given in the alert›‹given in the alert›‹given in the alert›".
    from monitor.runbooks import readable

    # Since session 33 a block over a query reads as its text, the figure named by its metric
    # (tests/test_oncall_session33_pages.py); a block that cannot be followed is still one placeholder.
    text = readable('Below the reference. {{ with "a" | query }}{{ with first . }}Window: {{ value . }}{{ end }}{{ end }}'
                    '{{ with "b" | query }}{{ with first . }}\n on {{ value . }} labels{{ end }}{{ end }}; see {{ $labels.model }}.')
    assert text == "Below the reference. Window: ‹a› on ‹b› labels; see ‹model›."
    text = readable("Below the reference. {{ with $labels.a }}{{ . }}{{ end }}{{ if $labels.b }}\n{{ . }}{{ end }}; see "
                    "{{ $labels.model }}.")
    assert text == "Below the reference. ‹given in the alert›; see ‹model›."
    assert readable("Done.{{ with $labels.a }}{{ . }}{{ end }}") == "Done. ‹given in the alert›"


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


_OVERLOAD_DESC = ("Over 10 minutes, more than 5% of the events of {m} arriving by events were answered 429 (its queue full, "
                  "queue.capacity) or 503 (all queues together at server.max_queued_events; counted under _sidecar) with "
                  "Retry-After: 1. Senders that retry get in later; events refused to senders that do not retry are lost. "
                  "The worker does not drain as fast as the events arrive.")


def test_intake_back_pressure_pages(tmp_path: Path) -> None:
    # Walkthrough: a sidecar whose queue stays full refused 90% of the events posted to it (429,
    # queue_full) for minutes, and no alert of the core pack fired: back-pressure refusals are
    # excluded from MonitorIntakeRefused, are not shed events (MonitorShedsEvents), and the queue sat
    # at 75% (a batch of 150 does not fit in the 50 left of 200), under MonitorQueueNearlyFull's 80%.
    # Here "busy" loses 30% to queue_full: fires; "iris" 1%: silent (retries absorb short bursts);
    # 503s "overloaded" (all queues together full, counted under _sidecar) weigh against every
    # model's accepted events: 100 / (100 + 1,690) fires at 5.6%.
    _run_unit_test(tmp_path, "core.yml", f"""
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_intake_events_accepted_total{{model="busy",endpoint="events"}}'
                values: '0+700x30'
              - series: 'monitor_intake_events_refused_total{{model="busy",endpoint="events",reason="queue_full"}}'
                values: '0+300x30'
              - series: 'monitor_intake_events_accepted_total{{model="iris",endpoint="events"}}'
                values: '0+990x30'
              - series: 'monitor_intake_events_refused_total{{model="iris",endpoint="events",reason="queue_full"}}'
                values: '0+10x30'
              - series: 'monitor_intake_events_refused_total{{model="_sidecar",endpoint="events",reason="overloaded"}}'
                values: '0+100x30'
            alert_rule_test:
              - eval_time: 25m
                alertname: MonitorIntakeOverloaded
                exp_alerts:
                  - exp_labels: {{severity: warning, model: busy, endpoint: events}}
                    exp_annotations:
                      summary: "The sidecar refuses 30% of what events sends for busy: it does not keep up."
                      description: "{_OVERLOAD_DESC.format(m="busy")}"
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorintakeoverloaded"
                  - exp_labels: {{severity: warning, model: _sidecar, endpoint: events}}
                    exp_annotations:
                      summary: "The sidecar refuses 5.587% of what events sends for _sidecar: it does not keep up."
                      description: "{_OVERLOAD_DESC.format(m="_sidecar")}"
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorintakeoverloaded"
              - eval_time: 15m
                alertname: MonitorIntakeRefused
                exp_alerts: []
    """)


def _alternating(values: str, period: int, n: int, first: bool) -> str:
    """``values`` on the minutes of every other run of ``period`` minutes (from the first run when
    ``first``), stale markers on the others: a series whose labels the exporter keeps changing."""
    out = []
    for minute in range(n):
        on = (minute // period) % 2 == (0 if first else 1)
        out.append(values if on else "stale")
    return " ".join(out)


def test_segment_gaps_are_one_alert_while_the_widest_pair_changes(tmp_path: Path) -> None:
    # Walkthrough: segment apac's accuracy fell 34 points under eu's and us's (z = 29); eu and us,
    # alike, took turns as the best segment, and the metrics' high label moved between them every few
    # scrapes (seen in Prometheus). The alert carried high and low, so each change ended one alert
    # and started another, pending again: with the shipped for: 30m it never fired. Same for the
    # regression gap. Here the pair changes every 4 minutes for 50 minutes: one alert per model
    # and figure fires, naming the pair of the moment (the last minutes: us over apac).
    gap = lambda first: _alternating("0.34", 4, 50, first)  # noqa: E731
    z = lambda first: _alternating("29", 4, 50, first)  # noqa: E731
    mae = lambda first: _alternating("3", 4, 50, first)  # noqa: E731
    mz = lambda first: _alternating("12", 4, 50, first)  # noqa: E731
    _run_unit_test(tmp_path, "confidence.yml", f"""
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_segment_max_gap_ratio{{model="m",figure="accuracy",high="eu",low="apac"}}'
                values: '{gap(True)}'
              - series: 'monitor_segment_max_gap_zscore{{model="m",figure="accuracy",high="eu",low="apac"}}'
                values: '{z(True)}'
              - series: 'monitor_segment_max_gap_ratio{{model="m",figure="accuracy",high="us",low="apac"}}'
                values: '{gap(False)}'
              - series: 'monitor_segment_max_gap_zscore{{model="m",figure="accuracy",high="us",low="apac"}}'
                values: '{z(False)}'
              - series: 'monitor_regression_mae{{model="r"}}'
                values: '4x50'
              - series: 'monitor_regression_segment_max_mae_gap{{model="r",high="b",low="a"}}'
                values: '{mae(True)}'
              - series: 'monitor_regression_segment_max_mae_gap_zscore{{model="r",high="b",low="a"}}'
                values: '{mz(True)}'
              - series: 'monitor_regression_segment_max_mae_gap{{model="r",high="b",low="c"}}'
                values: '{mae(False)}'
              - series: 'monitor_regression_segment_max_mae_gap_zscore{{model="r",high="b",low="c"}}'
                values: '{mz(False)}'
            alert_rule_test:
              - eval_time: 45m
                alertname: ModelSegmentGap
                exp_alerts:
                  - exp_labels: {{severity: warning, model: m, figure: accuracy}}
                    exp_annotations:
                      summary: "Model m treats segments differently (accuracy)"
                      description: "The accuracy of two segments differs by 34 percentage points over the window (z > 4): segment us above segment apac now. The two segments widest apart may change while the gap lasts; the Confidence dashboard's \\"Largest gap between segments\\" panel shows them over time."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelsegmentgap"
              - eval_time: 45m
                alertname: RegressionSegmentErrorGap
                exp_alerts:
                  - exp_labels: {{severity: warning, model: r}}
                    exp_annotations:
                      summary: "Model r makes larger errors for one segment (b)"
                      description: "The mean absolute error of one segment exceeds that of another by 3 (target units) over the window (now segment b over segment c): more than a quarter of the whole window's MAE, z > 4 (regression detector with by_segment: true)."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#regressionsegmenterrorgap"
    """)


def test_generator_url_advice_points_at_a_prometheus_not_the_sidecar(tmp_path: Path) -> None:
    # Walkthrough: with rules.external_url at the sidecar, as examples/monitor.yaml suggested ("a link
    # to this sidecar"), Alertmanager's "Source" link of every alert (generatorURL, external_url +
    # /graph?g0.expr=...) answered 404: the sidecar has no /graph. The README and the example now say
    # what the URL is built from and where to point it.
    from monitor.rules.template_funcs import table_link
    from tests.conftest import REPO_ROOT
    from tests.sidecar_support import http, start_sidecar

    raw = {"model": "iris", "features": ["a", "b", "c", "d"],
           "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
    s = start_sidecar(raw, tmp_path)
    try:
        assert http("GET", s.url + table_link("monitor_queue_capacity > 0")).status == 404
    finally:
        s.close()
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "`rules.external_url` followed by `/graph?g0.expr=" in readme and "not at the sidecar" in readme
    example = [line for line in (REPO_ROOT / "examples" / "monitor.yaml").read_text(encoding="utf-8").splitlines()
               if line.strip().startswith("external_url:")]
    assert len(example) == 1 and "generatorURL" in example[0] and "Prometheus" in example[0], example


def test_confidence_drift_summaries_name_the_score(tmp_path: Path) -> None:
    # Walkthrough: a confidence drift fired one alert per score (confidence, entropy); Alertmanager
    # grouped them into one notification whose two summaries read the same, "Model fraud confidence
    # distribution changed". Each summary named its score; since session 32 the one alert of the
    # model names both (tests/test_oncall_session32_pages.py).
    _run_unit_test(tmp_path, "confidence.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_confidence_drift_distance{model="m",score="confidence"}'
                values: '0.3x30'
              - series: 'monitor_confidence_drift_pvalue{model="m",score="confidence"}'
                values: '0x30'
              - series: 'monitor_confidence_drift_distance{model="m",score="entropy"}'
                values: '0.39x30'
              - series: 'monitor_confidence_drift_pvalue{model="m",score="entropy"}'
                values: '0x30'
            alert_rule_test:
              - eval_time: 20m
                alertname: ModelConfidenceDrift
                exp_alerts:
                  - exp_labels: {severity: warning, model: m}
                    exp_annotations:
                      summary: "Model m: the distribution of its confidence and entropy changed"
                      description: "The distribution of the model's confidence (Kolmogorov-Smirnov distance 0.30) and entropy (Kolmogorov-Smirnov distance 0.39) over the window differs from the reference (p < 0.001): the inputs moved away from what the model knows, or, with no input-drift alert, the model itself changed."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelconfidencedrift"
    """)


def test_shipped_ratio_rules_hold_for_at_least_their_range() -> None:
    # Walkthrough: 3 minutes after a sidecar restart, the agent read ModelErrorRateHigh at 6.5% where
    # Prometheus read 3.7%: its sample history starts at the restart, so the 5m rate of the calls
    # (an old counter) covered 3 minutes and that of a new exception's errors all of them. A ratio
    # rule whose for: is at least its range cannot fire on that alone (README, Alert rules).
    import re

    import yaml

    from monitor.rules.duration import parse_duration
    from tests.conftest import REPO_ROOT

    checked = []
    for path in sorted((REPO_ROOT / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                expr = rule["expr"]
                if "/" not in expr or not re.search(r"\b(rate|increase|irate)\(", expr):
                    continue
                longest = max(parse_duration(r) for r in re.findall(r"\[(\d+[smhdwy])\]", expr))
                assert parse_duration(str(rule.get("for", "0s"))) >= longest, f"{path.name}: {rule['alert']}"
                checked.append(rule["alert"])
    assert "ModelErrorRateHigh" in checked and "MonitorIntakeOverloaded" in checked


_FORWARD_DESC = ("{n} events were dropped in 5 minutes by the processes forwarding to this sidecar (ForwardingMonitor, "
                 "MONITOR_FORWARD), with reason socket_full: that traffic is not monitored. socket_full: the sidecar does "
                 "not read its socket as fast as the workers send; sidecar_unavailable: nothing listens at the forwarding "
                 "address; too_large, send_error, unserializable: an event or datagram could not be sent; queue_full and "
                 "the other reasons of MonitorShedsEvents: a worker's own queue.")


def test_forwarding_workers_drops_page_when_they_go_on(tmp_path: Path) -> None:
    # Walkthrough: the events gunicorn workers drop before they reach the sidecar (their reports land in
    # monitor_forward_events_dropped_total under model="_sidecar") were read by no rule and no panel:
    # a sidecar that could not keep up with its forwarding socket lost traffic silently. socket_full
    # drops going on for half an hour fire; the lump a restarted sidecar receives once (the workers'
    # sidecar_unavailable drops of its restart) does not.
    _run_unit_test(tmp_path, "core.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_forward_events_dropped_total{model="_sidecar",reason="socket_full"}'
                values: '0+10x30'
              - series: 'monitor_forward_events_dropped_total{model="_sidecar",reason="sidecar_unavailable"}'
                values: '0 0 0 0 0 500x25'
            alert_rule_test:""" + "".join(f"""
              - eval_time: {m}m
                alertname: MonitorForwardingDrops
                exp_alerts:
                  - exp_labels: {{severity: warning, model: _sidecar, reason: socket_full}}
                    exp_annotations:
                      summary: "Forwarding workers drop events before they reach the sidecar (socket_full)."
                      description: "{_FORWARD_DESC.format(n=50)}"
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorforwardingdrops"
    """ for m in (9, 10, 11, 20)))


def test_agent_health_shows_forwarding_drops() -> None:
    # The runbook of MonitorForwardingDrops sends on-call to the Agent health dashboard.
    import json

    from tests.conftest import REPO_ROOT

    board = json.loads((REPO_ROOT / "grafana" / "dashboards" / "monitor-agent.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", []) if "monitor_forward_events_dropped_total" in t["expr"]]
    assert exprs and all("[$__rate_interval]" in e and "_sidecar" in e for e in exprs), exprs


def test_overconfidence_alerts_need_p_below_a_hundredth_and_per_segment_a_thousandth(tmp_path: Path) -> None:
    # Walkthrough (replays of a healthy model, ~540 labels an hour, 136 h of event time in all):
    # ModelOverconfident fired once, on a gap of 5 points at p about 0.005, and ModelSegmentOverconfident
    # stayed pending for its whole 15 minutes once: a sliding window's p-value stays low for many
    # minutes, so the for: gives no second look. The whole-model alert keeps issue 3's 1% (its power
    # target; one warning per 59 h of a calibrated model, said in the pack); the per-segment one needs 0.001 after
    # dividing by the segments, as the segment drift alerts do. "noise" (p 0.02; 0.002 x 3 segments)
    # is silent; "bad" (p 1e-5) fires.
    _run_unit_test(tmp_path, "confidence.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_overconfidence_gap_ratio{model="noise"}'
                values: '0.05x40'
              - series: 'monitor_overconfidence_pvalue{model="noise"}'
                values: '0.02x40'
              - series: 'monitor_overconfidence_gap_ratio{model="bad"}'
                values: '0.12x40'
              - series: 'monitor_overconfidence_pvalue{model="bad"}'
                values: '0.00001x40'
              - series: 'monitor_segment_overconfidence_gap_ratio{model="noise",segment="eu"}'
                values: '0.09x40'
              - series: 'monitor_segment_overconfidence_pvalue{model="noise",segment="eu"}'
                values: '0.002x40'
              - series: 'monitor_segments_tracked{model="noise"}'
                values: '3x40'
              - series: 'monitor_segment_overconfidence_gap_ratio{model="bad",segment="eu"}'
                values: '0.2x40'
              - series: 'monitor_segment_overconfidence_pvalue{model="bad",segment="eu"}'
                values: '0.00001x40'
              - series: 'monitor_segments_tracked{model="bad"}'
                values: '3x40'
            alert_rule_test:
              - eval_time: 35m
                alertname: ModelOverconfident
                exp_alerts:
                  - exp_labels: {severity: warning, model: bad}
                    exp_annotations:
                      summary: "Model bad is over-confident"
                      description: "On the labelled predictions of the calibration window, mean confidence exceeds accuracy by 12 percentage points (significant at 1%). Its probabilities should not be trusted as they are: monitor_recalibration_temperature has no value (too few labels for its fit, or outputs no temperature changes, as a one-hot model's): recalibrate by binning (isotonic) or retrain."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modeloverconfident"
              - eval_time: 35m
                alertname: ModelSegmentOverconfident
                exp_alerts:
                  - exp_labels: {severity: warning, model: bad, segment: eu}
                    exp_annotations:
                      summary: "Model bad is over-confident on segment eu"
                      description: "On the labelled predictions of segment eu, mean confidence exceeds accuracy by 20 percentage points (significant at 0.1% after dividing by the number of segments tracked). The model as a whole may look calibrated: its probabilities should not be trusted for this segment."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelsegmentoverconfident"
    """)
