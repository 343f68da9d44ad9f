"""Alert delivery over real HTTP on 127.0.0.1: payloads, retries with backoff, counters, shedding."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator, Sequence

import pytest

from monitor.rules.notifier import (
    AlertmanagerSink,
    DeliveryError,
    LogSink,
    Notifier,
    OutgoingAlert,
    WebhookSink,
    alertmanager_fingerprint,
    format_rfc3339_ms,
)


class Receiver:
    """A real HTTP server recording POST bodies; answers with scripted status codes."""

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.lock = threading.Lock()
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with recv.lock:
                    status = recv.statuses.pop(0) if recv.statuses else 200
                    recv.requests.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def alert(name: str = "HighLatency", resolved: bool = False, **labels: str) -> OutgoingAlert:
    return OutgoingAlert(labels={"alertname": name, "severity": "page", **labels},
                         annotations={"summary": f"{name} is bad"}, starts_at=1_700_000_000.5,
                         ends_at=1_700_000_240.0, generator_url="http://agent/graph?g0.expr=x&g0.tab=1",
                         resolved=resolved)


def test_alertmanager_v2_payload(receiver: Receiver) -> None:
    with Notifier([AlertmanagerSink(receiver.url, headers={"Authorization": "Bearer t"})]) as n:
        n.send([alert(), alert("Other")])
        assert n.flush(10)
        stats = n.stats
    assert (stats.sent, stats.failed, stats.errors, stats.dropped) == (2, 0, 0, 0)
    ((path, headers, body),) = receiver.requests
    assert path == "/api/v2/alerts"
    assert headers["Content-Type"] == "application/json" and headers["Authorization"] == "Bearer t"
    assert body[0] == {
        "labels": {"alertname": "HighLatency", "severity": "page"},
        "annotations": {"summary": "HighLatency is bad"},
        "startsAt": "2023-11-14T22:13:20.500Z",
        "endsAt": "2023-11-14T22:17:20.000Z",
        "generatorURL": "http://agent/graph?g0.expr=x&g0.tab=1",
    }


def test_retries_with_backoff_then_succeeds() -> None:
    r = Receiver(statuses=[500, 503])
    try:
        with Notifier([AlertmanagerSink(r.url)], backoff_initial_s=0.01, max_retries=3) as n:
            n.send([alert()])
            assert n.flush(10)
            s = n.stats
        assert (s.sent, s.failed, s.errors) == (1, 0, 2)
        assert len(r.requests) == 3  # same batch, delivered on the third attempt
        assert "503" in (n.last_error or "")
    finally:
        r.close()


def test_gives_up_after_max_retries_and_counts_failure() -> None:
    r = Receiver(statuses=[500] * 10)
    try:
        with Notifier([AlertmanagerSink(r.url)], backoff_initial_s=0.01, max_retries=2) as n:
            n.send([alert(), alert("B")])
            assert n.flush(10)
            s = n.stats
        assert (s.sent, s.failed, s.errors) == (0, 2, 3)
    finally:
        r.close()


def test_unreachable_endpoint_is_counted_not_raised() -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Notifier([AlertmanagerSink(f"http://127.0.0.1:{port}", timeout_s=2)], backoff_initial_s=0.01,
                  max_retries=1) as n:
        n.send([alert()])
        assert n.flush(20)
        assert (n.stats.failed, n.stats.errors) == (1, 2)


class BlockingSink:
    """A sink that blocks until released: shows that send() never waits on delivery."""

    name = "blocking"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.delivered: list[OutgoingAlert] = []

    def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
        self.entered.set()
        self.release.wait(30)
        self.delivered.extend(alerts)


def test_send_never_blocks_and_full_queue_drops_oldest() -> None:
    sink = BlockingSink()
    n = Notifier([sink], queue_capacity=3, max_batch_size=1)
    try:
        n.send([alert("first")])
        assert sink.entered.wait(10)  # the worker is now stuck inside the sink
        for i in range(10):  # returns at once although nothing can be delivered
            n.send([alert(f"a{i}")])
        s = n.stats
        assert (s.queued, s.dropped) == (3, 7)
        sink.release.set()
        assert n.flush(10)
        names = [a.labels["alertname"] for a in sink.delivered]
        assert names == ["first", "a7", "a8", "a9"]  # newest kept, oldest dropped
    finally:
        sink.release.set()
        n.close()
    n.send([alert()])  # after close: dropped, counted, no exception
    assert n.stats.dropped == 8


def test_oversized_batch_keeps_the_newest() -> None:
    sink = BlockingSink()
    sink.release.set()
    with Notifier([sink], queue_capacity=2) as n:
        n.send([alert(f"a{i}") for i in range(5)])
        assert n.flush(10)
        assert [a.labels["alertname"] for a in sink.delivered] == ["a3", "a4"] and n.stats.dropped == 3


def test_broken_sink_does_not_kill_the_worker(receiver: Receiver) -> None:
    class Broken:
        name = "broken"

        def deliver(self, alerts: Sequence[OutgoingAlert]) -> None:
            raise RuntimeError("bug in sink")

    with Notifier([Broken(), AlertmanagerSink(receiver.url)], max_retries=0) as n:
        n.send([alert()])
        n.send([alert("B")])
        assert n.flush(10)
        assert (n.stats.sent, n.stats.failed) == (2, 2)


def test_webhook_sink_uses_alertmanager_webhook_format(receiver: Receiver) -> None:
    sink = WebhookSink(receiver.url + "/hook", receiver="ml-oncall", external_url="http://agent")
    with Notifier([sink]) as n:
        n.send([alert(instance="a"), alert(instance="b"), alert("Other", resolved=True)])
        assert n.flush(10)
    bodies = {b["groupLabels"]["alertname"]: b for _, _, b in receiver.requests}
    hl = bodies["HighLatency"]
    assert hl["version"] == "4" and hl["status"] == "firing" and hl["receiver"] == "ml-oncall"
    assert hl["groupKey"] == '{}:{alertname="HighLatency"}' and hl["externalURL"] == "http://agent"
    assert hl["commonLabels"] == {"alertname": "HighLatency", "severity": "page"}
    assert hl["commonAnnotations"] == {"summary": "HighLatency is bad"}
    assert [a["labels"]["instance"] for a in hl["alerts"]] == ["a", "b"]
    first = hl["alerts"][0]
    assert first["status"] == "firing" and first["endsAt"] == "0001-01-01T00:00:00.000Z"
    assert first["fingerprint"] == alertmanager_fingerprint(first["labels"])
    other = bodies["Other"]
    assert other["status"] == "resolved" and other["alerts"][0]["endsAt"] == "2023-11-14T22:17:20.000Z"


def test_log_sink(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor.alerts"):
        LogSink().deliver([alert()])
    (rec,) = [r for r in caplog.records if r.name == "monitor.alerts"]
    payload = json.loads(rec.getMessage().split(" ", 1)[1])
    assert payload["labels"]["alertname"] == "HighLatency" and payload["status"] == "firing"


def test_time_and_fingerprint_helpers() -> None:
    assert format_rfc3339_ms(None) == "0001-01-01T00:00:00.000Z"
    assert format_rfc3339_ms(0.0) == "1970-01-01T00:00:00.000Z"
    assert alertmanager_fingerprint({}) == "cbf29ce484222325"  # FNV-1a offset basis: empty label set
    assert alertmanager_fingerprint({"a": "b"}) != alertmanager_fingerprint({"a": "c"})


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="queue_capacity"):
        Notifier([], queue_capacity=0)
    with pytest.raises(ValueError, match="max_retries"):
        Notifier([], max_retries=-1)
    assert issubclass(DeliveryError, Exception)
