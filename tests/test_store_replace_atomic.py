"""A bounded top-k or largest-gap family is replaced under one lock: a reader (a scrape's snapshot,
from another thread) sees the old series or the new ones, never the family emptied between a
clear and the sets that follow it (a missed series restarts an alert's ``for:``)."""

from __future__ import annotations

import threading

from monitor.store import MetricStore

FAMILY = "monitor_probing_client_evidence_queries"


def test_replace_swaps_the_series_at_once() -> None:
    store = MetricStore("m")
    store.replace(FAMILY, [(("a", "ood"), 5.0), (("b", "ood"), 7.0)])
    store.replace(FAMILY, [(("c", "near_duplicates"), 9.0)])
    assert store.value(FAMILY, ("c", "near_duplicates")) == 9.0
    assert store.value(FAMILY, ("a", "ood")) is None and store.value(FAMILY, ("b", "ood")) is None
    store.replace(FAMILY, [])
    assert store.value(FAMILY, ("c", "near_duplicates")) is None


def test_a_concurrent_reader_never_sees_the_family_empty() -> None:
    """One thread replaces 50 clients' series 3,000 times (a different set each time) while
    another snapshots the store: every snapshot holds 50 series of the family."""
    store = MetricStore("m")
    store.replace(FAMILY, [((f"c{i}", "ood"), 1.0) for i in range(50)])
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            for fam in store.snapshot():
                if fam.spec.name == FAMILY:
                    seen.append(len(fam.series))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(3000):
            store.replace(FAMILY, [((f"c{round_ % 7}-{i}", "ood"), float(round_)) for i in range(50)])
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {50}, sorted(set(seen))[:5]
