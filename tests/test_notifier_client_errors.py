"""A receiver that answers 4xx is told once and its answer is logged; 5xx and network errors are
retried as before.

Alertmanager answers 400 to a batch holding an alert it cannot take (``invalid label set: invalid
name "cluster-name"``) after storing the others: the notifier retried the same batch four more
times (the answer cannot change, and the valid alerts were posted five times), and its log said
only ``bad response status 400 Bad Request``, not what Alertmanager said was wrong. Prometheus's
notifier does not retry either.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from monitor.rules.notifier import AlertmanagerSink, Notifier, NotifierStats, OutgoingAlert

REFUSAL = 'invalid label set: invalid name "cluster-name"'


class Scripted:
    """Answers each POST with the next (status, body) of a script, then 200."""

    def __init__(self, script: list[tuple[int, str]]) -> None:
        self.script = list(script)
        self.posts = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                me.posts += 1
                status, body = me.script.pop(0) if me.script else (200, "")
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def refusing() -> Iterator[Scripted]:
    s = Scripted([(400, REFUSAL + "\n")] * 5)
    yield s
    s.close()


def _deliver_one(server: Scripted) -> tuple[NotifierStats, str | None]:
    """Send one alert to ``server`` through a notifier; its counters and last error once done."""
    alert = OutgoingAlert(labels={"alertname": "A", "cluster-name": "eu"}, annotations={}, starts_at=1.8e9, ends_at=None)
    with Notifier([AlertmanagerSink(server.url)], backoff_initial_s=0.01) as notifier:
        notifier.send([alert])
        assert notifier.flush(10)
        return notifier.stats, notifier.last_error


def test_a_4xx_is_not_retried_and_its_answer_is_logged(refusing: Scripted, caplog: pytest.LogCaptureFixture) -> None:
    stats, last_error = _deliver_one(refusing)
    assert refusing.posts == 1
    assert (stats.sent, stats.failed, stats.errors) == (0, 1, 1)
    assert last_error is not None and REFUSAL in last_error
    assert any(REFUSAL in r.getMessage() for r in caplog.records if r.name == "monitor.rules.notifier")


def test_a_5xx_is_retried() -> None:
    server = Scripted([(503, "busy"), (500, "oops")])
    try:
        stats, _ = _deliver_one(server)
        assert server.posts == 3
        assert (stats.sent, stats.failed, stats.errors) == (1, 0, 2)
    finally:
        server.close()
