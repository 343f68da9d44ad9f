"""``monitor config check`` reports every independent error of a file, as ``promtool`` and ``monitor
rules check`` do for rule files (s38d). Before, it stopped at the first: a file with three mistakes
took three runs, each showing the next one. Errors that depend on another (the detectors of a model
whose ``output.kind`` is wrong) are not reported, and the check says so. ``Monitor(...)``,
``monitor serve`` and a reload still raise the first error, in the same words."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import ConfigError, load_config, parse_config


def _check(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    path = tmp_path / "monitor.yaml"
    path.write_text(text)
    res = CliRunner().invoke(main, ["config", "check", str(path)], env=env)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    failed = [line for line in res.output.splitlines() if line.startswith("FAILED: ")]
    return res.exit_code, res.output, failed


WALKTHROUGH = """\
model: m
features: [a, b]
output:
  kind: probabilites
  classes: [x, y]
rules:
  external_url: ${NOPE_URL}
queue:
  capacity: -5
"""


def test_the_walkthrough_file_reports_its_three_mistakes_each_once(tmp_path):
    code, out, failed = _check(tmp_path, WALKTHROUGH, env={"NOPE_URL": None})
    assert code == 1
    keys = [line.split(": ")[2] for line in failed]
    # the first is the one the agent's start raises; each key once, each with its fix
    assert keys == ["rules.external_url", "output.kind", "queue.capacity"], failed
    assert all(". Fix: " in line for line in failed), failed
    assert "must be one of probabilities" in failed[1] and "got 'probabilites'" in failed[1]
    assert "must be an integer >= 1, got -5. Fix: write a whole number, at least 1" in failed[2]
    # the detectors depend on the output kind: not built, and said so
    assert "NOTE: model 'm': its detectors were not built" in out and "output" in out
    assert "SUCCESS" not in out


def test_the_agent_still_raises_the_first_error_in_the_same_words(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_URL", raising=False)
    path = tmp_path / "monitor.yaml"
    path.write_text(WALKTHROUGH)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    # the first error alone, as before: what Monitor.from_config, `monitor serve` and a reload say
    assert str(err.value).startswith(f"{path}: rules.external_url: names the environment variable NOPE_URL")
    assert "output.kind" not in str(err.value) and "queue.capacity" not in str(err.value)
    assert [e.key for e in err.value.errors] == ["rules.external_url", "output.kind", "queue.capacity"]


def test_independent_keys_of_one_section_and_of_detector_entries_are_each_reported(tmp_path):
    code, out, failed = _check(tmp_path, """\
model: iris
queue: {capacity: -5, sample_rate: 2, capcity: 3}
detectors: [confidence, {kind: calibration, windw_s: 60}, {kind: segments, gap_level: 2}]
rules: {interval: 1ms, alertmanager: [ftp://am]}
""")
    assert code == 1
    keys = [line.split(": ")[2] for line in failed]
    assert keys == ["queue.capcity", "queue.capacity", "queue.sample_rate", "detectors[1].windw_s", "rules.interval",
                    "rules.alertmanager", "model 'iris'"], failed
    # the detector entries that parsed are built as the agent builds them: a refusal is in the agent's words
    assert "detectors[2].gap_level: segments: gap_level must be in (0.5, 1), got 2" in failed[-1]


def test_several_models_each_error_once_and_the_shared_value_named_where_written(tmp_path):
    code, out, failed = _check(tmp_path, """\
queue: {capacity: 0}
models:
  - model: a
    output: {kind: regresion}
  - model: b
    window: forever
    detectors: [{kind: segments, gap_level: 2}]
""")
    assert code == 1
    keys = [line.split(": ")[2] for line in failed]
    # the shared queue.capacity once (not once per model), at the key the file spells
    assert keys == ["models[0].output.kind", "queue.capacity", "models[1].window", "model 'b'"], failed
    assert "detectors[0].gap_level" in failed[-1]
    assert "NOTE: model 'a': its detectors were not built" in out
    assert "NOTE: model 'b'" not in out


def test_a_file_with_one_error_reads_as_before(tmp_path):
    code, out, failed = _check(tmp_path, "model: a\nqueue: {capacity: 0}\n")
    assert code == 1
    assert failed == [f"FAILED: {tmp_path / 'monitor.yaml'}: queue.capacity: must be an integer >= 1, got 0. "
                      "Fix: write a whole number, at least 1"]
    assert "NOTE" not in out


def test_parse_config_in_code_raises_the_first_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^<config>: queue.capacity: must be an integer >= 1, got 0") as err:
        parse_config({"model": "a", "queue": {"capacity": 0, "batch_max": -1}})
    assert [e.key for e in err.value.errors] == ["queue.capacity", "queue.batch_max"]


def test_a_valid_file_after_an_invalid_one_is_still_said_to_pass(tmp_path):
    # the check's failure flag is the whole run's (exit 1): it kept each later valid file's SUCCESS line
    bad, good = tmp_path / "bad.yml", tmp_path / "good.yml"
    bad.write_text("model: a\nqueue: {capacity: 0}\n")
    good.write_text("model: b\noutput: {kind: regression}\ndetectors: [regression]\n")
    res = CliRunner().invoke(main, ["config", "check", str(bad), str(good)])
    assert res.exit_code == 1
    assert f"FAILED: {bad}: queue.capacity" in res.output
    assert f"SUCCESS: {good}: 1 model(s): b" in res.output
    assert "SUCCESS: " + str(bad) not in res.output


@pytest.mark.parametrize("kind", [[], ["drift"], {"a": 1}])
def test_a_detector_kind_that_is_a_list_or_mapping_is_an_error_not_a_traceback(kind):
    # `kind not in KINDS` (a dict) raised TypeError (unhashable): alone a traceback; and since every key
    # is read on, it also replaced an earlier error (queue.capacity here), which Monitor(...) raised before
    with pytest.raises(ConfigError, match=r"^<config>: queue.capacity: ") as err:
        parse_config({"model": "a", "queue": {"capacity": 0}, "detectors": [{"kind": kind}, "confidence"]})
    assert [e.key for e in err.value.errors] == ["queue.capacity", "detectors[0].kind"]
    with pytest.raises(ConfigError, match=r"^<config>: detectors\[0\].kind: unknown detector kind "):
        parse_config({"model": "a", "detectors": [{"kind": kind}]})


def test_an_empty_models_entry_is_still_a_model_of_the_defaults():
    # `- ` (null) under models: was read as {} (a model named default, of the shared keys); 74c9496's
    # not-a-mapping branch dropped it silently, the file's other models kept: one model fewer
    agent = parse_config({"queue": {"capacity": 10}, "models": [None, {"model": "b"}]})
    assert [m.model for m in agent.models] == ["default", "b"]
    assert agent.models[0].queue.capacity == 10
