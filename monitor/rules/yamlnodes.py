"""Strict YAML reading with positions, as Go's ``yaml`` decoders read rule and test files.

Prometheus decodes rule files with ``yaml.v3`` (``KnownFields``) and promtool decodes test files
with ``yaml.v2`` (``UnmarshalStrict``). Both take a scalar's *text* when the target field is a
string (``values: 0x10`` stays ``"0x10"``, ``expr: 1`` becomes ``"1"``), refuse unknown keys and
duplicate keys, and report line numbers. PyYAML's ``safe_load`` resolves scalars to Python types
(``0x10`` -> 16, ``yes`` -> True) and silently keeps the last of duplicated keys, so this module
composes the node tree instead and converts each field according to what the schema expects.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["YamlError", "YNode", "alias_problem", "compose_yaml", "expanded_nodes", "go_yaml_float", "go_yaml_int"]

NULL_TAG = "tag:yaml.org,2002:null"
STR_TAG = "tag:yaml.org,2002:str"
#: What a plain scalar's tag is when none is written (to tell ``!!str 5`` from ``5``).
_IMPLICIT = yaml.resolver.Resolver()


class YamlError(ValueError):
    """The text is not valid YAML (or has a duplicate key); ``line``/``col`` are 1-based."""

    def __init__(self, message: str, line: int = 0, col: int = 0) -> None:
        self.line = line
        self.col = col
        self.message = message
        where = f"line {line}: " if line else ""
        super().__init__(f"yaml: {where}{message}")


@dataclass
class YNode:
    """A YAML node: ``kind`` is ``"map"``, ``"seq"``, ``"scalar"`` or ``"null"``.

    For maps ``items`` keeps ``(key_node, value_node)`` pairs in file order; for sequences
    ``children``; for scalars ``text`` is the scalar exactly as written (after YAML unquoting).
    """

    kind: str
    line: int
    col: int
    text: str = ""
    tag: str = ""
    #: A scalar Go's yaml reads as text only, whatever it holds: written quoted or as a block
    #: (``"5"``, ``'5'``, ``|``) without another tag, or tagged ``!!str`` (``limit: "5"`` and
    #: ``limit: !!str 5`` are refused, as a string, where ``limit: 5`` and ``limit: !!int '5'`` are taken).
    quoted: bool = False
    items: list[tuple["YNode", "YNode"]] = field(default_factory=list)
    children: list["YNode"] = field(default_factory=list)

    @property
    def is_null(self) -> bool:
        return self.kind == "null"

    def keys(self) -> list[str]:
        return [k.text for k, _ in self.items]

    def get(self, key: str) -> "YNode | None":
        for k, v in self.items:
            if k.text == key:
                return v
        return None

    def to_python(self) -> Any:
        """Plain Python value with every scalar as its text (for error messages and dumps)."""
        if self.kind == "map":
            return {k.text: v.to_python() for k, v in self.items}
        if self.kind == "seq":
            return [c.to_python() for c in self.children]
        if self.kind == "null":
            return None
        return self.text

    def describe(self) -> str:
        """Short description of the node's type for messages ("a mapping", "a list"...)."""
        return {"map": "a mapping", "seq": "a list", "null": "empty", "scalar": f"{self.text!r}"}[self.kind]


#: YAML nodes one document may expand to through aliases (``*a`` repeats the node ``&a`` names):
#: nine aliases of nine, eight levels deep, are 43 million (a "billion laughs" file), which hung
#: the rule loader; a rule file of 10,000 rules without aliases is some 100,000.
MAX_NODES = 1_000_000


def alias_problem(node: yaml.Node, what: str) -> tuple[str, str] | None:
    """What is wrong with a document's aliases, and the fix (``what``: the document, to write
    out), or None: an alias inside the node it names, or more than :data:`MAX_NODES` nodes once
    they are expanded (:func:`expanded_nodes`). Rule files and monitor.yaml refuse them alike."""
    nodes = expanded_nodes(node)
    if nodes < 0:
        return "an alias (*name) inside the node it names repeats for ever", "write the node out"
    if nodes > MAX_NODES:
        return (f"the document expands to more than {MAX_NODES:,} nodes through its aliases (*name)",
                f"write {what} out, or use fewer aliases")
    return None


def expanded_nodes(node: yaml.Node, limit: int = MAX_NODES) -> int:
    """The nodes the document rooted at ``node`` expands to through its aliases (a key, a value, an
    item each), counted without expanding them: each distinct node's size once, so that nine
    aliases of nine, eight deep, are counted in milliseconds where converting them took 4 seconds
    up to the limit (and reading monitor.yaml's values walked all 43 million, 15 seconds). At most
    ``limit + 1`` (above the limit); -1 for an alias inside the node it names (``&a [*a]``)."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        n, children_done = stack.pop()
        key = id(n)
        kids = ([c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode)
                else n.value if isinstance(n, yaml.SequenceNode) else [])
        if children_done:
            size[key] = min(1 + sum(size[id(c)] for c in kids), limit + 1)
            open_.discard(key)
        elif key in open_:
            return -1  # reached again below itself: an alias inside the node it names
        elif key not in size:
            open_.add(key)
            stack.append((n, True))
            stack.extend((c, False) for c in kids)
    return size[id(node)]


def _convert(node: yaml.Node, budget: list[int] | None = None) -> YNode:
    """``node`` as a :class:`YNode` tree; YamlError past :data:`MAX_NODES` nodes (``budget``
    counts them down)."""
    if budget is None:
        budget = [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlError(f"the document expands to more than {MAX_NODES:,} nodes through its aliases (*name): write "
                        "the rules out, or use fewer aliases")
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        out = YNode("map", line, col, tag=node.tag)
        seen: dict[str, int] = {}
        for k, v in node.value:
            kn = _convert(k, budget)
            if kn.kind == "scalar" or kn.kind == "null":
                key = kn.text
                if key in seen:
                    raise YamlError(f'mapping key "{key}" already defined at line {seen[key]}', kn.line, kn.col)
                seen[key] = kn.line
            out.items.append((kn, _convert(v, budget)))
        return out
    if isinstance(node, yaml.SequenceNode):
        return YNode("seq", line, col, tag=node.tag, children=[_convert(c, budget) for c in node.value])
    assert isinstance(node, yaml.ScalarNode)
    if node.tag == NULL_TAG and node.style is None:
        return YNode("null", line, col, text="", tag=node.tag)
    text_only = node.tag == STR_TAG and (node.style is not None or _IMPLICIT.resolve(yaml.ScalarNode, node.value,
                                                                                      (True, False)) != STR_TAG)
    return YNode("scalar", line, col, text=str(node.value), tag=node.tag, quoted=text_only)


def compose_yaml(text: str) -> YNode | None:
    """Compose the first YAML document of ``text`` into a :class:`YNode` tree (``None`` if empty).

    Raises
    ------
    YamlError
        On a syntax error or a duplicate mapping key, with its 1-based line and column.
    """
    try:
        loader = yaml.SafeLoader(text)
        try:
            # Like Go's Decoder.Decode: the first document only.
            node = loader.get_node() if loader.check_node() else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        col = mark.column + 1 if mark else 0
        raise YamlError(f"{e.problem or e.context}", line, col) from None
    except yaml.YAMLError as e:
        raise YamlError(str(e)) from None
    except RecursionError:  # thousands of nested [ or {: a traceback (and a sidecar that did not start) before
        raise YamlError("nested too deeply (thousands of levels of lists or mappings)") from None
    if node is None:
        return None
    problem = alias_problem(node, "the rules")  # refused before converting: the conversion took 4 s to reach the limit
    if problem is not None:
        raise YamlError(f"{problem[0]}: {problem[1]}")
    try:
        return _convert(node)
    except RecursionError:  # an alias inside the node it names (&a [*a]) repeats for ever
        raise YamlError("nested too deeply, or an alias (*name) inside the node it names") from None


#: yaml.v2/v3's plain float (``yamlStyleFloat``): a number Go's resolver reads as a float64 once
#: it is no integer (``1.5``, ``1e3``, ``08``), not ``inf``, ``1.`` is one, ``.5`` one too.
_GO_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
#: yaml.v2/v3's special floats (``resolveMap``): these spellings only.
_GO_SPECIAL_FLOATS = {**dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
                      **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
                      **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan)}
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -2 ** 63, 2 ** 63 - 1, 2 ** 64 - 1


def _go_parse_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)`` without its range: a sign, then ``0x``, ``0o``,
    ``0b`` or a leading ``0`` (octal, as ``017`` is 15) or decimal digits; None when it is not one."""
    body = text[1:] if text[:1] in ("+", "-") else text
    low = body.lower()
    if low[:2] in ("0x", "0o", "0b"):
        base, digits = {"x": 16, "o": 8, "b": 2}[low[1]], body[2:]
    elif len(body) > 1 and body[0] == "0":
        base, digits = 8, body[1:]
    else:
        base, digits = 10, body
    if not digits or not digits.isascii() or not digits.isalnum():  # Python's int() takes "_", spaces, signs
        return None
    try:
        value = int(digits, base)
    except ValueError:
        return None
    return -value if text[:1] == "-" else value


def _go_resolve(text: str) -> int | float | None:
    """A plain YAML scalar as Go's yaml (v2 and v3) resolves it to a number: an int (in int64, or
    a uint64 beyond it), a float64, or None (text, a boolean, a timestamp: no number)."""
    if text in _GO_SPECIAL_FLOATS:
        return _GO_SPECIAL_FLOATS[text]
    if not text or text[0] not in "+-.0123456789":
        return None
    if text[0] == ".":
        # strconv.ParseFloat of the text as written: an underscore between digits only (``.5_0``),
        # as Python's float() takes them
        return _finite(text) if _GO_FLOAT.fullmatch(text.replace("_", "")) else None
    plain = text.replace("_", "")
    value = _go_parse_int(plain)
    # ParseInt's range, then ParseUint's (which takes no sign)
    if value is not None and (_INT64_MIN <= value <= _INT64_MAX or 0 < value <= _UINT64_MAX and plain[0] != "+"):
        return value
    if _GO_FLOAT.fullmatch(plain):
        return _finite(plain)
    return None


def _finite(text: str) -> float | None:
    """strconv.ParseFloat's value of a float's text, None where it errs: past the float64 range
    (``1e400``: Go's yaml then reads the scalar as text, refused for a number), or an underscore
    not between digits."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def go_yaml_float(text: str) -> float:
    """Decode a YAML scalar into a float64 like Go's yaml (``1``, ``1.5``, ``1e3``, ``.inf``,
    ``-.Inf``, ``.nan``, ``0x1F``, ``017`` as octal 15); text Go reads as no number (``inf``,
    ``infinity``, ``1_0.5e``) is refused, as there."""
    value = _go_resolve(text.strip())
    if value is None:
        raise ValueError(f"cannot unmarshal {text!r} into float64")
    return float(value)


def go_yaml_int(text: str) -> int:
    """Decode a plain YAML scalar into a Go ``int`` field as yaml.v2/v3 do (Prometheus reads a
    rule group's ``limit`` so): an integer in decimal, ``0x``, ``0o``, ``0b`` or ``0``-octal
    (``017`` is 15), or a float64 up to 2**63, cut towards zero (``5.9`` is 5; a negative one
    beyond int64, ``-.inf``, is Go's conversion of it, the least int64); a float beyond, NaN,
    ``.inf`` and an unsigned integer past int64 are refused, as promtool refuses them. Why: a
    limit of ``5.0`` was refused where promtool takes it, and ``1e20`` taken where it refuses it."""
    value = _go_resolve(text.strip())
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    if isinstance(value, float) and value <= 2.0 ** 63:  # Go compares with float64(MaxInt64), 2**63
        return int(value) if -2.0 ** 63 < value < 2.0 ** 63 else _INT64_MIN
    raise ValueError(f"cannot unmarshal {text!r} into int")
