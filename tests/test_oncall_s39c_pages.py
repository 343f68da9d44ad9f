"""On-call walkthrough s39c: a real sidecar in proxy mode in front of a model server, a real Prometheus
and Alertmanager with a webhook; unshifted, shifted (noise, a class knocked out, one feature read x40),
over-confident, probed; restarts and outages. What the pages got wrong, as tests."""

from __future__ import annotations

import collections

import numpy as np
import yaml

from monitor.batch import Batch
from monitor.store import MetricStore
from tests.conftest import REPO_ROOT

ONSET, END = 600.0, 1800.0


def _unit_change_replay(factor: float, extra_rules: list | None = None, prober: bool = False, noise: bool = False):
    """12 benign clients at 2.7 queries/s for 30 minutes (the walkthrough's traffic), feature 3 of the
    session-11 world read ``factor`` times larger from minute 10 on, through the probing pack; with
    ``prober``, a client sending near-copies of one row, 1 a second, from minute 15; with ``noise``,
    one sending uniform noise (every query out of distribution), 1 a second, from minute 15."""
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from tests import probing_streams as ps
    from tests import test_probing_drift_robust_session11 as s11

    x, clients, ts = ps.timed_clients(np.random.default_rng(2), s11.natural, 12, 2.7, END)
    after = ts >= ONSET
    x[after, 3] = s11.MEAN[3] + factor * (x[after, 3] - s11.MEAN[3])
    if prober:
        rng = np.random.default_rng(5)
        near = s11.natural(rng, 1)[0] + rng.normal(0.0, 0.01, (300, s11.D))
        x, clients, ts = np.vstack([x, near]), np.concatenate([clients, np.full(300, "mallory", dtype=object)]), np.concatenate([ts, 900.0 + np.arange(300.0)])
    if noise:
        odd = np.random.default_rng(6).uniform(-15.0, 15.0, size=(300, s11.D))
        x, clients, ts = np.vstack([x, odd]), np.concatenate([clients, np.full(300, "noise", dtype=object)]), np.concatenate([ts, 900.0 + np.arange(300.0)])
    if prober or noise:
        order = np.argsort(ts, kind="stable")
        x, clients, ts = x[order], clients[order], ts[order]
    det = s11.ProbingDetector(s11.reference(), client_id_salt="s39c", raw_client_ids=True, seed=0)
    store = MetricStore("m")
    series = SeriesStore(retention_s=7200)
    ev = RuleEvaluator.from_files([*(extra_rules or []), s11.RULES], storage=series, default_interval_s=15.0)
    transitions, listed_when_resolved = [], []
    for now in np.arange(15.0, END + 15.0, 15.0):
        sel = (ts >= now - 15.0) & (ts < now)
        det.update(Batch.from_arrays(x[sel], s11.scores(x[sel]), ts=ts[sel], client=clients[sel]))
        det.advance(float(now))
        det.export(store)
        series.append_scrape(float(now), [({"__name__": n, **lab}, v) for n, lab, v in store.samples()], source="scrape:m")
        for t in ev.evaluate(float(now)):
            transitions.append(t)
            if t.alertname == "ModelProbingSuspiciousClient" and t.to_state == "inactive":
                listed_when_resolved.append(t.labels["client"] in [v.client for v in det.suspicious_clients()])
    return transitions, listed_when_resolved


def test_a_lasting_unit_change_pages_benign_clients_and_the_page_says_so(tmp_path) -> None:
    # The walkthrough's shift (one of six features read x40, as a unit change upstream) paged
    # ModelProbingSuspiciousClient 29 times in 12 minutes, `stealing` and once `ood`, on all 12 of its
    # benign clients, each page resolving 15-60 s later while the client kept sending. The page said
    # "decide whether to throttle or block the client" and the runbook "rate-limit or block the
    # account": on-call following them blocks every customer. The page now names the drift alerts
    # firing with it, and the runbook says how to tell a moved population from a prober and why the
    # clients API may no longer list the client. The detector's part was fixed in s39g
    # (tests/test_probing_unit_change_s39g.py): the lasting `ood` flags came from a population null that
    # stopped following the rate near 1, the `stealing` ones from PRADA's distances taken in the
    # reference's units (a stretched feature makes benign minimum distances heavy-tailed). This replay
    # paged 33 times (12 clients) under x40 and 13 (9 clients) under x10 before; at most 1 now (0 and 1).
    for factor in (40.0, 10.0):
        transitions, _ = _unit_change_replay(factor)
        fired = [t for t in transitions if t.alertname == "ModelProbingSuspiciousClient" and t.to_state == "firing"]
        assert len(fired) <= 1, [(t.time, t.labels) for t in fired]
    quiet, _ = _unit_change_replay(1.0)
    assert not [t for t in quiet if t.alertname == "ModelProbingSuspiciousClient"]

    # With an input-drift alert firing for the model (here a stand-in rule of that name), a `stealing` or
    # `ood` page says so: a client sending noise into the x10 population is paged `ood`.
    drift = tmp_path / "drift.yml"
    drift.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [{
        "alert": "ModelInputDrift", "expr": 'label_replace(vector(1), "model", "m", "", "")',
        "labels": {"severity": "warning"}}]}]}))
    for rules in ([drift], []):
        paged, _ = _unit_change_replay(10.0, extra_rules=rules, prober=True, noise=True)
        pages = [t for t in paged if t.alertname == "ModelProbingSuspiciousClient" and t.to_state == "firing"]
        odd = [t for t in pages if t.labels["signal"] in ("stealing", "ood")]
        assert any(t.labels["client"] == "noise" for t in odd), [t.labels for t in pages]
        # (from minute 25 on ModelProbingOutOfDistributionTraffic fires too, and is named after it)
        if rules:
            assert all("Also firing for m: ModelInputDrift" in t.annotations["description"] for t in odd), odd[0].annotations
        else:
            assert all("ModelInputDrift" not in t.annotations["description"] for t in pages)
        # A prober's own near-copies move the inputs too (the walkthrough's attacker fired ModelInputDrift by
        # itself): its near_duplicates page does not send on-call to the drift alerts.
        prober = [t for t in pages if t.labels["client"] == "mallory"]
        assert prober and {t.labels["signal"] for t in prober} == {"near_duplicates"}, [t.labels for t in prober]
        assert not any("Also firing for" in t.annotations["description"] for t in prober)

    from monitor import runbooks

    steps = runbooks.RUNBOOKS["ModelProbingSuspiciousClient"]
    for name in ("ModelInputDrift", "ModelFeatureOutOfRange", "ModelProbingOutOfDistributionTraffic"):
        assert name in steps
    assert "no longer lists" in steps and "before blocking" in steps.lower()
    rules = yaml.safe_load((REPO_ROOT / "rules" / "probing.yml").read_text())["groups"][0]["rules"]
    description = next(r for r in rules if r.get("alert") == "ModelProbingSuspiciousClient")["annotations"]["description"]
    assert "first rule out a change of the whole traffic" in description


class _SwitchedSink:
    """An Alertmanager that is down while ``down`` is set: what it received, by status."""

    name = "alertmanager"

    def __init__(self) -> None:
        self.down, self.got = True, []

    def deliver(self, alerts) -> None:
        from monitor.rules.notifier import DeliveryError

        if self.down:
            raise DeliveryError("connection refused")
        self.got.extend((a.labels["alertname"], "resolved" if a.resolved else "firing") for a in alerts)


def test_an_alertmanager_outage_loses_the_alerts_that_fired_and_resolved_in_it_and_the_page_says_where_they_are(tmp_path, caplog) -> None:
    # The walkthrough stopped its only Alertmanager for two minutes: MonitorAlertDeliveryFailing could
    # only reach on-call through it, after it was back ("pages may not have reached on-call", and no
    # more), and stayed 15 minutes. What the outage cost: alerts still firing are sent again at their
    # next resend and reach Alertmanager; an alert that fired and resolved within the outage reaches it
    # only as resolved, which Alertmanager does not notify (checked against Alertmanager 0.25: a
    # resolved alert it never saw firing sends nothing), so that page is lost; the log receiver has it.
    import logging

    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from monitor.rules.notifier import LogSink, Notifier
    from monitor import runbooks

    rules = tmp_path / "r.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "interval": "15s", "rules": [
        {"alert": "Brief", "expr": 'x{name="brief"} > 0'}, {"alert": "Lasting", "expr": 'x{name="lasting"} > 0'}]}]}))
    series = SeriesStore(retention_s=7200)
    am = _SwitchedSink()
    with caplog.at_level(logging.WARNING, logger="monitor.alerts"), \
            Notifier([am, LogSink()], max_retries=1, backoff_initial_s=0.0) as notifier:
        ev = RuleEvaluator.from_files([rules], storage=series, default_interval_s=15.0, notifier=notifier)
        for now in np.arange(15.0, 600.0, 15.0):
            series.append_scrape(float(now), [({"__name__": "x", "name": "brief"}, 1.0 if 60 <= now < 120 else 0.0),
                                              ({"__name__": "x", "name": "lasting"}, 1.0 if now >= 60 else 0.0)], source="s")
            am.down = now < 300  # Alertmanager down from the start to 5 minutes
            ev.evaluate(float(now))
            notifier.flush(10)
    assert ("Lasting", "firing") in am.got
    assert ("Brief", "resolved") in am.got and ("Brief", "firing") not in am.got
    logged = [r.getMessage() for r in caplog.records if r.name == "monitor.alerts"]
    assert any('"alertname": "Brief"' in m and '"status": "firing"' in m for m in logged), logged

    core = yaml.safe_load((REPO_ROOT / "rules" / "core.yml").read_text())["groups"][0]["rules"]
    description = next(r for r in core if r.get("alert") == "MonitorAlertDeliveryFailing")["annotations"]["description"]
    steps = runbooks.RUNBOOKS["MonitorAlertDeliveryFailing"]
    for text in (description, steps):
        assert "fired and resolved" in text and "monitor.alerts" in text, text
    assert "works again" in steps and "resolves by itself" in steps and "rules.webhook" in steps


def test_prediction_drift_page_names_the_classes_whose_share_moved(tmp_path) -> None:
    # The walkthrough's shift knocked class `c` out of the traffic: ModelPredictionDrift's page said
    # "predicts classes in different proportions ... monitor_label_shift_weight estimates which true
    # classes changed" and named none, though the weights were at hand (c x0.26, a x1.65, b x1.14).
    # The page now names the classes whose weight moved by a factor of 1.25 or more, those that shrank first;
    # a shift no class carries that far keeps the pointer to the metric. Run by promtool and the agent.
    from tests.test_oncall_session7 import _run_unit_test

    _run_unit_test(tmp_path, "confidence.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_prediction_drift_distance{model="clf"}'
                values: '0.22x20'
              - series: 'monitor_prediction_drift_pvalue{model="clf"}'
                values: '1e-150x20'
              - series: 'monitor_label_shift_weight{model="clf",class="a"}'
                values: '1.653x20'
              - series: 'monitor_label_shift_weight{model="clf",class="b"}'
                values: '1.137x20'
              - series: 'monitor_label_shift_weight{model="clf",class="c"}'
                values: '0.256x20'
              - series: 'monitor_prediction_drift_distance{model="m2"}'
                values: '0.15x20'
              - series: 'monitor_prediction_drift_pvalue{model="m2"}'
                values: '1e-9x20'
              - series: 'monitor_label_shift_weight{model="m2",class="x"}'
                values: '1.1x20'
            alert_rule_test:
              - eval_time: 16m
                alertname: ModelPredictionDrift
                exp_alerts:
                  - exp_labels: {severity: warning, model: clf}
                    exp_annotations:
                      summary: "Model clf predicts classes in different proportions"
                      description: "The predicted-class distribution of the window differs from the reference (Jensen-Shannon distance 0.22, p < 0.001): label shift or a change of inputs. Classes whose estimated share changed by a factor of 1.25 or more (monitor_label_shift_weight, the window's share over the reference's): `c` x0.26, `a` x1.65."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelpredictiondrift"
                  - exp_labels: {severity: warning, model: m2}
                    exp_annotations:
                      summary: "Model m2 predicts classes in different proportions"
                      description: "The predicted-class distribution of the window differs from the reference (Jensen-Shannon distance 0.15, p < 0.001): label shift or a change of inputs. monitor_label_shift_weight estimates which true classes changed."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelpredictiondrift"
    """)


def _mended_unit_change(rows_per_s: float = 5.0) -> tuple[list, float]:
    """The drift and data-quality packs over 2 hours of event time: feature 0 read x40 from minute 20
    to 37, then mended (the detectors' defaults: an hour's window); the transitions and the mend's time."""
    from monitor.detectors.data_quality import DataQualityDetector
    from monitor.detectors.drift import FeatureDriftDetector
    from monitor.promql import SeriesStore
    from monitor.reference import Reference
    from monitor.rules.evaluator import RuleEvaluator
    from tests import drift_streams as S

    rng = np.random.default_rng(0)
    ref = Reference.from_arrays(S.sample(np.random.default_rng(99), 3000), numeric_names=S.NAMES)
    dets = [FeatureDriftDetector(ref), DataQualityDetector(ref)]
    store, series = MetricStore("m"), SeriesStore(retention_s=7200)
    ev = RuleEvaluator.from_files([REPO_ROOT / "rules" / "drift.yml", REPO_ROOT / "rules" / "data_quality.yml"],
                                  storage=series, default_interval_s=15)
    onset, mended, out = 20 * 60.0, 37 * 60.0, []
    for now in np.arange(15.0, 120 * 60.0 + 1, 15.0):
        ts = now - 15.0 + np.arange(int(15 * rows_per_s)) / rows_per_s
        x = S.sample(rng, len(ts))
        x[(ts >= onset) & (ts < mended), 0] *= 40
        batch = Batch.from_arrays(x, ts=ts, numeric_names=S.NAMES)
        for d in dets:
            d.update(batch)
            d.advance(float(now))
            d.export(store)
        series.append_scrape(float(now), [({"__name__": n, **lab}, v) for n, lab, v in store.samples()], source="scrape:m")
        out.extend(ev.evaluate(float(now)))
    return out, mended


def test_pages_say_when_they_resolve_after_the_fix_and_a_windowed_drift_page_that_the_drift_may_be_over() -> None:
    # The walkthrough mended its shifted inputs at 01:39: ModelInputDrift resolved a minute later, but
    # ModelFeatureOutOfRange, ModelAccuracyDrop and the other figures over the window kept paging, and
    # ModelFeaturesDriftedOverWindow (for: 30m on a figure over the hour) first fired 14 minutes after
    # the mend. No runbook said when a page resolves once its cause is fixed, so on-call could not tell
    # "the fix did not take" from "the window still holds the bad rows". Measured here (5 rows/s):
    # ModelInputDrift resolves minutes after the mend, ModelFeatureOutOfRange about a window after it,
    # ModelFeaturesDriftedOverWindow fires after it and resolves within the window.
    transitions, mended = _mended_unit_change()

    def at(name: str, state: str) -> list[float]:
        return [(t.time - mended) / 60 for t in transitions if t.alertname == name and t.to_state == state]

    assert at("ModelInputDrift", "firing") and all(m < 0 for m in at("ModelInputDrift", "firing"))
    assert 0 < max(at("ModelInputDrift", "inactive")) < 10, at("ModelInputDrift", "inactive")
    assert at("ModelFeatureOutOfRange", "firing") and 45 < max(at("ModelFeatureOutOfRange", "inactive")) <= 62
    late = at("ModelFeaturesDriftedOverWindow", "firing")
    assert late and min(late) > 0, late  # the page comes after the fix
    assert 0 < max(at("ModelFeaturesDriftedOverWindow", "inactive")) <= 62

    from monitor import runbooks

    readme = (REPO_ROOT / "README.md").read_text()
    for name in ("ModelFeatureOutOfRange", "ModelFeatureMissingValues", "ModelFeatureInvalidValues",
                 "ModelFeaturesDriftedOverWindow", "ModelInputDrift", "ModelMultivariateDrift"):
        assert name in runbooks.RESOLVES
        section = readme.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert "**Resolves:** " + runbooks.RESOLVES[name] in section, name
    assert "up to a window" in runbooks.RESOLVES["ModelFeatureOutOfRange"]
    drift = yaml.safe_load((REPO_ROOT / "rules" / "drift.yml").read_text())["groups"][0]["rules"]
    description = next(r for r in drift if r.get("alert") == "ModelFeaturesDriftedOverWindow")["annotations"]["description"]
    assert "after the inputs returned" in description


def test_overconfident_page_gives_the_recalibrating_temperature(tmp_path) -> None:
    # The walkthrough's over-confident model (temperature 0.3 on its logits) paged "see
    # monitor_recalibration_temperature for the temperature that would recalibrate it": on-call then
    # had to query it (4.10). The page now gives it; without the series it keeps the pointer.
    from tests.test_oncall_session7 import _run_unit_test

    _run_unit_test(tmp_path, "confidence.yml", """
        tests:
          - interval: 1m
            input_series:
              - series: 'monitor_overconfidence_gap_ratio{model="clf"}'
                values: '0.2067x20'
              - series: 'monitor_overconfidence_pvalue{model="clf"}'
                values: '0x20'
              - series: 'monitor_recalibration_temperature{model="clf"}'
                values: '4.0993x20'
            alert_rule_test:
              - eval_time: 11m
                alertname: ModelOverconfident
                exp_alerts:
                  - exp_labels: {severity: warning, model: clf}
                    exp_annotations:
                      summary: "Model clf is over-confident"
                      description: "On the labelled predictions of the calibration window, mean confidence exceeds accuracy by 20.67 percentage points (significant at 1%). Its probabilities should not be trusted as they are: dividing its logits by 4.10 (monitor_recalibration_temperature, fitted on the window's labels) would recalibrate it."
                      runbook_url: "https://github.com/model-monitor/model-monitor/blob/main/README.md#modeloverconfident"
    """)


def test_labelled_pages_can_come_after_the_fix_and_say_when_they_resolve() -> None:
    # The walkthrough's over-confident model was replaced at 01:50; ModelCalibrationErrorHigh (for:
    # 30m over the hour's labels) first paged at 01:54, after the fix. Measured here on the calibration
    # detector as the agent runs it (an hour's window, every minute): 20,000 labels an hour, the model
    # 15 points over-confident for 17 minutes, then calibrated. ModelOverconfident and
    # ModelErrorRateRose both fire after the fix and resolve within the window (minutes from the fix).
    from monitor.detectors.calibration import CalibrationDetector
    from monitor.promql import SeriesStore
    from monitor.rules.evaluator import RuleEvaluator
    from monitor import runbooks
    from tests.test_calibration_detector import labeled

    rng = np.random.default_rng(0)
    det, store, series = CalibrationDetector(seed=0), MetricStore("m"), SeriesStore(retention_s=7200)
    ev = RuleEvaluator.from_files([REPO_ROOT / "rules" / "confidence.yml"], storage=series, default_interval_s=60.0)
    onset, mended, times = 60 * 60.0, 77 * 60.0, collections.defaultdict(list)
    for t0 in np.arange(0.0, 200 * 60.0, 60.0):
        n = int(rng.poisson(20_000 / 60))
        det.update_labels(labeled(rng, n, gap=0.15 if onset <= t0 < mended else 0.0, k=10, t0=t0, span=60.0))
        det.advance(t0 + 60.0)
        det.export(store)
        series.append_scrape(t0 + 60.0, [({**lab, "__name__": name}, v) for name, lab, v in store.samples()])
        for t in ev.evaluate(t0 + 60.0):
            times[(t.alertname, t.to_state)].append((t.time - mended) / 60)
    for name in ("ModelOverconfident", "ModelErrorRateRose"):
        assert times[(name, "firing")] and min(times[(name, "firing")]) > 0, (name, dict(times))
        assert 0 < max(times[(name, "inactive")]) <= 62, (name, dict(times))
        assert name in runbooks.RESOLVES and "after the fix" in runbooks.RESOLVES[name]
    readme = (REPO_ROOT / "README.md").read_text()
    for name in ("ModelOverconfident", "ModelErrorRateRose", "ModelCalibrationErrorHigh"):
        section = readme.split(f"\n### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert "**Resolves:** " + runbooks.RESOLVES[name] in section, name
