"""Defects found by a walkthrough of the per-segment figures (issue 3 item 4) in session 10: a
platform engineer running ``monitor serve`` with classifiers (probabilities, logits, an
ensemble) and regression models whose events carry a ``segment``, turning on the options as the
README says and reading ``/metrics``. Each test fails without its fix."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from monitor import Monitor, Reference

T0 = 1_700_000_000.0


def _monitor(config: dict, **kwargs: object) -> Monitor:
    return Monitor(model="wt10", config=config, registry=CollectorRegistry(), live=False, start_worker=False, **kwargs)


def _classifier_reference(rng: np.random.Generator, n: int = 600) -> Reference:
    p = rng.dirichlet([2, 2, 2], n)
    y = np.array([rng.choice(3, p=row) for row in p])
    return Reference.from_arrays(rng.normal(size=(n, 3)), numeric_names=["a", "b", "c"], scores=p, labels=y)


def _segment_series(text: str, name: str) -> list[tuple[str, ...]]:
    """Label sets of ``name``'s samples (to find the same series written twice)."""
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name:
                out.append(tuple(sorted(s.labels.items())))
    return out


def test_intake_fast_path_cuts_segment_and_client_as_the_event_parser_does() -> None:
    """README: ``client`` and ``segment`` of the event format are cut to 200 characters. The
    intake's fast path (every ordinary prediction event of ``POST /v1/events``) kept them whole:
    a 500-character segment became a 500-character ``segment`` label on every per-segment
    series (seen on a live sidecar's /metrics), while the general parser cut it."""
    from monitor.events import MAX_LABEL_CHARS, parse_event
    from monitor.server.intake import parse_fast

    obj = {"inputs": [1.0], "outputs": [0.2, 0.8], "segment": "s" * 500, "client": "c" * 300, "timestamp": 5.0}
    fast = parse_fast(obj, T0)
    assert fast is not None  # the fast path is the one taken
    general = parse_event(obj, T0)
    assert fast == (general.model, general.event)
    assert len(fast[1][7]) == MAX_LABEL_CHARS and len(fast[1][5]) == MAX_LABEL_CHARS
