"""``monitor config check`` on raw reference data judges what the agent will use (final review).

A raw ``.npz`` of more than 5,000 rows: the agent calibrates on its in-memory profile's sample of
5,000; the check judged every row, so a bad row outside the sample failed a config the agent
runs. A CSV reference: the check's placeholder (no rows, scores or labels: the agent profiles the
file at start) made the default set say "input_drift left out of the defaults: the reference has
no rows", a warning about a reference the agent will have.
"""

from __future__ import annotations

import numpy as np
import yaml
from click.testing import CliRunner

from monitor.cli import main

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _check(tmp_path, ref_name: str):
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump({**IRIS, "reference": {"path": ref_name}}))
    return CliRunner().invoke(main, ["config", "check", str(config)])


def test_a_large_raw_npz_is_judged_on_the_rows_the_agent_keeps(tmp_path):
    from monitor.core import Monitor
    from monitor.config import load_config
    from monitor.profile import load_reference

    rng = np.random.default_rng(0)
    n = 20_000
    scores = rng.dirichlet([1, 1, 1], size=n)
    np.savez(tmp_path / "raw.npz", X=rng.normal(size=(n, 4)), scores=scores, feature_names=np.array(list("abcd")))
    sample = load_reference(tmp_path / "raw.npz")  # the agent's rows
    # a NaN score in a row the agent's sample leaves out
    in_sample = {tuple(r) for r in np.round(sample.scores, 12)}
    outside = next(i for i in range(n) if tuple(np.round(scores[i], 12)) not in in_sample)
    scores[outside] = np.nan
    np.savez(tmp_path / "raw.npz", X=rng.normal(size=(n, 4)), scores=scores, feature_names=np.array(list("abcd")))
    result = _check(tmp_path, "raw.npz")
    assert result.exit_code == 0, result.output
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({**IRIS, "reference": {"path": str(tmp_path / "raw.npz")}}))
    Monitor(config=load_config(tmp_path / "monitor.yaml").model(None), start_worker=False).close()  # the agent builds too


def test_a_csv_reference_gets_no_warning_about_what_the_placeholder_lacks(tmp_path, caplog):
    import logging

    rng = np.random.default_rng(1)
    lines = ["a,b,c,d"] + [",".join(f"{v:.4f}" for v in row) for row in rng.normal(size=(300, 4))]
    (tmp_path / "ref.csv").write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.INFO, logger="monitor"):
        result = _check(tmp_path, "ref.csv")
    assert result.exit_code == 0, result.output
    said = [r.getMessage() for r in caplog.records] + [result.output]
    assert not [m for m in said if "left out of the defaults" in m], said
