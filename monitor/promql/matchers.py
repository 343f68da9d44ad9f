"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) with Prometheus's regex semantics, in ``re``.

Prometheus compiles ``=~`` values with Go's RE2 as ``^(?:value)$``. Python's ``re`` differs in a few
ways that matter for real selectors, so values are translated before compiling:

* a flag group such as ``(?i)`` in the middle of a pattern applies to the rest of its enclosing
  group in RE2 but is an error in Python; it is rewritten as a scoped group ``(?i:...)``;
* ``$`` means end of text in RE2 but "before a trailing newline" in Python; it becomes ``\\Z``,
  and RE2's ``\\z`` becomes ``\\Z``;
* ``\\d``, ``\\w``, ``\\s`` are ASCII-only in RE2 and Unicode-aware in Python; they become explicit
  ASCII classes;
* ``\\Q...\\E`` literal quoting is expanded, POSIX classes ``[[:alpha:]]`` are expanded.

Constructs with no faithful translation (``\\p{...}`` Unicode classes, the ``U`` flag) raise
:class:`~monitor.promql.errors.UnsupportedError` instead of matching differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Pattern

from monitor.promql.errors import ParseError, UnsupportedError

__all__ = ["MatchOp", "LabelMatcher", "translate_regex", "compile_regex"]


class MatchOp:
    """The four matcher operators, as their PromQL spelling."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"
    ALL = (EQ, NE, RE, NRE)


_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_CLASS_OUT = {"d": "[0-9]", "D": "[^0-9]", "w": "[0-9A-Za-z_]", "W": "[^0-9A-Za-z_]",
              "s": "[\\t\\n\\f\\r ]", "S": "[^\\t\\n\\f\\r ]"}
_CLASS_IN = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_FLAG_RE = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?\)")
_SCOPED_FLAG_RE = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?:")


def translate_regex(pattern: str) -> str:
    """Translate an RE2 pattern into an equivalent Python ``re`` pattern (see module docstring).

    Raises
    ------
    UnsupportedError
        For RE2 constructs with no faithful Python equivalent.
    """
    out: list[str] = []
    # Stack of output positions where each open group started, so a mid-group flag such as
    # "(?i)" can be turned into "(?i:" ... ")" closed at the end of the enclosing group.
    pending_close: list[int] = [0]  # number of extra ")" to emit when the current group ends
    # RE2's (?m) makes "$" the end of a line (Python's "$" under the scoped "(?m:" written for it);
    # without it "$" is the end of the text: "\\Z". Each open group's state, restored when it closes.
    multiline = [False]
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise ParseError(f"invalid regex {pattern!r}: trailing backslash")
            d = pattern[i + 1]
            if d == "Q":
                end = pattern.find("\\E", i + 2)
                lit = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(lit))
                i = n if end < 0 else end + 2
                continue
            if d in ("p", "P"):
                raise UnsupportedError(f"Unicode class \\{d} in regex {pattern!r}")
            if d == "z":
                out.append("\\Z")
            elif d in _CLASS_OUT:
                out.append(_CLASS_OUT[d])
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[":
            j, cls = _translate_class(pattern, i)
            out.append(cls)
            i = j
            continue
        if c == "$":
            out.append("$" if multiline[-1] else "\\Z")
            i += 1
            continue
        if c == "(":
            m = _FLAG_RE.match(pattern, i)
            if m is not None:
                on, off = m.group(1), m.group(2) or ""
                if "U" in on or "U" in off:
                    raise UnsupportedError(f"regex flag U (ungreedy) in {pattern!r}")
                spec = on + ("-" + off if off else "")
                if spec:
                    out.append(f"(?{spec}:")
                    pending_close[-1] += 1
                multiline[-1] = _multiline_after(multiline[-1], on, off)
                i = m.end()
                continue
            scoped = _SCOPED_FLAG_RE.match(pattern, i)
            multiline.append(multiline[-1] if scoped is None
                             else _multiline_after(multiline[-1], scoped.group(1), scoped.group(2) or ""))
            pending_close.append(0)
            out.append("(")
            i += 1
            continue
        if c == ")":
            extra = pending_close.pop() if len(pending_close) > 1 else 0
            if len(multiline) > 1:
                multiline.pop()
            out.append(")" * extra + ")")
            i += 1
            continue
        out.append(c)
        i += 1
    out.append(")" * pending_close[0])
    return "".join(out)


def _multiline_after(multiline: bool, on: str, off: str) -> bool:
    """Whether "$" ends a line after a flag group turning ``on`` and ``off`` flags."""
    return False if "m" in off else True if "m" in on else multiline


def _translate_class(pattern: str, start: int) -> tuple[int, str]:
    """Translate a bracket expression starting at ``start``; return (end index, text)."""
    i = start + 1
    out = ["["]
    n = len(pattern)
    if i < n and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < n:
        c = pattern[i]
        if c == "]" and not first:
            out.append("]")
            return i + 1, "".join(out)
        first = False
        if c == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end > 0:
                name = pattern[i + 2:end]
                neg = name.startswith("^")
                key = name[1:] if neg else name
                if key in _POSIX and not neg:
                    out.append(_POSIX[key])
                    i = end + 2
                    continue
                raise UnsupportedError(f"POSIX class [:{name}:] in regex {pattern!r}")
        if c == "[":
            out.append("\\[")
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            d = pattern[i + 1]
            if d in ("p", "P"):
                raise UnsupportedError(f"Unicode class \\{d} in regex {pattern!r}")
            out.append(_CLASS_IN.get(d, pattern[i:i + 2]))
            i += 2
            continue
        out.append(c)
        i += 1
    raise ParseError(f"invalid regex {pattern!r}: missing closing ]")


@lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Pattern[str]:
    """Compile an RE2 label-matcher pattern for full (anchored) matching with ``fullmatch``."""
    try:
        return re.compile(translate_regex(pattern))
    except re.error as exc:
        raise ParseError(f"invalid regular expression {pattern!r}: {exc}") from exc


@dataclass(frozen=True)
class LabelMatcher:
    """One label matcher: ``name op value``.

    An absent label is treated as the empty string, so ``foo=""`` selects series without ``foo``
    and ``foo!="bar"`` selects series without ``foo`` too, as in Prometheus.
    """

    name: str
    op: str
    value: str
    _regex: Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in MatchOp.ALL:
            raise ParseError(f"invalid matcher operator {self.op!r}: use one of =, !=, =~, !~")
        if self.op in (MatchOp.RE, MatchOp.NRE):
            object.__setattr__(self, "_regex", compile_regex(self.value))

    @classmethod
    def equal(cls, name: str, value: str) -> LabelMatcher:
        """Shortcut for ``name="value"``."""
        return cls(name, MatchOp.EQ, value)

    def matches(self, value: str) -> bool:
        """Return whether a label value (``""`` for an absent label) satisfies the matcher."""
        op = self.op
        if op == MatchOp.EQ:
            return value == self.value
        if op == MatchOp.NE:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value) is not None
        return hit if op == MatchOp.RE else not hit

    def __str__(self) -> str:
        v = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{v}"'
