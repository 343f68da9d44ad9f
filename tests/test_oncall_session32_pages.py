"""On-call study, session 32: what the pages of a real sidecar through a real Alertmanager said
wrong or said twice (left open by session 31), as tests.

Rule tests run the same unit-test file through the real ``promtool test rules`` and through the
agent's own engine (``monitor rules test``).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_oncall_session7 import _run_unit_test


def _run_alert_test(tmp_path: Path, rule_file: str, series: list[str], eval_time: str, alertname: str,
                    exp_alerts: str) -> None:
    """One ``alert_rule_test`` of ``alertname`` at ``eval_time`` on ``series`` (input_series
    entries, indented as below) through promtool and the agent."""
    _run_unit_test(tmp_path, rule_file, """
        tests:
          - interval: 1m
            input_series:""" + "".join(series) + f"""
            alert_rule_test:
              - eval_time: {eval_time}
                alertname: {alertname}
                exp_alerts:""" + exp_alerts + "\n")


def _alert(labels: str, summary: str, description: str, url: str) -> str:
    """One ``exp_alerts`` entry for :func:`_run_alert_test` (``labels`` in YAML flow style)."""
    return f"""
                  - exp_labels: {{{labels}}}
                    exp_annotations:
                      summary: "{summary}"
                      description: "{description}"
                      runbook_url: "{url}\""""


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
              - series: 'monitor_reference_accuracy_rows{model="m"}'
                values: '2000x40'
            alert_rule_test:
              - eval_time: 30m
                alertname: ModelAccuracyDrop
                exp_alerts:
                  - exp_labels: {severity: critical, model: m}
                    exp_annotations:
                      summary: "Model m accuracy dropped 19 percentage points"
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


def test_features_drifted_over_the_window_are_named_in_the_page(tmp_path: Path) -> None:
    # The sidecar's "shift" stream paged "1 feature(s) of model shift drifted over the window"
    # and nothing of which, while ModelInputDrift names its features: on-call had to read the
    # p-values and distances of every feature and redo the detector's multiple-testing correction
    # and minimum effect by eye. The detector now exports which features it counted, and the
    # summary names five of them at most, the largest Jensen-Shannon distance first.
    import numpy as np

    from monitor.detectors.drift import FeatureDriftDetector
    from monitor.store import MetricStore
    from tests import drift_streams as S
    from tests.test_drift_detector import make_reference

    det = FeatureDriftDetector(make_reference(), window_s=600, n_slots=6)
    S.run(det, np.random.default_rng(4), onset=0, total=5000, shift=S.x10(0), ts0=0.0, stop=False)
    store = MetricStore("m")
    det.export(store)
    flags = {f: store.value("monitor_drift_feature_drifted", ("input_drift", f)) for f in S.NAMES}
    assert flags[S.NAMES[0]] == 1.0, flags
    assert sum(flags.values()) == store.value("monitor_drift_features_drifted", ("input_drift",)), flags

    series = []
    js = {"income": 0.61, "age": 0.42, "tenure": 0.30, "balance": 0.22, "region": 0.15, "plan": 0.12, "device": 0.11,
          "score": 0.03}
    for feature, distance in js.items():
        drifted = 0 if feature == "score" else 1
        for model in ("many", "two"):
            if model == "two" and feature not in ("age", "region", "score"):
                continue
            if model == "two" and feature == "region":
                drifted = 0
            series += [f"""
              - series: 'monitor_drift_feature_effect{{model="{model}",detector="input_drift",feature="{feature}",measure="js"}}'
                values: '{distance}x40'
              - series: 'monitor_drift_feature_effect{{model="{model}",detector="input_drift",feature="{feature}",measure="psi"}}'
                values: '9x40'
              - series: 'monitor_drift_feature_drifted{{model="{model}",detector="input_drift",feature="{feature}"}}'
                values: '{drifted}x40'"""]
    series += ["""
              - series: 'monitor_drift_features_drifted{model="many",detector="input_drift"}'
                values: '7x40'
              - series: 'monitor_drift_features_drifted{model="two",detector="input_drift"}'
                values: '1x40'"""]
    description = ("Over the event-time window, {n} feature(s) differ from the reference with significance after "
                   "multiple-testing correction and a Jensen-Shannon distance of at least the configured minimum "
                   "(input_drift); the summary names five at most, the farthest from the reference first. Slow drifts "
                   "show here before the sequential alarm; a drift that ended shows here for up to the window, and this page "
                   "can first come after the inputs returned (its `for:` is 30 minutes): ModelInputDrift still firing, or "
                   "the features' effect over time on the Drift dashboard, says whether it goes on. "
                   "monitor_drift_feature_drifted lists every feature counted, "
                   "monitor_drift_feature_effect gives their effect sizes.")
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelfeaturesdriftedoverwindow"
    _run_alert_test(tmp_path, "drift.yml", series, "35m", "ModelFeaturesDriftedOverWindow",
                    _alert("severity: info, model: many, detector: input_drift", "7 feature(s) of model many drifted over the window: `income`, `age`, `tenure`, `balance`, `region` and more", description.format(n=7), url)
                    + _alert("severity: info, model: two, detector: input_drift", "1 feature(s) of model two drifted over the window: `age`", description.format(n=1), url))


def test_one_change_of_confidence_is_one_alert_naming_the_scores_that_moved(tmp_path: Path) -> None:
    # The sidecar's "overconf" stream (the same model at a lower temperature) paged
    # ModelConfidenceDrift twice, one alert for the confidence and one for the entropy, which one
    # change of the model moves together: two pages for one problem wherever Alertmanager does not
    # group by model. One alert per model now; its texts name the scores beyond the bound, each
    # with its distance ("both": confidence and entropy; "entropy": that one only).
    series = []
    for model, confidence, entropy in (("both", 0.3, 0.39), ("entropy", 0.08, 0.21)):
        for score, distance in (("confidence", confidence), ("entropy", entropy)):
            series += [f"""
              - series: 'monitor_confidence_drift_distance{{model="{model}",score="{score}"}}'
                values: '{distance}x30'
              - series: 'monitor_confidence_drift_pvalue{{model="{model}",score="{score}"}}'
                values: '0x30'"""]
    tail = ("over the window differs from the reference (p < 0.001): the inputs moved away from what the model knows, "
            "or, with no input-drift alert, the model itself changed.")
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelconfidencedrift"
    _run_alert_test(tmp_path, "confidence.yml", series, "20m", "ModelConfidenceDrift",
                    _alert("severity: warning, model: both", "Model both: the distribution of its confidence and entropy changed", f"The distribution of the model's confidence (Kolmogorov-Smirnov distance 0.30) and entropy (Kolmogorov-Smirnov distance 0.39) {tail}", url)
                    + _alert("severity: warning, model: entropy", "Model entropy: the distribution of its entropy changed", f"The distribution of the model's entropy (Kolmogorov-Smirnov distance 0.21) {tail}", url))


def test_a_broken_rule_file_pages_once_per_file_not_per_model(tmp_path: Path) -> None:
    # A shared rule file edited into one that does not load paged MonitorRuleReloadFailed once per
    # model that lists it ("The rule files of iris did not all load", then fraud's, then churn's):
    # three pages for one file to fix. One alert per file now, with its error count, whatever the
    # models.
    series = []
    for model in ("iris", "fraud", "churn"):
        series += [f"""
              - series: 'monitor_rule_last_reload_successful{{model="{model}"}}'
                values: '1 1 0x12 1x5'
              - series: 'monitor_rule_file_errors{{model="{model}",file="/etc/monitor/team.yml"}}'
                values: '_ _ 2x12 stale'"""]
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorrulereloadfailed"
    tail = ("at start, a file that does not load is left out (its rules are not evaluated; the other files' are); after "
            "a failed reload (SIGHUP or POST /-/reload) the rules loaded before are still evaluated (the edit is not in "
            "force, nor any fix it carried); no load has succeeded since. The agent's log (and a reload's answer) name "
            "each error and the models concerned.")
    _run_alert_test(tmp_path, "core.yml", series, "12m", "MonitorRuleReloadFailed",
                    _alert("severity: warning, file: /etc/monitor/team.yml, model: _sidecar", "The rule file /etc/monitor/team.yml does not load: its alert rules are not evaluated as written.", f"The last load of the rule files of every model that lists /etc/monitor/team.yml found 2 error(s) in it: {tail}", url))


def test_models_sharing_a_broken_rule_file_send_alertmanager_one_alert(tmp_path: Path) -> None:
    # End to end: two models of one sidecar list the same broken file beside the core pack; each
    # model's evaluator raises MonitorRuleReloadFailed, and a real Alertmanager held one alert per
    # model (two pages). Both now send the same alert (the file, model "_sidecar"), which it merges.
    import time

    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from tests.conftest import require_binary
    from tests.e2e.processes import Alertmanager, WebhookReceiver

    exe = require_binary("prometheus-alertmanager")
    shared = tmp_path / "team.yml"
    shared.write_text("groups:\n- name: team\n  rules:\n  - alert: Typo\n    expr: sum(\n")
    receiver = WebhookReceiver()
    try:
        with Alertmanager(exe, tmp_path / "am", receiver.url) as am:
            monitors = []
            for model in ("iris", "fraud"):
                config = {"model": model, "rules": {"packs": ["core"], "files": [str(shared)], "alertmanager": [am.url],
                                                    "log": False}}
                monitors.append(Monitor(config=config, registry=CollectorRegistry(), start_worker=False, live=False))
            now = time.time()
            try:
                for k in range(12, -1, -1):
                    for mon in monitors:
                        mon.evaluate_rules(now - 60 * k)
                for mon in monitors:
                    assert mon.store.value("monitor_rule_file_errors", (str(shared),)) == 1.0
            finally:
                for mon in monitors:
                    mon.close()  # delivers what is queued
            pages = [a for a in am.alerts() if a["labels"]["alertname"] == "MonitorRuleReloadFailed"]
            assert [a["labels"] for a in pages] == [{"alertname": "MonitorRuleReloadFailed", "severity": "warning", "model": "_sidecar",
                                                     "file": str(shared)}], pages
    finally:
        receiver.close()
