"""Turning queued prediction events into one columnar :class:`~monitor.batch.Batch`.

The common case (every call passed numpy rows of the same width) is stacked in one numpy call;
anything else (lists, dicts of feature to value, pandas DataFrames, mixed shapes) goes through a
per-event path. Rows that cannot be read are refused with a reason that ends up in
``monitor_rows_rejected_total``; they never raise out of the worker. A schema that is not configured
is learned from the first readable calls by :mod:`monitor.schema_learning`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from monitor.batch import Batch
from monitor.cell_values import (COMPLEX_SCALARS, PLAIN_NUMBERS, ComplexValues, categorical_text, category_text, cell_number,
                                 complex_array, complex_form, float_rows, holds_complex, object_cells, odd_values, real_numbers)
from monitor.events import is_dataframe
from monitor.input_forms import (RowError, inputs_are_none, is_column, is_series, named_columns, own_dict, series_row, short_list,
                                 short_repr, text_column)
from monitor.outputs import ClassIndex, DecodedOutputs, decode_outputs
from monitor.row_arguments import refused_ids, refused_row_ids, row_clients, row_embeddings, row_ids, row_segments
from monitor.schema import TEXT_OUTPUT, Feature, OutputSpec, Schema
from monitor.schema_learning import ReferenceKinds, SchemaLearner, check_reference_names, rows_to_learn

__all__ = ["BatchBuilder", "BuildResult", "MixedOutputWidths", "RowError", "guess_rows", "text_column", "unmasked"]


@dataclass
class BuildResult:
    batch: Batch | None
    rejected: dict[str, int] = field(default_factory=dict)
    rows_per_event: list[int] = field(default_factory=list)
    #: reason -> what was wrong with the first such event (e.g. "expected rows of 4 features,
    #: got shape (1, 2)"), for the one log line a reason gets (counts alone do not say why)
    details: dict[str, str] = field(default_factory=dict)
    #: argument (request_id, segment, client, embedding) -> rows that lost it: a per-row list of
    #: another length than the call's rows, an embedding that is not numbers (the rows are processed,
    #: without that attribute)
    arguments_dropped: dict[str, int] = field(default_factory=dict)
    #: reason -> the fix the first such event's refusal named (:attr:`RowError.fix`), said instead
    #: of the reason's usual one
    fixes: dict[str, str] = field(default_factory=dict)
    #: The request ids of the rows refused (counted in ``rejected``), as the label join remembers
    #: them (:meth:`monitor.labels.LabelJoiner.refuse`): their labels count ``prediction_refused``
    refused_ids: list[tuple[str, bool]] = field(default_factory=list)

    def drop_argument(self, argument: str, given: int, rows: int) -> None:
        self.arguments_dropped[argument] = self.arguments_dropped.get(argument, 0) + rows
        self.details.setdefault(f"argument:{argument}", f"a call gave {given} values for {rows} rows")


@dataclass(frozen=True)
class Unreadable:
    """The values of numeric features that are no number ("N/A", a list, a complex number) in the
    rows one reader just read: each is missing in its row, which is monitored, and counted
    ``wrong_type`` by data quality (:attr:`Batch.numeric_unreadable`).

    Why a value the readers return: the mask belongs to the rows it was read with, and only the
    builder knows whether they are monitored (a call refused later, for its outputs, says nothing
    of its inputs' values)."""

    mask: np.ndarray  #: (rows, numeric features) True where the value was no number
    name: str  #: the feature of the first such value, and the value (said once in the log)
    value: Any


class MixedOutputWidths(Exception):
    """Outputs of different widths in one drain (a binary model's one and two columns, ensembles
    of 5 and 7 members, regression values with and without intervals): each is valid alone, and
    the events are to be built again, one group per width, in ``groups``. Which events share a
    drain is chance; refusing the minority would make the figures depend on it."""

    def __init__(self, groups: list[list[tuple[Any, ...]]]) -> None:
        super().__init__(f"outputs of {len(groups)} widths in one drain")
        self.groups = groups


#: Values of a drain's tensor calls described in one call (:meth:`BatchBuilder._tensor_calls_at_once`):
#: their copy stays within 16 MB of float32.
TENSOR_VALUES_AT_ONCE = 1 << 22


class BatchBuilder:
    """Converts events for one model. Learns the schema from the first rows if none is configured."""

    def __init__(self, schema: Schema | None, output: OutputSpec, classes: ClassIndex | None = None,
                 reference_names: tuple[str, ...] = (), reference_categorical: tuple[str, ...] = (),
                 reference_text: tuple[str, ...] = (), vocabularies: dict[str, tuple[str, ...]] | None = None,
                 reference_tensors: tuple[str, ...] = (), tensor_channels: int | None = None) -> None:
        self.schema = schema if schema is not None and len(schema) else None
        self.output = output
        #: ``output.kind: text``: each row's answer is one more text feature, :data:`TEXT_OUTPUT`
        self._answers = output.is_text
        self._set_reference(reference_names, reference_categorical, reference_text, vocabularies, reference_tensors,
                            tensor_channels)
        if self.schema is not None:
            from monitor.derived import clashes

            clash = next(iter(clashes(self.schema)), None)
            if clash is not None:
                raise ValueError(f"feature {clash.problem}. Fix: {clash.fix}")
            check_reference_names(self.schema, self.reference_names, configured=True, tensors=self.reference_tensors)
        self.classes = classes or ClassIndex(output.classes)
        # Columns per row a classifier's outputs may have: the configured classes (or one column
        # for a binary model), else the width of the first batch with a row that decoded. Rows of
        # another width are refused here, before a detector holding state of the model's width
        # sees them.
        self._scores = output.kind in ("probabilities", "logits", "multilabel")
        #: ``output.kind: none``: the outputs are not read (anything, or nothing, is accepted), a
        #: call's rows are its input rows
        self._no_outputs = not output.reads_outputs
        k = len(output.classes)
        binary = k == 2 and not output.is_multilabel  # one column is P(positive) of a binary model, not one label of two
        self._score_widths: frozenset[int] | None = frozenset({k, 1} if binary else {k}) if self._scores and k else None
        #: What the first row object whose keys are no feature, while features are missing from it
        #: (a misspelled key, a renamed column, OIP v2 tensors named otherwise), said: its values
        #: are not read and the features count as missing, which alone never named the key sent.
        #: Checked on the first row of the first 64 calls, then of every 64th, until found, then
        #: never again (a cost per call, not per row, and then a 64th of it: a key sent wrong
        #: from some point on is still found); a row with every feature and other keys besides (an
        #: id) is not one.
        self.renamed_keys: str | None = None
        self._key_checks = 0
        #: Learns the schema from the first readable rows when none is configured, and keeps the
        #: row keys it left out as a derived feature's columns (:attr:`SchemaLearner.reserved_keys`)
        self._learner = SchemaLearner(output)
        #: The rows of the current build that carried such a key (counted in
        #: monitor_row_arguments_dropped_total{argument="reserved_key"})
        self._reserved_rows = 0
        #: Where the inputs just read held a value of a numeric feature that is no number ("N/A",
        #: a list): ``(rows, numeric features)``, None when every value read (see :func:`cell_number`)
        #: What the first such value was, said once: its row is monitored with the value missing
        self.unreadable_values: str | None = None

    def _set_reference(self, names: tuple[str, ...], categorical: tuple[str, ...], text: tuple[str, ...],
                       vocabularies: dict[str, tuple[str, ...]] | None, tensors: tuple[str, ...] = (),
                       tensor_channels: int | None = None) -> None:
        #: The reference's tensor feature (images, audio...): inputs of 3 or more dimensions are
        #: learned as rows of it, under its name
        self.reference_tensors = tuple(str(n) for n in tensors)
        #: The channels the tensor feature's rows are described by one by one: the reference's
        #: (0: none), else those of the first rows read (None until then); rows with others are
        #: refused, their descriptors having no column
        self.tensor_channels = tensor_channels if tensors else None
        if self._answers:  # the answers' text feature is no input: the inputs are read without it
            names = tuple(n for n in names if str(n) != TEXT_OUTPUT)
            text = tuple(n for n in text if str(n) != TEXT_OUTPUT)
        #: The reference's text features: a schema learned from DataFrame or dict inputs reads them
        #: as text (a text column of a live DataFrame is an object column, as a categorical one is)
        self.reference_text = frozenset(str(n) for n in text)
        #: Text feature -> the reference's vocabulary: such a feature gets an ``oov_share`` descriptor
        self.vocabularies = {str(k): frozenset(v) for k, v in (vocabularies or {}).items()}
        #: The reference's categorical features: a schema learned from DataFrame or dict inputs reads
        #: them as categorical whatever their live dtype (:meth:`SchemaLearner.learn`)
        self.reference_categorical = frozenset(str(n) for n in categorical)
        #: The reference's feature names: a schema (configured, or learned from the inputs) that
        #: shares none of them is said once (every reference feature would read as missing live)
        self.reference_names = tuple(names)
        #: The above, as the schema learner reads them
        self._reference_kinds = ReferenceKinds(self.reference_names, self.reference_categorical, self.reference_text,
                                               self.reference_tensors)

    def adopt_reference(self, reference: Any, schema: Schema | None) -> None:
        """Read inputs as ``reference`` has its features (a reference adopted from a checkpoint
        after this builder was made without one), with ``schema`` the inputs' schema it imposes
        (:func:`monitor.reference_view.input_schema`) unless one is known already. Why: a monitor
        whose reference came from its checkpoint kept reading a text feature as categorical
        (nearly every value an unseen category), without its descriptors, and the probing
        detector failed on every batch for lack of the reference's descriptor columns."""
        self._set_reference(reference.feature_names, tuple(reference.categorical_names), reference.text_names,
                            reference.vocabularies, reference.tensor_names, reference.tensor_channels)
        if self.schema is None and schema is not None and len(schema):
            self.schema = schema

    @property
    def one_feature(self) -> bool:
        """Whether the model reads one feature (configured, the reference's, or learned): then a
        flat ``(n,)`` input is ``n`` rows of that feature, not one row of ``n`` features. Why: a
        one-feature model's ``predict(x)`` on a 1-D array (or an OIP v2 tensor of shape ``[n]``)
        was read as one row of ``n`` features, refused (or, without a configured schema, learned as
        ``n`` features) while its ``n`` outputs did not match."""
        if self.schema is not None:
            return len(self.schema) == 1
        return len(self.reference_names) == 1

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """The batch's numeric columns: the inputs' (:attr:`input_columns`), then, for a
        generative model (``output.kind: text``), its answers' descriptors (``output.length``...)."""
        columns = self.input_columns
        answers = self._answers_derived()
        if answers is None or self.schema is None:
            return columns
        return columns + answers.columns

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The inputs' numeric columns: the numeric features, then each derived feature's columns
        (a text feature's descriptors, or a tensor feature's: :func:`monitor.derived.input_columns`)."""
        if self.schema is None:
            return ()
        from monitor.derived import input_columns

        return input_columns(self.schema, self.vocabularies, self.tensor_channels)

    def _input_derived(self) -> tuple[Any, ...]:
        """The derived features of the inputs (:func:`monitor.derived.input_derived`)."""
        from monitor.derived import input_derived

        assert self.schema is not None
        return input_derived(self.schema, self.vocabularies, self.tensor_channels)

    def _answers_derived(self) -> Any:
        """A generative model's answers as a derived feature (``output.length``...), else None."""
        if not self._answers:
            return None
        from monitor.derived import answers_derived

        return answers_derived(self.output, self.vocabularies)

    def _describe(self, num: np.ndarray, texts: list[list[Any]]) -> np.ndarray:
        """``num`` with the descriptors of each text feature's values (one list per feature, in the
        schema's order) as further columns."""
        if not texts:
            return num
        derived = [d for d in self._input_derived() if d.source in self.schema.text_names]  # type: ignore[union-attr]
        return np.hstack([num] + [d.describe(values) for d, values in zip(derived, texts)])

    @property
    def score_widths(self) -> list[int] | None:
        """The output widths accepted (configured or learned), None while nothing is known."""
        return None if self._score_widths is None else sorted(self._score_widths)

    def restore_score_widths(self, widths: list[int] | None) -> None:
        """Widths learned before a restart (from a checkpoint): without them the first batch
        after the restart would decide again, and a malformed one would lock the model out.
        Configured classes keep precedence."""
        if self._score_widths is None and self._scores and widths:
            self._score_widths = frozenset(int(w) for w in widths)

    # -- inputs ----------------------------------------------------------------------------------
    def _rows_from_dicts(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, Unreadable | None]:
        schema = self.schema
        assert schema is not None
        if rows and type(rows[0]) is not dict and issubclass(type(rows[0]), dict):
            rows[0] = own_dict(rows[0])  # the others in the loop below
        if rows and type(rows[0]) is dict and not all(type(k) is str for k in rows[0]):
            # keys that are not text (a DataFrame's integer column labels, {0: x, 1: y}) by their
            # text, as the schema names them: looked up as they were, every value read as missing
            rows = [{str(k): v for k, v in own_dict(row).items()} if issubclass(type(row), dict) else row for row in rows]
        if self.renamed_keys is None:
            self._key_checks += 1
            if (self._key_checks <= 64 or not self._key_checks & 63) and rows and type(rows[0]) is dict:
                self._note_renamed_keys(rows[0], schema)
        num_names, cat_names, text_names = schema.numeric_names, schema.categorical_names, schema.text_names
        num = np.full((len(rows), len(num_names)), np.nan)
        cat = np.empty((len(rows), len(cat_names)), dtype=object)
        num_cols = tuple(enumerate(num_names))
        unreadable: np.ndarray | None = None
        first: tuple[str, Any] = ("", None)
        for i, row in enumerate(rows):
            if type(row) is not dict:  # by type: isinstance runs a caller's object's __class__
                if not issubclass(type(row), dict):
                    raise RowError("wrong_type", "rows must all be objects of feature name to value")
                row = rows[i] = own_dict(row)
            get = row.get
            line = num[i]
            for j, name in num_cols:
                v = get(name)
                if v is None:
                    continue
                if type(v) in PLAIN_NUMBERS:  # the common case: one set lookup (not v.__class__: a proxy's may raise)
                    try:
                        line[j] = v
                        continue
                    except OverflowError:  # an integer past float64: unreadable, below
                        pass
                # anything else as cell_number reads it: stored as they are, numpy's times were
                # counts of their unit (a timedelta64 of 2 ns was 2)
                read = cell_number(v)
                if read is None:
                    if unreadable is None:
                        unreadable = np.zeros(num.shape, dtype=bool)
                        first = (name, v)
                    unreadable[i, j] = True
                else:
                    line[j] = read
            for j, name in enumerate(cat_names):
                v = get(name)
                cat[i, j] = category_text(v)
        if text_names:
            num = self._describe(num, [[row.get(name) for row in rows] for name in text_names])
        reserved = self._learner.reserved_keys
        if reserved:
            self._reserved_rows += sum(not reserved.isdisjoint(row) for row in rows)
        return num, cat, None if unreadable is None else Unreadable(unreadable, *first)

    def _note_renamed_keys(self, row: dict[Any, Any], schema: Schema) -> None:
        known = schema.name_set
        extra = row.keys() - known  # one C-level pass: the common row has none
        if not extra or len(row) - len(extra) == len(known):
            return  # every feature, and other keys besides (an id) if any: nothing lost
        missing = [n for n in schema.names if n not in row]
        unknown = [str(k) for k in row if k in extra]
        listed = lambda keys: (", ".join(map(repr, keys[:8])) + (f" and {len(keys) - 8} more" if len(keys) > 8 else ""))[:300]  # noqa: E731
        self.renamed_keys = (
            f"input rows carry keys that are no configured feature ({listed(unknown)}) and lack "
            f"features ({listed(missing)}): those keys' values are not monitored and the features "
            "count as missing (monitor_data_invalid_rows_total{reason=\"missing\"}). Fix: send the features under the "
            "names the config lists (features:), or list the names the rows use; for OIP v2 requests with one tensor "
            "per feature, name each tensor as its feature (a tensor of several columns reads as <name>_0, <name>_1...)")

    def _event_rows(self, inputs: Any) -> tuple[np.ndarray, np.ndarray, Unreadable | None]:
        """(numeric (r, d_num) float64, categorical (r, d_cat) object, the numeric values that are
        no number if any) for one event's inputs."""
        schema = self.schema
        assert schema is not None
        if inputs is None:
            raise inputs_are_none("wrong_shape")
        if schema.tensor_names:
            return (*self._tensor_event_rows(inputs), None)
        inputs = series_row(named_columns(inputs), schema.name_set,
                            lambda column: self._learner.text_rows(column, None, self._reference_kinds))
        if is_dataframe(inputs):
            if not all(type(c) is str for c in inputs.columns):  # labels as the schema names them (one pass here)
                inputs = inputs.set_axis([str(c) for c in inputs.columns], axis=1)
            try:
                records = inputs.to_dict(orient="records")
            except Exception:  # noqa: BLE001 - pandas' own look at a caller's value in an object column
                # (isinstance, which runs its __class__; the call was lost as an internal error): the
                # cells as they are, each read by the row reader as any value is
                names = list(inputs.columns)
                records = [dict(zip(names, row)) for row in inputs.to_numpy(dtype=object).tolist()]
            return self._rows_from_dicts(records)
        if issubclass(type(inputs), dict):  # by type: isinstance runs a caller's object's __class__
            if type(inputs) is not dict:
                inputs = own_dict(inputs)
            values = list(inputs.values())
            if values and is_column(values[0]):  # columnar dict
                n = len(values[0])
                # a masked array's column with its masked entries missing (read as the values they hide before)
                inputs = {k: unmasked(v) for k, v in inputs.items()}
                columns = {k: v for k, v in inputs.items() if is_column(v)}
                if any(len(v) != n for v in columns.values()):
                    lengths = ", ".join(f"{str(k)[:40]!r} has {len(v)}" for k, v in list(columns.items())[:8])
                    raise RowError("wrong_shape", f"the columns of a dict of columns have different lengths ({lengths} "
                                                  "values): each column needs one value per row, as many as the outputs' rows")
                if any(complex_array(v) for v in columns.values()):
                    raise RowError("wrong_type", "a column of the dict of columns holds complex numbers; the monitor "
                                                 "reads real ones", _COMPLEX_FIX)
                # a single value (a number, a text) is every row's, as pandas broadcasts it: len() of a
                # number raised out of the worker, and a text's characters were read as the rows' values
                rows = [{k: (v[i] if k in columns else v) for k, v in inputs.items()} for i in range(n)]
                return self._rows_from_dicts(rows)
            return self._rows_from_dicts([inputs])
        if issubclass(type(inputs), (list, tuple)) and inputs and issubclass(type(inputs[0]), dict):
            return self._rows_from_dicts(list(inputs))
        if issubclass(type(inputs), (list, tuple)) and not inputs:
            # a call on no rows (a batching server's empty batch), as an empty array is: read as one
            # row of no feature below, it was refused as wrong_shape, a row that was never sent
            return np.empty((0, len(self.input_columns))), np.empty((0, len(schema.categorical_names)), dtype=object), None
        cat_names, text_names = schema.categorical_names, schema.text_names
        if text_names and len(schema) == 1:
            column = text_column(inputs)
            if column is not None:  # texts, one per row (a single text: one row)
                return self._describe(np.empty((len(column), 0)), [column]), np.empty((len(column), 0), dtype=object), None
        if cat_names or text_names:
            try:
                arr = object_cells(inputs)
            except ValueError:  # parts numpy cannot put side by side: the call was lost as internal_error
                raise RowError("wrong_shape", f"inputs are {_parts(inputs)}, not rows of {len(schema)} features; "
                                              "send one row per list (or a DataFrame, or dict rows) holding every "
                                              "feature's value, e.g. pd.concat of the parts' columns") from None
            if arr.ndim == 1:
                arr = arr[:, None] if len(schema) == 1 else arr[None, :]
            if arr.ndim != 2 or arr.shape[1] != len(schema):
                raise RowError("wrong_shape", f"expected rows of {len(schema)} features, got shape {arr.shape}")
            kinds = [f.kind for f in schema.features]
            num_idx = [i for i, k in enumerate(kinds) if k == "numeric"]
            cat_idx = [i for i, k in enumerate(kinds) if k == "categorical"]
            cells = arr[:, num_idx]
            unread = None
            try:
                num = None if odd_values(cells) else cells.astype(np.float64)
            except (TypeError, ValueError, OverflowError):
                num = None
            except Exception:  # noqa: BLE001 - a caller's object whose __float__ raises (RuntimeError...): read one by one
                num = None  # (cell_number marks it unreadable, wrong_type), where the call was lost as internal_error
            if num is None:  # values read one by one (those that are no number marked unreadable)
                num, unread = self._cells_as_numbers(cells, [schema.features[i].name for i in num_idx])
            num = self._describe(num, [arr[:, i].tolist() for i, k in enumerate(kinds) if k == "text"])
            cat = arr[:, cat_idx]
            return num, categorical_text(cat), unread
        if complex_array(inputs):
            raise RowError("wrong_type", f"inputs are complex numbers ({inputs.dtype}); the monitor reads real ones",
                           _COMPLEX_FIX)
        try:
            arr = float_rows(inputs)  # None for the caller's object whose own conversion raises anything else
        except (TypeError, ValueError, OverflowError):
            arr = None
        unread = None
        if arr is None:
            arr, unread = self._grid_as_numbers(inputs, schema)
        if arr.ndim == 1:  # one row, or for a one-feature model one value per row
            arr = arr[:, None] if len(schema) == 1 else arr[None, :]
        elif arr.ndim > 2 and arr.size == arr.shape[0] * len(schema):  # rows with an extra axis, [n, 1, d]
            arr = arr.reshape(arr.shape[0], len(schema))
        if arr.ndim != 2 or arr.shape[1] != len(schema):
            raise RowError("wrong_shape", f"expected rows of {len(schema)} features, got shape {arr.shape}")
        return arr, np.empty((arr.shape[0], 0), dtype=object), unread

    def _grid_as_numbers(self, inputs: Any, schema: Schema) -> tuple[np.ndarray, Unreadable | None]:
        """Rows of numbers of which some values are not numbers (``[[5.1, "N/A"], ...]``), read
        value by value: those are missing in their row, which is monitored (its outputs, the
        features that read), rather than the call refused for one value. A call none of whose
        values is a number (texts for a numeric model, a request object) is refused as before:
        nothing of it describes the inputs, and its refusal's log says the fix."""
        try:
            cells = object_cells(inputs)
        except ValueError:  # ragged rows
            cells = np.empty(0, dtype=object)
        if cells.ndim == 1 and cells.size:
            cells = cells[:, None] if len(schema) == 1 else cells[None, :]
        if cells.ndim != 2 or cells.shape[1] != len(schema) or not cells.size:
            raise RowError("wrong_type", "inputs must be numeric rows")
        num, unread = self._cells_as_numbers(cells, schema.names)
        if unread is not None and not (~unread.mask & ~np.isnan(num)).any():
            first = unread.value
            if issubclass(type(first), COMPLEX_SCALARS):  # isinstance runs a caller's object's __class__
                raise RowError("wrong_type", f"inputs hold complex numbers ({short_repr(first)}) and no real one; the "
                                             "monitor reads real ones", _COMPLEX_FIX)
            raise RowError("wrong_type", "inputs must be numeric rows")
        return num, unread

    def _cells_as_numbers(self, cells: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, Unreadable | None]:
        """Numeric features' values ``(rows, features)`` of any Python type as float64, those
        that are no number NaN, and where they are."""
        num = np.full(cells.shape, np.nan)
        unreadable: np.ndarray | None = None
        first: tuple[str, Any] = ("", None)
        for (i, j), v in np.ndenumerate(cells):
            read = cell_number(v)
            if read is not None:
                num[i, j] = read
                continue
            if unreadable is None:
                unreadable = np.zeros(cells.shape, dtype=bool)
                first = (names[j], v)
            unreadable[i, j] = True
        return num, None if unreadable is None else Unreadable(unreadable, *first)

    def _note_unreadable(self, name: str, value: Any) -> None:
        if self.unreadable_values is None:  # said once, for rows that were monitored (not a refused call's)
            complex_ = issubclass(type(value), COMPLEX_SCALARS)  # isinstance runs a caller's object's __class__
            fix = (_COMPLEX_FIX if complex_ else
                   "send numbers for numeric features (a missing value as null), or declare the feature kind: "
                   "categorical or kind: text under features in the config")
            self.unreadable_values = (
                f"feature {name!r} holds {'complex numbers' if complex_ else 'values that are not numbers'} (first: "
                f"{short_repr(value)}): each such row is monitored with that value missing, counted in "
                "monitor_data_invalid_rows_total{reason=\"wrong_type\"} (data_quality). Fix: " + fix)

    def _monitored_unreadable(self, unread: Unreadable | None, num: np.ndarray) -> np.ndarray | None:
        """The unreadable-value mask of rows that are monitored, as wide as their numeric columns
        (a text feature's descriptors after the numeric features: never unreadable); the first
        such value said once (a refused call's are not: its refusal says what was wrong)."""
        if unread is None:
            return None
        self._note_unreadable(unread.name, unread.value)
        return _widened(unread.mask, num.shape[1])

    def _tensor_calls_at_once(self, events: list[tuple[Any, ...]]) -> dict[int, tuple[np.ndarray, np.ndarray, None]]:
        """The descriptors of the events' rows of the tensor feature (event index -> its rows),
        described in one call when every event's inputs are an array of one row shape and dtype
        and all of them hold at most :data:`TENSOR_VALUES_AT_ONCE` values; else none (each event
        is then read alone). Why: describing small images (3 x 32 x 32) call by call cost each
        call some 80 us of numpy calls, a third of its 16 images' own cost."""
        arrays = [ev[2] for ev in events]
        if len(arrays) < 2 or any(type(a) is not np.ndarray for a in arrays):
            return {}
        first = arrays[0]
        if first.ndim < 2 or any(a.shape[1:] != first.shape[1:] or a.dtype != first.dtype for a in arrays) \
                or sum(a.size for a in arrays) > TENSOR_VALUES_AT_ONCE:
            return {}
        try:
            num, cat = self._tensor_event_rows(np.concatenate(arrays))
        except RowError:
            return {}  # read (and refused) call by call, each counted
        bounds = np.cumsum([0] + [a.shape[0] for a in arrays])
        return {i: (num[lo:hi], cat[lo:hi], None) for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))}

    def _tensor_event_rows(self, inputs: Any) -> tuple[np.ndarray, np.ndarray]:
        """The descriptors of one event's rows of the tensor feature (axis 0 the rows: an array of
        2 dimensions or more, or nested lists of numbers), as numeric columns."""
        from monitor.derived import TensorDerived
        from monitor.tensor import ChannelError

        feature = self.schema.features[0] if self.schema is not None else Feature("input", "tensor")
        name = feature.name
        if isinstance(inputs, dict) and len(inputs) == 1 and name in inputs:  # {"image": batch}
            inputs = as_numpy(inputs[name])
        try:
            arr = np.asarray(inputs)
        except Exception:  # noqa: BLE001 - ragged lists, an object's own conversion failing
            arr = np.empty(0, dtype=object)
        if arr.dtype.kind not in "biuf":
            raise RowError("wrong_type", f"tensor feature {name!r} needs an array of numbers (axis 0 the rows), got "
                                         f"{type(inputs).__name__}{f' of dtype {arr.dtype}' if arr.ndim else ''}")
        if arr.ndim < 2 and arr.size:
            raise RowError("wrong_shape", f"tensor feature {name!r} needs rows of 1 dimension or more (axis 0 the rows), "
                                          f"got shape {arr.shape}: add the batch axis (x[None]) for one row")
        if not arr.shape or not arr.shape[0]:  # a call on no rows (an empty list)
            return np.empty((0, len(self.input_columns))), np.empty((0, 0), dtype=object)
        try:
            derived, _ = TensorDerived(name, self.tensor_channels, feature.channel_axis).fixed(arr.shape)
        except ChannelError as err:
            if self.tensor_channels and not err.ambiguous:
                fix = ("send rows with the channels the feature was first read with (the reference's: a grayscale "
                       "image where colour ones were profiled, RGBA for RGB?), or rebuild the reference from such rows")
            else:
                fix = (f"name the channel axis in the config (features: [{{name: {name}, kind: tensor, channel_axis: 1}}]: "
                       "an axis of the call's array, negative from its end; none for rows without channels)")
            raise RowError("wrong_shape", f"tensor feature {name!r}: {err}; {fix}") from None
        if self.tensor_channels is None:
            self.tensor_channels = derived.channels  # the batch's columns, from now on
        return derived.describe(arr), np.empty((arr.shape[0], 0), dtype=object)

    def _class_columns(self, frame: Any) -> Any:
        """A DataFrame of scores with its columns in the order of the model's classes, when they
        are named by them (AutoGluon's and H2O's ``predict_proba`` answer one per class name, in an
        order of their own); ``frame`` as it is when its columns are named otherwise (read by
        position, as an array's). A model configured without classes learns them from the first
        such frame whose columns are all text or integers (AutoGluon's columns for labels 1-5 or
        -1/1), as from an estimator's ``classes_``.

        Why: read by position, a frame ``{"spam": 0.9, "ham": 0.1}`` under ``output.classes:
        [ham, spam]`` was monitored as P(ham) = 0.9, every row of the wrong class, and nothing said."""
        order = self._class_order(list(frame.columns), "a DataFrame of the columns")
        return frame if order is None else frame.iloc[:, order]

    def _class_records(self, records: list[Any]) -> list[list[Any]]:
        """Rows of scores given as objects keyed by class name (``[{"spam": 0.9, "ham": 0.1}]``)
        as rows in the order of the model's classes, as :meth:`_class_columns` reads a DataFrame.

        Why: a DataFrame of probabilities (AutoGluon's, H2O's) is forwarded by a worker as such
        records, as JSON writes a frame, and every row was refused at the sidecar as
        ``non_numeric_output``, where the same call in process was read by its columns' names;
        posted so to ``/v1/events`` they were refused alike."""
        names = list(records[0])
        for row in records:
            if type(row) is not dict or row.keys() != records[0].keys():
                raise RowError("output_shape", f"outputs are rows keyed by class name, but not all by the same ones "
                                               f"({short_list([str(k) for k in names])} in the first, "
                                               f"{short_repr(row)} in another): give every row a score per class")
        order = self._class_order(names, "rows keyed by")
        keys = names if order is None else [names[i] for i in order]
        return [[row[k] for k in keys] for row in records]

    def _class_order(self, columns: list[Any], what: str) -> list[int] | None:
        """Positions of the model's classes among ``columns`` (named scores), or None: read as they
        are (named otherwise, already in order, or a binary model's positive class alone)."""
        names = [str(c) for c in columns]
        known = self.classes.names
        if (not known and names and len(set(names)) == len(names) <= self.classes.cap
                and all(_class_column_name(c) for c in columns)):
            for name in names:
                self.classes.add(name)
            self.classes.ensure(len(names))  # the names are columns: an integer label may be a column index
            known = self.classes.names
        if not names or not set(names) <= set(known):
            return None
        if sorted(names) == sorted(known):
            return None if names == known else [names.index(k) for k in known]
        if len(known) == 2 and names == [known[1]] and not self.output.is_multilabel:
            return None  # P(positive) of a binary model, as one column is read
        raise RowError("output_shape", f"outputs are {what} {short_list(names)}, "
                                       f"named as some of the classes ({short_list(known)}): "
                                       "return one score per class of output.classes (or, for a binary model, the "
                                       "positive class's alone)")

    def _event_outputs(self, outputs: Any, n_rows: int) -> np.ndarray:
        if self._no_outputs:
            return _unread(n_rows)
        if outputs is None:
            # predict that returns nothing (its last line without return, a JSON "outputs": null):
            # read as one NaN output, it was "20 input rows but 1 outputs" (one row: a NaN output)
            raise RowError("non_numeric_output" if self._answers else "rows_mismatch", _NO_OUTPUTS.format(n_rows))
        if self._answers:
            return _answers(outputs, n_rows)
        kind = self.output.kind
        if self._scores:
            if is_dataframe(outputs):
                outputs = self._class_columns(outputs)
            elif type(outputs) is list and outputs and type(outputs[0]) is dict:
                outputs = self._class_records(outputs)
        if kind == "probabilities" and integer_array(outputs):
            raise RowError("labels_as_probabilities", (
                f"outputs of integer or boolean dtype ({outputs.dtype}) are class labels or votes, not probabilities "
                "(read as probabilities, every row had confidence 1); a decorated predict() rather than predict_proba()"))
        if kind == "labels":
            try:
                arr = object_cells(outputs)
            except ValueError:  # parts numpy cannot put side by side ((labels, probabilities)): was internal_error
                raise _parts_refusal(outputs, "labels", 0) from None
            if _complex_labels(arr):  # not classes named "(0.2+0j)" (an array of complex dtype is such values too)
                raise _complex_outputs(outputs)
        else:
            arr = score_values(outputs, kind)
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if n_rows == 1 and arr.shape[0] != 1 and arr.ndim <= 1 + bool(self.output.samples_axis):
            # a single row whose output is a vector of k classes (or samples x k)
            arr = arr[None, ...]
        if arr.shape[0] != n_rows:
            swapped = ""
            if self.output.samples_axis and arr.ndim == 3 and arr.shape[1] == n_rows:
                # the list of the members' outputs ([est.predict_proba(X) for est in ensemble]) is
                # (samples, rows, classes): "one output per input row" alone sent the user elsewhere
                swapped = (f" (outputs of shape {arr.shape}: samples, rows, classes, as a list of the members' outputs "
                           "is, where output.samples_axis reads rows, samples, classes: return np.stack(members, "
                           "axis=1), or watch(..., outputs=lambda out: np.stack(out, axis=1)))")
            raise RowError("rows_mismatch", f"{n_rows} input rows but {arr.shape[0]} outputs{swapped}")
        if self.output.samples_axis and arr.ndim != 3:
            # a binary ensemble's members (or MC-dropout samples of a sigmoid) each give P(positive):
            # (rows, samples), read as it is nowhere; the message named no shape and no way out
            binary = (" (rows, samples) is read as nothing: for members that each return P(positive) of a binary "
                      "model add the classes axis, np.stack(members, axis=1)[..., None], or "
                      "watch(..., outputs=lambda out: out[..., None])") if arr.ndim == 2 else ""
            raise RowError("output_shape", f"ensemble outputs must be (rows, samples, classes), got shape {arr.shape}{binary}")
        self._check_width(arr.shape[1:])
        return arr

    def _fits(self, row_shape: tuple[int, ...]) -> bool:
        """Whether outputs of this row shape have a width the model's classes allow."""
        return self._score_widths is None or (row_shape[-1] if row_shape else 1) in self._score_widths

    def _check_width(self, row_shape: tuple[int, ...]) -> None:
        if not self._fits(row_shape):
            allowed = " or ".join(str(w) for w in sorted(self._score_widths or ()))
            raise RowError("output_shape", f"outputs have {row_shape[-1] if row_shape else 1} columns per row; "
                                           f"this model's have {allowed}")

    # -- batch -----------------------------------------------------------------------------------
    def build(self, events: list[tuple[Any, ...]]) -> BuildResult:
        """Convert prediction events ``(PREDICTION, ts, inputs, outputs, latency, client, request_id, segment, embedding)``."""
        result = BuildResult(None)
        if not events:
            return result
        if self._no_outputs:  # not read: never converted (a GPU tensor of generated ids), never held
            events = [ev if ev[3] is None else (*ev[:3], None, *ev[4:]) for ev in events]
        events = [_event_as_numpy(ev) for ev in events]
        unreadable = 0  # leading events whose inputs no schema could be learnt from
        refusal: RowError | None = None  # the first of them whose refusal names its own fix
        while self.schema is None and unreadable < len(events):
            try:
                learned = self._learner.learn(rows_to_learn(events[unreadable:]), events[unreadable][3], self._reference_kinds)
                if not len(learned):
                    # an empty batch ([], {}, rows of no column): a schema of no feature learnt from it
                    # refused every later row as wrong_shape ("expected rows of 0 features"), for good
                    raise RowError("wrong_shape", "no feature to learn the inputs' schema from")
                self.schema = learned
                check_reference_names(self.schema, self.reference_names, tensors=self.reference_tensors)
            except Exception as err:  # noqa: BLE001 - unreadable first event: count it, learn from the next
                unreadable += 1
                if refusal is None and isinstance(err, RowError) and err.fix:
                    refusal = err
        if unreadable:
            # counted one by one, in a loop: a drain of thousands of them (a decorated handler's
            # request objects) recursed once per event, into a RecursionError
            try:
                rest = self.build(events[unreadable:]) if unreadable < len(events) else BuildResult(None)
            except MixedOutputWidths as mixed:  # built again by groups: the unreadable ones with the first
                mixed.groups[0][:0] = events[:unreadable]
                raise
            # each call's rows, as every other refusal counts them (one per call before: a refused
            # sparse matrix of 500 rows was one row of the accounting)
            rows = sum(guess_rows(ev[2], self.one_feature) for ev in events[:unreadable])
            rest.rejected["wrong_type"] = rest.rejected.get("wrong_type", 0) + rows
            rest.refused_ids[:0] = refused_ids(events[:unreadable])
            first = events[0][2]
            sparse = (": a sparse matrix (a vectorizer's output) is not read; decorate the function that takes the raw "
                      "inputs (the pipeline's predict on the texts), or, for a few columns, watch(..., inputs=lambda X: "
                      "X.toarray())") if callable(getattr(first, "toarray", None)) else ""
            if refusal is not None:
                rest.details.setdefault("wrong_type", str(refusal))
                rest.fixes.setdefault("wrong_type", refusal.fix)
            rest.details.setdefault("wrong_type", f"the inputs are {type(first).__name__}, not rows of numbers "
                                                  f"or of feature values{sparse}")
            rest.rows_per_event[:0] = [0] * unreadable
            return rest
        schema = self.schema
        nums: list[np.ndarray] = []
        cats: list[np.ndarray] = []
        outs: list[np.ndarray] = []
        unreadable: list[np.ndarray | None] = []  # aligned with nums (see _monitored_unreadable)
        parsed: list[int] = []  # the events whose rows and outputs were read, in order
        self._reserved_rows = 0
        fast = self._fast_stack(events) or self._fast_dict_rows(events)
        if fast is not None:
            num, cat, odd, raw_out, rows = fast
            nums, cats, outs = [num], [cat], [raw_out]
            unreadable.append(self._monitored_unreadable(odd, num))
            result.rows_per_event = rows
        else:
            described = self._tensor_calls_at_once(events) if schema.tensor_names else {}
            self._reserved_rows = 0  # a fast path that gave up counted nothing
            for i, ev in enumerate(events):
                reserved_rows = self._reserved_rows
                try:
                    num, cat, odd = described[i] if i in described else self._event_rows(ev[2])
                    if not num.shape[0] and _no_values(ev[3]):
                        # a call on no rows answered with none ([] and []): nothing to read; its outputs'
                        # shape (0,) was refused as output_shape, a row never sent, unless the model had 1-2 classes
                        result.rows_per_event.append(0)
                        continue
                    out = self._event_outputs(ev[3], num.shape[0])
                except RowError as err:
                    self._reserved_rows = reserved_rows  # refused: counted as such, not as processed
                    n_guess = guess_rows(ev[2], self.one_feature)
                    result.rejected[err.reason] = result.rejected.get(err.reason, 0) + n_guess
                    result.refused_ids.extend(refused_ids([ev]))
                    if err.reason not in result.details:  # the first such event's words, and its own fix if it has one
                        result.details[err.reason] = str(err)
                        if err.fix:
                            result.fixes[err.reason] = err.fix
                    result.rows_per_event.append(0)
                    continue
                nums.append(num)
                cats.append(cat)
                outs.append(out)
                unreadable.append(self._monitored_unreadable(odd, num))
                parsed.append(i)
                result.rows_per_event.append(num.shape[0])
        if not nums:
            return result
        if self._reserved_rows:
            result.arguments_dropped["reserved_key"] = self._reserved_rows
            result.details.setdefault("argument:reserved_key", self._learner.reserved_detail)
        if len(outs) > 1 and len({o.shape[1:] for o in outs}) > 1:
            groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
            for i, o in zip(parsed, outs):
                groups.setdefault(o.shape[1:], []).append(events[i])
            first = next(iter(groups.values()))
            read = set(parsed)
            first[:0] = [ev for i, ev in enumerate(events) if i not in read]  # refused again there, and counted
            raise MixedOutputWidths(list(groups.values()))
        raw = np.concatenate(outs, axis=0) if len(outs) > 1 else outs[0]
        if schema.tensor_names:  # calls on no rows, read before the first rows fixed the channels
            nums = [n for n in nums if len(n)] or [np.empty((0, len(self.input_columns)))]
        numeric = np.concatenate(nums, axis=0) if len(nums) > 1 else nums[0]
        categorical = np.concatenate(cats, axis=0) if len(cats) > 1 else cats[0]
        unread = None
        if any(mask is not None for mask in unreadable):
            unread = np.concatenate([np.zeros(n.shape, dtype=bool) if mask is None else mask
                                     for n, mask in zip(nums, unreadable)], axis=0)
        answers = self._answers_derived()
        if answers is not None:  # the answers' descriptors after the inputs' columns; no scores
            numeric = np.hstack([numeric, answers.describe(raw.tolist())])
            if unread is not None:
                unread = _widened(unread, numeric.shape[1])
        decoded = (DecodedOutputs(np.ones(raw.shape[0], dtype=bool), {}) if self._no_outputs or self._answers
                   else decode_outputs(raw, self.output, self.classes))
        if self._score_widths is None and self._scores and decoded.valid.any():
            width = raw.shape[-1] if raw.ndim >= 2 else 1
            # a binary model's P(positive) alone or both columns: either, as with two configured classes
            self._score_widths = frozenset({1, 2} if width in (1, 2) and not self.output.is_multilabel else {width})
        for reason, n in decoded.reasons.items():
            result.rejected[reason] = result.rejected.get(reason, 0) + n
            result.details.setdefault(reason, decoded.details.get(reason, ""))
        # per-row event attributes
        counts = np.asarray(result.rows_per_event, dtype=np.int64)
        used = [ev for ev, c in zip(events, result.rows_per_event) if c]
        used_counts = counts[counts > 0]
        if "nan_output" in decoded.reasons and not result.details.get("nan_output"):
            result.details["nan_output"] = _nan_output_detail(raw, decoded.valid, used, used_counts)
        ts = np.repeat(np.fromiter((ev[1] for ev in used), dtype=np.float64, count=len(used)), used_counts)
        client = row_clients(used, used_counts, result)
        segment = row_segments(used, used_counts, result)
        request_id = row_ids(used, used_counts, result)
        embedding = row_embeddings(used, used_counts, result)
        valid = decoded.valid
        if not valid.all():
            sel = valid
            result.refused_ids.extend(refused_row_ids(request_id[~sel]))
            numeric, categorical, ts, client, segment, request_id = (
                numeric[sel], categorical[sel], ts[sel], client[sel], segment[sel], request_id[sel])
            unread = None if unread is None or not unread[sel].any() else unread[sel]
            embedding = embedding[sel] if embedding is not None else None
            pick = lambda a: None if a is None else a[sel]  # noqa: E731
            decoded.scores, decoded.logits, decoded.members = pick(decoded.scores), pick(decoded.logits), pick(decoded.members)
            decoded.predicted, decoded.intervals = pick(decoded.predicted), pick(decoded.intervals)
        if ts.size == 0:
            return result
        order = None
        if ts.size > 1 and (np.diff(ts) < 0).any():
            order = np.argsort(ts, kind="stable")
        batch = Batch(
            ts=ts, numeric=numeric, categorical=categorical,
            numeric_names=self.numeric_columns, categorical_names=schema.categorical_names,
            client=client, request_id=request_id, segment=segment,
            scores=decoded.scores, logits=decoded.logits, members=decoded.members,
            predicted=decoded.predicted, intervals=decoded.intervals, embedding=embedding,
            classes=tuple(self.classes.names), numeric_unreadable=unread,
        )
        if order is not None:
            batch = batch.rows(order)
        result.batch = batch
        return result

    def _fast_dict_rows(self, events: list[tuple[Any, ...]]) -> _Stacked | None:
        """Every event one row given as a ``{feature: value}`` dict (JSON events, CloudEvents,
        decorated functions called with a dict), with outputs of one shape: every row read in one
        pass and the outputs stacked in one go, instead of a few arrays per event. None (the
        event-by-event path, which refuses bad events one by one) when any event is otherwise or
        a row or output does not read."""
        if self.output.samples_axis or self._answers or self.schema.tensor_names:  # type: ignore[union-attr]
            # a tensor feature (images) is no key of a dict row: read so, its rows had none of the
            # descriptor columns the batch names, and the detectors failed on them
            return None
        ins = [ev[2] for ev in events]
        if {type(x) for x in ins} != {dict}:
            return None
        for row in ins:
            for first in row.values():
                if issubclass(type(first), (list, tuple, np.ndarray)):  # a columnar dict: rows of lists (by type: see as_numpy)
                    return None
                break
            else:
                return None  # an empty dict
        raw = self._stack_row_outputs([ev[3] for ev in events])
        if raw is None:
            return None
        try:
            num, cat, unread = self._rows_from_dicts(ins)
        except RowError:
            return None
        return num, cat, unread, raw, [1] * len(events)

    def _stack_row_outputs(self, outs: list[Any]) -> np.ndarray | None:
        """The outputs of one-row events stacked as the event-by-event path would concatenate
        them: each a list of ``k >= 2`` numbers (``(n, k)``) or each a scalar (``(n,)``); None
        for any other shape (one-element lists, ragged or nested ones), left to that path."""
        if self._no_outputs:
            return _unread(len(outs))
        kinds = {type(o) for o in outs}
        if kinds <= {list, tuple}:
            width = len(outs[0])
            if width < 2 or any(len(o) != width for o in outs):
                return None
        elif not kinds <= {int, float, str} or (str in kinds and self.output.kind != "labels"):
            return None
        try:  # complex numbers: refused event by event, not cast to their real parts
            raw = np.array(outs, dtype=object) if self.output.kind == "labels" else real_numbers(outs)
        except Exception:  # noqa: BLE001 - and a value whose own float() raises anything (a RuntimeError was internal_error)
            return None
        if raw.ndim not in (1, 2) or raw.shape[0] != len(outs) or not self._fits(raw.shape[1:]):
            return None
        return raw

    def _fast_stack(self, events: list[tuple[Any, ...]]) -> _Stacked | None:
        """All events numpy rows of the schema's width with numpy outputs: stack in one go."""
        schema = self.schema
        if (schema is None or schema.categorical_names or schema.text_names or schema.tensor_names or self.output.kind in ("labels", "text")
                or self.output.samples_axis):
            return None
        ins = [ev[2] for ev in events]
        width = len(schema)
        in_types = {type(x) for x in ins}
        if in_types <= {list, tuple}:  # each event one row as a list of numbers (JSON events)
            if any(len(x) != width for x in ins):
                return None
            raw = self._stack_row_outputs([ev[3] for ev in events])
            if raw is None:
                return None
            try:
                num = float_rows(ins)
            except (TypeError, ValueError, OverflowError):
                return None
            return (num, _no_categorical(num), None, raw, [1] * len(events)) if num is not None and num.ndim == 2 else None
        outs = [ev[3] for ev in events]
        if in_types != {np.ndarray} or not (self._no_outputs or {type(x) for x in outs} == {np.ndarray}):
            return None
        if self.output.kind == "probabilities" and any(integer_array(o) for o in outs):
            return None  # labels where probabilities are expected: refused event by event (_event_outputs)
        if any(x.dtype.kind in "cmMO" for x in ins) or not self._no_outputs and any(o.dtype.kind in "cO" for o in outs):
            # complex numbers refused event by event, not cast to their real parts; times read as seconds;
            # objects value by value (the cast ran a caller's value's own __float__, whose error lost the call)
            return None
        first = ins[0]
        try:
            if first.ndim == 1:
                num = np.array(ins, dtype=np.float64)
                out = _unread(len(events)) if self._no_outputs else np.array(outs, dtype=np.float64)
                if num.ndim != 2 or num.shape[1] != width or out.shape[0] != len(events) or not self._fits(out.shape[1:]):
                    return None
                return num, _no_categorical(num), None, out, [1] * len(events)
            if first.ndim == 2:
                num = np.concatenate(ins).astype(np.float64, copy=False)
                rows = [x.shape[0] for x in ins]
                out = _unread(num.shape[0]) if self._no_outputs else np.concatenate(outs).astype(np.float64, copy=False)
                if num.shape[1] != width or not self._no_outputs and [o.shape[0] for o in outs] != rows or not self._fits(out.shape[1:]):
                    return None
                return num, _no_categorical(num), None, out, rows
        except (TypeError, ValueError):
            return None
        return None


def _class_column_name(column: Any) -> bool:
    """Whether a score column's name is a class name to learn: text, or an integer (a bool too),
    whose ``str()`` is the key a forwarding worker writes for it (:func:`monitor.forwarding._default`
    writes a frame's labels by their ``str()``), so that a frame's rows forwarded as JSON objects
    (``{"3": 0.7}``) learn the classes the frame does in process. Why integers: a frame of columns 1,
    2, 3 (a model of labels 1-5, or -1/1) was read by position in process, its classes named "0".."2"
    where the forwarded rows named them "1".."3", and a label 3 was no class of it in process; and
    bools (a binary model of labels False/True) "0"/"1" in process, "false"/"true" forwarded."""
    return isinstance(column, (str, int, np.integer, np.bool_))


#: What a fast path hands to ``build``: numeric rows, categorical rows, raw outputs, rows per event.
#: a fast path's batch: numeric and categorical columns, unreadable values, outputs, rows per event
_Stacked = tuple[np.ndarray, np.ndarray, "Unreadable | None", np.ndarray, list[int]]


#: Types :func:`as_numpy` passes as they are without looking for a ``numpy`` method.
_PLAIN = (np.ndarray, list, tuple, dict, str, bytes, int, float, bool, type(None))
#: numpy's masked arrays (ndarrays too, read without their mask unless :func:`unmasked` reads them)
_MASKED = np.ma.MaskedArray


def as_numpy(value: Any) -> Any:
    """A tensor (PyTorch, TensorFlow: an object with a ``numpy()`` method) as a numpy array, read
    as ``.detach().cpu().numpy()`` where it has those methods; anything else as it is.

    A PyTorch model's ``model(x).softmax(-1)`` outside ``torch.no_grad()`` requires grad, and
    ``np.asarray`` of it raises RuntimeError: every such event was lost as the monitor's own
    ``internal_error`` (and a CUDA tensor refused as not numbers). The caller's tensor is not
    changed: ``detach`` and ``cpu`` return new ones."""
    if issubclass(type(value), _PLAIN):  # by type: isinstance runs a caller's object's __class__ (a proxy's may raise)
        return value
    try:
        if not callable(getattr(value, "numpy", None)):  # a DataFrame's column "numpy" is no method
            return value
        tensor = value
        detach = getattr(tensor, "detach", None)
        if callable(detach):
            tensor = detach()
        cpu = getattr(tensor, "cpu", None)
        if callable(cpu):
            tensor = cpu()
        arr = tensor.numpy()
    except Exception:  # noqa: BLE001 - not a tensor after all: read (or refused) as it is
        return value
    return arr if isinstance(arr, np.ndarray) else value


def unmasked(value: Any) -> Any:
    """A numpy masked array as the plain array the monitor reads, its masked entries missing: NaN
    among numbers (the array as float64; counted missing by data quality, as any NaN is), NaT
    among times, None among text and objects; ``value`` itself when it is no masked array.

    Why: ``np.asarray`` (and ``astype``) of a masked array is its data alone, so the masked
    entries were monitored as whatever value they hid (a fill value such as 1e20, or 0) as real
    inputs, outputs or reference rows, and nothing was counted missing."""
    if not issubclass(type(value), _MASKED):  # by type: isinstance runs a caller's object's __class__
        return value
    mask = np.ma.getmaskarray(value)
    data = np.asarray(value.data)
    if not mask.any():
        return data
    kind = data.dtype.kind
    if kind in "biuf":
        out = data.astype(np.float64)
        out[mask] = np.nan
    elif kind in "mM":
        out = data.copy()
        out[mask] = np.array("NaT", dtype=data.dtype)
    elif kind == "c":
        return data  # refused as complex numbers whatever their mask
    else:
        out = data.astype(object)
        out[mask] = None
    return out


def _event_as_numpy(event: tuple[Any, ...]) -> tuple[Any, ...]:
    """A prediction event whose inputs, outputs or embedding are tensors, with them as numpy
    arrays (see :func:`as_numpy`), masked arrays with their masked entries missing (see
    :func:`unmasked`); the event itself when none is (the common case: a few type checks)."""
    x, out = event[2], event[3]
    emb = event[8] if len(event) > 8 else None
    # by type: isinstance runs a caller's object's __class__, which a proxy's may raise (the call was
    # lost); and for a list, 0.3 of its cost (isinstance looked up __class__ against ndarray first)
    tx, tout, temb = type(x), type(out), type(emb)
    if issubclass(tx, _PLAIN) and issubclass(tout, _PLAIN) and issubclass(temb, _PLAIN) and not (
            issubclass(tx, _MASKED) or issubclass(tout, _MASKED) or issubclass(temb, _MASKED)):
        return event
    x2, out2, emb2 = unmasked(as_numpy(x)), unmasked(as_numpy(out)), unmasked(as_numpy(emb))
    if x2 is x and out2 is out and emb2 is emb:
        return event
    return (*event[:2], x2, out2, *event[4:8], emb2, *event[9:]) if len(event) > 8 else (*event[:2], x2, out2, *event[4:])


def score_values(outputs: Any, kind: str) -> np.ndarray:
    """The outputs of a model of a numeric ``output.kind`` (probabilities, logits, regression,
    multilabel) as float64, as :func:`~monitor.cell_values.real_numbers` reads them, or the
    RowError that refuses the call: complex numbers, values of no number (``non_numeric_output``),
    rows of different lengths (``output_shape``). A forwarding worker told the kind reads its
    outputs so when JSON cannot write them (:mod:`monitor.forwarding`)."""
    try:
        return real_numbers(outputs)  # complex arrays, and lists holding complex numbers, raise
    except ComplexValues:
        raise _complex_outputs(outputs) from None
    except (TypeError, ValueError) as err:
        example = _text_example(outputs)
        if "inhomogeneous" in str(err) and example is None:  # numbers, in rows or members of different lengths
            raise _parts_refusal(outputs, "scores", 1, "probabilities") from None
        raise RowError("non_numeric_output",
                       f"outputs must be numbers for output.kind: {kind}, got {type(outputs).__name__}"
                       f"{' of other values' if issubclass(type(outputs), (list, tuple)) else ''}"
                       f"{f' (e.g. {example})' if example else ''}") from None
    except Exception as err:  # noqa: BLE001 - the outputs' own conversion failed, not the monitor
        raise RowError("non_numeric_output", f"outputs of type {type(outputs).__name__} could not be read as "
                                             f"numbers ({type(err).__name__}: {str(err)[:200]})") from None


def integer_array(outputs: Any) -> bool:
    """Whether outputs are an array (numpy, pandas) of integers or booleans: what ``predict()``
    returns for a classifier, class labels, where ``predict_proba()`` was meant. Read as
    probabilities, a binary model's 0 and 1 were P(positive) 0 and 1: confidence 1 on every row,
    calibration and confidence drift off, and nothing said; a multi-class model's labels 0 and 1
    were read so too, its others refused as out of range. A caller's object whose ``__getattr__``
    raises is none (its call was lost as an internal error)."""
    try:
        dtype = getattr(outputs, "dtype", None)
        return getattr(dtype, "kind", None) in ("b", "i", "u") and hasattr(outputs, "shape")
    except Exception:  # noqa: BLE001 - the caller's object's own attribute lookup
        return False


def _widened(mask: np.ndarray, width: int) -> np.ndarray:
    """``mask`` with False columns added on the right up to ``width`` (derived columns, a text
    feature's descriptors or the answers', follow the numeric features and are never unreadable)."""
    if mask.shape[1] == width:
        return mask
    return np.hstack([mask, np.zeros((mask.shape[0], width - mask.shape[1]), dtype=bool)])


_NO_OUTPUTS = ("outputs are None for {} input row(s): the model (or the outputs= extractor) returned nothing, or "
               "the event's outputs were null; return the model's outputs (one per input row)")


def _answers(outputs: Any, n_rows: int) -> np.ndarray:
    """A generative model's answers (``output.kind: text``) as an object array ``(n_rows,)`` of
    texts (bytes decoded, None for a missing one): a list, tuple, array or Series of them, one
    per input row (a column of them too: OIP v2's BYTES output is ``[n, 1]``), or one text for a
    one-row call. Anything else is refused (the pipeline's log names the fix)."""
    from monitor.text import text_value

    # by type: isinstance runs a caller's object's __class__, which may raise (the call was lost)
    kind = type(outputs)
    if issubclass(kind, np.ndarray) and outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]  # a column of texts: OIP v2's BYTES output of shape [n, 1]
        kind = type(outputs)
    elif issubclass(kind, list) and outputs and all(issubclass(type(v), list) and len(v) == 1 for v in outputs):
        outputs = [v[0] for v in outputs]  # the same column as JSON rows: [["answer"], ["answer"]]
    if issubclass(kind, (str, bytes, bytearray)):
        values: list[Any] = [outputs]
    elif issubclass(kind, (list, tuple)) or is_series(outputs) or (issubclass(kind, np.ndarray) and outputs.ndim == 1):
        values = list(outputs)
    elif issubclass(kind, np.ndarray) and outputs.ndim == 0:
        values = [outputs.item()]
    else:
        try:
            shape = f" of shape {outputs.shape}" if hasattr(outputs, "shape") else ""
        except Exception:  # noqa: BLE001 - the caller's object's own attribute lookup (the call was lost)
            shape = ""
        raise RowError("non_numeric_output", f"output.kind: text reads one generated text per input row, got "
                                             f"{type(outputs).__name__}{shape}")
    if len(values) != n_rows:
        raise RowError("rows_mismatch", f"{n_rows} input rows but {len(values)} generated texts: output.kind: text "
                                        "reads one answer per input row")
    bad = next((v for v in values if not (v is None or issubclass(type(v), (str, bytes, bytearray, np.str_, np.bytes_)))), _NO_BAD)
    if bad is not _NO_BAD:
        raise RowError("non_numeric_output", f"output.kind: text reads one generated text per input row, got a "
                                             f"{type(bad).__name__} ({short_repr(bad)}) among them")
    arr = np.empty(n_rows, dtype=object)
    arr[:] = [v if type(v) is str else text_value(v) for v in values]
    return arr


#: No answer of :func:`_answers` was refused
_NO_BAD = object()


def _parts(value: Any) -> str:
    """How a list or tuple of parts of different shapes was given, for a refusal: ``a tuple of 2
    arrays (shapes (2,), (2, 2))``, else its type."""
    try:
        arrays = isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value)
    except Exception:  # noqa: BLE001 - a caller's object whose __getattr__ raises: no array (the refusal was lost)
        arrays = False
    if arrays:
        shapes = ", ".join(str(tuple(v.shape)) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"a {type(value).__name__} of {len(value)} arrays (shapes {shapes})"
    return f"a {type(value).__name__} of parts of different shapes"


def _parts_refusal(outputs: Any, what: str, index: int, named: str = "") -> RowError:
    """The refusal of outputs given as parts of different shapes: a tuple of arrays (predict
    returning ``(labels, probabilities)``: "rows of different lengths" sent the user looking at
    the classes, not at the tuple; read as labels, numpy raised and the call was lost as
    internal_error), else rows of different lengths. ``what`` the kind's outputs, ``index``
    where such a tuple usually holds them (``named`` what they are there, when not ``what``)."""
    if isinstance(outputs, tuple) and len(outputs) >= 2 and all(hasattr(o, "shape") for o in outputs):
        return RowError("output_shape", f"outputs are {_parts(outputs)}, not one array of {what}; pick the {what} with "
                                        f"watch(..., outputs=lambda result: result[{index}]) (the index of the {named or what})")
    if what == "labels":
        return RowError("output_shape", f"outputs are {_parts(outputs)}; output.kind: labels reads one label per row")
    return RowError("output_shape", "outputs whose rows (or ensemble members) have different lengths; every "
                                    "row needs one score per class, every member the same classes")


def _complex_outputs(outputs: Any) -> RowError:
    """The refusal of outputs holding complex numbers (an array of complex dtype, or a container
    of complex values), whatever the output kind: ``out.real`` for an array, ``np.real(out)``
    (which a list takes too) otherwise."""
    fix = _COMPLEX_OUTPUTS_FIX if complex_array(outputs) else _COMPLEX_OUTPUTS_FIX.replace("out.real", "np.real(out)")
    return RowError("non_numeric_output", f"outputs are complex numbers ({complex_form(outputs)}); the monitor reads "
                                          "real ones", fix)


def _complex_labels(labels: np.ndarray) -> bool:
    """Labels (an object array) holding a complex number, which would be learned as a class named
    by its text ("(0.2+0j)"): refused as the other kinds' complex outputs are. One look at each
    value's type (text and integer labels, the usual ones, pass at once)."""
    types = set(map(type, labels.ravel().tolist()))
    return any(issubclass(t, COMPLEX_SCALARS) or (t is np.ndarray and any(map(holds_complex, labels.ravel().tolist())))
               for t in types)


_COMPLEX_FIX = ("send real numbers: what the model reads from them as features of their own, e.g. "
                "watch(..., inputs=lambda x: np.hstack([x.real, x.imag])) with those columns under features:, or "
                "np.abs(x)")
_COMPLEX_OUTPUTS_FIX = ("return real scores or values, e.g. watch(..., outputs=lambda out: out.real) where the imaginary "
                        "parts are zero, or np.abs(out)")


def _nan_output_detail(raw: np.ndarray, valid: np.ndarray, used: list[tuple[Any, ...]], counts: np.ndarray) -> str:
    """What the first row refused as ``nan_output`` was given as: its outputs as the call gave them
    (found from the stacked ``raw`` through the calls' row counts), said as holding missing values
    when it holds None (JSON null), which the float conversion had made NaN: the refusal said "the
    model returned NaN or infinite values" of ``[[None, 0.5]]``. The row is the first refused one
    (``~valid``) that is not all finite (a logit of -inf, a masked class, is no refusal). Empty
    when no such row is found."""
    if raw.dtype.kind != "f" or not raw.shape[0] or valid.shape[0] != raw.shape[0]:
        return ""
    bad = np.flatnonzero(~valid & ~np.isfinite(raw.reshape(raw.shape[0], -1)).all(axis=1))
    if not bad.size:
        return ""
    r = int(bad[0])
    ends = np.cumsum(counts)
    k = int(np.searchsorted(ends, r, side="right"))
    if k >= len(used):
        return ""
    c, given = int(counts[k]), used[k][3]
    row = given
    # a 0-d array (np.array(nan), a 0-d tensor) is one value, not rows: len() of it raised, and the
    # call was lost as internal_error
    sized = isinstance(given, (list, tuple)) or isinstance(given, np.ndarray) and given.ndim > 0
    if sized and len(given) == c and (c > 1 or isinstance(given[0], (list, tuple, np.ndarray))):
        row = given[r - int(ends[k]) + c]
    values = list(row) if isinstance(row, (list, tuple)) else [row]
    if any(v is None or isinstance(v, (list, tuple)) and any(x is None for x in v) for v in values):
        return f"outputs hold missing values (None, JSON null), e.g. {short_repr(row)}"
    return f"outputs hold NaN or infinite values, e.g. {short_repr(row)}"


def _no_values(outputs: Any) -> bool:
    """Outputs that hold nothing: an empty list or tuple, an array of size 0 (not None)."""
    if isinstance(outputs, (list, tuple)):
        return not outputs
    return getattr(outputs, "size", None) == 0


def _unread(rows: int) -> np.ndarray:
    """The outputs of ``rows`` rows of a model whose outputs are not read (``output.kind: none``):
    no column, so that the rows are the inputs' alone."""
    return np.empty((rows, 0))


def _no_categorical(num: np.ndarray) -> np.ndarray:
    return np.empty((num.shape[0], 0), dtype=object)


def _text_example(outputs: Any) -> str | None:
    """The first row of ``outputs`` (of their first 100) that holds text or objects, as the log
    shows it, None when none does: rows of text of different lengths (a label per token) were
    refused as rows of scores of different lengths, "one score per class", and generated text
    named no value."""
    kind = type(outputs)  # by type: isinstance runs a caller's object's __class__, which may raise (the call was lost)
    if issubclass(kind, (str, bytes, dict)):
        rows: Any = [outputs]
    elif issubclass(kind, (list, tuple)):
        rows = outputs[:100]
    elif issubclass(kind, np.ndarray) and outputs.dtype.kind in "OSU":
        # a 0-d object array (np.asarray of a dict the model returned) is its one value: sliced, it
        # raised IndexError and the call was lost as internal_error
        rows = outputs[:100].tolist() if outputs.dtype.kind == "O" and outputs.ndim else outputs.ravel()[:100].tolist()
    else:
        return None
    for row in rows:
        leaf = row
        while issubclass(type(leaf), (list, tuple)) and leaf:
            leaf = leaf[0]
        if issubclass(type(leaf), (str, bytes, dict)):
            return short_repr(row)
    return None


def guess_rows(inputs: Any, one_feature: bool = False) -> int:
    """How many rows an event's inputs hold, as far as their shape tells without decoding them
    (1 when it cannot tell): what a refused event counts in ``monitor_rows_rejected``. For a
    model of ``one_feature`` a flat list or 1-D array is as many rows as it has values, as the
    builder reads it (:attr:`BatchBuilder.one_feature`): counted as 1, a refused call of ``n``
    rows was 1 row of the accounting."""
    try:
        inputs = named_columns(inputs)
        if is_dataframe(inputs):
            return len(inputs)
        if isinstance(inputs, dict):
            v = next(iter(inputs.values()), None)
            return len(v) if isinstance(v, (list, tuple, np.ndarray)) else 1
        if isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], (list, tuple, dict, np.ndarray)):
            return len(inputs)
        shape = getattr(inputs, "shape", None)  # numpy, or a tensor not read yet (torch.Size is a tuple)
        if isinstance(shape, tuple) and len(shape) >= 2:  # rows of features, of images, of sequences...
            return int(shape[0])
        if one_feature and (isinstance(inputs, (list, tuple)) or isinstance(inputs, np.ndarray) and inputs.ndim == 1):
            return max(len(inputs), 1)
    except Exception:  # noqa: BLE001
        pass
    return 1
