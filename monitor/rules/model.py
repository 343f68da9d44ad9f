"""Typed rule-file contents: groups, alerting rules, recording rules, and load errors.

These mirror Prometheus 2.x rule files one to one so that a file loaded here can be written back
(``monitor rules export``) and loaded unchanged by Prometheus and ``promtool``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from monitor.rules.duration import format_duration
from monitor.rules.gofmt import go_quote

__all__ = [
    "AlertingRule",
    "RecordingRule",
    "Rule",
    "RuleGroup",
    "RuleError",
    "RuleLoadError",
]


@dataclass(frozen=True)
class RecordingRule:
    """A ``record:`` rule: evaluates ``expr`` and stores the result under a new metric name.

    Attributes
    ----------
    record : str
        The metric name written (a valid Prometheus metric name).
    expr : str
        The PromQL expression.
    labels : mapping
        Labels added to (or overriding those of) every result series.
    index : int
        1-based position of the rule in its group (used in error messages, like Prometheus).
    line : int
        Line of the rule in its file (0 when built in code).
    """

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    index: int = 0
    line: int = 0

    @property
    def name(self) -> str:
        """The rule's name (its metric name)."""
        return self.record

    def to_dict(self) -> dict[str, Any]:
        """The rule as it appears in a Prometheus rule file."""
        out: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            out["labels"] = dict(self.labels)
        return out


@dataclass(frozen=True)
class AlertingRule:
    """An ``alert:`` rule.

    Attributes
    ----------
    alert : str
        The alert name (becomes the ``alertname`` label).
    expr : str
        The PromQL expression; every result series is one alert instance.
    for_s : float
        How long an instance must stay active before it fires (``for``), in seconds.
    keep_firing_for_s : float
        How long a firing instance keeps firing after its condition cleared, in seconds.
    labels, annotations : mapping
        Templates (Go ``text/template``) rendered per instance.
    index, line :
        Position in the group and file (for messages).
    """

    alert: str
    expr: str
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    index: int = 0
    line: int = 0

    @property
    def name(self) -> str:
        """The rule's name (the alert name)."""
        return self.alert

    def to_dict(self) -> dict[str, Any]:
        """The rule as it appears in a Prometheus rule file."""
        out: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_s:
            out["for"] = format_duration(self.for_s)
        if self.keep_firing_for_s:
            out["keep_firing_for"] = format_duration(self.keep_firing_for_s)
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


Rule = Union[AlertingRule, RecordingRule]


@dataclass(frozen=True)
class RuleGroup:
    """A group of rules evaluated sequentially at the same instants.

    Attributes
    ----------
    name : str
        Unique within its file.
    rules : tuple
        The rules in file order (later rules see the output of earlier ones).
    interval_s : float or None
        Evaluation interval; ``None`` means the evaluator's default (Prometheus's global
        ``evaluation_interval``).
    limit : int
        Maximum number of alerts (alerting rules) or series (recording rules) one rule may
        produce; 0 means no limit. Exceeding it fails the rule's evaluation, as in Prometheus.
    query_offset_s : float or None
        Accepted for compatibility with newer Prometheus rule files but not applied: the agent
        evaluates its own freshly sampled metrics, which have no ingestion delay to offset.
    file : str
        The file the group was loaded from ("" when built in code).
    """

    name: str
    rules: tuple[Rule, ...] = ()
    interval_s: float | None = None
    limit: int = 0
    query_offset_s: float | None = None
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The group as it appears in a Prometheus rule file."""
        out: dict[str, Any] = {"name": self.name}
        if self.interval_s:
            out["interval"] = format_duration(self.interval_s)
        if self.query_offset_s is not None:  # not applied by the agent, but the Prometheus it is exported to does
            out["query_offset"] = format_duration(self.query_offset_s)
        if self.limit:
            out["limit"] = self.limit
        out["rules"] = [r.to_dict() for r in self.rules]
        return out


@dataclass(frozen=True)
class RuleError:
    """One problem found in a rule file.

    ``str()`` gives Prometheus's format, e.g.
    ``rules.yml: 7:15: group "api", rule 1, "HighErrorRate": could not parse expression: ...``.
    """

    file: str
    message: str
    line: int = 0
    col: int = 0
    group: str | None = None
    rule_index: int | None = None
    rule_name: str | None = None
    lint: bool = False

    def __str__(self) -> str:
        parts = [self.file + ":"] if self.file else []
        if self.line:
            parts.append(f"{self.line}:{self.col}:")
        if self.group is not None:
            where = f"group {go_quote(self.group)}"
            if self.rule_index is not None:
                where += f", rule {self.rule_index}, {go_quote(self.rule_name or '')}"
            parts.append(where + ":")
        parts.append(self.message)
        return " ".join(parts)


class RuleLoadError(ValueError):
    """A rule file (or several) could not be loaded; ``errors`` lists every problem found."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))
