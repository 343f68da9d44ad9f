"""MonitorIntakeRefused: traffic the sidecar refuses is traffic nobody monitors. A proxied client
that asks MLServer for ``predict`` only (no ``predict_proba`` tensor: ``missing_outputs``) was
counted in ``monitor_intake_events_refused_total`` and nothing watched that counter. Checked with
the real ``promtool test rules`` and with the agent's own engine, on the same unit-test file."""

from __future__ import annotations

from pathlib import Path

from tests.test_oncall_session7 import _run_unit_test

_URL = "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorintakerefused"
_DESC = ("More than 1% of the events (or proxied exchanges) of {m} arriving by {e} were refused by the sidecar over 10 "
         "minutes with reason {r}: that traffic is not monitored. Back-pressure (queue_full, overloaded) is left to "
         "MonitorIntakeOverloaded, a restart's refusals (shutting_down, not_ready) page nobody, the model server's 4xx answers to bad "
         "requests (client_error) to the model server's own metrics, request bodies that stopped arriving (client_timeout: "
         "the clients' broken uploads, answered 408, no prediction) to the clients, and the models listed in "
         "server.unmonitored_models "
         "(unmonitored) are not monitored on purpose.")


def test_refused_share_fires_per_model_endpoint_and_reason(tmp_path: Path) -> None:
    # "iris" over the proxy: 30 of 800 exchanges a minute lack the output tensor -> fires at 3.75%;
    # "iris" over /v1/events: 0.5% bad JSON -> silent; "busy": 30% refused as queue_full -> silent
    # (back-pressure); "_sidecar" (no model known): events naming an unknown model, 50 a minute next to
    # the 1,695 accepted for every model by /v1/events -> fires at 2.9% of that endpoint's traffic
    # (it was 100% when nothing was accepted under "_sidecar": a trickle of bad requests paged);
    # "iris" over the proxy, 14% of exchanges answered 4xx by the model server (client_error: the
    # clients' mistakes, no prediction to tap) -> silent (it paged: the final review); and 14% whose
    # request body stopped arriving (client_timeout: answered 408, no prediction either) -> silent.
    _run_unit_test(tmp_path, "core.yml", f"""
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_intake_events_accepted_total{{model="iris",endpoint="proxy"}}'
                values: '0+570x30'
              - series: 'monitor_intake_events_refused_total{{model="iris",endpoint="proxy",reason="missing_outputs"}}'
                values: '0+30x30'
              - series: 'monitor_intake_events_accepted_total{{model="iris",endpoint="events"}}'
                values: '0+995x30'
              - series: 'monitor_intake_events_refused_total{{model="iris",endpoint="events",reason="bad_json"}}'
                values: '0+5x30'
              - series: 'monitor_intake_events_accepted_total{{model="busy",endpoint="events"}}'
                values: '0+700x30'
              - series: 'monitor_intake_events_refused_total{{model="busy",endpoint="events",reason="queue_full"}}'
                values: '0+300x30'
              - series: 'monitor_intake_events_refused_total{{model="_sidecar",endpoint="events",reason="unknown_model"}}'
                values: '0+50x30'
              - series: 'monitor_intake_events_refused_total{{model="iris",endpoint="proxy",reason="client_error"}}'
                values: '0+100x30'
              - series: 'monitor_intake_events_refused_total{{model="iris",endpoint="proxy",reason="client_timeout"}}'
                values: '0+100x30'
            alert_rule_test:
              - eval_time: 25m
                alertname: MonitorIntakeRefused
                exp_alerts:
                  - exp_labels: {{severity: warning, model: iris, endpoint: proxy, reason: missing_outputs}}
                    exp_annotations:
                      summary: "3.75% of what proxy sends for iris is refused (missing_outputs)."
                      description: "{_DESC.format(m="iris", e="proxy", r="missing_outputs")}"
                      runbook_url: "{_URL}"
                  - exp_labels: {{severity: warning, model: _sidecar, endpoint: events, reason: unknown_model}}
                    exp_annotations:
                      summary: "2.865% of what events sends for _sidecar is refused (unknown_model)."
                      description: "{_DESC.format(m="_sidecar", e="events", r="unknown_model")}"
                      runbook_url: "{_URL}"
              - eval_time: 8m
                alertname: MonitorIntakeRefused
                exp_alerts: []
    """)
