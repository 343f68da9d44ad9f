"""Config validation: every kind of mistake names the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, parse_config, parse_duration

GOOD = """
model: fraud
features:
  - {name: amount, kind: numeric}
  - {name: country, kind: categorical}
output: {kind: probabilities, classes: [legit, fraud]}
queue: {capacity: 5000, sample_rate: 0.5}
window: 30m
rules:
  interval: 30s
  alertmanager: [http://127.0.0.1:9093]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "monitor.yaml"
    p.write_text(text)
    return p


def test_good_config_loads(tmp_path):
    cfg = load_config(write(tmp_path, GOOD)).model()
    assert cfg.model == "fraud"
    assert cfg.schema.numeric_names == ("amount",) and cfg.schema.categorical_names == ("country",)
    assert cfg.output.classes == ("legit", "fraud")
    assert cfg.queue.capacity == 5000 and cfg.queue.sample_rate == 0.5
    assert cfg.window_s == 1800.0 and cfg.rules.interval_s == 30.0


@pytest.mark.parametrize(
    "text, key, fix",
    [
        ("modle: x", "modle", "did you mean 'model'"),
        ("queue: {capacity: -3}", "queue.capacity", "whole number"),
        ("queue: {capacity: many}", "queue.capacity", "whole number"),
        ("queue: {sample_rate: 2}", "queue.sample_rate", "between 0.0 and 1.0"),
        ("queue: [1, 2]", "queue", "indented keys"),
        ("output: {kind: probs}", "output.kind", "probabilities for predict_proba"),
        ("output: {classes: [a, a]}", "output.classes", "remove the duplicate"),
        ("window: 5 minutes", "window", "30s, 5m or 1h"),
        ("window: -5", "window", "above zero"),
        ("features: [{name: a}, {name: a}]", "features[1].name", "unique name"),  # the key as the file spells it
        ("features: [{name: a, kind: words}]", "features[0].kind", "kind: text (free text)"),
        ("schema: {features: [{name: a, kind: words}]}", "schema.features[0].kind", "kind: text (free text)"),
        ("detectors: [{kind: no-such-detector}]", "detectors[0].kind", "kind"),
        ("rules: {alertmanager: [localhost:9093]}", "rules.alertmanager", "http://"),
        # a webhook's mistake was reported as rules.alertmanager's, and a URL without a host (or with
        # a port that is no number) was taken, and every alert then failed to send (audit2, session 24)
        ("rules: {webhook: [hooks.example/alert]}", "rules.webhook", "http://"),
        ("rules: {alertmanager: ['http://']}", "rules.alertmanager", "http://127.0.0.1:9093"),
        ("rules: {alertmanager: ['http://am:90x3']}", "rules.alertmanager", "port"),
        ("rules: {webhook: ['https://:8080/hook']}", "rules.webhook", "host"),
        ("rules: {external_labels: {a: 1}}", "rules.external_labels", "string values"),
        # taken, then Alertmanager refused every alert (400 invalid label set) at run time (audit2, session 24)
        ("rules: {external_labels: {cluster-name: eu}}", "rules.external_labels", "cluster_name"),
        ("rules: {external_labels: {1dc: eu}}", "rules.external_labels", "letters, digits and _"),
        ("server: {port: 70000}", "server.port", "port: 9108"),
        # a negative seed passed the config and failed the first detector built from it, in words
        # that sent the user to the detector's own seed (session 24 audit)
        ("seed: -1", "seed", "0 or more"),
        ("models: []", "models", "models:"),
        ("models: [{model: a}, {model: a}]", "models", "unique name"),
    ],
)
def test_each_mistake_names_file_key_and_fix(tmp_path, text, key, fix):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.key == key
    assert str(path) in str(err)
    assert fix in str(err)


def test_broken_yaml_reports_line(tmp_path):
    path = write(tmp_path, "model: a\nqueue:\n  capacity: [1\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config"):
        load_config(tmp_path / "nope.yaml")


def test_several_models_need_a_choice(tmp_path):
    agent = load_config(write(tmp_path, "window: 10m\nmodels:\n  - model: a\n  - model: b\n    window: 1h\n"))
    with pytest.raises(ConfigError, match="pass model=NAME"):
        agent.model()
    assert agent.model("a").window_s == 600.0  # shared keys apply to every model
    assert agent.model("b").window_s == 3600.0


def test_durations():
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12.0
    with pytest.raises(ConfigError):
        parse_duration("1 hour")


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    cfg = parse_config({"rules": {"files": ["rules/a.yml"]}, "checkpoint": {"path": "state/ck"}}, "x.yaml", tmp_path).model()
    assert cfg.rules.files == (str(tmp_path / "rules/a.yml"),)
    assert cfg.checkpoint.path == str(tmp_path / "state/ck")


def test_example_config_is_valid():
    example = Path(__file__).resolve().parent.parent / "examples" / "monitor.yaml"
    agent = load_config(example)
    assert agent.models


def test_detector_parameters_are_checked_with_the_config():
    """A misspelt parameter is reported when the config is read (and by `monitor config check`),
    not when the agent builds the detector, which may need the reference first."""
    from monitor.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"detectors\[1\]\.windw_s: detector 'calibration' has no parameter 'windw_s'.*did you mean 'window_s'"):
        parse_config({"model": "m", "detectors": [{"kind": "confidence"}, {"kind": "calibration", "windw_s": 60}]})
    with pytest.raises(ConfigError, match=r"its parameters: .*ert"):
        parse_config({"model": "m", "detectors": [{"kind": "pca_drift", "zzz": 1}]})
    cfg = parse_config({"model": "m", "detectors": [{"kind": "pca_drift", "ert": 5000, "top_k": 2}]}).model()
    assert cfg.detectors[0].params == {"ert": 5000, "top_k": 2}


def test_pca_drift_takes_the_sequential_parameters_of_its_parent():
    """PCADriftDetector passes **params on to the binned drift detector: its parameters are those."""
    import numpy as np

    from monitor.detectors.registry import create
    from monitor.reference import Reference

    ref = Reference.from_arrays(np.random.default_rng(0).normal(size=(500, 3)))
    det = create("pca_drift", reference=ref, params={"ert": 5000, "top_k": 2})
    assert (det.kind, det.ert, det.top_k) == ("pca_drift", 5000.0, 2)
    with pytest.raises(ValueError, match="unknown parameter"):
        create("pca_drift", reference=ref, params={"zzz": 1})


def test_a_models_settings_are_merged_with_the_shared_ones(tmp_path):
    """A model giving `rules: {files: [...]}` replaced the whole shared `rules:`, its receivers too:
    that model's alerts reached no Alertmanager, with nothing said."""
    agent = parse_config({
        "rules": {"packs": ["core"], "alertmanager": ["http://127.0.0.1:9093"], "interval": "30s"},
        "checkpoint": {"path": "state/{model}.ckpt", "interval": "30s"},
        "output": {"kind": "probabilities", "classes": ["x", "y"]},
        "models": [{"model": "a"},
                   {"model": "b", "rules": {"files": ["b.yml"]}, "checkpoint": {"interval": "5m"},
                    "output": {"kind": "regression"}}],
    }, "x.yaml", tmp_path)
    a, b = agent.model("a"), agent.model("b")
    assert b.rules.alertmanager_urls == a.rules.alertmanager_urls == ("http://127.0.0.1:9093",)
    assert b.rules.interval_s == 30.0
    assert b.rules.files[-1] == str(tmp_path / "b.yml") and b.rules.files[:-1] == a.rules.files  # shared packs kept
    assert (b.checkpoint.path, b.checkpoint.interval_s) == (str(tmp_path / "state/{model}.ckpt"), 300.0)
    assert b.output.kind == "regression" and b.output.classes == ()  # the model's description: replaced


def test_a_checkpoint_interval_without_a_path_is_refused():
    with pytest.raises(ConfigError, match=r"checkpoint\.interval: needs checkpoint\.path"):
        parse_config({"checkpoint": {"interval": "30s"}})
    with pytest.raises(ConfigError, match=r"models\[0\]\.checkpoint\.interval: needs checkpoint\.path"):
        parse_config({"models": [{"model": "a", "checkpoint": {"interval": "30s"}}]})


def test_nested_settings_merge_and_a_shared_interval_is_named_where_it_is_written(tmp_path):
    agent = parse_config({"rules": {"external_labels": {"cluster": "eu"}},
                          "models": [{"model": "a", "rules": {"external_labels": {"team": "x"}}}]}, "x.yaml", tmp_path)
    assert agent.model("a").rules.external_labels == {"cluster": "eu", "team": "x"}
    with pytest.raises(ConfigError, match=r"^x\.yaml: checkpoint\.interval: needs checkpoint\.path .*model 'b' \(models\[1\]\)"):
        parse_config({"checkpoint": {"interval": "5m"},
                      "models": [{"model": "a", "checkpoint": {"path": "a.ckpt"}}, {"model": "b"}]}, "x.yaml", tmp_path)


def test_a_grace_period_of_zero_is_allowed():
    assert parse_config({"rules": {"for_grace_period": "0s"}}).model().rules.for_grace_period_s == 0.0
    with pytest.raises(ConfigError, match=r"rules\.for_outage_tolerance"):
        parse_config({"rules": {"for_outage_tolerance": "0s"}})
