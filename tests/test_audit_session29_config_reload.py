"""A reload (``POST /-/reload``, SIGHUP) reads ``monitor.yaml`` again and says what it finds (session 29).

Before, a reload read the rule files only and said nothing of the config: an edit to it (a pack
added, an Alertmanager URL changed) looked applied, and a broken file surfaced only at the next
restart, which then failed.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from monitor.server.lifecycle import _reload_rules
from tests.sidecar_support import http, quiet_factory, sample, start_sidecar

IRIS = {"model": "iris", "features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["x", "y"]}}
RULES = "groups:\n  - name: g\n    rules:\n      - alert: On\n        expr: vector(1)\n"


def _serve(tmp_path: Path):
    (tmp_path / "rules.yml").write_text(RULES, encoding="utf-8")
    raw = {**IRIS, "rules": {"files": ["rules.yml"], "interval": "15s"}}
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    s = start_sidecar(raw, tmp_path, factory=quiet_factory(start_worker=False))
    s.sidecar.config_path = config  # as `monitor serve --config` sets it
    return config, raw, s


def test_a_reload_warns_of_a_config_that_no_longer_loads_and_counts_it(tmp_path: Path) -> None:
    config, raw, s = _serve(tmp_path)
    try:
        assert sample(s.metrics(), "monitor_config_reloads_total", model="_sidecar", outcome="failure") == 0
        config.write_text(config.read_text() + "window: 5 minutes\n", encoding="utf-8")
        r = http("POST", s.url + "/-/reload")
        body = r.json()
        assert r.status == 200 and body["data"]["rules"] == {"iris": 1}, body  # the rule files still reload
        [warning] = body["warnings"]
        assert "window: must be a duration" in warning and "the config in force stays in force" in warning
        assert f"monitor config check {config}" in warning
        text = s.metrics()
        assert sample(text, "monitor_config_reloads_total", model="_sidecar", outcome="failure") == 1
        assert sample(text, "monitor_config_last_reload_successful", model="_sidecar") == 0

        config.write_text(yaml.safe_dump(raw), encoding="utf-8")  # fixed: loads, the same as at start
        r = http("POST", s.url + "/-/reload")
        assert r.status == 200 and "warnings" not in r.json(), r.json()
        text = s.metrics()
        assert sample(text, "monitor_config_reloads_total", model="_sidecar", outcome="success") == 1
        assert sample(text, "monitor_config_last_reload_successful", model="_sidecar") == 1
    finally:
        s.close()


def test_a_reload_names_the_keys_changed_which_take_effect_at_a_restart(tmp_path: Path) -> None:
    config, raw, s = _serve(tmp_path)
    try:
        changed = {**raw, "window": "5m", "rules": {**raw["rules"], "interval": "1m"}}
        config.write_text(yaml.safe_dump(changed), encoding="utf-8")
        r = http("POST", s.url + "/-/reload")
        [warning] = r.json()["warnings"]
        # rules.interval is applied by the reload (tests/test_config_reload_applies_rules.py): not named
        assert "(model 'iris': window)" in warning and "at the next restart" in warning, warning
    finally:
        s.close()


def test_sighup_reads_the_config_again_too(tmp_path: Path) -> None:
    config, _, s = _serve(tmp_path)
    try:
        config.write_text("model: [\n", encoding="utf-8")
        _reload_rules(s.sidecar)  # SIGHUP's reload
        assert sample(s.metrics(), "monitor_config_reloads_total", model="_sidecar", outcome="failure") == 1
    finally:
        s.close()


def test_a_reload_fails_for_a_reference_file_that_is_gone(tmp_path: Path) -> None:
    """The reference is read only at start: a reload that said success for a config whose
    reference.path had gone left the next restart to come up not ready, unannounced."""
    config, raw, s = _serve(tmp_path)
    try:
        config.write_text(yaml.safe_dump({**raw, "reference": {"path": "gone/iris.npz"}}), encoding="utf-8")
        r = http("POST", s.url + "/-/reload")
        [warning] = r.json()["warnings"]
        assert "reference.path" in warning and "iris.npz does not exist" in warning and "model 'iris'" in warning, warning
        assert sample(s.metrics(), "monitor_config_last_reload_successful", model="_sidecar") == 0
    finally:
        s.close()


def test_a_reload_fails_for_a_reference_file_the_start_would_refuse(tmp_path: Path) -> None:
    """A reference replaced by one that no longer loads (here a truncated ``.npz``) passed a reload
    that checked only that the file was there: the next restart came up not ready. The reload
    checks the file as ``monitor config check`` does (one function, monitor/config_files.py)."""
    from click.testing import CliRunner

    from monitor.cli import main

    config, raw, s = _serve(tmp_path)
    try:
        (tmp_path / "iris.npz").write_bytes(b"PK\x03\x04 not a whole zip")
        config.write_text(yaml.safe_dump({**raw, "reference": {"path": "iris.npz"}}), encoding="utf-8")
        r = http("POST", s.url + "/-/reload")
        [warning] = r.json()["warnings"]
        assert "model 'iris'" in warning and "reference.path" in warning and "iris.npz" in warning, warning
        assert "a restart would not load the model" in warning and "Fix:" in warning, warning
        assert sample(s.metrics(), "monitor_config_last_reload_successful", model="_sidecar") == 0
        checked = CliRunner().invoke(main, ["config", "check", str(config)])
        assert checked.exit_code == 1 and "reference.path" in checked.output, checked.output  # both say it
    finally:
        s.close()
