"""Audit (session 8) of issue 3 item 1 over real HTTP: every per-call confidence figure, as a
scrape of ``monitor serve``'s ``/metrics`` shows it, equals the figure computed here from the
outputs posted to ``/v1/events``.

Before this file no test pinned the margin histogram (top-1 minus top-2) at all, the top-class
variance of ensembles only by its count, and none of these figures as exported over HTTP. The
expected values are computed here with plain numpy, independently of ``monitor.stats``.

Seeded streams; bounds are exact up to float summation order (``pytest.approx``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.catalog import confidence as names
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

N = 400
ABSTAIN = 0.6
MODELS = [
    {"model": "multi", "features": ["a", "b"],
     "output": {"kind": "probabilities", "classes": ["c0", "c1", "c2", "c3"]},
     "detectors": [{"kind": "confidence", "abstain_threshold": ABSTAIN, "window_s": 1e6}]},
    {"model": "binary", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["neg", "pos"]},
     "detectors": [{"kind": "confidence", "window_s": 1e6}]},
    {"model": "logit", "features": ["a", "b"], "output": {"kind": "logits", "classes": ["x", "y", "z"]},
     "detectors": [{"kind": "confidence", "window_s": 1e6}]},
    {"model": "ens", "features": ["a", "b"],
     "output": {"kind": "probabilities", "classes": ["x", "y", "z"], "samples_axis": True},
     "detectors": [{"kind": "confidence", "window_s": 1e6}]},
]


def _histogram(text: str, name: str, model: str) -> tuple[float, float, dict[float, float]]:
    """(count, sum, cumulative bucket counts by upper bound) of one model's histogram."""
    count = total = None
    buckets: dict[float, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.labels.get("model") != model:
                continue
            if s.name == name + "_count":
                count = s.value
            elif s.name == name + "_sum":
                total = s.value
            elif s.name == name + "_bucket":
                buckets[float(s.labels["le"])] = s.value
    assert buckets, f"{name} of {model} is not exported"
    # prometheus-client writes no _count/_sum for a histogram whose first bucket is negative
    # (OpenMetrics forbids _sum there): the energy score's; its +Inf bucket is the count
    if count is None:
        count = buckets[float("inf")]
    return float(count), float("nan") if total is None else float(total), buckets


def _series(text: str, name: str, model: str) -> list:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name.startswith(name + "_") and s.labels.get("model") == model]


def _check(text: str, name: str, model: str, values: np.ndarray, bounds: tuple[float, ...]) -> None:
    count, total, buckets = _histogram(text, name, model)
    assert count == len(values), (name, model)
    if bounds[0] >= 0:
        assert total == pytest.approx(float(values.sum()), rel=1e-9, abs=1e-9), (name, model)
    for b in bounds:  # cumulative: rows at or below the bound
        assert buckets[b] == float(np.sum(values <= b)), (name, model, b)
    assert buckets[float("inf")] == len(values)


def _post(url: str, model: str, inputs: np.ndarray, outputs: np.ndarray) -> None:
    body = "\n".join(json.dumps({"model": model, "inputs": [x.tolist()], "outputs": [o.tolist()]})
                     for i, (x, o) in enumerate(zip(inputs, outputs)))
    r = http("POST", url + "/v1/events", body, {"Content-Type": "application/x-ndjson"})
    assert r.status == 202 and r.json()["accepted"] == len(inputs), r.body


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return np.clip(h / np.log(p.shape[1]), 0.0, 1.0)


@pytest.fixture(scope="module")
def scraped(tmp_path_factory) -> dict:
    rng = np.random.default_rng(20261130)
    x = rng.normal(size=(N, 2))
    streams = {
        "multi": rng.dirichlet(np.full(4, 0.7), size=N),
        "binary": rng.uniform(0.0, 1.0, size=N),            # P(positive) as one column
        "logit": rng.normal(0.0, 3.0, size=(N, 3)),
        "ens": rng.dirichlet(np.full(3, 0.8), size=(N, 5)),   # 5 members per row
    }
    s = start_sidecar({"models": MODELS}, tmp_path_factory.mktemp("audit8-conf"), factory=quiet_factory())
    try:
        for model, out in streams.items():
            _post(s.url, model, x, out if out.ndim > 1 else out[:, None])
        s.flush()
        text = s.metrics()
    finally:
        s.close()
    return {"text": text, **streams}


def _scores(scraped: dict, model: str) -> np.ndarray:
    out = scraped[model]
    if model == "binary":
        return np.stack([1.0 - out, out], axis=1)
    if model == "logit":
        z = np.exp(out - out.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)
    if model == "ens":
        return out.mean(axis=1)
    return out


@pytest.mark.parametrize("model", ["multi", "binary", "logit", "ens"])
def test_max_probability_margin_and_entropy_histograms(scraped: dict, model: str) -> None:
    p = _scores(scraped, model)
    srt = np.sort(p, axis=1)
    _check(scraped["text"], names.CONFIDENCE, model, srt[:, -1], names.CONFIDENCE_BUCKETS)
    _check(scraped["text"], names.MARGIN, model, srt[:, -1] - srt[:, -2], names.CONFIDENCE_BUCKETS)
    _check(scraped["text"], names.ENTROPY, model, _entropy(p), names.ENTROPY_BUCKETS)


@pytest.mark.parametrize("model", ["multi", "binary", "logit", "ens"])
def test_predicted_class_distribution(scraped: dict, model: str) -> None:
    classes = next(m["output"]["classes"] for m in MODELS if m["model"] == model)
    counts = np.bincount(_scores(scraped, model).argmax(axis=1), minlength=len(classes))
    for name, c in zip(classes, counts):
        got = sample(scraped["text"], "monitor_predicted_class_total", model=model, **{"class": name})
        assert (got or 0.0) == float(c), (model, name)


def test_energy_only_for_logits(scraped: dict) -> None:
    z = scraped["logit"]
    m = z.max(axis=1)
    energy = -(m + np.log(np.exp(z - m[:, None]).sum(axis=1)))
    _check(scraped["text"], names.ENERGY, "logit", energy, names.ENERGY_BUCKETS)
    for model in ("multi", "binary", "ens"):  # probabilities carry no logits: no energy series
        assert not _series(scraped["text"], names.ENERGY, model)


def test_ensemble_mutual_information_and_top_class_variance(scraped: dict) -> None:
    members = scraped["ens"]
    mean = members.mean(axis=1)
    h_mean = -(mean * np.log(mean)).sum(axis=1)
    h_members = -(members * np.log(members)).sum(axis=2).mean(axis=1)
    mi = np.maximum(h_mean - h_members, 0.0)
    top = mean.argmax(axis=1)
    var = members[np.arange(N), :, top].var(axis=1)
    assert mi.max() > 0.1 and var.max() > 0.01  # the seeded members really disagree
    _check(scraped["text"], names.MUTUAL_INFORMATION, "ens", mi, names.MI_BUCKETS)
    _check(scraped["text"], names.TOP_CLASS_VARIANCE, "ens", var, names.VARIANCE_BUCKETS)
    for model in ("multi", "binary", "logit"):  # single-member outputs: no ensemble series
        assert not _series(scraped["text"], names.MUTUAL_INFORMATION, model)
        assert not _series(scraped["text"], names.TOP_CLASS_VARIANCE, model)


def test_windowed_mean_confidence_and_abstain_rate(scraped: dict) -> None:
    conf = scraped["multi"].max(axis=1)
    text = scraped["text"]
    assert sample(text, names.CONFIDENCE_ROWS, model="multi") == N
    assert sample(text, names.CONFIDENCE_MEAN, model="multi") == pytest.approx(conf.mean())
    assert sample(text, names.ABSTAIN, model="multi") == pytest.approx(np.mean(conf < ABSTAIN))
    assert 0.05 < np.mean(conf < ABSTAIN) < 0.95  # the threshold splits the seeded stream
