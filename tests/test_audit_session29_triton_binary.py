"""Triton's binary tensor data extension through the proxy (session 29 audit).

``tritonclient.http`` sends inputs binary by default: a JSON head as long as the
``Inference-Header-Content-Length`` header says, then each tensor's raw values (its size in
``parameters.binary_data_size``); outputs asked for with ``binary_data: true`` come back so. The
tap read such bodies as JSON and refused every exchange as ``bad_json``: forwarded, never
monitored. Both bodies are now read (FP32/FP64/INT*/UINT*/BOOL, FP16, BF16, BYTES), on every
engine; a malformed one is refused as ``bad_binary``, counted, its cause logged, and the client
still gets the model server's answer unchanged.
"""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np
import pytest
from aiohttp import web

from tests.sidecar_support import AppServer, http, infer_server, total, wait_until
from tests.test_proxy import start_proxying

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
HEADER = "Inference-Header-Content-Length"
PROBS = [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]


def _bf16(values: list[float]) -> bytes:
    return (np.asarray(values, dtype="<f4").view("<u4") >> 16).astype("<u2").tobytes()


def _strings(values: list[str]) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def _binary_body(head: dict, blobs: list[bytes]) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(head).encode()
    return text + b"".join(blobs), {HEADER: str(len(text)), "Content-Type": "application/octet-stream"}


#: Two rows, one tensor per feature, each in another of the extension's datatypes.
FEATURES = [("a", "FP16", np.asarray([5.5, 6.25], dtype="<f2").tobytes()),
            ("b", "BF16", _bf16([3.0, 2.5])),
            ("c", "INT16", np.asarray([-3, 4], dtype="<i2").tobytes()),
            ("d", "BOOL", bytes([1, 0]))]


def _request(binary_outputs: bool) -> tuple[bytes, dict[str, str]]:
    head = {"id": "t-1", "inputs": [{"name": n, "shape": [2], "datatype": dt, "parameters": {"binary_data_size": len(b)}}
                                    for n, dt, b in FEATURES]}
    if binary_outputs:
        head["outputs"] = [{"name": "probs", "parameters": {"binary_data": True}},
                           {"name": "label", "parameters": {"binary_data": True}}]
    return _binary_body(head, [b for _, _, b in FEATURES])


def _triton_like() -> AppServer:
    """Reads the head of a binary request and answers two rows: binary outputs when asked for
    (a BYTES label tensor first, then the FP32 scores), JSON ones otherwise (also when the head
    is not where its header says: the tap's refusals are to be of a 200, not of an error)."""
    async def infer(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            head = json.loads(raw[:int(request.headers.get(HEADER, len(raw)))])
        except ValueError:
            head = {}
        binary = any(o.get("parameters", {}).get("binary_data") for o in head.get("outputs", []))
        if not binary:
            return web.json_response({"id": head.get("id"), "outputs": [
                {"name": "probs", "shape": [2, 3], "datatype": "FP64", "data": sum(PROBS, [])}]})
        labels, scores = _strings(["setosa", "virginica"]), np.asarray(PROBS, dtype="<f4").tobytes()
        body, headers = _binary_body({"id": head.get("id"), "outputs": [
            {"name": "label", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": len(labels)}},
            {"name": "probs", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": len(scores)}}]},
            [labels, scores])
        return web.Response(body=body, headers=headers)

    return infer_server(infer)


@pytest.fixture(scope="module")
def upstream():
    srv = _triton_like()
    yield srv
    srv.close()


@pytest.fixture(params=["aiohttp", "lean", "process"])
def proxied(request, tmp_path, upstream):
    cfg = {"models": [IRIS], "server": {"proxy": {"oip_output": "probs"}}}
    s = start_proxying(cfg, tmp_path, request.param, proxy_upstream=upstream.url)
    yield s
    s.close()


def _synced(sc) -> None:
    """The data path process (if any) has reported every exchange answered so far."""
    if sc.sidecar.data_planes:
        asyncio.run_coroutine_threadsafe(sc.sidecar.sync_proxies(), sc.server.lt.loop).result(10)


def _tapped(sc) -> tuple:
    mon = sc.monitor("iris")
    assert wait_until(lambda: _synced(sc) is None and len(mon.queue) >= 1), "the exchange was not tapped"
    (event,) = mon.queue.items
    return event


@pytest.mark.parametrize("binary_outputs", [False, True], ids=["json-answer", "binary-answer"])
def test_binary_tensors_are_read_from_the_request_and_the_answer(proxied, upstream, binary_outputs) -> None:
    body, headers = _request(binary_outputs)
    direct = http("POST", upstream.url + "/v2/models/iris/infer", body, headers)
    via = http("POST", proxied.url + "/v2/models/iris/infer", body, headers)
    assert via.status == direct.status == 200 and via.body == direct.body
    assert (HEADER.lower() in via.headers) == binary_outputs
    event = _tapped(proxied)
    assert event[2] == [{"a": 5.5, "b": 3.0, "c": -3, "d": 1.0}, {"a": 6.25, "b": 2.5, "c": 4, "d": 0.0}]
    assert np.allclose(event[3], PROBS) and event[3].shape == (2, 3)
    assert event[6] == "t-1"
    refused = total(proxied.metrics(), "monitor_intake_events_refused_total", endpoint="proxy")
    assert refused == 0


@pytest.mark.parametrize(("head_length", "cut", "detail"), [
    ("99999", 0, "is not a length within the body's"),
    (None, 3, "the body is cut short or the sizes are wrong"),
    (None, -2, "add up to"),
], ids=["head-length-past-the-body", "values-cut-short", "bytes-left-over"])
def test_a_malformed_binary_body_is_counted_and_its_cause_logged(proxied, upstream, caplog, head_length, cut,
                                                               detail) -> None:
    body, headers = _request(False)
    if head_length is not None:
        headers[HEADER] = head_length
    body = body[:-cut] if cut > 0 else body + b"\x00" * -cut
    caplog.set_level("WARNING", logger="monitor")
    via = http("POST", proxied.url + "/v2/models/iris/infer", body, headers)
    assert via.status == http("POST", upstream.url + "/v2/models/iris/infer", body, headers).status
    assert wait_until(lambda: sc_refused(proxied) == 1), "the refusal was not counted"
    assert any(detail in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert not proxied.monitor("iris").queue.items


def sc_refused(sc) -> float:
    _synced(sc)
    return total(sc.metrics(), "monitor_intake_events_refused_total", endpoint="proxy", reason="bad_binary")


@pytest.mark.parametrize(("datatype", "values"), [
    ("FP32", [0.5, -1.25, 3.0, 8.5]), ("FP64", [0.1, 1e300, -2.0, 0.0]), ("FP16", [0.5, -1.0, 2.0, 65504.0]),
    ("INT8", [-128, 0, 5, 127]), ("INT32", [-2**31, 1, 2, 2**31 - 1]), ("INT64", [-2**63, 0, 1, 2**63 - 1]),
    ("UINT8", [0, 1, 2, 255]), ("UINT16", [0, 1, 2, 65535]), ("UINT32", [0, 1, 2, 2**32 - 1]),
    ("UINT64", [0, 1, 2, 2**64 - 1]), ("BOOL", [True, False, False, True]), ("BYTES", ["a", "été", "", "c"]),
])
def test_each_datatype_reads_as_its_json_values(datatype, values) -> None:
    """The binary values of a tensor read as its JSON ``data`` reads (what the tap monitors)."""
    from monitor.server.binary_tensors import attach_binary
    from monitor.server.payloads import decode_inputs

    wire = {"FP32": "<f4", "FP64": "<f8", "FP16": "<f2", "INT8": "i1", "INT32": "<i4", "INT64": "<i8", "UINT8": "u1",
            "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "BOOL": "u1"}
    blob = _strings(values) if datatype == "BYTES" else np.asarray(values, dtype=wire[datatype]).tobytes()
    tensor = {"name": "x", "shape": [2, 2], "datatype": datatype}
    binary = {"inputs": [{**tensor, "parameters": {"binary_data_size": len(blob)}}]}
    attach_binary(binary, blob, "inputs")
    read, expected = decode_inputs(binary), decode_inputs({"inputs": [{**tensor, "data": values}]})
    assert read.dtype == expected.dtype and read.shape == expected.shape and read.tolist() == expected.tolist()


@pytest.mark.parametrize(("tensor", "blob", "field", "message"), [
    ({"datatype": "FP32", "shape": [1, 2]}, b"\x00" * 6, "inputs[0].parameters.binary_data_size",
     "is 6 bytes; shape [1, 2] of FP32 takes 2 x 4 = 8"),
    ({"datatype": "BYTES", "shape": [2]}, _strings(["a"]), "inputs[0].parameters.binary_data_size",
     "holds 1 BYTES elements where the shape has 2"),
    ({"datatype": "BYTES", "shape": [1]}, struct.pack("<I", 9) + b"ab", "inputs[0].data",
     "BYTES element 0 says 9 bytes, past the tensor's end"),
    ({"datatype": "BYTES", "shape": [1]}, _strings(["a"])[:4] + b"\xff", "inputs[0].data",
     "BYTES element 0 is not UTF-8 text"),
    ({"datatype": "STRING", "shape": [1]}, b"\x00", "inputs[0].datatype", "is not a datatype of the binary extension"),
])
def test_malformed_binary_tensors_are_refused_naming_the_field(tensor, blob, field, message) -> None:
    from monitor.server.binary_tensors import attach_binary
    from monitor.server.payloads import PayloadError

    with pytest.raises(PayloadError) as err:
        attach_binary({"inputs": [{"name": "x", **tensor, "parameters": {"binary_data_size": len(blob)}}]}, blob, "inputs")
    assert (err.value.field, err.value.reason) == (field, "bad_binary") and message in err.value.message
