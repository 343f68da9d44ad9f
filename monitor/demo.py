"""``monitor demo``: a real model, watched live through normal, drifted and attacked traffic.

A scikit-learn classifier is trained on the breast-cancer data that scikit-learn ships (no
download). Its ``predict_proba`` is wrapped with ``@watch`` exactly as a user would, ``/metrics``
is served, and simulated traffic goes through three phases:

1. **normal**: held-out rows with small natural noise, from 40 well-behaved clients, with delayed
   labels arriving for a third of the requests;
2. **drift**: the scanner is recalibrated: ``mean area`` and ``worst area`` read x1.6, and some
   rows get sensor noise; the model grows confidently wrong;
3. **attack**: traffic is normal again, but one client probes the decision boundary with long runs
   of near-identical queries (as HopSkipJump does) and another scrapes the model with random
   queries (model stealing).

Event time runs ``speed`` times faster than the wall clock (all windows, rates and alert ``for``
durations are in event time), so a one-minute demo covers half an hour of traffic and the shipped
rule packs fire as they would in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DemoSettings", "run_demo", "shipped_rule_files"]

PHASES = ("normal", "drift", "attack")


@dataclass
class DemoSettings:
    duration_s: float = 60.0
    speed: float = 30.0
    rate: float = 150.0  # well-behaved calls per wall-clock second (the attack phase adds its own)
    port: int | None = 9108
    seed: int = 0
    refresh_s: float = 2.0
    alertmanager: tuple[str, ...] = ()


def shipped_rule_files() -> list[str]:
    """Every shipped rule pack (see :mod:`monitor.shipped`)."""
    from monitor.shipped import rule_packs

    return [str(p) for p in rule_packs().values()]


class SimClock:
    """Event time = start + wall time elapsed x speed, from :meth:`go` on when built with
    ``running=False`` (it stands at ``start`` until then). The demo starts it ``duration x speed``
    in the past and runs it from the first call on, so that it ends at or before the wall clock
    however long the set-up took: the agent refuses events stamped ahead of that."""

    def __init__(self, speed: float, start: float | None = None, *, running: bool = True) -> None:
        self.speed = speed
        self.t0_wall: float | None = time.monotonic() if running else None
        self.t0_event = time.time() if start is None else start

    def go(self) -> None:
        if self.t0_wall is None:
            self.t0_wall = time.monotonic()

    def __call__(self) -> float:
        if self.t0_wall is None:
            return self.t0_event
        return self.t0_event + (time.monotonic() - self.t0_wall) * self.speed


@dataclass
class _World:
    model: Any
    names: tuple[str, ...]
    X_test: np.ndarray
    y_test: np.ndarray
    reference: Any
    scale: np.ndarray


def _train(seed: int) -> _World:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from monitor.reference import Reference

    data = load_breast_cancer()
    X, y = data.data, data.target
    names = tuple(str(n) for n in data.feature_names)
    # 40% trains the model; the other 60% is the population that both the reference and the live
    # traffic are drawn from (with independent sensor noise), so "normal" really is in-distribution
    X_train, X_pool, y_train, y_pool = train_test_split(X, y, test_size=0.6, random_state=seed, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    model.fit(X_train, y_train)
    # the reference: held-out rows (never the training set) with the model's outputs on them
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(X_pool), size=5000)
    X_ref_stream = _jitter(X_pool[idx], X.std(axis=0), rng)
    reference = Reference.from_arrays(
        X_ref_stream, numeric_names=names, scores=model.predict_proba(X_ref_stream), labels=y_pool[idx],
        classes=tuple(str(c) for c in data.target_names),
    )
    X_test, y_test = X_pool, y_pool
    return _World(model, names, X_test, y_test, reference, X.std(axis=0))


def _jitter(rows: np.ndarray, scale: np.ndarray, rng: np.random.Generator, amount: float = 0.05) -> np.ndarray:
    return rows + rng.normal(size=rows.shape) * scale * amount


class _Traffic:
    """Generates the calls of each phase; runs in its own thread and calls the watched predict."""

    def __init__(self, world: _World, predict: Callable[..., Any], mon: Any, settings: DemoSettings) -> None:
        self.world = world
        self.predict = predict
        self.mon = mon
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed + 1)
        self.scale = world.scale
        self.phase = "normal"
        self.calls = 0
        self.stop = threading.Event()
        self.pending_labels: list[tuple[float, str, int]] = []
        names = list(world.names)
        self.drift_cols = [names.index("mean area"), names.index("worst area")]
        self.attack_point: np.ndarray | None = None
        self.attack_dir: np.ndarray | None = None

    def _normal_row(self) -> tuple[np.ndarray, int]:
        i = int(self.rng.integers(len(self.world.X_test)))
        return _jitter(self.world.X_test[i:i + 1], self.scale, self.rng)[0], int(self.world.y_test[i])

    def _call(self, x: np.ndarray, client: str, label: int | None) -> None:
        rid = f"r{self.calls}"
        self.calls += 1
        self.predict(x[None, :], client=client, request_id=rid)
        if label is not None and self.rng.random() < 0.33:
            # the label arrives ~2 minutes of event time later
            self.pending_labels.append((self.mon.clock() + 120.0, rid, label))

    def step(self) -> None:
        x, y = self._normal_row()
        if self.phase == "drift":
            x = x.copy()
            x[self.drift_cols] *= 1.6
            if self.rng.random() < 0.3:
                x = x + self.rng.normal(size=x.shape) * self.scale * 0.5
        self._call(x, f"client-{int(self.rng.integers(40))}", y)
        if self.phase == "attack":
            self._attack_step()
        now = self.mon.clock()
        due = [p for p in self.pending_labels if p[0] <= now]
        if due:
            self.pending_labels = [p for p in self.pending_labels if p[0] > now]
            self.mon.feedback([p[1] for p in due], [p[2] for p in due])

    def _attack_step(self) -> None:
        # boundary prober: a random walk of tiny steps that keeps crossing the decision boundary
        if self.attack_point is None:
            self.attack_point = self._normal_row()[0]
            self.attack_dir = self.rng.normal(size=self.attack_point.shape) * self.scale
        step = self.rng.normal(size=self.attack_point.shape) * self.scale * 0.01
        self.attack_point = self.attack_point + step + 0.002 * self.attack_dir
        p = self.world.model.predict_proba(self.attack_point[None, :])[0, 1]
        if p > 0.9 or p < 0.1:  # bisect back towards the boundary, as decision-based attacks do
            self.attack_dir = -self.attack_dir
        self._call(self.attack_point, "attacker-7", None)
        # model stealing: uniform random queries over the feature box
        if self.rng.random() < 0.5:
            lo, hi = self.world.X_test.min(axis=0), self.world.X_test.max(axis=0)
            self._call(lo + self.rng.random(lo.shape) * (hi - lo), "scraper-3", None)

    def run(self) -> None:
        interval = 1.0 / self.settings.rate
        next_t = time.monotonic()
        while not self.stop.is_set():
            self.step()
            next_t += interval
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def _fmt(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _status(mon: Any, traffic: _Traffic, elapsed: float) -> list[str]:
    from monitor.demo_view import signal_lines

    store = mon.store
    calls = store.value("monitor_calls") or 0.0
    preds = store.value("monitor_predictions") or 0.0
    dropped = sum(v for name, labels, v in store.samples() if name == "monitor_events_dropped_total")
    lat = store.value("monitor_latency_seconds")
    mean_ms = (lat.sum / lat.count * 1000) if lat and lat.count else None
    event_min = (mon.clock() - mon.clock.t0_event) / 60.0
    head = (f"[{elapsed:5.1f}s wall | {event_min:5.1f} min event time | phase: {traffic.phase:<6}] "
            f"calls {calls:,.0f}  rows {preds:,.0f}  shed {dropped:,.0f}  mean latency {_fmt(mean_ms, '.2f')} ms")
    lines = [head]
    lines += ["    " + line for line in signal_lines(store)]
    alerts = [a for a in mon.alerts() if getattr(a, "state", "") == "firing"]
    if alerts:
        for a in alerts[:8]:
            labels = getattr(a, "labels", {})
            labels = labels.to_dict() if hasattr(labels, "to_dict") else dict(labels)
            extra = ", ".join(f"{k}={v}" for k, v in labels.items() if k not in ("alertname", "model", "severity"))
            lines.append(f"    FIRING {labels.get('alertname', '?')} ({labels.get('severity', '')}) {extra}")
    else:
        lines.append("    no alert firing")
    return lines


def run_demo(settings: DemoSettings, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo; returns a summary (alerts that fired per phase) for tests."""
    from monitor.config import MonitorConfig, RulesConfig
    from monitor.core import Monitor
    from monitor.schema import OutputSpec, Schema

    echo("training a logistic regression on scikit-learn's breast-cancer data (no download)...")
    world = _train(settings.seed)
    clock = SimClock(settings.speed, start=time.time() - settings.duration_s * settings.speed, running=False)
    rule_files = shipped_rule_files()
    config = MonitorConfig(
        model="breast-cancer",
        schema=Schema.numeric(world.names),
        output=OutputSpec("probabilities", world.reference.classes),
        window_s=600.0,
        rules=RulesConfig(files=tuple(rule_files), interval_s=15.0, alertmanager_urls=settings.alertmanager, log_alerts=False),
    )
    from prometheus_client import CollectorRegistry

    mon = Monitor(config=config, reference=world.reference, clock=clock, registry=CollectorRegistry(auto_describe=False))
    echo(f"watching it with {len(mon.detectors)} detectors and {len(rule_files)} rule packs "
         f"({', '.join(Path(f).stem for f in rule_files) or 'none'})")
    if settings.port is not None:
        try:
            mon.start_http_server(settings.port)
            echo(f"metrics: http://127.0.0.1:{settings.port}/metrics")
        except OSError as err:
            echo(f"(could not serve /metrics on port {settings.port}: {err.strerror}; continuing without)")

    @mon.watch(client="client", request_id="request_id")
    def predict(X: np.ndarray, client: str | None = None, request_id: str | None = None) -> np.ndarray:
        return world.model.predict_proba(X)

    traffic = _Traffic(world, predict, mon, settings)
    thread = threading.Thread(target=traffic.run, name="demo-traffic", daemon=True)
    fired: dict[str, set[str]] = {p: set() for p in PHASES}
    echo(f"event time runs x{settings.speed:g}; {settings.duration_s:g} s of wall time = "
         f"{settings.duration_s * settings.speed / 60:.0f} min of traffic\n")
    start = time.monotonic()
    clock.go()
    thread.start()
    try:
        next_print = 0.0
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= settings.duration_s:
                break
            phase = PHASES[min(2, int(3 * elapsed / settings.duration_s))]
            if phase != traffic.phase:
                traffic.phase = phase
                echo(f"\n=== phase: {phase} ===")
            for a in mon.alerts():
                if getattr(a, "state", "") == "firing":
                    labels = a.labels.to_dict() if hasattr(a.labels, "to_dict") else dict(a.labels)
                    fired[traffic.phase].add(labels.get("alertname", "?"))
            if elapsed >= next_print:
                for line in _status(mon, traffic, elapsed):
                    echo(line)
                next_print += settings.refresh_s
            time.sleep(0.1)
    finally:
        traffic.stop.set()
        thread.join(5)
        mon.flush()
        mon.close()
    echo("\nalerts that fired, by phase:")
    for phase in PHASES:
        echo(f"  {phase:<7} {', '.join(sorted(fired[phase])) or '-'}")
    suspicious = [getattr(c, "client", c) for c in mon.suspicious_clients()]
    if suspicious:
        echo(f"suspicious clients: {', '.join(map(str, suspicious[:5]))}")
    return {"fired": fired, "calls": traffic.calls, "suspicious": suspicious}
