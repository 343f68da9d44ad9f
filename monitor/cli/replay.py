"""``monitor replay``: backtest rules on a recorded log of inference events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click

__all__ = ["replay"]


@click.command()
@click.argument("log", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="monitor.yaml whose detectors and rules to replay through.")
@click.option("--model", default=None, help="Which model of a multi-model config.")
@click.option("--rules", "rule_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Rule files to use instead of the config's.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Where to write alert transitions as JSON lines.")
def replay(log: str, config_path: str, model: str | None, rule_files: tuple[str, ...], out_path: str) -> None:
    """Feed LOG (NDJSON events with timestamps, gzip-compressed or not; '-' for stdin) through the config at full speed in
    event time and write every alert transition (time, alert, state, labels, annotations, value)."""
    import dataclasses

    from monitor.config import ConfigError, load_config

    try:
        agent = load_config(config_path)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    if model is not None and model not in (names := [m.model for m in agent.models]):
        # a mistyped name is the command line's mistake, not the file's: a usage error (exit 2), as
        # click's own for a bad option value; it was exit 1, the code of a config that fails its check
        raise click.BadParameter(f"{config_path} has no model named {model!r}. Fix: choose one of {', '.join(names)}",
                                 param_hint="'--model'")
    try:
        cfg = agent.model(model)
    except ConfigError as err:
        # the API's fix reads "pass model=NAME": on the command line that is --model NAME
        raise click.ClickException(str(err).replace("pass model=NAME", "pass --model NAME")) from None
    if rule_files:
        cfg = dataclasses.replace(cfg, rules=dataclasses.replace(cfg.rules, files=tuple(str(Path(f)) for f in rule_files)))
    if not cfg.rules.files:
        raise click.ClickException(f"{config_path}: no alert rules (rules.packs and rules.files are empty): nothing to "
                                   "backtest. Fix: name shipped packs (rules: {packs: [core, confidence]}; `monitor rules "
                                   "packs` lists them) or your rule files under rules.files, or pass --rules FILE")
    src = sys.stdin.buffer if log == "-" else _open_log(log)  # bytes: a non-UTF-8 line is counted, not fatal
    try:
        if out_path == "-":
            summary, damaged = _run(cfg, src, sys.stdout)
        else:
            from monitor.atomic_file import OutputFileError, atomic_output

            try:  # whole or not at all: a replay that fails leaves an earlier --out file as it was
                with atomic_output(out_path) as out:
                    summary, damaged = _run(cfg, src, out)
            except OutputFileError as err:
                raise click.ClickException(f"--out: {err}") from None
    finally:
        if src is not sys.stdin.buffer:
            src.close()
    if damaged is not None:  # a rotation in progress, a copy cut short
        raise click.ClickException(f"{log}: the compressed log is cut short or damaged ({type(damaged).__name__}: "
                                   f"{damaged}); the alerts written so far stop there. Fix: replay it once it is "
                                   f"complete, or replay what can be read: zcat {log} > part.ndjson (its last line may "
                                   "be cut and is then counted as refused)")
    for line in summary.lines():
        click.echo(line, err=True)
    if not summary.events and not summary.refused:
        raise click.ClickException(f"{log}: the log holds no event: nothing was replayed. Fix: give the NDJSON event log "
                                   "of the README's event format, one JSON object per line")
    if summary.refused and not summary.events:
        raise click.ClickException(f"{log}: no line could be read as an event (see the reasons above); nothing was "
                                   "replayed. Fix: give the NDJSON event log of the README's event format, one JSON "
                                   "object per line (gzip-compressed is read too)")


def _run(cfg: Any, src: IO[bytes], out: IO[str]) -> tuple[Any, Exception | None]:
    """Replay ``src`` into ``out``: the summary and None, or None and the error that cut a damaged
    compressed log short (the transitions written before it are kept: they are what the log held).

    What stops the monitor from being built (a rule file or reference that cannot be read, a
    detector value it refuses) is the agent's own start error, said in one line: it was a
    traceback."""
    import gzip

    from monitor.config import ConfigError
    from monitor.profile import ProfileError
    from monitor.replay import replay as run, write_jsonl
    from monitor.rules.model import RuleLoadError

    try:
        from monitor.rules.loader import load_rule_files

        load_rule_files(cfg.rules.files)  # a backtest of rules that do not load is no backtest (the agent leaves them out)
        return run(cfg, src, on_transition=write_jsonl(out)), None
    except (EOFError, gzip.BadGzipFile) as err:
        return None, err
    except (ConfigError, ProfileError, RuleLoadError) as err:
        raise click.ClickException(str(err)) from None


def _open_log(path: str) -> "IO[bytes]":
    """The log's bytes, decompressed when it is gzip (recorded logs are often rotated and
    compressed: each of its compressed lines was refused as not UTF-8, and nothing replayed)."""
    import gzip

    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
