"""Heavy benign accounts on clustered data made a "campaign" (review s27e).

A campaign hit is a query whose neighbourhood in the global ring holds 5 queries from each of 3
accounts, one of them a per-client near-duplicate hit. The neighbourhood's radius was ``tau``,
the per-client kNN threshold: a radius that natural traffic reaches at a 1% rate per query, by
design. On ``digits`` (tight clusters), three realistic benign accounts (a batch job scoring
distinct natural images, a client paginating through records sorted by class, and a NAT gateway
whose users re-scan items) each put queries into the densest clusters, their 1% natural hits
among them, and ModelProbingCampaign (critical) named all three on every seed tried with ART's
attacks interleaved (3 of 3). The radius is now ``near``, the near-duplicate radius the ring's
queries are admitted by: a split attack's accounts sit that close to each other, natural
clusters do not; the evaluation's split attack is found at the same query (376).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from monitor.batch import Batch
from tests.conftest import load_benchmark

pytest.importorskip("sklearn", reason="scikit-learn (dev extra) runs the evaluation model")


@pytest.mark.parametrize("seed", [0, 1])
def test_heavy_benign_accounts_on_clustered_data_make_no_campaign(seed: int) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from sklearn.datasets import load_digits

    E = load_benchmark("eval_probing")
    world = E.build_world(0)
    natural = load_digits(return_X_y=True)[0].astype(np.float64)
    rng = np.random.default_rng(seed)
    pages = natural[np.lexsort((natural[:, 20], world.model.predict(natural)))]  # sorted by class, then a pixel
    xs, cs = [], []
    page = 0
    for tick in range(400):
        if tick % 3 == 0:  # a batch job: 32 distinct natural images per call
            xs.append(natural[rng.choice(len(natural), 32, replace=False)]); cs += ["batch"] * 32
        if tick % 2 == 0:  # a client paging through records sorted by class, 10 a page
            sl = pages[page * 10:(page + 1) * 10] if page * 10 < len(pages) else pages[:10]
            page = page + 1 if page * 10 < len(pages) else 1
            xs.append(sl); cs += ["pager"] * len(sl)
        for _ in range(6):  # a NAT gateway: many users, 30% of items re-scanned (sensor noise)
            base = natural[rng.integers(len(natural))]
            rows = [E._sensor(base, rng)] + ([E._sensor(base, rng)] if rng.random() < 0.3 else [])
            xs.append(np.array(rows)); cs += ["nat"] * len(rows)
    x = np.concatenate(xs)
    client = np.array(cs, dtype=object)
    ts = 1.7e9 + np.linspace(0.0, 3600.0, len(x))
    det = E.make_detector(world, 0)
    scores = world.predict_proba(x)
    for i in range(0, len(x), 256):
        det.update(Batch.from_arrays(x[i:i + 256], scores[i:i + 256], ts=ts[i:i + 256], client=client[i:i + 256]))
    det.flush()
    assert len(x) > 5000
    assert det.campaigns() == [], [c.to_dict() for c in det.campaigns()]
    assert [det.verdict(c).signal_names for c in ("batch", "pager", "nat")] == [(), (), ()]
