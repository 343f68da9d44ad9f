"""The sidecar's cheaper handling of the proxy's taps gives the same events and the same counters
as before: :func:`monitor.server.payloads.loads` against ``json.loads``, the OIP v2 readers'
fast checks against their general path, and a batch of the data path's process (one enqueue per
model, :meth:`Proxy.batched`) against the same exchanges tapped one by one (:meth:`Proxy.tap`),
well-formed and malformed alike."""

from __future__ import annotations

import gzip
import json
import marshal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.server.payloads import PayloadError, decode_inputs, decode_outputs, loads
from tests.sidecar_support import close_data_plane, in_process_data_plane, sample

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
PREDICT_ROUTE = {"path": "/api/predict", "model": "iris", "inputs": "data.rows", "outputs": "result.scores",
                 "request_id": "meta.id"}


# -- loads against json.loads ---------------------------------------------------------------------
def _outcome(fn: Any, raw: Any) -> tuple[str, Any]:
    try:
        value = fn(raw)
    except Exception as err:  # noqa: BLE001 - the exception is the outcome compared
        return ("raised", (type(err), str(err)))
    return ("value", json.dumps(value, sort_keys=True, allow_nan=True))


@pytest.mark.parametrize("raw", [
    b'{"a": 1}', b'{"a": 1} \n\t\r', b'{"a": 1}x', b'{"a": 1} {"b": 2}', b'{"a": 1}\x0c', b"{", b"{}", b"{ }",
    b'{"a": NaN, "b": -Infinity}', b'{"a": "\\ud800"}', b'{"a": "\xff"}', b'{"a": "\xc3\xa9"}', b'{"a":1,}',
    b'{"a": [1, 2', b"{\x00", b'{"a": 1}\x00', "{\"a\": 1}".encode("utf-16-le"), "{\"a\": 1}".encode("utf-16"),
    "{\"a\": 1}".encode("utf-32"), b'\xef\xbb\xbf{"a": 1}', b"[1, 2]", b"1", b"", b" {}", b'{"a": 1e999}',
    b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b'{"a": 1}\xa0', bytearray(b'{"a": 1}'), '{"a": 1}',
    b'{"a": "\x01"}', b'{"\\u00e9": 1, "x": "\\n"}',
], ids=repr)
def test_loads_gives_what_json_loads_gives(raw):
    assert _outcome(loads, raw) == _outcome(json.loads, raw)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.dictionaries(st.text(max_size=5), _JSON, max_size=4), cut=st.integers(0, 200),
       junk=st.binary(max_size=3), ascii_only=st.booleans())
def test_loads_agrees_with_json_loads_on_bodies_and_their_mutilations(value, cut, junk, ascii_only):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    for candidate in (raw, raw[:cut], raw + junk, raw[:cut] + junk + raw[cut:]):
        assert _outcome(loads, candidate) == _outcome(json.loads, candidate)


# -- the OIP v2 readers: fast checks against the general path -----------------------------------------
class _Int(int):
    """An int that is not exactly ``int``: sends a shape down the readers' general check."""


def _general(tensor: dict[str, Any]) -> dict[str, Any]:
    """The same tensor spelled so that the readers' fast checks do not apply: its shape's
    dimensions as an int subclass, its datatype in lower case (valid JSON could not carry the
    first, a model server may send the second)."""
    out = dict(tensor)
    if isinstance(tensor.get("shape"), list):
        out["shape"] = [_Int(d) if type(d) is int else d for d in tensor["shape"]]
    if isinstance(tensor.get("datatype"), str):
        out["datatype"] = tensor["datatype"].lower()
    return out


def _read(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        value = fn(*args, **kwargs)
    except PayloadError as err:
        return ("refused", (err.field, err.message, err.reason))
    if isinstance(value, np.ndarray):
        return ("array", (value.dtype.str, value.shape, value.tolist()))
    return ("value", value)


TENSORS = [
    {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]},
    {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]},
    {"name": "x", "shape": [4], "datatype": "INT64", "data": [1, 2, 3, 4]},
    {"name": "x", "shape": [2, 2, 2], "datatype": "UINT8", "data": list(range(8))},
    {"name": "x", "shape": [], "datatype": "BOOL", "data": [True]},
    {"name": "x", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]},
    {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2]},
    {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": ["a", "b"]},
    {"name": "x", "shape": [1, -2], "datatype": "FP32", "data": [1, 2]},
    {"name": "x", "shape": [1, True], "datatype": "FP32", "data": [1]},
    {"name": "x", "shape": [1, 2.0], "datatype": "FP32", "data": [1, 2]},
    {"name": "x", "shape": "1,2", "datatype": "FP32", "data": [1, 2]},
    {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": "1,2"},
    {"name": "x", "shape": [1, 2], "datatype": 32, "data": [1, 2]},
    {"name": "x", "shape": [1, 2], "data": [1, 2]},
    {"name": "x", "shape": [1, 2], "datatype": "INT8", "data": [1.5, 2]},
    {"shape": [1, 2], "datatype": "FP16", "data": [1, 2]},
    {"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []},
]


@pytest.mark.parametrize("tensor", TENSORS, ids=lambda t: f"{t.get('shape')}-{t.get('datatype')}-{str(t.get('data'))[:12]}")
def test_oip_readers_fast_checks_read_as_the_general_path(tensor):
    general = _general(tensor)
    assert _read(decode_inputs, {"inputs": [tensor]}) == _read(decode_inputs, {"inputs": [general]})
    for rows in (None, 1, 2):
        assert (_read(decode_outputs, {"outputs": [tensor]}, output_name=tensor.get("name"), rows=rows)
                == _read(decode_outputs, {"outputs": [general]}, output_name=tensor.get("name"), rows=rows))


def test_the_output_tensor_is_chosen_by_name_among_one_or_several():
    probs = {"name": "probs", "shape": [1, 3], "datatype": "FP32", "data": [0.7, 0.2, 0.1]}
    label = {"name": "label", "shape": [1], "datatype": "INT64", "data": [0]}
    assert decode_outputs({"outputs": [probs]}, output_name="probs", rows=1).tolist() == [[0.7, 0.2, 0.1]]
    assert decode_outputs({"outputs": [label, probs]}, output_name="probs", rows=1).tolist() == [[0.7, 0.2, 0.1]]
    assert decode_outputs({"outputs": [label, probs]}, rows=1).tolist() == [0]
    for tensors in ([label], [label, label]):
        with pytest.raises(PayloadError) as err:
            decode_outputs({"outputs": tensors}, output_name="probs", rows=1)
        assert (err.value.field, err.value.reason) == ("outputs", "missing_outputs")
        assert err.value.message == (f"no output tensor named 'probs' (have {['label'] * len(tensors)}); "
                                     "set server.proxy.oip_output to the one holding the scores")
    with pytest.raises(PayloadError) as err:
        decode_outputs({"outputs": [label, {**probs, "data": [1]}]}, output_name="probs", rows=1)
    assert (err.value.field, err.value.reason) == ("outputs[1].data", "bad_data")


@pytest.mark.parametrize(("shape", "rows"), [([3], (1, 3)), ([], (1, 1)), ([2, 3], (2, 3)), ([2, 3, 2], (2, 3, 2)),
                                             ([0, 3, 2], (0, 3, 2))])
def test_one_input_tensor_gives_its_rows_along_the_first_axis(shape, rows):
    """The readers' one-tensor branch: a vector or a scalar is one row, a matrix its rows, a
    tensor of more dimensions is kept whole, its first axis the rows (of one tensor feature, or
    flattened by the worker for a model of as many numeric features: monitor.ingest)."""
    size = int(np.prod(shape, dtype=np.int64))
    value = decode_inputs({"inputs": [{"name": "img", "shape": shape, "datatype": "FP32", "data": list(range(size))}]})
    assert value.shape == rows and value.dtype == np.float64
    assert value.ravel().tolist() == list(map(float, range(size)))


# -- a batch against the same exchanges one by one ------------------------------------------------------
def _sidecar(folder: Path) -> tuple[Any, Any]:
    """Two models (``other`` with a queue of 5) and the plain predict route, in this process."""
    raw = {"models": [IRIS, {**IRIS, "model": "other", "queue": {"capacity": 5}}],
           "server": {"proxy": {"upstream": "http://127.0.0.1:9", "oip_output": "probs", "routes": [PREDICT_ROUTE]}}}
    return in_process_data_plane(raw, folder)


def _oip(n: int = 1, rid: str | None = "r", width: int = 4) -> bytes:
    body: dict[str, Any] = {"inputs": [{"name": "x", "shape": [n, width], "datatype": "FP32", "data": [0.5] * (n * width)}]}
    if rid is not None:
        body["id"] = rid
    return json.dumps(body).encode()


def _oip_reply(n: int = 1) -> bytes:
    return json.dumps({"outputs": [{"name": "probs", "shape": [n, 3], "datatype": "FP32", "data": [0.7, 0.2, 0.1] * n}]}).encode()


def _exchanges() -> list[tuple[str, int, tuple[Any, ...]]]:
    """(route, status, tap record) of every kind the tap meets: read, refused for each reason,
    failed upstream, unknown model, large inputs, the plain predict route."""
    t = 1_700_000_000.0
    big = _oip(1, "big", width=5000)  # 5,000 float64 inputs: a large event (byte budget)
    rows = [
        ("proxy_oip_v2", 200, ("iris", "c1", None, _oip(1, "a"), _oip_reply(1), None, None)),
        ("proxy_oip_v2", 200, ("iris", "c2", "hdr-id", _oip(3, None), _oip_reply(3), None, None)),
        ("proxy_oip_v2", 200, ("other", "c1", None, _oip(2, "b"), _oip_reply(2), None, None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, b'{"inputs": [', _oip_reply(1), None, None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, b'{"inputs": 1} trailing', _oip_reply(1), None, None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, b'{"instances": [[1, 2, 3, 4]], "id": "\\ud800"}', _oip_reply(1),
                               None, None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, b'{"nothing": 1}', _oip_reply(1), None, None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, _oip(1), b'{"outputs": [{"name": "other", "shape": [1], "data": [1]}]}',
                               None, None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, _oip(1), gzip.compress(_oip_reply(1)), "gzip", None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, _oip(1), b"not gzip", "gzip", None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, _oip(1), _oip_reply(1), "br", None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, None, _oip_reply(1), None, None)),
        ("proxy_oip_v2", 422, ("iris", "c1", None, _oip(1), b"{}", None, None)),
        ("proxy_oip_v2", 503, ("iris", "c3", None, _oip(1), b"down", None, None)),
        ("proxy_oip_v2", 200, ("nosuch", "c1", None, _oip(1), _oip_reply(1), None, None)),
        ("proxy_oip_v2", 200, ("iris", "c1", None, _oip(1, "q"), _oip_reply(1), None, None)),
        ("proxy_oip_v2", 200, ("iris", "c4", None, big, _oip_reply(1), None, None)),
        ("proxy_predict_0", 200, (None, "c5", None, json.dumps({"meta": {"id": "m1"}, "data": {"rows": [1, 2, 3, 4]}}).encode(),
                                  json.dumps({"result": {"scores": [0.1, 0.1, 0.8]}}).encode(), None, None)),
        ("proxy_predict_0", 200, (None, "c5", "h2", json.dumps({"data": {"rows": [5, 6, 7, 8]}}).encode(),
                                  json.dumps({"result": {"scores": [0.2, 0.1, 0.7]}}).encode(), None, None)),
        ("proxy_predict_0", 200, (None, "c5", None, json.dumps({"data": {}}).encode(), b'{"result": {}}', None, None)),
    ]
    rows += [("proxy_oip_v2", 200, ("other", "c6", None, _oip(1, f"o{i}"), _oip_reply(1), None, None)) for i in range(6)]
    # the segment (server.segment_header) on every other exchange
    return [(route, status, tap + (t + i, None, "eu" if i % 2 else None)) for i, (route, status, tap) in enumerate(rows)]


def _same_event(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (type(x) is type(y) and x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)):
                return False
        elif x != y or type(x) is not type(y):
            return False
    return True


def _state(sidecar: Any) -> tuple[dict[str, list[tuple[Any, ...]]], list[Any]]:
    """Every monitor's queued events, and every counter of the sidecar and its monitors."""
    sidecar.fold()
    queues = {name: list(mon.queue.items) for name, mon in sidecar.monitors.items()}
    stores = [sidecar.store] + [mon.store for mon in sidecar.monitors.values()]
    samples = sorted((name, sorted(labels.items()), value) for store in stores for name, labels, value in store.samples())
    return queues, samples


def _assert_same(one: Any, other: Any) -> None:
    (q1, s1), (q2, s2) = _state(one), _state(other)
    assert q1.keys() == q2.keys()
    for name in q1:
        assert len(q1[name]) == len(q2[name]), name
        for a, b in zip(q1[name], q2[name]):
            assert _same_event(a, b), (name, a, b)
    assert s1 == s2


def _frames(exchanges: list[tuple[str, int, tuple[Any, ...]]], size: int) -> list[bytes]:
    from monitor.server.dataplane_child import BATCH

    return [marshal.dumps((BATCH, [(route, status, 0.004, 0.006, tap) for route, status, tap in exchanges[i:i + size]],
                           [], [], 0)) for i in range(0, len(exchanges), size)]


def _one_by_one(plane: Any, exchanges: list[tuple[str, int, tuple[Any, ...]]]) -> None:
    """The exchanges as the in-process engine reports them: one call each (its metrics, then
    :meth:`Proxy.tap`, which enqueues the event at once)."""
    from monitor.server.leanproxy import SidecarSink

    proxy = plane.listeners[0].proxy
    sink = SidecarSink(proxy)
    for route, status, tap in exchanges:
        sink.record(proxy.taps[route], status, 0.004, 0.006, tap)


@pytest.mark.parametrize("size", [1, 3, 100])
def test_a_batch_gives_the_events_and_counters_of_its_exchanges_tapped_one_by_one(tmp_path, size):
    exchanges = _exchanges()
    one, one_plane = _sidecar(tmp_path / "a")
    batched, plane = _sidecar(tmp_path / "b")
    try:
        _one_by_one(one_plane, exchanges)
        for frame in _frames(exchanges, size):
            plane._frame(frame)
        _assert_same(one, batched)
        queued = sum(len(m.queue) for m in batched.monitors.values())
        assert queued >= 10, queued  # the stream was mostly read, not mostly refused
        other = batched.monitors["other"]
        assert sum(other.queue.counters()[0].values()) > 0  # the small queue shed some: shed alike
    finally:
        close_data_plane(one, one_plane)
        close_data_plane(batched, plane)


def test_a_batch_while_shutting_down_is_monitored_as_one_by_one(tmp_path):
    """Intake closed on SIGTERM does not refuse taps (the exchanges the proxy still answers are
    monitored until the queues close), batched or not alike."""
    one, one_plane = _sidecar(tmp_path / "a")
    batched, plane = _sidecar(tmp_path / "b")
    try:
        one.accepting = batched.accepting = False
        exchanges = _exchanges()[:3] + [_exchanges()[13]]
        _one_by_one(one_plane, exchanges)
        for frame in _frames(exchanges, 10):
            plane._frame(frame)
        _assert_same(one, batched)
        text = batched.metrics_text().decode()
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="proxy",
                      reason="shutting_down") is None
        assert len(batched.monitors["iris"].queue) == 3
    finally:
        close_data_plane(one, one_plane)
        close_data_plane(batched, plane)


def test_an_enqueue_that_fails_counts_the_batch_refused_and_the_next_batch_is_read(tmp_path, monkeypatch):
    sidecar, plane = _sidecar(tmp_path)
    try:
        calls = []
        real = sidecar.enqueue_to

        def failing(mon: Any, events: list[Any], endpoint: str, **kw: Any) -> int:
            calls.append(len(events))
            if len(calls) == 1:
                raise RuntimeError("boom")
            return real(mon, events, endpoint, **kw)

        monkeypatch.setattr(sidecar, "enqueue_to", failing)
        exchanges = _exchanges()[:2]
        plane._frame(_frames(exchanges, 2)[0])
        plane._frame(_frames(exchanges, 2)[0])
        iris = sidecar.monitors["iris"]
        assert calls == [2, 2]
        assert iris.store.value("monitor_intake_events_refused", ("proxy", "internal_error")) == 2
        assert len(iris.queue) == 2
        assert not plane.listeners[0].proxy._pending  # nothing left waiting for a batch
    finally:
        close_data_plane(sidecar, plane)


def test_batches_enqueue_once_per_model_and_sum_their_request_counters(tmp_path, monkeypatch):
    """What makes a batch cheaper: one enqueue per model (not per exchange) and one counter
    increment per label set (not per exchange)."""
    sidecar, plane = _sidecar(tmp_path)
    try:
        calls: list[tuple[str, int]] = []
        real = sidecar.enqueue_to
        monkeypatch.setattr(sidecar, "enqueue_to",
                            lambda mon, events, endpoint, **kw: calls.append((mon.model, len(events))) or real(mon, events, endpoint, **kw))
        incs: list[str] = []
        real_inc = sidecar.store.inc
        monkeypatch.setattr(sidecar.store, "inc", lambda name, *a, **kw: incs.append(name) or real_inc(name, *a, **kw))
        good = [e for e in _exchanges() if e[2][0] in ("iris", "other") and e[1] == 200][:3]
        plane._frame(_frames(good * 2, 6)[0])
        assert sorted(calls) == [("iris", 4), ("other", 2)]
        assert incs.count("monitor_proxy_requests") == 1
        assert sidecar.store.value("monitor_proxy_requests", ("oip_v2", "2xx")) == 6
    finally:
        close_data_plane(sidecar, plane)


def test_large_inputs_in_a_batch_are_enqueued_alone(tmp_path, monkeypatch):
    """An exchange whose inputs reserve bytes in the queue's budget is enqueued alone, as before:
    a byte budget that refuses it does not take its neighbours along."""
    sidecar, plane = _sidecar(tmp_path)
    try:
        calls: list[int] = []
        real = sidecar.enqueue_to
        monkeypatch.setattr(sidecar, "enqueue_to", lambda mon, events, endpoint, **kw: calls.append(len(events)) or real(mon, events, endpoint, **kw))
        exchanges = _exchanges()
        big = [e for e in exchanges if e[2][1] == "c4"]
        small = [e for e in exchanges if e[2][0] == "iris" and e[2][3] is not None and e[2][3].startswith(b'{"inputs"') and e[1] == 200][:2]
        plane._frame(_frames(small + big + small, 5)[0])
        assert calls == [2, 1, 2]
        assert len(sidecar.monitors["iris"].queue) == 5
    finally:
        close_data_plane(sidecar, plane)


# -- batches held and handled together ----------------------------------------------------------------
def test_held_batches_are_handled_on_a_sync_a_bound_and_the_channels_close(tmp_path, monkeypatch):
    """Over a real channel: batches are held (the timer is made too long to fire here), then
    handled before the child's next other message (the answer to a sync), at once beyond
    ``HOLD_MAX_TAPS`` exchanges, and when the channel closes; each exchange exactly once."""
    import asyncio
    import socket

    from monitor.server import dataplane
    from monitor.server.channel import FrameReader, FrameWriter
    from monitor.server.dataplane_child import SYNCED

    monkeypatch.setattr(dataplane, "HOLD_S", 3600.0)
    monkeypatch.setattr(dataplane, "HOLD_MAX_TAPS", 5)
    sidecar, plane = _sidecar(tmp_path)
    iris = sidecar.monitors["iris"]
    good = [e for e in _exchanges() if e[2][0] == "iris" and e[1] == 200][:2]  # two read, one per frame

    async def until(predicate: Any) -> None:
        for _ in range(1000):
            if predicate():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the frames did not arrive")

    async def run() -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        plane.reader = FrameReader(ours, loop, plane._frame, plane._closed)
        child = FrameWriter(theirs, loop)
        for frame in _frames(good, 1):
            child.send(frame)
        await until(lambda: len(plane._held) == 2)
        assert len(iris.queue) == 0 and plane.taps_received == 0
        child.send(marshal.dumps((SYNCED,)))
        await until(lambda: not plane._held)
        assert len(iris.queue) == 2 and plane.taps_received == 2
        child.send(_frames(good * 3, 6)[0])  # 6 exchanges: beyond the bound, handled on arrival
        await until(lambda: len(iris.queue) == 8)
        assert not plane._held
        child.send(_frames(good, 2)[0])
        await until(lambda: len(plane._held) == 1)
        plane.stopping = True  # (no child to start again)
        child.close()
        await until(lambda: plane.reader.closed)
        assert len(iris.queue) == 10 and plane.taps_received == 10 and not plane._held

    try:
        asyncio.run(run())
        assert iris.store.value("monitor_intake_events_accepted", ("proxy",)) == 10
    finally:
        close_data_plane(sidecar, plane)
