"""Reference data: held-out, in-distribution rows with the model's outputs on them.

Detectors calibrate against a :class:`Reference` at construction (thresholds from a stated
false-alarm rate, bin edges, scales). It is plain arrays, never pickle, so that a reference
profile can be loaded from an untrusted path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Reference"]


@dataclass
class Reference:
    """Reference rows (never the training set).

    Attributes
    ----------
    numeric
        float64 ``(n, n_numeric)``, NaN for missing.
    categorical
        object ``(n, n_categorical)`` of ``str``/``None``.
    numeric_names, categorical_names
        Column names, matching the monitor's schema.
    scores
        The model's outputs on these rows: probabilities ``(n, k)`` or regression values ``(n,)``.
    labels
        Ground truth: class indices ``(n,)`` or regression targets, when known.
    classes
        Class names in column order.
    profile
        The :class:`monitor.profile.Profile` these rows were loaded with (exact statistics of the
        full reference file), or None: detectors then profile the rows themselves
        (:func:`monitor.profile.profile_of`) and cache the result here.
    embedding
        A user-supplied representation of these rows ``(n, e)`` (e.g. the model's penultimate
        layer), for detectors that measure similarity there (``probing`` with ``space: embedding``).
    """

    numeric: "np.ndarray"
    categorical: "np.ndarray"
    numeric_names: tuple[str, ...]
    categorical_names: tuple[str, ...] = ()
    scores: "np.ndarray | None" = None
    labels: "np.ndarray | None" = None
    classes: tuple[str, ...] = field(default=())
    profile: Any = field(default=None, repr=False, compare=False)
    embedding: "np.ndarray | None" = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(max(self.numeric.shape[0], self.categorical.shape[0]))

    @classmethod
    def from_arrays(
        cls,
        numeric: "np.ndarray",
        *,
        numeric_names: "tuple[str, ...] | list[str] | None" = None,
        categorical: "np.ndarray | None" = None,
        categorical_names: "tuple[str, ...] | list[str]" = (),
        scores: "np.ndarray | None" = None,
        labels: "np.ndarray | None" = None,
        classes: "tuple[str, ...] | list[str]" = (),
        embedding: "np.ndarray | None" = None,
    ) -> "Reference":
        """Build from in-memory arrays, validating shapes with errors that name the argument."""
        import numpy as np

        num = np.asarray(numeric, dtype=np.float64)
        if num.ndim != 2:
            raise ValueError(f"reference numeric must be 2-D (rows, features), got shape {num.shape}")
        n = num.shape[0]
        names = tuple(numeric_names) if numeric_names is not None else tuple(f"f{i}" for i in range(num.shape[1]))
        if len(names) != num.shape[1]:
            raise ValueError(f"reference numeric_names has {len(names)} names for {num.shape[1]} columns")
        cat = np.empty((n, 0), dtype=object) if categorical is None else np.asarray(categorical, dtype=object)
        if cat.ndim != 2 or cat.shape[0] != n or cat.shape[1] != len(tuple(categorical_names)):
            raise ValueError(f"reference categorical must be (rows={n}, {len(tuple(categorical_names))}), got {cat.shape}")
        sc = None if scores is None else np.asarray(scores, dtype=np.float64)
        if sc is not None and sc.shape[0] != n:
            raise ValueError(f"reference scores has {sc.shape[0]} rows, numeric has {n}")
        lab = None if labels is None else np.asarray(labels)
        if lab is not None and lab.shape[0] != n:
            raise ValueError(f"reference labels has {lab.shape[0]} rows, numeric has {n}")
        emb = None if embedding is None else np.asarray(embedding, dtype=np.float64)
        if emb is not None and (emb.ndim != 2 or emb.shape[0] != n):
            raise ValueError(f"reference embedding must be (rows={n}, width), got shape {emb.shape}")
        return cls(num, cat, names, tuple(categorical_names), sc, lab, tuple(str(c) for c in classes), embedding=emb)
