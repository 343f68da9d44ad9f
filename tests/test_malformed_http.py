"""A client's request that is not valid HTTP/1.1, sent to the sidecar's aiohttp server: answered
400 by aiohttp before any route, which logged a traceback at ERROR per request and counted
nothing. It is counted in monitor_intake_events_refused_total{endpoint="http"} and said once."""

from __future__ import annotations

import logging
import socket

import pytest

from tests.sidecar_support import sample, start_sidecar
from tests.test_proxy import IRIS

_MALFORMED = [b"GET /healthz HTTP/1.1\r\n\r\n",  # no Host
              b"GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
              b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n"]


def _exchange(url: str, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):  # aiohttp closes the connection after a 400
            answer += chunk
    return answer


@pytest.fixture
def sidecar(tmp_path):
    s = start_sidecar(IRIS, tmp_path)
    yield s
    s.close()


def test_malformed_requests_are_answered_400_counted_and_said_once_without_an_error_log(sidecar, caplog):
    caplog.set_level(logging.WARNING)
    for raw in _MALFORMED:
        assert _exchange(sidecar.url, raw).split(b"\r\n", 1)[0] in (b"HTTP/1.0 400 Bad Request", b"HTTP/1.1 400 Bad Request"), raw
    assert sample(sidecar.metrics(), "monitor_intake_events_refused_total", model="_sidecar", endpoint="http",
                  reason="malformed_request") == len(_MALFORMED)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    said = [r.getMessage() for r in caplog.records if "malformed_request" in r.getMessage()]
    assert len(said) == 1 and "Host" in said[0] and "monitor_intake_events_refused_total" in said[0], said
    assert _exchange(sidecar.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200 ")


def test_an_error_of_the_sidecar_itself_is_still_logged_as_one(sidecar, caplog):
    """Only a client's malformed request is counted instead: aiohttp's log of anything else (here
    an exception it reports while handling a request) passes through unchanged."""
    from monitor.server.app import create_app

    app = create_app(sidecar.sidecar)
    log = app._handler_args["logger"]
    try:
        raise RuntimeError("boom")
    except RuntimeError as err:
        log.exception("Unhandled exception", exc_info=err)
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "aiohttp.server"] == [
        (logging.ERROR, "Unhandled exception")]
