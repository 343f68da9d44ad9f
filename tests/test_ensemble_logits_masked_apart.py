"""Ensemble / MC-dropout logits whose members mask different classes (-inf in some members only).

The members' mean logits, read for the energy score, averaged each class's -inf in: a class masked
by one member was -inf in the mean, and members masking different classes made every class -inf,
the row's energy NaN. Such a row is valid (its members' mean probabilities are fine), and its NaN
left its segment's mean energy absent for a whole window and counted it in the energy histogram's
+Inf bucket. A class's mean is now over the members that give it a logit (-inf only where every
member masks it, as before)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

from monitor import Monitor
from monitor.catalog import confidence as names
from monitor.outputs import ClassIndex, decode_outputs
from monitor.schema import OutputSpec


def test_members_masking_different_classes_give_a_finite_energy() -> None:
    z = np.array([[[0.0, -np.inf, 1.0], [-np.inf, 2.0, 3.0]],
                  [[0.5, -np.inf, -np.inf], [-np.inf, 1.5, -np.inf]]])
    dec = decode_outputs(z, OutputSpec("logits", samples_axis=True), ClassIndex())
    assert dec.valid.all()
    assert dec.logits.tolist() == [[0.0, 2.0, 2.0], [0.5, 1.5, -np.inf]]
    assert np.isfinite(-logsumexp(dec.logits, axis=1)).all()


def test_one_such_row_keeps_its_segments_mean_energy() -> None:
    rng = np.random.default_rng(3)
    mon = Monitor(config={"model": "m", "output": {"kind": "logits", "samples_axis": True},
                          "detectors": ["confidence", "segments"]}, start_worker=False, clock=lambda: 1100.0)
    energies: dict[str, list[float]] = {"a": [], "b": []}
    for i in range(30):
        z = rng.normal(size=(10, 3, 4))
        if i == 5:  # member 0 masks class 0, member 1 classes 1-3: no class is given by every member
            z[0, 0, 0] = -np.inf
            z[0, 1, 1:] = -np.inf
        segments = ["a", "b"] * 5
        mon.observe(np.zeros((10, 1)), z, segment=segments, timestamp=1000.0 + i)
        masked = np.isneginf(z)
        mean = np.where(masked, 0.0, z).sum(axis=1) / np.maximum((~masked).sum(axis=1), 1)
        for seg, e in zip(segments, (-logsumexp(mean, axis=1)).tolist()):
            energies[seg].append(e)
    mon.flush()
    for seg in ("a", "b"):  # 150 rows each, over min_rows (100): both present, each the mean of its rows
        assert mon.store.value(names.SEGMENT_ENERGY, (seg,)) == pytest.approx(np.mean(energies[seg]), rel=1e-9)
    hist = mon.store.value(names.ENERGY)
    assert hist.count == 300 and hist.counts[-1] == 0 and np.isfinite(hist.sum)  # no row beyond the last bucket
    mon.close()


def test_one_column_members_keep_the_plain_mean_of_their_logits() -> None:
    """One column is P(positive)'s logit, no class to mask: a member's -inf is P = 0, and the
    members' mean logit is -inf (energy -softplus(-inf) = 0), as before."""
    dec = decode_outputs(np.array([[[-np.inf], [2.0]]]), OutputSpec("logits", samples_axis=True), ClassIndex())
    assert dec.valid.all()
    assert dec.logits.tolist() == [[0.0, -np.inf]]
