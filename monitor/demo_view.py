"""What the demo prints about each signal: a few lines read from the metric store."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitor.store import MetricStore

__all__ = ["signal_lines"]


def _by_name(store: "MetricStore") -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, labels, value in store.samples():
        out.setdefault(name, []).append((labels, value))
    return out


def signal_lines(store: "MetricStore") -> list[str]:
    """One line per family of signals, from whatever the configured detectors export."""
    samples = _by_name(store)
    lines = []

    def first(name: str) -> float | None:
        rows = samples.get(name)
        return rows[0][1] if rows else None

    parts = []
    for label, name in (
        ("max-prob mean", "monitor_confidence_mean"),
        ("est. accuracy (ATC)", "monitor_estimated_accuracy_atc_ratio"),
        ("est. accuracy (CBPE)", "monitor_estimated_accuracy_cbpe_ratio"),
        ("measured accuracy", "monitor_accuracy_ratio"),
        ("over-confidence gap", "monitor_overconfidence_gap"),
    ):
        v = first(name)
        if v is not None:
            parts.append(f"{label} {v:.3f}")
    if parts:
        lines.append("confidence: " + "  ".join(parts))
    return lines
