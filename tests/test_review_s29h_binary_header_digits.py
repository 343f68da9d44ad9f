"""An ``Inference-Header-Content-Length`` that is digits to Python but no number to ``int()``
(session 29 review): ``str.isdigit`` takes ``²`` (a header byte 0xb2 read as Latin-1) and a
5,000-digit value for a length, then ``int()`` raised, and the exchange was refused as bad_json
with Python's "invalid literal for int()" as its logged cause, naming no header. Each is now
refused as bad_binary naming the header, as any other length that is not the JSON head's."""

from __future__ import annotations

import pytest

from monitor.server.binary_tensors import split_binary
from monitor.server.payloads import PayloadError


@pytest.mark.parametrize("value", ["²", "1²", "٣", "9" * 5000])
def test_a_header_length_that_is_no_ascii_number_names_the_header(value: str) -> None:
    with pytest.raises(PayloadError) as err:
        split_binary(b'{"inputs": []}', value, "request")
    assert err.value.reason == "bad_binary" and err.value.field == "request header Inference-Header-Content-Length"


def test_a_plain_length_still_splits() -> None:
    assert split_binary(b'{"a":1}xyz', " 7 ", "response") == (b'{"a":1}', b"xyz")
