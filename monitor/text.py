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

from monitor.events import value_text
from monitor.text_prefix import MAX_TEXT_CHARS, TextPrefix

__all__ = ["DESCRIPTORS", "MAX_COUNTED_WORDS", "MAX_TEXT_CHARS", "OOV", "ReferenceWords", "TextPrefix",
           "VOCABULARY_SIZE", "bound_counts", "descriptor_names", "describe", "document_counts", "held_out_descriptors",
           "is_free_text", "reference_descriptors", "reference_vocabulary", "text_value", "text_values"]

#: The descriptors every text feature has, in column order.
DESCRIPTORS = ("length", "words", "non_letter_share", "non_ascii_share")
#: The descriptor a text feature has when the reference holds it (its vocabulary is the reference's).
OOV = "oov_share"
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
    value (a number sent for a text feature, a list or an array of words) its ``str`` (None when
    ``str()`` raises: a caller's object with no text), a str-mixin Enum's member its value's text
    (:func:`~monitor.events.value_text`)."""
    if type(v) is str or type(v) is TextPrefix:
        return v
    if v is None:
        return None
    kind = type(v)  # not isinstance: it runs a caller's object's __class__, which may raise (the call was lost)
    if issubclass(kind, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    if issubclass(kind, str):  # a subclass (numpy's str_): its text, not its own methods (which may raise)
        return str.__str__(v)
    try:
        if v != v:  # NaN, NaT
            return None
    except TypeError:  # pd.NA: its truth value is ambiguous
        return None
    except ValueError:  # several values (an array, a Series: one answer each): the call was lost as internal_error
        pass
    except Exception:  # noqa: BLE001 - a caller's object whose __ne__ raises (RuntimeError...): read by its text
        pass
    try:
        return value_text(v)  # a str-mixin Enum's member: its value's text, as JSON writes it
    except Exception:  # noqa: BLE001 - a caller's object whose str() raises: no text (missing), where the call was lost
        return None


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
        n = s.length if type(s) is TextPrefix else len(s)
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
    held = document_counts(texts)
    vocabulary, t = reference_vocabulary(held, size)
    return held_out_descriptors(texts, held, t), vocabulary


def document_counts(values: Iterable[Any], held: Counter[str] | None = None) -> Counter[str]:
    """``held`` (a new counter when None) with, added for each word, the number of ``values``
    (texts) holding it: the counts :func:`reference_vocabulary` chooses from. A reference read in
    chunks (a CSV file) adds each chunk's texts in turn, so that its vocabulary is the whole
    column's, as an in-memory reference's is."""
    held = Counter() if held is None else held
    for v in values:
        s = v if type(v) is str else text_value(v)
        if s is not None:
            held.update(set(_WORD.findall(s[:MAX_TEXT_CHARS].lower())))
    return held


#: Distinct words :func:`bound_counts` keeps counting at most: a reference file of millions of texts
#: (names, typos, ids) keeps its word counts to some hundred megabytes.
MAX_COUNTED_WORDS = 1_000_000


def bound_counts(held: Counter[str], most: int = MAX_COUNTED_WORDS) -> Counter[str]:
    """``held`` with, above ``most`` words, the rarest so far dropped (those held by 1 text, then
    2...) until at most half of ``most`` remain. A word dropped is counted from 0 if it comes again:
    only words rarer than the kept ones are, far from the :data:`VOCABULARY_SIZE` most frequent
    that the vocabulary keeps."""
    if len(held) <= most:
        return held
    floor = 1
    while len(held) > most // 2:
        for w in [w for w, c in held.items() if c <= floor]:
            del held[w]
        floor += 1
    return held


def reference_vocabulary(held: Counter[str], size: int = VOCABULARY_SIZE) -> tuple[tuple[str, ...], int]:
    """The vocabulary of texts whose word document counts are ``held`` (the words held by at
    least ``t`` texts, most frequent first, then alphabetical) and ``t``, the smallest count
    ``>= 1`` that keeps at most ``size`` words."""
    by_count = sorted(held.values(), reverse=True)
    t = max(1, by_count[size] + 1) if len(by_count) > size else 1
    return tuple(sorted((w for w, c in held.items() if c >= t), key=lambda w: (-held[w], w))), t


def held_out_descriptors(values: Sequence[Any], held: Counter[str], t: int) -> np.ndarray:
    """The descriptors ``(n, 5)`` of reference texts counted in ``held``, each text's
    ``oov_share`` read leaving that text out (a word is known when at least ``t`` *other* texts
    hold it; see :func:`reference_descriptors`)."""
    texts = text_values(values)
    out = np.empty((len(texts), len(DESCRIPTORS) + 1), dtype=np.float64)
    words_of = _plain(texts, out)
    for i, words in enumerate(words_of):
        if words is None:
            out[i, 4] = np.nan
        else:
            out[i, 4] = sum(held[w] - 1 < t for w in words) / len(words) if words else 0.0
    return out


class ReferenceWords:
    """The word counts of a reference's text features read in chunks (a CSV or Parquet file), then
    their vocabularies and descriptors as :func:`reference_descriptors` gives them for texts held
    in memory: every chunk's texts counted first (:meth:`add`, then :meth:`finish`: a vocabulary
    is the whole column's), then each chunk described against them (:meth:`describe`). Counts are
    kept bounded (:func:`bound_counts`)."""

    def __init__(self, names: Sequence[str], size: int = VOCABULARY_SIZE) -> None:
        self.size = size
        self.held: dict[str, Counter[str]] = {str(n): Counter() for n in names}
        self._cuts: dict[str, tuple[tuple[str, ...], int]] | None = None

    def add(self, name: str, values: Iterable[Any]) -> None:
        """Count the words of one chunk's texts of feature ``name``."""
        bound_counts(document_counts(values, self.held[name]))

    def finish(self) -> None:
        """Fix each feature's vocabulary: every text has been counted."""
        self._cuts = {n: reference_vocabulary(h, self.size) for n, h in self.held.items()}

    @property
    def finished(self) -> bool:
        return self._cuts is not None

    @property
    def vocabularies(self) -> dict[str, tuple[str, ...]]:
        """Text feature -> its vocabulary (after :meth:`finish`)."""
        assert self._cuts is not None, "ReferenceWords.finish() first"
        return {n: v for n, (v, _t) in self._cuts.items()}

    def describe(self, name: str, values: Sequence[Any]) -> np.ndarray:
        """The descriptors ``(n, 5)`` of one chunk's texts of feature ``name``, ``oov_share``
        read leaving each text out (:func:`held_out_descriptors`)."""
        assert self._cuts is not None, "ReferenceWords.finish() first"
        return held_out_descriptors(values, self.held[name], self._cuts[name][1])
