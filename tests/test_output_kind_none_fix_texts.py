"""The refusals a model without scores meets name ``output.kind: none`` in their fix.

Found by a user study: a text generator, an object detector and ``observe(x, None)`` decorated
under the default output kind had every row refused (non_numeric_output, output_shape,
rows_mismatch), and the logged fixes offered only the workaround of watching ``len()`` of each
answer as a regression value, or nothing that fitted. Each now names ``output.kind: none`` (the
inputs alone), the workaround kept as the way to also watch a figure of each answer.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from monitor import Monitor


def _generate(x):
    return [f"answer {i}" * (i + 1) for i in range(len(x))]


def _detect(x):
    return [[{"box": [0, 0, 1, 1], "score": 0.9}] * i for i in range(len(x))]


def _rank(x):
    return [list(range(i + 1)) for i in range(len(x))]  # top-k ids, as many as pass a threshold


@pytest.mark.parametrize("predict, reason", [(_generate, "non_numeric_output"), (_detect, "non_numeric_output"),
                                             (_rank, "output_shape"), (lambda x: None, "rows_mismatch")],
                         ids=["generated-text", "boxes", "top-k-ids", "no-outputs"])
def test_the_fix_of_a_model_without_scores_names_kind_none(caplog, predict, reason) -> None:
    mon = Monitor(model="m", registry=CollectorRegistry(), start_worker=False, live=False)
    try:
        watched = mon.watch(predict)
        with caplog.at_level(logging.WARNING, logger="monitor"):
            watched(np.random.default_rng(0).normal(size=(3, 2)))
            mon.flush()
        said = [r.getMessage() for r in caplog.records if f"refused ({reason})" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in caplog.records]
        assert "output.kind: none" in said[0], said[0]
        fix = said[0].split("Fix: ", 1)[1]
        if "len(o)" in fix:  # the workaround, after the kind that fits
            assert fix.index("output.kind: none") < fix.index("len(o)"), fix
    finally:
        mon.close()
