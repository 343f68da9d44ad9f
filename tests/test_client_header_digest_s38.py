"""The proxy and the CloudEvents intake track a long client header (a bearer token, a JWT) as its
digest, as POST /v1/events and an in-process Monitor do (beec0a7): they cut it to 200 characters,
so two tokens of one issuer sharing their first 200 characters were one client for the probing
detector, and the full token found nothing in POST /api/v1/clients/lookup."""

from __future__ import annotations

import json
from types import SimpleNamespace

from monitor.events import id_key
from monitor.server.cloudevents import _client
from monitor.server.proxy import Proxy

PREFIX = "Bearer eyJ" + "a" * 250


def test_the_proxy_tracks_a_long_client_header_by_its_digest() -> None:
    one, two = Proxy.client_identity(PREFIX + "one", "10.0.0.1"), Proxy.client_identity(PREFIX + "two", "10.0.0.1")
    assert one != two and one == id_key(PREFIX + "one")
    assert Proxy.client_identity("short-key", "10.0.0.1") == "short-key"
    assert Proxy.client_identity(None, "10.0.0.1") == "10.0.0.1"


def test_cloudevents_track_a_long_client_header_by_its_digest() -> None:
    def event(value: str) -> SimpleNamespace:  # KServe's ce-metadata: the request headers the logger copies
        return SimpleNamespace(attributes={"metadata": json.dumps({"X-Api-Key": [value]})}, data=None)

    one, two = _client(event(PREFIX + "one"), "X-Api-Key"), _client(event(PREFIX + "two"), "X-Api-Key")
    assert one != two and one == id_key(PREFIX + "one")
