"""In-agent PromQL: an in-memory time-series store and an evaluator with Prometheus v2.42 semantics.

Public API (stable; the rule engine codes against it)::

    from monitor.promql import Engine, SeriesStore, Labels
    store = SeriesStore(retention_s=3600)
    store.append_scrape(t, [(Labels({"__name__": "up", "job": "a"}), 1.0)])
    q = Engine().compile('up == 0')          # ParseError / UnsupportedError at compile time
    alerts = q.instant(store, t)             # list[Sample]

Importing this package pulls in numpy; the agent's hot path must not import it eagerly.
"""

from __future__ import annotations

from monitor.promql.engine import Engine, Query
from monitor.promql.errors import EvalError, ParseError, PromQLError, UnsupportedError
from monitor.promql.matchers import LabelMatcher, MatchOp
from monitor.promql.storage import STALE_NAN, SeriesStore, StoreStats, is_stale_nan
from monitor.promql.types import Labels, Matrix, Sample, Scalar, Series, String, Vector

__all__ = [
    "Engine",
    "Query",
    "SeriesStore",
    "StoreStats",
    "STALE_NAN",
    "is_stale_nan",
    "Labels",
    "LabelMatcher",
    "MatchOp",
    "Sample",
    "Series",
    "Scalar",
    "String",
    "Vector",
    "Matrix",
    "PromQLError",
    "ParseError",
    "UnsupportedError",
    "EvalError",
]
