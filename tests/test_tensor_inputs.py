"""Images, audio and sequences as a model's inputs (arrays of 3 dimensions or more).

``@monitor.watch(model="cnn") def predict(x): return probs`` called with ``x`` of shape
``(16, 3, 32, 32)`` refused every call as ``wrong_shape`` ("expected rows of 32 features, got
shape (16, 3, 32, 32)"): not even the outputs' confidence was monitored, and 30 calls of 16
images counted 30 refused rows, not 480. Such inputs are now ``n`` rows (axis 0) of one tensor
feature, monitored through numbers describing each row (:mod:`monitor.tensor`), computed in the
worker; a reference of images is profiled the same way; a refused call counts its rows; an OIP
v2 tensor ``[n, c, h, w]`` through the sidecar is read the same way instead of as ``c*h*w``
features; ``features: [{name: image, kind: tensor}]`` declares one.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import ConfigError, load_config
from monitor.ingest import BatchBuilder, guess_rows
from monitor.reference import Reference, reference_fingerprint, reference_from_state, reference_state
from monitor.schema import OutputSpec
from monitor.server.payloads import decode_inputs
from monitor.tensor import DESCRIPTORS, describe, descriptor_names

RNG = np.random.default_rng(0)
#: The descriptors of images of 3 channels: the 7 overall ones, each channel's mean and std.
COLUMNS = descriptor_names("input", 3)


def _images(n: int = 16) -> np.ndarray:
    return RNG.uniform(0.0, 1.0, (n, 3, 32, 32)).astype(np.float32)


def _probs(x) -> np.ndarray:
    return np.tile([0.7, 0.2, 0.1], (len(x), 1))


def _monitor(config: dict | None = None, reference: Reference | None = None) -> Monitor:
    return Monitor(model="cnn", config=config, reference=reference, registry=CollectorRegistry(), start_worker=False,
                   live=False)


class _Tensor:
    """What the worker reads of a PyTorch tensor on a GPU that requires grad."""

    def __init__(self, a: np.ndarray) -> None:
        self._a = a
        self.shape = a.shape

    def __len__(self) -> int:
        return len(self._a)

    def detach(self) -> "_Tensor":
        return self

    def cpu(self) -> "_Tensor":
        return self

    def numpy(self) -> np.ndarray:
        return self._a


@pytest.mark.parametrize("as_", ["numpy", "tensor"])
def test_a_batch_of_images_is_one_row_per_image_and_its_outputs_are_monitored(as_) -> None:
    mon = _monitor()
    try:
        @mon.watch
        def predict(x):
            return _probs(x)

        for _ in range(30):
            x = _images()
            predict(x if as_ == "numpy" else _Tensor(x))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 480
        assert mon.store.value("monitor_rows_rejected", {"reason": "wrong_shape"}) in (None, 0.0)
        assert mon.pipeline.builder.schema.tensor_names == ("input",)
        assert mon.pipeline.builder.numeric_columns == COLUMNS
        assert mon.store.value("monitor_confidence_rows_in_window") == 480
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "input.mean", "reason": "missing"}) == 0
    finally:
        mon.close()


def test_a_refused_batch_of_images_counts_its_rows() -> None:
    assert guess_rows(np.zeros((16, 3, 32, 32))) == 16
    assert guess_rows(_Tensor(np.zeros((16, 3, 32, 32)))) == 16  # a tensor the worker has not read yet
    mon = _monitor()
    try:
        for _ in range(30):
            mon.observe(_images(), _probs(range(15)))  # 16 images, 15 outputs
        mon.observe(_Tensor(_images()), _probs(range(16)), timestamp=float("nan"))
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "rows_mismatch"}) == 480
        assert mon.store.value("monitor_rows_rejected", {"reason": "invalid_timestamp"}) == 16
    finally:
        mon.close()


def test_descriptors_see_brightness_contrast_saturation_and_non_finite_values() -> None:
    rows = np.stack([np.linspace(0.0, 1.0, 12).reshape(3, 2, 2),  # a plain row
                     np.full((3, 2, 2), 0.5),  # blank
                     np.r_[np.full(9, 1.0), [0.0, 0.2, 0.4]].reshape(3, 2, 2),  # three quarters at its max
                     np.r_[[np.nan, np.inf], np.arange(10.0)].reshape(3, 2, 2)])
    d = dict(zip(DESCRIPTORS, describe(rows).T))
    assert d["mean"][0] == pytest.approx(0.5) and d["std"][0] == pytest.approx(np.linspace(0, 1, 12).std())
    assert (d["std"][1], d["at_min_share"][1], d["at_max_share"][1]) == (0.0, 1.0, 1.0)
    assert d["at_max_share"][2] == 0.75 and d["at_min_share"][2] == pytest.approx(1 / 12)
    # the non-finite values counted, the others described over the finite ones
    assert d["non_finite_share"][3] == pytest.approx(2 / 12)
    assert (d["mean"][3], d["min"][3], d["max"][3]) == (4.5, 0.0, 9.0)
    assert d["at_max_share"][3] == pytest.approx(0.1)
    assert np.isnan(describe(np.full((1, 2, 2), np.nan))[0, :6]).all()
    # integers read exactly, and rows read in chunks give what one pass gives
    ints = RNG.integers(0, 256, (40, 3, 8, 8), dtype=np.uint8)
    from monitor import tensor

    whole = describe(ints)
    assert whole[:, 3].max() <= 255 and whole[:, 0] == pytest.approx(ints.reshape(40, -1).mean(axis=1))
    old, tensor.CHUNK_VALUES = tensor.CHUNK_VALUES, 500
    try:
        assert np.array_equal(describe(ints), whole)
    finally:
        tensor.CHUNK_VALUES = old


def test_a_reference_of_images_profiles_the_same_descriptors_and_survives_a_checkpoint() -> None:
    x = _images(200)
    ref = Reference.from_arrays(x, scores=_probs(x))
    assert ref.tensor_names == ("input",) and ref.feature_names == ("input",) and ref.numeric_names == COLUMNS
    assert np.array_equal(ref.numeric, describe(x, 1))
    back = reference_from_state(reference_state(ref))
    assert back.tensor_names == ("input",) and reference_fingerprint(back) == reference_fingerprint(ref)
    named = Reference.from_arrays(x, numeric_names=["image"], scores=_probs(x))
    assert named.feature_names == ("image",) and named.numeric_names[0] == "image.mean"
    # a plain reference keeps the fingerprint it had before tensors existed (no new field hashed)
    plain = Reference.from_arrays(RNG.normal(size=(5, 2)))
    assert "tensor_names" not in reference_state(plain)["payload"]["rows"]
    with pytest.raises(ValueError, match="numeric_names names it with one name"):
        Reference.from_arrays(x, numeric_names=["r", "g", "b"])
    with pytest.raises(ValueError, match="no categorical or text features beside it"):
        Reference.from_arrays(x, categorical=np.array([["a"]] * 200), categorical_names=["camera"])


def test_live_images_meet_the_reference_and_its_drift_detectors_run() -> None:
    x = _images(300)
    mon = _monitor(reference=Reference.from_arrays(x, scores=_probs(x)))
    try:
        assert {"input_drift", "pca_drift", "data_quality"} <= {d.kind for d in mon.detectors}
        mon.observe(_images(), _probs(range(16)))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 16
        text = mon.metrics_text()
        assert all(f'feature="{c}"' in text for c in COLUMNS)  # each descriptor a feature of the figures
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "input.std", "reason": "missing"}) == 0
    finally:
        mon.close()


def test_a_configured_tensor_feature_reads_images_and_audio_and_names_the_reference_s_default(caplog) -> None:
    config = {"features": [{"name": "image", "kind": "tensor"}]}
    x = _images(300)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(config, Reference.from_arrays(x, scores=_probs(x)))
    try:
        assert not [r for r in caplog.records if "share no name" in r.getMessage() or "never arrive" in r.getMessage()]
        mon.observe(_images(), _probs(range(16)))
        mon.observe({"image": _images(2)}, _probs(range(2)))
        # 4 clips of mono audio: not the reference's colour images (3 channels), refused and counted
        mon.observe(RNG.normal(size=(4, 16000)), _probs(range(4)))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 18
        assert mon.store.value("monitor_rows_rejected", {"reason": "wrong_shape"}) == 4
        assert mon.store.value("monitor_data_invalid_rows", {"feature": "image.mean", "reason": "missing"}) == 0
        mon.observe(np.array(["not", "numbers"]), _probs(range(2)))
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "wrong_type"}) == 2
    finally:
        mon.close()
    audio = _monitor(config)  # without a reference: rows of 1 dimension, described whole
    try:
        audio.observe(RNG.normal(size=(4, 16000)), _probs(range(4)))
        audio.flush()
        assert audio.store.value("monitor_predictions") == 4
        assert audio.pipeline.builder.numeric_columns == descriptor_names("image")
    finally:
        audio.close()


def test_a_tensor_feature_is_the_only_feature_of_a_config(tmp_path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("model: cnn\nfeatures:\n  - {name: image, kind: tensor}\n")
    assert load_config(path).model().schema.tensor_names == ("image",)
    path.write_text("model: cnn\nfeatures:\n  - {name: image, kind: tensor}\n  - {name: camera}\n")
    with pytest.raises(ConfigError, match="cannot share the inputs") as err:
        load_config(path)
    assert "features" in str(err.value) and "segment=" in str(err.value)
    path.write_text("model: cnn\nfeatures:\n  - {name: image, kind: picture}\n")
    with pytest.raises(ConfigError, match="kind: tensor"):
        load_config(path)


def test_an_oip_v2_image_tensor_is_read_as_rows_of_one_tensor_feature() -> None:
    body = {"inputs": [{"name": "pixel_values", "shape": [2, 3, 4, 4], "datatype": "FP32",
                        "data": np.arange(96, dtype=float).tolist()}]}
    inputs = decode_inputs(body)
    assert inputs.shape == (2, 3, 4, 4)
    builder = BatchBuilder(None, OutputSpec())
    result = builder.build([(0, 1_000_000.0, inputs, _probs(range(2)), 0.01, None, None, None, None)])
    assert result.batch is not None and result.batch.numeric.shape == (2, len(DESCRIPTORS)), result.rejected
    # 3 values on axis 1 and 4 on axis 3: either could be channels, and no channel_axis says which
    assert builder.numeric_columns == descriptor_names("input")


def test_rows_sent_with_an_extra_axis_still_read_as_the_numeric_features() -> None:
    # [n, 1, d] to a model of d features: flattened by the proxy before, read the same now (a guard:
    # the proxy keeps the tensor whole, the builder flattens it for a model of numeric features)
    body = {"inputs": [{"name": "x", "shape": [2, 1, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]}
    for schema_from in ("config", "reference"):
        kw = ({"config": {"features": ["a", "b", "c"]}} if schema_from == "config"
              else {"reference": Reference.from_arrays(RNG.normal(size=(50, 3)), scores=_probs(range(50)))})
        mon = _monitor(**kw)
        try:
            mon.observe(decode_inputs(body), _probs(range(2)))
            mon.flush()
            assert mon.store.value("monitor_predictions") == 2, schema_from
            assert mon.pipeline.builder.schema.names == (("a", "b", "c") if schema_from == "config" else ("f0", "f1", "f2"))
        finally:
            mon.close()


def test_a_kserve_logger_pair_of_an_image_tensor_reaches_the_sidecar_s_monitor_as_rows(tmp_path) -> None:
    import json

    from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

    config = {"model": "cnn", "output": {"kind": "probabilities", "classes": ["cat", "dog", "bird"]}}
    sc = start_sidecar(config, tmp_path, factory=quiet_factory())
    try:
        images = {"inputs": [{"name": "pixel_values", "shape": [4, 3, 8, 8], "datatype": "FP32",
                              "data": RNG.uniform(size=4 * 3 * 8 * 8).tolist()}]}
        scores = {"outputs": [{"name": "probs", "shape": [4, 3], "datatype": "FP32", "data": _probs(range(4)).ravel().tolist()}]}
        for part, data in (("request", images), ("response", scores)):
            headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "test",
                       "Ce-Type": f"org.kubeflow.serving.inference.{part}", "Ce-Id": "img-1",
                       "Ce-Inferenceservicename": "cnn"}
            assert http("POST", sc.url + "/v1/cloudevents", json.dumps(data), headers).status == 202
        sc.flush()
        text = sc.metrics()
        assert sample(text, "monitor_predictions_total", model="cnn") == 4
        assert sample(text, "monitor_data_invalid_rows_total", model="cnn", feature="input.mean", reason="missing") == 0
    finally:
        sc.close()


def test_a_reference_of_images_adopted_from_a_checkpoint_reads_live_images(tmp_path) -> None:
    x = _images(300)
    first = _monitor(reference=Reference.from_arrays(x, numeric_names=["image"], scores=_probs(x)))
    try:
        first.observe(_images(), _probs(range(16)))
        first.flush()
        first.save_checkpoint(tmp_path / "cnn.ckpt", final=True)
    finally:
        first.close()
    restarted = _monitor()
    try:
        assert restarted.restore_checkpoint(tmp_path / "cnn.ckpt")
        restarted.observe(_images(), _probs(range(16)))
        restarted.flush()
        assert restarted.pipeline.builder.schema.tensor_names == ("image",)
        assert restarted.store.value("monitor_data_invalid_rows", {"feature": "image.mean", "reason": "missing"}) == 0
        assert restarted.store.value("monitor_detector_errors", {"detector": "input_drift"}) == 0
    finally:
        restarted.close()


def test_a_saved_profile_of_images_keeps_its_tensor_feature(tmp_path) -> None:
    """A sidecar reads its reference from a saved profile (``reference.path``): saved without its
    tensor feature, the profile's descriptors were plain numeric features, and every live batch of
    images was refused as wrong_shape ("expected rows of 7 features")."""
    import yaml

    from monitor.profile import Profile, ProfileError

    x = _images(300)
    path = Profile.from_reference(Reference.from_arrays(x, scores=_probs(x))).save(tmp_path / "ref.npz")
    loaded = Profile.load(path)
    assert loaded.tensor_names == ("input",) and loaded.to_reference().tensor_names == ("input",)
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({"model": "cnn", "reference": {"path": "ref.npz"}}))
    mon = Monitor.from_config(tmp_path / "monitor.yaml", registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(_images(), _probs(range(16)))
        mon.flush()
        assert mon.store.value("monitor_predictions") == 16
        assert not mon.store.value("monitor_rows_rejected", {"reason": "wrong_shape"})
    finally:
        mon.close()
    # without images, a profile is written as before: no tensor_names in it
    plain = Profile.from_reference(Reference.from_arrays(RNG.normal(size=(100, 3))))
    assert plain.tensor_names == () and Profile.load(plain.save(tmp_path / "plain.npz")).tensor_names == ()
    # a damaged list is refused naming the rebuild
    import json

    with np.load(path) as z:
        arrays = dict(z)
    meta = json.loads(arrays["meta.json"].tobytes())
    meta["tensor_names"] = ["image"]  # a feature whose descriptors the profile lacks
    arrays["meta.json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ProfileError, match="tensor feature 'image' without its descriptors"):
        Profile.load(tmp_path / "bad.npz")
