"""CloudEvents of generative and unread-output models (``output.kind: text`` / ``none``), over real HTTP.

KServe's logger (a request and a response sharing ``ce-id``) and Seldon Core's (``ce-requestid``)
for a text generator: the response's answers are read as the text answer of each prompt (the
feature ``output``), KServe v1 ``predictions`` of strings, an OIP v2 BYTES tensor, Seldon
``data.ndarray`` of strings and Seldon's ``strData`` (one prompt, one answer). For kind none the
request alone records the call's inputs; a response whose request never comes (a logger sending
responses only) is counted unmatched and said once with the fix.
"""

from __future__ import annotations

import json
import logging
import uuid

from tests.sidecar_support import http, quiet_factory, sample, start_sidecar, total, wait_until
from tests.test_cloudevents import kserve_headers, seldon_headers
from tests.test_output_kind_text_sidecar import GEN, _answer_lengths, _monitored, _spy

NONE = {"model": "gen", "features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}}
SELDON_REQUEST, SELDON_RESPONSE = "io.seldon.serving.inference.request", "io.seldon.serving.inference.response"


def _post(sc, headers: dict[str, str], body: object) -> str:
    r = http("POST", sc.url + "/v1/cloudevents", json.dumps(body), headers)
    assert r.status == 202, r.body
    return r.json()["status"]


def test_kserve_pairs_of_a_text_generator_give_the_answers_as_its_output_feature(tmp_path) -> None:
    sc = start_sidecar({"models": [GEN]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        _spy(sc)
        rid = str(uuid.uuid4())
        assert _post(sc, kserve_headers(rid, "request", isvc="gen"), {"instances": ["Write a haiku.", "Say hi."]}) == "pending"
        assert _post(sc, kserve_headers(rid, "response", isvc="gen"), {"predictions": ["Rain on the roof.", "Hi!"]}) == "accepted"
        rid = str(uuid.uuid4())  # OIP v2, the response first (the halves come in either order)
        tensor = {"name": "text_output", "shape": [1], "datatype": "BYTES", "data": ["An answer of some length."]}
        assert _post(sc, kserve_headers(rid, "response", isvc="gen"), {"outputs": [tensor]}) == "pending"
        request = {"inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["Explain drift."]}]}
        assert _post(sc, kserve_headers(rid, "request", isvc="gen"), request) == "accepted"
        assert _monitored(sc) == (3.0, {})
        assert _answer_lengths(sc) == [len("Hi!"), len("Rain on the roof."), len("An answer of some length.")]
        assert total(sc.metrics(), "monitor_cloudevents_unmatched_total") == 0
    finally:
        sc.close()


def test_seldon_text_answers_are_read_from_ndarray_and_str_data(tmp_path) -> None:
    """Seldon's strData (one prompt and one answer: a text model's usual message) was refused as
    missing_inputs and missing_outputs, the fix naming only data."""
    sc = start_sidecar({"models": [GEN]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        _spy(sc)
        puid = str(uuid.uuid4())
        assert _post(sc, seldon_headers(puid, SELDON_REQUEST, "gen"),
                     {"data": {"names": ["prompt"], "ndarray": ["Name a river.", "Name a sea."]}}) == "pending"
        assert _post(sc, seldon_headers(puid, SELDON_RESPONSE, "gen"),
                     {"data": {"names": ["t:0"], "ndarray": ["Nile.", "The Baltic."]}, "meta": {"puid": puid}}) == "accepted"
        puid = str(uuid.uuid4())
        assert _post(sc, seldon_headers(puid, SELDON_REQUEST, "gen"), {"strData": "Translate 'cat' to French."}) == "pending"
        assert _post(sc, seldon_headers(puid, SELDON_RESPONSE, "gen"), {"strData": "Chat.", "meta": {"puid": puid}}) == "accepted"
        assert _monitored(sc) == (3.0, {})
        assert _answer_lengths(sc) == [len("Chat."), len("Nile."), len("The Baltic.")]
        r = http("POST", sc.url + "/v1/cloudevents", json.dumps({"strData": ["not", "a", "text"]}),
                 seldon_headers(str(uuid.uuid4()), SELDON_REQUEST, "gen"))
        assert r.status == 400 and r.json()["field"] == "strData" and "data.ndarray" in r.json()["error"], r.body
        assert sample(sc.metrics(), "monitor_intake_events_refused_total", model="gen", endpoint="cloudevents",
                      reason="bad_data") == 1
    finally:
        sc.close()


def test_kind_none_records_the_request_alone_and_counts_responses_whose_request_never_came(tmp_path, caplog) -> None:
    """A logger sending responses only (KServe logger.mode: response) for a model of kind none
    was answered 202 and recorded nothing, with no count and no log line."""
    sc = start_sidecar({"models": [NONE], "server": {"cloudevents": {"pending_ttl": "200ms"}}}, tmp_path,
                       factory=quiet_factory(start_worker=False))
    try:
        # logger.mode: request: every request is the call, at once; nothing waits, nothing is unmatched
        for i in range(2):
            assert _post(sc, kserve_headers(f"req-{i}", "request", isvc="gen"), {"instances": [f"Prompt {i}."]}) == "accepted"
        # mode: all, either order: one call each, the response unread and nothing left waiting
        assert _post(sc, kserve_headers("pair-a", "request", isvc="gen"), {"instances": ["A.", "B."]}) == "accepted"
        assert _post(sc, kserve_headers("pair-a", "response", isvc="gen"), {"predictions": [{"tokens": [1, 2]}]}) == "accepted"
        assert _post(sc, kserve_headers("pair-b", "response", isvc="gen"), {"anything": "unread"}) == "pending"
        assert _post(sc, kserve_headers("pair-b", "request", isvc="gen"), {"instances": ["C."]}) == "accepted"
        # mode: response: no inputs to record; counted once its request is overdue, and said with the fix
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            for i in range(3):
                assert _post(sc, kserve_headers(f"resp-{i}", "response", isvc="gen"), {"predictions": ["x"]}) == "pending"
            assert wait_until(lambda: total(sc.metrics(), "monitor_cloudevents_unmatched_total", model="gen",
                                            part="response", reason="timeout") == 3)
        said = [r.getMessage() for r in caplog.records if "without its request" in r.getMessage()]
        assert len(said) == 1 and "logger.mode: all or request" in said[0], said
        text = sc.metrics()
        assert total(text, "monitor_cloudevents_unmatched_total", part="request") == 0
        assert sample(text, "monitor_cloudevents_pending", model="_sidecar") == 0
        assert sample(text, "monitor_intake_events_accepted_total", model="gen", endpoint="cloudevents") == 4
        sc.flush()
        assert sample(sc.metrics(), "monitor_predictions_total", model="gen") == 5.0
    finally:
        sc.close()
