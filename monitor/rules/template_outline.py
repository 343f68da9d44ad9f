"""An alert's annotation template as on-call reads it in a runbook: the text the alert carries,
with a named placeholder where the alert fills in a figure.

Why not the template itself: Go template actions (``{{ with printf "..." | query }}``) are not
prose. Why not one placeholder per block: ModelAccuracyDrop's description, which splices in three
queried figures, read "Accuracy fell ‹value› ‹given in the alert› on the labelled predictions"
where the page says "fell 19 percentage points, from 91% on the reference data to 72% on ...".
Here the template's tree is walked as the executor would, with symbols for values: a ``with``
over a query renders its text once, the figure named by the metric it reads; text functions
(``humanizePercentage``, ``reReplaceAll``) apply to the placeholder as to a figure, so that
"‹value› percentage points" reads as the page does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from monitor.rules.template_funcs import re_replace_all
from monitor.rules.template_parse import (
    ActionNode,
    CommandNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    Node,
    PipeNode,
    RangeNode,
    StringNode,
    TextNode,
    VariableNode,
    WithNode,
)

__all__ = ["GIVEN", "outline"]

#: what a block this module cannot follow stands for: the page carries the rendered text
GIVEN = "‹given in the alert›"

#: functions whose result is their argument's text, formatted: the placeholder is left as it is
_FORMATS = frozenset({"humanize", "humanize1024", "humanizeDuration", "humanizeTimestamp", "title", "toUpper",
                      "toLower", "safeHtml", "stripPort", "stripDomain", "printf"})
_COMPARED = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s*(?:[<>]=?|[!=]=)\s*[-+0-9.eE]+)?")


@dataclass(frozen=True)
class _Series:
    """A query's result (``many``) or one sample of it: ``figure`` names what its value is."""

    figure: str
    many: bool = True


@dataclass(frozen=True)
class _Index:
    """A ``range``'s index variable: the outline shows the first element, index 0."""


_Value = Union[str, _Series, _Index, None]


def _figure(expr: str) -> str:
    """What a queried expression's values are, for a placeholder: the metric whose values the
    result carries (``a > 0.1 and b < 0.001`` carries ``a``'s), or the expression without its
    label matchers (``1 - monitor_accuracy_previous_window_ratio``)."""
    bare = " ".join(re.sub(r"\{[^{}]*\}", "", expr).split())
    depth, left = 0, bare
    for m in re.finditer(r"[()]|\s(?:and|unless)\s", bare):
        token = m.group()
        if token in "()":
            depth += 1 if token == "(" else -1
        elif depth == 0:  # a set operator keeps its left side's values
            left = bare[:m.start()]
            break
    compared = _COMPARED.fullmatch(left.strip())
    return compared.group(1) if compared else bare


def _tests_labels(pipe: PipeNode) -> bool:
    """Whether ``pipe`` is a test of the alert's labels against literals only (``eq $labels.x "a"``,
    ``match "re" $labels.x``), so that its else branch is the text for every other value."""
    if len(pipe.cmds) != 1 or pipe.decl:
        return False
    head, *args = pipe.cmds[0].args
    if not isinstance(head, IdentifierNode) or head.ident not in ("eq", "match") or len(args) < 2:
        return False
    return all(isinstance(a, StringNode) or (isinstance(a, VariableNode) and a.ident[0] == "$labels"
                                              and len(a.ident) == 2) for a in args)


class _Outline:
    """One walk of a parsed template (see :func:`outline`)."""

    def __init__(self) -> None:
        self.vars: dict[str, _Value] = {}

    def nodes(self, node: ListNode | None, dot: _Value) -> str:
        return "" if node is None else "".join(self.node(n, dot) for n in node.nodes)

    def node(self, node: Node, dot: _Value) -> str:
        if isinstance(node, TextNode):
            return node.text
        if isinstance(node, ActionNode) and node.pipe is not None:
            value = self.pipe(node.pipe, dot)
            if node.pipe.decl:
                return ""  # an assignment prints nothing
            return self.text(value)
        if isinstance(node, WithNode) and node.pipe is not None:
            value = self.pipe(node.pipe, dot)
            if not isinstance(value, _Series):
                return GIVEN
            return self.nodes(node.body, value)
        if isinstance(node, RangeNode) and node.pipe is not None:
            value = self.pipe(node.pipe, dot)
            if not isinstance(value, _Series):
                return GIVEN
            element = _Series(value.figure, many=False)
            names = [v.ident[0] for v in node.pipe.decl]
            if len(names) == 2:
                self.vars[names[0]], self.vars[names[1]] = _Index(), element
            elif names:
                self.vars[names[0]] = element
            return self.nodes(node.body, element) + "…"  # once, for every series found
        if isinstance(node, IfNode) and node.pipe is not None:
            value = self.pipe(node.pipe, dot)
            if isinstance(value, _Index):  # `if $i`: false on the first element, the one shown
                return self.nodes(node.else_body, dot)
            if node.else_body is not None and _tests_labels(node.pipe):
                # `if eq $labels.detector "pca_drift"`... `else`: the text of the general case (the
                # runbook's first steps say the special ones)
                return self.nodes(node.else_body, dot)
            return GIVEN
        return GIVEN

    def pipe(self, pipe: PipeNode, dot: _Value) -> _Value:
        value: _Value = None
        for i, cmd in enumerate(pipe.cmds):
            value = self.command(cmd, dot, value if i else None, piped=i > 0)
        for var in pipe.decl:
            self.vars[var.ident[0]] = value
        return value

    def command(self, cmd: CommandNode, dot: _Value, prev: _Value, *, piped: bool) -> _Value:
        head, args = cmd.args[0], [self.arg(a, dot) for a in cmd.args[1:]] + ([prev] if piped else [])
        if not isinstance(head, IdentifierNode):
            return self.arg(head, dot)
        fn, last = head.ident, args[-1] if args else None
        if fn == "query" and isinstance(last, str):
            return _Series(_figure(last))
        if fn in ("first", "sortByLabel") and isinstance(last, _Series):
            return _Series(last.figure, many=fn != "first")
        if fn == "value" and isinstance(last, _Series):
            return f"‹{last.figure}›"
        if fn == "label" and len(args) == 2 and isinstance(args[0], str):
            return f"‹{args[0]}›"
        if fn == "humanizePercentage" and isinstance(last, str):
            return last + "%"
        if fn == "reReplaceAll" and len(args) == 3 and all(isinstance(a, str) for a in args):
            return re_replace_all(*args)  # type: ignore[arg-type]
        if fn == "printf" and args and isinstance(args[0], str):
            # a query's text (its verbs stand for labels), or a figure formatted
            return args[0] if not piped or len(args) != 2 else args[1]
        if fn in _FORMATS and isinstance(last, str):
            return last
        return None

    def arg(self, node: Node, dot: _Value) -> _Value:
        if isinstance(node, StringNode):
            return node.text
        if isinstance(node, DotNode):
            return dot
        if isinstance(node, VariableNode):
            name, fields = node.ident[0], node.ident[1:]
            if name in ("$labels", "$externalLabels") and len(fields) == 1:
                return f"‹{fields[0]}›"
            return self.vars.get(name) if not fields else None
        if isinstance(node, FieldNode) and node.ident == ["Value"]:  # the alert's, or a queried sample's
            return "‹value›" if dot is None else f"‹{dot.figure}›" if isinstance(dot, _Series) else None
        if isinstance(node, FieldNode) and isinstance(dot, _Series):
            if len(node.ident) == 2 and node.ident[0] == "Labels":
                return f"‹{node.ident[1]}›"
        if isinstance(node, PipeNode):
            return self.pipe(node, dot)
        return None

    @staticmethod
    def text(value: _Value) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, _Series):
            return f"‹{value.figure}›"
        return "‹…›"


def outline(template: str, alertname: str = "runbook") -> str:
    """``template`` (an annotation of alert ``alertname``) with placeholders for what the alert
    fills in: ``‹value›`` the alert's value, ``‹x›`` its label ``x`` (or the queried series'),
    ``‹metric›`` a figure the alert queries, ``…`` after a text repeated for each series found.

    Raises
    ------
    TemplateSyntaxError
        When ``template`` does not parse (as the rule file would not load).
    """
    from monitor.rules.template import AlertTemplate

    parsed = AlertTemplate.compile(template, alertname)._parsed
    if parsed is None:
        return template
    return _Outline().nodes(parsed.root, None)
