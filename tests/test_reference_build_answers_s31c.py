"""``monitor reference build`` for a generative model (``output.kind: text``).

Its answers are the text column ``output`` (``--text prompt,output``), not score columns: the
build warned of a missing ``--output-columns`` anyway, telling the user to name
``p_setosa,p_versicolor``-like columns a text generator does not have. ``--output-kind text`` says
what the model answers: the warning is gone, a file lacking the answers' column ``output`` is told
so, and score columns given for such a model are refused naming the fix. Without the flag, a
profile that holds a text column ``output`` has the warning name ``--output-kind text``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from monitor.cli import main
from monitor.profile import load_reference
from tests.test_text_drift import texts


def _csv(tmp_path: Path, answers: str = "output") -> Path:
    rng = np.random.default_rng(3)
    path = tmp_path / "ref.csv"
    pd.DataFrame({"prompt": texts(rng, 300), answers: texts(rng, 300)}).to_csv(path, index=False)
    return path


def _build(tmp_path: Path, *args: str, answers: str = "output") -> tuple[int, str, Path]:
    out = tmp_path / "ref.npz"
    result = CliRunner().invoke(main, ["reference", "build", str(_csv(tmp_path, answers)), "-o", str(out), "--quiet",
                                       "--text", f"prompt,{answers}", *args])
    return result.exit_code, result.output, out


def test_kind_text_answers_are_no_missing_output_columns(tmp_path: Path) -> None:
    code, said, out = _build(tmp_path, "--output-kind", "text")
    assert code == 0, said
    assert "--output-columns" not in said and "warning" not in said, said
    assert "answers" in said and "output" in said, said
    assert set(load_reference(out).vocabularies) == {"prompt", "output"}


def test_without_the_kind_the_warning_names_kind_text_for_a_column_output(tmp_path: Path) -> None:
    code, said, _ = _build(tmp_path)
    assert code == 0, said
    assert "warning: " in said and "--output-kind text" in said, said


def test_kind_text_without_a_column_output_says_where_the_answers_are_read(tmp_path: Path) -> None:
    code, said, _ = _build(tmp_path, "--output-kind", "text", answers="response")
    assert code == 0, said
    assert "warning: " in said and "'output'" in said and "response" in said and "rename" in said, said


def test_score_columns_for_a_generator_are_refused_naming_the_fix(tmp_path: Path) -> None:
    code, said, out = _build(tmp_path, "--output-kind", "text", "--output-columns", "output")
    assert code != 0 and "--output-columns" in said and "remove" in said, said
    assert not out.exists()


def test_other_kinds_still_warn_of_missing_output_columns(tmp_path: Path) -> None:
    code, said, _ = _build(tmp_path, "--output-kind", "probabilities")
    assert code == 0, said
    assert "no --output-columns" in said, said
    code, said, _ = _build(tmp_path, "--output-kind", "none")
    assert code == 0 and "--output-columns" not in said, said
