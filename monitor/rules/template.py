"""Alert templates: Go ``text/template`` evaluation with Prometheus's data and functions.

An alert's labels and annotations are templates such as
``"{{ $labels.instance }} is at {{ $value | humanizePercentage }}"``. Prometheus prepends the
definitions of ``$labels``, ``$externalLabels``, ``$externalURL`` and ``$value`` and evaluates the
text with Go's engine (option ``missingkey=zero``). :class:`AlertTemplate` does the same with the
parser of :mod:`monitor.rules.template_parse` and the functions of
:mod:`monitor.rules.template_funcs`, so that the rendered text is the text Prometheus would
send, including its ``<error expanding template: ...>`` form when evaluation fails.

Templates are parsed when the rule file is loaded; unknown functions, undefined variables,
syntax errors and functions this engine does not implement are refused then, with Go's message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from monitor.rules.gofmt import go_sprint, go_type_name
from monitor.rules.gotime import DURATION, TIME, GoDuration, GoMethod, GoTime, GoTimeError
from monitor.rules.template_funcs import (
    ANY,
    BOOL,
    FLOAT,
    FUNCS,
    INT,
    QUERY_RESULT,
    SAMPLE,
    STRING,
    UNSUPPORTED_FUNCS,
    VALUE,
    FuncContext,
    FuncError,
    GoStruct,
    QueryResult,
    QuerySample,
    StrMap,
    is_true,
)
from monitor.rules.template_parse import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    ParsedTemplate,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateCallNode,
    TemplateSyntaxError,
    TextNode,
    VariableNode,
    WithNode,
    parse_template,
)

__all__ = [
    "TEMPLATE_ERROR_PREFIX",
    "AlertTemplate",
    "AlertTemplateData",
    "TemplateSyntaxError",
    "TemplateExecError",
    "UnsupportedTemplateError",
    "QueryFn",
    "PROMETHEUS_DEFS",
]

log = logging.getLogger(__name__)

#: How an expansion that failed begins (Prometheus's wording).
TEMPLATE_ERROR_PREFIX = "<error expanding template:"

#: What Prometheus prepends to every alert label and annotation template.
PROMETHEUS_DEFS = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)

#: A query function for ``{{ query "..." }}``: expression -> list of (labels, value).
QueryFn = Callable[[str], Sequence[tuple[Mapping[str, str], float]]]


class TemplateExecError(Exception):
    """Evaluation failed; the message has Go's ``template: NAME:L:C: executing ...`` format."""


class UnsupportedTemplateError(TemplateSyntaxError):
    """The template is valid for Prometheus but uses a function this engine does not render."""


class AlertTemplateData(GoStruct):
    """The ``.`` of an alert template: ``.Labels``, ``.ExternalLabels``, ``.ExternalURL``,
    ``.Value`` (Prometheus's ``AlertTemplateData``)."""

    go_type = "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value float64 }"
    fields = ("Labels", "ExternalLabels", "ExternalURL", "Value")

    def __init__(self, labels: Mapping[str, str], external_labels: Mapping[str, str], external_url: str, value: float) -> None:
        self.Labels = StrMap(labels)
        self.ExternalLabels = StrMap(external_labels)
        self.ExternalURL = external_url
        self.Value = float(value)


_MISSING = object()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _has_func(name: str) -> bool:
    return name in FUNCS or name in UNSUPPORTED_FUNCS


@dataclass
class AlertTemplate:
    """A parsed label or annotation template of an alerting rule.

    Use :meth:`compile` (raises at load time) and :meth:`expand` (never raises).

    Attributes
    ----------
    source : str
        The template text as written in the rule file.
    name : str
        ``__alert_<alertname>``, the name Prometheus gives it (appears in error messages).
    """

    source: str
    name: str
    _parsed: ParsedTemplate | None = field(default=None, repr=False)

    @classmethod
    def compile(cls, source: str, alertname: str) -> AlertTemplate:
        """Parse ``source`` as Prometheus would for alert ``alertname``.

        Raises
        ------
        TemplateSyntaxError
            With Go's message (``template: __alert_X:1: function "foo" not defined``).
        UnsupportedTemplateError
            When the template calls a function this engine refuses (see
            :data:`monitor.rules.template_funcs.UNSUPPORTED_FUNCS`).
        """
        name = "__alert_" + alertname
        if "{{" not in source:
            return cls(source=source, name=name, _parsed=None)
        try:
            parsed = parse_template(PROMETHEUS_DEFS + source, name, _has_func)
        except RecursionError:  # thousands of nested ( in an action: a traceback out of the rule loader
            raise TemplateSyntaxError(f"template: {name}: nested too deeply") from None
        for fn in sorted(parsed.functions_used()):
            if fn in UNSUPPORTED_FUNCS:
                raise UnsupportedTemplateError(
                    f"template: {name}: function {fn!r} is not supported by the monitor's template "
                    f"engine ({UNSUPPORTED_FUNCS[fn]})"
                )
        return cls(source=source, name=name, _parsed=parsed)

    @property
    def is_static(self) -> bool:
        """True when the text has no actions (expansion returns it unchanged)."""
        return self._parsed is None

    def expand(
        self,
        labels: Mapping[str, str],
        value: float,
        *,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        query: QueryFn | None = None,
        url_for_functions: str | None = None,
    ) -> str:
        """Render the template for one alert instance.

        Parameters
        ----------
        labels : mapping
            The alert's labels as returned by the expression (``$labels``).
        value : float
            The sample value (``$value``).
        external_labels, external_url :
            ``$externalLabels`` and ``$externalURL``.
        query : callable, optional
            Runs an instant query at the evaluation time for ``{{ query "..." }}``.
        url_for_functions : str, optional
            The URL ``{{ externalURL }}``/``{{ pathPrefix }}`` return (Prometheus's
            ``--web.external-url``); ``None`` makes them fail as in promtool.

        Returns
        -------
        str
            The text, or ``<error expanding template: ...>`` as Prometheus renders a failure.
        """
        if self._parsed is None:
            return self.source
        data = AlertTemplateData(labels, external_labels or {}, external_url, value)
        ctx = FuncContext(query=query, external_url=url_for_functions)
        try:
            return _Executor(self._parsed, ctx).run(data)
        except TemplateExecError as e:
            return f"{TEMPLATE_ERROR_PREFIX} error executing template {self.name}: {e}>"
        except Exception as e:  # noqa: BLE001 - a bug in a template function must not abort the evaluation tick
            log.warning("template %s failed unexpectedly: %r", self.name, e)
            return f"{TEMPLATE_ERROR_PREFIX} error executing template {self.name}: {type(e).__name__}: {e}>"


class _Executor:
    """Walks a parsed template (Go's ``exec.go`` semantics, ``missingkey=zero``)."""

    def __init__(self, tmpl: ParsedTemplate, ctx: FuncContext, depth: int = 0) -> None:
        self.tmpl = tmpl
        self.ctx = ctx
        self.vars: list[list[Any]] = []
        self.out: list[str] = []
        self.node: Node | None = None
        self.depth = depth

    # -- errors ----------------------------------------------------------------------------
    def _location(self, node: Node | None) -> tuple[str, str]:
        text = self.tmpl.text
        pos = node.pos if node is not None else 0
        prefix = text[:pos].encode("utf-8")
        line = prefix.count(b"\n") + 1
        nl = prefix.rfind(b"\n")
        col = len(prefix) if nl < 0 else len(prefix) - nl - 1
        # The whole node, as the Go that promtool 2.42 is built with prints it (older Go cut it
        # to 20 characters + "...": the rendered annotations then differed from Prometheus').
        ctx = str(node) if node is not None else ""
        return f"{self.tmpl.name}:{line}:{col}", ctx

    def error(self, msg: str, node: Node | None = None) -> TemplateExecError:
        node = node if node is not None else self.node
        loc, ctx = self._location(node)
        if node is None:
            return TemplateExecError(f"template: {self.tmpl.name}: executing {self.tmpl.name!r}: {msg}".replace("'", '"'))
        return TemplateExecError(f'template: {loc}: executing "{self.tmpl.name}" at <{ctx}>: {msg}')

    # -- variables ------------------------------------------------------------------------
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for v in reversed(self.vars):
            if v[0] == name:
                v[1] = value
                return
        raise self.error(f"undefined variable: {name}")

    def set_top_var(self, n: int, value: Any) -> None:
        self.vars[len(self.vars) - n][1] = value

    def var_value(self, name: str) -> Any:
        for v in reversed(self.vars):
            if v[0] == name:
                return v[1]
        raise self.error(f"undefined variable: {name}")

    # -- walking ------------------------------------------------------------------------------
    def run(self, data: Any) -> str:
        self.push("$", data)
        try:
            self.walk(data, self.tmpl.root)
        except (_Break, _Continue):  # pragma: no cover - parser forbids them outside range
            raise self.error("break/continue outside range")
        except RecursionError:
            raise self.error("exceeded maximum template depth")
        return "".join(self.out)

    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        if isinstance(node, ActionNode):
            assert node.pipe is not None
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(val)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, (IfNode, WithNode)):
            self.walk_if_or_with(dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateCallNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        else:  # pragma: no cover - parser produces no other node
            raise self.error(f"unknown node: {node!r}")

    def print_value(self, val: Any) -> None:
        if val is None:
            self.out.append("<no value>")
        else:
            self.out.append(go_sprint(val))

    def walk_if_or_with(self, dot: Any, node: IfNode | WithNode) -> None:
        mark = self.mark()
        try:
            assert node.pipe is not None
            val = self.eval_pipeline(dot, node.pipe)
            if is_true(val):
                assert node.body is not None
                self.walk(val if isinstance(node, WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        self.node = node
        mark = self.mark()
        try:
            assert node.pipe is not None and node.body is not None
            val = self.eval_pipeline(dot, node.pipe)
            items: list[tuple[Any, Any]]
            if val is None:
                items = []
            elif isinstance(val, dict):
                items = [(k, val[k]) for k in sorted(val)]
            elif isinstance(val, (list, tuple)):
                items = list(enumerate(val))
            else:
                raise self.error(f"range can't iterate over {go_sprint(val)}", node)
            for index, elem in items:
                if node.pipe.decl:
                    if node.pipe.is_assign:
                        self.set_var(node.pipe.decl[0].ident[0], elem)
                    else:
                        self.set_top_var(1, elem)
                if len(node.pipe.decl) > 1:
                    if node.pipe.is_assign:
                        self.set_var(node.pipe.decl[1].ident[0], index)
                    else:
                        self.set_top_var(2, index)
                inner = self.mark()
                try:
                    self.walk(elem, node.body)
                except _Break:
                    break
                except _Continue:
                    pass
                finally:
                    self.pop(inner)
            if not items and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            self.pop(mark)

    def walk_template(self, dot: Any, node: TemplateCallNode) -> None:
        body = self.tmpl.defines.get(node.name)
        if body is None:
            raise self.error(f'template "{node.name}" not defined', node)
        if self.depth >= 100000:
            raise self.error("exceeded maximum template depth (100000)", node)
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        sub = _Executor(self.tmpl, self.ctx, self.depth + 1)
        sub.out = self.out
        sub.push("$", new_dot)
        sub.walk(new_dot, body)

    # -- evaluation ------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        if value is _MISSING:  # pragma: no cover - parser forbids empty pipelines
            value = None
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: Sequence[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.error(f"can't give argument to non-function {args[0]}", args[0])

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.error("nil is not a command", first)
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        raise self.error(f"can't evaluate command {first}", first)  # pragma: no cover

    def ideal_constant(self, n: NumberNode) -> Any:
        text = n.text
        is_hex_int = text.lower().lstrip("+-").startswith("0x") and "p" not in text.lower()
        if n.is_float and not is_hex_int and not n.is_char and any(c in text for c in ".eEpP"):
            return n.float_value
        if n.is_int:
            return n.int_value
        raise self.error(f"{text} overflows int", n)

    def eval_chain_node(self, dot: Any, chain: ChainNode, args: Sequence[Node], final: Any) -> Any:
        self.node = chain
        if isinstance(chain.node, NilNode):
            raise self.error(f"indirection through explicit nil in {chain}", chain)
        assert chain.node is not None
        pipe = self.eval_arg(dot, ANY, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable_node(self, dot: Any, var: VariableNode, args: Sequence[Node], final: Any) -> Any:
        self.node = var
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, ident: Sequence[str], args: Sequence[Node], final: Any) -> Any:
        n = len(ident)
        for i in range(n - 1):
            holder = receiver
            receiver = self.eval_field(dot, ident[i], node, (), _MISSING, receiver)
            if receiver is None and isinstance(holder, dict) and not isinstance(holder, StrMap):
                # A missing key of a map of interface{} (args) is a nil interface, not "no value".
                raise self.error(f"nil pointer evaluating interface {{}}.{ident[i + 1]}")
        return self.eval_field(dot, ident[n - 1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: Node, args: Sequence[Node], final: Any, receiver: Any) -> Any:
        if receiver is None:
            return None
        method = getattr(receiver, "go_methods", {}).get(name)
        if method is not None:
            return self.eval_method(dot, receiver, name, method, args, final)
        has_args = len(args) > 1 or final is not _MISSING
        if isinstance(receiver, dict):
            if has_args:
                raise self.error(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            return getattr(receiver, "zero", None)
        if isinstance(receiver, GoStruct):
            try:
                value = receiver.get_field(name)
            except KeyError:
                raise self.error(f"can't evaluate field {name} in type {receiver.go_type}") from None
            if has_args:
                raise self.error(f"{name} has arguments but cannot be invoked as function")
            return value
        raise self.error(f"can't evaluate field {name} in type {go_type_name(receiver)}")

    def eval_method(self, dot: Any, receiver: Any, name: str, method: GoMethod, args: Sequence[Node], final: Any) -> Any:
        """Call a Go method of a template value (``(toTime $value).Format "15:04"``), with Go's
        checks in Go's order: argument count, then the number of results, then argument types."""
        call_args = list(args[1:])
        num_in = len(call_args) + (0 if final is _MISSING else 1)
        if num_in != len(method.params):
            raise self.error(f"wrong number of args for {name}: want {len(method.params)} got {num_in}")
        if method.results != 1:
            raise self.error(f'can\'t call method/function "{name}" with {method.results} results')
        argv = [self.eval_arg(dot, kind, a) for kind, a in zip(method.params, call_args)]
        if final is not _MISSING:
            argv.append(self.validate_type(final, method.params[-1]))
        try:
            return method.impl(receiver, *argv)
        except GoTimeError as e:
            raise self.error(f"error calling {name}: {e}") from None

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: Sequence[Node], final: Any) -> Any:
        self.node = node
        name = node.ident
        spec = FUNCS.get(name)
        if spec is None:
            raise self.error(f'"{name}" is not a defined function', node)
        call_args = list(args[1:])
        num_in = len(call_args) + (0 if final is _MISSING else 1)
        num_fixed = len(spec.params)
        if spec.variadic is not None:
            if num_in < num_fixed:
                raise self.error(f"wrong number of args for {name}: want at least {num_fixed} got {num_in}", node)
        elif num_in != num_fixed:
            raise self.error(f"wrong number of args for {name}: want {num_fixed} got {num_in}", node)

        if name in ("and", "or"):
            v: Any = None
            for a in call_args:
                v = self.eval_arg(dot, VALUE, a)
                if is_true(v) == (name == "or"):
                    return v
            if final is not _MISSING:
                v = self.validate_type(final, VALUE)
            return v

        argv: list[Any] = []
        for i, a in enumerate(call_args):
            kind = spec.params[i] if i < num_fixed else spec.variadic
            assert kind is not None
            argv.append(self.eval_arg(dot, kind, a))
        if final is not _MISSING:
            kind = spec.params[num_in - 1] if num_in - 1 < num_fixed else spec.variadic
            assert kind is not None
            argv.append(self.validate_type(final, kind))
        try:
            return spec.impl(self.ctx, *argv)
        except FuncError as e:
            raise self.error(f"error calling {name}: {e}", cmd) from None

    def eval_arg(self, dot: Any, kind: str, n: Node) -> Any:
        self.node = n
        if isinstance(n, DotNode):
            return self.validate_type(dot, kind)
        if isinstance(n, NilNode):
            if kind in (ANY, SAMPLE, QUERY_RESULT):
                return None
            raise self.error(f"cannot assign nil to {kind}", n)
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_chain(dot, dot, n, n.ident, [n], _MISSING), kind)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable_node(dot, n, [n], _MISSING), kind)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), kind)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, [n], _MISSING), kind)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain_node(dot, n, [n], _MISSING), kind)
        # Literals: converted to the parameter's type like Go does.
        if kind == BOOL:
            if isinstance(n, BoolNode):
                return n.value
            raise self.error(f"expected bool; found {n}", n)
        if kind == FLOAT:
            if isinstance(n, NumberNode) and n.is_float:
                return n.float_value
            raise self.error(f"expected float; found {n}", n)
        if kind in (INT, DURATION):
            if isinstance(n, NumberNode) and n.is_int:
                return n.int_value if kind == INT else GoDuration(n.int_value)
            raise self.error(f"expected integer; found {n}", n)
        if kind == STRING:
            if isinstance(n, StringNode):
                return n.text
            raise self.error(f"expected string; found {n}", n)
        if kind in (ANY, VALUE):
            if isinstance(n, BoolNode):
                return n.value
            if isinstance(n, NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, StringNode):
                return n.text
        raise self.error(f"can't handle {n} for arg of type {kind}", n)

    def validate_type(self, value: Any, kind: str) -> Any:
        if value is _MISSING:  # pragma: no cover
            value = None
        if value is None:
            if kind in (ANY, VALUE, SAMPLE, QUERY_RESULT):
                return None
            raise self.error(f"invalid value; expected {kind}")
        ok = True
        if kind == STRING:
            ok = isinstance(value, str)
        elif kind == FLOAT:
            ok = isinstance(value, float)
        elif kind == INT:
            ok = go_type_name(value) == INT
        elif kind == DURATION:
            ok = isinstance(value, GoDuration)
        elif kind == TIME:
            if isinstance(value, GoTime) and value.pointer:  # Go dereferences a *time.Time
                value = GoTime(value.ns, local=value.local)
            ok = isinstance(value, GoTime)
        elif kind == BOOL:
            ok = isinstance(value, bool)
        elif kind == SAMPLE:
            ok = isinstance(value, QuerySample)
        elif kind == QUERY_RESULT:
            ok = isinstance(value, QueryResult)
        if not ok:
            got = value.go_type if isinstance(value, GoStruct) else go_type_name(value)
            if isinstance(value, QueryResult):
                got = QUERY_RESULT
            raise self.error(f"wrong type for value; expected {kind}; got {got}")
        return value
