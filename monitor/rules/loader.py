"""Load and validate Prometheus 2.x rule files, with promtool's checks and the agent's own.

Validation follows Prometheus's ``rulefmt`` (what ``promtool check rules`` enforces): unknown
keys, empty or repeated group names, exactly one of ``record``/``alert``, a non-empty parsable
``expr``, no ``for``/``annotations`` on recording rules, valid metric and label names, templates
that parse, and durations in Prometheus's syntax. On top of that, unless ``syntax_only`` is set,
every expression is compiled by the agent's PromQL engine so that a construct it does not
implement is refused now, with the construct named, instead of being evaluated wrongly later.

Every error names the file, the group, the rule (1-based index and name) and what is wrong; all
errors of a file are collected, not just the first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from monitor.promql.engine import Engine
from monitor.promql.errors import ParseError, PromQLError, UnsupportedError
from monitor.rules.duration import DurationError, parse_duration
from monitor.rules.model import AlertingRule, RecordingRule, Rule, RuleError, RuleGroup, RuleLoadError
from monitor.rules.template import AlertTemplate, TemplateSyntaxError
from monitor.rules.yamlnodes import YamlError, YNode, compose_yaml, go_yaml_int

__all__ = [
    "load_rule_files",
    "parse_rule_file",
    "parse_rules_text",
    "find_duplicate_rules",
    "LABEL_NAME_RE",
    "METRIC_NAME_RE",
]

LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

#: A template that starts a YAML value unquoted (``summary: {{ $labels.job }} is down``): YAML reads
#: ``{`` there as the start of a mapping, and the error it gives names no template.
_UNQUOTED_TEMPLATE = re.compile(r":\s+\{\{")
_QUOTE_HINT = (" (a value that starts with a template must be quoted: "
               "summary: \"{{ $labels.job }} is down\")")

_FILE_KEYS = ("groups",)
_GROUP_KEYS = ("name", "interval", "query_offset", "limit", "rules")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


class _Collector:
    """Accumulates errors with the current file/group/rule context."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[RuleError] = []

    def add(self, message: str, node: YNode | None = None, *, group: str | None = None,
            rule_index: int | None = None, rule_name: str | None = None) -> None:
        self.errors.append(RuleError(
            file=self.file, message=message,
            line=node.line if node is not None else 0, col=node.col if node is not None else 0,
            group=group, rule_index=rule_index, rule_name=rule_name,
        ))


def _unknown_keys(node: YNode, allowed: Sequence[str], what: str, err: _Collector, **ctx: object) -> None:
    for k, _v in node.items:
        if k.text not in allowed:
            err.add(f"field {k.text} not found in type {what} (valid fields: {', '.join(allowed)})", k, **ctx)  # type: ignore[arg-type]


def _scalar_text(node: YNode | None, field: str, err: _Collector, **ctx: object) -> str:
    """The text of a scalar field ("" when absent or null); reports lists/maps."""
    if node is None or node.is_null:
        return ""
    if node.kind != "scalar":
        err.add(f"field '{field}' must be a string, got {node.describe()}", node, **ctx)  # type: ignore[arg-type]
        return ""
    return node.text


def _duration(node: YNode | None, field: str, err: _Collector, **ctx: object) -> float:
    text = _scalar_text(node, field, err, **ctx)
    if text == "" and node is not None and not node.is_null and node.kind == "scalar":
        # for: '' (an empty string, not a missing value): Prometheus refuses it
        err.add(f"field '{field}': empty duration string (leave the field out for 0, or write e.g. 5m)", node, **ctx)  # type: ignore[arg-type]
        return 0.0
    if text == "":
        return 0.0
    try:
        return parse_duration(text)
    except DurationError as e:
        err.add(f"field '{field}': {e} (use Prometheus durations such as 30s, 5m, 1h30m)", node, **ctx)  # type: ignore[arg-type]
        return 0.0


def _string_map(node: YNode | None, field: str, err: _Collector, **ctx: object) -> dict[str, str]:
    if node is None or node.is_null:
        return {}
    if node.kind != "map":
        err.add(f"field '{field}' must be a mapping of names to strings, got {node.describe()}", node, **ctx)  # type: ignore[arg-type]
        return {}
    out: dict[str, str] = {}
    for k, v in node.items:
        if v.kind in ("map", "seq"):
            # `{{ $labels.job }}` unquoted is a YAML mapping whose key is a mapping
            hint = _QUOTE_HINT if v.kind == "map" and any(key.kind == "map" for key, _ in v.items) else ""
            err.add(f"{field} {k.text!r}: value must be a string, got {v.describe()}{hint}", v, **ctx)  # type: ignore[arg-type]
            continue
        out[k.text] = v.text
    return out


def parse_rules_text(
    text: str,
    file: str = "<string>",
    *,
    engine: Engine | None = None,
    syntax_only: bool = False,
) -> tuple[list[RuleGroup], list[RuleError]]:
    """Parse and validate the text of one rule file.

    Parameters
    ----------
    text : str
        YAML content.
    file : str
        Name used in error messages and recorded on each group.
    engine : Engine, optional
        PromQL engine used to compile expressions (a default one if omitted).
    syntax_only : bool
        Check only what ``promtool check rules`` checks; do not refuse constructs the agent's
        engine does not implement.

    Returns
    -------
    (groups, errors)
        ``groups`` is only meaningful when ``errors`` is empty.
    """
    err = _Collector(file)
    engine = engine or Engine()
    try:
        root = compose_yaml(text)
    except YamlError as e:
        message = str(e) if not e.line else f"yaml: {e.message}"
        lines = text.split("\n")
        if 0 < e.line <= len(lines) and _UNQUOTED_TEMPLATE.search(lines[e.line - 1]):
            message += _QUOTE_HINT
        err.add(message, None if not e.line else YNode("null", e.line, e.col))
        return [], err.errors
    if root is None or root.is_null:
        return [], []
    if root.kind != "map":
        err.add(f"a rule file must be a mapping with a 'groups' list, got {root.describe()}", root)
        return [], err.errors
    _unknown_keys(root, _FILE_KEYS, "rulefmt.RuleGroups", err)
    groups_node = root.get("groups")
    if groups_node is None or groups_node.is_null:
        return [], err.errors
    if groups_node.kind != "seq":
        err.add(f"'groups' must be a list of groups, got {groups_node.describe()}", groups_node)
        return [], err.errors

    groups: list[RuleGroup] = []
    seen: set[str] = set()
    for gnode in groups_node.children:
        g = _parse_group(gnode, err, engine, syntax_only, seen, file)
        if g is not None:
            groups.append(g)
    return groups, err.errors


def _parse_group(gnode: YNode, err: _Collector, engine: Engine, syntax_only: bool,
                 seen: set[str], file: str) -> RuleGroup | None:
    if gnode.kind != "map":
        err.add(f"each group must be a mapping (name, interval, rules...), got {gnode.describe()}", gnode)
        return None
    name = _scalar_text(gnode.get("name"), "name", err)
    _unknown_keys(gnode, _GROUP_KEYS, "rulefmt.RuleGroup", err, group=name)
    if name == "":
        err.add("Groupname must not be empty", gnode)
    if name in seen:
        err.add(f'groupname: "{name}" is repeated in the same file', gnode)
    seen.add(name)

    interval: float | None = None
    inode = gnode.get("interval")
    if inode is not None and not inode.is_null:
        interval = _duration(inode, "interval", err, group=name) or None
    qo_node = gnode.get("query_offset")
    query_offset = _duration(qo_node, "query_offset", err, group=name) if qo_node is not None else None
    limit = 0
    lnode = gnode.get("limit")
    if lnode is not None and not lnode.is_null:
        try:
            if lnode.quoted:  # text to Go's yaml, whatever it holds: Prometheus refuses `limit: "5"`
                raise ValueError
            limit = go_yaml_int(_scalar_text(lnode, "limit", err, group=name) or "0")
        except ValueError:
            err.add(f"field 'limit' must be an integer (unquoted, at most {2 ** 63 - 1}), got {lnode.describe()}",
                    lnode, group=name)
        # A negative limit is accepted like Prometheus does (its manager only applies limit > 0):
        # refusing it made `monitor rules check` fail files that promtool and Prometheus load.

    rules: list[Rule] = []
    rnode = gnode.get("rules")
    if rnode is not None and not rnode.is_null:
        if rnode.kind != "seq":
            err.add(f"'rules' must be a list of rules, got {rnode.describe()}", rnode, group=name)
        else:
            for i, node in enumerate(rnode.children, start=1):
                rule = _parse_rule(node, i, name, err, engine, syntax_only)
                if rule is not None:
                    rules.append(rule)
    return RuleGroup(name=name, rules=tuple(rules), interval_s=interval, limit=max(limit, 0),
                     query_offset_s=query_offset, file=file)


def _parse_rule(node: YNode, index: int, group: str, err: _Collector, engine: Engine,
                syntax_only: bool) -> Rule | None:
    if node.kind != "map":
        err.add(f"each rule must be a mapping (alert/record, expr...), got {node.describe()}", node,
                group=group, rule_index=index, rule_name="")
        return None
    record_node, alert_node, expr_node = node.get("record"), node.get("alert"), node.get("expr")
    tmp = _Collector(err.file)
    record = _scalar_text(record_node, "record", tmp)
    alert = _scalar_text(alert_node, "alert", tmp)
    name = alert or record
    ctx = {"group": group, "rule_index": index, "rule_name": name}
    for e in tmp.errors:
        err.add(e.message, YNode("null", e.line, e.col) if e.line else None, **ctx)  # type: ignore[arg-type]
    _unknown_keys(node, _RULE_KEYS, "rulefmt.RuleNode", err, **ctx)

    if record and alert:
        err.add("only one of 'record' and 'alert' must be set", record_node, **ctx)  # type: ignore[arg-type]
    if not record and not alert:
        err.add("one of 'record' or 'alert' must be set", record_node or alert_node or node, **ctx)  # type: ignore[arg-type]

    expr = _scalar_text(expr_node, "expr", err, **ctx)
    if expr == "":
        err.add("field 'expr' must be set in rule", expr_node or node, **ctx)  # type: ignore[arg-type]
    else:
        _check_expr(expr, expr_node, err, engine, syntax_only, ctx)

    for_s = _duration(node.get("for"), "for", err, **ctx)
    keep_s = _duration(node.get("keep_firing_for"), "keep_firing_for", err, **ctx)
    labels = _string_map(node.get("labels"), "labels", err, **ctx)
    annotations = _string_map(node.get("annotations"), "annotations", err, **ctx)

    if record:
        if node.get("annotations") is not None and annotations:
            err.add("invalid field 'annotations' in recording rule", record_node, **ctx)  # type: ignore[arg-type]
        if for_s:
            err.add("invalid field 'for' in recording rule", record_node, **ctx)  # type: ignore[arg-type]
        if keep_s:
            err.add("invalid field 'keep_firing_for' in recording rule", record_node, **ctx)  # type: ignore[arg-type]
        if not METRIC_NAME_RE.match(record):
            err.add(f"invalid recording rule name: {record}", record_node, **ctx)  # type: ignore[arg-type]

    for k in labels:
        if not LABEL_NAME_RE.match(k) or k == "__name__":
            err.add(f"invalid label name: {k}", **ctx)  # type: ignore[arg-type]
    for k in annotations:
        if not LABEL_NAME_RE.match(k):
            err.add(f"invalid annotation name: {k}", **ctx)  # type: ignore[arg-type]

    if alert:
        for what, mapping in (("label", labels), ("annotation", annotations)):
            for k, v in mapping.items():
                try:
                    AlertTemplate.compile(v, alert)
                except TemplateSyntaxError as e:
                    err.add(f'{what} "{k}": {e}', **ctx)  # type: ignore[arg-type]
        return AlertingRule(alert=alert, expr=expr, for_s=for_s, keep_firing_for_s=keep_s,
                            labels=labels, annotations=annotations, index=index, line=node.line)
    if record:
        return RecordingRule(record=record, expr=expr, labels=labels, index=index, line=node.line)
    return None


def _check_expr(expr: str, expr_node: YNode | None, err: _Collector, engine: Engine,
                syntax_only: bool, ctx: dict[str, object]) -> None:
    try:
        query = engine.compile(expr)
    except UnsupportedError as e:
        if not syntax_only:
            err.add(f"{e}: the monitor's PromQL evaluator does not implement it; rewrite the "
                    "expression or evaluate this rule in Prometheus", expr_node, **ctx)  # type: ignore[arg-type]
        return
    except ParseError as e:
        err.add(f"could not parse expression: {e}", expr_node, **ctx)  # type: ignore[arg-type]
        return
    except PromQLError as e:  # pragma: no cover - any other compile-time refusal
        err.add(f"could not compile expression: {e}", expr_node, **ctx)  # type: ignore[arg-type]
        return
    if not syntax_only and query.value_type not in ("vector", "scalar"):
        kind = {"matrix": "a range vector", "string": "a string"}.get(query.value_type, query.value_type)
        err.add(f"expression returns {kind}; a rule needs an instant vector or a scalar "
                "(wrap range selectors in a function such as rate() or max_over_time())",
                expr_node, **ctx)  # type: ignore[arg-type]


def parse_rule_file(path: str | os.PathLike[str], *, engine: Engine | None = None,
                    syntax_only: bool = False) -> tuple[list[RuleGroup], list[RuleError]]:
    """Read and validate one rule file; see :func:`parse_rules_text`."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        return [], [RuleError(file=name, message=f"cannot read rule file: {e.strerror or e}")]
    except UnicodeDecodeError as e:
        return [], [RuleError(file=name, message=f"rule file is not valid UTF-8: {e}")]
    return parse_rules_text(text, name, engine=engine, syntax_only=syntax_only)


def load_rule_files(paths: Iterable[str | os.PathLike[str]], *, engine: Engine | None = None,
                    syntax_only: bool = False) -> list[RuleGroup]:
    """Load rule files (in the given order) and return their groups.

    Raises
    ------
    RuleLoadError
        With every error of every file, when any file has one.
    """
    groups, errors = loadable_rule_files(paths, engine=engine, syntax_only=syntax_only)
    if errors:
        raise RuleLoadError(errors)
    return groups


def loadable_rule_files(paths: Iterable[str | os.PathLike[str]], *, engine: Engine | None = None,
                        syntax_only: bool = False) -> tuple[list[RuleGroup], list[RuleError]]:
    """The groups of the files that load (in the given order), and every error of the others:
    what an agent starts with (a file with an error is left out whole, the others evaluated)."""
    engine = engine or Engine()
    groups: list[RuleGroup] = []
    errors: list[RuleError] = []
    for p in paths:
        g, e = parse_rule_file(p, engine=engine, syntax_only=syntax_only)
        if e:
            errors.extend(e)
        else:
            groups.extend(g)
    return groups, errors


def find_duplicate_rules(groups: Sequence[RuleGroup]) -> list[tuple[str, dict[str, str]]]:
    """Rules of one file with the same name and labels (promtool's ``duplicate-rules`` lint).

    Returns each duplicated ``(name, labels)`` once, sorted like promtool.
    """
    keys: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for g in groups:
        for r in g.rules:
            keys.append((r.name, tuple(sorted(r.labels.items()))))
    keys.sort()
    dups: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for prev, cur in zip(keys, keys[1:]):
        if prev == cur and (not dups or dups[-1] != cur):
            dups.append(cur)
    return [(name, dict(lab)) for name, lab in dups]
