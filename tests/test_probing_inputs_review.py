"""Inputs the probing detector meets in the field, from a review of its per-client handling.

Each test is a bug the review reproduced: one query with a value beyond float32's range (a
broken upstream field, or an attacker's choice) made an infinite sketch in the client's history,
after which about half of its exact retries went unrecognised (and label flips, PRADA's distances
and campaign candidates lost their nearest neighbour); and a classifier whose inputs are all
categorical could not start with the default detectors, since ``probing`` was among them and
cannot be built without numeric features.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.detectors.probing import ProbingDetector
from monitor.reference import Reference
from tests import probing_streams as S


@pytest.mark.parametrize("big", [np.inf, 1e39, 1e300])
def test_one_huge_value_does_not_hide_the_clients_later_retries(big: float) -> None:
    det = ProbingDetector(S.reference(), client_id_salt="s", raw_client_ids=True)
    x = S.natural(np.random.default_rng(0), 21)
    first = x[:1].copy()
    first[0, 0] = big
    rows = np.vstack([first, x[1:], x[1:]])  # 20 items, then each of them retried once
    p = S.scores(np.vstack([x[:1], x[1:], x[1:]]))
    for i in range(len(rows)):  # one query at a time, as a live client sends them
        det.update(Batch.from_arrays(rows[i:i + 1], p[i:i + 1], ts=float(i), client="c"))
    det.flush()
    assert det.verdict("c").retries == 20  # was 14 at 1e39, 17 at 1e300


def test_a_classifier_with_only_categorical_inputs_starts_with_the_defaults(caplog) -> None:
    rng = np.random.default_rng(0)
    n = 500
    categorical = rng.choice(["a", "b", "c"], size=(n, 2)).astype(object)
    p = rng.dirichlet([1, 1], n)
    ref = Reference.from_arrays(np.empty((n, 0)), scores=p, labels=p.argmax(1), categorical=categorical,
                                categorical_names=("c1", "c2"))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = Monitor(model="m", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        kinds = [d.kind for d in mon.detectors]
        assert "probing" not in kinds and "confidence" in kinds and "output_repeats" in kinds
        assert any("'probing'" in r.getMessage() and "numeric" in r.getMessage() for r in caplog.records)
    finally:
        mon.close()
