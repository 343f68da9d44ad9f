"""Reverse proxy mode against a real upstream aiohttp server on 127.0.0.1: requests forwarded
unchanged, responses returned unchanged (status, headers, body, errors, streaming, compression),
inference pairs tapped into the monitor off the response path.

Every test runs on both engines: ``aiohttp`` (the application's own proxy handlers behind an
aiohttp ``TCPSite``) and ``lean`` (the listener ``monitor serve`` uses: the httptools data path of
:mod:`monitor.server.leanproxy` in front of the same application)."""

from __future__ import annotations

import asyncio
import gzip
import json

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import free_port
from tests.sidecar_support import (AppServer, RunningSidecar, http, quiet_factory, sample, start_sidecar, total,
                                   wait_until)

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def upstream_app() -> web.Application:
    """A small model server: OIP v2, a plain predict route, and awkward responses. Bodies it cannot
    read are answered 400, as a model server does (fuzzed requests reach it through the proxy:
    an exception here would be logged as an error in the test's own process)."""
    async def infer(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            n = body["inputs"][0]["shape"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            return web.json_response({"error": "unreadable request"}, status=400)
        return web.json_response({"model_name": request.match_info["model"], "id": body.get("id"),
                                  "outputs": [{"name": "probs", "shape": [n, 3], "datatype": "FP32", "data": [0.7, 0.2, 0.1] * n},
                                              {"name": "label", "shape": [n], "datatype": "INT64", "data": [0] * n}]},
                                 headers={"X-Upstream": "yes", "Set-Cookie": "a=b"})

    async def predict(request: web.Request) -> web.Response:
        try:
            rows = len((await request.json())["data"]["rows"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "unreadable request"}, status=400)
        return web.json_response({"result": {"scores": [[0.1, 0.1, 0.8]] * rows}})

    async def echo(request: web.Request) -> web.Response:
        raw = await request.read()
        return web.json_response({"method": request.method, "path_qs": request.raw_path, "headers": dict(request.headers),
                                  "body": raw.decode("latin-1")}, status=201, reason="Made It")

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Stream": "1"})
        await resp.prepare(request)
        for i in range(5):
            await resp.write(f"data: chunk {i}\n\n".encode())
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def gz(request: web.Request) -> web.Response:
        payload = gzip.compress(json.dumps({"outputs": [{"name": "probs", "shape": [1, 3], "datatype": "FP32", "data": [0.3, 0.3, 0.4]}]}).encode())
        return web.Response(body=payload, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async def coded(request: web.Request) -> web.Response:
        coding = request.match_info["coding"]
        # a gzip body cut before its end; bytes in a coding the tap does not read
        payload = gzip.compress(b'{"outputs": []}')[:-6] if coding == "gzip" else b"\x8b\x05\x80" + b"not json either"
        return web.Response(body=payload, headers={"Content-Encoding": coding, "Content-Type": "application/json"})

    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"error": "model exploded"}, status=503, headers={"Retry-After": "7"})

    async def bad_request(request: web.Request) -> web.Response:
        return web.json_response({"error": "shape"}, status=422)

    async def mirror(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v2/models/mirror/infer", mirror)
    app.router.add_post("/v2/models/{model}/infer", infer)
    app.router.add_post("/v2/models/gzmodel/versions/1/infer", gz)
    app.router.add_post("/v2/models/broken/infer", broken)
    app.router.add_post("/coded/{coding}/v2/models/iris/infer", coded)
    app.router.add_post("/v2/models/picky/infer", bad_request)
    app.router.add_post("/api/predict", predict)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/stream", stream)
    return app


def serve(app: web.Application, engine: str) -> AppServer:
    """Serve ``app`` with the aiohttp ``TCPSite``, or with the listener ``monitor serve`` uses for
    a proxying app (:func:`monitor.server.leanproxy.make_site`, the lean engine)."""
    if engine == "aiohttp":
        return AppServer(app)
    import dataclasses

    from monitor.server import keys as K
    from monitor.server.dataplane import DataPlaneSite
    from monitor.server.leanproxy import LeanProxySite, make_site

    proxy = app[K.PROXY]
    proxy.settings = dataclasses.replace(proxy.settings, process=engine == "process")

    def lean(runner: web.AppRunner, port: int) -> web.BaseSite:
        site = make_site(runner, app, "127.0.0.1", port, shutdown_timeout=5)
        assert isinstance(site, DataPlaneSite if engine == "process" else LeanProxySite)
        return site

    return AppServer(app, site=lean)


def start_proxying(raw: dict, folder, engine: str, **overrides) -> RunningSidecar:
    """A sidecar in proxy mode on ``engine``, with monitors whose worker does not run (the tests
    read the queued events)."""
    if engine == "aiohttp":
        return start_sidecar(raw, folder, factory=quiet_factory(start_worker=False), **overrides)
    from monitor.config import parse_config
    from monitor.server.app import build_sidecar, create_app

    sidecar = build_sidecar(parse_config(raw, str(folder / "monitor.yaml"), folder), monitor_factory=quiet_factory(start_worker=False),
                            **overrides)
    server = serve(create_app(sidecar), engine)
    assert wait_until(lambda: sidecar.ready or sidecar.load_error is not None), "sidecar did not load"
    assert sidecar.load_error is None, sidecar.load_error
    return RunningSidecar(sidecar, server, server.url)


@pytest.fixture(params=["aiohttp", "lean", "process"])
def engine(request) -> str:
    """The aiohttp engine, the lean engine on the sidecar's loop, and the lean engine in its own
    process (:mod:`monitor.server.dataplane`, the default of ``monitor serve``)."""
    if request.param != "aiohttp":
        from monitor.server.leanproxy import lean_available

        if not lean_available():
            pytest.skip("the lean proxy engine needs httptools (a dependency of model-monitor)")
    if request.param == "process":
        from monitor.server.dataplane import process_available

        if not process_available():
            pytest.skip("this platform cannot pass sockets between processes")
    return request.param


@pytest.fixture(scope="module")
def upstream():
    srv = AppServer(upstream_app())  # on its own loop thread, stopped by close()
    yield srv
    srv.close()


@pytest.fixture
def proxied(tmp_path, upstream, engine):
    cfg = {"models": [IRIS, {**IRIS, "model": "gzmodel"}, {**IRIS, "model": "broken"}, {**IRIS, "model": "picky"},
                      {**IRIS, "model": "mirror"}],
           "server": {"client_header": "X-Api-Key", "proxy": {"oip_output": "probs",
                                                               "routes": [{"path": "/api/predict", "model": "iris", "inputs": "data.rows",
                                                                           "outputs": "result.scores", "request_id": "meta.id"}]}}}
    s = start_proxying(cfg, tmp_path, engine, proxy_upstream=upstream.url)
    yield s
    s.close()


def tapped(mon, n: int = 1) -> list:
    """The events the tap queued; the tap runs after the response went out, so wait for it."""
    assert wait_until(lambda: len(mon.queue) >= n), "the tap did not queue the event"
    return list(mon.queue.items)


def oip(n: int, rid: str = "req-1") -> dict:
    return {"id": rid, "inputs": [{"name": "x", "shape": [n, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.5, 0.2] * n}]}


def test_oip_v2_is_forwarded_unchanged_and_tapped(proxied, upstream):
    direct = http("POST", upstream.url + "/v2/models/iris/infer", oip(2))
    via = http("POST", proxied.url + "/v2/models/iris/infer", oip(2), {"X-Api-Key": "tenant-1"})
    assert via.status == direct.status == 200
    assert via.body == direct.body
    for h in ("content-type", "x-upstream", "set-cookie", "content-length"):
        assert via.headers[h] == direct.headers[h]
    (event,) = tapped(proxied.monitor("iris"))
    assert event[2].shape == (2, 4) and event[3].tolist() == [[0.7, 0.2, 0.1]] * 2
    assert event[5] == "tenant-1" and event[6] == "req-1" and event[4] > 0
    proxied.flush()
    text = proxied.metrics()
    assert sample(text, "monitor_predictions_total", model="iris") == 2
    assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="oip_v2", code="2xx") == 1
    assert sample(text, "monitor_intake_events_accepted_total", model="iris", endpoint="proxy") == 1


def test_client_identity_falls_back_to_the_peer_address(proxied):
    http("POST", proxied.url + "/v2/models/iris/infer", oip(1))
    (event,) = tapped(proxied.monitor("iris"))
    assert event[5] == "127.0.0.1"


def test_plain_predict_route_uses_configured_fields(proxied):
    r = http("POST", proxied.url + "/api/predict", {"meta": {"id": "m-9"}, "data": {"rows": [[1, 2, 3, 4], [5, 6, 7, 8]]}})
    assert r.status == 200 and r.json() == {"result": {"scores": [[0.1, 0.1, 0.8]] * 2}}
    (event,) = tapped(proxied.monitor("iris"))
    assert event[2] == [[1, 2, 3, 4], [5, 6, 7, 8]] and event[6] == "m-9"


def test_other_requests_pass_through_byte_for_byte(proxied, upstream):
    body = b"\x00\x01raw bytes \xff"
    headers = {"X-Custom": "v1", "Content-Type": "application/octet-stream", "Authorization": "Bearer upstream-token"}
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        r = http(method, proxied.url + "/echo/a%20b/c?x=1&x=2&y=%2F", body, headers)
        assert r.status == 201 and r.headers["content-type"].startswith("application/json")
        seen = r.json()
        assert seen["method"] == method and seen["path_qs"] == "/echo/a%20b/c?x=1&x=2&y=%2F"
        assert seen["body"].encode("latin-1") == body
        assert seen["headers"]["X-Custom"] == "v1" and seen["headers"]["Authorization"] == "Bearer upstream-token"
    r = http("GET", proxied.url + "/echo/get")
    assert r.status == 201 and r.json()["method"] == "GET"
    assert all(len(m.queue) == 0 for m in proxied.sidecar.all_monitors())  # nothing tapped


def test_streaming_responses_are_relayed_chunk_by_chunk(proxied):
    async def read() -> tuple[list[bytes], dict]:
        async with aiohttp.ClientSession() as s:
            async with s.get(proxied.url + "/stream") as resp:
                chunks = [c async for c in resp.content.iter_any()]
                return chunks, dict(resp.headers)

    chunks, headers = asyncio.run(read())
    assert b"".join(chunks) == b"".join(f"data: chunk {i}\n\n".encode() for i in range(5))
    assert len(chunks) > 1  # not buffered into one body
    assert headers["Content-Type"] == "text/event-stream" and headers["X-Stream"] == "1"


def test_compressed_responses_stay_compressed_and_are_still_tapped(proxied):
    async def read() -> tuple[bytes, dict]:
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            async with s.post(proxied.url + "/v2/models/gzmodel/versions/1/infer", json=oip(1)) as resp:
                return await resp.read(), dict(resp.headers)

    raw, headers = asyncio.run(read())
    assert headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["outputs"][0]["data"] == [0.3, 0.3, 0.4]
    (event,) = tapped(proxied.monitor("gzmodel"))
    assert event[3].tolist() == [[0.3, 0.3, 0.4]]


def test_upstream_errors_are_returned_unchanged_and_5xx_counted_as_model_errors(proxied):
    r = http("POST", proxied.url + "/v2/models/broken/infer", oip(1))
    assert r.status == 503 and r.headers["retry-after"] == "7" and r.json() == {"error": "model exploded"}
    r = http("POST", proxied.url + "/v2/models/picky/infer", oip(1))
    assert r.status == 422 and r.json() == {"error": "shape"}
    proxied.flush()
    text = proxied.metrics()
    assert sample(text, "monitor_errors_total", model="broken", exception="HTTP503") == 1
    assert total(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="client_error") == 1
    assert sample(text, "monitor_proxy_requests_total", model="_sidecar", route="oip_v2", code="5xx") == 1


def test_unknown_model_and_bad_bodies_are_forwarded_and_only_counted(proxied, upstream):
    r = http("POST", proxied.url + "/v2/models/unmonitored/infer", oip(1))
    assert r.status == 200
    r = http("POST", proxied.url + "/api/predict", {"data": {"rows": [[1, 2, 3, 4]]}, "no_meta": True})
    assert r.status == 200
    text = proxied.metrics()
    assert total(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="unknown_model") == 1


def test_sidecar_endpoints_take_precedence_over_the_proxy(proxied):
    assert http("GET", proxied.url + "/healthz").json() == {"status": "ok"}
    assert http("GET", proxied.url + "/metrics").status == 200


def test_upstream_down_answers_502_and_is_counted(tmp_path, engine):
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{free_port()}")
    try:
        r = http("POST", s.url + "/v2/models/iris/infer", oip(1))
        assert r.status == 502 and r.json()["reason"] == "upstream_connect"
        assert sample(s.metrics(), "monitor_proxy_upstream_errors_total", model="_sidecar", reason="connect") == 1
    finally:
        s.close()


def test_proxy_on_its_own_port(tmp_path, upstream, engine):
    from monitor.server.app import create_proxy_app

    s = start_sidecar({**IRIS, "server": {"proxy": {"port": 0}}}, tmp_path, factory=quiet_factory(start_worker=False),
                      proxy_upstream=upstream.url)
    proxy = serve(create_proxy_app(s.sidecar), engine)
    try:
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 404  # not on the sidecar's port
        assert http("POST", proxy.url + "/v2/models/iris/infer", oip(1)).status == 200
        assert http("GET", proxy.url + "/metrics").status == 404  # the upstream's answer, not the sidecar's
        tapped(s.monitor())
    finally:
        proxy.close()
        s.close()


def test_large_bodies_stream_through_untapped_routes(proxied):
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB, above the buffering limit
    r = http("PUT", proxied.url + "/echo/big", body, {"Content-Type": "application/octet-stream"})
    assert r.status == 201 and r.json()["body"].encode("latin-1") == body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=300), st.builds(lambda v: json.dumps(v).encode(), st.recursive(
    st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=4), st.none()),
    lambda i: st.lists(i, max_size=4) | st.dictionaries(st.sampled_from(["inputs", "outputs", "shape", "data", "datatype", "name", "id"]), i, max_size=4),
    max_leaves=10))))
def test_fuzzed_bodies_are_relayed_unchanged_and_the_tap_never_fails(proxied, body):
    r = http("POST", proxied.url + "/v2/models/mirror/infer", body, {"Content-Type": "application/json"})
    assert r.status == 200 and r.body == body
    assert http("GET", proxied.url + "/healthz").status == 200
    text = proxied.metrics()
    assert total(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="internal_error") == 0


def test_an_oversized_chunked_body_for_the_sidecars_own_routes_is_refused_413(tmp_path, upstream, engine):
    """On the proxy's port, the sidecar's routes keep their body limit however the body is framed."""
    import http.client as httplib

    s = start_proxying({"models": [IRIS], "server": {"max_body_bytes": 4096, "proxy": {"oip_output": "probs"}}}, tmp_path, engine,
                       proxy_upstream=upstream.url)
    try:
        line = json.dumps({"inputs": [5.0, 3.0, 1.5, 0.2], "outputs": [0.2, 0.5, 0.3]}).encode() + b"\n"
        conn = httplib.HTTPConnection("127.0.0.1", int(s.url.rsplit(":", 1)[1]), timeout=30)
        conn.request("POST", "/v1/events", body=iter([line * 200] * 10), headers={"Content-Type": "application/x-ndjson"},
                     encode_chunked=True)
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        assert r.status == 413 and body["field"] == "body" and body["reason"] == "too_large"
        assert "server.max_body_bytes" in body["error"]
        assert http("GET", s.url + "/healthz").status == 200  # and the port serves on
        s.flush()
        text = s.metrics()
        assert total(text, "monitor_intake_events_accepted_total") == 0
        # counted under the route's endpoint, whichever process answered
        assert total(text, "monitor_intake_events_refused_total", endpoint="events", reason="too_large") == 1
    finally:
        s.close()


def test_an_oversized_body_on_a_route_that_takes_no_events_is_not_counted_as_refused_events(tmp_path, upstream, engine):
    """A big chunked body sent to ``/metrics`` (a route that takes no events): however the engine
    answers it (the data path process refuses what it cannot hand over, 413), no event was
    refused, so ``monitor_intake_events_refused_total`` does not move."""
    import http.client as httplib

    s = start_proxying({"models": [IRIS], "server": {"max_body_bytes": 4096, "proxy": {"oip_output": "probs"}}}, tmp_path, engine,
                       proxy_upstream=upstream.url)
    try:
        conn = httplib.HTTPConnection("127.0.0.1", int(s.url.rsplit(":", 1)[1]), timeout=30)
        conn.request("GET", "/metrics", body=iter([b"x" * 20000] * 10), encode_chunked=True)  # past the limit and the head room
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status in (200, 413)
        assert http("GET", s.url + "/healthz").status == 200
        s.flush()
        assert total(s.metrics(), "monitor_intake_events_refused_total") == 0
    finally:
        s.close()


def test_chunked_and_oversized_requests_to_tapped_routes(tmp_path, upstream, engine):
    s = start_proxying({"models": [IRIS, {**IRIS, "model": "mirror"}], "server": {"max_body_bytes": 4096, "proxy": {"oip_output": "probs"}}},
                       tmp_path, engine, proxy_upstream=upstream.url)
    try:
        async def chunked() -> int:
            async def gen():
                body = json.dumps(oip(1)).encode()
                yield body[:10]
                yield body[10:]

            async with aiohttp.ClientSession() as session:
                async with session.post(s.url + "/v2/models/iris/infer", data=gen(), headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    return r.status

        assert asyncio.run(chunked()) == 200
        (event,) = tapped(s.monitor("iris"))
        assert event[2].shape == (1, 4)
        big = json.dumps({"inputs": [{"name": "x", "shape": [1, 2000], "datatype": "FP32", "data": [0.5] * 2000}]}).encode()
        r = http("POST", s.url + "/v2/models/mirror/infer", big, {"Content-Type": "application/json"})
        assert r.status == 200 and r.body == big  # over the sidecar's limit: forwarded untouched, not tapped
        assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", reason="too_large") == 1)
    finally:
        s.close()


def test_head_requests_keep_the_upstream_headers(proxied, upstream):
    direct = http("HEAD", upstream.url + "/echo/h")
    via = http("HEAD", proxied.url + "/echo/h")
    assert via.status == direct.status == 201 and via.body == b""
    assert via.headers["content-length"] == direct.headers["content-length"]


@pytest.fixture(scope="module")
def bare_upstream():
    """A model server that sends neither Content-Type nor Server (aiohttp's server adds both)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve_conn(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
            while len(rest) < length:
                rest += conn.recv(65536)
            body = b"plain bytes"
            head_only = head.startswith(b"HEAD ")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\nX-Only: 1\r\n\r\n%s"
                         % (len(body), b"" if head_only else body))

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            threading.Thread(target=serve_conn, args=(conn,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(2)
    srv.close()


def test_headers_the_upstream_did_not_send_are_not_added(tmp_path, bare_upstream, engine):
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=bare_upstream)
    try:
        for method in ("GET", "POST", "HEAD"):
            r = http(method, s.url + "/anything", b"x" if method == "POST" else None)
            assert r.status == 200 and r.headers.get("x-only") == "1"
            assert "content-type" not in r.headers and "server" not in r.headers, (method, r.headers)
            if method != "HEAD":
                assert r.body == b"plain bytes"
    finally:
        s.close()


def test_several_output_tensors_without_oip_output_say_which_is_read(tmp_path, upstream, engine, caplog):
    """MLServer's scikit-learn runtime answers ``predict`` (labels) before ``predict_proba``: read
    first, the labels were refused as output_shape, and the logged fix named output.kind, not
    server.proxy.oip_output. The proxy now says once per model which tensor it reads."""
    s = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        with caplog.at_level("WARNING", logger="monitor.server"):
            for _ in range(3):
                assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 200
            tapped(s.monitor("iris"), 3)
        said = [r.getMessage() for r in caplog.records if "output tensors" in r.getMessage()]
        assert len(said) == 1
        assert "(probs, label)" in said[0] and "server.proxy.oip_output" in said[0]
    finally:
        s.close()


def test_a_response_in_a_coding_the_tap_cannot_read_is_counted_as_such(tmp_path, upstream, engine):
    """A ``br`` answer (or a truncated gzip one) was counted ``bad_json`` with the log's "not JSON"
    words, pointing at the body's format instead of its coding."""
    s = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=upstream.url + "/coded/br")
    try:
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 200
        assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="proxy") >= 1)
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="unsupported_encoding") == 1
        assert total(text, "monitor_intake_events_refused_total", endpoint="proxy", reason="bad_json") == 0
    finally:
        s.close()
    s = start_proxying({"models": [IRIS]}, tmp_path, engine, proxy_upstream=upstream.url + "/coded/gzip")
    try:
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 200
        assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="proxy") >= 1)
        assert total(s.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", reason="bad_body") == 1
    finally:
        s.close()
