"""``monitor reference build`` of a file of images (an array of 3 or more dimensions).

``monitor reference build images.npy`` refused the file ("a .npy reference must be a 2-D numeric
array (rows, features), got shape (300, 3, 16, 16)"): an image model's reference had to be built
in code and saved by hand. An ``.npy``, or an ``.npz`` whose ``X`` is such an array (the model's
``scores`` and the ``labels`` beside it, as for 2-D data), is now profiled as rows of one tensor
feature, through the descriptors live images are read with (each channel's too), and the profile
keeps the tensor feature; ``reference.path`` may name the raw file as well.
"""

from __future__ import annotations

import numpy as np
import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.cli import main
from monitor.profile import Profile
from monitor.reference import Reference
from monitor.tensor import descriptor_names


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 3, 16, 16), dtype=np.uint8)


def _files(tmp_path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x, scores = _images(rng, 300), rng.dirichlet([2.0, 1.0, 1.0], 300)
    np.savez(tmp_path / "images.npz", X=x, scores=scores, labels=scores.argmax(axis=1))
    np.save(tmp_path / "images.npy", x)
    np.save(tmp_path / "images_last.npy", np.ascontiguousarray(np.moveaxis(x, 1, 3)))
    return x, scores


def _build(*args: str):
    return CliRunner().invoke(main, ["reference", "build", *args, "--quiet"])


def test_an_npz_of_images_with_scores_and_labels_builds_a_profile_live_images_meet(tmp_path) -> None:
    x, scores = _files(tmp_path)
    res = _build(str(tmp_path / "images.npz"), "-o", str(tmp_path / "ref.npz"))
    assert res.exit_code == 0, res.output
    assert "300 rows of the tensor feature 'input' (13 descriptors, 3 channels), model outputs, labels" in res.output
    prof = Profile.load(tmp_path / "ref.npz")
    assert prof.tensor_names == ("input",) and prof.numeric_names == descriptor_names("input", 3)
    # the descriptors of a reference built in code from the same rows
    in_code = Profile.from_reference(Reference.from_arrays(x, scores=scores, labels=scores.argmax(axis=1)))
    assert all(np.array_equal(a.edges, b.edges) for a, b in zip(prof.numeric, in_code.numeric))
    for path in ("ref.npz", "images.npz"):  # the profile, or the raw file profiled at start
        (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({"model": "cnn", "reference": {"path": path}}))
        mon = Monitor.from_config(tmp_path / "monitor.yaml", registry=CollectorRegistry(), start_worker=False,
                                  live=False)
        try:
            assert mon.reference.tensor_channels == 3
            mon.observe(_images(np.random.default_rng(1), 16), scores[:16])
            mon.flush()
            assert mon.store.value("monitor_predictions") == 16
            assert not mon.store.value("monitor_rows_rejected", {"reason": "wrong_shape"})
            assert {"input_drift", "confidence_drift"} <= {d.kind for d in mon.detectors}
        finally:
            mon.close()


def test_an_npy_of_images_channels_first_or_last_is_profiled_alike(tmp_path) -> None:
    _files(tmp_path)
    first = _build(str(tmp_path / "images.npy"), "-o", str(tmp_path / "first.npz"), "--feature-names", "image")
    last = _build(str(tmp_path / "images_last.npy"), "-o", str(tmp_path / "last.npz"), "--feature-names", "image")
    assert first.exit_code == 0 and last.exit_code == 0, (first.output, last.output)
    assert "holds no model outputs" in first.output and "numpy.savez(path, X=images, scores=" in first.output
    a, b = Profile.load(tmp_path / "first.npz"), Profile.load(tmp_path / "last.npz")
    assert a.tensor_names == b.tensor_names == ("image",) and a.numeric_names == descriptor_names("image", 3)
    assert all(np.array_equal(p.edges, q.edges) for p, q in zip(a.numeric, b.numeric))
    res = _build(str(tmp_path / "images.npy"), "-o", str(tmp_path / "none.npz"), "--channel-axis", "none")
    assert res.exit_code == 0 and "(7 descriptors, no channel axis)" in res.output, res.output


def test_what_a_file_of_images_cannot_take_is_refused_naming_the_option(tmp_path) -> None:
    _files(tmp_path)
    for args, says in ((["--output-columns", "a,b"], "--output-columns: images.npz is an array"),
                       (["--label-column", "y"], "--label-column: images.npz"),
                       (["--feature-names", "r,g,b"], "one tensor feature. Fix: give it one name"),
                       (["--channel-axis", "rgb"], "--channel-axis must be an axis of the array or none"),
                       (["--channel-axis", "5"], "channel_axis 5 is not an axis of rows of shape")):
        res = _build(str(tmp_path / "images.npz"), "-o", str(tmp_path / "bad.npz"), *args)
        assert res.exit_code != 0 and says in res.output, (args, res.output)
        assert "Traceback" not in res.output


def test_config_check_takes_a_raw_npz_of_images(tmp_path) -> None:
    _files(tmp_path)
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({"model": "cnn", "reference": {"path": "images.npz"}}))
    res = CliRunner().invoke(main, ["config", "check", str(tmp_path / "monitor.yaml")])
    assert res.exit_code == 0, res.output
