"""``monitor serve`` freezes the loaded heap out of the garbage collector's reach, once loaded.

Full collections of a loaded sidecar's heap stalled proxied requests (the p99 of the proxy);
``freeze_heap_when_ready`` waits for the models to load, collects once, then ``gc.freeze()``.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from monitor.config import parse_config
from monitor.server.app import build_sidecar
from monitor.server.lifecycle import freeze_heap_when_ready

RAW = {"model": "iris", "features": ["a", "b", "c", "d"],
       "output": {"kind": "probabilities", "classes": ["setosa", "versicolor", "virginica"]}}


def _sidecar(folder: Path):  # type: ignore[no-untyped-def]
    from tests.sidecar_support import quiet_factory

    agent = parse_config(RAW, str(folder / "monitor.yaml"), folder)
    return build_sidecar(agent, monitor_factory=quiet_factory(start_worker=False))


def test_freezes_only_after_the_models_are_loaded(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path)
    gc.unfreeze()

    async def scenario() -> tuple[int, bool]:
        task = asyncio.create_task(freeze_heap_when_ready(sidecar, poll_s=0.005))
        for _ in range(5):
            await asyncio.sleep(0.005)
        frozen_while_loading = gc.get_freeze_count()
        assert not task.done(), "froze (or gave up) before the models were loaded"
        sidecar.load()
        return frozen_while_loading, await task

    try:
        frozen_while_loading, froze = asyncio.run(scenario())
        assert frozen_while_loading == 0
        assert froze is True
        assert sidecar.ready
        # the monitor built by load() is among the frozen objects: the collector no longer tracks it
        frozen = gc.get_freeze_count()
        assert frozen > 0
        mon = sidecar.resolve("iris")
        assert all(o is not mon for o in gc.get_objects())
    finally:
        gc.unfreeze()
        for mon in sidecar.all_monitors():
            mon.close()


def test_gives_up_without_freezing_when_loading_failed(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path)
    sidecar.load_error = "reference: file not found"
    gc.unfreeze()
    try:
        assert asyncio.run(freeze_heap_when_ready(sidecar, poll_s=0.005)) is False
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
