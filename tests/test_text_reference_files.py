"""Free text in a reference read from a file: a CSV or Parquet reference, and a profile built from one.

A CSV or Parquet reference (``monitor reference build ref.csv``, or ``reference.path: ref.csv``)
read a free-text column as a categorical feature: no false alarm, but nothing about the text was
monitored, while the same rows given to ``Reference.from_arrays`` in code were a text feature.
Such columns are now found as the DataFrame's are (or named: ``--text`` / ``reference.text``),
read as their descriptors against the whole column's vocabulary, and a saved profile keeps the
vocabularies: a sidecar with ``reference.path: ref.npz`` monitors the text as a reference built in
code does, with the bounds of tests/test_text_drift.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.cli import main
from monitor.config import ConfigError, load_config
from monitor.profile import Profile, ProfileError, build_profile, load_reference, read_table
from monitor.reference import Reference, reference_fingerprint, reference_from_state, reference_state
from tests.test_text_drift import DETECTED_WITHIN, OTHER, _frame, _scores, first_alarm

ROWS = 3000


def _reference_frame() -> pd.DataFrame:
    """The rows of tests/test_text_drift.py's reference, with the model's outputs as columns."""
    rng = np.random.default_rng(0)
    frame, scores = _frame(rng, ROWS), _scores(rng, ROWS)
    return frame.assign(p_no=scores[:, 0], p_yes=scores[:, 1])


def _in_code() -> Reference:
    frame = _reference_frame()
    return Reference.from_arrays(frame[["review", "stars"]], scores=frame[["p_no", "p_yes"]].to_numpy())


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "ref.csv"
    _reference_frame().to_csv(path, index=False)
    return path


def _build(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(main, ["reference", "build", str(_csv(tmp_path)), "-o", str(out), "--output-columns",
                                       "p_no,p_yes", "--quiet", *args])
    assert result.exit_code == 0, result.output
    return out


def _monitor(reference_path: Path, **reference: object) -> Monitor:
    return Monitor(config={"model": "reviews", "reference": {"path": str(reference_path), **reference}},
                   registry=CollectorRegistry(), start_worker=False, live=False)


def test_a_profile_built_from_a_csv_holds_the_text_as_a_reference_built_in_code_does(tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor"):
        out = _build(tmp_path)
    assert any("hold free text" in r.getMessage() and "--categorical" in r.getMessage() for r in caplog.records)
    code = _in_code()
    ref = load_reference(out)
    assert ref.text_names == ("review",) and ref.categorical_names == () and ref.feature_names == ("stars", "review")
    assert ref.vocabularies == code.vocabularies
    assert ref.numeric_names == code.numeric_names
    # every row kept (keep_rows 5000 >= 3000): the descriptors are the ones computed in code, oov_share included
    np.testing.assert_array_equal(ref.numeric, code.numeric)
    # and the vocabulary survives a checkpoint, under the same fingerprint
    back = reference_from_state(reference_state(ref))
    assert back.vocabularies == ref.vocabularies and reference_fingerprint(back) == reference_fingerprint(ref)


def test_a_csv_read_in_chunks_has_the_whole_columns_vocabulary(tmp_path) -> None:
    """The vocabulary needs every text: a file read 700 rows at a time is counted in a first pass."""
    names, _cats, chunks = read_table(_csv(tmp_path), output_columns=["p_no", "p_yes"], chunk_rows=700, progress=False)
    tables = list(chunks)
    code = _in_code()
    assert names == code.numeric_names and len(tables) == 5
    assert all(t.vocabularies == code.vocabularies for t in tables)
    np.testing.assert_array_equal(np.vstack([t.numeric for t in tables]), code.numeric)


@pytest.mark.parametrize("seed", [11, 12])
def test_unchanged_texts_raise_no_drift_against_a_csv_profile(tmp_path, seed) -> None:
    assert first_alarm(_monitor(_build(tmp_path)), seed, 8000) == (None, [])


@pytest.mark.parametrize("shift, moved", [({"words": (10, 52)}, ("review.length", "review.words")),
                                           ({"vocabulary": OTHER}, ("review.oov_share",))],
                         ids=["twice-as-long", "another-vocabulary"])
def test_a_shift_of_the_texts_is_detected_against_a_csv_profile(tmp_path, shift, moved) -> None:
    onset = 2000
    alarm, top = first_alarm(_monitor(_build(tmp_path)), 21, 6000, onset, **shift)
    assert alarm is not None and alarm - onset <= DETECTED_WITHIN, alarm
    assert top and top[0][0] in moved, top


def test_a_raw_parquet_reference_path_reads_the_text_as_text(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "ref.parquet"
    _reference_frame().to_parquet(path, index=False)
    mon = _monitor(path, output_columns=["p_no", "p_yes"])
    try:
        code = _in_code()
        assert mon.reference.text_names == ("review",) and mon.reference.vocabularies == code.vocabularies
        np.testing.assert_array_equal(mon.reference.numeric, code.numeric)
    finally:
        mon.close()
    alarm, top = first_alarm(_monitor(path, output_columns=["p_no", "p_yes"]), 21, 3000, 1000, vocabulary=OTHER)
    assert alarm is not None and alarm - 1000 <= DETECTED_WITHIN and top[0][0] == "review.oov_share", (alarm, top)


def test_text_columns_are_named_or_none_read_as_text(tmp_path) -> None:
    none = Profile.load(_build(tmp_path, "--text", ""))
    assert none.categorical_names == ("review",) and none.vocabularies == {}
    # short labels are no free text unless named so
    path = tmp_path / "tags.csv"
    rng = np.random.default_rng(1)
    pd.DataFrame({"tag": rng.choice(["spam", "ham", "eggs"], 200), "x": rng.normal(size=200)}).to_csv(path, index=False)
    assert build_profile(path, progress=False).categorical_names == ("tag",)
    named = build_profile(path, text=["tag"], progress=False)
    assert named.categorical_names == () and named.numeric_names[1:] == ("tag.length", "tag.words", "tag.non_letter_share",
                                                                        "tag.non_ascii_share", "tag.oov_share")
    assert named.vocabularies == {"tag": ("eggs", "ham", "spam")}
    # through the config, as the agent reads a raw reference
    mon = _monitor(path, text=["tag"])
    try:
        assert mon.reference.text_names == ("tag",)
    finally:
        mon.close()


@pytest.mark.parametrize("kw, message", [
    ({"text": ["nope"]}, "text column 'nope' is not an input column"),
    ({"text": ["review"], "categorical": ["review"]}, "named both categorical and text"),
])
def test_a_wrong_text_column_is_refused_naming_the_fix(tmp_path, kw, message) -> None:
    with pytest.raises(ProfileError, match=message) as err:
        build_profile(_csv(tmp_path), output_columns=["p_no", "p_yes"], progress=False, **kw)
    assert "Fix:" in str(err.value)


@pytest.mark.parametrize("reference, message", [
    ({"path": "r.csv", "text": ["review"], "categorical": ["review"]}, "also under reference.categorical"),
    ({"path": "r.csv", "label_column": "y", "text": ["y"]}, "under reference.label_column"),
    ({"text": ["review"]}, "needs reference.path"),
])
def test_config_reference_text_is_checked(tmp_path, reference, message) -> None:
    cfg = tmp_path / "monitor.yaml"
    import json

    cfg.write_text(json.dumps({"model": "m", "reference": reference}))
    with pytest.raises(ConfigError, match=message) as err:
        load_config(cfg)
    assert "reference." in str(err.value)


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


def test_reference_build_help_and_summary_name_the_text(tmp_path) -> None:
    help_text = CliRunner().invoke(main, ["reference", "build", "--help"]).output
    assert "--text" in help_text and "oov_share" in help_text
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(main, ["reference", "build", str(_csv(tmp_path)), "-o", str(out), "--output-columns",
                                       "p_no,p_yes", "--quiet"])
    assert "1 numeric and 0 categorical features, 1 text (review)" in result.output, result.output
    shown = CliRunner().invoke(main, ["reference", "show", str(out)]).output
    assert f"text feature review: profiled as the numeric review.* above, a vocabulary of " \
           f"{len(_in_code().vocabularies['review'])} words" in shown


@pytest.mark.parametrize("reference_kind, configured, expected", [
    ("categorical", "text", "kind: text in the config, but the reference holds it as categorical"),
    ("text", "categorical", "kind: categorical in the config, but the reference holds it as free text"),
])
def test_a_feature_configured_as_another_kind_than_the_references_says_the_fix(tmp_path, caplog, reference_kind,
                                                                            configured, expected) -> None:
    args = ("--categorical", "review") if reference_kind == "categorical" else ()
    out = _build(tmp_path, *args)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = Monitor(config={"model": "reviews", "reference": {"path": str(out)},
                              "features": [{"name": "review", "kind": configured}, {"name": "stars"}]},
                      registry=CollectorRegistry(), start_worker=False, live=False)
        mon.close()
    said = [r.getMessage() for r in caplog.records if expected in r.getMessage()]
    assert len(said) == 1 and "Fix:" in said[0]
    fix = "--text review" if reference_kind == "categorical" else "declare it kind: text"
    assert fix in said[0]


def test_a_saved_profile_of_a_text_reference_keeps_its_vocabulary(tmp_path) -> None:
    """A profile of a reference built in code (Profile.from_reference, then save) lost the text
    features' vocabularies: loaded again, its descriptors were numeric features no live row has."""
    code = _in_code()
    back = Profile.load(Profile.from_reference(code).save(tmp_path / "p.npz")).to_reference()
    assert back.text_names == ("review",) and back.vocabularies == code.vocabularies
    assert back.feature_names == code.feature_names


def test_text_named_for_an_array_file_is_refused_naming_the_fix(tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    with pytest.raises(ProfileError, match="x.npy is an array file.*Fix: give the reference as CSV or Parquet"):
        build_profile(tmp_path / "x.npy", text=["review"], progress=False)


def test_readme_tells_how_a_csv_or_parquet_reference_reads_free_text() -> None:
    """README said a CSV or Parquet reference still read free text as categorical, and to build
    the reference in code for now."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    free_text = readme[readme.index("**Free text**"):readme.index("**Embeddings**")]
    assert "in code with `Reference.from_arrays` for now" not in free_text
    for said in ("`--text review,title`", "`reference.text: []`", "1,000,000 distinct words", "kind: text"):
        assert said in free_text, said
    assert "`reference.text`" in readme[:readme.index("**Free text**")]
