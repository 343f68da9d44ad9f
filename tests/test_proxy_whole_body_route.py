"""A FastAPI model server that takes and answers a bare JSON list is tapped by the proxy
(``inputs: .`` and ``outputs: .``).

A route declared ``def predict(rows: list[list[float]]) -> list[list[float]]`` has no field to name
in ``server.proxy.routes``: every dotted path was refused as ``missing_field`` (the field names were
all that was accepted, ``""`` is refused by the config check), so such a model could be proxied but
never monitored. A real FastAPI app under uvicorn, real HTTP through the proxy on the engine
``monitor serve`` uses.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import free_port
from tests.sidecar_support import RunningSidecar, http, sample, total, wait_until

CONFIG = {"model": "iris", "features": ["a", "b", "c", "d"],
          "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]},
          "server": {"proxy": {"routes": [{"path": "/predict", "inputs": ".", "outputs": "."}]}}}


@pytest.fixture
def fastapi_server() -> Iterator[str]:
    pytest.importorskip("fastapi")
    uvicorn = pytest.importorskip("uvicorn")
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/predict")
    def predict(rows: list[list[float]]) -> list[list[float]]:
        return [[0.8, 0.1, 0.1] if r[0] < 6 else [0.1, 0.2, 0.7] for r in rows]

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 30), "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_a_route_answering_a_bare_list_is_tapped_with_the_whole_body_path(tmp_path: Path, fastapi_server: str) -> None:
    from monitor.config import parse_config
    from monitor.server.app import build_sidecar, create_app
    from tests.test_proxy import serve

    sidecar = build_sidecar(parse_config(CONFIG, str(tmp_path / "monitor.yaml"), tmp_path), proxy_upstream=fastapi_server)
    server = serve(create_app(sidecar), "process")
    s = RunningSidecar(sidecar, server, server.url)
    try:
        assert wait_until(lambda: sidecar.ready), sidecar.load_error
        rows: list[Any] = [[5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4], [5.0, 3.4, 1.5, 0.2]]
        for _ in range(5):
            r = http("POST", s.url + "/predict", rows)
            assert r.status == 200 and r.json() == [[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]
        s.flush()
        text = s.metrics()
    finally:
        s.close()
        for mon in sidecar.all_monitors():
            mon.close()
    assert total(text, "monitor_intake_events_refused_total") == 0
    assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "setosa"}) == 10
    assert sample(text, "monitor_predicted_class_total", model="iris", **{"class": "virginica"}) == 5


def test_a_route_path_the_body_lacks_is_logged_under_the_setting_to_change(tmp_path: Path, fastapi_server: str,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    """The default ``inputs: instances`` against that server: the first refusal was logged as
    "instances: not found in the JSON body", naming neither the route's setting nor the request or
    answer, nor the whole-body path that fixes it."""
    import logging

    from tests.test_proxy import start_proxying

    raw = {**CONFIG, "server": {"proxy": {"routes": [{"path": "/predict"}]}}}
    s = start_proxying(raw, tmp_path, "aiohttp", proxy_upstream=fastapi_server)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            for _ in range(3):
                assert http("POST", s.url + "/predict", [[5.1, 3.5, 1.4, 0.2]]).status == 200
            assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", reason="missing_field") == 3)
    finally:
        s.close()
    (line,) = [r.getMessage() for r in caplog.records if "missing_field" in r.getMessage()]
    assert "server.proxy.routes[0].inputs: 'instances' is not in the request body of /predict" in line, line
    assert "it is a JSON list" in line and "'.' for the whole body" in line, line
