"""A refused flat input of a one-feature model counts its rows (session 29 audit).

A one-feature model's flat input (``predict(np.array([v1, ..., vn]))``, KServe v1 ``instances:
[v1, ..., vn]``) is ``n`` rows. When such an event was refused (outputs of another row count,
say), ``monitor_rows_rejected_total`` counted it as 1 row: the guess of its rows read a vector
as one row, so the accounting of rows in and rows refused did not add up and the refusal
looked 1/n as large as it was.
"""

from __future__ import annotations

import json

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.ingest import guess_rows
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

ONE = {"model": "one", "features": ["x"], "output": {"kind": "probabilities", "classes": ["no", "yes"]}}


def test_the_decorator_counts_the_rows_of_a_refused_flat_input() -> None:
    mon = Monitor(model="one", config={k: v for k, v in ONE.items() if k != "model"}, registry=CollectorRegistry(),
                  start_worker=False, live=False)
    try:
        mon.observe(np.array([1.0, 2.0, 3.0]), np.array([[0.4, 0.6], [0.5, 0.5]]))  # 3 rows, 2 outputs
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "rows_mismatch"}) == 3
    finally:
        mon.close()


def test_a_flat_input_refused_for_its_timestamp_counts_its_rows() -> None:
    mon = Monitor(model="one", config={k: v for k, v in ONE.items() if k != "model"}, registry=CollectorRegistry(),
                  start_worker=False, live=False)
    try:
        mon.observe(np.array([1.0, 2.0, 3.0]), np.array([[0.4, 0.6]] * 3), timestamp=float("nan"))
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "invalid_timestamp"}) == 3
    finally:
        mon.close()


def test_a_vector_of_several_features_is_still_one_row() -> None:
    assert guess_rows([1.0, 2.0, 3.0]) == 1
    assert guess_rows([1.0, 2.0, 3.0], one_feature=True) == 3
    assert guess_rows(np.array([1.0, 2.0]), one_feature=True) == 2


def _ce(part: str, data: dict) -> tuple[str, dict[str, str]]:
    return json.dumps(data), {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "test",
                              "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Id": "pair-1",
                              "Ce-Inferenceservicename": "one"}


def test_a_refused_kserve_logger_pair_of_a_flat_input_counts_n_rows(tmp_path) -> None:
    sc = start_sidecar(ONE, tmp_path, factory=quiet_factory())
    try:
        for part, data in (("request", {"instances": [0.1, 0.2, 0.3, 0.4]}),
                           ("response", {"predictions": [[0.3, 0.7]] * 2})):
            body, headers = _ce(part, data)
            assert http("POST", sc.url + "/v1/cloudevents", body, headers).status == 202
        sc.flush()
        assert sample(sc.metrics(), "monitor_rows_rejected_total", model="one", reason="rows_mismatch") == 4
    finally:
        sc.close()
