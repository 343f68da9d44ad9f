"""The reference as the monitor uses it: the detectors' view of it and the input features it names.

A reference holds "held-out rows with the model's outputs on them", in whatever form the user
had at hand (labels as class names, outputs as logits or per-member samples, named columns).
The detectors need class probabilities ``(n, k)`` and labels they can map to score columns, and
array inputs need a column order: these functions derive both without changing the reference the
monitor keeps and checkpoints.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from monitor.schema import OutputSpec
    from monitor.reference import Reference

__all__ = ["InvalidReferenceScores", "detector_reference", "input_schema", "positional_names", "read_feature_names"]

log = logging.getLogger("monitor")


def detector_reference(reference: "Reference | None", output: "OutputSpec") -> "Reference | None":
    """The reference the detectors are built on: its labels mapped through the config's classes
    when it names none (:func:`_named`), its scores decoded as live outputs are (:func:`_decoded`)."""
    return _decoded(_named(reference, output.classes), output)


def _named(reference: "Reference | None", classes: tuple[str, ...]) -> "Reference | None":
    """The reference the detectors calibrate on: given the config's ``output.classes`` when it
    names no classes itself, so that labels given as class names (``Reference.from_arrays(X,
    scores=p, labels=y)`` with ``y`` of names) map to score columns, and so that the detectors'
    per-class series (``monitor_label_shift_weight``, ``monitor_output_top_class_share_ratio``)
    name each column as ``monitor_predicted_class_total`` does: with labels given by index or
    none at all they said ``class="1"`` where the predicted-class counter said ``class="b"``.
    Labels by index still read as indices (names are tried first, as live labels are, and only
    when every label is one). The monitor keeps (and checkpoints) the reference as given."""
    if reference is None or reference.classes or not classes:
        return reference
    import dataclasses

    return dataclasses.replace(reference, classes=tuple(classes))


def input_schema(schema: Any, reference: "Reference | None", output: "OutputSpec | None" = None) -> Any:
    """The features inputs are read as: the config's ``features``, else the reference's names.

    Without either the schema is learned from the first rows (``f0..`` for arrays); a
    reference with named numeric features (``numeric_names=``, a DataFrame's columns, a profile
    file) would then be compared with ``f0..``: every reference feature missing live, input drift
    on all of them. Array inputs are read in the reference's column order (dict and DataFrame
    inputs by name, as before). A reference with categorical features imposes nothing: its
    column order among the numeric ones is not known (dict and DataFrame inputs, the way such
    rows come, are read by name anyway), nor does one whose names are the defaults
    ``f0..f{d-1}`` (the learned schema is the same, and DataFrame inputs keep their names). A
    reference of text features only imposes them (a list of texts is then rows of its one text
    feature); with other features their order is not known either. A reference of a tensor
    feature (images, audio) imposes it: inputs are then read as its rows, whatever their shape.
    A generative model's (``output`` of kind ``text``) reference text feature ``output`` holds its
    answers, not an input: it imposes nothing."""
    if schema.features or reference is None or tuple(reference.categorical_names):
        return schema
    from monitor.schema import Feature, Schema

    if reference.tensor_names:
        return Schema(tuple(Feature(n, "tensor") for n in reference.tensor_names))
    if reference.vocabularies:
        if tuple(reference.feature_names) == reference.text_names:
            from monitor.schema import TEXT_OUTPUT

            answers = output is not None and output.is_text
            names = tuple(n for n in reference.text_names if not (answers and n == TEXT_OUTPUT))
            return Schema(tuple(Feature(n, "text") for n in names)) if names else schema
        return schema

    num = tuple(reference.numeric_names)
    if not num or num == tuple(f"f{i}" for i in range(len(num))):
        return schema
    return Schema.numeric(num)


def positional_names(reference: "Reference | None", schema: Any) -> "Reference | None":
    """The reference with its unnamed columns (``f0``.., as ``Reference.from_arrays(X)`` names an
    array's) named after the configured ``features``, in order, when they are as many and all
    numeric: array inputs are read in that order, so column i of the reference is feature i.
    Without it the detectors that read features by name (input and PCA drift, data quality) met
    none of them live. A saved profile keeps its names (its parts were built under them): the
    detectors' build then says how to name them (``monitor reference build --feature-names``); raw
    array files named in ``reference.path`` are named so when read (``load_reference``'s
    ``unnamed_as``)."""
    if reference is not None and reference.tensor_names and schema.tensor_names:
        return _tensor_named(reference, schema.tensor_names[0])
    names = _positional(reference, schema)
    if reference is None or names is None:
        return reference
    import dataclasses

    basis = reference.pca_basis
    if basis is not None:  # aligned to the columns' order at construction: renamed in place
        basis = dataclasses.replace(basis, names=names)
    log.info("the reference's unnamed columns %s are read as the config's features %s, in order",
             ", ".join(reference.numeric_names), ", ".join(names))
    return dataclasses.replace(reference, numeric_names=names, profile=None, pca_basis=basis)


def read_feature_names(reference: "Reference", schema: Any) -> tuple[str, ...]:
    """The reference's features under the names the detectors read them by: the configured
    features' where :func:`positional_names` names its unnamed columns after them, else its own.
    Why: the intake compared the configured features with the reference's own ``f0, f1, ...`` and
    said that they shared no name and that input drift would compare nothing, while the detectors,
    built on the renamed reference, watched every feature."""
    names = None if reference.tensor_names else _positional(reference, schema)
    return reference.feature_names if names is None else names


def _positional(reference: "Reference | None", schema: Any) -> tuple[str, ...] | None:
    """The configured features' names for the reference's unnamed numeric columns (see
    :func:`positional_names`), None when they are not read so."""
    if reference is None or schema is None or not schema.features or tuple(reference.categorical_names) \
            or reference.vocabularies:
        return None
    num = tuple(reference.numeric_names)
    names = tuple(schema.numeric_names)
    if not num or num != tuple(f"f{i}" for i in range(len(num))) or names == num:
        return None
    if len(names) != len(num) or len(schema.features) != len(num):
        return None
    from monitor.reference import _profile_is_source

    return None if _profile_is_source(reference) else names


def _tensor_named(reference: "Reference", name: str) -> "Reference":
    """The reference with its tensor feature under the configured tensor feature's name, when
    its own is the default (``Reference.from_arrays(images)`` names it ``input``): as unnamed
    columns are named after the configured features. Without it the configured ``image``
    never met the reference's ``input.mean``...: input drift compared nothing."""
    from monitor import tensor
    from monitor.derived import TensorDerived

    old = reference.tensor_names[0]
    if old == name or old != tensor.DEFAULT_NAME:
        return reference
    import dataclasses

    channels = reference.tensor_channels or 0
    renamed = dict(zip(TensorDerived(old, channels).columns, TensorDerived(name, channels).columns))
    names = tuple(renamed.get(n, n) for n in reference.numeric_names)
    basis = reference.pca_basis
    if basis is not None:  # aligned to its columns' order at construction: renamed in place
        basis = dataclasses.replace(basis, names=tuple(renamed.get(n, n) for n in basis.names))
    log.info("the reference's tensor feature %r is read as the config's tensor feature %r", old, name)
    return dataclasses.replace(reference, numeric_names=names, tensor_names=(name,), profile=None, pca_basis=basis)


class InvalidReferenceScores(ValueError):
    """Reference scores with rows that live traffic would refuse; ``problem`` and ``fix`` for the
    configuration error that names ``reference.path``."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}: {fix}")
        self.problem, self.fix = problem, fix


def _refuse_unusable_values(values: "np.ndarray") -> None:
    """Refuse a regression reference of one value per row holding values live outputs would be
    refused for: NaN or infinite (``nan_output``), beyond :data:`monitor.outputs.MAX_REGRESSION_OUTPUT`
    in size (``output_too_large``), as rows of (value, lower, upper) or quantiles holding one are
    refused by :func:`_decoded`.

    Why: a huge value, kept, became the reference's mean prediction and its MAE (one 1e300 in 500
    rows: both 2e297, so that RegressionErrorHigh could never fire) and the output drift
    detector's spread (a scale ratio of 2e-299). NaN and infinite single values were left out of
    the detectors' figures without a word, while the same value in a row of (value, lower,
    upper) or quantiles, in a classifier's scores, or live, is refused: a prediction the model
    failed to make is no row to calibrate on (its inputs are profiled all the same), and a
    reference is rebuilt once where live traffic is refused row after row."""
    import numpy as np

    from monitor.outputs import MAX_REGRESSION_OUTPUT

    missing = ~np.isfinite(values)
    huge = ~missing & (np.abs(values) > MAX_REGRESSION_OUTPUT)
    bad = missing | huge
    if not bad.any():
        return
    first = int(np.flatnonzero(bad)[0])
    counts = [f"{int(missing.sum())} NaN or infinite (nan_output)"] if missing.any() else []
    if huge.any():
        counts.append(f"{int(huge.sum())} beyond {MAX_REGRESSION_OUTPUT:.0e} in size (output_too_large)")
    raise InvalidReferenceScores(
        f"the reference's scores hold {int(bad.sum())} regression value(s) the monitor refuses live "
        f"({', '.join(counts)}; the first is row {first}: {values[first]:.6g})",
        "drop those rows from the reference (Reference.from_arrays(..., scores=...), or the output column of a "
        "reference file, with their inputs and labels), or fix the model outputs they came from: such a value is "
        "no prediction (kept, a huge one would become the reference's mean prediction and MAE)")


def _decoded(reference: "Reference | None", output: Any) -> "Reference | None":
    """The reference with its scores as the detectors read them: class probabilities ``(n, k)``.

    A reference holds "the model's outputs on these rows", and for a model configured with
    ``output.kind: logits`` or ``output.samples_axis: true`` those are logits or per-member
    outputs ``(n, samples, k)``: they are decoded as live outputs are (softmax / sigmoid, the
    members' mean), instead of logits being read as probabilities (ATC at 0, a reference
    accuracy of the wrong column) or members refused. Scores that already are probabilities
    (every row in [0, 1] summing to one, or one column in [0, 1]) are kept as given.

    A regression reference of ``(value, lower, upper)`` or quantile outputs ``(n, q)`` becomes
    its predictions ``(n,)``, as live outputs do: read as ``(n, k)`` it was profiled as class
    probabilities, and the output drift detector, which then looked for predicted classes in a
    regression model's rows, never saw one (its window stayed empty, no drift ever found)."""
    scores = None if reference is None else reference.scores
    if scores is None or not output.numeric:  # labels, generated text, or outputs not read
        return reference
    import dataclasses

    import numpy as np

    from monitor.outputs import ClassIndex, are_probabilities, decode_outputs

    x = np.asarray(scores, dtype=np.float64)
    if not output.is_classifier:
        if x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1):
            _refuse_unusable_values(x.reshape(-1))
            return reference
        if x.ndim != 2 or x.size == 0:
            return reference
    elif output.samples_axis:
        if x.ndim != 3:
            return reference
    elif x.ndim > 2 or x.size == 0 or are_probabilities(x):
        return reference
    decoded = decode_outputs(x, output, ClassIndex(output.classes))
    if decoded.scores is None:  # a shape live outputs would not have either: left to the detectors' own errors
        return reference
    if not decoded.valid.any() and not output.is_classifier:
        # a regression reference every row of which live traffic would refuse (NaN values or bounds,
        # reversed intervals): no detector's error explains it, as a classifier's raw scores are
        # explained. It started on it: an all-NaN one with no reference prediction (a "Mean of empty
        # slice" warning on stderr, a log line saying it had no labels), reversed intervals or an
        # infinite median column read as predictions (prediction drift at p 3e-20 on unchanged rows)
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(decoded.reasons.items()))
        shapes = ("one column per output.quantiles level, in the order listed" if output.quantiles else
                  "one value per row, or (value, lower, upper) in that order")
        raise InvalidReferenceScores(
            f"every one of the reference's {len(decoded.valid)} rows of scores is one the monitor would refuse live "
            f"({why}), so the regression detectors would start on no usable reference prediction",
            f"give the model's predictions on the reference rows as it returns them live ({shapes}), finite and at "
            "most 1e150 in size: Reference.from_arrays(..., scores=...), or the output columns of the reference file "
            "(--output-columns, reference.output_columns)")
    if not decoded.valid.any():
        # none valid: a classifier's raw scores (logits, a regression model's values under the
        # default kind), which the detectors' errors explain on the scores as given. Decoded, they
        # were clipped into [0, 1]: one column of values became rows of [0, 1] that every detector
        # took (a regressor's reference accepted without a word, or refused for its labels, "class
        # indices in 0..1"), and the errors showed clipped rows the user never gave
        return reference
    if not decoded.valid.all():
        # rows live traffic would refuse (a member out of [0, 1], probabilities that do not sum to
        # one, NaN): kept, one of them moved ATC's threshold by 6 points in a reference of 300
        first = int(np.flatnonzero(~decoded.valid)[0])
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(decoded.reasons.items()))
        raise InvalidReferenceScores(
            f"the reference's scores hold {int((~decoded.valid).sum())} rows the monitor would refuse live ({why}; the "
            f"first is row {first})",
            f"rebuild the reference from the model's outputs as it returns them (output.kind: {output.kind})")
    view = dataclasses.replace(reference, scores=decoded.scores)
    profile = reference.profile
    if profile is not None and getattr(profile, "outputs", None) is not None:
        # a profile file (`monitor reference build --output-columns`) describes the outputs as given:
        # logits' largest value as the "max score", quantile columns as classes. The output drift
        # detector reads that profile, so it compared live probabilities with logits (drift on the
        # reference's own rows) or found no predicted class in a regression model's rows (no rows
        # at all). Its outputs are profiled again from the decoded rows; its inputs are kept.
        from monitor.profile import Profile

        n = len(decoded.scores)
        no_inputs = dataclasses.replace(view, profile=None, numeric=np.empty((n, 0)), categorical=np.empty((n, 0), dtype=object),
                                        numeric_names=(), categorical_names=())
        outputs = Profile.from_reference(no_inputs, keep_rows=0).outputs  # the inputs' profile (and PCA) is kept as it is
        view.profile = dataclasses.replace(profile, outputs=outputs)
    return view
