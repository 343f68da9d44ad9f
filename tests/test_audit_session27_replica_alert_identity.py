"""Replicas sharing one config keep their alerts apart at Alertmanager.

The replicas of one Deployment (examples/k8s/monitor-sidecar.yaml runs two) each evaluate the rule
packs and send their alerts with the same labels: Alertmanager took them for one alert, so when
one replica's condition cleared, its resolution resolved the alert while the other replica's
condition still held, and on-call was told "resolved" (shown here with a real Alertmanager).
``rules.external_labels`` values now expand ``${NAME}`` from the environment, as Prometheus's
``expand-external-labels`` does, and the example gives each pod's alerts its pod name.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import ConfigError, parse_config
from monitor.promql.storage import SeriesStore
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.loader import parse_rules_text
from monitor.rules.notifier import AlertmanagerSink, Notifier
from tests.conftest import REPO_ROOT, require_binary
from tests.e2e.processes import Alertmanager, WebhookReceiver

K8S = REPO_ROOT / "examples" / "k8s" / "monitor-sidecar.yaml"


def _config(external_labels: dict[str, str]) -> Any:
    return parse_config({"model": "iris", "features": ["a"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
                         "rules": {"external_labels": external_labels}})


def test_external_label_values_expand_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "iris-7d9f-abcde")
    labels = _config({"replica": "${POD_NAME}", "cluster": "eu-$POD_NAME", "price": "5$$"}).model().rules.external_labels
    assert labels == {"replica": "iris-7d9f-abcde", "cluster": "eu-iris-7d9f-abcde", "price": "5$"}
    assert _config({"cluster": "eu-1"}).model().rules.external_labels == {"cluster": "eu-1"}


def test_an_unset_variable_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    with pytest.raises(ConfigError) as err:
        _config({"replica": "${POD_NAME}"})
    text = str(err.value)
    assert "rules.external_labels.replica" in text and "POD_NAME" in text and "not set" in text and "fieldRef" in text


def test_the_k8s_example_labels_each_replicas_alerts_with_its_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = list(yaml.safe_load_all(K8S.read_text()))
    deploy = next(d for d in docs if d and d["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] > 1
    (monitor,) = [c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == "monitor"]
    env = {e["name"]: e for e in monitor["env"]}
    raw = yaml.safe_load(next(d for d in docs if d and d["kind"] == "ConfigMap" and "monitor.yaml" in d["data"])
                         ["data"]["monitor.yaml"])
    (name,) = {m for v in raw["rules"]["external_labels"].values() for m in __import__("re").findall(r"\$\{(\w+)\}", v)}
    assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


RULES = """
groups:
  - name: model
    interval: 1s
    rules:
      - alert: LowAccuracy
        expr: monitor_accuracy_ratio < 0.9
        labels: {severity: critical}
        annotations: {summary: "accuracy {{ $value | humanizePercentage }}"}
"""


def test_one_replica_recovering_does_not_resolve_the_others_alert(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Replica a stays at 70% accuracy; replica b fires at 80% and recovers. With the example's
    ``replica: ${POD_NAME}`` label, Alertmanager still holds a's alert, firing, with a's figure."""
    am_bin = require_binary("prometheus-alertmanager")
    receiver = WebhookReceiver()
    replicas = []
    try:
        with Alertmanager(am_bin, tmp_path / "am", receiver.url) as am:
            for pod in ("iris-a", "iris-b"):
                monkeypatch.setenv("POD_NAME", pod)
                ext = _config({"replica": "${POD_NAME}"}).model().rules.external_labels
                groups, errors = parse_rules_text(RULES, "rules.yml")
                assert errors == []
                store = SeriesStore(retention_s=3600)
                notifier = Notifier([AlertmanagerSink(am.url)], backoff_initial_s=0.1)
                replicas.append((store, RuleEvaluator(groups, storage=store, notifier=notifier, external_labels=ext),
                                 notifier))
            # event time a minute back: a resolution's endsAt is already past for Alertmanager's clock
            t0 = math.floor(time.time()) - 60
            series = {"__name__": "monitor_accuracy_ratio", "model": "iris"}
            for (store, ev, notifier), accuracy in zip(replicas, (0.70, 0.80)):
                store.append_scrape(t0, [(series, accuracy)], source="scrape")
                ev.evaluate(t0)
                assert notifier.flush(10)
            store, ev, notifier = replicas[1]
            store.append_scrape(t0 + 2, [(series, 0.95)], source="scrape")
            ev.evaluate(t0 + 2)
            assert notifier.flush(10)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(a["status"] == "resolved" for _, a in receiver.alerts()):
                time.sleep(0.1)
            resolved = [a for _, a in receiver.alerts() if a["status"] == "resolved"]
            assert [a["labels"].get("replica") for a in resolved] == ["iris-b"], resolved
            held = [(a["labels"].get("replica"), a["status"]["state"], a["annotations"]["summary"]) for a in am.alerts()]
            assert held == [("iris-a", "active", "accuracy 70%")], held
    finally:
        for _, _, notifier in replicas:
            notifier.close()
        receiver.close()
