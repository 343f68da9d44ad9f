"""Drift of the embeddings given with the predictions: ``pca_drift`` with ``space: embedding``
(``detector="pca_drift_embedding"``), in the defaults when the reference holds embeddings.

Streams (:mod:`tests.embedding_streams`): 64 values a row from 8 latent factors plus noise; a
reference of 2,000 rows. Bounds pinned here and quoted in the README's Input drift section:

* silent on 4 seeds x 25,000 unshifted rows (100,000 rows: at the default ERT of 1,000,000 rows
  the union bound allows 0.1 false alarm in all);
* a mean shift of 0.5 sd along 3 of the main directions alarms within 500 rows on every seed,
  naming a ``component_N``;
* a new cluster (a fifth of the rows moved off the reference's directions) alarms within 1,000
  rows on every seed, naming ``reconstruction_error``.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from monitor.batch import Batch
from monitor.detectors.registry import create
from monitor.reference import Reference
from tests.embedding_streams import WIDTH, embeddings

SEEDS = range(4)


def _reference(rng: np.random.Generator, rows: int = 2000) -> Reference:
    return Reference.from_arrays(rng.normal(size=(rows, 2)), embedding=embeddings(rng, rows))


def _first_alarm(seed: int, rows: int, step: int = 50, **shift: Any) -> tuple[int | None, list[str]]:
    """Rows streamed until the detector's alarm (None: none in ``rows``) and the channels it names."""
    rng = np.random.default_rng(seed)
    det = create("pca_drift", reference=_reference(rng), params={"space": "embedding"})
    for start in range(0, rows, step):
        det.update(Batch.from_arrays(rng.normal(size=(step, 2)), ts=np.arange(start, start + step, dtype=float),
                                     embedding=embeddings(rng, step, **shift)))
        if det.drift_detected:
            return start + step, [f for f, _, _ in det.top_features]
    return None, []


@pytest.mark.parametrize("seed", SEEDS)
def test_silent_on_unshifted_embeddings(seed: int) -> None:
    assert _first_alarm(seed, 25_000, step=1000) == (None, [])


@pytest.mark.parametrize("seed", SEEDS)
def test_a_shift_along_the_main_directions_alarms_within_500_rows(seed: int) -> None:
    """Reconstruction error alone never sees it: shifted rows lie in the directions kept."""
    at, named = _first_alarm(seed, 500, shift_sd=0.5)
    assert at is not None and at <= 500
    assert named and all(n.startswith("component_") for n in named), named


@pytest.mark.parametrize("seed", SEEDS)
def test_a_new_cluster_alarms_within_1000_rows(seed: int) -> None:
    at, named = _first_alarm(seed, 1000, cluster_share=0.2)
    assert at is not None and at <= 1000
    assert named[0] == "reconstruction_error", named


def test_its_own_detector_label_and_channels() -> None:
    det = create("pca_drift", reference=_reference(np.random.default_rng(0)), params={"space": "embedding"})
    assert det.name == "pca_drift_embedding"
    assert det.channel_names[0] == "reconstruction_error" and det.channel_names[1] == "component_1"
    # the input space is as it was: its own label, one channel
    plain = create("pca_drift", reference=Reference.from_arrays(np.random.default_rng(0).normal(size=(200, 3))))
    assert plain.name == "pca_drift" and plain.channel_names == ("reconstruction_error",)


def test_a_reference_without_embeddings_is_refused_naming_the_fix() -> None:
    ref = Reference.from_arrays(np.random.default_rng(0).normal(size=(200, 3)))
    with pytest.raises(ValueError, match=r"needs reference embeddings.*Reference\.from_arrays\(\.\.\., embedding=\.\.\.\)"):
        create("pca_drift", reference=ref, params={"space": "embedding"})
    with pytest.raises(ValueError, match="space must be 'input' or 'embedding'"):
        create("pca_drift", reference=ref, params={"space": "embeddings"})


def test_too_few_reference_embeddings_are_refused_naming_the_fix() -> None:
    rng = np.random.default_rng(0)
    ref = Reference.from_arrays(rng.normal(size=(30, 2)), embedding=embeddings(rng, 30))
    with pytest.raises(ValueError, match=r"at least 40 rows.*Fix: a reference with more rows"):
        create("pca_drift", reference=ref, params={"space": "embedding"})


def test_embeddings_of_another_width_are_left_out_and_said_once(caplog: Any) -> None:
    rng = np.random.default_rng(0)
    det = create("pca_drift", reference=_reference(rng), params={"space": "embedding"})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        for start in range(0, 2000, 500):
            det.update(Batch.from_arrays(rng.normal(size=(500, 2)), ts=np.arange(start, start + 500, dtype=float),
                                         embedding=rng.normal(size=(500, WIDTH + 1))))
        det.update(Batch.from_arrays(rng.normal(size=(10, 2)), ts=np.arange(2000, 2010, dtype=float)))  # none at all
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and f"embeddings of {WIDTH + 1} values, the reference's have {WIDTH}" in said[0], said
    assert "Fix: give each prediction the embedding of the same layer" in said[0]
    assert det.rows_seen == 0 and not det.drift_detected


def test_in_the_defaults_when_the_reference_has_embeddings() -> None:
    from monitor.detectors.defaults import default_detectors
    from monitor.schema import OutputSpec

    rng = np.random.default_rng(0)
    specs = default_detectors(OutputSpec(), _reference(rng, 200))
    assert [d.params for d in specs if d.kind == "pca_drift"] == [{}, {"space": "embedding"}]
    without = default_detectors(OutputSpec(), Reference.from_arrays(rng.normal(size=(200, 2))))
    assert [d.params for d in without if d.kind == "pca_drift"] == [{}]


def test_a_monitor_watches_the_embeddings_of_its_calls_by_default() -> None:
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from tests.sidecar_support import sample

    rng = np.random.default_rng(1)
    ref = _reference(rng)
    mon = Monitor(model="emb", reference=ref, registry=CollectorRegistry(auto_describe=False),
                  clock=lambda: 1_700_000_000.0)
    try:
        for _ in range(20):
            mon.observe(rng.normal(size=(50, 2)), rng.normal(size=50), embedding=embeddings(rng, 50, shift_sd=0.5))
        mon.flush()
        text = mon.metrics_text()
        assert sample(text, "monitor_drift_detected", model="emb", detector="pca_drift_embedding") == 1
        assert sample(text, "monitor_drift_rows_unread_total", model="emb", detector="pca_drift_embedding") == 0
        # probabilities (P(positive)), so that every row is read: without an embedding, or one of
        # another width, a row is never compared, and counted
        mon.observe(rng.normal(size=(30, 2)), rng.uniform(size=30))
        mon.observe(rng.normal(size=(7, 2)), rng.uniform(size=7), embedding=rng.normal(size=(7, WIDTH + 1)))
        mon.flush()
        assert sample(mon.metrics_text(), "monitor_drift_rows_unread_total", model="emb",
                      detector="pca_drift_embedding") == 37
    finally:
        mon.close()


RULES = Path(__file__).resolve().parent.parent / "rules" / "drift.yml"


def test_model_multivariate_drift_fires_saying_it_is_the_embedding(tmp_path: Path) -> None:
    from monitor.rules.unittest import run_unit_tests

    rule = next(r for r in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
                if r.get("alert") == "ModelMultivariateDrift")
    description = ("The joint distribution of the features left the reference (e.g. correlations broken, noise on "
                   "some rows) even if no single feature did; for pca_drift_embedding, the embeddings given with the "
                   "predictions did (monitor_drift_top_feature names component_N for a shift along their main "
                   "directions, reconstruction_error for rows off them). monitor_drift_statistic shows the statistic "
                   "against monitor_drift_statistic_threshold.")

    def alert(det: str, summary: str, description: str) -> dict[str, Any]:
        return {"exp_labels": {"severity": "warning", "model": "m", "detector": det},
                "exp_annotations": {"summary": summary, "description": description,
                                    "runbook_url": rule["annotations"]["runbook_url"]}}

    doc = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
           "tests": [{"interval": "1m",
                      "input_series": [{"series": f'monitor_drift_detected{{model="m",detector="{d}"}}', "values": "1x5"}
                                       for d in ("pca_drift_embedding", "pca_drift")],
                      "alert_rule_test": [{"eval_time": "2m", "alertname": "ModelMultivariateDrift", "exp_alerts": [
                          alert("pca_drift", "Multivariate drift on model m (pca_drift)", description),
                          alert("pca_drift_embedding", "Multivariate drift on model m (pca_drift_embedding: the embedding)",
                                description)]}]}]}
    path = tmp_path / "embedding_rule_test.yml"
    path.write_text(json.dumps(doc))
    out, err = io.StringIO(), io.StringIO()
    assert run_unit_tests([str(path)], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()


def test_rows_unread_keeps_counting_across_a_clean_restart(tmp_path: Path) -> None:
    """The counter was written as the detector's own count, which a restored detector starts at
    0: after a clean restart (counters restored from the checkpoint) it fell from 30 to 0."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from tests.sidecar_support import sample

    rng = np.random.default_rng(1)
    ref = _reference(rng)

    def start() -> Monitor:
        return Monitor(model="emb", reference=ref, registry=CollectorRegistry(auto_describe=False),
                       clock=lambda: 1_700_000_000.0, start_worker=False)

    def unread(mon: Monitor) -> float:
        return sample(mon.metrics_text(), "monitor_drift_rows_unread_total", model="emb", detector="pca_drift_embedding")

    first = start()
    first.observe(rng.normal(size=(30, 2)), rng.uniform(size=30))  # no embedding: 30 rows unread
    first.flush()
    assert unread(first) == 30
    first.save_checkpoint(tmp_path / "m.ckpt", final=True)
    first.close()
    second = start()
    try:
        assert second.restore_checkpoint(tmp_path / "m.ckpt") and second.restore_report.counters_restored
        second.observe(rng.normal(size=(50, 2)), rng.uniform(size=50), embedding=embeddings(rng, 50))
        second.flush()
        assert unread(second) == 30
        second.observe(rng.normal(size=(5, 2)), rng.uniform(size=5))
        second.flush()
        assert unread(second) == 35
    finally:
        second.close()


def test_calls_without_an_embedding_beside_calls_with_one_are_said_to_have_none(caplog: Any) -> None:
    """Calls drained together are one batch, the embedding-less calls' rows NaN: the log said
    they "have non-finite embedding values", sending the operator to look for NaN in embeddings
    the caller never gave."""
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    rng = np.random.default_rng(2)
    mon = Monitor(model="emb", reference=_reference(rng), registry=CollectorRegistry(auto_describe=False),
                  clock=lambda: 1_700_000_000.0, start_worker=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.observe(rng.normal(size=(30, 2)), rng.uniform(size=30))
            mon.observe(rng.normal(size=(50, 2)), rng.uniform(size=50), embedding=embeddings(rng, 50))
            mon.flush()
        said = [r.getMessage() for r in caplog.records if "pca_drift_embedding" in r.getMessage()]
        assert len(said) == 1 and "30 of 80 rows came without an embedding" in said[0], said
    finally:
        mon.close()
