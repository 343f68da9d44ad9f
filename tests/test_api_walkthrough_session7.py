"""Defects an ML engineer hit in session 7's walkthrough of the Python API on real models.

scikit-learn models trained on the data sets it ships (iris, breast_cancer, digits), monitored
through ``Monitor`` / ``Reference`` as README's Quick start and "Confidence, calibration and
accuracy without labels" / "Input drift and data quality" show. Each test fails on the code as it
was before its fix.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, Reference
from monitor.pipeline import detector_label

sklearn = pytest.importorskip("sklearn")
pd = pytest.importorskip("pandas")

from sklearn.datasets import load_breast_cancer, load_iris  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

T0 = 1_700_000_000.0


def _monitor(reference: Reference | None, config: dict | None = None, model: str = "walk") -> Monitor:
    return Monitor(model=model, config=config, reference=reference, registry=CollectorRegistry(), live=False,
                   start_worker=False)


def _value(mon: Monitor, name: str, **labels: str) -> float | None:
    """A sample of the exposition (what a scrape reads), or None when the series is absent."""
    for line in mon.metrics_text().splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


@pytest.fixture(scope="module")
def cancer() -> dict:
    """breast_cancer split into train / reference / live, a logistic regression on it."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target")
    y = data.target.to_numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(frame, y, test_size=0.6, random_state=0, stratify=y)
    x_ref, x_live, y_ref, y_live = train_test_split(x_te, y_te, test_size=0.5, random_state=0, stratify=y_te)
    clf = LogisticRegression(max_iter=5000).fit(x_tr.to_numpy(), y_tr)
    return {"frame": frame, "x_tr": x_tr, "y_tr": y_tr, "x_ref": x_ref, "y_ref": y_ref, "x_live": x_live,
            "y_live": y_live, "clf": clf}


def _stream(mon: Monitor, x: np.ndarray | object, outputs, labels: np.ndarray | None = None, batch: int = 5) -> None:
    n = len(x)
    for i in range(0, n, batch):
        xb = x.iloc[i:i + batch] if hasattr(x, "iloc") else x[i:i + batch]
        ids = [f"r{i + j}" for j in range(len(xb))]
        mon.observe(xb, outputs(xb), request_id=ids, timestamp=T0 + i)
        if labels is not None:
            mon.feedback(ids, labels[i:i + batch], timestamp=T0 + i + 1)
    mon.flush()


# -- 1. a reference with feature names and no `features:` in the config ------------------------------
def test_reference_names_are_the_input_schema_when_the_config_has_none(cancer: dict) -> None:
    """README's ``Reference.from_arrays(X_heldout, numeric_names=names, ...)`` with a config that
    lists no features: the live arrays were read as ``f0..``, every reference feature was missing
    live and input drift flagged all of them (score 3.33 each) while the shifted one was not told
    apart, and data quality checked ``f0..`` against nothing."""
    names = [c.replace(" ", "_") for c in cancer["frame"].columns[:5]]
    clf = LogisticRegression(max_iter=5000).fit(cancer["x_tr"].to_numpy()[:, :5], cancer["y_tr"])
    x_ref = cancer["x_ref"].to_numpy()[:, :5]
    ref = Reference.from_arrays(x_ref, numeric_names=names, scores=clf.predict_proba(x_ref), labels=cancer["y_ref"])
    mon = _monitor(ref)
    live = cancer["x_live"].to_numpy()[:, :5].copy()
    live[:, 0] *= 3.0  # a unit change on the first feature only
    _stream(mon, live, clf.predict_proba)
    assert mon.pipeline.builder.schema.names == tuple(names)
    scores = {n: _value(mon, "monitor_drift_feature_score_ratio", detector="input_drift", feature=n) for n in names}
    assert scores[names[0]] is not None and scores[names[0]] >= 1.0  # the shifted feature
    assert all(scores[n] is not None and scores[n] < 1.0 for n in names[1:]), scores
    assert _value(mon, "monitor_data_invalid_ratio", feature=names[0], reason="out_of_range") > 0.5
    mon.close()


def test_default_f_names_impose_no_schema_so_dataframe_inputs_keep_their_columns() -> None:
    ref = Reference.from_arrays(np.random.default_rng(0).normal(size=(50, 3)))
    mon = _monitor(ref, {"detectors": [{"kind": "data_quality"}]})
    assert mon.input_schema.features == ()
    mon.close()


# -- 2. a reference from a pandas DataFrame ---------------------------------------------------------
def test_reference_from_a_dataframe_takes_its_column_names(cancer: dict) -> None:
    """``Reference.from_arrays(df, ...)`` named the columns ``f0..`` while ``observe(df)`` learns
    the DataFrame's column names: no feature in common, input drift on every feature."""
    cols = list(cancer["frame"].columns[:5])
    clf = LogisticRegression(max_iter=5000).fit(cancer["x_tr"][cols].to_numpy(), cancer["y_tr"])
    proba = lambda df: clf.predict_proba(df.to_numpy())  # noqa: E731
    ref = Reference.from_arrays(cancer["x_ref"][cols], scores=proba(cancer["x_ref"][cols]), labels=cancer["y_ref"])
    assert ref.numeric_names == tuple(cols)
    mon = _monitor(ref)
    live = cancer["x_live"][cols].copy()
    live[cols[0]] *= 3.0
    _stream(mon, live, proba)
    assert _value(mon, "monitor_drift_feature_score_ratio", detector="input_drift", feature=cols[0]) >= 1.0
    assert all(_value(mon, "monitor_drift_feature_score_ratio", detector="input_drift", feature=c) < 1.0 for c in cols[1:])
    mon.close()


def test_reference_from_a_dataframe_with_categorical_columns(cancer: dict) -> None:
    """A DataFrame with ``category`` / string columns failed with numpy's "could not convert
    string to float: 'medium'", naming neither the argument nor the fix."""
    df = cancer["x_ref"].iloc[:, :3].copy()
    df["size_band"] = pd.cut(df.iloc[:, 0], [0, 12, 16, 100], labels=["small", "medium", "large"])
    df["site"] = np.where(np.arange(len(df)) % 3 == 0, "A", None)
    ref = Reference.from_arrays(df)
    assert ref.numeric_names == tuple(df.columns[:3])
    assert ref.categorical_names == ("size_band", "site")
    assert set(ref.categorical[:, 0]) <= {"small", "medium", "large"}
    assert set(ref.categorical[:, 1]) == {"A", None}
    with pytest.raises(ValueError, match=r"numeric must hold numbers only.*categorical=.*DataFrame"):
        Reference.from_arrays(df.to_numpy())


# -- 3. missing categorical values ------------------------------------------------------------------
def test_missing_categorical_values_are_missing_not_a_category_named_nan(cancer: dict) -> None:
    """pandas writes a missing string as NaN: ``observe(df)`` counted it as an unseen category
    "nan" (``unseen_category`` 0.25, ``missing`` 0) and a reference built with NaN held a
    category "nan"."""
    cols = list(cancer["frame"].columns[:3])
    ref_df = cancer["x_ref"][cols].copy()
    ref_df["site"] = np.where(np.arange(len(ref_df)) % 3 == 0, "A", "B")
    ref_df.loc[ref_df.index[::10], "site"] = np.nan
    ref = Reference.from_arrays(ref_df)
    assert None in set(ref.categorical[:, 0]) and "nan" not in set(ref.categorical[:, 0])
    config = {"features": [{"name": c} for c in cols] + [{"name": "site", "kind": "categorical"}],
              "detectors": [{"kind": "data_quality"}]}
    mon = _monitor(ref, config)
    live = cancer["x_live"][cols].copy()
    live["site"] = np.where(np.arange(len(live)) % 3 == 0, "A", "B").astype(object)
    live.loc[live.index[::4], "site"] = np.nan
    _stream(mon, live, lambda df: np.tile([0.5, 0.5], (len(df), 1)))
    missing = _value(mon, "monitor_data_invalid_ratio", feature="site", reason="missing")
    assert missing == pytest.approx(len(live.index[::4]) / len(live))
    assert _value(mon, "monitor_data_invalid_ratio", feature="site", reason="unseen_category") == 0.0
    # the same rows as an object array (positional, the sidecar's rows) and with pandas' NA
    from monitor.ingest import BatchBuilder
    from monitor.schema import Feature, OutputSpec, Schema

    builder = BatchBuilder(Schema((Feature("x"), Feature("site", "categorical"))), OutputSpec())
    _, cat, _ = builder._event_rows(np.array([[1.0, "A"], [2.0, float("nan")], [3.0, None]], dtype=object))
    assert cat[:, 0].tolist() == ["A", None, None]
    _, cat, _ = builder._event_rows(np.array([[1.0, pd.NA], [2.0, "B"]], dtype=object))
    assert cat[:, 0].tolist() == [None, "B"]
    mon.close()


# -- 4. the reference's outputs as the model gives them ---------------------------------------------
def test_reference_scores_given_as_logits_are_read_as_logits(cancer: dict) -> None:
    """``output.kind: logits`` and the reference's outputs from the same ``decision_function``:
    the one column of logits was read as P(positive), ATC estimated an accuracy of 0.0 and the
    reference accuracy came from the wrong column."""
    x_ref, x_live = cancer["x_ref"].to_numpy(), cancer["x_live"].to_numpy()
    clf = cancer["clf"]
    by_proba = _monitor(Reference.from_arrays(x_ref, scores=clf.predict_proba(x_ref), labels=cancer["y_ref"]))
    by_logit = _monitor(Reference.from_arrays(x_ref, scores=clf.decision_function(x_ref), labels=cancer["y_ref"]),
                        {"output": {"kind": "logits"}})
    _stream(by_proba, x_live, clf.predict_proba)
    _stream(by_logit, x_live, clf.decision_function)
    for estimator in ("atc", "cbpe", "bbse"):
        want = _value(by_proba, "monitor_estimated_accuracy_ratio", estimator=estimator)
        assert want is not None and want > 0.8
        assert _value(by_logit, "monitor_estimated_accuracy_ratio", estimator=estimator) == pytest.approx(want, abs=0.02)
    assert _value(by_logit, "monitor_reference_accuracy_ratio") == pytest.approx(
        _value(by_proba, "monitor_reference_accuracy_ratio"))
    # probabilities given for a logits model are kept as they are
    kept = _monitor(Reference.from_arrays(x_ref, scores=clf.predict_proba(x_ref), labels=cancer["y_ref"]),
                    {"output": {"kind": "logits"}})
    _stream(kept, x_live, clf.decision_function)
    assert _value(kept, "monitor_estimated_accuracy_ratio", estimator="atc") == pytest.approx(
        _value(by_proba, "monitor_estimated_accuracy_ratio", estimator="atc"), abs=0.02)
    for mon in (by_proba, by_logit, kept):
        mon.close()


def test_reference_scores_given_per_ensemble_member(cancer: dict) -> None:
    """``output.samples_axis: true`` (a random forest's per-tree probabilities, ``(n, trees, k)``)
    with the reference's outputs in the same shape: the monitor refused to start ("reference
    scores must be class probabilities (rows, classes), got shape (171, 20, 2)")."""
    x_tr, x_ref, x_live = (cancer[k].to_numpy() for k in ("x_tr", "x_ref", "x_live"))
    rf = RandomForestClassifier(n_estimators=20, random_state=0).fit(x_tr, cancer["y_tr"])

    def members(x: np.ndarray) -> np.ndarray:
        return np.stack([tree.predict_proba(x) for tree in rf.estimators_], axis=1)

    config = {"output": {"kind": "probabilities", "samples_axis": True}}
    by_members = _monitor(Reference.from_arrays(x_ref, scores=members(x_ref), labels=cancer["y_ref"]), config)
    by_mean = _monitor(Reference.from_arrays(x_ref, scores=members(x_ref).mean(axis=1), labels=cancer["y_ref"]), config)
    for mon in (by_members, by_mean):
        _stream(mon, x_live, members, cancer["y_live"])
    assert _value(by_members, "monitor_ensemble_mutual_information_nats_count") == len(x_live)
    for estimator in ("atc", "cbpe"):
        want = _value(by_mean, "monitor_estimated_accuracy_ratio", estimator=estimator)
        assert want is not None and _value(by_members, "monitor_estimated_accuracy_ratio", estimator=estimator) == pytest.approx(want)
    by_members.close()
    by_mean.close()


# -- 5. a small reference and the default probing detector ------------------------------------------
def _iris_reference(n: int) -> Reference:
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    idx = np.random.default_rng(0).permutation(len(x))[:n]
    return Reference.from_arrays(x[idx], scores=clf.predict_proba(x[idx]), labels=y[idx])


def test_a_small_reference_leaves_probing_out_of_the_defaults(caplog: pytest.LogCaptureFixture) -> None:
    """Half of iris's held-out rows (37) as the reference: ``Monitor(reference=ref)`` raised
    "PRADA calibration needs more than window + 10 = 110 reference rows, got 37", a detector the
    user never named, with no fix; the README's default set was unusable below 110 rows."""
    from monitor.detectors.probing.detector import ProbingDetector

    need = ProbingDetector.min_reference_rows()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        small = _monitor(_iris_reference(37))
    kinds = [getattr(d, "kind", type(d).__name__) for d in small.detectors]
    assert "probing" not in kinds and "accuracy_estimation" in kinds and "input_drift" in kinds
    assert any("'probing' is left out" in r.getMessage() and "37" in r.getMessage() for r in caplog.records)
    small.close()
    at_edge = _monitor(_iris_reference(need))  # the minimum the defaults use is the detector's real one
    assert any(type(d).__name__ == "ProbingDetector" for d in at_edge.detectors)
    at_edge.close()


def test_probing_named_with_a_small_reference_says_what_to_change() -> None:
    # PRADA asked for (``prada: auto``, the default, leaves it off under 1,000 rows: s27e's review)
    with pytest.raises(ValueError, match=r"detector 'probing'.*has 37.*prada_window: 27.*prada: false"):
        _monitor(_iris_reference(37), {"detectors": [{"kind": "probing", "prada": True}]})
    mon = _monitor(_iris_reference(37), {"detectors": [{"kind": "probing", "prada": True, "prada_window": 27}]})  # the fix works
    assert type(mon.detectors[0]).__name__ == "ProbingDetector"
    mon.close()
    with pytest.raises(ValueError, match=r"detector 'probing'.*110 reference rows.*has 109"):
        _monitor(_iris_reference(109), {"detectors": [{"kind": "probing", "prada": True}]})
    mon = _monitor(_iris_reference(37), {"detectors": [{"kind": "probing"}]})  # by default PRADA is left off, said
    assert not mon.detectors[0].prada and "37 reference rows" in mon.detectors[0].prada_off_reason
    mon.close()


def test_prada_calibrated_at_the_minimum_reference_is_not_degenerate() -> None:
    """At exactly prada_window + 10 reference rows the simulated clients start cold (no warm
    history): the first row's distance to "the nearest earlier row" was infinite, every
    simulated W was NaN -> 1, and delta came out as 0.999999999999: every client that sent
    prada_window queries would have been flagged as stealing."""
    from monitor.detectors.registry import create

    det = create("probing", reference=_iris_reference(110), params={"prada": True})
    cal = det._prada_cal
    assert cal.simulations >= 20 and cal.log1mw_std > 1e-3
    assert 0.0 < cal.delta < 0.9


# -- 6. checkpoints in-process ----------------------------------------------------------------------
def test_a_restored_monitor_shows_its_figures_before_any_new_event(cancer: dict) -> None:
    """``state_dict()`` -> a new ``Monitor`` -> ``load_state_dict()`` -> ``flush()``: the
    restore report said ``detectors_restored=True``, yet the exposition held no detector figure
    (no accuracy, no labels in window, no estimated accuracy) until the next event arrived, as
    if the windows were empty (a ``live=False`` monitor, or any scrape before the worker's next
    cycle)."""
    x_ref, x_live = cancer["x_ref"].to_numpy(), cancer["x_live"].to_numpy()
    clf = cancer["clf"]
    ref = Reference.from_arrays(x_ref, scores=clf.predict_proba(x_ref), labels=cancer["y_ref"])
    first = _monitor(ref)
    _stream(first, x_live, clf.predict_proba, cancer["y_live"])
    names = ("monitor_labels_in_window", "monitor_accuracy_ratio", "monitor_brier_score", "monitor_confidence_mean_ratio")
    before = {n: _value(first, n) for n in names}
    before["cbpe"] = _value(first, "monitor_estimated_accuracy_ratio", estimator="cbpe")
    assert all(v is not None for v in before.values()), before
    state = first.state_dict()
    first.close()
    second = _monitor(ref)
    report = second.load_state_dict(state)
    assert report.detectors_restored and report.reference == "same"
    second.flush()
    after = {n: _value(second, n) for n in names}
    after["cbpe"] = _value(second, "monitor_estimated_accuracy_ratio", estimator="cbpe")
    assert after == pytest.approx(before)
    second.close()


# -- 7. a model that returns labels only ------------------------------------------------------------
def test_a_labels_only_model_gets_its_accuracy_from_delayed_labels(cancer: dict) -> None:
    """``output.kind: labels`` (``predict`` instead of ``predict_proba``) and ``feedback``: every
    label joined, yet ``monitor_labels_in_window`` stayed 0 and no accuracy was exported (the
    calibration detector skipped labels without scores)."""
    names = np.array(["malignant", "benign"])
    clf = cancer["clf"]
    x_live, y_live = cancer["x_live"].to_numpy(), cancer["y_live"]
    config = {"output": {"kind": "labels", "classes": list(names)}}
    mon = _monitor(None, config)
    _stream(mon, x_live[:90], lambda x: names[clf.predict(x)], names[y_live[:90]])
    assert _value(mon, "monitor_labels_in_window") == 90.0
    assert _value(mon, "monitor_accuracy_ratio") is None  # below min_labels: absent, not zero
    mon2 = _monitor(None, config)
    _stream(mon2, x_live, lambda x: names[clf.predict(x)], names[y_live])
    assert _value(mon2, "monitor_labels_in_window") == len(x_live)
    assert _value(mon2, "monitor_accuracy_ratio") == pytest.approx(clf.score(x_live, y_live))
    for figure in ("monitor_brier_score", "monitor_overconfidence_gap_ratio", "monitor_reliability_count"):
        assert _value(mon2, figure) is None, figure  # no confidence: nothing else
    state = mon2.state_dict()
    mon3 = _monitor(None, config)
    mon3.load_state_dict(state)
    mon3.flush()
    assert _value(mon3, "monitor_accuracy_ratio") == pytest.approx(clf.score(x_live, y_live))
    # a state saved before this window existed still loads
    det = next(d for d in mon3.detectors if type(d).__name__ == "CalibrationDetector")
    old = det.state_dict()
    old["windows"].pop("hard")
    det.load_state_dict(old)
    assert det.figures().labels == 0 and det.figures().accuracy is None
    for m in (mon, mon2, mon3):
        m.close()


# -- 8. request ids that do not match the rows ------------------------------------------------------
def test_request_ids_of_the_wrong_count_are_said_once(cancer: dict, caplog: pytest.LogCaptureFixture) -> None:
    """``observe(X[:5], p, request_id=ids[:4])`` (an off-by-one in the caller): the rows got no
    request id at all, and every later ``feedback`` for them was counted as ``unknown_id``, with nothing
    saying why."""
    x = cancer["x_live"].to_numpy()
    mon = _monitor(None, {"detectors": [{"kind": "calibration"}]})
    with caplog.at_level(logging.WARNING, logger="monitor"):
        for i in range(3):
            mon.observe(x[:5], cancer["clf"].predict_proba(x[:5]), request_id=[f"c{i}-{j}" for j in range(4)],
                        timestamp=T0 + i)
        mon.feedback(["c0-0"], [1], timestamp=T0 + 5)
        mon.flush()
    said = [r.getMessage() for r in caplog.records if "request_id:" in r.getMessage()]
    assert len(said) == 1 and "4 values for 5 rows" in said[0] and "one id per row" in said[0]
    # the label waits for a prediction under its id (labels.early), which never comes: unknown_id after the wait
    assert _value(mon, "monitor_labels_early") == 1.0
    assert _value(mon, "monitor_row_arguments_dropped_total", argument="request_id") == 15.0
    mon.close()


# -- 9. integer and float labels --------------------------------------------------------------------
def test_a_labels_only_model_without_classes_keeps_each_label_apart() -> None:
    """``output.kind: labels`` with scikit-learn's ``predict`` (integers 0..9) and no
    ``output.classes``: the first answers seen (4, 8, 9) were learned as classes 0, 1, 2, and then
    the label 0 was read as "column 0" = class "4": predictions of 0 and 4 were counted
    together, 1 with 8, 2 with 9, and the accuracy was computed against the wrong classes."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    clf = LogisticRegression(max_iter=3000).fit(x[:900], y[:900])
    mon = _monitor(None, {"output": {"kind": "labels"}})
    _stream(mon, x[900:], clf.predict, y[900:], batch=7)
    counts = np.bincount(clf.predict(x[900:]), minlength=10)
    for digit in range(10):
        assert _value(mon, "monitor_predicted_class_total", **{"class": str(digit)}) == counts[digit]
    assert _value(mon, "monitor_accuracy_ratio") == pytest.approx(clf.score(x[900:], y[900:]))
    mon.close()


def test_labels_given_as_integral_floats_join_their_class(cancer: dict) -> None:
    """``feedback(ids, y.astype(float))`` (a pandas column with a NaN somewhere is float): every
    label 0.0 / 1.0 "named no class" (classes 0, 1) and was skipped; no accuracy."""
    x, y = cancer["x_live"].to_numpy(), cancer["y_live"]
    clf = cancer["clf"]
    mon = _monitor(None, {"detectors": [{"kind": "calibration"}]})
    _stream(mon, x, clf.predict_proba, y.astype(np.float64))
    assert _value(mon, "monitor_calibration_labels_skipped_total", reason="unknown_class") is None
    assert _value(mon, "monitor_accuracy_ratio") == pytest.approx(clf.score(x, y))
    mon.close()


def test_reference_dataframe_columns_named_categorical_or_given_apart() -> None:
    """Integer codes (a zip code) are categorical only when named; ``categorical_names`` alone
    takes those columns from the DataFrame, ``categorical=`` given apart leaves its columns out of
    the numeric ones (before, both failed converting the text column to float), and a name that
    is not a column says so."""
    df = pd.DataFrame({"amount": [9.5, 120.0, 31.0], "zip": [75001, 75002, 75001], "channel": ["web", None, "app"],
                       "n": pd.array([1, None, 3], dtype="Int64")})
    ref = Reference.from_arrays(df)
    assert ref.numeric_names == ("amount", "zip", "n") and ref.categorical_names == ("channel",)
    assert np.isnan(ref.numeric[1, 2])  # pandas' NA in a nullable integer column: missing
    ref = Reference.from_arrays(df, categorical_names=["channel", "zip"])
    assert ref.numeric_names == ("amount", "n") and ref.categorical[:, 1].tolist() == ["75001", "75002", "75001"]
    ref = Reference.from_arrays(df, categorical=df[["channel"]])
    assert ref.numeric_names == ("amount", "zip", "n") and ref.categorical_names == ("channel",)
    with pytest.raises(ValueError, match=r"categorical_names \['chanel'\] are not columns.*amount, zip, channel, n"):
        Reference.from_arrays(df, categorical_names=["chanel"])


def test_checkpoint_in_the_config_of_a_monitor_built_in_code(cancer: dict, tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    """``checkpoint: {path: ...}`` in monitor.yaml read by ``Monitor.from_config``: nothing was
    written or restored and nothing said so (only ``monitor serve`` reads that key). Now the
    monitor says it at start, and ``save_checkpoint()`` / ``restore_checkpoint()`` use that path."""
    import yaml

    x_ref, x_live = cancer["x_ref"].to_numpy(), cancer["x_live"].to_numpy()
    clf = cancer["clf"]
    ref = Reference.from_arrays(x_ref, scores=clf.predict_proba(x_ref), labels=cancer["y_ref"])
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(yaml.safe_dump({"model": "cancer", "checkpoint": {"path": "state/{model}.ckpt"}}))
    kw = {"reference": ref, "registry": CollectorRegistry(), "live": False, "start_worker": False}
    with caplog.at_level(logging.WARNING, logger="monitor"):
        first = Monitor.from_config(cfg, **kw)
    assert any("checkpoint.path" in r.getMessage() and "restore_checkpoint" in r.getMessage() for r in caplog.records)
    assert first.restore_checkpoint() is False  # none yet
    _stream(first, x_live, clf.predict_proba, cancer["y_live"])
    info = first.save_checkpoint(final=True)
    assert info.path == tmp_path / "state" / "cancer.ckpt" and info.path.exists()
    want = _value(first, "monitor_accuracy_ratio")
    calls = _value(first, "monitor_calls_total")
    first.close()
    second = Monitor.from_config(cfg, **{**kw, "registry": CollectorRegistry()})
    assert second.restore_checkpoint() is True and second.restore_report.detectors_restored
    second.flush()
    assert _value(second, "monitor_accuracy_ratio") == pytest.approx(want)
    assert _value(second, "monitor_calls_total") == calls > 0  # counters carry on
    second.close()
    with pytest.raises(ValueError, match="no checkpoint path.*save_checkpoint"):
        _monitor(None).save_checkpoint()


# -- 10. one segment per row -------------------------------------------------------------------------
def test_segments_given_per_row(cancer: dict, caplog: pytest.LogCaptureFixture) -> None:
    """``observe(X_batch, p, segment=df["channel"].to_numpy())`` (one per row, as request ids may
    be given): the segment detector failed on every batch ("The weights and list don't have the
    same length", counted in monitor_detector_errors_total) and every segment showed 0 rows."""
    x, y = cancer["x_live"].to_numpy(), cancer["y_live"]
    clf = cancer["clf"]
    channel = np.where(np.arange(len(x)) % 3 == 0, "app", "web")
    mon = _monitor(None, {"detectors": [{"kind": "segments"}]})
    for i in range(0, len(x), 6):
        ids = [f"s{i + j}" for j in range(len(x[i:i + 6]))]
        seg = channel[i:i + 6] if i % 12 == 0 else list(channel[i:i + 6])  # an array, or a list
        mon.observe(x[i:i + 6], clf.predict_proba(x[i:i + 6]), request_id=ids, segment=seg, timestamp=T0 + i)
        mon.feedback(ids, y[i:i + 6], timestamp=T0 + i + 1)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon.observe(x[:3], clf.predict_proba(x[:3]), segment=["web", "app"], timestamp=T0 + 999)
        mon.observe(x[:2], clf.predict_proba(x[:2]), segment="app", timestamp=T0 + 999)  # one for the call
    mon.flush()
    assert {_value(mon, "monitor_detector_errors_total", detector=detector_label(d)) for d in mon.detectors} == {0.0}
    assert _value(mon, "monitor_segment_rows_in_window", segment="app") == (channel == "app").sum() + 2
    assert _value(mon, "monitor_segment_rows_in_window", segment="web") == (channel == "web").sum()
    assert _value(mon, "monitor_segment_rows_in_window", segment="unset") == 3.0
    app = channel == "app"
    assert _value(mon, "monitor_segment_labels_in_window", segment="app") == app.sum()
    assert _value(mon, "monitor_segment_accuracy_ratio", segment="web") == pytest.approx(clf.score(x[~app], y[~app]))
    said = [r.getMessage() for r in caplog.records if "segment: a call gave" in r.getMessage()]
    assert len(said) == 1 and "2 values for 3 rows" in said[0]
    mon.close()


# -- 11. a reference too short for the repeated-outputs comparison ---------------------------------
def test_a_reference_shorter_than_the_repeat_horizon_is_said(caplog: pytest.LogCaptureFixture) -> None:
    """digits' held-out 539 rows as the reference: ``monitor_output_repeat_ratio`` read 0.12 (a
    confident model rounds many answers to the same one-hot vector) with no reference share
    beside it, so ModelOutputsRepeated could never fire, and nothing said why. The fix the
    message gives works."""
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(x, y)
    rng = np.random.default_rng(0)
    rows = x[rng.integers(0, len(x), 600)] + rng.normal(0, 0.01, (600, 4))
    ref = Reference.from_arrays(rows, scores=clf.predict_proba(rows))
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(ref, {"detectors": [{"kind": "output_repeats"}]})
    said = [r.getMessage() for r in caplog.records if "output_repeats: the reference" in r.getMessage()]
    assert len(said) == 1 and "600 rows" in said[0] and "horizon_rows: 300" in said[0]
    assert mon.detectors[0].reference_ratio is None
    mon.close()
    fixed = _monitor(ref, {"detectors": [{"kind": "output_repeats", "horizon_rows": 300}]})
    assert fixed.detectors[0].reference_ratio is not None
    fixed.close()


# -- 12. flush() in a batch job -----------------------------------------------------------------------
def test_flush_analyses_the_queries_probing_holds() -> None:
    """A batch job (``live=False``) sends 600 queries from 6 clients within 6 s of event time
    and calls ``flush()``, documented to "bring every exported figure up to date": the probing
    detector still held 300 of them (``monitor_probing_pending_queries`` 300, ``analysed`` 300)
    waiting for 64 per client or 30 s of event time, and ``suspicious_clients()`` judged half the
    traffic."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    clf = LogisticRegression(max_iter=3000).fit(x[:900], y[:900])
    ref = Reference.from_arrays(x[900:1400], scores=clf.predict_proba(x[900:1400]), labels=y[900:1400])
    mon = _monitor(ref, {"detectors": [{"kind": "probing"}]})
    rng = np.random.default_rng(0)
    for i in range(300):
        row = x[1400 + i % 397][None]
        mon.observe(row, clf.predict_proba(row), client=f"u{i % 5}", timestamp=T0 + i * 0.01)
        probe = (x[1400] + rng.normal(0, 0.2, 64))[None]
        mon.observe(probe, clf.predict_proba(probe), client="attacker", timestamp=T0 + i * 0.01)
    mon.flush()
    assert _value(mon, "monitor_probing_pending_queries") == 0.0
    assert _value(mon, "monitor_probing_queries_total", outcome="analysed") == 600.0
    verdicts = mon.suspicious_clients()
    assert len(verdicts) == 1 and verdicts[0].queries == 300
    mon.close()


def test_a_reference_with_categorical_features_leaves_the_schema_to_the_inputs(cancer: dict) -> None:
    """Its column order among the numeric features is unknown, so array rows are not read by
    it; DataFrame rows are read by their column names and meet the reference's features."""
    cols = list(cancer["frame"].columns[:3])
    ref_df = cancer["x_ref"][cols].copy()
    ref_df["site"] = np.where(np.arange(len(ref_df)) % 3 == 0, "A", "B")
    mon = _monitor(Reference.from_arrays(ref_df), {"detectors": [{"kind": "data_quality"}]})
    assert mon.input_schema.features == ()
    live = cancer["x_live"][cols].copy()
    live["site"] = np.where(np.arange(len(live)) % 2 == 0, "A", "C")  # "C" was never seen
    _stream(mon, live, lambda df: np.tile([0.5, 0.5], (len(df), 1)))
    assert _value(mon, "monitor_data_invalid_ratio", feature="site", reason="unseen_category") == pytest.approx(0.5, abs=0.01)
    mon.close()


def test_inputs_that_share_no_feature_name_with_the_reference_are_said(cancer: dict, caplog: pytest.LogCaptureFixture) -> None:
    """A reference of unnamed arrays (``f0..``) and DataFrame inputs (named columns): every
    reference feature read as missing live and input drift flagged them all, silently."""
    cols = list(cancer["frame"].columns[:4])
    ref = Reference.from_arrays(cancer["x_ref"][cols].to_numpy())  # f0..f3
    live = cancer["x_live"][cols]
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(ref, {"detectors": [{"kind": "data_quality"}]})
        _stream(mon, live, lambda df: np.tile([0.5, 0.5], (len(df), 1)))
    said = [r.getMessage() for r in caplog.records if "share no name with the reference" in r.getMessage()]
    assert len(said) == 1 and "f0" in said[0] and "features:" in said[0]
    mon.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        named = _monitor(Reference.from_arrays(cancer["x_ref"][cols]), {"detectors": [{"kind": "data_quality"}]})
        _stream(named, live, lambda df: np.tile([0.5, 0.5], (len(df), 1)))
    assert not [r for r in caplog.records if "share no name" in r.getMessage()]
    named.close()


def test_config_features_that_share_no_name_with_the_reference_are_said(cancer: dict, caplog: pytest.LogCaptureFixture) -> None:
    """A config listing features p..s beside a reference built from columns a..d started ready and
    silent (found by the session-9 sidecar walkthrough); it is said once, at construction."""
    cols = list(cancer["frame"].columns[:4])
    ref = Reference.from_arrays(cancer["x_ref"][cols])
    with caplog.at_level(logging.WARNING, logger="monitor"):
        mon = _monitor(ref, {"features": ["p", "q", "r", "s"], "detectors": [{"kind": "data_quality"}]})
    said = [r.getMessage() for r in caplog.records if "config's features" in r.getMessage()]
    assert len(said) == 1 and "p, q, r, s" in said[0] and cols[0] in said[0] and "monitor reference build" in said[0]
    mon.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="monitor"):
        same = _monitor(ref, {"features": cols, "detectors": [{"kind": "data_quality"}]})
    assert not [r for r in caplog.records if "share no name" in r.getMessage()]
    same.close()
