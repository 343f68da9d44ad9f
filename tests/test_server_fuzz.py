"""Fuzzing the sidecar's write endpoints with malformed input (hypothesis) over real HTTP.

Properties: the server never answers 5xx to bad input (only 202/400/401/404/413/429), stays up,
and nothing accepted is lost: after draining, every event the sidecar answered 2xx for is either
processed (a call, a feedback label, a rejected conversion) or counted as shed. Timestamps are
drawn up to 2023: an accepted prediction stamped more than 10 minutes ahead of the clock (2e9 was
one of hypothesis's favourite draws) is refused by the worker as future_timestamp, counted in
rows, not calls, and the accounting below, in events, failed on it now and then.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sidecar_support import http, quiet_factory, start_sidecar, total

CONFIG = {"model": "iris", "features": ["a", "b", "c"], "output": {"kind": "probabilities", "classes": ["x", "y"]},
          "queue": {"capacity": 200}, "server": {"max_body_bytes": 20_000, "max_batch_events": 50}}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)
rows = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=32), st.integers(-5, 5), st.text(max_size=3), st.none()),
                min_size=0, max_size=5)
predictions = st.fixed_dictionaries(
    {"inputs": st.one_of(rows, st.lists(rows, max_size=3), json_values),
     "outputs": st.one_of(st.lists(st.floats(0, 1), max_size=3), st.lists(st.lists(st.floats(0, 1), max_size=3), max_size=3), json_values)},
    optional={"request_id": st.one_of(st.text(max_size=5), st.integers()), "client": st.text(max_size=5),
              "latency_s": st.one_of(st.floats(0, 10), st.floats(-1, 0)), "timestamp": st.one_of(st.floats(0, 1.7e9), st.text(max_size=5)),
              "type": st.sampled_from(["prediction", "bogus"]), "extra": json_values, "model": st.sampled_from(["iris", "nope"])},
)
errors = st.fixed_dictionaries({"type": st.just("error")}, optional={"exception": st.one_of(st.text(max_size=10), st.integers()),
                                                                     "latency_s": st.floats(0, 5)})
feedback = st.fixed_dictionaries({"type": st.just("feedback"), "request_id": st.text(max_size=4), "label": st.sampled_from(["x", "y", None, 3])})
events = st.one_of(predictions, errors, feedback, json_values)


def encode(kind: str, evs: list, garbage: bytes) -> tuple[bytes, str]:
    if kind == "array":
        return json.dumps(evs).encode(), "application/json"
    if kind == "ndjson":
        return ("\n".join(json.dumps(e) for e in evs)).encode(), "application/x-ndjson"
    if kind == "single":
        return json.dumps(evs[0] if evs else {}).encode(), "application/json"
    if kind == "truncated":
        body = json.dumps(evs).encode()
        return body[: max(1, len(body) // 2)], "application/json"
    return garbage, "application/json"


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    s = start_sidecar(CONFIG, tmp_path_factory.mktemp("fuzz"), factory=quiet_factory(start_worker=False))
    yield s
    s.close()


ACCEPTED: list[int] = []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["array", "ndjson", "single", "truncated", "garbage"]), evs=st.lists(events, max_size=8),
       garbage=st.binary(max_size=200), endpoint=st.sampled_from(["/v1/events", "/v1/feedback", "/v1/cloudevents"]),
       drain=st.booleans())
def test_malformed_input_never_crashes_and_nothing_accepted_is_lost(sidecar, kind, evs, garbage, endpoint, drain):
    body, ctype = encode(kind, evs, garbage)
    headers = {"Content-Type": ctype}
    if endpoint == "/v1/cloudevents":
        headers.update({"ce-specversion": "1.0", "ce-id": "x", "ce-source": "fuzz", "ce-type": "org.kubeflow.serving.inference.request"})
    r = http("POST", sidecar.url + endpoint, body, headers)
    assert r.status in (202, 400, 404, 413, 429), (r.status, r.body[:300])
    reply = r.json()
    if r.status == 202:
        ACCEPTED.append(int(reply.get("accepted", 0)))
    else:
        assert isinstance(reply["field"], str) and reply["reason"] and reply["error"]  # a key may be named ""
    if drain:
        sidecar.flush()


def test_accounting_after_fuzzing(sidecar):
    """Runs after the property above (same module fixture): accepted == processed + shed. When the
    property ran elsewhere (pytest-xdist's ``--dist load`` may send it to another worker, whose
    module fixture is another sidecar), it is run here first, so that the sums read its traffic."""
    if not ACCEPTED:
        test_malformed_input_never_crashes_and_nothing_accepted_is_lost(sidecar=sidecar)
    assert ACCEPTED, "the fuzz sent nothing"
    sidecar.flush()
    text = sidecar.metrics()
    accepted = total(text, "monitor_intake_events_accepted_total", model="iris")
    cloudevents = total(text, "monitor_intake_events_accepted_total", model="iris", endpoint="cloudevents")
    assert accepted == sum(ACCEPTED) + cloudevents, (accepted, sum(ACCEPTED), cloudevents, len(ACCEPTED))
    parts = {name: total(text, name, model="iris") for name in (
        "monitor_calls_total", "monitor_feedback_labels_total", "monitor_events_dropped_total",
        "monitor_events_sampled_out_total", "monitor_labels_early")}  # labels held for their prediction
    parts["internal_error"] = total(text, "monitor_rows_rejected_total", model="iris", reason="internal_error")
    assert accepted == sum(parts.values()), (accepted, parts, [ln for ln in text.splitlines() if "accepted" in ln])
    assert accepted > 0 and total(text, "monitor_intake_events_refused_total") > 0  # both paths were exercised
    assert http("GET", sidecar.url + "/healthz").status == 200


fast_candidates = st.dictionaries(
    st.sampled_from(["model", "timestamp", "inputs", "outputs", "client", "request_id", "segment", "latency_s", "embedding", "type", "x"]),
    st.one_of(scalars, st.floats(), st.lists(st.floats(), max_size=3), st.just(True), st.just(float("nan")), st.just(-1)),
    max_size=9)


@settings(max_examples=500, deadline=None)
@given(obj=st.one_of(fast_candidates, predictions, json_values))
def test_fast_parser_agrees_with_the_general_parser(obj):
    """Whatever the intake's fast path accepts, parse_event accepts identically."""
    from monitor.events import EventFormatError, parse_event
    from monitor.server.intake import parse_fast

    now = 1_700_000_000.0
    assert parse_fast({"inputs": [1.0], "outputs": [0.5], "client": 7, "timestamp": 3}, now) == (
        None, (0, 3.0, [1.0], [0.5], None, "7", None, None, None))  # the fast path is really taken
    fast = parse_fast(obj, now)
    if fast is None:
        return
    try:
        general = parse_event(obj, now)
    except EventFormatError as err:  # pragma: no cover - this is the failure the test looks for
        raise AssertionError(f"fast path accepted what parse_event refuses: {err}") from None
    assert (general.model, general.event) == fast


def test_fast_parser_leaves_boolean_and_float_request_ids_to_the_general_parser() -> None:
    """A boolean request id is refused by parse_event, and 17.0 becomes 17: the fast path must
    not accept either unchanged (hypothesis found ``request_id: False`` passing it)."""
    from monitor.server.intake import parse_fast

    now = 1_700_000_000.0
    for rid in (False, True, 17.0, [1, False], [2.0]):
        assert parse_fast({"inputs": [1.0], "outputs": [0.5], "request_id": rid}, now) is None, rid
    assert parse_fast({"inputs": [1.0], "outputs": [0.5], "request_id": ["a", 3, None]}, now)[1][6] == ["a", 3, None]
    assert parse_fast({"inputs": [1.0], "outputs": [0.5], "request_id": 5}, now)[1][6] == 5


def test_batch_parser_leaves_boolean_and_float_request_ids_to_the_event_parser() -> None:
    """The batch path reads request ids a column at a time: a boolean or float among them sends
    the batch to the event-by-event path, as parse_fast does for one event."""
    from monitor.server.intake import parse_fast_batch

    now = 1_700_000_000.0
    for rid in (False, 17.0, [1, True]):
        batch = [{"inputs": [1.0], "outputs": [0.5], "request_id": v} for v in (None, "a", rid)]
        assert parse_fast_batch(batch, now) is None, rid
    batch = [{"inputs": [1.0], "outputs": [0.5], "request_id": v} for v in (None, "a", 3, [4, "b", None])]
    assert [e[6] for e in parse_fast_batch(batch, now)[1]] == [None, "a", 3, [4, "b", None]]
