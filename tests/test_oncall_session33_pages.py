"""On-call study, session 33: pages of ``monitor`` that said one problem twice or read as a
placeholder, noticed in earlier reviews and left open, as tests.

Rule tests run the same unit-test file through the real ``promtool test rules`` and through the
agent's own engine (``monitor rules test``).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_oncall_session32_pages import _alert, _run_alert_test


def _series(metric: str, labels: str, values: str) -> str:
    """One ``input_series`` entry for :func:`_run_alert_test`."""
    return f"""
              - series: '{metric}{{{labels}}}'
                values: '{values}'"""


def test_one_segments_confidence_change_is_one_alert_naming_the_scores_that_moved(tmp_path: Path) -> None:
    # ModelSegmentConfidenceDrift paged once per score: a segment whose max-probability and
    # entropy drifted together (one change of that segment) gave two pages, as
    # ModelConfidenceDrift did before session 32. One alert per model and segment now, naming each
    # score past the bound with its distance. Two segments times two scores are four tests, so
    # the bound is 0.001 / 4: eu's confidence (distance 0.3, p 3e-4) is not past it and is not
    # named.
    series = [_series(f"monitor_segment_confidence_drift_{figure}", f'model="m",segment="{segment}",score="{score}"',
                      f"{value}x30")
              for segment, score, distance, p in (("apac", "confidence", 0.3, 1e-5), ("apac", "entropy", 0.25, 1e-6),
                                                  ("eu", "confidence", 0.3, 3e-4), ("eu", "entropy", 0.21, 1e-5))
              for figure, value in (("distance", distance), ("pvalue", p))]
    url = "https://github.com/model-monitor/model-monitor/blob/main/README.md#modelsegmentconfidencedrift"
    tail = ("over the window differs from the whole reference's (p < 0.001 divided by the tests made: segments times "
            "scores). The reference is not sliced by segment: a segment that always differed from the population fires "
            "from its first full window (a standing difference, not a change).")
    _run_alert_test(tmp_path, "confidence.yml", series, "20m", "ModelSegmentConfidenceDrift",
                    _alert("severity: warning, model: m, segment: apac",
                           "Model m: the distribution of its confidence and entropy on segment apac differs from the reference",
                           "The distribution of the model's confidence (Kolmogorov-Smirnov distance 0.30) and entropy "
                           f"(Kolmogorov-Smirnov distance 0.25) on segment apac {tail}", url)
                    + _alert("severity: warning, model: m, segment: eu",
                             "Model m: the distribution of its entropy on segment eu differs from the reference",
                             f"The distribution of the model's entropy (Kolmogorov-Smirnov distance 0.21) on segment eu {tail}",
                             url))



def test_the_accuracy_drop_runbook_reads_as_its_page_does() -> None:
    # The README's runbook of ModelAccuracyDrop read "Accuracy fell ‹value› ‹given in the alert› on
    # the labelled predictions of the window‹given in the alert›, significant at z > 3." where the
    # page says "Accuracy fell 19 percentage points, from 91% on the reference data to 72% on the
    # labelled predictions of the window (500 labels), significant at z > 3.": the drop's unit
    # and the two accuracies it is the difference of were hidden in placeholders. The runbook now
    # reads as the page, each placeholder named by what fills it in; put the page's figures in its
    # placeholders and it is the page, word for word.
    import yaml

    from monitor import runbooks
    from monitor.rules.template import AlertTemplate
    from tests.conftest import REPO_ROOT

    rule = next(r for g in yaml.safe_load((REPO_ROOT / "rules" / "confidence.yml").read_text())["groups"]
                for r in g["rules"] if r.get("alert") == "ModelAccuracyDrop")
    figures = {"monitor_reference_accuracy_ratio": 0.91, "monitor_accuracy_ratio": 0.72, "monitor_labels_in_window": 500.0}

    def query(expr: str) -> list[tuple[dict[str, str], float]]:
        return [({"model": "m"}, figures[expr.split("{", 1)[0]])]

    page = AlertTemplate.compile(rule["annotations"]["description"], "ModelAccuracyDrop").expand(
        {"model": "m"}, 0.19, query=query)
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("### ModelAccuracyDrop\n"):]
    section = section[:section.index("**First steps:**")]
    said = " ".join(section.split("`, severity `critical`. ", 1)[1].split())
    assert said == runbooks.readable(rule["annotations"]["description"])
    filled = said
    for placeholder, text in (("‹value›", "19"), ("‹monitor_reference_accuracy_ratio›", "91"),
                              ("‹monitor_accuracy_ratio›", "72"), ("‹monitor_labels_in_window›", "500")):
        assert placeholder in filled, said
        filled = filled.replace(placeholder, text)
    assert filled == " ".join(page.split()), (said, page)
    assert runbooks.LEGEND in readme  # what each placeholder stands for, said above the runbooks


def test_a_rule_file_named_relative_and_absolute_by_two_models_pages_once(tmp_path: Path, monkeypatch) -> None:
    # A sidecar started as `monitor serve --config monitor.yaml` where one model lists its rules
    # file as `team.yml` and another as its absolute path: the config joined the relative name to
    # the config's folder as written ("team.yml"), the other stayed absolute, and the one broken
    # file paged MonitorRuleReloadFailed twice, once per spelling of its `file` label (Alertmanager
    # merges only alerts whose labels are the same). Rule files are now named by their absolute
    # path, resolved against the config file's folder, whatever the spelling.
    import time

    import yaml
    from prometheus_client import CollectorRegistry

    from monitor import Monitor
    from monitor.config import load_config

    shared = tmp_path / "team.yml"
    shared.write_text("groups:\n- name: team\n  rules:\n  - alert: Typo\n    expr: sum(\n")
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({"models": [
        {"model": "iris", "rules": {"packs": ["core"], "files": ["team.yml"], "log": False}},
        {"model": "fraud", "rules": {"packs": ["core"], "files": [str(shared)], "log": False}},
    ]}))
    monkeypatch.chdir(tmp_path)
    agent = load_config("monitor.yaml")
    monitors = [Monitor(config=m, registry=CollectorRegistry(), start_worker=False, live=False) for m in agent.models]
    now = time.time()
    try:
        for k in range(12, -1, -1):
            for mon in monitors:
                mon.evaluate_rules(now - 60 * k)
        pages = {tuple(sorted(a.labels.items())) for mon in monitors for a in mon.alerts()
                 if a.name == "MonitorRuleReloadFailed" and a.state.name.lower() == "firing"}
    finally:
        for mon in monitors:
            mon.close()
    assert pages == {(("alertname", "MonitorRuleReloadFailed"), ("file", str(shared)), ("model", "_sidecar"),
                      ("severity", "warning"))}, pages
    assert [m.rules.files[-1] for m in agent.models] == [str(shared), str(shared)]
