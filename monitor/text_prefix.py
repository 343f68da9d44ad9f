"""A long text as the text descriptors read it (:mod:`monitor.text`): its first characters and
its length. A module of its own, of the standard library alone, because a forwarding worker
(:mod:`monitor.forwarding`, which imports no numpy) and the stream wrapper
(:mod:`monitor.streaming`) make and send one without the descriptors.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_TEXT_CHARS", "TextPrefix"]

#: Characters of one text read for its words and characters (its length counts them all): a
#: megabyte pasted into a form costs what its first 10,000 characters cost.
MAX_TEXT_CHARS = 10_000


class TextPrefix(str):
    """A text longer than :data:`MAX_TEXT_CHARS` characters known by what its descriptors read:
    its first :data:`MAX_TEXT_CHARS` characters (the string itself) and its whole ``length`` in
    characters (``words`` is extrapolated from the first ones by that length).
    :func:`monitor.text.describe` gives it the descriptors of the whole text, to the last bit. A
    streamed answer keeps one (:mod:`monitor.streaming`) rather than every chunk: an answer of any
    length, an endless stream too, holds at most :data:`MAX_TEXT_CHARS` characters. A forwarding
    worker sends its ``length`` beside it (``outputs_length``, read by :func:`monitor.events.parse_event`)."""

    length: int

    def __new__(cls, head: str, length: int) -> "TextPrefix":
        self = super().__new__(cls, head)
        self.length = length
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickled (a process's queue) as itself, its length with it
        return TextPrefix, (str(self), self.length)
