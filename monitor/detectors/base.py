"""The one small contract every detector follows.

A detector is pure computation over batches (see :class:`monitor.batch.Batch`):

* hyperparameters are stored under their constructor argument names, private state is built in
  :meth:`_reset`, randomness comes from a per-instance ``numpy.random.Generator``;
* :meth:`update` consumes a batch vectorised; :meth:`update_labels` consumes delayed labels;
* :meth:`export` writes the detector's current figures into a :class:`~monitor.store.MetricWriter`
  under catalog names only (the rule engine sees those metrics, never the detector);
* :meth:`state_dict` / :meth:`load_state_dict` save and restore the state as JSON-safe values and
  numpy arrays, never pickle, so checkpoints are safe to load;
* memory is bounded by the hyperparameters, never by the stream length.

Thresholds are calibrated at construction (from the reference and a stated false-alarm rate or
expected run time), not learned silently from live traffic.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from monitor.batch import Batch, LabeledBatch
    from monitor.store import MetricWriter

__all__ = ["Detector"]


class Detector(abc.ABC):
    """Base class of all detectors.

    Subclasses set :attr:`kind` (the name used in configs and in the ``detector`` label) and
    implement :meth:`update`, :meth:`export` and :meth:`_reset`.
    """

    kind: ClassVar[str] = ""
    #: True when handing this detector its rows later changes nothing it exports: the rows of
    #: several batches concatenated into one (in arrival order), all held predictions before all
    #: held labels, and :meth:`advance` calls possibly before the rows they follow. That holds
    #: when the state is a function of the rows per event-time window slot and of the order of
    #: the rows within each stream (sliding windows of sums, buffered histograms, a table keyed
    #: by row position), and labels never carry anything the predictions have not shown first.
    #: The pipeline then holds such a detector's batches and hands them over at every export
    #: and checkpoint (see :mod:`monitor.holding`), which at low traffic saves most of the
    #: per-batch cost. Detectors whose state depends on how rows interleave with the clock
    #: (timers, per-call rate limits, streaming change-point statistics) leave it False.
    deferrable: ClassVar[bool] = False
    #: Bumped when the layout of :meth:`state_dict` changes, so old checkpoints are refused cleanly.
    state_version: ClassVar[int] = 1

    @abc.abstractmethod
    def _reset(self) -> None:
        """(Re)build all private state from the hyperparameters."""

    @abc.abstractmethod
    def update(self, batch: "Batch") -> None:
        """Consume a batch of predicted rows (event-time ordered)."""

    def update_labels(self, labeled: "LabeledBatch") -> None:
        """Consume delayed ground truth. Detectors that do not use labels ignore it."""
        return None

    def advance(self, now: float) -> None:
        """Move event time forward without data (expire windows); called before every export."""
        return None

    def on_tick(self, now: float) -> None:
        """A rule-evaluation tick at event time ``now`` follows: the next :meth:`export` must
        write every figure as of exactly the rows seen so far (flush buffered histograms,
        recompute throttled figures), so that what the rules see at a tick does not depend on
        how the events were batched (replay gives the same alerts as live). Detectors that
        throttle their export override this; the default has nothing to do."""
        return None

    @abc.abstractmethod
    def export(self, out: "MetricWriter") -> None:
        """Write current figures. Figures below their minimum sample size are removed, not zeroed."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state (numpy arrays allowed); the default says the detector keeps none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._reset()

    #: what a restore left out while restoring the rest (set by :meth:`_note_restore`; the
    #: monitor clears it before each restore and logs it after)
    restore_notes: list[str]

    def _note_restore(self, note: str) -> None:
        """Say that part of a saved state was set aside (its figures refill) while the rest was
        restored: per-segment figures saved under another ``segments.cap`` vanished without a word."""
        self.__dict__.setdefault("restore_notes", []).append(note)

    def reset(self) -> None:
        """Forget everything seen so far (e.g. after a deliberate model update)."""
        self._reset()
