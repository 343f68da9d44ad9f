"""Errors in a ``models:`` file name the key where the file writes it: a value shared at the top
level was reported under ``models[0].``, where the user looked for it and found nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, parse_config

TWO = [{"model": "a"}, {"model": "b"}]

# (config, the key told, words of the problem)
SHARED: dict[str, tuple[dict[str, Any], str, str]] = {
    "queue.capacity": ({"queue": {"capacity": -1}, "models": TWO}, "queue.capacity", "got -1"),
    "unknown key of a merged section": ({"queue": {"capacityy": 3}, "models": [{"model": "a", "queue": {"linger": "1s"}}]},
                                        "queue.capacityy", "unknown key"),
    "a section that is no mapping": ({"rules": 5, "models": TWO}, "rules", "must be a mapping"),
    "window": ({"window": "0s", "models": TWO}, "window", "must be positive"),
    "features": ({"features": [{"name": "x", "kind": "foo"}], "models": TWO}, "features[0].kind", "numeric, categorical, text or tensor"),
    "external_labels": ({"rules": {"external_labels": {"cluster": 1}}, "models": [{"model": "a", "rules": {"files": []}}]},
                        "rules.external_labels", "string values"),
}


@pytest.mark.parametrize("case", sorted(SHARED))
def test_a_shared_value_is_named_at_the_top_level(case: str) -> None:
    raw, key, words = SHARED[case]
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    err = info.value
    assert err.key == key and words in err.problem, str(err)
    assert "the shared value, as model 'a' (models[0]) takes it" in err.problem
    assert "models[0]." not in err.fix, err.fix


# the model's own value keeps its models[i] key
OWN: dict[str, tuple[dict[str, Any], str]] = {
    "own queue.capacity": ({"queue": {"capacity": 3}, "models": [{"model": "a"}, {"model": "b", "queue": {"capacity": -1}}]},
                           "models[1].queue.capacity"),
    "own window over a shared one": ({"window": "1h", "models": [{"model": "a", "window": "0s"}]}, "models[0].window"),
    "own rules key": ({"rules": {"interval": "15s"}, "models": [{"model": "a", "rules": {"interval": "0s"}}]},
                      "models[0].rules.interval"),
}


@pytest.mark.parametrize("case", sorted(OWN))
def test_a_models_own_value_is_named_under_models(case: str) -> None:
    raw, key = OWN[case]
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert info.value.key == key and "shared" not in info.value.problem, str(info.value)


def test_config_check_names_a_shared_detectors_parameter_where_written(tmp_path: Path) -> None:
    """A detector's own refusal (told when it is built) of a shared detectors: list named
    ``models[0].detectors[0]``, which the file does not have."""
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({"output": {"kind": "regression"},
                                   "detectors": [{"kind": "regression", "interval_level": 1.5}], "models": TWO}))
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1, res.output
    assert "model 'a': detectors[0].interval_level: " in res.output, res.output
    assert "models[0]." not in res.output and "models[1]." not in res.output, res.output
