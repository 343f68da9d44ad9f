"""``monitor config check FILE``."""

from __future__ import annotations

import click

__all__ = ["config"]


@click.group()
def config() -> None:
    """Work with monitor.yaml files."""


@config.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check(paths: tuple[str, ...]) -> None:
    """Validate config files; exit 1 on the first invalid one."""
    from monitor.config import ConfigError, load_config

    failed = False
    for path in paths:
        try:
            agent = load_config(path)
        except ConfigError as err:
            click.echo(f"FAILED: {err}", err=True)
            failed = True
            continue
        problems = _server_problems(agent) + _file_problems(agent) + _detector_problems(agent)
        if problems:
            for problem in problems:
                click.echo(f"FAILED: {path}: {problem}", err=True)
            failed = True
            continue
        names = ", ".join(m.model for m in agent.models)
        click.echo(f"SUCCESS: {path}: {len(agent.models)} model(s): {names}")
    if failed:
        raise SystemExit(1)


def _server_problems(agent: object) -> list[str]:
    """The ``server`` section as ``monitor serve`` reads it (its ``proxy``, ``cloudevents`` and
    ``forward`` parts, tokens, limits): without this a file that the sidecar refuses to start
    with passed the check. Token files and variables are read as the sidecar would: run the
    check where (or with the environment with which) the sidecar runs."""
    from monitor.config import ConfigError
    from monitor.server.settings import settings_from

    from monitor.server.sidecar import checkpoint_paths

    out: list[str] = []
    # the checkpoint files are the sidecar's too: two models sharing one (a top-level
    # checkpoint.path without {model} under models:) passed the check and stopped `monitor serve`
    for check in (settings_from, checkpoint_paths):
        try:
            check(agent)  # type: ignore[arg-type]
        except ConfigError as err:
            out.append(f"{err.key}: {err.problem}" + (f". Fix: {err.fix}" if err.fix else ""))
    return out


def _detector_problems(agent: object) -> list[str]:
    """Values of the listed detectors' parameters, checked by building the detectors that need no
    reference (a ``positive_class`` that is no class passed the check, then every start of
    ``monitor serve`` failed to load the model). Those that need the reference are built when it
    is loaded (``monitor reference show`` reads it)."""
    from monitor.detectors.context import DetectorContext
    from monitor.detectors.defaults import DEFAULTS
    from monitor.detectors.registry import create

    no_reference = {kind for kind, requirement, _ in DEFAULTS if requirement == "none"}
    out: list[str] = []
    for m in getattr(agent, "models", ()):
        ctx = DetectorContext(m.schema, m.output, window_s=m.window_s, segment_cap=m.segment_cap, seed=m.seed)
        for i, d in enumerate(m.detectors or ()):
            if d.kind not in no_reference:
                continue
            try:
                create(d.kind, params=dict(d.params), context=ctx)
            except (ValueError, TypeError) as err:
                out.append(f"model {m.model!r}: detectors[{i}] ({d.kind}): {err}")
    return out


def _file_problems(agent: object) -> list[str]:
    """The files a valid config points at, checked like the agent's start does: every rule file
    must load (a missing or invalid one stops the agent), and the reference must exist; an ``.npz``
    must load as the agent loads it: a profile is read, raw data in an ``.npz`` is read and checked
    but not profiled (:func:`monitor.profile.check_npz_reference`). Other raw reference data is not
    read here (a large CSV takes minutes); ``monitor reference show`` reads a profile."""
    from pathlib import Path

    from monitor.rules.loader import parse_rule_file

    out: list[str] = []
    for m in getattr(agent, "models", ()):
        for f in m.rules.files:
            if not Path(f).is_file():
                out.append(f"model {m.model!r}: rules.files: {f}: cannot read rule file: it does not exist. Fix: correct the path (a relative "
                           "one resolves against the config file's folder); for the shipped packs, name them under rules.packs "
                           "instead (e.g. packs: [core]; `monitor rules packs` lists them), which a pip install carries too")
                continue
            _, errors = parse_rule_file(f)
            out.extend(f"model {m.model!r}: rules.files: {e}" for e in errors[:5])
        ref = m.reference.path
        if ref is not None and not Path(ref).is_file():
            out.append(f"model {m.model!r}: reference.path: {ref} does not exist. Fix: build one with "
                       "'monitor reference build' or correct the path")
        elif ref is not None and Path(ref).suffix.lower() == ".npz":
            # one that cannot be read passed this check, then `monitor serve` never became ready
            from monitor.profile import ProfileError, check_npz_reference

            try:
                check_npz_reference(ref)
            except ProfileError as err:  # its message names what is wrong and the fix
                out.append(f"model {m.model!r}: reference.path: {err}")
            except Exception as err:  # noqa: BLE001 - whatever stops the agent's start stops the check
                out.append(f"model {m.model!r}: reference.path: {ref} cannot be read ({type(err).__name__}: {err}). "
                           "Fix: build it with 'monitor reference build'")
    return out
