"""TensorFlow Serving's REST Classify and Regress APIs, as the proxy reads them.

``POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify`` (or ``:regress``) takes
``{"signature_name": ..., "context": {...}, "examples": [{feature: value or list}, ...]}``: rows
of named features (``tf.Example``), the features of ``context`` shared by every example. The
server answers ``{"results": [[[label, score], ...], ...]}`` for classify (one list of label/score
pairs per example) and ``{"results": [value, ...]}`` for regress (its REST guide writes the key
``result`` in its format section and ``results`` in its example and its server; both are read).
Only ``:predict`` was tapped: a model served through its classification or regression signature
(a canned estimator's default) was forwarded unmonitored, with nothing counted.

KServe's inference logger sends the same bodies without their path (no ``:classify`` in its
CloudEvents): :func:`is_examples` and :func:`is_results` tell them from the predict API's by
their keys, and :func:`results_verb` a classify answer from a regress one by its results' shape.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from typing import Any

from monitor.events import json_kind
from monitor.server.payloads import PayloadError, named_rows

__all__ = ["decode_examples", "decode_results", "is_examples", "is_results", "results_verb"]

#: The label order each model's classify answers are read in when its config names no classes: the
#: first answer's (a classifier answers every row in its classes' order), kept for every later
#: one, so that column i is one class whatever order an answer lists them in.
_LEARNED: "weakref.WeakKeyDictionary[Any, tuple[str, ...]]" = weakref.WeakKeyDictionary()

#: the keys of the other APIs' bodies (OIP v2, KServe v1 / TF Serving predict, Seldon)
_OTHER_INPUTS = ("inputs", "instances", "data", "strData")
_OTHER_OUTPUTS = ("outputs", "predictions", "data", "strData")


def _value(v: Any) -> Any:
    """A feature's value: a list of one value (a ``tf.Example`` feature is a list) as that value."""
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def is_examples(body: Any) -> bool:
    """Whether a request body is a classify/regress request (``examples``, none of the predict
    APIs' inputs)."""
    return isinstance(body, dict) and "examples" in body and not any(k in body for k in _OTHER_INPUTS)


def is_results(body: Any) -> bool:
    """Whether an answer is a classify/regress answer (``results``, none of the predict APIs'
    outputs)."""
    return (isinstance(body, dict) and ("results" in body or "result" in body)
            and not any(k in body for k in _OTHER_OUTPUTS))


def results_verb(body: Any) -> str:
    """``classify`` when an answer's results are lists (each example's ``[label, score]`` pairs),
    else ``regress`` (one value per example): how an answer logged without its path is read."""
    results = _results(body)
    return "classify" if any(isinstance(row, list) for row in results) else "regress"


def decode_examples(body: Any) -> Any:
    """The rows of a classify/regress request: each example's features by name, with the
    ``context`` features added to every row (read as :func:`~monitor.server.payloads.named_rows`
    reads ``instances`` of named inputs: a vector feature gives a column per value, a binary one
    its size)."""
    if not isinstance(body, dict):
        raise PayloadError("body", f"must be a JSON object, got {json_kind(body)}", "not_an_object")
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise PayloadError("examples", "is required by TF Serving's classify and regress APIs: a non-empty list of "
                                       "examples, each an object of named features", "missing_inputs")
    context = body.get("context") or {}
    if not isinstance(context, dict):
        raise PayloadError("context", f"must be an object of named features, got {json_kind(context)}", "bad_data")
    shared = {str(k): _value(v) for k, v in context.items()}
    rows = []
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            raise PayloadError(f"examples[{i}]", f"must be an object of named features, got {json_kind(example)}",
                               "bad_data")
        rows.append({**shared, **{str(k): _value(v) for k, v in example.items()}})
    return named_rows(rows)


def _results(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        raise PayloadError("body", f"must be a JSON object, got {json_kind(body)}", "not_an_object")
    results = body.get("results", body.get("result"))
    if not isinstance(results, list):
        raise PayloadError("results", "not found: TF Serving's classify and regress answers hold results, a list with "
                                      "one entry per example", "missing_outputs")
    return results


def decode_results(body: Any, verb: str, kind: str, classes: Sequence[Any], model: Any = None) -> Any:
    """The outputs of a classify (``verb``) or regress answer as the model's output ``kind``
    reads them: a regress answer's values as they are (a regressor's predictions, or a binary
    classifier's P(positive)); a classify answer's scores as rows of the configured classes'
    scores (probabilities, logits, multilabel), or its best label per example (labels).
    ``model`` (the model's monitor) keeps, without ``classes``, the label order of its first
    answer for its later ones."""
    results = _results(body)
    if verb == "regress":
        return results
    if kind not in ("probabilities", "logits", "multilabel", "labels"):
        raise PayloadError("results", f"holds classification results (label and score pairs), which output.kind: {kind} "
                                      "does not read. Fix: output.kind: probabilities (or labels), or call :regress for "
                                      "a regression signature", "non_numeric_output")
    pairs = [_pairs(row, i) for i, row in enumerate(results)]
    if kind == "labels":
        return [_best(row, classes) for row in pairs]
    return _score_rows(pairs, classes, model)


def _pairs(row: Any, i: int) -> list[tuple[str, float]]:
    """One example's ``[[label, score], ...]`` checked."""
    if not isinstance(row, list):
        raise PayloadError(f"results[{i}]", f"must be a list of [label, score] pairs, got {json_kind(row)}", "bad_data")
    out = []
    for pair in row:
        if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                or not isinstance(pair[1], (int, float)) or isinstance(pair[1], bool)):
            raise PayloadError(f"results[{i}]", f"holds {str(pair)[:60]!r}; each class must be a [label, score] pair",
                               "bad_data")
        out.append((pair[0], float(pair[1])))
    return out


def _best(row: list[tuple[str, float]], classes: Sequence[Any]) -> Any:
    """The label of the best score (a NaN ranks last); the configured class at its position when
    the model's classes have no labels (``""``)."""
    if not row:
        return None
    index, (label, _) = max(enumerate(row), key=lambda p: -math.inf if p[1][1] != p[1][1] else p[1][1])
    if label:
        return label
    return classes[index] if index < len(classes) else index


def _score_rows(pairs: list[list[tuple[str, float]]], classes: Sequence[Any], model: Any = None) -> list[list[float]]:
    """Each example's scores in the order of the configured classes (by label), else in the order
    of the labels of the model's first answer (of this one's first example without ``model``);
    an example that lacks a class (a top-k answer) is refused, as its other classes' scores are
    not in the answer. Each answer was read in its own first example's order: a server listing
    each example's classes by score (best first) had column 0 mean another class in every answer
    whose first example another class won."""
    names = [str(c) for c in classes]
    labelled = {i: all(label for label, _ in row) for i, row in enumerate(pairs) if row}
    if len(set(labelled.values())) > 1:  # read by position, an unlabelled row took another row's order
        i0 = next(iter(labelled))
        i = next(i for i, v in labelled.items() if v != labelled[i0])
        raise PayloadError(f"results[{i}]", f"is {'' if labelled[i] else 'not '}labelled where results[{i0}] is"
                                            f"{'' if labelled[i0] else ' not'}: each example's scores are read by their "
                                            "labels, or all by position. Fix: answer every example's classes alike",
                           "bad_data")
    if not any(labelled.values()):  # the model's classes have no labels: the scores are in class order
        width = len(names) or (len(pairs[0]) if pairs else 0)
        for i, row in enumerate(pairs):
            if len(row) != width:
                raise PayloadError(f"results[{i}]", f"holds {len(row)} scores without labels where {width} classes are "
                                                    "expected: every class's score is needed", "classification_top_k")
        return [[score for _, score in row] for row in pairs]
    first = [label for label, _ in pairs[next(iter(labelled))]]
    if names and set(names) >= set(first):
        order = names
    elif model is None:
        order = first
    else:
        order = list(_LEARNED.setdefault(model, tuple(first)))
    out = []
    for i, row in enumerate(pairs):
        scores = dict(row)
        missing = [c for c in order if c not in scores]
        if missing or len(scores) != len(order):
            raise PayloadError(f"results[{i}]", f"holds the scores of {len(scores)} classes of {len(order)} (missing "
                                                f"{', '.join(map(repr, missing[:5])) or 'none'}; "
                                                f"labels {', '.join(map(repr, list(scores)[:5]))}): the other classes' "
                                                "scores are not in the answer. Fix: answer every class's score (or set "
                                                "output.classes to the labels the model answers)", "classification_top_k")
        out.append([scores[c] for c in order])
    return out
