"""Free text in a reference read from a file: a saved profile.

A saved profile kept no text feature's vocabulary: loaded again, a reference's text descriptors
were numeric features that no live row has. It now saves and loads them; a profile without text is
written and fingerprinted as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.profile import Profile, ProfileError, build_profile
from monitor.reference import Reference, reference_fingerprint
from tests.test_text_drift import _frame, _scores

ROWS = 3000


def _reference_frame() -> pd.DataFrame:
    """The rows of tests/test_text_drift.py's reference, with the model's outputs as columns."""
    rng = np.random.default_rng(0)
    frame, scores = _frame(rng, ROWS), _scores(rng, ROWS)
    return frame.assign(p_no=scores[:, 0], p_yes=scores[:, 1])


def _in_code() -> Reference:
    frame = _reference_frame()
    return Reference.from_arrays(frame[["review", "stars"]], scores=frame[["p_no", "p_yes"]].to_numpy())


def test_a_profile_without_text_is_written_and_fingerprinted_as_before(tmp_path) -> None:
    """Fingerprint computed before profiles held vocabularies: an upgrade must not set aside the
    detectors' checkpointed states of a reference without text."""
    rng = np.random.default_rng(5)
    path = tmp_path / "plain.csv"
    pd.DataFrame({"x": rng.normal(size=300).round(3), "city": rng.choice(["a", "b", "c"], 300)}).to_csv(path, index=False)
    prof = build_profile(path, progress=False)
    saved = Profile.load(prof.save(tmp_path / "plain.npz"))
    assert saved.vocabularies == {} and "vocabularies" not in str(np.load(tmp_path / "plain.npz")["meta.json"].tobytes())
    assert reference_fingerprint(saved.to_reference()) == (
        "sha256:0a17fea713de95cb8ed4d5d797ccfd1e81026e76ffa8c710146f5f90dd5fc24c")


def test_a_damaged_vocabulary_is_refused_naming_the_rebuild(tmp_path) -> None:
    prof = Profile.from_reference(_in_code())
    import dataclasses

    broken = dataclasses.replace(prof, vocabularies={"title": ("a",)}).save(tmp_path / "broken.npz")
    with pytest.raises(ProfileError, match="text feature 'title' without its descriptors.*monitor reference build"):
        Profile.load(broken)


def test_a_saved_profile_of_a_text_reference_keeps_its_vocabulary(tmp_path) -> None:
    """A profile of a reference built in code (Profile.from_reference, then save) lost the text
    features' vocabularies: loaded again, its descriptors were numeric features no live row has."""
    code = _in_code()
    back = Profile.load(Profile.from_reference(code).save(tmp_path / "p.npz")).to_reference()
    assert back.text_names == ("review",) and back.vocabularies == code.vocabularies
    assert back.feature_names == code.feature_names
