"""``positive_class`` of the segments detector as users write it: a class name from
``output.classes`` (as every other place of the config names classes) or a column index; a value
that is no class is refused by ``monitor config check`` and at load, naming the field and the fix.

Before, a name passed ``config check`` and then every start of ``monitor serve`` failed to load the
model (``int('fraud')``), and an index beyond the classes exported a positive rate of 0 for every
segment with a gap between a segment and itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.batch import Batch
from monitor.cli import main
from monitor.detectors.segments import SegmentDetector
from tests.sidecar_support import sample

CLASSES = ["legit", "review", "fraud"]


def _config(positive: object, classes: list[str] | None = CLASSES) -> dict:
    output: dict = {"kind": "probabilities"}
    if classes is not None:
        output["classes"] = classes
    return {"model": "m", "features": ["a"], "output": output,
            "detectors": [{"kind": "segments", "min_rows": 10, "positive_class": positive}]}


def _stream(n: int = 600) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    seg = np.where(rng.random(n) < 0.5, "eu", "us")
    probs = rng.dirichlet(np.ones(3), n)
    probs[seg == "us", 2] += 1.0  # "us" predicts fraud far more often
    probs /= probs.sum(axis=1, keepdims=True)
    return rng.normal(size=(n, 1)), probs, seg


def test_a_class_name_selects_its_column() -> None:
    x, probs, seg = _stream()
    mon = Monitor(config=_config("fraud"), registry=CollectorRegistry(), start_worker=False, live=False)
    mon.observe(x, probs, segment=list(seg), timestamp=1_700_000_000.0)
    mon.flush()
    text = mon.metrics_text()
    pred = probs.argmax(axis=1)
    for s in ("eu", "us"):
        assert sample(text, "monitor_segment_positive_rate_ratio", segment=s) == pytest.approx(np.mean(pred[seg == s] == 2))
    assert sample(text, "monitor_segment_max_gap_ratio", figure="positive_rate", high="us", low="eu") > 0.2
    mon.close()


@pytest.mark.parametrize("value, said", [("frud", "'frud' is not a class"), (3, "positive_class 3 is not a column"),
                                         (-1, "positive_class -1 is not a column"), (True, "is not a class")])
def test_config_check_refuses_what_is_no_class(tmp_path: Path, value: object, said: str) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(_config(value)))
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1, result.output
    assert "detectors[0].positive_class: " in result.output and said in result.output
    assert "output.classes" in result.output  # the fix is named
    path.write_text(yaml.safe_dump(_config("review")))
    ok = CliRunner().invoke(main, ["config", "check", str(path)])
    assert ok.exit_code == 0 and "SUCCESS" in ok.output


def test_an_index_beyond_the_outputs_is_an_error_not_a_rate_of_zero() -> None:
    """Without ``output.classes`` the number of columns is known only from the outputs: the batch
    is refused by the detector with the fix (counted as a detector failure), never exported as 0."""
    det = SegmentDetector(positive_class=7, min_rows=1)
    _, probs, seg = _stream(50)
    with pytest.raises(ValueError, match=r"positive_class 7 is not a column of the model's 3 outputs.*0 to 2"):
        det.update(Batch.from_arrays(np.zeros((50, 1)), probs, segment=list(seg)))
    assert det.gaps()["positive_rate"] is None
