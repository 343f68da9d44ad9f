"""A FastAPI model server watched by the ``@watch`` decorator, with ``/metrics`` on the same app.

Run::

    pip install fastapi uvicorn
    uvicorn examples.fastapi_app:app --port 8000
    curl -s localhost:8000/predict -H 'Content-Type: application/json' -d '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    curl -s localhost:8000/metrics | grep monitor_

With several uvicorn workers (``--workers 4``), set ``MONITOR_FORWARD=unix:///tmp/monitor-forward.sock``
and run the sidecar (``monitor serve`` with ``server.forward.unix``): each worker then forwards
its events, and the sidecar keeps one detector state for all of them.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Header, Response
from pydantic import BaseModel

from monitor import Monitor
from monitor.forwarding import ForwardingMonitor

CONFIG = {
    "model": "iris",
    "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
}
WEIGHTS = [[0.4, 1.4, -2.2, -1.0], [0.5, -1.6, 0.6, -1.3], [-0.9, -1.4, 2.6, 2.4]]
BIAS = [0.3, 1.0, -1.3]

forward = os.environ.get("MONITOR_FORWARD")
monitor: Any = ForwardingMonitor("iris", forward) if forward else Monitor(config=CONFIG)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    monitor.close()  # drain what is queued (or send what is left to the sidecar)


app = FastAPI(title="iris", lifespan=lifespan)


class PredictRequest(BaseModel):
    instances: list[list[float]]


@monitor.watch(client=lambda rows, client_id=None: client_id)
async def predict(rows: list[list[float]], client_id: str | None = None) -> list[list[float]]:
    """Class probabilities of each row (a fixed softmax regression)."""
    out = []
    for x in rows:
        z = [sum(w * v for w, v in zip(ws, x)) + b for ws, b in zip(WEIGHTS, BIAS)]
        m = max(z)
        e = [math.exp(v - m) for v in z]
        out.append([v / sum(e) for v in e])
    return out


@app.post("/predict")
async def predict_route(req: PredictRequest, x_client_id: str | None = Header(default=None)) -> dict[str, Any]:
    return {"predictions": await predict(req.instances, client_id=x_client_id)}


@app.get("/metrics")
def metrics() -> Response:
    if isinstance(monitor, ForwardingMonitor):
        return Response("metrics are served by the sidecar in forwarding mode\n", status_code=404, media_type="text/plain")
    return Response(monitor.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")
