"""A reload (``POST /-/reload``, SIGHUP) applies ``monitor.yaml``'s ``rules:`` section, as
Prometheus's reload applies a changed list of rule files and its ``alerting:`` section.

Before, a reload read the contents of the rule files named at start and only *named* the changed
keys of ``monitor.yaml``: a pack added (``rules.packs``), a file added, an Alertmanager or webhook
URL, external labels or URL edited, then reloaded, were not in force until a restart. Now they
are, all or nothing for each model: a new file that does not load leaves the rules, receivers,
labels and interval of before in place (400, counted as a failed rule reload). Alerts of the rules
that stay keep their state, and keys a reload does not apply (features, window...) are still
warned of.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.shipped import rule_pack_files
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar, wait_until
from tests.test_rules_notifier import Receiver

IRIS = {"model": "iris", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]}}
ON = "groups:\n  - name: g\n    rules:\n      - alert: On\n        expr: vector(1)\n        labels: {severity: info}\n"
T0 = 1_800_000_000.0


def _serve(tmp_path: Path, rules: dict[str, Any] | None) -> tuple[Path, dict[str, Any], Any]:
    """A sidecar of ``monitor.yaml`` (``rules`` its rules: section; its monitor without a worker:
    the test ticks the rules), as ``monitor serve --config`` runs it."""
    (tmp_path / "on.yml").write_text(ON, encoding="utf-8")
    raw = {**IRIS, **({"rules": rules} if rules is not None else {})}
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(start_worker=False))
    s.sidecar.config_path = config
    return config, raw, s


def _edit(config: Path, raw: dict[str, Any], **rules: Any) -> None:
    config.write_text(yaml.safe_dump({**raw, "rules": {**raw.get("rules", {}), **rules}}), encoding="utf-8")


def _on(receiver: Receiver) -> list[dict[str, Any]]:
    """The ``On`` alerts an Alertmanager receiver was sent."""
    with receiver.lock:
        return [a for path, _, body in receiver.requests if path.endswith("/api/v2/alerts")
                for a in body if a["labels"]["alertname"] == "On"]


def _hooked(receiver: Receiver) -> list[dict[str, Any]]:
    with receiver.lock:
        return [a for path, _, body in receiver.requests if path == "/hook" for a in body["alerts"]
                if a["labels"]["alertname"] == "On"]


def test_a_reload_applies_packs_receivers_and_external_labels_keeping_the_alerts(tmp_path: Path) -> None:
    before, after = Receiver(), Receiver()
    config, raw, s = _serve(tmp_path, {"files": ["on.yml"], "alertmanager": [before.url], "log": False,
                                       "external_labels": {"cluster": "eu-1"}, "external_url": "http://old.example"})
    try:
        mon = s.monitor()
        mon.evaluate_rules(T0)
        assert wait_until(lambda: len(_on(before)) == 1)
        [fired] = http("GET", s.url + "/api/v1/alerts").json()["data"]["alerts"]

        _edit(config, raw, packs=["core"], alertmanager=[after.url], webhook=[after.url + "/hook"],
              external_labels={"cluster": "eu-2"}, external_url="http://new.example")
        r = http("POST", s.url + "/-/reload")
        core = sum(len(g["rules"]) for g in yaml.safe_load(Path(rule_pack_files(["core"])[0]).read_text())["groups"])
        assert r.status == 200 and r.json() == {"status": "success", "data": {"rules": {"iris": 1 + core}}}, r.json()
        # the firing alert is kept (same activeAt), not fired anew
        assert [a for a in http("GET", s.url + "/api/v1/alerts").json()["data"]["alerts"]
                if a["labels"]["alertname"] == "On"] == [fired]

        mon.evaluate_rules(T0 + 75)  # the resend, past the 1-minute resend delay
        assert wait_until(lambda: _on(after) and _hooked(after))
        [sent] = _on(after)
        assert sent["labels"]["cluster"] == "eu-2" and sent["generatorURL"].startswith("http://new.example/")
        assert sent["startsAt"] == _on(before)[0]["startsAt"]  # the same alert, still firing
        assert _hooked(after)[0]["labels"]["cluster"] == "eu-2"
        assert len(_on(before)) == 1  # the receiver removed is sent nothing more
        mon.evaluate_rules(T0 + 90)  # deliveries are counted at an evaluation: the removed receiver's stay counted
        text = s.metrics()
        assert sample(text, "monitor_rule_last_reload_successful", model="iris") == 1
        assert sample(text, "monitor_notifications_total", model="iris", receiver="alertmanager", outcome="sent") == 2
    finally:
        s.close()
        before.close()
        after.close()


def test_a_reload_whose_new_file_does_not_load_changes_nothing(tmp_path: Path) -> None:
    before, after = Receiver(), Receiver()
    config, raw, s = _serve(tmp_path, {"files": ["on.yml"], "alertmanager": [before.url], "log": False,
                                       "external_labels": {"cluster": "eu-1"}})
    try:
        mon = s.monitor()
        mon.evaluate_rules(T0)
        (tmp_path / "broken.yml").write_text(ON.replace("vector(1)", "vector(1"), encoding="utf-8")
        _edit(config, raw, files=["on.yml", "broken.yml"], alertmanager=[after.url],
              external_labels={"cluster": "eu-2"}, interval="1m")
        r = http("POST", s.url + "/-/reload")
        body = r.json()
        assert r.status == 400 and body["reason"] == "rules_invalid", body
        assert "broken.yml" in body["errors"][0]["error"]
        text = s.metrics()
        assert sample(text, "monitor_rule_reloads_total", model="iris", outcome="failure") == 1
        assert sample(text, "monitor_rule_last_reload_successful", model="iris") == 0

        mon.evaluate_rules(T0 + 75)
        assert wait_until(lambda: len(_on(before)) == 2)
        assert _on(before)[1]["labels"]["cluster"] == "eu-1" and _on(after) == []
        assert mon.pipeline.tick_s == 15  # the interval of before

        (tmp_path / "broken.yml").write_text(ON.replace("On", "Two"), encoding="utf-8")  # fixed: now it all applies
        r = http("POST", s.url + "/-/reload")
        assert r.status == 200 and r.json()["data"]["rules"] == {"iris": 2} and "warnings" not in r.json(), r.json()
        assert mon.pipeline.tick_s == 60
        mon.evaluate_rules(T0 + 180)
        assert wait_until(lambda: len(_on(after)) == 1) and _on(after)[0]["labels"]["cluster"] == "eu-2"
    finally:
        s.close()
        before.close()
        after.close()


def test_a_model_without_rules_at_start_gets_the_rules_a_reload_names(tmp_path: Path) -> None:
    config, raw, s = _serve(tmp_path, None)
    try:
        mon = s.monitor()
        assert mon.evaluate_rules(T0) == []
        _edit(config, raw, files=["on.yml"], log=False)
        r = http("POST", s.url + "/-/reload")
        assert r.status == 200 and r.json() == {"status": "success", "data": {"rules": {"iris": 1}}}, r.json()
        assert [(t.alertname, t.to_state) for t in mon.evaluate_rules(T0 + 15)] == [("On", "firing")]
        assert mon.pipeline.tick_s == 15  # the live worker ticks the rules from now on
        assert http("GET", s.url + "/api/v1/status").json()["data"]["models"]["iris"]["rules"] is True
    finally:
        s.close()


def test_keys_a_reload_does_not_apply_are_still_named_and_the_rules_section_is_not(tmp_path: Path) -> None:
    config, raw, s = _serve(tmp_path, {"files": ["on.yml"], "interval": "15s"})
    try:
        config.write_text(yaml.safe_dump({**raw, "window": "5m", "rules": {**raw["rules"], "interval": "1m"}}),
                          encoding="utf-8")
        r = http("POST", s.url + "/-/reload")
        [warning] = r.json()["warnings"]
        assert "(model 'iris': window)" in warning and "at the next restart" in warning, warning
        assert s.monitor().pipeline.tick_s == 60
        r = http("POST", s.url + "/-/reload")  # the rules: section now in force: only window is waiting
        [warning] = r.json()["warnings"]
        assert "(model 'iris': window)" in warning, warning
    finally:
        s.close()
