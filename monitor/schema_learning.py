"""Learning a model's input schema from its first readable calls, when none is configured.

Which features the inputs hold and of which kind: numeric, categorical, free text or a tensor;
from numpy rows (``f0..``), a DataFrame's columns, dict rows' keys or a dict of columns; numbers
held as objects (``Decimal``, ``Fraction``) read as numeric, free text as text, points in time left
out, keys named as a derived feature's columns left out, the reference's kinds kept.

Why a module of its own: :mod:`monitor.ingest` reads rows by a schema on every drain; learning
that schema happens once per model, is a set of judgments about the values first seen (each with
its own warning and reason), and changes for reasons of its own. :class:`SchemaLearner` holds what
learning says once (the points in time and the keys it left out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.events import is_dataframe, is_missing
from monitor.input_forms import RowError, inputs_are_none, is_column, named_columns, series_row, short_repr, text_column
from monitor.schema import TEXT_OUTPUT, Feature, OutputSpec, Schema

__all__ = ["LEARN_ROWS", "ReferenceKinds", "SchemaLearner", "check_reference_names", "holds_numbers", "rows_to_learn"]

#: Rows of the first readable call a schema is learned from (their keys, and each key's kind by their values).
LEARN_ROWS = 1_000


@dataclass(frozen=True)
class ReferenceKinds:
    """What the reference says of the features a schema is learned with: its feature names, and
    which of them are categorical, text or tensor features (empty without a reference)."""

    names: tuple[str, ...] = ()
    categorical: frozenset[str] = frozenset()
    text: frozenset[str] = frozenset()
    tensors: tuple[str, ...] = ()


class SchemaLearner:
    """Learns the schema of one model's inputs (:meth:`learn`), and keeps what it said and left
    out: the points in time (said once per name) and the row keys named as a derived feature's
    columns (:attr:`reserved_keys`, whose rows the builder counts)."""

    def __init__(self, output: OutputSpec) -> None:
        from monitor.derived import reserved_names

        #: ``output.kind: none``: no outputs to count a call's rows by
        self._no_outputs = not output.reads_outputs
        #: Input names a derived feature's columns take (``output``, ``output.length``... for
        #: ``output.kind: text``): learned as inputs they shared the answers' columns, each read as
        #: the other, so row keys of these names are left out of a learned schema
        self.reserved = reserved_names(output)
        #: The row keys so left out (counted in monitor_row_arguments_dropped_total{argument="reserved_key"})
        self.reserved_keys: frozenset[str] = frozenset()
        #: What is said of the keys so left out (which feature's columns they are named as)
        self.reserved_detail = ""
        #: The points in time left out of a learned schema, said once each (:meth:`_without_times`)
        self._times_said: frozenset[str] = frozenset()

    def learn(self, inputs: Any, outputs: Any, reference: ReferenceKinds) -> Schema:
        """The features of the first readable ``inputs`` (:func:`rows_to_learn`), without the keys
        named as a derived feature's columns (:meth:`_without_reserved`); ``outputs`` count the
        rows of a column of texts. Raises :class:`~monitor.input_forms.RowError` (or any error of
        the inputs' own) when nothing can be learned from them."""
        return self._without_reserved(self._learn_schema(inputs, outputs, reference))

    def _learn_schema(self, inputs: Any, outputs: Any, reference: ReferenceKinds) -> Schema:
        """The features of the first readable inputs. A feature the reference holds as categorical
        is categorical here too, whatever its live dtype: a CSV reference (``monitor reference
        build``) reads a boolean column as the text "True"/"False" and a column listed under
        ``--categorical`` (zip codes) as text, while the same column in a live DataFrame is bool or
        int and was learned as numeric; the reference's categorical feature then never arrived
        ("no data") and ModelInputDrift fired on the reference's own rows."""
        from monitor.temporal import TEXT_SAMPLE, is_point_in_time, is_point_in_time_dtype, is_point_in_time_text

        cats, texts = reference.categorical, reference.text
        if inputs is None:
            raise inputs_are_none("wrong_type")
        if is_dataframe(inputs) and not inputs.columns.is_unique:
            twice = list(dict.fromkeys(str(c) for c in inputs.columns[inputs.columns.duplicated()]))
            logging.getLogger("monitor").warning(
                "the inputs are a DataFrame whose columns are not unique (%s more than once): read by position, each "
                "repeat is the feature <name>.1, <name>.2... (as pandas' read_csv names them). Fix: give the columns "
                "unique names before predict, or list the features in the config", ", ".join(repr(c[:40]) for c in twice[:5]))
        inputs = series_row(named_columns(inputs), frozenset(reference.names),
                            lambda column: self.text_rows(column, outputs, reference))
        if isinstance(inputs, np.ndarray) and inputs.ndim >= 3 and self._tensor_rows(inputs, reference):
            name = reference.tensors[0] if len(reference.tensors) == 1 else "input"
            return Schema((Feature(name, "tensor"),))
        column = text_column(inputs)
        if column is not None and self.text_rows(column, outputs, reference):
            name = next(iter(texts)) if len(reference.names) == 1 and texts else "text"
            return Schema((Feature(name, "text"),))
        kind_of = lambda name, numeric: ("text" if name in texts else "numeric" if numeric and name not in cats  # noqa: E731
                                         else "categorical")
        if is_dataframe(inputs):
            feats, times = [], []
            for name, dtype in zip(inputs.columns, inputs.dtypes):
                if str(name) not in cats | texts and (is_point_in_time_dtype(dtype) or getattr(dtype, "kind", "O") in "OSU"
                                              and is_point_in_time_text(inputs[name].head(TEXT_SAMPLE).tolist())):
                    times.append(str(name))
                    continue
                kind = getattr(dtype, "kind", "O")
                numeric = kind in "biufm" or kind == "O" and holds_numbers(inputs[name].head(LEARN_ROWS).tolist(),
                                                                           some_text=True)
                feats.append(Feature(str(name), kind_of(str(name), numeric)))
            labels = {str(c): c for c in inputs.columns}
            schema = self._free_text(Schema(tuple(feats)), lambda n: inputs[labels[n]].head(TEXT_SAMPLE).tolist(),
                                     "the input DataFrame's column(s)", reference)
            return self._without_times(schema, times, "the input DataFrame's column(s)")
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], dict):
            rows = [row for row in inputs[:LEARN_ROWS] if isinstance(row, dict)]
            seen = _values_seen(rows)
            keys = {str(k): k for k in seen}
            values_of = lambda n: [row.get(keys[n]) for row in rows[:TEXT_SAMPLE]]  # noqa: E731
        elif isinstance(inputs, dict):
            seen = {k: _values_seen([{k: x} for x in v[:LEARN_ROWS]]).get(k, _Seen()) if is_column(v)
                    else _values_seen([{k: v}])[k] for k, v in inputs.items()}
            keys = {str(k): k for k in seen}
            values_of = lambda n: list(inputs[keys[n]][:TEXT_SAMPLE]) if is_column(inputs[keys[n]]) else [inputs[keys[n]]]  # noqa: E731
        else:
            seen = None
        if seen is not None:
            times = [str(k) for k, s in seen.items()
                     if (is_point_in_time(s.first) or is_point_in_time_text([s.first])) and str(k) not in cats | texts]
            unknown = [str(k) for k, s in seen.items() if s.empty and str(k) not in reference.names]
            if unknown:
                logging.getLogger("monitor").warning(
                    "the input rows' key(s) %s hold no value in the first call (None or empty text): learned as "
                    "categorical, which reads numbers too (as their text); learned as numeric, any text sent later "
                    "would count as a wrong value. Fix: list them under features: with their kind",
                    short_repr(", ".join(map(repr, unknown))))
            schema = self._free_text(Schema(tuple(
                Feature(str(k), kind_of(str(k), str(k) in reference.names if s.empty else s.numbers > s.texts))
                for k, s in seen.items() if str(k) not in times)), values_of, "the input rows' key(s)", reference)
            return self._without_times(schema, times, "the input rows' key(s)")
        arr = np.asarray(inputs)
        if arr.ndim == 0 and arr.dtype == object:  # a request object, not rows: learn from a later event
            raise RowError("wrong_type", "inputs must be numeric rows")
        if is_point_in_time_dtype(arr.dtype):
            # left out of learned features, as a DataFrame's column of them is: an array of them has no other
            from monitor.temporal import POINT_IN_TIME_FIX

            raise RowError("wrong_type", f"inputs are points in time ({arr.dtype}), which are no feature to learn (every "
                                         "live window lies later than the reference: such a column drifts by itself)",
                           POINT_IN_TIME_FIX)
        # while no schema is known, the model reads one feature when the reference has one
        # (:attr:`monitor.ingest.BatchBuilder.one_feature`)
        one_feature = len(reference.names) == 1
        width = 1 if arr.ndim == 1 and one_feature else arr.shape[-1] if arr.ndim >= 1 else 1
        return Schema.numeric([f"f{i}" for i in range(width)])

    def _tensor_rows(self, inputs: np.ndarray, reference: ReferenceKinds) -> bool:
        """Whether an array of 3 or more dimensions is rows of one tensor feature (learning the
        schema): unless the reference holds numeric features only, as many as the array's values
        per row (rows sent with an extra axis, ``[n, 1, d]``, which are read flattened)."""
        from monitor.tensor import is_tensor

        if not is_tensor(inputs):
            return False
        names = reference.names
        return bool(reference.tensors) or not names or bool(reference.text or reference.categorical) \
            or len(names) != int(np.prod(inputs.shape[1:], dtype=np.int64))

    def text_rows(self, column: list[Any], outputs: Any, reference: ReferenceKinds) -> bool:
        """Whether a flat sequence of texts is that many rows of one text feature (learning the
        schema): when the outputs have as many rows (one text: always), and the reference, if
        any, has one feature, of text. A list of texts may also be one row of categorical
        features, which only a configured or reference schema names."""
        names = reference.names
        if names and not (len(names) == 1 and names[0] in reference.text):
            return False
        if len(column) == 1 or self._no_outputs:  # no outputs to count rows by: a list of prompts is rows
            return True
        try:
            shape = np.shape(outputs)
        except Exception:  # noqa: BLE001 - ragged outputs: their rows, if a list
            return isinstance(outputs, (list, tuple)) and len(outputs) == len(column)
        return bool(shape) and shape[0] == len(column)

    def _free_text(self, schema: Schema, values_of: Callable[[str], list[Any]], where: str,
                   reference: ReferenceKinds) -> Schema:
        """``schema`` with its categorical features that hold free text (:func:`monitor.text.is_free_text`
        of ``values_of(name)``, a sample of the first call's values) learned as text, as the
        reference's are (:func:`monitor.reference.Reference.from_arrays`), said once; the
        reference's features keep its kinds. Why: a comment or a review under a row key was
        learned as categorical, every value a category of its own and nothing of the text
        monitored."""
        from monitor.text import is_free_text

        found = [f.name for f in schema.features if f.kind == "categorical" and f.name not in reference.names
                 and is_free_text(values_of(f.name))]
        if not found:
            return schema
        from monitor.derived import TextDerived

        logging.getLogger("monitor").warning(
            "%s %s hold free text: learned as text, monitored through numbers describing each text (%s), not as "
            "categories (each text a category of its own). Fix: to read one as categories, list it under features: "
            "with kind: categorical", where, ", ".join(map(repr, found)), ", ".join(TextDerived(found[0]).columns))
        text = frozenset(found)
        return Schema(tuple(Feature(f.name, "text") if f.name in text else f for f in schema.features))

    def _without_times(self, schema: Schema, times: list[str], where: str) -> Schema:
        """``schema``, learned without the points in time ``times`` of ``where``, said once (per
        name: a schema learned again after an unreadable call said them again). Raises
        :class:`RowError` when they were all there was: rows of points in time alone were refused
        as "not rows of numbers or of feature values", and said left out on every drain."""
        if not times:
            return schema
        from monitor.temporal import POINT_IN_TIME_FIX, left_out_message

        if not schema.features:
            listed = ", ".join(map(repr, times))
            raise RowError("wrong_type", f"{where} {listed} hold points in time and nothing else: points in time are "
                           "left out of the monitored features (such a column drifts by itself as time passes), so "
                           "no feature is left to monitor", POINT_IN_TIME_FIX)
        new = [t for t in times if t not in self._times_said]
        if new:
            logging.getLogger("monitor").warning(left_out_message(new, where))
            self._times_said |= frozenset(new)
        return schema

    def _without_reserved(self, schema: Schema) -> Schema:
        """A learned ``schema`` without the features named as a derived feature's columns (the
        answers' ``output``, ``output.length``... for ``output.kind: text``), which are then
        counted in the rows that carry them. Why: learned as inputs, ``output`` took the answers'
        place in the detectors' schema and ``output.length`` gave batches two columns of one name,
        each read as the other; so did a key ``review.length`` beside a text feature ``review``
        (:func:`monitor.derived.clashes`)."""
        from monitor.derived import clashes

        clashing = {c.name: c for c in clashes(schema)}
        kept = tuple(f for f in schema.features if f.name not in self.reserved and f.name not in clashing)
        if len(kept) == len(schema.features):
            return schema
        if not kept and not clashing:
            keys = ", ".join(repr(f.name) for f in schema.features)
            raise RowError("wrong_type", f"the rows carry no input, only the key(s) {keys}, which output.kind: text reads "
                           f"as the model's answers (the text feature {TEXT_OUTPUT}: {TEXT_OUTPUT}.length, {TEXT_OUTPUT}.words...)",
                           "send the model's inputs (the prompt) under their own keys, and each answer as the call's "
                           "outputs (observe(inputs, answers); an event's outputs), not among the inputs")
        self.reserved_keys = frozenset(f.name for f in schema.features if f not in kept)
        said = []
        answers = sorted(self.reserved_keys - clashing.keys())
        if answers:
            said.append(f"input rows carry the key(s) {', '.join(map(repr, answers))}, named as the answers' features of "
                        f"output.kind: text ({', '.join(sorted(self.reserved))})")
        said += [f"input rows carry the key {c.name!r}, the name of {c.column_of}" for c in clashing.values()]
        self.reserved_detail = "; ".join(said) + ": left out of the inputs"
        return Schema(kept)


def holds_numbers(values: list[Any], some_text: bool = False) -> bool:
    """Whether an object column's values (a sample of them) are numbers stored as Python objects:
    one present value at least, and every present one a real number (``decimal.Decimal``,
    ``fractions.Fraction``, ``int``, ``float``: any :class:`numbers.Number` but complex ones), the
    others missing (None, NaN, pandas' NA). Why: a DataFrame read from SQL holds a ``NUMERIC``
    column as ``Decimal`` objects, dtype object, which was learned as categorical: every amount a
    category of its own, its drift read as a change of category mix, its values never ranged.

    With ``some_text`` (learning a live schema), present values may also be text, as long as the
    numbers outnumber them (empty text is a gap, as for :func:`_values_seen`): a column of amounts
    with a few "N/A" is numeric, those values then counted as wrong values, not every amount made
    a category of its own."""
    import numbers

    present = texts = 0
    for v in values:
        # empty text is a gap only where text may be read as a wrong value (some_text); the
        # reference's strict rule (any text: categorical) reads no text as a number, and a column
        # of Decimals with one '' taken numeric was refused whole
        if _absent(v) or isinstance(v, float) and v != v or some_text and _blank(v):
            continue
        if some_text and isinstance(v, (str, bytes)):
            texts += 1
            continue
        if not isinstance(v, numbers.Number) or isinstance(v, numbers.Complex) and not isinstance(v, numbers.Real):
            return False
        present += 1
    return present > texts


def _absent(v: Any) -> bool:
    """A value that says nothing of its feature's kind: None, pandas' NA or NaT (a float NaN is a
    number: a gap in a numeric column)."""
    return v is None or (not isinstance(v, float) and is_missing(v))


def _blank(v: Any) -> bool:
    """Empty (or blank) text: a gap, as a CSV's is, for a numeric feature and a categorical one
    alike (:func:`monitor.cell_values.cell_number`), so it says nothing of its key's kind either."""
    return isinstance(v, (str, bytes)) and not v.strip()


@dataclass
class _Seen:
    """What the values a schema is learned from say of one key: its first value that is neither
    :func:`_absent` nor :func:`_blank` (None when it has none), and how many of them are text and
    how many are not (numbers, for a numeric feature)."""

    first: Any = None
    texts: int = 0
    numbers: int = 0

    @property
    def empty(self) -> bool:
        """Whether the key held no value at all (None or empty text throughout)."""
        return self.texts + self.numbers == 0


def _values_seen(rows: list[dict[Any, Any]]) -> dict[Any, _Seen]:
    """Every key of ``rows`` (in the order first seen) with what its values say of its kind
    (:class:`_Seen`): a key is learned numeric when more of its present values are not text than
    are. Why: learned from the first row alone, a key absent from it was never monitored; one
    whose first value was None became numeric, so that every later row with text under it was
    refused; and one whose first value was "N/A" (or empty text) became categorical for good,
    every later number a category of its own and nothing of its values ranged."""
    out: dict[Any, _Seen] = {}
    for row in rows:
        for k, v in row.items():
            s = out.get(k)
            if s is None:
                s = out[k] = _Seen()
            if _absent(v) or _blank(v):
                continue
            if s.first is None:
                s.first = v
            if isinstance(v, (str, bytes)):
                s.texts += 1
            else:
                s.numbers += 1
    return out


def rows_to_learn(events: list[tuple[Any, ...]]) -> Any:
    """The inputs a schema is learned from: the first event's, or when it is one row as a dict
    (JSON events, CloudEvents, a decorated predict called per row) the dict rows of the drain's
    events up to :data:`LEARN_ROWS`, so that a key null or absent in the first event is learned
    from those after it."""
    first = events[0][2]
    if type(first) is not dict or any(is_column(v) for v in first.values()):
        return first
    return [ev[2] for ev in events[:LEARN_ROWS] if type(ev[2]) is dict]


def check_reference_names(schema: Schema, reference_names: tuple[str, ...], configured: bool = False,
                          tensors: tuple[str, ...] = ()) -> None:
    """Said once, when the schema is configured or learned: features that share no name with the
    reference's (a reference of unnamed arrays, ``f0..``, and DataFrame inputs; or the reverse; or a
    config's ``features:`` and a reference built from other columns). A reference's unnamed tensor
    feature (``input``) is read as the configured one (:func:`monitor.reference_view.positional_names`)."""
    if not reference_names or set(schema.names) & set(reference_names):
        return
    if schema.tensor_names and tensors == reference_names == ("input",):
        return
    if configured:
        whose, fix = ("config's", "build the reference from the columns the config lists (monitor reference build), or "
                                  "list the reference's feature names under features:")
    else:
        whose, fix = ("inputs'", "list the features in the config (features:), or name the reference's columns as the "
                                 "inputs name them (Reference.from_arrays(..., numeric_names=...), or pass the DataFrame itself)")
    logging.getLogger("monitor").warning(
        "the %s features (%s) share no name with the reference's (%s): every reference feature reads as missing live, "
        "and input drift and data quality compare nothing. Fix: %s",
        whose, short_repr(", ".join(schema.names)), short_repr(", ".join(reference_names)), fix)
