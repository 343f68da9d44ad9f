"""Bad input, follow-ups of session 37's reviews (helper s37j): each test failed before its fix.
The standard: a clear error naming the field and the fix, counted when refused, never a crash of
the agent, a figure poisoned, a warning on the user's stderr or a value silently read as another."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from monitor.core import Monitor
from monitor.detectors.probing import ProbingDetector
from monitor.forwarding import ForwardingMonitor
from tests import probing_streams as S
from tests.sidecar_support import http, start_sidecar, wait_until
from tests.test_clients_api_lookup_s27e import CLASSES, FEATURES, MONITORS, _factory
from tests.test_fork import _in_fork

__all__: list[str] = []

T0 = 1_700_000_000.0


def _queries_by_client(mon: Monitor) -> dict[str, int]:
    """Raw client id -> queries the probing detector saw from it."""
    det = next(d for d in mon.detectors if isinstance(d, ProbingDetector))
    return {key: int(det._queries[slot]) for key, slot in det._clients._lru.items()}


def _segments(mon: Monitor) -> set[str]:
    return {line.split('segment="')[1].split('"')[0] for line in mon.metrics_text().splitlines() if 'segment="' in line}


def test_an_empty_client_is_the_anonymous_client_in_code_and_over_http(tmp_path: Path) -> None:
    """A client given as empty text ("": a missing header or CSV field, an unset API key) was a
    client named "", tracked by the probing detector beside ``anonymous`` (the client of calls
    without one): every caller without a key was one client twice over, its queries split between
    the two (measured here: 6 queries under "" and 1 under anonymous). It is
    now no client, as None is, in code (one value or a per-row list) and over HTTP, where empty
    text already formed no segment (``unset``). Text of spaces is a client (and segment) of that
    name, as it is a request id: only empty text stands for none."""
    models = [{"model": "m", "features": FEATURES, "output": CLASSES,
               "detectors": [{"kind": "probing", "client_id_salt": "s"}, {"kind": "segments"}]}]
    s = start_sidecar({"models": models}, tmp_path, factory=_factory)
    try:
        mon = MONITORS["m"]
        x = S.natural(np.random.default_rng(0), 9)
        mon.observe(x[:2], S.scores(x[:2]), client="", segment="", timestamp=T0)
        mon.observe(x[2:4], S.scores(x[2:4]), client=["", " "], segment=["", " "], timestamp=T0 + 1)
        mon.observe(x[4:5], S.scores(x[4:5]), client=b"", timestamp=T0 + 2)
        mon.observe(x[5:6], S.scores(x[5:6]), timestamp=T0 + 3)
        mon.observe(x[6:7], S.scores(x[6:7]), client="k1", segment="eu", timestamp=T0 + 4)
        for i, row in enumerate(x[7:9].tolist()):
            r = http("POST", s.url + "/v1/events", {"inputs": [row], "outputs": S.scores(np.array([row])).tolist(),
                                                    "client": "", "segment": "", "timestamp": T0 + 5 + i})
            assert r.status == 202, r.body
        mon.flush()
        assert _queries_by_client(mon) == {"anonymous": 7, " ": 1, "k1": 1}
        assert _segments(mon) == {"unset", " ", "eu"}
        assert mon.store.value("monitor_detector_errors", labels=("probing",)) == 0.0
        det = next(d for d in mon.detectors if isinstance(d, ProbingDetector))
        assert det.client_key("") == det.client_key(None)  # in-process lookup: the id its rows are tracked by
    finally:
        s.close()


def _forwarding_mistakes(fm: ForwardingMonitor) -> None:
    """Three caller mistakes a ForwardingMonitor says once: a label for an id that is no id, a
    prediction's id the sidecar would refuse, a timestamp that is no time."""
    fm.feedback([None, "r1"], [0, 1])
    fm.observe([[1.0, 2.0]], [[0.2, 0.8]], request_id="x" * 2_000)
    fm.observe([[1.0, 2.0]], [[0.2, 0.8]], timestamp="soon")
    fm.flush()


#: The start of each of those three log lines.
_SAID = ("a label came for request id None", "a prediction came with a request id of 2,000", "observe(timestamp='soon')")


def _said(lines: list[str]) -> list[bool]:
    return [any(start in line for line in lines) for start in _SAID]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_forwarding_worker_says_its_own_mistakes_once(tmp_path: Path) -> None:
    """ForwardingMonitor says some mistakes of its caller once per process (feedback for an id that
    is no id, a4265e2; a prediction's id left out, 8f1f958; a timestamp that is no time), but its
    flags were inherited across os.fork: a gunicorn --preload worker forked after the parent had said
    one never said it, its mistakes counted at the sidecar with no line in its own log (measured with
    a real fork: the parent said all three, the child none). The child now starts with nothing said,
    as it already did for its drops (its socket, queue and sender thread are its own since before)."""
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("monitor").addHandler(handler)
    fm = ForwardingMonitor("iris", f"unix://{tmp_path / 'none.sock'}", start=False)

    def in_child() -> dict:
        lines.clear()
        _forwarding_mistakes(fm)
        wait_until(lambda: all(_said(lines)))  # the sender thread, started at the first event, may say the id
        return {"said": _said(lines)}

    try:
        _forwarding_mistakes(fm)
        assert _said(lines) == [True, True, True], lines
        assert _in_fork(in_child) == {"said": [True, True, True]}
        lines.clear()
        _forwarding_mistakes(fm)  # the parent has said them: once per process
        assert _said(lines) == [False, False, False], lines
    finally:
        fm.close()
        logging.getLogger("monitor").removeHandler(handler)
