"""Columnar batches handed from the worker to the detectors.

The worker turns queued events into one :class:`Batch` (numpy arrays, one row per predicted
row) so that every detector updates vectorised. Labels that arrive later through ``feedback`` are
joined to their predictions and handed over as a :class:`LabeledBatch`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Batch", "LabeledBatch"]


@dataclass
class Batch:
    """Rows predicted by the model, in event-time order.

    Attributes
    ----------
    ts
        Event time of each row, Unix seconds, shape ``(n,)``.
    numeric
        Numeric features, float64 ``(n, n_numeric)``; missing values are NaN (and inf stays inf so
        that data-quality checks can count it).
    categorical
        Categorical features, object array ``(n, n_categorical)`` of ``str`` or ``None`` (missing).
    numeric_names, categorical_names
        Feature names of the columns above, from the configured schema.
    scores
        Classifier outputs as probabilities ``(n, k)`` (logits already turned into probabilities)
        or regression values ``(n,)``; ``None`` when the output kind has none (plain labels).
    logits
        The raw logits ``(n, k)`` when the model returns logits (for the energy score), else None.
    members
        Ensemble / MC-dropout member probabilities ``(n, s, k)`` when the output has a samples axis;
        ``scores`` is then their mean.
    predicted
        Predicted class index ``(n,)`` int64 for classifiers (argmax, or the label's index), else None.
    intervals
        Prediction intervals ``(n, 2)`` (lower, upper) for regression models that return them, or
        every quantile column ``(n, q)`` when the output spec lists ``quantiles``.
    client, request_id, segment
        Object arrays ``(n,)``; ``None`` where the caller gave none. ``client`` defaults to
        ``"anonymous"`` so that per-client detectors still see the global stream.
    embedding
        Optional user-supplied representation ``(n, e)`` (e.g. a penultimate layer) for the
        similarity detectors.
    numeric_unreadable
        ``(n, n_numeric)``, True where a numeric feature's value was no number (``"N/A"``, a
        list): NaN in ``numeric``, counted by data quality as ``wrong_type``, not as missing; None
        when every value was read.
    """

    ts: "np.ndarray"
    numeric: "np.ndarray"
    categorical: "np.ndarray"
    numeric_names: tuple[str, ...]
    categorical_names: tuple[str, ...]
    client: "np.ndarray"
    request_id: "np.ndarray"
    segment: "np.ndarray"
    scores: "np.ndarray | None" = None
    logits: "np.ndarray | None" = None
    members: "np.ndarray | None" = None
    predicted: "np.ndarray | None" = None
    intervals: "np.ndarray | None" = None
    embedding: "np.ndarray | None" = None
    classes: tuple[str, ...] = field(default=())
    numeric_unreadable: "np.ndarray | None" = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def n_rows(self) -> int:
        return len(self)

    def rows(self, index: "np.ndarray") -> "Batch":
        """The rows at ``index`` (positions, or a boolean mask), in its order: every per-row
        array is taken, the names and classes kept."""
        import dataclasses

        n = len(self)
        changes = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if hasattr(v, "shape") and v.shape[:1] == (n,):
                changes[f.name] = v[index]
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_arrays(
        cls,
        numeric: "np.ndarray",
        scores: "np.ndarray | None" = None,
        *,
        ts: "np.ndarray | float | None" = None,
        numeric_names: "tuple[str, ...] | None" = None,
        categorical: "np.ndarray | None" = None,
        categorical_names: tuple[str, ...] = (),
        client: "np.ndarray | list | str | None" = None,
        request_id: "np.ndarray | list | None" = None,
        segment: "np.ndarray | list | str | None" = None,
        predicted: "np.ndarray | None" = None,
        classes: tuple[str, ...] = (),
        **extra: "np.ndarray | None",
    ) -> "Batch":
        """Build a batch directly from arrays (tests, benchmarks, offline use).

        ``predicted`` defaults to the argmax of 2-D ``scores``; ``ts`` defaults to 0..n-1 seconds.
        Request ids are read as the intake reads them (:func:`monitor.events.request_id_text`: an
        id ``5.0`` joins the label of id ``5``); categorical values are kept as given, so that
        values that are not text count as ``wrong_type`` in data quality (the intake reads every
        value as text: :func:`monitor.cell_values.category_text`).
        """
        import numpy as np

        from monitor.events import request_id_text

        num = np.asarray(numeric, dtype=np.float64)
        if num.ndim == 1:
            num = num[None, :]
        n = num.shape[0]

        def column(v: object, default: object) -> "np.ndarray":
            if v is None or isinstance(v, str):
                out = np.empty(n, dtype=object)
                out[:] = default if v is None else v
                return out
            return np.asarray(v, dtype=object)

        ids = column(request_id, None)
        if request_id is not None:
            ids = np.array([request_id_text(v) for v in ids.tolist()], dtype=object)
        t = np.arange(n, dtype=np.float64) if ts is None else np.broadcast_to(np.asarray(ts, dtype=np.float64), (n,)).copy()
        sc = None if scores is None else np.asarray(scores, dtype=np.float64)
        if predicted is None and sc is not None and sc.ndim == 2:
            predicted = sc.argmax(axis=1)
        return cls(
            ts=t,
            numeric=num,
            categorical=np.empty((n, 0), dtype=object) if categorical is None else np.asarray(categorical, dtype=object),
            numeric_names=numeric_names or tuple(f"f{i}" for i in range(num.shape[1])),
            categorical_names=tuple(categorical_names),
            client=column(client, "anonymous"),
            request_id=ids,
            segment=column(segment, None),
            scores=sc,
            predicted=predicted,
            classes=classes,
            **extra,
        )


@dataclass
class LabeledBatch:
    """Predictions whose ground truth has arrived, joined by request id.

    ``ts`` is the event time of the *prediction* (windows of calibration are about the traffic
    the model served), ``label_ts`` the time the label arrived. ``label`` is a class index for
    classifiers (-1 when the label is not one of the known classes) or a float for regression;
    for a multi-label model (``output.kind: multilabel``) ``label`` is ``(n, k)``, 1.0 where the
    label of that column is present, 0.0 where it is not.
    """

    ts: "np.ndarray"
    label_ts: "np.ndarray"
    label: "np.ndarray"
    segment: "np.ndarray"
    scores: "np.ndarray | None" = None
    predicted: "np.ndarray | None" = None
    intervals: "np.ndarray | None" = None
    classes: tuple[str, ...] = field(default=())
    #: The rows' log-probabilities (classifiers): kept by the joiner instead of the probabilities
    #: (which are ``exp`` of them), so that a temperature fit sees the logits' scale where an
    #: over-confident model's small probabilities underflow.
    log_scores: "np.ndarray | None" = None
    #: Rows the joiner counted ``late`` (``monitor_feedback_labels_total``): beyond the window of
    #: every detector that reads labels, so a detector does not count them a second time as
    #: outside its window (None: no row is).
    late: "np.ndarray | None" = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])
