"""``server.segment_header``: the segment of every row of a proxied request (both proxy engines,
the lean one on the sidecar's loop and in its own process) and of a CloudEvent (the header as
KServe's logger copies it into ``ce-metadata``), over real HTTP on 127.0.0.1. Before it, every
figure the proxy and CloudEvents fed was ``unset`` only: no per-segment figure for a sidecar next
to KServe or Triton. A request without the header is ``unset``; a value is read as the event format
reads a segment (cut to 200 characters, empty is none); the cap's overflow is counted and said."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid

import pytest
import yaml
from aiohttp import web
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, parse_config
from tests.sidecar_support import AppServer, http, quiet_factory, sample, start_sidecar
from tests.test_cloudevents import kserve_headers
from tests.test_proxy import IRIS, engine, start_proxying, tapped  # noqa: F401 - fixtures

HEADER = "X-Tenant"
#: the segments detector writing its figures from one row a segment (100 by default)
SEGMENTS = {"detectors": [{"kind": "segments", "min_rows": 1}]}


def _tenant_echo_app() -> web.Application:
    """An OIP v2 model server that answers each row with the same scores and says, in a header of
    its answer, the ``X-Tenant`` it received (the proxy must forward it unchanged)."""
    async def infer(request: web.Request) -> web.Response:
        body = await request.json()
        n = body["inputs"][0]["shape"][0]
        return web.json_response({"model_name": request.match_info["model"], "id": body.get("id"),
                                  "outputs": [{"name": "probs", "shape": [n, 3], "datatype": "FP32",
                                               "data": [0.7, 0.2, 0.1] * n}]},
                                 headers={"X-Seen-Tenant": request.headers.get(HEADER, "<none>")})

    app = web.Application()
    app.router.add_post("/v2/models/{model}/infer", infer)
    return app


@pytest.fixture(scope="module")
def tenant_upstream():
    srv = AppServer(_tenant_echo_app())
    yield srv
    srv.close()


def _oip(n: int, rid: str) -> dict:
    return {"id": rid, "inputs": [{"name": "x", "shape": [n, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.5, 0.2] * n}]}


def test_the_proxy_gives_each_request_the_segment_its_header_names(tmp_path, tenant_upstream, engine):  # noqa: F811
    cfg = {**IRIS, **SEGMENTS, "server": {"segment_header": HEADER}}
    s = start_proxying(cfg, tmp_path, engine, proxy_upstream=tenant_upstream.url)
    try:
        long_value = "t" * 300
        sent = [(2, {HEADER: "eu"}), (1, {HEADER: "us"}), (3, {}), (1, {HEADER: ""}), (1, {HEADER: long_value})]
        for i, (n, headers) in enumerate(sent):
            r = http("POST", s.url + "/v2/models/iris/infer", _oip(n, f"r{i}"), headers)
            assert r.status == 200, r.body
            # forwarded unchanged: the model server saw the header as sent (none when none was sent)
            assert r.headers["x-seen-tenant"] == (headers.get(HEADER) or ("" if HEADER in headers else "<none>"))
        events = tapped(s.monitor("iris"), len(sent))
        by_id = {e[6]: e[7] for e in events}
        assert by_id == {"r0": "eu", "r1": "us", "r2": None, "r3": None, "r4": "t" * 200}, by_id
        s.flush()
        text = s.metrics()
        rows = {seg: sample(text, "monitor_segment_rows_in_window", model="iris", segment=seg)
                for seg in ("eu", "us", "unset", "t" * 200)}
        # every row of a request in its header's segment; no header, or an empty one, is unset
        assert rows == {"eu": 2, "us": 1, "unset": 4, "t" * 200: 1}, rows
        assert sample(text, "monitor_segment_confidence_mean_ratio", model="iris", segment="eu") == pytest.approx(0.7)
    finally:
        s.close()


def test_without_the_setting_a_proxied_request_has_no_segment(tmp_path, tenant_upstream, engine):  # noqa: F811
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=tenant_upstream.url)
    try:
        r = http("POST", s.url + "/v2/models/iris/infer", _oip(2, "r0"), {HEADER: "eu"})
        assert r.status == 200 and r.headers["x-seen-tenant"] == "eu"
        (event,) = tapped(s.monitor("iris"))
        assert event[7] is None
        s.flush()
        assert sample(s.metrics(), "monitor_segment_rows_in_window", model="iris", segment="eu") is None
    finally:
        s.close()


def test_unbounded_header_values_overflow_into_other_counted_and_said(tmp_path, tenant_upstream, engine, caplog):  # noqa: F811
    """A user id named as the segment header by mistake: past ``segments.cap`` values its rows go
    to ``other``, counted, and the log says so once."""
    cap = 3
    cfg = {**IRIS, "segments": {"cap": cap}, "server": {"segment_header": HEADER}}
    s = start_proxying(cfg, tmp_path, engine, proxy_upstream=tenant_upstream.url)
    try:
        users = [f"user-{i}" for i in range(10)]
        for i, user in enumerate(users):
            assert http("POST", s.url + "/v2/models/iris/infer", _oip(1, f"r{i}"), {HEADER: user}).status == 200
        tapped(s.monitor("iris"), len(users))
        with caplog.at_level(logging.WARNING, logger="monitor"):
            s.flush()
        text = s.metrics()
        assert sample(text, "monitor_segment_overflow_rows_total", model="iris") == len(users) - cap
        assert sample(text, "monitor_segment_rows_in_window", model="iris", segment="other") == len(users) - cap
        learned = [u for u in users if sample(text, "monitor_segment_rows_in_window", model="iris", segment=u) is not None]
        assert learned == users[:cap]
        said = [r.getMessage() for r in caplog.records if "segments.cap" in r.getMessage()]
        assert len(said) == 1 and "'iris'" in said[0] and "server.segment_header" in said[0], said
    finally:
        s.close()


@pytest.fixture
def ce_sidecar(tmp_path):
    s = start_sidecar({**IRIS, **SEGMENTS, "model": "sklearn-iris", "server": {"segment_header": HEADER, "client_header": "X-Client-Id"}},
                      tmp_path, factory=quiet_factory(start_worker=False))
    yield s
    s.close()


def _kserve_pair(sc, rid: str, metadata: dict | None, rows: int, on_response: bool = False) -> None:
    extra = {} if metadata is None else {"Ce-Metadata": json.dumps(metadata)}
    req = kserve_headers(rid, "request", **({} if on_response else extra))
    resp = kserve_headers(rid, "response", **(extra if on_response else {}))
    for headers, body in ((req, {"instances": [[6.8, 2.8, 4.8, 1.4]] * rows}),
                          (resp, {"predictions": [[0.7, 0.2, 0.1]] * rows})):
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps(body), headers)
        assert r.status == 202, r.body


def test_cloudevents_take_the_segment_from_the_loggers_metadata_headers(ce_sidecar):
    sc = ce_sidecar
    # KServe's logger copies the request headers named in metadataHeaders, as lists of values,
    # its names in whichever case the client sent them
    _kserve_pair(sc, str(uuid.uuid4()), {"x-tenant": ["eu"], "X-Client-Id": ["c1"]}, rows=2)
    _kserve_pair(sc, str(uuid.uuid4()), {"X-Tenant": ["us"]}, rows=1, on_response=True)
    _kserve_pair(sc, str(uuid.uuid4()), {"X-Client-Id": ["c1"]}, rows=3)  # no segment header: unset
    _kserve_pair(sc, str(uuid.uuid4()), None, rows=1)  # no metadata at all: unset
    events = list(sc.monitor().queue.items)
    assert sorted((e[7] or "", len(e[2])) for e in events) == [("", 1), ("", 3), ("eu", 2), ("us", 1)]
    assert {e[5] for e in events if e[7] == "eu"} == {"c1"}  # the client header is read beside it
    sc.flush()
    text = sc.metrics()
    rows = {seg: sample(text, "monitor_segment_rows_in_window", model="sklearn-iris", segment=seg) for seg in ("eu", "us", "unset")}
    assert rows == {"eu": 2, "us": 1, "unset": 4}, rows
    assert sample(text, "monitor_segment_confidence_mean_ratio", model="sklearn-iris", segment="us") == pytest.approx(0.7)


@pytest.mark.parametrize("value", [5, "X Tenant", ["X-Tenant"], ""])
def test_a_segment_header_that_is_no_header_name_is_a_config_error(tmp_path, value) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**IRIS, "server": {"segment_header": value}}, "monitor.yaml", tmp_path)
    text = str(err.value)
    assert "server.segment_header" in text and "must be one HTTP header name" in text
    assert "segment_header: X-Tenant" in text, text
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "segment_header": value}}))
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1 and f"FAILED: {path}: server.segment_header: " in res.output and ". Fix: " in res.output, res.output


def test_serve_refuses_a_bad_segment_header_with_the_config_error(tmp_path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({**IRIS, "server": {"port": 0, "segment_header": 5,
                                                        "proxy": {"upstream": "http://127.0.0.1:9"}}}))
    proc = subprocess.run([sys.executable, "-c", "from monitor.cli import main; main()", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "server.segment_header: " in proc.stderr and "Fix: " in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
