"""``output.kind: none``: a model whose outputs are not monitored, its inputs are (seeded).

Found by a user study: a text generator, an object detector, a ranker or an encoder returns
neither class scores, labels, multi-label probabilities nor one value per row, and no output kind
fitted: every call was refused (non_numeric_output, rows_mismatch, output_shape), its inputs lost
with it. ``none`` is now an output kind: the config accepts it (``monitor config check`` too), its
default detectors are the input-side ones (input drift, data quality, multivariate drift, probing
where the reference allows), and a listed detector that reads outputs is refused naming the entry,
the detector and the fix, as a multi-label model refuses single-label detectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from monitor.cli import main
from monitor.config import ConfigError, parse_config
from monitor.core import Monitor
from monitor.detectors.defaults import default_detectors, why_not_run
from monitor.reference import Reference
from monitor.schema import OutputSpec

#: every detector that reads the model's outputs
READS_OUTPUTS = ("confidence", "calibration", "segments", "confidence_drift", "prediction_drift", "accuracy_estimation",
                 "regression", "output_drift", "output_repeats", "multilabel")


def _reference(rows: int = 2000) -> Reference:
    return Reference.from_arrays(np.random.default_rng(0).normal(size=(rows, 3)), numeric_names=["a", "b", "c"])


def _monitor(reference: Reference | None = None, **config: object) -> Monitor:
    return Monitor(model="m", config={"output": {"kind": "none"}, **config}, reference=reference,
                   registry=CollectorRegistry(), start_worker=False, live=False)


def test_the_config_accepts_kind_none_and_refuses_classes_with_it() -> None:
    cfg = parse_config({"model": "gen", "output": {"kind": "none"}}).model()
    assert cfg.output.kind == "none" and not cfg.output.reads_outputs and not cfg.output.is_classifier
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "gen", "output": {"kind": "none", "classes": ["a", "b"]}})
    assert "output.classes" in str(err.value) and "remove classes" in str(err.value)
    with pytest.raises(ConfigError) as err:  # a wrong kind names none among the kinds
        parse_config({"model": "gen", "output": {"kind": "boxes"}})
    assert "none" in str(err.value)


def test_the_defaults_of_kind_none_watch_the_inputs_only() -> None:
    out = OutputSpec("none")
    kinds = {d.kind for d in default_detectors(out, _reference())}
    assert kinds == {"data_quality", "input_drift", "pca_drift", "probing"}, kinds  # probing needs no scores here
    assert {d.kind for d in default_detectors(out, None)} == {"data_quality"}
    mon = _monitor(_reference())
    try:
        assert {d.kind for d in mon.detectors} == kinds
    finally:
        mon.close()
    assert "output.kind: none" in why_not_run("confidence", out, _reference(), None)


@pytest.mark.parametrize("kind", READS_OUTPUTS)
def test_a_listed_detector_that_reads_outputs_is_refused_naming_it_and_the_fix(kind: str) -> None:
    with pytest.raises(ConfigError) as err:
        _monitor(_reference(), detectors=["input_drift", kind])
    text = str(err.value)
    assert "detectors[1]" in text and kind in text and "output.kind: none" in text, text
    assert "Fix: remove this entry" in text, text


def config_check(tmp_path: Path, raw: dict) -> tuple[int, str]:
    """``monitor config check`` of config ``raw``: its exit code and output."""
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def test_config_check_accepts_kind_none_and_refuses_a_score_detector(tmp_path: Path) -> None:
    def check(raw: dict) -> tuple[int, str]:
        return config_check(tmp_path, raw)

    code, output = check({"model": "gen", "features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "none"}})
    assert code == 0, output
    code, output = check({"model": "gen", "output": {"kind": "none"}, "detectors": ["data_quality", "confidence"]})
    assert code != 0 and "detectors[1]" in output and "confidence" in output and "output.kind: none" in output, output
