"""Static previews of the Grafana dashboards, for the README, drawn with matplotlib.

Grafana is not installable from this machine's package registries (not in Debian's, and PyPI and
npm have no Grafana server), so this script shows what on-call will see another way: it runs the
end-to-end stack (a real Prometheus scraping the decorated app and the sidecar while the traffic
script drives normal, drifted, over-confident, attacking and recovery phases), runs every panel's
queries exactly as the generated dashboards define them (variables substituted as Grafana would
with "All"), and draws each dashboard on Grafana's 24-column grid into ``grafana/previews/<uid>.png``.

Usage::

    python benchmarks/render_dashboards.py                   # run the stack (~90 s), render all
    python benchmarks/render_dashboards.py --phase-seconds 10
    python benchmarks/render_dashboards.py --prometheus http://127.0.0.1:9090 --start T0 --end T1

Needs matplotlib (dev extra) and, to run the stack, Debian's ``prometheus`` package.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.dashboards import build  # noqa: E402
from monitor.dashboards.queries import rate_interval, substitute  # noqa: E402

SCRAPE_S = 1.0
GRID_UNIT_IN = 0.42  # inches per grid row
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_PHASE_COLORS = {"normal": "#e8f5e9", "drifted": "#fff3e0", "overconfident": "#fce4ec", "attacking": "#ffebee",
                 "recovery": "#e3f2fd"}


@dataclass
class Source:
    """Where the data comes from: a Prometheus query API and the time range to show."""

    query: Callable[[str, float], list[dict[str, Any]]]
    query_range: Callable[[str, float, float, float], list[dict[str, Any]]]
    start: float
    end: float
    phases: list[tuple[str, float, float]]


# -- running the stack --------------------------------------------------------------------------------

def run_stack(phase_s: float, workdir: Path) -> tuple[Source, list[Callable[[], None]]]:
    """Start Prometheus, the decorated app and the sidecar, drive the traffic phases, return the data source."""
    from prometheus_client import CollectorRegistry

    from tests.conftest import free_port
    from tests.e2e.app import build_app
    from tests.e2e.processes import Prometheus, Sidecar
    from tests.e2e.rules import fast_copy
    from tests.e2e.traffic import DEFAULT_PHASES, Phase, Traffic, train_world
    from tests.e2e.uncertainty import train_uncertainty_models
    from tests.e2e.upstream import ModelServer
    from tests.test_e2e_stack import OUTAGE, PROXIED_MODEL, _sidecar_config

    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    rules_dir = workdir / "rules"
    rules_dir.mkdir(parents=True, exist_ok=True)
    rules = [fast_copy(p, rules_dir / p.name) for p in sorted((REPO / "rules").glob("*.yml"))]
    stoppers: list[Callable[[], None]] = []
    world = train_world()
    mon, predict = build_app(world, rule_files=[str(p) for p in rules], registry=CollectorRegistry(auto_describe=False))
    stoppers.append(mon.close)
    port = free_port()
    mon.start_http_server(port)
    others = train_uncertainty_models(world, workdir / "models")
    model_server = ModelServer(PROXIED_MODEL, world.model.predict_proba)  # behind the sidecar's reverse proxy
    stoppers.append(model_server.close)
    sidecar = Sidecar(workdir / "sidecar", _sidecar_config(world, others, model_server.url)).start()
    stoppers.append(sidecar.stop)
    prom = Prometheus(binary, workdir / "prometheus", {"app": [f"127.0.0.1:{port}"], "sidecar": [f"127.0.0.1:{sidecar.port}"]},
                      rule_files=rules, scrape_interval=f"{SCRAPE_S:g}s").start()
    stoppers.append(prom.stop)
    traffic = Traffic(world, predict, mon.feedback, rate=60.0, sidecar_url=sidecar.url, sidecar_model="sidecar-model",
                      sidecar_extra=others.events, proxy_url=sidecar.url, proxy_model=PROXIED_MODEL,
                      upstream=model_server, outage=OUTAGE)
    spans = traffic.run(tuple(Phase(p.name, phase_s) for p in DEFAULT_PHASES))
    source = Source(prom.query, prom.query_range, spans[0].start, spans[-1].end, [(s.name, s.start, s.end) for s in spans])
    return source, stoppers


def remote_source(url: str, start: float, end: float) -> Source:
    from tests.e2e.processes import Prometheus

    prom = Prometheus.__new__(Prometheus)
    prom.url = url.rstrip("/")
    return Source(prom.query, prom.query_range, start, end, [])


# -- drawing ------------------------------------------------------------------------------------------

def _legend(fmt: str, labels: dict[str, str]) -> str:
    if not fmt or fmt == "__auto":
        return ",".join(f"{k}={v}" for k, v in labels.items() if k not in ("__name__", "instance", "job")) or "value"
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()


def _scale(unit: str) -> tuple[float, str]:
    return (100.0, "%") if unit == "percentunit" else (1.0, {"s": "s", "bytes": "bytes", "reqps": "req/s",
                                                               "cps": "/s"}.get(unit, ""))


def _fmt(value: float, unit: str) -> str:
    factor, suffix = _scale(unit)
    v = value * factor
    if unit == "dateTimeAsIso":
        import datetime

        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%H:%M:%S")
    if unit == "s" and v < 1:
        return f"{v * 1000:.3g} ms"
    return f"{v:.3g}{' ' + suffix if suffix and suffix != '%' else suffix}"


def _shade_phases(ax: Any, src: Source) -> None:
    for name, a, b in src.phases:
        ax.axvspan(a - src.start, b - src.start, color=_PHASE_COLORS.get(name, "#f5f5f5"), zorder=0, lw=0)


def _timeseries(ax: Any, panel: dict[str, Any], src: Source, subst: Callable[[str], str], step: float) -> int:
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    factor, suffix = _scale(unit)
    _shade_phases(ax, src)
    n = 0
    for target in panel["targets"]:
        for series in src.query_range(subst(target["expr"]), src.start, src.end, step)[:12]:
            t = [float(p[0]) - src.start for p in series["values"]]
            v = [float(p[1]) * factor for p in series["values"]]
            ax.plot(t, v, lw=1.1, label=_legend(target.get("legendFormat", ""), series["metric"])[:40])
            n += 1
    if n:
        ax.legend(fontsize=5, loc="upper left", ncol=2, frameon=False)
    ax.set_ylabel(suffix, fontsize=6)
    ax.set_xlabel("seconds", fontsize=5)
    return n


def _stat(ax: Any, panel: dict[str, Any], src: Source, subst: Callable[[str], str]) -> int:
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    target = panel["targets"][0]
    result = src.query(subst(target["expr"]), src.end - 1)
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    ax.axis("off")
    for i, series in enumerate(result[:4]):
        value = float(series["value"][1])
        color = "green"
        for s in steps:
            if s["value"] is None or value >= s["value"]:
                color = s["color"]
        ax.text((i + 0.5) / max(1, min(4, len(result))), 0.45, _fmt(value, unit), ha="center", va="center",
                fontsize=16, color="white", weight="bold",
                bbox={"boxstyle": "round", "facecolor": {"transparent": "grey"}.get(color, color), "alpha": 0.85})
        ax.text((i + 0.5) / max(1, min(4, len(result))), 0.08, _legend(target.get("legendFormat", ""), series["metric"]),
                ha="center", fontsize=6)
    return len(result)


def _heatmap(ax: Any, panel: dict[str, Any], src: Source, subst: Callable[[str], str], step: float) -> int:
    import numpy as np

    series = src.query_range(subst(panel["targets"][0]["expr"]), src.start, src.end, step)
    if not series:
        return 0
    bounds = sorted(series, key=lambda s: float(s["metric"].get("le", "inf")))
    times = sorted({float(p[0]) for s in bounds for p in s["values"]})
    index = {t: i for i, t in enumerate(times)}
    cum = np.zeros((len(bounds), len(times)))
    for j, s in enumerate(bounds):
        for t, v in s["values"]:
            cum[j, index[float(t)]] = float(v)
    counts = np.diff(np.vstack([np.zeros((1, len(times))), cum]), axis=0).clip(min=0)
    ax.imshow(np.sqrt(counts), aspect="auto", origin="lower", cmap="Oranges",
              extent=(times[0] - src.start, times[-1] - src.start, 0, len(bounds)))
    labels = [s["metric"].get("le", "") for s in bounds]
    ax.set_yticks([i + 0.5 for i in range(0, len(labels), 3)], labels[::3], fontsize=5)
    ax.set_xlabel("seconds", fontsize=5)
    return len(bounds)


def _barchart(ax: Any, panel: dict[str, Any], src: Source, subst: Callable[[str], str]) -> int:
    x_field = panel["options"]["xField"]
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    factor, _ = _scale(unit)
    groups: dict[str, dict[str, float]] = {}
    for target in panel["targets"]:
        for series in src.query(subst(target["expr"]), src.end - 1):
            groups.setdefault(target["legendFormat"], {})[series["metric"].get(x_field, "?")] = float(series["value"][1])
    def order(key: str) -> float:
        try:
            return float(re.split(r"[-_, ]", key)[0])
        except ValueError:
            return 0.0

    keys = sorted({k for g in groups.values() for k in g}, key=order)
    width = 0.8 / max(1, len(groups))
    for i, (name, values) in enumerate(groups.items()):
        ax.bar([j + i * width for j in range(len(keys))], [values.get(k, 0) * factor for k in keys], width, label=name)
    ax.set_xticks(range(len(keys)), keys, fontsize=5)
    ax.legend(fontsize=5, frameon=False)
    return len(keys)


def render(dash: dict[str, Any], src: Source, out: Path) -> list[str]:
    """Draw one dashboard; returns the titles of panels that had no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    step = max(1.0, (src.end - src.start) / 300)
    variables = {"datasource": "model-monitor-prometheus"}
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            variables[v["name"]] = v["allValue"]

    def subst(expr: str) -> str:
        return substitute(expr, variables, rate_window=rate_interval(SCRAPE_S, step),
                          range_window=f"{int(src.end - src.start)}s")

    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"])
    head_in = 0.9
    fig = plt.figure(figsize=(16, rows * GRID_UNIT_IN + head_in))
    fig.suptitle(dash["title"], fontsize=13, x=0.01, ha="left", y=1 - 0.15 / (rows * GRID_UNIT_IN + head_in))
    top = 1 - head_in / (rows * GRID_UNIT_IN + head_in)
    empty = []
    for panel in dash["panels"]:
        g = panel["gridPos"]
        x0, w = g["x"] / 24, g["w"] / 24
        y0 = top * (1 - (g["y"] + g["h"]) / rows)
        h = top * g["h"] / rows
        if panel["type"] == "row":
            fig.text(x0 + 0.005, y0 + h / 2, panel["title"], fontsize=10, weight="bold", va="center")
            continue
        ax = fig.add_axes((x0 + 0.03 * w + 0.006, y0 + 0.12 * h, w * 0.94 - 0.012, h * 0.72))
        ax.set_title(panel["title"], fontsize=8, loc="left")
        ax.tick_params(labelsize=5)
        kind = panel["type"]
        if kind == "timeseries":
            n = _timeseries(ax, panel, src, subst, step)
        elif kind == "stat":
            n = _stat(ax, panel, src, subst)
        elif kind == "heatmap":
            n = _heatmap(ax, panel, src, subst, step)
        elif kind == "barchart":
            n = _barchart(ax, panel, src, subst)
        else:
            raise ValueError(f"no preview for panel type {kind!r}")
        if not n:
            empty.append(panel["title"])
            ax.text(0.5, 0.5, "No data", ha="center", va="center", transform=ax.transAxes, color="grey")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return empty


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "grafana" / "previews")
    parser.add_argument("--phase-seconds", type=float, default=18.0)
    parser.add_argument("--prometheus", help="render from this Prometheus instead of running the stack")
    parser.add_argument("--start", type=float)
    parser.add_argument("--end", type=float)
    args = parser.parse_args(argv)
    stoppers: list[Callable[[], None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.prometheus:
                if args.start is None or args.end is None:
                    parser.error("--prometheus needs --start and --end (Unix seconds)")
                src = remote_source(args.prometheus, args.start, args.end)
            else:
                print(f"running the stack: 5 phases x {args.phase_seconds:g} s ...", flush=True)
                src, stoppers = run_stack(args.phase_seconds, Path(tmp))
            missing = 0
            for dash in build.dashboards():
                model = dash.to_json()
                out = args.out / f"{dash.uid}.png"
                empty = render(model, src, out)
                missing += len(empty)
                print(f"{out.relative_to(REPO) if out.is_relative_to(REPO) else out}: {len(dash.panels())} panels"
                      + (f", no data: {', '.join(empty)}" if empty else ""))
        finally:
            for stop in reversed(stoppers):
                stop()
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
