"""``np.ma.masked`` placed in a list row or a list of outputs is read as a missing value, and
numpy's "converting a masked element to nan" UserWarning, raised from the monitor's own lines, no
longer reaches the user's stderr (it did, once per reading line); the user's own such warnings
still do. Run in a fresh interpreter with warnings shown (``-W always``), as a user's would be."""

from __future__ import annotations

import subprocess
import sys
import textwrap

__all__: list[str] = []

SCRIPT = textwrap.dedent("""
    import numpy as np
    from prometheus_client import CollectorRegistry
    from monitor import Monitor

    mon = Monitor(model="m", config={"features": ["a", "b"], "output": {"kind": "probabilities", "classes": ["n", "y"]}},
                  registry=CollectorRegistry(), start_worker=False, live=False)
    mon.observe([[1.0, np.ma.masked], [2.0, 3.0]], [[0.5, 0.5], [np.ma.masked, 0.9]])
    mon.observe({"a": np.ma.masked, "b": 1.0}, [0.4, 0.6])
    mon.flush()
    print("nan_output", mon.store.value("monitor_rows_rejected", {"reason": "nan_output"}))
    print("rows", mon.store.value("monitor_predictions", {}))
    mon.close()
    np.asarray([1.0, np.ma.masked])  # the user's own line: numpy's warning is theirs to see
""")


def test_masked_values_in_lists_warn_no_more_from_the_monitor() -> None:
    done = subprocess.run([sys.executable, "-W", "always", "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "nan_output 1.0" in done.stdout and "rows 2.0" in done.stdout, done.stdout  # a masked score is missing: its row refused, 2 of 3 taken
    warned = [line for line in done.stderr.splitlines() if "converting a masked element to nan" in line]
    assert len(warned) == 1 and warned[0].startswith("<string>:"), done.stderr  # the user's line alone
