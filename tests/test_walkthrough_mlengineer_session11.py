"""Session 11's ML-engineer walkthrough: defects found by adopting the monitor from the README and
``--help`` alone (a digits classifier in FastAPI, gunicorn workers forwarding to a sidecar that is
killed and restarted, regression / segments / MC-dropout / logits / binary outputs, bad inputs,
``monitor replay`` and the CLI's exit codes), each pinned by a test that fails without its fix."""

from __future__ import annotations

import pytest

from monitor.forwarding import ForwardingMonitor
from monitor.server import keys as K
from tests.sidecar_support import sample, start_sidecar, wait_until

IRIS = {"model": "iris", "features": ["a", "b", "c", "d"],
        "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}
ROW, PROBS = [[5.1, 3.5, 1.4, 0.2]], [[0.9, 0.05, 0.05]]


def _dropped(s) -> float:
    return sample(s.metrics(), "monitor_forward_events_dropped_total", model="_sidecar",
                  reason="sidecar_unavailable") or 0.0


def _away(fm: ForwardingMonitor, n: int) -> None:
    """``n`` calls while no sidecar listens: each dropped as sidecar_unavailable in the worker."""
    for _ in range(n):
        fm.observe(ROW, PROBS)
    fm.flush()


def _one(fm: ForwardingMonitor) -> None:
    fm.observe(ROW, PROBS)
    fm.flush()


def test_sidecar_restarts_count_each_dropped_event_once(tmp_path):
    """A sidecar killed and restarted under traffic (seen for real with gunicorn workers): the
    workers' cumulative drop totals were counted again in full by each new sidecar, whose
    counter had restarted at zero, so Prometheus' increase() over the restarts added the drops
    of the first outage twice (2,403 + 4,521 for 4,521 drops). Each sidecar must count only what
    no earlier one did: their counts add up to the worker's total, after a restart under traffic
    and after one with no traffic in between."""
    sock = str(tmp_path / "fwd.sock")
    cfg = {**IRIS, "server": {"forward": {"unix": sock}}}
    fm = ForwardingMonitor("iris", f"unix://{sock}", start=False)
    try:
        _away(fm, 30)                       # the workers start before the sidecar
        counted = []
        a = start_sidecar(cfg, tmp_path)
        _one(fm)
        assert wait_until(lambda: _dropped(a) == 30)
        counted.append(_dropped(a))
        a.close()
        _away(fm, 20)                       # killed: the next calls are dropped
        b = start_sidecar(cfg, tmp_path)
        _one(fm)
        assert wait_until(lambda: sample(b.metrics(), "monitor_forward_events_received_total", model="iris",
                                         transport="unix") == 1)
        counted.append(_dropped(b))
        b.close()
        c = start_sidecar(cfg, tmp_path)    # restarted while the workers were idle
        _one(fm)
        assert wait_until(lambda: sample(c.metrics(), "monitor_forward_events_received_total", model="iris",
                                         transport="unix") == 1)
        counted.append(_dropped(c))
        c.close()
        assert fm.counters().dropped == {"sidecar_unavailable": 50}
        assert counted == [30, 20, 0]
    finally:
        fm.close()


def test_a_sender_forgotten_by_the_sidecar_after_a_quiet_spell_is_not_counted_twice(tmp_path):
    """The sidecar forgets a worker not heard from for five minutes (a night without traffic);
    the worker's next datagram carried its cumulative drop totals, which the sidecar then counted
    a second time within one process."""
    sock = str(tmp_path / "fwd.sock")
    fm = ForwardingMonitor("iris", f"unix://{sock}", start=False)
    clock = [1000.0]
    fm._now = lambda: clock[0]
    try:
        _away(fm, 7)
        s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
        try:
            _one(fm)
            assert wait_until(lambda: _dropped(s) == 7)
            receiver = s.server.app[K.FORWARD]
            s.server.lt.call(_sweep(receiver, 301.0))   # five minutes without a datagram: forgotten
            clock[0] += 301.0
            _one(fm)
            assert wait_until(lambda: sample(s.metrics(), "monitor_forward_events_received_total", model="iris",
                                             transport="unix") == 2)
            assert _dropped(s) == 7
        finally:
            s.close()
    finally:
        fm.close()


async def _sweep(receiver, ahead: float) -> None:
    import time

    receiver.sweep(time.monotonic() + ahead)


def test_metrics_write_names_the_missing_markers_and_file(tmp_path):
    """``monitor metrics --write`` on a file without the table's markers printed a ValueError
    traceback ('substring not found') and exited 1 with no word of the markers; on a path that
    does not exist, a FileNotFoundError traceback."""
    from click.testing import CliRunner

    from monitor.cli import main

    doc = tmp_path / "DOC.md"
    doc.write_text("# my model\n")
    res = CliRunner().invoke(main, ["metrics", "--write", str(doc)])
    assert res.exit_code == 1 and res.exc_info[0] is SystemExit
    assert "<!-- metrics:start -->" in res.output and "Fix:" in res.output
    assert doc.read_text() == "# my model\n"
    res = CliRunner().invoke(main, ["metrics", "--write", str(tmp_path / "missing" / "README.md")])
    assert res.exit_code == 2 and "does not exist" in res.output
    doc.write_text("a\n<!-- metrics:start -->\nSTALE-TABLE\n<!-- metrics:end -->\nb\n")
    res = CliRunner().invoke(main, ["metrics", "--write", str(doc)])
    assert res.exit_code == 0 and "STALE-TABLE" not in doc.read_text() and "`monitor_calls_total`" in doc.read_text()


def test_replay_without_rules_names_the_packs(tmp_path):
    """``monitor replay`` with a config that has no rules said 'rules.files is empty', though the
    README's way to name rules is ``rules.packs``: the fix names both, and ``--rules``."""
    from click.testing import CliRunner

    from monitor.cli import main

    cfg = tmp_path / "monitor.yaml"
    cfg.write_text("model: m\n")
    log = tmp_path / "events.ndjson"
    log.write_text('{"timestamp": 1700000000, "inputs": [1.0], "outputs": [0.4, 0.6]}\n')
    res = CliRunner().invoke(main, ["replay", str(log), "--config", str(cfg)])
    assert res.exit_code == 1 and "rules.packs" in res.output and "--rules FILE" in res.output and "Fix:" in res.output
    cfg.write_text("model: m\nrules: {packs: [core]}\n")
    res = CliRunner().invoke(main, ["replay", str(log), "--config", str(cfg)])
    assert res.exit_code == 0, res.output



class _Req:
    """A web framework's request object (as a pydantic model would be): not rows."""

    def __init__(self, instances: list[list[float]], request_id: str | None = None) -> None:
        self.instances, self.request_id = instances, request_id


def _handler(req: _Req) -> dict:
    return {"probabilities": [[0.3, 0.7] for _ in req.instances]}


def _fresh_monitor(model: str):
    import prometheus_client

    from monitor import Monitor

    return Monitor(model=model, config={"output": {"kind": "probabilities"}},
                   registry=prometheus_client.CollectorRegistry(), start_worker=False)


def test_an_unreadable_first_call_does_not_fix_the_learned_features():
    """A monitor without configured features learns them from the first event. A first call whose
    input was a request object (a decorated web handler) was read as one feature: that event was
    refused as wrong_type, and every later call with real rows of two features as wrong_shape,
    for the life of the process. The features are learnt from the first readable event."""
    mon = _fresh_monitor("first")
    try:
        predict = mon.watch(lambda X: [[0.3, 0.7]] * (len(X) if isinstance(X, list) else 1))
        predict(_Req([[1.0, 2.0]]))
        mon.flush()
        for _ in range(3):
            predict([[1.0, 2.0], [3.0, 4.0]])
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", ("wrong_type",)) == 1.0
        assert mon.store.value("monitor_rows_rejected", ("wrong_shape",)) is None
        assert mon.store.value("monitor_predictions") == 6.0
    finally:
        mon.close()


def test_a_handler_taking_a_request_object_names_its_rows_with_inputs(caplog):
    """A web handler decorated as it is (its parameter a request object, its answer a dict):
    ``watch`` read the request object as the rows, every row was refused as wrong_type, and the
    log's fix spoke of sending numeric rows; watch had ``outputs=`` but no way to say where the
    rows are but a parameter holding them as they are. ``inputs=`` takes a callable (or a
    parameter name) as the other extractors do, and the wrong_type log names it."""
    import logging

    plain_mon, mon = _fresh_monitor("plain"), _fresh_monitor("api")
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            assert plain_mon.watch(_handler)(_Req([[1.0, 2.0]])) == {"probabilities": [[0.3, 0.7]]}
            plain_mon.flush()
        assert plain_mon.store.value("monitor_rows_rejected", ("wrong_type",)) == 1.0
        assert any("inputs=lambda req" in r.getMessage() for r in caplog.records)
        named = mon.watch(inputs=lambda req: req.instances, outputs=lambda r: r["probabilities"],
                          request_id=lambda req: req.request_id)(_handler)
        broken = mon.watch(inputs=lambda req: req.rows)(_handler)
        for i in range(3):
            assert named(req=_Req([[1.0, 2.0], [3.0, 4.0]], f"r{i}"))["probabilities"][1] == [0.3, 0.7]
        assert broken(_Req([[1.0, 2.0]])) == {"probabilities": [[0.3, 0.7]]}  # answered unchanged
        mon.flush()
        assert mon.store.value("monitor_predictions") == 6.0
        assert mon.store.value("monitor_rows_rejected", ("wrong_type",)) is None
        assert mon.store.value("monitor_events_dropped", ("extractor_error",)) == 1.0
        mon.feedback(["r2/1"], [1])
        mon.flush()
        assert mon.store.value("monitor_feedback_labels", ("joined",)) == 1.0
        with pytest.raises(ValueError, match="input_arg= or inputs="):
            mon.watch(input_arg="req", inputs="req")(_handler)
        with pytest.raises(ValueError, match="inputs='rows' is not a parameter"):
            mon.watch(inputs="rows")(_handler)
        assert mon.watch(inputs="req")(_handler)(_Req([[1.0]])) == {"probabilities": [[0.3, 0.7]]}
    finally:
        plain_mon.close()
        mon.close()


def test_udp_forwarding_counts_every_datagram_the_absent_sidecar_refused():
    """Over UDP with the sidecar away (killed under gunicorn traffic), the kernel reports the
    closed port on the send after the one that hit it, and closing the socket then started the
    cycle again: every other datagram went nowhere uncounted (10 of 20 events counted, a 3 s
    outage at ~560 requests/s reported as 29 drops). On loopback the refusal is there as soon
    as the send returns: each one is counted."""
    import socket

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on it now
    fm = ForwardingMonitor("iris", f"udp://127.0.0.1:{port}", start=False)
    try:
        for _ in range(20):
            _one(fm)
        c = fm.counters()
        assert c.dropped == {"sidecar_unavailable": 20} and c.events_sent == 0
    finally:
        fm.close()


def test_labels_later_than_the_window_are_counted_as_late():
    """Labels that came two hours after their predictions (a labelling delay above the default
    1 h window) were counted as joined, and then no figure ever saw them: accuracy absent,
    labels_in_window 0, and nothing said why. They are counted as late (what the window would
    need says the metric's help), those within the window as joined."""
    from monitor import catalog

    assert _labels_two_hours_later({"output": {"kind": "probabilities"}, "window": "1h"}) == (300.0, 10.0, 10.0)
    assert "late: joined more than the longest window" in catalog.get("monitor_feedback_labels").help


def test_a_label_within_a_detectors_own_longer_window_is_joined_not_late():
    """The final review: "late" was measured against the model's window, while a detector reading
    labels may set a longer window of its own (calibration over 3 h under a 1-hour model window):
    a label 2 h late counts in that detector's figures, yet was reported late."""
    late, joined, in_window = _labels_two_hours_later({"output": {"kind": "probabilities"}, "window": "1h",
                                                       "detectors": [{"kind": "calibration", "window_s": 3 * 3600.0}]})
    assert late in (None, 0.0) and joined == 310.0 and in_window == 310.0


def _labels_two_hours_later(config: dict) -> tuple[float | None, float | None, float | None]:
    """300 predictions, then 10 more two hours later, then labels for all 310: the late and
    joined label counts and the labels in the window."""
    import prometheus_client

    from monitor import Monitor

    t = [1_700_000_000.0]
    mon = Monitor(model="late", config=config, registry=prometheus_client.CollectorRegistry(), start_worker=False,
                  clock=lambda: t[0])
    try:
        mon.observe([[1.0]] * 300, [[0.8, 0.2]] * 300, request_id=[f"r{i}" for i in range(300)])
        mon.flush()
        t[0] += 2 * 3600.0
        mon.observe([[1.0]] * 10, [[0.8, 0.2]] * 10, request_id=[f"s{i}" for i in range(10)])
        mon.flush()
        mon.feedback([f"r{i}" for i in range(300)] + [f"s{i}" for i in range(10)], [0] * 310)
        mon.flush()
        return (mon.store.value("monitor_feedback_labels", ("late",)), mon.store.value("monitor_feedback_labels", ("joined",)),
                mon.store.value("monitor_labels_in_window"))
    finally:
        mon.close()


def test_output_shape_refusals_say_what_shape_came(caplog):
    """A one-row call whose predict returned four rows (a feature vector the model read as four
    samples) was refused as output_shape, 'check output.kind and output.classes', without the
    shape: it is a rows mismatch, said as one. A regression model returning two columns, or a
    classifier returning a 3-D array, was refused with no word of the shape received either."""
    import logging

    import prometheus_client

    from monitor import Monitor

    def make(model: str, output: dict) -> Monitor:
        return Monitor(model=model, config={"output": output}, registry=prometheus_client.CollectorRegistry(),
                       start_worker=False)

    cls, reg = make("cls", {"kind": "probabilities"}), make("reg", {"kind": "regression"})
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            cls.watch(lambda x: [[0.2, 0.8]] * 4)([1.0, 2.0, 3.0, 4.0])
            cls.flush()
            cls.watch(lambda x: [[[0.2, 0.8]] * 3] * len(x))([[1.0, 2.0, 3.0, 4.0]] * 2)
            cls.flush()
            reg.watch(lambda x: [[1.0, 2.0]] * len(x))([[1.0], [2.0]])
            reg.flush()
        assert cls.store.value("monitor_rows_rejected", ("rows_mismatch",)) == 1.0
        assert cls.store.value("monitor_rows_rejected", ("output_shape",)) == 2.0
        assert reg.store.value("monitor_rows_rejected", ("output_shape",)) == 2.0
        said = "\n".join(r.getMessage() for r in caplog.records)
        assert "1 input rows but 4 outputs" in said
        assert "outputs of shape (3, 2) per row" in said and "output.samples_axis: true" in said
        assert "regression outputs of shape (2,) per row" in said
    finally:
        cls.close()
        reg.close()


def test_a_predict_returning_a_dict_is_told_to_pick_its_scores(caplog):
    """A handler returning ``{"probabilities": ...}`` (what a web route returns) had every row
    refused as non_numeric_output, whose only fix was ``output.kind: labels``: the log names the
    type received and ``outputs=``."""
    import logging

    mon = _fresh_monitor("dict")
    try:
        with caplog.at_level(logging.WARNING, logger="monitor"):
            mon.watch(inputs=lambda req: req.instances)(_handler)(_Req([[1.0, 2.0]]))
            mon.flush()
        assert mon.store.value("monitor_rows_rejected", ("non_numeric_output",)) == 1.0
        said = "\n".join(r.getMessage() for r in caplog.records)
        assert "got dict" in said and "outputs=lambda result" in said
    finally:
        mon.close()


def test_reference_build_says_what_the_profile_lacks(tmp_path):
    """``monitor reference build data.csv -o ref.npz`` without --output-columns wrote a profile
    whose every column (the probabilities and the labels too) was an input feature, and said only
    '8 numeric features': the agent then left out every output detector without a word, and
    refused every live row of 4 features as wrong_shape. The build says what is missing, with
    the option that fixes it."""
    from click.testing import CliRunner

    from monitor.cli import main

    rows = ["a,b,c,d,p0,p1,label"] + [f"{i % 7},{i % 5},{i % 3},{i % 11},0.{i % 9 + 1},0.{9 - i % 9},{i % 2}"
                                       for i in range(120)]
    data = tmp_path / "ref.csv"
    data.write_text("\n".join(rows) + "\n")

    def build(*opts: str) -> str:
        res = CliRunner().invoke(main, ["reference", "build", str(data), "-o", str(tmp_path / "r.npz"), "--quiet", *opts])
        assert res.exit_code == 0, res.output
        return res.output

    said = build()
    assert "no --output-columns" in said and "Fix: name the columns" in said
    said = build("--output-columns", "p0,p1")
    assert "no --output-columns" not in said and "no --label-column" in said and "Fix: --label-column NAME" in said
    said = build("--output-columns", "p0,p1", "--label-column", "label")
    assert "warning" not in said


def test_a_worker_says_when_its_sidecar_is_away_and_when_it_is_back(tmp_path, caplog):
    """MONITOR_FORWARD naming another socket than the sidecar's (or a sidecar not started) had
    every event dropped in every worker with no line in any log: the sidecar never hears of the
    workers, and the drops are counted only in datagrams that never arrive. The worker logs the
    first send that finds no sidecar, naming the target and the fix, and the first that reaches
    one again, with what was dropped meanwhile; nothing in between."""
    import logging

    sock = str(tmp_path / "fwd.sock")
    fm = ForwardingMonitor("iris", f"unix://{sock}", start=False)
    try:
        with caplog.at_level(logging.INFO, logger="monitor"):
            _away(fm, 3)
            _away(fm, 2)
            s = start_sidecar({**IRIS, "server": {"forward": {"unix": sock}}}, tmp_path)
            try:
                _one(fm)
                _one(fm)
            finally:
                s.close()
        said = [r for r in caplog.records if r.name == "monitor.forwarding"]
        assert len(said) == 2, [r.getMessage() for r in said]
        away, back = said
        assert away.levelno == logging.WARNING and sock in away.getMessage() and "server.forward.unix" in away.getMessage()
        assert "sidecar_unavailable" in away.getMessage()
        assert back.levelno == logging.INFO and "5 event(s) dropped" in back.getMessage()
    finally:
        fm.close()


def test_replay_reads_a_gzip_log_and_fails_when_no_line_is_an_event(tmp_path):
    """A recorded log as log rotation leaves it (gzip) was replayed as 0 events with every line
    refused as not UTF-8, and exit 0, as if the backtest had found no alert: it is read, and a
    log of which no line is an event exits 1 with the fix."""
    import gzip

    from click.testing import CliRunner

    from monitor.cli import main
    from tests.conftest import REPO_ROOT

    cfg = str(REPO_ROOT / "examples" / "replay" / "monitor.yaml")
    plain = (REPO_ROOT / "examples" / "replay" / "events.ndjson").read_bytes()
    packed = tmp_path / "events.ndjson.gz"
    packed.write_bytes(gzip.compress(plain))
    res = CliRunner().invoke(main, ["replay", str(packed), "--config", cfg])
    assert res.exit_code == 0, res.output
    assert "replayed 3,600 events" in res.output and "ModelErrorRateHigh: fired 1 time(s)" in res.output
    junk = tmp_path / "junk.log"
    junk.write_bytes(b"\xff\xfe not an event\n{not json\n")
    res = CliRunner().invoke(main, ["replay", str(junk), "--config", cfg])
    assert res.exit_code == 1 and "no line could be read as an event" in res.output and "Fix:" in res.output
    # an empty log backtests nothing: exit 1 (the final review), not "no alert fired" with 0
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    res = CliRunner().invoke(main, ["replay", str(empty), "--config", cfg])
    assert res.exit_code == 1 and "holds no event" in res.output and "Fix:" in res.output
    # a compressed log cut short (a rotation in progress): named, with the fix, not a bare "Aborted!"
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(gzip.compress(plain)[: len(gzip.compress(plain)) // 2])
    res = CliRunner().invoke(main, ["replay", str(cut), "--config", cfg])
    assert res.exit_code == 1 and "cut short or damaged" in res.output and "zcat" in res.output, res.output


def test_a_worker_says_once_why_an_event_cannot_be_forwarded(tmp_path, caplog):
    """In forwarding mode a handler decorated without inputs= (its argument a request object)
    had every event dropped as unserializable, counted only in the sidecar's metrics, with no
    word of why or of the fix in either log."""
    import logging

    fm = ForwardingMonitor("iris", f"unix://{tmp_path / 'fwd.sock'}", start=False)
    try:
        handler = fm.watch(_handler)
        with caplog.at_level(logging.WARNING, logger="monitor"):
            for _ in range(3):
                handler(_Req([[1.0, 2.0]]))
            fm.flush()
        assert fm.counters().dropped.get("unserializable") == 3
        said = [r.getMessage() for r in caplog.records if "unserializable" in r.getMessage()]
        assert len(said) == 1 and "_Req" in said[0] and "inputs=" in said[0]
    finally:
        fm.close()
