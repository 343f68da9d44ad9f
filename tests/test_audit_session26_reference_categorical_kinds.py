"""Live DataFrame columns the reference holds as categorical (session 26 audit).

A reference built from a CSV (``monitor reference build``) reads a boolean column as the text
"True"/"False", and columns listed as categorical (zip codes) as text; the live DataFrame, even the
same CSV read by pandas, has them as bool or int, and the schema learned from it made them numeric.
The reference's categorical feature never arrived: input drift read it as "no data" and
ModelInputDrift fired on the reference's own rows. The learned schema now takes the reference's
categorical features as categorical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.profile import load_reference


@pytest.mark.parametrize("categorical", [None, ("zip", "vip")])
def test_the_references_own_rows_do_not_drift_when_live_dtypes_are_bool_and_int(tmp_path, categorical) -> None:
    rng = np.random.default_rng(0)
    n = 300
    p = rng.random(n)
    frame = pd.DataFrame({"age": rng.normal(40, 10, n), "vip": rng.random(n) > 0.5,
                          "zip": rng.choice(["94110", "10001", "60601"], n) if categorical is None
                          else rng.choice([94110, 10001, 60601], n)})
    frame.to_csv(tmp_path / "inputs.csv", index=False)
    frame.assign(p0=1 - p, p1=p).to_csv(tmp_path / "ref.csv", index=False)
    # as `monitor reference build ref.csv --output-columns p0,p1 [--categorical zip,vip]` reads it
    ref = load_reference(tmp_path / "ref.csv", output_columns=("p0", "p1"), categorical=categorical)
    assert "vip" in ref.categorical_names
    mon = Monitor(model="m", reference=ref, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        live = pd.read_csv(tmp_path / "inputs.csv")  # vip bool (zip int64 when listed as categorical)
        assert live["vip"].dtype == bool
        mon.observe(live, np.c_[1 - p, p])
        mon.flush()
        assert mon.store.value("monitor_drift_detected", {"detector": "input_drift"}) == 0.0
        for feature in ref.categorical_names:
            assert mon.store.value("monitor_drift_feature_pvalue",
                                   {"detector": "input_drift", "feature": feature, "test": "chi2"}) > 0.5, feature
    finally:
        mon.close()
