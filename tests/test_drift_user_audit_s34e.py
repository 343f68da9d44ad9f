"""Audit of the README's drift claims from a user's side (session 34, helper s34e): what a user
met that the README, the log or the exposition said otherwise, each test failing before its fix.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from tests.embedding_streams import WIDTH, embeddings
from tests.sidecar_support import sample

__all__: list[str] = []

README = Path(__file__).resolve().parents[1] / "README.md"
SINCE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # what monitor.detectors.drift writes (time.strftime of the onset, UTC)
NOW = 1_700_000_000.0


def _since_labels(text: str) -> list[str]:
    return re.findall(r'monitor_drift_top_feature\{[^}]*since="([^"]*)"', text)


def test_the_readme_example_of_since_is_what_the_detector_writes() -> None:
    """The README's example of monitor_drift_top_feature showed since="14:02"; the detector writes
    the onset as a UTC date-time, 2026-12-06T14:02:05Z (a panel or a rule matching the documented
    form would match nothing)."""
    rng = np.random.default_rng(3)
    ref = Reference.from_arrays(rng.normal(size=(2000, 3)), numeric_names=["a", "b", "income"])
    mon = Monitor("since", config={"output": {"kind": "none"}, "detectors": [{"kind": "input_drift"}]},
                  reference=ref, registry=CollectorRegistry(auto_describe=False), start_worker=False, live=False)
    try:
        for b in range(40):
            x = rng.normal(size=(50, 3))
            if b >= 20:
                x[:, 2] *= 10  # a clear unit change: the alarm comes within a few batches
            mon.observe(x, None, timestamp=NOW + 5 * b)
        mon.flush()
        written = _since_labels(mon.metrics_text())
    finally:
        mon.close()
    assert written, "a x10 change over 1,000 rows raised no alarm"
    onset = time.strptime(written[0], SINCE_FORMAT)  # the detector's own form
    assert NOW + 5 * 15 <= calendar.timegm(onset) <= NOW + 5 * 21, written  # near the change
    documented = _since_labels(README.read_text(encoding="utf-8"))
    assert documented, "the README shows no monitor_drift_top_feature with a since label"
    for value in documented:
        time.strptime(value, SINCE_FORMAT)  # ValueError: the README shows a form the agent never writes


def test_an_embedding_dropped_at_intake_is_said_to_leave_the_embedding_drift(caplog: Any) -> None:
    """A call whose embedding cannot be used (another length than the other calls') was said at
    intake to be skipped by the probing detector only, with its counter, while the embedding drift
    detector leaves those rows out too and counts them in monitor_drift_rows_unread_total (its own
    line is said once, here used up by an earlier NaN): a user running embedding drift without
    probing read that nothing of theirs lost the rows."""
    rng = np.random.default_rng(4)
    ref = Reference.from_arrays(rng.normal(size=(2000, 2)), numeric_names=["a", "b"], embedding=embeddings(rng, 2000))
    cfg = {"output": {"kind": "none"}, "detectors": [{"kind": "pca_drift", "space": "embedding"}]}  # no probing
    mon = Monitor("emb", config=cfg, reference=ref, registry=CollectorRegistry(auto_describe=False),
                  clock=lambda: NOW, start_worker=False)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            first = embeddings(rng, 20)
            first[0, 0] = np.nan  # the detector's own line (said once) goes to this one
            mon.observe(rng.normal(size=(20, 2)), None, embedding=first)
            mon.flush()
            mon.observe(rng.normal(size=(30, 2)), None, embedding=embeddings(rng, 30))
            mon.observe(rng.normal(size=(10, 2)), None, embedding=embeddings(rng, 10)[:, : WIDTH // 2])
            mon.flush()
            text = mon.metrics_text()
    finally:
        mon.close()
    unread = sample(text, "monitor_drift_rows_unread_total", model="emb", detector="pca_drift_embedding")
    assert unread == 11.0  # the NaN row and the 10 rows of the shorter embedding
    assert sample(text, "monitor_row_arguments_dropped_total", model="emb", argument="embedding") == 10.0
    intake = [r.getMessage() for r in caplog.records if "monitor_row_arguments_dropped_total" in r.getMessage()
              and "embedding" in r.getMessage()]
    assert len(intake) == 1, intake
    assert "monitor_drift_rows_unread_total" in intake[0] and "pca_drift" in intake[0], intake[0]


def test_a_feature_constant_in_the_reference_scores_zero_not_negative_zero() -> None:
    """No score test applies to a feature constant in the reference: its ratio was -0 / inf, and
    monitor_drift_feature_score_ratio exported -0.0 beside the other features' figures."""
    rng = np.random.default_rng(5)

    def rows(n: int) -> pd.DataFrame:
        return pd.DataFrame({"k": np.full(n, 3.0), "x": rng.normal(size=n)})

    mon = Monitor("k", config={"output": {"kind": "none"}, "detectors": [{"kind": "input_drift"}]},
                  reference=Reference.from_arrays(rows(2000)), registry=CollectorRegistry(auto_describe=False),
                  clock=lambda: NOW, start_worker=False)
    try:
        for _ in range(20):
            mon.observe(rows(100), None)
        mon.flush()
        text = mon.metrics_text()
    finally:
        mon.close()
    line = [ln for ln in text.splitlines()
            if ln.startswith("monitor_drift_feature_score_ratio{") and 'feature="k"' in ln]
    assert len(line) == 1 and line[0].split()[-1] == "0.0", line


def test_unnamed_reference_columns_read_as_the_configured_features_are_not_said_to_share_no_name(caplog: Any) -> None:
    """The README: an array given without numeric_names= has columns f0, f1, ..., read in order
    as the configured features when they are as many. The detectors were built so (a change of
    column 1 named b), but the intake compared the config's a, b, c with f0, f1, f2 and warned
    that they share no name and that input drift and data quality compare nothing. Columns that
    are not as many as the features are still said."""
    rng = np.random.default_rng(6)
    cfg = {"features": ["a", "b", "c"], "output": {"kind": "none"}}  # the defaults: a listed input_drift is refused
    for columns, said in ((3, False), (4, True)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon = Monitor("pos", config=cfg, reference=Reference.from_arrays(rng.normal(size=(1000, columns))),
                          registry=CollectorRegistry(auto_describe=False), clock=lambda: NOW, start_worker=False)
        try:
            warned = [r.getMessage() for r in caplog.records if "share no name" in r.getMessage()]
            assert bool(warned) is said, (columns, warned)
            if columns == 3:
                for b in range(40):
                    x = rng.normal(size=(50, 3))
                    x[:, 1] += 2.0 if b >= 20 else 0.0
                    mon.observe(x, None)
                mon.flush()
                named = re.findall(r'monitor_drift_top_feature\{[^}]*feature="([^"]+)"', mon.metrics_text())
                assert named[:1] == ["b"], named
        finally:
            mon.close()


def test_reference_build_says_when_the_profile_has_no_pca(tmp_path: Path) -> None:
    """The README: below 23 reference rows (20 with --pca-fit) pca_drift is off, the start log and
    `monitor reference show` saying why. `monitor reference build` itself said nothing, even with
    --pca-fit given: the profile was written without a PCA and the training rows went unused."""
    from click.testing import CliRunner

    from monitor.cli import main

    rng = np.random.default_rng(7)
    for name, rows in (("small.csv", 15), ("train.csv", 500), ("ok.csv", 40)):
        pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"]).to_csv(tmp_path / name, index=False)
    runner = CliRunner()
    said = {}
    for label, args in (("small", ["small.csv"]), ("small, pca_fit", ["small.csv", "--pca-fit", "train.csv"]),
                        ("ok", ["ok.csv"])):
        res = runner.invoke(main, ["reference", "build", *[str(tmp_path / a) if a.endswith(".csv") else a for a in args],
                                   "-o", str(tmp_path / "p.npz"), "--quiet"])
        assert res.exit_code == 0, res.output
        said[label] = [ln for ln in res.output.splitlines() if "pca_drift is off" in ln]
    assert len(said["small"]) == 1 and "at least 23 reference rows" in said["small"][0], said
    assert len(said["small, pca_fit"]) == 1 and "at least 20 reference rows" in said["small, pca_fit"][0], said
    assert said["ok"] == [], said


def test_a_rare_value_behind_an_alarm_is_named_at_its_share_since_the_change() -> None:
    """The value behind a change of a categorical feature's "other" bin was named with its share of
    the recent rows counted with a 2,000-row half-life, so at an alarm 100 rows after the onset
    the thousands of rows before it diluted it: a value grown to a fifth of the traffic read 2% of
    it (the bin's own 3% -> 28% beside it). Its share is now counted over the last rows of the
    alarm's window. Seeds 1-3: a Zipf mix of 100 shops, 5,000 healthy rows, then 'acme-77' (a rare
    one) on 20% of the rows; measured 26%, 21% and 15% of the last 100 rows."""
    cats = np.array([f"acme-{i}" for i in range(100)])
    p = 1 / np.arange(1, 101) ** 1.1
    p /= p.sum()
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)

        def draw(n: int, grown: bool = False) -> pd.DataFrame:
            shop = rng.choice(cats, n, p=p)
            if grown:
                shop = np.where(rng.random(n) < 0.2, "acme-77", shop)
            return pd.DataFrame({"x": rng.normal(size=n), "shop": shop})

        mon = Monitor("shops", config={"output": {"kind": "none"}, "detectors": [{"kind": "input_drift"}]},
                      reference=Reference.from_arrays(draw(5000)), registry=CollectorRegistry(auto_describe=False),
                      start_worker=False, live=False)
        try:
            for b in range(140):
                mon.observe(draw(50, grown=b >= 100), None, timestamp=NOW + 5 * b)
            mon.flush()
            changes = re.findall(r'monitor_drift_top_feature\{change="([^"]*)",[^}]*feature="shop"', mon.metrics_text())
        finally:
            mon.close()
        assert len(changes) == 1 and "most often 'acme-77' (" in changes[0], (seed, changes)
        share = float(changes[0].rsplit("(", 1)[1].split("%")[0])
        assert 10 <= share <= 35, (seed, changes)  # 20% of the rows since the change, counted over 100 or more
