"""The alert state machine of Prometheus (``rules/alerting.go`` of v2.42), with the clock passed in.

Each alerting rule keeps one :class:`Alert` per label set its expression returns:

* a new label set becomes **pending** (``active_at`` = now), or fires at once when ``for`` is 0;
* a pending alert becomes **firing** once it has been active for ``for`` (``fired_at`` = now);
* when its label set disappears, a pending alert is dropped; a firing alert keeps firing for
  ``keep_firing_for`` and then becomes **inactive** (resolved, ``resolved_at`` = now) and is kept
  for 15 minutes so that its resolution is re-sent to Alertmanager;
* a resolved alert whose label set comes back starts over as a new pending alert.

Every firing or resolved alert is (re)sent when it has never been sent, was resolved since its
last send, or was last sent more than ``resend_delay`` ago; each send sets
``valid_until = now + 4 * max(resend_delay, group interval)``, which becomes the ``endsAt`` that
Alertmanager uses to expire the alert if the agent dies.

All times are float seconds of event time: nothing here reads a wall clock.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from monitor.promql.types import METRIC_NAME, Labels, Sample
from monitor.rules.model import AlertingRule
from monitor.rules.template import TEMPLATE_ERROR_PREFIX, AlertTemplate, QueryFn

__all__ = [
    "AlertState",
    "Alert",
    "AlertTransition",
    "AlertingRuleState",
    "RuleEvalError",
    "RESOLVED_RETENTION_S",
    "ALERTS_METRIC",
    "ALERTS_FOR_STATE_METRIC",
]

#: How long a resolved alert is kept (and re-sent as resolved), as in Prometheus.
RESOLVED_RETENTION_S = 15 * 60.0
ALERTS_METRIC = "ALERTS"
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"


class RuleEvalError(Exception):
    """A rule's evaluation failed (query error, duplicate label sets, limit exceeded)."""


class AlertState(str, enum.Enum):
    """State of one alert instance (ordered: inactive < pending < firing)."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"

    @property
    def rank(self) -> int:
        return {"inactive": 0, "pending": 1, "firing": 2}[self.value]


@dataclass
class Alert:
    """One instance of an alerting rule (one label set of its expression's result).

    Attributes
    ----------
    name : str
        The alert name (``alertname`` label).
    state : AlertState
    labels : dict
        Identifying labels: the result series' labels without ``__name__``, plus the rule's
        (templated) labels, plus ``alertname``.
    annotations : dict
        Templated annotations (re-rendered at every evaluation, like Prometheus).
    value : float
        Value of the expression at the last evaluation that returned this label set.
    active_at : float
        When the label set first appeared (start of pending).
    fired_at, resolved_at, last_sent_at, valid_until, keep_firing_since : float or None
        Prometheus's timestamps (``None`` where Go has the zero time).
    group, expr :
        The rule group's name and the rule's expression (for ``generatorURL``).
    """

    name: str
    state: AlertState
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float
    active_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    last_sent_at: float | None = None
    valid_until: float | None = None
    keep_firing_since: float | None = None
    group: str = ""
    expr: str = ""

    @property
    def ends_at(self) -> float | None:
        """What Prometheus sends as ``endsAt``: the resolution time, else ``valid_until``."""
        return self.resolved_at if self.resolved_at is not None else self.valid_until

    def needs_sending(self, ts: float, resend_delay_s: float) -> bool:
        """Prometheus's ``needsSending``: never pending; resolved since last send; or stale."""
        if self.state is AlertState.PENDING:
            return False
        last = self.last_sent_at
        if self.resolved_at is not None and (last is None or _ms(self.resolved_at) > _ms(last)):
            return True
        if last is None:
            return True
        return _ms(last) + _ms(resend_delay_s) < _ms(ts)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe representation (used by ``state_dict`` and replay output)."""
        return {
            "name": self.name,
            "state": self.state.value,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": _json_float(self.value),
            "active_at": self.active_at,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "last_sent_at": self.last_sent_at,
            "valid_until": self.valid_until,
            "keep_firing_since": self.keep_firing_since,
            "group": self.group,
            "expr": self.expr,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Alert:
        """Inverse of :meth:`to_dict`."""

        def opt(k: str) -> float | None:
            v = d.get(k)
            return None if v is None else float(v)  # type: ignore[arg-type]

        return cls(
            name=str(d["name"]),
            state=AlertState(str(d["state"])),
            labels={str(k): str(v) for k, v in dict(d["labels"]).items()},  # type: ignore[call-overload]
            annotations={str(k): str(v) for k, v in dict(d.get("annotations") or {}).items()},  # type: ignore[call-overload]
            value=_from_json_float(d.get("value", 0.0)),
            active_at=float(d["active_at"]),  # type: ignore[arg-type]
            fired_at=opt("fired_at"),
            resolved_at=opt("resolved_at"),
            last_sent_at=opt("last_sent_at"),
            valid_until=opt("valid_until"),
            keep_firing_since=opt("keep_firing_since"),
            group=str(d.get("group", "")),
            expr=str(d.get("expr", "")),
        )


def _ms(t: float) -> int:
    """Seconds -> integer milliseconds. Durations are compared in ms, as Prometheus does with its
    millisecond timestamps: with float seconds near 1.7e9, ``ts - active_at`` can land a few
    hundred nanoseconds short of ``for`` and delay firing by a whole interval."""
    return int(round(t * 1000.0))


def _json_float(v: float) -> float | str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return v


def _from_json_float(v: object) -> float:
    if isinstance(v, str):
        return {"NaN": float("nan"), "+Inf": float("inf"), "-Inf": float("-inf")}.get(v, float("nan"))
    return float(v)  # type: ignore[arg-type]


@dataclass(frozen=True)
class AlertTransition:
    """A change of an alert's state at one evaluation (what ``monitor replay`` writes).

    ``from_state``/``to_state`` are ``"inactive"``, ``"pending"`` or ``"firing"``; a new alert
    with ``for: 0`` goes straight from ``inactive`` to ``firing``; a resolution is
    ``firing -> inactive``; a pending alert whose condition cleared is ``pending -> inactive``.
    """

    time: float
    alertname: str
    from_state: str
    to_state: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float
    group: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-safe dict (one line of ``monitor replay`` output)."""
        return {
            "time": self.time,
            "alertname": self.alertname,
            "from": self.from_state,
            "to": self.to_state,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": _json_float(self.value),
            "group": self.group,
        }


@dataclass
class _Compiled:
    labels: list[tuple[str, AlertTemplate]]
    annotations: list[tuple[str, AlertTemplate]]


@dataclass
class AlertingRuleState:
    """Runtime state of one alerting rule: its active alerts, health and last error.

    Parameters
    ----------
    rule : AlertingRule
    group : str
        Name of the rule's group (reported on alerts and transitions).
    external_labels, external_url :
        ``$externalLabels`` / ``$externalURL`` for templates.
    """

    rule: AlertingRule
    group: str = ""
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    url_for_functions: str | None = None
    active: dict[Labels, Alert] = field(default_factory=dict)
    #: Label and annotation templates that failed to expand (rendered as Prometheus renders them,
    #: ``<error expanding template: ...>``, and counted so that a broken runbook link is seen).
    template_errors: int = 0
    _compiled: _Compiled | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        name = self.rule.alert
        self._compiled = _Compiled(
            labels=[(k, AlertTemplate.compile(v, name)) for k, v in sorted(self.rule.labels.items())],
            annotations=[(k, AlertTemplate.compile(v, name)) for k, v in sorted(self.rule.annotations.items())],
        )

    # ------------------------------------------------------------------------------------
    def _expand(self, tmpl: AlertTemplate, labels: Mapping[str, str], value: float, query: QueryFn | None) -> str:
        if tmpl.is_static:
            return tmpl.source
        text = tmpl.expand(labels, value, external_labels=self.external_labels,
                           external_url=self.external_url, query=query,
                           url_for_functions=self.url_for_functions)
        if text.startswith(TEMPLATE_ERROR_PREFIX):
            self.template_errors += 1
        return text

    def eval(self, ts: float, vector: Iterable[Sample], *, limit: int = 0,
             query: QueryFn | None = None) -> tuple[list[Sample], list[AlertTransition]]:
        """Advance the state machine with the expression's result at ``ts``.

        Parameters
        ----------
        ts : float
            Evaluation time (seconds).
        vector : iterable of Sample
            The expression's result at ``ts``.
        limit : int
            The group's ``limit`` (0 = none): more pending+firing alerts fail the rule and
            clear its state, as in Prometheus.
        query : callable, optional
            For ``{{ query }}`` in templates.

        Returns
        -------
        (samples, transitions)
            ``ALERTS`` and ``ALERTS_FOR_STATE`` samples to write back, and the state changes.

        Raises
        ------
        RuleEvalError
            Duplicate label sets after templating, or ``limit`` exceeded.
        """
        assert self._compiled is not None
        rule = self.rule
        before = {k: a.state for k, a in self.active.items()}
        before_alerts = dict(self.active)
        new: dict[Labels, Alert] = {}
        for smpl in vector:
            lab_map = smpl.labels.to_dict()
            value = float(smpl.value)
            lb = dict(lab_map)
            lb.pop(METRIC_NAME, None)
            for k, t in self._compiled.labels:
                v = self._expand(t, lab_map, value, query)
                if v == "":
                    lb.pop(k, None)
                else:
                    lb[k] = v
            lb["alertname"] = rule.alert
            # Unlike labels, an annotation rendering to "" is kept (Prometheus's ScratchBuilder).
            annotations = {k: self._expand(t, lab_map, value, query) for k, t in self._compiled.annotations}
            key = Labels(lb)
            if key in new:
                raise RuleEvalError("vector contains metrics with the same labelset after applying alert labels")
            new[key] = Alert(name=rule.alert, state=AlertState.PENDING, labels=key.to_dict(),
                             annotations=annotations, active_at=ts, value=value,
                             group=self.group, expr=rule.expr)

        for key, a in new.items():
            cur = self.active.get(key)
            if cur is not None and cur.state is not AlertState.INACTIVE:
                cur.value = a.value
                cur.annotations = a.annotations
                continue
            self.active[key] = a

        out: list[Sample] = []
        num_active = 0
        for key in list(self.active):
            a = self.active[key]
            if key not in new:
                keep_firing = False
                if a.state is AlertState.FIRING and rule.keep_firing_for_s > 0:
                    if a.keep_firing_since is None:
                        a.keep_firing_since = ts
                    if _ms(ts) - _ms(a.keep_firing_since) < _ms(rule.keep_firing_for_s):
                        keep_firing = True
                if a.state is AlertState.PENDING or (
                    a.resolved_at is not None and _ms(ts) - _ms(a.resolved_at) > _ms(RESOLVED_RETENTION_S)
                ):
                    del self.active[key]
                if a.state is not AlertState.INACTIVE and not keep_firing:
                    a.state = AlertState.INACTIVE
                    a.resolved_at = ts
                if not keep_firing:
                    continue
            else:
                a.keep_firing_since = None
            num_active += 1
            if a.state is AlertState.PENDING and _ms(ts) - _ms(a.active_at) >= _ms(rule.for_s):
                a.state = AlertState.FIRING
                a.fired_at = ts
            out.append(self._sample(a, ALERTS_METRIC, 1.0, with_state=True))
            out.append(self._sample(a, ALERTS_FOR_STATE_METRIC, float(math.floor(a.active_at)), with_state=False))

        if limit > 0 and num_active > limit:
            self.active = {}
            raise RuleEvalError(f"exceeded limit of {limit} with {num_active} alerts")

        transitions: list[AlertTransition] = []
        for key, a in self.active.items():
            prev = before.get(key, AlertState.INACTIVE)
            if prev is not a.state:
                transitions.append(self._transition(ts, a, prev, a.state))
        for key, prev in before.items():
            if key not in self.active and prev is not AlertState.INACTIVE:
                # Dropped at this evaluation: a pending alert whose condition cleared.
                transitions.append(self._transition(ts, before_alerts[key], prev, AlertState.INACTIVE))
        transitions.sort(key=lambda tr: sorted(tr.labels.items()))  # deterministic order
        return out, transitions

    def _sample(self, a: Alert, metric: str, value: float, *, with_state: bool) -> Sample:
        d = dict(self.rule.labels)  # un-templated rule labels, overridden by the alert's
        d.update(a.labels)
        d[METRIC_NAME] = metric
        d["alertname"] = self.rule.alert
        if with_state:
            d["alertstate"] = a.state.value
        return Sample(Labels(d), value)

    def _transition(self, ts: float, a: Alert, prev: AlertState, cur: AlertState) -> AlertTransition:
        return AlertTransition(ts, a.name, prev.value, cur.value, dict(a.labels), dict(a.annotations), a.value, self.group)

    def alerts_to_send(self, ts: float, resend_delay_s: float, interval_s: float,
                       now: float | None = None) -> list[Alert]:
        """Mark and return the alerts to (re)send after an evaluation at ``ts``
        (Prometheus's ``sendAlerts``); the returned objects are copies.

        ``now`` (the wall clock, when evaluations follow it) holds back a firing alert whose
        ``endsAt`` would already have passed: an evaluation caught up after a stall of the worker
        longer than ``4 x max(resend_delay, interval)`` sent it so, which Alertmanager reads as
        resolved (a "resolved" notification, then a new page at the next send). It is left
        unsent, sent by the first evaluation recent enough."""
        out: list[Alert] = []
        delta = max(resend_delay_s, interval_s)
        for a in self.active.values():
            if now is not None and a.resolved_at is None and ts + 4 * delta < now:
                continue
            if a.needs_sending(ts, resend_delay_s):
                a.last_sent_at = ts
                a.valid_until = ts + 4 * delta
                out.append(dataclasses.replace(a, labels=dict(a.labels), annotations=dict(a.annotations)))
        return out

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (resolved ones are still kept for re-sending but excluded),
        as Prometheus's ``ActiveAlerts``."""
        return [a for a in self.active.values() if a.resolved_at is None]

    def max_state(self) -> AlertState:
        """The highest state among this rule's alerts."""
        best = AlertState.INACTIVE
        for a in self.active.values():
            if a.state.rank > best.rank:
                best = a.state
        return best

