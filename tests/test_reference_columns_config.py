"""Raw CSV / Parquet reference data named in ``monitor.yaml`` can say which of its columns hold the
model's outputs and the labels (``reference.output_columns``, ``label_column``, ``exclude``,
``categorical``), as ``monitor reference build`` takes them on its command line. Found by a
walkthrough (session 17): a CSV holding ``p0, p1, label`` beside the features had no key to mark
them, so they were profiled as input features, the confidence detectors had no reference scores,
and ``reference.pca_fit`` of the features alone was passed by ``monitor config check`` and then
refused at the agent's start ("--pca-fit lacks the numeric feature(s) p0, p1, label")."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, parse_config
from monitor.core import Monitor
from monitor.profile import ProfileError

ROWS = 600


def _write_reference(folder: Path) -> None:
    """A held-out reference with an id, three features, the model's two class probabilities and
    the label, and a training set of the features alone (for the PCA)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(ROWS, 3))
    p1 = 1.0 / (1.0 + np.exp(-2.0 * x[:, 0]))
    y = (rng.random(ROWS) < p1).astype(int)
    with open(folder / "ref.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "a", "b", "c", "p0", "p1", "label"])
        for i in range(ROWS):
            w.writerow([f"r{i}", *x[i], 1.0 - p1[i], p1[i], y[i]])
    with open(folder / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c"])
        w.writerows(rng.normal(size=(1000, 3)).tolist())


def _config(folder: Path, reference: dict[str, Any], **extra: Any) -> Path:
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump({"model": "m", "reference": reference, **extra}, sort_keys=False))
    return path


def _check(path: Path) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


ROLES = {"path": "ref.csv", "pca_fit": "train.csv", "output_columns": ["p0", "p1"], "label_column": "label",
         "exclude": ["id"]}


def test_the_agent_reads_outputs_and_labels_from_the_named_columns(tmp_path: Path) -> None:
    _write_reference(tmp_path)
    path = _config(tmp_path, ROLES, output={"kind": "probabilities", "classes": ["neg", "pos"]})
    with Monitor.from_config(path) as mon:
        ref = mon.reference
        assert ref.numeric_names == ("a", "b", "c")
        assert ref.scores is not None and ref.scores.shape == (ROWS, 2)
        assert np.allclose(ref.scores.sum(axis=1), 1.0)
        assert ref.labels is not None and set(np.unique(ref.labels)) == {0, 1}
        # named as the config's classes, so that metrics by class agree with the live outputs'
        assert tuple(ref.classes) == ("neg", "pos")
        kinds = {d.kind for d in mon.detectors}
        # the detectors that need reference scores are built on them
        assert {"accuracy_estimation", "confidence_drift", "prediction_drift"} <= kinds
    assert _check(path)[0] == 0


def test_without_the_roles_the_check_fails_what_the_agent_refuses(tmp_path: Path) -> None:
    """The left-alone case of session 17: a pca_fit of the features alone, the outputs and label
    columns read as features. The check now reads the two headers and says what the start says."""
    _write_reference(tmp_path)
    path = _config(tmp_path, {"path": "ref.csv", "pca_fit": "train.csv", "exclude": ["id"]})
    with pytest.raises(ProfileError) as agent:
        Monitor.from_config(path)
    code, out = _check(path)
    assert code == 1
    assert "reference.pca_fit: --pca-fit train.csv lacks the numeric feature(s) p0, p1, label" in out
    assert str(agent.value).split(". Fix")[0] in out
    assert "reference.output_columns" in out  # the fix names the keys that would mark them


@pytest.mark.parametrize("key, value, said", [
    ("label_column", "lbl", "label column 'lbl' is not in the header of ref.csv"),
    ("output_columns", ["p0", "p_1"], "output column 'p_1' is not in the header of ref.csv"),
    ("exclude", ["ID"], "excluded column 'ID' is not in the header of ref.csv"),
])
def test_a_role_naming_no_column_fails_check_and_start_alike(tmp_path: Path, key: str, value: Any, said: str) -> None:
    _write_reference(tmp_path)
    path = _config(tmp_path, {**ROLES, key: value})
    with pytest.raises(ProfileError, match=said):
        Monitor.from_config(path)
    code, out = _check(path)
    assert code == 1
    assert f"reference.path: {said}" in out
    assert f"reference.{key}" in out  # the fix names the key to correct


def test_the_check_builds_the_scores_detectors_on_the_named_columns(tmp_path: Path) -> None:
    """Scores of 2 columns for 3 configured classes: the agent refuses them at start; the check,
    which does not profile raw data, reads the head's scores and says the same."""
    _write_reference(tmp_path)
    path = _config(tmp_path, ROLES, output={"kind": "probabilities", "classes": ["x", "y", "z"]})
    with pytest.raises(ConfigError) as agent:
        Monitor.from_config(path)
    code, out = _check(path)
    assert code == 1
    assert "the reference's scores have 2 columns, but output.classes names 3 classes" in out
    assert agent.value.problem.split(":")[0] in out


@pytest.mark.parametrize("target", ["profile", "npz"])
def test_roles_for_a_reference_without_named_columns_are_refused(tmp_path: Path, target: str) -> None:
    _write_reference(tmp_path)
    if target == "profile":
        res = CliRunner().invoke(main, ["reference", "build", str(tmp_path / "ref.csv"), "--output-columns", "p0,p1",
                                        "--label-column", "label", "--exclude", "id", "-o", str(tmp_path / "ref.npz")])
        assert res.exit_code == 0, res.output
        said = "ref.npz is a saved profile"
    else:
        np.savez(tmp_path / "ref.npz", X=np.random.default_rng(0).normal(size=(50, 3)))
        said = "ref.npz is an .npz, whose arrays name their roles"
    path = _config(tmp_path, {"path": "ref.npz", "label_column": "label"})
    with pytest.raises(ProfileError, match=said):
        Monitor.from_config(path)
    code, out = _check(path)
    assert code == 1 and f"reference.label_column: {said}" in out


@pytest.mark.parametrize("reference, key, problem", [
    ({"label_column": "y"}, "reference.label_column", "needs reference.path"),
    ({"path": "r.csv", "output_columns": ["p0", "y"], "label_column": "y"}, "reference.label_column",
     "column 'y' is also under reference.output_columns"),
    ({"path": "r.csv", "exclude": ["id"], "categorical": ["id"]}, "reference.categorical", "not an input feature"),
    ({"path": "r.csv", "output_columns": [1, 2]}, "reference.output_columns", "must be a list of strings"),
])
def test_column_roles_are_checked_against_each_other(reference: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "m", "reference": reference})
    assert err.value.key == key
    assert problem in err.value.problem


def test_class_names_yaml_reads_as_booleans_get_a_quoting_fix(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("model: m\noutput:\n  classes: [no, yes]\n")
    code, out = _check(path)
    assert code == 1
    assert 'classes: ["no", "yes"]' in out
    path.write_text('model: m\noutput:\n  classes: ["no", "yes"]\n')
    assert _check(path)[0] == 0


def test_excluding_every_column_is_refused(tmp_path: Path) -> None:
    """A profile of no column was written (exit 0) and then served as a reference on which every
    detector is left out."""
    _write_reference(tmp_path)
    res = CliRunner().invoke(main, ["reference", "build", str(tmp_path / "train.csv"), "--exclude", "a,b,c",
                                    "-o", str(tmp_path / "none.npz")])
    assert res.exit_code == 1
    assert "no column left to profile" in res.output and not (tmp_path / "none.npz").exists()
