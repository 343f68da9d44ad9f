"""A BYTES tensor sent binary whose shape claims more elements than its bytes can hold (session 29
review): the tap allocated an object array of the shape's size before reading any element, so
``shape: [1099511627776]`` with 8 bytes of values asked numpy for 8 TiB (a MemoryError counted as
the tap's internal_error; a shape of a few hundred million filled gigabytes of the sidecar's
memory for one exchange). Each BYTES element takes at least its 4-byte length, so such a tensor is
now refused as bad_binary, naming the field, before anything is allocated."""

from __future__ import annotations

import struct

import pytest

from monitor.server.binary_tensors import attach_binary
from monitor.server.payloads import PayloadError


def test_a_bytes_shape_beyond_its_values_is_refused_before_allocating() -> None:
    blob = struct.pack("<I", 1) + b"a" + struct.pack("<I", 0)
    tensor = {"name": "x", "datatype": "BYTES", "shape": [2**40], "parameters": {"binary_data_size": len(blob)}}
    with pytest.raises(PayloadError) as err:
        attach_binary({"inputs": [tensor]}, blob, "inputs")
    assert err.value.reason == "bad_binary" and err.value.field == "inputs[0].parameters.binary_data_size"
    assert f"holds 2 BYTES elements where the shape has {2**40} (at most" in err.value.message
