"""Go's regular expressions for PromQL and alert templates, run by Google's RE2 library.

Prometheus reads every pattern with Go's ``regexp``, an implementation of RE2's syntax: ``=~`` and
``!~`` matchers and ``label_replace`` compile ``^(?:pattern)$``, a template's ``match`` and
``reReplaceAll`` the pattern as written. Python's ``re`` reads the same text differently where real
patterns meet it (``$`` before a final newline, Unicode ``\\d``/``\\w``/``\\b``, flags in mid-pattern,
no POSIX or ``\\p{...}`` classes, no ``(?U)``); a hand-written translation into ``re`` covered most of
that and refused the rest. The google-re2 binding runs RE2's own C++ library, whose default (Perl)
syntax is Go's, so a pattern means here what it means in Prometheus, with nothing translated.

Where the two RE2s part, Go is followed: ``\\C`` (one byte, which Go refuses) is refused, a text
holding lone surrogates (JSON's ``"\\udc80"``; UTF-8 cannot hold one) is matched with each read as
U+FFFD, as Go reads a byte of invalid UTF-8 (a pattern holding them too), and a refusal is worded
with Go's error codes (``error parsing regexp: missing closing ): `(a```).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Iterator

import re2

__all__ = ["GoRegexpError", "compile_go", "compile_anchored", "search", "finditer", "expand"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 logs each refusal to stderr; the caller says it once, in context

#: RE2's error texts (re2/regexp.cc) as Go's ``regexp/syntax`` words the same refusal.
_GO_CODES = {
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class": "invalid character class",
    "invalid character class range": "invalid character class range",
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid UTF-8": "invalid UTF-8",
    "invalid named capture group": "invalid named capture",
}
_SURROGATE = re.compile("[\ud800-\udfff]")


class GoRegexpError(ValueError):
    """A pattern Go's ``regexp`` refuses; ``str()`` is Go's own text (``error parsing regexp: ...``)."""


@lru_cache(maxsize=4096)
def compile_go(pattern: str) -> Any:
    """``regexp.Compile(pattern)``: an ``re2`` pattern (``search``, ``finditer``, ``groups``).

    Raises
    ------
    GoRegexpError
        Worded as Go's error for the same pattern.
    """
    _refuse_what_go_refuses(pattern)
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise GoRegexpError(_go_wording(exc)) from None
    except UnicodeEncodeError:
        # a pattern holding lone surrogates (a template's pattern taken from a label value that JSON
        # brought in) is read with each as U+FFFD, as the text it is matched against (:func:`search`)
        # and as Go holds such a label: it raised UnicodeEncodeError, and the template rendered
        # "error executing template ...: UnicodeEncodeError" with a warning logged as a bug
        return compile_go(_SURROGATE.sub("\ufffd", pattern))


def compile_anchored(pattern: str) -> Any:
    """The pattern as Prometheus compiles a matcher's or ``label_replace``'s: ``^(?:pattern)$``,
    read with :func:`search`. Not ``fullmatch`` of the pattern: Go's wrapping takes ``a)|(b`` (a
    value starting with ``a`` or ending with ``b``), which alone is unbalanced."""
    return compile_go(f"^(?:{pattern})$")


def search(rx: Any, text: str) -> Any:
    """``rx.search(text)``; a text with lone surrogates is read with each as U+FFFD (Go's reading
    of a byte of invalid UTF-8), so a label value JSON brought in matches instead of raising."""
    try:
        return rx.search(text)
    except UnicodeEncodeError:
        return rx.search(_SURROGATE.sub("\ufffd", text))


def finditer(rx: Any, text: str) -> Iterator[Any]:
    """``rx.finditer(text)``, lone surrogates read as in :func:`search` (the spans are the same:
    each surrogate is replaced by one character)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return rx.finditer(text)


def expand(template: str, match: Any) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}`` (a name is the longest run
    of letters, digits and ``_``), ``$$``; a group that does not exist or did not take part is ``""``,
    a malformed ``$`` is itself."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0 or j + 1 >= n:
            out.append(template[i:])
            break
        out.append(template[i:j])
        if template[j + 1] == "$":
            out.append("$")
            i = j + 2
            continue
        if template[j + 1] == "{":
            end = template.find("}", j + 2)
            name = template[j + 2:end] if end > 0 else ""
            after = end + 1
        else:
            end = j + 1
            while end < n and _name_char(template[end]):
                end += 1
            name, after = template[j + 1:end], end
        if not name or not all(_name_char(c) for c in name):
            out.append("$")
            i = j + 1
            continue
        out.append(_group(match, name))
        i = after
    return "".join(out)


def _name_char(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdecimal()  # Go: unicode.IsLetter, unicode.IsDigit (Nd)


def _group(match: Any, name: str) -> str:
    try:
        value = match.group(int(name) if name.isascii() and name.isdigit() else name)
    except (IndexError, KeyError, ValueError, OverflowError):  # no such group: Go writes ""
        return ""
    return value or ""


def _refuse_what_go_refuses(pattern: str) -> None:
    """What RE2 C++ takes and Go's ``regexp/syntax`` (Go 1.19, Prometheus 2.42's) refuses:

    * ``\\C`` (any one byte): it would split a UTF-8 character;
    * ``(?<name>...)``, a named group without the ``P`` (RE2 C++ took it in 2023, Go in 1.22):
      ``invalid or unsupported Perl syntax: `(?<```, so ``(?<=``/``(?<!`` are worded so too;
    * a ``(?P<name>`` whose name is not ASCII letters, digits and ``_`` (RE2 C++ takes any word
      character: ``(?P<é>``): ``invalid named capture``.

    Escaped, inside ``\\Q...\\E`` or inside a bracket expression they are literal text.
    """
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q" and not in_class:
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            if nxt == "C":
                raise GoRegexpError("error parsing regexp: invalid escape sequence: `\\C`")
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                if end >= 0:
                    i = end + 2
                    continue
            elif c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":  # a "]" first is itself
                i += 1
            continue
        if pattern.startswith("(?<", i):
            raise GoRegexpError("error parsing regexp: invalid or unsupported Perl syntax: `(?<`")
        if pattern.startswith("(?P<", i) and i + 4 < n:
            end = pattern.find(">", i + 4)
            name = pattern[i + 4:end]
            if end >= 0 and name and not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name):
                raise GoRegexpError(f"error parsing regexp: invalid named capture: `{pattern[i:end + 1]}`")
        i += 1


def _go_wording(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else exc
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    code, sep, arg = text.partition(": ")
    if code in _GO_CODES:
        return f"error parsing regexp: {_GO_CODES[code]}: `{arg}`" if sep else f"error parsing regexp: {_GO_CODES[code]}"
    if "too large" in text:
        return "error parsing regexp: expression too large"
    return f"error parsing regexp: {text}"
