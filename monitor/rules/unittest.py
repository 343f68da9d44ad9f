"""Run promtool's rule unit-test files (``promtool test rules``) with the agent's own evaluator.

The file format and the procedure are promtool v2.42's (``cmd/promtool/unittest.go``):

* ``rule_files`` (globs, relative to the test file), ``evaluation_interval`` (default 1m),
  ``group_eval_order``, and ``tests``, each with ``interval`` (spacing of input samples),
  ``input_series`` in the expanding notation, ``alert_rule_test``, ``promql_expr_test``,
  ``external_labels``, ``external_url`` and ``name``;
* per test group, rules are evaluated at ``0, ev, 2*ev, ...`` up to the largest ``eval_time``,
  every group at every step, after loading the input samples up to that instant;
* an alert test at ``eval_time`` compares the *firing* alerts after the evaluation at the
  latest step not after it; PromQL tests are evaluated at the end, on everything loaded;
* a rule evaluation error stops the test group.

The output (``SUCCESS`` / ``FAILED:`` with promtool's messages) and exit codes are the same, so
``monitor rules test`` can replace ``promtool test rules`` in CI and the two can be compared.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field
from typing import IO, Callable

from monitor.promql.engine import Engine
from monitor.promql.errors import PromQLError
from monitor.promql.storage import SeriesStore
from monitor.promql.types import Sample, Scalar
from monitor.rules.duration import DurationError, format_duration, format_go_duration, parse_duration
from monitor.rules.evaluator import RuleEvaluator
from monitor.rules.gofmt import go_float_E, go_labels_string, go_quote
from monitor.rules.loader import parse_rule_file
from monitor.rules.model import RuleGroup
from monitor.rules.series_notation import SeriesDescError, parse_metric, parse_series_desc
from monitor.rules.yamlnodes import YamlError, YNode, compose_yaml, go_yaml_float

__all__ = [
    "UnitTestFileError",
    "UnitTestFile",
    "TestGroup",
    "AlertTestCase",
    "ExpectedAlert",
    "PromqlTestCase",
    "ExpectedSample",
    "parse_unit_test_text",
    "run_unit_test_file",
    "run_unit_tests",
    "simulate_test_group",
    "firing_alerts",
    "GroupRun",
    "DEFAULT_LOOKBACK_S",
]

DEFAULT_LOOKBACK_S = 300.0


class UnitTestFileError(ValueError):
    """The test file itself is invalid (YAML, unknown field, bad duration...)."""


@dataclass
class ExpectedAlert:
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass
class AlertTestCase:
    eval_time_ms: int
    alertname: str
    exp_alerts: list[ExpectedAlert]


@dataclass
class ExpectedSample:
    labels: str
    value: float


@dataclass
class PromqlTestCase:
    expr: str
    eval_time_ms: int
    exp_samples: list[ExpectedSample]


@dataclass
class TestGroup:
    """One entry of ``tests`` (named like promtool's ``testGroup``)."""

    __test__ = False  # not a pytest test class

    interval_ms: int = 0
    input_series: list[tuple[str, str]] = field(default_factory=list)
    alert_rule_test: list[AlertTestCase] = field(default_factory=list)
    promql_expr_test: list[PromqlTestCase] = field(default_factory=list)
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    name: str = ""

    def max_eval_time_ms(self) -> int:
        times = [a.eval_time_ms for a in self.alert_rule_test] + [p.eval_time_ms for p in self.promql_expr_test]
        return max(times, default=0)


@dataclass
class UnitTestFile:
    rule_files: list[str] = field(default_factory=list)
    evaluation_interval_ms: int = 60_000
    group_eval_order: list[str] = field(default_factory=list)
    tests: list[TestGroup] = field(default_factory=list)


# ------------------------------------------------------------------------------------------
# Decoding (yaml.v2 UnmarshalStrict semantics)
# ------------------------------------------------------------------------------------------
class _Decoder:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fields(self, node: YNode | None, type_name: str, allowed: tuple[str, ...]) -> dict[str, YNode]:
        if node is None or node.is_null:
            return {}
        if node.kind != "map":
            self.errors.append(f"line {node.line}: cannot unmarshal {_tag(node)} into {type_name}")
            return {}
        out: dict[str, YNode] = {}
        for k, v in node.items:
            if k.text not in allowed:
                self.errors.append(f"line {k.line}: field {k.text} not found in type {type_name}")
                continue
            out[k.text] = v
        return out

    def string(self, node: YNode | None) -> str:
        if node is None or node.is_null:
            return ""
        if node.kind != "scalar":
            self.errors.append(f"line {node.line}: cannot unmarshal {_tag(node)} into string")
            return ""
        return node.text

    def duration_ms(self, node: YNode | None) -> int:
        text = self.string(node)
        if text == "":
            return 0
        try:
            return int(round(parse_duration(text) * 1000))
        except DurationError as e:
            raise UnitTestFileError(str(e)) from None

    def float(self, node: YNode | None) -> float:
        text = self.string(node)
        if text == "":
            return 0.0
        try:
            if node is not None and node.quoted:  # text to Go's yaml, whatever it holds: value: "5" is refused
                raise ValueError
            return go_yaml_float(text)
        except ValueError:
            self.errors.append(f"line {node.line if node else 0}: cannot unmarshal {_tag(node)} `{text}` into float64")
            return 0.0

    def seq(self, node: YNode | None) -> list[YNode]:
        if node is None or node.is_null:
            return []
        if node.kind != "seq":
            self.errors.append(f"line {node.line}: cannot unmarshal {_tag(node)} into []")
            return []
        return node.children

    def string_map(self, node: YNode | None) -> dict[str, str]:
        if node is None or node.is_null:
            return {}
        if node.kind != "map":
            self.errors.append(f"line {node.line}: cannot unmarshal {_tag(node)} into map[string]string")
            return {}
        return {k.text: self.string(v) for k, v in node.items}


def _tag(node: YNode | None) -> str:
    if node is None:
        return "!!null"
    return {"map": "!!map", "seq": "!!seq", "null": "!!null"}.get(node.kind, "!!" + node.tag.rsplit(":", 1)[-1])


def parse_unit_test_text(text: str) -> UnitTestFile:
    """Decode a promtool test file strictly (unknown fields are errors, as in promtool).

    Raises
    ------
    UnitTestFileError
        With promtool's message (``yaml: unmarshal errors: ...``).
    """
    try:
        root = compose_yaml(text)
    except YamlError as e:
        raise UnitTestFileError(str(e)) from None
    d = _Decoder()
    top = d.fields(root, "main.unitTestFile", ("rule_files", "evaluation_interval", "group_eval_order", "tests"))
    f = UnitTestFile()
    f.rule_files = [d.string(n) for n in d.seq(top.get("rule_files"))]
    ev = d.duration_ms(top.get("evaluation_interval"))
    f.evaluation_interval_ms = ev if ev > 0 else 60_000
    f.group_eval_order = [d.string(n) for n in d.seq(top.get("group_eval_order"))]
    for tnode in d.seq(top.get("tests")):
        tf = d.fields(tnode, "main.testGroup", ("interval", "input_series", "alert_rule_test",
                                                  "promql_expr_test", "external_labels", "external_url", "name"))
        tg = TestGroup(interval_ms=d.duration_ms(tf.get("interval")), name=d.string(tf.get("name")),
                       external_url=d.string(tf.get("external_url")),
                       external_labels=d.string_map(tf.get("external_labels")))
        for snode in d.seq(tf.get("input_series")):
            sf = d.fields(snode, "main.series", ("series", "values"))
            tg.input_series.append((d.string(sf.get("series")), d.string(sf.get("values"))))
        for anode in d.seq(tf.get("alert_rule_test")):
            af = d.fields(anode, "main.alertTestCase", ("eval_time", "alertname", "exp_alerts"))
            exp = []
            for enode in d.seq(af.get("exp_alerts")):
                ef = d.fields(enode, "main.alert", ("exp_labels", "exp_annotations"))
                exp.append(ExpectedAlert(d.string_map(ef.get("exp_labels")), d.string_map(ef.get("exp_annotations"))))
            tg.alert_rule_test.append(AlertTestCase(d.duration_ms(af.get("eval_time")), d.string(af.get("alertname")), exp))
        for pnode in d.seq(tf.get("promql_expr_test")):
            pf = d.fields(pnode, "main.promqlTestCase", ("expr", "eval_time", "exp_samples"))
            samples = []
            for snode in d.seq(pf.get("exp_samples")):
                sf = d.fields(snode, "main.sample", ("labels", "value"))
                samples.append(ExpectedSample(d.string(sf.get("labels")), d.float(sf.get("value"))))
            tg.promql_expr_test.append(PromqlTestCase(d.string(pf.get("expr")), d.duration_ms(pf.get("eval_time")), samples))
        f.tests.append(tg)
    if d.errors:
        raise UnitTestFileError("yaml: unmarshal errors:\n  " + "\n  ".join(d.errors))
    return f


# ------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------
def _indent_lines(text: str, indent: str) -> str:
    lines = text.split("\n")
    return lines[0] + "".join("\n" + indent + line for line in lines[1:])


_LabAnn = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def _la_string(items: list[_LabAnn]) -> str:
    if not items:
        return "[]"
    parts = []
    for i, (lab, ann) in enumerate(items):
        body = "Labels:" + go_labels_string(list(lab)) + "\nAnnotations:" + go_labels_string(list(ann))
        parts.append(f"{i}:" + _indent_lines("\n" + body, "  "))
    return "[\n" + ",\n".join(parts) + "\n]"


def _samples_string(samples: list[tuple[tuple[tuple[str, str], ...], float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(go_labels_string(list(lab)) + " " + go_float_E(v) for lab, v in samples)


def _order_groups(groups: list[RuleGroup], order: list[str]) -> list[int]:
    rank = {name: i for i, name in enumerate(order)}
    return sorted(range(len(groups)), key=lambda i: (rank.get(groups[i].name, 0), i))


def _resolve_rule_files(base_dir: str, patterns: list[str], warn: Callable[[str], None]) -> list[str]:
    files: list[str] = []
    for p in patterns:
        if p and not os.path.isabs(p):
            p = os.path.join(base_dir, p)
        matches = sorted(glob.glob(p))
        if not matches:
            warn(f"  WARNING: no file match pattern {p}")
        files.extend(matches)
    return files


@dataclass
class GroupRun:
    """Outcome of simulating one test group: setup/evaluation errors (promtool's messages) and the
    engine, store and evaluator left after the last step (for PromQL checks)."""

    errors: list[str]
    engine: Engine | None = None
    store: SeriesStore | None = None
    evaluator: RuleEvaluator | None = None


def simulate_test_group(tg: TestGroup, eval_interval_ms: int, rule_files: list[str],
                        group_order: list[str] | tuple[str, ...] = (),
                        on_step: Callable[[int, RuleEvaluator], None] | None = None,
                        until_ms: int | None = None) -> GroupRun:
    """Load a test group's input series and rules and evaluate them as promtool does.

    Every group is evaluated at ``0, ev, 2*ev, ...`` up to the group's largest ``eval_time``,
    after appending the input samples up to that instant (``until_ms`` overrides the horizon);
    ``on_step(ts_ms, evaluator)`` is called after each step. A rule evaluation error stops the
    run (as in promtool).
    """
    # Input series ("load <interval>" in promtool).
    series: list[tuple[dict[str, str], list[tuple[int, float]]]] = []
    for i, (stext, vtext) in enumerate(tg.input_series):
        try:
            labels, values = parse_series_desc(stext, vtext)
        except SeriesDescError as e:
            return GroupRun([f"input_series[{i}] {go_quote(stext + ' ' + vtext)}: parse error: {e}"])
        pts: list[tuple[int, float]] = []
        for k, v in enumerate(values):
            if v is not None:
                pts.append((k * tg.interval_ms, v))
        if tg.interval_ms == 0:
            # No interval: every value is at time 0 and, as in promtool's storage, the first wins.
            pts = pts[:1]
        series.append((labels, pts))

    groups: list[RuleGroup] = []
    for f in rule_files:
        g, errors = parse_rule_file(f)
        if errors:
            return GroupRun([str(e) for e in errors])
        groups.extend(g)
    ordered = [groups[i] for i in _order_groups(groups, list(group_order))]

    maxt = tg.max_eval_time_ms() if until_ms is None else until_ms
    engine = Engine(lookback_delta_s=DEFAULT_LOOKBACK_S, default_subquery_step_s=eval_interval_ms / 1000.0)
    # Everything loaded stays queryable (PromQL tests run at the end, at any eval_time).
    span_s = (maxt + max(tg.interval_ms, 0) * 2) / 1000.0 + 10 * 86400.0
    store = SeriesStore(retention_s=span_s, max_series=1_000_000, max_cells=200_000_000)
    evaluator = RuleEvaluator(ordered, engine=engine, storage=store,
                              external_labels=tg.external_labels, external_url=tg.external_url,
                              default_interval_s=(tg.interval_ms or eval_interval_ms) / 1000.0,
                              template_url=None)
    run = GroupRun([], engine, store, evaluator)
    cursor = [0] * len(series)
    ts = 0
    while ts <= maxt:
        for si, (labels, pts) in enumerate(series):
            k = cursor[si]
            while k < len(pts) and pts[k][0] <= ts:
                store.append_ms(labels, pts[k][0], pts[k][1])
                k += 1
            cursor[si] = k
        eval_errs: list[str] = []
        for gi in range(len(ordered)):
            evaluator.evaluate_group_at(gi, ts)
            for name, err in evaluator.rule_errors(gi):
                eval_errs.append(f"    rule: {name}, time: {format_go_duration(ts / 1000)}, err: {err}")
        if eval_errs:
            run.errors = eval_errs
            return run
        if on_step is not None:
            on_step(ts, evaluator)
        ts += eval_interval_ms
    return run


def firing_alerts(evaluator: RuleEvaluator, names: set[str]) -> dict[str, list[tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]]]:
    """Firing alerts of the rules named in ``names``, as sorted (labels, annotations) items."""
    got: dict[str, list[_LabAnn]] = {}
    for st in evaluator.alerting_states():
        if st.rule.alert not in names:
            continue
        for a in st.active_alerts():
            if a.state.value == "firing":
                got.setdefault(st.rule.alert, []).append(
                    (tuple(sorted(a.labels.items())), tuple(sorted(a.annotations.items()))))
    return {k: sorted(v) for k, v in got.items()}


def _run_group(tg: TestGroup, eval_interval_ms: int, rule_files: list[str], group_order: list[str]) -> list[str]:
    for a in tg.alert_rule_test:
        if a.alertname == "":
            where = f" (in TestGroup {tg.name})" if tg.name else ""
            return [f"an item under alert_rule_test misses required attribute alertname at eval_time "
                    f"{format_duration(a.eval_time_ms / 1000)}{where}"]
    alert_times = sorted({a.eval_time_ms for a in tg.alert_rule_test})
    tests_at: dict[int, list[AlertTestCase]] = {}
    for a in tg.alert_rule_test:
        tests_at.setdefault(a.eval_time_ms, []).append(a)
    errs: list[str] = []
    curr = [0]

    def check(ts: int, evaluator: RuleEvaluator) -> None:
        # Alert tests at ts <= eval_time < ts + evaluation_interval use this step's state.
        while curr[0] < len(alert_times) and ts <= alert_times[curr[0]] < ts + eval_interval_ms:
            t = alert_times[curr[0]]
            errs.extend(_check_alerts(tg, evaluator, tests_at[t]))
            curr[0] += 1

    run = simulate_test_group(tg, eval_interval_ms, rule_files, group_order, on_step=check)
    errs.extend(run.errors)
    if run.errors or run.engine is None or run.store is None:
        return errs
    errs.extend(_check_promql(tg, run.engine, run.store))
    return errs


def _check_alerts(tg: TestGroup, evaluator: RuleEvaluator, cases: list[AlertTestCase]) -> list[str]:
    got = firing_alerts(evaluator, {c.alertname for c in cases})
    out = []
    for case in cases:
        g = got.get(case.alertname, [])
        exp: list[_LabAnn] = []
        for e in case.exp_alerts:
            labels = dict(e.labels)
            labels["alertname"] = case.alertname
            exp.append((tuple(sorted(labels.items())), tuple(sorted(e.annotations.items()))))
        exp.sort()
        if exp != g:
            name = f"    name: {tg.name},\n" if tg.name else ""
            out.append(f"{name}    alertname: {case.alertname}, time: {format_duration(case.eval_time_ms / 1000)}, \n"
                       f"        exp:{_indent_lines(_la_string(exp), '            ')}, \n"
                       f"        got:{_indent_lines(_la_string(g), '            ')}")
    return out


def _check_promql(tg: TestGroup, engine: Engine, store: SeriesStore) -> list[str]:
    out = []
    for case in tg.promql_expr_test:
        when = format_duration(case.eval_time_ms / 1000)
        try:
            res = engine.compile(case.expr).instant_ms(store, case.eval_time_ms)
        except PromQLError as e:
            out.append(f"    expr: {go_quote(case.expr)}, time: {when}, err: {e}")
            continue
        if isinstance(res, Scalar):
            got = [((), res.value)]
        elif isinstance(res, list) and all(isinstance(s, Sample) for s in res):
            got = [(s.labels.items(), s.value) for s in res]
        else:
            out.append(f"    expr: {go_quote(case.expr)}, time: {when}, err: rule result is not a vector or scalar")
            continue
        exp = []
        bad = None
        for s in case.exp_samples:
            try:
                exp.append((tuple(sorted(parse_metric(s.labels).items())), s.value))
            except SeriesDescError as e:
                bad = f"labels {go_quote(s.labels)}: {e}"
                break
        if bad is not None:
            out.append(f"    expr: {go_quote(case.expr)}, time: {when}, err: {bad}")
            continue
        exp.sort(key=lambda x: x[0])
        got.sort(key=lambda x: x[0])
        same = len(exp) == len(got) and all(el == gl and ev == gv for (el, ev), (gl, gv) in zip(exp, got))
        if not same:
            out.append(f"    expr: {go_quote(case.expr)}, time: {when},\n"
                       f"        exp: {_samples_string(exp)}\n        got: {_samples_string(got)}")
    return out


def run_unit_test_file(path: str, *, warn: Callable[[str], None] | None = None) -> list[str]:
    """Run one promtool test file; return the error messages (empty when it passes)."""
    warn = warn or (lambda m: print(m, file=sys.stderr))
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        return [f"open {path}: {e.strerror or e}"]
    except UnicodeDecodeError as e:  # was a traceback; said as `monitor rules check` says it of a rule file
        return [f"{path}: test file is not valid UTF-8: {e}"]
    try:
        spec = parse_unit_test_text(text)
    except UnitTestFileError as e:
        return [str(e)]
    base = os.path.dirname(path)
    rule_files = _resolve_rule_files(base, spec.rule_files, warn)
    seen: set[str] = set()
    for g in spec.group_eval_order:
        if g in seen:
            return [f"group name repeated in evaluation order: {g}"]
        seen.add(g)
    errs: list[str] = []
    for tg in spec.tests:
        errs.extend(_run_group(tg, spec.evaluation_interval_ms, rule_files, spec.group_eval_order))
    return errs


def run_unit_tests(paths: list[str], *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run test files printing promtool's report; return promtool's exit code (0 or 1)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    failed = False
    for p in paths:
        print("Unit Testing: ", p, file=out)
        errors = run_unit_test_file(p, warn=lambda m: print(m, file=err))
        if errors:
            print("  FAILED:", file=err)
            for e in errors:
                print(e, file=err)
                print(file=out)
            failed = True
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0
