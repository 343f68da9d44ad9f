"""Detectors: pure computation over batches of events.

A detector never imports the server, the rules or the CLI, and is never imported by the
decorator's hot path. Each follows the contract in :mod:`monitor.detectors.base`.
"""

from __future__ import annotations

from monitor.detectors.base import Detector

__all__ = ["Detector"]
