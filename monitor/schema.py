"""What the model's inputs and outputs look like: the feature schema and the output kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FEATURE_KINDS", "Feature", "Schema", "OutputSpec", "OUTPUT_KINDS", "TEXT_OUTPUT", "with_answers"]

#: How a feature's values are read.
FEATURE_KINDS = ("numeric", "categorical", "text", "tensor")

#: How the predict function's return value is read.
#: ``probabilities``: class probabilities (n, k), or one column (n,)/(n, 1) = P(positive) for binary;
#: ``logits``: raw scores turned into probabilities by softmax (sigmoid for one column);
#: ``labels``: predicted labels only; ``regression``: real values, optionally (n, 2) intervals
#: (value, lower, upper as (n, 3)) or (n, q) quantiles when ``OutputSpec.quantiles`` is set;
#: ``multilabel``: (n, k) independent probabilities, one per label (a sigmoid per label: tagging,
#: toxicity categories, medical codes), whose rows need not sum to one;
#: ``none``: the outputs are not monitored, the inputs are (text generation, object detection,
#: rankers, encoders: answers that are neither scores, labels nor one value per row). Whatever the
#: model returns, or nothing, is accepted unread; a call's rows are its input rows;
#: ``text``: one generated text per input row (LLMs, summarisers, translators), monitored as one
#: more text feature :data:`TEXT_OUTPUT` of the row (its descriptors, :mod:`monitor.text`) beside
#: the inputs; no scores, so the detectors that read them do not apply, as for ``none``.
OUTPUT_KINDS = ("probabilities", "logits", "labels", "regression", "multilabel", "none", "text")
#: The text feature a generative model's answers are monitored as (``output.kind: text``):
#: ``output.length``, ``output.oov_share``... beside the inputs' features.
TEXT_OUTPUT = "output"


@dataclass(frozen=True)
class Feature:
    name: str
    #: "numeric", "categorical", "text": free text, monitored through numbers that describe
    #: each text (:mod:`monitor.text`), never as categories, or "tensor": images, audio,
    #: sequences (rows of 2 or more dimensions), monitored through numbers that describe each row
    #: (:mod:`monitor.tensor`)
    kind: str = "numeric"
    #: A tensor feature's channel axis (an axis of the call's array, from 1; negative from its
    #: end), described channel by channel; ``0`` for none; None to recognise it
    #: (:func:`monitor.tensor.find_channel_axis`)
    channel_axis: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"feature {self.name!r}: kind must be 'numeric', 'categorical', 'text' or 'tensor', "
                             f"not {self.kind!r}")


@dataclass(frozen=True)
class Schema:
    """Ordered input features. An empty schema is learned from the first rows seen: numeric
    columns named ``f0..f{d-1}`` (or the dict keys / DataFrame columns), or one text feature
    ``text`` for a sequence of texts (one per output row)."""

    features: tuple[Feature, ...] = ()

    # computed once per schema (frozen): ingest reads them for every drained batch
    @cached_property
    def numeric_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "numeric")

    @cached_property
    def categorical_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "categorical")

    @cached_property
    def text_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "text")

    @cached_property
    def tensor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "tensor")

    @property
    def tensor_channel_axis(self) -> int | None:
        """The configured ``channel_axis`` of the one tensor feature (images in a reference file
        are a tensor feature's rows, described on the axis its calls are); None when not one."""
        tensors = [f for f in self.features if f.kind == "tensor"]
        return tensors[0].channel_axis if len(tensors) == 1 else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def name_set(self) -> frozenset[str]:
        """The feature names as a set (ingest checks row objects' keys against it)."""
        return frozenset(f.name for f in self.features)

    def __len__(self) -> int:
        return len(self.features)

    @classmethod
    def numeric(cls, names: "list[str] | tuple[str, ...]") -> "Schema":
        return cls(tuple(Feature(n) for n in names))


@dataclass(frozen=True)
class OutputSpec:
    """How to read outputs.

    Parameters
    ----------
    kind
        One of :data:`OUTPUT_KINDS`.
    classes
        Class names in column order (classifiers; for ``multilabel``, the label of each column).
        Learned as ``0..k-1`` when not given.
    samples_axis
        For ensembles / MC-dropout: outputs shaped ``(n, samples, k)`` (or ``(samples, k)`` for one
        row) have their members on this axis.
    quantiles
        Regression models that return quantiles: the levels of the ``(n, q)`` output columns, in
        increasing order (e.g. ``(0.05, 0.5, 0.95)``). A row whose quantiles cross is sorted
        (monotone rearrangement); the prediction is then the 0.5 column, else the median
        interpolated between the levels around 0.5. The empirical coverage of each level is
        monitored.
    """

    kind: str = "probabilities"
    classes: tuple[str, ...] = field(default=())
    samples_axis: bool = False
    quantiles: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in OUTPUT_KINDS:
            raise ValueError(f"output kind must be one of {', '.join(OUTPUT_KINDS)}, not {self.kind!r}")
        if self.quantiles:
            q = self.quantiles
            if self.kind != "regression":
                raise ValueError("output quantiles apply to regression outputs only: set kind: regression or remove quantiles")
            if not all(0.0 < x < 1.0 for x in q) or any(b <= a for a, b in zip(q, q[1:])):
                raise ValueError(f"output quantiles must be increasing levels in (0, 1), e.g. [0.05, 0.5, 0.95]; got {list(q)}")
            if 0.5 not in q and not (q[0] < 0.5 < q[-1]):
                raise ValueError(f"output quantiles {list(q)} give no prediction: list 0.5 (the column MAE, RMSE and drift "
                                 "are measured on), or levels on both sides of it")
        if self.samples_axis and self.kind not in ("probabilities", "logits"):
            raise ValueError(f"output samples_axis (ensemble members per row) applies to probabilities or logits, not to "
                             f"kind {self.kind}: remove samples_axis, or send the members' mean")

    def median(self, quantiles: np.ndarray) -> np.ndarray:
        """The prediction of quantile outputs ``(n, q)``: the 0.5 column, else the median read off
        the two levels around it by linear interpolation (``[0.1, 0.9]`` gives their midpoint, not
        the upper quantile, whose errors would read as a bias)."""
        q = self.quantiles
        if 0.5 in q:
            return quantiles[:, q.index(0.5)].copy()
        hi = next(i for i, level in enumerate(q) if level > 0.5)
        a, b = q[hi - 1], q[hi]
        w = (0.5 - a) / (b - a)
        return (1.0 - w) * quantiles[:, hi - 1] + w * quantiles[:, hi]

    @property
    def is_classifier(self) -> bool:
        return self.kind not in ("regression", "none", "text")

    @property
    def scored(self) -> bool:
        """Whether the outputs are scores, labels or values the output-side detectors read: not
        for ``none`` (not read) nor ``text`` (generated text, read as a text feature of the row)."""
        return self.kind not in ("none", "text")

    @property
    def numeric(self) -> bool:
        """Whether the outputs are numbers (scores or values), which may be stacked as floats
        before they are read: not labels (the label 2 must stay 2, not 2.0), generated text (the
        answer "5" is a text) nor unread outputs."""
        return self.kind not in ("labels", "none", "text")

    @property
    def is_text(self) -> bool:
        """Whether the outputs are one generated text per row, monitored as the text feature
        :data:`TEXT_OUTPUT`."""
        return self.kind == "text"

    @property
    def reads_outputs(self) -> bool:
        """Whether the outputs are monitored: not for ``none``, whose calls are watched through
        their inputs alone (a text generator's answers, a detector's boxes are no scores, and
        were refused with the inputs they came with)."""
        return self.kind != "none"

    @property
    def is_multilabel(self) -> bool:
        """Whether each output column is an independent probability (``multilabel``): the
        single-label detectors (argmax, softmax confidence, class mix) do not apply to it."""
        return self.kind == "multilabel"


def with_answers(schema: Schema, output: OutputSpec) -> Schema:
    """``schema`` with, for a generative model (``output.kind: text``), the text feature
    :data:`TEXT_OUTPUT` its answers are monitored as appended: the features the detectors see
    (``output.length``... among them). Any other model's schema, and a schema still to be learned
    (no feature), as it is."""
    if not output.is_text or not schema.features or TEXT_OUTPUT in schema.name_set:
        return schema
    return Schema((*schema.features, Feature(TEXT_OUTPUT, "text")))
