"""Client ids as callers give them, from a review of the probing detector's per-client handling.

Each test is a bug the review reproduced: a per-row list of clients (a batching server scoring
several callers' requests in one ``observe``) made the batch's client column longer than its rows,
so that every row of that call went to its first client and the calls after it read other callers'
ids, or, with a call of another shape in the same drain, held lists that the probing detector
could not look up (its whole batch lost, every caller's rows in it); and ``client_key`` of an id
longer than ``MAX_ID_CHARS`` (a bearer token) was not the id the detector exported for it.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.config import DetectorConfig, MonitorConfig
from monitor.detectors.probing import ProbingDetector
from tests import probing_streams as S

T0 = 1_700_000_000.0


def _monitor() -> Monitor:
    cfg = MonitorConfig(model="m", detectors=(DetectorConfig("probing", {"client_id_salt": "s", "raw_client_ids": True}),))
    return Monitor(config=cfg, reference=S.reference(), registry=CollectorRegistry(), start_worker=False, live=False)


def _tracked(mon: Monitor) -> dict[str, int]:
    """Raw id -> queries the probing detector saw from it."""
    det = mon.detectors[0]
    return {key: int(det._queries[slot]) for key, slot in det._clients._lru.items()}


def test_a_per_row_list_of_clients_gives_each_row_its_own_client() -> None:
    mon = _monitor()
    try:
        x = S.natural(np.random.default_rng(0), 7)
        mon.observe(x[:3], S.scores(x[:3]), client=["alice", "bob", "bob"], timestamp=T0)
        mon.observe(x[3:5], S.scores(x[3:5]), client=np.array(["carol", "dave"], dtype=object), timestamp=T0 + 1)
        mon.observe(x[5:6], S.scores(x[5:6]), client="erin", timestamp=T0 + 2)
        mon.observe(x[6:7], S.scores(x[6:7]), timestamp=T0 + 3)
        mon.flush()
        assert _tracked(mon) == {"alice": 1, "bob": 2, "carol": 1, "dave": 1, "erin": 1, "anonymous": 1}
        assert mon.store.value("monitor_detector_errors", labels=("probing",)) == 0.0
    finally:
        mon.close()


def test_per_row_lists_of_one_length_in_one_drain_are_not_folded() -> None:
    """Two calls with two-client lists: the array of the lists was 2 x 2, and bob's and dave's
    rows went to alice and carol."""
    mon = _monitor()
    try:
        x = S.natural(np.random.default_rng(1), 4)
        mon.observe(x[:2], S.scores(x[:2]), client=["alice", "bob"], timestamp=T0)
        mon.observe(x[2:], S.scores(x[2:]), client=["carol", "dave"], timestamp=T0)
        mon.flush()
        assert _tracked(mon) == {"alice": 1, "bob": 1, "carol": 1, "dave": 1}
    finally:
        mon.close()


def test_a_client_list_of_another_length_is_counted_and_its_rows_are_anonymous() -> None:
    mon = _monitor()
    try:
        x = S.natural(np.random.default_rng(2), 4)
        mon.observe(x[:3], S.scores(x[:3]), client=["alice", "bob"], timestamp=T0)
        mon.observe(x[3:], S.scores(x[3:]), client=b"carol", timestamp=T0)  # bytes read as text, as segments are
        mon.flush()
        assert _tracked(mon) == {"anonymous": 3, "carol": 1}
        assert mon.store.value("monitor_row_arguments_dropped", labels=("client",)) == 3.0
    finally:
        mon.close()


def test_unhashable_client_ids_do_not_cost_the_batch() -> None:
    """A client id the detector cannot hash (a dict from a caller's extractor) raised TypeError
    in its lookup: the batch was lost for every client in it."""
    det = ProbingDetector(S.reference(), client_id_salt="s", raw_client_ids=True)
    x = S.natural(np.random.default_rng(3), 3)
    det.update(Batch.from_arrays(x, S.scores(x), client=np.array([{"user": 1}, "bob", ["x"]], dtype=object)))
    det.flush()
    assert sorted(det._clients._lru) == sorted([str({"user": 1}), "bob", str(["x"])])
    assert det.verdict({"user": 1}) is not None and det.verdict(7) is None


def test_client_key_of_a_long_id_is_the_id_it_is_exported_under() -> None:
    ref = S.reference()
    rng = np.random.default_rng(4)
    token = "eyJ" + "a" * 400  # longer than MAX_ID_CHARS: tracked by digest
    streams = {f"benign-{i}": S.benign(rng, 100) for i in range(5)}
    streams[token] = S.probing(rng, 200)
    for raw in (False, True):
        det = ProbingDetector(ref, client_id_salt="s", raw_client_ids=raw)
        S.feed(det, streams)
        assert [v.client for v in det.suspicious_clients()] == [det.client_key(token)]
