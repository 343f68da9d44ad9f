"""Busy benign clients and the ``near_duplicates`` signal (measured in :mod:`tests.probing_streams`).

Twenty clients at 5 queries/s for 900 s (4,500 queries each, history full after about 1,000
distinct ones), no input shift:

* fresh natural rows, drawn as the reference is, are never flagged (none seen; 0 of 40 at 1,560 s):
  the hit test holds its rate on traffic like the reference however busy the client;
* :func:`tests.probing_streams.benign` clients, which resubmit every item 1 to 6 times with noise,
  were flagged (11 of 20): their own copies counted towards the ``k`` neighbours of the hit test and
  neighbouring items came in clusters of copies. The hit test now counts copies once (copy clusters,
  :func:`monitor.detectors.probing.neighbours.copy_aware_counts`): at most one of the 20 may be
  flagged (none seen; 0.0-0.15% of their queries are hits, 2.1-3.6% before). The mean statistic
  (``knn_statistic: mean``) counted other items' copies one by one until session 37 and flagged 7
  of the 20; it now takes the nearest copy of each other item (:func:`monitor.detectors.probing.neighbours.copy_aware_mean`): none seen.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from monitor.batch import Batch
from monitor.detectors.probing import ProbingDetector
from tests import probing_streams as ps

END, RATE, CLIENTS = 900.0, 5.0, 20


def flagged_near_duplicates(make: Callable[[np.random.Generator, int], np.ndarray], seed: int = 2,
                            **params: Any) -> set[str]:
    """Clients flagged ``near_duplicates`` at any 15-s scrape of a replay of busy clients sending
    ``make``'s rows (``params``: the detector's)."""
    x, c, t = ps.timed_clients(np.random.default_rng(seed), make, CLIENTS, RATE, END)
    det = ProbingDetector(ps.reference(), raw_client_ids=True, client_id_salt="busy", seed=0, **params)
    flagged: set[str] = set()
    for now in np.arange(15.0, END + 15.0, 15.0):
        sel = (t >= now - 15.0) & (t < now)
        if sel.any():
            det.update(Batch.from_arrays(x[sel], ps.scores(x[sel]), ts=t[sel], client=c[sel]))
        det.advance(float(now))
        flagged |= {v.client for v in det.suspicious_clients(100) if "near_duplicates" in v.signal_names}
    return flagged


def test_busy_clients_sending_fresh_natural_rows_are_not_flagged_near_duplicates() -> None:
    assert flagged_near_duplicates(ps.natural) == set()


def test_busy_clients_resubmitting_items_are_not_flagged_near_duplicates() -> None:
    flagged = flagged_near_duplicates(ps.benign)
    assert len(flagged) <= 1, sorted(flagged)


def test_busy_clients_resubmitting_items_are_not_flagged_by_the_mean_statistic() -> None:
    flagged = flagged_near_duplicates(ps.benign, knn_statistic="mean")
    assert len(flagged) <= 1, sorted(flagged)


def test_the_mean_statistic_still_flags_busy_fresh_rows_never() -> None:
    assert flagged_near_duplicates(ps.natural, knn_statistic="mean") == set()
