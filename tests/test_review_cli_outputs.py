"""Review of the command line's output files: written whole or not at all (a failed run leaves an
earlier file as it was, no temporary file behind), and a file that cannot be written, or a
``monitor replay`` whose monitor cannot start, is one line naming the file and the fix (exit 1),
never a traceback."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from tests.conftest import REPO_ROOT


def run(*args: str) -> Result:
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def _reference_csv(path: Path, rows: int = 300) -> Path:
    rng = np.random.default_rng(0)
    lines = ["a,b,p0,p1,label"]
    for _ in range(rows):
        p = float(rng.random())
        lines.append(f"{rng.normal()},{rng.normal()},{p},{1 - p},{int(p > 0.5)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _build(data: Path, out: Path) -> Result:
    return run("reference", "build", str(data), "-o", str(out), "--output-columns", "p0,p1", "--label-column", "label",
               "--quiet")


# -- output files: whole or not at all ------------------------------------------------------------


def test_atomic_output_keeps_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    from monitor.atomic_file import OutputFileError, atomic_output

    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o644)
    with pytest.raises(OutputFileError, match="cannot write .*out.txt: No space left on device"):
        with atomic_output(target) as fh:
            fh.write("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind
    with atomic_output(target) as fh:
        fh.write("new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o644  # not the temporary file's 0600


def test_atomic_output_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real.yml").write_text("old")
    (tmp_path / "link.yml").symlink_to("real.yml")
    res = run("rules", "export", str(REPO_ROOT / "rules" / "core.yml"), "-o", str(tmp_path / "link.yml"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "link.yml").is_symlink() and (tmp_path / "real.yml").read_text().startswith("groups:")


def test_reference_build_that_fails_mid_write_keeps_the_earlier_profile(tmp_path: Path, monkeypatch) -> None:
    """A full disk (or a size limit) mid-write left a cut .npz where the good profile was, which
    the agent then refused, and a traceback."""
    data = _reference_csv(tmp_path / "ref.csv")
    out = tmp_path / "ref.npz"
    assert _build(data, out).exit_code == 0
    before = out.read_bytes()

    def full_disk(file, **arrays):  # writes a first part, then the disk is full
        if hasattr(file, "write"):
            file.write(b"PK\x03\x04 cut")
        else:
            Path(file).write_bytes(b"PK\x03\x04 cut")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    res = _build(data, out)
    assert res.exit_code == 1 and "cannot write" in res.output and "No space left on device" in res.output, res.output
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.csv", "ref.npz"]


def test_reference_build_into_a_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    data = _reference_csv(tmp_path / "ref.csv")
    res = _build(data, data / "p.npz")
    assert res.exit_code == 1 and "cannot create the folder" in res.output and "Traceback" not in res.output, res.output


def test_rules_export_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    res = run("rules", "export", str(REPO_ROOT / "rules" / "core.yml"), "-o", str(tmp_path / "no" / "rules.yml"))
    assert res.exit_code == 1 and "cannot write" in res.output and "rules.yml" in res.output, res.output


def test_dashboards_build_into_a_path_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    res = run("dashboards", "build", "--out", str(tmp_path / "f" / "dash"))
    assert res.exit_code == 1 and "cannot create the folder" in res.output, res.output


# -- replay: the monitor's start errors ----------------------------------------------------------


def _replay_setup(tmp_path: Path, config: str) -> tuple[Path, Path, Path]:
    cfg = tmp_path / "monitor.yaml"
    cfg.write_text(config)
    log = tmp_path / "events.ndjson"
    log.write_text("".join(json.dumps({"timestamp": 1_700_000_000.0 + i, "inputs": {"a": 1.0}, "outputs": [0.2, 0.8]})
                           + "\n" for i in range(20)))
    out = tmp_path / "transitions.jsonl"
    out.write_text("earlier run\n")
    return cfg, log, out


@pytest.mark.parametrize(("config", "needle"), [
    ("model: m\nrules: {files: [missing.yml]}\n", "missing.yml: cannot read rule file"),
    ("model: m\nrules: {files: [bad.yml]}\n", "bad.yml: 2:1: yaml"),
    ("model: m\nrules: {packs: [core]}\nreference: {path: cut.npz}\n", "cut.npz: not a readable .npz"),
    ("model: m\nrules: {packs: [core]}\ndetectors:\n  - kind: calibration\n    gap_level: 2\n",
     "detectors[0].gap_level"),
])
def test_replay_says_what_stops_the_monitor_in_one_line(tmp_path: Path, config: str, needle: str) -> None:
    """A rule file or reference that cannot be read, or a detector value the agent refuses, ended
    the replay with a traceback (and emptied an earlier --out file)."""
    (tmp_path / "bad.yml").write_text("groups: [\n")
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04 cut short")
    cfg, log, out = _replay_setup(tmp_path, config)
    res = run("replay", str(log), "--config", str(cfg), "--out", str(out))
    assert res.exit_code == 1 and needle in res.output, res.output
    assert out.read_text() == "earlier run\n"


def test_replay_rules_option_with_a_broken_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("groups: [\n")
    cfg, log, out = _replay_setup(tmp_path, "model: m\nrules: {packs: [core]}\n")
    res = run("replay", str(log), "--config", str(cfg), "--rules", str(tmp_path / "bad.yml"))
    assert res.exit_code == 1 and "bad.yml: 2:1: yaml" in res.output, res.output


def test_replay_out_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    cfg, log, _ = _replay_setup(tmp_path, "model: m\nrules: {packs: [core]}\n")
    res = run("replay", str(log), "--config", str(cfg), "--out", str(tmp_path / "no" / "t.jsonl"))
    assert res.exit_code == 1 and "--out: cannot write" in res.output, res.output


def test_replay_out_file_holds_what_stdout_shows(tmp_path: Path) -> None:
    example = REPO_ROOT / "examples" / "replay"
    out = tmp_path / "t.jsonl"
    to_file = run("replay", str(example / "events.ndjson"), "--config", str(example / "monitor.yaml"), "--out", str(out))
    to_stdout = CliRunner().invoke(main, ["replay", str(example / "events.ndjson"), "--config",
                                                          str(example / "monitor.yaml")])
    assert to_file.exit_code == 0 and to_stdout.exit_code == 0
    shown = [line for line in to_stdout.stdout.splitlines() if line.startswith("{")]  # click 8.1 mixes stderr in
    assert out.read_text().splitlines() == shown and len(shown) == 3
