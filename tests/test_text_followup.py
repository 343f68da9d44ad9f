"""Free text after a restart, from pandas' string columns, and in the probing detector.

Each test states a symptom a user saw with text features and what now happens instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.reference import Reference

WORDS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"])


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, rng.integers(3, 9))) for _ in range(n)]


def _scores(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.uniform(size=n)
    return np.c_[1 - p, p]


def _reviews(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"review": _texts(rng, n), "stars": rng.integers(1, 6, n)})


def _monitor(reference: Reference | None) -> Monitor:
    return Monitor(model="reviews", reference=reference, registry=CollectorRegistry(), start_worker=False, live=False)


def test_a_reference_adopted_from_a_checkpoint_reads_live_texts_as_text(tmp_path) -> None:
    """A monitor whose reference came from its checkpoint (reference.path gone) read the review
    column as a categorical feature: no descriptors, the text unmonitored, and the probing
    detector failing on every batch. It now reads it as the reference's text feature."""
    rng = np.random.default_rng(0)
    first = _monitor(Reference.from_arrays(_reviews(rng, 300), scores=_scores(rng, 300)))
    try:
        first.observe(_reviews(rng, 20), _scores(rng, 20))
        first.flush()
        first.save_checkpoint(tmp_path / "reviews.ckpt", final=True)
    finally:
        first.close()
    restarted = _monitor(None)
    try:
        assert restarted.restore_checkpoint(tmp_path / "reviews.ckpt")
        restarted.observe(_reviews(rng, 20), _scores(rng, 20))
        restarted.flush()
        assert restarted.pipeline.builder.schema.text_names == ("review",)
        assert restarted.store.value("monitor_data_invalid_rows", {"feature": "review.oov_share", "reason": "missing"}) == 0
        assert restarted.store.value("monitor_detector_errors", {"detector": "probing"}) == 0
    finally:
        restarted.close()


def test_a_string_dtype_reference_column_with_a_missing_review_is_text() -> None:
    """A reference review column of pandas' ``string`` dtype (``string[python]``) holding one
    missing value (pd.NA) was read as a categorical feature, where the same column without the
    gap, or of object dtype with None, was text. It is now text, the gap a missing text."""
    rng = np.random.default_rng(1)
    for dtype in ("string", "string[python]", object):
        frame = _reviews(rng, 200)
        frame["review"] = frame["review"].astype(dtype)
        frame.loc[5, "review"] = pd.NA if dtype != object else None
        ref = Reference.from_arrays(frame, scores=_scores(rng, 200))
        assert ref.text_names == ("review",) and ref.categorical_names == (), dtype
        length = ref.numeric[:, ref.numeric_names.index("review.length")]
        assert np.isnan(length[5]) and np.isfinite(np.delete(length, 5)).all()


def _titled(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Rows of an unnamed number, a long body and a short title: their descriptors far apart."""
    body = [" ".join(rng.choice(WORDS, rng.integers(30, 60))) for _ in range(n)]
    title = [" ".join(rng.choice(WORDS, rng.integers(2, 5))).upper() + "!" for _ in range(n)]
    return pd.DataFrame({"x": rng.normal(size=n), "body": body, "title": title})


def test_probing_reads_text_descriptors_by_name_beside_unnamed_numeric_columns() -> None:
    """A reference built from an array (its numeric column unnamed, f0) with texts title and
    body, watching live DataFrames (x, body, title): the probing detector read the live columns
    by position, for want of f0 among them, so the body's descriptors were standardised as the
    title's and every query read as out of distribution. The descriptors named alike are now
    read by name, the unnamed columns by position among the rest."""
    rng = np.random.default_rng(2)
    frame = _titled(rng, 2000)
    ref = Reference.from_arrays(frame[["x"]].to_numpy(), text=frame[["title", "body"]], text_names=["title", "body"],
                                scores=_scores(rng, 2000))
    assert ref.numeric_names[0] == "f0"
    mon = _monitor(ref)
    try:
        live = _titled(rng, 2000)
        for i in range(0, 2000, 100):
            mon.observe(live.iloc[i:i + 100], _scores(rng, 100), client=f"c{i % 7}")
        mon.flush()
        assert mon.store.value("monitor_probing_queries", {"outcome": "analysed"}) == 2000
        assert mon.store.value("monitor_probing_ood_ratio") < 0.05
    finally:
        mon.close()
