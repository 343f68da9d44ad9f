"""``monitor reference build`` of a 2-D .npy or .npz took the column options and read them as nothing (s38k).

``--output-columns f1`` on an .npy wrote a profile without model outputs, f1 kept as an input
feature, exit 0, and then warned "no --output-columns ... Fix: name the columns of the model's
outputs, e.g. --output-columns p_setosa,p_versicolor": the fix it had just ignored. ``--label-column``,
``--exclude`` and ``--categorical`` were dropped alike. The agent's start and ``monitor config check``
refuse the same roles given as ``reference.*`` keys (check_column_roles_target); the command now
refuses them in its own option names, and an array file's missing outputs or labels are said with
the fix that applies to it (its ``scores`` and ``labels`` arrays), as for a file of images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.profile import Profile


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    p1 = 1.0 / (1.0 + np.exp(-x[:, 0]))
    scores = np.column_stack([1 - p1, p1])
    labels = (rng.random(300) < p1).astype(int)
    np.save(tmp_path / "rows.npy", x)
    np.savez(tmp_path / "rows.npz", X=x, scores=scores, labels=labels)
    np.savez(tmp_path / "scored.npz", X=x, scores=scores)
    return tmp_path / "rows.npy", tmp_path / "rows.npz", tmp_path / "scored.npz"


@pytest.mark.parametrize("option", [("--output-columns", "f2"), ("--label-column", "f2"), ("--exclude", "f0"),
                                    ("--categorical", "f1")])
@pytest.mark.parametrize("which", [0, 1])
def test_column_options_on_an_array_file_are_refused_naming_the_option(tmp_path: Path, option: tuple[str, str],
                                                                       which: int) -> None:
    data = _files(tmp_path)[which]
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(main, ["reference", "build", str(data), "-o", str(out), "--quiet", *option])
    assert result.exit_code == 1, result.output
    assert f"Error: {option[0]}: {data.name} is " in result.output
    assert f"remove {option[0]}" in result.output
    assert "numpy.savez(path, X=rows, scores=" in result.output.replace("\n", " ") or which == 1  # an .npy: how to name roles
    assert not out.exists()


def test_an_array_files_missing_outputs_and_labels_are_said_with_its_own_fix(tmp_path: Path) -> None:
    npy, npz, scored = _files(tmp_path)
    runner = CliRunner()
    bare = runner.invoke(main, ["reference", "build", str(npy), "-o", str(tmp_path / "a.npz"), "--quiet"])
    assert bare.exit_code == 0, bare.output
    assert "no model outputs" in bare.output and "numpy.savez(path, X=rows, scores=" in bare.output
    assert "--output-columns" not in bare.output
    assert Profile.load(tmp_path / "a.npz").outputs is None
    no_labels = runner.invoke(main, ["reference", "build", str(scored), "-o", str(tmp_path / "b.npz"), "--quiet"])
    assert no_labels.exit_code == 0, no_labels.output
    assert "no labels" in no_labels.output and "labels=labels" in no_labels.output
    assert "--label-column" not in no_labels.output
    whole = runner.invoke(main, ["reference", "build", str(npz), "-o", str(tmp_path / "c.npz"), "--quiet"])
    assert whole.exit_code == 0 and "warning" not in whole.output, whole.output
    prof = Profile.load(tmp_path / "c.npz")
    assert prof.outputs is not None and prof.label_counts is not None
    assert prof.numeric_names == ("f0", "f1", "f2")
