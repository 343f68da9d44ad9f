"""The exposition parses cleanly: prometheus-client's own parser, and promtool check metrics."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor import Monitor, catalog
from tests.conftest import require_binary


def busy_monitor(registry) -> Monitor:
    mon = Monitor(model="expo", registry=registry, start_worker=False)

    @mon.watch
    def predict(x):
        if x[0] < 0:
            raise ValueError("negative")
        return np.array([0.1, 0.2, 0.7])

    for v in (1.0, 2.0, -1.0):
        try:
            predict(np.array([v, 0.0]))
        except ValueError:
            pass
    mon.observe(np.ones((3, 2)), np.ones((3, 3)) / 3)
    mon.observe(np.ones(5), np.array([0.5, 0.5, 0.0]))  # wrong width: rejected and counted
    mon.flush()
    return mon


def test_text_exposition_parses_and_matches_the_catalog(registry):
    mon = busy_monitor(registry)
    try:
        families = {f.name: f for f in text_string_to_metric_families(mon.metrics_text())}
        for name, fam in families.items():
            spec = catalog.CATALOG[name]
            assert fam.type == spec.type
            for sample in fam.samples:
                assert sample.labels["model"] == "expo"
                assert set(sample.labels) - {"model", "le"} == set(spec.labels)
        assert families["monitor_predictions"].samples[0].value == 5.0
        assert families["monitor_errors"].samples[0].labels["exception"] == "ValueError"
    finally:
        mon.close()


def test_openmetrics_exposition(registry):
    mon = busy_monitor(registry)
    try:
        text = mon.metrics_text(openmetrics=True)
        assert text.rstrip().endswith("# EOF")
        assert "monitor_predictions_total" in text
    finally:
        mon.close()


def test_promtool_check_metrics_accepts_the_exposition(registry):
    promtool = require_binary("promtool")
    mon = busy_monitor(registry)
    try:
        result = subprocess.run([promtool, "check", "metrics"], input=mon.metrics_text(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        mon.close()


def test_catalog_names_follow_prometheus_conventions():
    for spec in catalog.CATALOG.values():
        assert spec.name.startswith("monitor_")
        if spec.type == "histogram" and "seconds" in spec.name:
            assert spec.unit == "s"
        assert spec.help.endswith("."), spec.name


def test_http_server_serves_metrics(registry):
    import urllib.request

    from tests.conftest import free_port

    mon = busy_monitor(registry)
    try:
        port = free_port()
        server, _ = mon.start_http_server(port)
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            assert 'monitor_predictions_total{model="expo"} 5.0' in body
        finally:
            server.shutdown()
    finally:
        mon.close()


def test_a_label_value_that_is_not_unicode_does_not_break_the_exposition(registry):
    """A lone UTF-16 surrogate (which JSON can carry and Python strings hold) in a segment reaches
    the metrics from the in-process path too; every scrape must still be answered, text and
    OpenMetrics, with the value written as UTF-8 can (a replacement character), and other
    non-ASCII values unchanged."""
    from prometheus_client import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_om

    mon = Monitor(model="expo", config={"detectors": ["segments"]}, registry=registry, start_worker=False)
    mon.observe(np.ones((2, 2)), np.full((2, 3), 1 / 3), segment="bad\ud800")
    mon.observe(np.ones((1, 2)), np.full((1, 3), 1 / 3), segment="été")
    mon.flush()
    text = generate_latest(registry).decode()
    generate_om(registry)  # raises UnicodeEncodeError when a value cannot be written as UTF-8
    segments = {s.labels.get("segment") for fam in text_string_to_metric_families(text) for s in fam.samples}
    assert "été" in segments
    assert any(v is not None and v.startswith("bad") and v != "bad\ud800" for v in segments)


def test_two_models_in_one_registry_write_each_family_once(registry):
    """Two monitors exporting into one registry (two decorated models in one process, the
    package's shared registry): each family is written once with both models' series. A collector
    per monitor wrote every family twice, which OpenMetrics parsers and promtool refuse whole."""
    from prometheus_client import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    first = busy_monitor(registry)
    second = Monitor(model="other", registry=registry, start_worker=False)
    try:
        second.observe(np.ones((2, 2)), np.ones((2, 3)) / 3)
        second.flush()
        families = list(parse_openmetrics(generate_openmetrics(registry).decode()))
        names = [f.name for f in families]
        assert len(names) == len(set(names))
        calls = next(f for f in families if f.name == "monitor_calls")
        assert {s.labels["model"] for s in calls.samples if s.name == "monitor_calls_total"} == {"expo", "other"}
        text = generate_latest(registry).decode()
        helps = [line for line in text.splitlines() if line.startswith("# HELP ")]
        assert len(helps) == len(set(helps))
        first.close()
        text = generate_latest(registry).decode()
        assert 'model="other"' in text and 'model="expo"' not in text
    finally:
        first.close()
        second.close()
    assert generate_latest(registry).decode() == ""  # the last monitor closed takes the collector along


def test_a_model_built_again_without_closing_replaces_the_first_in_the_registry(registry, caplog):
    """A notebook cell run twice builds ``Monitor(model="x")`` again with the first never closed:
    both exported the same series (samples twice over, which Prometheus refuses as duplicates).
    The newest is exported, with a warning saying why and the fix; closing the first later does
    not take the second's metrics along."""
    from prometheus_client import generate_latest

    first = Monitor(model="again", registry=registry, start_worker=False)
    with caplog.at_level("WARNING", logger="monitor"):
        second = Monitor(model="again", registry=registry, start_worker=False)
    try:
        assert any("never closed" in r.getMessage() for r in caplog.records)
        second.observe(np.ones((3, 2)), np.ones((3, 3)) / 3)
        second.flush()
        samples = [s for f in text_string_to_metric_families(generate_latest(registry).decode())
                   for s in f.samples if s.name == "monitor_predictions_total"]
        assert [(s.labels["model"], s.value) for s in samples] == [("again", 3.0)]
        first.close()
        assert 'monitor_predictions_total{model="again"} 3.0' in generate_latest(registry).decode()
    finally:
        first.close()
        second.close()
    assert generate_latest(registry).decode() == ""


def test_start_http_server_twice_returns_the_running_server() -> None:
    """An app that starts its monitor's server where it builds the monitor (a module imported
    twice, a startup hook per app, two models on one registry) failed the second time with
    "Address already in use" (with port 0 it started a second server). The running server is
    returned; a port serving another registry is a ValueError naming the fix; a stopped server is
    started again."""
    import urllib.request

    from prometheus_client import CollectorRegistry

    from tests.conftest import free_port

    registry = CollectorRegistry(auto_describe=False)
    a = Monitor(config={"model": "a"}, registry=registry, live=False, start_worker=False)
    b = Monitor(config={"model": "b"}, registry=registry, live=False, start_worker=False)
    other = Monitor(config={"model": "c"}, registry=CollectorRegistry(auto_describe=False), live=False, start_worker=False)
    port = free_port()
    try:
        first = a.start_http_server(port)
        assert a.start_http_server(port) == first and b.start_http_server(port) == first
        assert a.start_http_server(0) == first  # any port: the one already serving this registry
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert 'monitor_queue_capacity{model="a"}' in text and 'monitor_queue_capacity{model="b"}' in text
        with pytest.raises(ValueError, match=f"port {port} .* another registry"):
            other.start_http_server(port)
        first[0].shutdown()
        first[1].join(10)
        first[0].server_close()
        again = a.start_http_server(port)
        assert again[0] is not first[0] and again[1].is_alive()
        again[0].shutdown()
        again[0].server_close()
    finally:
        for m in (a, b, other):
            m.close()
