"""What every detector of one monitor may know besides its own parameters."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.schema import OutputSpec, Schema

__all__ = ["DetectorContext"]


@dataclass(frozen=True)
class DetectorContext:
    """Shared settings handed to each detector's ``from_config``.

    Attributes
    ----------
    schema, output
        The monitor's input schema and output spec.
    window_s
        Default sliding event-time window for windowed figures, in seconds.
    segment_cap
        Maximum number of distinct ``segment`` values; further ones fold into ``other``.
    seed
        Base seed; each detector derives its own generator from it.
    """

    schema: Schema
    output: OutputSpec
    window_s: float = 3600.0
    segment_cap: int = 20
    seed: int = 0
