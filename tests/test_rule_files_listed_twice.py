"""A rule file named twice (``rules.files: [a.yml, ./a.yml]``, or a shipped pack named in
``rules.packs`` and by its path in ``rules.files``) is evaluated once, as Prometheus loads it
once (its groups are keyed by file and name, the file's path cleaned): the agent evaluated
each of its groups twice, listed every alert twice in ``/api/v1/alerts`` and counted each firing
alert as 2 in ``monitor_alerts``.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import parse_config
from monitor.shipped import rule_pack_files

RULES = "groups:\n  - name: g\n    rules:\n      - alert: AlwaysOn\n        expr: vector(1)\n"


def test_a_file_named_twice_is_loaded_once(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yml").write_text(RULES)
    core = rule_pack_files(["core"])[0]
    cfg = parse_config({"model": "m", "rules": {"files": ["a.yml", "./a.yml", "sub/../a.yml", str(tmp_path / "a.yml"),
                                                          core], "packs": ["core"]}},
                       base_dir=tmp_path).model()
    assert cfg.rules.files == (core, str(tmp_path / "a.yml"))


def test_its_alerts_are_listed_and_counted_once(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(RULES)
    cfg = parse_config({"model": "m", "rules": {"files": ["a.yml", "./a.yml"], "log": False}}, base_dir=tmp_path).model()
    mon = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.evaluate_rules(1_800_000_000.0)
        assert [a.name for a in mon.alerts()] == ["AlwaysOn"]
        assert mon.store.value("monitor_alerts", labels=("AlwaysOn", "firing", "")) == 1
    finally:
        mon.close()
