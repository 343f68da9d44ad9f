"""Lexer and parser for the subset of Go's ``text/template`` used in Prometheus alert rules.

Prometheus renders alert labels and annotations with Go's ``text/template``. To render them the
same way inside the agent, this module re-implements the template grammar (actions, pipelines,
variables, ``if``/``else``/``range``/``with``/``define``/``template``/``block``, comments and
trim markers) following the behaviour of Go 1.19's ``text/template/parse`` (the Go version
Debian's Prometheus 2.42 is built with): the same syntax errors are raised at parse time, such
as an undefined function or variable, so a rule file is refused when it is loaded rather than
producing an ``<error expanding template>`` text when the alert fires.

The tree is evaluated by :mod:`monitor.rules.template`.
"""

from __future__ import annotations

import math

import re
from dataclasses import dataclass, field
from typing import Callable, Union

from monitor.rules.gofmt import go_parse_int, go_quote

__all__ = [
    "TemplateSyntaxError",
    "Node",
    "TextNode",
    "ActionNode",
    "IfNode",
    "RangeNode",
    "WithNode",
    "TemplateCallNode",
    "BreakNode",
    "ContinueNode",
    "PipeNode",
    "CommandNode",
    "FieldNode",
    "VariableNode",
    "ChainNode",
    "IdentifierNode",
    "DotNode",
    "NilNode",
    "BoolNode",
    "NumberNode",
    "StringNode",
    "ListNode",
    "ParsedTemplate",
    "parse_template",
]


class TemplateSyntaxError(ValueError):
    """A template does not parse; the message has Go's format ``template: NAME:LINE: msg``."""


# ----------------------------------------------------------------------------------------
# Tokens
# ----------------------------------------------------------------------------------------
T_TEXT = "text"
T_LEFT = "{{"
T_RIGHT = "}}"
T_SPACE = "space"
T_EOF = "EOF"
T_ASSIGN = "="
T_DECLARE = ":="
T_PIPE = "|"
T_LPAREN = "("
T_RPAREN = ")"
T_CHAR = "char"
T_STRING = "string"
T_RAWSTRING = "raw string"
T_CHARCONST = "char constant"
T_NUMBER = "number"
T_VARIABLE = "variable"
T_FIELD = "field"
T_DOT = "."
T_IDENT = "identifier"
T_BOOL = "bool"
T_NIL = "nil"
T_KEYWORD = "keyword"

KEYWORDS = frozenset(
    ["block", "break", "continue", "define", "else", "end", "if", "range", "template", "with"]
)


@dataclass
class Token:
    typ: str
    val: str
    pos: int  # character offset in the source
    line: int


_SPACE_CHARS = " \t\r\n"


class _Lexer:
    """Go's text/template lexer, producing the whole token list up front."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []
        self.line = 1

    def _emit(self, typ: str, val: str, pos: int) -> None:
        self.tokens.append(Token(typ, val, pos, self.text.count("\n", 0, pos) + 1))

    def _err(self, pos: int, msg: str) -> TemplateSyntaxError:
        line = self.text.count("\n", 0, pos) + 1
        return _LexError(line, msg)

    def run(self) -> list[Token]:
        text = self.text
        n = len(text)
        pos = 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                if pos < n:
                    self._emit(T_TEXT, text[pos:], pos)
                self._emit(T_EOF, "", n)
                return self.tokens
            # Left trim marker "{{- " trims trailing white space of the preceding text.
            left_trim = text.startswith("-", start + 2) and start + 3 < n and text[start + 3] in _SPACE_CHARS
            chunk = text[pos:start]
            if left_trim:
                chunk = chunk.rstrip(_SPACE_CHARS)
            if chunk:
                self._emit(T_TEXT, chunk, pos)
            p = start + 2
            if left_trim:
                p += 2
            # Comments.
            if text.startswith("/*", p):
                end = text.find("*/", p + 2)
                if end < 0:
                    raise self._err(p, "unclosed comment")
                q = end + 2
                right_trim = False
                if text.startswith(" -}}", q) or (q < n and text[q] in _SPACE_CHARS and text.startswith("-}}", q + 1)):
                    right_trim = True
                    q += 2
                if not text.startswith("}}", q):
                    raise self._err(q, "comment ends before closing delimiter")
                pos = q + 2
                if right_trim:
                    while pos < n and text[pos] in _SPACE_CHARS:
                        pos += 1
                continue
            self._emit(T_LEFT, "{{", start)
            pos, right_trim = self._inside(p)
            if right_trim:
                while pos < n and text[pos] in _SPACE_CHARS:
                    pos += 1

    def _at_right(self, p: int) -> tuple[bool, bool]:
        text = self.text
        if p + 1 < len(text) and text[p] in _SPACE_CHARS and text[p + 1] == "-" and text.startswith("}}", p + 2):
            return True, True
        if text.startswith("}}", p):
            return True, False
        return False, False

    def _inside(self, p: int) -> tuple[int, bool]:
        """Lex one action starting at ``p``; return the position after ``}}`` and trim flag."""
        text = self.text
        n = len(text)
        depth = 0
        while True:
            is_right, trim = self._at_right(p)
            if is_right:
                if depth != 0:
                    raise self._err(p, "unclosed left paren")
                if trim:
                    p += 2
                self._emit(T_RIGHT, "}}", p)
                return p + 2, trim
            if p >= n:
                raise self._err(p, "unclosed action")
            c = text[p]
            if c in _SPACE_CHARS:
                # Not at " -}}" (checked above): consume white space up to a trim marker.
                q = p + 1
                while q < n and text[q] in _SPACE_CHARS and not self._at_right(q)[1]:
                    q += 1
                self._emit(T_SPACE, text[p:q], p)
                p = q
                continue
            if c == "=":
                self._emit(T_ASSIGN, "=", p)
                p += 1
            elif c == ":":
                if not text.startswith(":=", p):
                    raise self._err(p, "expected :=")
                self._emit(T_DECLARE, ":=", p)
                p += 2
            elif c == "|":
                self._emit(T_PIPE, "|", p)
                p += 1
            elif c == '"':
                q = p + 1
                while True:
                    if q >= n or text[q] == "\n":
                        raise self._err(p, "unterminated quoted string")
                    if text[q] == "\\":
                        q += 2
                        continue
                    if text[q] == '"':
                        break
                    q += 1
                self._emit(T_STRING, text[p : q + 1], p)
                p = q + 1
            elif c == "`":
                q = text.find("`", p + 1)
                if q < 0:
                    raise self._err(p, "unterminated raw quoted string")
                self._emit(T_RAWSTRING, text[p : q + 1], p)
                p = q + 1
            elif c == "'":
                q = p + 1
                while True:
                    if q >= n or text[q] == "\n":
                        raise self._err(p, "unterminated character constant")
                    if text[q] == "\\":
                        q += 2
                        continue
                    if text[q] == "'":
                        break
                    q += 1
                self._emit(T_CHARCONST, text[p : q + 1], p)
                p = q + 1
            elif c == "$":
                q = p + 1
                while q < n and (text[q].isalnum() or text[q] == "_"):
                    q += 1
                self._emit(T_VARIABLE, text[p:q], p)
                p = q
                self._check_terminator(p)
            elif c == "." and p + 1 < n and text[p + 1].isdigit():
                p = self._number(p)
            elif c == ".":
                q = p + 1
                while q < n and (text[q].isalnum() or text[q] == "_"):
                    q += 1
                if q == p + 1:
                    self._emit(T_DOT, ".", p)
                else:
                    self._emit(T_FIELD, text[p:q], p)
                p = q
                self._check_terminator(p)
            elif c in "+-" or c.isdigit():
                p = self._number(p)
            elif c.isalpha() or c == "_":
                q = p
                while q < n and (text[q].isalnum() or text[q] == "_"):
                    q += 1
                word = text[p:q]
                if word in KEYWORDS:
                    self._emit(T_KEYWORD, word, p)
                elif word in ("true", "false"):
                    self._emit(T_BOOL, word, p)
                elif word == "nil":
                    self._emit(T_NIL, word, p)
                else:
                    self._emit(T_IDENT, word, p)
                p = q
                self._check_terminator(p)
            elif c == "(":
                depth += 1
                self._emit(T_LPAREN, "(", p)
                p += 1
            elif c == ")":
                depth -= 1
                if depth < 0:
                    raise self._err(p, "unexpected right paren")
                self._emit(T_RPAREN, ")", p)
                p += 1
            elif c.isascii() and c.isprintable():
                self._emit(T_CHAR, c, p)
                p += 1
            else:
                raise self._err(p, f"unrecognized character in action: {_unicode_repr(c)}")

    def _check_terminator(self, p: int) -> None:
        text = self.text
        if p >= len(text):
            return
        c = text[p]
        if c in _SPACE_CHARS or c in ".,|:)(" or text.startswith("}}", p):
            return
        raise self._err(p, f"bad character {_unicode_repr(c)}")

    _NUM_RE = re.compile(
        r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?"
        r"|0[oO][0-7_]+|0[bB][01_]+"
        r"|(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9_]+)?)i?"
    )

    def _number(self, p: int) -> int:
        m = self._NUM_RE.match(self.text, p)
        if m is None or m.end() == p or self.text[m.end() - 1] in "+-":
            raise self._err(p, f"bad number syntax: {self.text[p:p + 1]!r}")
        q = m.end()
        if q < len(self.text) and (self.text[q].isalnum()):
            raise self._err(p, f"bad number syntax: {self.text[p:q + 1]!r}")
        self._emit(T_NUMBER, self.text[p:q], p)
        return q


class _LexError(TemplateSyntaxError):
    def __init__(self, line: int, msg: str) -> None:
        self.line = line
        self.msg = msg
        super().__init__(msg)


def _unicode_repr(c: str) -> str:
    return f"U+{ord(c):04X} {c!r}".replace('"', "'")


# ----------------------------------------------------------------------------------------
# Nodes
# ----------------------------------------------------------------------------------------
@dataclass
class Node:
    pos: int


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass
class TextNode(Node):
    text: str = ""


@dataclass
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class BoolNode(Node):
    value: bool = False

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass
class NumberNode(Node):
    text: str = ""
    is_int: bool = False
    is_float: bool = False
    int_value: int = 0
    float_value: float = 0.0
    is_char: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass
class StringNode(Node):
    quoted: str = ""
    text: str = ""

    def __str__(self) -> str:
        return self.quoted


@dataclass
class FieldNode(Node):
    ident: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass
class VariableNode(Node):
    ident: list[str] = field(default_factory=list)  # ident[0] is "$name"

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass
class IdentifierNode(Node):
    ident: str = ""

    def __str__(self) -> str:
        return self.ident


@dataclass
class ChainNode(Node):
    node: Node | None = None
    fields: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        base = str(self.node)
        if isinstance(self.node, PipeNode):
            base = "(" + base + ")"
        return base + "".join("." + f for f in self.fields)


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        parts = []
        for a in self.args:
            s = str(a)
            if isinstance(a, PipeNode):
                s = "(" + s + ")"
            parts.append(s)
        return " ".join(parts)


@dataclass
class PipeNode(Node):
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


@dataclass
class ActionNode(Node):
    pipe: PipeNode | None = None


@dataclass
class _BranchNode(Node):
    pipe: PipeNode | None = None
    body: ListNode | None = None
    else_body: ListNode | None = None


@dataclass
class IfNode(_BranchNode):
    pass


@dataclass
class RangeNode(_BranchNode):
    pass


@dataclass
class WithNode(_BranchNode):
    pass


@dataclass
class TemplateCallNode(Node):
    name: str = ""
    pipe: PipeNode | None = None


@dataclass
class BreakNode(Node):
    pass


@dataclass
class ContinueNode(Node):
    pass


ArgNode = Union[FieldNode, VariableNode, ChainNode, IdentifierNode, DotNode, NilNode, BoolNode, NumberNode, StringNode, PipeNode]


@dataclass
class ParsedTemplate:
    """A parsed template: its main tree, its ``define``d templates and the source text."""

    name: str
    root: ListNode
    defines: dict[str, ListNode]
    text: str

    def functions_used(self) -> set[str]:
        """Names of every function the template calls (for capability checks)."""
        found: set[str] = set()

        def visit(n: object) -> None:
            if isinstance(n, IdentifierNode):
                found.add(n.ident)
            elif isinstance(n, ListNode):
                for c in n.nodes:
                    visit(c)
            elif isinstance(n, ActionNode):
                visit(n.pipe)
            elif isinstance(n, _BranchNode):
                visit(n.pipe)
                visit(n.body)
                visit(n.else_body)
            elif isinstance(n, TemplateCallNode):
                visit(n.pipe)
            elif isinstance(n, PipeNode):
                for c in n.cmds:
                    visit(c)
            elif isinstance(n, CommandNode):
                for a in n.args:
                    visit(a)
            elif isinstance(n, ChainNode):
                visit(n.node)

        visit(self.root)
        for body in self.defines.values():
            visit(body)
        return found


# ----------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}


def go_unquote(s: str) -> str:
    """Unquote a Go string or character literal (``"..."``, ``'...'`` or a raw ```...```)."""
    if s.startswith("`"):
        return s[1:-1].replace("\r", "")
    quote = s[0]
    body = s[1:-1]
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            if c == quote:
                raise ValueError("invalid syntax")
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= n:
            raise ValueError("invalid syntax")
        e = body[i]
        if e in _ESCAPES:
            if (e == "'" and quote == '"') or (e == '"' and quote == "'"):
                raise ValueError("invalid syntax")
            out.append(_ESCAPES[e])
            i += 1
        elif e == "x":
            out.append(chr(int(body[i + 1 : i + 3], 16)))
            i += 3
        elif e == "u":
            out.append(chr(int(body[i + 1 : i + 5], 16)))
            i += 5
        elif e == "U":
            out.append(chr(int(body[i + 1 : i + 9], 16)))
            i += 9
        elif e in "01234567":
            out.append(chr(int(body[i : i + 3], 8)))
            i += 3
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


def _parse_number(tok: Token) -> NumberNode:
    text = tok.val
    node = NumberNode(tok.pos, text=text)
    if tok.typ == T_CHARCONST:
        try:
            s = go_unquote(text)
        except ValueError:
            raise _ParseErr(tok, f"malformed character constant: {text}")
        if len(s) != 1:
            raise _ParseErr(tok, f"malformed character constant: {text}")
        node.is_int = node.is_float = node.is_char = True
        node.int_value = ord(s)
        node.float_value = float(ord(s))
        return node
    if text.endswith("i"):
        raise _ParseErr(tok, f"complex constants are not supported: {text}")
    clean = text.replace("_", "")
    iv = go_parse_int(text)
    if iv is not None:
        node.is_int = True
        node.int_value = iv
        node.is_float = True
        node.float_value = float(iv)
        return node
    try:
        if clean.lower().lstrip("+-").startswith("0x"):
            fv = float.fromhex(clean)
        else:
            fv = float(clean)
    except (ValueError, OverflowError):
        raise _ParseErr(tok, f"illegal number syntax: {go_quote(text)}")
    if not math.isfinite(fv):  # Go's ParseFloat fails with ErrRange (an OverflowError crashed the loader)
        raise _ParseErr(tok, f"illegal number syntax: {go_quote(text)}")
    node.is_float = True
    node.float_value = fv
    if fv == int(fv) and abs(fv) < 2**63 and not any(ch in clean for ch in ".eEpP"):
        node.is_int = True
        node.int_value = int(fv)
    return node


class _ParseErr(Exception):
    def __init__(self, tok: Token | None, msg: str, line: int | None = None) -> None:
        self.tok = tok
        self.msg = msg
        self.line = line if line is not None else (tok.line if tok else 0)
        super().__init__(msg)


class _Parser:
    def __init__(self, name: str, tokens: list[Token], has_func: Callable[[str], bool]) -> None:
        self.name = name
        self.tokens = tokens
        self.i = 0
        self.has_func = has_func
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.defines: dict[str, ListNode] = {}

    # -- token helpers ------------------------------------------------------------------
    def next(self) -> Token:
        t = self.tokens[self.i]
        if self.i < len(self.tokens) - 1:
            self.i += 1
        return t

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next_non_space(self) -> Token:
        t = self.next()
        while t.typ == T_SPACE:
            t = self.next()
        return t

    def peek_non_space(self) -> Token:
        t = self.next_non_space()
        self.backup()
        return t

    def unexpected(self, tok: Token, context: str) -> _ParseErr:
        if tok.typ == T_EOF:
            return _ParseErr(tok, f"unexpected EOF in {context}")
        desc = _token_desc(tok)
        return _ParseErr(tok, f"unexpected {desc} in {context}")

    def expect(self, typ: str, context: str) -> Token:
        t = self.next_non_space()
        if t.typ != typ:
            raise self.unexpected(t, context)
        return t

    # -- grammar -------------------------------------------------------------------------
    def parse(self) -> ListNode:
        root = ListNode(0)
        while self.peek().typ != T_EOF:
            if self.peek().typ == T_LEFT:
                save = self.i
                self.next()
                if self.next_non_space().typ == T_KEYWORD and self.tokens[self.i - 1].val == "define":
                    self.parse_definition()
                    continue
                self.i = save
            node = self.text_or_action()
            if isinstance(node, (_EndMarker, _ElseMarker)):
                raise _ParseErr(node.tok, f"unexpected {node.word}")
            root.nodes.append(node)
        return root

    def parse_definition(self) -> None:
        name_tok = self.next_non_space()
        if name_tok.typ not in (T_STRING, T_RAWSTRING):
            raise self.unexpected(name_tok, "define clause")
        name = go_unquote(name_tok.val)
        self.expect(T_RIGHT, "define clause")
        saved_vars = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        if not isinstance(end, _EndMarker):
            raise _ParseErr(end.tok, f"unexpected {end.word} in define clause")
        self.vars = saved_vars
        self.defines[name] = body

    def item_list(self) -> tuple[ListNode, "_EndMarker | _ElseMarker"]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != T_EOF:
            node = self.text_or_action()
            if isinstance(node, (_EndMarker, _ElseMarker)):
                return lst, node
            lst.nodes.append(node)
        raise _ParseErr(self.peek(), "unexpected EOF")

    def text_or_action(self) -> "Node | _EndMarker | _ElseMarker":
        t = self.next_non_space()
        if t.typ == T_TEXT:
            return TextNode(t.pos, text=t.val)
        if t.typ == T_LEFT:
            return self.action()
        raise self.unexpected(t, "input")

    def action(self) -> "Node | _EndMarker | _ElseMarker":
        t = self.next_non_space()
        if t.typ == T_KEYWORD:
            kw = t.val
            if kw == "block":
                return self.block_control(t)
            if kw == "break":
                return self.break_control(t, BreakNode, "break")
            if kw == "continue":
                return self.break_control(t, ContinueNode, "continue")
            if kw == "else":
                return self.else_control(t)
            if kw == "end":
                self.expect(T_RIGHT, "end")
                return _EndMarker(t)
            if kw == "if":
                return self.control(t, IfNode, "if")
            if kw == "range":
                self.range_depth += 1
                try:
                    return self.control(t, RangeNode, "range")
                finally:
                    self.range_depth -= 1
            if kw == "template":
                return self.template_control(t)
            if kw == "with":
                return self.control(t, WithNode, "with")
            raise self.unexpected(t, "command")
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, pipe=self.pipeline("command", T_RIGHT))

    def break_control(self, t: Token, cls: type, word: str) -> Node:
        tok = self.next_non_space()
        if tok.typ != T_RIGHT:
            raise self.unexpected(tok, f"{{{{{word}}}}}")
        if self.range_depth == 0:
            raise _ParseErr(t, f"{{{{{word}}}}} outside {{{{range}}}}")
        return cls(t.pos)

    def else_control(self, t: Token) -> "_ElseMarker":
        peek = self.peek_non_space()
        if peek.typ == T_KEYWORD and peek.val == "if":
            # "{{else if ...}}" is "{{else}}{{if ...}}" with a shared {{end}}.
            return _ElseMarker(t, chained=True)
        if peek.typ == T_KEYWORD and peek.val == "with":
            raise _ParseErr(peek, "{{else with}} is not supported (Go 1.23 syntax; Prometheus 2.42 is built with Go 1.19)")
        self.expect(T_RIGHT, "else")
        return _ElseMarker(t, chained=False)

    def control(self, t: Token, cls: type, context: str) -> Node:
        mark = len(self.vars)
        try:
            pipe = self.pipeline(context, T_RIGHT)
            body, nxt = self.item_list()
            else_body = None
            if isinstance(nxt, _ElseMarker):
                if nxt.chained and context == "if":
                    if_tok = self.next_non_space()  # consume "if"
                    else_body = ListNode(if_tok.pos)
                    else_body.nodes.append(self.control(if_tok, IfNode, "if"))
                    # The nested if consumed the shared {{end}}.
                    return cls(t.pos, pipe=pipe, body=body, else_body=else_body)
                if nxt.chained:
                    raise _ParseErr(nxt.tok, f"unexpected else if in {context}")
                else_body, end = self.item_list()
                if not isinstance(end, _EndMarker):
                    raise _ParseErr(end.tok, "expected end; found {{else}}")
            return cls(t.pos, pipe=pipe, body=body, else_body=else_body)
        finally:
            del self.vars[mark:]

    def block_control(self, t: Token) -> Node:
        context = "block clause"
        name_tok = self.next_non_space()
        if name_tok.typ not in (T_STRING, T_RAWSTRING):
            raise self.unexpected(name_tok, context)
        name = go_unquote(name_tok.val)
        pipe = self.pipeline(context, T_RIGHT)
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _EndMarker):
            raise _ParseErr(end.tok, f"unexpected {end.word} in {context}")
        self.defines[name] = body
        return TemplateCallNode(t.pos, name=name, pipe=pipe)

    def template_control(self, t: Token) -> Node:
        context = "template clause"
        name_tok = self.next_non_space()
        if name_tok.typ not in (T_STRING, T_RAWSTRING):
            raise self.unexpected(name_tok, context)
        name = go_unquote(name_tok.val)
        pipe = None
        if self.next_non_space().typ != T_RIGHT:
            self.backup()
            pipe = self.pipeline(context, T_RIGHT)
        return TemplateCallNode(t.pos, name=name, pipe=pipe)

    def pipeline(self, context: str, end: str) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos)
        # Declarations.
        while True:
            v = self.peek_non_space()
            if v.typ != T_VARIABLE:
                break
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (T_ASSIGN, T_DECLARE):
                pipe.is_assign = nxt.typ == T_ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, ident=[v.val]))
                if not pipe.is_assign:
                    self.vars.append(v.val)
                elif v.val not in self.vars:
                    raise _ParseErr(v, f"undefined variable {go_quote(v.val)}")
                break
            if nxt.typ == T_CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, ident=[v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T_VARIABLE, T_RIGHT, T_RPAREN):
                        continue
                    raise _ParseErr(nxt, "range can only initialize variables")
                raise _ParseErr(nxt, f"too many declarations in {context}")
            # Not a declaration: rewind to the variable.
            self.i = self.tokens.index(v)
            break
        while True:
            t = self.next_non_space()
            if t.typ == end:
                self.check_pipeline(pipe, context, t)
                return pipe
            if t.typ in (T_BOOL, T_CHARCONST, T_DOT, T_FIELD, T_IDENT, T_NUMBER, T_NIL, T_RAWSTRING, T_STRING, T_VARIABLE, T_LPAREN):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(t, context)

    def check_pipeline(self, pipe: PipeNode, context: str, tok: Token) -> None:
        if not pipe.cmds:
            raise _ParseErr(tok, f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:], start=1):
            first = c.args[0]
            if isinstance(first, (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                raise _ParseErr(tok, f"non executable command in pipeline stage {i + 1}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            op = self.operand()
            if op is not None:
                cmd.args.append(op)
            t = self.next()
            if t.typ == T_SPACE:
                continue
            if t.typ in (T_RIGHT, T_RPAREN):
                self.backup()
            elif t.typ == T_PIPE:
                pass
            else:
                raise self.unexpected(t, "operand")
            break
        if not cmd.args:
            raise _ParseErr(self.peek(), "empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == T_FIELD:
            chain = ChainNode(self.peek().pos, node=node)
            while self.peek().typ == T_FIELD:
                chain.fields.append(self.next().val[1:])
            # Go places a chained field or variable where its second element starts.
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, ident=node.ident + chain.fields)
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, ident=node.ident + chain.fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                raise _ParseErr(self.peek(), f"unexpected . after term {go_quote(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        t = self.next_non_space()
        if t.typ == T_IDENT:
            if not self.has_func(t.val):
                raise _ParseErr(t, f"function {go_quote(t.val)} not defined")
            return IdentifierNode(t.pos, ident=t.val)
        if t.typ == T_DOT:
            return DotNode(t.pos)
        if t.typ == T_NIL:
            return NilNode(t.pos)
        if t.typ == T_VARIABLE:
            if t.val not in self.vars:
                raise _ParseErr(t, f"undefined variable {go_quote(t.val)}")
            return VariableNode(t.pos, ident=[t.val])
        if t.typ == T_FIELD:
            return FieldNode(t.pos, ident=[t.val[1:]])
        if t.typ == T_BOOL:
            return BoolNode(t.pos, value=t.val == "true")
        if t.typ in (T_NUMBER, T_CHARCONST):
            return _parse_number(t)
        if t.typ == T_LPAREN:
            return self.pipeline("parenthesized pipeline", T_RPAREN)
        if t.typ in (T_STRING, T_RAWSTRING):
            try:
                s = go_unquote(t.val)
            except ValueError:
                raise _ParseErr(t, "invalid syntax")
            return StringNode(t.pos, quoted=t.val, text=s)
        self.backup()
        return None


class _EndMarker:
    """``{{end}}`` seen while parsing a list (not a node of the tree)."""

    word = "{{end}}"

    def __init__(self, tok: Token) -> None:
        self.tok = tok


class _ElseMarker:
    """``{{else}}`` (or ``{{else if``, ``chained``) seen while parsing a list."""

    word = "{{else}}"

    def __init__(self, tok: Token, chained: bool) -> None:
        self.tok = tok
        self.chained = chained


def _token_desc(tok: Token) -> str:
    if tok.typ == T_RIGHT:
        return '"}}"'
    if tok.typ == T_LEFT:
        return '"{{"'
    if tok.typ == T_KEYWORD:
        return f"<{tok.val}>"
    if tok.typ == T_SPACE:
        return "space"
    return go_quote(tok.val)


def parse_template(text: str, name: str, has_func: Callable[[str], bool]) -> ParsedTemplate:
    """Parse ``text`` with Go's grammar.

    Parameters
    ----------
    text : str
        The full template text (Prometheus prepends its ``$labels``/``$value`` definitions).
    name : str
        Template name used in error messages (Prometheus uses ``__alert_<alertname>``).
    has_func : callable
        Whether a function name is defined (Go checks this at parse time).

    Raises
    ------
    TemplateSyntaxError
        ``template: NAME:LINE: message`` exactly as Go formats parse errors.
    """
    try:
        tokens = _Lexer(text).run()
        parser = _Parser(name, tokens, has_func)
        root = parser.parse()
    except _LexError as e:
        raise TemplateSyntaxError(f"template: {name}:{e.line}: {e.msg}") from None
    except _ParseErr as e:
        raise TemplateSyntaxError(f"template: {name}:{e.line}: {e.msg}") from None
    return ParsedTemplate(name=name, root=root, defines=parser.defines, text=text)
