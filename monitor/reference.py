"""Reference data: held-out, in-distribution rows with the model's outputs on them.

Detectors calibrate against a :class:`Reference` at construction (thresholds from a stated
false-alarm rate, bin edges, scales). It is plain arrays, never pickle, so that a reference
profile can be loaded from an untrusted path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

__all__ = [
    "MAX_CHECKPOINT_REFERENCE_BYTES",
    "REFERENCE_STATE_VERSION",
    "Reference",
    "legacy_reference_fingerprint",
    "reference_fingerprint",
    "reference_from_state",
    "reference_state",
]


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
        The model's outputs on these rows: probabilities ``(n, k)`` (one column ``(n,)`` =
        P(positive) for a binary model) or regression values ``(n,)`` (``(n, 3)`` value, lower,
        upper, or ``(n, q)`` quantiles). For a monitor configured with ``output.kind: logits`` or
        ``output.samples_axis: true`` they may be given as the model returns them (logits,
        ``(n, samples, k)`` members): the monitor decodes them as it decodes live outputs.
    labels
        Ground truth: class names or indices ``(n,)`` (read as names of ``classes`` when each
        one is, whole numbers included, else as column indices), or regression targets, when known.
    classes
        Class names in column order.
    profile
        The :class:`monitor.profile.Profile` these rows were loaded with (exact statistics of the
        full reference file), or None: detectors then profile the rows themselves
        (:func:`monitor.profile.profile_of`) and cache the result here.
    embedding
        A user-supplied representation of these rows ``(n, e)`` (e.g. the model's penultimate
        layer), for detectors that measure similarity there (``probing`` with ``space: embedding``).
    pca_basis
        A :class:`monitor.profile.PCABasis` fitted on other rows (``from_arrays(pca_fit=...)``,
        typically the training set), or None: the multivariate drift detector's PCA is then fitted
        on these rows themselves.
    vocabularies
        Text feature -> the words live texts are read against (:mod:`monitor.text`). A text
        feature's rows are its descriptors among the numeric columns (``review.length``...), never
        the texts; its vocabulary gives live texts their ``oov_share``.
    tensor_names
        The tensor feature (images, audio, sequences: :mod:`monitor.tensor`), when the rows were
        given as an array of 3 or more dimensions: its rows are its descriptors among the numeric
        columns (``input.mean``...), never the tensors.
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
    pca_basis: Any = field(default=None, repr=False, compare=False)
    vocabularies: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    tensor_names: tuple[str, ...] = ()

    @property
    def text_names(self) -> tuple[str, ...]:
        """The text features (their descriptors are numeric columns)."""
        return tuple(self.vocabularies)

    @property
    def tensor_channels(self) -> int | None:
        """The channels the tensor feature's rows are described by one by one (0: none, as in a
        reference built before channels were described); None without a tensor feature."""
        if not self.tensor_names:
            return None
        from monitor.tensor import channels_in

        return channels_in(self.tensor_names[0], self.numeric_names)

    @property
    def pca_names(self) -> tuple[str, ...]:
        """The numeric features the multivariate drift's PCA reads: every one, a tensor's channel
        descriptors too (a colour cast that keeps each image's overall mean and std is a change in
        how the channels' means relate). They were left out while the PCA calibrated on
        cross-fitted errors: near-duplicates of the overall descriptors (grey images' channel
        means) made the share of variance kept cut between near-equal directions, and healthy
        images alarmed in 7 streams of 160 (see :class:`monitor.profile.PCAProfile`)."""
        return tuple(self.numeric_names)

    @property
    def derived(self) -> tuple[Any, ...]:
        """The derived features whose columns are among the numeric ones (:mod:`monitor.derived`):
        each text feature against its vocabulary, the tensor feature with its channels."""
        from monitor.derived import TensorDerived, TextDerived

        return (tuple(TextDerived(t, frozenset(v)) for t, v in self.vocabularies.items())
                + tuple(TensorDerived(t, self.tensor_channels or 0) for t in self.tensor_names))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The input features as the model reads them: the numeric ones (without the derived
        features' columns), the categorical ones, the text ones, the tensor one."""
        if not self.vocabularies and not self.tensor_names:
            return tuple(self.numeric_names) + tuple(self.categorical_names)
        described = {n for d in self.derived for n in d.columns}
        return (tuple(n for n in self.numeric_names if n not in described) + tuple(self.categorical_names)
                + self.text_names + tuple(self.tensor_names))

    def __post_init__(self) -> None:
        if self.pca_basis is None:
            return
        import numpy as np

        self.pca_basis = self.pca_basis.aligned(self.pca_names)
        prof = self.profile
        if prof is None:
            return
        if _profile_is_source(self):
            raise ValueError("reference pca_basis: this reference was read from a saved profile, whose PCA was fitted "
                             "when it was built. Fix: rebuild the profile with 'monitor reference build ... --pca-fit "
                             "TRAINING_DATA'")
        pca = getattr(prof, "pca", None)
        if pca is None or not np.array_equal(pca.components, self.pca_basis.components):
            self.profile = None  # derived without this basis (dataclasses.replace): derived again on use

    def __len__(self) -> int:
        return int(max(self.numeric.shape[0], self.categorical.shape[0]))

    def save(self, path: str | Path) -> Path:
        """Write this reference as the profile ``monitor reference build`` writes (one ``.npz``, no
        pickle), which ``reference.path`` and ``get_monitor(reference=...)`` take:
        ``Profile.from_reference(self).save(path)``. Why here: a reference built in code had no
        ``save``, and the way to keep it was said only beside images."""
        from monitor.profile import Profile

        return Profile.from_reference(self).save(path)

    @classmethod
    def from_arrays(
        cls,
        numeric: "np.ndarray | None" = None,
        *,
        numeric_names: "tuple[str, ...] | list[str] | None" = None,
        categorical: "np.ndarray | None" = None,
        categorical_names: "tuple[str, ...] | list[str]" = (),
        scores: "np.ndarray | None" = None,
        labels: "np.ndarray | None" = None,
        classes: "tuple[str, ...] | list[str]" = (),
        embedding: "np.ndarray | None" = None,
        pca_fit: Any = None,
        text: Any = None,
        text_names: "tuple[str, ...] | list[str] | None" = None,
        channel_axis: int | None = None,
    ) -> "Reference":
        """Build from in-memory arrays, validating shapes with errors that name the argument.

        ``pca_fit``: rows to fit the multivariate drift detector's PCA on instead of the
        reference's own, typically the training set (an array with the numeric features' columns
        in order, or a DataFrame holding them by name). Only the PCA's directions come from them;
        its false-alarm calibration stays on the reference rows, every one of them, so that a small
        reference loses no power to PCAs found in a few hundred rows, each with a tenth of them held
        out (see :class:`monitor.profile.PCABasis`).

        ``numeric`` may be a pandas DataFrame: its column names become the feature names (the
        names the monitor learns from DataFrame inputs); the columns ``categorical_names``
        names, else its non-numeric columns (strings, ``category``, as ``observe`` reads a
        DataFrame), become the categorical features, and columns given apart as
        ``categorical=`` are left out of the numeric ones. Missing categorical values (None,
        NaN, ``pd.NA``) are missing, not a category named "nan"; other values are compared as
        text, numbers by one text whatever their type (7 and 7.0 are "7", as live values are
        read: :func:`monitor.cell_values.category_text`).

        >>> import pandas as pd
        >>> df = pd.DataFrame({"amount": [9.5, 120.0], "zip": [75001, 75002], "channel": ["web", None]})
        >>> ref = Reference.from_arrays(df, categorical_names=["channel", "zip"])
        >>> ref.numeric_names, ref.categorical_names, ref.categorical.tolist()
        (('amount',), ('channel', 'zip'), [['web', '75001'], [None, '75002']])

        Free text (a review, a query) is a text feature, monitored through numbers that describe
        each text (:mod:`monitor.text`): ``text`` (rows, text features) with ``text_names``, or
        a DataFrame's columns named by ``text_names``. A DataFrame's object columns that hold
        free text (mostly unique values of several words, or long ones) are found without being
        named, and said once; ``text_names=[]`` finds none, and a column named in
        ``categorical_names`` stays categorical. Without ``numeric`` (a model of text alone, an
        LLM's prompts: ``from_arrays(text=prompts, text_names=["prompt"])``) the reference has
        no numeric features, its rows those of ``text`` (or of ``categorical``).

        Images, audio, sequences: ``numeric`` of 3 or more dimensions (``(n, c, h, w)``; a
        PyTorch or TensorFlow tensor is read as numpy) is ``n`` rows of one tensor feature,
        ``input`` or the one name ``numeric_names`` gives, profiled through numbers that describe
        each row (:mod:`monitor.tensor`), as live inputs of that shape are read; its channels
        (axis 1 of ``(n, 3, h, w)``, axis 3 of ``(n, h, w, 3)``) each by their mean and std.
        ``channel_axis`` names the channels' axis where the shape does not tell (``(n, 3, 4, 3)``),
        or a channel axis not recognised (stereo audio ``(n, 2, samples)``: 1); 0 for none.
        """
        import numpy as np

        from monitor.cell_values import ComplexValues, categorical_text, real_numbers, time_seconds
        from monitor.events import is_dataframe
        from monitor.ingest import as_numpy, integer_array, unmasked

        # masked arrays with their masked entries missing (np.asarray reads the values they hide)
        categorical, text, scores, embedding = unmasked(categorical), unmasked(text), unmasked(scores), unmasked(embedding)
        if numeric is None:
            numeric = np.empty((_rows_without_numeric(text, categorical), 0))
        numeric = unmasked(as_numpy(numeric))
        if isinstance(numeric, np.ndarray) and numeric.ndim >= 3:
            return cls._from_tensor(numeric, numeric_names, categorical, text, text_names, channel_axis, scores=scores,
                                    labels=labels, classes=classes, embedding=embedding, pca_fit=pca_fit)
        if is_dataframe(numeric):
            _check_unique("DataFrame's columns", [str(c) for c in numeric.columns],
                          "give each column its own name (df.columns = [...]): features are read by name")
            numeric, text, text_names = _text_frame(numeric, text, text_names, categorical_names)
            numeric, numeric_names, categorical, categorical_names = _split_frame(
                numeric, numeric_names, categorical, categorical_names)
        _refuse_complex(numeric, "numeric")
        numeric = _times_as_seconds(numeric)
        try:
            if is_dataframe(numeric):  # to_numpy: pandas' NA (nullable integer columns) becomes NaN
                num = numeric.to_numpy(dtype="float64", na_value=float("nan"))
            elif getattr(getattr(numeric, "dtype", None), "kind", None) in ("m", "M"):
                num = time_seconds(np.asarray(numeric))  # seconds, as live arrays of them are read (not days, or ns)
            else:
                num = real_numbers(numeric)  # complex numbers refused in a list too (their real parts were kept)
        except ComplexValues:
            raise _complex_error(numeric, "numeric") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"reference numeric must hold numbers only ({exc}). Fix: pass text columns as "
                             "categorical=..., categorical_names=..., or pass the pandas DataFrame itself "
                             "(its non-numeric columns become categorical features)") from None
        if num.ndim != 2:
            raise ValueError(f"reference numeric must be 2-D (rows, features), got shape {num.shape}")
        n = num.shape[0]
        # names as text, as a DataFrame's are: an integer name failed later, inside Monitor(reference=...)
        names = tuple(map(str, numeric_names)) if numeric_names is not None else tuple(f"f{i}" for i in range(num.shape[1]))
        if len(names) != num.shape[1]:
            raise ValueError(f"reference numeric_names has {len(names)} names for {num.shape[1]} columns")
        categorical_names = tuple(map(str, categorical_names))
        _check_unique("numeric_names and categorical_names", names + categorical_names, "give each feature its own name")
        _refuse_columns_without_values(num, names)
        if is_dataframe(categorical):
            categorical_names = tuple(categorical_names) or tuple(str(c) for c in categorical.columns)
            categorical = categorical.to_numpy(dtype=object)
        cat = np.empty((n, 0), dtype=object) if categorical is None else categorical_text(np.asarray(categorical, dtype=object))
        if cat.ndim != 2 or cat.shape[0] != n or cat.shape[1] != len(tuple(categorical_names)):
            raise ValueError(f"reference categorical must be (rows={n}, {len(tuple(categorical_names))}), got {cat.shape}")
        if integer_array(scores):
            # clf.predict(X) where clf.predict_proba(X) was meant: a classifier's detectors read the
            # labels 0 and 1 as probabilities (confidence 1 on every reference row), the live outputs
            # then "drifting" from them; live, such outputs are refused (labels_as_probabilities)
            import logging

            logging.getLogger("monitor").warning(
                "reference scores are integers (%s): class labels from predict(), not probabilities? A classifier's "
                "detectors read them as probabilities 0 and 1. Fix: scores=clf.predict_proba(X) (a regression model's "
                "whole-number predictions are fine as they are)", scores.dtype)
        sc = None if scores is None else _per_row(scores, "scores", n, numbers=True)
        lab = None if labels is None else _per_row(labels, "labels", n)
        emb = None if embedding is None else _per_row(embedding, "embedding", n, numbers=True)
        if emb is not None and emb.ndim != 2:
            raise ValueError(f"reference embedding must be (rows={n}, width), got shape {emb.shape}")
        vocabularies: dict[str, tuple[str, ...]] = {}
        if text is not None or text_names:
            num, names, vocabularies = _with_text(num, names, text, tuple(str(t) for t in (text_names or ())))
        basis = None if pca_fit is None else _pca_basis(pca_fit, names)
        return cls(num, cat, names, tuple(categorical_names), sc, lab, tuple(str(c) for c in classes), embedding=emb,
                   pca_basis=basis, vocabularies=vocabularies)

    @classmethod
    def _from_tensor(cls, rows: "np.ndarray", names: Any, categorical: Any, text: Any, text_names: Any,
                     channel_axis: int | None, **rest: Any) -> "Reference":
        """:meth:`from_arrays` of rows of one tensor feature: their descriptors as its numeric
        rows, validated as such (a ``pca_fit`` may be tensors too)."""
        import dataclasses

        import numpy as np

        from monitor.ingest import as_numpy

        from monitor.derived import TensorDerived

        described, name, channels = _tensor_reference(rows, names, channel_axis, None, (categorical, text, text_names))
        fit = as_numpy(rest.pop("pca_fit"))
        if isinstance(fit, np.ndarray) and fit.ndim >= 3:
            fit = _tensor_reference(fit, names, channel_axis, channels)[0]
        columns = TensorDerived(name, channels).columns
        ref = cls.from_arrays(described, numeric_names=columns, **rest)
        # the PCA reads every descriptor (Reference.pca_names), the channels' too, its directions too
        basis = None if fit is None else _pca_basis(np.asarray(fit), columns)
        return dataclasses.replace(ref, tensor_names=(name,), pca_basis=basis)


def _refuse_complex(value: Any, what: str) -> None:
    """ValueError for an array of complex numbers, which float64 keeps the real parts of (numpy's
    ComplexWarning the only sign)."""
    if getattr(getattr(value, "dtype", None), "kind", None) == "c":
        raise _complex_error(value, what)


def _complex_error(value: Any, what: str) -> ValueError:
    """The error naming ``what`` given as complex numbers: an array of them, or a list holding them
    (:func:`monitor.cell_values.real_numbers`)."""
    from monitor.cell_values import complex_form

    return ValueError(f"reference {what} are complex numbers ({complex_form(value)}); the monitor reads real ones. Fix: give "
                      "real numbers, as the model is monitored with (e.g. x.real and x.imag as features of their own)")


def _times_as_seconds(numeric: Any) -> Any:
    """``numeric`` (rows given as lists or an object array, not a DataFrame) with its durations
    and points in time as seconds (since 1970 UTC for the latter: :func:`monitor.temporal.temporal_seconds`),
    as live rows of them are read under numeric features. Why: ``float()`` read a numpy time
    scalar as a count of its unit (``np.timedelta64(2000, 'ms')`` as 2000), and refused Python's
    ``datetime.timedelta`` with a fix about text columns. Rows of plain numbers are returned as
    numpy reads them (one conversion, as before); an array of one time dtype is left as it is
    (the caller reads it)."""
    import numpy as np

    from monitor.cell_values import numpy_times_only
    from monitor.events import is_dataframe
    from monitor.temporal import temporal_seconds

    if is_dataframe(numeric) or not isinstance(numeric, (list, tuple, np.ndarray)):
        return numeric
    if not isinstance(numeric, np.ndarray):
        try:
            inferred = np.asarray(numeric)
        except (TypeError, ValueError):
            return numeric  # ragged rows: refused as they are
        if inferred.dtype.kind in "mM" and not numpy_times_only(numeric):
            inferred = np.asarray(numeric, dtype=object)  # numbers beside a duration: numpy made them durations
        if inferred.dtype.kind != "O":
            return inferred if inferred.dtype.kind in "biufmM" else numeric  # text: refused in its own words
        numeric = inferred
    if numeric.dtype.kind != "O":
        return numeric
    flat = numeric.ravel()
    seconds = [None if isinstance(v, str) else temporal_seconds(v) for v in flat]
    if all(t is None for t in seconds):
        return numeric
    return np.array([v if t is None else t for v, t in zip(flat, seconds)], dtype=object).reshape(numeric.shape)


def _refuse_columns_without_values(num: "np.ndarray", names: tuple[str, ...]) -> None:
    """ValueError naming the numeric columns that hold no finite value in any reference row and
    are not missing throughout (infinite in every row, or NaN and infinite only): a live feature
    has no distribution there to be compared with, and such a column was taken without a word (no
    drift figure at all for it, only ``monitor_data_reference_invalid_ratio{reason="inf"}`` 1). A
    column missing (NaN) in every row is kept, as a feature the reference never has (the drift
    detector names it "missing 100% -> ..." when live values arrive); a column with some missing
    or infinite values is a reference like any other."""
    import numpy as np

    if not num.shape[0] or not num.shape[1]:
        return
    empty = np.flatnonzero(~np.isfinite(num).any(axis=0))
    if not empty.size:
        return
    broken = empty[~np.isnan(num[:, empty]).all(axis=0)]
    if not broken.size:
        return
    listed = ", ".join(repr(names[i]) for i in broken[:10]) + (f" and {len(broken) - 10} more" if len(broken) > 10 else "")
    what = "infinite" if np.isinf(num[:, broken[0]]).all() else "NaN or infinite"
    raise ValueError(f"reference numeric column(s) {listed} hold no finite value ({what} in all {num.shape[0]} rows): "
                     "live values of such a feature have no distribution to be compared with. Fix: give reference rows "
                     "where it has values (infinite values everywhere are a computation gone wrong, a division by "
                     "zero?), or leave the column out of the reference and of features:; a column with some infinite "
                     "or missing values is fine")


def _per_row(value: Any, what: str, rows: int, numbers: bool = False) -> "np.ndarray":
    """``scores``, ``labels`` or ``embedding`` as an array of one entry per reference row (float64
    for ``numbers``), or ValueError naming the argument: a single value raised IndexError, text
    among scores a ValueError that named no argument, None a TypeError."""
    import numpy as np

    from monitor.cell_values import ComplexValues, real_numbers

    try:
        # complex numbers refused, in an array or a list (whose real parts a float64 cast kept)
        arr = real_numbers(value) if numbers else np.asarray(value)
    except ComplexValues:
        raise _complex_error(value, what) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"reference {what} must hold numbers only ({str(exc)[:120]}). Fix: give the model's {what} "
                         f"for the reference rows, one row of numbers each") from None
    if arr.ndim == 0:
        raise ValueError(f"reference {what} is one value ({arr.item()!r:.40}); give one per reference row ({rows})")
    if arr.shape[0] != rows:
        raise ValueError(f"reference {what} has {arr.shape[0]} rows, numeric has {rows}")
    return arr


def _check_unique(what: str, names: "tuple[str, ...] | list[str]", fix: str) -> None:
    """ValueError naming a name given twice (features are read by name: one shadowed the other)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"reference {what} hold {name!r} twice. Fix: {fix}")
        seen.add(name)


def _rows_without_numeric(text: Any, categorical: Any) -> int:
    """The rows of a reference given no ``numeric``: those of its text, else of its categorical
    features, or ``ValueError`` naming the fix when neither is given."""
    given = text if text is not None else categorical
    if given is None:
        raise ValueError("Reference.from_arrays needs the reference rows: numeric=... (rows, numeric features), or "
                         "text=... with text_names=... (a model of text alone), or categorical=... with "
                         "categorical_names=...")
    shape = getattr(given, "shape", None)
    if shape:
        return int(shape[0])
    if shape is None and hasattr(given, "__len__") and not isinstance(given, (str, bytes)):
        return len(given)
    # a 0-d array (np.array("abc")), one string or number: no rows (len() raised a bare TypeError)
    what = "text" if text is not None else "categorical"
    example = 'text=["first text", "second text"] with text_names=["prompt"]' if what == "text" else \
        'categorical=[["web"], ["app"]] with categorical_names=["channel"]'
    raise ValueError(f"reference {what} must be (rows, one column per name in {what}_names), got one value "
                     f"({given!r:.40}). Fix: pass a list or array of the reference rows, e.g. {example}")


def _tensor_reference(rows: "np.ndarray", names: Any, channel_axis: int | None, channels: int | None,
                      others: tuple[Any, ...] = ()) -> tuple["np.ndarray", str, int]:
    """The descriptors of rows of one tensor feature, its name and the channels described (with
    ``channels`` those of the rows already described), or ``ValueError`` naming the fix."""
    from monitor import tensor

    if any(o is not None and not (isinstance(o, (list, tuple)) and not o) for o in others):
        raise ValueError(f"reference numeric of shape {rows.shape} is one tensor feature (images, audio, sequences), the "
                         "model's whole input: it takes no categorical or text features beside it. Fix: build the "
                         "reference from the tensor alone, as the model is called")
    names = tuple(str(n) for n in names) if names is not None else (tensor.DEFAULT_NAME,)
    if len(names) != 1:
        raise ValueError(f"reference numeric of shape {rows.shape} is one tensor feature; numeric_names names it with one "
                         f"name, got {len(names)}. Fix: numeric_names=['image'], or leave it out (named "
                         f"{tensor.DEFAULT_NAME!r})")
    if rows.dtype.kind not in "biuf":
        raise ValueError(f"reference numeric of shape {rows.shape} must hold numbers, got dtype {rows.dtype}")
    from monitor.derived import TensorDerived

    try:
        described, fixed = TensorDerived(names[0], channels, channel_axis).fit(rows)
    except tensor.ChannelError as err:
        raise ValueError(f"reference numeric: {err}. Fix: pass channel_axis= (the channels' axis of the array, 1 for "
                         "(n, c, h, w); 0 for none) to Reference.from_arrays, the same for pca_fit") from None
    return described, names[0], fixed.channels or 0


def _with_text(num: "np.ndarray", names: tuple[str, ...], text: Any, text_names: tuple[str, ...]
               ) -> tuple["np.ndarray", tuple[str, ...], dict[str, tuple[str, ...]]]:
    """The numeric rows with the descriptors of each text feature after them, their names, and
    each text feature's vocabulary (:func:`monitor.text.reference_descriptors`)."""
    import numpy as np

    from monitor.derived import Clash, TextDerived
    from monitor.events import is_dataframe

    if is_dataframe(text):
        text_names = text_names or tuple(str(c) for c in text.columns)
        text = text.to_numpy(dtype=object)
    cells = np.asarray(text, dtype=object) if text is not None else np.empty((num.shape[0], 0), dtype=object)
    if cells.ndim == 1 and len(text_names) == 1:
        cells = cells[:, None]
    if cells.ndim != 2 or cells.shape[0] != num.shape[0] or cells.shape[1] != len(text_names):
        raise ValueError(f"reference text must be (rows={num.shape[0]}, {len(text_names)} text_names), got shape "
                         f"{cells.shape}. Fix: one column of texts per name in text_names")
    taken = set(names)
    parts, vocabularies = [num], {}
    for j, name in enumerate(text_names):
        derived = TextDerived(name, frozenset())  # with oov_share: the reference fixes a vocabulary
        described = derived.columns
        if name in taken:
            raise ValueError(f"reference text feature {name!r} clashes with a numeric feature of that name. Fix: "
                             "give it another name")
        clash = next((Clash(c, derived) for c in described if c in taken), None)
        if clash is not None:
            raise ValueError(f"reference numeric feature {clash.problem}. Fix: {clash.fix}")
        rows, vocabularies[name] = TextDerived(name).fit(cells[:, j].tolist())
        parts.append(rows)
        names += described
    return np.hstack(parts), names, vocabularies


def _text_frame(frame: Any, text: Any, text_names: Any, categorical_names: Any) -> tuple[Any, Any, Any]:
    """The frame without its text columns, those columns, and their names: the columns
    ``text_names`` names, else (``text_names`` None, no ``text=`` given) the object columns that
    hold free text (:func:`monitor.text.is_free_text`), said once with the way to override."""
    if text is not None:
        return frame, text, text_names
    columns = {str(c): c for c in frame.columns}
    if text_names is None:
        from monitor.temporal import TEXT_SAMPLE
        from monitor.text import is_free_text

        named = {str(n) for n in categorical_names}
        found = [n for n, c in columns.items() if n not in named and (getattr(frame[c].dtype, "kind", "O") == "O"
                 or str(frame[c].dtype) == "string") and is_free_text(frame[c].head(TEXT_SAMPLE).tolist())]
        if found:
            import logging

            from monitor.derived import TextDerived

            logging.getLogger("monitor").warning(
                "the reference DataFrame's column(s) %s hold free text: monitored through numbers describing each text "
                "(%s), not as categories. Fix: to read one as categories, list it in categorical_names; "
                "text_names=[] reads none as text", ", ".join(map(repr, found)), ", ".join(TextDerived(found[0], frozenset()).columns))
        text_names = found
    text_names = tuple(str(n) for n in text_names)
    absent = [n for n in text_names if n not in columns]
    if absent:
        raise ValueError(f"reference text_names {absent} are not columns of the DataFrame ({', '.join(columns)}). "
                         "Fix: name columns it has")
    if not text_names:
        return frame, None, ()
    cols = [columns[n] for n in text_names]
    return frame.drop(columns=cols), frame[cols], text_names


def _pca_basis(rows: Any, names: tuple[str, ...]) -> Any:
    """The :class:`~monitor.profile.PCABasis` of ``pca_fit`` rows, refused with the fix named."""
    import numpy as np

    from monitor.events import is_dataframe
    from monitor.profile import fit_pca_basis

    if is_dataframe(rows):
        by_name = {str(c): c for c in rows.columns}  # the reference names a frame's columns as text
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f"reference pca_fit lacks the numeric feature(s) {', '.join(missing)}. Fix: pass rows "
                             "with every numeric feature of the reference (e.g. the training set's feature columns)")
        rows = rows[[by_name[n] for n in names]]
        try:
            x = rows.to_numpy(dtype="float64", na_value=float("nan"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"reference pca_fit must hold numbers in the numeric features' columns ({exc})") from None
    else:
        try:
            x = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"reference pca_fit must hold numbers only ({exc})") from None
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"reference pca_fit must be (rows, {len(names)} numeric features in the reference's order), "
                         f"got shape {x.shape}")
    basis = fit_pca_basis(x, names)
    if basis is None:
        raise ValueError(f"reference pca_fit has {x.shape[0]} rows of {x.shape[1]} features: a PCA needs at least 20 "
                         "rows and 2 numeric features. Fix: pass more rows, or leave pca_fit out (the PCA is then "
                         "fitted on the reference)")
    return basis


def _split_frame(frame: Any, numeric_names: Any, categorical: Any, categorical_names: Any) -> tuple[Any, Any, Any, Any]:
    """A DataFrame's numeric columns and its categorical ones, named after the columns: those
    named by ``categorical_names``, else those that are not numbers (the rule ``observe`` learns
    a schema from DataFrame inputs with, :meth:`monitor.schema_learning.SchemaLearner.learn`, but
    for texts among the numbers: here one makes the column categorical, and the live schema, learned
    with the reference's kinds, keeps it so).
    Categorical columns given apart (``categorical=``) are left out of the numeric ones."""
    frame = _temporal_columns(frame, categorical_names)
    columns = [str(c) for c in frame.columns]
    if categorical is None:
        if tuple(categorical_names):  # the columns named categorical (integer codes, say)
            named = {str(n) for n in categorical_names}
            absent = sorted(named - set(columns))
            if absent:
                raise ValueError(f"reference categorical_names {absent} are not columns of the DataFrame "
                                 f"({', '.join(columns)}). Fix: name columns it has")
            is_cat = [c in named for c in columns]
            categorical_names = tuple(str(c) for c in categorical_names)
            cat_cols = [next(c for c in frame.columns if str(c) == n) for n in categorical_names]
        else:
            from monitor.schema_learning import LEARN_ROWS, holds_numbers

            is_cat = [getattr(dt, "kind", "O") not in "biuf" and not (
                getattr(dt, "kind", "O") == "O" and holds_numbers(frame[c].head(LEARN_ROWS).tolist()))
                for c, dt in zip(frame.columns, frame.dtypes)]
            cat_cols = [c for c, cat in zip(frame.columns, is_cat) if cat]
            categorical_names = tuple(str(c) for c in cat_cols)
        if cat_cols:
            categorical = frame[cat_cols]
        frame = _objects_as_floats(frame[[c for c, cat in zip(frame.columns, is_cat) if not cat]])
        columns = [str(c) for c in frame.columns]
    else:  # given apart: the frame's columns of those names are not numeric
        from monitor.events import is_dataframe

        if not tuple(categorical_names) and is_dataframe(categorical):
            categorical_names = tuple(str(c) for c in categorical.columns)
        named = {str(n) for n in categorical_names}
        frame = frame[[c for c in frame.columns if str(c) not in named]]
        columns = [str(c) for c in frame.columns]
    if numeric_names is None:
        numeric_names = tuple(columns)
    return frame, numeric_names, categorical, categorical_names


def _objects_as_floats(frame: Any) -> Any:
    """``frame`` with its numeric columns of Python objects (``Decimal``...) as floats, their gaps
    (None, pandas' NA) NaN, which ``to_numpy(na_value=...)`` leaves as they are in an object
    column; a column that does not convert is left as it is (refused, named, by the caller)."""
    objects = [c for c, dt in zip(frame.columns, frame.dtypes) if getattr(dt, "kind", "O") == "O"]
    if not objects:
        return frame
    frame = frame.copy()
    for c in objects:
        try:
            frame[c] = frame[c].where(frame[c].notna(), float("nan")).astype("float64")
        except (TypeError, ValueError):
            continue
    return frame


def _temporal_columns(frame: Any, categorical_names: Any) -> Any:
    """The frame with its durations as seconds and its points in time left out (said once), as
    live inputs are read (:mod:`monitor.temporal`); columns named categorical stay as they are."""
    from monitor.temporal import TEXT_SAMPLE, is_duration_dtype, is_point_in_time_dtype, is_point_in_time_text, left_out_message

    named = {str(n) for n in categorical_names}
    times = [c for c, dt in zip(frame.columns, frame.dtypes) if str(c) not in named and (
        is_point_in_time_dtype(dt) or (getattr(dt, "kind", "O") in "OSU" or str(dt) == "string")
        and is_point_in_time_text(frame[c].head(TEXT_SAMPLE * 4).tolist()))]
    durations = [c for c, dt in zip(frame.columns, frame.dtypes) if is_duration_dtype(dt) and str(c) not in named]
    if not times and not durations:
        return frame
    if times:
        import logging

        logging.getLogger("monitor").warning(left_out_message(times, "the reference DataFrame's column(s)"))
    frame = frame.drop(columns=times)
    if durations:
        frame = frame.assign(**{str(c): frame[c].dt.total_seconds() for c in durations})
    return frame


# -- checkpointing -------------------------------------------------------------------------------
#: Version of the tree :func:`reference_state` writes (inside a checkpoint, see :mod:`monitor.checkpoint`).
REFERENCE_STATE_VERSION = 1
#: A reference whose arrays exceed this many bytes is fingerprinted but not copied into
#: checkpoints (they are rewritten every interval, so they must stay small). A reference loaded
#: from ``reference.path`` is a profile with a bounded row sample (5,000 rows by default) and
#: stays far below it; only very large references passed in code reach it, and code passes them
#: again on restart.
MAX_CHECKPOINT_REFERENCE_BYTES = 32 * 2**20

_DATACLASS = "__dataclass__"


def _profile_is_source(reference: Reference) -> bool:
    """Whether the rows *are* the profile's sample (a reference read from a profile or a data
    file), rather than rows whose profile was derived and cached by a detector. Only a source
    profile is part of the reference's identity: a derived one is recomputed from the rows."""
    prof = reference.profile
    if prof is None:
        return False
    sample = getattr(prof, "sample", None)
    if sample is None:
        return len(reference) == 0
    return sample.numeric is reference.numeric


def _payload(reference: Reference) -> dict[str, Any]:
    """The reference as a tree of plain values and numpy arrays (what identifies it)."""
    if _profile_is_source(reference):
        return {"profile": _to_tree(reference.profile), "rows": None, "embedding": reference.embedding}
    rows = {
        "numeric": reference.numeric,
        "categorical": reference.categorical,
        "numeric_names": tuple(reference.numeric_names),
        "categorical_names": tuple(reference.categorical_names),
        "scores": reference.scores,
        "labels": reference.labels,
        "classes": tuple(reference.classes),
    }
    if reference.pca_basis is not None:  # only then: references without one keep their fingerprints
        rows["pca_basis"] = _to_tree(reference.pca_basis)
    if reference.vocabularies:  # likewise
        rows["vocabularies"] = {k: tuple(v) for k, v in reference.vocabularies.items()}
    if reference.tensor_names:  # likewise
        rows["tensor_names"] = tuple(reference.tensor_names)
    return {"profile": None, "rows": rows, "embedding": reference.embedding}


def _classes() -> dict[str, type]:
    from monitor import profile as P

    return {c.__name__: c for c in (P.Profile, P.NumericProfile, P.CategoricalProfile, P.PCAProfile,
                                      P.PCAFold, P.PCABasis, P.OutputProfile, Reference)}


def _to_tree(obj: Any) -> Any:
    """Dataclasses of the profile module (a closed list) become tagged dicts of their fields."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        if name not in _classes():
            raise TypeError(f"a {name} inside a reference cannot be checkpointed")
        return {_DATACLASS: name, "fields": {f.name: _to_tree(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, tuple):
        return tuple(_to_tree(v) for v in obj)
    if isinstance(obj, list):
        return [_to_tree(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _to_tree(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)) or _is_array_or_scalar(obj):
        return obj
    return repr(obj)  # free-form metadata (e.g. a Path in a profile's meta) is kept as text


def _is_array_or_scalar(obj: Any) -> bool:
    import numpy as np

    return isinstance(obj, (np.ndarray, np.generic))


def _from_tree(obj: Any, classes: dict[str, type]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_DATACLASS, "fields"}:
            cls = classes.get(obj[_DATACLASS])
            if cls is None:
                raise ValueError(f"unknown class {obj[_DATACLASS]!r} in a checkpointed reference")
            return cls(**{k: _from_tree(v, classes) for k, v in obj["fields"].items()})
        return {k: _from_tree(v, classes) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_from_tree(v, classes) for v in obj)
    if isinstance(obj, list):
        return [_from_tree(v, classes) for v in obj]
    return obj


def _hash_into(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``obj`` to ``h``: equal content, equal digest,
    whether a value is a numpy scalar or a Python one (a checkpoint round trip turns the former
    into the latter) and whatever a dict's insertion order."""
    import numpy as np

    if obj is None:
        h.update(b"N")
    elif isinstance(obj, bool):
        h.update(b"T" if obj else b"F")
    elif isinstance(obj, np.generic):
        _hash_into(h, obj.item())
    elif isinstance(obj, int):
        h.update(b"i%d;" % obj)
    elif isinstance(obj, float):
        h.update(b"f" + repr(obj).encode() + b";")
    elif isinstance(obj, (str, bytes)):
        raw = obj.encode("utf-8", "surrogatepass") if isinstance(obj, str) else obj
        h.update(b"s%d:" % len(raw) + raw)
    elif isinstance(obj, np.ndarray):
        h.update(b"A" + repr(obj.shape).encode())
        if obj.dtype.kind == "O":
            for v in obj.ravel().tolist():
                _hash_into(h, v)
        else:
            h.update(obj.dtype.str.encode() + b":")
            h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (tuple, list)):
        h.update(b"(%d" % len(obj))
        for v in obj:
            _hash_into(h, v)
    elif isinstance(obj, dict):
        h.update(b"{%d" % len(obj))
        for k in sorted(obj, key=repr):
            _hash_into(h, k)
            _hash_into(h, obj[k])
    else:
        raise TypeError(f"a {type(obj).__name__} cannot be fingerprinted")


def _nbytes(obj: Any) -> int:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return int(obj.nbytes) if obj.dtype.kind != "O" else 64 * int(obj.size)
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(v) for v in obj)
    return 0


#: Fields of the profile's dataclasses added after fingerprints were introduced that are summaries
#: of the same data (not what the detectors' states are counted against): left out of a profile's
#: identity. Hashed with the rest, ``CategoricalProfile.n_beyond`` (a field even when ``None``, in a
#: profile saved before it was recorded) gave every profile with a categorical feature a new
#: fingerprint after an upgrade: each restart then set the detectors' states aside as calibrated
#: on another reference, and a checkpoint whose reference file was gone was refused whole ("does
#: not match its fingerprint").
_NOT_IDENTITY: dict[str, frozenset[str]] = {"CategoricalProfile": frozenset({"n_beyond"})}
#: Fields that describe where a profile came from, not what is in it: the file's base name
#: (``source``, ``pca_fit_source``) and build time in ``Profile.meta``. Hashed, renaming a
#: reference file (a new ConfigMap key, ``ref_v1.csv`` made ``reference.csv``) set every detector's
#: state aside at the next start though every count was the same. Left out of the identity;
#: fingerprints computed with them, stored by older checkpoints, are still accepted
#: (:func:`legacy_reference_fingerprint`).
_DESCRIPTIVE: dict[str, frozenset[str]] = {"Profile": frozenset({"meta"})}
#: Fields hashed at a fixed value: a profile's format ``version`` (2 since categories are
#: canonical) says how it was written, not what the detectors count against; hashed as it is,
#: the same data profiled after the upgrade (a raw ``reference.path`` is profiled at every start)
#: got a new fingerprint, and one restart set every detector's state aside. Pinned at 1 rather
#: than left out, so that fingerprints stored in older checkpoints still match.
_PINNED: dict[str, dict[str, Any]] = {"Profile": {"version": 1}}
#: Fields added later that are left out of the identity while empty: a profile, or its sample (a
#: Reference), without text or tensor features keeps the fingerprint it had before they existed,
#: and a PCA without fold PCAs (``pca_fit``, or built before them) the fingerprint it had.
_ABSENT_WHEN_EMPTY: dict[str, frozenset[str]] = {"Reference": frozenset({"vocabularies", "tensor_names"}),
                                                  "Profile": frozenset({"vocabularies", "tensor_names"}),
                                                  "PCAProfile": frozenset({"folds"})}


def _without_summaries(tree: Any, descriptive: bool = False) -> Any:
    """``tree`` (of :func:`_to_tree`) without the dataclass fields of :data:`_NOT_IDENTITY` (and
    of :data:`_DESCRIPTIVE` unless ``descriptive``), and those of :data:`_PINNED` at their pinned
    values."""
    if isinstance(tree, dict):
        if set(tree) == {_DATACLASS, "fields"}:
            drop = _NOT_IDENTITY.get(tree[_DATACLASS], frozenset())
            if not descriptive:
                drop = drop | _DESCRIPTIVE.get(tree[_DATACLASS], frozenset())
            pinned = _PINNED.get(tree[_DATACLASS], {})
            empty = _ABSENT_WHEN_EMPTY.get(tree[_DATACLASS], frozenset())
            return {_DATACLASS: tree[_DATACLASS],
                    "fields": {k: pinned[k] if k in pinned else _without_summaries(v, descriptive)
                               for k, v in tree["fields"].items() if k not in drop and not (k in empty and not v)}}
        return {k: _without_summaries(v, descriptive) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(_without_summaries(v, descriptive) for v in tree)
    return tree


def _identity(reference: Reference, descriptive: bool = False) -> dict[str, Any]:
    """:func:`_payload`, with a PCA basis stood for by the digest of the rows it was fitted on,
    and a source profile without the summaries of :data:`_NOT_IDENTITY` (nor, unless
    ``descriptive``, the fields of :data:`_DESCRIPTIVE`)."""
    payload = _payload(reference)
    if payload.get("rows") and "pca_basis" in payload["rows"]:
        payload["rows"] = {**payload["rows"], "pca_basis": reference.pca_basis.digest}
    if payload.get("profile") is not None:
        payload["profile"] = _without_summaries(payload["profile"], descriptive)
    return payload


def reference_fingerprint(reference: Reference) -> str:
    """``sha256:<hex>`` of the reference's content: its rows, column names, classes and
    embedding, or, for a reference read from a profile, that profile (bins, counts, PCA, sample).

    Two references with the same fingerprint calibrate detectors identically, so a checkpoint's
    detector states may be restored into a monitor whose reference has the checkpoint's
    fingerprint. A profile derived from the rows by a detector is not part of it (it is a
    function of the rows).
    """
    return _fingerprint(_identity(reference))


def legacy_reference_fingerprint(reference: Reference) -> str | None:
    """The fingerprint older agents computed for ``reference``: with the fields of
    :data:`_DESCRIPTIVE` (a profile's source file name and build time) hashed. None when it
    cannot differ from :func:`reference_fingerprint` (rows, not a profile). A checkpoint stored
    with it belongs to this reference as much as one stored with the current fingerprint."""
    if reference.profile is None or not _profile_is_source(reference):
        return None
    return _fingerprint(_identity(reference, descriptive=True))


def _fingerprint(identity: dict[str, Any]) -> str:
    import hashlib

    h = hashlib.sha256(b"model-monitor-reference/1;")
    _hash_into(h, identity)
    return "sha256:" + h.hexdigest()


def reference_state(reference: Reference, *, fingerprint: str | None = None,
                    max_bytes: int = MAX_CHECKPOINT_REFERENCE_BYTES) -> dict[str, Any]:
    """The reference as a checkpointable tree (plain values and numeric/string/object arrays; no
    pickle), with its fingerprint. Above ``max_bytes`` only the fingerprint is kept and
    ``omitted`` says why; :func:`reference_from_state` then returns None."""
    payload = _payload(reference)
    size = _nbytes(payload)
    state: dict[str, Any] = {
        "version": REFERENCE_STATE_VERSION,
        "fingerprint": fingerprint or reference_fingerprint(reference),
        "rows": len(reference),
        "omitted": None,
        "payload": payload,
    }
    if size > max_bytes:
        state["payload"] = None
        state["omitted"] = f"{size} bytes of reference arrays exceed the checkpoint limit of {max_bytes}"
    return state


def reference_from_state(state: dict[str, Any]) -> Reference | None:
    """Inverse of :func:`reference_state` (None when the arrays were omitted). Raises
    ``ValueError`` naming what is wrong for a tree this version cannot read."""
    if not isinstance(state, dict) or state.get("version") != REFERENCE_STATE_VERSION:
        found = state.get("version") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"checkpointed reference version {found!r} is not {REFERENCE_STATE_VERSION}")
    payload = state.get("payload")
    if payload is None:
        return None
    classes = _classes()
    embedding = payload.get("embedding")
    if payload.get("profile") is not None:
        prof = _from_tree(payload["profile"], classes)
        ref = prof.to_reference()
        ref.embedding = embedding
        return ref
    rows = payload.get("rows")
    if not isinstance(rows, dict):
        raise ValueError("checkpointed reference has neither rows nor a profile")
    return Reference(rows["numeric"], rows["categorical"], tuple(rows["numeric_names"]), tuple(rows["categorical_names"]),
                     rows.get("scores"), rows.get("labels"), tuple(rows.get("classes", ())), embedding=embedding,
                     pca_basis=_from_tree(rows["pca_basis"], classes) if rows.get("pca_basis") is not None else None,
                     vocabularies={str(k): tuple(v) for k, v in (rows.get("vocabularies") or {}).items()},
                     tensor_names=tuple(str(n) for n in rows.get("tensor_names") or ()))
