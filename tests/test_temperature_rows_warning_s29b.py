"""A ``temperature_rows`` below ``min_labels_calibration`` (session 29 review): the temperature is
fitted on at most the last ``temperature_rows`` labelled rows and only from
``min_labels_calibration`` of them, so ``{kind: calibration, temperature_rows: 100}`` never
exported ``monitor_recalibration_temperature`` (nor ``segments`` its per-segment one), and
``monitor config check`` said SUCCESS and nothing else. The detectors now warn when built, and
the check tells their warnings as ``WARNING: model '...':`` lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from monitor.cli import main


def _check(tmp_path: Path, detectors: list[Any]) -> tuple[int, str]:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({"model": "m", "detectors": detectors}, sort_keys=False))
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    return res.exit_code, res.output


def test_config_check_warns_of_a_temperature_that_can_never_be_fitted(tmp_path: Path) -> None:
    code, out = _check(tmp_path, [{"kind": "calibration", "temperature_rows": 100},
                                  {"kind": "segments", "temperature_rows": 150, "min_labels_calibration": 300}])
    assert code == 0
    assert ("WARNING: model 'm': calibration: temperature_rows (100) is below min_labels_calibration (200)" in out
            and "monitor_recalibration_temperature is never exported. Fix: temperature_rows: 200 or more" in out)
    assert ("WARNING: model 'm': segments: temperature_rows (150) is below min_labels_calibration (300)" in out
            and "monitor_segment_recalibration_temperature is never exported" in out)


def test_no_warning_when_the_rows_kept_can_hold_the_fit(tmp_path: Path) -> None:
    code, out = _check(tmp_path, [{"kind": "calibration", "temperature_rows": 200},
                                  {"kind": "segments", "temperature_rows": 0}])
    assert code == 0
    assert "temperature_rows" not in out
