"""Evaluate rule groups on the agent's time-series store, in event time, as Prometheus does.

:class:`RuleEvaluator` owns the runtime state of every rule: the alert state machines, rule
health and the series each rule wrote at its previous evaluation (so that series which disappear
get a stale marker, exactly like Prometheus's rule manager). Groups evaluate at multiples of
their interval: ``evaluate(t)`` runs every group evaluation due in ``(last, t]`` in time order, so
a replay fed at any cadence produces the same alerts as a live run.

Recording-rule results and the ``ALERTS`` / ``ALERTS_FOR_STATE`` series are written back into the
store, where later rules (and templates' ``query``) see them. Firing and resolved alerts are
handed to a notifier (non-blocking) with Prometheus's resend and ``endsAt`` rules.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from monitor.promql import ast as A
from monitor.promql.engine import Engine, Query
from monitor.promql.errors import PromQLError
from monitor.promql.storage import SeriesStore
from monitor.promql.types import METRIC_NAME, Labels, Sample, Scalar
from monitor.rules.alerting import Alert, AlertingRuleState, AlertState, AlertTransition, RuleEvalError
from monitor.rules.gofmt import go_float_E
from monitor.rules.loader import load_rule_files
from monitor.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from monitor.rules.notifier import OutgoingAlert
from monitor.rules.template_funcs import FuncError, table_link

__all__ = [
    "RuleEvaluator",
    "RuleHealth",
    "AlertNotifier",
    "alerts_api_response",
    "format_rfc3339_nano",
    "required_history_s",
]


class AlertNotifier(Protocol):
    """What the evaluator needs from a notifier: a non-blocking ``send``."""

    def send(self, alerts: Sequence[OutgoingAlert]) -> None: ...


@dataclass
class RuleHealth:
    """Health of one rule after its last evaluation (Prometheus's ``/api/v1/rules`` fields).

    ``health`` is ``"unknown"`` before the first evaluation, then ``"ok"`` or ``"err"``.
    """

    group: str
    name: str
    kind: str  # "alerting" or "recording"
    health: str = "unknown"
    last_error: str = ""
    last_evaluation: float | None = None
    state: str = "inactive"  # alerting rules: the highest state of their alerts
    file: str = ""  # the rule file of its group


@dataclass
class _RuleRuntime:
    rule: Rule
    query: Query
    source: str
    alerting: AlertingRuleState | None = None
    wrote: bool = False  # whether the last successful evaluation wrote any series
    health: str = "unknown"
    last_error: str = ""
    last_evaluation: float | None = None


@dataclass
class _GroupRuntime:
    group: RuleGroup
    interval_ms: int
    rules: list[_RuleRuntime] = field(default_factory=list)
    last_eval_ms: int | None = None
    #: The group's last evaluation before the restart its alerts were restored from (seconds):
    #: their pending timers are re-timed against the outage at the first evaluation after it.
    restored_down_at: float | None = None


#: Compiled ``{{ query }}`` expressions of templates kept for reuse (one per distinct text).
TEMPLATE_QUERY_CACHE_SIZE = 1024


def required_history_s(node: A.Node, lookback_s: float) -> float:
    """How far back from the evaluation time an expression reads samples, in seconds.

    Instant selectors need ``offset + lookback``, range selectors ``offset + range``, subqueries
    their range plus what their inner expression needs. ``@`` pins a selector to a fixed time
    and is not counted.
    """

    def need(n: A.Node) -> float:
        if isinstance(n, A.VectorSel):
            return max(n.offset_ms / 1000.0, 0.0) + lookback_s
        if isinstance(n, A.MatrixSel):
            return max(n.vs.offset_ms / 1000.0, 0.0) + n.range_ms / 1000.0
        if isinstance(n, A.Subquery):
            return max(n.offset_ms / 1000.0, 0.0) + n.range_ms / 1000.0 + need(n.expr)
        if isinstance(n, (A.Paren, A.Unary)):
            return need(n.expr)
        if isinstance(n, A.Binary):
            return max(need(n.lhs), need(n.rhs))
        if isinstance(n, A.Aggregate):
            return max(need(n.expr), need(n.param) if n.param is not None else 0.0)
        if isinstance(n, A.Call):
            return max((need(a) for a in n.args), default=0.0)
        return 0.0

    return need(node)


def _to_ms(t: float) -> int:
    return int(round(float(t) * 1000.0))


class RuleEvaluator:
    """Runs rule groups against a :class:`SeriesStore`.

    Parameters
    ----------
    groups : sequence of RuleGroup
        Loaded rule groups (see :func:`monitor.rules.loader.load_rule_files`).
    engine : Engine
        The PromQL engine (its lookback delta applies to every rule).
    storage : SeriesStore
        The agent's metrics; rule outputs are written back here.
    external_labels : mapping
        Added to notifications (when an alert lacks the label) and available to templates.
    external_url : str
        Base of ``generatorURL`` and the value of ``$externalURL``/``{{ externalURL }}``.
    notifier : AlertNotifier, optional
        Receives firing/resolved alerts after each evaluation.
    default_interval_s : float
        Interval of groups that do not set one (Prometheus's ``evaluation_interval``).
    resend_delay_s : float
        Minimum time between re-sends of a still-firing alert (Prometheus: 1m).
    max_catch_up : int
        Most evaluations of one group run by a single :meth:`evaluate` call when time jumped;
        older missed ones are skipped and counted in ``missed_evaluations``.
    for_outage_tolerance_s, for_grace_period_s : float
        How pending alerts restored by :meth:`load_state_dict` resume (Prometheus's
        ``--rules.alert.for-outage-tolerance``, 1h, and ``--rules.alert.for-grace-period``, 10m):
        the time the agent was down does not count towards ``for``; after an outage longer than
        the tolerance they start over; and an alert is not let fire sooner than the grace period
        (or its ``for``, if shorter) after the restart. Without this, an alert pending for a minute
        before a two-hour outage fired at the first evaluation after it, ``for: 30m`` unmet.
    wall_clock : callable, optional
        The clock evaluations follow when they are live (None: event time only, as in a replay).
        Evaluations caught up after a stall do not send firing alerts that would arrive expired
        (see :meth:`~monitor.rules.alerting.AlertingRuleState.alerts_to_send`).
    """

    def __init__(
        self,
        groups: Sequence[RuleGroup],
        *,
        engine: Engine | None = None,
        storage: SeriesStore,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        notifier: AlertNotifier | None = None,
        default_interval_s: float = 60.0,
        resend_delay_s: float = 60.0,
        max_catch_up: int = 10_000,
        template_url: str | None = "",
        for_outage_tolerance_s: float = 3600.0,
        for_grace_period_s: float = 600.0,
        wall_clock: Callable[[], float] | None = None,
    ) -> None:
        if default_interval_s <= 0:
            raise ValueError(f"default_interval_s must be > 0 seconds, got {default_interval_s!r}")
        if resend_delay_s < 0:
            raise ValueError(f"resend_delay_s must be >= 0 seconds, got {resend_delay_s!r}")
        self.engine = engine or Engine()
        self.storage = storage
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.notifier = notifier
        self.default_interval_s = float(default_interval_s)
        self.resend_delay_s = float(resend_delay_s)
        self.max_catch_up = int(max_catch_up)
        self.for_outage_tolerance_s = float(for_outage_tolerance_s)
        self.for_grace_period_s = float(for_grace_period_s)
        self.wall_clock = wall_clock
        self.missed_evaluations = 0
        self.evaluations = 0
        #: Failed rule evaluations by group name, cumulative (kept across reloads): what
        #: ``monitor_rule_evaluation_failures_total`` counts. Derived from health after a tick, it
        #: missed the evaluations of a group run off the tick or several in one catch-up.
        self.failed_by_group: dict[str, int] = {}
        self._template_queries: dict[str, Query] = {}
        # Evaluation runs on the agent's worker thread while the sidecar reads alerts().
        self._lock = threading.RLock()
        self._template_url = template_url
        self._groups: list[_GroupRuntime] = self._build(groups, self.external_labels, external_url,
                                                        self.default_interval_s)

    def _url_for(self, external_url: str) -> str | None:
        """What templates' URL functions link to: ``external_url`` unless a template URL was given."""
        return external_url if self._template_url == "" else self._template_url

    def _build(self, groups: Sequence[RuleGroup], external_labels: dict[str, str], external_url: str,
               default_interval_s: float) -> list[_GroupRuntime]:
        built: list[_GroupRuntime] = []
        url_for_functions = self._url_for(external_url)
        for gi, g in enumerate(groups):
            interval_s = g.interval_s or default_interval_s
            gr = _GroupRuntime(group=g, interval_ms=max(_to_ms(interval_s), 1))
            for ri, rule in enumerate(g.rules):
                query = self.engine.compile(rule.expr)
                rt = _RuleRuntime(rule=rule, query=query, source=f"rule:{gi}:{g.file};{g.name}:{ri}")
                if isinstance(rule, AlertingRule):
                    rt.alerting = AlertingRuleState(
                        rule, group=g.name, external_labels=external_labels,
                        external_url=external_url, url_for_functions=url_for_functions)
                gr.rules.append(rt)
            built.append(gr)
        return built

    def replace_groups(self, groups: Sequence[RuleGroup], *, external_labels: Mapping[str, str] | None = None,
                       external_url: str | None = None, default_interval_s: float | None = None) -> int:
        """Evaluate ``groups`` from now on (a reload of the rule files), keeping what Prometheus
        keeps when it reloads: the alerts of every rule matched by group and alert name and labels
        (pending ones keep their ``for:`` timer, firing ones are not sent again as new), and each
        matched group's evaluation schedule when its interval is unchanged. Alerts of rules that are
        gone are dropped without a resolution, as in Prometheus. Returns the number of rules.

        ``external_labels``, ``external_url`` and ``default_interval_s``, when given, replace the
        evaluator's with the groups (a reload of ``monitor.yaml``'s ``rules:``), as Prometheus's
        reload applies ``global:``: the alerts sent from then on carry the new labels and links.

        Compiling happens before the swap: an expression that does not compile raises and leaves
        the current rules (and settings) in place."""
        labels = self.external_labels if external_labels is None else dict(external_labels)
        url = self.external_url if external_url is None else external_url
        interval_s = self.default_interval_s if default_interval_s is None else float(default_interval_s)
        if interval_s <= 0:
            raise ValueError(f"default_interval_s must be > 0 seconds, got {default_interval_s!r}")
        built = self._build(groups, labels, url, interval_s)
        with self._lock:
            self._carry_series(self._groups, built)
            old, self._groups = self._groups, built
            try:
                # by file and name only, as Prometheus reloads: a group of a removed file does not hand
                # its alerts to a group of the same name elsewhere (a restore, where paths move, may)
                self._load_state_dict(self._state_dict_of(old), same_file=True)
            except Exception:
                self._groups = old
                raise
            self.external_labels, self.external_url, self.default_interval_s = labels, url, interval_s
            for g in built:
                prev = [o for o in old if o.group.name == g.group.name and o.group.file == g.group.file]
                if prev and prev[0].interval_ms == g.interval_ms:
                    g.last_eval_ms = prev[0].last_eval_ms
                if prev:  # reloaded after a restart, before the group's first evaluation
                    g.restored_down_at = prev[0].restored_down_at
            self._template_queries.clear()
        return sum(len(g.rules) for g in built)

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike[str]], *, engine: Engine | None = None,
                   storage: SeriesStore, **kwargs: Any) -> RuleEvaluator:
        """Load rule files (raising :class:`~monitor.rules.model.RuleLoadError` with every
        problem) and build an evaluator."""
        engine = engine or Engine()
        groups = load_rule_files(paths, engine=engine)
        return cls(groups, engine=engine, storage=storage, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def failed_evaluations(self) -> int:
        """Failed rule evaluations since start, every group together."""
        return sum(self.failed_by_group.values())

    @property
    def groups(self) -> list[RuleGroup]:
        """The rule groups, in evaluation order."""
        return [g.group for g in self._groups]

    def selected_names(self) -> set[str]:
        """The metric names the rules' selectors name ("" for a selector by other matchers only)."""
        with self._lock:
            return {n.name or "" for g in self._groups for rt in g.rules for n in A.walk(rt.query.node)
                    if isinstance(n, A.VectorSel)}

    @property
    def max_range_s(self) -> float:
        """The longest history any rule reads (range, offset, subquery, lookback), in seconds.

        Size the store's retention to at least this (plus one evaluation interval).
        """
        lookback = self.engine.lookback_ms / 1000.0
        best = 0.0
        for g in self._groups:
            for rt in g.rules:
                best = max(best, required_history_s(rt.query.node, lookback))
        return best

    @property
    def min_interval_s(self) -> float:
        """The shortest group interval (how often :meth:`evaluate` should be called)."""
        return min((g.interval_ms / 1000.0 for g in self._groups), default=self.default_interval_s)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, t: float) -> list[AlertTransition]:
        """Run every group evaluation due at or before event time ``t`` (seconds).

        A group with interval ``i`` evaluates at timestamps that are multiples of ``i``; all
        multiples in ``(last evaluation, t]`` run in time order (the first call runs only the
        latest one). Returns the alert state changes, in order.
        """
        with self._lock:
            return self._evaluate(_to_ms(t))

    def _evaluate(self, t_ms: int) -> list[AlertTransition]:
        due: list[tuple[int, int]] = []
        for gi, g in enumerate(self._groups):
            iv = g.interval_ms
            latest = t_ms - (t_ms % iv)
            if g.last_eval_ms is None:
                start = latest
            else:
                start = g.last_eval_ms + iv
                if start > latest:
                    continue
            n = (latest - start) // iv + 1
            if n > self.max_catch_up:
                self.missed_evaluations += n - self.max_catch_up
                start = latest - (self.max_catch_up - 1) * iv
            due.extend((ts, gi) for ts in range(start, latest + 1, iv))
        due.sort()
        out: list[AlertTransition] = []
        for ts, gi in due:
            out.extend(self._evaluate_group_at(self._groups[gi], ts))
        return out

    def evaluate_group_at(self, group: int | str, ts_ms: int) -> list[AlertTransition]:
        """Evaluate one group at ``ts_ms`` (milliseconds) regardless of its schedule.

        Used by :meth:`evaluate` and by the promtool-compatible unit-test runner, which
        evaluates every group at every step like promtool.
        """
        with self._lock:
            return self._evaluate_group_at(self._group(group), ts_ms)

    def _evaluate_group_at(self, gr: _GroupRuntime, ts_ms: int) -> list[AlertTransition]:
        gr.last_eval_ms = ts_ms if gr.last_eval_ms is None else max(gr.last_eval_ms, ts_ms)
        ts = ts_ms / 1000.0
        if gr.restored_down_at is not None:
            self._resume_pending(gr, ts)
        transitions: list[AlertTransition] = []
        for rt in gr.rules:
            self.evaluations += 1
            rt.last_evaluation = ts
            try:
                vector = self._query_vector(rt.query, ts_ms)
                if rt.alerting is not None:
                    samples, tr = rt.alerting.eval(ts, vector, limit=gr.group.limit,
                                                   query=self._template_query_fn(ts_ms))
                    transitions.extend(tr)
                    self._notify(rt, ts, gr.interval_ms / 1000.0)
                else:
                    samples = self._record(rt, vector, gr.group.limit)
            except (PromQLError, RuleEvalError) as e:
                rt.health = "err"
                rt.last_error = str(e)
                name = gr.group.name
                self.failed_by_group[name] = self.failed_by_group.get(name, 0) + 1
                continue
            rt.health = "ok"
            rt.last_error = ""
            if samples or rt.wrote:  # nothing written now or before: nothing to append or mark stale
                self.storage.append_scrape(ts, [(s.labels, s.value) for s in samples], source=rt.source)
                rt.wrote = bool(samples)
        return transitions

    def _resume_pending(self, gr: _GroupRuntime, ts: float) -> None:
        """Re-time the pending alerts restored into ``gr`` at its first evaluation after the
        restart, as Prometheus's ``RestoreForState``. Firing alerts are left firing (Prometheus
        lets them go pending again when it restores none; here that would resolve an alert the
        on-call was paged for, then page again once ``for`` passed, with nothing changed)."""
        down_at, gr.restored_down_at = gr.restored_down_at, None
        assert down_at is not None
        outage = max(0.0, ts - down_at)
        for rt in gr.rules:
            if rt.alerting is None:
                continue
            hold = rt.alerting.rule.for_s
            for key, a in list(rt.alerting.active.items()):
                if a.state is not AlertState.PENDING:
                    continue
                if outage > self.for_outage_tolerance_s:
                    del rt.alerting.active[key]  # starts over if its condition still holds
                    continue
                remaining = hold - max(0.0, down_at - a.active_at)
                if remaining <= 0:
                    continue  # due before the outage: fires now if its condition still holds
                remaining = max(remaining, min(self.for_grace_period_s, hold))
                a.active_at = ts + remaining - hold

    def _group(self, group: int | str) -> _GroupRuntime:
        if isinstance(group, int):
            return self._groups[group]
        for g in self._groups:
            if g.group.name == group:
                return g
        raise KeyError(f"no rule group named {group!r}")

    def _query_vector(self, query: Query, ts_ms: int) -> list[Sample]:
        res = query.instant_ms(self.storage, ts_ms)
        if isinstance(res, Scalar):
            return [Sample(Labels(), res.value)]
        if isinstance(res, list) and (not res or isinstance(res[0], Sample)):
            return res  # type: ignore[return-value]
        raise RuleEvalError("rule result is not a vector or scalar")

    @staticmethod
    def _record(rt: _RuleRuntime, vector: list[Sample], limit: int) -> list[Sample]:
        rule = rt.rule
        assert isinstance(rule, RecordingRule)
        out: list[Sample] = []
        seen: set[Labels] = set()
        extra = dict(rule.labels)
        for s in vector:
            d = s.labels.to_dict()
            d[METRIC_NAME] = rule.record
            d.update(extra)
            lab = Labels(d)
            if lab in seen:
                raise RuleEvalError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(lab)
            out.append(Sample(lab, s.value))
        if limit > 0 and len(out) > limit:
            raise RuleEvalError(f"exceeded limit of {limit} with {len(out)} series")
        return out

    def _template_query_fn(self, ts_ms: int) -> Callable[[str], list[tuple[dict[str, str], float]]]:
        def run(expr: str) -> list[tuple[dict[str, str], float]]:
            try:
                q = self._template_queries.get(expr)
                if q is None:
                    if len(self._template_queries) >= TEMPLATE_QUERY_CACHE_SIZE:
                        # the oldest out: a query written with printf from $labels is one entry per
                        # label set, and alerts over churning labels (clients, segments) grew it for good
                        del self._template_queries[next(iter(self._template_queries))]
                    q = self._template_queries[expr] = self.engine.compile(expr)
                res = self._query_vector(q, ts_ms)
            except (PromQLError, RuleEvalError) as e:
                raise FuncError(str(e)) from None
            return [(s.labels.to_dict(), s.value) for s in res]

        return run

    def _notify(self, rt: _RuleRuntime, ts: float, interval_s: float) -> None:
        assert rt.alerting is not None
        now = self.wall_clock() if self.wall_clock is not None and self.notifier is not None else None
        to_send = rt.alerting.alerts_to_send(ts, self.resend_delay_s, interval_s, now)
        if not to_send or self.notifier is None:
            return
        # without rules.external_url a link relative to nothing: Alertmanager's "Source" link and
        # mail templates pointed nowhere, so none is given (as an Alertmanager client may)
        gen_url = self.external_url.rstrip("/") + table_link(rt.rule.expr) if self.external_url else ""
        out = []
        for a in to_send:
            labels = dict(a.labels)
            for k, v in self.external_labels.items():
                if labels.get(k, "") == "":
                    labels[k] = v
            out.append(OutgoingAlert(labels=labels, annotations=dict(a.annotations), starts_at=a.fired_at,
                                     ends_at=a.ends_at, generator_url=gen_url,
                                     resolved=a.resolved_at is not None))
        self.notifier.send(out)

    # ------------------------------------------------------------------ inspection
    def alerts(self) -> list[Alert]:
        """Pending and firing alerts of every rule (copies), sorted by name then labels."""
        with self._lock:
            return self._alerts()

    def _alerts(self) -> list[Alert]:
        out: list[Alert] = []
        for g in self._groups:
            for rt in g.rules:
                if rt.alerting is not None:
                    out.extend(dataclasses.replace(a, labels=dict(a.labels), annotations=dict(a.annotations))
                               for a in rt.alerting.active_alerts())
        out.sort(key=lambda a: (a.name, sorted(a.labels.items())))
        return out

    def template_errors(self) -> dict[str, int]:
        """Label and annotation templates that failed to expand so far, by rule group."""
        with self._lock:
            out: dict[str, int] = {}
            for g in self._groups:
                n = sum(rt.alerting.template_errors for rt in g.rules if rt.alerting is not None)
                if n:  # groups of one name in several files add up
                    out[g.group.name] = out.get(g.group.name, 0) + n
            return out

    def alerting_states(self) -> list[AlertingRuleState]:
        """The state machines of every alerting rule (for the unit-test runner)."""
        return [rt.alerting for g in self._groups for rt in g.rules if rt.alerting is not None]

    def rule_errors(self, group: int | str) -> list[tuple[str, str]]:
        """``(rule name, error)`` of the rules of one group whose last evaluation failed."""
        return [(rt.rule.name, rt.last_error) for rt in self._group(group).rules if rt.health == "err"]

    def rule_health(self) -> list[RuleHealth]:
        """Health of every rule after its last evaluation."""
        with self._lock:
            return self._rule_health()

    def _rule_health(self) -> list[RuleHealth]:
        out = []
        for g in self._groups:
            for rt in g.rules:
                kind = "alerting" if rt.alerting is not None else "recording"
                state = rt.alerting.max_state().value if rt.alerting is not None else "inactive"
                out.append(RuleHealth(g.group.name, rt.rule.name, kind, rt.health, rt.last_error,
                                      rt.last_evaluation, state, g.group.file))
        return out

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot of every alert (including resolved ones still being re-sent), so a
        restarted agent continues ``for`` timers and does not page again."""
        with self._lock:
            return self._state_dict()

    def _carry_series(self, old: list[_GroupRuntime], built: list[_GroupRuntime]) -> None:
        """What the rules wrote, across a reload: a rule still there (same group, kind, name and
        labels) keeps writing under its series source, so that what it stops writing goes stale;
        the series of a rule that is gone are marked stale just after its group's last evaluation,
        as Prometheus does on reload (they answered queries for the 5-minute lookback, and an
        alert reading a removed recording rule kept firing that long)."""
        self._reloads = getattr(self, "_reloads", 0) + 1

        def keyed(groups: list[_GroupRuntime]) -> dict[tuple[Any, ...], tuple[_RuleRuntime, _GroupRuntime]]:
            out: dict[tuple[Any, ...], tuple[_RuleRuntime, _GroupRuntime]] = {}
            seen: dict[tuple[Any, ...], int] = {}
            for g in groups:
                for rt in g.rules:
                    key = (g.group.file, g.group.name, type(rt.rule).__name__, rt.rule.name,
                           tuple(sorted(rt.rule.labels.items())))
                    seen[key] = n = seen.get(key, -1) + 1  # duplicates in order
                    out[(*key, n)] = (rt, g)
            return out

        before = keyed(old)
        for key, (rt, _) in keyed(built).items():
            hit = before.pop(key, None)
            if hit is not None:
                rt.source, rt.wrote = hit[0].source, hit[0].wrote
            else:  # a source no earlier rule wrote under (positions move when rules are added)
                rt.source = f"{rt.source}#reload{self._reloads}"
        for rt, g in before.values():
            if rt.wrote and g.last_eval_ms is not None:
                self.storage.append_scrape((g.last_eval_ms + 1) / 1000.0, [], source=rt.source)

    def _state_dict(self) -> dict[str, Any]:
        return self._state_dict_of(self._groups)

    @staticmethod
    def _state_dict_of(runtimes: list[_GroupRuntime]) -> dict[str, Any]:
        groups = []
        for g in runtimes:
            rules = []
            for rt in g.rules:
                if rt.alerting is None:
                    continue
                rules.append({
                    "name": rt.rule.name,
                    "labels": dict(rt.rule.labels),
                    "alerts": [a.to_dict() for a in rt.alerting.active.values()],
                })
            # not evaluated since a restart: its last evaluation is still the one before it (a
            # second restart in between counts both outages, and the time up between them)
            last = g.restored_down_at if g.last_eval_ms is None else g.last_eval_ms / 1000.0
            groups.append({"file": g.group.file, "name": g.group.name, "rules": rules, "last_evaluation": last})
        return {"version": 1, "groups": groups}

    def load_state_dict(self, state: Mapping[str, Any], *, restarted: bool = True) -> int:
        """Restore alerts saved by :meth:`state_dict`; returns how many were restored.

        Groups are matched by file and name (or by name alone when the file moved); rules by
        alert name and labels, duplicates in order, as Prometheus does when reloading rules.
        Unknown groups or rules are ignored (the rule file changed). After a restart, pending
        alerts resume at each group's next evaluation with the outage left out of their ``for``
        (see the class); ``restarted=False`` resumes them as they were, for a replay that goes on
        in the event time it stopped at (no outage to leave out).
        """
        if int(state.get("version", 0)) != 1:
            raise ValueError(f"unsupported rule state version {state.get('version')!r} (expected 1)")
        with self._lock:
            return self._load_state_dict(state, restart=restarted)

    def _load_state_dict(self, state: Mapping[str, Any], *, same_file: bool = False, restart: bool = False) -> int:
        restored = 0
        for gs in state.get("groups", []):
            gr = self._match_group(str(gs.get("file", "")), str(gs.get("name", "")), same_file=same_file)
            if gr is None:
                continue
            last = gs.get("last_evaluation")
            if restart and last is not None:  # states saved before it was recorded resume as they were
                gr.restored_down_at = float(last)
            pool: dict[tuple[str, tuple[tuple[str, str], ...]], list[_RuleRuntime]] = {}
            for rt in gr.rules:
                if rt.alerting is not None:
                    pool.setdefault((rt.rule.name, tuple(sorted(rt.rule.labels.items()))), []).append(rt)
            for rs in gs.get("rules", []):
                key = (str(rs.get("name", "")), tuple(sorted(dict(rs.get("labels") or {}).items())))
                cands = pool.get(key)
                if not cands:
                    continue
                rt = cands.pop(0)
                assert rt.alerting is not None
                for ad in rs.get("alerts", []):
                    a = Alert.from_dict(ad)
                    rt.alerting.active[Labels(a.labels)] = a
                    restored += 1
        return restored

    def _match_group(self, file: str, name: str, *, same_file: bool = False) -> _GroupRuntime | None:
        exact = [g for g in self._groups if g.group.name == name and g.group.file == file]
        if exact or same_file:
            return exact[0] if exact else None
        by_name = [g for g in self._groups if g.group.name == name]
        return by_name[0] if len(by_name) == 1 else None


# ---------------------------------------------------------------------- API response
def format_rfc3339_nano(t: float) -> str:
    """Go's ``time.Time`` JSON format (RFC 3339 with trailing-zero-trimmed nanoseconds, UTC)."""
    ns = int(round(t * 1e9))
    sec, frac = divmod(ns, 1_000_000_000)
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=sec)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        s += ("." + f"{frac:09d}").rstrip("0")
    return s + "Z"


def alerts_api_response(alerts: Iterable[Alert]) -> dict[str, Any]:
    """The body Prometheus's ``GET /api/v1/alerts`` returns for these (active) alerts."""
    out = []
    for a in alerts:
        item: dict[str, Any] = {
            "labels": dict(sorted(a.labels.items())),
            "annotations": dict(sorted(a.annotations.items())),
            "state": a.state.value,
            "activeAt": format_rfc3339_nano(a.active_at),
            "value": go_float_E(a.value).replace("E", "e"),  # strconv 'e', -1
        }
        if a.keep_firing_since is not None:
            item["keepFiringSince"] = format_rfc3339_nano(a.keep_firing_since)
        out.append(item)
    return {"status": "success", "data": {"alerts": out}}

