"""A batch refused 429 because one model's queue is full is counted under each event's own model.

The final review: one NDJSON batch for two models, refused whole because iris's queue was full,
was counted as 100 ``queue_full`` under iris, and nothing under fraud, whose 98 events were
lost to that client's retry policy unseen by MonitorIntakeOverloaded and by the README's "counted
under the model they were for". Now each model counts its own share, 2 and 98, as ``queue_full``:
back-pressure refused them all, which MonitorIntakeOverloaded watches (``batch_refused``, the
reason of the valid events of a batch refused for a bad event, would page MonitorIntakeRefused
for a queue that is not fraud's fault). Real HTTP.
"""

from __future__ import annotations

from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def test_a_mixed_batch_refused_for_one_full_queue_counts_each_models_share(tmp_path):
    cfg = {"models": [{**IRIS, "queue": {"capacity": 5}}, {**IRIS, "model": "fraud", "queue": {"capacity": 5000}}]}
    s = start_sidecar(cfg, tmp_path, factory=quiet_factory(start_worker=False))
    try:
        def event(model: str) -> dict:
            return {"model": model, "inputs": [1.0, 2.0, 3.0, 4.0], "outputs": [0.2, 0.5, 0.3]}

        assert http("POST", s.url + "/v1/events", [event("iris")] * 4).status == 202
        r = http("POST", s.url + "/v1/events", [event("iris")] * 2 + [event("fraud")] * 98)
        assert r.status == 429 and r.json()["reason"] == "queue_full"
        text = s.metrics()
        assert sample(text, "monitor_intake_events_refused_total", model="iris", endpoint="events", reason="queue_full") == 2
        assert sample(text, "monitor_intake_events_refused_total", model="fraud", endpoint="events",
                      reason="queue_full") == 98
        assert sample(text, "monitor_intake_events_refused_total", model="fraud", endpoint="events",
                      reason="batch_refused") is None
    finally:
        s.close()
