"""Drift of images, watched through their per-row descriptors (seeded).

A call on a batch of images ``(n, c, h, w)`` was refused whole as ``wrong_shape``: nothing about
the images (nor the outputs) was monitored. The images are now rows of one tensor feature,
described per row in the worker (``input.mean``, ``input.std``, ``input.at_max_share``...), and a
reference built from images (``Reference.from_arrays(images, scores=...)``) is profiled the same
way, so that input drift compares them and its explanations name the descriptor that moved.

Stated: images drawn as the reference's were (8-bit 3 x 16 x 16, each with its own brightness and
contrast, a 3,000-row reference) raise no input or PCA drift over 25,000 rows in any of 4 seeds
(at the default ERT of 1,000,000 rows the union bound allows 0.1 false alarm per detector over
those 100,000 rows); a brightness shift of 15 levels (of 255), a contrast cut to 0.7 of itself, a
fifth of the images over-exposed (clipped at 255) and a blank camera are each detected by input
drift within 200 rows of the onset, a descriptor that moved named first in the explanation (a
channel's mean or std, with the overall one, where all channels moved alike).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.reference import Reference

SHAPE = (3, 16, 16)
DETECTED_WITHIN = 200
BATCH = 50


def images(rng: np.random.Generator, n: int, brightness: float = 0.0, contrast: float = 1.0,
           over_exposed: float = 0.0, blank: float = 0.0) -> np.ndarray:
    """``n`` 8-bit images: each a brightness (mean level) and a contrast (spread) of its own,
    pixels around them, clipped to 0..255 as a camera does; a share ``over_exposed`` 150 levels
    brighter, a share ``blank`` black (a camera off)."""
    level = rng.normal(120.0, 25.0, n) + brightness
    spread = rng.uniform(20.0, 50.0, n) * contrast
    level = np.where(rng.uniform(size=n) < over_exposed, level + 150.0, level)
    pixels = level[:, None, None, None] + spread[:, None, None, None] * rng.standard_normal((n, *SHAPE))
    pixels[rng.uniform(size=n) < blank] = 0.0
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def scores(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.dirichlet([2.0, 1.0, 1.0], n)


def reference() -> Reference:
    rng = np.random.default_rng(0)
    return Reference.from_arrays(images(rng, 3000), scores=scores(rng, 3000))


def first_alarm(ref: Reference, seed: int, rows: int, onset: int | None = None, *, draw: Any = None,
                kinds: tuple[str, ...] = ("input_drift", "pca_drift"), **shift) -> tuple[int | None, str, list]:
    """The row count at which one of the ``kinds`` of drift detectors (input and PCA drift) first
    fired on images of ``draw`` (:func:`images`; ``shift`` its arguments from ``onset``), None:
    never; which one, and its top features then."""
    rng = np.random.default_rng(seed)
    draw = draw or images
    mon = Monitor(model="cnn", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False,
                  config={"detectors": [{"kind": k} for k in kinds]})
    try:
        for start in range(0, rows, BATCH):
            kw = shift if onset is not None and start >= onset else {}
            mon.observe(draw(rng, BATCH, **kw), scores(rng, BATCH), timestamp=1_000_000.0 + start / 10)
            mon.flush()
            for det in mon.detectors:
                if det.drift_detected:
                    return start + BATCH, det.kind, getattr(det, "top_features", [])
        return None, "", []
    finally:
        mon.close()


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_images_like_the_references_raise_no_drift(seed) -> None:
    assert first_alarm(reference(), seed, 25_000) == (None, "", [])


@pytest.mark.parametrize("shift, moved", [
    # a channel's own mean or std moves with the overall one (the images' 3 channels are alike)
    ({"brightness": 15.0}, ("input.mean", "input.mean_c0", "input.mean_c1", "input.mean_c2")),
    ({"contrast": 0.7}, ("input.std", "input.std_c0", "input.std_c1", "input.std_c2")),
    # over-exposed images are also lighter in their darkest pixel
    ({"over_exposed": 0.2}, ("input.at_max_share", "input.min")),
    ({"blank": 1.0}, ("input.at_max_share", "input.at_min_share", "input.std", "input.mean")),
], ids=["brightness", "contrast", "over-exposed", "blank"])
def test_a_shift_of_the_images_is_detected_and_named(shift, moved) -> None:
    onset = 2000
    alarm, kind, top = first_alarm(reference(), 21, 5000, onset, **shift)
    assert alarm is not None and alarm - onset <= DETECTED_WITHIN, (alarm, kind)
    assert kind == "input_drift" and top and top[0][0] in moved, (kind, top)


def test_the_readme_states_these_figures_and_every_descriptor() -> None:
    from monitor.tensor import DESCRIPTORS
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "README.md").read_text()
    part = text[text.index("**Images, audio, sequences**"):text.index("**Embeddings**")]
    assert all(f"`{d}`" in part for d in DESCRIPTORS), [d for d in DESCRIPTORS if f"`{d}`" not in part]
    assert f"within {DETECTED_WITHIN} rows" in part and "4 streams of 25,000 rows" in part and "3,000-row reference" in part
