"""KServe v1 / TF Serving binary inputs (``{"b64": "..."}``: an encoded image) through the sidecar (session 30).

Before, each image's base64 text was a category of a learned categorical feature ``b64``: a new
category on every row (cut to 200 characters), which told nothing about the images, and against a
reference every row was an unseen value. Each binary value is now its size in bytes, a numeric
feature (``bytes``, or ``<name>.bytes`` for a named input): a camera gone blank sends JPEGs a tenth
the size, a changed encoder larger ones.
"""

from __future__ import annotations

import base64

from tests.sidecar_support import AppServer, http, sample, wait_until
from tests.test_output_kind_none_sidecar import model_server
from tests.test_proxy import start_proxying

from monitor.server.payloads import decode_inputs

CAM = {"model": "cam", "output": {"kind": "probabilities", "classes": ["cat", "dog"]}}


def _b64(n: int) -> str:
    return base64.b64encode(bytes(range(256)) * (n // 256) + bytes(n % 256)).decode("ascii")


def test_binary_values_are_read_as_their_size_in_bytes() -> None:
    assert decode_inputs({"instances": [{"b64": _b64(1000)}, {"b64": _b64(7)}]}) == [{"bytes": 1000}, {"bytes": 7}]
    rows = decode_inputs({"instances": [{"image_bytes": {"b64": _b64(300)}, "key": "a"}]})
    assert rows == [{"image_bytes.bytes": 300, "key": "a"}]
    assert decode_inputs({"instances": [{"b64": "abc", "other": 1}]}) == [{"b64": "abc", "other": 1}]  # not a binary value


def test_an_image_model_behind_the_proxy_has_its_images_watched_by_size(tmp_path) -> None:
    upstream = AppServer(model_server(predictions=lambda rows: [[0.3, 0.7] for _ in rows]))
    try:
        sc = start_proxying({"models": [CAM]}, tmp_path, "aiohttp", proxy_upstream=upstream.url)
        try:
            r = http("POST", sc.url + "/v1/models/cam:predict", {"instances": [{"b64": _b64(n)} for n in (900, 1200, 30)]})
            assert r.status == 200 and len(r.json()["predictions"]) == 3
            assert wait_until(lambda: len(sc.monitor("cam").queue) == 1)
            sc.flush()
            mon = sc.monitor("cam")
            assert [f.name for f in mon.pipeline.builder.schema.features] == ["bytes"]
            assert [f.kind for f in mon.pipeline.builder.schema.features] == ["numeric"]
            assert sample(sc.metrics(), "monitor_predictions_total", model="cam") == 3
        finally:
            sc.close()
    finally:
        upstream.close()
