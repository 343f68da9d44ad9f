"""Label matchers (``=``, ``!=``, ``=~``, ``!~``) with Prometheus's regex semantics.

Prometheus compiles an ``=~`` value with Go's RE2 as ``^(?:value)$``; so does this module, with
RE2's own library (:mod:`monitor.promql.goregexp`), so a pattern means here what it means there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitor.promql.errors import ParseError
from monitor.promql.goregexp import GoRegexpError, compile_anchored, compile_go, search

__all__ = ["MatchOp", "LabelMatcher", "compile_regex"]


class MatchOp:
    """The four matcher operators, as their PromQL spelling."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"
    ALL = (EQ, NE, RE, NRE)


def compile_regex(pattern: str) -> Any:
    """Compile a label matcher's pattern as Prometheus does, for
    :func:`~monitor.promql.goregexp.search`: matched as ``^(?:pattern)$`` and checked alone too
    (so ``a)|(b`` is refused, which ``label_replace`` takes), in Prometheus 2.42's order
    (``labels.NewFastRegexMatcher``), so a refusal quotes what Go's quotes (``(a`` as
    ``missing closing ): `^(?:(a)$```)."""
    try:
        rx = compile_anchored(pattern)
        compile_go(pattern)
        return rx
    except GoRegexpError as exc:
        raise ParseError(f"invalid regular expression {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class LabelMatcher:
    """One label matcher: ``name op value``.

    An absent label is treated as the empty string, so ``foo=""`` selects series without ``foo``
    and ``foo!="bar"`` selects series without ``foo`` too, as in Prometheus.
    """

    name: str
    op: str
    value: str
    _regex: Any = field(default=None, compare=False, repr=False)

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
        hit = search(self._regex, value) is not None
        return hit if op == MatchOp.RE else not hit

    def __str__(self) -> str:
        v = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{v}"'
