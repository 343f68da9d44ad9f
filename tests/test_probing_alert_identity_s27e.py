"""The per-client alert keeps its identity while the client stays flagged (review s27e).

``monitor_probing_client_evidence_queries`` carried the client's *strongest* signal as its
``signal`` label. An attacker first flagged on one signal (ART's HopSkipJump on digits: ``ood`` at
its 7th query) and later stronger on another (``near_duplicates`` from its 22nd) changed the
series' labels: ModelProbingSuspiciousClient (no ``for:``) resolved for the first series and fired
anew for the second, a resolve and a second page for one ongoing attack. The label is now the
signal that raised the flag first (among those still raised), so the series lasts as long as it.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from monitor import Monitor
from monitor.config import DetectorConfig, MonitorConfig
from tests import probing_streams as S

T0 = 1_700_000_000.0


def _series(reg: CollectorRegistry) -> set[str]:
    return {line.split(" ")[0] for line in generate_latest(reg).decode().splitlines()
            if line.startswith("monitor_probing_client_evidence_queries{")}


def test_the_evidence_series_keeps_its_signal_label_while_the_client_stays_flagged() -> None:
    reg = CollectorRegistry()
    cfg = MonitorConfig(model="m", detectors=(DetectorConfig("probing", {"client_id_salt": "s", "raw_client_ids": True,
                                                                        "prada": False}),))
    mon = Monitor(config=cfg, reference=S.reference(), registry=reg, start_worker=False, live=False)
    try:
        rng = np.random.default_rng(0)
        far = rng.uniform(-40, 40, (30, S.D))  # out of distribution, far apart: ood first
        walk = S.probing(rng, 200)  # then a near-duplicate walk, stronger evidence
        seen = []
        for i, rows in enumerate([far[:15], far[15:]] + [walk[j:j + 20] for j in range(0, 200, 20)]):
            mon.observe(rows, S.scores(rows), client="mallory", timestamp=T0 + 60 * i)
            mon.flush()
            seen.append(_series(reg))
        v = mon.detectors[0].verdict("mallory")
        assert v is not None and {"ood", "near_duplicates"} <= set(v.signal_names)
        assert v.signals[0].signal == "near_duplicates"  # the strongest now, after ood raised the flag
        flagged = [s for s in seen if s]
        assert flagged and all(s == flagged[0] for s in flagged), flagged
        assert 'signal="ood"' in next(iter(flagged[0]))
    finally:
        mon.close()
