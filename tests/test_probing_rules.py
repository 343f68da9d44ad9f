"""rules/probing.yml: valid for promtool, names only catalog metrics, fires on seeded attack
streams (naming the client and the signal) and stays silent on benign ones, evaluated by the
agent's own rule evaluator over the metric store's samples."""

from __future__ import annotations

import re
import subprocess

import numpy as np

from monitor import catalog
from monitor.detectors.probing import ProbingDetector
from monitor.store import MetricStore
from tests import probing_streams as S
from tests.conftest import REPO_ROOT, require_binary

RULES = REPO_ROOT / "rules" / "probing.yml"


def test_promtool_accepts_the_rules() -> None:
    promtool = require_binary("promtool")
    res = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 5 rules found" in res.stdout


def test_rules_name_only_catalog_metrics_and_carry_the_required_annotations() -> None:
    import yaml

    doc = yaml.safe_load(RULES.read_text())
    exposed = {n for spec in catalog.CATALOG.values() for n in spec.series_names()}
    rules = doc["groups"][0]["rules"]
    assert len(rules) == 5
    for rule in rules:
        for name in re.findall(r"\bmonitor_[a-z_]+", rule["expr"]):
            assert name in exposed, f"{rule['alert']}: {name} is not a catalog metric"
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])


def replay(streams: dict[str, np.ndarray], seed: int = 0) -> list:
    """Feed the streams (1 query/s per client, interleaved), scrape every 15 s of event time into
    the rule evaluator, return the alert transitions."""
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator

    det = ProbingDetector(S.reference(), client_id_salt="rules", raw_client_ids=True, seed=seed)
    store = MetricStore("m")
    series = SeriesStore(retention_s=7200)
    ev = RuleEvaluator.from_files([RULES], storage=series, default_interval_s=15.0)
    x, clients, ts = S.interleave(streams, np.random.default_rng(seed), t0=0.0)
    out = []
    end = float(ts.max()) + 120.0
    for now in np.arange(15.0, end + 15.0, 15.0):
        sel = (ts >= now - 15.0) & (ts < now)
        if sel.any():
            for b in S.batches(x[sel], clients[sel], ts[sel]):
                det.update(b)
        det.advance(float(now))
        det.export(store)
        series.append_scrape(float(now), [({"__name__": n, **lab}, v) for n, lab, v in store.samples()], source="scrape:m")
        out.extend(ev.evaluate(float(now)))
    return out


def firing(transitions: list) -> list:
    return [t for t in transitions if t.to_state == "firing"]


def test_silent_on_benign_traffic() -> None:
    rng = np.random.default_rng(31)
    tr = replay({f"benign-{i}": S.benign(rng, 300) for i in range(20)}, seed=31)
    assert firing(tr) == []


def test_probing_client_alert_names_the_client_and_signal() -> None:
    rng = np.random.default_rng(32)
    streams = {f"benign-{i}": S.benign(rng, 200) for i in range(10)}
    streams["attacker"] = S.probing(rng, 200)
    tr = firing(replay(streams, seed=32))
    alerts = [t for t in tr if t.alertname == "ModelProbingSuspiciousClient"]
    assert alerts and {a.labels["client"] for a in alerts} == {"attacker"}
    a = alerts[0]
    assert a.labels["signal"] == "near_duplicates" and a.labels["severity"] == "warning"
    assert "attacker" in a.annotations["summary"] and "near_duplicates" in a.annotations["description"]


def test_split_attack_fires_the_campaign_alert() -> None:
    rng = np.random.default_rng(33)
    walk = S.probing(rng, 300)
    streams = {f"sybil-{a}": walk[a::6] for a in range(6)}
    streams.update({f"benign-{i}": S.benign(rng, 150) for i in range(10)})
    tr = firing(replay(streams, seed=33))
    camp = [t for t in tr if t.alertname == "ModelProbingCampaign"]
    assert camp, sorted({t.alertname for t in tr})
    assert camp[0].labels["severity"] == "critical" and "accounts" in camp[0].annotations["summary"]
    assert not [t for t in tr if t.alertname == "ModelProbingSuspiciousClient" and t.labels["client"].startswith("benign")]


def test_ood_traffic_alert_fires_after_its_for_duration() -> None:
    rng = np.random.default_rng(34)
    streams = {f"noise-{i}": S.ood(rng, 1200) for i in range(2)}
    streams["benign"] = S.benign(rng, 1200)
    tr = firing(replay(streams, seed=34))
    names = {t.alertname for t in tr}
    assert "ModelProbingOutOfDistributionTraffic" in names and "ModelProbingSuspiciousClient" in names
    ood = [t for t in tr if t.alertname == "ModelProbingOutOfDistributionTraffic"][0]
    assert ood.time >= 15 * 60  # `for: 15m`
    assert "%" in ood.annotations["summary"]
