"""The (features, outputs) layout saved with every checkpoint: computed once from the frozen
config (it was rebuilt at every checkpoint), with the JSON-plain value that checkpoints written
before carry, so that those restore as before and one of another layout is still set aside."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from monitor.core import Monitor

OLD = {"model": "m", "features": ["a", {"name": "b", "kind": "categorical"}],
       "output": {"kind": "probabilities", "classes": ["x", "y"]}}


def _monitor(raw: dict) -> Monitor:
    return Monitor(config=raw, registry=CollectorRegistry(auto_describe=False), start_worker=False)


def test_the_checkpoint_layout_is_the_json_value_checkpoints_carry() -> None:
    mon = _monitor(OLD)
    try:
        shape = mon.state_dict()["shape"]
        assert shape == [[["a", "numeric"], ["b", "categorical"]], ["probabilities", ["x", "y"], False, []]]
        assert json.loads(json.dumps(shape)) == shape  # what a checkpoint file holds compares equal
    finally:
        mon.close()


def test_a_checkpoint_restores_into_its_layout_and_is_set_aside_in_another() -> None:
    mon = _monitor(OLD)
    try:
        state = mon.state_dict()
        state["shape"] = json.loads(json.dumps(state["shape"]))  # as read back from the file
    finally:
        mon.close()
    same = _monitor(OLD)
    try:
        report = same.load_state_dict(state)
        assert report.set_aside_reason is None and report.detectors_restored, report
    finally:
        same.close()
    other = _monitor({**OLD, "output": {"kind": "probabilities", "classes": ["x", "y", "z"]}})
    try:
        report = other.load_state_dict(state)
        assert report.set_aside_reason == "config_changed" and not report.detectors_restored, report
        assert "(a, b; probabilities ['x', 'y']) are now (a, b; probabilities ['x', 'y', 'z'])" in report.detail, report.detail
    finally:
        other.close()
