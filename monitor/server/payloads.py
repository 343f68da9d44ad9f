"""Reading inputs and outputs out of the inference payloads model servers speak.

Used by the CloudEvents intake and the reverse proxy, so that both understand the same formats:

* Open Inference Protocol v2 (KServe v2, Triton, MLServer): ``{"inputs": [{"name", "shape",
  "datatype", "data"}]}`` and ``{"outputs": [...]}``; data flat or nested, reshaped to ``shape``;
* KServe v1 / TF Serving's REST predict: rows (``{"instances": [...]}``, ``{"predictions": [...]}``)
  or columns (``{"inputs": ...}``, ``{"outputs": ...}``), inputs and outputs unnamed or named
  (a dict per row, or a dict of columns);
* Seldon Core v1 ``SeldonMessage``: ``{"data": {"names": [...], "ndarray": [...]}}`` or
  ``{"data": {"tensor": {"shape": [...], "values": [...]}}}``, and its feedback messages;
* any JSON, through a dotted path (``data.rows``, ``result.0.scores``) for plain predict routes.

Every failure raises :class:`PayloadError` naming the field, so that the caller can answer 400 or
count the tap as refused.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from monitor.events import json_kind
from monitor.server.jsonbody import digit_map, loads

__all__ = ["PayloadError", "classification_labels", "classification_outputs", "classification_scores", "dotted",
           "decode_inputs", "decode_outputs", "decode_seldon_feedback", "loads", "named_rows", "OUTPUT_NAMES", "oip_request_id",
           "unsafe_json", "UNSAFE_JSON_MESSAGES"]

_OIP_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
#: The numeric datatypes as the protocol spells them: read as int64 ("i") or float64 ("f").
_NUMERIC_KINDS = {name: "i" if name.startswith(("INT", "UINT")) else "f" for name in _OIP_NUMERIC}


class PayloadError(ValueError):
    def __init__(self, field: str, message: str, reason: str = "bad_payload") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.reason = reason


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: A run of 309 digits (the largest float, 1.8e308, has 309) is one ``bytes.find`` of 309 ones in
#: the body's :func:`~monitor.server.jsonbody.digit_map` (every digit as ``1``), in C, linear in the
#: body, and the map is the one the decoding already made. The regular expression ``[0-9]{309}``
#: retried its match at every digit of every run: 244 us for an NDJSON body of 100 events (12 KB),
#: a quarter of the intake's time, against 14 us.
_LONG_RUN = b"1" * 309
_FLOAT_MAX = 1.7976931348623157e308

#: What :func:`unsafe_json` finds, by reason, as the message of the 400 (or the refusal counter).
UNSAFE_JSON_MESSAGES = {
    "bad_unicode": "holds a string with an unpaired UTF-16 surrogate escape (such as \\ud800), which is not Unicode; "
                   "send valid UTF-8 text",
    "number_too_large": "holds an integer beyond the range of a 64-bit float; send numbers a float can hold",
}


def unsafe_json(raw: bytes, value: Any) -> str | None:
    """The reason ``value`` (decoded from the JSON text ``raw``) must be refused, or None.

    Two things are valid JSON but break the monitor after a 2xx: a string with an unpaired
    UTF-16 surrogate (``"\\ud800"``: not Unicode; as a metric label, a segment or a class
    label, it made every later ``/metrics`` scrape fail on UTF-8 encoding), and an integer
    beyond the float range (``float()`` raises OverflowError: a 500 as a timestamp, and in
    inputs or outputs it made the worker drop the whole batch it was in). Raw UTF-8 cannot
    carry surrogates and such an integer has 309 digits or more, so a body without a
    ``\\uD8..``-``\\uDF..`` escape or such a run of digits costs one scan each; only a body
    with one (an emoji, a long id) is checked value by value."""
    if _SURROGATE_ESCAPE.search(raw) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "bad_unicode"
        except (TypeError, ValueError, RecursionError):
            pass
    if len(raw) >= 309 and digit_map(raw).find(_LONG_RUN) >= 0 and _huge_int(value):
        return "number_too_large"
    return None


def _huge_int(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is int:
            if not -_FLOAT_MAX <= v <= _FLOAT_MAX:
                return True
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


#: The dotted path of the whole body (as jq writes it): a model server that takes or answers a bare
#: JSON list (a FastAPI route declared ``rows: list[list[float]]`` returning ``predict_proba(...).tolist()``)
#: has no field to name, and no path reached its rows: such a route could not be tapped at all.
WHOLE_BODY = "."


def dotted(obj: Any, path: str) -> Any:
    """``obj["a"]["b"][0]`` for ``"a.b.0"``, ``obj`` itself for :data:`WHOLE_BODY`;
    :class:`PayloadError` naming the path when absent."""
    if path == WHOLE_BODY:
        return obj
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.lstrip("-").isdigit() and -len(cur) <= int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise PayloadError(path, f"not found in the JSON body (stopped at {part!r})", "missing_field")
    return cur


def _is_oip_tensors(value: Any) -> bool:
    if value.__class__ is list and len(value) == 1:  # the common case (one tensor), without a generator
        t = value[0]
        return isinstance(t, dict) and "data" in t and "shape" in t
    return isinstance(value, list) and bool(value) and all(isinstance(t, dict) and "data" in t and "shape" in t for t in value)


def _tensor(t: dict[str, Any], field: str) -> Any:
    """One OIP v2 tensor as a numpy array of its declared shape."""
    import numpy as np

    shape = t.get("shape")
    plain = shape.__class__ is list  # JSON's own ints and lists, checked without a generator
    if plain:
        for d in shape:
            if d.__class__ is not int or d < 0:
                plain = False
                break
    if not plain and (not isinstance(shape, list)
                      or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise PayloadError(f"{field}.shape", f"must be a list of non-negative integers, got {shape!r}", "bad_shape")
    datatype = t.get("datatype", "FP64")
    kind = _NUMERIC_KINDS.get(datatype) if datatype.__class__ is str else None
    dtype = datatype if kind is not None else str(datatype).upper()
    data = t.get("data")
    if data.__class__ is np.ndarray:  # values sent binary, already read (monitor.server.binary_tensors)
        return data.reshape(shape)
    if not isinstance(data, list):
        if data is None and isinstance(t.get("parameters"), dict) and "binary_data_size" in t["parameters"]:
            raise PayloadError(f"{field}.data", "is sent binary (parameters.binary_data_size) in a body without the "
                                                "Inference-Header-Content-Length header that locates it", "bad_binary")
        raise PayloadError(f"{field}.data", "must be a list", "bad_data")
    try:
        if kind is None:  # any other spelling (lower case...) or type: what the names say, as ever
            kind = "i" if dtype.startswith(("INT", "UINT")) else "f" if dtype in _OIP_NUMERIC else "O"
        if kind == "i":
            arr = _integer_tensor(data, dtype, field)
        else:
            arr = np.asarray(data, dtype=np.float64 if kind == "f" else object)
        return arr.reshape(shape)
    except PayloadError:
        raise
    except (ValueError, TypeError, OverflowError):
        raise PayloadError(f"{field}.data", _unreadable_tensor(data, dtype, shape, kind), "bad_data") from None


def _integer_tensor(data: list[Any], dtype: str, field: str) -> Any:
    """An ``INT*`` / ``UINT*`` tensor's values: integers, read exactly. numpy's int64 conversion
    cuts 2.7 to 2 without a word (logits sent under the wrong datatype were monitored as other
    numbers), and a UINT64 above 2**63 overflowed into a 500: a fraction is refused naming the
    datatype, integers are read as int64 (uint64 for a UINT64 beyond it), exactly, and a value
    outside the datatype's range is refused."""
    import warnings

    import numpy as np

    values = np.asarray(data, dtype=np.float64)  # only to find fractions, NaN and infinities
    whole = np.isfinite(values) & (values == np.trunc(values))
    if not whole.all():
        bad = values[~whole].flat[0]
        raise PayloadError(f"{field}.data", f"datatype {dtype} holds whole numbers, got {bad!r}; send scores as FP32 "
                                            "or FP64", "bad_data")
    out_of_range = PayloadError(f"{field}.data", f"a value is out of the range of datatype {dtype}", "bad_data")
    for target in (np.int64, np.uint64) if dtype.startswith("UINT") else (np.int64,):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a float beyond the type casts to garbage with a warning
                arr = np.asarray(data, dtype=target)
        except OverflowError:  # a Python int beyond the type
            continue
        if not np.array_equal(arr.astype(np.float64), values):  # that garbage
            continue
        if dtype.startswith("UINT") and arr.size and arr.min() < 0:
            raise out_of_range
        return arr
    raise out_of_range


def _unreadable_tensor(data: list[Any], dtype: str, shape: list[int], kind: str) -> str:
    """Why a tensor's ``data`` is not ``shape`` of ``dtype``, with the fix (the proxy's and the
    CloudEvents' refusals reach the log only): a count that does not fill the shape, else values
    that are not numbers (or nested unevenly)."""
    need = math.prod(shape)
    if kind != "O" and len(data) != need and all(isinstance(v, (int, float)) for v in data[:1000]):
        return (f"holds {len(data)} values; shape {shape} needs {' x '.join(map(str, shape))} = {need}: send the "
                "tensor's values flattened in row-major order, as many as the shape says")
    what = "integers" if kind == "i" else "numbers" if kind == "f" else "values"
    return (f"cannot be read as {dtype} of shape {shape}: send {what} only, flattened in row-major order "
            "(or nested as the shape says)")


def _split_rows(arr: Any, n: int, field: str, name: str) -> Any:
    """``arr`` as ``n`` rows (``arr.reshape(n, -1)``), or :class:`PayloadError` when its values do
    not split into ``n`` rows (numpy's ValueError would be a 500). Zero rows stay zero rows."""
    import numpy as np

    if (n and arr.size % n) or (not n and arr.size):
        raise PayloadError(field, f"tensor {name!r} has {arr.size} values, which do not split into {n} rows", "bad_shape")
    return arr.reshape(n, arr.size // n if n else int(np.prod(arr.shape[1:], dtype=np.int64)))


def _oip_inputs(tensors: list[dict[str, Any]], one_feature: bool = False) -> Any:
    if len(tensors) == 1:
        name, arr = str(tensors[0].get("name", "input-0")), _tensor(tensors[0], "inputs[0]")
        if tensors[0].get("datatype") == "BYTES" and (arr.ndim == 1 or arr.ndim == 2 and arr.shape[1] == 1):
            # texts, shape [n] or [n, 1]: kept flat, n rows of one text feature when the outputs
            # have n rows (or the model reads one feature), else one row (monitor.input_forms.text_column)
            return arr.reshape(-1)
        if arr.ndim == 1 and one_feature:  # shape [n] to a one-feature model: n rows of its feature
            return arr.reshape(-1, 1)
        if arr.ndim <= 1:  # one row (a scalar: one row of one value, as with several tensors)
            return arr.reshape(1, -1)
        if arr.ndim > 2 and arr.dtype.kind == "O":  # BYTES of 3 dimensions: no tensor feature reads them
            return _split_rows(arr, arr.shape[0], "inputs[0]", name)
        # [n, c, h, w] (images, audio, sequences) kept whole: rows of one tensor feature, described per
        # row in the worker (monitor.tensor); flattened here, each value was a feature of its own
        return arr
    import numpy as np

    arrays = [(str(t.get("name", f"input-{i}")), _tensor(t, f"inputs[{i}]")) for i, t in enumerate(tensors)]
    # several named tensors: one feature (or a few columns) each, rows along axis 0
    n = arrays[0][1].shape[0] if arrays[0][1].ndim else 1
    columns: dict[str, Any] = {}
    for name, arr in arrays:
        a = _split_rows(arr, n, "inputs", name) if arr.ndim else np.asarray([arr]).reshape(1, 1)
        if a.shape[0] != n:
            raise PayloadError("inputs", f"tensor {name!r} has {a.shape[0]} rows, the first has {n}", "bad_shape")
        if a.shape[1] == 1:
            columns[name] = a[:, 0]
        else:
            for j in range(a.shape[1]):
                columns[f"{name}_{j}"] = a[:, j]
    return [{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in columns.items()} for i in range(n)]


def _seldon_text(value: Any) -> list[str]:
    """A Seldon message's ``strData`` (a text model's prompt or answer: one row of text), as that
    row. Refused as missing_inputs / missing_outputs, a text generator on Seldon Core was not
    monitored through its logger at all."""
    if not isinstance(value, str):
        raise PayloadError("strData", f"must be a text, got {json_kind(value)}; send a batch as data.ndarray", "bad_data")
    return [value]


def _seldon_data(data: Any, field: str, *, named_rows: bool = True) -> Any:
    """The rows of a Seldon ``data`` object. With ``named_rows`` (inputs) rows whose length
    matches ``names`` become ``{name: value}`` dicts (the features by name); outputs keep their
    rows as lists, because there ``names`` label the output columns (``t:0``, ``t:1``... or the
    class names) and a dict row is not a row of scores."""
    import numpy as np

    if not isinstance(data, dict):
        raise PayloadError(field, "must be an object with ndarray or tensor", "bad_data")
    names = data.get("names")
    if "ndarray" in data:
        rows = data["ndarray"]
    elif "tensor" in data:
        t = data["tensor"]
        if not isinstance(t, dict):
            raise PayloadError(f"{field}.tensor", "must be an object with shape and values", "bad_data")
        shape, values = t.get("shape"), t.get("values")
        try:
            rows = np.asarray(values, dtype=np.float64).reshape(shape)
        except (ValueError, TypeError):
            raise PayloadError(f"{field}.tensor", f"values do not fit shape {shape!r}", "bad_shape") from None
        if rows.ndim == 0:
            raise PayloadError(f"{field}.tensor.shape", "must have at least one dimension (the rows), got []", "bad_shape")
    else:
        raise PayloadError(field, "has neither ndarray nor tensor (jsonData/strData are not monitored)", "unsupported_payload")
    if named_rows and isinstance(names, list) and names and isinstance(rows, (list, np.ndarray)) and len(rows) and \
            isinstance(rows[0], (list, np.ndarray)) and len(rows[0]) == len(names):
        for i, r in enumerate(rows):
            if not isinstance(r, (list, np.ndarray)) or len(r) != len(names):
                raise PayloadError(f"{field}.ndarray", f"row {i} is not a list of {len(names)} values, one per name", "bad_shape")
        return [dict(zip(map(str, names), (r.tolist() if hasattr(r, "tolist") else r))) for r in rows]
    return rows


#: The names TF Serving models give the output each ``output.kind`` reads, by preference: a
#: canned estimator's (``probabilities``, ``logits``, ``classes``, ``class_ids``, a regressor's
#: ``predictions``) and a classification signature's (``scores``, ``classes``).
OUTPUT_NAMES = {"probabilities": ("probabilities", "probs", "scores", "predict_proba"), "logits": ("logits",),
                "labels": ("classes", "class_ids", "labels", "label"), "regression": ("predictions", "outputs"),
                "text": ("text_output", "generated_text", "text", "outputs", "predictions")}


def _output_named(names: list[str], field: str, output_name: str | None, kind: str | None) -> str:
    """Which of a TF Serving answer's named outputs holds the model's outputs: ``output_name``
    (``server.proxy.oip_output``), else the only one, else the one named as ``kind`` reads. A
    dict of named outputs was handed to the worker as it was, and refused as ``non_numeric_output``
    with no word of which output to read nor of a setting to name it."""
    if output_name is not None:
        if output_name in names:
            return output_name
        raise PayloadError(field, f"no output named {output_name!r} (have {', '.join(map(str, names[:20]))}); set "
                                  f"server.proxy.oip_output to the one holding the {_held(kind)}", "missing_outputs")
    if len(names) == 1:
        return names[0]
    for name in OUTPUT_NAMES.get(kind or "", ()):
        if name in names:
            return name
    known = ", ".join(OUTPUT_NAMES.get(kind or "", ()))
    raise PayloadError(field, f"holds {len(names)} named outputs ({', '.join(map(str, names[:20]))}) and none is named "
                              f"as output.kind: {kind} reads{f' ({known})' if known else ''}. Fix: set "
                              f"server.proxy.oip_output to the name of the output holding the {_held(kind)}", "missing_outputs")


def _held(kind: str | None) -> str:
    """What the output a model's kind reads holds, as the fixes name it."""
    return {"text": "generated text", "labels": "labels", "regression": "predictions"}.get(kind or "", "scores")


def _row_output(row: Any, i: int, name: str) -> Any:
    if not isinstance(row, dict) or name not in row:
        raise PayloadError(f"predictions[{i}]", f"has no output {name!r}, as predictions[0] has: every row must hold "
                                                "the same named outputs", "missing_outputs")
    return row[name]


def _binary_sizes(rows: list[Any]) -> list[Any]:
    """TF Serving's binary values (``{"b64": "..."}``: an encoded image, audio clip, document) as
    their size in bytes, which the monitor can watch (a blank camera's JPEGs shrink, a new
    encoder's grow), where their text was one category per image: unseen on every row, held cut
    to 200 characters, telling nothing. A row that is one such value (the single unnamed input) is
    the feature ``bytes``; a named one, ``<name>.bytes``. Other rows as they are."""
    def size(v: Any) -> Any:
        if isinstance(v, dict) and len(v) == 1 and isinstance(v.get("b64"), str):
            text = v["b64"].rstrip("=")
            return len(text) * 3 // 4
        return v

    out = []
    for row in rows:
        if not isinstance(row, dict):
            out.append(row)
        elif len(row) == 1 and isinstance(row.get("b64"), str):
            out.append({"bytes": size(row)})
        else:
            out.append({(f"{k}.bytes" if size(v) is not v else k): size(v) for k, v in row.items()})
    return out


def _has_binary(rows: Any) -> bool:
    """Whether the first row of ``instances`` holds a ``{"b64": ...}`` value (or is one)."""
    first = rows[0] if isinstance(rows, list) and rows else None
    return isinstance(first, dict) and ("b64" in first or any(isinstance(v, dict) and "b64" in v for v in first.values()))


def named_rows(rows: Any) -> Any:
    """``instances`` as rows; TF Serving's rows of named inputs of which some is a vector
    (``[{"x": [5.1, 3.5, 1.4, 0.2]}]``) read as :func:`_named_inputs` reads their columns. Rows of
    scalar values stay rows by feature name, as the worker reads them; binary values
    (``{"b64": ...}``) as their size (:func:`_binary_sizes`)."""
    if _has_binary(rows):
        rows = _binary_sizes(rows)
    if not (isinstance(rows, list) and rows and isinstance(rows[0], dict)
            and any(isinstance(v, list) for v in rows[0].values())):
        return rows
    names = list(rows[0])
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or list(row) != names:
            raise PayloadError(f"instances[{i}]", f"names other inputs than instances[0] ({', '.join(map(str, names[:20]))}); "
                                                  "every row must hold the same named inputs", "bad_shape")
    return _named_inputs({name: [row[name] for row in rows] for name in names}, "instances")


def _named_inputs(columns: dict[str, Any], field: str) -> Any:
    """TF Serving's named inputs, each batched along its first axis, as rows: inputs of one value
    per row stay columns by name (the worker reads a dict of columns); a single input of vectors is
    its rows (as ``instances`` of lists, or an OIP v2 tensor); with several, an input of vectors
    gives a column per value (``x_0``, ``x_1``..., as several OIP v2 tensors do). A dict of columns
    that held a vector was read as one feature per input, whose values were lists: refused."""
    if not any(isinstance(v, list) and v and isinstance(v[0], list) for v in columns.values()):
        return columns
    if len(columns) == 1:
        return next(iter(columns.values()))
    import numpy as np

    out: dict[str, Any] = {}
    n: int | None = None
    for name, value in columns.items():
        try:
            arr = np.asarray(value, dtype=object)
        except ValueError:
            arr = None
        if arr is None or arr.ndim == 0 or (arr.ndim == 1 and any(isinstance(v, list) for v in value)):
            raise PayloadError(f"{field}.{name}", "must be a value or a vector per row, as many rows as every other "
                                                  "input (the batch along the first axis), of one shape", "bad_shape")
        if n is None:
            n = arr.shape[0]
        elif arr.shape[0] != n:
            raise PayloadError(field, f"input {name!r} has {arr.shape[0]} rows, the first has {n}", "bad_shape")
        if arr.ndim == 1:
            out[name] = value
        else:
            flat = arr.reshape(n, -1)
            for j in range(flat.shape[1]):
                out[f"{name}_{j}"] = flat[:, j].tolist()
    return out


def decode_inputs(body: Any, path: str | None = None, *, one_feature: bool = False) -> Any:
    """The model inputs (a list of rows, an array, or row objects) in a request body.
    ``one_feature`` (the model reads one feature) reads one OIP v2 tensor of shape ``[n]`` as
    ``n`` rows, as the protocol's batch axis says, where otherwise a vector is one row."""
    if path is not None:
        return dotted(body, path)
    if not isinstance(body, dict):
        raise PayloadError("body", f"must be a JSON object, got {json_kind(body)}", "not_an_object")
    if "inputs" in body:
        value = body["inputs"]
        if _is_oip_tensors(value):
            return _oip_inputs(value, one_feature)
        return _named_inputs(value, "inputs") if isinstance(value, dict) and value else value
    if "instances" in body:
        return named_rows(body["instances"])
    if "data" in body:
        return _seldon_data(body["data"], "data")
    if "strData" in body:
        return _seldon_text(body["strData"])
    raise PayloadError("inputs", "no inputs found: expected OIP v2 inputs, v1 instances or Seldon data (or strData)",
                       "missing_inputs")


def decode_outputs(body: Any, path: str | None = None, *, output_name: str | None = None, rows: int | None = None,
                   kind: str | None = None) -> Any:
    """The model outputs in a response body. ``rows`` (the number of input rows) resolves the
    one ambiguity of OIP v2: a 1-D output for a single row is that row's vector. Of several
    outputs, the one named ``output_name`` is read; of TF Serving's named outputs, without it,
    the only one or the one named as the model's output ``kind`` reads (:data:`OUTPUT_NAMES`)."""
    if path is not None:
        return dotted(body, path)
    if not isinstance(body, dict):
        raise PayloadError("body", f"must be a JSON object, got {json_kind(body)}", "not_an_object")
    if "outputs" in body and _is_oip_tensors(body["outputs"]):
        tensors = body["outputs"]
        chosen = 0
        if output_name is not None and not (len(tensors) == 1 and tensors[0].get("name") == output_name):
            names = [t.get("name") for t in tensors]
            if output_name not in names:
                raise PayloadError("outputs", f"no output tensor named {output_name!r} (have {names}); set "
                                              "server.proxy.oip_output to the one holding the scores", "missing_outputs")
            chosen = names.index(output_name)
        arr = _tensor(tensors[chosen], "outputs[0]" if chosen == 0 else f"outputs[{chosen}]")
        if arr.ndim == 1 and rows == 1 and arr.shape[0] > 1:
            return arr.reshape(1, -1)
        return arr  # rows along axis 0; more axes are an ensemble's members (output.samples_axis), read as such
    if "predictions" in body:
        rows = body["predictions"]
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):  # TF Serving: named outputs per row
            name = _output_named(list(rows[0]), "predictions[0]", output_name, kind)
            return [_row_output(row, i, name) for i, row in enumerate(rows)]
        return rows
    if "outputs" in body:
        value = body["outputs"]
        if isinstance(value, dict) and value:  # TF Serving's columnar answer of named outputs
            return value[_output_named(list(value), "outputs", output_name, kind)]
        return value
    if "data" in body:
        return _seldon_data(body["data"], "data", named_rows=False)
    if "strData" in body:
        return _seldon_text(body["strData"])
    raise PayloadError("outputs", "no outputs found: expected OIP v2 outputs, v1 predictions or Seldon data (or strData)",
                       "missing_outputs")


def oip_request_id(body: Any) -> str | None:
    rid = body.get("id") if isinstance(body, dict) else None
    return str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid) else None


def decode_seldon_feedback(body: Any, multilabel: bool = False) -> tuple[str | None, list[Any]]:
    """``(request id, labels)`` of a Seldon feedback message: the prediction's id is the
    ``response.meta.puid``; labels are the ``truth`` rows (one-hot rows become class indices; a
    row that is not one-hot, all zeros or soft, is left as it is and counted ``invalid`` by the
    join, not read as its argmax). For a ``multilabel`` model every row stays the 0/1 vector (or
    list of names) it is: a one-hot row there says one label is present, not a class."""
    import numpy as np

    if not isinstance(body, dict):
        raise PayloadError("body", "a Seldon feedback must be a JSON object", "not_an_object")
    truth = body.get("truth")
    if truth is None:
        raise PayloadError("truth", "is required to learn the ground truth (reward alone is not monitored)", "missing_feedback")
    # the truth's names are the classes of its one-hot columns, not features: rows stay rows
    rows = _seldon_data(truth.get("data") if isinstance(truth, dict) else None, "truth.data", named_rows=False)
    if isinstance(rows, np.ndarray):
        rows = rows.tolist()
    if not isinstance(rows, list):
        rows = [rows]
    labels: list[Any] = []
    for r in rows:
        if isinstance(r, dict):
            r = next(iter(r.values()), None)
        if multilabel:
            labels.append(r)
            continue
        if isinstance(r, list) and len(r) == 1:
            r = r[0]
        if isinstance(r, list) and r and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r) \
                and r.count(1) == 1 and r.count(0) == len(r) - 1:
            r = int(np.argmax(r))  # a one-hot row; any other row (all zeros, soft, NaN) stays a list: counted invalid
        labels.append(r)
    response = body.get("response")
    puid = None
    if isinstance(response, dict) and isinstance(response.get("meta"), dict):
        p = response["meta"].get("puid")
        puid = str(p) if p else None
    return puid, labels


#: Triton writes each score with ``std::to_string`` (``%f``: ``0.700000``, ``inf``, ``-nan``): a score
#: with a decimal point, so that a labels model's own text labels that hold a colon (a time slot
#: ``10:30``) are not read as classification results.
_CLASSIFICATION = re.compile(r"^([-+]?(?:[0-9]*\.[0-9]+(?:[eE][-+]?[0-9]+)?|inf|nan)):([0-9]+)(?::(.*))?$",
                             re.S | re.I)


def classification_outputs(outputs: Any, kind: str, classes: Sequence[Any]) -> Any:
    """``outputs`` as the model's ``kind`` reads them when they are Triton's classification
    results (``"score:index:label"``, see :func:`classification_scores`), else as they are: the
    score rows for probabilities and logits, the top class of each row for labels. The proxy and
    the CloudEvents intake both read them so: CloudEvents refused them as ``non_numeric_output``,
    and a labels model took each text for a class name (refused, or learned as a new class per
    distinct score)."""
    if kind in ("probabilities", "logits"):
        return classification_scores(outputs, len(classes))
    if kind == "labels":
        return classification_labels(outputs, classes)
    return outputs


def _classification_rows(outputs: Any) -> Any:
    """The rows (a 2-D object array; a 1-D tensor is one row) of an output tensor holding
    classification results, None when it holds none."""
    import numpy as np

    if not isinstance(outputs, np.ndarray) or outputs.dtype != object or not outputs.size or outputs.ndim > 2:
        return None
    first = outputs.flat[0]
    if not isinstance(first, str) or _CLASSIFICATION.match(first) is None:
        return None
    return outputs.reshape(1, -1) if outputs.ndim == 1 else outputs


def _classification_item(item: Any) -> tuple[float, int, str | None]:
    """``(score, index, label or None)`` of one ``"score:index[:label]"``."""
    m = _CLASSIFICATION.match(item) if isinstance(item, str) else None
    if m is None:
        raise PayloadError("outputs", f"holds {str(item)[:60]!r} among classification results "
                                      "('score:index:label'); send every result so", "bad_data")
    try:
        score = float(m.group(1))
    except ValueError:
        raise PayloadError("outputs", f"classification result {item[:60]!r} has no number for its score",
                           "bad_data") from None
    return score, int(m.group(2)), m.group(3)


def classification_labels(outputs: Any, classes: Sequence[Any]) -> Any:
    """The top class of each row of Triton's classification results (any ``k``: the best score
    of the row), else ``outputs`` as it is: the configured class at its index (the index itself
    beyond them, refused by the worker as another class), or, without configured classes, the
    label (the index when the answer has none)."""
    import numpy as np

    rows = _classification_rows(outputs)
    if rows is None:
        return outputs
    labels = np.empty(rows.shape[0], dtype=object)
    for i, row in enumerate(rows):
        # a NaN score ranks last (max() would keep a NaN found first)
        _, index, label = max((_classification_item(item) for item in row),
                              key=lambda r: -math.inf if r[0] != r[0] else r[0])
        if classes:
            labels[i] = classes[index] if index < len(classes) else index
        else:
            labels[i] = label if label else index
    return labels


def classification_scores(outputs: Any, classes: int) -> Any:
    """The score rows of an output tensor in Triton's classification extension, else ``outputs``
    as it is. A request that asks for an output with ``parameters: {classification: k}`` gets,
    in place of the scores, BYTES of the top ``k`` as ``"score:index:label"`` (or
    ``"score:index"``): read as probabilities they were refused as ``non_numeric_output`` with
    nothing said about the extension. With every class there (``k`` is ``classes``, or, without
    configured classes, the indices of each row are ``0..k-1``) the rows are rebuilt, each score at
    its index; with fewer, the other classes' scores are not in the answer and it is refused
    naming the fix."""
    import numpy as np

    rows = _classification_rows(outputs)
    if rows is None:
        return outputs
    width = classes or rows.shape[1]
    scores = np.full((rows.shape[0], width), np.nan)
    for i, row in enumerate(rows):
        for item in row:
            score, index, _ = _classification_item(item)
            if index >= width:
                raise PayloadError("outputs", f"classification result {item[:60]!r} names class index {index}, beyond "
                                              f"the {width} classes", "output_shape")
            scores[i, index] = score
    if np.isnan(scores).any():
        raise PayloadError("outputs", f"holds Triton's classification results, the top {rows.shape[1]} of {width} "
                                      "classes ('score:index:label'): the other classes' scores are not in the answer, "
                                      f"so no row of probabilities can be read. Fix: ask for classification: {width} "
                                      "(every class), or for the output itself without classification",
                           "classification_top_k")
    return scores
