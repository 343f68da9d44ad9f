"""A binary ensemble's members returning P(positive) each, ``(rows, samples)``, under
``output.samples_axis: true`` (session 26 audit): refused as before, but the log line now names
the shape received and how to add the classes axis (it said only "(rows, samples, classes)" and
to check output.kind and output.classes), and the fix it names is read."""

from __future__ import annotations


import numpy as np
from prometheus_client import CollectorRegistry

from monitor import Monitor
from tests.test_audit_session26_labels_as_probabilities import refused


def _monitor() -> Monitor:
    return Monitor(model="e", registry=CollectorRegistry(), config={"output": {"samples_axis": True}},
                   start_worker=False, live=False)


def test_rows_of_one_probability_per_member_are_refused_with_the_fix(caplog) -> None:
    rng = np.random.default_rng(0)
    members = rng.random((30, 5))
    mon = _monitor()
    try:
        n, said = refused(mon, caplog, lambda: mon.observe(rng.normal(size=(30, 2)), members), "output_shape")
        assert n == 30
        assert "(30, 5)" in said and "out[..., None]" in said
    finally:
        mon.close()


def test_the_fix_it_names_is_read() -> None:
    rng = np.random.default_rng(0)
    members = rng.random((30, 5))
    mon = _monitor()
    try:
        mon.observe(rng.normal(size=(30, 2)), members[..., None])
        mon.flush()
        assert mon.store.value("monitor_predictions") == 30
        assert mon.store.value("monitor_rows_rejected", {"reason": "output_shape"}) in (None, 0.0)
    finally:
        mon.close()
