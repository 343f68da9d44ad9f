"""Which detectors a monitor runs when its config does not list any."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.config import DetectorConfig
from monitor.detectors.registry import KINDS

if TYPE_CHECKING:
    from monitor.reference import Reference
    from monitor.schema import OutputSpec

__all__ = ["default_detectors"]

#: (kind, needs a reference, applies to classifiers, applies to regression)
_DEFAULTS: tuple[tuple[str, bool, bool, bool], ...] = ()


def default_detectors(output: "OutputSpec", reference: "Reference | None") -> tuple[DetectorConfig, ...]:
    """The default set for this output kind; detectors that need a reference are only enabled
    when one is given, and kinds not installed in the registry are skipped."""
    out = []
    for kind, needs_ref, for_clf, for_reg in _DEFAULTS:
        if kind not in KINDS or (needs_ref and reference is None):
            continue
        if (output.is_classifier and for_clf) or (not output.is_classifier and for_reg):
            out.append(DetectorConfig(kind))
    return tuple(out)
