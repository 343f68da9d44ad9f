"""Review: ``monitor reference build`` on messy reference files refuses them with a clear error
naming the field and the fix (a ClickException, exit code 1), never a numpy/csv traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from monitor.cli import main


def build(tmp_path: Path, data: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["reference", "build", str(data), "-o", str(tmp_path / "p.npz"), "--quiet", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(("arrays", "needle"), [
    ({"X": np.zeros((5, 2)), "categorical": np.array([["a"], ["b"], ["a"], ["c"], ["a"]], dtype=object)},
     "'categorical' cannot be read without pickle"),
    ({"X": np.zeros((5, 2)), "feature_names": np.array(["a"])}, "'feature_names' has 1 names for the 2 columns"),
    ({"X": np.zeros((5, 2)), "feature_names": np.array(["a", "b", "c"])}, "'feature_names' has 3 names"),
    ({"X": np.zeros((5, 2)), "categorical": np.array(["a", "b", "a", "c", "a"])}, "'categorical' must be 2-D with 5 rows"),
    ({"X": np.zeros((5, 2)), "categorical": np.array([["a"], ["b"]])}, "'categorical' must be 2-D with 5 rows"),
    ({"X": np.zeros((5, 2)), "categorical": np.array([["a"]] * 5), "categorical_names": np.array(["u", "v"])},
     "'categorical_names' has 2 names for the 1 columns"),
    ({"X": np.zeros((5, 2)), "scores": np.zeros((3, 2))}, "'scores' must have 5 rows"),
    ({"X": np.zeros((5, 2)), "labels": np.zeros(4, dtype=int)}, "'labels' must have 5 rows"),
    ({"X": np.array([["a", "b"]])}, "'X' must hold numbers"),
])
def test_npz_with_wrong_keys_or_shapes_is_refused_naming_the_key(tmp_path: Path, arrays: dict, needle: str) -> None:
    code, out = build(tmp_path, npz(tmp_path / "ref.npz", **arrays))
    assert code == 1 and needle in out, out


def test_npy_of_objects_or_garbage_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    code, out = build(tmp_path, tmp_path / "obj.npy")
    assert code == 1 and "numeric .npy" in out, out
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    code, out = build(tmp_path, tmp_path / "junk.npy")
    assert code == 1 and "junk.npy" in out, out
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    code, out = build(tmp_path, tmp_path / "s.npy")
    assert code == 1 and "2-D numeric array" in out, out


@pytest.mark.parametrize(("content", "needle"), [
    (b"", "must be a header"),
    (b"a,a,b\n1,2,3\n", "'a' appears twice"),
    (b"a,b,\n1,2,\n", "column 3 has no name"),
    (b"a,b\n1,caf\xe9\n", "data row 1: not UTF-8"),
    (b"\xe9,b\n1,2\n", "the header: not UTF-8"),
])
def test_csv_header_and_encoding_problems_are_refused(tmp_path: Path, content: bytes, needle: str) -> None:
    (tmp_path / "ref.csv").write_bytes(content)
    code, out = build(tmp_path, tmp_path / "ref.csv")
    assert code == 1 and needle in out, out


def test_csv_label_column_with_infinite_value_builds(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_text("a,y\n1,inf\n2,1\n3,0\n")
    code, out = build(tmp_path, tmp_path / "ref.csv", "--label-column", "y")
    assert code == 0 and "3 rows" in out, out


def test_csv_with_bom_quoted_commas_and_missing_values_builds(tmp_path: Path) -> None:
    (tmp_path / "ref.csv").write_bytes('\ufeffa,b,c\n1,"x,y",\n2,"z",3\n,NA,4\n'.encode())
    code, out = build(tmp_path, tmp_path / "ref.csv")
    assert code == 0, out
    from monitor.profile import Profile

    prof = Profile.load(tmp_path / "p.npz")
    assert prof.numeric_names == ("a", "c") and prof.categorical_names == ("b",)
    # a text column's "NA" is a category, as a live "NA" is (North America); only an empty field is missing
    assert set(prof.feature("b").categories) == {"x,y", "z", "NA"}  # type: ignore[union-attr]
    assert prof.feature("b").n_missing == 0  # type: ignore[union-attr]
    assert prof.feature("a").n_missing == 1 and prof.feature("c").n_missing == 1  # type: ignore[union-attr]


def _replay(tmp_path: Path, body: bytes, *, stdin: bool = False) -> tuple[int, str]:
    from tests.conftest import REPO_ROOT

    core = REPO_ROOT / "rules" / "core.yml"
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(f"model: m\nrules:\n  files: [{core}]\n  interval: 15s\n")
    out = tmp_path / "transitions.jsonl"
    log = tmp_path / "events.ndjson"
    log.write_bytes(body)
    args = ["replay", "-" if stdin else str(log), "--config", str(cfg), "--out", str(out)]
    res = CliRunner().invoke(main, args, input=body if stdin else None)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def _events(n: int, t0: float = 1_700_000_000.0) -> bytes:
    import json as _json

    return b"".join(_json.dumps({"timestamp": t0 + i, "inputs": {"a": float(i % 5)}, "outputs": [0.2, 0.8]}).encode() + b"\n"
                    for i in range(n))


@pytest.mark.parametrize("stdin", [False, True])
def test_replay_counts_malformed_lines_and_goes_on(tmp_path: Path, stdin: bool) -> None:
    """A line nested deeper than the JSON parser's stack (RecursionError) and a line that is not
    UTF-8 ended the replay with a traceback; they are counted as refused like any malformed line."""
    body = _events(20) + b"[" * 100_000 + b"]" * 100_000 + b"\n" + b'{"timestamp": 1700000030, "inputs": {"a": "caf\xe9"}}\n' + _events(5, 1_700_000_040.0)
    code, out = _replay(tmp_path, body, stdin=stdin)
    assert code == 0, out
    assert "replayed 25 events" in out and "invalid_json=1" in out and "invalid_utf8=1" in out, out


def test_replay_refuses_millisecond_timestamps_instead_of_ticking_to_them(tmp_path: Path) -> None:
    """A millisecond timestamp read as seconds is ~55,000 years ahead: the replay evaluated the
    rules at every 15 s interval up to it and never ended. Events beyond the wall clock + 1 day
    are refused and counted."""
    import json as _json

    body = _events(30) + _json.dumps({"timestamp": 1_700_000_031_000, "inputs": {"a": 1.0}, "outputs": [0.2, 0.8]}).encode() + b"\n"
    code, out = _replay(tmp_path, body)
    assert code == 0, out
    assert "replayed 30 events" in out and "future_timestamp=1" in out, out


def test_template_runtime_error_context_matches_promtool(tmp_path: Path) -> None:
    """A template failing at run time renders ``<error expanding template: ... at <NODE>: ...>``
    like Prometheus; the node was cut to 20 characters + "..." where promtool prints it whole,
    so ``monitor rules test`` disagreed with ``promtool test rules`` on the same file."""
    from tests.conftest import require_binary

    promtool = require_binary("promtool")
    (tmp_path / "r.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: B\n    expr: m > 0\n    annotations:\n"
        "      c: '{{ first (query \"absent_metric\") }}'\n      f: '{{ reReplaceAll \"(x\" \"y\" \"z\" | toUpper }}'\n")
    want = ('c="<error expanding template: error executing template __alert_B: template: __alert_B:1:115: executing '
            '\\"__alert_B\\" at <first (query \\"absent_metric\\")>: error calling first: first() called on vector with no elements>"')
    (tmp_path / "t.yml").write_text(
        "rule_files: [r.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n"
        "  - series: 'm{job=\"api\"}'\n    values: '1 2 3'\n  alert_rule_test:\n  - {eval_time: 2m, alertname: B, exp_alerts: []}\n")
    import subprocess

    real = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert want in real.stdout + real.stderr  # the premise: what Prometheus renders
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        res = CliRunner().invoke(main, ["rules", "test", "t.yml"])
    finally:
        os.chdir(cwd)
    assert want in res.output, res.output


def test_rules_check_accepts_a_negative_group_limit_like_promtool(tmp_path: Path) -> None:
    """Prometheus applies a group ``limit`` only when it is > 0; promtool accepts ``limit: -1``
    and so must ``monitor rules check`` (it refused the file)."""
    import subprocess

    from tests.conftest import require_binary

    promtool = require_binary("promtool")
    f = tmp_path / "r.yml"
    f.write_text("groups:\n- name: x\n  limit: -1\n  rules:\n  - alert: A\n    expr: up == 0\n")
    real = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True, timeout=120)
    assert real.returncode == 0 and "SUCCESS: 1 rules found" in real.stdout  # the premise
    res = CliRunner().invoke(main, ["rules", "check", str(f)])
    assert res.exit_code == 0 and "SUCCESS: 1 rules found" in res.output, res.output
    from monitor.rules.loader import load_rule_files

    (group,) = load_rule_files([str(f)])
    assert group.limit == 0  # no limit


def test_clamp_follows_go_math_min_max_on_infinities_nan_and_signed_zero(tmp_path: Path) -> None:
    """Go's ``math.Min(-Inf, NaN)`` is -Inf and ``math.Max(+Inf, NaN)`` is +Inf (the infinity
    case comes first), and -0 < +0; numpy's minimum/maximum give NaN and ignore the sign of 0,
    so ``clamp_max(m, NaN)`` differed from Prometheus on a -Inf sample."""
    from monitor.promql import Engine, SeriesStore

    store = SeriesStore(retention_s=1e9)
    for i, v in enumerate([float("-inf"), float("inf"), float("nan"), -0.0, 0.0, 2.0]):
        store.append({"__name__": "m", "i": str(i)}, 0.0, v)
    eng = Engine()

    def run(expr: str) -> list[str]:
        out = sorted(eng.compile(expr).instant(store, 0.0), key=lambda s: s.labels["i"])
        return [repr(s.value) for s in out]

    assert run("clamp_max(m, NaN)") == ["-inf", "nan", "nan", "nan", "nan", "nan"]
    assert run("clamp_min(m, NaN)") == ["nan", "inf", "nan", "nan", "nan", "nan"]
    assert run("clamp_max(m, 0)") == ["-inf", "0.0", "nan", "-0.0", "0.0", "0.0"]
    assert run("clamp_min(m, -0)") == ["-0.0", "inf", "nan", "-0.0", "0.0", "2.0"]
    assert run("clamp(m, -1, 1)") == ["-1.0", "1.0", "nan", "-0.0", "0.0", "1.0"]

    # the premise, checked against the real promtool when it is installed
    import shutil
    import subprocess

    promtool = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if promtool is None:
        return
    (tmp_path / "t.yml").write_text(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n- interval: 1m\n  input_series:\n"
        "  - series: 'm{i=\"0\"}'\n    values: '-Inf'\n  - series: 'm{i=\"1\"}'\n    values: 'Inf'\n"
        "  promql_expr_test:\n  - expr: 'clamp_max(m, NaN)'\n    eval_time: 0m\n    exp_samples:\n"
        "    - {labels: '{i=\"0\"}', value: -.inf}\n    - {labels: '{i=\"1\"}', value: .nan}\n"
        "  - expr: 'clamp_min(m, NaN)'\n    eval_time: 0m\n    exp_samples:\n"
        "    - {labels: '{i=\"0\"}', value: .nan}\n    - {labels: '{i=\"1\"}', value: .inf}\n")
    real = subprocess.run([promtool, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    # promtool never matches an expected NaN, so read what it got
    report = real.stdout + real.stderr
    assert 'got: {i="0"} -Inf, {i="1"} NaN' in report and 'got: {i="0"} NaN, {i="1"} +Inf' in report, report


def test_series_notation_keeps_negative_zero_like_promtool() -> None:
    """promtool loads the series value ``-0`` as -0 (``count_values`` then labels it "-0" and
    ``avg`` gives -0); the agent's unit-test runner read it as an integer and lost the sign."""
    import math

    from monitor.rules.series_notation import expand_values

    vals = expand_values("-0 0 -0.0 -0x2")
    assert [math.copysign(1.0, v) for v in vals if v is not None] == [-1.0, 1.0, -1.0, -1.0, -1.0, -1.0]


def test_damaged_profiles_are_refused_with_a_profile_error(tmp_path: Path) -> None:
    """``monitor reference show`` / ``reference.path`` on a damaged profile (meta.json not JSON,
    or an array missing) or on a file that is not an .npz at all ended in a JSONDecodeError,
    KeyError or numpy ValueError traceback instead of the profile error with the fix."""
    import json as _json

    from monitor.profile import Profile, ProfileError, load_reference

    np.savez(tmp_path / "badjson.npz", **{"meta.json": np.frombuffer(b"{not json", dtype=np.uint8)})
    good = Profile.from_arrays(np.random.default_rng(0).normal(size=(50, 2)), numeric_names=["a", "b"])
    good.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "num0.edges"}
    np.savez(tmp_path / "missing.npz", **arrays)
    meta = _json.loads(arrays["meta.json"].tobytes().decode())
    meta["numeric"][0].pop("n")
    np.savez(tmp_path / "meta_key.npz", **{**arrays, "meta.json": np.frombuffer(_json.dumps(meta).encode(), dtype=np.uint8)})
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    for name in ("badjson", "missing", "meta_key"):
        with pytest.raises(ProfileError, match="damaged profile"):
            Profile.load(tmp_path / f"{name}.npz")
        code, out = _show(tmp_path / f"{name}.npz")
        assert code == 1 and "damaged profile" in out and "monitor reference build" in out, out
    with pytest.raises(ProfileError, match=r"is not an \.npz .*it starts with the text 'not a zip at all'"):
        load_reference(tmp_path / "junk.npz")


def _show(path: Path) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["reference", "show", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.output


def test_reference_rows_with_missing_outputs_are_not_counted_as_a_prediction(tmp_path: Path) -> None:
    """``argmax`` of a row with NaN returns the NaN's column (or 0): rows whose model outputs are
    missing in the reference CSV were counted as predictions of that class, skewing the reference
    class frequencies that prediction drift compares against."""
    (tmp_path / "ref.csv").write_text("a,p0,p1\n1,0.2,0.8\n2,0.3,0.7\n3,,\n4,0.9,\n5,NA,NA\n")
    code, out = build(tmp_path, tmp_path / "ref.csv", "--output-columns", "p0,p1")
    assert code == 0, out
    from monitor.profile import Profile

    prof = Profile.load(tmp_path / "p.npz")
    assert prof.outputs is not None and prof.outputs.predicted_counts is not None
    assert prof.outputs.predicted_counts.tolist() == [0.0, 2.0]


def test_config_check_refuses_a_non_utf8_config_cleanly(tmp_path: Path) -> None:
    """A monitor.yaml saved in UTF-16 or Latin-1 ended ``monitor config check`` (and the agent's
    start) with a UnicodeDecodeError traceback instead of a ConfigError naming the fix."""
    f = tmp_path / "monitor.yaml"
    f.write_bytes("model: café\n".encode("latin-1"))
    res = CliRunner().invoke(main, ["config", "check", str(f)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1 and "not UTF-8" in res.output and "save the file as UTF-8" in res.output, res.output


def test_config_check_fails_on_missing_or_invalid_rule_files_and_missing_reference(tmp_path: Path) -> None:
    """``monitor config check`` said SUCCESS for a config whose rule file does not exist (the agent
    then refuses to start with RuleLoadError) or whose reference.path is missing."""
    (tmp_path / "broken.yml").write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n")
    cfg = tmp_path / "monitor.yaml"
    for body, needle in [
        (f"model: m\nrules:\n  files: [{tmp_path / 'nope.yml'}]\n", "cannot read rule file"),
        (f"model: m\nrules:\n  files: [{tmp_path / 'broken.yml'}]\n", "unclosed left parenthesis"),
        (f"model: m\nreference:\n  path: {tmp_path / 'nope.npz'}\n", "reference.path"),
    ]:
        cfg.write_text(body)
        res = CliRunner().invoke(main, ["config", "check", str(cfg)])
        assert res.exit_code == 1 and needle in res.output, res.output
    from tests.conftest import REPO_ROOT

    cfg.write_text(f"model: m\nrules:\n  files: [{REPO_ROOT / 'rules' / 'core.yml'}]\n")
    res = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert res.exit_code == 0 and "SUCCESS" in res.output, res.output


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 50])
def test_csv_quoted_newlines_survive_chunk_boundaries(tmp_path: Path, chunk_rows: int) -> None:
    """The CSV reader cut the file every ``chunk_rows`` physical lines (50,000 by default): a quoted
    field holding a newline across the cut was truncated ("multi\\n") and the next chunk refused
    with a wrong field count; a blank line inside a quoted field was dropped."""
    from monitor.profile import read_table

    (tmp_path / "ref.csv").write_text('a,b\n1,x\n2,"multi\nline"\n3,"blank\n\ninside ""q"""\n4,z\n')
    _, _, chunks = read_table(tmp_path / "ref.csv", chunk_rows=chunk_rows, progress=False)
    tables = list(chunks)
    assert np.concatenate([t.numeric.ravel() for t in tables]).tolist() == [1.0, 2.0, 3.0, 4.0]
    assert np.concatenate([t.categorical.ravel() for t in tables]).tolist() == ["x", "multi\nline", 'blank\n\ninside "q"', "z"]


def test_template_number_out_of_float_range_is_a_syntax_error(tmp_path: Path) -> None:
    """``{{ 1e400 }}`` in an annotation crashed ``monitor rules check`` (and the agent's rule
    loading) with an OverflowError traceback; promtool reports "illegal number syntax"."""
    f = tmp_path / "r.yml"
    f.write_text('groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      a: "{{ 1e400 }}"\n')
    res = CliRunner().invoke(main, ["rules", "check", str(f)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == 1 and 'illegal number syntax: "1e400"' in res.output, res.output


def test_printf_c_of_an_invalid_code_point_renders_the_replacement_character() -> None:
    """``printf "%c"`` of a value outside Unicode raised ValueError out of ``expand`` (which must
    never raise: the rule evaluation of that tick failed); Go and promtool write U+FFFD."""
    from monitor.rules.template import AlertTemplate

    t = AlertTemplate.compile('{{ printf "%c|%c|%c|%3c" 1114112 -1 55296 65 }}', "C")
    assert t.expand({}, 1.0) == "\ufffd|\ufffd|\ufffd|  A"


def test_an_unexpected_error_in_a_template_function_renders_an_error_not_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """``AlertTemplate.expand`` promises never to raise: only TemplateExecError was caught, so any
    other exception from a template function (like the %c ValueError above) aborted the whole
    rule evaluation tick. It now renders ``<error expanding template: ...>`` like any failure."""
    import dataclasses

    from monitor.rules import template_funcs
    from monitor.rules.template import AlertTemplate

    def boom(*_: object) -> str:
        raise ZeroDivisionError("bug")

    spec = template_funcs.FUNCS["humanize"]
    monkeypatch.setitem(template_funcs.FUNCS, "humanize", dataclasses.replace(spec, impl=boom))
    t = AlertTemplate.compile("x {{ $value | humanize }}", "Z")
    out = t.expand({}, 1.0)
    assert out.startswith("<error expanding template: error executing template __alert_Z:") and "ZeroDivisionError" in out, out


def test_label_column_of_large_integers_does_not_allocate_a_count_per_value(tmp_path: Path) -> None:
    """Label counts were ``np.bincount(labels)``: a label column of ids or codes (here up to 1e12)
    asked for a 8 TB array. Integers beyond class-index size are not counted as classes."""
    (tmp_path / "ref.csv").write_text("a,y\n1,1000000000000\n2,5\n3,7\n")
    code, out = build(tmp_path, tmp_path / "ref.csv", "--label-column", "y")
    assert code == 0 and "3 rows" in out and "labels" not in out.split("rows", 1)[1], out
    (tmp_path / "ref2.csv").write_text("a,y\n1,0\n2,1\n3,1\n")
    code, out = build(tmp_path, tmp_path / "ref2.csv", "--label-column", "y")
    assert code == 0 and ", labels" in out, out
