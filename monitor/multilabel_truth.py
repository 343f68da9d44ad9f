"""The ground truth of one row of a multi-label model (``output.kind: multilabel``), as
``feedback`` takes it: which of the model's labels are present.

Two forms are read, whichever the labelling tool writes:

* a 0/1 vector in the order of the model's columns (``output.classes``): ``[1, 0, 1]``, booleans
  or 0.0/1.0 alike (a row of a numpy array of such rows);
* the list of the names of the labels present: ``["cat", "outdoor"]``; ``[]`` says no label is.

Anything else is refused with the problem and the fix: a single class (``"cat"``, ``2``) is a
single-label model's ground truth, a vector of another length than the model's labels or a name
no column has cannot be joined to the row's probabilities. The label join
(:mod:`monitor.labels`) refuses such a label as ``invalid``, and the sidecar's intake refuses the
event at once with a 400 naming ``labels[i]`` where it knows the model's labels
(``output.classes``). Pure Python, no numpy: the intake reads it on the event loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["TruthError", "read_truth", "FORMS"]

#: What a multi-label ground truth is, for the messages that refuse one.
FORMS = ("a list of the names of the labels present (e.g. [\"cat\", \"outdoor\"]; [] for none), or a 0/1 vector of "
         "one entry per label in output.classes order")


class TruthError(ValueError):
    """A ground truth that no multi-label row can take: ``problem`` says what is wrong with it,
    ``fix`` what to send instead."""

    def __init__(self, problem: str, fix: str = f"give {FORMS}") -> None:
        super().__init__(f"{problem}. Fix: {fix}")
        self.problem = problem
        self.fix = fix


def _is_number(v: Any) -> bool:
    # numpy scalars too (a row of an array given as a list of rows keeps Python floats, one of
    # an object array its numpy ones), without importing numpy; an array among the entries is no
    # number (several values: float() of it raised TypeError, and the drain was lost as internal_error)
    return isinstance(v, (bool, int, float)) or (type(v).__module__ == "numpy" and hasattr(v, "dtype") and v.dtype.kind in "biuf"
                                                 and getattr(v, "ndim", 0) == 0)


def _listed(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def read_truth(label: Any, names: Sequence[str], width: int | None) -> tuple[int, ...]:
    """The columns of the labels present in ``label`` (sorted, without repeats).

    Parameters
    ----------
    label
        The ground truth as sent: a 0/1 vector or a list of label names (see the module).
    names
        The model's label names in column order (``output.classes``, or the names learned as
        ``0..k-1``); empty when not known yet (then a name is not checked).
    width
        The model's number of labels (columns); None when not known yet (then a vector's length
        is not checked).

    Raises
    ------
    TruthError
        For a label of neither form, a vector of another length, entries other than 0 and 1, or
        names no column has (listed, with the model's labels).
    """
    if hasattr(label, "tolist") and getattr(label, "ndim", 0) == 1:
        label = label.tolist()
    if not isinstance(label, (list, tuple)):
        what = "null" if label is None else f"one value ({str(label)[:40]!r})"
        raise TruthError(f"is {what}, and a multi-label model's ground truth says which of its labels are present")
    # names given as bytes are their UTF-8 text, as a single-label model's label and every id are
    # read (and as a forwarding worker writes them: JSON has no bytes)
    items = [bytes(v).decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v for v in label]
    if not items:
        return ()
    if all(isinstance(v, str) for v in items):
        if not names:
            return ()  # checked by the join, which knows the model's labels
        index = {n: i for i, n in enumerate(names)}
        unknown = list(dict.fromkeys(v for v in items if v not in index))
        if unknown:
            fix = ("name labels of the model (its labels: " + _listed(list(names)) + "); if those are column numbers, "
                   "list the model's label names under output.classes in the config, in column order")
            raise TruthError(f"names {', '.join(repr(v[:40]) for v in unknown[:3])}, which no column of the model is", fix)
        return tuple(sorted({index[v] for v in items}))
    if all(_is_number(v) for v in items):
        values = [float(v) for v in items]
        bad = [v for v in values if not (v == 0.0 or v == 1.0)]
        if bad:
            shown = ", ".join("NaN" if math.isnan(v) else f"{v:g}" for v in bad[:3])
            raise TruthError(f"is a vector holding {shown}: each entry says whether its label is present, 0 or 1 "
                             "(not a probability or a count)")
        if width is not None and len(values) != width:
            model = f"{width} labels" + (f" ({_listed(list(names[:width]))})" if names else "")
            raise TruthError(f"is a vector of {len(values)} entries, and the model has {model}")
        return tuple(i for i, v in enumerate(values) if v == 1.0)
    kinds = sorted({"a name" if isinstance(v, str) else "a number" if _is_number(v) else type(v).__name__ for v in items})
    raise TruthError(f"holds {', '.join(kinds)}: neither only label names nor only 0/1 entries")
