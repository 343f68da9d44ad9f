"""Free text among a model's inputs, monitored through numbers that describe each text.

A text (a review, a query, a message) is no category: nearly every value is new, so read as one
every live value was an unseen category and nothing about the text was monitored. Each text is
described instead by a few numbers, its *descriptors* (what Evidently's text descriptors and
WhyLabs' langkit monitor), which the numeric drift and data-quality machinery then watches as
features named ``<feature>.<descriptor>``:

``length``
    Characters.
``words``
    Whitespace-separated tokens.
``non_letter_share``
    Share of the characters that are neither letters nor whitespace (digits, punctuation, emoji,
    markup).
``non_ascii_share``
    Share of the characters outside ASCII (another script, accents, emoji).
``oov_share``
    Share of the words (runs of letters, lower-cased) outside the reference's vocabulary: only
    when the reference holds the feature (:func:`reference_descriptors`).

Only the descriptors are kept, never the texts: a batch's memory is that of ``d`` numbers per row.
This is pure computation (no intake, no detector): the worker calls it while building batches,
never the decorated function's thread.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["DESCRIPTORS", "MAX_TEXT_CHARS", "OOV", "VOCABULARY_SIZE", "descriptor_names", "describe", "is_free_text",
           "reference_descriptors", "text_value", "text_values"]

#: The descriptors every text feature has, in column order.
DESCRIPTORS = ("length", "words", "non_letter_share", "non_ascii_share")
#: The descriptor a text feature has when the reference holds it (its vocabulary is the reference's).
OOV = "oov_share"
#: Characters of one text read for its words and characters (its length counts them all): a
#: megabyte pasted into a form costs what its first 10,000 characters cost.
MAX_TEXT_CHARS = 10_000
#: Words a reference vocabulary keeps at most (the most frequent: by the number of reference texts
#: holding each word), so that a reference of long texts keeps a bounded vocabulary.
VOCABULARY_SIZE = 20_000

_WORD = re.compile(r"[^\W\d_]+")


def descriptor_names(feature: str, vocabulary: bool) -> tuple[str, ...]:
    """The numeric features text feature ``feature`` is monitored as (``review.length``...),
    ``oov_share`` last when there is a ``vocabulary``."""
    return tuple(f"{feature}.{d}" for d in (*DESCRIPTORS, *((OOV,) if vocabulary else ())))


def text_value(v: Any) -> str | None:
    """One text cell as text: bytes decoded, missing ones (None, NaN, pandas' NA) None, any other
    value (a number sent for a text feature) its ``str``."""
    if type(v) is str:
        return v
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    try:
        if v != v:  # NaN, NaT
            return None
    except TypeError:  # pd.NA: its truth value is ambiguous
        return None
    return str(v)


def text_values(values: Iterable[Any]) -> list[str | None]:
    """:func:`text_value` of each cell."""
    return [v if type(v) is str else text_value(v) for v in values]


#: Free text, told from categories: at least this share of a column's values distinct...
FREE_TEXT_UNIQUE = 0.5
#: ...and at least this many words in half of them, or this many characters on average.
FREE_TEXT_WORDS, FREE_TEXT_CHARS = 3, 40


def is_free_text(values: Iterable[Any]) -> bool:
    """Whether a column of text values (a sample: missing ones skipped) holds free text rather
    than categories: mostly distinct values (:data:`FREE_TEXT_UNIQUE`) that are sentences
    (:data:`FREE_TEXT_WORDS` words or more in half of them) or long (:data:`FREE_TEXT_CHARS`
    characters on average). Read as categories, nearly every live value of such a column was an
    unseen category, and nothing about the text was monitored.

    >>> is_free_text(["A fine film, well acted.", "Dull and far too long.", "Loved every minute of it"])
    True
    >>> is_free_text(["web", "mobile", "web"]), is_free_text(["Paris", "Lyon", "Nice"]), is_free_text([None, 3])
    (False, False, False)
    """
    # missing ones as text_value reads them: pd.NA too (a "string" column's gap), else such a
    # column with one missing review was read as categories
    texts = [v for v in values if type(v) is str or text_value(v) is not None]
    if len(texts) < 3 or not all(isinstance(v, str) for v in texts):
        return False
    if len(set(texts)) < FREE_TEXT_UNIQUE * len(texts):
        return False
    sentences = sum(len(v.split()) >= FREE_TEXT_WORDS for v in texts)
    return 2 * sentences >= len(texts) or sum(map(len, texts)) >= FREE_TEXT_CHARS * len(texts)


def _plain(texts: Sequence[str | None], out: np.ndarray) -> list[list[str] | None]:
    """Fill ``out[:, :4]`` with the descriptors of :data:`DESCRIPTORS` (NaN for a missing text)
    and return each text's words (None for a missing one)."""
    words_of: list[list[str] | None] = []
    for i, s in enumerate(texts):
        if s is None:
            out[i, :4] = np.nan
            words_of.append(None)
            continue
        n = len(s)
        head = s[:MAX_TEXT_CHARS]
        tokens = head.split()
        words = _WORD.findall(head.lower())
        visible = sum(map(len, tokens))
        letters = sum(map(len, words))
        read = len(head)
        out[i, 0] = n
        out[i, 1] = len(tokens) if n <= MAX_TEXT_CHARS else len(tokens) * n / read
        out[i, 2] = (visible - letters) / visible if visible else 0.0
        out[i, 3] = 0.0 if head.isascii() else (read - len(head.encode("ascii", "ignore"))) / read
        words_of.append(words)
    return words_of


def describe(values: Sequence[Any], vocabulary: frozenset[str] | None = None) -> np.ndarray:
    """The descriptors of ``values`` (texts, None for missing), float64 ``(n, 4)``, or ``(n, 5)``
    with ``oov_share`` against ``vocabulary``. A missing text's row is NaN (counted missing, as a
    missing number is); a text without words has an ``oov_share`` of 0."""
    texts = text_values(values)
    out = np.empty((len(texts), len(DESCRIPTORS) + (vocabulary is not None)), dtype=np.float64)
    words_of = _plain(texts, out)
    if vocabulary is not None:
        for i, words in enumerate(words_of):
            if words is None:
                out[i, 4] = np.nan
            else:
                out[i, 4] = sum(w not in vocabulary for w in words) / len(words) if words else 0.0
    return out


def reference_descriptors(values: Sequence[Any], size: int = VOCABULARY_SIZE) -> tuple[np.ndarray, tuple[str, ...]]:
    """The reference texts' descriptors ``(n, 5)`` and the vocabulary live texts are read against.

    The vocabulary is the words held by at least ``t`` reference texts, ``t >= 1`` the smallest
    count that keeps at most ``size`` of them (most frequent first, then alphabetical). A
    reference text's ``oov_share`` is read leaving that text out (a word is known when at least
    ``t`` *other* texts hold it): read against a vocabulary that holds its own words, every
    reference text would have an ``oov_share`` near 0, and live texts of the very same kind (whose
    rare words the reference never saw) would read as drift."""
    texts = text_values(values)
    out = np.empty((len(texts), len(DESCRIPTORS) + 1), dtype=np.float64)
    words_of = _plain(texts, out)
    held = Counter(w for words in words_of if words for w in set(words))
    by_count = sorted(held.values(), reverse=True)
    t = max(1, by_count[size] + 1) if len(by_count) > size else 1
    for i, words in enumerate(words_of):
        if words is None:
            out[i, 4] = np.nan
        else:
            out[i, 4] = sum(held[w] - 1 < t for w in words) / len(words) if words else 0.0
    vocabulary = tuple(sorted((w for w, c in held.items() if c >= t), key=lambda w: (-held[w], w)))
    return out, vocabulary
