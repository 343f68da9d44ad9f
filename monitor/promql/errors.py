"""Errors raised by the PromQL evaluator.

Three kinds matter to callers: a syntax error (:class:`ParseError`), a construct this evaluator
deliberately refuses at compile time rather than evaluating it wrongly (:class:`UnsupportedError`),
and a runtime error that Prometheus also raises during evaluation (:class:`EvalError`).
"""

from __future__ import annotations

__all__ = ["PromQLError", "ParseError", "UnsupportedError", "EvalError"]


class PromQLError(Exception):
    """Base class of every error raised by :mod:`monitor.promql`."""


class ParseError(PromQLError):
    """The expression is not valid PromQL (message from the parser, with the expression)."""


class UnsupportedError(PromQLError):
    """The expression is valid PromQL but uses a construct this evaluator does not implement.

    Raised by :meth:`monitor.promql.engine.Engine.compile`, never during evaluation, so a rule
    file using such a construct is refused when it is loaded.

    Attributes
    ----------
    construct : str
        Short name of the refused construct (e.g. ``"function histogram_count"``).
    """

    def __init__(self, construct: str, expr: str = "") -> None:
        self.construct = construct
        self.expr = expr
        where = f" in {expr!r}" if expr else ""
        super().__init__(f"unsupported PromQL construct: {construct}{where}")


class EvalError(PromQLError):
    """A runtime evaluation error, with the same meaning as Prometheus's (e.g. duplicate series)."""
