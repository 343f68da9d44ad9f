"""Start-up, periodic work and graceful shutdown of the sidecar.

Start: bind the listeners first (so ``/healthz`` answers), then build the monitors and restore
their checkpoints in a thread; ``/readyz`` turns ready when that is done. A model whose
``reference.path`` is gone but whose checkpoint holds the reference starts on that one
(:func:`build_monitor`).

Periodic: every second, fold request durations and give up on CloudEvents halves that waited too
long; every ``checkpoint.interval`` of a model, write its checkpoint (in a thread: the event loop
never waits on the disk).

Once loaded: one full garbage collection, then ``gc.freeze()`` (see :func:`freeze_heap_when_ready`).

SIGTERM/SIGINT: stop intake (new events are answered 503 so that a load balancer retries
elsewhere), stop the listeners, drain every queue, run a final rule evaluation, write the final
checkpoints, close the monitors. A second signal exits at once.

One deadline for all of it: ``server.shutdown_timeout`` (default 20 s) counts from the signal.
Requests in flight, on every listener (the sidecar's port and a separate ``server.proxy.port``)
and on both proxy engines, are waited for together until :func:`request_budget` of it has
passed (the timeout less a reserve of a quarter of it, at most 5 s); then they are cut (their
clients see the connection close without an answer, or a streamed body end early; each is
counted with code 499 in ``monitor_http_request_duration_seconds``, and the log says how many)
and the reserve is left for the drain, the final rule evaluation and the final checkpoint, so
that these run before a pod's grace period (Kubernetes: 30 s by default) ends in SIGKILL. The
drain and the checkpoint themselves are never cut (that would lose accepted events): a queue
too long to drain in the reserve makes the shutdown overrun it. Closing the monitors (the last
notifications) after the checkpoint waits only for what is left of the deadline. Before
this, the lean proxy's listener waited the whole timeout and aiohttp's cleanup waited again
(up to twice more per connection, and once more per listener), so the final checkpoint could
come after the SIGKILL and events accepted with 202 were lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.server import keys as K

if TYPE_CHECKING:
    from aiohttp import web

    from monitor.config import MonitorConfig
    from monitor.core import Monitor
    from monitor.server.sidecar import Sidecar

__all__ = ["Checkpointer", "ReadyFileError", "build_monitor", "freeze_heap_when_ready", "housekeeping", "request_budget",
           "run", "shutdown", "stop_serving"]

log = logging.getLogger("monitor.server")

#: Part of ``server.shutdown_timeout`` kept for the drain, the final rule evaluation and the final
#: checkpoint (at most :data:`_RESERVE_MAX_S`); requests in flight get the rest.
_RESERVE_FRACTION = 0.25
_RESERVE_MAX_S = 5.0
#: What aiohttp's own connection shutdown waits for a handler (and then for its cancellation) once
#: :func:`stop_serving` has waited for the requests: the deadline has already passed by then.
_CUT_S = 0.05


class ReadyFileError(OSError):
    """``--ready-file`` could not be written (its folder missing, not writable): told apart from a
    port that cannot be bound, which ``monitor serve`` reports as "cannot listen"."""


def build_monitor(factory: Callable[["MonitorConfig"], "Monitor"], cfg: "MonitorConfig",
                  checkpoint_path: Path | None) -> "Monitor":
    """Build one model's monitor with ``factory``. When that fails because ``reference.path`` is
    gone and the model's checkpoint carries the reference's arrays, build it without reference
    and without detectors instead, with ``cfg`` put back as its config: restoring the checkpoint
    (:func:`monitor.checkpoint.restore`, next) then adopts the checkpoint's reference and builds
    the configured detectors on it, so the model keeps running on the reference it was
    calibrated on rather than never becoming ready. Any other failure is raised as before."""
    try:
        return factory(cfg)
    except Exception:
        ref_path = cfg.reference.path
        if ref_path is None or Path(ref_path).exists() or checkpoint_path is None or not _carries_reference(checkpoint_path):
            raise
    log.warning("%s: the reference %s is gone; starting on the reference stored in the checkpoint %s",
                cfg.model, ref_path, checkpoint_path)
    bare = dataclasses.replace(cfg, reference=dataclasses.replace(cfg.reference, path=None), detectors=())
    mon = factory(bare)
    mon.config = cfg  # the configured detectors are built when the checkpoint's reference is adopted
    return mon


def _carries_reference(path: Path) -> bool:
    from monitor import checkpoint

    try:
        return bool(checkpoint.read_manifest(path).get("reference_stored"))
    except checkpoint.CheckpointError:
        return False


class Checkpointer:
    """Writes each model's checkpoint every ``checkpoint.interval`` seconds and on demand."""

    def __init__(self, sidecar: "Sidecar") -> None:
        self.sidecar = sidecar
        self.intervals = {cfg.model: cfg.checkpoint.interval_s for cfg in sidecar.agent.models
                          if cfg.model in sidecar.checkpoint_paths}
        self._last: dict[str, float] = {}
        # one save at a time: shutdown cancels the periodic task, but a save already running in
        # its executor thread goes on, and must not finish after (and over) the final checkpoint
        self._saving = threading.Lock()
        self._final = False

    def save(self, model: str, *, final: bool = False) -> bool:
        """Write one model's checkpoint now (blocking; call from a thread). Never raises.
        Once the final checkpoints are under way (``final``), other saves are skipped."""
        with self._saving:
            if self._final and not final:
                return False
            return self._save(model, final)

    def _save(self, model: str, final: bool) -> bool:
        from monitor import checkpoint

        sidecar = self.sidecar
        mon = sidecar.monitors.get(model)
        path = sidecar.checkpoint_paths.get(model)
        if mon is None or path is None:
            return False
        try:
            # process what is queued first: every event accepted before the checkpoint is in it, so a
            # kill -9 loses at most what arrived after (the queue itself is not checkpointed)
            mon.flush()
            info = mon.save_checkpoint(path, final=final)
        except checkpoint.CheckpointError as err:
            log.error("checkpoint of %s failed (%s): %s", model, err.reason, err)
            sidecar.count_checkpoint_failure(mon, "save", err.reason)
            return False
        except Exception as err:  # noqa: BLE001 - a failing state_dict must not kill the sidecar
            log.exception("checkpoint of %s failed (unexpected: %s)", model, type(err).__name__)
            sidecar.count_checkpoint_failure(mon, "save", "unexpected")
            return False
        finally:
            # the next periodic attempt one interval later, failed or not: a failing save (a full or
            # read-only volume) was retried, logged and counted at every wake-up, four times an interval
            self._last[model] = time.monotonic()
        mon.store.set("monitor_checkpoint_last_success_timestamp_seconds", info.created)
        mon.store.set("monitor_checkpoint_size_bytes", info.size_bytes)
        return True

    def save_all(self, *, final: bool = False) -> dict[str, bool]:
        """Every model's checkpoint; ``final`` (at shutdown) after any save in progress, and no
        periodic save after it."""
        if final:
            self._final = True
        return {model: self.save(model, final=final) for model in self.intervals}

    async def run(self) -> None:
        """Periodic checkpoints until cancelled."""
        if not self.intervals:
            return
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        step = max(0.05, min(self.intervals.values()) / 4)
        while True:
            await asyncio.sleep(step)
            if not self.sidecar.ready:
                continue
            now = time.monotonic()
            for model, interval in self.intervals.items():
                if now - self._last.get(model, start) >= interval:
                    await loop.run_in_executor(None, self.save, model)


async def freeze_heap_when_ready(sidecar: "Sidecar", poll_s: float = 0.05) -> bool:
    """Once the models are loaded, collect once and move every surviving object to the
    permanent generation (``gc.freeze()``). Returns whether it froze (False if loading failed).

    Why: a loaded sidecar holds some 50,000 long-lived container objects (modules, configs,
    detectors, references) that every generation-2 collection would traverse again: about
    10 ms per full collection on an idle core of the benchmark machine, 20-40 ms under load,
    all of it holding the GIL, so each one stalled every proxied request in flight. Frozen
    objects are skipped by the collector; objects made afterwards are collected as usual.
    Process-wide, hence called by :func:`run` (the ``monitor serve`` process), never by the
    library code that tests embed.
    """
    while not sidecar.ready:
        if sidecar.load_error is not None or sidecar.shut_down:
            return False
        await asyncio.sleep(poll_s)
    gc.collect()  # garbage left by loading is freed, not frozen
    gc.freeze()
    log.debug("froze %d long-lived objects out of the collector's reach", gc.get_freeze_count())
    return True


async def housekeeping(app: "web.Application") -> None:
    """Once a second: fold buffered request durations into the histogram, expire CloudEvents
    and forwarding workers gone quiet."""
    sidecar: Sidecar = app[K.SIDECAR]
    while True:
        await asyncio.sleep(1.0)
        try:
            sidecar.fold()
            intake = app.get(K.CLOUDEVENTS)
            if intake is not None:
                intake.sweep()
            receiver = app.get(K.FORWARD)
            if receiver is not None:
                receiver.sweep()
        except Exception:  # noqa: BLE001
            log.exception("housekeeping failed")


async def shutdown(app: "web.Application") -> None:
    """Stop intake, drain, final rule evaluation, final checkpoint, close. Idempotent."""
    sidecar: Sidecar = app[K.SIDECAR]
    if sidecar.shut_down:
        return
    sidecar.shut_down = True
    receiver = app.get(K.FORWARD)
    if receiver is not None:
        receiver.close()  # processes what the workers sent before it closed: while events are accepted
    sidecar.accepting = False
    intake = app.get(K.CLOUDEVENTS)
    if intake is not None:
        intake.close()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _drain_and_checkpoint, app)


def _drain_and_checkpoint(app: "web.Application") -> None:
    sidecar: Sidecar = app[K.SIDECAR]
    checkpointer: Checkpointer | None = app.get(K.CHECKPOINTER)
    now = time.time()
    for mon in sidecar.all_monitors():
        try:
            mon.flush()
            if mon.rules is not None:
                mon.evaluate_rules(now)
        except Exception:  # noqa: BLE001 - shut down the others anyway
            log.exception("draining %s failed", mon.model)
    if checkpointer is not None and sidecar.bind_failed:
        log.warning("no final checkpoint: the sidecar's port could not be bound, so it served nothing "
                    "(the previous checkpoints stay as they were)")
    elif checkpointer is not None and sidecar.ready:
        saved = checkpointer.save_all(final=True)
        # said in the log: after a rollout, `kubectl logs --previous` is the only place that tells
        # whether the final checkpoint came before the pod's SIGKILL (nothing said so before)
        failed = sorted(m for m, ok in saved.items() if not ok)
        if saved:
            (log.error if failed else log.info)(
                "final checkpoint%s: %s", "s" if len(saved) > 1 else "",
                ", ".join(f"{m} {'FAILED (see above)' if m in failed else 'written to ' + str(sidecar.checkpoint_paths.get(m))}"
                          for m in sorted(saved)))
    elif checkpointer is not None:
        log.warning("no final checkpoint: the models had not finished loading (the previous checkpoints stay as they were)")
    deadline = sidecar.shutdown_deadline
    for mon in sidecar.all_monitors():
        try:
            # after the checkpoint: delivering the last notifications waits only for what is left
            # of the shutdown deadline (at least a moment), not its own 10 s per model
            mon.close(10.0 if deadline is None else max(0.5, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001
            log.exception("closing %s failed", mon.model)
    log.info("stopped")


def request_budget(shutdown_timeout: float) -> float:
    """Seconds after the signal that requests in flight may take: ``shutdown_timeout`` less the
    reserve of the drain and final checkpoint (a quarter of it, at most 5 s): 15 s of the
    default 20 s, 1.5 s of 2 s."""
    timeout = max(0.0, shutdown_timeout)
    return timeout - min(_RESERVE_MAX_S, timeout * _RESERVE_FRACTION)


async def stop_serving(sites: list["web.BaseSite"], runners: list["web.AppRunner"], sidecar: "Sidecar",
                       until: float) -> int:
    """Stop accepting on every listener at once, then wait for the requests in flight on all of
    them (the aiohttp handlers of both applications, counted by the middleware in
    ``sidecar.in_flight``, and the lean proxy's exchanges) until ``until`` (event-loop time).

    Returns how many were still in flight then: they are cut by what follows (each lean
    listener closes its connections, aiohttp's cleanup cancels its handlers after
    :data:`_CUT_S`); their clients see the connection close, and each is counted with code 499
    in ``monitor_http_request_duration_seconds`` (the log says how many). Keep-alive connections
    are closed once their current request is answered (the middleware's ``Connection: close``)."""
    from monitor.server.dataplane import DataPlaneSite
    from monitor.server.leanproxy import LeanProxySite

    loop = asyncio.get_running_loop()
    lean = [s for s in sites if isinstance(s, (LeanProxySite, DataPlaneSite))]
    for site in sites:
        if site in lean:
            site.stop_listening()
        else:
            await site.stop()  # an aiohttp TCPSite: closes its listening socket, waits for nothing
    # No ``pre_shutdown()`` of aiohttp's servers here: it marks every connection closing, and a
    # closing connection drops the bytes it receives, so a request whose body was still arriving
    # could never finish (it was waited for until the deadline, then cut), and a new request on an
    # idle keep-alive connection met a closed connection instead of the 503 that tells a client to
    # retry elsewhere. The middleware answers with ``Connection: close`` once intake is closed;
    # aiohttp's cleanup closes what is left after this wait.
    await asyncio.sleep(0)  # requests accepted just before get their handlers started

    def in_flight() -> int:
        return sidecar.in_flight + sum(s.in_flight() for s in lean)

    while in_flight() and loop.time() < until:
        await asyncio.sleep(0.02)
    left = in_flight()
    if left:
        log.warning("shutdown deadline: cutting %d request(s) still in flight", left)
    return left


def _reload_rules(sidecar: "Sidecar") -> None:
    """SIGHUP's reload, off the event loop (reading and compiling the files); failures are logged
    by :meth:`Sidecar.reload` and shown by ``monitor_rule_last_reload_successful``."""
    from monitor.server.sidecar import RulesReloadError

    try:
        loaded, _ = sidecar.reload()  # its warnings are logged
    except RulesReloadError:
        return
    except Exception:  # noqa: BLE001 - a reload must never take the sidecar down
        log.exception("SIGHUP: reloading the rules failed")
        return
    log.info("SIGHUP: rules reloaded (%s)", ", ".join(f"{m}: {n}" for m, n in sorted(loaded.items())))


async def run(apps: list[tuple["web.Application", str, int]], *, shutdown_timeout: float = 20.0,
              ready_file: Any = None) -> None:
    """Serve ``(app, host, port)`` listeners until SIGTERM/SIGINT, then shut down gracefully
    within ``shutdown_timeout`` seconds of the signal (see the module's docstring: requests in
    flight get :func:`request_budget` of it and are then cut; the rest is the drain's and the
    final checkpoint's, which are never cut, as cutting them would lose accepted events).
    The first app is the sidecar's (its shutdown hook drains the monitors)."""
    from aiohttp import web

    from monitor.server.leanproxy import make_site

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0
    signalled = 0.0
    sidecar: Sidecar = apps[0][0][K.SIDECAR]

    def on_signal(signum: int) -> None:
        nonlocal signals, signalled
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting without a final checkpoint")
            raise SystemExit(1)
        signalled = loop.time()
        sidecar.shutdown_deadline = time.monotonic() + shutdown_timeout
        log.info("signal %s: stopping intake, draining, checkpointing", signal.Signals(signum).name)
        # forwarding stops with the other intake, before it refuses: the datagrams read until then
        # were refused as shutting_down, in a counter gone with the process, after their workers
        # had counted them sent; now the workers' next sends find no sidecar and count their
        # events (sidecar_unavailable) for the next one, and what they sent before is processed
        receiver = apps[0][0].get(K.FORWARD)
        if receiver is not None:
            receiver.close()
        sidecar.accepting = False
        stop.set()

    def on_hangup() -> None:
        if sidecar.ready:
            log.info("SIGHUP: reloading the rule files")
            loop.run_in_executor(None, _reload_rules, sidecar)
        else:
            log.warning("SIGHUP while the models load: the rules they load are read now; nothing to reload")

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    freezer = asyncio.create_task(freeze_heap_when_ready(sidecar))
    runners: list[web.AppRunner] = []
    sites: list[web.BaseSite] = []
    try:
        for app, host, port in apps:
            # the waiting is stop_serving's, under the one deadline: aiohttp's cleanup and the lean
            # listener only cut what is left
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=_CUT_S, access_log=None)
            await runner.setup()
            runners.append(runner)
            site = make_site(runner, app, host, port, shutdown_timeout=0.0)  # the lean proxy path, or TCPSite
            try:
                await site.start()
            except OSError as err:
                sidecar.bind_failed = not sites
                # name the listener: the proxy's own port failing was reported as the sidecar's
                setting = "server.port, --port" if not sites else "server.proxy.port, --proxy-port"
                raise OSError(err.errno, f"{host}:{port} ({setting}): {err.strerror or err}") from err
            sites.append(site)
            bound = [a for a in runner.addresses if isinstance(a, tuple)]
            log.info("listening on %s", ", ".join(f"http://[{b[0]}]:{b[1]}" if ":" in b[0] else f"http://{b[0]}:{b[1]}"
                                                  for b in bound))  # an IPv6 address in brackets, as URLs write it
            if ready_file is not None:
                try:
                    with open(ready_file, "a", encoding="utf-8") as fh:
                        for b in bound:
                            fh.write(f"{b[0]}:{b[1]}\n")
                except OSError as err:  # was told as "cannot listen: No such file or directory"
                    raise ReadyFileError(err.errno, f"--ready-file {ready_file}: {err.strerror or err}") from err
        await stop.wait()
    finally:
        freezer.cancel()
        start = signalled or loop.time()
        await stop_serving(sites, runners, sidecar, start + request_budget(shutdown_timeout))
        for runner in reversed(runners):
            await runner.cleanup()  # the sidecar's last: its cleanup hook drains, evaluates, checkpoints
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
