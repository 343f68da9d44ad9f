"""Triton's binary tensor data extension of the Open Inference Protocol v2, as the proxy's tap reads it.

A client (``tritonclient.http`` sends every input so by default) or a model server answering
outputs asked for with ``binary_data: true`` puts the JSON head first, ``Inference-Header-Content-Length``
bytes long, then the raw values of each tensor whose ``parameters.binary_data_size`` says how many
bytes it takes, one after the other in the order the tensors are listed: little-endian numbers,
one byte per BOOL, BF16 as the upper half of a float32, and BYTES as elements each preceded by its
length in 4 little-endian bytes. Content coding (gzip) applies to the whole body, so the body is
split after it is inflated.

Before, the tap read such a body as JSON and refused every exchange as ``bad_json``: a Triton
deployment driven by its own client was forwarded but never monitored. Every malformed body is a
:class:`~monitor.server.payloads.PayloadError` of reason ``bad_binary`` naming the field.
"""

from __future__ import annotations

import math
from typing import Any

from monitor.server.payloads import PayloadError

__all__ = ["HEADER", "attach_binary", "split_binary"]

#: The header naming the length of the JSON head (request and response alike).
HEADER = "Inference-Header-Content-Length"

#: Fixed-width datatypes: their numpy type as the wire has it (little-endian).
_WIRE = {"BOOL": "u1", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "i1",
         "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "BF16": "<u2"}

_REASON = "bad_binary"


def split_binary(raw: bytes, header_length: str, part: str) -> tuple[bytes, bytes]:
    """``(JSON head, binary values)`` of a body sent with the extension's header."""
    text = header_length.strip()
    # ASCII digits only: str.isdigit takes "²" (whose int() raises) and "٣" (which reads as 3)
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or int(text) > len(raw):
        raise PayloadError(f"{part} header {HEADER}", f"{header_length[:40]!r} is not a length within the body's "
                                                       f"{len(raw)} bytes: send the byte length of the JSON head", _REASON)
    n = int(text)
    return raw[:n], raw[n:]


def attach_binary(obj: Any, blob: bytes, key: str) -> None:
    """Put the values ``blob`` holds into the tensors of ``obj[key]`` (``inputs`` or ``outputs``)
    that name a ``binary_data_size``, as numpy arrays under ``data``; every byte must be used."""
    import numpy as np

    tensors = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(tensors, list):
        raise PayloadError(key, "is not a list of tensors, so the binary values of the body have no tensor to go to",
                           _REASON)
    pos = 0
    for i, t in enumerate(tensors):
        params = t.get("parameters") if isinstance(t, dict) else None
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is None:
            continue
        field = f"{key}[{i}].parameters.binary_data_size"
        if size.__class__ is not int or size < 0:
            raise PayloadError(field, f"must be a non-negative integer, got {size!r}", _REASON)
        if pos + size > len(blob):
            raise PayloadError(field, f"{size} bytes from byte {pos} of the binary values, which hold {len(blob)}: "
                                      "the body is cut short or the sizes are wrong", _REASON)
        t["data"] = _values(blob[pos:pos + size], t, f"{key}[{i}]", np)
        pos += size
    if pos != len(blob):
        raise PayloadError(key, f"the binary values hold {len(blob)} bytes but the tensors' binary_data_size add up "
                                f"to {pos}: give each binary tensor its size in parameters.binary_data_size", _REASON)


def _values(chunk: bytes, t: dict[str, Any], field: str, np: Any) -> Any:
    """One tensor's binary values as a flat array of what its JSON ``data`` would read as:
    int64 for integers (uint64 beyond its range), float64 for floats and BOOL, text for BYTES."""
    datatype = t.get("datatype")
    shape = t.get("shape")
    if not isinstance(shape, list) or not all(d.__class__ is int and d >= 0 for d in shape):
        raise PayloadError(f"{field}.shape", f"must be a list of non-negative integers, got {shape!r}", "bad_shape")
    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_elements(chunk, count, field, np)
    wire = _WIRE.get(datatype) if datatype.__class__ is str else None
    if wire is None:
        raise PayloadError(f"{field}.datatype", f"{str(datatype)[:40]!r} is not a datatype of the binary extension "
                                                f"(one of {', '.join(sorted(_WIRE))}, BYTES)", _REASON)
    width = np.dtype(wire).itemsize
    if len(chunk) != count * width:
        raise PayloadError(f"{field}.parameters.binary_data_size", f"is {len(chunk)} bytes; shape {shape} of "
                                                                   f"{datatype} takes {count} x {width} = {count * width}",
                           _REASON)
    arr = np.frombuffer(chunk, dtype=wire)
    if datatype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if datatype == "BOOL":
        return (arr != 0).astype(np.float64)
    if datatype.startswith(("INT", "UINT")):
        if datatype == "UINT64" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            return arr.astype(np.uint64)
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def _bytes_elements(chunk: bytes, count: int, field: str, np: Any) -> Any:
    """BYTES values: ``count`` elements, each a 4-byte little-endian length and that many bytes
    of UTF-8 text (the monitor reads them as category text)."""
    if count * 4 > len(chunk):  # each element takes its 4-byte length: refused before allocating count
        raise PayloadError(f"{field}.parameters.binary_data_size", f"holds {len(chunk) // 4} BYTES elements where "
                                                                   f"the shape has {count} (at most: each takes its "
                                                                   "4-byte length)", _REASON)
    out = np.empty(count, dtype=object)
    pos = 0
    for k in range(count):
        if pos + 4 > len(chunk):
            raise PayloadError(f"{field}.parameters.binary_data_size", f"holds {k} BYTES elements where the shape "
                                                                       f"has {count}", _REASON)
        n = int.from_bytes(chunk[pos:pos + 4], "little")
        pos += 4
        if pos + n > len(chunk):
            raise PayloadError(f"{field}.data", f"BYTES element {k} says {n} bytes, past the tensor's end", _REASON)
        try:
            out[k] = chunk[pos:pos + n].decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadError(f"{field}.data", f"BYTES element {k} is not UTF-8 text (the monitor reads BYTES as "
                                                "category text, not images or other binary data)", _REASON) from None
        pos += n
    if pos != len(chunk):
        raise PayloadError(f"{field}.parameters.binary_data_size", f"is {len(chunk)} bytes; its {count} BYTES "
                                                                   f"elements take {pos}", _REASON)
    return out
