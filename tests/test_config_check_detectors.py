"""``monitor config check`` builds every configured detector as ``monitor serve`` builds it, and a
value a detector refuses is told as a config error (the entry's key path with the parameter, the
detector's message, a fix), in the same words by the check, by ``Monitor.from_config`` and by the
sidecar's ``/readyz``. Found by a walkthrough: the check did not build the detectors that need the
reference, so their bad values surfaced only when the agent started (and never became ready), and
a detector's refusal named no key and no fix ("segments: gap_level must be in (0.5, 1), got 2")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, DetectorConfig, MonitorConfig
from monitor.core import Monitor
from monitor.profile import Profile

CLASSES = ["legit", "fraud"]


def _classifier(detectors: list[Any], **extra: Any) -> dict[str, Any]:
    return {"model": "m", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": CLASSES},
            "detectors": detectors, **extra}


def _check(tmp_path: Path, raw: dict[str, Any]) -> tuple[int, str, Path]:
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output, path


def _saved_profile(folder: Path, *, labels: bool = True) -> Path:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([2.0, 2.0], 400)
    prof = Profile.from_arrays(rng.normal(size=(400, 2)), numeric_names=["a", "b"], scores=probs,
                               labels=probs.argmax(axis=1) if labels else None, classes=CLASSES)
    return prof.save(folder / "reference.npz")


# (config, the value that fixes it, the key path told, the detector's words, words of the fix)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str, str, str]] = {
    "segments gap_level": (
        _classifier(["confidence", {"kind": "segments", "gap_level": 2}]),
        _classifier(["confidence", {"kind": "segments", "gap_level": 0.95}]),
        "detectors[1].gap_level: ", "segments: gap_level must be in (0.5, 1), got 2",
        "Fix: give gap_level under detectors[1] (kind: segments) a value the message allows, or remove gap_level: to use "
        "its default (0.98)"),
    "regression interval_level, two models": (
        {"models": [{"model": "r", "output": {"kind": "regression"},
                     "detectors": [{"kind": "regression", "interval_level": 1.5}]},
                    _classifier(["confidence"], model="c")]},
        {"models": [{"model": "r", "output": {"kind": "regression"},
                     "detectors": [{"kind": "regression", "interval_level": 0.9}]},
                    _classifier(["confidence"], model="c")]},
        "models[0].detectors[0].interval_level: ", "regression: interval_level must be a coverage in (0, 1), e.g. 0.9; got 1.5",
        "Fix: give interval_level under models[0].detectors[0] (kind: regression) a value the message allows"),
    "confidence_drift segment_cap 0 (the loader's)": (
        _classifier([{"kind": "confidence_drift", "segment_cap": 0}], reference={"path": "reference.npz"}),
        _classifier([{"kind": "confidence_drift", "segment_cap": 5}], reference={"path": "reference.npz"}),
        "detectors[0].segment_cap: ", "must be an integer >= 1, got 0", "Fix: write a whole number, at least 1"),
    "negative min_rows": (
        _classifier([{"kind": "confidence", "min_rows": -3}]),
        _classifier([{"kind": "confidence", "min_rows": 0}]),
        "detectors[0].min_rows: ", "must be an integer >= 0, got -3", "Fix: write a whole number, at least 0"),
    "positive_class that is no class": (
        _classifier([{"kind": "segments", "positive_class": "fruad"}]),
        _classifier([{"kind": "segments", "positive_class": "fraud"}]),
        "detectors[0].positive_class: ", "segments: positive_class 'fruad' is not a class",
        "Fix: give positive_class under detectors[0] (kind: segments) a value the message allows, or remove positive_class:"),
    "accuracy_estimation atc_score, built on the saved profile": (
        _classifier([{"kind": "accuracy_estimation", "atc_score": "entropie"}], reference={"path": "reference.npz"}),
        _classifier([{"kind": "accuracy_estimation", "atc_score": "entropy"}], reference={"path": "reference.npz"}),
        "detectors[0].atc_score: ", "accuracy_estimation: atc_score must be 'entropy' or 'confidence', not 'entropie'",
        "Fix: give atc_score under detectors[0] (kind: accuracy_estimation) a value the message allows, or remove atc_score: "
        "to use its default ('entropy')"),
    "accuracy_estimation negative prior_weight (read as none before)": (
        _classifier([{"kind": "accuracy_estimation", "prior_weight": -1}], reference={"path": "reference.npz"}),
        _classifier([{"kind": "accuracy_estimation", "prior_weight": 0}], reference={"path": "reference.npz"}),
        "detectors[0].prior_weight: ", "accuracy_estimation: prior_weight must be >= 0", "Fix: give prior_weight under "
        "detectors[0] (kind: accuracy_estimation) a value the message allows"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_refused_value_fails_the_check_with_its_key_and_fix(tmp_path: Path, case: str) -> None:
    bad, good, key, said, fix = CASES[case]
    _saved_profile(tmp_path)
    code, output, path = _check(tmp_path, bad)
    assert code == 1 and output.startswith(f"FAILED: {path}"), output
    line = next(ln for ln in output.splitlines() if said in ln)
    assert key in line and fix in line and "SUCCESS" not in output, output
    assert line.index(key) < line.index(said) < line.index("Fix: "), line  # key, problem, fix: as the loader's errors
    code, output, _ = _check(tmp_path, good)
    assert code == 0 and "SUCCESS" in output, output


def test_detectors_that_need_the_reference_are_built_on_it(tmp_path: Path) -> None:
    """Without a reference the agent cannot build ``accuracy_estimation`` (it needs the model's
    outputs and labels on reference data): the check says so as the agent's start would; with a
    profile holding scores but no labels as well; with one holding both it passes."""
    raw = _classifier([{"kind": "accuracy_estimation"}])
    code, output, _ = _check(tmp_path, raw)
    assert code == 1 and "detectors[0]: detector 'accuracy_estimation' needs a reference" in output, output
    assert "Fix: the model has no reference: " in output, output
    _saved_profile(tmp_path, labels=False)
    code, output, _ = _check(tmp_path, {**raw, "reference": {"path": "reference.npz"}})
    assert code == 1 and "accuracy_estimation" in output and "labels" in output, output
    assert "Fix: the model has no reference" not in output and "Fix: build the reference with what" in output, output
    _saved_profile(tmp_path)
    code, output, _ = _check(tmp_path, {**raw, "reference": {"path": "reference.npz"}})
    assert code == 0 and "SUCCESS" in output, output


def test_raw_reference_data_builds_those_that_need_none_and_says_which_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "raw.npz", X=rng.normal(size=(100, 2)), feature_names=np.array(["a", "b"]))
    raw = _classifier([{"kind": "segments", "gap_level": 2}, {"kind": "input_drift"}], reference={"path": "raw.npz"})
    code, output, _ = _check(tmp_path, raw)
    assert code == 1 and "detectors[0].gap_level: segments: gap_level must be in (0.5, 1), got 2" in output, output
    assert "NOTE: model 'm': input_drift not built: the reference is raw data" in output, output
    raw["detectors"][0]["gap_level"] = 0.9
    code, output, _ = _check(tmp_path, raw)
    assert code == 0 and "SUCCESS" in output and "input_drift not built" in output, output
    # one that reads only the reference's scores is built on the raw arrays (session 11): these have
    # none, which the agent's start refuses, and so does the check now
    raw["detectors"].append({"kind": "confidence_drift"})
    code, output, _ = _check(tmp_path, raw)
    assert code == 1 and "detectors[2]: detector 'confidence_drift' needs a reference with the model's outputs" in output, output


def _said_by_check(output: str, path: Path) -> str:
    """The check's line without its ``FAILED: <file>: model '<m>': `` head."""
    line = next(ln for ln in output.splitlines() if ln.startswith("FAILED: "))
    head = f"FAILED: {path}: model 'm': "
    assert line.startswith(head), line
    return line[len(head):]


def test_monitor_from_config_says_what_the_check_says(tmp_path: Path) -> None:
    bad = CASES["segments gap_level"][0]
    code, output, path = _check(tmp_path, bad)
    assert code == 1
    with pytest.raises(ConfigError) as built:
        Monitor.from_config(path, start_worker=False)
    assert str(built.value) == f"{path}: {_said_by_check(output, path)}"
    assert built.value.key == "detectors[1].gap_level"


def test_a_detector_config_built_in_code_is_told_at_its_index() -> None:
    cfg = MonitorConfig(detectors=(DetectorConfig("confidence"), DetectorConfig("segments", {"positive_class": -2})))
    with pytest.raises(ConfigError) as built:
        Monitor(config=cfg, start_worker=False)
    assert built.value.key == "detectors[1].positive_class"
    assert "positive_class -2" in built.value.problem and "remove positive_class:" in built.value.fix


def test_the_sidecar_readyz_says_what_the_check_says(tmp_path: Path) -> None:
    """``monitor serve``'s start path (the sidecar loading its models, ``/readyz`` over real HTTP)."""
    from tests.sidecar_support import http, quiet_factory, start_sidecar, wait_until

    bad = CASES["positive_class that is no class"][0]
    code, output, path = _check(tmp_path, bad)
    assert code == 1
    running = start_sidecar(bad, tmp_path, factory=quiet_factory(start_worker=False), wait_ready=False)
    try:
        assert wait_until(lambda: running.sidecar.load_error is not None), "the sidecar loaded a config the check refused"
        reply = http("GET", running.url + "/readyz")
        assert reply.status == 503
        assert reply.json()["error"] == f"ConfigError: {path}: {_said_by_check(output, path)}"
    finally:
        running.close()


def test_a_reference_that_cannot_be_read_is_told_once(tmp_path: Path) -> None:
    """A missing reference is told by its own line; the detectors that need it are not built on
    nothing (that would add "needs a reference" lines for a config that names one)."""
    raw = _classifier([{"kind": "segments", "gap_level": 0.2}, {"kind": "confidence_drift"}], reference={"path": "gone.npz"})
    code, output, _ = _check(tmp_path, raw)
    assert code == 1 and "reference.path: " in output and "gone.npz does not exist" in output, output
    assert "detectors[0].gap_level: segments: gap_level must be in (0.5, 1), got 0.2" in output, output
    assert "needs a reference" not in output and "NOTE" not in output, output


@pytest.mark.parametrize("where, key", [("model", "segments.cap"), ("detector", "detectors[0].segment_cap")])
def test_a_segment_cap_beyond_the_per_segment_series_is_refused(tmp_path: Path, where: str, key: str) -> None:
    """A per-segment metric holds at most its catalog ``max_series`` series (200): a cap of 250
    was accepted, and the segments past 199 (``other`` among them, where every further segment's
    rows go) were refused series by series. The check says the largest cap, 199 (the 199
    segments and ``other``), which a real monitor then exports in full."""
    from prometheus_client import CollectorRegistry

    from monitor import catalog
    from monitor.config import max_segment_cap, parse_config

    most = max_segment_cap()
    assert most + 1 == catalog.get("monitor_segment_rows_in_window").max_series
    for cap, ok in ((most + 1, False), (250, False), (most, True)):
        raw = (_classifier([{"kind": "segments", "min_rows": 1}], segments={"cap": cap}) if where == "model" else
               _classifier([{"kind": "segments", "min_rows": 1, "segment_cap": cap}]))
        code, out, _ = _check(tmp_path, raw)
        if ok:
            assert code == 0, out
        else:
            assert code != 0 and f"{key}: must be at most {most}, got {cap}" in out, out
            assert f"Fix: write {key.rsplit('.', 1)[-1]}: {most} or less" in out, out
    # the largest cap allowed fits: every segment and `other` get their series, none is refused
    mon = Monitor(config=parse_config(raw).model(), registry=CollectorRegistry(), live=False, start_worker=False)
    try:
        n = (most + 60) * 2
        segs = [f"s{i % (most + 60):03d}" for i in range(n)]
        mon.observe(np.zeros((n, 2)), np.tile([0.3, 0.7], (n, 1)), segment=segs, timestamp=1_700_000_000.0)
        mon.flush()
        samples = mon.store.samples()
    finally:
        mon.close()
    rows = {labels["segment"] for name, labels, _ in samples if name == "monitor_segment_rows_in_window"}
    assert len(rows) == most + 1 and "other" in rows
    assert not [labels for name, labels, v in samples if name == "monitor_series_refused_total" and v]


def test_a_missing_optional_extra_fails_the_check_with_its_key_not_a_traceback(tmp_path: Path) -> None:
    """``ood_backend: "alibi:IForest"`` without alibi-detect printed a traceback (an ImportError
    escaped the check) where every other refusal is a FAILED line with the key and the fix."""
    import importlib.util

    if importlib.util.find_spec("alibi_detect") is not None:
        pytest.skip("alibi-detect is installed here: the backend builds")
    _saved_profile(tmp_path)
    code, out, path = _check(tmp_path, _classifier([{"kind": "probing", "ood_backend": "alibi:IForest"}],
                                                   reference={"path": "reference.npz"}))
    assert code == 1
    assert "FAILED:" in out and "detectors[0].ood_backend" in out and "alibi" in out, out
    assert "Traceback" not in out, out
