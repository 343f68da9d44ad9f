"""The text of ``monitor.yaml`` read into Python values, with errors that name the line and the fix.

Kept apart from :mod:`monitor.config` (which validates the values) because what goes wrong here is
the file's, not a key's: its encoding, its YAML syntax, a key written twice.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from monitor.config import ConfigError

__all__ = ["read_config_document"]


def read_config_document(path: Path) -> Any:
    """The decoded YAML document of ``path``; :class:`ConfigError` naming the line when the file
    cannot be read, is not UTF-8, is not YAML, or writes one key twice in a mapping."""
    import yaml

    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError("", f"cannot read the config: {err.strerror}", "check the path", str(path)) from None
    text = _decoded(data, path)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, "", str(path))
        _refuse_alias_bombs(node, str(path))
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        quoted = _braced_value(text, mark.line, mark.column) if mark else None
        fix = (f"quote the value: {quoted} (unquoted, YAML reads a {{ as the start of a mapping)" if quoted else
               "fix the YAML syntax (indentation, colons, quotes)")
        raise ConfigError("", f"invalid YAML{where}: {problem}", fix, str(path)) from None
    except RecursionError:  # thousands of nested [ or {: a traceback before, and a sidecar that did not start
        raise ConfigError("", "invalid YAML: nested too deeply (thousands of levels of lists or mappings)",
                          "write the config as plain mappings and lists", str(path)) from None
    finally:
        loader.dispose()


#: a plain value with a brace in it, the whole of it: text before a ``{...}`` group, or after one
_BRACED = re.compile(r"[^\s'\"\[\]{},#&*!|>%@`][^\s,]*\{[^\s,]*|\{[^\s,{}]*\}[^\s,]+")
#: ``key: `` before a value, at the start of a line, after an indentation, ``{`` or ``,``
_KEY = re.compile(r"(?:^|[\s{,])([A-Za-z_][\w.-]*):\s+")


def _braced_value(text: str, line: int, column: int) -> str | None:
    """``key: 'value'``, the value of ``line`` (0-based) around ``column`` where YAML failed,
    quoted, when it is a plain value holding a brace (``path: state/{model}.ckpt`` in a flow
    mapping, ``path: {model}.ckpt``), which YAML reads as a mapping: its error ("expected ',' or
    '}', but got '{'") said only "fix the YAML syntax". None for other errors."""
    lines = text.splitlines()
    if line >= len(lines) or "{" not in lines[line]:
        return None
    source = lines[line]
    key = None  # the last "key: " before the column: the value holding it follows
    for m in _KEY.finditer(source):
        if m.end() > column:
            break
        key = m
    if key is None:
        return None
    value, depth = [], 0
    for ch in source[key.end():]:  # up to a ',', a space or the '}' that closes an enclosing mapping
        depth += (ch == "{") - (ch == "}")
        if depth < 0 or (depth == 0 and ch in ", ") or ch == "#":
            break
        value.append(ch)
    written = "".join(value)
    if depth > 0 or not _BRACED.fullmatch(written) or column > key.end() + len(written):
        return None
    return f"{key.group(1)}: '{written.replace(chr(39), chr(39) * 2)}'"


def _refuse_alias_bombs(node: Any, source: str) -> None:
    """Refuse a document that aliases expand past :data:`~monitor.rules.yamlnodes.MAX_NODES` nodes
    (nine aliases of nine, eight deep: 43 million), counted without expanding them: PyYAML shares
    an alias's value, but the config's checks walk every path, and such a monitor.yaml took 15
    seconds of ``config check``, of a start or of a reload before any error; and one whose alias
    sits inside the node it names (``&a [*a]``), a value without end."""
    from monitor.rules.yamlnodes import alias_problem

    problem = alias_problem(node, "the config")
    if problem is not None:
        raise ConfigError("", f"invalid YAML: {problem[0]}", problem[1], source)


def _decoded(data: bytes, path: Path) -> str:
    """``data`` as UTF-8, or an error naming the line and column of the first byte that is not,
    with the ``iconv`` command that converts the file. A file saved by a Windows editor in its
    ANSI code page read "byte 10: invalid continuation byte", which located nothing."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        start = err.start
    name = shlex.quote(str(path))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError("", "the config is UTF-16, not UTF-8",
                          f"save the file as UTF-8: iconv -f utf-16 -t utf-8 {name} > {name}.utf8 && mv {name}.utf8 {name}",
                          str(path)) from None
    line = data.count(b"\n", 0, start) + 1
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    byte = data[start]
    raise ConfigError("", f"the config is not UTF-8: line {line}, column {column} holds the byte 0x{byte:02x} "
                          f"({bytes([byte]).decode('latin-1')!r} in Latin-1)",
                      f"save the file as UTF-8; from Latin-1: iconv -f latin1 -t utf-8 {name} > {name}.utf8 && "
                      f"mv {name}.utf8 {name}", str(path)) from None


def _refuse_duplicate_keys(node: Any, key: str, source: str, seen_nodes: set[int] | None = None) -> None:
    """Refuse a mapping that writes one key twice, naming its key path and both lines: YAML keeps
    the last silently, so ``window: 1h`` forgotten above ``window: 5m`` (or two ``rules:``
    sections, the second without the alertmanager URLs) ran with a value nobody meant."""
    import yaml

    seen_nodes = set() if seen_nodes is None else seen_nodes
    if id(node) in seen_nodes:  # an alias of a node already walked (or of its own parent)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode) or k.value == "<<":  # a merge key's values may be overridden
                _refuse_duplicate_keys(v, key, source, seen_nodes)
                continue
            name = f"{key}.{k.value}" if key else str(k.value)
            line = k.start_mark.line + 1
            first = lines.get((k.tag, k.value))
            if first is not None:
                where = f"on line {line}" if first == line else f"at lines {first} and {line}"
                raise ConfigError(name, f"is written twice, {where}; YAML would keep only the last one without a word",
                                  "keep one of them (merge what both say into it)", source)
            lines[(k.tag, k.value)] = line
            _refuse_duplicate_keys(v, name, source, seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{key}[{i}]", source, seen_nodes)
