"""``monitor reference show`` said nothing of the model's outputs or the labels (s38k).

``monitor reference build`` says "model outputs, labels" when it keeps them, and a profile without
them leaves the output detectors (confidence_drift, prediction_drift, accuracy_estimation,
output_drift) and the reference accuracy out when the agent starts; the summary a data scientist
reads before going live listed the features and the PCA only (``--json`` the class names only), so
a profile built without ``--output-columns`` or ``--label-column`` looked as complete as one with
them. It now says the classes, how often each was predicted and the mean top score, or a regression
model's values, and the labels per class, or that there are none and what that leaves out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from monitor.cli import main


def _csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = ["age,income,p_no,p_yes,label,target,pred"]
    for i in range(400):
        p = 0.8 if i % 4 else 0.3  # 'no' predicted on 3 rows of 4
        label = int(i % 5 == 0)  # 'yes' on 1 row of 5
        lines.append(f"{rng.normal(40, 10):.2f},{rng.normal(5, 1):.3f},{p},{1 - p:.1f},{label},{i / 10},{i / 10 + 1}")
    path = tmp_path / "ref.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _show(*args: str) -> str:
    result = CliRunner().invoke(main, ["reference", "show", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_show_says_the_outputs_and_labels_the_profile_keeps(tmp_path: Path) -> None:
    data, runner = _csv(tmp_path), CliRunner()
    full, bare, reg = tmp_path / "full.npz", tmp_path / "bare.npz", tmp_path / "reg.npz"
    for out, options in ((full, ["--output-columns", "p_no,p_yes", "--label-column", "label", "--classes", "no,yes",
                                 "--exclude", "target,pred"]),
                         (bare, ["--exclude", "p_no,p_yes,label,target,pred"]),
                         (reg, ["--output-columns", "pred", "--label-column", "target", "--exclude", "p_no,p_yes,label"])):
        built = runner.invoke(main, ["reference", "build", str(data), "-o", str(out), "--quiet", *options])
        assert built.exit_code == 0, built.output
    text = _show(str(full))
    assert "model outputs: classes no, yes; predicted no 75.0%, yes 25.0%; mean top score 0.775" in text
    assert "labels: 400 (no 80.0%, yes 20.0%)" in text
    info = json.loads(_show(str(full), "--json"))
    assert info["outputs"]["predicted_counts"] == [300, 100]
    assert info["labels"] == {"rows": 400, "counts": [320, 80]}
    text = _show(str(bare))
    assert "model outputs: none (confidence_drift, prediction_drift, accuracy_estimation and output_drift" in text
    assert "labels: none (accuracy_estimation and the reference accuracy need them" in text
    assert json.loads(_show(str(bare), "--json"))["labels"] is None
    text = _show(str(reg))
    assert "model outputs: one value per row, range [1, 40.9], mean 20.95" in text
    assert "labels: on the 400 rows kept in the profile" in text


def test_one_component_is_said_in_the_singular() -> None:
    """"1 components" in reference build and show (s38k's note)."""
    from monitor.cli.reference import _components

    assert (_components(1), _components(3)) == ("1 component", "3 components")
