"""What the demo prints about each signal: a few lines read from the metric store."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.store import MetricStore

__all__ = ["signal_lines"]

Rows = dict[str, list[tuple[dict[str, str], float]]]


def _by_name(store: "MetricStore") -> Rows:
    out: Rows = {}
    for name, labels, value in store.samples():
        out.setdefault(name, []).append((labels, value))
    return out


def _get(rows: Rows, name: str, **match: str) -> float | None:
    for labels, value in rows.get(name, []):
        if all(labels.get(k) == v for k, v in match.items()):
            return value
    return None


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def signal_lines(store: "MetricStore") -> list[str]:
    """One line per family of signals, from whatever the configured detectors export."""
    rows = _by_name(store)
    lines = []
    conf = _get(rows, "monitor_confidence_mean_ratio")
    if conf is not None:
        parts = [f"mean max-prob {conf:.3f}"]
        for est in ("cbpe", "atc"):
            v = _get(rows, "monitor_estimated_accuracy_ratio", estimator=est)
            if v is not None:
                parts.append(f"est. accuracy ({est}) {_pct(v)}")
        acc = _get(rows, "monitor_accuracy_ratio")
        labels = _get(rows, "monitor_labels_in_window")
        parts.append(f"measured accuracy {_pct(acc)} on {labels or 0:.0f} labels")
        gap = _get(rows, "monitor_overconfidence_gap_ratio")
        if gap is not None:
            lo = _get(rows, "monitor_overconfidence_gap_lower_ratio")
            parts.append(f"over-confidence gap {gap * 100:+.1f} pts" + (f" (lower bound {lo * 100:+.1f})" if lo is not None else ""))
        lines.append("confidence: " + "  ".join(parts))
    drifted = [(labels, v) for labels, v in rows.get("monitor_drift_detected", []) if v > 0]
    tops = sorted(rows.get("monitor_drift_top_feature", []), key=lambda r: (r[0].get("detector", ""), r[0].get("rank", "")))
    if rows.get("monitor_drift_detected"):
        if drifted:
            names = ", ".join(labels.get("detector", "?") for labels, _ in drifted)
            feats = "; ".join(f"{l.get('feature')} {l.get('change', '')}".strip() for l, _ in tops[:3])
            lines.append(f"drift: ALARM in {names}" + (f" - top features: {feats}" if feats else ""))
        else:
            lines.append("drift: no alarm (sequential tests within their expected run time)")
    dq = [(l, v) for l, v in rows.get("monitor_data_invalid_ratio", []) if v > 0.01]
    if dq:
        worst = max(dq, key=lambda r: r[1])
        lines.append(f"data quality: {worst[0].get('feature')} {worst[0].get('reason')} {_pct(worst[1])}")
    if rows.get("monitor_probing_suspicious_clients") is not None or rows.get("monitor_probing_queries_total"):
        anyc = _get(rows, "monitor_probing_suspicious_clients", signal="any") or 0.0
        signals = [f"{l.get('signal')}={v:.0f}" for l, v in rows.get("monitor_probing_suspicious_clients", [])
                   if l.get("signal") != "any" and v > 0]
        lines.append(f"probing: {anyc:.0f} suspicious client(s)" + (f" ({', '.join(signals)})" if signals else ""))
    return lines
