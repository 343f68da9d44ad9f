"""``monitor replay --model`` naming no model of the config (session 29)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from monitor.cli import main


def test_an_unknown_model_is_a_usage_error_naming_the_served_ones(tmp_path: Path) -> None:
    """It exited 1, the code of a config that fails its check, where scripts branch on 2 for a
    command line that is wrong."""
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("models:\n  - model: fraud\n  - model: churn\nrules: {packs: [core]}\n", encoding="utf-8")
    log = tmp_path / "log.ndjson"
    log.write_text("", encoding="utf-8")
    res = CliRunner().invoke(main, ["replay", str(log), "--config", str(cfg), "--model", "frad"])
    assert res.exit_code == 2, res.output
    assert "'--model'" in res.output and "no model named 'frad'" in res.output and "fraud, churn" in res.output, res.output
