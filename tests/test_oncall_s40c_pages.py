"""On-call follow-up s40c: pages that named the wrong thing or gave on-call too little to act on
(session 39's walkthrough), as tests through the real promtool / Prometheus / Alertmanager and the agent."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.test_oncall_session32_pages import _alert, _run_alert_test


def test_windowed_drift_page_of_the_pca_detectors_says_what_their_statistics_are(tmp_path: Path) -> None:
    # ModelFeaturesDriftedOverWindow for pca_drift read "1 feature(s) of model m drifted over the window:
    # `reconstruction_error`", and for pca_drift_embedding called `component_2` a feature: neither is an
    # input, and the page's "the features' effect ... ModelInputDrift still firing" sent on-call to the
    # wrong alert. Those detectors' pages now say what the statistics are and what to look at; the
    # feature detectors' page is unchanged (tests/test_oncall_session32_pages.py). promtool and the agent.
    series = []
    for model, detector, effects in (("m", "pca_drift", {"reconstruction_error": 0.3}),
                                     ("e", "pca_drift_embedding", {"component_2": 0.4, "reconstruction_error": 0.2})):
        series.append(f"""
              - series: 'monitor_drift_features_drifted{{model="{model}",detector="{detector}"}}'
                values: '{len(effects)}x40'""")
        for name, js in effects.items():
            series.append(f"""
              - series: 'monitor_drift_feature_drifted{{model="{model}",detector="{detector}",feature="{name}"}}'
                values: '1x40'
              - series: 'monitor_drift_feature_effect{{model="{model}",detector="{detector}",feature="{name}",measure="js"}}'
                values: '{js}x40'""")
    head = ("Over the event-time window, {n} of the {d} detector's statistics differ from the reference with significance "
            "after multiple-testing correction and a Jensen-Shannon distance of at least the configured minimum. They are "
            "not input features: `reconstruction_error` is how badly the PCA fitted on the reference's ")
    tail = (" A drift that ended shows here for up to the window, and this page can first come after the inputs returned "
            "(its `for:` is 30 minutes): ModelMultivariateDrift still firing, or the multivariate score on the Drift "
            "dashboard, says whether it goes on.")
    rows = ("standardised features rebuilds each row (higher: rows that break the reference's correlations between "
            "features, as a join mixing rows or noise on some rows do, where no single feature need have moved): find the "
            "features at fault in ModelInputDrift or ModelFeatureOutOfRange for the model, or the features' effect on the "
            "Drift dashboard, and check their common upstream (a join, a new pipeline).")
    embeddings = ("embeddings rebuilds each embedding (higher: inputs unlike any in the reference, a new domain or language, "
                  "or another encoder or version making the embeddings: check whether it changed), `component_N` the "
                  "embeddings' coordinate along the reference's N-th main direction (a shift along it: another mix of "
                  "inputs, new topics or clients: compare recent inputs with the reference's; rebuild the reference if the "
                  "new mix is expected).")
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelfeaturesdriftedoverwindow"
    _run_alert_test(tmp_path, "drift.yml", series, "35m", "ModelFeaturesDriftedOverWindow",
                    _alert("severity: info, model: m, detector: pca_drift",
                           "Model m: its rows fit the reference's correlations between features worse over the window "
                           "(pca_drift): `reconstruction_error`",
                           head.format(n=1, d="pca_drift") + rows + tail, url)
                    + _alert("severity: info, model: e, detector: pca_drift_embedding",
                             "Model e: its embeddings moved over the window (pca_drift_embedding): `component_2`, "
                             "`reconstruction_error`",
                             head.format(n=2, d="pca_drift_embedding") + embeddings + tail, url))

    # The README's section reads the feature detectors' text (the general case) and its first steps the PCA ones'.
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("\n### ModelFeaturesDriftedOverWindow\n", 1)[1].split("\n### ", 1)[0]
    assert "Over the event-time window, ‹value› feature(s) differ" in section and "‹given in the alert›" not in section
    assert "`reconstruction_error`" in section and "`component_N`" in section


def test_clients_api_gives_readable_times_beside_the_epoch_floats(tmp_path: Path) -> None:
    # The runbook of ModelProbingSuspiciousClient sends on-call to GET /api/v1/clients for "since when"; it
    # answered `"since_ts": 1700000080.0`, `"first_seen_ts": 1700000000.0`: epoch floats a person cannot read
    # at 3 a.m. Each `*_ts` is now followed by its RFC 3339 time in UTC (`*_time`), the floats kept for scripts;
    # the lookup's verdict alike. Real HTTP against a sidecar.
    from typing import Any

    import numpy as np
    from prometheus_client import CollectorRegistry

    from monitor.config import MonitorConfig
    from monitor.core import Monitor
    from tests import probing_streams as S
    from tests.sidecar_support import http, start_sidecar

    made: dict[str, Monitor] = {}

    def factory(cfg: MonitorConfig) -> Monitor:
        made[cfg.model] = Monitor(config=cfg, reference=S.reference(), registry=CollectorRegistry(auto_describe=False),
                                  start_worker=False, live=False)
        return made[cfg.model]

    models: list[dict[str, Any]] = [{"model": "m", "features": [f"f{i}" for i in range(S.D)],
                                     "output": {"kind": "probabilities", "classes": ["a", "b", "c", "d"]}}]
    (tmp_path / "w").write_text("w-token-0123456789abcdef")
    s = start_sidecar({"models": models, "server": {"write_token_file": "w"}}, tmp_path, factory=factory)
    try:
        walk = S.probing(np.random.default_rng(0), 120)
        for i in range(0, 120, 20):
            made["m"].observe(walk[i:i + 20], S.scores(walk[i:i + 20]), client="sk-1", timestamp=1.7e9 + i)
        made["m"].flush()
        clients = http("GET", s.url + "/api/v1/clients").json()["data"]["clients"]
        lookup = http("POST", s.url + "/api/v1/clients/lookup", {"client": "sk-1"},
                      headers={"Authorization": "Bearer w-token-0123456789abcdef"}).json()["data"]["lookup"]
    finally:
        s.close()
    assert len(clients) == 1, clients
    verdict = clients[0]
    assert verdict["first_seen_ts"] == 1.7e9 and verdict["first_seen_time"] == "2023-11-14T22:13:20.000Z", verdict
    assert verdict["last_seen_ts"] == 1.7e9 + 100 and verdict["last_seen_time"] == "2023-11-14T22:15:00.000Z", verdict
    # the readable time stands right after its float
    keys = list(verdict)
    assert keys.index("first_seen_time") == keys.index("first_seen_ts") + 1
    signal = verdict["signals"][0]
    import datetime as dt

    assert signal["since_time"] == dt.datetime.fromtimestamp(signal["since_ts"], dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert verdict["first_flagged_time"] is not None and verdict["first_flagged_time"].startswith("2023-11-14T22:1")
    assert lookup[0]["verdict"]["first_seen_time"] == "2023-11-14T22:13:20.000Z", lookup


def test_proxy_upstream_page_names_the_model_server_and_its_models(tmp_path: Path) -> None:
    # MonitorProxyUpstreamFailing read "11.11% of the requests proxied to the model server fail before it
    # answers", model="_sidecar": neither which model server nor which models. The sidecar now exports
    # monitor_proxy_upstream_info{upstream, models} (one series) and the page names the upstream of the
    # sidecars failing now with its models; without that series (an older sidecar) it reads as before.
    # In Prometheus's own rule engine (promtool) and the agent's, two sidecars, one failing.

    def sidecar(instance: str, errors: str, info: str) -> str:
        return f"""
              - series: 'monitor_proxy_requests_total{{model="_sidecar",route="oip_v2",code="2xx",instance="{instance}"}}'
                values: '0+80x20'
              - series: 'monitor_proxy_requests_total{{model="_sidecar",route="error",code="5xx",instance="{instance}"}}'
                values: '{errors}'
              - series: 'monitor_proxy_upstream_errors_total{{model="_sidecar",reason="connect",instance="{instance}"}}'
                values: '{errors}'""" + (f"""
              - series: 'monitor_proxy_upstream_info{{model="_sidecar",{info},instance="{instance}"}}'
                values: '1x20'""" if info else "")

    description = ("The sidecar's reverse proxy answered more than 5% of requests itself over 5 minutes with 502/504 "
                   "(the model server could not be reached, did not answer within server.proxy.timeout, or broke off): "
                   "those clients got no prediction. monitor_proxy_upstream_errors_total by reason says which; "
                   "monitor_proxy_upstream_info names each sidecar's model server (server.proxy.upstream) and the models it serves.")
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorproxyupstreamfailing"
    for info, said in (('upstream="http://127.0.0.1:8080",models="iris,fraud"', " at http://127.0.0.1:8080 (serving iris, fraud)"),
                       ("", "")):
        series = [sidecar("a:9", "0+20x20", info), sidecar("b:9", "0x20", 'upstream="http://model-b:9000",models="other"')]
        _run_alert_test(tmp_path, "core.yml", series, "15m", "MonitorProxyUpstreamFailing",
                        _alert("severity: critical, model: _sidecar",
                               f"11.11% of the requests proxied to the model server{said} fail before it answers.", description, url))


def test_a_real_sidecar_proxying_to_nothing_pages_its_upstream_and_model(tmp_path: Path) -> None:
    # The same through a real sidecar (the agent's own rules, real HTTP, the proxy's data path in its own
    # process): its upstream, a port where nothing listens, and its model are on the page; the URL's
    # credentials are not.
    from tests.conftest import free_port
    from tests.sidecar_support import http
    from tests.test_proxy import IRIS, oip, start_proxying
    from tests.test_sidecar_series_in_agent_rules import RULES, _firing, _rule_evaluations

    port = free_port()
    s = start_proxying({**IRIS, **RULES}, tmp_path, "process", proxy_upstream=f"http://user:secret@127.0.0.1:{port}")
    try:
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 502
        assert f'monitor_proxy_upstream_info{{model="_sidecar",models="iris",upstream="http://127.0.0.1:{port}"}} 1.0' in s.metrics()
        fired = _firing(_rule_evaluations(s, 7), "MonitorProxyUpstreamFailing")
    finally:
        s.close()
    assert len(fired) == 1
    assert f"proxied to the model server at http://127.0.0.1:{port} (serving iris) fail" in fired[0].annotations["summary"], fired[0].annotations


GRAFANA = "https://grafana.example.com/g/"


def test_rules_dashboard_url_links_each_page_to_its_dashboard_through_a_real_alertmanager(tmp_path: Path) -> None:
    # Pages carried no dashboard link: no Grafana address was configured anywhere, and on-call had to find the
    # dashboard and pick the model by hand. With `rules.dashboard_url` (Grafana's root URL) each alert of the
    # shipped packs carries a `dashboard_url` annotation: its bundled dashboard with the alert's model selected.
    # The agent's evaluator, its notifier, a real Alertmanager and a webhook receiver.
    import math
    import time

    from prometheus_client import CollectorRegistry

    from monitor.config import parse_config
    from monitor.core import Monitor
    from tests.conftest import require_binary
    from tests.e2e.processes import Alertmanager, WebhookReceiver
    from tests.test_alertmanager_e2e import wait_for

    receiver = WebhookReceiver()
    try:
        with Alertmanager(require_binary("prometheus-alertmanager"), tmp_path / "am", receiver.url) as am:
            raw = {"model": "fraud:v2", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
                   "rules": {"packs": ["core"], "dashboard_url": GRAFANA, "alertmanager": [am.url], "log": False}}
            cfg = parse_config(raw, str(tmp_path / "monitor.yaml"), tmp_path).models[0]
            assert cfg.rules.dashboard_url == GRAFANA.rstrip("/")
            mon = Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False), start_worker=False, live=False)
            try:
                t0 = math.floor(time.time()) - 120  # back in time: Alertmanager's clock takes it as firing now
                mon.store.inc("monitor_internal_errors", 0.0, labels=("export",))
                fired = []
                for k in range(5):  # the group's evaluations fall on its own 15 s slots, as in Prometheus
                    fired += [t for t in mon.evaluate_rules(t0 + 15 * k) if t.to_state == "firing"]
                    mon.store.inc("monitor_internal_errors", labels=("export",))
                assert [t.alertname for t in fired] == ["MonitorInternalErrors"], fired
                assert mon.notifier is not None and mon.notifier.flush(30)
                page = wait_for(receiver, lambda p: p["status"] == "firing")
            finally:
                mon.close()
    finally:
        receiver.close()
    (alert,) = page["alerts"]
    assert alert["annotations"]["dashboard_url"] == "https://grafana.example.com/g/d/monitor-agent?var-model=fraud%3Av2"
    assert alert["annotations"]["runbook_url"].endswith("#monitorinternalerrors")


def test_exported_packs_carry_the_same_links_for_prometheus(tmp_path: Path) -> None:
    # Prometheus has no setting for a Grafana address: `monitor rules export --dashboard-url` writes the
    # link's template into the exported packs, as the monitoring mixins do with their grafanaUrl. The file
    # passes `promtool check rules`, and Prometheus's engine (promtool test rules) renders the links as the
    # agent does: the model URL-escaped, the sidecar's own `_sidecar` as every model, the drift dashboard's
    # `instance` and `detector` selected from the alert's labels.
    import subprocess

    from click.testing import CliRunner

    from monitor.cli import main
    from monitor.dashboards.links import dashboard_of
    from monitor.shipped import rule_pack_files
    from tests.conftest import require_binary

    promtool = require_binary("promtool")
    exported = tmp_path / "packs.yml"
    result = CliRunner().invoke(main, ["rules", "export", *rule_pack_files(["all"]), "--dashboard-url", GRAFANA,
                                       "-o", str(exported)])
    assert result.exit_code == 0, result.output
    checked = subprocess.run([promtool, "check", "rules", str(exported)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert exported.read_text().count("dashboard_url: ") == 50  # every alert of the packs
    assert CliRunner().invoke(main, ["rules", "export", *rule_pack_files(["core"]), "--dashboard-url",
                                     "https://grafana/?orgId=1"]).exit_code != 0
    assert (dashboard_of("ModelProbingSuspiciousClient"), dashboard_of("ModelErrorRateHigh"),
            dashboard_of("ModelFeatureOutOfRange"), dashboard_of("ModelOverconfident")) == (
        "monitor-probing", "monitor-overview", "monitor-drift", "monitor-confidence")

    description = ("Exceptions inside the monitor were caught and counted (the model is unaffected); its figures may "
                   "be incomplete. See the agent's log.")
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorinternalerrors"
    test = tmp_path / "test.yml"
    test.write_text(f"""
rule_files: [{exported}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'monitor_internal_errors_total{{model="fraud v2",stage="export"}}'
        values: '0+1x20'
      - series: 'monitor_internal_errors_total{{model="_sidecar",stage="http"}}'
        values: '0+1x20'
    alert_rule_test:
      - eval_time: 5m
        alertname: MonitorInternalErrors
        exp_alerts:
          - exp_labels: {{severity: warning, model: fraud v2, stage: export}}
            exp_annotations:
              summary: "The monitor of fraud v2 hit internal errors in export."
              description: "{description}"
              runbook_url: "{url}"
              dashboard_url: "https://grafana.example.com/g/d/monitor-agent?var-model=fraud+v2"
          - exp_labels: {{severity: warning, model: _sidecar, stage: http}}
            exp_annotations:
              summary: "The monitor of _sidecar hit internal errors in http."
              description: "{description}"
              runbook_url: "{url}"
              dashboard_url: "https://grafana.example.com/g/d/monitor-agent?var-model=$__all"
""")
    ran = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    agent = CliRunner().invoke(main, ["rules", "test", str(test)])
    assert agent.exit_code == 0, agent.output

    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator

    series = SeriesStore(retention_s=3600)
    ev = RuleEvaluator.from_files([exported], storage=series, default_interval_s=15.0)
    series.append_scrape(15.0, [({"__name__": "monitor_drift_detected", "model": "fraud v2", "detector": "pca_drift",
                                  "instance": "pod-1:8000"}, 1.0)], source="s")
    (drift,) = [t for t in ev.evaluate(15.0) if t.alertname == "ModelMultivariateDrift"]
    assert drift.annotations["dashboard_url"] == ("https://grafana.example.com/g/d/monitor-drift?var-model=fraud+v2"
                                                  "&var-instance=pod-1%3A8000&var-detector=pca_drift")


def test_dashboard_links_follow_the_dashboards_variables_and_alert_panels() -> None:
    # The links name each dashboard's variables and the dashboard that lists the alert: both kept in step
    # with the generated dashboards (a variable renamed there, or an alert panel moved, fails here).
    import json

    from monitor.dashboards.build import DEFAULT_DIR
    from monitor.dashboards.links import DASHBOARD_VARIABLES, dashboard_of
    from monitor.dashboards.packs import pack_alerts

    for uid, variables in DASHBOARD_VARIABLES.items():
        dash = json.loads((DEFAULT_DIR / f"{uid}.json").read_text())
        assert tuple(v["name"] for v in dash["templating"]["list"] if v["name"] != "datasource") == variables, uid
    for pack in ("confidence", "drift", "data_quality", "probing"):
        for name in pack_alerts(pack):
            assert name in (DEFAULT_DIR / f"{dashboard_of(name)}.json").read_text(), (pack, name)
    assert {dashboard_of(n) for n in pack_alerts("core")} == {"monitor-overview", "monitor-agent"}
