"""Copy clusters in the probing detector's saved state (session 34).

The hit test counts a neighbouring item's copies once (:func:`monitor.detectors.probing.neighbours.copy_aware_counts`),
so each stored query carries its copy cluster. A state saved before that has none: it loads with
every stored query a cluster of its own (its copies counted one by one, as when it was saved, until
they leave the ring), the next queries are put in clusters as usual, and a ring whose cluster array
does not fit its queries is refused like any other misfit (the detector starts empty).
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.detectors.probing import ProbingDetector
from tests import probing_streams as S


@pytest.fixture(scope="module")
def ref():
    return S.reference()


def _saved(ref) -> tuple[ProbingDetector, dict]:
    det = ProbingDetector(ref, raw_client_ids=True, client_id_salt="s34", seed=0)
    rng = np.random.default_rng(3)
    S.feed(det, {"busy": S.benign(rng, 300), "probe": S.probing(rng, 60)}, seed=1)
    return det, det.state_dict()


def test_a_state_saved_before_copy_clusters_loads_with_a_cluster_per_stored_query(ref) -> None:
    det, state = _saved(ref)
    for rs in state["rings"].values():
        assert np.shape(rs["cluster"]) == (rs["cap"],)
        del rs["cluster"], rs["next_cluster"]
    old = ProbingDetector(ref, raw_client_ids=True, client_id_salt="s34", seed=0)
    old.load_state_dict(state)
    slot = old._clients.slot_of("busy")
    ring = old._rings[slot]
    assert ring.cluster[: ring.filled].tolist() == list(range(ring.filled)) and ring.next_cluster == ring.cap
    cap = ring.cap
    # copies the saved ring had put together are apart now, never the other way round
    saved = det._rings[det._clients.slot_of("busy")].cluster[: ring.filled]
    assert len(set(saved.tolist())) < ring.filled
    rng = np.random.default_rng(4)
    more = {"busy": S.benign(rng, 120), "probe": S.probing(rng, 40)}
    S.feed(old, more, seed=2)
    S.feed(det, more, seed=2)
    # the new queries get numbers after the old ones, copies of one item sharing theirs
    after = old._rings[slot]
    fresh = after.cluster[: after.filled][after.cluster[: after.filled] >= cap]
    assert after.next_cluster > cap and 0 < len(set(fresh.tolist())) < fresh.size
    assert {v.client for v in old.suspicious_clients()} == {v.client for v in det.suspicious_clients()} == {"probe"}


def test_a_ring_whose_clusters_do_not_fit_its_queries_is_refused(ref) -> None:
    _, state = _saved(ref)
    rs = next(iter(state["rings"].values()))
    rs["cluster"] = np.asarray(rs["cluster"])[:-1]
    with pytest.raises(ValueError, match="copy clusters"):
        ProbingDetector(ref, raw_client_ids=True, client_id_salt="s34", seed=0).load_state_dict(state)
