"""A label re-sent for an id labelled lately counts ``unknown_id`` at once, however fast labels come (s31a).

Before, the ids labelled lately were remembered only up to ``labels.early`` (10,000) of them: above
~17 labels/s over the 10-minute ``labels.early_wait``, a duplicate label (a client's retry) was held
for a prediction that had come already, waited its 10 minutes in ``monitor_labels_early`` and took
a place that a label truly early needed. Labelled ids are now remembered as long as their
prediction's slot in the ring of ``labels.pending`` predictions is not reused: bounded by it.
"""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.checkpoint import decode_state, encode_state
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex

CLASSES = ClassIndex(("0", "1"))


def _batch(ids: list[str], ts: float) -> Batch:
    return Batch.from_arrays(np.zeros((len(ids), 1)), np.tile([[0.3, 0.7]], (len(ids), 1)),
                             ts=np.full(len(ids), ts), request_id=ids)


def test_a_duplicate_label_counts_at_once_beyond_labels_early_labelled_ids() -> None:
    joiner = LabelJoiner(capacity=1000, early=3)
    ids = [f"r{i}" for i in range(50)]
    joiner.remember(_batch(ids, 10.0))
    _, outcome = joiner.join(11.0, ids, [1] * 50, CLASSES, regression=False)
    assert outcome["joined"] == 50
    _, outcome = joiner.join(12.0, ["r0"], [1], CLASSES, regression=False)  # a retry of the first label
    assert outcome["unknown_id"] == 1 and joiner.early_held == 0


def test_labelled_ids_are_remembered_only_while_the_ring_holds_them() -> None:
    joiner = LabelJoiner(capacity=100, early=3)
    for start in range(0, 300, 50):
        ids = [f"r{i}" for i in range(start, start + 50)]
        joiner.remember(_batch(ids, float(start)))
        joiner.join(float(start), ids, [1] * 50, CLASSES, regression=False)
        assert joiner.labelled_remembered + len(joiner) <= joiner.capacity
    # r0 left the ring long ago: a label for it may be early again (a new call reusing the id)
    _, outcome = joiner.join(400.0, ["r0"], [1], CLASSES, regression=False)
    assert outcome["unknown_id"] == 0 and joiner.early_held == 1


def test_labelled_ids_survive_a_checkpoint_up_to_labels_early() -> None:
    joiner = LabelJoiner(capacity=100, early=3)
    ids = [f"r{i}" for i in range(10)]
    joiner.remember(_batch(ids, 10.0))
    joiner.join(11.0, ids, [1] * 10, CLASSES, regression=False)
    restored = LabelJoiner(capacity=100, early=3)
    restored.load_state_dict(decode_state(*encode_state(joiner.state_dict())))
    _, outcome = restored.join(12.0, ["r9", "r8", "r7"], [1, 1, 1], CLASSES, regression=False)
    assert outcome["unknown_id"] == 3 and restored.early_held == 0
