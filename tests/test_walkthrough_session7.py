"""Defects a first-time user hit in session 7's walkthrough of the README and examples/.

Each test reproduces what the user did (a command, a snippet, a config) and fails on the code as
it was before the fix.
"""

from __future__ import annotations

import csv
import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from monitor.cli import main
from tests.sidecar_support import sample, start_sidecar, wait_until

CLASSES = ["setosa", "versicolor", "virginica"]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS = {"model": "iris", "features": FEATURES, "output": {"kind": "probabilities", "classes": CLASSES}}


def _iris_like(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, a softmax model's probabilities on them and labels drawn from those probabilities
    (as class names, as a CSV's label column holds them)."""
    rng = np.random.default_rng(seed)
    x = rng.normal([5.8, 3.0, 3.7, 1.2], [0.8, 0.4, 1.7, 0.7], size=(n, 4))
    z = x @ np.array([[0.4, 1.4, -2.2, -1.0], [0.5, -1.6, 0.6, -1.3], [-0.9, -1.4, 2.6, 2.4]]).T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.asarray(CLASSES, dtype=object)[[rng.choice(3, p=row) for row in p]]
    return x, p, y


def _monitor(raw: dict, **kwargs):
    from monitor.core import Monitor

    return Monitor(config=raw, registry=CollectorRegistry(auto_describe=False), start_worker=False, live=False, **kwargs)


def _accuracy(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(CLASSES, dtype=object)[p.argmax(axis=1)] == y))


# -- reference labels given as class names ------------------------------------------------------
def test_a_reference_built_from_a_csv_with_class_name_labels_starts_the_monitor(tmp_path: Path) -> None:
    """`monitor reference build data.csv --label-column species --classes ...` on a CSV whose
    labels are names wrote a profile with which `monitor serve` could not build its detectors
    ("reference labels must be class indices 0..k-1"): /readyz stayed 503 for ever."""
    x, p, y = _iris_like(600)
    data = tmp_path / "iris.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*FEATURES, "p_setosa", "p_versicolor", "p_virginica", "species"])
        for xi, pi, yi in zip(x, p, y):
            w.writerow([*xi, *pi, yi])
    res = CliRunner().invoke(main, ["reference", "build", str(data), "-o", str(tmp_path / "ref.npz"), "--quiet",
                                    "--output-columns", "p_setosa,p_versicolor,p_virginica",
                                    "--label-column", "species", "--classes", ",".join(CLASSES)])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output
    mon = _monitor({**IRIS, "reference": {"path": str(tmp_path / "ref.npz")}})
    try:
        est = next(d for d in mon.detectors if d.kind == "accuracy_estimation")
        assert est.reference_accuracy == pytest.approx(_accuracy(p, y))
        xs, ps, _ = _iris_like(300, seed=1)
        mon.observe(xs, ps)
        mon.flush()
        assert sample(mon.metrics_text(), "monitor_estimated_accuracy_ratio", model="iris", estimator="cbpe") is not None
    finally:
        mon.close()


def test_reference_build_warns_when_label_names_are_not_among_the_classes(tmp_path: Path) -> None:
    """Without --classes the classes are the output columns' names (p_setosa...): the profile
    was written without a word, and the sidecar then refused it. The build says so now."""
    x, p, y = _iris_like(200)
    data = tmp_path / "iris.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*FEATURES, "p_setosa", "p_versicolor", "p_virginica", "species"])
        w.writerows([*xi, *pi, yi] for xi, pi, yi in zip(x, p, y))
    res = CliRunner().invoke(main, ["reference", "build", str(data), "-o", str(tmp_path / "ref.npz"), "--quiet",
                                    "--output-columns", "p_setosa,p_versicolor,p_virginica", "--label-column", "species"])
    assert res.exit_code == 0, res.output
    assert re.search(r"warning: reference labels .*'setosa'.* are neither class names \(p_setosa, p_versicolor, p_virginica\)"
                     r".*monitor reference build --classes", res.output), res.output


def test_the_quick_start_reference_with_label_names_maps_them_through_the_config_classes() -> None:
    """README Quick start: `Reference.from_arrays(X, numeric_names=names, scores=..., labels=y)`
    with `Monitor.from_config("monitor.yaml", reference=ref)`, the config naming the classes; y
    of class names (what a labelled data frame holds) raised in the detectors' constructors."""
    x, p, y = _iris_like(500)
    from monitor import Reference

    ref = Reference.from_arrays(x, numeric_names=FEATURES, scores=p, labels=y)
    mon = _monitor(IRIS, reference=ref)
    try:
        assert mon.reference is ref and ref.classes == ()  # kept (and checkpointed) as given
        kinds = {d.kind for d in mon.detectors}
        assert {"accuracy_estimation", "prediction_drift", "confidence_drift"} <= kinds
        est = next(d for d in mon.detectors if d.kind == "accuracy_estimation")
        assert est.reference_accuracy == pytest.approx(_accuracy(p, y))
    finally:
        mon.close()


def test_reference_labels_that_cannot_be_mapped_name_the_fix() -> None:
    from monitor.detectors.registry import create
    from monitor.reference import Reference

    x, p, y = _iris_like(300)
    with pytest.raises(ValueError, match=r"names no classes.*Fix: pass the class names in column order.*classes=\["):
        create("accuracy_estimation", reference=Reference.from_arrays(x, scores=p, labels=y))
    with pytest.raises(ValueError, match=r"'setosa'.*neither class names \(a, b, c\) nor indices 0\.\.2"):
        create("accuracy_estimation", reference=Reference.from_arrays(x, scores=p, labels=y, classes=["a", "b", "c"]))
    missing = np.where(np.arange(300) % 7 == 0, np.nan, p.argmax(axis=1).astype(float))
    with pytest.raises(ValueError, match=r"missing \(NaN\) or fractional.*Fix: drop the unlabelled rows"):
        create("accuracy_estimation", reference=Reference.from_arrays(x, scores=p, labels=missing))
    # indices as whole floats or digit strings are still indices
    idx = p.argmax(axis=1)
    for labels in (idx.astype(float), idx.astype(str)):
        det = create("accuracy_estimation", reference=Reference.from_arrays(x, scores=p, labels=labels))
        assert det.reference_accuracy == 1.0


# -- monitor config check reads the server section as monitor serve does ------------------------
@pytest.mark.parametrize("server, key, fix", [
    ({"proxy": {"upstream": "127.0.0.1:8080"}}, "server.proxy.upstream", "http://127.0.0.1:8080"),
    ({"proxy": {"routes": [{"path": "predict"}]}}, "server.proxy.routes[0].path", "path: /predict"),
    ({"proxy": {"engine": "fast"}}, "server.proxy.engine", "engine: auto"),
    ({"cloudevents": {"pending_ttl": "forever"}}, "server.cloudevents.pending_ttl", "30s, 5m or 1h"),
    ({"forward": {"udp": "9109"}}, "server.forward.udp", "127.0.0.1:9109"),
    ({"write_token_env": "MONITOR_WALKTHROUGH_UNSET_TOKEN"}, "server.write_token_env", "export MONITOR_WALKTHROUGH_UNSET_TOKEN"),
])
def test_config_check_fails_where_monitor_serve_refuses_the_server_section(tmp_path: Path, monkeypatch, server, key, fix) -> None:
    """`monitor config check` said SUCCESS for these files; `monitor serve` then stopped with
    "Error: monitor.yaml: server.proxy.upstream: must be an http(s) URL...". Same message now."""
    import yaml

    monkeypatch.delenv("MONITOR_WALKTHROUGH_UNSET_TOKEN", raising=False)
    path = tmp_path / "monitor.yaml"
    path.write_text(yaml.safe_dump({**IRIS, "server": server}))
    res = CliRunner().invoke(main, ["config", "check", str(path)])
    assert res.exit_code == 1, res.output
    assert f"FAILED: {path}: {key}: " in res.output and fix in res.output.split(". Fix: ", 1)[-1]
    assert "SUCCESS" not in res.output


def test_config_check_accepts_the_sidecar_examples() -> None:
    root = Path(__file__).resolve().parent.parent / "examples"
    res = CliRunner().invoke(main, ["config", "check", str(root / "monitor.yaml"), str(root / "gunicorn_app" / "sidecar.yaml")])
    assert res.exit_code == 0, res.output
    assert res.output.count("SUCCESS") == 2


# -- monitor_forward_senders ---------------------------------------------------------------------
def test_forward_senders_counts_new_workers_at_once_and_forgets_workers_gone_quiet(tmp_path: Path, monkeypatch) -> None:
    """Four gunicorn workers forwarding: the gauge read 1 after the first requests (it was set
    only on a datagram more than 5 s after the last update) and, once the workers stopped, it
    kept its last value for ever (nothing came to update it)."""
    from monitor.server import forward

    sock_path = str(tmp_path / "f.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock_path}}}, tmp_path)
    try:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        event = {"inputs": [5.1, 3.5, 1.4, 0.2], "outputs": [0.9, 0.05, 0.05]}
        for worker in range(4):
            c.sendto(json.dumps({"v": 1, "sender": f"host:{100 + worker}:abcd", "seq": 1, "model": "iris",
                                 "events": [event]}).encode(), sock_path)
        c.close()
        assert wait_until(lambda: sample(s.metrics(), "monitor_forward_events_received_total", model="iris", transport="unix") == 4)
        assert sample(s.metrics(), "monitor_forward_senders", model="_sidecar") == 4
        monkeypatch.setattr(forward, "_SENDER_TTL", 0.2)  # five minutes of silence, shortened
        assert wait_until(lambda: sample(s.metrics(), "monitor_forward_senders", model="_sidecar") == 0), \
            "the gauge still counts workers not heard from"
    finally:
        s.close()


# -- monitor dashboards build from an installed package -----------------------------------------
def test_dashboards_build_does_not_write_into_an_installed_package(tmp_path: Path, monkeypatch) -> None:
    """`pip install model-monitor` then `monitor dashboards build` wrote five JSON files into
    site-packages/grafana/dashboards (and --check compared with that folder, even in a checkout)."""
    from monitor.dashboards import build as builder

    installed = tmp_path / "site-packages" / "grafana" / "dashboards"
    (tmp_path / "site-packages" / "monitor").mkdir(parents=True)
    monkeypatch.setattr(builder, "DEFAULT_DIR", installed)
    for args in (["dashboards", "build"], ["dashboards", "build", "--check"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1, res.output
        assert "Fix: pass --out DIR" in res.output
    assert not installed.parent.exists()
    out = tmp_path / "mine"
    res = CliRunner().invoke(main, ["dashboards", "build", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("*.json")) == sorted(f"{uid}.json" for uid in builder.BUILDERS)


def test_dashboards_build_defaults_to_the_checkouts_folder() -> None:
    from monitor.cli.dashboards import _in_checkout
    from monitor.dashboards import build as builder

    assert _in_checkout(builder.DEFAULT_DIR)  # the tests run from the repository
    res = CliRunner().invoke(main, ["dashboards", "build", "--check"])
    assert res.exit_code == 0, res.output


# -- feedback outcomes as the catalog documents them ---------------------------------------------
def test_feedback_outcomes_in_the_catalog_are_the_ones_counted() -> None:
    """The metrics table listed outcome "duplicate" (never counted) and not "expired" (counted
    for labels that come after the join's time limit): on-call could not read the series."""
    from monitor import catalog
    from monitor.labels import LabelJoiner

    mon = _monitor(IRIS)
    try:
        t0 = 1_700_000_000.0
        for i, ts in enumerate((t0, t0, t0 - 8 * 86400.0, t0 - 2 * 3600.0)):
            mon.observe([[5.1, 3.5, 1.4, 0.2]], [[0.9, 0.05, 0.05]], request_id=f"r{i}", timestamp=ts)
        mon.observe([[5.1, 3.5, 1.4, 0.2]], [[float("nan"), 0.05, 0.05]], request_id="refused", timestamp=t0)
        mon.feedback(["r0", "nope", "r1", "r2", "r0", "r3", "refused"],
                     ["setosa", "setosa", None, "setosa", "setosa", "setosa", "setosa"], timestamp=t0 + 60)
        mon.flush()
        text = mon.metrics_text()
    finally:
        mon.close()
    counted = {m.group(1): float(m.group(2)) for m in
               re.finditer(r'^monitor_feedback_labels_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$', text, re.M)}
    # unknown_id: r0's second label; "nope" waits for its prediction (labels.early)
    assert counted == {"joined": 1.0, "unknown_id": 1.0, "invalid": 1.0, "expired": 1.0, "late": 1.0, "prediction_refused": 1.0}
    assert re.search(r'^monitor_labels_early\{[^}]*\} 1\.0$', text, re.M), text
    help_text = catalog.get("monitor_feedback_labels").help
    listed = {part.split(":")[0].strip() for part in help_text.split("by outcome (", 1)[1].rstrip(".)").split(";")}
    assert listed == set(counted)
    assert "7 days" in help_text and LabelJoiner().ttl_s == 7 * 86400.0


# -- examples/monitor.yaml: "every key commented" ------------------------------------------------
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "monitor.yaml"


def _allowed_keys(raw: dict, server: bool = False) -> set[str]:
    """The keys a config section accepts, as the code's own unknown-key error lists them."""
    from monitor.config import ConfigError, parse_config
    from monitor.server.settings import settings_from

    with pytest.raises(ConfigError) as info:
        agent = parse_config(raw)
        if server:
            settings_from(agent)
    found = re.search(r"allowed keys: (.*)$", info.value.fix)
    assert found, info.value
    return set(found.group(1).split(", "))


def test_the_example_config_shows_every_key_the_code_accepts() -> None:
    """The README says of examples/monitor.yaml "every key commented"; a platform team looking
    there for how to tap a plain /predict route (server.proxy.routes), set tokens, the
    CloudEvents limits or forwarding found none of them."""
    z = {"no_such_key_qq": 1}
    sections = {
        "top level": _allowed_keys(z),
        "output": _allowed_keys({"output": z}),
        "queue": _allowed_keys({"queue": z}),
        "rules": _allowed_keys({"rules": z}),
        "checkpoint": _allowed_keys({"checkpoint": z}),
        "probing": _allowed_keys({"probing": z}),
        "server": _allowed_keys({"server": z}),
        "server.proxy": _allowed_keys({"server": {"proxy": z}}, server=True),
        "server.proxy.routes[]": _allowed_keys({"server": {"proxy": {"routes": [z]}}}, server=True),
        "server.cloudevents": _allowed_keys({"server": {"cloudevents": z}}, server=True),
        "server.forward": _allowed_keys({"server": {"forward": z}}, server=True),
    }
    text = EXAMPLE.read_text()
    missing = {name: sorted(k for k in keys if not re.search(rf"(^|[\s{{,#]){re.escape(k)}:", text, re.M))
               for name, keys in sections.items()}
    assert not {k: v for k, v in missing.items() if v}, missing


def test_the_example_configs_commented_server_sections_are_valid() -> None:
    """Uncommented, the example's proxy / cloudevents / forward block is what serve accepts."""
    import yaml

    from monitor.config import parse_config
    from monitor.server.settings import settings_from

    text = EXAMPLE.read_text()
    block = text[text.index("  # proxy:"):]
    doc = yaml.safe_load("server:\n" + "\n".join(re.sub(r"^  # ", "  ", line) for line in block.splitlines()))
    settings = settings_from(parse_config({**IRIS, **doc}))
    (route,) = settings.proxy.routes
    assert (route.path, route.inputs, route.outputs) == ("/predict", "instances", "predictions")
    assert settings.cloudevents.pending_ttl_s == 30.0 and settings.forward.unix


# -- monitor replay: which line was refused ------------------------------------------------------
def test_replay_says_where_the_first_refused_line_of_each_reason_is() -> None:
    """`monitor replay` printed "refused lines: bad_timestamp=1, invalid_json=1, unknown_key=1":
    in a log of a million lines nothing said which line, nor what was wrong with it."""
    good = json.dumps({"timestamp": 1_700_000_000.0, "inputs": [1.0, 2.0, 3.0], "outputs": [0.3, 0.7]})
    log = "\n".join([good, '{"inputs": [1, 2], "timestamp": "yesterday"}', good, "not json", '{"inputz": [1]}',
                     '{"inputs": [1, 2], "outputs": [1, 0]}', '{"inputs": [1, 2], "timestamp": "later"}']) + "\n"
    config = Path(__file__).resolve().parent.parent / "examples" / "replay" / "monitor.yaml"
    res = CliRunner().invoke(main, ["replay", "-", "--config", str(config)], input=log)
    assert res.exit_code == 0, res.output
    assert "refused lines: bad_timestamp=2, invalid_json=1, missing_timestamp=1, unknown_key=1" in res.output
    assert "first bad_timestamp: line 2: timestamp: cannot read 'yesterday'; use Unix seconds or RFC 3339" in res.output
    assert "first invalid_json: line 4: not JSON" in res.output
    assert "first unknown_key: line 5: inputz: unknown key" in res.output
    assert "first missing_timestamp: line 6: no timestamp" in res.output


# -- monitor rules check on a rule querying a metric the agent does not export --------------------
def test_rules_check_notes_a_monitor_metric_the_agent_does_not_export(tmp_path: Path) -> None:
    """A custom rule on `rate(monitor_calls[5m])` (the counter is monitor_calls_total) passed the
    check and never fired. The verdict stays promtool's; a note names the metric and the fix."""
    path = tmp_path / "mine.yml"
    path.write_text(
        "groups:\n- name: mine\n  rules:\n"
        "  - {record: 'monitor_mine:calls:rate5m', expr: 'sum by (model) (rate(monitor_calls_total[5m]))'}\n"
        "  - {alert: TooManyCalls, expr: 'rate(monitor_calls[5m]) > 10 or monitor_mine:calls:rate5m > 10'}\n"
        "  - {alert: SlowModel, expr: 'rate(monitor_latncy_seconds_sum[5m]) > 1 and on() up == 1'}\n"
    )
    res = CliRunner().invoke(main, ["rules", "check", str(path)])
    assert res.exit_code == 0, res.output
    assert "SUCCESS: 3 rules found" in res.output
    notes = [line.strip() for line in res.output.splitlines() if "note:" in line]
    assert notes == [
        'note: group "mine", rule "TooManyCalls" queries monitor_calls, which the agent does not export '
        "(did you mean monitor_calls_total?): the rule can never match the agent's metrics",
        'note: group "mine", rule "SlowModel" queries monitor_latncy_seconds_sum, which the agent does not export '
        "(did you mean monitor_latency_seconds_sum?): the rule can never match the agent's metrics",
    ]
    shipped = sorted(str(p) for p in (Path(__file__).resolve().parent.parent / "rules").glob("*.yml"))
    res = CliRunner().invoke(main, ["rules", "check", *shipped])
    assert res.exit_code == 0 and "note:" not in res.output, res.output


# -- @watch(client="apikey") on predict(X, api_key=None) -----------------------------------------
def test_watch_refuses_an_extractor_name_that_is_not_a_parameter() -> None:
    """A misspelt `client="apikey"` was accepted: every call then had no client, all traffic was
    one "anonymous" client and per-client probing detection saw nothing. input_arg was already
    checked this way."""
    mon = _monitor(IRIS)
    try:
        with pytest.raises(ValueError, match=r"client='apikey' is not a parameter of .*predict\('X', 'api_key'\)\. "
                                             r"Fix: name one of its parameters, or pass a callable"):
            @mon.watch(client="apikey")
            def predict(X, api_key=None):
                return [[0.9, 0.05, 0.05]]
        with pytest.raises(ValueError, match=r"request_id='rid' is not a parameter"):
            mon.watch(lambda X, request_id=None: [[0.9, 0.05, 0.05]], request_id="rid")

        @mon.watch(client="api_key", segment="region")  # **kwargs: the names may come by keyword
        def predict_kw(X, **kwargs):
            return [[0.9, 0.05, 0.05]]

        @mon.watch(client="api_key")
        def predict_ok(X, api_key=None):
            return [[0.9, 0.05, 0.05]]

        predict_kw([[5.1, 3.5, 1.4, 0.2]], api_key="k1", region="eu")
        predict_ok([[5.1, 3.5, 1.4, 0.2]], api_key="k2")
        events = mon.queue.drain(10)  # (kind, ts, inputs, outputs, latency, client, request_id, segment, ...)
        assert [(e[5], e[7]) for e in events] == [("k1", "eu"), ("k2", None)]
    finally:
        mon.close()


# -- monitor serve --proxy without a scheme --------------------------------------------------------
def test_a_proxy_url_without_a_scheme_on_the_command_line_is_refused_like_in_the_file(tmp_path: Path) -> None:
    """`monitor serve --config monitor.yaml --proxy 127.0.0.1:8080` started, and answered every
    proxied request 502 "the model server closed the connection (NonHttpUrlClientError)"; the
    same URL in server.proxy.upstream was refused at start with a fix."""
    from monitor.config import ConfigError, parse_config
    from monitor.server.settings import settings_from

    agent = parse_config(IRIS, str(tmp_path / "monitor.yaml"), tmp_path)
    with pytest.raises(ConfigError, match=r"--proxy: must be an http\(s\) URL, got '127\.0\.0\.1:8080'\. Fix: write e\.g\. http://127\.0\.0\.1:8080"):
        settings_from(agent, proxy_upstream="127.0.0.1:8080")
    lean = parse_config({**IRIS, "server": {"proxy": {"engine": "lean"}}})
    with pytest.raises(ConfigError, match=r"server\.proxy\.engine: the lean engine speaks plain HTTP"):
        settings_from(lean, proxy_upstream="https://models.example:8443")
    assert settings_from(agent, proxy_upstream="http://127.0.0.1:8080").proxy.upstream == "http://127.0.0.1:8080"
    (tmp_path / "monitor.yaml").write_text(json.dumps(IRIS))
    res = CliRunner().invoke(main, ["serve", "--config", str(tmp_path / "monitor.yaml"), "--port", "0", "--proxy", "127.0.0.1:8080"])
    assert res.exit_code == 1 and "--proxy: must be an http(s) URL" in res.output, res.output


# -- monitor serve --host 0.0.0.0 without tokens ---------------------------------------------------
def test_serving_beyond_loopback_without_tokens_is_warned_about(tmp_path: Path) -> None:
    """`monitor serve --host 0.0.0.0` with no token started without a word, though anyone who can
    reach the port may then post events and labels for every model (UDP forwarding off loopback
    was already warned about)."""
    from monitor.cli.serve import exposure_warnings
    from monitor.config import parse_config
    from monitor.server.settings import settings_from

    def warnings_for(addr: str, **server: str) -> list[str]:
        return exposure_warnings(settings_from(parse_config({**IRIS, "server": {"addr": addr, **server}})))

    for addr in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert warnings_for(addr) == []
    write, read = warnings_for("0.0.0.0")
    assert write.startswith("listening on 0.0.0.0, beyond loopback, with no write token") and "server.write_token_file" in write
    assert "no metrics token" in read and "server.metrics_token_env" in read
    assert len(warnings_for("::")) == 2 and len(warnings_for("model-monitor.default.svc")) == 2
    (tmp_path / "w.token").write_text("0123456789abcdef0123\n")
    (tmp_path / "m.token").write_text("fedcba9876543210fedc\n")
    assert warnings_for("0.0.0.0", write_token_file=str(tmp_path / "w.token"), metrics_token_file=str(tmp_path / "m.token")) == []


# -- rows refused for a configuration mistake are said once in the log -----------------------------
def test_the_first_refused_rows_of_each_reason_are_logged_once_with_the_fix(caplog) -> None:
    """`@monitor.watch` on a `predict` that returns class labels: every row was refused as
    non_numeric_output, and nothing but a counter said so (no log line, no hint)."""
    import logging

    mon = _monitor({"model": "labels-model"})
    try:
        @mon.watch
        def predict(X):
            return np.array(["fraud" if row[0] > 0 else "legit" for row in X])

        rng = np.random.default_rng(0)
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for _ in range(2):
                for _ in range(5):
                    predict(rng.normal(size=(3, 2)))
                mon.flush()
        assert mon.store.value("monitor_rows_rejected", ("non_numeric_output",)) == 30.0
        lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert lines == ["model 'labels-model': 15 row(s) refused (non_numeric_output): outputs must be numbers for "
                         "output.kind: probabilities, got ndarray (e.g. 'fraud'). Fix: for a model that returns class labels "
                         "(predict rather than predict_proba) set output.kind: labels in the config; for one that returns a "
                         "dict or an object, pick its scores with watch(..., outputs=lambda result: ...) (through the sidecar: "
                         "server.proxy.oip_output names the output); text that is no class of its row (generated text, a label "
                         "per token) and answers that are no scores (boxes, rankings, embeddings) are not monitored as outputs "
                         "(as labels each answer would be a class): set output.kind: none to watch the inputs alone, or, to "
                         "also watch a figure of each answer, output.kind: regression with watch(..., outputs=lambda out: "
                         "[len(o) for o in out]); counted in monitor_rows_rejected_total"
                         '{reason="non_numeric_output"}, further ones are counted without a log line']
    finally:
        mon.close()


def test_labels_that_name_no_class_of_the_outputs_are_logged_once_with_the_fix(caplog) -> None:
    """README Quick start: `feedback(["r-17"], ["fraud"])` for a `predict_proba` model with no
    classes configured (its columns are known as 0 and 1): the label was joined, then skipped by
    calibration, accuracy and the segments, with nothing but a counter to say so."""
    import logging

    mon = _monitor({"model": "fraud-v3"})
    try:
        @mon.watch(request_id="request_id")
        def predict(X, request_id=None):
            return np.array([[0.8, 0.2]] * len(X))

        for i in range(4):
            predict([[0.1, 0.2]], request_id=f"r-{i}")
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.feedback(["r-0"], [1])  # a column index: a class
            mon.flush()
            assert not [r for r in caplog.records if "label" in r.getMessage()]
            mon.feedback(["r-1", "r-2"], ["fraud", "fraud"])
            mon.flush()
            mon.feedback(["r-3"], ["fraud"])
            mon.flush()
        lines = [r.getMessage() for r in caplog.records if "joined label" in r.getMessage()]
        assert lines == ["model 'fraud-v3': 2 joined label(s) name no class of the model's outputs (e.g. 'fraud'; its "
                         "classes: 0, 1): the labelled figures skip them (monitor_calibration_labels_skipped_total"
                         '{reason="unknown_class"}). Fix: give each label as one of those classes (a column index when '
                         "output.classes is not configured), or list the class names under output.classes in the config, in the "
                         "order of the score columns (in code, for a scikit-learn model: Monitor(..., config={\"output\": "
                         "{\"classes\": list(clf.classes_)}}), or monitor.get_monitor('fraud-v3', config=...) before the "
                         "decorator runs)"]
        assert mon.store.value("monitor_calibration_labels_skipped", ("unknown_class",)) == 3.0
    finally:
        mon.close()


def test_labels_a_labels_only_model_cannot_place_are_logged_once_with_an_example(caplog) -> None:
    """A labels-only model (``output.kind: labels``) learns at most 64 classes from labels it never
    answered; the labels beyond them (a free-text column sent as the label) were skipped as
    ``unknown_class`` with no log line at all: the warning above returned early for a model without
    score columns. It is said once, with an example of the offending values and the fix."""
    import logging
    import time

    from monitor.outputs import LABEL_CLASSES_MAX

    mon = _monitor({"model": "tagger", "output": {"kind": "labels", "classes": ["a", "b", "c"]}})
    n = LABEL_CLASSES_MAX + 16
    t = time.time() - 100
    try:
        mon.observe(np.ones((n, 2)), ["a"] * n, request_id=[f"r{i}" for i in range(n)], timestamp=t)
        mon.flush()
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for start in (0, n // 2):
                ids = [f"r{i}" for i in range(start, start + n // 2)]
                mon.feedback(ids, [f"note {i}" for i in range(start, start + n // 2)], timestamp=t + 1)
                mon.flush()
        (line,) = [r.getMessage() for r in caplog.records if "joined label" in r.getMessage()]
        first = f"'note {LABEL_CLASSES_MAX}'"  # the first label no class was learned for
        assert "model 'tagger': 16 joined label(s)" in line and f"(e.g. {first}, " in line, line
        assert "its classes: a, b, c, note 0, " in line and "and 47 more" in line, line
        assert f"at most {LABEL_CLASSES_MAX} classes from labels" in line, line
        assert mon.store.value("monitor_calibration_labels_skipped", ("unknown_class",)) == 16.0
    finally:
        mon.close()


# -- monitor_proxy_requests_total{route="error"} ---------------------------------------------------
@pytest.mark.parametrize("engine", ["aiohttp", "lean"])
def test_every_route_label_of_proxied_requests_is_documented(tmp_path: Path, engine: str) -> None:
    """The model server down: requests were counted with route="error", a label value the
    metrics table did not mention (it listed oip_v2, predict, other)."""
    from monitor import catalog
    from tests.conftest import free_port
    from tests.sidecar_support import http
    from tests.test_proxy import oip, start_proxying

    if engine == "lean":
        from monitor.server.leanproxy import lean_available

        if not lean_available():
            pytest.skip("httptools is not installed")
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{free_port()}")
    try:
        assert http("POST", s.url + "/v2/models/iris/infer", oip(1)).status == 502
        text = s.metrics()
    finally:
        s.close()
    routes = set(re.findall(r'^monitor_proxy_requests_total\{[^}]*route="(\w+)"', text, re.M))
    assert routes == {"error"}
    documented = re.search(r"by route kind \(([^)]*)\)", catalog.get("monitor_proxy_requests").help).group(1)
    assert {"oip_v2", "predict", "other", "error"} <= set(re.findall(r"\w+", documented))


def test_config_check_says_how_to_fix_a_missing_rule_file(tmp_path: Path) -> None:
    """Copying examples/replay out of the repository (or a pip install, which has no rules/):
    "rules.files: .../../rules/core.yml: cannot read rule file: No such file or directory", with
    no word on where relative paths start or where the packs are."""
    (tmp_path / "replay").mkdir()
    cfg = tmp_path / "replay" / "monitor.yaml"
    cfg.write_text("model: m\nrules:\n  files: [../../rules/core.yml]\n")
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 1
    assert "rules.files: " in res.output and "core.yml: cannot read rule file: it does not exist. Fix: correct the path " \
        "(a relative one resolves against the config file's folder); for the shipped packs, name them under rules.packs " \
        "instead (e.g. packs: [core]; `monitor rules packs` lists them)" in res.output, res.output


def test_replay_of_a_multi_model_config_names_the_option_to_choose_one(tmp_path: Path) -> None:
    """The error read "Fix: pass model=NAME to choose one" (the Python API's keyword); the
    command's option is --model."""
    cfg = tmp_path / "monitor.yaml"
    core = Path(__file__).resolve().parent.parent / "rules" / "core.yml"
    cfg.write_text(f"models:\n  - model: m\n  - model: n\nrules: {{files: [{core}]}}\n")
    res = CliRunner().invoke(main, ["replay", "-", "--config", str(cfg)], input="")
    assert res.exit_code == 1
    assert "the config defines 2 models (m, n). Fix: pass --model NAME to choose one" in res.output, res.output


def test_reference_build_refuses_classes_that_do_not_name_every_output_column(tmp_path: Path) -> None:
    """`--classes a,b` for three output columns wrote a profile whose classes named two of the
    three score columns; the detectors then fell back to naming them 0, 1, 2."""
    data = tmp_path / "ref.csv"
    data.write_text("x,p_a,p_b,p_c\n" + "".join(f"{i},0.2,0.3,0.5\n" for i in range(20)))
    base = ["reference", "build", str(data), "-o", str(tmp_path / "ref.npz"), "--quiet", "--output-columns", "p_a,p_b,p_c"]
    res = CliRunner().invoke(main, [*base, "--classes", "a,b"])
    assert res.exit_code == 1
    assert ("--classes names 2 classes (a, b) for 3 output columns (p_a, p_b, p_c). Fix: name one class per output "
            "column, in the same order") in res.output, res.output
    res = CliRunner().invoke(main, [*base, "--classes", "a,b,a"])
    assert res.exit_code == 1 and "names a class twice" in res.output
    assert not (tmp_path / "ref.npz").exists()
    res = CliRunner().invoke(main, [*base, "--classes", "a,b,c"])
    assert res.exit_code == 0, res.output
    from monitor.profile import load_reference

    assert load_reference(tmp_path / "ref.npz").classes == ("a", "b", "c")


def test_a_reference_and_a_config_naming_the_classes_differently_are_warned_about(caplog) -> None:
    """Classes named by the reference (a profile built with default --classes: the output column
    names) and differently by the config: monitor_predicted_class_total{class="setosa"} beside
    monitor_output_top_class_share_ratio{class="p_setosa"} for the same column, without a word."""
    import logging

    from monitor import Reference

    x, p, y = _iris_like(300)
    idx = np.asarray([CLASSES.index(v) for v in y])
    with caplog.at_level(logging.WARNING, logger="monitor"):
        for classes in (CLASSES, ["p_setosa", "p_versicolor", "p_virginica"]):
            _monitor(IRIS, reference=Reference.from_arrays(x, scores=p, labels=idx, classes=classes)).close()
    lines = [r.getMessage() for r in caplog.records if "names its classes" in r.getMessage()]
    assert lines == ["model 'iris': the reference names its classes p_setosa, p_versicolor, p_virginica, the config's "
                     "output.classes setosa, versicolor, virginica: metrics by class would name the same column "
                     "differently. Fix: make them the same, in score-column order (monitor reference build --classes ...)"]
