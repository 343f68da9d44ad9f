"""A WSGI model server run by gunicorn with several workers, monitored in forwarding mode.

Each gunicorn worker is a separate process: a Monitor in each would see a quarter of the traffic.
Here every worker's ``@watch`` decorator forwards its events to one local sidecar
(``monitor serve --config sidecar.yaml``), so N workers feed one detector state.

Run (from this folder)::

    monitor serve --config sidecar.yaml &                    # the sidecar, listening on the socket
    MONITOR_FORWARD=unix:///tmp/monitor-forward.sock \\
        gunicorn -c gunicorn.conf.py app:application          # the model server
    curl -s localhost:8000/predict -d '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    curl -s localhost:9108/metrics | grep monitor_calls_total

Only the standard library and the ``monitor`` package are needed besides gunicorn.
"""

from __future__ import annotations

import json
import math
import os

from monitor.decorator import watch
from monitor.forwarding import ForwardingMonitor

# A fixed softmax-regression "model" over the iris features (setosa, versicolor, virginica).
WEIGHTS = [[0.4, 1.4, -2.2, -1.0], [0.5, -1.6, 0.6, -1.3], [-0.9, -1.4, 2.6, 2.4]]
BIAS = [0.3, 1.0, -1.3]

# One forwarding sink per worker process; created at import (before gunicorn forks when it
# preloads), the sender thread is restarted in every forked worker automatically.
sink = ForwardingMonitor(model="iris", target=os.environ.get("MONITOR_FORWARD", "unix:///tmp/monitor-forward.sock"))


@watch(monitor=sink, client=lambda rows, client_id=None: client_id)
def predict(rows: list[list[float]], client_id: str | None = None) -> list[list[float]]:
    """Class probabilities for each row."""
    out = []
    for x in rows:
        z = [sum(w * v for w, v in zip(ws, x)) + b for ws, b in zip(WEIGHTS, BIAS)]
        m = max(z)
        e = [math.exp(v - m) for v in z]
        s = sum(e)
        out.append([v / s for v in e])
    return out


def application(environ: dict, start_response) -> list[bytes]:
    """``POST /predict`` with ``{"instances": [[...], ...]}``; ``GET /healthz``."""
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "ok"}']
    if path != "/predict" or environ.get("REQUEST_METHOD") != "POST":
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "POST /predict"}']
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(size))
        rows = body["instances"]
        probs = predict(rows, client_id=environ.get("HTTP_X_CLIENT_ID"))
    except (ValueError, KeyError, TypeError) as err:
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [json.dumps({"error": str(err)}).encode()]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"predictions": probs, "worker": os.getpid()}).encode()]
