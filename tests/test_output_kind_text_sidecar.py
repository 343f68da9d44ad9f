"""A generative model's answers (``output.kind: text``) reach the monitor through the sidecar (real HTTP).

``/v1/events`` takes the answers as ``outputs``: a list of strings, one per input row (one string
for a one-row event); the proxy reads them from an OIP v2 BYTES output tensor and from KServe v1
``predictions`` of strings. Each path's rows are described as the text feature ``output``; a
wrong count is refused as rows_mismatch and counted.
"""

from __future__ import annotations

import json

from tests.sidecar_support import AppServer, http, quiet_factory, sample, start_sidecar, total, wait_until
from tests.test_output_kind_none_sidecar import model_server
from tests.test_proxy import start_proxying

GEN = {"model": "gen", "features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "text"}}


def _monitored(sc, model: str = "gen") -> tuple[float, dict[str, float]]:
    """(predictions, rows refused by reason) of ``model`` after a flush."""
    sc.flush()
    text = sc.metrics()
    refused = {}
    for line in text.splitlines():
        if line.startswith("monitor_rows_rejected_total{") and f'model="{model}"' in line:
            refused[line.split('reason="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return sample(text, "monitor_predictions_total", model=model) or 0.0, refused


def _answer_lengths(sc) -> list[float]:
    """The ``output.length`` of every row the detectors saw."""
    return sorted(v for b in sc.seen for v in b.numeric[:, list(b.numeric_names).index("output.length")].tolist())


def _spy(sc) -> None:
    """Keep each batch the model's detectors see, as ``sc.seen``."""
    sc.seen = []
    mon = sc.monitor("gen")
    mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: sc.seen.append(b),
                                                   "__getattr__": lambda self, n: (lambda *a, **k: None)})())


def test_events_carry_the_answers_as_outputs(tmp_path) -> None:
    sc = start_sidecar({"models": [GEN]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        _spy(sc)
        events = [
            {"model": "gen", "inputs": ["Write a haiku about rain.", "Say nothing."], "outputs": ["Rain on the roof.", ""]},
            {"model": "gen", "inputs": "Translate 'cat' to French.", "outputs": "Chat."},
            {"model": "gen", "inputs": ["Name three rivers.", "And two seas."], "outputs": ["Nile, Amazon, Yangtze"]},
        ]
        r = http("POST", sc.url + "/v1/events", "\n".join(map(json.dumps, events)), {"Content-Type": "application/x-ndjson"})
        assert r.status == 202, r.body
        assert _monitored(sc) == (3.0, {"rows_mismatch": 2.0})
        assert _answer_lengths(sc) == [0.0, len("Chat."), len("Rain on the roof.")]
        r = http("POST", sc.url + "/v1/events", {"model": "gen", "inputs": ["What is 2+2?"]})  # no answer: refused
        assert r.status == 400 and r.json()["reason"] == "missing_outputs", r.body
        assert total(sc.metrics(), "monitor_intake_events_refused_total", model="gen") == 1
    finally:
        sc.close()


def test_the_proxy_reads_the_answers_of_oip_v2_and_kserve_v1(tmp_path) -> None:
    upstream = AppServer(model_server(lambda rows: [f"Answer {i}" for i, _ in enumerate(rows)]))
    try:
        sc = start_proxying({"models": [GEN]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
        try:
            _spy(sc)
            prompts = ["Tell me a joke.", "Explain drift.", "Write a limerick."]
            request = {"id": "q1", "inputs": [{"name": "prompt", "shape": [3], "datatype": "BYTES", "data": prompts}]}
            r = http("POST", sc.url + "/v2/models/gen/infer", request)
            assert r.status == 200 and r.json()["outputs"][0]["data"][0] == "About Tell me a joke."
            r = http("POST", sc.url + "/v1/models/gen:predict", {"instances": ["Hi.", "Bye."]})
            assert r.status == 200 and r.json()["predictions"] == ["Answer 0", "Answer 1"]
            assert wait_until(lambda: len(sc.monitor("gen").queue) == 2)
            assert _monitored(sc) == (5.0, {})
            assert _answer_lengths(sc) == sorted([len(f"About {p}") for p in prompts] + [len("Answer 0")] * 2)
        finally:
            sc.close()
    finally:
        upstream.close()


def test_answers_that_read_as_numbers_stay_text(tmp_path) -> None:
    """A request of one-row events whose answers are lists of number-like strings (a rating, a
    year) was stacked as a float array, and every row refused as non_numeric_output."""
    sc = start_sidecar({"models": [GEN]}, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        _spy(sc)
        events = [{"model": "gen", "inputs": [f"Rate review {i} from 1 to 5."], "outputs": [str(i % 5 + 1)]} for i in range(3)]
        r = http("POST", sc.url + "/v1/events", "\n".join(map(json.dumps, events)), {"Content-Type": "application/x-ndjson"})
        assert r.status == 202, r.body
        assert _monitored(sc) == (3.0, {})
        assert _answer_lengths(sc) == [1.0, 1.0, 1.0]
    finally:
        sc.close()


def test_a_tf_serving_answer_of_named_outputs_gives_the_generated_text() -> None:
    """TF Serving rows of named outputs ({"text_output": ..., "tokens": ...}) for a generator were
    refused as missing_outputs (no name was known for kind text), and the fix spoke of scores."""
    from monitor.server.payloads import PayloadError, decode_outputs

    rows = [{"text_output": "Hello.", "tokens": 2}, {"text_output": "Bye.", "tokens": 1}]
    assert decode_outputs({"predictions": rows}, kind="text") == ["Hello.", "Bye."]
    try:
        decode_outputs({"predictions": [{"a": "x", "b": 1}]}, kind="text")
    except PayloadError as err:
        assert "oip_output to the name of the output holding the generated text" in str(err), str(err)
    else:
        raise AssertionError("two outputs named as no kind text reads were taken")
