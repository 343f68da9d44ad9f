"""Non-ASCII request ids and client keys in the proxy's headers (``X-Request-Id``, the
``client_header``), over real HTTP on every engine. The lean engine read header bytes as
Latin-1 and the aiohttp engine as UTF-8, so the same request carried another id depending on
``server.proxy.engine``: ``X-Request-Id: é1`` from curl or Go (UTF-8 bytes) was ``Ã©1`` on the
default engine, and from Python's http.client or requests (Latin-1 bytes) an undecodable
``\\udce91`` on the aiohttp one; feedback sent with the id the client made never joined (counted
``unknown_id``, not a word of why). Now both engines read UTF-8 when the bytes are UTF-8, else
Latin-1."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from tests.test_proxy import IRIS, engine, start_proxying, tapped, upstream  # noqa: F401 - fixtures

__all__: list[str] = []


def _post(url: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as c:
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        c.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                  + head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        out = b""
        while chunk := c.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("charset", ["utf-8", "latin-1"])
def test_a_non_ascii_request_id_and_client_read_alike_on_every_engine(tmp_path: Any, upstream: Any, engine: str,  # noqa: F811
                                                                      charset: str) -> None:
    cfg = {**IRIS, "server": {"client_header": "X-Api-Key"}}
    s = start_proxying(cfg, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.5, 0.2]}]}).encode()
        out = _post(s.url, "/v2/models/iris/infer", [(b"X-Request-Id", "réq-é1".encode(charset)),
                                                     (b"X-Api-Key", "clé".encode(charset))], body)
        assert out.startswith(b"HTTP/1.1 200"), out[:200]
        (event,) = tapped(s.monitor("iris"))
        assert event[6] == "réq-é1" and event[5] == "clé", (engine, charset, event[5], event[6])
    finally:
        s.close()


@pytest.mark.parametrize("charset", ["utf-8", "latin-1"])
def test_a_non_ascii_cloudevent_id_reads_as_the_proxy_reads_it(tmp_path: Any, charset: str) -> None:
    """The CloudEvents intake read ``ce-id`` as aiohttp decodes headers: a Latin-1 byte became
    an undecodable ``\\udce9`` in the request id, which no feedback could name."""
    from tests.sidecar_support import http, start_sidecar, total

    s = start_sidecar(IRIS, tmp_path)
    try:
        head = [(b"Ce-Specversion", b"1.0"), (b"Ce-Source", b"t"), (b"Ce-Id", "réq-é1".encode(charset))]
        out = _post(s.url, "/v1/cloudevents", head + [(b"Ce-Type", b"org.kubeflow.serving.inference.request")],
                    json.dumps({"instances": [[1, 2, 3, 4]]}).encode())
        assert out.startswith(b"HTTP/1.1 202"), out[:300]
        out = _post(s.url, "/v1/cloudevents", head + [(b"Ce-Type", b"org.kubeflow.serving.inference.response")],
                    json.dumps({"predictions": [[0.7, 0.2, 0.1]]}).encode())
        assert out.startswith(b"HTTP/1.1 202"), out[:300]
        r = http("POST", s.url + "/v1/feedback", {"request_id": "réq-é1", "label": "setosa"})
        assert r.status == 202, r.body
        s.flush()
        assert total(s.metrics(), "monitor_feedback_labels_total", outcome="joined") == 1, s.metrics()
    finally:
        s.close()
