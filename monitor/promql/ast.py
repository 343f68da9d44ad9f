"""The evaluator's own expression tree, built from the ``promql_parser`` AST.

Why a second tree: the parser's objects are Rust-backed, slow to traverse attribute by attribute
and awkward to cache against. Converting once at compile time gives small frozen dataclasses with
milliseconds already computed, compiled label matchers, resolved operator names and a static
result type per node, and it is the single place where unsupported constructs are refused
(:class:`~monitor.promql.errors.UnsupportedError`), so evaluation never meets one.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from monitor.promql.errors import ParseError, PromQLError, UnsupportedError
from monitor.promql.matchers import LabelMatcher, MatchOp
from monitor.promql.types import METRIC_NAME

__all__ = [
    "Node",
    "NumberLit",
    "StringLit",
    "VectorSel",
    "MatrixSel",
    "Subquery",
    "Unary",
    "Binary",
    "Aggregate",
    "Call",
    "At",
    "parse_expr",
    "FUNCTIONS",
    "AGGREGATIONS",
    "AT_UNSAFE_FUNCTIONS",
    "with_at",
    "walk",
    "unwrap_parens",
    "Paren",
]

SCALAR, VECTOR, MATRIX, STRING = "scalar", "vector", "matrix", "string"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

# name -> (argument types, minimum number of args, return type). Variadic tails are handled by
# ``minimum`` being smaller than ``len(argument types)``.
FUNCTIONS: dict[str, tuple[tuple[str, ...], int, str]] = {
    "abs": ((VECTOR,), 1, VECTOR),
    "absent": ((VECTOR,), 1, VECTOR),
    "absent_over_time": ((MATRIX,), 1, VECTOR),
    "acos": ((VECTOR,), 1, VECTOR),
    "acosh": ((VECTOR,), 1, VECTOR),
    "asin": ((VECTOR,), 1, VECTOR),
    "asinh": ((VECTOR,), 1, VECTOR),
    "atan": ((VECTOR,), 1, VECTOR),
    "atanh": ((VECTOR,), 1, VECTOR),
    "avg_over_time": ((MATRIX,), 1, VECTOR),
    "ceil": ((VECTOR,), 1, VECTOR),
    "changes": ((MATRIX,), 1, VECTOR),
    "clamp": ((VECTOR, SCALAR, SCALAR), 3, VECTOR),
    "clamp_max": ((VECTOR, SCALAR), 2, VECTOR),
    "clamp_min": ((VECTOR, SCALAR), 2, VECTOR),
    "cos": ((VECTOR,), 1, VECTOR),
    "cosh": ((VECTOR,), 1, VECTOR),
    "count_over_time": ((MATRIX,), 1, VECTOR),
    "days_in_month": ((VECTOR,), 0, VECTOR),
    "day_of_month": ((VECTOR,), 0, VECTOR),
    "day_of_week": ((VECTOR,), 0, VECTOR),
    "day_of_year": ((VECTOR,), 0, VECTOR),
    "deg": ((VECTOR,), 1, VECTOR),
    "delta": ((MATRIX,), 1, VECTOR),
    "deriv": ((MATRIX,), 1, VECTOR),
    "exp": ((VECTOR,), 1, VECTOR),
    "floor": ((VECTOR,), 1, VECTOR),
    "histogram_quantile": ((SCALAR, VECTOR), 2, VECTOR),
    "holt_winters": ((MATRIX, SCALAR, SCALAR), 3, VECTOR),
    "hour": ((VECTOR,), 0, VECTOR),
    "idelta": ((MATRIX,), 1, VECTOR),
    "increase": ((MATRIX,), 1, VECTOR),
    "irate": ((MATRIX,), 1, VECTOR),
    "label_replace": ((VECTOR, STRING, STRING, STRING, STRING), 5, VECTOR),
    "label_join": ((VECTOR, STRING, STRING, STRING), 3, VECTOR),
    "last_over_time": ((MATRIX,), 1, VECTOR),
    "ln": ((VECTOR,), 1, VECTOR),
    "log10": ((VECTOR,), 1, VECTOR),
    "log2": ((VECTOR,), 1, VECTOR),
    "max_over_time": ((MATRIX,), 1, VECTOR),
    "min_over_time": ((MATRIX,), 1, VECTOR),
    "minute": ((VECTOR,), 0, VECTOR),
    "month": ((VECTOR,), 0, VECTOR),
    "pi": ((), 0, SCALAR),
    "predict_linear": ((MATRIX, SCALAR), 2, VECTOR),
    "present_over_time": ((MATRIX,), 1, VECTOR),
    "quantile_over_time": ((SCALAR, MATRIX), 2, VECTOR),
    "rad": ((VECTOR,), 1, VECTOR),
    "rate": ((MATRIX,), 1, VECTOR),
    "resets": ((MATRIX,), 1, VECTOR),
    "round": ((VECTOR, SCALAR), 1, VECTOR),
    "scalar": ((VECTOR,), 1, SCALAR),
    "sgn": ((VECTOR,), 1, VECTOR),
    "sin": ((VECTOR,), 1, VECTOR),
    "sinh": ((VECTOR,), 1, VECTOR),
    "sort": ((VECTOR,), 1, VECTOR),
    "sort_desc": ((VECTOR,), 1, VECTOR),
    "sqrt": ((VECTOR,), 1, VECTOR),
    "stddev_over_time": ((MATRIX,), 1, VECTOR),
    "stdvar_over_time": ((MATRIX,), 1, VECTOR),
    "sum_over_time": ((MATRIX,), 1, VECTOR),
    "tan": ((VECTOR,), 1, VECTOR),
    "tanh": ((VECTOR,), 1, VECTOR),
    "time": ((), 0, SCALAR),
    "timestamp": ((VECTOR,), 1, VECTOR),
    "vector": ((SCALAR,), 1, VECTOR),
    "year": ((VECTOR,), 0, VECTOR),
}

AGGREGATIONS = frozenset({
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
    "topk", "bottomk", "quantile", "count_values",
})

# Functions whose result depends on the evaluation time itself; Prometheus's test harness does
# not run its "@ modifier" variants of a test case that uses one of them.
AT_UNSAFE_FUNCTIONS = frozenset({
    "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month",
    "year", "predict_linear", "time", "timestamp",
})

ARITHMETIC_OPS = frozenset({"+", "-", "*", "/", "%", "^"})
COMPARISON_OPS = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPS = frozenset({"and", "or", "unless"})
BINARY_OPS = ARITHMETIC_OPS | COMPARISON_OPS | SET_OPS | {"atan2"}


# ---------------------------------------------------------------------------- nodes
@dataclass(frozen=True)
class At:
    """An ``@`` modifier: a fixed time in ms, or ``start()`` / ``end()`` of the query."""

    kind: str  # "at", "start" or "end"
    ms: int = 0


@dataclass(frozen=True, eq=False)
class Node:
    """Base of all expression nodes; ``type`` is the static PromQL result type.

    ``cache`` holds per-node memoisation used by the evaluator (label-set derived data such as
    matching signatures and group label sets, and the label lists of the previous evaluation).
    Every entry is a pure function of its key, so sharing or discarding it never changes results.
    """

    cache: dict = field(default_factory=dict, compare=False, repr=False, kw_only=True)

    @property
    def type(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class NumberLit(Node):
    val: float

    @property
    def type(self) -> str:
        return SCALAR


@dataclass(frozen=True, eq=False)
class StringLit(Node):
    val: str

    @property
    def type(self) -> str:
        return STRING


@dataclass(frozen=True, eq=False)
class VectorSel(Node):
    name: str
    matchers: tuple[LabelMatcher, ...]
    offset_ms: int = 0
    at: Optional[At] = None

    @property
    def type(self) -> str:
        return VECTOR


@dataclass(frozen=True, eq=False)
class MatrixSel(Node):
    vs: VectorSel
    range_ms: int

    @property
    def type(self) -> str:
        return MATRIX


@dataclass(frozen=True, eq=False)
class Subquery(Node):
    expr: Node
    range_ms: int
    step_ms: int  # 0 = engine default
    offset_ms: int = 0
    at: Optional[At] = None

    @property
    def type(self) -> str:
        return MATRIX


@dataclass(frozen=True, eq=False)
class Unary(Node):
    expr: Node

    @property
    def type(self) -> str:
        return self.expr.type


@dataclass(frozen=True, eq=False)
class Paren(Node):
    expr: Node

    @property
    def type(self) -> str:
        return self.expr.type


@dataclass(frozen=True, eq=False)
class Binary(Node):
    op: str
    lhs: Node
    rhs: Node
    return_bool: bool = False
    card: str = "one-to-one"  # one-to-one, many-to-one, one-to-many, many-to-many
    on: bool = False
    matching: tuple[str, ...] = ()
    has_matching: bool = False  # an explicit on()/ignoring() clause was given
    include: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        if self.lhs.type == SCALAR and self.rhs.type == SCALAR:
            return SCALAR
        return VECTOR


@dataclass(frozen=True, eq=False)
class Aggregate(Node):
    op: str
    expr: Node
    param: Optional[Node] = None
    without: bool = False
    grouping: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        return VECTOR


@dataclass(frozen=True, eq=False)
class Call(Node):
    func: str
    args: tuple[Node, ...]

    @property
    def type(self) -> str:
        return FUNCTIONS[self.func][2]


# ---------------------------------------------------------------------------- parsing
_NEG_AT = re.compile(r"@\s*-\s*((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_SENTINEL_BASE = 7_000_000_000  # seconds; far beyond any real @ value used in rules


def _protect_negative_at(expr: str) -> tuple[str, dict[int, int]]:
    """Replace ``@ -N`` (outside string literals) with positive sentinels.

    The parser binding cannot represent a time before 1970 and aborts on ``@ -10``; the
    sentinel is mapped back to the negative timestamp after parsing.
    """
    if "@" not in expr:
        return expr, {}
    out: list[str] = []
    mapping: dict[int, int] = {}
    i, n = 0, len(expr)
    seg_start = 0
    while i < n:
        c = expr[i]
        if c in "\"'`":
            out.append(_sub_neg_at(expr[seg_start:i], mapping))
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if (expr[j] == "\\" and c != "`") else 1
            out.append(expr[i:j + 1])
            i = seg_start = j + 1
            continue
        i += 1
    out.append(_sub_neg_at(expr[seg_start:], mapping))
    return "".join(out), mapping


#: What a regex matcher's value starts with while the parser binding reads it (see
#: :func:`_literals_for_the_parser`), by operator: the text written in the query, and its value.
#: The mark holds a token drawn once per process: a query can write any value, escapes included, and
#: an equality matcher written as ``l="\\x00=~\\x00v"`` was read as the regex ``v``.
_MARK_TOKEN = secrets.token_hex(8)
_REGEX_MARKS = {op: (f"\\x00{op}{_MARK_TOKEN}\\x00", f"\x00{op}{_MARK_TOKEN}\x00") for op in ("=~", "!~")}


def _literals_for_the_parser(expr: str) -> str:
    """The query with its string literals written so that the parser binding reads them as
    Prometheus does.

    * A backtick string (a raw string: no escapes) becomes the double-quoted string of the same
      text: the binding read escapes in raw strings too and refused ``{path=~`/api/\\d+`}``
      ("unknown escape sequence 'd'").
    * A regex matcher ``l=~"v"`` / ``l!~"v"`` becomes ``l="<mark>v"`` (the mark saying which),
      turned back by the converter (:func:`_regex_matcher`): the binding checks the pattern with
      Rust's regex crate, which refused patterns Go's RE2 takes (``\\Q...\\E``, octal ``\\141``,
      ``\\0``); :mod:`~monitor.promql.goregexp` judges them instead.
    """
    if "`" not in expr and "~" not in expr:
        return expr
    out: list[str] = []
    regex_op: str | None = None  # "=~" / "!~" when the last code written was one
    regex_at = 0  # where its "~" is in ``out`` (found by looking back, a selector of 3,000 regex matchers took 1 s)
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace():
            out.append(c)
            i += 1
            continue
        if c == "#":  # a comment, to the end of the line
            j = expr.find("\n", i)
            j = n if j < 0 else j
            out.append(expr[i:j])
            i = j
            continue
        if c in "\"'`":
            if c == "`":
                j = expr.find("`", i + 1)
                if j < 0:  # unterminated: the parser says so
                    out.append(expr[i:])
                    break
                body = expr[i + 1:j].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                quote, j = '"', j + 1
            else:
                j = i + 1
                while j < n and expr[j] != c:
                    j += 2 if expr[j] == "\\" else 1
                if j >= n:  # unterminated (or its last escape is): the parser says so, not closed here
                    out.append(expr[i:])
                    break
                quote, body, j = c, expr[i + 1:j], j + 1
            if regex_op is not None:  # out[regex_at - 1:regex_at + 1] is the operator's two characters
                out[regex_at - 1:regex_at + 1] = ["=", ""]
                body = _REGEX_MARKS[regex_op][0] + body
            out.append(f"{quote}{body}{quote}")
            regex_op = None
            i = j
            continue
        regex_op = expr[i - 1:i + 1] if c == "~" and i > 0 and expr[i - 1] in "=!" else None
        regex_at = len(out)
        out.append(c)
        i += 1
    return "".join(out)


def _regex_matcher(op: str, value: str) -> tuple[str, str]:
    """A matcher as the query wrote it: ``(op, value)`` with a regex matcher's mark taken off."""
    if op == MatchOp.EQ and value.startswith("\x00"):
        for regex_op, (_, mark) in _REGEX_MARKS.items():
            if value.startswith(mark):
                return regex_op, value[len(mark):]
    return op, value


def _sub_neg_at(segment: str, mapping: dict[int, int]) -> str:
    def repl(m: re.Match[str]) -> str:
        k = len(mapping)
        sentinel_s = _SENTINEL_BASE + k
        ms = round(float(m.group(1)) * 1000)
        if ms > 2 ** 63 - 1:
            raise ParseError(f"timestamp out of bounds for @ modifier: -{m.group(1)}")
        mapping[sentinel_s * 1000] = -int(ms)
        return f"@ {sentinel_s}"

    return _NEG_AT.sub(repl, segment)


def _td_ms(td: Optional[timedelta]) -> int:
    if td is None:
        return 0
    return td // _MS


def _register_extra_functions() -> None:
    import promql_parser as pp

    register = getattr(pp, "register_extra_functions", None)
    if register is None:  # older parser releases: holt_winters stays a parse error
        return
    try:
        register([
            pp.Function("holt_winters", [pp.ValueType.Matrix, pp.ValueType.Scalar,
                                         pp.ValueType.Scalar], pp.ValueType.Vector),
        ])
    except ValueError:
        pass  # already registered, or a parser version that knows it natively


_registered = False


#: The deepest expression :func:`parse_expr` reads, by :func:`nesting_estimate`.
MAX_NESTING = 256
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BINARY = re.compile(r"[-+*/%^]|[=!<>]=|[<>]|\b(?:and|or|unless|atan2)\b")


def nesting_estimate(expr: str) -> int:
    """An upper bound of the depth of ``expr``'s syntax tree, read without parsing it: its binary
    operators (a chain of them nests one level each) plus its deepest parentheses (function
    calls, grouping, ``by (...)``), strings left out."""
    text = _STRINGS.sub('""', expr)
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest + len(_BINARY.findall(text))


def parse_expr(expr: str) -> Node:
    """Parse a PromQL expression into the evaluator's tree.

    Raises
    ------
    ParseError
        On a syntax or static type error.
    UnsupportedError
        On a valid construct this evaluator does not implement.
    """
    global _registered
    import promql_parser as pp

    if not _registered:
        _register_extra_functions()
        _registered = True
    if not isinstance(expr, str) or not expr.strip():
        raise ParseError("empty PromQL expression: give an expression such as 'up == 0'")
    depth = nesting_estimate(expr)
    if depth > MAX_NESTING:
        # the Rust parser overflows its stack (a segmentation fault: the agent gone, no error said)
        # near 5,000 levels, and the converter below raised RecursionError from about 500
        raise ParseError(f"PromQL expression nested too deeply (about {depth} levels of operators and parentheses, at "
                         f"most {MAX_NESTING}): split it into recording rules")
    text, neg_at = _protect_negative_at(_literals_for_the_parser(expr))
    try:
        tree = pp.parse(text)
    except ValueError as exc:
        said = str(exc)
        for _, mark in _REGEX_MARKS.values():  # a matcher's value the parser quotes, as the query wrote it
            said = said.replace(mark, "")
        raise ParseError(f"invalid PromQL {expr!r}: {said}") from exc
    except BaseException as exc:  # the Rust binding raises PanicException (a BaseException)
        if type(exc).__name__ == "PanicException":
            raise ParseError(f"invalid PromQL {expr!r}: parser failure: {exc}") from None
        raise
    try:
        return _Converter(expr, neg_at).convert(tree)
    except PromQLError:
        raise
    except OverflowError as exc:
        raise ParseError(f"invalid PromQL {expr!r}: time or duration out of range ({exc})"
                         ) from None
    except RecursionError:
        raise ParseError("PromQL expression nested too deeply: split it into recording rules") from None
    except BaseException as exc:
        if type(exc).__name__ == "PanicException" or isinstance(exc, (ValueError, TypeError,
                                                                        AttributeError)):
            raise UnsupportedError(f"expression structure ({exc})", expr) from None
        raise


class _Converter:
    def __init__(self, expr: str, neg_at: dict[int, int]) -> None:
        self.expr = expr
        self.neg_at = neg_at

    def unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(what, self.expr)

    def convert(self, e: Any) -> Node:
        import promql_parser as pp

        if isinstance(e, pp.NumberLiteral):
            return NumberLit(float(e.val))
        if isinstance(e, pp.StringLiteral):
            return StringLit(str(e.val))
        if isinstance(e, pp.ParenExpr):
            return Paren(self.convert(e.expr))
        if isinstance(e, pp.UnaryExpr):
            inner = self.convert(e.expr)
            if inner.type not in (SCALAR, VECTOR):
                raise ParseError(f"unary expression only allowed on expressions of type scalar or "
                                 f"instant vector, got {inner.type} in {self.expr!r}")
            return Unary(inner)
        if isinstance(e, pp.VectorSelector):
            return self.vector_selector(e)
        if isinstance(e, pp.MatrixSelector):
            vs = self.vector_selector(e.vector_selector)
            return MatrixSel(vs, _td_ms(e.range))
        if isinstance(e, pp.SubqueryExpr):
            inner = self.convert(e.expr)
            if inner.type != VECTOR:
                raise ParseError(f"subquery is only allowed on instant vector, got {inner.type} "
                                 f"in {self.expr!r}")
            return Subquery(inner, _td_ms(e.range), _td_ms(e.step), _td_ms(e.offset),
                            self.at(e.at))
        if isinstance(e, pp.BinaryExpr):
            return self.binary(e)
        if isinstance(e, pp.AggregateExpr):
            return self.aggregate(e)
        if isinstance(e, pp.Call):
            return self.call(e)
        raise self.unsupported(f"node {type(e).__name__}")

    def at(self, at: Any) -> Optional[At]:
        import promql_parser as pp

        if at is None:
            return None
        if at.type == pp.AtModifierType.Start:
            return At("start")
        if at.type == pp.AtModifierType.End:
            return At("end")
        ms = (at.at - _EPOCH) // _MS
        return At("at", self.neg_at.get(ms, ms))

    def vector_selector(self, e: Any) -> VectorSel:
        if getattr(e.matchers, "or_matchers", None):
            raise self.unsupported("'or' inside label matchers")
        ops = {"Equal": MatchOp.EQ, "NotEqual": MatchOp.NE, "Re": MatchOp.RE,
               "NotRe": MatchOp.NRE}
        matchers: list[LabelMatcher] = []
        name = e.name or ""
        if name:
            matchers.append(LabelMatcher(METRIC_NAME, MatchOp.EQ, name))
        for m in e.matchers.matchers:
            op = ops.get(str(m.op).rsplit(".", 1)[-1])
            if op is None:
                raise self.unsupported(f"matcher operator {m.op}")
            matchers.append(LabelMatcher(m.name, *_regex_matcher(op, m.value)))
        if all(m.matches("") for m in matchers):  # the binding saw the regexes' marks, never empty
            raise ParseError(f"invalid PromQL {self.expr!r}: vector selector must contain at least one non-empty matcher")
        if not name:
            for m in matchers:
                if m.name == METRIC_NAME and m.op == MatchOp.EQ:
                    name = m.value
        return VectorSel(name, tuple(matchers), _td_ms(e.offset), self.at(e.at))

    def binary(self, e: Any) -> Binary:
        import promql_parser as pp

        op = str(e.op).lower()
        if op not in BINARY_OPS:
            raise self.unsupported(f"binary operator {op}")
        lhs, rhs = self.convert(e.lhs), self.convert(e.rhs)
        for side in (lhs, rhs):
            if side.type not in (SCALAR, VECTOR):
                raise ParseError(f"binary expression must contain only scalar and instant vector "
                                 f"types in {self.expr!r}")
        mod = e.modifier
        return_bool = bool(mod.return_bool) if mod is not None else False
        cards = {"OneToOne": "one-to-one", "ManyToOne": "many-to-one",
                 "OneToMany": "one-to-many", "ManyToMany": "many-to-many"}
        card = "many-to-many" if op in SET_OPS else "one-to-one"
        on = False
        matching: tuple[str, ...] = ()
        include: tuple[str, ...] = ()
        has_matching = False
        if mod is not None:
            card = cards.get(str(mod.card).rsplit(".", 1)[-1], card)
            if op in SET_OPS:
                card = "many-to-many"
            if mod.matching is not None:
                has_matching = True
                on = mod.matching.type == pp.LabelModifierType.Include
                matching = tuple(mod.matching.labels)
            include = tuple(mod.group_labels or ())
            fill = getattr(mod, "fill_values", None)
            if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                raise self.unsupported("fill() modifier in vector matching")
        if op in COMPARISON_OPS and lhs.type == SCALAR and rhs.type == SCALAR and not return_bool:
            raise ParseError(f"comparisons between scalars must use BOOL modifier in {self.expr!r}")
        if return_bool and op not in COMPARISON_OPS:
            raise ParseError(f"bool modifier can only be used on comparison operators in "
                             f"{self.expr!r}")
        if op in SET_OPS and (lhs.type == SCALAR or rhs.type == SCALAR):
            raise ParseError(f"set operator {op} not allowed in binary scalar expression in "
                             f"{self.expr!r}")
        return Binary(op, lhs, rhs, return_bool, card, on, matching, has_matching, include)

    def aggregate(self, e: Any) -> Aggregate:
        import promql_parser as pp

        op = str(e.op).lower()
        if op not in AGGREGATIONS:
            raise self.unsupported(f"aggregation {op}")
        inner = self.convert(e.expr)
        if inner.type != VECTOR:
            raise ParseError(f"expected type instant vector in aggregation expression, got "
                             f"{inner.type} in {self.expr!r}")
        param = self.convert(e.param) if e.param is not None else None
        without = False
        grouping: tuple[str, ...] = ()
        if e.modifier is not None:
            without = e.modifier.type == pp.AggModifierType.Without
            grouping = tuple(sorted(set(e.modifier.labels)))
        return Aggregate(op, inner, param, without, grouping)

    def call(self, e: Any) -> Call:
        name = e.func.name
        if name not in FUNCTIONS:
            raise self.unsupported(f"function {name}()")
        args = tuple(self.convert(a) for a in e.args)
        types, minimum, _ = FUNCTIONS[name]
        if name == "label_join":
            if len(args) < 3:
                raise ParseError(f"expected at least 3 argument(s) in call to label_join in "
                                 f"{self.expr!r}")
        elif not (minimum <= len(args) <= len(types)):
            raise ParseError(f"wrong number of arguments in call to {name} in {self.expr!r}")
        return Call(name, args)


# ---------------------------------------------------------------------------- transformations
def with_at(node: Node, at_ms: int) -> Node:
    """Return a copy of ``node`` with ``@ at_ms`` set on every selector and subquery lacking one.

    Selectors inside a subquery are left alone (the subquery itself is pinned instead), exactly
    like the ``@`` variants Prometheus's test harness generates for each test case.
    """
    if isinstance(node, VectorSel):
        return node if node.at is not None else replace(node, at=At("at", at_ms))
    if isinstance(node, MatrixSel):
        return replace(node, vs=with_at(node.vs, at_ms))  # type: ignore[arg-type]
    if isinstance(node, Subquery):
        return node if node.at is not None else replace(node, at=At("at", at_ms))
    if isinstance(node, (Paren, Unary)):
        return replace(node, expr=with_at(node.expr, at_ms))
    if isinstance(node, Binary):
        return replace(node, lhs=with_at(node.lhs, at_ms), rhs=with_at(node.rhs, at_ms),
                       cache={})
    if isinstance(node, Aggregate):
        param = with_at(node.param, at_ms) if node.param is not None else None
        return replace(node, expr=with_at(node.expr, at_ms), param=param, cache={})
    if isinstance(node, Call):
        return replace(node, args=tuple(with_at(a, at_ms) for a in node.args), cache={})
    return node


def walk(node: Node):  # type: ignore[no-untyped-def]
    """Yield every node of the tree (pre-order)."""
    yield node
    if isinstance(node, MatrixSel):
        yield from walk(node.vs)
    elif isinstance(node, (Paren, Unary, Subquery)):
        yield from walk(node.expr)
    elif isinstance(node, Binary):
        yield from walk(node.lhs)
        yield from walk(node.rhs)
    elif isinstance(node, Aggregate):
        if node.param is not None:
            yield from walk(node.param)
        yield from walk(node.expr)
    elif isinstance(node, Call):
        for a in node.args:
            yield from walk(a)


def unwrap_parens(node: Node) -> Node:
    """Strip any number of enclosing parentheses."""
    while isinstance(node, Paren):
        node = node.expr
    return node
