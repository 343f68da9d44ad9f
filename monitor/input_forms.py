"""Telling which form a call's inputs take, before any row is read: one text or a flat column of
texts, a pandas Series (a column, or a DataFrame's row), a dict of columns, a structured array,
a DataFrame with repeated column names; and :class:`RowError`, how inputs that cannot be read are
refused.

Why a module of its own: the row reader (:mod:`monitor.ingest`) and the schema learner
(:mod:`monitor.schema_learning`) both tell the forms apart, and both refuse what they cannot read
with one error type; kept in either, each would import the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from monitor.events import describe_value, is_dataframe

__all__ = ["RowError", "inputs_are_none", "is_column", "is_series", "named_columns", "own_dict", "series_row", "short_list", "short_repr", "text_column"]


class RowError(ValueError):
    """An event's rows cannot be read; ``reason`` becomes the counter label, ``fix`` (when given)
    is said in place of the reason's usual fix, which would not be this one's."""

    def __init__(self, reason: str, message: str = "", fix: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.fix = fix


def inputs_are_none(reason: str) -> RowError:
    """The refusal of a call whose inputs are None, under ``reason``: it was "expected rows of 4
    features, got shape ()" (or "the inputs are NoneType"), which named neither the None nor the fix."""
    return RowError(reason, "inputs are None: the call gave no rows (the decorated function's argument, or the inputs= "
                            "extractor, returned None)",
                    "pass the rows the model was called with: observe(rows, outputs), or watch(..., inputs=lambda "
                    "*args, **kwargs: ...) picking them from the call's arguments")


def short_repr(value: Any) -> str:
    """``value``'s repr as a message quotes it: at most 60 characters; its type when its repr
    raises (the caller's object: the message refusing it lost the call as internal_error)."""
    return _at_most_60(_repr(value))


def short_list(values: Any) -> str:
    """Values as a message lists them (``'a', 'b'``: their reprs, no brackets, or their types as
    :func:`short_repr` says them): at most 60 characters."""
    return _at_most_60(", ".join(map(_repr, values)))


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001
        return describe_value(value)  # its type, as the log lines of labels and ids say such a value


def _at_most_60(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def text_column(inputs: Any) -> list[Any] | None:
    """The values of inputs that are a flat sequence of texts (a list or tuple, a 1-D numpy
    array, a pandas Series; missing values among them allowed), or one text alone; None for any
    other inputs. Read as rows of one text feature, where a list of numbers is one row."""
    if type(inputs) is str:
        return [inputs]
    if isinstance(inputs, (list, tuple)):
        values = inputs
    elif isinstance(inputs, np.ndarray):
        if inputs.ndim != 1 or inputs.dtype.kind not in "UO":
            return None
        values = inputs.tolist()
    elif type(inputs).__name__ == "Series" and getattr(getattr(inputs, "dtype", None), "kind", None) == "O":
        values = inputs.tolist()
    else:
        return None
    if not values:
        return None
    kinds = set(map(type, values))
    if str not in kinds or not kinds <= {str, type(None), float}:
        return None
    if float in kinds and any(type(v) is float and v == v for v in values):  # only NaN: pandas' missing text
        return None
    return list(values)


def named_columns(inputs: Any) -> Any:
    """A numpy structured (or record) array of rows as the dict of its columns by field name, as
    a DataFrame's are read, and a dict of pandas Series (``df.to_dict("series")``, columns picked
    one by one) as a dict of their values; any other inputs as they are. Why: ``np.asarray(x,
    float64)`` refuses a structured array, and a Series was read as one value of its feature, so
    every call on either was refused as ``wrong_type`` and counted as one row whatever its length."""
    if issubclass(type(inputs), np.ndarray) and inputs.dtype.names and inputs.ndim == 1:  # not isinstance: see as_numpy
        return {name: inputs[name] for name in inputs.dtype.names}
    if is_dataframe(inputs) and not inputs.columns.is_unique:
        # read by name, a repeated column was one feature holding the last column's values (the first
        # lost without a word, the learned schema naming the feature twice): repeats are told apart
        return inputs.set_axis(_unique_names([str(c) for c in inputs.columns]), axis=1)
    if type(inputs) is dict and is_series(next(iter(inputs.values()), None)):  # columns are alike: the first says
        return {k: v.to_numpy() if is_series(v) else v for k, v in inputs.items()}
    return inputs


def _unique_names(names: list[str]) -> list[str]:
    """``names`` with each repeat suffixed ``.1``, ``.2``... (pandas' ``read_csv`` convention, so
    that a reference built from a CSV with the same header names the same features)."""
    taken = set(names)
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        n = seen[name]
        while True:
            n += 1
            candidate = f"{name}.{n}"
            if candidate not in taken:
                break
        seen[name] = n
        taken.add(candidate)
        out.append(candidate)
    return out


def own_dict(mapping: dict[Any, Any]) -> dict[Any, Any]:
    """A dict subclass's items as a plain dict, taken from the dict's own storage: a caller's
    subclass may override ``keys``, ``items``, ``values``, ``get`` or ``__iter__`` (and make them
    raise: the call was lost as an internal error), which ``dict(d)`` itself calls."""
    return dict(dict.items(mapping))


def is_column(v: Any) -> bool:
    """A value of a dict of columns that holds one value per row (a list, a tuple, an array)."""
    return isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim >= 1)


def is_series(v: Any) -> bool:
    """A pandas Series, told without importing pandas."""
    return type(v).__name__ == "Series" and callable(getattr(v, "to_numpy", None))


def series_row(inputs: Any, names: frozenset[str], text_rows: Callable[[list[Any]], bool]) -> Any:
    """A pandas Series indexed by feature names (a DataFrame's row, ``df.iloc[i]``) as the
    one dict row it is; any other inputs as they are. It is one when its index labels are text
    and name one of the known features ``names`` (the schema's, else the reference's), or, with
    none known, when it is not a column of texts read as that many rows (``text_rows``: as many
    as the outputs' rows, ``df["review"]``). Why: read by position, a row whose columns came in
    another order than the reference's was monitored as other features (out of range on every
    row, input drift on unchanged traffic), and a row of a number and a category was refused as
    ``wrong_type``."""
    if not is_series(inputs):
        return inputs
    labels = inputs.index.tolist()
    if not labels or not all(isinstance(k, str) for k in labels):
        return inputs
    if names:
        named = not names.isdisjoint(labels)
    else:
        column = text_column(inputs)
        named = column is None or not text_rows(column)
    return dict(zip(labels, inputs.tolist())) if named else inputs
