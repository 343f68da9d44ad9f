"""Issue #7, the sidecar's loose ends (session 11): each test fails without its fix, over real
HTTP (or a real socket, or the CLI) where the behaviour is there."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from tests.sidecar_support import http, quiet_factory, start_sidecar, total

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _config_check(tmp_path: Path, raw: dict) -> tuple[int, str]:
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(main, ["config", "check", str(config)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


# -- 5. a detector's own fix, wrapped as a config error, read once ------------------------------------
def test_a_detectors_own_fix_is_told_once_in_the_config_error(tmp_path: Path) -> None:
    """A detector refusing the reference ends its message with its own fix, and the config error
    that names the entry added another: "... (first: row 3). Fix: drop those rows ... . Fix:
    list the detectors you want ...". Both fixes stay, in one "Fix:", the detector's first."""
    from monitor.profile import Profile

    rng = np.random.default_rng(0)
    scores = rng.dirichlet([1, 1, 1], size=200)
    scores[3] = np.nan
    Profile.from_arrays(rng.normal(size=(200, 4)), numeric_names=list("abcd"), scores=scores).save(tmp_path / "ref.npz")
    for detectors, other_fix in ((None, "list the detectors you want under detectors:"),
                                 ([{"kind": "confidence_drift"}], "remove the entry detectors[0]")):
        raw = {**IRIS, "reference": {"path": "ref.npz"}, **({"detectors": detectors} if detectors else {})}
        code, output = _config_check(tmp_path, raw)
        failed = [line for line in output.splitlines() if line.startswith("FAILED")]
        assert code == 1 and len(failed) == 1, output
        assert "NaN or infinite scores (first: row 3)" in failed[0], failed[0]
        assert failed[0].count("Fix:") == 1, failed[0]
        fix = failed[0].split("Fix: ", 1)[1]
        assert fix.startswith("drop those rows from the reference") and other_fix in fix, fix


# -- 1. a CloudEvent with a wrong token is logged as well as counted ----------------------------------
_CE_HEADERS = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Source": "kserve", "Ce-Id": "k1",
               "Ce-Type": "org.kubeflow.serving.inference.request", "Ce-Inferenceservicename": "iris"}


def test_a_cloudevent_with_a_wrong_token_is_logged_once_and_counted(tmp_path: Path, caplog) -> None:
    """Every other refused CloudEvent is logged (the first of its reason, with the fix): its 4xx goes
    to an inference logger that logs only the status, in another pod. A 401 for a token that is
    none of the write tokens (an old one, after a rotation) was only counted."""
    (tmp_path / "write.token").write_text("w" * 32 + "\n")
    s = start_sidecar({**IRIS, "server": {"write_token_file": "write.token"}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    body = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            for _ in range(3):
                r = http("POST", s.url + "/v1/cloudevents", body, {**_CE_HEADERS, "Authorization": "Bearer old-token-1234"})
                assert r.status == 401 and r.json()["reason"] == "unauthorized", r.body
        counted = total(s.metrics(), "monitor_intake_events_refused_total", endpoint="cloudevents", reason="unauthorized")
    finally:
        s.close()
    said = [r.getMessage() for r in caplog.records if "unauthorized" in r.getMessage()]
    assert len(said) == 1, said
    assert "CloudEvent refused (unauthorized) for model" not in said[0]  # no model is read before the token
    assert "none of the write tokens" in said[0] and "Fix: give the sender a current write token" in said[0], said[0]
    assert "old-token-1234" not in said[0]
    assert counted == 3


# -- 4. the throttled upstream-failure log says the failures of its last, partial minute -------------
from tests.test_proxy import engine, start_proxying, upstream, upstream_app  # noqa: E402,F401 - fixtures

_INFER = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def _upstream_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "monitor_proxy_upstream_errors_total" in r.getMessage()]


def _said(lines: list[str]) -> int:
    """Failures the log lines account for: one each for the lines of a failure, plus the N of
    'N more ...' (the held-back ones)."""
    import re

    n = 0
    for line in lines:
        m = re.search(r"proxy: (\d+) more request\(s\) since the last line", line)
        n += int(m.group(1)) if m else 1
    return n


def test_upstream_failures_of_a_short_outage_are_all_logged_by_shutdown(tmp_path: Path, engine: str, caplog) -> None:
    """The proxy logs the first failure of a reason, then at most a line a minute with the count
    since, and that count waited for the next failure after the minute: an outage of a few
    seconds logged its first failure and never the others (they were counted only)."""
    from tests.conftest import free_port

    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=f"http://127.0.0.1:{free_port()}")
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            for _ in range(4):
                assert http("POST", s.url + "/v2/models/iris/infer", _INFER).status == 502
            s.flush()
            assert total(s.metrics(), "monitor_proxy_upstream_errors_total", reason="connect") == 4
            assert len(_upstream_lines(caplog)) == 1, _upstream_lines(caplog)
    finally:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            s.close()
    lines = _upstream_lines(caplog)
    assert len(lines) == 2 and "proxy: 3 more request(s) since the last line" in lines[1], lines
    assert "cannot connect to the model server" in lines[1] and 'reason="connect"' in lines[1], lines[1]


def test_upstream_failures_held_back_are_logged_when_their_minute_ends(tmp_path: Path, monkeypatch, caplog) -> None:
    """The same, on a running sidecar: the held-back failures are said once the minute (here
    shortened to 3 s) is over, without another failure to carry them."""
    from monitor.server import proxy as proxy_module
    from tests.conftest import free_port
    from tests.sidecar_support import wait_until

    monkeypatch.setattr(proxy_module, "_UPSTREAM_LOG_EVERY_S", 3.0)
    s = start_proxying(IRIS, tmp_path, "aiohttp", proxy_upstream=f"http://127.0.0.1:{free_port()}")
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.server"):
            for _ in range(4):
                assert http("POST", s.url + "/v2/models/iris/infer", _INFER).status == 502
            assert wait_until(lambda: _said(_upstream_lines(caplog)) == 4, timeout=15), _upstream_lines(caplog)
    finally:
        s.close()
    assert any("more request(s) since the last line" in line for line in _upstream_lines(caplog))


# -- 2. in proxy mode, the sidecar's own paths are the sidecar's whatever the method -----------------
def test_a_wrong_method_on_a_sidecar_path_is_answered_405_by_the_sidecar_not_forwarded(tmp_path: Path, engine: str,
                                                                                       upstream) -> None:
    """Proxy mode on one port: ``GET /v1/events`` or ``POST /metrics`` went to the proxy's catch-all
    route (aiohttp's router, and the lean engines' resolution of it, try the next route when the
    method does not match), so the model server answered them (404 here), saying nothing of the
    sidecar's endpoint. They are the sidecar's 405, with Allow, as without the proxy; other paths
    and the tapped routes are forwarded as before."""
    s = start_proxying(IRIS, tmp_path, engine, proxy_upstream=upstream.url)
    try:
        for method, path, allow in (("GET", "/v1/events", "POST"), ("PUT", "/v1/cloudevents", "POST"),
                                    ("POST", "/metrics", "GET, HEAD"), ("DELETE", "/api/v1/status?x=1", "GET, HEAD"),
                                    ("POST", "/healthz", "GET, HEAD")):
            r = http(method, s.url + path, b"{}" if method in ("POST", "PUT") else None)
            assert r.status == 405, (method, path, r.status, r.body)
            assert r.headers.get("allow") == allow and r.json()["reason"] == "method_not_allowed", (r.headers, r.body)
            assert "x-upstream" not in r.headers and path.split("?")[0] in r.json()["error"], r.body
        # what is not the sidecar's still goes to the model server, and its own routes answer as ever
        echoed = http("GET", s.url + "/echo/v1/events")
        assert echoed.status == 201 and echoed.json()["path_qs"] == "/echo/v1/events", echoed.body
        assert http("GET", s.url + "/v1/events/").status == 404  # not the sidecar's path: the model server's 404
        assert http("POST", s.url + "/v2/models/iris/infer", _INFER).status == 200
        assert http("GET", s.url + "/healthz").status == 200
        s.flush()
        text = s.metrics()
    finally:
        s.close()
    assert total(text, "monitor_http_request_duration_seconds_count", handler="unmatched", code="405") == 5
    assert total(text, "monitor_proxy_requests_total") == 3  # the echo, the model server's 404 and the infer


# -- 3. forwarded drop totals: deltas per sender, a restarted sender counted from zero ---------------
def _forwarded(tmp_path: Path, datagrams: list[tuple[int, dict[str, int]]], sender: str = "host:1:abcd",
               received: int | None = None) -> str:
    """``/metrics`` of a sidecar after one sender's ``(seq, dropped)`` datagrams, sent in that order
    over its Unix socket, each with one event (waited for until ``received`` events, all by
    default, are received, and the datagrams not processed counted)."""
    import json
    import socket

    from tests.sidecar_support import wait_until

    sock_path = str(tmp_path / "fwd.sock")
    s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock_path}}}, tmp_path,
                      factory=quiet_factory(start_worker=False))
    client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for seq, dropped in datagrams:
            msg = {"v": 1, "sender": sender, "seq": seq, "model": "iris", "dropped": dropped,
                   "events": [{"inputs": [5.1, 3.5, 1.4, 0.2], "outputs": [0.9, 0.05, 0.05]}]}
            client.sendto(json.dumps(msg).encode(), sock_path)
        expected = len(datagrams) if received is None else received

        def arrived() -> bool:
            text = s.metrics()
            return (total(text, "monitor_forward_events_received_total") == expected
                    and total(text, "monitor_forward_datagrams_discarded_total") == len(datagrams) - expected)

        assert wait_until(arrived)
        return s.metrics()
    finally:
        client.close()
        s.close()


def test_forwarded_drop_totals_are_counted_as_deltas_and_a_restarted_total_from_zero(tmp_path: Path) -> None:
    """Workers report cumulative drop totals. A total that went down (it started again from zero)
    kept the old total as the mark, and the new drops went uncounted until they passed it: 7
    dropped, a restart, 2 dropped counted 0. A total that goes down is counted whole now."""
    text = _forwarded(tmp_path, [(1, {"queue_full": 5}), (2, {"queue_full": 7, "too_large": 1}),  # 7 + 1
                                 (3, {"queue_full": 2}),                       # queue_full restarted: 2 new drops
                                 (4, {"queue_full": 3}),                       # 1 more
                                 (5, {"queue_full": 1, "too_large": 4})])      # queue_full restarted (1 new), too_large grew by 3
    assert total(text, "monitor_forward_events_dropped_total", reason="queue_full") == 7 + 2 + 1 + 1
    assert total(text, "monitor_forward_events_dropped_total", reason="too_large") == 1 + 3


# -- 6. config check on raw reference data: the scores and labels the agent would refuse ------------
def _agent_start_error(config: Path) -> str:
    """What ``monitor serve`` says when it builds the model (``Monitor`` from the config), minus the
    file name it starts with: the text the check must print after ``model 'NAME': ``."""
    from prometheus_client import CollectorRegistry

    from monitor.config import ConfigError, load_config
    from monitor.core import Monitor

    cfg = load_config(config).models[0]
    with pytest.raises(ConfigError) as err:
        Monitor(config=cfg, registry=CollectorRegistry(auto_describe=False), live=False)
    return str(err.value).split(": ", 1)[1]


@pytest.mark.parametrize("case", ["two_columns_for_three_classes", "not_probabilities", "nan_row", "labels_out_of_range",
                                  "csv_without_scores"])
def test_config_check_of_raw_reference_data_refuses_the_scores_the_agent_refuses(tmp_path: Path, case: str,
                                                                                 monkeypatch) -> None:
    """Raw reference data is not profiled by the check (minutes on a large file), and the detectors
    that need the reference were not built at all: "NOTE ... not built" and exit 0, then ``monitor
    serve`` refused the scores at start and never became ready. The detectors that read only the
    scores and labels are now built on them as read, with the agent's own error text."""
    import pandas as pd

    from monitor import profile

    rng = np.random.default_rng(0)
    n = 300
    x, scores, labels = rng.normal(size=(n, 4)), rng.dirichlet([1, 1, 1], size=n), rng.integers(0, 3, size=n)
    raw = {**IRIS, "reference": {"path": "ref.npz"}}
    if case == "two_columns_for_three_classes":
        scores = scores[:, :2]
    elif case == "not_probabilities":
        scores = rng.normal(size=(n, 3))
    elif case == "nan_row":
        scores[17] = np.nan
    elif case == "labels_out_of_range":
        labels[5] = 7
        raw["detectors"] = [{"kind": "confidence"}, {"kind": "accuracy_estimation"}, {"kind": "input_drift"}]
    if case == "csv_without_scores":  # the agent reads no scores from a CSV (reference build --output-columns does)
        pd.DataFrame(x, columns=list("abcd")).to_csv(tmp_path / "ref.csv", index=False)
        raw = {**raw, "reference": {"path": "ref.csv"}, "detectors": [{"kind": "segments"}, {"kind": "confidence_drift"}]}
    else:
        np.savez(tmp_path / "ref.npz", X=x, scores=scores, labels=labels, feature_names=np.array(list("abcd")))
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(raw))
    said = _agent_start_error(config)

    def no_build(*_: object, **__: object) -> None:
        raise AssertionError("config check profiled the reference")

    monkeypatch.setattr(profile, "build_profile", no_build)
    monkeypatch.setattr(profile, "_fit_pca", no_build)
    code, output = _config_check(tmp_path, raw)
    assert code == 1 and f"FAILED: {config}: model 'iris': {said}" in output.splitlines(), (said, output)


def test_config_check_of_raw_reference_data_passes_what_the_agent_takes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "ref.npz", X=rng.normal(size=(300, 4)), scores=rng.dirichlet([1, 1, 1], size=300),
             labels=rng.integers(0, 3, size=300), feature_names=np.array(list("abcd")))
    code, output = _config_check(tmp_path, {**IRIS, "reference": {"path": "ref.npz"}})
    assert code == 0 and "SUCCESS" in output and "NOTE: model 'iris': the default detectors that need the reference's" \
        in output, output


@pytest.mark.parametrize("columns", [4, 2, 1])
def test_reference_scores_of_another_width_than_the_classes_are_refused_by_serve_and_the_check(tmp_path: Path,
                                                                                               columns: int) -> None:
    """Scores of 4 columns for 3 classes, 2 that sum to one, or one column (P(positive) of a binary
    model) for 3 classes passed the check and the agent's start: then confidence_drift and
    accuracy_estimation passed over every live row (another width) and prediction_drift compared
    classes that are not the live ones, with nothing said. Both refuse them now, in the same words."""
    rng = np.random.default_rng(2)
    n = 300
    scores = rng.dirichlet(np.ones(max(columns, 2)), size=n)
    scores = scores[:, 1] if columns == 1 else scores
    np.savez(tmp_path / "ref.npz", X=rng.normal(size=(n, 4)), scores=scores, labels=rng.integers(0, 2, size=n),
             feature_names=np.array(list("abcd")))
    raw = {**IRIS, "reference": {"path": "ref.npz"}}
    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(raw))
    said = _agent_start_error(config)
    assert said.startswith("reference.path: the reference's scores have ") and "output.classes names 3 classes" in said
    code, output = _config_check(tmp_path, raw)
    assert code == 1 and f"FAILED: {config}: model 'iris': {said}" in output.splitlines(), (said, output)
    # the same reference for a model of that many classes is taken
    classes = ["a", "b"] if columns == 1 else [f"c{i}" for i in range(columns)]
    code, output = _config_check(tmp_path, {**raw, "output": {"kind": "probabilities", "classes": classes}})
    assert code == 0, output


def test_a_reordered_forwarding_datagram_does_not_count_a_senders_drops_again(tmp_path: Path) -> None:
    """The final review: over UDP between hosts datagrams can arrive out of order. A sequence that
    went back was read as a restarted sender, whose whole drop total then counted again: 10, 12,
    11, 13, each reporting queue_full 1000, gave 2,000 drops for 1,000. An older datagram's totals
    are older, and counted already; its events are processed, and it is not counted lost (it
    filled its gap within REORDER_S)."""
    text = _forwarded(tmp_path, [(seq, {"queue_full": 1000}) for seq in (10, 12, 11, 13)])
    assert total(text, "monitor_forward_events_dropped_total", reason="queue_full") == 1000
    # (that none is counted lost 5 s on: tests/test_forward_sequence.py, on the receiver's own clock)


def test_a_duplicated_forwarding_datagram_is_processed_once(tmp_path: Path) -> None:
    """Session 12's review: a second copy of a sender's datagram 1 (duplicated on the way) was read
    as the sender starting again, and its drop total counted a second time (4 for 3); and a copy of
    any datagram had its events processed twice. The copies are discarded and counted now."""
    text = _forwarded(tmp_path, [(1, {"queue_full": 1}), (1, {"queue_full": 1}), (2, {"queue_full": 3}), (2, {"queue_full": 3}),
                                 (3, {"queue_full": 3})], sender="host:1:dup", received=3)
    assert total(text, "monitor_forward_events_dropped_total", reason="queue_full") == 3
    assert total(text, "monitor_forward_datagrams_discarded_total") == 2
