"""Audit (session 8) of issue 7's "fuzzed with malformed input without a crash or a lost accepted
event" for the two intake paths whose fuzz tests checked only the first half.

tests/test_proxy.py fuzzes bodies through the proxy and tests/test_forwarding.py fuzzes forwarding
datagrams, each asserting that nothing raised; neither counts. Here, after fuzzing (hypothesis)
over a real upstream and a real Unix datagram socket, every event the sidecar accepted from that
path (``monitor_intake_events_accepted_total{endpoint}``) is either processed (a call, an
internal error, a feedback label) or counted as shed, and some were accepted and some refused, so
both branches ran. The proxy runs as ``monitor serve`` runs it: the lean data path in its own
process.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sidecar_support import http, quiet_factory, start_sidecar, total, wait_until
from tests.test_proxy import IRIS, start_proxying, upstream  # noqa: F401 - upstream is a fixture


def _accounted(text: str, model: str, endpoint: str) -> tuple[float, float, float]:
    """(accepted from ``endpoint``, processed, shed) of one model, as the fuzz test of the intake counts them."""
    accepted = total(text, "monitor_intake_events_accepted_total", model=model, endpoint=endpoint)
    processed = (total(text, "monitor_calls_total", model=model)
                 + total(text, "monitor_rows_rejected_total", model=model, reason="internal_error")
                 + total(text, "monitor_feedback_labels_total", model=model))
    shed = total(text, "monitor_events_dropped_total", model=model) + total(text, "monitor_events_sampled_out_total", model=model)
    return accepted, processed, shed


numbers = st.one_of(st.floats(allow_nan=False, width=32), st.integers(-3, 3), st.text(max_size=2), st.none(), st.booleans())
tensor = st.fixed_dictionaries(
    {"name": st.sampled_from(["probs", "x", "label", ""]), "shape": st.lists(st.integers(-1, 5), max_size=3),
     "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BOOL", "BYTES", "FP16", "nope"]),
     "data": st.one_of(st.lists(numbers, max_size=12), st.lists(st.lists(numbers, max_size=4), max_size=3), numbers)},
    optional={"parameters": st.dictionaries(st.text(max_size=4), numbers, max_size=2)})
VALID = {"id": "ok", "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [5.0, 3.0, 1.5, 0.2] * 2}],
         "outputs": [{"name": "probs", "shape": [2, 3], "datatype": "FP32", "data": [0.7, 0.2, 0.1] * 2}]}
oip_bodies = st.one_of(
    st.just(json.dumps(VALID).encode()),
    st.builds(lambda d: json.dumps(d).encode(), st.fixed_dictionaries(
        {"inputs": st.lists(tensor, max_size=2), "outputs": st.lists(tensor, max_size=2)},
        optional={"id": st.one_of(st.text(max_size=4), st.integers()), "parameters": st.dictionaries(st.text(max_size=3), numbers)})),
    st.binary(max_size=120),
)


@pytest.fixture(scope="module")
def proxy_side(tmp_path_factory, upstream):  # noqa: F811 - the fixture imported above
    from monitor.server.dataplane import process_available
    from monitor.server.leanproxy import lean_available

    if not (lean_available() and process_available()):
        pytest.skip("the default data path (lean engine in its own process) is not available here")
    cfg = {"models": [{**IRIS, "model": "mirror"}], "server": {"proxy": {"oip_output": "probs"}}}
    s = start_proxying(cfg, tmp_path_factory.mktemp("audit8-proxy"), "process", proxy_upstream=upstream.url)
    yield s
    s.close()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=oip_bodies)
def test_fuzzed_oip_exchanges_are_relayed_and_tapped(proxy_side, body: bytes) -> None:
    r = http("POST", proxy_side.url + "/v2/models/mirror/infer", body, {"Content-Type": "application/json"})
    assert r.status == 200 and r.body == body  # the mirror upstream's answer, unchanged


def test_every_tap_accepted_during_the_fuzzing_is_processed_or_shed(proxy_side) -> None:
    """Runs after the property above (same module fixture)."""
    http("POST", proxy_side.url + "/v2/models/mirror/infer", json.dumps(VALID), {"Content-Type": "application/json"})
    proxy_side.flush()
    text = proxy_side.metrics()
    accepted, processed, shed = _accounted(text, "mirror", "proxy")
    assert accepted > 0 and total(text, "monitor_intake_events_refused_total", endpoint="proxy") > 0
    assert accepted == processed + shed
    assert total(text, "monitor_intake_events_refused_total", reason="internal_error") == 0
    assert total(text, "monitor_intake_events_refused_total", reason="process_lost") == 0
    assert http("GET", proxy_side.url + "/healthz").status == 200


values = st.recursive(st.one_of(st.integers(-5, 5), st.floats(), st.text(max_size=4), st.none(), st.booleans()),
                      lambda i: st.lists(i, max_size=4) | st.dictionaries(st.text(max_size=6), i, max_size=3), max_leaves=10)
events = st.one_of(
    st.just({"inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3], "request_id": "v"}),
    st.fixed_dictionaries({"inputs": st.one_of(st.lists(st.floats(width=32), min_size=4, max_size=4), values),
                           "outputs": st.one_of(st.lists(st.floats(0, 1), min_size=3, max_size=3), values)},
                          optional={"type": st.sampled_from(["prediction", "error", "feedback", "x"]), "model": st.sampled_from(["iris", "nope"]),
                                    "request_id": values, "label": values, "timestamp": values}),
    values,
)
datagrams = st.one_of(
    # one sender's random numbers (mostly older than its newest: discarded, and counted) or a sender of its own
    st.builds(lambda evs, seq, sender: json.dumps({"v": 1, "sender": sender, "seq": seq, "events": evs}).encode(),
              st.lists(events, max_size=5), st.integers(1, 10**6), st.one_of(st.just("fuzz"), st.uuids().map(str))),
    st.builds(lambda v: json.dumps(v).encode(), values),
    st.binary(max_size=150),
)


def _is_marker(inputs: object) -> bool:
    try:
        return np.asarray(inputs, dtype=object).tolist() == [9, 9, 9, 9]
    except ValueError:  # a fuzzed ragged row
        return False


def test_fuzzed_forwarding_datagrams_lose_no_accepted_event(tmp_path) -> None:
    sock = str(tmp_path / "f.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path, factory=quiet_factory(start_worker=False))
    client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sent: list[int] = []

    @settings(max_examples=200, deadline=None)
    @given(payload=datagrams)
    def send(payload: bytes) -> None:
        client.sendto(payload, sock)
        sent.append(1)

    try:
        send()
        # the receiver reads asynchronously: wait until a marker sent last has been taken in
        marker = {"v": 1, "sender": "marker", "seq": 1, "events": [{"inputs": [9, 9, 9, 9], "outputs": [1, 0, 0]}]}
        client.sendto(json.dumps(marker).encode(), sock)
        assert wait_until(lambda: any(_is_marker(e[2]) for e in list(s.monitor().queue.items)), 20)
        s.flush()
        text = s.metrics()
        accepted, processed, shed = _accounted(text, "iris", "forward")
        assert accepted > 1 and total(text, "monitor_intake_events_refused_total", endpoint="forward") > 0
        assert accepted == processed + shed
        assert total(text, "monitor_intake_events_refused_total", endpoint="forward", reason="internal_error") == 0
        assert http("GET", s.url + "/healthz").status == 200
    finally:
        client.close()
        s.close()
