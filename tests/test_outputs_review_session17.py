"""Model outputs as users' code and model servers really return them (an independent review of
how outputs reach the confidence detectors).

Each test is a bug the review reproduced: scikit-learn's ``(1, k)`` answer to one numpy row
refused, an ensemble's OIP v2 tensor flattened into one row of ``samples x classes`` scores,
fractional scores sent under an integer datatype cut to integers (and a UINT64 a 500), a
labels model's missing answers learned as classes named "None" and "nan", a labels model given
score rows reading their first column as the label, and an ``async def __call__`` model whose
coroutine was recorded instead of its answer.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.server.payloads import PayloadError, decode_outputs
from tests.sidecar_support import http, quiet_factory, start_sidecar
from tests.test_cloudevents import kserve_headers

T0 = 1_700_000_000.0


def _monitor(config: dict | None = None) -> Monitor:
    return Monitor("m", config=config, registry=CollectorRegistry(), live=False, start_worker=False)


def _confidence_sum(mon: Monitor) -> float:
    return next(v for name, labels, v in mon.store.samples() if name == "monitor_confidence_ratio_sum")


def _rejected(mon: Monitor) -> dict[str, float]:
    return {labels["reason"]: v for name, labels, v in mon.store.samples() if name == "monitor_rows_rejected_total" and v}


def test_one_numpy_row_answered_with_scikit_learns_1_by_k_output_is_read() -> None:
    """``predict_proba(x.reshape(1, -1))`` on a 1-D row: the fast path stacked the answers to
    ``(n, 1, k)`` and refused every row as output_shape (a list row or a ``(k,)`` answer was read)."""
    mon = _monitor({"features": [{"name": f"f{i}"} for i in range(4)]})
    rows = np.random.default_rng(0).normal(size=(3, 4))
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25], [0.3, 0.3, 0.4]])
    predict = mon.watch(lambda x: probs[:1].copy())  # one row in, (1, k) out
    try:
        for i in range(3):
            mon.observe(rows[i], probs[i][None, :], timestamp=T0 + i)
        predict(rows[0])
        mon.flush()
        assert _rejected(mon) == {}
        assert mon.store.value("monitor_predictions") == 4
        expected = probs.max(axis=1).sum() + probs[0].max()
        assert _confidence_sum(mon) == pytest.approx(expected)
    finally:
        mon.close()


def test_a_labels_model_refuses_missing_answers_instead_of_learning_them_as_classes() -> None:
    mon = _monitor({"output": {"kind": "labels", "classes": ["cat", "dog"]}})
    try:
        mon.observe(np.zeros((5, 2)), pd.Series(["cat", None, np.nan, pd.NA, "dog"]), timestamp=T0)
        mon.flush()
        assert _rejected(mon) == {"nan_output": 3}
        assert mon.pipeline.builder.classes.names == ["cat", "dog"]
        assert mon.store.value("monitor_predictions") == 2
    finally:
        mon.close()


def test_a_labels_model_refuses_score_rows_instead_of_reading_their_first_column() -> None:
    """Probabilities sent to a labels model became classes named "0.1", "0.8"...; (label,
    score) pairs were silently read as their label."""
    mon = _monitor({"output": {"kind": "labels"}})
    try:
        mon.observe(np.zeros((2, 2)), np.array([[0.1, 0.9], [0.8, 0.2]]), timestamp=T0)
        mon.observe(np.zeros((2, 2)), np.array([["cat", 0.93], ["dog", 0.6]], dtype=object), timestamp=T0)
        mon.observe(np.zeros((2, 2)), np.array([["cat"], ["dog"]], dtype=object), timestamp=T0)  # a column: read
        mon.flush()
        assert _rejected(mon) == {"output_shape": 4}
        assert mon.pipeline.builder.classes.names == ["cat", "dog"]
    finally:
        mon.close()


def test_an_object_with_an_async_call_is_awaited_and_its_answer_monitored() -> None:
    class Model:
        async def __call__(self, x: np.ndarray) -> np.ndarray:
            if x.shape[0] == 0:
                raise KeyError("empty")
            return np.tile([[0.25, 0.75]], (x.shape[0], 1))

    mon = _monitor()
    predict = mon.watch(Model())
    try:
        out = asyncio.run(predict(np.zeros((3, 2))))
        assert out.shape == (3, 2)
        with pytest.raises(KeyError, match="empty"):
            asyncio.run(predict(np.zeros((0, 2))))
        mon.flush()
        assert _rejected(mon) == {}
        assert mon.store.value("monitor_predictions") == 3
        assert mon.store.value("monitor_errors", ("KeyError",)) == 1
    finally:
        mon.close()


def _oip(arr: np.ndarray, datatype: str = "FP32") -> dict[str, Any]:
    return {"outputs": [{"name": "out", "shape": list(arr.shape), "datatype": datatype, "data": arr.ravel().tolist()}]}


def test_oip_integer_tensors_are_read_exactly_and_fractions_in_them_refused() -> None:
    assert decode_outputs(_oip(np.array([[1, 0, 2]]), "INT64")).tolist() == [[1, 0, 2]]
    with pytest.raises(PayloadError) as err:  # logits under the wrong datatype: were cut to [2, -1, 0]
        decode_outputs(_oip(np.array([[2.7, -1.3, 0.4]]), "INT64"))
    assert (err.value.field, err.value.reason) == ("outputs[0].data", "bad_data")
    assert "INT64" in str(err.value) and "FP32" in str(err.value)
    big = {"outputs": [{"name": "out", "shape": [1, 1], "datatype": "UINT64", "data": [18446744073709551615]}]}
    assert decode_outputs(big).tolist() == [[2**64 - 1]]  # was an OverflowError: a 500
    ids = {"outputs": [{"name": "out", "shape": [2], "datatype": "INT64", "data": [2**63 - 1, 2**53 + 1]}]}
    assert decode_outputs(ids).tolist() == [2**63 - 1, 2**53 + 1]  # exact, not rounded through float64
    with pytest.raises(PayloadError):
        decode_outputs({"outputs": [{"name": "out", "shape": [1, 1], "datatype": "INT64", "data": [1e300]}]})


def test_an_ensembles_oip_tensor_reaches_its_members_over_cloudevents(tmp_path: Path) -> None:
    """A (rows, samples, classes) tensor from a model configured with output.samples_axis was
    flattened to (rows, samples x classes) and every row refused as output_shape; nested
    lists over /v1/events were read. Over real HTTP (KServe's CloudEvents logger)."""
    from scipy.special import softmax

    members = softmax(np.random.default_rng(1).normal(size=(4, 5, 3)) * 2, axis=2)
    raw = {"models": [{"model": "ens", "output": {"kind": "probabilities", "samples_axis": True}}]}
    sc = start_sidecar(raw, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        request = {"inputs": [{"name": "x", "shape": [4, 3], "datatype": "FP32", "data": [0.0] * 12}]}
        rid = str(uuid.uuid4())
        for kind, body in (("request", request), ("response", _oip(members))):
            r = http("POST", sc.url + "/v1/cloudevents", json.dumps(body), kserve_headers(rid, kind, isvc="ens"))
            assert r.status < 300, r.body
        sc.flush()
        mon = sc.sidecar.monitors["ens"]
        assert _rejected(mon) == {}
        assert mon.store.value("monitor_predictions") == 4
        assert _confidence_sum(mon) == pytest.approx(members.mean(axis=1).max(axis=1).sum(),
                                                                                   rel=1e-5)
        batch_of_one = {"outputs": [{"name": "out", "shape": [4, 1, 3], "datatype": "FP32",
                                     "data": members[:, 0].ravel().tolist()}]}
        assert decode_outputs(batch_of_one).shape == (4, 1, 3)  # kept: read as one row of scores each below
    finally:
        sc.close()


@pytest.mark.parametrize("output, shape", [
    ({"kind": "probabilities"}, (3, 1, 2)),  # (batch, 1, classes)
    ({"kind": "probabilities"}, (3, 2, 1)),  # (batch, classes, 1): a Keras / TF Serving shape
    ({"kind": "regression"}, (3, 1, 1)),
    ({"kind": "regression", "quantiles": [0.1, 0.5, 0.9]}, (3, 1, 3)),
])
def test_extra_axes_of_one_are_read_without_them(output: dict, shape: tuple[int, ...]) -> None:
    """What flattening every tensor did for the proxy's rank-3 outputs, the reading does now for
    every intake: axes of one are dropped (the first version of this fix read only (rows, 1, k))."""
    mon = _monitor({"output": output})
    values = np.sort(np.random.default_rng(2).random(shape), axis=-1)
    if output["kind"] == "probabilities":
        values = values / values.sum(axis=tuple(range(1, len(shape))), keepdims=True)
    try:
        mon.observe(np.zeros((3, 2)), values, timestamp=T0)
        mon.flush()
        assert _rejected(mon) == {}
        assert mon.store.value("monitor_predictions") == 3
    finally:
        mon.close()


def test_members_without_samples_axis_are_refused_not_flattened() -> None:
    mon = _monitor()
    try:
        mon.observe(np.zeros((3, 2)), np.full((3, 2, 2), 0.5), timestamp=T0)
        mon.flush()
        assert _rejected(mon) == {"output_shape": 3}
    finally:
        mon.close()


def test_watching_a_class_whose_instances_are_async_keeps_the_constructor_sync() -> None:
    class Model:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x

        async def __call__(self) -> None:
            return None

    mon = _monitor()
    try:
        made = mon.watch(Model, outputs=lambda m: np.tile([[0.5, 0.5]], (len(m.x), 1)))(np.zeros((2, 2)))
        assert isinstance(made, Model)
    finally:
        mon.close()
