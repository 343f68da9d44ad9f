"""``server.unmonitored_models``: a model the model server also serves, left unmonitored on purpose.

Noticed in session 10: behind a multi-model server (MLServer, Triton, KServe ModelMesh) the proxy
taps every ``/v2/models/NAME/infer``; a model the config does not monitor was counted as
``unknown_model``, logged as a warning and paged by MonitorIntakeRefused, with no way to say it
was intended. Listed under ``server.unmonitored_models`` it is forwarded as before, counted under
``reason="unmonitored"``, said once at INFO and paged by nobody; a model that is neither
monitored nor listed still pages. Real HTTP against a real upstream on every proxy engine.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from monitor.config import ConfigError
from tests.sidecar_support import http, total, wait_until
from tests.test_oncall_session7 import _run_unit_test
from tests.test_proxy import IRIS, engine, oip, start_proxying, upstream  # noqa: F401 - fixtures


def test_listed_models_are_forwarded_counted_as_unmonitored_and_said_once_at_info(tmp_path, upstream, engine, caplog):  # noqa: F811
    cfg = {"models": [IRIS], "server": {"unmonitored_models": ["tokenizer"], "proxy": {"oip_output": "probs"}}}
    s = start_proxying(cfg, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        with caplog.at_level(logging.INFO, logger="monitor.server"):
            for _ in range(3):
                assert http("POST", s.url + "/v2/models/tokenizer/infer", oip(1)).status == 200
            assert http("POST", s.url + "/v2/models/typo/infer", oip(1)).status == 200
            assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="proxy") == 4)
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="unmonitored") == 3
        assert total(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="unknown_model") == 1
        lines = [r for r in caplog.records if "(unmonitored)" in r.getMessage() and "refused" in r.getMessage()]
        assert len(lines) == 1 and lines[0].levelno == logging.INFO, [r.getMessage() for r in lines]
        assert [r for r in caplog.records if "unknown_model" in r.getMessage() and r.levelno == logging.WARNING]
    finally:
        s.close()


def test_a_name_both_monitored_and_unmonitored_is_refused_at_start(tmp_path):
    from monitor.config import parse_config
    from monitor.server.settings import settings_from

    with pytest.raises(ConfigError, match=r"server.unmonitored_models: names 'iris', which this config monitors"):
        settings_from(parse_config({**IRIS, "server": {"unmonitored_models": ["iris"]}}))
    with pytest.raises(ConfigError, match=r"server.unmonitored_models: must be a list of model names"):
        settings_from(parse_config({**IRIS, "server": {"unmonitored_models": "tokenizer"}}))


def test_monitor_intake_refused_pages_for_unknown_models_not_for_unmonitored_ones(tmp_path: Path) -> None:
    # all of _sidecar's proxied traffic is refused: 600 a minute for the listed model, none for
    # another; then a second sidecar whose 30 a minute name a model nobody listed -> fires
    _run_unit_test(tmp_path, "core.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_intake_events_accepted_total{model="iris",endpoint="proxy"}'
                values: '0+400x30'
              - series: 'monitor_intake_events_refused_total{model="_sidecar",endpoint="proxy",reason="unmonitored"}'
                values: '0+600x30'
            alert_rule_test:
              - eval_time: 25m
                alertname: MonitorIntakeRefused
                exp_alerts: []
    """)
