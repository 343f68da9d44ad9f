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
        names = ", ".join(m.model for m in agent.models)
        click.echo(f"SUCCESS: {path}: {len(agent.models)} model(s): {names}")
    if failed:
        raise SystemExit(1)
