"""On-call user study, session 31: a real sidecar paged a real Alertmanager through healthy, shifted,
confident-wrong, collapsed and probed streams; what the pages got wrong, as tests."""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.detectors.repetition import OutputRepeatDetector
from monitor.reference import Reference

W = np.array([[2.0, -1.0, 0.5, 0.0], [-1.0, 2.0, 0.0, 0.5], [-1.0, -1.0, -0.5, -0.5]])


def _softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = x @ W.T / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def test_saturated_probabilities_of_different_inputs_are_not_repeated_answers() -> None:
    # The sidecar's "shift" stream (x0 read x3 + 2) and "overconf" one (the same model at
    # temperature 0.15) both paged ModelOutputsRepeated, "canned, cached or memorised answers",
    # beside the drift and calibration alerts of the same cause: the softmax saturates, and
    # [1, 0, 0] to 1e-6 is the honest answer of thousands of different inputs. A cache or a
    # fallback serving one answer that is not saturated still counts.
    rng = np.random.default_rng(0)
    x_ref = rng.normal(size=(3000, 4))
    ref = Reference.from_arrays(x_ref, scores=_softmax(x_ref))
    det = OutputRepeatDetector(ref, window_s=1e6, min_rows=100)
    x = rng.normal(size=(2000, 4))
    x[:, 0] = x[:, 0] * 3 + 2
    confident = _softmax(x, temperature=0.15)
    assert (np.round(confident.max(axis=1), 6) == 1.0).mean() > 0.4  # the stream does saturate
    det.update(Batch.from_arrays(x, confident, ts=np.zeros(len(x))))
    assert det.repeat_ratio is not None and det.reference_ratio is not None
    assert det.repeat_ratio - det.reference_ratio < 0.1

    canned = OutputRepeatDetector(ref, window_s=1e6, min_rows=100)
    answers = _softmax(x)
    answers[::2] = [0.7, 0.2, 0.1]  # a fallback answer given to half of the inputs
    canned.update(Batch.from_arrays(x, answers, ts=np.zeros(len(x))))
    assert canned.repeat_ratio is not None and canned.repeat_ratio - canned.reference_ratio > 0.4


def test_confidence_drift_page_says_what_to_do_when_the_inputs_did_not_move() -> None:
    # The "overconf" and "collapse" streams kept their inputs (no ModelInputDrift, no data-quality
    # alert) and paged ModelConfidenceDrift, whose page said "the inputs probably moved away from
    # what the model knows" and whose runbook sent on-call to the input-drift dashboard only: a
    # dead end for a model that changed. Both now name that case and where to look.
    import yaml

    from monitor import runbooks
    from tests.conftest import REPO_ROOT

    rules = yaml.safe_load((REPO_ROOT / "rules" / "confidence.yml").read_text())["groups"][0]["rules"]
    description = next(r for r in rules if r.get("alert") == "ModelConfidenceDrift")["annotations"]["description"]
    steps = runbooks.RUNBOOKS["ModelConfidenceDrift"]
    for text in (description, steps):
        assert "the model itself changed" in text, text
    assert "ModelInputDrift" in steps and "deploy" in steps


def test_benign_clients_are_not_flagged_as_a_population_wide_shift_ends() -> None:
    # The sidecar's "shift" stream: every client's x0 read x3 + 2 for six minutes, then as before.
    # The population's OOD rate followed the shift back within a minute, but each client's window
    # (its last 1,000 queries) still held its shifted queries, now judged against the reference's
    # 1%: all 30 benign clients were flagged "ood" after the stream healed, and
    # ModelProbingManySuspiciousClients (critical) paged. Here: 30 clients at 0.5 queries/s, x0
    # shifted from minute 20 to 35 (the session-11 stream with a shift instead of a squeeze).
    from tests import test_probing_drift_robust_session11 as s11

    x, clients, ts = s11.population(seed=2, clients=30)
    x = s11.natural(np.random.default_rng(102), len(ts))
    during = (ts >= s11.DRIFT_START) & (ts < s11.DRIFT_END)
    x[during, 0] = s11.MEAN[0] + 3.0 * (x[during, 0] - s11.MEAN[0]) + 4.0
    det, transitions, any_series = s11.replay(x, clients, ts)
    after = [n for now, n in zip(np.arange(15.0, s11.END + 15.0, 15.0), any_series) if now > s11.DRIFT_END + 60.0]
    assert max(after) <= 3, max(after)
    assert not [t for t in transitions if t.alertname == "ModelProbingManySuspiciousClients" and t.to_state == "firing"]
    # the held rates are part of the state: a restored detector keeps judging as before
    restored = s11.ProbingDetector(s11.reference(), client_id_salt="drift", raw_client_ids=True, seed=0)
    restored.load_state_dict(det.state_dict())
    assert np.array_equal(restored._held_until, det._held_until)


def test_a_prober_that_stopped_a_window_ago_no_longer_pages_and_is_still_listed() -> None:
    # The sidecar's "probe" stream: two attackers (near-duplicate boundary queries, random scraping)
    # were flagged at once, then stopped; their ModelProbingSuspiciousClient pages kept firing with
    # the healed stream (evidence is counted in queries, and they sent none), so the runbook's
    # "rate-limit or block the account" could never resolve them. A client silent for the
    # detector's window now leaves the per-client series and the counts; the clients API keeps it.
    from monitor.store import MetricStore
    from tests import test_probing_drift_robust_session11 as s11

    rng = np.random.default_rng(3)
    det = s11.ProbingDetector(s11.reference(), client_id_salt="s31", raw_client_ids=True, seed=0, window_s=600.0)
    base = s11.natural(rng, 1)[0]
    store = MetricStore("m")
    for t in range(0, 1800, 10):
        x = s11.natural(rng, 10)
        clients = [f"user-{i}" for i in range(10)]
        if t < 300:
            x = np.vstack([x, base + rng.normal(0.0, 0.01, size=(10, s11.D))])
            clients += ["mallory"] * 10
        det.update(Batch.from_arrays(x, s11.scores(x), ts=np.full(len(x), float(t)), client=np.array(clients, dtype=object)))
        det.advance(float(t) + 9.0)
        det.export(store)
        if t == 290:
            assert store.value("monitor_probing_client_evidence_queries", ("mallory", "near_duplicates")) > 0
    assert store.value("monitor_probing_client_evidence_queries", ("mallory", "near_duplicates")) is None
    assert store.value("monitor_probing_suspicious_clients", ("any",)) == 0
    assert "mallory" in [v.client for v in det.suspicious_clients()]


def test_error_rate_back_at_the_reference_after_an_easy_window_does_not_page(tmp_path) -> None:
    # The sidecar's "shift" stream: while x0 was shifted the model's job was easier (9% errors
    # against 22% on the reference); once the stream healed, ModelErrorRateRose paged "makes more
    # errors than in the window before" (20% against 9%) for a model doing as well as it was
    # validated to. A window at least as accurate as the reference no longer pages; a model worse
    # than before and than its reference ("worse"), or one without reference labels ("noref"), does.
    from tests.test_oncall_session7 import _run_unit_test

    series = []
    for model, now, ref in (("back", 0.80, 0.783), ("worse", 0.70, 0.783), ("noref", 0.80, None)):
        series += [f"""
              - series: 'monitor_accuracy_ratio{{model="{model}"}}'
                values: '{now}x30'
              - series: 'monitor_accuracy_previous_window_ratio{{model="{model}"}}'
                values: '0.91x30'
              - series: 'monitor_labels_in_window{{model="{model}"}}'
                values: '1000x30'
              - series: 'monitor_labels_in_previous_window{{model="{model}"}}'
                values: '1000x30'"""]
        if ref is not None:
            series += [f"""
              - series: 'monitor_reference_accuracy_ratio{{model="{model}"}}'
                values: '{ref}x30'"""]
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelerrorraterose"
    expected = []
    for model, rate in (("worse", "30%"), ("noref", "20%")):
        expected.append(f"""
                  - exp_labels: {{severity: warning, model: {model}}}
                    exp_annotations:
                      summary: "Model {model} makes more errors than in the window before"
                      description: "The error rate on the labelled predictions of the window is {rate}, against 9% in the window just before: up by half or more, significant at z > 4. Window: 1000 labels."
                      runbook_url: "{url}\"""")
    _run_unit_test(tmp_path, "confidence.yml", """
        tests:
          - interval: 1m
            input_series:""" + "".join(series) + """
            alert_rule_test:
              - eval_time: 25m
                alertname: ModelErrorRateRose
                exp_alerts:""" + "".join(expected) + "\n")


def test_multivariate_drift_summary_says_what_changed_with_the_number(tmp_path) -> None:
    # The sidecar's "shift" stream paged "Multivariate drift on model shift (pca_drift)" and no
    # more, while the detector exported what moved (monitor_drift_top_feature: reconstruction_error
    # scaled x2.7 since 18:43:56), which ModelInputDrift's and ModelOutputDrift's summaries read.
    import io
    import json

    import yaml

    from monitor.rules.unittest import run_unit_tests
    from tests.conftest import REPO_ROOT

    rules_file = REPO_ROOT / "rules" / "drift.yml"
    rule = next(r for r in yaml.safe_load(rules_file.read_text())["groups"][0]["rules"] if r.get("alert") == "ModelMultivariateDrift")
    top = ('monitor_drift_top_feature{model="m",detector="pca_drift",feature="reconstruction_error",rank="1",'
           'change="scaled x2.7",since="2026-12-05T18:43:56Z"}')
    doc = {"rule_files": [str(rules_file)], "evaluation_interval": "1m",
           "tests": [{"interval": "1m",
                      "input_series": [{"series": 'monitor_drift_detected{model="m",detector="pca_drift"}', "values": "1x5"},
                                       {"series": top, "values": "2.1x5"}],
                      "alert_rule_test": [{"eval_time": "2m", "alertname": "ModelMultivariateDrift", "exp_alerts": [
                          {"exp_labels": {"severity": "warning", "model": "m", "detector": "pca_drift"},
                           "exp_annotations": {
                               "summary": "Multivariate drift on model m (pca_drift): reconstruction_error scaled x2.7 since 2026-12-05T18:43:56Z",
                               "description": " ".join(rule["annotations"]["description"].split()),
                               "runbook_url": rule["annotations"]["runbook_url"]}}]}]}]}
    path = tmp_path / "multivariate_summary_test.yml"
    path.write_text(json.dumps(doc))
    out, err = io.StringIO(), io.StringIO()
    assert run_unit_tests([str(path)], stdout=out, stderr=err) == 0, out.getvalue() + err.getvalue()
