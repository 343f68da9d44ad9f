"""A drain mixing calls with and without a usable embedding. The batch builder kept a batch's
embeddings only when every call gave one, so one call without (or with an unreadable one) took the
embeddings of the whole drain away, up to ``batch_max`` rows of other calls; the probing detector
with ``space: embedding`` then raised on that batch: a detector error per drain, no row probed.
Now only the rows without one go unprobed, and they are counted."""

from __future__ import annotations

import logging

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.events import PREDICTION
from monitor.ingest import BatchBuilder
from monitor.schema import OutputSpec
from monitor.store import MetricStore
from tests import probing_streams as S
from tests.sidecar_support import sample, total

P = np.array([[0.2, 0.8], [0.6, 0.4]])


def _event(t: float, embedding: object) -> tuple[object, ...]:
    return (PREDICTION, t, [[1.0, 2.0], [3.0, 4.0]], P, None, None, None, None, embedding)


def test_a_call_without_an_embedding_leaves_the_others_theirs() -> None:
    events = [_event(1.0, [[1, 2, 3], [4, 5, 6]]), _event(2.0, None), _event(3.0, "x"),
              _event(4.0, [[7, 8, 9], [10, 11, 12]]), _event(5.0, [[1, 2], [3, 4]])]
    result = BatchBuilder(None, OutputSpec()).build(events)
    emb = result.batch.embedding
    assert emb.shape == (10, 3)
    np.testing.assert_array_equal(emb[[0, 1, 6, 7]], np.arange(1, 13, dtype=np.float64).reshape(4, 3))
    assert np.isnan(emb[[2, 3, 4, 5, 8, 9]]).all()
    # the unreadable one and the one of another width are the callers' mistakes; a call that gave
    # none did not make one (the detector counts its rows)
    assert result.arguments_dropped == {"embedding": 4}


def test_the_width_most_rows_have_is_the_drains() -> None:
    events = [_event(1.0, [[1, 2], [3, 4]]), _event(2.0, [[1, 2, 3], [4, 5, 6]]), _event(3.0, [[7, 8, 9], [1, 2, 3]])]
    result = BatchBuilder(None, OutputSpec()).build(events)
    assert result.batch.embedding.shape == (6, 3) and np.isnan(result.batch.embedding[:2]).all()
    assert result.arguments_dropped == {"embedding": 2}
    assert "2 values per row, the other calls' 3" in result.details["argument:embedding"]


def _embedding_reference(proj: np.ndarray):
    ref = S.reference()
    return type(ref).from_arrays(ref.numeric, scores=ref.scores, embedding=ref.numeric @ proj)


def test_rows_without_an_embedding_are_skipped_and_counted_the_others_probed() -> None:
    from monitor.detectors.probing import ProbingDetector

    proj = np.random.default_rng(17).normal(size=(S.D, 5))
    det = ProbingDetector(_embedding_reference(proj), space="embedding", client_id_salt="s", raw_client_ids=True)
    rng = np.random.default_rng(18)
    streams = {"probe": S.probing(rng, 80), **{f"b{i}": S.benign(rng, 150) for i in range(8)}}
    x, clients, ts = S.interleave(streams, rng)
    emb = x @ proj
    missing = (clients != "probe") & (rng.random(len(ts)) < 0.3)  # 30% of the benign calls gave none
    emb[missing] = np.nan
    for i in range(0, len(ts), 128):
        sl = slice(i, i + 128)
        det.update(Batch.from_arrays(x[sl], S.scores(x[sl]), ts=ts[sl], client=clients[sl], embedding=emb[sl]))
    det.flush()
    v = det.verdict("probe")
    assert v is not None and 0 < v.first_flagged_query <= 40  # every drain held rows without: still caught
    store = MetricStore("m")
    det.export(store)
    queries = {o: store.value("monitor_probing_queries", (o,)) for o in ("analysed", "retry", "no_embedding")}
    assert queries["no_embedding"] == missing.sum() > 100
    assert queries["analysed"] + queries["retry"] + queries["no_embedding"] == len(ts)
    # the count is checkpointed with the rest
    again = ProbingDetector(_embedding_reference(proj), space="embedding", client_id_salt="s", raw_client_ids=True)
    again.load_state_dict(det.state_dict())
    store2 = MetricStore("m")
    again.export(store2)
    assert store2.value("monitor_probing_queries", ("no_embedding",)) == missing.sum()


def test_the_agent_probes_the_calls_that_gave_one(caplog) -> None:
    proj = np.random.default_rng(3).normal(size=(S.D, 4))
    ref = _embedding_reference(proj)
    config = {"model": "emb", "detectors": [{"kind": "probing", "space": "embedding", "client_id_salt": "s"}]}
    mon = Monitor(config=config, reference=ref, registry=CollectorRegistry(auto_describe=False),
                  clock=lambda: 1_700_000_000.0, start_worker=False)
    try:
        rng = np.random.default_rng(4)
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for i in range(20):
                x = S.natural(rng, 5)
                mon.observe(x, S.scores(x), client=f"c{i % 3}", embedding=None if i % 4 == 0 else x @ proj)
                if i == 10:
                    mon.flush()  # two drains: said once
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "without a usable embedding" in r.getMessage()]
        assert len(said) == 1 and "Fix:" in said[0], said
        text = mon.metrics_text()
        assert sample(text, "monitor_probing_queries_total", model="emb", outcome="no_embedding") == 25
        analysed = sample(text, "monitor_probing_queries_total", model="emb", outcome="analysed")
        retry = sample(text, "monitor_probing_queries_total", model="emb", outcome="retry")
        assert analysed + retry == 75  # one drain: before, none of its 100 rows was probed
        assert total(text, "monitor_detector_errors_total", model="emb") == 0  # a probing error per drain before
    finally:
        mon.close()
