"""Defects found by a review of the sidecar, each proved over real HTTP on 127.0.0.1 (a real
upstream for the proxy) before its fix; kept as regression tests."""

from __future__ import annotations

import gzip
import json

from tests.sidecar_support import http, total, wait_until
from tests.test_proxy import IRIS, engine, oip, start_proxying, upstream  # noqa: F401 - fixtures

__all__: list[str] = []


def _refused(s, **labels: str) -> float:
    return total(s.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", **labels)


def test_a_gzip_request_body_reaches_the_upstream_intact_and_is_tapped(tmp_path, upstream, engine):  # noqa: F811
    """A client that compresses its request (``Content-Encoding: gzip``) must reach the model
    server with a body that matches its headers. aiohttp's server decompresses request bodies,
    so the aiohttp engine forwarded plain bytes under ``Content-Encoding: gzip`` (and the
    compressed length): the model server answered 400 and the tap counted bad_json."""
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        raw = gzip.compress(b'{"k": "v"}')
        r = http("POST", s.url + "/echo/gz", raw, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status == 201, r.body
        assert r.json()["body"] == '{"k": "v"}'  # the upstream (aiohttp) decoded what it was sent
        body = gzip.compress(json.dumps(oip(1)).encode())
        r = http("POST", s.url + "/v2/models/iris/infer", body, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status == 200, r.body
        mon = s.monitor("iris")
        assert wait_until(lambda: len(mon.queue) >= 1 or _refused(s) >= 1)
        assert _refused(s) == 0
        (event,) = list(mon.queue.items)
        assert event[2].shape == (1, 4)
    finally:
        s.close()


def test_the_tap_does_not_decompress_past_the_body_limit(tmp_path, upstream, engine):  # noqa: F811
    """A small gzip body that expands past ``server.max_body_bytes`` (a gzip bomb: 10 MB of
    zeros fit in 10 kB) is forwarded but not decompressed whole by the tap: it is counted
    too_large. Before the fix the tap inflated any body in memory without a bound."""
    limit = 64 * 1024
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=upstream.url, max_body_bytes=limit)
    try:
        doc = json.dumps(oip(1)).encode()
        padded = doc[:-1] + b" " * (4 * limit) + doc[-1:]  # valid JSON, 4x the limit once inflated
        body = gzip.compress(padded)
        assert len(body) < limit
        r = http("POST", s.url + "/v2/models/iris/infer", body, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status in (200, 413)  # forwarded (or refused by the server's own limit), never a crash
        mon = s.monitor("iris")
        assert wait_until(lambda: _refused(s) >= 1 or len(mon.queue) >= 1)
        assert len(mon.queue) == 0
        assert _refused(s, reason="too_large") == 1
    finally:
        s.close()


def test_deeply_nested_json_is_a_400_naming_the_body_not_a_500(tmp_path):
    """JSON nested deeper than Python's recursion limit makes ``json.loads`` raise
    RecursionError, which is not a ValueError: the intake answered 500 internal_error and the
    forwarding receiver lost the datagram without counting it."""
    import socket

    from tests.sidecar_support import start_sidecar

    sock = str(tmp_path / "f.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
    try:
        deep = b"[" * 50_000
        for ctype in ("application/json", "application/x-ndjson"):
            r = http("POST", s.url + "/v1/events", deep, {"Content-Type": ctype})
            assert r.status == 400, (ctype, r.status, r.body)
            assert r.json()["reason"] == "bad_json" and r.json()["field"] in ("body", "line 1")
        ce = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": "d-1", "Ce-Source": "x",
              "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Inferenceservicename": "iris"}
        r = http("POST", s.url + "/v1/cloudevents", deep, ce)
        assert r.status == 400 and r.json()["field"] == "body", (r.status, r.body)
        r = http("POST", s.url + "/v1/cloudevents", b'{"specversion": "1.0", "data": ' + deep,
                 {"Content-Type": "application/cloudevents+json"})
        assert r.status == 400 and r.json()["field"] == "body", (r.status, r.body)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.sendto(b'{"v": 1, "events": ' + b"[" * 30_000, sock)
        c.close()
        assert wait_until(lambda: total(s.metrics(), "monitor_intake_events_refused_total", endpoint="forward") >= 1)
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", endpoint="forward", reason="bad_json") == 1
        assert total(text, "monitor_intake_events_refused_total", reason="internal_error") == 0
    finally:
        s.close()


def test_a_periodic_checkpoint_in_flight_at_shutdown_cannot_overwrite_the_final_one(tmp_path):
    """Shutdown cancels the periodic checkpoint task, but a save already running in the executor
    thread goes on; the final checkpoint was written beside it, and whichever finished last won.
    A slow periodic save (its state taken before the last events were processed) finishing after
    the final one replaced it with older state: events accepted with 202 were gone after a restart."""
    import asyncio
    import threading

    from prometheus_client import CollectorRegistry

    from monitor import checkpoint
    from monitor.core import Monitor
    from tests.sidecar_support import start_sidecar

    entered, release, armed = threading.Event(), threading.Event(), threading.Event()

    class SlowSave(Monitor):
        def state_dict(self, *, final: bool = False):  # the state is taken, then writing it is slow (a big state, a slow disk)
            state = super().state_dict(final=final)
            if armed.is_set() and threading.current_thread() is not threading.main_thread() and not entered.is_set():
                entered.set()
                release.wait(30)
            return state

    def factory(cfg):
        return SlowSave(config=cfg, registry=CollectorRegistry(auto_describe=False))

    path = tmp_path / "iris.ckpt"
    s = start_sidecar({**IRIS, "checkpoint": {"path": str(path), "interval": "200ms"}}, tmp_path, factory=factory)
    closing = None
    try:
        def post(start: int, n: int) -> None:
            batch = [{"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3], "request_id": f"r{i}"} for i in range(start, start + n)]
            assert http("POST", s.url + "/v1/events", batch).status == 202

        post(0, 10)
        armed.set()
        assert entered.wait(20), "no periodic checkpoint started"
        post(10, 10)  # accepted while the periodic save is still writing its older state

        def ids() -> set[str]:
            try:
                state, _ = checkpoint.load(path, model="iris")
            except checkpoint.CheckpointError:
                return set()
            return set(state["joiner"]["ids"])

        closing = asyncio.run_coroutine_threadsafe(s.server.runner.cleanup(), s.server.lt.loop)
        wait_until(lambda: "r19" in ids(), timeout=3)  # the final checkpoint, if it does not wait for the periodic one
        release.set()
        closing.result(30)
        s.server.lt.call(s.server.lt.loop.shutdown_default_executor())  # every checkpoint thread has finished
        assert ids() == {f"r{i}" for i in range(20)}
    finally:
        release.set()
        if closing is None:
            s.close()
        else:
            s.server.lt.stop()


def test_a_body_that_cannot_be_decoded_is_a_400_naming_the_body(tmp_path):
    """``Content-Encoding: gzip`` over bytes that are not gzip: aiohttp's payload reader raises
    RequestPayloadError (not an HTTP exception), and the intake answered 500 internal_error."""
    from tests.sidecar_support import start_sidecar

    s = start_sidecar(IRIS, tmp_path)
    try:
        for path, extra in (("/v1/events", {}), ("/v1/feedback", {}), ("/v1/cloudevents", {"Ce-Specversion": "1.0"})):
            r = http("POST", s.url + path, b"not gzip at all", {"Content-Encoding": "gzip", "Content-Type": "application/json", **extra})
            assert r.status == 400, (path, r.status, r.body)
            assert r.json()["field"] == "body" and r.json()["reason"] == "bad_body"
        text = s.metrics()
        assert total(text, "monitor_intake_events_refused_total", reason="bad_body") == 3
        assert total(text, "monitor_intake_events_refused_total", reason="internal_error") == 0
        ok = gzip.compress(json.dumps({"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}).encode())
        r = http("POST", s.url + "/v1/events", ok, {"Content-Encoding": "gzip", "Content-Type": "application/json"})
        assert r.status == 202 and r.json()["accepted"] == 1  # a real gzip body is still read
    finally:
        s.close()


def test_oip_tensors_that_do_not_split_into_rows_are_a_400_naming_the_field(tmp_path):
    """OIP v2 named inputs whose sizes disagree (``x`` of 2 rows, ``y`` of 3 values), or a
    zero-row tensor of rank 3: numpy's reshape raised ValueError and the CloudEvents intake
    answered 500 internal_error."""
    from tests.sidecar_support import start_sidecar

    s = start_sidecar(IRIS, tmp_path)
    try:
        ce = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "x",
              "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Inferenceservicename": "iris"}
        mismatched = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]},
                                 {"name": "y", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}
        r = http("POST", s.url + "/v1/cloudevents", json.dumps(mismatched), {**ce, "Ce-Id": "m-1"})
        assert r.status == 400, r.body
        assert r.json()["field"] == "inputs" and r.json()["reason"] == "bad_shape" and "'y'" in r.json()["error"]
        empty = {"inputs": [{"name": "x", "shape": [0, 2, 2], "datatype": "FP32", "data": []}]}
        r = http("POST", s.url + "/v1/cloudevents", json.dumps(empty), {**ce, "Ce-Id": "m-2"})
        assert r.status in (202, 400), r.body
        resp = {"outputs": [{"name": "p", "shape": [2, 3, 2], "datatype": "FP32", "data": [1, 2, 3]}]}
        r = http("POST", s.url + "/v1/cloudevents", json.dumps(resp),
                 {**ce, "Ce-Type": "org.kubeflow.serving.inference.response", "Ce-Id": "m-3"})
        assert r.status == 400 and r.json()["reason"] == "bad_data", r.body  # the declared shape is checked first
        assert total(s.metrics(), "monitor_intake_events_refused_total", reason="internal_error") == 0
    finally:
        s.close()


def _checkpoint_with(path, state_json: str, created: object = 1.0) -> None:
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "model-monitor-checkpoint", "format_version": 2, "state_version": 2, "model": "iris",
                "created": created, "arrays": 0}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        zf.writestr("state.json", state_json)


def test_a_checkpoint_whose_state_cannot_be_decoded_is_set_aside_and_the_sidecar_becomes_ready(tmp_path):
    """A checkpoint that is a valid zip with valid JSON whose tags do not decode (a non-numeric
    ``__float__``, an unhashable ``__pairs__`` key, JSON nested past the recursion limit) raised
    ValueError/TypeError/RecursionError out of :func:`checkpoint.restore`: the file was neither
    set aside nor counted, and the sidecar stayed unready (/readyz 503) on every restart."""
    from tests.sidecar_support import start_sidecar

    raw = {**IRIS, "checkpoint": {"path": "state/{model}.ckpt", "interval": "1h"}}
    path = tmp_path / "state" / "iris.ckpt"
    bad_states = ['{"version": {"__float__": "not a number"}}', '{"x": {"__pairs__": [[{"a": 1}, 2]]}}',
                  '{"x": {"__tuple__": 5}}', '{"x": ' + "[" * 50_000 + "]" * 50_000 + "}"]
    for i, state_json in enumerate(bad_states):
        _checkpoint_with(path, state_json)
        s = start_sidecar(raw, tmp_path, wait_ready=False)
        try:
            assert wait_until(lambda: s.sidecar.ready or s.sidecar.load_error is not None)
            assert s.sidecar.load_error is None, (state_json[:60], s.sidecar.load_error)
            assert http("GET", s.url + "/readyz").status == 200
            assert sample_failures(s) == 1
            assert len(list(path.parent.glob("iris.ckpt.corrupt-*"))) == i + 1
        finally:
            s.close()
            path.unlink(missing_ok=True)  # the sidecar's own final checkpoint


def test_a_checkpoint_with_a_non_numeric_creation_time_is_still_restored(tmp_path):
    """``manifest.created`` is only used for the log line; a non-numeric one made
    :func:`checkpoint.restore` raise ValueError after the state had been loaded."""
    from monitor import checkpoint
    from monitor.core import STATE_VERSION
    from tests.sidecar_support import start_sidecar

    raw = {**IRIS, "checkpoint": {"path": "state/{model}.ckpt", "interval": "1h"}}
    s = start_sidecar(raw, tmp_path)
    http("POST", s.url + "/v1/events", [{"inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3], "request_id": "r1"}])
    s.close()
    path = tmp_path / "state" / "iris.ckpt"
    state, _ = checkpoint.load(path, model="iris")
    checkpoint.save(path, state, model="iris", state_version=STATE_VERSION)
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(members["manifest.json"])
    manifest["created"] = "yesterday"
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    s = start_sidecar(raw, tmp_path, wait_ready=False)
    try:
        assert wait_until(lambda: s.sidecar.ready or s.sidecar.load_error is not None)
        assert s.sidecar.load_error is None, s.sidecar.load_error
        assert s.sidecar.restored["iris"] is True
    finally:
        s.close()


def sample_failures(s) -> float:
    return total(s.metrics(), "monitor_checkpoint_failures_total", operation="restore", reason="corrupt")


def test_a_forwarded_event_that_cannot_be_encoded_loses_only_itself_and_is_counted(tmp_path):
    """``encode_event`` can fail with more than TypeError/ValueError (json.dumps raises
    RecursionError on deeply nested inputs; a value's own ``tolist`` may raise anything): the
    sender thread's catch-all then dropped the whole drained batch and counted zero."""
    from monitor.forwarding import ForwardingMonitor
    from tests.sidecar_support import quiet_factory, sample, start_sidecar

    class Broken:
        def tolist(self):
            raise RuntimeError("device tensor cannot be copied")

    deep: list = []
    for _ in range(5_000):
        deep = [deep]
    sock = str(tmp_path / "f.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path, factory=quiet_factory(start_worker=False))
    fm = ForwardingMonitor("iris", f"unix://{sock}", flush_interval_s=0.01)
    try:
        fm.observe([1.0, 2.0, 3.0, 4.0], [0.2, 0.5, 0.3])
        fm.observe(deep, [0.2, 0.5, 0.3])
        fm.observe(Broken(), [0.2, 0.5, 0.3])
        fm.observe([1.0, 2.0, 3.0, 4.0], [0.2, 0.5, 0.3])
        fm.flush()
        fm.observe([1.0, 2.0, 3.0, 4.0], [0.2, 0.5, 0.3])  # one more datagram carries the drop counts
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") >= 3
                          and total(s.metrics(), "monitor_forward_events_dropped_total") >= 2)
        text = s.metrics()
        assert total(text, "monitor_forward_events_received_total") == 3
        assert sample(text, "monitor_forward_events_dropped_total", model="_sidecar", reason="unserializable") == 2
    finally:
        fm.close()
        s.close()


def test_a_client_leaving_a_streamed_response_is_not_counted_as_an_upstream_error(tmp_path, engine):  # noqa: F811
    """A client that stops reading a streamed (SSE) response and closes its connection is a
    499, not an upstream failure: on the aiohttp engine the write error (aiohttp's
    ClientConnectionResetError is also a ClientError) was caught as the model server breaking
    off, counting monitor_proxy_upstream_errors_total{reason="disconnect"}, which pages
    for a healthy model server whenever users cancel streams."""
    import asyncio
    import socket

    from aiohttp import web

    from tests.sidecar_support import AppServer

    async def slow_stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for i in range(200):
                await resp.write(f"data: {i}\n\n".encode())
                await asyncio.sleep(0.02)
        except ConnectionError:
            pass
        return resp

    app = web.Application()
    app.router.add_get("/sse", slow_stream)
    up = AppServer(app)
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=up.url)
    try:
        c = socket.create_connection(("127.0.0.1", s.server.port), timeout=10)
        c.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"data: 0" in c.recv(4096) or b"data: 0" in c.recv(4096)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset, as a killed client
        c.close()
        assert wait_until(lambda: total(s.metrics(), "monitor_http_request_duration_seconds_count", handler="proxy") >= 1)
        text = s.metrics()
        assert total(text, "monitor_proxy_upstream_errors_total") == 0
        assert total(text, "monitor_http_request_duration_seconds_count", handler="proxy", code="499") == 1
    finally:
        s.close()
        up.close()


def test_an_unpaired_surrogate_is_refused_at_intake_and_metrics_keep_working(tmp_path):
    """``"\\ud800"`` is valid JSON but not Unicode. As a segment or a class label it became a
    metric label that UTF-8 cannot encode, and every ``/metrics`` scrape after it answered 500
    (the state carrying it is checkpointed, so a restart did not help). Refused with a 400
    naming the event at the HTTP intake, counted per event in forwarded datagrams, and a
    CloudEvent carrying one is a 400 too; a paired surrogate (an emoji) is fine."""
    import socket

    from tests.sidecar_support import start_sidecar

    labels_model = {**IRIS, "model": "labels", "output": {"kind": "labels"}}
    sock = str(tmp_path / "f.sock")
    s = start_sidecar({"models": [IRIS, labels_model], "server": {"forward": {"unix": sock}}}, tmp_path)
    try:
        ok = {"model": "iris", "inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}
        body = ('[' + json.dumps(ok) + ', {"model": "iris", "inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3], '
                '"segment": "eu-\\ud800"}]')
        r = http("POST", s.url + "/v1/events", body.encode())
        assert r.status == 400 and r.json()["field"] == "event 1" and r.json()["reason"] == "bad_unicode", r.body
        r = http("POST", s.url + "/v1/events", b'{"model": "labels", "inputs": [1, 2, 3, 4], "outputs": "\\udfff"}')
        assert r.status == 400 and r.json()["reason"] == "bad_unicode", r.body
        r = http("POST", s.url + "/v1/events", b'{"model": "iris", "inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3], '
                                              b'"segment": "\\ud83d\\ude00"}')
        assert r.status == 202, r.body  # an emoji: a valid pair
        ce = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "x", "Ce-Id": "u-1",
              "Ce-Type": "org.kubeflow.serving.inference.response", "Ce-Inferenceservicename": "labels"}
        r = http("POST", s.url + "/v1/cloudevents", b'{"predictions": ["\\ud800"]}', ce)
        assert r.status == 400 and r.json()["reason"] == "bad_unicode", r.body
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.sendto(('{"v": 1, "sender": "w", "seq": 1, "model": "labels", "events": ['
                  '{"inputs": [1, 2, 3, 4], "outputs": "\\ud800"}, {"inputs": [1, 2, 3, 4], "outputs": "setosa"}]}').encode(), sock)
        c.close()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 1)
        for mon in s.sidecar.all_monitors():
            mon.flush()
        for accept in ("text/plain", "application/openmetrics-text"):
            r = http("GET", s.url + "/metrics", headers={"Accept": accept})
            assert r.status == 200, r.body
        text = r.body.decode()
        assert total(text, "monitor_intake_events_refused_total", reason="bad_unicode") == 2 + 1 + 1 + 1
    finally:
        s.close()


def test_an_integer_beyond_the_float_range_is_refused_and_poisons_nothing(tmp_path):
    """``10**400`` is a valid JSON integer. As a timestamp it raised OverflowError (500
    internal_error); in inputs or outputs it was accepted with 202, then the worker's float
    conversion failed and dropped every event of the batch it was drained with (valid ones
    from other clients included) as internal_error."""
    import socket

    from tests.sidecar_support import quiet_factory, start_sidecar

    big = "1" + "0" * 400
    sock = str(tmp_path / "f.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        ok = '{"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}'
        for bad in ('{"inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3], "timestamp": %s}' % big,
                    '{"inputs": [1, 2, 3, %s], "outputs": [0.2, 0.5, 0.3]}' % big,
                    '{"type": "error", "exception": "X", "timestamp": %s}' % big):
            r = http("POST", s.url + "/v1/events", ("[" + ok + ", " + bad + "]").encode())
            assert r.status == 400, (bad[:50], r.status, r.body)
            assert r.json()["field"] == "event 1" and r.json()["reason"] == "number_too_large"
        r = http("POST", s.url + "/v1/events", ('{"inputs": [1, 2, 3, 4], "outputs": [0.2, 0.5, 0.3], "request_id": "%s"}' % big).encode())
        assert r.status == 202, r.body  # a long id string is not a number
        ce = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "x", "Ce-Id": "n-1",
              "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Inferenceservicename": "iris"}
        r = http("POST", s.url + "/v1/cloudevents", ('{"instances": [[1, 2, 3, %s]]}' % big).encode(), ce)
        assert r.status == 400 and r.json()["reason"] == "number_too_large", r.body
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.sendto(('{"v": 1, "sender": "w", "seq": 1, "model": "iris", "events": [%s, {"inputs": [%s, 2, 3, 4], '
                  '"outputs": [0.2, 0.5, 0.3]}]}' % (ok, big)).encode(), sock)
        c.close()
        assert wait_until(lambda: total(s.metrics(), "monitor_forward_events_received_total") == 1)
        mon = s.monitor()
        assert len(mon.queue) == 2  # the long-id event and the datagram's good one
        mon.worker.drain_once()
        text = s.metrics()
        assert total(text, "monitor_events_dropped_total", reason="internal_error") == 0
        assert total(text, "monitor_predictions_total") == 2
        assert total(text, "monitor_intake_events_refused_total", reason="number_too_large") == 3 * 2 + 1 + 1
        assert total(text, "monitor_intake_events_refused_total", reason="internal_error") == 0
    finally:
        s.close()


def test_seldon_rows_that_do_not_match_the_names_are_a_400_naming_the_field(tmp_path):
    """A Seldon message with ``names`` whose first row fits but a later one is not a row (a
    scalar, a shorter list) made ``zip`` raise TypeError: 500 internal_error. Found by fuzzing
    the CloudEvents endpoint."""
    from tests.sidecar_support import start_sidecar

    s = start_sidecar(IRIS, tmp_path)
    try:
        h = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "s", "Ce-Id": "s-1",
             "Ce-Type": "io.seldon.serving.inference.request", "Ce-Inferenceservicename": "iris"}
        for rows in ([[1, 2, 3, 4], -1], [[1, 2, 3, 4], [1, 2]], [[1, 2, 3, 4], None]):
            r = http("POST", s.url + "/v1/cloudevents", json.dumps({"data": {"names": ["a", "b", "c", "d"], "ndarray": rows}}), h)
            assert r.status == 400, (rows, r.status, r.body)
            assert r.json()["field"] == "data.ndarray" and r.json()["reason"] == "bad_shape"
        r = http("POST", s.url + "/v1/cloudevents", json.dumps({"data": {"names": ["a", "b", "c", "d"], "ndarray": [[1, 2, 3, 4]] * 2}}), h)
        assert r.status == 202, r.body
        assert total(s.metrics(), "monitor_intake_events_refused_total", reason="internal_error") == 0
    finally:
        s.close()


def test_an_upstream_that_closes_each_new_connection_at_once_is_a_502_not_a_hang(tmp_path, engine):  # noqa: F811
    """A model server that accepts and closes at once (restarting, or shedding load): when the
    close arrived before the lean pool's connect task resumed, the exchange was attached to a
    connection already gone, nobody told it, and the client waited the whole proxy timeout
    for a 504 counted as an upstream timeout. The aiohttp engine answers 502 at once."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def accept_and_close() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=accept_and_close, daemon=True).start()
    up = f"http://127.0.0.1:{srv.getsockname()[1]}"
    s = start_proxying({**IRIS, "server": {"proxy": {"timeout": "2s"}}}, tmp_path, engine, proxy_upstream=up)
    try:
        answers = [http("POST", s.url + "/v2/models/iris/infer", b"{}", {"Content-Type": "application/json"}) for _ in range(12)]
        assert [r.status for r in answers] == [502] * 12
        assert {r.json()["reason"] for r in answers} == {"upstream_disconnect"}
        assert total(s.metrics(), "monitor_proxy_upstream_errors_total", reason="timeout") == 0
    finally:
        s.close()
        srv.close()


def test_a_seldon_tensor_of_shape_nothing_is_a_400_and_a_counted_bad_shape_in_the_tap(tmp_path, upstream, engine):  # noqa: F811
    """A Seldon ``tensor`` with ``shape: []`` became a 0-d array: with ``names`` its ``len()``
    raised TypeError (CloudEvents 500 internal_error), and the proxy tap counted it as
    internal_error (``shape[0]`` of a 0-d array). Found by fuzzing both."""
    s = start_proxying({"models": [{**IRIS, "model": "mirror"}, IRIS]}, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        h = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "s", "Ce-Id": "t-1",
             "Ce-Type": "io.seldon.serving.inference.request", "Ce-Inferenceservicename": "iris"}
        scalar = {"data": {"names": ["a"], "tensor": {"shape": [], "values": [1]}}}
        r = http("POST", s.url + "/v1/cloudevents", json.dumps(scalar), h)
        assert r.status == 400 and r.json()["field"] == "data.tensor.shape", (r.status, r.body)
        r = http("POST", s.url + "/v2/models/mirror/infer", json.dumps({"data": {"tensor": {"shape": [], "values": 1}}}),
                 {"Content-Type": "application/json"})
        assert r.status == 200
        assert wait_until(lambda: _refused(s) >= 1)
        assert _refused(s, reason="bad_shape") == 1 and _refused(s, reason="internal_error") == 0
        one = {"inputs": [{"name": "x", "shape": [], "datatype": "FP32", "data": [5.0]}],
               "outputs": [{"name": "p", "shape": [3], "datatype": "FP32", "data": [0.2, 0.5, 0.3]}]}
        r = http("POST", s.url + "/v2/models/mirror/infer", json.dumps(one), {"Content-Type": "application/json"})
        assert r.status == 200
        mon = s.monitor("mirror")
        assert wait_until(lambda: len(mon.queue) >= 1 or _refused(s) >= 2)
        assert _refused(s, reason="internal_error") == 0
        (event,) = list(mon.queue.items)
        assert event[2].shape == (1, 1)  # an OIP scalar input: one row of one value
    finally:
        s.close()


def test_unknown_paths_and_methods_are_answered_in_the_json_error_shape(tmp_path):
    from tests.sidecar_support import http, quiet_factory, start_sidecar

    s = start_sidecar({"model": "iris", "features": ["a", "b"]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        r = http("POST", s.url + "/v1/event", [])
        assert r.status == 404 and r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["reason"] == "not_found" and body["field"] == "path" and "/v1/events" in body["error"]
        r = http("GET", s.url + "/v1/events")
        assert r.status == 405 and r.json()["reason"] == "method_not_allowed" and r.headers["allow"] == "POST"
        assert http("GET", s.url + "/healthz").status == 200
    finally:
        s.close()
