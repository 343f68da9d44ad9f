"""Reloading the rule files without a restart: ``POST /-/reload`` and SIGHUP, as Prometheus.

Platform teams mount rule files from a ConfigMap and expect an edit to take effect the way it does
in Prometheus (configmap-reload or the Prometheus Operator's reloader calls ``/-/reload``); before,
only a restart read them. A reload keeps the alerts of the rules that are still there (a firing
alert is not sent again as new), and a broken file keeps the rules evaluated before it, says so
in the answer, the log and ``monitor_rule_last_reload_successful``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar, wait_until

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
T0 = 1_800_000_000.0

ONE = textwrap.dedent("""
    groups:
      - name: g
        interval: 10s
        rules:
          - alert: AlwaysOn
            expr: vector(1)
            for: 20s
            labels: {severity: warning}
""")
TWO = ONE + """\
      - alert: AlsoOn
        expr: vector(2)
        labels: {severity: info}
"""


def _serve(tmp_path: Path, text: str, interval: str = "10s", **raw: object) -> tuple[Path, Any]:
    """A sidecar (monitor without a worker: tests tick its rules) on a rule file holding ``text``."""
    rules = tmp_path / "rules.yml"
    rules.write_text(text)
    s = start_sidecar({**IRIS, "rules": {"files": [str(rules)], "interval": interval}, **raw}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    return rules, s


def _states(mon) -> dict[str, tuple[str, float]]:
    return {a.name: (a.state.value, a.active_at) for a in mon.alerts()}


def test_reload_over_http_takes_new_rules_keeps_firing_alerts_and_survives_a_broken_file(tmp_path: Path) -> None:
    rules, s = _serve(tmp_path, ONE)
    try:
        mon = s.monitor()
        for k in range(4):
            mon.evaluate_rules(T0 + 10 * k)
        before = _states(mon)
        assert before == {"AlwaysOn": ("firing", before["AlwaysOn"][1])}

        rules.write_text(TWO)
        r = http("POST", s.url + "/-/reload")
        assert r.status == 200 and r.json() == {"status": "success", "data": {"rules": {"iris": 2}}}
        assert _states(mon) == before  # carried over: same state, same activeAt
        transitions = mon.evaluate_rules(T0 + 40)
        assert [(t.alertname, t.to_state) for t in transitions] == [("AlsoOn", "firing")]  # AlwaysOn not new again
        text = s.metrics()
        assert sample(text, "monitor_rule_reloads_total", model="iris", outcome="success") == 1
        assert sample(text, "monitor_rule_last_reload_successful", model="iris") == 1

        rules.write_text(TWO.replace("expr: vector(2)", "expr: vector(2"))  # a PromQL syntax error
        r = http("POST", s.url + "/-/reload")
        body = r.json()
        assert r.status == 400 and body["reason"] == "rules_invalid" and body["field"] == "rules.files"
        assert body["errors"][0]["model"] == "iris" and str(rules) in body["errors"][0]["error"]
        assert "monitor rules check" in body["error"]
        mon.evaluate_rules(T0 + 50)
        assert set(_states(mon)) == {"AlwaysOn", "AlsoOn"}  # the rules loaded before are still evaluated
        text = s.metrics()
        assert sample(text, "monitor_rule_reloads_total", model="iris", outcome="failure") == 1
        assert sample(text, "monitor_rule_last_reload_successful", model="iris") == 0

        rules.write_text(ONE)  # AlsoOn removed: its alert goes with it, as in Prometheus
        assert http("POST", s.url + "/-/reload").status == 200
        assert sample(s.metrics(), "monitor_rule_last_reload_successful", model="iris") == 1
        assert set(_states(mon)) == {"AlwaysOn"}
        assert http("GET", s.url + "/-/reload").status == 405
    finally:
        s.close()


def test_reload_needs_the_write_token_when_one_is_set(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret-reload-token\n")
    _, s = _serve(tmp_path, ONE, server={"write_token_file": str(tmp_path / "token")})
    try:
        assert http("POST", s.url + "/-/reload").status == 401
        assert http("POST", s.url + "/-/reload", headers={"Authorization": "Bearer s3cret-reload-token"}).status == 200
    finally:
        s.close()


def test_sighup_reloads_the_rules_of_a_running_monitor_serve(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(ONE)
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({**IRIS, "server": {"port": 0},
                                                           "rules": {"files": [str(rules)]}}))
    ready = tmp_path / "ready"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config",
                                 str(tmp_path / "monitor.yaml"), "--ready-file", str(ready)],
                                cwd=REPO_ROOT, stdout=out, stderr=out)
    try:
        assert wait_until(lambda: (ready.exists() and ready.read_text().strip() != "") or proc.poll() is not None, 30)
        assert proc.poll() is None, log.read_text()
        host, port = ready.read_text().split()[0].rsplit(":", 1)
        url = f"http://{host}:{port}"
        assert wait_until(lambda: http("GET", url + "/readyz").status == 200, 30), log.read_text()

        def reloads(outcome: str) -> float:
            return sample(http("GET", url + "/metrics").body.decode(), "monitor_rule_reloads_total", model="iris",
                          outcome=outcome) or 0.0

        rules.write_text(TWO)
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: reloads("success") == 1, 20), log.read_text()
        rules.write_text("groups: [")  # broken YAML: logged, the process carries on
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: reloads("failure") == 1, 20), log.read_text()
        assert proc.poll() is None and http("GET", url + "/readyz").status == 200
        assert "the rule files were not reloaded" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()


def test_a_failed_reload_pages_after_ten_minutes_and_resolves_with_a_good_one(tmp_path: Path) -> None:
    """MonitorRuleReloadFailed (core pack), run by the real promtool and by the agent's engine."""
    from tests.test_oncall_session7 import _run_unit_test

    _run_unit_test(tmp_path, "core.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_rule_last_reload_successful{model="iris"}'
                values: '1 1 0x12 1x5'
              - series: 'monitor_rule_file_errors{model="iris",file="rules/iris.yml"}'
                values: '_ _ 1x12 stale'
            alert_rule_test:
              - eval_time: 9m
                alertname: MonitorRuleReloadFailed
                exp_alerts: []
              - eval_time: 12m
                alertname: MonitorRuleReloadFailed
                exp_alerts:
                  - exp_labels: {severity: warning, file: rules/iris.yml, model: _sidecar}
                    exp_annotations:
                      summary: "The rule file rules/iris.yml does not load: its alert rules are not evaluated as written."
                      description: "The last load of the rule files of every model that lists rules/iris.yml found 1 error(s) in it: at start, a file that does not load is left out (its rules are not evaluated; the other files' are); after a failed reload (SIGHUP or POST /-/reload) the rules loaded before are still evaluated (the edit is not in force, nor any fix it carried); no load has succeeded since. The agent's log (and a reload's answer) name each error and the models concerned."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#monitorrulereloadfailed"
              - eval_time: 16m
                alertname: MonitorRuleReloadFailed
                exp_alerts: []
    """)


def test_a_reload_to_a_shorter_group_interval_ticks_at_it(tmp_path: Path) -> None:
    """Session 12's review: the rule ticks kept the interval of the rules loaded at start (60 s),
    so a reloaded group of 10 s with ``for: 20s`` was evaluated every 60 s and fired late."""
    rules, s = _serve(tmp_path, ONE.replace("interval: 10s", "interval: 60s"), interval="60s")
    try:
        mon = s.monitor()
        mon.advance(T0)
        rules.write_text(ONE)  # interval 10s, for 20s
        assert http("POST", s.url + "/-/reload").status == 200
        seen = []
        for k in range(1, 7):
            mon.advance(T0 + 10 * k)
            health = mon.rules.rule_health()[0]
            seen.append((10 * k, None if health.last_evaluation is None else health.last_evaluation - T0, health.state))
        assert seen[-1] == (60, 60.0, "firing") and [e for _, e, _ in seen] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0], seen
    finally:
        s.close()


def test_template_errors_after_a_reload_are_counted(tmp_path: Path) -> None:
    """The reloaded rules count their template errors from zero; the counter kept the totals from
    before and added nothing until the new ones passed them (5, then 4 more: stayed at 5)."""
    broken = ONE.replace("labels: {severity: warning}", "annotations: {summary: '{{ with query \"vector(1\" }}x{{ end }}'}")
    rules, s = _serve(tmp_path, broken.replace("for: 20s", "for: 0s"))
    try:
        mon = s.monitor()
        for k in range(5):
            mon.evaluate_rules(T0 + 10 * k)
        before = sample(s.metrics(), "monitor_rule_template_errors_total", model="iris", rule_group="g")
        rules.write_text(broken.replace("for: 20s", "for: 0s") + TWO[len(ONE):])
        assert http("POST", s.url + "/-/reload").status == 200
        for k in range(5, 9):
            mon.evaluate_rules(T0 + 10 * k)
        after = sample(s.metrics(), "monitor_rule_template_errors_total", model="iris", rule_group="g")
        assert before and after == before + 4
    finally:
        s.close()


def test_the_series_of_a_removed_rule_go_stale_at_the_reload(tmp_path: Path) -> None:
    """Session 12's review: a removed recording rule's series answered queries for the 5-minute
    lookback after the reload, so an alert reading it kept firing that long; Prometheus marks them
    stale on reload. A rule that is kept writes under the same source, so what it stops writing
    goes stale at its next evaluation too."""
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from monitor.rules.loader import load_rule_files

    both = textwrap.dedent("""
        groups:
          - name: g
            interval: 10s
            rules:
              - alert: Foo
                expr: job:foo > 0
          - name: rec
            interval: 10s
            rules:
              - record: job:foo
                expr: vector(1)
              - record: job:bar
                expr: vector(2)
    """)
    rules = tmp_path / "r.yml"
    rules.write_text(both)
    store = SeriesStore(retention_s=3600)
    ev = RuleEvaluator.from_files([rules], storage=store, default_interval_s=10)
    for k in range(3):
        ev.evaluate(T0 + 10 * k)
    assert [(a.name, a.state.value) for a in ev.alerts()] == [("Foo", "firing")]
    removed = both.replace("      - record: job:foo\n        expr: vector(1)\n", "").replace("expr: vector(2)", "expr: vector(2) < 0")
    assert "job:foo\n" not in removed and "vector(2) < 0" in removed  # job:foo removed, job:bar now empty
    rules.write_text(removed)
    ev.replace_groups(load_rule_files([rules], engine=ev.engine))

    def now(expr: str, t: float) -> list[float]:
        return [s.value for s in ev.engine.compile(expr).instant(store, t)]

    assert now("job:foo", T0 + 21) == []  # stale just after the last evaluation of its group
    ev.evaluate(T0 + 30)
    assert ev.alerts() == [] and now("job:bar", T0 + 30) == []


def test_a_reload_does_not_hand_a_removed_files_alerts_to_a_group_of_the_same_name(tmp_path: Path) -> None:
    """Review: groups were matched by file and name, or by name alone when one group had it (what a
    restore needs when paths move); on reload, a file removed and another holding a group of the
    same name took over its firing alert, as if it had been firing all along."""
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from monitor.rules.loader import load_rule_files

    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text(ONE)
    b.write_text(ONE.replace("for: 20s", "for: 30s"))
    ev = RuleEvaluator.from_files([a], storage=SeriesStore(retention_s=3600), default_interval_s=10)
    for k in range(4):
        ev.evaluate(T0 + 10 * k)
    assert [(x.name, x.state.value) for x in ev.alerts()] == [("AlwaysOn", "firing")]
    ev.replace_groups(load_rule_files([b], engine=ev.engine))  # a.yml gone, b.yml has a group "g" too
    assert ev.alerts() == []
    ev.evaluate(T0 + 40)
    assert [(x.name, x.state.value) for x in ev.alerts()] == [("AlwaysOn", "pending")]
