"""The rules' sample history survives a restart: a rule reading back over time (``offset``, a
range) reads the samples from before it, as it would in Prometheus, whose TSDB outlives a
restart of the process it scrapes. Before, the agent's series store started empty, and a rule
reading an hour back was silent for an hour after every restart."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor, checkpoint
from monitor.config import MonitorConfig, RulesConfig
from monitor.core import STATE_VERSION
from monitor.promql.engine import Engine
from monitor.promql.storage import STALE_NAN, SeriesStore

RULES = """
groups:
  - name: history
    rules:
      - alert: SeenHalfAnHourAgo
        expr: monitor_predictions_total offset 30m > 0
      - record: predictions:increase1h
        expr: increase(monitor_predictions_total[1h])
"""

T0 = 1_700_000_000.0


def _monitor(tmp_path) -> Monitor:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=15.0, log_alerts=False))
    return Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)


def _feed(mon: Monitor, start: float, seconds: int) -> None:
    for i in range(0, seconds, 5):
        mon.observe(np.ones((1, 2)), np.array([[0.5, 0.5]]), timestamp=start + i)
    mon.flush()


def _firing(mon: Monitor) -> set[str]:
    return {a.name for a in mon.alerts() if str(getattr(a.state, "value", a.state)).lower() == "firing"}


@pytest.mark.parametrize("final", [True, False])
def test_a_rule_reading_back_over_a_restart_reads_the_samples_from_before(tmp_path, final: bool) -> None:
    path = tmp_path / "m.ckpt"
    a = _monitor(tmp_path)
    _feed(a, T0, 2400)  # 40 minutes: the offset reaches back into them
    assert "SeenHalfAnHourAgo" in _firing(a)
    checkpoint.save(path, a.state_dict(final=final), model="m", state_version=STATE_VERSION)
    a.close()

    b = _monitor(tmp_path)
    c = _monitor(tmp_path)  # the same restart without the history: what it was before
    try:
        assert checkpoint.restore(b, path) == (True, None)
        state, _ = checkpoint.load(path, model="m")
        state["series"] = None
        c.load_state_dict(state)
        _feed(b, T0 + 2400, 30)
        _feed(c, T0 + 2400, 30)
        # the firing alert is restored either way; without the history its expression reads
        # nothing, and the first evaluation after the restart resolved it
        assert "SeenHalfAnHourAgo" in _firing(b) and not _firing(c)
        # the increase over the hour counts the predictions before the restart too: 480 of them,
        # and 6 since (after a crash the counter restarts at zero and increase() adds across the reset)
        query = Engine().compile("increase(monitor_predictions_total[1h])")
        t = T0 + 2400 + 25
        got, without = query.instant(b._series_store, t), query.instant(c._series_store, t)
        assert got and without
        assert got[0].value > 400 > 10 > without[0].value
    finally:
        b.close()
        c.close()


def _store(series: int, stamps: int) -> SeriesStore:
    store = SeriesStore(retention_s=3600.0)
    for j in range(stamps):
        store.append_scrape(T0 + 15 * j, [({"__name__": "x", "i": str(i)}, float(i * 100 + j)) for i in range(series)
                                          if not (i == 2 and j == stamps - 1)])  # series 2 vanished last: stale
    return store


def test_the_series_store_round_trips_its_samples_stale_markers_and_sources() -> None:
    a = _store(5, 40)
    b = SeriesStore(retention_s=3600.0)
    b.load_state_dict(a.state_dict())
    assert b.series_labels() == a.series_labels() and b.stats() == a.stats()
    for store in (a, b):
        ts, vals, state = store.window(np.arange(5), 0, int((T0 + 15 * 40) * 1000))
        assert ts.size == 40 and state[2, -1] == 2 and np.isnan(vals[2, -1])
    ta, va, sa = a.window(np.arange(5), 0, 2**62)
    tb, vb, sb = b.window(np.arange(5), 0, 2**62)
    assert np.array_equal(ta, tb) and np.array_equal(sa, sb) and np.array_equal(va.view(np.uint64), vb.view(np.uint64))
    assert vb.view(np.uint64)[2, -1] == np.float64(STALE_NAN).view(np.uint64)
    # the source's last snapshot came along: a series missing from the next one is marked stale
    for store in (a, b):
        store.append_scrape(T0 + 15 * 40, [({"__name__": "x", "i": str(i)}, 1.0) for i in (0, 1, 2, 3)])
    assert np.array_equal(a.window(np.arange(5), 0, 2**62)[2], b.window(np.arange(5), 0, 2**62)[2])
    assert b.window(np.arange(5), 0, 2**62)[2][4, -1] == 2


def test_a_large_store_checkpoints_its_newest_history_within_the_bound() -> None:
    a = _store(10, 50)
    state = a.state_dict(max_cells=10 * 20)
    b = SeriesStore(retention_s=3600.0)
    b.load_state_dict(state)
    ts, _, _ = b.window(np.arange(10), 0, 2**62)
    assert ts.size == 20 and ts[-1] == int((T0 + 15 * 49) * 1000) and ts[0] == int((T0 + 15 * 30) * 1000)
    # and the restoring store's own bounds apply
    small = SeriesStore(retention_s=3600.0, max_series=4)
    small.load_state_dict(a.state_dict())
    assert small.num_series == 4 and small.stats().dropped_series_limit == 6 * 50  # series 4-9, 50 samples each
    # a store with room for fewer cells keeps the newest timestamps and counts the rest (the
    # review: it refused the state after clearing itself)
    wide = _store(100, 100)
    narrow = SeriesStore(retention_s=3600.0, max_cells=10_000)
    narrow.load_state_dict(wide.state_dict())
    ts, vals, _ = narrow.window(np.arange(100), 0, 2**62)
    assert ts.size == 99 and ts[-1] == int((T0 + 15 * 99) * 1000) and narrow.num_series == 100
    assert narrow.stats().dropped_capacity == 100 and narrow.stats().samples == 100 * 99
    narrow.append_scrape(T0 + 15 * 100, [({"__name__": "x", "i": "0"}, 1.0)])  # and it goes on as any store
    assert narrow.window(np.arange(100), 0, 2**62)[0][-1] == int((T0 + 15 * 100) * 1000)


def _damaged(st: dict) -> None:
    cells = st["series"]["state"].astype(np.int64)
    cells[0, 0] = -1  # it was: the whole checkpoint set aside, counters and all
    st["series"]["state"] = cells


@pytest.mark.parametrize("change", [_damaged, lambda st: st.pop("series")], ids=["malformed", "absent"])
def test_a_checkpoint_without_a_readable_history_restores_everything_else(tmp_path, change) -> None:
    """A malformed history (the review's), or none (checkpoints written before it was added)."""
    path = tmp_path / "m.ckpt"
    a = _monitor(tmp_path)
    _feed(a, T0, 600)
    state = a.state_dict(final=True)
    change(state)
    checkpoint.save(path, state, model="m", state_version=STATE_VERSION)
    a.close()
    b = _monitor(tmp_path)
    try:
        assert checkpoint.restore(b, path) == (True, None)
        assert b._series_store.num_series == 0 and b.store.value("monitor_predictions") == 120
    finally:
        b.close()


def test_recording_rules_moved_by_a_reload_are_not_marked_stale_after_a_restart(tmp_path) -> None:
    """The review's: rules' series sources are named by position, which a reload moves and a
    restart renames; restored, the moved rule's first output after the restart was marked stale
    at once (absent from queries until its next evaluation). Only the scrape's last snapshot is
    restored now."""
    rules = tmp_path / "rules.yml"
    head = "groups:\n  - name: g\n    rules:\n"
    one = "      - record: {name}:preds\n        expr: monitor_predictions_total * {k}\n"
    ab, ba = one.format(name="a", k=1) + one.format(name="b", k=2), one.format(name="b", k=2) + one.format(name="a", k=1)
    rules.write_text(head + ab)
    cfg = MonitorConfig(model="m", rules=RulesConfig(files=(str(rules),), interval_s=15.0, log_alerts=False))
    a = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    _feed(a, T0, 300)
    rules.write_text(head + ba)  # the same rules, their order swapped
    a.reload_rules()
    _feed(a, T0 + 300, 300)
    path = tmp_path / "m.ckpt"
    checkpoint.save(path, a.state_dict(), model="m", state_version=STATE_VERSION)
    a.close()
    b = Monitor(config=cfg, registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        assert checkpoint.restore(b, path) == (True, None)
        _feed(b, T0 + 600, 20)
        query = Engine().compile("b:preds")
        for t in (T0 + 600, T0 + 605, T0 + 610, T0 + 615):  # around the first evaluations after the restart
            assert query.instant(b._series_store, t), t - T0
    finally:
        b.close()


DAMAGES = {
    "version": lambda st: st.update(version=2),
    "shape": lambda st: st.update(values=st["values"][:, :-1]),
    "order": lambda st: st.update(ts_ms=st["ts_ms"][::-1].copy()),
    "source": lambda st: st["sources"].update(scrape=np.array([7])),
    "cells": lambda st: st.update(state=st["state"] + 5),
    # the review's: errors other than ValueError, and one raised after the store was cleared
    "negative cell": lambda st: st.update(state=np.where(np.arange(st["state"].size).reshape(st["state"].shape) == 0, -1,
                                                        st["state"].astype(np.int64))),
    "huge time": lambda st: st.update(ts_ms=[1e300] * st["ts_ms"].size),
    "2-D times": lambda st: st.update(ts_ms=st["ts_ms"][:, None]),
    "huge source id": lambda st: st["sources"].update(scrape=[10**30]),
    "labels": lambda st: st.update(labels=[1, 2, 3]),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_malformed_history_is_refused_and_leaves_the_store_as_it_was(damage: str) -> None:
    state = _store(3, 5).state_dict()
    DAMAGES[damage](state)
    b = _store(2, 3)
    before = b.stats()
    with pytest.raises(ValueError, match="series store state"):
        b.load_state_dict(state)
    assert b.stats() == before
