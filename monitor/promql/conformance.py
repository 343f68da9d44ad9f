"""Runner for Prometheus's PromQL test scripts (``promql/testdata/*.test``, v2.42 format).

The format (``promql/test.go``)::

    load <step>                       # e.g. load 5m
      <series> <values...>            # values: 1 2 _ stale 1+2x3 5x2 _x4 -1-1x3
    clear
    eval[_fail|_ordered] instant at <duration> <expr>
      <series> <value>                # expected vector elements, or a bare number for a scalar

Every eval case is checked the way Prometheus's own harness checks it: the instant query, the same
expression as a range query from ``t-1m`` to ``t+1m`` by ``1m`` (the point at ``t`` must match),
and, unless the expression uses a time-dependent function, the variants with ``@ t`` pinned on
every selector, evaluated at several other times. Values compare with Prometheus's relative
tolerance (1e-6; NaN equals NaN).

A case whose expression the engine refuses at compile time with
:class:`~monitor.promql.errors.UnsupportedError` is reported as *unsupported*, never as passed.

Command line: ``python -m monitor.promql.conformance [DIR_OR_FILES...] [-v]`` prints per-file
counts (run / passed / failed / unsupported) and exits non-zero if a supported case fails.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

from monitor.promql.ast import AT_UNSAFE_FUNCTIONS
from monitor.promql.engine import Engine, Query
from monitor.promql.errors import PromQLError, UnsupportedError
from monitor.promql.storage import SeriesStore
from monitor.promql.types import Labels, Scalar, Series, String

__all__ = [
    "LoadCommand",
    "EvalCase",
    "Outcome",
    "FileSummary",
    "parse_test_file",
    "run_case",
    "run_files",
    "default_conformance_dir",
    "main",
]

EPSILON = 1e-6
MIN_NORMAL = 2.2250738585072014e-308
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?"
                       r"(?:(\d+)ms)?$")
_DUR_MS = (365 * 86400_000, 7 * 86400_000, 86400_000, 3600_000, 60_000, 1000, 1)
_EVAL = re.compile(r"^eval(?:_(fail|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_LOAD = re.compile(r"^load\s+(.+?)$")


def parse_duration_ms(text: str) -> int:
    """Prometheus ``model.ParseDuration`` (units y w d h m s ms, in that order) in ms."""
    if text == "0":
        return 0
    m = _DURATION.match(text)
    if not m or not text:
        raise ValueError(f"not a valid duration string: {text!r}")
    return sum(int(g) * unit for g, unit in zip(m.groups(), _DUR_MS) if g)


# ------------------------------------------------------------------------------- series syntax
def parse_series_desc(line: str) -> tuple[Labels, list[Optional[float]]]:
    """Parse ``metric{labels} values...``; ``None`` in values marks an omitted sample (the same
    notation as promtool's input series: :mod:`monitor.rules.series_notation`)."""
    from monitor.rules.series_notation import split_series_desc

    labels, values = split_series_desc(line)
    return Labels(labels), values


def parse_number(text: str) -> Optional[float]:
    """The harness's ``parseNumber``: Go ``ParseInt(s, 0, 64)`` then ``ParseFloat``."""
    t = text.strip()
    if re.fullmatch(r"[+-]?0[0-7]+", t):
        return float(int(t, 8))
    try:
        if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|\d+)", t):
            return float(int(t, 0))
    except ValueError:
        pass
    if re.fullmatch(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", t, re.I):
        return float(t)
    return None


# ------------------------------------------------------------------------------- commands
@dataclass
class LoadCommand:
    """``load <gap>``: series and their samples (ms, value)."""

    gap_ms: int
    series: list[tuple[Labels, list[tuple[int, float]]]] = field(default_factory=list)


@dataclass
class EvalCase:
    """One ``eval`` command with the loads it runs against."""

    file: str
    line: int
    expr: str
    at_ms: int
    fail: bool
    ordered: bool
    scalar: Optional[float]
    expected: dict[Labels, tuple[int, float]]
    loads: list[LoadCommand]

    @property
    def case_id(self) -> str:
        return f"{Path(self.file).name}:{self.line}"


@dataclass
class Outcome:
    """Result of one case: status is ``passed``, ``failed`` or ``unsupported``."""

    case: EvalCase
    status: str
    message: str = ""


def parse_test_file(path: str | Path) -> list[EvalCase]:
    """Parse one ``.test`` file into eval cases (each carrying its load commands)."""
    path = Path(path)
    raw = path.read_text().split("\n")
    lines = []
    for ln in raw:
        ln = ln.strip()
        lines.append("" if ln.startswith("#") else ln)
    cases: list[EvalCase] = []
    loads: list[LoadCommand] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if not ln:
            i += 1
            continue
        cmd = re.split(r"[\t ]+", ln, maxsplit=1)[0].lower()
        if cmd == "clear":
            loads = []
            i += 1
        elif cmd == "load":
            m = _LOAD.match(ln)
            if not m:
                raise ValueError(f"{path}:{i + 1}: invalid load command")
            load = LoadCommand(parse_duration_ms(m.group(1)))
            i += 1
            while i < len(lines) and lines[i]:
                labels, values = parse_series_desc(lines[i])
                samples = [(k * load.gap_ms, v) for k, v in enumerate(values) if v is not None]
                load.series = [s for s in load.series if s[0] != labels] + [(labels, samples)]
                i += 1
            loads = loads + [load]
        elif cmd.startswith("eval"):
            m = _EVAL.match(ln)
            if not m:
                raise ValueError(f"{path}:{i + 1}: invalid eval command")
            mod, at, expr = m.group(1), m.group(2), m.group(3)
            case = EvalCase(str(path), i + 1, expr, parse_duration_ms(at or "0"),
                            mod == "fail", mod == "ordered", None, {}, list(loads))
            i += 1
            j = 1
            while i < len(lines) and lines[i]:
                num = parse_number(lines[i])
                if num is not None:
                    case.scalar = num
                    i += 1
                    break
                labels, values = parse_series_desc(lines[i])
                if len(values) > 1:
                    raise ValueError(f"{path}:{i + 1}: expecting multiple values in instant "
                                     f"evaluation not allowed")
                case.expected[labels] = (j, values[0] if values and values[0] is not None
                                         else math.nan)
                j += 1
                i += 1
            cases.append(case)
        else:
            raise ValueError(f"{path}:{i + 1}: invalid command {ln!r}")
    return cases


# ------------------------------------------------------------------------------- execution
def almost_equal(a: float, b: float) -> bool:
    """Prometheus's ``almostEqual`` (relative epsilon 1e-6, NaN == NaN)."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < MIN_NORMAL:
        return diff < EPSILON * MIN_NORMAL
    return diff / (abs(a) + abs(b)) < EPSILON


class _Mismatch(Exception):
    pass


def _compare(case: EvalCase, result: object, ordered: bool) -> None:
    if isinstance(result, Scalar):
        if case.scalar is None:
            raise _Mismatch(f"got scalar {result.value}, expected a vector")
        if not almost_equal(case.scalar, result.value):
            raise _Mismatch(f"expected scalar {case.scalar} but got {result.value}")
        return
    if isinstance(result, String):
        raise _Mismatch(f"unexpected string result {result.value!r}")
    if not isinstance(result, list):
        raise _Mismatch(f"unexpected result {result!r}")
    if result and isinstance(result[0], Series):
        raise _Mismatch("received range result on instant evaluation")
    seen: set[Labels] = set()
    for pos, sample in enumerate(result):
        exp = case.expected.get(sample.labels)
        if exp is None:
            raise _Mismatch(f"unexpected metric {sample.labels} in result")
        if ordered and exp[0] != pos + 1:
            raise _Mismatch(f"expected metric {sample.labels} with {exp[1]} at position {exp[0]} "
                            f"but was at {pos + 1}")
        if not almost_equal(exp[1], sample.value):
            raise _Mismatch(f"expected {exp[1]} for {sample.labels} but got {sample.value}")
        seen.add(sample.labels)
    for labels, exp in case.expected.items():
        if labels not in seen:
            raise _Mismatch(f"expected metric {labels} with {exp[1]} not found")
    if case.scalar is not None and not case.expected and result:
        raise _Mismatch(f"expected scalar {case.scalar}, got a vector")


def build_store(loads: Sequence[LoadCommand]) -> SeriesStore:
    """A store holding the samples of ``loads`` (unbounded retention, as a test TSDB)."""
    store = SeriesStore(retention_s=1e12, max_series=1_000_000)
    for load in loads:
        for labels, samples in load.series:
            for t_ms, v in samples:
                store.append_ms(labels, t_ms, v)
    return store


def _at_variant_times(ts: int) -> list[int]:
    if ts == 0:
        return [-1000, 0, 1000]
    fifth = int(ts / 5)  # Go integer division truncates toward zero
    return [-10 * ts, 0, fifth, ts, 10 * ts]


def _range_point(series: list[Series], t_ms: int, scalar: bool) -> object:
    from monitor.promql.types import Sample

    vec = []
    for s in series:
        hit = (s.ts_ms == t_ms).nonzero()[0]
        if hit.size:
            vec.append(Sample(s.labels, float(s.values[hit[0]])))
    if scalar:
        if not vec:
            raise _Mismatch("range query returned no point for the scalar")
        return Scalar(vec[0].value)
    return vec


def run_case(case: EvalCase, engine: Optional[Engine] = None,
             store: Optional[SeriesStore] = None) -> Outcome:
    """Run one eval case the way Prometheus's harness does (see module docstring)."""
    engine = engine or Engine(lookback_delta_s=300.0, default_subquery_step_s=60.0)
    try:
        query = engine.compile(case.expr)
    except UnsupportedError as exc:
        return Outcome(case, "unsupported", exc.construct)
    except PromQLError as exc:
        return Outcome(case, "failed", f"compile error: {exc}")
    store = store if store is not None else build_store(case.loads)
    variants: list[tuple[Query, int, str]] = [(query, case.at_ms, "")]
    if not query.uses_functions(AT_UNSAFE_FUNCTIONS):
        pinned = query.with_at(case.at_ms)
        variants += [(pinned, et, f" [@ {case.at_ms}ms evaluated at {et}ms]")
                     for et in _at_variant_times(case.at_ms)]
    for q, et, label in variants:
        try:
            result = q.instant_ms(store, et)
        except PromQLError as exc:
            if case.fail:
                continue
            return Outcome(case, "failed", f"error evaluating{label}: {exc}")
        if case.fail:
            return Outcome(case, "failed", f"expected error evaluating{label} but got none")
        try:
            _compare(case, result, case.ordered)
        except _Mismatch as exc:
            return Outcome(case, "failed", f"instant{label}: {exc}")
        try:
            series = q.range_ms(store, et - 60_000, et + 60_000, 60_000)
        except PromQLError as exc:
            return Outcome(case, "failed", f"error in range mode{label}: {exc}")
        if case.ordered:
            continue
        try:
            _compare(case, _range_point(series, et, isinstance(result, Scalar)), False)
        except _Mismatch as exc:
            return Outcome(case, "failed", f"range mode{label}: {exc}")
    return Outcome(case, "passed")


@dataclass
class FileSummary:
    """Counts for one test file."""

    file: str
    total: int = 0
    passed: int = 0
    failed: int = 0
    unsupported: int = 0

    @property
    def supported(self) -> int:
        return self.total - self.unsupported

    @property
    def coverage(self) -> float:
        """Share of the file's cases that the engine supports."""
        return self.supported / self.total if self.total else 1.0


def run_files(paths: Iterable[str | Path], engine: Optional[Engine] = None
              ) -> tuple[list[FileSummary], list[Outcome]]:
    """Run every case of the given files; return per-file summaries and all outcomes."""
    engine = engine or Engine()
    summaries: list[FileSummary] = []
    outcomes: list[Outcome] = []
    for path in paths:
        summary = FileSummary(Path(path).name)
        stores: dict[int, SeriesStore] = {}  # only the current block's store is kept
        for case in parse_test_file(path):
            key = hash(tuple(id(load) for load in case.loads))
            if key not in stores:
                stores = {key: build_store(case.loads)}
            try:
                out = run_case(case, engine, stores[key])
            except Exception as exc:  # an engine crash is a failure of that case, not the run
                out = Outcome(case, "failed", f"crash: {type(exc).__name__}: {exc}")
            outcomes.append(out)
            summary.total += 1
            if out.status == "passed":
                summary.passed += 1
            elif out.status == "failed":
                summary.failed += 1
            else:
                summary.unsupported += 1
        summaries.append(summary)
    return summaries, outcomes


def format_summary(summaries: Sequence[FileSummary]) -> str:
    """A fixed-width table of the per-file counts plus a total line."""
    rows = [f"{'file':<22}{'cases':>7}{'passed':>8}{'failed':>8}{'unsupp.':>9}{'coverage':>10}"]
    tot = FileSummary("TOTAL")
    for s in summaries:
        rows.append(f"{s.file:<22}{s.total:>7}{s.passed:>8}{s.failed:>8}{s.unsupported:>9}"
                    f"{s.coverage:>9.0%} ")
        tot.total += s.total
        tot.passed += s.passed
        tot.failed += s.failed
        tot.unsupported += s.unsupported
    rows.append(f"{tot.file:<22}{tot.total:>7}{tot.passed:>8}{tot.failed:>8}{tot.unsupported:>9}"
                f"{tot.coverage:>9.0%} ")
    return "\n".join(rows)


def default_conformance_dir(repo_root: str | Path | None = None) -> Path:
    """``<repo root>/../shared/conformance/prometheus-v2.42.0/promql``."""
    root = Path(repo_root) if repo_root else Path(__file__).resolve().parents[2]
    return root.parent / "shared" / "conformance" / "prometheus-v2.42.0" / "promql"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (see module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args
    args = [a for a in args if a != "-v"]
    targets = [Path(a) for a in args] or [default_conformance_dir()]
    files: list[Path] = []
    for t in targets:
        if t.is_dir():
            files.extend(sorted(t.glob("*.test")))
        elif t.exists():
            files.append(t)
        else:
            print(f"conformance: {t} does not exist (expected Prometheus's promql/testdata "
                  f"*.test files, e.g. ../shared/conformance/prometheus-v2.42.0/promql)",
                  file=sys.stderr)
            return 2
    summaries, outcomes = run_files(files)
    for out in outcomes:
        if out.status == "failed" or (verbose and out.status == "unsupported"):
            print(f"{out.status.upper():<12}{out.case.case_id}  {out.case.expr}\n"
                  f"            {out.message}")
    print(format_summary(summaries))
    return 1 if any(s.failed for s in summaries) else 0


if __name__ == "__main__":
    raise SystemExit(main())
