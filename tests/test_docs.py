"""The README says what the code does: metric table generated from the catalog, CLI commands exist."""

from __future__ import annotations

from click.testing import CliRunner

from monitor import catalog
from monitor.cli import main
from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"


def test_readme_metric_table_matches_the_catalog():
    text = README.read_text()
    start, end = text.index("<!-- metrics:start -->"), text.index("<!-- metrics:end -->")
    assert text[start:end].split("\n", 1)[1].strip() == catalog.markdown_table().strip(), (
        "README metric table is stale: run `monitor metrics --write README.md`"
    )


def test_cli_metrics_lists_every_catalog_entry():
    result = CliRunner().invoke(main, ["metrics", "--format", "names"])
    assert result.exit_code == 0
    assert sorted(result.output.split()) == sorted(s.exposed_name for s in catalog.CATALOG.values())


def test_cli_help_lists_the_subcommands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("demo", "serve", "rules", "replay", "reference", "metrics", "config"):
        assert name in result.output


def test_config_check_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("model: a\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: a\nqueue: {capacity: 0}\n")
    runner = CliRunner()
    ok = runner.invoke(main, ["config", "check", str(good)])
    assert ok.exit_code == 0 and "SUCCESS" in ok.output
    failed = runner.invoke(main, ["config", "check", str(bad)])
    assert failed.exit_code == 1 and "queue.capacity" in failed.output


def test_import_monitor_is_light():
    import subprocess
    import sys

    code = "import sys, monitor; print(sorted(m for m in ('numpy', 'scipy', 'alibi_detect', 'aiohttp', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def _github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but hyphens and underscores
    dropped, spaces as hyphens."""
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_readme_links_within_the_page_reach_a_heading():
    import re

    text = README.read_text(encoding="utf-8")
    slugs = {_github_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}
    targets = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert targets, "the README's contents list links its sections"
    assert not sorted(targets - slugs), f"README links to anchors no heading has: {sorted(targets - slugs)}"


def test_readme_config_check_errors_are_what_the_check_prints(tmp_path):
    """The README's `monitor config check` block: its lines are what the command prints (after
    `FAILED:`, exit code 1) for one monitor.yaml holding the three mistakes the README names: every
    error of the file, not the first only (s38d)."""
    import subprocess
    import sys

    text = README.read_text(encoding="utf-8")
    block = text[text.index("```\nFAILED: monitor.yaml:") + 4:]
    lines = block[:block.index("```")].strip().splitlines()
    mistakes = ("queue: {capacity: -5}",
                "detectors: [confidence, {kind: calibration, windw_s: 60}, {kind: segments, gap_level: 2}]")
    assert all(f"`{m}`" in text for m in mistakes), "the README names the file's mistakes"
    (tmp_path / "monitor.yaml").write_text("model: iris\n" + "\n".join(mistakes) + "\n")
    run = subprocess.run([sys.executable, "-m", "monitor", "config", "check", "monitor.yaml"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1, run
    assert run.stderr.strip().splitlines() == lines, (run.stderr, lines)
    assert len(lines) == 3


def test_readme_replay_example_prints_what_the_readme_shows():
    """The README's `monitor replay` block, run as written from the checkout's root: its summary
    lines and its first transition (the fields shown) are what the command prints."""
    import json
    import shlex
    import subprocess
    import sys

    text = README.read_text(encoding="utf-8")
    block = text[text.index("```sh\n  monitor replay ") + 6:]
    lines = [line.strip() for line in block[:block.index("```")].strip().splitlines()]
    command, shown = shlex.split(lines[0]), [line[2:] for line in lines[1:]]
    assert command[0] == "monitor"
    run = subprocess.run([sys.executable, "-m", "monitor", *command[1:]], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    first = json.loads(run.stdout.splitlines()[0])
    readme_first = json.loads(shown[0].replace(", ...}", "}"))
    assert {k: first[k] for k in readme_first} == readme_first
    printed = [line.strip() for line in (run.stdout + run.stderr).splitlines()]
    for line in shown[1:]:
        assert line.strip() in printed, (line, printed)
