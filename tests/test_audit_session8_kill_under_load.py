"""Audit (session 8) of issue 7's restart target as a test: ``kill -9`` *during* load.

tests/test_server_lifecycle.py kills ``monitor serve`` after its load has stopped; the restart
under load is measured by benchmarks/bench_restart.py only. Here a thread keeps posting NDJSON
batches to a real ``monitor serve`` process while it is killed with SIGKILL, then a second process
starts from the same config. Causal bounds (no timing): every prediction answered 202 before a
checkpoint that completed before the kill is restored (its label joins after the restart), the
counters start at zero (a crash, not a clean stop: see ``Monitor.state_dict``), and the firing alert is neither re-sent nor
restarted (one notification, the same ``activeAt``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import pytest

from tests.sidecar_support import http, sample, wait_until
from tests.test_server_lifecycle import ServeProcess, webhook, write_config  # noqa: F401 - webhook is a fixture


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_while_events_stream_in_then_restart(tmp_path, webhook):
    config = write_config(tmp_path, webhook.url)
    first = ServeProcess(config)
    assert wait_until(lambda: len(webhook.alerts("AlwaysOn")) == 1, 20)
    active_at = http("GET", first.url + "/api/v1/alerts").json()["data"]["alerts"][0]["activeAt"]

    accepted: list[tuple[float, list[str]]] = []  # (time the 202 arrived, request ids)
    stop = threading.Event()

    def load() -> None:
        batch = 0
        while not stop.is_set():
            ids = [f"b{batch}-{i}" for i in range(100)]
            body = "\n".join(json.dumps({"inputs": [i % 5, 1.0, 2.0, 3.0], "outputs": [0.2, 0.5, 0.3], "request_id": rid})
                             for i, rid in enumerate(ids))
            try:
                r = http("POST", first.url + "/v1/events", body, {"Content-Type": "application/x-ndjson"}, timeout=5)
            except OSError:  # the process was killed mid-request: not answered, not accepted
                return
            if r.status == 202:
                accepted.append((time.time(), ids))
            batch += 1

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: len(accepted) >= 20, 30)
        mark = time.time()
        # a checkpoint written after the mark, while the load goes on; then kill without shutdown
        assert wait_until(lambda: (sample(first.metrics(), "monitor_checkpoint_last_success_timestamp_seconds", model="iris") or 0)
                          > mark + 0.1, 20)
        n_more = len(accepted)
        assert wait_until(lambda: len(accepted) > n_more, 10)  # still loading at the kill
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(30)
    finally:
        stop.set()
        thread.join(30)
        first.log.close()
    before_mark = [rid for t, ids in accepted if t <= mark for rid in ids]
    assert len(before_mark) >= 2000

    second = ServeProcess(config)
    try:
        text = second.metrics()
        assert sample(text, "monitor_checkpoint_restored", model="iris") == 1
        # a periodic checkpoint's counters are behind what was scraped before the kill: restored,
        # they would read as a counter reset to a non-zero value, which increase() counts again;
        # after a crash they start at zero (the state itself is checked by the label joins below)
        assert (sample(text, "monitor_intake_events_accepted_total", model="iris", endpoint="events") or 0) == 0
        alerts = {a["labels"]["alertname"]: a for a in http("GET", second.url + "/api/v1/alerts").json()["data"]["alerts"]}
        assert alerts["AlwaysOn"]["state"] == "firing" and alerts["AlwaysOn"]["activeAt"] == active_at
        evals = lambda: sample(second.metrics(), "monitor_rule_evaluations_total", model="iris") or 0  # noqa: E731
        start = evals()
        wait_until(lambda: evals() >= start + 3, 20)
        firing = [a for a in webhook.alerts("AlwaysOn") if a["status"] == "firing"]
        assert len({a["startsAt"] for a in firing}) == 1 and len(firing) == 1
        # every prediction accepted before the checkpoint that preceded the kill is in the state
        r = http("POST", second.url + "/v1/feedback", {"request_ids": before_mark, "labels": ["setosa"] * len(before_mark)})
        assert r.status == 202
        assert wait_until(lambda: (sample(second.metrics(), "monitor_feedback_labels_total", model="iris", outcome="joined") or 0)
                          == len(before_mark), 30)
    finally:
        assert second.stop(signal.SIGTERM) == 0
