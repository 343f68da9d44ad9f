"""Images described channel by channel: a colour cast at equal brightness is seen.

A camera whose white balance drifted (red up 20 levels of 255, blue down 20) kept the images'
overall mean and spread, and nothing fired: the descriptors were read over all channels together.
Rows with a channel axis (axis 1 of ``(n, 3, h, w)``, axis 3 of ``(n, h, w, 3)``, or the feature's
configured ``channel_axis``) now also have each channel's mean and std (``input.mean_c0``...,
``input.std_c0``...), in references and saved profiles too, and rows with other channels than the
reference's are refused as ``wrong_shape`` and counted.

Stated (seeded): 8-bit colour images 3 x 16 x 16 (each of its own brightness, contrast and tint), a
3,000-row reference; 2 streams of 10,000 rows drawn like it raise no input or PCA drift (at the
default ERT of 1,000,000 rows the union bound allows 0.02 false alarm per detector over those
20,000 rows); a cast of red +20 and blue -20 whose images keep their overall mean and std (the
spread within each channel narrowed to make up for the channels' spread) fires input drift within
:data:`DETECTED_WITHIN` rows of its onset, naming a red or blue channel's mean first.
"""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import ConfigError, load_config
from monitor.profile import Profile
from monitor.reference import Reference
from monitor.tensor import ChannelError, channels_in, describe, descriptor_names, find_channel_axis
from tests.test_tensor_drift import first_alarm as drift_alarm, scores

SHAPE = (3, 16, 16)
DETECTED_WITHIN = 200
CAST = np.array([20.0, 0.0, -20.0])


def images(rng: np.random.Generator, n: int, cast: bool = False) -> np.ndarray:
    """``n`` 8-bit colour images: each a brightness, a contrast and a tint (a few levels per
    channel) of its own; with ``cast`` red +20 and blue -20, the spread within each channel
    narrowed by as much variance as the cast adds between channels, so that each image keeps its
    overall mean and std."""
    level = rng.normal(120.0, 25.0, n)
    spread = rng.uniform(25.0, 50.0, n)
    tint = rng.normal(0.0, 6.0, (n, 3))
    if cast:
        tint = tint + CAST
        spread = np.sqrt(spread ** 2 - CAST.var())
    pixels = ((level[:, None] + tint)[:, :, None, None]
              + spread[:, None, None, None] * rng.standard_normal((n, *SHAPE)))
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def reference() -> Reference:
    rng = np.random.default_rng(0)
    return Reference.from_arrays(images(rng, 3000), scores=scores(rng, 3000))


def _monitor(reference: Reference | None = None, config: dict | None = None) -> Monitor:
    return Monitor(model="cam", reference=reference, registry=CollectorRegistry(), start_worker=False, live=False,
                   config=config)


def first_alarm(seed: int, rows: int, onset: int | None = None,
                kinds: tuple[str, ...] = ("input_drift", "pca_drift")) -> tuple[int | None, str, list]:
    """:func:`tests.test_tensor_drift.first_alarm` on colour images, the cast from ``onset``."""
    return drift_alarm(reference(), seed, rows, onset, draw=images, kinds=kinds, **({"cast": True} if onset else {}))


def test_the_cast_keeps_the_overall_mean_and_std() -> None:
    """The stream's premise: only the channels tell a cast image from another."""
    rng = np.random.default_rng(5)
    plain, cast = describe(images(rng, 4000)), describe(images(rng, 4000, cast=True))
    assert abs(cast[:, 0].mean() - plain[:, 0].mean()) < 1.5 and abs(cast[:, 1].mean() - plain[:, 1].mean()) < 1.0


@pytest.mark.parametrize("seed", [31, 32])
def test_colour_images_like_the_reference_s_raise_no_drift(seed) -> None:
    assert first_alarm(seed, 10_000) == (None, "", [])


def test_a_colour_cast_at_equal_brightness_is_detected_and_its_channel_named() -> None:
    onset = 2000
    alarm, kind, _ = first_alarm(41, 5000, onset)
    assert alarm is not None and alarm - onset <= DETECTED_WITHIN, (alarm, kind)
    # input drift alone fires as soon, naming the red or the blue channel's mean
    alarm, kind, top = first_alarm(41, 5000, onset, kinds=("input_drift",))
    assert alarm is not None and alarm - onset <= DETECTED_WITHIN, (alarm, kind)
    assert top[0][0] in ("input.mean_c0", "input.mean_c2"), top


@pytest.mark.parametrize("shape, configured, channels, expected", [
    ((8, 3, 32, 32), None, None, (1, 3)),  # NCHW
    ((8, 32, 32, 4), None, None, (3, 4)),  # NHWC, RGBA
    ((8, 1, 28, 28), None, None, (None, 0)),  # one channel: the overall descriptors are its own
    ((8, 64, 7, 7), None, None, (None, 0)),  # a feature map: no channel axis recognised
    ((8, 3, 8, 4), None, None, (None, 0)),  # either axis could be: none unless configured
    ((8, 3, 8, 4), 3, None, (3, 4)),
    ((8, 2, 16000), 1, None, (1, 2)),  # stereo audio, named
    ((8, 16000, 2), -1, None, (2, 2)),
    ((8, 3, 32, 32), 0, None, (None, 0)),  # none, said
    ((8, 32, 32, 3), None, 3, (3, 3)),  # the reference's 3 channels, found on the last axis
    ((8, 1, 28, 28), None, 0, (None, 0)),  # a reference without channels: none, whatever the rows
])
def test_the_channel_axis_is_recognised_or_configured(shape, configured, channels, expected) -> None:
    assert find_channel_axis(shape, configured, channels) == expected


@pytest.mark.parametrize("shape, configured, channels, says", [
    ((8, 3, 32), 3, None, "not an axis"),
    ((8, 32, 32, 3), 1, None, "more channels than the 16"),
    ((8, 1, 32, 32), None, 3, "no axis of 3 channels"),
    ((8, 4, 32, 32), 1, 3, "4 channel(s) on axis 1, the reference's 3"),
    ((8, 3, 32, 32), 0, 3, "the reference describes 3 channels"),
])
def test_an_axis_that_cannot_be_the_channels_is_refused(shape, configured, channels, says) -> None:
    with pytest.raises(ChannelError) as err:
        find_channel_axis(shape, configured, channels)
    assert says in str(err.value) and not err.value.ambiguous
    with pytest.raises(ChannelError) as err:
        find_channel_axis((8, 3, 8, 3), None, 3)
    assert err.value.ambiguous


def test_each_channel_s_mean_and_std_whatever_the_layout_and_over_finite_values() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 1.0, (5, 3, 6, 7))
    d = describe(x, 1)
    assert d.shape == (5, 13)
    per_channel = x.reshape(5, 3, -1)
    assert np.allclose(d[:, 7:10], per_channel.mean(axis=2)) and np.allclose(d[:, 10:], per_channel.std(axis=2))
    assert np.allclose(d[:, :7], describe(x))  # the overall descriptors are those of the whole row
    assert np.allclose(describe(np.moveaxis(x, 1, 3).copy(), 3), d)  # NHWC reads as NCHW
    x[0, 1, 0, :3] = np.nan  # a channel's non-finite values are left out of its figures
    x[1, 2] = np.inf  # a channel of none has them missing
    d = describe(x, 1)
    kept = x[0, 1].ravel()[3:]
    assert d[0, 8] == pytest.approx(kept.mean()) and d[0, 11] == pytest.approx(kept.std())
    assert np.isnan(d[1, [9, 12]]).all() and np.isfinite(d[1, [7, 8, 10, 11]]).all()


def test_a_reference_and_its_saved_profile_carry_the_channels(tmp_path) -> None:
    ref = reference()
    assert ref.tensor_channels == 3 and ref.numeric_names == descriptor_names("input", 3)
    assert ref.feature_names == ("input",)
    profile = Profile.from_reference(ref)
    # the PCA reads the channels' descriptors too (see Reference.pca_names)
    assert profile.pca is not None and profile.pca.names == descriptor_names("input", 3)
    rng = np.random.default_rng(7)
    fitted = Reference.from_arrays(images(rng, 300), scores=scores(rng, 300), pca_fit=images(rng, 500))
    assert fitted.pca_basis.names == descriptor_names("input", 3) and fitted.tensor_channels == 3
    assert Profile.from_reference(fitted).pca.names == descriptor_names("input", 3)
    path = profile.save(tmp_path / "ref.npz")
    back = Profile.load(path).to_reference()
    assert back.tensor_names == ("input",) and back.tensor_channels == 3
    mon = _monitor(back)
    try:
        rng = np.random.default_rng(2)
        mon.observe(np.moveaxis(images(rng, 16), 1, 3), scores(rng, 16))  # the same images, channels last
        mon.flush()
        assert mon.store.value("monitor_predictions") == 16
        assert mon.pipeline.builder.numeric_columns == descriptor_names("input", 3)
        assert 'feature="input.mean_c2"' in mon.metrics_text()
    finally:
        mon.close()
    with pytest.raises(ValueError, match="channel_axis="):
        Reference.from_arrays(np.zeros((4, 3, 32, 32)), channel_axis=-1, scores=np.full((4, 2), 0.5))


def test_rows_with_other_channels_than_the_reference_s_are_refused_and_counted(caplog) -> None:
    mon = _monitor(reference())
    try:
        rng = np.random.default_rng(3)
        mon.observe(images(rng, 16)[:, :1], scores(rng, 16))  # grayscale
        mon.observe(np.concatenate([images(rng, 8), images(rng, 8)[:, :1]], axis=1), scores(rng, 8))  # RGBA
        mon.observe(images(rng, 4), scores(rng, 4))
        with caplog.at_level("WARNING", logger="monitor"):
            mon.flush()
        assert mon.store.value("monitor_rows_rejected", {"reason": "wrong_shape"}) == 24
        assert mon.store.value("monitor_predictions") == 4
        said = [r.getMessage() for r in caplog.records if "wrong_shape" in r.getMessage()]
        assert said and "have no axis of 3 channels" in said[0] and "the reference's" in said[0], said
    finally:
        mon.close()


def test_the_first_rows_fix_the_channels_without_a_reference() -> None:
    mon = _monitor()
    try:
        rng = np.random.default_rng(4)
        mon.observe(images(rng, 16), scores(rng, 16))
        mon.observe(images(rng, 16)[:, :1], scores(rng, 16))  # a grayscale camera among colour ones
        mon.flush()
        assert mon.pipeline.builder.numeric_columns == descriptor_names("input", 3)
        assert mon.store.value("monitor_predictions") == 16
        assert mon.store.value("monitor_rows_rejected", {"reason": "wrong_shape"}) == 16
    finally:
        mon.close()


def test_channel_axis_is_configured_on_a_tensor_feature_only(tmp_path) -> None:
    path = tmp_path / "monitor.yaml"
    for written, axis in (("1", 1), ("-1", -1), ("none", 0)):
        path.write_text(f"model: cam\nfeatures:\n  - {{name: image, kind: tensor, channel_axis: {written}}}\n")
        assert load_config(path).model().schema.features[0].channel_axis == axis
    for written, says in (("0", "must be an axis"), ("rgb", "must be an axis"), ("true", "must be an axis")):
        path.write_text(f"model: cam\nfeatures:\n  - {{name: image, kind: tensor, channel_axis: {written}}}\n")
        with pytest.raises(ConfigError, match=says) as err:
            load_config(path)
        assert "features[0].channel_axis" in str(err.value) and "channel_axis: 1" in str(err.value)
    path.write_text("model: cam\nfeatures:\n  - {name: age, channel_axis: 1}\n")
    with pytest.raises(ConfigError, match="only a tensor feature has channels") as err:
        load_config(path)
    assert "features[0].channel_axis" in str(err.value)


def test_a_configured_channel_axis_reads_stereo_audio_channel_by_channel() -> None:
    mon = _monitor(config={"features": [{"name": "clip", "kind": "tensor", "channel_axis": 1}]})
    try:
        rng = np.random.default_rng(6)
        clips = rng.normal(0.0, 1.0, (4, 2, 8000)) * np.array([1.0, 0.1])[None, :, None]  # right channel faint
        mon.observe(clips, scores(rng, 4))
        mon.flush()
        assert mon.pipeline.builder.numeric_columns == descriptor_names("clip", 2)
        assert mon.store.value("monitor_predictions") == 4
    finally:
        mon.close()


def test_a_raw_reference_file_is_described_on_the_configured_channel_axis(tmp_path) -> None:
    """Stereo clips (axis 1 of 2: no shape tells it) in ``reference.path`` were profiled at the
    start without the feature's ``channel_axis``: the reference had no channel descriptors, so
    the calls, fixed to its channels, got none either and a dead right microphone was only the
    overall spread's business. The file is now described as the calls are."""
    rng = np.random.default_rng(7)
    path = tmp_path / "clips.npy"
    np.save(path, rng.normal(0.0, 1.0, (300, 2, 500)))
    mon = _monitor(config={"features": [{"name": "clip", "kind": "tensor", "channel_axis": 1}],
                           "reference": {"path": str(path)}})
    try:
        assert channels_in("input", mon.reference.numeric_names) == 2
        mon.observe(rng.normal(0.0, 1.0, (4, 2, 500)), scores(rng, 4))
        mon.flush()
        assert mon.pipeline.builder.numeric_columns == descriptor_names("clip", 2)
        assert mon.store.value("monitor_predictions") == 4
    finally:
        mon.close()
