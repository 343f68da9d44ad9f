"""Adversarial probing and model-stealing detection, per client, in bounded memory.

See :class:`~monitor.detectors.probing.detector.ProbingDetector` (config kind ``probing``) and
the modules: :mod:`.clients` (bounded LRU, rings, salted ids), :mod:`.hashing` (Blacklight-style
fingerprints, exact repeats), :mod:`.fpindex` (their per-client inverted index), :mod:`.neighbours`
(Chen et al.-style kNN), :mod:`.boundary` (margins, label flips), :mod:`.stealing` (PRADA),
:mod:`.ood` (per-input OOD score), :mod:`.verdict` (verdicts with evidence, campaigns across
accounts).
"""

from __future__ import annotations

from monitor.detectors.probing.detector import ProbingCalibration, ProbingDetector
from monitor.detectors.probing.verdict import SIGNALS, Campaign, ClientVerdict, SignalEvidence

__all__ = ["ProbingDetector", "ProbingCalibration", "ClientVerdict", "SignalEvidence", "Campaign", "SIGNALS"]
