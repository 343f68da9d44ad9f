"""Backtesting: feed a recorded event log through a config at full speed, in event time.

The log is NDJSON in the documented event format (:mod:`monitor.events`): predictions, feedback
and errors with timestamps. Events go straight into the pipeline (no queue, nothing shed), rules
are evaluated at every interval of event time, and every alert transition is reported. Nothing is
sent to Alertmanager: this is for trying rules on yesterday's traffic before deploying them.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from monitor.config import MonitorConfig
from monitor.events import ERROR, FEEDBACK, PREDICTION, EventFormatError, check_for_model, parse_event
# the live pipeline's bound on events ahead of the wall clock: millisecond timestamps (1.7e12 read
# as seconds is the year 55,000) would make a replay evaluate the rules at every interval up to then
from monitor.pipeline import MAX_FUTURE_S

if TYPE_CHECKING:
    from monitor.schema import OutputSpec

__all__ = ["ReplaySummary", "read_events", "replay", "transition_to_json"]

_EVENT_TYPES = {PREDICTION: "prediction", ERROR: "error", FEEDBACK: "feedback"}


@dataclass
class ReplaySummary:
    events: int = 0
    refused: Counter = field(default_factory=Counter)
    #: reason -> where it first happened and what was wrong ("line 4: timestamp: cannot read ..."):
    #: a count alone does not say which line of a large log to look at
    first_refused: dict[str, str] = field(default_factory=dict)
    first_ts: float | None = None
    last_ts: float | None = None
    transitions: int = 0
    fired: Counter = field(default_factory=Counter)  # alertname -> times it started firing
    #: rows of the events read that the model's config refused (``monitor_rows_rejected_total`` of
    #: the replay's monitor, which nothing else shows): a log whose every row was refused said
    #: "no alert fired", as if the rules stayed quiet on that traffic
    rows_rejected: Counter = field(default_factory=Counter)
    #: events (by type) read after rule ticks past their time had been evaluated: the log is out
    #: of time order beyond one read (a prediction log and a label log concatenated), and the
    #: rules saw them late; with the first one's line
    late: Counter = field(default_factory=Counter)
    first_late: str | None = None
    #: the line of the event read last (set by :func:`read_events`)
    line: int = 0

    def lines(self) -> list[str]:
        span = 0.0 if self.first_ts is None else (self.last_ts or 0.0) - self.first_ts
        out = [f"replayed {self.events:,} events spanning {span / 3600:.2f} h of event time; "
               f"{self.transitions} alert transitions"]
        if self.refused:
            out.append("refused lines: " + ", ".join(f"{k}={v}" for k, v in sorted(self.refused.items())))
            out.extend(f"  first {k}: {self.first_refused[k]}" for k in sorted(self.refused) if k in self.first_refused)
        if self.late:
            out.append(f"{sum(self.late.values()):,} events ("
                       + ", ".join(f"{k}={v:,}" for k, v in sorted(self.late.items()))
                       + ") came after rule evaluations past their time: the log is not in time order (e.g. a "
                         "prediction log and a label log concatenated), so the rules saw them late and labels may "
                         "have missed their window; first " + str(self.first_late) + ". Fix: sort the log by "
                         "timestamp (jq -c -s 'sort_by(.timestamp)[]' for one that fits in memory)")
        if self.rows_rejected:
            out.append("rows refused by the config: " + ", ".join(f"{k}={v:,}" for k, v in sorted(self.rows_rejected.items()))
                       + " (monitor_rows_rejected_total; the log above says why and what to change): the rules did not "
                         "see them")
        for name, n in sorted(self.fired.items()):
            out.append(f"  {name}: fired {n} time(s)")
        if not self.fired:
            out.append("  no alert fired")
        return out

    def refuse(self, reason: str, line: int, detail: str) -> None:
        """Count a refused line; the first of each reason is kept with its line number."""
        self.refused[reason] += 1
        self.first_refused.setdefault(reason, f"line {line}: {detail[:200]}")


def read_events(lines: Iterable[str | bytes], model: str | None, summary: ReplaySummary,
                max_ts: float | None = None, output: "OutputSpec | None" = None) -> Iterator[tuple[Any, ...]]:
    """Parse NDJSON lines; malformed lines and other models' events are counted, not fatal.

    ``output``: the replayed model's outputs, against which feedback labels are checked as the
    sidecar's intake checks them (a list label is a multi-label model's ground truth only).

    ``lines`` may be bytes (a log opened in binary): a line that is not UTF-8 is then counted as
    ``invalid_utf8`` instead of ending the replay. Events after ``max_ts`` (default: the wall
    clock plus :data:`MAX_FUTURE_S`) are counted as ``future_timestamp``.
    """
    moving = max_ts is None  # a log still being written (``-``) is read for as long as it grows
    for n, raw in enumerate(lines, 1):
        if moving:
            max_ts = time.time() + MAX_FUTURE_S
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                summary.refuse("invalid_utf8", n, "not UTF-8 text")
                continue
        if n == 1 and raw.startswith("\ufeff"):
            # a byte-order mark (PowerShell's Out-File, Excel and other Windows tools write one):
            # not part of the first event, which json refused as "Unexpected UTF-8 BOM"
            raw = raw[1:]
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
            parsed = parse_event(obj, now=0.0)
            check_for_model(parsed, None if output is None else output.kind, () if output is None else output.classes)
        except json.JSONDecodeError as err:
            summary.refuse("invalid_json", n, f"not JSON ({err.msg} at column {err.colno})")
            continue
        except RecursionError:  # nesting deeper than the parser's stack
            summary.refuse("invalid_json", n, "JSON nested too deeply")
            continue
        except EventFormatError as err:
            summary.refuse(err.reason, n, str(err))
            continue
        if model is not None and parsed.model not in (None, model):
            summary.refuse("other_model", n, f"an event of model {str(parsed.model)[:100]!r}; this replay is of {model!r}")
            continue
        if "timestamp" not in obj:
            summary.refuse("missing_timestamp", n, "no timestamp: a replay needs each event's time (Unix seconds or RFC 3339)")
            continue
        if parsed.event[1] > max_ts:
            summary.refuse("future_timestamp", n, f"timestamp {parsed.event[1]:.0f} is more than 10 minutes ahead "
                                                  "of the clock; milliseconds? write Unix seconds")
            continue
        summary.line = n
        yield parsed.event


def transition_to_json(tr: Any) -> dict[str, Any]:
    to_dict = getattr(tr, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    import dataclasses

    return dataclasses.asdict(tr)


def replay(
    config: MonitorConfig,
    lines: Iterable[str | bytes],
    *,
    reference: Any = None,
    on_transition: Callable[[dict[str, Any]], None] | None = None,
    chunk: int = 5000,
) -> ReplaySummary:
    """Replay ``lines`` through a fresh monitor built from ``config``; returns the summary."""
    from prometheus_client import CollectorRegistry

    from monitor.core import Monitor

    summary = ReplaySummary()
    mon = Monitor(config=config, reference=reference, live=False, start_worker=False, notifiers=[],
                  registry=CollectorRegistry(auto_describe=False))

    def listen(tr: Any) -> None:
        summary.transitions += 1
        data = transition_to_json(tr)
        if str(data.get("to", data.get("state", ""))).lower() == "firing":
            summary.fired[str(data.get("alertname", data.get("labels", {}).get("alertname", "?")))] += 1
        if on_transition is not None:
            on_transition(data)

    mon.transition_listeners.append(listen)
    pipeline = mon.pipeline

    def process(buf: list[tuple[Any, ...]], where: list[int]) -> None:
        # tick t sees the events before t: one before the last tick evaluated comes too late for it
        if pipeline.next_tick is not None and pipeline.tick_s and buf:
            last_tick = pipeline.next_tick - pipeline.tick_s
            times = np.fromiter((e[1] for e in buf), dtype=np.float64, count=len(buf))
            for i in np.flatnonzero(times < last_tick).tolist():
                kind = _EVENT_TYPES.get(buf[i][0], "other")
                summary.late[kind] += 1
                if summary.first_late is None:
                    summary.first_late = (f"line {where[i]}: a {kind} event at {times[i]:.3f}, after the rules were "
                                          f"evaluated at {last_tick:.3f}")
        pipeline.process(buf)

    try:
        buf: list[tuple[Any, ...]] = []
        where: list[int] = []
        for event in read_events(lines, config.model, summary, output=config.output):
            ts = event[1]
            summary.first_ts = ts if summary.first_ts is None else min(summary.first_ts, ts)
            summary.last_ts = ts if summary.last_ts is None else max(summary.last_ts, ts)
            summary.events += 1
            buf.append(event)
            where.append(summary.line)
            if len(buf) >= chunk:
                process(buf, where)
                buf, where = [], []
        process(buf, where)
        if summary.last_ts is not None:
            # one more interval so that the last events are evaluated
            mon.advance(summary.last_ts + max(config.rules.interval_s, 1.0))
        for fam in mon.store.snapshot(["monitor_rows_rejected"]):
            for (reason,), rows in fam.series.items():
                if rows:
                    summary.rows_rejected[reason] += int(rows)
    finally:
        mon.close()
    return summary


def write_jsonl(out: IO[str]) -> Callable[[dict[str, Any]], None]:
    def emit(data: dict[str, Any]) -> None:
        out.write(json.dumps(data, default=str, sort_keys=True) + "\n")

    return emit
