"""Derived features: a raw column monitored through numeric features computed from each of its values.

Three raw columns are monitored this way, by the numeric drift and data-quality machinery:
a free-text feature (:mod:`monitor.text`: ``review.length``...), a tensor feature (images, audio,
sequences, :mod:`monitor.tensor`: ``image.mean``, ``image.mean_c0``...), and, for
``output.kind: text``, a generative model's answers, the text feature
:data:`~monitor.schema.TEXT_OUTPUT` (``output.length``...). Each is one :class:`Derived`: the raw
column it reads (:attr:`~Derived.source`), the numeric features it derives
(:attr:`~Derived.columns`), how a batch's values are described (:meth:`~Derived.describe`), and
what the reference fixed for it (a text's vocabulary, a tensor's channels; :meth:`TextDerived.fit`,
:meth:`TensorDerived.fit` describe the reference's values and fix it). Batch building
(:mod:`monitor.ingest`), the reference (:mod:`monitor.reference`) and the detectors' build read
the derived columns through :func:`input_derived` alone, so that they name the same columns.

Light at import (no numpy): the descriptors' modules are imported when values are described.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence

if TYPE_CHECKING:
    import numpy as np

    from monitor.schema import OutputSpec, Schema

__all__ = ["Clash", "Derived", "TensorDerived", "TextDerived", "answers_derived", "clashes", "input_columns",
           "input_derived", "reserved_names"]


class Derived(Protocol):
    """One raw column monitored through the numeric features derived from each of its values."""

    #: The raw column read (a feature's name, or ``output`` for a generator's answers).
    source: str

    @property
    def columns(self) -> tuple[str, ...]:
        """The numeric features derived, in the order :meth:`describe` gives them."""
        ...

    def describe(self, values: Any) -> np.ndarray:
        """The derived features of a batch's values: float64 ``(n, len(columns))``."""
        ...


@dataclass(frozen=True)
class TextDerived:
    """Free text (:mod:`monitor.text`): its descriptors, ``oov_share`` against ``vocabulary`` when
    the reference holds the feature."""

    source: str
    vocabulary: frozenset[str] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        from monitor.text import descriptor_names

        return descriptor_names(self.source, self.vocabulary is not None)

    def describe(self, values: Sequence[Any]) -> np.ndarray:
        from monitor.text import describe

        return describe(values, self.vocabulary)

    def fit(self, values: Sequence[Any]) -> tuple[np.ndarray, tuple[str, ...]]:
        """The reference's texts described (``oov_share`` read leaving each text out) and the
        vocabulary live texts are read against (:func:`monitor.text.reference_descriptors`)."""
        from monitor.text import reference_descriptors

        return reference_descriptors(values)


@dataclass(frozen=True)
class TensorDerived:
    """Rows of a tensor feature (:mod:`monitor.tensor`): their descriptors, and ``channels``
    channels described one by one (None while the first rows have not fixed them), found on
    ``channel_axis`` (the configured axis; None to recognise it)."""

    source: str
    channels: int | None = None
    channel_axis: int | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        from monitor.tensor import descriptor_names

        return descriptor_names(self.source, self.channels or 0)

    def fixed(self, shape: tuple[int, ...]) -> tuple[TensorDerived, int | None]:
        """This feature with its channels fixed by rows of ``shape`` (as they were, when fixed),
        and those rows' channel axis. Raises :class:`monitor.tensor.ChannelError`."""
        from monitor.tensor import find_channel_axis

        axis, count = find_channel_axis(tuple(shape), self.channel_axis, self.channels)
        same = self.channels is not None
        return (self if same else TensorDerived(self.source, count, self.channel_axis)), axis

    def describe(self, values: Any) -> np.ndarray:
        """The descriptors of rows ``values`` (axis 0 the rows). Raises
        :class:`monitor.tensor.ChannelError` for rows whose channels cannot be told, or are not
        the fixed ones."""
        from monitor.tensor import describe

        _, axis = self.fixed(values.shape)
        return describe(values, axis)

    def fit(self, rows: Any) -> tuple[np.ndarray, TensorDerived]:
        """The reference's rows described, and this feature with their channels fixed."""
        from monitor.tensor import describe

        fixed, axis = self.fixed(rows.shape)
        return describe(rows, axis), fixed


def input_derived(schema: Schema, vocabularies: Mapping[str, Any], channels: int | None = None,
                  every: bool = False) -> tuple[Derived, ...]:
    """The derived features of ``schema``'s inputs, in its order: each text feature (against its
    vocabulary in ``vocabularies``, when there; with ``every``, as if there: every column it may
    derive), and a tensor feature with ``channels``."""
    out: list[Derived] = []
    for f in schema.features:
        if f.kind == "text":
            vocabulary = vocabularies.get(f.name, () if every else None)
            out.append(TextDerived(f.name, None if vocabulary is None else frozenset(vocabulary)))
        elif f.kind == "tensor":
            out.append(TensorDerived(f.name, channels, f.channel_axis))
    return tuple(out)


def input_columns(schema: Schema, vocabularies: Mapping[str, Any], channels: int | None = None,
                  every: bool = False) -> tuple[str, ...]:
    """The inputs' numeric columns: the numeric features, then each derived feature's columns
    (arguments as :func:`input_derived`'s)."""
    return schema.numeric_names + tuple(c for d in input_derived(schema, vocabularies, channels, every) for c in d.columns)


def answers_derived(output: OutputSpec, vocabularies: Mapping[str, Any]) -> TextDerived | None:
    """A generative model's answers (``output.kind: text``) as the text feature
    :data:`~monitor.schema.TEXT_OUTPUT`; None for any other model."""
    if not output.is_text:
        return None
    from monitor.schema import TEXT_OUTPUT

    vocabulary = vocabularies.get(TEXT_OUTPUT)
    return TextDerived(TEXT_OUTPUT, None if vocabulary is None else frozenset(vocabulary))


def reserved_names(output: OutputSpec) -> frozenset[str]:
    """Input names that would clash with the answers' derived feature (``output.kind: text``): its
    raw column ``output`` and every column it may derive (``output.oov_share`` too, which it has
    once a reference holds the answers); empty for any other model."""
    if not output.is_text:
        return frozenset()
    from monitor.schema import TEXT_OUTPUT

    return frozenset({TEXT_OUTPUT, *TextDerived(TEXT_OUTPUT, frozenset()).columns})


@dataclass(frozen=True)
class Clash:
    """A feature named as a column another feature derives (``review.length`` beside the text
    feature ``review``): both would be monitored under one name, in two columns each read as the
    other."""

    #: The feature so named.
    name: str
    #: The derived feature it clashes with.
    derived: Derived

    @property
    def column_of(self) -> str:
        """Whose column the name is: "a column the text feature 'review' is monitored through (...)"."""
        kind = "text" if isinstance(self.derived, TextDerived) else "tensor"
        listed = ", ".join(self.derived.columns[:3])
        return f"a column the {kind} feature {self.derived.source!r} is monitored through ({listed}...)"

    @property
    def problem(self) -> str:
        return f"{self.name!r} is the name of {self.column_of}: the two would share one column, each read as the other"

    @property
    def fix(self) -> str:
        return f"rename {self.name!r} (e.g. {self.name.replace('.', '_')}): the feature, and the key or column its values come under"


def clashes(schema: Schema) -> tuple[Clash, ...]:
    """The features of ``schema`` named as a column one of its text or tensor features derives
    (every column it may derive: ``oov_share`` too, which a reference's vocabulary gives it)."""
    names = schema.name_set
    return tuple(Clash(c, d) for d in input_derived(schema, {}, every=True) for c in d.columns if c in names)
