"""Two findings of a walkthrough of ``monitor config check`` (s38d)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main


def _check(tmp_path: Path, text: str) -> tuple[int, list[str]]:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, [line for line in res.output.splitlines() if line.startswith("FAILED: ")]


@pytest.mark.parametrize("text, quoted", [
    # a flow mapping whose value holds braces: "expected ',' or '}', but got '{'"
    ("model: m\ncheckpoint: {path: state/{model}.ckpt}\n", "path: 'state/{model}.ckpt'"),
    ("model: m\ncheckpoint: {path: state/{model}.ckpt, interval: 5m}\n", "path: 'state/{model}.ckpt'"),
    # a block value that starts with a brace: "expected <block end>, but found '<scalar>'"
    ("model: m\ncheckpoint:\n  path: {model}.ckpt\n", "path: '{model}.ckpt'"),
    ("model: m\nrules: {external_labels: {team: a{b}}}\n", "team: 'a{b}'"),
])
def test_a_value_holding_braces_is_told_to_be_quoted(tmp_path, text, quoted):
    code, failed = _check(tmp_path, text)
    assert code == 1 and len(failed) == 1, failed
    assert "invalid YAML at line" in failed[0]
    assert f"Fix: quote the value: {quoted} " in failed[0], failed[0]


@pytest.mark.parametrize("text", [
    "model: m\ncheckpoint: {path: state/x.ckpt\n",  # an unclosed mapping: no value to quote
    "model: m\nfeatures: [a, {b]\n",  # a list with a broken mapping in it
    "model: m\nqueue:\ncapacity: 5\n  batch_max: 3\n",  # indentation
])
def test_other_syntax_errors_keep_the_general_fix(tmp_path, text):
    code, failed = _check(tmp_path, text)
    assert code == 1 and len(failed) == 1, failed
    assert failed[0].endswith("Fix: fix the YAML syntax (indentation, colons, quotes)"), failed[0]


def test_the_quoted_value_the_fix_gives_is_read_as_written(tmp_path):
    (tmp_path / "state").mkdir()
    code, failed = _check(tmp_path, "model: m\ncheckpoint: {path: 'state/{model}.ckpt'}\n")
    assert code == 0, failed


def _regressor_reference(folder: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    path = folder / "reference.npz"
    np.savez(path, X=x, scores=x @ np.array([50.0, 20.0]) + 150.0)  # a regressor's values, none in [0, 1]
    return path


REGRESSION_KIND_WORDS = ('output.kind: regression for a regression model\'s values (output: {kind: regression} in '
                         'monitor.yaml, config={"output": {"kind": "regression"}} in code)')


def test_the_regression_kind_fix_of_a_regressors_reference_fits_the_check_and_the_code(tmp_path):
    """A regressor's reference under the default output kind: the fix ended "(in code: Monitor(...,
    config=...))", also printed by `monitor config check`, whose user writes a monitor.yaml."""
    _regressor_reference(tmp_path)
    code, failed = _check(tmp_path, "model: m\nfeatures: [a, b]\nreference: {path: reference.npz}\n")
    assert code == 1 and len(failed) == 1, failed
    assert "in code: Monitor(" not in failed[0]
    assert REGRESSION_KIND_WORDS in failed[0], failed[0]

    import numpy as np
    from prometheus_client import CollectorRegistry

    from monitor import Monitor, Reference
    from monitor.config import ConfigError

    with np.load(tmp_path / "reference.npz") as data:
        reference = Reference.from_arrays(data["X"], numeric_names=["a", "b"], scores=data["scores"])
    with pytest.raises(ConfigError) as err:  # in code: the same words
        Monitor(model="m", config={}, reference=reference, registry=CollectorRegistry(), live=False, start_worker=False)
    assert REGRESSION_KIND_WORDS in str(err.value)


def test_the_regression_kind_fix_of_live_rows_fits_the_sidecar_and_the_code(caplog):
    """The same words for live rows out of [0, 1] (logged by a sidecar and by a Monitor in code)."""
    import numpy as np
    from prometheus_client import CollectorRegistry

    from monitor import Monitor

    mon = Monitor(model="m", config={}, registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        with caplog.at_level("WARNING", logger="monitor"):
            mon.observe(np.zeros((4, 2)), np.full(4, 153.2))
            mon.flush()
    finally:
        mon.close()
    said = [r.getMessage() for r in caplog.records if "probability_out_of_range" in r.getMessage()]
    assert said and "in code: Monitor(" not in said[0]
    assert 'output.kind: regression (output: {kind: regression} in monitor.yaml, config={"output": {"kind": ' \
           '"regression"}} in code)' in said[0], said[0]
