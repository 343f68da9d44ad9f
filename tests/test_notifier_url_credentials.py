"""An Alertmanager (or webhook) URL with ``user:password@``, the only way ``rules.alertmanager``
names one behind basic auth, is sent basic auth to the URL without them: urllib looked the host
up as ``user:pass@127.0.0.1`` and failed every send, with the password in each logged error."""

from __future__ import annotations

import base64
from typing import Iterator

import pytest

from monitor.rules.notifier import AlertmanagerSink, DeliveryError, WebhookSink
from tests.test_rules_notifier import Receiver, alert


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_url_credentials_become_basic_auth(receiver: Receiver) -> None:
    url = receiver.url.replace("http://", "http://ml-oncall:p%40ss@") + "/alertmanager"
    AlertmanagerSink(url).deliver([alert()])
    WebhookSink(url + "/hook").deliver([alert()])
    (am_path, am_headers, _), (hook_path, hook_headers, _) = receiver.requests
    want = "Basic " + base64.b64encode(b"ml-oncall:p@ss").decode()
    assert (am_path, am_headers["Authorization"]) == ("/alertmanager/api/v2/alerts", want)
    assert (hook_path, hook_headers["Authorization"]) == ("/alertmanager/hook", want)


def test_a_given_authorization_header_wins(receiver: Receiver) -> None:
    url = receiver.url.replace("http://", "http://u:p@")
    AlertmanagerSink(url, headers={"Authorization": "Bearer t"}).deliver([alert()])
    assert receiver.requests[0][1]["Authorization"] == "Bearer t"


def test_the_password_is_not_in_delivery_errors() -> None:
    r = Receiver(statuses=[401])
    try:
        with pytest.raises(DeliveryError) as err:
            AlertmanagerSink(r.url.replace("http://", "http://u:s3cret@")).deliver([alert()])
    finally:
        r.close()
    assert "401" in str(err.value) and "s3cret" not in str(err.value)
