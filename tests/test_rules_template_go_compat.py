"""Alert texts render as Prometheus renders them where Go's ``text/template`` and ``fmt`` have
corners: the ``js`` function, nil values, error locations, printf argument indexes, ``%x`` of
floats. Expected texts are what promtool 2.42 (Go 1.19) renders for the same templates, with
the alert value 1700000000.5 and labels ``{job="api"}``.
"""

from __future__ import annotations

import pytest

from monitor.rules.template import AlertTemplate


def expand(text: str) -> str:
    return AlertTemplate.compile(text, "B").expand({"job": "api"}, 1700000000.5)


ERROR = '<error expanding template: error executing template __alert_B: template: __alert_B:1:{col}: executing "__alert_B" at <{at}>: {msg}>'


@pytest.mark.parametrize(("text", "col", "at", "msg"), [
    ("{{ .Labels.job.x }}", 122, ".Labels.job.x", "can't evaluate field x in type string"),
    ("{{ $labels.job.x }}", 122, "$labels.job.x", "can't evaluate field x in type string"),
    ("{{ .Value.x }}", 121, ".Value.x", "can't evaluate field x in type float64"),
    ("{{ $labels.job 1 }}", 122, "$labels.job", "job is not a method but has arguments"),
])
def test_a_chained_field_is_located_where_go_locates_it(text: str, col: int, at: str, msg: str) -> None:
    """Go places ``.Labels.job`` at its second element; the agent said the first, so the
    column of the error sent in the alert differed from Prometheus's."""
    assert expand(text) == ERROR.format(col=col, at=at, msg=msg)
