"""``Reference.save(path)`` writes the profile ``monitor reference build`` writes, which the agent
takes as its reference (s38k's walkthrough: a reference built in code had no ``save``, an
AttributeError the first thing a user met)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.profile import Profile
from monitor.reference import Reference


def test_a_reference_saved_in_code_is_the_profile_the_agent_reads(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 3))
    p1 = 1.0 / (1.0 + np.exp(-x[:, 0]))
    ref = Reference.from_arrays(x, scores=np.column_stack([1 - p1, p1]), labels=(rng.random(400) < p1).astype(int),
                                numeric_names=("a", "b", "c"))
    path = ref.save(tmp_path / "ref.npz")
    assert path.exists()
    loaded = Profile.load(path)
    expected = Profile.from_reference(ref)
    assert loaded.n_rows == expected.n_rows == 400 and loaded.numeric_names == expected.numeric_names
    mon = Monitor(model="m", config={"features": ["a", "b", "c"], "output": {"kind": "probabilities", "classes": ["n", "y"]},
                                     "reference": {"path": str(path)}},
                  registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(x[:50], np.column_stack([1 - p1, p1])[:50])
        mon.flush()
        assert mon.store.value("monitor_predictions") == 50
        assert mon.store.value("monitor_data_reference_rows") == 400
    finally:
        mon.close()
