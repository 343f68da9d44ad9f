"""A generative model's answers (``output.kind: text``) are monitored as the text feature ``output``.

An LLM, a summariser or a translator returns one generated text per input row. Under
``output.kind: none`` its answers were not read at all: answers getting longer, switching
language or turning to gibberish went unseen. With ``output.kind: text`` each answer is described
as a text feature named ``output`` appended to the row's inputs (``output.length``,
``output.words``, ``output.non_letter_share``, ``output.non_ascii_share``, and ``output.oov_share``
against the reference answers' vocabulary), watched by input drift and data quality.

Stated (seeded): answers drawn as the reference's raise no input drift over the first 2,000
rows; answers three times as long, or in another vocabulary, are detected within 500 rows of the
onset, an ``output.*`` descriptor named first (``output.oov_share`` for the vocabulary). Answers
of the wrong count or not text are refused as rows_mismatch / non_numeric_output, counted, and
the caller's answer is returned unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitor import Monitor
from monitor.config import ConfigError, parse_config
from monitor.reference import Reference
from tests.test_output_kind_none_config import config_check
from tests.test_text_drift import OTHER, texts

ONSET = 2000
WITHIN = 500
CONFIG = {"features": [{"name": "prompt", "kind": "text"}], "output": {"kind": "text"}}


def _reference(rng: np.random.Generator, n: int = 3000) -> Reference:
    cells = np.array([texts(rng, n), texts(rng, n)], dtype=object).T
    return Reference.from_arrays(np.empty((n, 0)), text=cells, text_names=["prompt", "output"])


def _monitor(rng: np.random.Generator, config: dict | None = None) -> Monitor:
    return Monitor(model="llm", config=config or CONFIG, reference=_reference(rng), registry=CollectorRegistry(),
                   start_worker=False, live=False)


def _rejected(mon: Monitor) -> dict[str, float]:
    out = {}
    for line in mon.metrics_text().splitlines():
        if line.startswith("monitor_rows_rejected_total{"):
            out[line.split('reason="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    return out


def _first_drift(mon: Monitor, generate, rng: np.random.Generator, batches: int = 60) -> tuple[int | None, list]:
    """Call ``generate`` on 100 prompts at a time (ten rows a second); the row count at which input
    drift first fired and its top features then."""
    now = [1_000_000.0]
    mon.clock = lambda: now[0]
    det = next(d for d in mon.detectors if d.kind == "input_drift")
    for i in range(batches):
        now[0] = 1_000_000.0 + i * 10
        generate(texts(rng, 100))
        mon.flush()
        if det.drift_detected:
            return (i + 1) * 100, det.top_features
    return None, []


def _generator(mon: Monitor, rng: np.random.Generator, changed: dict) -> object:
    rows = [0]

    @mon.watch
    def generate(prompts: list[str]) -> list[str]:
        after = rows[0] >= ONSET
        rows[0] += len(prompts)
        return texts(rng, len(prompts), **(changed if after else {}))

    return generate


@pytest.mark.parametrize("changed, first", [
    ({"words": (60, 100)}, ("output.length", "output.words")),  # answers get about four times longer
    ({"vocabulary": OTHER}, ("output.oov_share",)),  # the model answers in another language
])
def test_a_generators_changed_answers_are_detected_and_named(changed: dict, first: tuple[str, ...]) -> None:
    rng = np.random.default_rng(11)
    mon = _monitor(rng)
    try:
        assert [d.kind for d in mon.detectors] == ["data_quality", "input_drift", "pca_drift", "probing"]
        generate = _generator(mon, rng, changed)
        alarm, top = _first_drift(mon, generate, rng)
        assert alarm is not None and ONSET < alarm <= ONSET + WITHIN, alarm
        assert top[0][0] in first, top
        assert _rejected(mon) == {}
        assert mon.store.value("monitor_predictions") == alarm
    finally:
        mon.close()


def test_unchanged_answers_raise_no_drift() -> None:
    rng = np.random.default_rng(12)
    mon = _monitor(rng)
    try:
        generate = _generator(mon, rng, {})
        alarm, _ = _first_drift(mon, generate, rng, batches=ONSET // 100)
        assert alarm is None
    finally:
        mon.close()


def test_answers_are_described_after_the_inputs_and_empty_answers_have_length_zero() -> None:
    rng = np.random.default_rng(13)
    mon = _monitor(rng)
    try:
        seen = []
        mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                       "__getattr__": lambda self, n: (lambda *a, **k: None)})())
        mon.observe(["Tell me a story.", "Say nothing."], ["Once upon a time.", ""])
        mon.observe("One prompt alone.", "One answer alone.")  # one string for a one-row call
        mon.flush()
        batch = next(b for b in seen if hasattr(b, "numeric_names"))
        names = list(batch.numeric_names)
        assert names[-5:] == ["output.length", "output.words", "output.non_letter_share", "output.non_ascii_share",
                              "output.oov_share"]
        lengths = batch.numeric[:, names.index("output.length")]
        assert sorted(lengths.tolist()) == [0.0, len("Once upon a time."), len("One answer alone.")]
        assert batch.scores is None
    finally:
        mon.close()


def test_wrong_counts_and_answers_that_are_no_text_are_refused_and_counted(caplog) -> None:
    rng = np.random.default_rng(14)
    mon = _monitor(rng)
    try:
        @mon.watch
        def generate(prompts: list[str]) -> list[str]:
            return ["only one answer"]

        assert generate(["a", "b", "c"]) == ["only one answer"]  # the caller's answer, unchanged
        mon.observe(["a", "b"], [[1, 2, 3], [4]])  # token ids, no text
        mon.observe(["a"], {"text": "x"})
        with caplog.at_level("WARNING", logger="monitor"):
            mon.flush()
        assert _rejected(mon) == {"rows_mismatch": 3.0, "non_numeric_output": 3.0}
        said = caplog.text
        assert "3 input rows but 1 generated texts" in said
        assert "output.kind: none" in said  # answers that are no text: the kind that fits them
    finally:
        mon.close()


def test_a_config_naming_an_input_output_is_refused_with_the_fix() -> None:
    cfg = parse_config({"model": "llm", **CONFIG}).model()
    assert cfg.output.is_text and cfg.output.reads_outputs and not cfg.output.scored and not cfg.output.is_classifier
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "llm", "features": [{"name": "output", "kind": "text"}], "output": {"kind": "text"}})
    assert "features[0].name" in str(err.value) and "rename" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config({"model": "llm", "output": {"kind": "text", "classes": ["a", "b"]}})
    assert "output.classes" in str(err.value)
    parse_config({"model": "llm", "features": [{"name": "output", "kind": "text"}], "output": {"kind": "none"}})


def test_config_check_accepts_kind_text_and_refuses_a_score_detector(tmp_path: Path) -> None:
    def check(raw: dict) -> tuple[int, str]:
        return config_check(tmp_path, raw)

    code, output = check({"model": "llm", **CONFIG})
    assert code == 0, output
    code, output = check({"model": "llm", **CONFIG, "detectors": ["data_quality", "calibration"]})
    assert code != 0 and "detectors[1]" in output and "calibration" in output and "output.kind: text" in output, output


def test_score_detectors_are_refused_for_a_generator() -> None:
    rng = np.random.default_rng(15)
    with pytest.raises(ConfigError) as err:
        _monitor(rng, {**CONFIG, "detectors": [{"kind": "confidence"}]})
    assert "confidence" in str(err.value) and "output.kind: text" in str(err.value)


def test_labels_for_a_generator_are_counted_invalid_never_raised() -> None:
    rng = np.random.default_rng(16)
    mon = _monitor(rng)
    try:
        mon.observe(["a prompt"], ["an answer"], request_id="r1")
        mon.feedback(["r1"], ["good"])
        mon.flush()
        assert mon.store.value("monitor_feedback_labels", labels=("invalid",)) == 1
    finally:
        mon.close()


def test_a_csv_reference_gives_the_answers_as_its_column_output(tmp_path: Path) -> None:
    """``reference.text: [prompt, output]`` next to a raw CSV: the answers' descriptors and vocabulary
    are the column ``output``'s, the prompts' the inputs' (without configured features too)."""
    import pandas as pd

    from monitor.config import load_config

    rng = np.random.default_rng(17)
    pd.DataFrame({"prompt": texts(rng, 1000), "output": texts(rng, 1000)}).to_csv(tmp_path / "ref.csv", index=False)
    for features in (CONFIG["features"], []):
        (tmp_path / "monitor.yaml").write_text(yaml.safe_dump({
            "model": "llm", "features": features, "output": {"kind": "text"},
            "reference": {"path": "ref.csv", "text": ["prompt", "output"]}}))
        mon = Monitor(model="llm", config=load_config(tmp_path / "monitor.yaml").model(), registry=CollectorRegistry(),
                      start_worker=False, live=False)
        try:
            assert "output" in mon.reference.vocabularies
            assert mon.input_schema.names == ("prompt",)
            mon.observe(texts(rng, 5, OTHER), texts(rng, 5, OTHER))
            mon.flush()
            assert mon.store.value("monitor_predictions") == 5 and _rejected(mon) == {}
            assert mon.pipeline.builder.numeric_columns[-1] == "output.oov_share"
        finally:
            mon.close()


def test_the_fixes_for_a_generator_do_not_send_it_to_kind_regression(caplog) -> None:
    """A score detector listed for a generator, and labels sent for it, were told to watch len() of
    each answer as output.kind: regression: what kind text already watches (output.length)."""
    rng = np.random.default_rng(17)
    with pytest.raises(ConfigError) as err:
        _monitor(rng, {**CONFIG, "detectors": [{"kind": "output_drift"}]})
    assert "output.length" in err.value.fix and "regression" not in err.value.fix
    mon = _monitor(rng)
    try:
        mon.observe(["a prompt"], ["an answer"], request_id="r1")
        mon.feedback(["r1"], ["good"])
        with caplog.at_level("WARNING", logger="monitor"):
            mon.flush()
        (said,) = [r.getMessage() for r in caplog.records if "refused as invalid" in r.getMessage()]
        assert "len(o)" not in said and "output.*" in said
    finally:
        mon.close()


def test_a_column_of_answers_is_read_as_one_answer_per_row() -> None:
    """OIP v2's BYTES output has the shape [n, 1] (a column of texts), as JSON rows [["a"], ["b"]]:
    it was refused as non_numeric_output, every row lost."""
    rng = np.random.default_rng(14)
    mon = _monitor(rng)
    try:
        seen = []
        mon.pipeline.detectors.append(type("Spy", (), {"kind": "spy", "update": lambda self, b: seen.append(b),
                                                       "__getattr__": lambda self, n: (lambda *a, **k: None)})())
        mon.observe(["Hi.", "Bye."], np.array([["Hello there."], ["Goodbye."]], dtype=object))
        mon.observe(["Hi again."], [["Hello again."]])
        mon.flush()
        assert mon.store.value("monitor_rows_rejected", ("non_numeric_output",)) in (None, 0)
        lengths = np.concatenate([b.numeric[:, list(b.numeric_names).index("output.length")]
                                  for b in seen if hasattr(b, "numeric_names")])
        assert sorted(lengths.tolist()) == sorted([len("Hello there."), len("Goodbye."), len("Hello again.")])
    finally:
        mon.close()
