"""One value of an input, as the monitor reads it wherever it comes from.

A numeric feature's value (:func:`cell_number`: numbers, numeric text, durations and points in
time as seconds; None for a value that is no number) and a categorical one (:func:`category_text`:
the text live rows and the reference are compared by). Why a module of its own: live rows
(:mod:`monitor.ingest`), the reference (:mod:`monitor.reference`) and saved profiles
(:mod:`monitor.profile`) must read a value the same way, and they need these readers without the
row builder.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from monitor.events import float32_text, float_text, is_dataframe, value_text, whole_number_text

__all__ = ["PLAIN_NUMBERS", "NUMPY_TIMES", "COMPLEX_SCALARS", "ComplexValues", "complex_array", "complex_form", "real_numbers", "odd_values", "float_rows", "numpy_times_only",
           "time_seconds", "cell_number", "nan_like", "category_text", "UNREADABLE_CATEGORY", "number_as_text", "categorical_text",
           "object_cells", "holds_complex"]


#: Values a numeric feature of a dict row takes as they are (Python's and numpy's real numbers).
PLAIN_NUMBERS = frozenset({float, int, bool, np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                            np.uint64, np.uint32, np.uint16, np.uint8, np.bool_})
#: numpy's durations and points in time, one value: ``float()`` (and a cast) reads them as counts of
#: their unit (``np.timedelta64(2, "ns")`` is 2.0, ``np.datetime64("1970-01-02")`` 1 as days)
NUMPY_TIMES = (np.datetime64, np.timedelta64)
#: Complex numbers, one value (numpy's complex64 is no Python complex): a float64 cast keeps the
#: real part, numpy's ComplexWarning on stderr the only sign
COMPLEX_SCALARS = (complex, np.complexfloating)
#: Values that are not read as a float64 cast reads them (see :func:`odd_values`)
_ODD = NUMPY_TIMES + COMPLEX_SCALARS

# numpy reads np.ma.masked (a masked array's element placed in a list row or a list of outputs) as
# NaN, which is what the monitor means by it (a missing value), and warns "converting a masked
# element to nan" on the user's stderr, once for each line of this package that reads such a list.
# The warning is silenced for warnings raised from this package's own lines only (the module filter);
# reading the lists value by value to avoid it would cost a type scan on the fast path of every call.
warnings.filterwarnings("ignore", message="Warning: converting a masked element to nan", category=UserWarning,
                        module=r"monitor\.")


def complex_array(value: Any) -> bool:
    """An array (numpy, pandas; a DataFrame with a complex column) of complex numbers: cast to
    float64 it keeps the real parts alone, with numpy's ComplexWarning on stderr as the only word
    of it. A caller's object whose ``__getattr__`` raises is none (the drain was lost)."""
    try:
        dtype = getattr(value, "dtype", None)
        if dtype is not None:
            return getattr(dtype, "kind", None) == "c"
        dtypes = getattr(value, "dtypes", None)  # a DataFrame: one dtype per column
    except Exception:  # noqa: BLE001 - the caller's object's own attribute lookup
        return False
    return is_dataframe(value) and any(getattr(d, "kind", None) == "c" for d in dtypes)


def holds_complex(value: Any) -> bool:
    """A complex number (Python's or numpy's), an array of complex dtype (:func:`complex_array`),
    or an object array holding one: a 0-d one is a value numpy left as it is among a list's values
    (``np.array(np.complex128(1j), dtype=object)``), and a float64 cast read it as its real part
    with numpy's ComplexWarning on the user's stderr, where a complex number given as it is was
    refused (outputs) or unreadable (inputs). Told by the value's type (isinstance reads a caller's
    object's ``__class__``, which a proxy's may raise: the call was lost as an internal error)."""
    kind = type(value)
    if issubclass(kind, COMPLEX_SCALARS) or complex_array(value):
        return True
    return issubclass(kind, np.ndarray) and value.dtype.kind == "O" and any(map(holds_complex, value.ravel().tolist()))


class ComplexValues(Exception):
    """Numbers given with complex ones among them (:func:`real_numbers`)."""


def complex_form(value: Any) -> str:
    """How complex numbers were given, for the message refusing them (:class:`ComplexValues`): an
    array's dtype (``complex128``), else the container holding them (``a list of them``)."""
    if complex_array(value):
        return str(value.dtype) if hasattr(value, "dtype") else "a DataFrame with complex columns"
    return "an object array of them" if isinstance(value, np.ndarray) else f"a {type(value).__name__} of them"


def real_numbers(value: Any) -> np.ndarray:
    """``value`` as float64, as ``np.asarray(value, dtype=np.float64)`` reads it, but raising
    :class:`ComplexValues` for an array of complex dtype and for a list (or tuple) that holds
    complex numbers (or an object array that does): numpy's complex scalars (``np.complex128(0.2)``),
    in rows of them, beside real numbers, or arrays of complex dtype in a list. Why: cast to float64 such a list kept the real
    parts alone (numpy's ComplexWarning the only word of it), where an array of complex dtype was
    refused (:func:`complex_array`). Read so: the outputs of the numeric kinds and the embedding,
    live and in the reference, and the reference's numeric rows and scores. Numpy tells them by the dtype it infers: for numbers, one conversion
    as before; lists of other values (None, text, ``Decimal``) are read as before, their complex
    values looked for one by one. Text of a str subclass is read as its text (numpy ran the
    subclass's own ``__float__``, which a forwarding worker never does: it sends the text)."""
    kind = type(value)
    if kind is not str and issubclass(kind, str):
        value, kind = str.__str__(value), str
    if not issubclass(kind, (list, tuple)):  # by type: isinstance runs a caller's object's __class__
        dtype = getattr(value, "dtype", None)
        # a DataFrame has one dtype per column: complex ones refused, Python objects read as a list's
        # values (cast at once, numpy's complex numbers among them kept their real parts)
        kinds = {getattr(dtype, "kind", None)} if dtype is not None or not is_dataframe(value) else \
            {getattr(d, "kind", None) for d in value.dtypes}
        if "c" in kinds:
            raise ComplexValues
        if "O" not in kinds:
            return np.asarray(value, dtype=np.float64)
    try:
        inferred = np.asarray(value)
    except ValueError as err:
        if "inhomogeneous" in str(err):
            # ragged (rows of different lengths): the float cast raises alike, after reading what it
            # could, numpy's complex numbers and pandas objects holding np.ma.masked among them with
            # a warning from this line or pandas' on the user's stderr
            raise
        inferred = None  # values numpy cannot hold: the float conversion says which
    except TypeError:
        inferred = None
    if inferred is not None:
        if inferred.dtype.kind == "c":
            raise ComplexValues
        if inferred.dtype.kind in "biuf":
            return inferred.astype(np.float64, copy=False)
        if inferred.dtype.kind == "O":
            if any(map(holds_complex, inferred.ravel().tolist())):
                raise ComplexValues
            # the object array cast, not a Series or DataFrame again: pandas' own line then read
            # np.ma.masked among the values, and numpy's "converting a masked element to nan"
            # reached the user's stderr past the filter above (which names this package's lines)
            return inferred.astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def object_cells(value: Any) -> np.ndarray:
    """``np.asarray(value, dtype=object)``, the caller's values as they are, but when numpy's
    conversion raises anything other than ValueError (a caller's object whose ``__array__``
    raises, which numpy calls on every value it meets): rows given as lists (or tuples) are put in
    the array value by value, such an object one value among them, read as any value that is no
    number or text is (unreadable, counted); any other value is one value, as numpy holds an
    object it does not convert. Why: the error went up through the row reader, and the call was
    lost as an internal error. ValueError (parts numpy cannot put side by side) is raised as numpy
    raised it; rows of different lengths, or lists beside other values, are one value each in a
    row of them, as numpy holds such lists (they were refused whole: a labels model's answers
    ``[[x], "y"]`` as parts of different shapes, where numpy's reading refuses the list alone)."""
    try:
        return np.asarray(value, dtype=object)
    except ValueError:
        raise
    except Exception:  # noqa: BLE001 - a caller's object's own conversion: read without numpy's
        pass
    if not issubclass(type(value), (list, tuple)):  # by type: isinstance runs a caller's object's __class__
        cell = np.empty((), dtype=object)
        cell[()] = value
        return cell
    rows = [v if issubclass(type(v), (list, tuple)) else None for v in value]
    width = {len(r) for r in rows if r is not None}
    flat = None in rows or len(width) != 1  # values, not rows of one width: a row of them, as numpy reads it
    out = np.empty(len(value) if flat else (len(value), width.pop()), dtype=object)
    for i, row in enumerate(value):
        if flat:
            out[i] = row
        else:
            for j, v in enumerate(row):
                out[i, j] = v
    return out


def odd_values(cells: np.ndarray) -> bool:
    """Whether an object array holds values a float64 cast misreads (:data:`_ODD`): they are read
    one by one (:func:`cell_number`). One pass over the values' types."""
    if cells.dtype.kind != "O":
        return False
    values = cells.ravel().tolist()
    types = set(map(type, values))
    if any(issubclass(t, _ODD) for t in types):
        return True
    # arrays among the values (a 0-d one is a row's value numpy did not unpack): complex ones too
    return any(issubclass(t, np.ndarray) for t in types) and any(map(holds_complex, values))


def float_rows(rows: Any) -> np.ndarray | None:
    """Rows of numbers (lists, an array) as float64, as ``np.asarray(rows, dtype=float64)`` reads
    them but for durations and points in time (``timedelta64``, ``datetime64``), read as seconds
    (:func:`time_seconds`) where the cast read them as counts of their unit (days for
    ``datetime64[D]``, nanoseconds for ``[ns]``); None when some values are to be read one by one
    (:func:`odd_values`: numpy's times among other values, complex numbers, which the cast read as
    their real parts, and a caller's object whose ``__array__`` or ``__float__`` raises anything
    else: each such value unreadable, where the call was lost as an internal error); TypeError or
    ValueError as the cast raises them. The values are read once without a dtype (as fast for
    numbers) and cast when they are plain numbers. Only the two conversions that run the caller's
    code (numpy's reading of the lists, the cast of an object array) are read so: an error of this
    module's own is raised, counted as an internal error, not taken for a value to read one by one."""
    try:
        arr = rows if isinstance(rows, np.ndarray) else np.asarray(rows)
    except (TypeError, ValueError, OverflowError):
        raise
    except Exception:  # noqa: BLE001 - the caller's object's own conversion (__array__, __len__, __iter__...)
        return None
    kind = arr.dtype.kind
    if kind in "fiub":
        return arr.astype(np.float64, copy=False)
    if kind in "mM":
        if arr is not rows and not numpy_times_only(rows):
            return None  # numbers beside a numpy time, which numpy made durations of its unit: read one by one
        return time_seconds(arr)
    if kind == "c" or kind == "O" and odd_values(arr):
        return None  # complex values among rows given as lists: each unreadable, as "N/A" is
    if kind == "O":  # the object array cast, not a Series again (see real_numbers: np.ma.masked warned from pandas' line)
        try:
            return arr.astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            raise
        except Exception:  # noqa: BLE001 - a value's own __float__
            return None
    if kind in "US" and arr is not rows:
        # numbers beside text in lists (numpy made them all text): read one by one, as the cast
        # read a complex number among them as its real part (numpy's ComplexWarning the only sign)
        return None
    return np.asarray(rows, dtype=np.float64)


def numpy_times_only(rows: Any) -> bool:
    """Whether every value of ``rows`` given as lists is one of numpy's times (:data:`NUMPY_TIMES`).
    Why: numpy reads lists holding a ``timedelta64`` as a ``timedelta64`` array, whole numbers
    beside it included (``[[7, np.timedelta64(2000, "ms")]]`` is 7 ms and 2,000 ms), so that a
    number read through :func:`time_seconds` was 0.007; such rows are read one by one instead."""
    cells = np.asarray(rows, dtype=object)
    return all(issubclass(t, NUMPY_TIMES) for t in set(map(type, cells.ravel().tolist())))


def time_seconds(arr: np.ndarray) -> np.ndarray:
    """An array of durations (``timedelta64``) as seconds, or of points in time (``datetime64``)
    as seconds since 1970-01-01 UTC, NaT as NaN: float64, whatever the unit, as
    :func:`monitor.temporal.temporal_seconds` reads one value."""
    if arr.dtype.kind == "M":
        arr = arr - np.datetime64(0, "s")
    return arr / np.timedelta64(1, "s")


def cell_number(v: Any) -> float | None:
    """One value of a numeric feature as a float: a number, numeric text, a duration or point in
    time (seconds, :mod:`monitor.temporal`; numpy's too, which ``float()`` reads as counts of their
    unit); NaN for a missing one (None, empty text: a CSV's gap, as :func:`category_text` reads
    it; numpy's ``np.ma.masked`` placed as a value, which ``float()`` read as NaN with numpy's
    UserWarning on the user's stderr); None for any other value (text that is no number, a list,
    an object, a complex number). Told by the value's type, text stripped by str's and bytes' own
    methods: isinstance reads a caller's object's ``__class__`` and a subclass may override
    ``strip``, either of which may raise (the call was lost as an internal error)."""
    if v is None or v is np.ma.masked:
        return np.nan
    kind = type(v)
    if issubclass(kind, NUMPY_TIMES):
        from monitor.temporal import temporal_seconds

        return temporal_seconds(v)
    if issubclass(kind, COMPLEX_SCALARS) or (kind is np.ndarray and holds_complex(v)):
        return None  # numpy's too (complex64 is no Python complex), and in an array: float() keeps the real part
    if issubclass(kind, str):
        if not str.strip(v):
            return np.nan
        if kind is not str:
            v = str.__str__(v)  # its text: float() of a subclass runs its own __float__
    elif issubclass(kind, bytes) and not bytes.strip(v):
        return np.nan
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        from monitor.temporal import temporal_seconds

        return temporal_seconds(v)
    except Exception:  # noqa: BLE001 - the caller's object: its __float__ may raise anything (RuntimeError...)
        return None  # no number, as text that is none: the row's value unreadable, counted, its call kept


def nan_like(v: Any) -> bool:
    """A missing categorical value other than None: float NaN (how pandas writes a missing
    string), NaT, pandas' NA, numpy's ``np.ma.masked`` (whose text, the category "--", was kept);
    never a category named "nan"; a value of several values (an array, a Series, a DataFrame,
    whose ``!=`` is one answer per value) is none (read by its text, as a list is)."""
    if issubclass(type(v), str):  # by type: isinstance runs a caller's object's __class__
        return False
    if v is np.ma.masked:
        return True
    try:
        return bool(v != v)
    except TypeError:  # pd.NA: its truth value is ambiguous
        return True
    except ValueError:  # several answers (an array of 2 values, or of none): the call was lost as internal_error
        return False
    except Exception:  # noqa: BLE001 - a caller's object whose __ne__ raises (RuntimeError...): no missing value,
        return False  # read by its text (category_text), where the call was lost as internal_error


def category_text(v: Any) -> str | None:
    """One categorical value as the text it is compared by, live and in the reference alike: a
    float as :func:`~monitor.events.float_text` writes it (a whole number ``7.0`` is ``"7"``, a
    float32 ``1.1`` is ``"1.1"`` boxed to a Python float or not, a whole float at or above 2**53
    its float's text, never an integer's); text written from a float as the float reads
    (:func:`number_as_text`: ``"7.0"`` is ``"7"``); any other text as it is; bytes decoded;
    other values (``7``, ``True``) their ``str``; missing ones (None, NaN, NaT, pd.NA, and empty
    text) None.

    Why: integer codes become float64 as soon as a pandas column has a gap, and JSON encoders
    write some integers as ``7.0``, while a reference read from integers or CSV holds ``"7"``:
    read as ``"7.0"`` every such row was an unseen category, and the data-quality and drift
    alerts fired on unchanged traffic. Text is read the same way on every path (a CSV keeps no
    types: its ``"2.0"`` may be a float code or a version string, and a live ``"2.0"`` must meet
    it either way), so ``"2.0"`` and ``"2"`` are one category. Booleans stay ``"True"`` /
    ``"False"``, apart from 1 and 0. Empty text is missing because a CSV reference cannot tell it
    from a gap (pandas writes a missing value as an empty field); every other text, ``"NA"``,
    ``"nan"`` or ``"null"`` included, is a category on both sides (North America is "NA").
    """
    if type(v) is str:  # the usual value: kept as it is unless a float may have written it
        return number_as_text(v) if v else None
    if v is None or nan_like(v):
        return None
    text = float_text(v)
    if text is not None:
        return text
    if issubclass(type(v), (bytes, bytearray)):  # by type: isinstance runs a caller's object's __class__
        return category_text(bytes(v).decode("utf-8", "replace"))
    # any other value (a str subclass such as numpy's str_ or a str-mixin Enum's member: its own
    # characters, value_text, not its __str__, which may raise; a cell of a string array) by its
    # text, read as text is: empty text missing, "7.0" the code 7 (str.__str__: exact text, whatever
    # a subclass's __str__ returns, so that this never recurses again)
    try:
        text = value_text(v)
    except Exception:  # noqa: BLE001 - a caller's object whose str() raises: the call was lost as internal_error
        return UNREADABLE_CATEGORY  # type: ignore[return-value]  # no text to compare: counted wrong_type by data quality (neither text nor None)
    return category_text(str.__str__(text))


class _UnreadableCategory:
    """The categorical value read from a value whose text cannot be taken (:data:`UNREADABLE_CATEGORY`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unreadable>"

    __str__ = __repr__

    def __reduce__(self) -> str:
        return "UNREADABLE_CATEGORY"  # the one value, pickled by name


#: :func:`category_text` of a value whose ``str()`` raises (a caller's object): neither text nor
#: missing, so data quality counts it ``wrong_type`` (as a value that is no text given directly in a
#: :class:`~monitor.batch.Batch`), and the detectors that read categories by their text read
#: ``"<unreadable>"``, an unseen category.
UNREADABLE_CATEGORY = _UnreadableCategory()


#: A whole number as Python, numpy and pandas write a float: "7.0", "-3.00" (no exponent, no "+").
_WRITTEN_WHOLE = re.compile(r"-?(?:0|[1-9][0-9]*)\.0+")
#: A float as Python (repr) writes one, a fraction or an exponent in it: "1.1", "1.1529215e+18".
_WRITTEN_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?")
_DIGITS = frozenset("0123456789")


def number_as_text(text: str) -> str:
    """``text`` written from a float as that float reads (:func:`category_text`), any other text
    as it is: a whole float (``"7.0"``, what ``DataFrame.to_csv`` writes for a float column of
    codes) is the integer's text (``"7"``), and a float's ``repr`` is
    :func:`~monitor.events.float_text`'s text (``"1.100000023841858"``, a float32 1.1 written as
    float64, is ``"1.1"``). Text that is not what a float writes (``"1.10"``, ``"07"``) is kept:
    it may be a version or a code whose zeros matter. A float32's text as numpy writes it is a
    float's text too: a whole float32 of a million or more is written in exponent form
    (``"1.234567e+06"``, in a CSV pandas wrote from a float32 column of codes), and reads as the
    integer (``"1234567"``), as the number itself does."""
    # a float's text that reads otherwise has a point or a positive exponent: "7.0",
    # "1.100000023841858", "1e+06" (numpy's float32 1e6); "1e-05", "1e+16" read as they are written
    if text[-1:] not in _DIGITS or ("." not in text and "e+" not in text):
        return text
    whole = _WRITTEN_WHOLE.fullmatch(text)
    if whole or _WRITTEN_FLOAT.fullmatch(text):
        f = float(text)
        integer = whole_number_text(f) if whole else None  # "7.00" too, which no repr writes
        if integer is not None:
            return integer
        if repr(f) == text or float32_text(f) == text:
            return float_text(f) or text
    return text


_CATEGORY_TEXT = np.frompyfunc(category_text, 1, 1)
_TEXT_OR_NONE = frozenset({str, type(None)})


def categorical_text(cat: np.ndarray) -> np.ndarray:
    """Categorical cells as text, each as :func:`category_text` reads it (missing ones None): how
    live inputs, reference arrays and reference files are read alike."""
    cat = np.asarray(cat, dtype=object)
    cells = cat.ravel().tolist()
    if cells and set(map(type, cells)) <= _TEXT_OR_NONE:  # text already (the usual reference)
        return np.array([number_as_text(v) if v else None for v in cells], dtype=object).reshape(cat.shape)
    return _CATEGORY_TEXT(cat).astype(object).reshape(cat.shape)
