"""Drift of free text, watched through its descriptors (seeded).

A reference DataFrame's free-text column was read as a categorical feature: nearly every value an
unseen category, live and in the reference alike, so nothing about the text was monitored. It is
now a text feature (found without being named, said once), profiled as numbers that describe each
text (``review.length``, ``review.words``, ``review.oov_share``...), and live texts are described
the same way in the worker, so that input drift compares them and its explanations name them.

Stated: texts drawn as the reference's were (a Zipf vocabulary of 3,000 words, 5 to 25 words a
text) raise no input drift over 8,000 rows in any of 4 seeds, ``oov_share`` included (each
reference text's share is read leaving that text out of the vocabulary: read against its own
words it was near 0, and live texts of the same kind read as drift); texts twice as long, or
in another vocabulary, are detected within 500 rows of the onset, the feature that moved first
in the explanation.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.reference import Reference, reference_from_state, reference_state

WORDS = 3000
DETECTED_WITHIN = 500


def _vocabulary(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(WORDS)])


ENGLISH, OTHER = _vocabulary(1), _vocabulary(2)
ZIPF = 1.0 / np.arange(1, WORDS + 1)
ZIPF /= ZIPF.sum()


def texts(rng: np.random.Generator, n: int, vocabulary: np.ndarray = ENGLISH, words: tuple[int, int] = (5, 26)) -> list[str]:
    out = []
    for k in rng.integers(*words, size=n):
        chosen = vocabulary[rng.choice(WORDS, size=k, p=ZIPF)]
        out.append(" ".join(chosen).capitalize() + ".")
    return out


def _frame(rng: np.random.Generator, n: int, **kw) -> pd.DataFrame:
    return pd.DataFrame({"review": texts(rng, n, **kw), "stars": rng.integers(1, 6, n)})


def _scores(rng: np.random.Generator, n: int) -> np.ndarray:
    p = rng.uniform(size=n)
    return np.c_[1 - p, p]


def _reference() -> Reference:
    rng = np.random.default_rng(0)
    return Reference.from_arrays(_frame(rng, 3000), scores=_scores(rng, 3000))


def _first_alarm(reference: Reference, seed: int, rows: int, onset: int | None = None, **shift) -> tuple[int | None, list]:
    """The row count at which input drift first fired (None: never), and its top features then."""
    mon = Monitor(model="reviews", reference=reference, registry=CollectorRegistry(), start_worker=False, live=False)
    return first_alarm(mon, seed, rows, onset, **shift)


def first_alarm(mon: Monitor, seed: int, rows: int, onset: int | None = None, **shift) -> tuple[int | None, list]:
    """:func:`_first_alarm` on a monitor made otherwise (a reference file's), closed at the end."""
    rng = np.random.default_rng(seed)
    try:
        for start in range(0, rows, 100):
            kw = shift if onset is not None and start >= onset else {}
            ts = 1_000_000.0 + start / 10  # ten rows a second
            mon.observe(_frame(rng, 100, **kw), _scores(rng, 100), timestamp=ts)
            mon.flush()
            det = next(d for d in mon.detectors if d.kind == "input_drift")
            if det.drift_detected:
                return start + 100, det.top_features
        return None, []
    finally:
        mon.close()


def test_a_free_text_column_of_a_reference_frame_is_a_text_feature_said_once(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor"):
        ref = _reference()
    assert ref.text_names == ("review",) and ref.categorical_names == ()
    assert "review.oov_share" in ref.numeric_names and ref.feature_names == ("stars", "review")
    assert sum("hold free text" in r.getMessage() and "categorical_names" in r.getMessage() for r in caplog.records) == 1
    assert 0 < len(ref.vocabularies["review"]) <= WORDS
    # named categorical, it stays one; and the vocabulary survives a checkpoint
    rng = np.random.default_rng(0)
    assert Reference.from_arrays(_frame(rng, 50), categorical_names=["review"]).categorical_names == ("review",)
    assert reference_from_state(reference_state(ref)).vocabularies == ref.vocabularies


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_texts_like_the_references_raise_no_drift(seed) -> None:
    assert _first_alarm(_reference(), seed, 8000) == (None, [])


@pytest.mark.parametrize("shift, moved", [({"words": (10, 52)}, ("review.length", "review.words")),
                                           ({"vocabulary": OTHER}, ("review.oov_share",))],
                         ids=["twice-as-long", "another-vocabulary"])
def test_a_shift_of_the_texts_is_detected_and_named(shift, moved) -> None:
    onset = 2000
    alarm, top = _first_alarm(_reference(), 21, 6000, onset, **shift)
    assert alarm is not None and alarm - onset <= DETECTED_WITHIN, alarm
    assert top and top[0][0] in moved, top


def test_live_row_objects_and_a_list_of_texts_meet_the_references_text_feature() -> None:
    rng = np.random.default_rng(3)
    reviews = texts(rng, 500)
    both = Reference.from_arrays(rng.integers(1, 6, (500, 1)), numeric_names=["stars"], text=reviews,
                                 text_names=["review"], scores=_scores(rng, 500))
    alone = Reference.from_arrays(np.empty((500, 0)), text=np.array(reviews, dtype=object), text_names=["review"],
                                  scores=_scores(rng, 500))
    for ref, inputs in ((both, [{"review": t, "stars": 3} for t in texts(rng, 3)]), (alone, texts(rng, 3))):
        mon = Monitor(model="reviews", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
        try:
            mon.observe(inputs, _scores(rng, 3))
            mon.flush()
            assert mon.store.value("monitor_predictions") == 3
            assert mon.pipeline.builder.schema.text_names == ("review",)
            assert mon.store.value("monitor_data_invalid_rows", {"feature": "review.oov_share", "reason": "missing"}) == 0
        finally:
            mon.close()
