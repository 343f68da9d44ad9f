"""`monitor demo` end to end: silent on normal traffic, drift alerts in the drift phase, probing
alerts in the attack phase (the shipped rule packs, evaluated in accelerated event time)."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")


def test_demo_phases_fire_the_right_alerts():
    from monitor.demo import DemoSettings, run_demo

    lines: list[str] = []
    summary = run_demo(DemoSettings(duration_s=30.0, speed=40.0, rate=100.0, port=None, refresh_s=5.0), echo=lines.append)
    fired = summary["fired"]
    assert fired["normal"] == set(), fired
    assert {"ModelInputDrift"} <= fired["drift"], fired
    assert any(name.startswith("ModelProbing") for name in fired["attack"]), fired
    assert summary["calls"] > 2000
    assert any("phase: attack" in line for line in lines)
