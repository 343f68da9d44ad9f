"""Quantile outputs of regression models: config, decoding, label join, and per-level empirical
coverage on seeded streams with stated bounds."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from monitor.batch import Batch, LabeledBatch
from monitor.catalog import confidence as names
from monitor.config import ConfigError, parse_config
from monitor.detectors.context import DetectorContext
from monitor.detectors.registry import create
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex, decode_outputs
from monitor.reference import Reference
from monitor.schema import OutputSpec, Schema
from monitor.store import MetricStore

LEVELS = (0.05, 0.5, 0.95)
Z = np.array([NormalDist().inv_cdf(q) for q in LEVELS])


def test_config_reads_quantiles_and_names_the_field_on_errors() -> None:
    cfg = parse_config({"model": "m", "output": {"kind": "regression", "quantiles": [0.05, 0.5, 0.95]}})
    assert cfg.models[0].output.quantiles == LEVELS
    q = np.array([[1.0, 2.0, 4.0]])
    assert cfg.models[0].output.median(q).tolist() == [2.0]
    # no 0.5: read off the two levels around it, not the upper one (whose errors would read as a bias)
    assert OutputSpec("regression", quantiles=(0.1, 0.9)).median(np.array([[1.0, 3.0]])).tolist() == [2.0]
    assert OutputSpec("regression", quantiles=(0.1, 0.3, 0.9)).median(np.array([[0.0, 1.0, 4.0]])).tolist() == \
        pytest.approx([1.0 + 0.2 / 0.6 * 3.0])
    bad = [
        ({"kind": "regression", "quantiles": "0.5"}, "must be a list"),
        ({"kind": "regression", "quantiles": [0.5, 0.05]}, "increasing"),
        ({"kind": "regression", "quantiles": [0.0, 0.5]}, "increasing levels in \\(0, 1\\)"),
        ({"kind": "probabilities", "quantiles": [0.5]}, "regression outputs only"),
        ({"kind": "regression", "quantiles": [0.6, 0.9]}, "give no prediction"),
    ]
    for output, message in bad:
        with pytest.raises(ConfigError, match="output.quantiles") as info:
            parse_config({"model": "m", "output": output})
        assert info.match(message)


def test_quantile_outputs_decode_to_the_median_and_every_level() -> None:
    raw = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    spec = OutputSpec("regression", quantiles=LEVELS)
    dec = decode_outputs(raw, spec, ClassIndex())
    assert dec.scores.tolist() == [2.0, 5.0] and dec.intervals.tolist() == raw.tolist()
    # without quantiles, (n, 3) stays (value, lower, upper)
    plain = decode_outputs(raw, OutputSpec("regression"), ClassIndex())
    assert plain.scores.tolist() == [1.0, 4.0] and plain.intervals.tolist() == [[2.0, 3.0], [5.0, 6.0]]
    # a wrong number of columns is refused, counted
    assert decode_outputs(np.zeros((2, 4)), spec, ClassIndex()).reasons == {"output_shape": 2}


def test_label_join_keeps_every_quantile_column() -> None:
    joiner = LabelJoiner(capacity=8)
    iv = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    b = Batch.from_arrays(np.zeros((2, 1)), np.array([2.0, 5.0]), request_id=np.array(["a", "b"], dtype=object))
    b.intervals = iv
    joiner.remember(b)
    clone = LabelJoiner(capacity=8)
    clone.load_state_dict(joiner.state_dict())
    for j in (joiner, clone):
        lab, outcome = j.join(10.0, ["b"], [5.5], ClassIndex(), regression=True)
        assert outcome["joined"] == 1 and lab.intervals.tolist() == [[4.0, 5.0, 6.0]]


def quantile_stream(rng: np.random.Generator, n: int, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets y = mu + N(0, 1); the model predicts mu and its quantiles for a noise of sd ``scale``
    (1: calibrated; < 1: over-confident, too narrow)."""
    mu = rng.normal(10.0, 2.0, n)
    y = mu + rng.normal(0.0, 1.0, n)
    return mu, y, mu[:, None] + scale * Z[None, :]


def window_coverage(det_params: dict, rng: np.random.Generator, n: int, scale: float) -> MetricStore:
    ctx = DetectorContext(schema=Schema(), output=OutputSpec("regression", quantiles=LEVELS), window_s=1e6)
    det = create("regression", params=det_params, context=ctx)
    mu, y, q = quantile_stream(rng, n, scale)
    ts = np.arange(n, dtype=np.float64)
    det.update_labels(LabeledBatch(ts=ts, label_ts=ts + 1.0, label=y, segment=np.full(n, None, dtype=object), scores=mu, intervals=q))
    store = MetricStore("m")
    det.export(store)
    return store


def test_per_level_coverage_matches_the_rows() -> None:
    rng = np.random.default_rng(0)
    store = window_coverage({}, np.random.default_rng(0), 800, 1.0)
    mu, y, q = quantile_stream(rng, 800, 1.0)
    for j, level in enumerate(("0.05", "0.5", "0.95")):
        assert store.value(names.QUANTILE_COVERAGE, (level,)) == pytest.approx((y <= q[:, j]).mean())
    assert store.value(names.INTERVAL_COVERAGE) == pytest.approx(((y >= q[:, 0]) & (y <= q[:, 2])).mean())
    assert store.value(names.INTERVAL_WIDTH) == pytest.approx(Z[2] - Z[0])
    assert store.value(names.REGRESSION_MAE) == pytest.approx(np.abs(mu - y).mean())
    # below the minimum label count: absent, not zero
    few = window_coverage({"min_labels": 100}, rng, 50, 1.0)
    assert few.value(names.QUANTILE_COVERAGE, ("0.95",)) is None and few.value(names.REGRESSION_LABELS) == 50


def test_coverage_bounds_on_seeded_windows() -> None:
    """500 labels per window, 200 seeded windows: a calibrated model's per-level coverage is within
    3 binomial standard errors of its level in at least 98% of windows; a model whose quantiles
    are too narrow by half (its 0.95 quantile covers about 80%) is outside that band at 0.05 and 0.95
    in every window."""
    rng = np.random.default_rng(1)
    n = 500
    band = {lv: 3.0 * np.sqrt(q * (1 - q) / n) for lv, q in zip(("0.05", "0.5", "0.95"), LEVELS)}
    calibrated_out, narrow_in = 0, 0
    for _ in range(200):
        good = window_coverage({}, rng, n, 1.0)
        narrow = window_coverage({}, rng, n, 0.5)
        for lv, q in zip(("0.05", "0.95"), (0.05, 0.95)):
            calibrated_out += abs(good.value(names.QUANTILE_COVERAGE, (lv,)) - q) > band[lv]
            narrow_in += abs(narrow.value(names.QUANTILE_COVERAGE, (lv,)) - q) <= band[lv]
        calibrated_out += abs(good.value(names.QUANTILE_COVERAGE, ("0.5",)) - 0.5) > band["0.5"]
    assert calibrated_out <= 0.02 * 600
    assert narrow_in == 0


def test_quantile_reference_uses_the_median_column_and_state_round_trips() -> None:
    rng = np.random.default_rng(2)
    mu, y, q = quantile_stream(rng, 3000)
    ref = Reference.from_arrays(np.zeros((3000, 1)), scores=q)
    params = {"quantiles": list(LEVELS), "window_s": 1e6, "min_rows": 10, "min_labels": 10}
    det = create("regression", reference=ref, params=params)
    store = MetricStore("m")
    det.export(store)
    assert store.value(names.REGRESSION_REFERENCE_MEAN) == pytest.approx(mu.mean())
    m2, y2, q2 = quantile_stream(rng, 200)
    ts = np.arange(200.0)
    det.update(Batch.from_arrays(np.zeros((200, 1)), m2, ts=ts))
    det.update_labels(LabeledBatch(ts=ts, label_ts=ts, label=y2, segment=np.full(200, None, dtype=object), scores=m2, intervals=q2))
    clone = create("regression", reference=ref, params=params)
    clone.load_state_dict(det.state_dict())
    a, b = MetricStore("m"), MetricStore("m")
    det.export(a)
    clone.export(b)
    assert a.samples() == b.samples() and a.value(names.QUANTILE_COVERAGE, ("0.5",)) is not None
    with pytest.raises(ValueError, match="increasing"):
        create("regression", params={"quantiles": [0.9, 0.1]})
