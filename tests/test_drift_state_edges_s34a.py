"""Every drift detector's saved counts are checked against the numeric edges they were binned on.

pca_drift refused a state whose reconstruction errors were binned on other edges (its
``error_edges``), but the hazard was every drift detector's: a reference keeps its fingerprint when
its bins change under it (an upgrade lowering quantile edges another way, a profile's fine bins
coarsened another way), and input_drift, output_drift and pca_drift's embedding channels then
read the saved window's counts as other bins' (s34a's review). The drift core now records each
numeric channel's edges (``numeric_edges``) and refuses a state saved under other ones (the
checkpoint restore then starts that detector empty, the others restored); states saved before the
edges were recorded load as before. Categorical channels were already checked by the categories
binned apart (``category_bins``, tests/test_categorical_bins_chosen_apart.py).

The "upgrade" is made by binning without :func:`monitor.stats.univariate.tie_tolerant`'s lowering
(a change of 1e-6 of each edge): the same reference, the same fingerprint, other edges.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

import monitor.detectors.drift as drift
from monitor import Monitor
from monitor.batch import Batch
from monitor.detectors.drift import BinnedDriftDetector, FeatureDriftDetector
from monitor.detectors.multivariate import PCADriftDetector
from monitor.detectors.output_drift import OutputDriftDetector
from monitor.reference import Reference

NAMES = ("a", "b", "c", "d")
T0 = 1_700_000_000.0


def _reference() -> Reference:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 4))
    cats = rng.choice(["u", "v", "w"], size=(600, 1)).astype(object)
    return Reference.from_arrays(x, numeric_names=NAMES, categorical=cats, categorical_names=("k",),
                                 scores=rng.dirichlet(np.ones(3), size=600), embedding=rng.normal(size=(600, 12)))


def _live(seed: int, n: int) -> Batch:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)) @ rng.normal(size=(3, 4))
    return Batch.from_arrays(x, rng.dirichlet(np.ones(3), size=n), ts=T0 + np.arange(n, dtype=np.float64),
                             numeric_names=NAMES, categorical=rng.choice(["u", "v", "x"], size=(n, 1)).astype(object),
                             categorical_names=("k",), embedding=rng.normal(size=(n, 12)) * 1.2)


DETECTORS = {
    "input_drift": lambda ref: FeatureDriftDetector(ref),
    "output_drift": lambda ref: OutputDriftDetector(ref),
    "pca_drift": lambda ref: PCADriftDetector(ref),
    "pca_drift_embedding": lambda ref: PCADriftDetector(ref, space="embedding"),
}


def _feed(det: BinnedDriftDetector, batch: Batch, part: slice) -> None:
    for s in range(part.start, part.stop, 100):
        det.update(batch.rows(np.arange(s, min(s + 100, part.stop))))


@pytest.mark.parametrize("kind", sorted(DETECTORS))
def test_a_state_binned_on_other_edges_is_refused(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _reference()
    det = DETECTORS[kind](ref)
    _feed(det, _live(1, 500), slice(0, 500))
    state = det.state_dict()
    numeric = [c.name for c in det._core.channels if c.kind == "numeric"]
    assert sorted(state["numeric_edges"]) == sorted(numeric) and numeric
    monkeypatch.setattr(drift, "tie_tolerant", lambda edges: np.asarray(edges, dtype=np.float64))
    upgraded = DETECTORS[kind](ref)
    moved = [c.name for c in upgraded._core.channels if c.kind == "numeric"
             and not np.allclose(c.edges, state["numeric_edges"][c.name], rtol=1e-9, atol=0.0)]
    assert moved  # the same reference, other edges
    with pytest.raises(ValueError, match=rf"counts of {moved[0]}.* binned on other edges than this detector.s.*starts empty"):
        upgraded.load_state_dict(state)


@pytest.mark.parametrize("kind", sorted(DETECTORS))
@pytest.mark.parametrize("saved_edges", [True, False])
def test_a_state_restores_bit_identical_behaviour(kind: str, saved_edges: bool) -> None:
    """Same edges: restored, and a restored detector goes on exactly as an uninterrupted one. A
    state saved before the edges were recorded (no ``numeric_edges``) loads as it did."""
    ref = _reference()
    live = _live(2, 1500)
    straight, first = DETECTORS[kind](ref), DETECTORS[kind](ref)
    _feed(straight, live, slice(0, 700))
    _feed(first, live, slice(0, 700))
    state = first.state_dict()
    if not saved_edges:
        del state["numeric_edges"]
    restored = DETECTORS[kind](ref)
    restored.load_state_dict(state)
    _feed(straight, live, slice(700, 1500))
    _feed(restored, live, slice(700, 1500))
    np.testing.assert_equal(restored.state_dict(), straight.state_dict())
    assert restored.drift_detected == straight.drift_detected and restored.rows_seen == 1500


def test_a_malformed_record_of_edges_says_what_to_drop() -> None:
    ref = _reference()
    state = FeatureDriftDetector(ref).state_dict()
    with pytest.raises(ValueError, match="numeric_edges must map .*Fix: drop 'numeric_edges'"):
        FeatureDriftDetector(ref).load_state_dict({**state, "numeric_edges": [1.0, 2.0]})
    bad = {**state, "numeric_edges": {**state["numeric_edges"], "b": "x"}}
    with pytest.raises(ValueError, match="numeric_edges: the edges of 'b' must be a list of numbers.*Fix: drop"):
        FeatureDriftDetector(ref).load_state_dict(bad)
    fewer = {**state, "numeric_edges": {n: e for n, e in state["numeric_edges"].items() if n != "c"}}
    with pytest.raises(ValueError, match="counts of c were binned on other edges"):  # a channel not recorded
        FeatureDriftDetector(ref).load_state_dict(fewer)


def test_edges_are_compared_to_a_billionth() -> None:
    """Edges computed again may differ in their last bits (eigenvectors on another CPU): a change
    within 1e-9 of an edge restores, one beyond is refused."""
    ref = _reference()
    det = FeatureDriftDetector(ref)
    state = det.state_dict()
    near = {n: [e * (1 + 1e-12) for e in es] for n, es in state["numeric_edges"].items()}
    FeatureDriftDetector(ref).load_state_dict({**state, "numeric_edges": near})
    far = {**state["numeric_edges"], "a": [e * (1 + 1e-7) for e in state["numeric_edges"]["a"]]}
    with pytest.raises(ValueError, match="counts of a were"):
        FeatureDriftDetector(ref).load_state_dict({**state, "numeric_edges": far})


def _monitor(ref: Reference) -> Monitor:
    cfg: dict[str, Any] = {"output": {"kind": "probabilities", "classes": ["x", "y", "z"]},
                           "detectors": ["input_drift", "output_drift", "data_quality"]}
    return Monitor("m", config=cfg, reference=ref, registry=CollectorRegistry(), live=False, start_worker=False)


def test_a_checkpoint_restore_starts_only_those_detectors_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _reference()
    before = _monitor(ref)
    live = _live(3, 400)
    before.observe({n: live.numeric[:, i].tolist() for i, n in enumerate(NAMES)} | {"k": live.categorical[:, 0].tolist()},
                   live.scores, timestamp=T0)
    before.flush()
    assert {d.kind: d.rows_seen for d in before.detectors if d.kind.endswith("drift")} == {"input_drift": 400,
                                                                                           "output_drift": 400}
    state = before.state_dict(final=True)
    before.close()
    monkeypatch.setattr(drift, "tie_tolerant", lambda edges: np.asarray(edges, dtype=np.float64))
    after = _monitor(ref)
    try:
        report = after.load_state_dict(state)
        assert report.reference == "same" and report.detectors_restored
        aside = " ".join(report.detectors_set_aside)
        assert "input_drift (the saved state's counts of a, b, c, d were binned on other edges than" in aside
        assert "output_drift (the saved state's counts of max_score were binned on other edges than" in aside
        assert len(report.detectors_set_aside) == 2  # data_quality restored
        kinds = {d.kind: d for d in after.detectors}
        assert kinds["input_drift"].rows_seen == 0 and kinds["output_drift"].rows_seen == 0
    finally:
        after.close()
