"""Audit (session 24, numbers): the population stability index of a categorical feature counted
the channel's bins that neither sample has a row in (other categories, missing, unseen: usually
all three empty). Each share is smoothed by a pseudo-count of 0.5 per bin, so an empty bin's
share is 0.5 / (rows + ...) in each sample, and with a large reference and a short window those
differ by a factor of the sizes' ratio: a window with exactly the reference's shares read a PSI
of 0.0996 (100 rows against 100,000), at the "moderate shift" rule of thumb, from rows that do
not exist. Bins empty in both samples are now left out, as the chi-squared test leaves them.

Checked against a direct computation on the categories themselves (no pseudo-count needed: every
category has rows in both samples).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from tests.sidecar_support import sample

SHARES = {"c0": 0.4, "c1": 0.3, "c2": 0.15, "c3": 0.1, "c4": 0.05}


def _column(n: int, shift: float = 0.0) -> pd.DataFrame:
    counts = {c: int(round(s * n)) for c, s in SHARES.items()}
    if shift:  # move a share of the rows from the first category to the last
        moved = int(round(shift * n))
        counts["c0"] -= moved
        counts["c4"] += moved
    rows = np.concatenate([[c] * k for c, k in counts.items()]).astype(object)
    return pd.DataFrame({"k": np.random.default_rng(n).permutation(rows)})


def _psi(ref: pd.DataFrame, live: pd.DataFrame) -> float | None:
    cfg = {"model": "m", "features": [{"name": "k", "kind": "categorical"}], "output": {"kind": "probabilities"},
           "detectors": [{"kind": "input_drift", "window_s": 3600}]}
    mon = Monitor(config=cfg, reference=Reference.from_arrays(ref), registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        mon.observe(live, np.tile([0.5, 0.5], (len(live), 1)), timestamp=1_700_000_000.0)
        mon.flush()
        return sample(mon.metrics_text(), "monitor_drift_feature_effect", model="m", detector="input_drift", feature="k", measure="psi")
    finally:
        mon.close()


def _direct(ref: pd.DataFrame, live: pd.DataFrame) -> float:
    p = ref["k"].value_counts(normalize=True)
    q = live["k"].value_counts(normalize=True).reindex(p.index)
    return float(((q - p) * np.log(q / p)).sum())


def test_unchanged_shares_have_no_psi_from_empty_bins() -> None:
    ref, live = _column(100_000), _column(100)
    assert _direct(ref, live) == 0.0
    got = _psi(ref, live)
    assert got is not None and got < 1e-3  # 0.0996 before; the pseudo-count alone leaves ~1e-5


def test_a_shift_reads_its_own_psi() -> None:
    ref, live = _column(100_000), _column(400, shift=0.1)
    got = _psi(ref, live)
    # within 1%: the pseudo-count of 0.5 a bin moves 400 rows' shares by ~0.1 point (0.1596
    # before, 15% above, from the three empty bins)
    assert got is not None and abs(got - _direct(ref, live)) < 0.01 * _direct(ref, live)
