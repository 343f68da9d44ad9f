"""Class labels given as bytes name the class their text names (s31a).

Before, a label ``b"cat"`` was looked up as ``str(b"cat")``, the class ``b'cat'``: joined to a model
whose classes are ``cat`` and ``dog``, it was skipped as ``unknown_class``; held for its prediction
it was checkpointed as that text, so it could not read back as bytes; and a labels-only model
answering bytes (TensorFlow string outputs) learned classes named ``b'cat'`` that a label sent as
text over HTTP never matched.
"""

from __future__ import annotations

import numpy as np

from monitor.batch import Batch
from monitor.checkpoint import decode_state, encode_state
from monitor.labels import LabelJoiner
from monitor.outputs import ClassIndex


def _batch(ids: list[str], ts: float) -> Batch:
    return Batch.from_arrays(np.zeros((len(ids), 1)), np.tile([[0.3, 0.7]], (len(ids), 1)),
                             ts=np.full(len(ids), ts), request_id=ids)


def test_a_held_bytes_label_names_its_class_after_a_restart() -> None:
    classes = ClassIndex(("cat", "dog"))
    joiner = LabelJoiner(capacity=100)
    joiner.join(10.0, ["a", "b"], [b"dog", np.bytes_(b"cat")], classes, regression=False)
    restored = LabelJoiner(capacity=100)
    restored.load_state_dict(decode_state(*encode_state(joiner.state_dict())))
    restored.remember(_batch(["a", "b"], 11.0))
    labeled, outcome = restored.join(12.0, [], [], classes, regression=False)
    assert outcome["joined"] == 2 and labeled.label.tolist() == [1, 0]
    assert classes.names == ["cat", "dog"]  # nothing learned from the labels


def test_bytes_answers_and_text_labels_are_one_class() -> None:
    classes = ClassIndex()
    answered = classes.lookup(np.array([b"cat", b"dog"], dtype=object))
    assert classes.names == ["cat", "dog"]
    assert classes.lookup(np.array(["dog", b"cat"], dtype=object), learn=False).tolist() == answered[::-1].tolist()
