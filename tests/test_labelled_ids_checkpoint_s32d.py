"""A label re-sent after a restart for an id labelled before it counts ``unknown_id`` at once (s32d).

Live, labelled ids are remembered while their prediction's slot in the ring of ``labels.pending``
is not reused (4c8b6aa); the checkpoint kept only the last ``labels.early`` of them. After a
restart, a client's retry of an older label was held for a prediction that had come already,
waited its ``labels.early_wait`` in ``monitor_labels_early`` and took a place a truly early label
needed. The checkpoint now keeps what the live agent remembers, in the ring's bound.
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


def _labelled_joiner(capacity: int = 100) -> LabelJoiner:
    joiner = LabelJoiner(capacity=capacity, early=3)
    ids = [f"r{i}" for i in range(10)]
    joiner.remember(_batch(ids + ["waiting"], 10.0))
    _, outcome = joiner.join(11.0, ids, [1] * 10, CLASSES, regression=False)
    assert outcome["joined"] == 10
    return joiner


def _restored(joiner: LabelJoiner, capacity: int = 100) -> LabelJoiner:
    restored = LabelJoiner(capacity=capacity, early=3)
    restored.load_state_dict(decode_state(*encode_state(joiner.state_dict())))
    return restored


def test_every_labelled_id_the_ring_holds_survives_a_restart() -> None:
    restored = _restored(_labelled_joiner())
    _, outcome = restored.join(12.0, [f"r{i}" for i in range(10)], [1] * 10, CLASSES, regression=False)
    assert outcome["unknown_id"] == 10 and restored.early_held == 0
    _, outcome = restored.join(12.0, ["waiting"], [0], CLASSES, regression=False)
    assert outcome["joined"] == 1


def test_restored_labelled_ids_are_forgotten_when_the_ring_reuses_their_slots() -> None:
    restored = _restored(_labelled_joiner())
    restored.remember(_batch([f"n{i}" for i in range(100)], 20.0))  # every slot reused
    _, outcome = restored.join(21.0, ["r0"], [1], CLASSES, regression=False)  # a new call under an old id
    assert outcome["unknown_id"] == 0 and restored.early_held == 1


def test_labelled_ids_survive_a_restart_with_another_labels_pending() -> None:
    larger = _restored(_labelled_joiner(), capacity=500)
    _, outcome = larger.join(12.0, ["r0", "r5", "waiting"], [1, 1, 0], CLASSES, regression=False)
    assert outcome["unknown_id"] == 2 and outcome["joined"] == 1 and larger.early_held == 0
    smaller = _restored(_labelled_joiner(), capacity=4)  # the newest 4 of the ring: r7, r8, r9, waiting
    _, outcome = smaller.join(12.0, ["r9", "r7", "waiting"], [1, 1, 0], CLASSES, regression=False)
    assert outcome["unknown_id"] == 2 and outcome["joined"] == 1 and smaller.early_held == 0


def test_the_labelled_ids_remembered_are_counted_alike_before_and_after_a_restart() -> None:
    joiner = _labelled_joiner()
    restored = _restored(joiner)
    assert joiner.labelled_remembered == restored.labelled_remembered == 10
    assert len(joiner) == len(restored) == 1
