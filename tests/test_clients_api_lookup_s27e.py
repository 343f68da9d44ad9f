"""``POST /api/v1/clients/lookup``: which account an alert's hashed id is (review s27e).

ModelProbingSuspiciousClient names the client by a salted hash (as documented), and its runbook
says "confirm with the access logs of that (hashed) client id". The access logs hold raw ids, and
with the default ``client_id_salt: ""`` the salt is random and lives only in the detector's
state: a sidecar's operator had no way to turn a candidate account from the logs into the hash
the alert shows (``ProbingDetector.client_key`` is in-process Python), so "which client" had no
answer. The lookup hashes the id the operator sends, with each model's salt, and answers its
hashed id and verdict; the raw id is never echoed back nor stored. Write scope, in a body: a
read token (Prometheus's) must not test guessed ids (IPs can be enumerated) against the hashes
it scrapes, and a raw API key in a URL would land in access logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.core import Monitor
from tests import probing_streams as S
from tests.sidecar_support import http, start_sidecar

CLASSES = {"kind": "probabilities", "classes": ["a", "b", "c", "d"]}
FEATURES = [f"f{i}" for i in range(S.D)]
MONITORS: dict[str, Monitor] = {}


def _factory(cfg: MonitorConfig) -> Monitor:
    mon = Monitor(config=cfg, reference=S.reference(), registry=CollectorRegistry(auto_describe=False),
                  start_worker=False, live=False)
    MONITORS[cfg.model] = mon
    return mon


def test_an_operator_finds_the_hashed_id_and_verdict_of_an_account(tmp_path: Path) -> None:
    models: list[dict[str, Any]] = [{"model": "m", "features": FEATURES, "output": CLASSES}]
    (tmp_path / "w").write_text("w-token-0123456789abcdef")
    (tmp_path / "r").write_text("r-token-0123456789abcdef")
    s = start_sidecar({"models": models, "server": {"write_token_file": "w", "metrics_token_file": "r"}}, tmp_path,
                      factory=_factory)
    try:
        mon = MONITORS["m"]
        walk = S.probing(np.random.default_rng(0), 120)
        for i in range(0, 120, 20):
            mon.observe(walk[i:i + 20], S.scores(walk[i:i + 20]), client="sk-live-7f3a", timestamp=1.7e9 + i)
        mon.flush()
        flagged = http("GET", s.url + "/api/v1/clients", headers={"Authorization": "Bearer r-token-0123456789abcdef"}).json()["data"]["clients"]
        assert len(flagged) == 1 and flagged[0]["client"] != "sk-live-7f3a"
        url = s.url + "/api/v1/clients/lookup"
        r = http("POST", url, {"client": "sk-live-7f3a"}, headers={"Authorization": "Bearer w-token-0123456789abcdef"})
        other = http("POST", url, {"client": "nobody"}, headers={"Authorization": "Bearer w-token-0123456789abcdef"}).json()["data"]["lookup"]
        empty = http("POST", url, {"client": ""}, headers={"Authorization": "Bearer w-token-0123456789abcdef"})
        reader = http("POST", url, {"client": "sk-live-7f3a"}, headers={"Authorization": "Bearer r-token-0123456789abcdef"})
    finally:
        s.close()
    assert r.status == 200, r.body
    lookup = r.json()["data"]["lookup"]
    assert [(x["model"], x["client"], x["tracked"]) for x in lookup] == [("m", flagged[0]["client"], True)]
    assert lookup[0]["verdict"]["suspicious"] and lookup[0]["verdict"]["signals"][0]["since_query"] > 0
    assert b"sk-live-7f3a" not in r.body
    assert [(x["tracked"], x["verdict"]) for x in other] == [(False, None)]
    assert empty.status == 400 and "client" in empty.body.decode()
    assert reader.status == 401
