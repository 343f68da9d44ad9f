"""The probing detector's checkpoints across configuration changes (a review of its state).

Each test is a bug the review reproduced: a state saved with a longer ``history`` or another
``prada_window`` (or hash segmentation) loaded without complaint, and every update after it raised
(an index past the new history, a Shapiro-Wilk window of the old length), so that the detector
saw nothing for good, each checkpoint saving the misfit again; and a state saved with
``raw_client_ids: true`` restored into a detector configured without them kept exporting the raw
ids (metrics, ``GET /api/v1/clients``, campaigns) until each client was evicted, while the clients
themselves, never recognised again, were tracked twice; and a configured ``client_id_salt`` was
replaced by the one in the state, so that replicas given one salt to agree on the exported ids
disagreed after a restore (and a salt rotated after a leak came back).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import DetectorConfig, MonitorConfig
from monitor.detectors.probing import ProbingDetector
from monitor.detectors.probing.clients import hash_client_id
from monitor.store import MetricStore
from tests import probing_streams as S

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def ref():
    return S.reference()


def _streams(seed: int, n: int = 400) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    streams = {f"benign-{i}": S.benign(rng, n) for i in range(6)}
    streams["attacker"] = S.probing(rng, n)
    return streams


def _monitor(ref, **params: Any) -> Monitor:
    cfg = MonitorConfig(model="m", detectors=(DetectorConfig("probing", {"client_id_salt": "s", "raw_client_ids": True, **params}),))
    return Monitor(config=cfg, reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)


def _observe(mon: Monitor, streams: dict[str, np.ndarray], t0: float) -> None:
    x, clients, ts = S.interleave(streams, np.random.default_rng(0), t0=t0)
    for i in range(0, len(ts), 64):
        for j in range(i, min(i + 64, len(ts))):
            mon.observe(x[j:j + 1], S.scores(x[j:j + 1]), client=clients[j], timestamp=float(ts[j]))
        mon.flush()


@pytest.mark.parametrize("change", [{"history": 200}, {"prada_window": 50}])
def test_a_state_saved_with_another_ring_layout_is_set_aside_not_loaded_broken(ref, tmp_path: Path, change: dict) -> None:
    before = _monitor(ref)
    _observe(before, _streams(1), T0)
    end = before.clock()
    before.save_checkpoint(tmp_path / "m.ckpt", final=True)
    before.close()
    after = _monitor(ref, **change)
    try:
        assert after.restore_checkpoint(tmp_path / "m.ckpt")
        assert after.restore_report.detectors_set_aside
        _observe(after, _streams(2), end + 60)
        assert after.store.value("monitor_detector_errors", labels=("probing",)) == 0.0
        verdict = after.detectors[0].verdict("attacker")
        assert verdict is not None and "near_duplicates" in verdict.signal_names
    finally:
        after.close()


def test_a_longer_history_keeps_the_state(ref) -> None:
    det = ProbingDetector(ref, client_id_salt="s", raw_client_ids=True)
    S.feed(det, _streams(3))
    longer = ProbingDetector(ref, client_id_salt="s", raw_client_ids=True, history=3000)
    longer.load_state_dict(pickle.loads(pickle.dumps(det.state_dict())))
    assert longer.verdict("attacker").queries == 400
    S.feed(longer, _streams(4))
    assert longer.verdict("attacker").queries == 800


def test_raw_ids_do_not_outlive_raw_client_ids_being_turned_off(ref) -> None:
    rng = np.random.default_rng(5)
    walk = S.probing(rng, 300)
    streams = {f"benign-{i}": S.benign(rng, 200) for i in range(5)}
    streams["alice@example.com"] = S.probing(rng, 200)
    streams.update({f"sybil-{a}@example.com": walk[a::6] for a in range(6)})  # a campaign, with its members' names
    det = ProbingDetector(ref, client_id_salt="s", raw_client_ids=True, max_clients=9)  # 12 clients: some evicted
    S.feed(det, streams)
    assert det.campaigns() and det.evictions > 0
    hashed = ProbingDetector(ref, client_id_salt="s", raw_client_ids=False, max_clients=9)
    hashed.load_state_dict(pickle.loads(pickle.dumps(det.state_dict())))
    store = MetricStore("m")
    hashed.export(store)
    shown = {labels["client"] for name, labels, _ in store.samples() if name == "monitor_probing_client_evidence_queries"}
    shown |= {v.client for v in hashed.suspicious_clients()}
    shown |= {a for c in hashed.campaigns() for a in c.accounts}
    assert shown and not any("@" in c for c in shown), shown
    assert hashed.client_key("alice@example.com") == hash_client_id("alice@example.com", "s") in shown
    # the client is recognised when it comes back (its state taken up, not a second entry)
    before = hashed.verdict("alice@example.com")
    assert before is not None and before.queries == det.verdict("alice@example.com").queries > 0
    tracked = hashed.clients_tracked
    x = S.probing(rng, 5)
    from monitor.batch import Batch

    hashed.update(Batch.from_arrays(x, S.scores(x), ts=np.full(5, 1e6), client="alice@example.com"))
    hashed.flush()
    assert hashed.clients_tracked == tracked and hashed.verdict("alice@example.com").queries == before.queries + 5


def test_a_configured_salt_is_not_replaced_by_the_saved_one(ref) -> None:
    old = ProbingDetector(ref, client_id_salt="old")
    S.feed(old, _streams(6, 200))
    state = pickle.loads(pickle.dumps(old.state_dict()))
    new = ProbingDetector(ref, client_id_salt="new")
    with pytest.raises(ValueError, match="client_id_salt"):
        new.load_state_dict(state)  # the monitor starts it empty: its clients are known by the old salt's hashes
    assert new.client_key("attacker") == hash_client_id("attacker", "new")
    random_salt = ProbingDetector(ref)  # no salt configured: the saved one (random at first) is kept
    random_salt.load_state_dict(state)
    assert random_salt.client_key("attacker") == hash_client_id("attacker", "old")
    assert [v.client for v in random_salt.suspicious_clients()] == [hash_client_id("attacker", "old")]
    raw = ProbingDetector(ref, client_id_salt="old", raw_client_ids=True)
    S.feed(raw, _streams(7, 200))
    from_raw = ProbingDetector(ref, client_id_salt="new")  # raw ids saved: hashed with the configured salt
    from_raw.load_state_dict(pickle.loads(pickle.dumps(raw.state_dict())))
    assert [v.client for v in from_raw.suspicious_clients()] == [hash_client_id("attacker", "new")]
