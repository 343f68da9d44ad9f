"""A heavy benign client against a reference with fewer rows than ``history`` (review s27e).

The near-duplicate threshold ``tau`` was the ``query_fpr`` quantile of the k-th nearest-neighbour
distance among the reference's rows, i.e. calibrated for a client with ``n - 1`` stored queries.
A client stores up to ``history`` (1,000): with a 150-row reference (the README allows 110) a
client sending fresh rows drawn from the reference's own distribution had about seven times the
density, its k-th neighbour sat below ``tau`` far more often than ``query_fpr``, and it was
flagged for near-duplicates after ~600 queries, with a campaign among several such clients
(the critical alert); with 500 rows after ~1,100. Found with ART's digits traffic: a batch
client scoring distinct natural images was flagged after 1,540 queries.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.batch import Batch
from monitor.detectors.probing import ProbingDetector
from monitor.detectors.probing.neighbours import Sketcher, calibrate_knn
from tests import probing_streams as S


@pytest.mark.parametrize("n_ref", [150, 500])
def test_heavy_clients_of_natural_rows_are_not_flagged_whatever_the_reference_size(n_ref: int) -> None:
    # PRADA off: its own calibration on a small reference is a separate finding (s27e's report)
    det = ProbingDetector(S.reference(n_ref, seed=7), client_id_salt="s", raw_client_ids=True, seed=0, prada=False)
    rng = np.random.default_rng(10)
    for c in range(3):
        x = S.natural(rng, 1500)
        ts = 1e9 + np.arange(len(x), dtype=np.float64)
        for i in range(0, len(x), 100):
            det.update(Batch.from_arrays(x[i:i + 100], S.scores(x[i:i + 100]), ts=ts[i:i + 100],
                                         client=np.full(100, f"heavy{c}", dtype=object)))
    det.flush()
    verdicts = [det.verdict(f"heavy{c}") for c in range(3)]
    assert [(v.first_flagged_query, v.signal_names) for v in verdicts] == [(0, ())] * 3
    assert det.campaigns() == []


def test_tau_is_calibrated_for_a_client_with_history_stored_queries() -> None:
    """At ``history`` stored queries of fresh natural rows, the hit rate stays near ``query_fpr``."""
    ref = S.reference(150, seed=7)
    sk = Sketcher(ref.numeric)
    s = sk.project(sk.standardise(ref.numeric))
    history = 1000
    cal = calibrate_knn(s, 10, 0.01, np.random.default_rng(0), history=history)
    rng = np.random.default_rng(3)
    stored = sk.project(sk.standardise(S.natural(rng, history)))
    fresh = sk.project(sk.standardise(S.natural(rng, 2000)))
    d = np.sqrt(np.maximum((fresh * fresh).sum(1)[:, None] + (stored * stored).sum(1)[None] - 2 * fresh @ stored.T, 0))
    rate = float((np.sort(d, axis=1)[:, 9] < cal.tau).mean())
    assert rate <= 0.02
    # a reference as large as the history is calibrated as before
    big = S.reference(1500, seed=7)
    sb = sk.project(sk.standardise(big.numeric))
    assert calibrate_knn(sb, 10, 0.01, np.random.default_rng(0), history=history).tau == \
        calibrate_knn(sb, 10, 0.01, np.random.default_rng(0)).tau
